// Shared helpers for the browser tests: configuration from run.sh, the browser, PKCE,
// authorize URLs, the simulated app's callback, and a test wrapper that gives every test a
// fresh browser context (and a screenshot of the page when it fails).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through browser/run.sh`);
  return v;
}

export const env = {
  base: required('OAUTHD_URL'), // http://127.0.0.1:PORT, what the browser talks to
  issuer: required('OAUTHD_ISSUER'), // what `iss` must say
  clientA: required('OAUTHD_CLIENT_A'),
  nameA: required('OAUTHD_CLIENT_A_NAME'),
  clientB: required('OAUTHD_CLIENT_B'),
  nameB: required('OAUTHD_CLIENT_B_NAME'),
  clientHostile: required('OAUTHD_CLIENT_HOSTILE'),
  nameHostile: required('OAUTHD_CLIENT_HOSTILE_NAME'),
  username: required('OAUTHD_USERNAME'),
  password: required('OAUTHD_PASSWORD'),
  screenshots: required('OAUTHD_SCREENSHOT_DIR'),
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
};

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launch() {
  return chromium.launch({ executablePath: env.chromium, headless: true, args: CHROMIUM_ARGS });
}

/** RFC 7636 S256: a 43-character verifier and BASE64URL(SHA256(verifier)). */
export function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier, 'ascii').digest('base64url');
  return { verifier, challenge };
}

/**
 * The app's side of a loopback redirect (RFC 8252 §7.3): a tiny HTTP server on a random
 * 127.0.0.1 port that records every `/callback` URL it receives and answers with a small
 * page. (Playwright's request routing does not see the hops of a redirect, and a redirect to
 * a closed port leaves the tab on Chromium's error page, so a real listener is the one
 * dependable way to catch the final redirect.)
 */
async function startApp() {
  const received = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (req.method === 'GET' && url.pathname === '/callback') {
      received.push(url);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!DOCTYPE html><title>The app</title><h1 id="app-callback">Back in the app</h1>');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function authorizeUrl({ clientId, redirectUri, state, challenge, scope = 'profile', extra = {} }) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${env.base}/o/oauth2/authorize?${q}`;
}

/** Redeem a code at the token endpoint from Node, as the app would. */
export async function exchange({ clientId, redirectUri, code, verifier }) {
  const res = await fetch(`${env.base}/o/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: clientId,
      redirect_uri: redirectUri,
      code,
      code_verifier: verifier,
    }),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON: the assertion below shows the text */
  }
  return { status: res.status, json, text };
}

/**
 * One browser context with the simulated app (see startApp): every callback URL the app
 * received is in `callbacks`. Also records dialogs (alert/confirm/prompt), console errors,
 * and any request that leaves 127.0.0.1 (there should be none). Nothing is intercepted, so
 * the browser's cache and history behave as they do for a person.
 */
export async function newFlow(browser, contextOptions = {}) {
  const app = await startApp();
  const context = await browser.newContext(contextOptions);
  context.setDefaultTimeout(20_000);
  context.setDefaultNavigationTimeout(20_000);
  const port = app.port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const callbacks = app.received;
  const offsite = [];
  context.on('request', (r) => {
    const url = new URL(r.url());
    if (url.protocol.startsWith('http') && url.hostname !== '127.0.0.1') offsite.push(r.url());
  });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  const flow = {
    context,
    page,
    port,
    redirectUri,
    callbacks,
    offsite,
    dialogs,
    consoleErrors,
    /** Wait until the app has received `n` callbacks in all and shows its page; the n-th. */
    async callback(n = 1, timeout = 20_000) {
      const until = Date.now() + timeout;
      while (callbacks.length < n) {
        if (Date.now() > until) {
          throw new Error(`the app received ${callbacks.length} callback(s), expected ${n}; page is ${page.url()}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      // The tab has arrived at the app (the callback page is shown), not just sent there.
      await page.locator('#app-callback').waitFor();
      return callbacks[n - 1];
    },
    /** Start an authorization request for `clientId`; returns its state and verifier. */
    async authorize(clientId, opts = {}) {
      const { verifier, challenge } = pkce();
      const state = opts.state ?? `st-${crypto.randomBytes(9).toString('base64url')}`;
      const url = authorizeUrl({ clientId, redirectUri, state, challenge, ...opts });
      const response = await page.goto(url);
      return { state, verifier, challenge, url, response };
    },
    async close() {
      await context.close().catch(() => {});
      await app.close();
    },
  };
  return flow;
}

/** Fill and submit the login form; resolves with the POST /login response. */
export async function login(page, username = env.username, password = env.password) {
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  const posted = page.waitForResponse((r) => isPost(r, '/login'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  const response = await posted;
  await page.waitForLoadState('load');
  return response;
}

/** Click Allow or Deny on the consent page; resolves with the POST /consent response. */
export async function decide(page, decision) {
  const posted = page.waitForResponse((r) => isPost(r, '/consent'));
  await page.locator(`button[name="decision"][value="${decision}"]`).click();
  const response = await posted;
  await page.waitForLoadState('load');
  return response;
}

export function isPost(response, pathname) {
  const req = response.request();
  return req.method() === 'POST' && new URL(req.url()).pathname === pathname;
}

export function pathOf(page) {
  return new URL(page.url()).pathname;
}

/** The callback carries a code for this request: state and iss as sent (RFC 9207). */
export function assertCodeCallback(cb, state) {
  assert.ok(cb, 'the app received a callback');
  const q = cb.searchParams;
  assert.equal(q.get('error'), null, `no error in the callback: ${cb}`);
  assert.match(q.get('code') ?? '', /^.{16,}$/, `a code in the callback: ${cb}`);
  assert.equal(q.get('state'), state, 'state comes back unchanged');
  assert.equal(q.get('iss'), env.issuer, 'iss is the issuer (RFC 9207)');
  return q.get('code');
}

export function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
}

export function screenshotPath(name) {
  fs.mkdirSync(env.screenshots, { recursive: true });
  return path.join(env.screenshots, name);
}

/**
 * A test with its own browser context. `getBrowser` returns the browser launched by the
 * file's `before`. On failure the page is saved to `<screenshots>/failures/<test>.png` and
 * its URL and visible text are added to the error.
 */
export function flowTest(name, getBrowser, fn, contextOptions = {}) {
  test(name, { timeout: 90_000 }, async (t) => {
    const flow = await newFlow(getBrowser(), contextOptions);
    try {
      await fn(flow, t);
      assert.deepEqual(flow.offsite, [], 'the pages load nothing from outside the server');
    } catch (err) {
      let where = '';
      try {
        const file = screenshotPath(path.join('failures', `${slug(name)}.png`));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        await flow.page.screenshot({ path: file, fullPage: true });
        const text = (await flow.page.locator('body').innerText({ timeout: 2000 })).slice(0, 600);
        where = `\n  page: ${flow.page.url()}\n  screenshot: ${file}\n  text: ${JSON.stringify(text)}`;
      } catch {
        /* the page may be gone */
      }
      if (where && err && typeof err.message === 'string') err.message += where;
      throw err;
    } finally {
      await flow.close();
    }
  });
}
