// The browser flows: login, consent, single sign-on, logout, CSRF, the back button, escaping
// and a wrong password, each in a fresh browser context against the real server.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  assertCodeCallback,
  decide,
  env,
  exchange,
  flowTest,
  launch,
  login,
  newFlow,
  pathOf,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});
const getBrowser = () => browser;

/** Authorize, sign in and land on the consent page of `clientId`. */
async function toConsent(flow, clientId) {
  const req = await flow.authorize(clientId);
  assert.equal(pathOf(flow.page), '/login', 'a new browser is asked to sign in');
  const posted = await login(flow.page);
  assert.equal(posted.status(), 303, 'a good login answers 303');
  assert.equal(pathOf(flow.page), '/consent', 'after signing in: the consent page');
  return req;
}

/** Sign in, approve and redeem the code for `clientId`. */
async function approveAndRedeem(flow, clientId, n = 1) {
  const req = await toConsent(flow, clientId);
  await decide(flow.page, 'approve');
  const code = assertCodeCallback(await flow.callback(n), req.state);
  const token = await exchange({ clientId, redirectUri: flow.redirectUri, code, verifier: req.verifier });
  assert.equal(token.status, 200, `the code redeems: ${token.text}`);
  return { req, code };
}

async function cookieNames(context) {
  return (await context.cookies(env.base)).map((c) => c.name);
}

flowTest('login, then Allow: the app gets code, state and iss, and the code redeems', getBrowser, async (flow) => {
  const { page } = flow;
  const req = await flow.authorize(env.clientA);
  assert.equal(pathOf(page), '/login');
  await assert.doesNotReject(page.getByRole('heading', { name: 'Sign in' }).waitFor());
  assert.equal(await page.locator('p.sub strong').textContent(), env.nameA, 'the login page names the app');

  const posted = await login(page);
  assert.equal(posted.status(), 303);
  assert.equal(pathOf(page), '/consent');
  assert.equal(await page.locator('h1 strong').textContent(), env.nameA, 'the consent page names the app');
  await page.getByText(`Signed in as ${env.username}`).waitFor();
  await page.locator('ul.scopes code', { hasText: 'profile' }).waitFor();
  await page.locator('p.redirect code', { hasText: flow.redirectUri }).waitFor();
  const allow = page.locator('button[name="decision"][value="approve"]');
  assert.equal((await allow.textContent()).trim(), 'Allow');

  await decide(page, 'approve');
  const cb = await flow.callback(1);
  assert.equal(cb.origin + cb.pathname, flow.redirectUri, 'sent to the registered loopback redirect, same port');
  const code = assertCodeCallback(cb, req.state);
  await page.locator('#app-callback').waitFor();

  const token = await exchange({ clientId: env.clientA, redirectUri: flow.redirectUri, code, verifier: req.verifier });
  assert.equal(token.status, 200, `token response: ${token.text}`);
  assert.equal(token.json.token_type, 'Bearer');
  assert.ok(token.json.access_token, 'an access token');
  assert.ok(token.json.refresh_token, 'a refresh token');
  assert.equal(token.json.scope ?? 'profile', 'profile');

  const again = await exchange({ clientId: env.clientA, redirectUri: flow.redirectUri, code, verifier: req.verifier });
  assert.equal(again.status, 400, 'a code redeems once');
  assert.equal(again.json?.error, 'invalid_grant');
  assert.deepEqual(flow.dialogs, []);
});

flowTest('Deny: the app gets error=access_denied with state and iss, and no code', getBrowser, async (flow) => {
  const req = await toConsent(flow, env.clientA);
  await decide(flow.page, 'deny');
  const q = (await flow.callback(1)).searchParams;
  assert.equal(q.get('error'), 'access_denied');
  assert.equal(q.get('code'), null, 'no code');
  assert.equal(q.get('state'), req.state);
  assert.equal(q.get('iss'), env.issuer);
  assert.equal(flow.callbacks.length, 1);
});

flowTest('single sign-on: a second app in the same browser goes straight to consent', getBrowser, async (flow) => {
  const { page } = flow;
  await approveAndRedeem(flow, env.clientA, 1);

  const visited = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest()) visited.push(new URL(r.url()).pathname);
  });
  const req = await flow.authorize(env.clientB);
  assert.equal(pathOf(page), '/consent', 'no login page for the second app');
  assert.ok(!visited.includes('/login'), `never sent to /login: ${visited.join(' → ')}`);
  assert.equal(await page.locator('h1 strong').textContent(), env.nameB);
  await page.getByText(`Signed in as ${env.username}`).waitFor();

  await decide(page, 'approve');
  const code = assertCodeCallback(await flow.callback(2), req.state);
  const token = await exchange({ clientId: env.clientB, redirectUri: flow.redirectUri, code, verifier: req.verifier });
  assert.equal(token.status, 200, `the second app's code redeems: ${token.text}`);
});

