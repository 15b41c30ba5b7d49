// Browser tests of the OpenID Connect pages (issue 15): the consent page names the identity scopes
// (openid, profile, email) with what they let an app know, and /account lets a user edit the profile
// claims apps see, in the browser's language.
//
// Started by tests/browser/run.sh (see dashboard.test.mjs for the environment it passes; this file uses
// TESSERA_URL, TESSERA_BIN, ADMIN_EMAIL, ADMIN_PASSWORD, SCREENSHOT_DIR, and BROWSER_CLIENT_FROM_CLI=1
// like the OAuth scenarios there). Screenshots go to SCREENSHOT_DIR as <name>.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';

import { chromium } from 'playwright-core';

const BASE = requiredEnv('TESSERA_URL').replace(/\/+$/, '');
const ADMIN_EMAIL = requiredEnv('ADMIN_EMAIL');
const ADMIN_PASSWORD = requiredEnv('ADMIN_PASSWORD');
const SCREENSHOT_DIR = requiredEnv('SCREENSHOT_DIR');
const TESSERA_BIN = requiredEnv('TESSERA_BIN');
const CLIENT_FROM_CLI = process.env.BROWSER_CLIENT_FROM_CLI === '1';
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const TEST_TIMEOUT = 120_000;
const ACTION_TIMEOUT = 10_000;
const RUN = randomBytes(3).toString('hex');

/** The scopes of OpenID Connect and the descriptions the consent page gives them. */
const IDENTITY_SCOPES = [
  ['openid', 'Know who you are (your account id)'],
  ['profile', 'See your profile: name, username, picture and language'],
  ['email', 'See your email address'],
];

/**
 * The user whose profile the account scenarios edit: their own, made with the CLI, so that the
 * administrator the other files sign in as keeps an empty profile.
 */
const ACCOUNT_EMAIL = `openid-${RUN}@example.com`;
const ACCOUNT_PASSWORD = 'correct horse battery staple';
const PROFILE = {
  name: 'Ana Pérez',
  given_name: 'Ana',
  family_name: 'Pérez',
  preferred_username: 'ana',
  locale: 'es-ES',
  picture: 'https://img.example/ana.png',
};

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests with bash tests/browser/run.sh`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Shared state

let browser;
let callback; // { server, uri, hits }
let accountUserMade = false;

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  callback = await startCallbackServer();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (callback ? callback.server.close(resolve) : resolve()));
});

/** The redirect URI: a tiny HTTP server on 127.0.0.1 whose /callback answers 200 "ok". */
function startCallbackServer() {
  const hits = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/callback') {
      hits.push(req.url);
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end('ok');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ server, hits, uri: `http://127.0.0.1:${port}/callback` });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Helpers

/**
 * A test with a fresh browser context (`locale` sets Accept-Language). Fails on any uncaught page error
 * or Content Security Policy violation; a failing test leaves failed-openid-<name>.png.
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
        .screenshot({ path: path.join(SCREENSHOT_DIR, `failed-${slug}.png`), fullPage: true })
        .catch(() => {});
      if (problems.length && !String(e.message).includes('reported problems')) {
        e.message += `\n(the page also reported: ${problems.join('; ')})`;
      }
      throw e;
    } finally {
      await context.close();
    }
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

async function bodyExcerpt(page, limit = 300) {
  const text = await page
    .locator('body')
    .innerText({ timeout: 2_000 })
    .catch(() => '');
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > limit ? `${flat.slice(0, limit)}…` : flat;
}

async function expectStatus(page, response, expected, what) {
  assert.ok(response, `${what}: the browser got no response`);
  const status = response.status();
  if (status !== expected) {
    assert.fail(`${what}: expected HTTP ${expected}, got ${status} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`);
  }
}

async function goto(page, pathOrUrl, { status = 200, what } = {}) {
  const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${BASE}${pathOrUrl}`;
  const response = await page.goto(url);
  await expectStatus(page, response, status, what ?? `GET ${pathOrUrl}`);
  return response;
}

/** Clicks a control that submits a form and returns the response of the page it leads to (after redirects). */
async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return response;
}

async function expectVisible(page, selector, what) {
  try {
    await page.locator(selector).first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
  } catch {
    assert.fail(`${what}: no visible ${selector} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`);
  }
}

