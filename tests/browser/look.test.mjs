// How the dashboard looks, in Debian's Chromium at 1280×800 and 375×800: the users table's Actions
// buttons stay inside their cell, the audit log reads without JSON, the usage chart has a y-axis and a
// label for today, key pages name the owner by email. Started by tests/browser/run.sh (see
// dashboard.test.mjs for the environment); screenshots go to SCREENSHOT_DIR as look-<name>.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with bash tests/browser/run.sh`);
  return value;
};
const BASE = env('TESSERA_URL').replace(/\/+$/, '');
const ADMIN_EMAIL = env('ADMIN_EMAIL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const TESSERA_BIN = env('TESSERA_BIN');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const RUN = randomBytes(3).toString('hex');
const DEV_EMAIL = `look-dev-${RUN}@example.com`;
const DEV_PASSWORD = 'correct horse battery staple';
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 375, height: 800 };
/** Sub-pixel slack for box comparisons. */
const EPS = 0.5;

let browser;
/** What the first test made for the others. */
const shared = { keyId: null, keyName: `Look key ${RUN}`, usageKey: false };

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

/** A test on a fresh page at `viewport`; fails on page errors and CSP violations; failed-look-… screenshot. */
function look(name, viewport, fn) {
  test(name, { timeout: 120_000 }, async () => {
    const context = await browser.newContext({ viewport });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`);
    });
    try {
      await fn(page);
      assert.deepEqual(problems, [], `the page reported problems:\n${problems.join('\n')}`);
    } catch (e) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `failed-look-${slug}.png`), fullPage: true }).catch(() => {});
      throw e;
    } finally {
      await context.close();
    }
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `look-${name}.png`), fullPage: true });
}

async function goto(page, pagePath) {
  const response = await page.goto(`${BASE}${pagePath}`);
  assert.ok(response, `GET ${pagePath}: no response`);
  assert.equal(response.status(), 200, `GET ${pagePath} answered ${response.status()} at ${page.url()}`);
}

async function signIn(page, email, password) {
  await goto(page, '/login');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('form[action="/login"] button[type="submit"]')]);
  assert.notEqual(new URL(page.url()).pathname, '/login', `signing in as ${email} failed: still on ${page.url()}`);
}

const box = async (locator, what) => {
  const b = await locator.boundingBox();
  assert.ok(b, `${what} has no box (not rendered?)`);
  return b;
};
const inside = (inner, outer) =>
  inner.x >= outer.x - EPS &&
  inner.y >= outer.y - EPS &&
  inner.x + inner.width <= outer.x + outer.width + EPS &&
  inner.y + inner.height <= outer.y + outer.height + EPS;
const overlap = (a, b) =>
  Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x) > EPS &&
  Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y) > EPS;
const fmt = (b) => `(${b.x.toFixed(1)},${b.y.toFixed(1)} ${b.width.toFixed(1)}×${b.height.toFixed(1)})`;

// ---------------------------------------------------------------------------------------------------

look('look: a developer (made with the CLI) creates a key on the dashboard', WIDE, async (page) => {
  try {
    execFileSync(TESSERA_BIN, ['user', 'create', '--email', DEV_EMAIL, '--password-stdin'], {
      input: DEV_PASSWORD,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    assert.fail(`tessera user create failed: ${e.stderr || e.stdout || e.message}`);
  }
  await signIn(page, DEV_EMAIL, DEV_PASSWORD);
  await goto(page, '/dashboard/keys/new');
  await page.fill('#name', shared.keyName);
  await page.selectOption('#type', 'rk');
  await page.selectOption('#env', 'test');
  await page.fill('#scopes', 'read');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#submit')]);
  // Whatever the page after creating shows, the key is in the list.
  await goto(page, '/dashboard/keys');
  const row = page.locator('tr[data-key-id]', { hasText: shared.keyName });
  assert.equal(await row.count(), 1, `no row for ${shared.keyName} in /dashboard/keys`);
  shared.keyId = await row.getAttribute('data-key-id');

  // Some usage today, for the chart: a key made with the CLI, used three times.
  let made;
  try {
    made = JSON.parse(
      execFileSync(TESSERA_BIN, ['key', 'create', '--name', `Look usage ${RUN}`, '--type', 'rk', '--scope', 'read', '--json'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  } catch (e) {
    assert.fail(`tessera key create failed: ${e.stderr || e.stdout || e.message}`);
  }
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${BASE}/v1/auth/check`, { headers: { 'X-API-Key': made.key } });
    assert.equal(res.status, 200, `GET /v1/auth/check with the CLI key answered ${res.status}`);
  }
  shared.usageKey = true;
});

