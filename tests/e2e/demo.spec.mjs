// The demo end to end, as `npm start` runs it: the site over HTTPS under its CSP, the optimised
// package from pkg/, the real collector over TLS with its SQLite store. A person's clicks, and
// assertions on what the collector stored, never on what the page thinks it sent.

import { scanStorage } from '../support/storage-scan.mjs';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect, eventually } from '../support/fixtures.mjs';
import { collectorClient } from '../support/collector.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = join(root, 'tests/e2e/artifacts');
const site = process.env.CONSENTRY_E2E_SITE;
const collectorUrl = process.env.CONSENTRY_E2E_COLLECTOR;
const collector = collectorClient(
  collectorUrl,
  process.env.CONSENTRY_E2E_ADMIN_TOKEN,
  readFileSync(join(process.env.CONSENTRY_E2E_CA_DIR, 'ca.pem'), 'utf8'),
);

const tracked = async () => (await collector.events()).filter((e) => e.type !== 'consent_change');
const consentChanges = async () => (await collector.events()).filter((e) => e.type === 'consent_change');
const names = (events) => events.map((e) => e.name);

/** Opens the demo and waits for the SDK; fails on any CSP violation or page error. */
async function openDemo(page) {
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(site + '/');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'yes');
  return problems;
}

const banner = (page) => page.getByTestId('banner');
const preferences = (page) => page.getByTestId('preferences');
const flush = (page) => page.evaluate(() => window.consentry.flush());

/** Clicks "Accept all" and waits until the collector has stored the consent change. */
async function acceptAll(page) {
  await banner(page).getByRole('button', { name: 'Accept all' }).click();
  await flush(page);
  await eventually(async () => (await consentChanges()).length === 1);
}

test.beforeAll(() => mkdirSync(artifacts, { recursive: true }));

test.beforeEach(async () => {
  await collector.reset();
});

test('the page loads nothing from elsewhere and runs under its Content-Security-Policy', async ({ page }) => {
  const origins = new Set();
  page.on('request', (request) => origins.add(new URL(request.url()).origin));
  const problems = await openDemo(page);
  await acceptAll(page);
  expect([...origins].sort()).toEqual([new URL(collectorUrl).origin, new URL(site).origin].sort());
  expect(problems).toEqual([]);
  // The policy is in force: a third-party image is refused before any request is made.
  const violated = await page.evaluate(
    () =>
      new Promise((done) => {
        document.addEventListener('securitypolicyviolation', (event) => done(event.effectiveDirective));
        const image = document.createElement('img');
        image.src = 'https://third-party.example/pixel.png';
        document.body.append(image);
      }),
  );
  expect(violated).toBe('img-src');
});

test('reject all: clicks on analytics, advertising and personalisation store nothing but the consent change', async ({ page }) => {
  await openDemo(page);
  await expect(banner(page)).toBeVisible();
  await expect(banner(page)).toContainText('notice-v1');
  await banner(page).getByRole('button', { name: 'Reject all' }).click();
  await expect(banner(page)).toBeHidden();
  for (const id of ['view-tea-001', 'add-tea-001', 'recommend', 'ad-click', 'sign-in']) {
    await page.getByTestId(id).click();
  }
  await flush(page);
  await eventually(async () => (await consentChanges()).length === 1);
  await flush(page);

  expect(await tracked()).toEqual([]);
  const [change] = await consentChanges();
  expect(change.purposes).toEqual(['necessary']);
  for (const purpose of ['analytics', 'personalization', 'advertising']) {
    expect(change.consent.current.gdpr[purpose]).toMatchObject({ consented: false, document: 'notice-v1', location: 'banner', source: 'user' });
  }
  // The page view before the choice and the five clicks after it, withheld in the browser.
  expect(await page.evaluate(() => window.consentry.stats().dropped)).toEqual({ consent_denied: 6 });
  await expect(page.locator('#withheld')).toContainText('consent_denied6');
  await expect(page.locator('#activity li').first()).toContainText('withheld (consent_denied)');
  await expect(page.locator('#stored-events')).toContainText('consent_change');
  expect((await collector.stats()).refused).toBe(0);
});

