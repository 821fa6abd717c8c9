// The privacy console in Debian's Chromium against a real collector over TLS, with seeded
// data: what each role sees and cannot do, a request made in the console completing with its
// export downloaded, an erasure leaving the activity view and GET /v1/events, the audit page
// showing it all and verifying the chain, sign-out ending the session, axe-core on every page
// (no serious or critical violations), 320 px without horizontal scrolling, and a screenshot
// of every page under tests/e2e/artifacts/.

import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from '@playwright/test';
import { test, expect, chromiumLaunchOptions, eventually } from '../support/fixtures.mjs';
import { startCollector } from '../support/collector.mjs';
import { request } from '../support/http.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = join(root, 'tests/e2e/artifacts');
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const fixture = JSON.parse(readFileSync(join(root, 'schema/v1/fixtures/batch-analytics.json'), 'utf8'));
const USER = 'user-42';
const ANONYMOUS = '5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d';

test.describe.configure({ mode: 'serial' });

let collector;
let browser;
const tokens = {};

async function admin(method, path, body) {
  const response = await request(collector.url + path, {
    method,
    headers: { authorization: `Bearer ${collector.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    ca: collector.ca,
  });
  return response;
}

test.beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  collector = await startCollector({ tls: true });
  const batch = { ...fixture, api_key: 'pk_test' };
  for (let i = 0; i < 2; i++) {
    const stored = await request(collector.url + '/v1/batch', {
      method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(batch), ca: collector.ca,
    });
    expect(stored.status).toBe(200);
  }
  tokens.admin = collector.adminToken;
  for (const role of ['editor', 'viewer']) {
    const made = await admin('POST', '/v1/tokens', { name: `${role} in the console spec`, role });
    expect(made.status).toBe(201);
    tokens[role] = made.json().token;
  }
  browser = await chromium.launch(chromiumLaunchOptions(collector.spki));
});

test.afterAll(async () => {
  await browser?.close();
  await collector?.stop();
});

async function newPage(width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const external = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(collector.url) && !r.url().startsWith('data:')) external.push(r.url());
  });
  const violations = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused/.test(message.text())) violations.push(message.text());
  });
  page.external = external;
  page.cspViolations = violations;
  return page;
}

async function signIn(page, role) {
  await page.goto(collector.url + '/console/');
  await page.getByLabel('Access token').fill(tokens[role]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#who')).toContainText(`(${role})`);
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
}

async function open(page, name) {
  await page.goto(`${collector.url}/console/#/${name}`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name[0].toUpperCase() + name.slice(1));
}

/** axe-core in the page: no serious or critical violations. `addScriptTag({path})` inlines
 * the file, which the console's CSP (`script-src 'self'`) refuses, as it should: the file is
 * served on the console's own origin by the test instead, and added by URL. */
async function accessible(page, label) {
  await page.route(`${collector.url}/console/__axe.min.js`, (route) =>
    route.fulfill({ path: axePath, contentType: 'text/javascript' }));
  await page.addScriptTag({ url: `${collector.url}/console/__axe.min.js` });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const run = await axe.run(document, { resultTypes: ['violations'] });
    return run.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  expect(result, `${label}: axe violations`).toEqual([]);
}

async function noHorizontalScroll(page, label) {
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(widths[0], `${label} at ${widths[1]} px`).toBeLessThanOrEqual(widths[1]);
}

test('admin: every page, accessible, at 1280 and 320 px, with screenshots', async () => {
  const page = await newPage();
  await page.goto(collector.url + '/console/');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await accessible(page, 'sign in');
  await page.screenshot({ path: join(artifacts, 'console-sign-in.png'), fullPage: true });
  await signIn(page, 'admin');
  await expect(page.getByRole('navigation', { name: 'Console pages' }).getByRole('link'))
    .toHaveText(['Overview', 'Requests', 'People', 'Audit', 'Settings']);
  // The overview shows the seeded counts: duplicates from the second send.
  await expect(page.locator('.kpi', { hasText: 'Duplicates dropped' })).not.toContainText(/^0/);
  await expect(page.getByRole('table', { name: 'Events per day, purpose and environment' })).toContainText('test');
  for (const name of ['overview', 'requests', 'people', 'audit', 'settings']) {
    await open(page, name);
    if (name === 'audit') await expect(page.getByRole('table', { name: 'Audit log (newest first)' })).toBeVisible();
    if (name === 'settings') await expect(page.getByRole('table', { name: 'Tokens' })).toContainText('editor in the console spec');
    await accessible(page, name);
    await page.screenshot({ path: join(artifacts, `console-${name}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 320, height: 800 });
  for (const name of ['overview', 'requests', 'people', 'audit', 'settings']) {
    await open(page, name);
    await noHorizontalScroll(page, name);
  }
  await page.screenshot({ path: join(artifacts, 'console-overview-320.png'), fullPage: true });
  // A token made in Settings is shown once; nothing of any token is kept by the page.
  await page.setViewportSize({ width: 1280, height: 900 });
  await open(page, 'settings');
  await page.getByLabel('Name').fill('made in the console');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.locator('#new-token .secret')).toHaveText(/^cst_/);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain(tokens.admin);
  expect(stored).not.toContain('cst_');
  expect(page.external).toEqual([]);
  expect(page.cspViolations).toEqual([]);
  await page.context().close();
});

test('editor: requests and people with their changes, no audit or settings', async () => {
  const page = await newPage();
  await signIn(page, 'editor');
  await expect(page.getByRole('navigation', { name: 'Console pages' }).getByRole('link'))
    .toHaveText(['Overview', 'Requests', 'People']);
  await open(page, 'requests');
  await expect(page.getByRole('form', { name: 'Create a request' })).toBeVisible();
  await open(page, 'people');
  await page.getByLabel('Value').fill(ANONYMOUS);
  await page.getByLabel('Search by').selectOption('anonymous');
  await page.getByRole('button', { name: 'Show activity' }).click();
  await expect(page.getByRole('table', { name: `Events of ${ANONYMOUS}` })).toBeVisible();
  await expect(page.getByRole('table', { name: `Consent history of ${ANONYMOUS}` })).toContainText('analytics granted');
  await expect(page.getByText('Consent receipts come with the SDK')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Erase now…' })).toBeVisible();
  await page.getByRole('button', { name: 'Suppress this identity' }).click();
  await expect(page.getByText(/^Suppressed since/)).toBeVisible();
  await page.getByRole('button', { name: 'Remove the suppression' }).click();
  await expect(page.getByText('Not suppressed.')).toBeVisible();
  await accessible(page, 'people (editor)');
  await page.screenshot({ path: join(artifacts, 'console-people-editor.png'), fullPage: true });
  // The server refuses what the page does not offer.
  await page.goto(`${collector.url}/console/#/audit`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Overview');
  const statuses = await page.evaluate(async () => [
    (await fetch('/console/api/v1/audit')).status,
    (await fetch('/console/api/settings')).status,
    (await fetch('/console/api/v1/suppressions/x', { method: 'PUT' })).status,
  ]);
  expect(statuses).toEqual([403, 403, 403]);
  await page.context().close();
});

test('viewer: reads only, no change offered and none accepted', async () => {
  const page = await newPage();
  await signIn(page, 'viewer');
  await expect(page.getByRole('navigation', { name: 'Console pages' }).getByRole('link'))
    .toHaveText(['Overview', 'Requests', 'People']);
  await open(page, 'requests');
  await expect(page.getByRole('table', { name: 'Data-subject requests' })).toBeVisible();
  await expect(page.getByRole('form', { name: 'Create a request' })).toHaveCount(0);
  await open(page, 'people');
  await page.getByLabel('Value').fill(USER);
  await page.getByRole('button', { name: 'Show activity' }).click();
  await expect(page.getByRole('table', { name: `Events of ${USER}` })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Erase now…' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: /Suppress/ })).toHaveCount(0);
  await accessible(page, 'people (viewer)');
  await page.screenshot({ path: join(artifacts, 'console-people-viewer.png'), fullPage: true });
  const statuses = await page.evaluate(async () => [
    (await fetch('/console/api/summary')).status,
    (await fetch('/console/api/v1/audit')).status,
    (await fetch('/console/api/requests', { method: 'POST', body: '{}' })).status,
  ]);
  expect(statuses).toEqual([200, 403, 403]);
  await page.context().close();
});

test('a request created in the console completes and its export downloads', async () => {
  const page = await newPage();
  await signIn(page, 'admin');
  await open(page, 'requests');
  await page.getByLabel('Type').last().selectOption('access');
  await page.getByLabel('Value').fill(USER);
  await page.getByRole('button', { name: 'Create request' }).click();
  await expect(page.locator('#request-title')).toContainText('Request ');
  const id = (await page.locator('#request-title').textContent()).match(/Request ([0-9a-f-]{36})/)[1];
  await eventually(async () => {
    await page.locator(`button[data-request="${id}"]`).click();
    return (await page.locator('#request-title').textContent()).includes('completed');
  }, { timeout: 30_000, interval: 500 });
  await expect(page.getByRole('table', { name: `Timeline of request ${id}` })).toContainText('export expires');
  await accessible(page, 'request timeline');
  await page.screenshot({ path: join(artifacts, 'console-request-timeline.png'), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-link').click()]);
  const file = readFileSync(await download.path(), 'utf8');
  expect(file).toContain(ANONYMOUS);
  await page.context().close();
});

test('erasing a user in the console removes them from the activity view and GET /v1/events', async () => {
  const before = await collector.events();
  expect(before.some((e) => e.anonymous_id === ANONYMOUS)).toBe(true);
  const page = await newPage();
  await signIn(page, 'editor');
  await open(page, 'people');
  await page.getByLabel('Value').fill(USER);
  await page.getByRole('button', { name: 'Show activity' }).click();
  await expect(page.getByRole('table', { name: `Events of ${USER}` }).locator('tbody tr')).not.toHaveCount(0);
  await expect(page.getByRole('table', { name: `Events of ${USER}` })).not.toContainText('No events held.');
  await page.getByRole('button', { name: 'Erase now…' }).click();
  const dialog = page.getByRole('dialog', { name: `Erase ${USER} now?` });
  await expect(dialog).toContainText('events');
  await expect(dialog).toContainText('consent changes');
  await accessible(page, 'erase dialog');
  await page.screenshot({ path: join(artifacts, 'console-erase-dialog.png') });
  await dialog.getByRole('button', { name: 'Erase now' }).click();
  await expect(page.locator('#status')).toContainText('Erased');
  await expect(page.getByRole('table', { name: `Events of ${USER}` })).toContainText('No events held.');
  await expect(page.getByRole('table', { name: `Erasures of ${USER}` })).not.toContainText('None.');
  const after = await collector.events();
  expect(after.filter((e) => e.anonymous_id === ANONYMOUS || e.user_id === USER)).toEqual([]);
  await page.context().close();
});

test('the audit page shows the console\u2019s actions and verifies the chain', async () => {
  const page = await newPage();
  await signIn(page, 'admin');
  await open(page, 'audit');
  const log = page.getByRole('table', { name: 'Audit log (newest first)' });
  for (const action of ['user.erase', 'console.request_create', 'suppression.add', 'console.sign_in', 'token.create']) {
    await page.getByLabel(/^Filter/).fill(action);
    await expect(log).toContainText(action);
  }
  await page.getByLabel(/^Filter/).fill('user.erase');
  await expect(log).toContainText('editor in the console spec');
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await expect(page.locator('#verify-result')).toContainText(/The chain verifies: \d+ entries/);
  await accessible(page, 'audit (verified)');
  await page.screenshot({ path: join(artifacts, 'console-audit-verified.png'), fullPage: true });
  await page.context().close();
});

test('sign-out ends the session at once; the cookie is HttpOnly, Secure, SameSite=Strict', async () => {
  const page = await newPage();
  await signIn(page, 'admin');
  const [cookie] = await page.context().cookies(collector.url + '/console/');
  expect(cookie).toMatchObject({ name: 'consentry_session', httpOnly: true, secure: true, sameSite: 'Strict', path: '/console' });
  const asCookie = (path) => request(collector.url + path, { headers: { cookie: `${cookie.name}=${cookie.value}` }, ca: collector.ca });
  expect((await asCookie('/console/api/summary')).status).toBe(200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  expect((await asCookie('/console/api/summary')).status).toBe(401);
  expect((await asCookie('/console/api/session')).status).toBe(401);
  expect(await page.context().cookies(collector.url + '/console/')).toEqual([]);
  const audit = await admin('GET', '/v1/audit?limit=1000');
  expect(audit.json().entries.some((e) => e.action === 'console.sign_out')).toBe(true);
  await page.context().close();
});

test('the console works by keyboard alone: sign in, move between pages, search a person', async () => {
  const page = await newPage(320);
  await page.goto(collector.url + '/console/');
  await expect(page.getByLabel('Access token')).toBeFocused();
  await page.keyboard.type(tokens.viewer);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.textContent === 'People');
  }
  expect(reached).toBe(true);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'People' })).toBeVisible();
  await page.getByLabel('Value').focus();
  await page.keyboard.type(ANONYMOUS);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: `Activity of ${ANONYMOUS}` })).toBeVisible();
  await noHorizontalScroll(page, 'people by keyboard');
  await page.context().close();
});
