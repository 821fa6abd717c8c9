// What the SDK keeps in the browser, read back by a scanner of every storage area the origin
// has (localStorage, sessionStorage, every IndexedDB record, cookies, Cache Storage): nothing
// before a choice; afterwards the consent record in plain text and everything else sealed;
// full storage losing nothing across a reload; and the fallbacks when storage is missing.

import { test, expect, eventually } from '../support/fixtures.mjs';
import { recorderPerTest } from '../support/recorder.mjs';
import { startSdk } from '../support/sdk-page.mjs';
import { scanStorage } from '../support/storage-scan.mjs';

const site = process.env.CONSENTRY_BROWSER_SITE;

const recorder = recorderPerTest(test);

const config = (extra = {}) => ({
  endpoint: recorder().url,
  apiKey: 'pk_test',
  purposes: ['analytics', 'advertising'],
  defaultPurposes: ['analytics'],
  rules: [{ event: 'help_*', purposes: ['necessary'] }],
  flushIntervalMs: 200,
  retry: { baseDelayMs: 100, maxDelayMs: 400 },
  ...extra,
});

const scan = (page) => page.evaluate(scanStorage);

test('before a choice nothing is stored anywhere, and essential events go out without an identifier', async ({ page }) => {
  await startSdk(page, site, config());
  await page.evaluate(async () => {
    cx.track('no consent yet', { sku: 'x' });
    cx.track('help_opened', { topic: 'returns' });
    cx.page();
    cx.identify('user-1', { plan: 'pro' }, { purposes: ['necessary'] });
    sessionStorage.length; // the page itself may look; it must find nothing of ours
    await cx.flush();
  });
  await eventually(() => recorder().events.some((e) => e.name === 'help_opened'));
  expect((await scan(page)).areas).toEqual([]);
  expect(await page.evaluate(() => indexedDB.databases())).toEqual([]);
  const [help] = recorder().events;
  expect(help.anonymous_id).toBeUndefined();
  expect(help.user_id).toBeUndefined();
  expect(recorder().events.map((e) => e.name)).toEqual(['help_opened']);
  const dropped = await page.evaluate(() => cx.stats().dropped);
  expect(dropped).toMatchObject({ consent_denied: 2, identity_denied: 1 });
});

test('after a choice: the consent record readable, every event and identifier sealed under a key no script can read', async ({ page, context }) => {
  const secrets = ['sku-secret-7731', 'user-secret-42', 'plan-secret-gold', 'Secret Event Name'];
  await startSdk(page, site, config());
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await eventually(() => recorder().events.length === 1);
  const anonymousId = recorder().events[0].anonymous_id;
  await context.setOffline(true);
  await page.evaluate(([sku, user, plan, name]) => {
    cx.identify(user, { plan });
    cx.track(name, { sku });
  }, secrets);
  await eventually(async () => (await scan(page)).areas.some((a) => a.includes('/docs/queue:')));
  const { areas, text } = await scan(page);
  for (const secret of [...secrets, anonymousId]) expect(text).not.toContain(secret);
  expect(areas).toContain('localStorage:consentry:v1:consent');
  expect(areas.filter((a) => a.startsWith('localStorage:'))).toEqual(['localStorage:consentry:v1:consent']);
  expect(areas).toContain('indexedDB:consentry:v1/docs/identity');
  expect(text).toContain('[CryptoKey extractable=false]');
  expect(text).not.toContain('[CryptoKey extractable=true]');

  // The sealed documents open again on the next page: the same ids arrive once.
  await page.goto('about:blank');
  await context.setOffline(false);
  await startSdk(page, site, config());
  await eventually(() => recorder().events.some((e) => e.name === 'Secret Event Name'));
  await page.evaluate(() => cx.flush());
  const secretEvent = recorder().events.find((e) => e.name === 'Secret Event Name');
  expect(secretEvent.properties).toEqual({ sku: 'sku-secret-7731' });
  expect(secretEvent.user_id).toBe('user-secret-42');
  expect(secretEvent.anonymous_id).toBe(anonymousId);
  expect(recorder().duplicates()).toEqual([]);
});

test('with localStorage full, nothing admitted is lost across a reload', async ({ page, context }) => {
  await startSdk(page, site, config({ maxQueueEvents: 10000 }));
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await eventually(() => recorder().events.length === 1);
  const filled = await page.evaluate(() => {
    const block = 'x'.repeat(64 * 1024);
    let n = 0;
    try {
      for (;;) localStorage.setItem('filler-' + n++, block);
    } catch {
      return n;
    }
  });
  expect(filled).toBeGreaterThan(10);
  await context.setOffline(true);
  const count = 3000;
  await page.evaluate((count) => {
    for (let i = 0; i < count; i++) cx.track('offline-' + i, { note: 'y'.repeat(900), i });
  }, count);
  // Leave (the page hide writes at once) and wait for the last write to land.
  await eventually(async () => {
    const { areas } = await scan(page);
    return areas.some((a) => a.includes('/docs/queue:'));
  });
  await page.waitForTimeout(1500);
  await page.goto('about:blank');
  await context.setOffline(false);
  await startSdk(page, site, config({ maxQueueEvents: 10000 }));
  await eventually(() => new Set(recorder().events.filter((e) => e.name.startsWith('offline-')).map((e) => e.name)).size === count, {
    timeout: 45_000,
  });
  // The one duplicate the README's "at least once" allows: Chromium sometimes lets the leaving
  // page see the network back and send a keepalive batch (uncompressed, at most 64 KiB) whose
  // answer it never hears; the next page adopts the stored copy and sends it again. Nothing
  // else may arrive twice.
  const keptAlive = new Set(recorder().requests.filter((r) => r.encoding === null).flatMap((r) => r.ids));
  expect(recorder().duplicates().filter((id) => !keptAlive.has(id))).toEqual([]);
});

test('without IndexedDB: consent kept, events in memory only, never in plain text, and the page is told', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(window, 'indexedDB', { get: () => undefined });
  });
  await startSdk(page, site, config());
  const diagnostics = await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('in memory', { sku: 'memory-secret-1' });
    await cx.flush();
    return window.diagnostics.filter((d) => d.type === 'storage');
  });
  expect(diagnostics).toEqual([{ type: 'storage', key: null, problem: 'unavailable', keeps: 'consent' }]);
  await eventually(() => recorder().events.some((e) => e.name === 'in memory'));
  const keys = await page.evaluate(() => Object.keys(localStorage));
  expect(keys).toEqual(['consentry:v1:consent']);
  expect(await page.evaluate(() => localStorage.getItem('consentry:v1:consent'))).not.toContain('memory-secret-1');
});
