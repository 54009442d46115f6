// oauthd as seen by openid-client 6 (a certified OpenID Connect relying party): discovery,
// authorization code + PKCE S256 with RFC 9207 `iss` checking, the ID token (signature
// against the JWKS, iss, aud, azp, nonce, alg), userinfo, refresh rotation, introspection by a
// resource server and revocation. Every response goes through the library's own checks; the
// assertions here add what the library does not check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

import * as S from './support.mjs';

const CLIENT_ID = S.env('INTEROP_CLIENT_OPENID_CLIENT');
const ID_TOKEN_ALG = 'RS256'; // as registered by run.sh
const SCOPE = 'openid profile email';

// http is allowed for the loopback test server only (the library's HTTPS-only rule stays on
// for anything else).
S.assertLoopback(S.ISSUER);
const insecureForLoopback = { execute: [client.allowInsecureRequests] };

/** A public client (token_endpoint_auth_method none) configured by discovery. */
async function appConfig({ fetch } = {}) {
  const config = await client.discovery(
    new URL(S.ISSUER),
    CLIENT_ID,
    { id_token_signed_response_alg: ID_TOKEN_ALG },
    client.None(),
    insecureForLoopback,
  );
  // openid-client verifies ID token signatures only when asked (non-repudiation): ask.
  client.enableNonRepudiationChecks(config);
  if (fetch) config[client.customFetch] = fetch;
  return config;
}

/** The resource server (API) that introspects, authenticating with client_secret_basic. */
async function apiConfig() {
  return client.discovery(
    new URL(S.ISSUER),
    S.API_CLIENT_ID,
    S.API_SECRET,
    client.ClientSecretBasic(S.API_SECRET),
    insecureForLoopback,
  );
}

/** Builds the authorization request with the library and plays the browser's part. */
async function authorize(config, { decision } = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: S.REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });
  const redirect = await S.signInAndDecide(url, { decision });
  return { url, redirect, checks: { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true } };
}

async function signIn(config) {
  const a = await authorize(config);
  const tokens = await client.authorizationCodeGrant(config, a.redirect, a.checks);
  return { ...a, tokens };
}

async function introspect(token) {
  return client.tokenIntrospection(await apiConfig(), token);
}

test('discovery: the issuer matches and RFC 9207 iss and PKCE S256 are advertised', async () => {
  const config = await appConfig();
  const md = config.serverMetadata();
  assert.equal(md.issuer, S.ISSUER); // the library checked this too (RFC 8414 §3.3)
  assert.equal(md.authorization_response_iss_parameter_supported, true);
  assert.ok(md.supportsPKCE('S256'));
  assert.ok(md.response_types_supported.includes('code'));
  assert.ok(md.id_token_signing_alg_values_supported.includes(ID_TOKEN_ALG));
  for (const e of ['authorization', 'token', 'revocation', 'introspection', 'userinfo']) {
    assert.ok(md[`${e}_endpoint`].startsWith(`${S.ISSUER}/`), `${e}_endpoint under the issuer`);
  }
  assert.ok(md.jwks_uri.startsWith(`${S.ISSUER}/`));
});

test('authorization code + PKCE S256: iss, state and the ID token pass the library', async () => {
  const config = await appConfig();
  const { url, redirect, tokens, checks } = await signIn(config);

  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(`${redirect.origin}${redirect.pathname}`, S.REDIRECT_URI);
  assert.equal(redirect.searchParams.get('iss'), S.ISSUER, 'RFC 9207 iss on the response');

  assert.equal(tokens.token_type, 'bearer'); // normalised by the library
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token);
  assert.ok(tokens.expiresIn() > 0);
  assert.deepEqual(tokens.scope.split(' ').sort(), SCOPE.split(' ').sort());

  const claims = tokens.claims(); // validated: signature (JWKS), iss, aud, azp, exp, iat, nonce
  assert.equal(claims.iss, S.ISSUER);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.azp, CLIENT_ID);
  assert.equal(claims.sub, S.USER_SUB);
  assert.equal(claims.nonce, checks.expectedNonce);
  assert.equal(typeof claims.auth_time, 'number');
  assert.ok(claims.exp > claims.iat);
  const header = S.jwsHeader(tokens.id_token);
  assert.equal(header.alg, ID_TOKEN_ALG);
  assert.ok(header.kid, 'kid names the signing key');
  // OIDC Core §3.1.3.8: not checked by the library for the code flow, so checked here.
  assert.equal(claims.at_hash, S.atHash(tokens.access_token, header.alg));
});

test('userinfo: the library checks sub against the ID token', async () => {
  const config = await appConfig();
  const { tokens } = await signIn(config);
  const sub = tokens.claims().sub;
  const info = await client.fetchUserInfo(config, tokens.access_token, sub);
  assert.equal(info.sub, S.USER_SUB);
  assert.equal(info.email, S.USER_EMAIL);
  assert.equal(info.email_verified, false);
  assert.equal(info.name, S.USER_NAME);
  assert.equal(info.preferred_username, S.USERNAME);
  // The subject check is real: a different expected subject is refused.
  const err = await S.rejection(() => client.fetchUserInfo(config, tokens.access_token, 'someone-else'));
  assert.match(err.cause?.message ?? err.message, /"sub"/);
});