for (const [label, viewport] of [
  ['1280', WIDE],
  ['375', NARROW],
]) {
  look(`look: the users table's Actions buttons sit inside their cell at ${label} px`, viewport, async (page) => {
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await goto(page, '/dashboard/users');
    await shot(page, `users-${label}`);
    const rows = page.locator('tr[data-user-id]');
    const count = await rows.count();
    assert.ok(count >= 2, `expected the admin and the developer in the users table, found ${count} rows`);
    let checked = 0;
    for (let r = 0; r < count; r++) {
      const row = rows.nth(r);
      const cell = row.locator('td').last(); // the Actions column
      const buttons = cell.locator('button');
      const n = await buttons.count();
      if (n === 0) continue; // the signed-in admin's own row has no buttons
      checked++;
      const cellBox = await box(cell, 'the Actions cell');
      const boxes = [];
      for (let i = 0; i < n; i++) {
        const b = await box(buttons.nth(i), `button ${i + 1}`);
        const text = (await buttons.nth(i).innerText()).trim();
        assert.ok(inside(b, cellBox), `"${text}" ${fmt(b)} sticks out of its cell ${fmt(cellBox)} at ${label} px`);
        assert.ok(b.x >= -EPS && b.x + b.width <= viewport.width + EPS, `"${text}" ${fmt(b)} is cut at the screen's edge at ${label} px`);
        for (const [other, ob] of boxes) {
          assert.ok(!overlap(b, ob), `"${text}" ${fmt(b)} overlaps "${other}" ${fmt(ob)} at ${label} px`);
        }
        boxes.push([text, b]);
      }
      const cells = row.locator('td');
      for (let c = 0; c < (await cells.count()); c++) {
        const td = cells.nth(c);
        if (c === (await cells.count()) - 1) continue;
        const tb = await box(td, `cell ${c + 1}`);
        assert.ok(!overlap(tb, cellBox), `cell ${c + 1} ${fmt(tb)} overlaps the Actions cell ${fmt(cellBox)} at ${label} px`);
        for (const [text, b] of boxes) {
          assert.ok(!overlap(tb, b), `"${text}" overlaps cell ${c + 1} at ${label} px`);
        }
      }
    }
    assert.ok(checked >= 1, 'no row with action buttons was checked');
    // The flex box is a wrapper inside the cell: the cell itself stays a cell (a block when stacked).
    const displays = await page.locator('tr[data-user-id] td:last-child').evaluateAll((tds) => tds.map((td) => getComputedStyle(td).display));
    const expected = viewport === WIDE ? 'table-cell' : 'block';
    assert.ok(displays.every((d) => d === expected), `the Actions cells are display: ${displays.join(', ')} (expected ${expected})`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width + 1, `/dashboard/users is ${width} px wide at ${label} px (it scrolls sideways)`);
  });

  look(`look: the audit log reads without JSON, with emails and dates, at ${label} px`, viewport, async (page) => {
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await goto(page, '/dashboard/audit');
    await shot(page, `audit-${label}`);
    const all = await page.locator('main').innerText();
    assert.ok(!all.includes('{"'), `the audit log shows JSON:\n${all.slice(0, 600)}`);
    // Key events only (other test files add events at the same time).
    await goto(page, '/dashboard/audit?action=api_key.');
    await shot(page, `audit-keys-${label}`);
    const text = await page.locator('main').innerText();
    assert.ok(!text.includes('{"'), `the audit log shows JSON:\n${text.slice(0, 600)}`);
    assert.ok(text.includes(DEV_EMAIL), `the audit log does not name ${DEV_EMAIL} (the developer's key creation)`);
    const times = page.locator('td time[datetime]');
    assert.ok((await times.count()) > 0, 'no <time datetime> in the audit table');
    const first = (await times.first().innerText()).trim();
    assert.match(first, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/, `a date reads "${first}"`);
    assert.match(await times.first().getAttribute('datetime'), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const row = page.locator('tbody tr', { hasText: shared.keyName }).first();
    const details = (await row.locator('td.details').innerText()).replace(/\s+/g, ' ');
    assert.match(details, /name: Look key/, `the key's details read "${details}"`);
    assert.match(details, /scopes: read/, `the key's details read "${details}"`);
    assert.doesNotMatch(details, /\b\d{10}\b/, `a unix timestamp in "${details}"`);
  });

  look(`look: the usage chart has a y-axis and a label for today at ${label} px`, viewport, async (page) => {
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    // Counts are written in batches (every few seconds): reload until they arrive.
    const deadline = Date.now() + 30_000;
    for (;;) {
      await goto(page, '/dashboard/usage');
      const allowed = Number(await page.locator('#total-allowed').textContent());
      if (!shared.usageKey || allowed >= 3) break;
      assert.ok(Date.now() < deadline, `the usage page still shows ${allowed} allowed requests after 30 s`);
      await page.waitForTimeout(500);
    }
    await page.locator('.chart').scrollIntoViewIfNeeded();
    await shot(page, `usage-${label}`);
    const ticks = page.locator('svg.chart-y text.tick');
    const labels = (await ticks.allTextContents()).map((t) => t.trim());
    assert.ok(labels.length >= 2, `y-axis labels: ${JSON.stringify(labels)}`);
    assert.equal(labels[0], '0', 'the y-axis starts at 0');
    // Bottom to top, round numbers going up.
    const ys = [];
    for (let i = 0; i < labels.length; i++) ys.push((await box(ticks.nth(i), `tick ${labels[i]}`)).y);
    assert.ok(ys.every((y, i) => i === 0 || y < ys[i - 1]), `tick labels are not bottom to top: ${ys}`);
    const plot = await box(page.locator('svg.chart-plot'), 'the plot');
    const today = page.locator('svg.chart-plot text.today');
    assert.equal((await today.textContent()).trim(), 'today');
    const tb = await box(today, "today's label");
    assert.ok(tb.x >= plot.x - EPS && tb.x + tb.width <= plot.x + plot.width + EPS, `"today" ${fmt(tb)} is cut off the plot ${fmt(plot)}`);
    const days = page.locator('svg.chart-plot text.day');
    const n = await days.count();
    assert.ok(n >= 2, 'day labels under the bars');
    const before = await box(days.nth(n - 2), 'the label before today');
    assert.ok(!overlap(before, tb), `"today" ${fmt(tb)} overlaps the label before it ${fmt(before)}`);
    if (shared.usageKey) {
      // Today's bar is the last one, inside the plot, right above today's label.
      const bars = page.locator('svg.chart-plot rect.allowed');
      const last = await box(bars.last(), "today's bar");
      const date = new Date().toISOString().slice(0, 10);
      assert.match(await bars.last().locator('title').textContent(), new RegExp(`^${date}: `));
      assert.ok(inside(last, plot), `today's bar ${fmt(last)} is outside the plot ${fmt(plot)}`);
      assert.ok(last.x + last.width <= tb.x + tb.width + EPS && last.x + last.width >= tb.x - EPS, `today's bar ${fmt(last)} is not above "today" ${fmt(tb)}`);
    }
    const size = await today.evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    assert.ok(size >= 10, `the axis text is ${size}px`);
  });

  look(`look: key pages name the owner by email at ${label} px`, viewport, async (page) => {
    assert.ok(shared.keyId, 'this needs the key made in the first look test, which did not finish');
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await goto(page, '/dashboard/keys');
    const row = page.locator(`tr[data-key-id="${shared.keyId}"]`);
    assert.ok((await row.innerText()).includes(DEV_EMAIL), `the key's row does not show ${DEV_EMAIL}`);
    await goto(page, `/dashboard/keys/${shared.keyId}`);
    await shot(page, `key-${label}`);
    assert.equal((await page.locator('#owner').innerText()).trim(), DEV_EMAIL);
  });
}
