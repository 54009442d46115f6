// oauthd as seen by oauth4webapi 3, the low-level, spec-strict OAuth 2 / OIDC library (each
// request and each response check is a separate call): RFC 8414/OIDC discovery, the
// authorization response with RFC 9207 iss, code exchange with PKCE S256, the ID token
// (signature against the JWKS, alg as registered (ES256), iss, aud, azp, nonce), userinfo,
// refresh rotation, introspection (client_secret_post), revocation, and RFC 9068 JWT access
// tokens checked as a resource server would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import * as S from './support.mjs';

const CLIENT_ID = S.env('INTEROP_CLIENT_OAUTH4WEBAPI');
const ID_TOKEN_ALG = 'ES256'; // as registered by run.sh
// "ALG=CLIENT_ID ..." : clients whose access tokens are RFC 9068 JWTs signed with ALG.
const JWT_CLIENTS = S.env('INTEROP_CLIENTS_OAUTH4WEBAPI_JWT')
  .split(' ')
  .map((pair) => pair.split('='));
const SCOPE = 'openid profile email';

// http is allowed for the loopback test server only.
S.assertLoopback(S.ISSUER);
const http = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(S.ISSUER);

const app = (client_id = CLIENT_ID, alg = ID_TOKEN_ALG) => ({ client_id, id_token_signed_response_alg: alg });
const publicClient = oauth.None();
const apiClient = { client_id: S.API_CLIENT_ID };
const apiAuth = oauth.ClientSecretPost(S.API_SECRET);

let cached;
async function discover() {
  if (!cached) {
    const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...http });
    cached = await oauth.processDiscoveryResponse(issuer, response);
  }
  return cached;
}

async function authorize(as, client, { decision } = {}) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: S.REDIRECT_URI,
    response_type: 'code',
    scope: SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const redirect = await S.signInAndDecide(url, { decision });
  return { redirect, codeVerifier, state, nonce };
}

/** validateAuthResponse (iss, state, error), the code exchange, and every ID token check. */
async function exchange(as, client, a, redirect = a.redirect) {
  const params = oauth.validateAuthResponse(as, client, redirect, a.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, publicClient, params, S.REDIRECT_URI, a.codeVerifier, http,
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: a.nonce,
    requireIdToken: true,
  });
  // The ID token's signature, against the keys at jwks_uri.
  await oauth.validateApplicationLevelSignature(as, response, http);
  return { result, claims: oauth.getValidatedIdTokenClaims(result) };
}

async function signIn(client = app()) {
  const as = await discover();
  const a = await authorize(as, client);
  return { as, a, ...(await exchange(as, client, a)) };
}

async function refresh(as, client, refreshToken) {
  const response = await oauth.refreshTokenGrantRequest(as, client, publicClient, refreshToken, http);
  return oauth.processRefreshTokenResponse(as, client, response);
}

async function introspect(as, token) {
  const response = await oauth.introspectionRequest(as, apiClient, apiAuth, token, http);
  return oauth.processIntrospectionResponse(as, apiClient, response);
}

test('discovery: processDiscoveryResponse accepts the document; iss and S256 advertised', async () => {
  const as = await discover();
  assert.equal(as.issuer, S.ISSUER);
  assert.equal(as.authorization_response_iss_parameter_supported, true);
  assert.ok(as.code_challenge_methods_supported.includes('S256'));
  assert.ok(as.token_endpoint_auth_methods_supported.includes('none'));
  assert.ok(as.introspection_endpoint_auth_methods_supported.includes('client_secret_post'));
  assert.ok(as.id_token_signing_alg_values_supported.includes(ID_TOKEN_ALG));
  // The RFC 8414 document is the same one, and passes the same checks.
  const rfc8414 = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...http }),
  );
  assert.deepEqual({ ...rfc8414 }, { ...as });
});