flowTest('logout: GET /logout shows a form, Sign out ends the session, the next request asks to sign in', getBrowser, async (flow) => {
  const { page, context } = flow;
  await approveAndRedeem(flow, env.clientA, 1);
  assert.ok((await cookieNames(context)).includes('oauthd_session'), 'signed in: a session cookie');

  const shown = await page.goto(`${env.base}/logout`);
  assert.equal(shown.status(), 200);
  await page.getByRole('heading', { name: 'Sign out of oauthd?' }).waitFor();
  await page.getByText(`Signed in as ${env.username}`).waitFor();
  assert.ok((await cookieNames(context)).includes('oauthd_session'), 'a GET does not sign out');

  const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/logout');
  await page.getByRole('button', { name: 'Sign out' }).click();
  assert.equal((await posted).status(), 303);
  await page.getByRole('heading', { name: 'Signed out' }).waitFor();
  assert.ok(!(await cookieNames(context)).includes('oauthd_session'), 'the session cookie is gone');

  await flow.authorize(env.clientA);
  assert.equal(pathOf(page), '/login', 'the next authorization asks to sign in again');
  await page.locator('#password').waitFor();
  assert.equal(flow.callbacks.length, 1, 'no code without signing in');
});

flowTest('a forged CSRF token on the login form is refused: 403, no session, no redirect', getBrowser, async (flow) => {
  const { page, context } = flow;
  // A real token, but for another browser: what a cross-site attacker could have.
  const other = await newFlow(browser);
  let foreign;
  try {
    await other.page.goto(`${env.base}/login`);
    foreign = await other.page.locator('input[name="csrf"]').inputValue();
  } finally {
    await other.close();
  }
  await flow.authorize(env.clientA);
  assert.equal(pathOf(page), '/login');
  const own = await page.locator('input[name="csrf"]').inputValue();
  assert.ok(own && foreign && own !== foreign, 'each browser has its own token');
  await page.evaluate((t) => {
    document.querySelector('input[name="csrf"]').value = t;
  }, foreign);

  const posted = await login(page);
  assert.equal(posted.status(), 403);
  await page.getByRole('heading', { name: 'This form has expired' }).waitFor();
  assert.ok(!(await cookieNames(context)).includes('oauthd_session'), 'no session was created');
  assert.equal(flow.callbacks.length, 0, 'nothing sent to the app');
});

