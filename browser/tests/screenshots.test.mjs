// Screenshots of the login, consent and error pages at phone and desktop sizes, written to
// OAUTHD_SCREENSHOT_DIR for a person to look at, with the layout checks a script can make:
// no sideways scrolling, nothing sticking out of the card, full-width buttons and
// finger-sized controls on a phone.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { decide, env, flowTest, launch, login, pathOf, screenshotPath } from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});
const getBrowser = () => browser;

const SIZES = [
  {
    name: 'phone',
    phone: true,
    context: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  },
  { name: 'desktop', phone: false, context: { viewport: { width: 1280, height: 800 } } },
  {
    name: 'phone-dark',
    phone: true,
    context: {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: 'dark',
    },
  },
];

/** What a script can see of an untidy page, as a list of sentences (empty: tidy). */
function layoutProblems(page, phone) {
  return page.evaluate((phone) => {
    const problems = [];
    const px = (n) => Math.round(n);
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth) {
      problems.push(`the page scrolls sideways: ${doc.scrollWidth}px wide in a ${window.innerWidth}px window`);
    }
    const card = document.querySelector('main.card');
    if (!card) return ['no main.card on the page'];
    const c = card.getBoundingClientRect();
    if (c.left < 0 || c.right > window.innerWidth) problems.push(`the card (${px(c.left)}..${px(c.right)}) is wider than the window`);
    const outside = (r) => r.width > 0 && (r.left < c.left - 0.5 || r.right > c.right + 0.5);
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.nodeType === Node.TEXT_NODE) {
        if (!n.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(n);
        if (outside(range.getBoundingClientRect())) {
          problems.push(`text sticks out of the card: ${JSON.stringify(n.textContent.trim().slice(0, 60))}`);
        }
        continue;
      }
      if (n.type === 'hidden') continue;
      const tag = n.tagName.toLowerCase();
      if (outside(n.getBoundingClientRect())) problems.push(`<${tag}> sticks out of the card`);
      const style = getComputedStyle(n);
      if (style.overflowX !== 'visible' && n.scrollWidth > n.clientWidth + 1) problems.push(`<${tag}> cuts off its content`);
      if (style.textOverflow === 'ellipsis' && n.scrollWidth > n.clientWidth) problems.push(`<${tag}> is truncated`);
    }
    if (phone) {
      for (const b of card.querySelectorAll('button, .btn')) {
        const form = b.closest('form') ?? card;
        const inner = form.getBoundingClientRect().width;
        const w = b.getBoundingClientRect().width;
        if (w < inner - 1) problems.push(`button "${b.textContent.trim()}" is ${px(w)}px wide, not the full ${px(inner)}px`);
      }
      for (const el of card.querySelectorAll('button, input:not([type="hidden"])')) {
        const h = el.getBoundingClientRect().height;
        if (h < 44) problems.push(`<${el.tagName.toLowerCase()} ${el.name || ''}> is ${px(h)}px tall, under 44px for a finger`);
      }
    }
    return problems;
  }, phone);
}

async function shoot(page, file, phone) {
  await page.evaluate(() => document.fonts.ready);
  const problems = await layoutProblems(page, phone);
  const out = screenshotPath(file);
  await page.screenshot({ path: out, fullPage: true });
  assert.deepEqual(problems, [], `${file} is untidy`);
}

for (const size of SIZES) {
  flowTest(
    `screenshots at ${size.name} size: login, login with an error, consent, error page`,
    getBrowser,
    async (flow) => {
      const { page } = flow;
      await flow.authorize(env.clientA);
      assert.equal(pathOf(page), '/login');
      // The stylesheet loaded (CSP allows 'self' styles): the card has its border radius.
      assert.equal(await page.locator('main.card').evaluate((e) => getComputedStyle(e).borderTopLeftRadius), '12px');
      await shoot(page, `login-${size.name}.png`, size.phone);

      const wrong = await login(page, 'nobody-here', 'not the password');
      assert.equal(wrong.status(), 401);
      await page.getByRole('alert').waitFor();
      await page.locator('#password').blur();
      await shoot(page, `login-error-${size.name}.png`, size.phone);

      const ok = await login(page);
      assert.equal(ok.status(), 303);
      assert.equal(pathOf(page), '/consent');
      await shoot(page, `consent-${size.name}.png`, size.phone);
      await decide(page, 'deny');
      await flow.callback(1);

      const { response } = await flow.authorize('no-such-client');
      assert.equal(response.status(), 400, 'an unknown client gets an error page');
      await page.getByRole('heading', { name: 'This sign-in link is not valid' }).waitFor();
      assert.equal(flow.callbacks.length, 1, 'an unknown client is never redirected to');
      await shoot(page, `error-${size.name}.png`, size.phone);
    },
    size.context,
  );
}