test('authorization code + PKCE S256: iss, state, token response and ES256 ID token pass', async () => {
  const { a, result, claims } = await signIn();
  assert.equal(a.redirect.searchParams.get('iss'), S.ISSUER);
  assert.equal(result.token_type, 'bearer');
  assert.ok(result.access_token);
  assert.ok(result.refresh_token);
  assert.ok(result.expires_in > 0);
  assert.deepEqual(result.scope.split(' ').sort(), SCOPE.split(' ').sort());

  assert.equal(claims.iss, S.ISSUER);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.azp, CLIENT_ID);
  assert.equal(claims.sub, S.USER_SUB);
  assert.equal(claims.nonce, a.nonce);
  assert.equal(typeof claims.auth_time, 'number');
  const header = S.jwsHeader(result.id_token);
  assert.equal(header.alg, ID_TOKEN_ALG);
  assert.equal(claims.at_hash, S.atHash(result.access_token, header.alg));
});

test('RFC 9207: validateAuthResponse refuses a missing or different iss, then takes the real one', async () => {
  const as = await discover();
  const client = app();
  const a = await authorize(as, client);

  let err = await S.rejection(() => oauth.validateAuthResponse(as, client, S.tamper(a.redirect, 'iss', null), a.state));
  assert.ok(err instanceof oauth.OperationProcessingError, String(err));
  assert.equal(err.code, oauth.INVALID_RESPONSE);
  assert.equal(err.message, 'response parameter "iss" (issuer) missing');
  for (const wrong of ['https://attacker.example', S.ISSUER.replace('localhost', '127.0.0.1'), `${S.ISSUER}/`]) {
    err = await S.rejection(() => oauth.validateAuthResponse(as, client, S.tamper(a.redirect, 'iss', wrong), a.state));
    assert.equal(err.code, oauth.INVALID_RESPONSE, wrong);
    assert.equal(err.message, 'unexpected "iss" (issuer) response parameter value', wrong);
  }
  // And the state check is live too.
  err = await S.rejection(() => oauth.validateAuthResponse(as, client, S.tamper(a.redirect, 'state', 'forged'), a.state));
  assert.equal(err.message, 'unexpected "state" response parameter value');

  const { claims } = await exchange(as, client, a);
  assert.equal(claims.nonce, a.nonce);
});

test('RFC 9207: the access_denied error response carries iss and state', async () => {
  const as = await discover();
  const client = app();
  const a = await authorize(as, client, { decision: 'deny' });
  let err = await S.rejection(() => oauth.validateAuthResponse(as, client, a.redirect, a.state));
  assert.ok(err instanceof oauth.AuthorizationResponseError, String(err));
  assert.equal(err.error, 'access_denied');
  err = await S.rejection(() => oauth.validateAuthResponse(as, client, S.tamper(a.redirect, 'iss', null), a.state));
  assert.equal(err.message, 'response parameter "iss" (issuer) missing');
});

test('the ID token must be signed with the registered alg, by a key in the JWKS', async () => {
  const as = await discover();
  // Expecting RS256 from a client registered for ES256: the library refuses the token.
  let client = app(CLIENT_ID, 'RS256');
  let a = await authorize(as, client);
  let err = await S.rejection(() => exchange(as, client, a));
  assert.equal(err.message, 'unexpected JWT "alg" header parameter');

  // A corrupted signature fails validateApplicationLevelSignature.
  client = app();
  a = await authorize(as, client);
  const params = oauth.validateAuthResponse(as, client, a.redirect, a.state);
  const real = await oauth.authorizationCodeGrantRequest(
    as, client, publicClient, params, S.REDIRECT_URI, a.codeVerifier, http,
  );
  const body = await real.json();
  body.id_token = S.corruptSignature(body.id_token);
  const forged = new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  await oauth.processAuthorizationCodeResponse(as, client, forged, { expectedNonce: a.nonce });
  err = await S.rejection(() => oauth.validateApplicationLevelSignature(as, forged, http));
  assert.equal(err.code, oauth.INVALID_RESPONSE, String(err));
  assert.equal(err.message, 'JWT signature verification failed');
});