test('analytics only: analytics events are stored, advertising and personalisation ones are not; the choice is remembered', async ({ page }) => {
  await openDemo(page);
  await banner(page).getByRole('button', { name: 'Customise' }).click();
  await expect(preferences(page)).toBeVisible();
  await preferences(page).getByRole('switch', { name: 'Analytics' }).check();
  await preferences(page).getByRole('button', { name: 'Save choices' }).click();
  await expect(preferences(page)).toBeHidden();

  await page.getByTestId('view-tea-002').click();
  await page.getByTestId('ad-click').click();
  await page.getByTestId('recommend').click();
  await page.getByTestId('sign-in').click();
  await flush(page);
  await eventually(async () => (await tracked()).length === 2);
  await flush(page);

  const events = await tracked();
  expect(events.map((e) => [e.type, e.name, e.purposes])).toEqual([
    ['track', 'Product Viewed', ['analytics']],
    ['identify', 'identify', ['analytics']],
  ]);
  expect(events[0].properties).toEqual({ sku: 'tea-002', price: 6 });
  expect(events[1].user_id).toBe('user-42');
  const [change] = await consentChanges();
  expect(change.consent.current.gdpr.analytics).toMatchObject({ consented: true, location: 'preference_centre', document: 'notice-v1' });
  await expect(page.locator('#stored-events')).toContainText('Product Viewed');
  await expect(page.locator('#activity')).toContainText('ad_click: withheld (consent_denied)');

  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'yes');
  await expect(banner(page)).toBeHidden();
  await flush(page);
  await eventually(async () => (await tracked()).some((e) => e.type === 'page'));
  const [view] = (await tracked()).filter((e) => e.type === 'page');
  expect(new URL(view.page.url).search).toBe('');
});

test('withdrawing analytics while events are still queued: those events never reach the collector', async ({ page, context }) => {
  await openDemo(page);
  await acceptAll(page);
  await context.setOffline(true);
  await page.getByTestId('view-tea-001').click();
  await page.getByTestId('add-tea-001').click();
  await page.getByTestId('add-tea-003').click();
  expect(await page.evaluate(() => window.consentry.stats().queued)).toBe(3);

  await page.getByTestId('open-preferences').click();
  await preferences(page).getByRole('switch', { name: 'Analytics' }).uncheck();
  await preferences(page).getByRole('button', { name: 'Save choices' }).click();
  await context.setOffline(false);
  await flush(page);
  await eventually(async () => (await consentChanges()).length === 2);
  await flush(page);

  expect(await tracked()).toEqual([]);
  expect(await page.evaluate(() => window.consentry.stats().dropped.purged)).toBe(3);
  const [, withdrawal] = await consentChanges();
  expect(withdrawal.consent.previous.gdpr.analytics.consented).toBe(true);
  expect(withdrawal.consent.current.gdpr.analytics.consented).toBe(false);
});

test('an event clicked right before the tab closes arrives by keepalive', async ({ page }) => {
  await openDemo(page);
  await acceptAll(page);
  await page.getByTestId('add-tea-002').click();
  await page.close({ runBeforeUnload: true });
  await eventually(async () => names(await tracked()).includes('Product Added'));
});

test('offline, click, reload online: the stored event arrives, once', async ({ page, context }) => {
  await openDemo(page);
  await acceptAll(page);
  await context.setOffline(true);
  await page.getByTestId('view-tea-003').click();
  await flush(page);
  // The queue is sealed in IndexedDB: the test sees that it is there, not what it says.
  await eventually(async () => (await page.evaluate(scanStorage)).areas.some((a) => a.includes('/docs/queue:')));
  expect(await tracked()).toEqual([]);

  await page.goto('about:blank');
  await context.setOffline(false);
  await openDemo(page);
  await flush(page);
  await eventually(async () => names(await tracked()).includes('Product Viewed'));
  await flush(page);
  const viewed = (await tracked()).filter((e) => e.name === 'Product Viewed');
  expect(viewed).toHaveLength(1);
  // Restored from storage, so it is the event captured on the first page, with its id.
  expect(await page.evaluate(() => window.consentry.stats().restored)).toBe(1);
});