test('refresh: the token rotates; a rotated-out token replayed after its successor was used revokes the grant', async () => {
  const config = await appConfig();
  const { tokens } = await signIn(config);
  const rt1 = tokens.refresh_token;

  const second = await client.refreshTokenGrant(config, rt1);
  assert.ok(second.access_token);
  assert.notEqual(second.access_token, tokens.access_token);
  assert.ok(second.refresh_token, 'a new refresh token');
  assert.notEqual(second.refresh_token, rt1, 'rotated');
  assert.equal(second.id_token, undefined, 'no ID token on refresh (OIDC Core §12.2)');

  const third = await client.refreshTokenGrant(config, second.refresh_token);
  assert.notEqual(third.refresh_token, second.refresh_token);

  // rt1 was rotated out and its successor used: presenting it again is a reuse (RFC 9700
  // §4.14.2). The server answers invalid_grant, which the library surfaces as is.
  let err = await S.rejection(() => client.refreshTokenGrant(config, rt1));
  assert.ok(err instanceof client.ResponseBodyError, String(err));
  assert.equal(err.error, 'invalid_grant');
  assert.equal(err.status, 400);
  // ... and the whole grant is gone: the newest refresh and access tokens too.
  err = await S.rejection(() => client.refreshTokenGrant(config, third.refresh_token));
  assert.equal(err.error, 'invalid_grant');
  assert.equal((await introspect(third.access_token)).active, false);
});

test('introspection by the resource server, then revocation makes the tokens inactive', async () => {
  const config = await appConfig();
  const { tokens } = await signIn(config);

  const info = await introspect(tokens.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, CLIENT_ID);
  assert.equal(info.sub, S.USER_SUB);
  assert.equal(info.username, S.USERNAME);
  assert.equal(info.iss, S.ISSUER);
  assert.equal(info.token_type.toLowerCase(), 'bearer'); // RFC 6749 §7.1: case-insensitive
  assert.deepEqual(info.scope.split(' ').sort(), SCOPE.split(' ').sort());
  assert.ok(info.exp > info.iat);
  assert.equal((await introspect(tokens.refresh_token)).active, true);

  // RFC 7009: revoking the refresh token takes its grant (and access token) with it.
  await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.deepEqual(await introspect(tokens.refresh_token), { active: false });
  assert.deepEqual(await introspect(tokens.access_token), { active: false });
  const err = await S.rejection(() => client.refreshTokenGrant(config, tokens.refresh_token));
  assert.equal(err.error, 'invalid_grant');
  // Revoking again (or an unknown token) is still a success (RFC 7009 §2.2).
  await client.tokenRevocation(config, tokens.refresh_token);
  await client.tokenRevocation(config, 'not-a-token');
});

test('RFC 9207: a response with iss stripped or changed is refused; the untouched one is accepted', async () => {
  const config = await appConfig();
  const { redirect, checks } = await authorize(config);

  let err = await S.rejection(() => client.authorizationCodeGrant(config, S.tamper(redirect, 'iss', null), checks));
  assert.equal(err.code, 'OAUTH_INVALID_RESPONSE');
  assert.equal(err.cause.message, 'response parameter "iss" (issuer) missing');

  for (const wrong of ['https://attacker.example', S.ISSUER.replace('localhost', '127.0.0.1'), `${S.ISSUER}/`]) {
    err = await S.rejection(() => client.authorizationCodeGrant(config, S.tamper(redirect, 'iss', wrong), checks));
    assert.equal(err.code, 'OAUTH_INVALID_RESPONSE', wrong);
    assert.equal(err.cause.message, 'unexpected "iss" (issuer) response parameter value', wrong);
  }
  // The refusals happened before the code was spent: the genuine response still works.
  const tokens = await client.authorizationCodeGrant(config, redirect, checks);
  assert.equal(tokens.claims().nonce, checks.expectedNonce);
});

test('RFC 9207: an error response (consent denied) carries iss too', async () => {
  const config = await appConfig();
  const { redirect, checks } = await authorize(config, { decision: 'deny' });
  assert.equal(redirect.searchParams.get('error'), 'access_denied');
  assert.equal(redirect.searchParams.get('iss'), S.ISSUER);
  assert.equal(redirect.searchParams.get('state'), checks.expectedState);

  let err = await S.rejection(() => client.authorizationCodeGrant(config, redirect, checks));
  assert.ok(err instanceof client.AuthorizationResponseError, String(err));
  assert.equal(err.error, 'access_denied');
  // The iss check comes first: without iss the same error response is refused as forged.
  err = await S.rejection(() => client.authorizationCodeGrant(config, S.tamper(redirect, 'iss', null), checks));
  assert.equal(err.cause?.message, 'response parameter "iss" (issuer) missing');
});

test('ID token checks are live: a corrupted signature or a different nonce is refused', async () => {
  // A fetch that corrupts the ID token's signature in the token response.
  const corrupting = async (url, options) => {
    const response = await fetch(url, options);
    if (!String(url).endsWith('/o/oauth2/token') || !response.ok) return response;
    const body = await response.json();
    if (body.id_token) body.id_token = S.corruptSignature(body.id_token);
    return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
  };
  let config = await appConfig({ fetch: corrupting });
  let a = await authorize(config);
  let err = await S.rejection(() => client.authorizationCodeGrant(config, a.redirect, a.checks));
  assert.equal(err.code, 'OAUTH_INVALID_RESPONSE', String(err));
  assert.equal(err.cause?.message, 'JWT signature verification failed');

  config = await appConfig();
  a = await authorize(config);
  err = await S.rejection(() =>
    client.authorizationCodeGrant(config, a.redirect, { ...a.checks, expectedNonce: client.randomNonce() }),
  );
  assert.equal(err.code, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
  assert.match(err.cause.message, /nonce/);
});