async function textOf(page, selector, what) {
  await expectVisible(page, selector, what);
  return ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

/** Fills the sign-in form of the page the browser is on and submits it; returns the response after redirects. */
async function fillSignIn(page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await expectVisible(page, '#email', 'the sign-in page');
  await page.fill('#email', email);
  await page.fill('#password', password);
  const response = await submit(page, 'form[action="/login"] button[type="submit"]');
  const error = page.locator('#login-error');
  if (await error.count()) {
    assert.fail(`signing in as ${email} failed: ${(await error.innerText()).trim()}`);
  }
  assert.notEqual(new URL(page.url()).pathname, '/login', `still on the sign-in page after signing in: ${page.url()}`);
  return response;
}

async function signIn(page, email, password) {
  await goto(page, '/login');
  return fillSignIn(page, email, password);
}

/** Runs the CLI against the suite's server (same database and settings: run.sh exports them). */
function cli(args, input) {
  try {
    return execFileSync(TESSERA_BIN, args, {
      input,
      encoding: 'utf8',
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    assert.fail(`tessera ${args.slice(0, 2).join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** The account scenarios' user, made once with `tessera user create`. */
function accountUser() {
  if (!accountUserMade) {
    cli(['user', 'create', '--email', ACCOUNT_EMAIL, '--password-stdin'], ACCOUNT_PASSWORD);
    accountUserMade = true;
  }
  return { email: ACCOUNT_EMAIL, password: ACCOUNT_PASSWORD };
}

/**
 * A public app asking for the identity scopes, made the way dashboard.test.mjs makes the app of its
 * OAuth scenarios: on /dashboard/apps/new as the administrator, or with BROWSER_CLIENT_FROM_CLI=1 by
 * `tessera client create`.
 */
async function identityApp(page) {
  const name = `OpenID app ${RUN}`;
  if (CLIENT_FROM_CLI) {
    const out = cli([
      'client', 'create', '--name', name, '--public', '--redirect-uri', callback.uri,
      '--grant-type', 'authorization_code',
      '--scope', 'openid', '--scope', 'profile', '--scope', 'email', '--json',
    ]);
    const made = JSON.parse(out);
    assert.ok(made.client_id, `tessera client create printed ${out}`);
    return { clientId: made.client_id, name };
  }
  await signIn(page);
  await goto(page, '/dashboard/apps/new');
  await page.fill('#name', name);
  await page.check('#type-public');
  await page.check('#grant-authorization_code');
  // The form starts with `read` checked; this app asks only for who the user is.
  await page.uncheck('#scope-read');
  for (const [scope] of IDENTITY_SCOPES) await page.check(`#scope-${scope}`);
  await page.fill('#redirect_uris', callback.uri);
  const response = await submit(page, '#submit');
  assert.ok(
    response && response.status() < 300,
    `registering the app answered HTTP ${response?.status()} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`,
  );
  const clientId = await textOf(page, '#client-id', 'the app-created page');
  assert.ok(clientId.length > 0, 'an empty #client-id');
  assert.equal(await page.locator('#client-secret').count(), 0, 'a public app was shown a client secret');
  return { clientId, name };
}

/** What the app puts in its authorization request: PKCE S256 of a random verifier, a nonce and a state. */
function openidRequest(client, scope) {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const url = new URL(`${BASE}/oauth/authorize`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.clientId);
  url.searchParams.set('redirect_uri', callback.uri);
  url.searchParams.set('scope', scope);
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
  url.searchParams.set('code_challenge_method', 'S256');
  return { url: url.toString(), state, nonce, verifier };
}

/** Waits until the browser is on the redirect URI and returns its query parameters. */
async function callbackParams(page) {
  try {
    await page.waitForURL(/\/callback\?/, { timeout: ACTION_TIMEOUT });
  } catch {
    assert.fail(`the browser did not reach the redirect URI; it is at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`);
  }
  return new URL(page.url()).searchParams;
}

/** The values of the profile form's inputs. */
async function profileInputs(page) {
  const out = {};
  for (const field of Object.keys(PROFILE)) out[field] = await page.inputValue(`#profile-form #${field}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 1. Consent for the identity scopes

browserTest('openid: consent shows the identity scopes', async ({ page, context }) => {
  const client = await identityApp(page);

  // Signed out, the app sends the browser to authorize; the user signs in on the way.
  await context.clearCookies();
  const request = openidRequest(client, 'openid profile email');
  await goto(page, request.url, { what: 'GET /oauth/authorize (signed out)' });
  assert.equal(new URL(page.url()).pathname, '/login', `a signed-out authorize request led to ${page.url()}`);
  await fillSignIn(page);
  assert.equal(new URL(page.url()).pathname, '/oauth/authorize', `after signing in the browser is at ${page.url()}`);

  const name = await textOf(page, '#client-name', 'the consent page');
  assert.ok(name.includes(client.name), `the consent page names "${name}", not the app "${client.name}"`);
  const items = await page
    .locator('ul.scopes li')
    .evaluateAll((lis) => lis.map((li) => li.textContent.replace(/\s+/g, ' ').trim()));
  assert.deepEqual(
    [...items].sort(),
    IDENTITY_SCOPES.map(([scope, description]) => `${scope}: ${description}`).sort(),
    'the consent page lists the three identity scopes with their descriptions (and nothing else)',
  );
  for (const [scope] of IDENTITY_SCOPES) {
    const strong = page.locator('ul.scopes li strong', { hasText: new RegExp(`^${scope}$`) });
    assert.equal(await strong.count(), 1, `the scope name "${scope}" is not one <strong> of the list`);
  }
  await expectVisible(page, '#allow', 'the consent page');
  await expectVisible(page, '#deny', 'the consent page');
  await shot(page, 'consent-identity');

  await page.click('#allow');
  const params = await callbackParams(page);
  const error = params.get('error');
  assert.equal(error, null, `the authorization server answered error=${error}: ${params.get('error_description')}`);
  assert.ok(params.get('code'), `no code on the callback ${page.url()}`);
  assert.equal(params.get('state'), request.state, 'the callback state is not the one sent');
  assert.equal(params.get('iss'), BASE, 'the callback iss (RFC 9207) is not the issuer');
  assert.ok(
    callback.hits.some((hit) => new URL(hit, 'http://127.0.0.1').searchParams.get('state') === request.state),
    'the redirect URI server never saw the callback',
  );
});

// ---------------------------------------------------------------------------------------------------
// 2. /account: the profile claims

browserTest('openid: the account page edits the profile', async ({ page }) => {
  const user = accountUser();
  await signIn(page, user.email, user.password);
  await goto(page, '/account');
  const email = await textOf(page, '#account-email', 'GET /account');
  assert.equal(email, user.email, '#account-email is not the signed-in user');
  await expectVisible(page, '#profile-form', 'GET /account');
  assert.equal(await page.locator('#profile-saved').count(), 0, '#profile-saved before anything was saved');

  for (const [field, value] of Object.entries(PROFILE)) await page.fill(`#profile-form #${field}`, value);
  const saved = await submit(page, '#profile-form button[type="submit"]');
  await expectStatus(page, saved, 200, 'saving the profile');
  assert.equal(new URL(page.url()).pathname, '/account', `after saving the browser is at ${page.url()}`);
  await expectVisible(page, '#profile-saved', 'the account page after saving');
  assert.equal(await page.locator('#profile-error').count(), 0, `#profile-error after a good save: ${await bodyExcerpt(page)}`);
  await shot(page, 'account');

  // A reload is a GET (the form is not sent again) and shows what was saved.
  const reloaded = await page.reload();
  await expectStatus(page, reloaded, 200, 'reloading /account');
  assert.deepEqual(await profileInputs(page), PROFILE, 'the profile form after a reload');

  // An http picture is refused: the page says why, keeps what was typed, and saves nothing.
  const bad = 'http://img.example/ana.png';
  await page.fill('#profile-form #picture', bad);
  const refused = await submit(page, '#profile-form button[type="submit"]');
  await expectStatus(page, refused, 400, 'saving an http picture URL');
  const error = await textOf(page, '#profile-error', 'the account page after an http picture URL');
  assert.match(error, /picture/, `#profile-error does not name the picture: "${error}"`);
  assert.match(error, /https/, `#profile-error does not say the picture must be https: "${error}"`);
  assert.equal(await page.locator('#profile-saved').count(), 0, '#profile-saved next to #profile-error');
  assert.equal(await page.inputValue('#profile-form #picture'), bad, 'the refused form lost what was typed');
  await shot(page, 'account-error');

  await goto(page, '/account');
  assert.equal(await page.locator('#profile-error').count(), 0, '#profile-error on a fresh GET /account');
  assert.deepEqual(await profileInputs(page), PROFILE, 'the profile after the refused save (the old values are kept)');
});

browserTest(
  'openid: the account page speaks the browser language',
  async ({ page }) => {
    const user = accountUser();
    await signIn(page, user.email, user.password);
    await goto(page, '/account');
    assert.equal(await page.getAttribute('html', 'lang'), 'es-ES');
    assert.equal(await textOf(page, 'h1', 'GET /account in Spanish'), 'Su cuenta');
    assert.equal(await textOf(page, '#account-email', 'GET /account in Spanish'), user.email);
    await shot(page, 'account-es');
  },
  { locale: 'es-ES' },
);