test('CCPA opt-out withholds advertising even when it was granted', async ({ page }) => {
  await openDemo(page);
  await acceptAll(page);
  await page.getByRole('button', { name: 'Do Not Sell or Share My Personal Information' }).click();
  const optOut = preferences(page).getByRole('switch', { name: 'Do not sell or share my personal information' });
  await expect(optOut).toBeFocused();
  await optOut.check();
  await preferences(page).getByRole('button', { name: 'Save choices' }).click();
  await page.getByTestId('ad-click').click();
  await page.getByTestId('view-tea-001').click();
  await flush(page);
  await eventually(async () => names(await tracked()).includes('Product Viewed'));
  await flush(page);
  expect(names(await tracked())).not.toContain('ad_click');
  const changes = await consentChanges();
  expect(changes.at(-1).consent.current.ccpa.data_sale_opt_out.consented).toBe(true);
});

test('the banner and the preference centre work by keyboard alone, and at 320 px', async ({ page }) => {
  await page.setViewportSize({ width: 320, height: 640 });
  await openDemo(page);
  await expect(banner(page)).toBeVisible();
  await banner(page).screenshot({ path: join(artifacts, 'banner-320px.png') });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);

  const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim() || document.activeElement?.id);
  expect(await focused()).toBe('Accept all');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('Reject all');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('Customise');
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('Accept all');
  await page.keyboard.press('Shift+Tab');
  expect(await focused()).toBe('Customise');
  await page.keyboard.press('Escape');
  await expect(banner(page)).toBeVisible();

  await page.keyboard.press('Enter');
  await expect(preferences(page)).toBeVisible();
  expect(await focused()).toBe('purpose-analytics');
  await page.keyboard.press('Space');
  for (let i = 0; i < 8 && (await focused()) !== 'Save choices'; i++) await page.keyboard.press('Tab');
  expect(await focused()).toBe('Save choices');
  await page.keyboard.press('Enter');
  await expect(preferences(page)).toBeHidden();
  await flush(page);
  await eventually(async () => (await consentChanges()).length === 1);
  const [change] = await consentChanges();
  expect(change.consent.current.gdpr.analytics.consented).toBe(true);
  expect(change.consent.current.gdpr.advertising.consented).toBe(false);

  // Reopen from the footer, by keyboard; Escape closes and gives focus back.
  for (let i = 0; i < 40 && (await focused()) !== 'Privacy settings'; i++) await page.keyboard.press('Tab');
  expect(await focused()).toBe('Privacy settings');
  await page.keyboard.press('Enter');
  await expect(preferences(page)).toBeVisible();
  await expect(preferences(page).getByRole('switch', { name: 'Analytics' })).toBeChecked();
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.getElementById('preferences').contains(document.activeElement))).toBe(true);
  }
  await page.keyboard.press('Escape');
  await expect(preferences(page)).toBeHidden();
  expect(await focused()).toBe('Privacy settings');
});

test('screenshots of the banner and the inspector are kept', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await openDemo(page);
  const bannerShot = join(artifacts, 'banner.png');
  await banner(page).screenshot({ path: bannerShot });
  await banner(page).getByRole('button', { name: 'Customise' }).click();
  await preferences(page).screenshot({ path: join(artifacts, 'preferences.png') });
  await preferences(page).getByRole('switch', { name: 'Analytics' }).check();
  await preferences(page).getByRole('button', { name: 'Save choices' }).click();
  await page.getByTestId('view-tea-001').click();
  await page.getByTestId('ad-click').click();
  await flush(page);
  await expect(page.locator('#stored-events')).toContainText('Product Viewed');
  const inspectorShot = join(artifacts, 'inspector.png');
  await page.getByTestId('inspector').screenshot({ path: inspectorShot });
  await testInfo.attach('banner', { path: bannerShot, contentType: 'image/png' });
  await testInfo.attach('inspector', { path: inspectorShot, contentType: 'image/png' });
});