test('userinfo: processUserInfoResponse with the ID token subject', async () => {
  const { as, result, claims } = await signIn();
  const client = app();
  const response = await oauth.userInfoRequest(as, client, result.access_token, http);
  const info = await oauth.processUserInfoResponse(as, client, claims.sub, response);
  assert.equal(info.sub, S.USER_SUB);
  assert.equal(info.email, S.USER_EMAIL);
  assert.equal(info.email_verified, false);
  assert.equal(info.name, S.USER_NAME);
  assert.equal(info.preferred_username, S.USERNAME);
});

test('refresh: rotation, then reuse of a rotated-out token revokes the grant', async () => {
  const { as, result: first } = await signIn();
  const client = app();
  const second = await refresh(as, client, first.refresh_token);
  assert.notEqual(second.refresh_token, first.refresh_token);
  assert.notEqual(second.access_token, first.access_token);
  assert.equal(second.id_token, undefined);
  const third = await refresh(as, client, second.refresh_token);
  assert.notEqual(third.refresh_token, second.refresh_token);

  let err = await S.rejection(() => refresh(as, client, first.refresh_token));
  assert.ok(err instanceof oauth.ResponseBodyError, String(err));
  assert.equal(err.error, 'invalid_grant');
  err = await S.rejection(() => refresh(as, client, third.refresh_token));
  assert.equal(err.error, 'invalid_grant');
  assert.deepEqual(await introspect(as, third.access_token), { active: false });
});

test('introspection (client_secret_post) and revocation of the access token, then the refresh token', async () => {
  const { as, result } = await signIn();
  const client = app();
  const info = await introspect(as, result.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, CLIENT_ID);
  assert.equal(info.sub, S.USER_SUB);
  assert.equal(info.iss, S.ISSUER);
  assert.equal(info.token_type.toLowerCase(), 'bearer'); // RFC 6749 §7.1: case-insensitive

  // Revoking the access token leaves the grant: the refresh token still works.
  let response = await oauth.revocationRequest(as, client, publicClient, result.access_token, {
    additionalParameters: { token_type_hint: 'access_token' },
    ...http,
  });
  await oauth.processRevocationResponse(response);
  assert.deepEqual(await introspect(as, result.access_token), { active: false });
  assert.equal((await introspect(as, result.refresh_token)).active, true);
  const next = await refresh(as, client, result.refresh_token);

  // Revoking the refresh token ends the grant.
  response = await oauth.revocationRequest(as, client, publicClient, next.refresh_token, http);
  await oauth.processRevocationResponse(response);
  assert.deepEqual(await introspect(as, next.refresh_token), { active: false });
  assert.deepEqual(await introspect(as, next.access_token), { active: false });

  // Wrong API credentials: invalid_client, surfaced by the library.
  const bad = await oauth.introspectionRequest(as, apiClient, oauth.ClientSecretPost('wrong'), next.access_token, http);
  const err = await S.rejection(() => oauth.processIntrospectionResponse(as, apiClient, bad));
  assert.equal(err.error, 'invalid_client');
});

for (const [alg, clientId] of JWT_CLIENTS) {
  test(`RFC 9068: a ${alg} JWT access token passes validateJwtAccessToken at the API`, async () => {
    const client = app(clientId, 'RS256');
    const { as, result } = await signIn(client);
    const header = S.jwsHeader(result.access_token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, alg);
    const request = (token) =>
      new Request('http://127.0.0.1/api/photos', { headers: { authorization: `Bearer ${token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request(result.access_token), S.API_CLIENT_ID, http);
    assert.equal(claims.iss, S.ISSUER);
    assert.equal(claims.aud, S.API_CLIENT_ID);
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.sub, S.USER_SUB);
    assert.deepEqual(claims.scope.split(' ').sort(), SCOPE.split(' ').sort());
    // Another API, or a corrupted signature, is refused.
    let err = await S.rejection(() => oauth.validateJwtAccessToken(as, request(result.access_token), 'another-api', http));
    assert.match(err.message, /"aud"/);
    err = await S.rejection(() =>
      oauth.validateJwtAccessToken(as, request(S.corruptSignature(result.access_token)), S.API_CLIENT_ID, http),
    );
    assert.equal(err.message, 'JWT signature verification failed');
  });
}
