// Browser tests of Tessera's pages: sign-in, the dashboard (apps, API keys, the other admin pages) and the
// OAuth authorization code flow with PKCE, driven in Debian's Chromium by playwright-core.
//
// Started by tests/browser/run.sh, which runs a throwaway server and passes:
//   TESSERA_URL     the server's base URL (also its issuer), e.g. http://127.0.0.1:40123
//   TESSERA_BIN     target/debug/tessera, for BROWSER_CLIENT_FROM_CLI
//   ADMIN_EMAIL, ADMIN_PASSWORD   an administrator made with `tessera user create --admin`
//   SCREENSHOT_DIR  where <name>.png goes (every step takes a full-page screenshot)
// Optional:
//   BROWSER_CLIENT_FROM_CLI=1  the OAuth scenarios (c, d) use a client made by `tessera client create`
//                              instead of the one registered on /dashboard/apps/new (scenario b)
//   CHROMIUM_PATH              default /usr/bin/chromium
//
// The tests run in order and share a few results (the registered app, the API key): a test that needs
// one that an earlier test could not make fails saying which scenario to look at.

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
const TESSERA_BIN = process.env.TESSERA_BIN || '';
const CLIENT_FROM_CLI = process.env.BROWSER_CLIENT_FROM_CLI === '1';
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const TEST_TIMEOUT = 120_000;
const ACTION_TIMEOUT = 10_000;
const RUN = randomBytes(3).toString('hex');

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

