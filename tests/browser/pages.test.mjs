// Browser tests of the pages around the dashboard (issue 13, trap 7): a reload after a create form
// makes nothing twice and shows no secret again, errors are pages (never JSON) in the user's language,
// sign-in lands on the dashboard, and a sign-in for an app names the app.
//
// Started by tests/browser/run.sh (see dashboard.test.mjs for the environment it passes).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

const BASE = requiredEnv('TESSERA_URL').replace(/\/+$/, '');
const ADMIN_EMAIL = requiredEnv('ADMIN_EMAIL');
const ADMIN_PASSWORD = requiredEnv('ADMIN_PASSWORD');
const SCREENSHOT_DIR = requiredEnv('SCREENSHOT_DIR');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const TEST_TIMEOUT = 120_000;
const ACTION_TIMEOUT = 10_000;
const RUN = randomBytes(3).toString('hex');
// The redirect URI of the app registered here; nothing is ever sent to it (the flow stops at consent).
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests with bash tests/browser/run.sh`);
  }
  return value;
}

let browser;

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * A test with a fresh browser context (`locale` sets Accept-Language). Fails on any uncaught page error
 * or CSP violation; a failing test leaves failed-pages-<name>.png.
 */
function browserTest(name, fn, { locale = 'en-US' } = {}) {
  test(name, { timeout: TEST_TIMEOUT }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale });
    context.setDefaultTimeout(ACTION_TIMEOUT);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT * 2);
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) {
        problems.push(`CSP violation on ${page.url()}: ${msg.text()}`);
      }
    });
    try {
      await fn({ t, page, context });
      assert.deepEqual(problems, [], `the page reported problems:\n${problems.join('\n')}`);
    } catch (e) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
      await page
        .screenshot({ path: path.join(SCREENSHOT_DIR, `failed-pages-${slug}.png`), fullPage: true })
        .catch(() => {});
      throw e;
    } finally {
      await context.close();
    }
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

async function bodyText(page) {
  return (await page.locator('body').innerText({ timeout: 2_000 }).catch(() => '')).replace(/\s+/g, ' ').trim();
}

async function goto(page, pathOrUrl, status = 200) {
  const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${BASE}${pathOrUrl}`;
  const response = await page.goto(url);
  assert.ok(response, `GET ${pathOrUrl}: no response`);
  assert.equal(
    response.status(),
    status,
    `GET ${pathOrUrl}: HTTP ${response.status()} at ${page.url()}\n  page text: ${(await bodyText(page)).slice(0, 300)}`,
  );
  return response;
}

async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return response;
}

async function fillSignIn(page) {
  await page.locator('#email').waitFor({ state: 'visible' });
  await page.fill('#email', ADMIN_EMAIL);
  await page.fill('#password', ADMIN_PASSWORD);
  const response = await submit(page, 'form[action="/login"] button[type="submit"]');
  assert.equal(await page.locator('#login-error').count(), 0, `signing in failed: ${await bodyText(page)}`);
  return response;
}

async function signIn(page) {
  await goto(page, '/login');
  return fillSignIn(page);
}

// ---------------------------------------------------------------------------------------------------

browserTest('pages: sign-in lands on the dashboard', async ({ page }) => {
  const response = await signIn(page);
  assert.equal(response.status(), 200, `the page after signing in answered ${response.status()}`);
  const url = new URL(page.url());
  assert.ok(url.pathname.startsWith('/dashboard/'), `signed in, the browser is at ${page.url()}, not the dashboard`);
  await page.locator('nav[aria-label="Dashboard"]').waitFor({ state: 'visible' });
  assert.equal((await page.locator('#signed-in-as').textContent()).trim().startsWith(ADMIN_EMAIL), true);
  // The site's root is the dashboard too, once signed in.
  await goto(page, '/');
  assert.ok(new URL(page.url()).pathname.startsWith('/dashboard/'), `/ led to ${page.url()}`);
  await shot(page, 'pages-signed-in');
});

