// Shared by the JS interop suites: the environment run.sh exports, a browser that signs in
// and approves on oauthd's own pages, and the few checks no library does for us.
import { createHash } from 'node:crypto';

/** A variable run.sh must have exported; a missing one is an error, never a skip. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suites through interop/run.sh`);
  }
  return value;
}

export const ISSUER = env('INTEROP_ISSUER');
export const REDIRECT_URI = env('INTEROP_REDIRECT_URI');
export const USERNAME = env('INTEROP_USERNAME');
export const PASSWORD = env('INTEROP_PASSWORD');
export const USER_SUB = env('INTEROP_USER_SUB');
export const USER_EMAIL = env('INTEROP_USER_EMAIL');
export const USER_NAME = env('INTEROP_USER_NAME');
export const API_CLIENT_ID = env('INTEROP_API_CLIENT_ID');
export const API_SECRET = env('INTEROP_API_SECRET');

/**
 * The libraries refuse plain http unless told otherwise. That permission is only ever given
 * for a loopback server: anything else is a setup error.
 */
export function assertLoopback(url) {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'https:') return;
  if (!['localhost', '127.0.0.1', '[::1]'].includes(hostname)) {
    throw new Error(`refusing to allow insecure http for a non-loopback server: ${url}`);
  }
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (m, e) => {
    const k = e.toLowerCase();
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[k];
  });
}

/** The value of the `<input name=NAME>` in a page, whatever the attribute order. */
export function hiddenInput(html, name) {
  for (const tag of html.match(/<input\b[^>]*>/gi) ?? []) {
    const attrs = Object.fromEntries(
      [...tag.matchAll(/([a-z-]+)\s*=\s*"([^"]*)"/gi)].map(([, k, v]) => [k.toLowerCase(), decodeEntities(v)]),
    );
    if (attrs.name === name && attrs.value !== undefined) return attrs.value;
  }
  throw new Error(`no <input name="${name}"> in the page:\n${html.slice(0, 2000)}`);
}

/**
 * A user agent that follows no redirects by itself and keeps cookies per host name, as a
 * browser does (enough of RFC 6265 for oauthd's session cookies: name=value, Max-Age/Expires
 * deletions; Path is always "/").
 */
export class Browser {
  #jar = new Map();

  async fetch(url, init = {}) {
    url = new URL(url);
    const headers = new Headers(init.headers);
    const cookies = this.#jar.get(url.hostname);
    if (cookies?.size) {
      headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      const expired = attributes.some((a) => {
        const [k, v = ''] = a.split('=');
        return (
          (k.toLowerCase() === 'max-age' && Number(v) <= 0) ||
          (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now())
        );
      });
      if (!this.#jar.has(url.hostname)) this.#jar.set(url.hostname, new Map());
      if (expired) this.#jar.get(url.hostname).delete(name);
      else this.#jar.get(url.hostname).set(name, value);
    }
    return response;
  }
}

async function expectStatus(response, status, step) {
  if (response.status !== status) {
    const body = await response.text().catch(() => '');
    throw new Error(`${step}: expected HTTP ${status}, got ${response.status}: ${body.slice(0, 2000)}`);
  }
  return response;
}

function location(response, base) {
  const value = response.headers.get('location');
  if (!value) throw new Error(`no Location header on ${response.url}`);
  return new URL(value, base);
}

/**
 * What a person does in a browser: open the authorization URL the library built, sign in on
 * oauthd's login page, then press Allow (or Deny) on its consent page. Returns the URL the
 * server finally redirects to (the client's redirect URI with code/error, state and iss),
 * without following it.
 */
export async function signInAndDecide(
  authorizationUrl,
  { decision = 'approve', username = USERNAME, password = PASSWORD, browser = new Browser() } = {},
) {
  let url = new URL(authorizationUrl);
  let r = await expectStatus(await browser.fetch(url), 303, 'GET authorize');
  const login = location(r, url);
  if (login.pathname !== '/login') throw new Error(`authorize sent the browser to ${login}, not /login`);

  r = await expectStatus(await browser.fetch(login), 200, 'GET /login');
  let html = await r.text();
  url = new URL('/login', login);
  r = await browser.fetch(url, {
    method: 'POST',
    body: new URLSearchParams({
      csrf: hiddenInput(html, 'csrf'),
      pending: hiddenInput(html, 'pending'),
      username,
      password,
    }),
  });
  await expectStatus(r, 303, 'POST /login');
  const consent = location(r, url);
  if (consent.pathname !== '/consent') throw new Error(`login sent the browser to ${consent}, not /consent`);

  r = await expectStatus(await browser.fetch(consent), 200, 'GET /consent');
  html = await r.text();
  url = new URL('/consent', consent);
  r = await browser.fetch(url, {
    method: 'POST',
    body: new URLSearchParams({
      csrf: hiddenInput(html, 'csrf'),
      pending: hiddenInput(html, 'pending'),
      decision,
    }),
  });
  await expectStatus(r, 303, 'POST /consent');
  return location(r, url);
}

/** The same redirect with one query parameter replaced (value given) or removed (null). */
export function tamper(redirect, name, value) {
  const url = new URL(redirect);
  if (value === null) url.searchParams.delete(name);
  else url.searchParams.set(name, value);
  return url;
}

/** OIDC Core §3.1.3.6: the left half of the hash of the access token, base64url. */
export function atHash(accessToken, alg) {
  const bits = { RS256: 256, ES256: 256, PS256: 256, EdDSA: 512, RS384: 384, ES384: 384, RS512: 512, ES512: 512 }[alg];
  if (!bits) throw new Error(`no at_hash hash for ${alg}`);
  const digest = createHash(`sha${bits}`).update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** The protected header of a compact JWS, unverified (only to read `alg`/`kid`/`typ`). */
export function jwsHeader(jws) {
  return JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString('utf8'));
}

/** A compact JWS with its signature altered (one bit of its first byte flipped). */
export function corruptSignature(jws) {
  const [h, p, s] = jws.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[0] ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/**
 * Runs `fn`, which must throw; returns the error. Libraries' messages are asserted by the
 * callers, so a failure for the wrong reason still fails the test.
 */
export async function rejection(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the library to reject this, but it accepted it');
}