/** What earlier scenarios made, for later ones. */
const shared = {
  dashboardApp: null, // { clientId, clientSecret, name, pagePath }
  dashboardAppError: null,
  cliClient: null,
  apiKey: null, // { key, id }
  apiKeyRevoked: false,
};

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
 * A test with a fresh browser context and page. Fails on any uncaught page error or Content Security
 * Policy violation (Tessera's pages may not use inline scripts or styles). When the test fails, the page
 * as it was is saved as failed-<name>.png next to the other screenshots.
 */
function browserTest(name, fn, { viewport } = {}) {
  test(name, { timeout: TEST_TIMEOUT }, async (t) => {
    const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 800 } });
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

/** Asserts a navigation's HTTP status, saying which page and what it showed when it is not the one expected. */
async function expectStatus(page, response, expected, what) {
  assert.ok(response, `${what}: the browser got no response`);
  const status = response.status();
  if (status !== expected) {
    const hint =
      status === 404 ? ' (the page does not exist yet?)' : status === 403 ? ' (not allowed: signed in as admin?)' : '';
    assert.fail(
      `${what}: expected HTTP ${expected}, got ${status}${hint} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`,
    );
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

/** Waits for an element, failing with a message that names it and what the page showed instead. */
async function expectVisible(page, selector, what) {
  try {
    await page.locator(selector).first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
  } catch {
    assert.fail(`${what}: no visible ${selector} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`);
  }
}

/** The text of an element (its textContent, so that CSS cannot change what a secret reads as). */
async function textOf(page, selector, what) {
  await expectVisible(page, selector, what);
  return ((await page.locator(selector).first().textContent()) ?? '').trim();
}

/** A dashboard page: HTTP 200, an h1 and the dashboard navigation. */
async function visitDashboard(page, pagePath, screenshot) {
  await goto(page, pagePath);
  await expectVisible(page, 'h1', `GET ${pagePath}`);
  await expectVisible(page, 'nav[aria-label="Dashboard"]', `GET ${pagePath} (the dashboard navigation)`);
  if (screenshot) await shot(page, screenshot);
}

/** Fills the sign-in form of the page the browser is on and submits it; returns the response after redirects. */
async function fillSignIn(page) {
  await expectVisible(page, '#email', 'the sign-in page');
  await page.fill('#email', ADMIN_EMAIL);
  await page.fill('#password', ADMIN_PASSWORD);
  const response = await submit(page, 'form[action="/login"] button[type="submit"]');
  const error = page.locator('#login-error');
  if (await error.count()) {
    assert.fail(`signing in as ${ADMIN_EMAIL} failed: ${(await error.innerText()).trim()}`);
  }
  assert.notEqual(new URL(page.url()).pathname, '/login', `still on the sign-in page after signing in: ${page.url()}`);
  return response;
}

async function signIn(page) {
  await goto(page, '/login');
  return fillSignIn(page);
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** A small test client: the authorize URL with a fresh state and PKCE pair. */
function authorizeRequest(client, { scope = 'read offline_access', prompt } = {}) {
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const url = new URL(`${BASE}/oauth/authorize`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.clientId);
  url.searchParams.set('redirect_uri', callback.uri);
  url.searchParams.set('scope', scope);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  if (prompt) url.searchParams.set('prompt', prompt);
  return { url: url.toString(), state, verifier };
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

function basicAuth(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** Exchanges the code at /oauth/token, authenticating the client with HTTP Basic. */
async function exchangeCode(client, code, verifier) {
  const res = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: 'application/json',
      Authorization: basicAuth(client.clientId, client.clientSecret),
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: callback.uri,
      code_verifier: verifier,
    }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST /oauth/token answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

function decodeJwtPart(part, what) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (e) {
    assert.fail(`the access token's ${what} is not base64url JSON: ${e.message}`);
  }
}

function assertTokens(tokens, { refresh }) {
  assert.equal(typeof tokens.access_token, 'string', `no access_token in ${JSON.stringify(tokens)}`);
  const parts = tokens.access_token.split('.');
  assert.equal(parts.length, 3, 'the access token is not a JWT (three dot-separated parts)');
  assert.ok(parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p)), 'a part of the access token is not base64url');
  const header = decodeJwtPart(parts[0], 'header');
  const claims = decodeJwtPart(parts[1], 'payload');
  assert.ok(header.alg && header.alg !== 'none', `the access token's alg is ${header.alg}`);
  assert.equal(claims.iss, BASE, "the access token's iss is not the issuer");
  assert.equal(tokens.token_type, 'Bearer');
  if (refresh) {
    assert.equal(typeof tokens.refresh_token, 'string', `no refresh_token in the token response (keys: ${Object.keys(tokens)})`);
    assert.ok(tokens.refresh_token.length > 0, 'an empty refresh_token');
  }
}

function assertCallbackOk(params, request) {
  const error = params.get('error');
  assert.equal(error, null, `the authorization server answered error=${error}: ${params.get('error_description')}`);
  assert.equal(params.get('state'), request.state, 'the callback state is not the one sent');
  assert.equal(params.get('iss'), BASE, 'the callback iss (RFC 9207) is not the issuer');
  const code = params.get('code');
  assert.ok(code, 'no code on the callback');
  return code;
}

/** The consent page for `client`: its name, Allow and Deny. */
async function expectConsent(page, client, screenshot) {
  const name = await textOf(page, '#client-name', 'the consent page');
  assert.ok(name.includes(client.name), `the consent page names "${name}", not the app "${client.name}"`);
  await expectVisible(page, '#allow', 'the consent page');
  await expectVisible(page, '#deny', 'the consent page');
  if (screenshot) await shot(page, screenshot);
}

/** A client made by `tessera client create` (same database, same settings as the server). */
function createClientWithCli() {
  if (shared.cliClient) return shared.cliClient;
  assert.ok(TESSERA_BIN, 'TESSERA_BIN is not set (run the tests with tests/browser/run.sh)');
  const name = `CLI app ${RUN}`;
  let out;
  try {
    out = execFileSync(
      TESSERA_BIN,
      [
        'client', 'create', '--name', name, '--redirect-uri', callback.uri,
        '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
        '--scope', 'read', '--scope', 'offline_access', '--json',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (e) {
    assert.fail(`tessera client create failed: ${e.stderr || e.stdout || e.message}`);
  }
  const made = JSON.parse(out);
  assert.ok(made.client_id && made.client_secret, `tessera client create printed ${out}`);
  shared.cliClient = { clientId: made.client_id, clientSecret: made.client_secret, name };
  return shared.cliClient;
}

/** The client for the OAuth scenarios: the app registered in scenario b, or with BROWSER_CLIENT_FROM_CLI=1 one from the CLI. */
function oauthClient() {
  if (CLIENT_FROM_CLI) return createClientWithCli();
  if (!shared.dashboardApp) {
    assert.fail(
      'this scenario uses the app registered on /dashboard/apps/new in scenario b, which did not finish' +
        (shared.dashboardAppError ? ` (${shared.dashboardAppError})` : '') +
        '; run with BROWSER_CLIENT_FROM_CLI=1 to use a client made by the CLI instead',
    );
  }
  return shared.dashboardApp;
}

function requireApiKey(scenario) {
  if (!shared.apiKey) assert.fail(`${scenario} needs the API key created in scenario e, which did not finish`);
  return shared.apiKey;
}

async function authCheck(key) {
  const res = await fetch(`${BASE}/v1/auth/check`, { headers: { 'X-API-Key': key } });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the assertions below show the text
  }
  return { res, text, json };
}

// ---------------------------------------------------------------------------------------------------
// a. Sign-in

browserTest('a. the admin signs in at /login', async ({ page, context }) => {
  await goto(page, '/login');
  await expectVisible(page, '#email', 'GET /login');
  await expectVisible(page, '#password', 'GET /login');
  await shot(page, 'login');
  const response = await fillSignIn(page);
  await expectStatus(page, response, 200, 'the page after signing in');
  const cookies = await context.cookies(BASE);
  assert.ok(
    cookies.some((c) => c.name === 'tessera_session'),
    `no session cookie after signing in (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'})`,
  );
  await shot(page, 'signed-in');
});

// ---------------------------------------------------------------------------------------------------
// b. Registering an app

browserTest('b. the admin registers a confidential app at /dashboard/apps/new', async ({ page }) => {
  try {
    await signIn(page);
    await visitDashboard(page, '/dashboard/apps/new');
    const name = `Browser app ${RUN}`;
    await page.fill('#name', name);
    await page.check('#type-confidential');
    await page.check('#grant-authorization_code');
    await page.check('#grant-refresh_token');
    await page.check('#scope-read');
    await page.check('#scope-offline_access');
    await page.fill('#redirect_uris', callback.uri);
    await shot(page, 'app-new');

    const response = await submit(page, '#submit');
    assert.ok(response, 'submitting the app form led to no page');
    assert.ok(
      response.status() < 300,
      `submitting the app form answered HTTP ${response.status()} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`,
    );
    const clientId = await textOf(page, '#client-id', 'the app-created page');
    const clientSecret = await textOf(page, '#client-secret', 'the app-created page');
    assert.ok(clientId.length > 0, 'an empty #client-id');
    assert.ok(clientSecret.length >= 16, `#client-secret is too short to be a secret: "${clientSecret}"`);
    await expectVisible(page, 'button[data-copy]', 'the app-created page (a copy button for the secret)');
    const discovery = await textOf(page, '#discovery-url', 'the app-created page');
    assert.match(discovery, /\/\.well-known\//, '#discovery-url is not a .well-known URL');
    const discoveryRes = await fetch(new URL(discovery, BASE));
    assert.equal(discoveryRes.status, 200, `GET ${discovery} (from #discovery-url) answered ${discoveryRes.status}`);
    const hrefs = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    const pagePath = hrefs
      .map((h) => new URL(h, BASE))
      .filter((u) => u.origin === BASE && /^\/dashboard\/apps\/[^/]+$/.test(u.pathname) && u.pathname !== '/dashboard/apps/new')
      .map((u) => u.pathname)[0];
    assert.ok(pagePath, `the app-created page has no link to /dashboard/apps/<id> (links: ${hrefs.join(', ')})`);
    await shot(page, 'app-created');
    shared.dashboardApp = { clientId, clientSecret, name, pagePath };
  } catch (e) {
    shared.dashboardAppError = String(e.message).split('\n')[0];
    throw e;
  }
});

// ---------------------------------------------------------------------------------------------------
// c, d. Authorization code with PKCE, through the consent page

browserTest('c. authorization code + PKCE: a signed-in user allows the app', async ({ page }) => {
  const client = oauthClient();
  await signIn(page);
  const request = authorizeRequest(client);
  await goto(page, request.url, { what: 'GET /oauth/authorize (the consent page)' });
  await expectConsent(page, client, 'consent');
  await page.click('#allow');
  const params = await callbackParams(page);
  const code = assertCallbackOk(params, request);
  await shot(page, 'callback');
  const tokens = await exchangeCode(client, code, request.verifier);
  assertTokens(tokens, { refresh: true });
});

browserTest('c. authorization code + PKCE: a signed-out user signs in on the way', async ({ page }) => {
  const client = oauthClient();
  // prompt=consent: the previous test's consent is remembered, and this run must show the page again.
  const request = authorizeRequest(client, { prompt: 'consent' });
  await page.goto(request.url);
  try {
    await page.waitForURL((u) => u.pathname === '/login', { timeout: ACTION_TIMEOUT });
  } catch {
    assert.fail(`a signed-out authorize request did not lead to /login; the browser is at ${page.url()}`);
  }
  await shot(page, 'authorize-login');
  await fillSignIn(page);
  await expectConsent(page, client, 'consent-after-login');
  await page.click('#allow');
  const params = await callbackParams(page);
  const code = assertCallbackOk(params, request);
  const tokens = await exchangeCode(client, code, request.verifier);
  assertTokens(tokens, { refresh: true });
});

browserTest('d. the user denies: the callback has error=access_denied and the state', async ({ page }) => {
  const client = oauthClient();
  await signIn(page);
  const request = authorizeRequest(client, { scope: 'read', prompt: 'consent' });
  await goto(page, request.url, { what: 'GET /oauth/authorize with prompt=consent' });
  await expectConsent(page, client, 'consent-deny');
  await page.click('#deny');
  const params = await callbackParams(page);
  assert.equal(params.get('error'), 'access_denied', `the callback is ${page.url()}`);
  assert.equal(params.get('state'), request.state, 'the callback state is not the one sent');
  assert.equal(params.get('code'), null, 'a denied request still got a code');
  assert.equal(params.get('iss'), BASE, 'the callback iss (RFC 9207) is not the issuer');
  await shot(page, 'callback-denied');
});

// ---------------------------------------------------------------------------------------------------
// e. API keys: create, use, list, revoke

browserTest('e. the admin creates an API key, uses it, and revokes it', async ({ page }) => {
  await signIn(page);
  await visitDashboard(page, '/dashboard/keys/new');
  const name = `Browser key ${RUN}`;
  await page.fill('#name', name);
  await page.selectOption('#type', 'rk');
  await page.selectOption('#env', 'test');
  await page.fill('#scopes', 'read');
  await shot(page, 'key-new');
  const response = await submit(page, '#submit');
  assert.ok(response, 'submitting the key form led to no page');
  assert.ok(
    response.status() < 300,
    `submitting the key form answered HTTP ${response.status()} at ${page.url()}\n  page text: ${await bodyExcerpt(page)}`,
  );
  const key = await textOf(page, '#api-key', 'the key-created page');
  assert.ok(key.startsWith('rk_test_'), `#api-key does not start with rk_test_: "${key.slice(0, 12)}…"`);
  const id = await textOf(page, '#key-id', 'the key-created page');
  assert.ok(id.length > 0, 'an empty #key-id');
  await shot(page, 'key-created');
  shared.apiKey = { key, id };

  const ok = await authCheck(key);
  assert.equal(ok.res.status, 200, `GET /v1/auth/check with the new key answered ${ok.res.status}: ${ok.text}`);
  assert.equal(ok.res.headers.get('x-auth-key-id'), id, 'X-Auth-Key-Id of /v1/auth/check is not #key-id');

  await visitDashboard(page, '/dashboard/keys', 'keys');
  assert.equal(await page.locator(`tr[data-key-id="${id}"]`).count(), 1, `/dashboard/keys has no row tr[data-key-id="${id}"]`);
  assert.ok(!(await page.content()).includes(key), '/dashboard/keys shows the full key');

  const keyPath = `/dashboard/keys/${id}`;
  await visitDashboard(page, keyPath, 'key');
  assert.ok(!(await page.content()).includes(key), `${keyPath} shows the full key`);
  const revokeLink = `a[href="${keyPath}/revoke"]`;
  await expectVisible(page, revokeLink, keyPath);
  const revokePage = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(revokeLink)]).then(([r]) => r);
  await expectStatus(page, revokePage, 200, `following the revoke link to ${keyPath}/revoke`);
  await expectVisible(page, '#confirm-revoke', `${keyPath}/revoke`);
  await shot(page, 'key-revoke');
  const revoked = await submit(page, '#confirm-revoke');
  assert.ok(revoked && revoked.status() < 400, `confirming the revocation answered HTTP ${revoked?.status()}: ${await bodyExcerpt(page)}`);
  if (new URL(page.url()).pathname !== keyPath) await goto(page, keyPath);
  const status = await textOf(page, '#status', keyPath);
  assert.match(status, /revoked/i, `#status after revoking is "${status}"`);
  await shot(page, 'key-revoked');
  shared.apiKeyRevoked = true;

  const denied = await authCheck(key);
  assert.equal(denied.res.status, 401, `GET /v1/auth/check with the revoked key answered ${denied.res.status}: ${denied.text}`);
  assert.equal(denied.json?.error, 'revoked_api_key', `/v1/auth/check with the revoked key answered ${denied.text}`);
});

// ---------------------------------------------------------------------------------------------------
// f. A form error: nothing saved, what was typed kept

browserTest('f. an app with bad redirect URIs is refused field by field, and nothing is saved', async ({ page }) => {
  await signIn(page);
  await visitDashboard(page, '/dashboard/apps/new');
  const name = `Invalid app ${RUN}`;
  const typed = 'https://example.com/cb#frag\nhttp://example.com/cb';
  await page.fill('#name', name);
  await page.check('#type-confidential');
  await page.check('#grant-authorization_code');
  await page.check('#scope-read');
  await page.fill('#redirect_uris', typed);
  const response = await submit(page, '#submit');
  await expectStatus(page, response, 422, 'submitting redirect URIs with a fragment and plain http');
  const error = await textOf(page, '#redirect_uris-error', 'the refused app form');
  assert.match(error, /fragment/i, `#redirect_uris-error does not mention the fragment: "${error}"`);
  assert.match(error, /line 2/i, `#redirect_uris-error does not name line 2: "${error}"`);
  const kept = (await page.inputValue('#redirect_uris')).replace(/\r\n/g, '\n').replace(/\n+$/, '');
  assert.equal(kept, typed, 'the redirect URIs textarea lost what was typed');
  assert.equal(
    await page.locator('#redirect_uris-error').evaluate((el) => el.classList.contains('field-error')),
    true,
    '#redirect_uris-error is not a p.field-error',
  );
  await shot(page, 'app-invalid');

  await visitDashboard(page, '/dashboard/apps');
  assert.ok(!(await page.locator('body').innerText()).includes(name), `/dashboard/apps lists the refused app "${name}"`);
});

// ---------------------------------------------------------------------------------------------------
// g. The remaining pages load

const pages = [
  { path: '/dashboard/apps', shot: 'apps' },
  { path: () => shared.dashboardApp?.pagePath, shot: 'app', needs: 'the app page needs the app registered in scenario b' },
  { path: '/dashboard/usage', shot: 'usage' },
  { path: '/dashboard/signing-keys', shot: 'signing-keys' },
  { path: '/dashboard/audit', shot: 'audit', contains: 'api_key.revoke' },
  { path: '/dashboard/users', shot: 'users' },
];

for (const p of pages) {
  const label = typeof p.path === 'string' ? p.path : '/dashboard/apps/<id>';
  browserTest(`g. ${label} loads`, async ({ page }) => {
    const pagePath = typeof p.path === 'string' ? p.path : p.path();
    if (!pagePath) assert.fail(`${p.needs}, which did not finish`);
    await signIn(page);
    await visitDashboard(page, pagePath, p.shot);
    if (p.contains) {
      if (p.contains === 'api_key.revoke' && !shared.apiKeyRevoked) {
        assert.fail('the audit check needs the key revoked in scenario e, which did not finish');
      }
      assert.ok((await page.locator('body').innerText()).includes(p.contains), `${pagePath} does not show "${p.contains}"`);
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// h. Phone width

browserTest(
  'h. /dashboard/keys fits a 375 px wide phone without horizontal scrolling',
  async ({ page }) => {
    await signIn(page);
    await visitDashboard(page, '/dashboard/keys');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    await shot(page, 'keys-phone');
    assert.ok(width <= 375 + 1, `/dashboard/keys is ${width} px wide on a 375 px screen (it scrolls sideways)`);
  },
  { viewport: { width: 375, height: 740 } },
);