flowTest('a forged CSRF token on the consent form is refused: 403, no redirect; the request stays answerable', getBrowser, async (flow) => {
  const { page } = flow;
  const req = await toConsent(flow, env.clientA);
  const consentUrl = page.url();
  await page.evaluate(() => {
    const input = document.querySelector('input[name="csrf"]');
    const last = input.value.slice(-1);
    input.value = input.value.slice(0, -1) + (last === 'A' ? 'B' : 'A');
  });
  const posted = await decide(page, 'approve');
  assert.equal(posted.status(), 403);
  await page.getByRole('heading', { name: 'This form has expired' }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(flow.callbacks.length, 0, 'no redirect to the app');

  // The refused post did not use up the request: reloading the consent page works.
  await page.goto(consentUrl);
  assert.equal(pathOf(page), '/consent');
  await decide(page, 'approve');
  assertCodeCallback(await flow.callback(1), req.state);
});

flowTest(
  'the back button after Allow does not mint a second code',
  getBrowser,
  async (flow, t) => {
    const { page } = flow;
    const req = await toConsent(flow, env.clientA);
    await decide(page, 'approve');
    const code = assertCodeCallback(await flow.callback(1), req.state);

    await page.goBack();
    assert.equal(pathOf(page), '/consent', 'back on the consent page');
    const allow = page.locator('button[name="decision"][value="approve"]');
    if (await allow.count()) {
      // The browser showed the page from its cache: the stale form is still there.
      t.diagnostic('back button: the consent form came back from the browser cache; pressing Allow again');
      const posted = await decide(page, 'approve');
      assert.equal(posted.status(), 400, 'the second Allow is refused');
    } else {
      t.diagnostic('back button: the consent page was reloaded from the server');
    }
    await page.getByRole('heading', { name: 'This request was already answered' }).waitFor();
    await page.waitForTimeout(300);
    assert.equal(flow.callbacks.length, 1, 'no second redirect to the app');

    const token = await exchange({ clientId: env.clientA, redirectUri: flow.redirectUri, code, verifier: req.verifier });
    assert.equal(token.status, 200, `the one code still redeems: ${token.text}`);
  },
);

flowTest('a stale consent form in a second tab cannot mint a second code', getBrowser, async (flow) => {
  const { page, context } = flow;
  const req = await toConsent(flow, env.clientA);
  const consentUrl = page.url();
  const second = await context.newPage();
  await second.goto(consentUrl);
  assert.equal(pathOf(second), '/consent', 'the same request open in a second tab');

  await decide(page, 'approve');
  const code = assertCodeCallback(await flow.callback(1), req.state);

  const posted = await decide(second, 'approve');
  assert.equal(posted.status(), 400, 'the stale form is refused');
  await second.getByRole('heading', { name: 'This request was already answered' }).waitFor();
  await second.waitForTimeout(300);
  assert.equal(flow.callbacks.length, 1, 'no second redirect to the app');

  const reloaded = await second.goto(consentUrl);
  assert.equal(reloaded.status(), 400, 'the answered request cannot be shown again');
  await second.getByRole('heading', { name: 'This request was already answered' }).waitFor();
  assert.equal(flow.callbacks.length, 1, 'still one callback');

  const token = await exchange({ clientId: env.clientA, redirectUri: flow.redirectUri, code, verifier: req.verifier });
  assert.equal(token.status, 200, `the one code redeems: ${token.text}`);
});

flowTest('a hostile application name is shown as text on the login and consent pages', getBrowser, async (flow) => {
  const { page } = flow;
  const consentHtml = page.waitForResponse(
    (r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/consent',
  );
  const req = await flow.authorize(env.clientHostile);
  assert.equal(pathOf(page), '/login');
  assert.equal(await page.locator('p.sub strong').textContent(), env.nameHostile, 'login page: the name, literally');
  assert.equal(await page.locator('script').count(), 0, 'login page: no script element');

  await login(page);
  assert.equal(pathOf(page), '/consent');
  assert.equal(await page.locator('h1 strong').textContent(), env.nameHostile, 'consent page: the name, literally');
  assert.ok((await page.title()).includes(env.nameHostile), `the title shows the name literally: ${await page.title()}`);
  assert.equal(await page.locator('script').count(), 0, 'consent page: no script element');
  const html = await (await consentHtml).text();
  assert.ok(!html.includes('<script'), 'the raw HTML has no <script');
  assert.ok(!html.includes(env.nameHostile), 'the raw HTML does not hold the name unescaped');
  assert.match(html, /(&lt;|&#60;|&#x3c;)script(&gt;|&#62;|&#x3e;)alert\(1\)/i, 'the name is HTML-escaped in the raw HTML');

  await decide(page, 'deny');
  assert.equal((await flow.callback(1)).searchParams.get('state'), req.state);
  assert.deepEqual(flow.dialogs, [], 'no dialog was opened');
  assert.deepEqual(
    flow.consoleErrors.filter((e) => /Content Security Policy|script/i.test(e)),
    [],
    'no script was even attempted',
  );
});

flowTest('a wrong password shows the error and stays on the login page; the right one then continues', getBrowser, async (flow) => {
  const { page, context } = flow;
  const req = await flow.authorize(env.clientA);
  const posted = await login(page, env.username, 'not the password');
  assert.equal(posted.status(), 401);
  assert.equal(pathOf(page), '/login', 'still on the login page');
  const alert = page.getByRole('alert');
  assert.equal((await alert.textContent()).trim(), 'The username or password is incorrect.');
  assert.equal(await page.locator('#username').inputValue(), env.username, 'the username is kept');
  assert.equal(await page.locator('#password').inputValue(), '', 'the password is not echoed back');
  assert.ok(!(await cookieNames(context)).includes('oauthd_session'), 'no session');
  assert.equal(flow.callbacks.length, 0);

  const ok = await login(page);
  assert.equal(ok.status(), 303);
  assert.equal(pathOf(page), '/consent', 'the same request continues after a good password');
  assert.equal(await page.locator('h1 strong').textContent(), env.nameA);
  await decide(page, 'approve');
  assertCodeCallback(await flow.callback(1), req.state);
});