browserTest('pages: a reload after creating a key creates no second key and no longer shows it', async ({ page }) => {
  await signIn(page);
  await goto(page, '/dashboard/keys/new');
  const name = `Reload key ${RUN}`;
  await page.fill('#name', name);
  await page.selectOption('#type', 'rk');
  await page.selectOption('#env', 'test');
  await page.fill('#scopes', 'read');
  const response = await submit(page, '#submit');
  assert.equal(response.status(), 200, `creating the key led to HTTP ${response.status()} at ${page.url()}`);
  const createdUrl = new URL(page.url());
  assert.match(createdUrl.pathname, /^\/dashboard\/keys\/[^/]+\/created$/, `after the POST the browser is at ${page.url()}`);
  const key = ((await page.locator('#api-key').textContent()) ?? '').trim();
  assert.ok(key.startsWith('rk_test_'), `the key shown once: "${key.slice(0, 12)}…"`);
  assert.ok(!page.url().includes(key), 'the key is never in the URL');
  await shot(page, 'pages-key-created');

  // Reload: a GET again (no form resubmitted), and the key is gone.
  const reloaded = await page.reload();
  assert.equal(reloaded.status(), 200, `the reload answered ${reloaded.status()}`);
  assert.equal(await page.locator('#api-key').count(), 0, 'the key is shown again after a reload');
  assert.ok(!(await page.content()).includes(key), 'the key is still somewhere on the reloaded page');
  const notice = (await page.locator('.notice').textContent()) ?? '';
  assert.match(notice, /shown once/, `the reloaded page says why: "${notice}"`);
  await shot(page, 'pages-key-reloaded');

  // Back to the page after the POST: still no key, still one key in the list.
  await goto(page, createdUrl.pathname);
  assert.equal(await page.locator('#api-key').count(), 0, 'the key is shown on a second visit');
  await goto(page, '/dashboard/keys');
  const rows = await page.locator('tr[data-key-id]', { hasText: name }).count();
  assert.equal(rows, 1, `${rows} keys named "${name}" after a reload (one expected)`);
});

browserTest('pages: an unknown dashboard page is a 404 page with the request id', async ({ page }) => {
  await signIn(page);
  const response = await goto(page, '/dashboard/nope', 404);
  assert.match(response.headers()['content-type'] ?? '', /^text\/html/);
  assert.equal((await page.locator('#error-title').textContent()).trim(), 'Page not found');
  const shownId = ((await page.locator('#request-id').textContent()) ?? '').trim();
  assert.equal(shownId, response.headers()['x-request-id'], 'the page shows the request id of its response');
  await page.locator('#error-home').waitFor({ state: 'visible' });
  await shot(page, 'pages-404');
});

browserTest(
  'pages: error pages speak the browser language',
  async ({ page }) => {
    const response = await goto(page, '/dashboard/nope', 404);
    assert.equal(await page.getAttribute('html', 'lang'), 'es-ES');
    assert.equal((await page.locator('#error-title').textContent()).trim(), 'Página no encontrada');
    assert.equal(((await page.locator('#request-id').textContent()) ?? '').trim(), response.headers()['x-request-id']);
    await shot(page, 'pages-404-es');
  },
  { locale: 'es-ES' },
);

browserTest('pages: sign-in from an authorization request names the app', async ({ page, context }) => {
  // Register a public app through the dashboard.
  await signIn(page);
  await goto(page, '/dashboard/apps/new');
  const name = `Pages <app> ${RUN}`;
  await page.fill('#name', name);
  await page.check('#type-public');
  await page.check('#grant-authorization_code');
  await page.check('#scope-read');
  await page.fill('#redirect_uris', REDIRECT_URI);
  await submit(page, '#submit');
  const clientId = ((await page.locator('#client-id').textContent()) ?? '').trim();
  assert.ok(clientId, `no client id after registering: ${await bodyText(page)}`);

  // Signed out, the app sends the browser to authorize.
  await context.clearCookies();
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${BASE}/oauth/authorize`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', REDIRECT_URI);
  url.searchParams.set('scope', 'read');
  url.searchParams.set('state', randomBytes(8).toString('hex'));
  url.searchParams.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
  url.searchParams.set('code_challenge_method', 'S256');
  await goto(page, url.toString());
  assert.equal(new URL(page.url()).pathname, '/login', `the authorize request led to ${page.url()}`);
  const continueTo = ((await page.locator('#continue-to').textContent()) ?? '').trim();
  assert.equal(continueTo, `Sign in to continue to ${name}`, 'the sign-in page names the app (as text, escaped)');
  await shot(page, 'pages-sign-in-for-app');

  // Signing in goes on to the consent page for that app.
  await fillSignIn(page);
  assert.equal(new URL(page.url()).pathname, '/oauth/authorize', `after signing in the browser is at ${page.url()}`);
  const consentName = ((await page.locator('#client-name').textContent()) ?? '').trim();
  assert.ok(consentName.includes(name), `the consent page names "${consentName}"`);
});
