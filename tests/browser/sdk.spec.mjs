// The SDK's browser half in headless Chromium against the real collector: consent filtering,
// retries, keepalive on page hide, timers, storage fallback, offline, reloads and tabs. Every
// assertion about delivery is on what the collector stored, not on what the page thinks it sent.

import { test, expect, eventually } from '../support/fixtures.mjs';
import { collectorClient } from '../support/collector.mjs';
import { scanStorage } from '../support/storage-scan.mjs';
import { startSdk } from '../support/sdk-page.mjs';

const site = process.env.CONSENTRY_BROWSER_SITE;
const endpoint = process.env.CONSENTRY_BROWSER_COLLECTOR;
const collector = collectorClient(endpoint, process.env.CONSENTRY_BROWSER_ADMIN_TOKEN);

const baseConfig = {
  endpoint,
  apiKey: 'pk_test',
  purposes: ['analytics', 'advertising'],
  defaultPurposes: ['analytics'],
  rules: [{ event: 'ad_*', purposes: ['advertising'] }],
  flushIntervalMs: 200,
  retry: { baseDelayMs: 100, maxDelayMs: 400 },
};

/** Opens the blank test page and starts an SDK as `window.cx`, recording diagnostics. */
const start = (page, config = {}) => startSdk(page, site, { ...baseConfig, ...config });

const names = (events) => events.map((e) => e.name);
const stored = async () => (await collector.events()).filter((e) => e.type !== 'consent_change');

test.beforeEach(async () => {
  await collector.reset();
});

test('denied events never arrive; granted ones do; withdrawn ones still queued are never sent', async ({ page }) => {
  await start(page, { flushIntervalMs: 60_000 });
  await page.evaluate(async () => {
    cx.track('before choice');
    await cx.setConsent({ analytics: false, advertising: false }, { document: 'notice-v1', location: 'banner' });
    cx.track('after reject');
    await cx.flush();
  });
  await eventually(async () => (await collector.events()).length === 1);
  expect(await stored()).toEqual([]);

  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('Product Viewed', { sku: 'tea-001' });
    cx.track('ad_click');
    await cx.flush();
  });
  await eventually(async () => (await stored()).length === 1);
  const [viewed] = await stored();
  expect(viewed.name).toBe('Product Viewed');
  expect(viewed.purposes).toEqual(['analytics']);
  expect(viewed.properties).toEqual({ sku: 'tea-001' });

  await page.evaluate(async () => {
    cx.track('queued then withdrawn');
    await cx.setConsent({ analytics: false });
    await cx.flush();
  });
  await eventually(async () => (await collector.events()).filter((e) => e.type === 'consent_change').length === 3);
  expect(names(await stored())).toEqual(['Product Viewed']);
  const stats = await page.evaluate(() => cx.stats());
  expect(stats.dropped).toMatchObject({ consent_denied: 3, purged: 1 });
});

test('a failed send is retried with the same event ids, and stored once', async ({ page }) => {
  await start(page);
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await page.evaluate(() => cx.flush());
  await eventually(async () => (await collector.events()).length === 1);
  // Chromium itself re-sends a request once when a reused keep-alive connection closes without
  // an answer, so one dropped connection may never reach the SDK: drop two in a row.
  await collector.faults(['500', 'drop', 'drop', '503']);
  const ids = await page.evaluate(async () => {
    cx.track('retried', { n: 1 });
    await cx.flush();
    return window.diagnostics.filter((d) => d.type === 'retry').map((d) => d.status);
  });
  expect(ids[0]).toBe(500);
  await eventually(async () => (await stored()).length === 1, { timeout: 20_000 });
  const retries = await page.evaluate(() => window.diagnostics.filter((d) => d.type === 'retry').map((d) => d.status));
  expect(retries[0]).toBe(500);
  expect(retries.at(-1)).toBe(503);
  expect(retries.slice(1, -1).length).toBeGreaterThanOrEqual(1);
  expect(retries.slice(1, -1).every((status) => status === null)).toBe(true);
  const [event] = await stored();
  const stats = await page.evaluate(() => cx.stats());
  expect(stats.delivered).toBe(2);
  expect((await collector.stats()).events).toBe(2);
  expect(event.name).toBe('retried');
});

test('429 with Retry-After is honoured before the next attempt', async ({ page }) => {
  await start(page);
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await eventually(async () => (await collector.events()).length === 1);
  await collector.faults(['429:2']);
  const started = Date.now();
  await page.evaluate(() => {
    cx.track('rate limited');
    return cx.flush();
  });
  const retry = await page.evaluate(() => window.diagnostics.find((d) => d.type === 'retry'));
  expect(retry).toMatchObject({ status: 429 });
  expect(retry.delayMs).toBeGreaterThanOrEqual(2000);
  await eventually(async () => (await stored()).length === 1);
  expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
});

test('what is stored follows the choices: the consent record, then the sealed identity while granted', async ({ page }) => {
  await start(page);
  const areas = async () => (await page.evaluate(scanStorage)).areas;
  await page.evaluate(async () => {
    cx.track('no consent yet');
    cx.page();
    cx.identify('user-1');
    await cx.flush();
  });
  expect(await areas()).toEqual([]);
  await page.evaluate(() => cx.setConsent({ analytics: false, advertising: false }));
  await page.evaluate(() => cx.flush());
  expect((await areas()).filter((a) => a.startsWith('localStorage:'))).toEqual(['localStorage:consentry:v1:consent']);
  expect(await areas()).not.toContain('indexedDB:consentry:v1/docs/identity');
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await eventually(async () => (await areas()).includes('indexedDB:consentry:v1/docs/identity'));
  // Withdrawing everything erases the identity; once the withdrawal is delivered no queue is left.
  await page.evaluate(() => cx.setConsent({ analytics: false }));
  await page.evaluate(() => cx.flush());
  await eventually(async () => {
    const now = await areas();
    return !now.includes('indexedDB:consentry:v1/docs/identity') && !now.some((a) => a.includes('/docs/queue:'));
  });
  expect((await areas()).filter((a) => a.startsWith('localStorage:'))).toEqual(['localStorage:consentry:v1:consent']);
});

test('storage that is denied falls back to memory and still delivers', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(window, 'localStorage', {
      get() {
        throw new DOMException('denied', 'SecurityError');
      },
    });
  });
  await start(page);
  const diagnostics = await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('with memory storage');
    await cx.flush();
    return window.diagnostics;
  });
  expect(diagnostics).toContainEqual({ type: 'storage', key: null, problem: 'unavailable', keeps: 'nothing' });
  await eventually(async () => names(await stored()).includes('with memory storage'));
});

test('storage that is full keeps events in memory and still delivers', async ({ page }) => {
  await page.addInitScript(() => {
    Storage.prototype.setItem = function () {
      throw new DOMException('full', 'QuotaExceededError');
    };
  });
  await start(page);
  const diagnostics = await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    navigator.onLine; // keep the page busy for a tick
    cx.track('with full storage');
    await cx.flush();
    return window.diagnostics.filter((d) => d.type === 'storage');
  });
  expect(diagnostics).toContainEqual({ type: 'storage', key: 'consent', problem: 'write_failed' });
  await eventually(async () => names(await stored()).includes('with full storage'));
});

test('the timer flushes without an explicit flush', async ({ page }) => {
  await start(page, { flushIntervalMs: 300 });
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('timed');
  });
  await eventually(async () => names(await stored()).includes('timed'), { timeout: 5_000 });
});

test('an event tracked right before navigating away arrives with keepalive', async ({ page }) => {
  await start(page, { flushIntervalMs: 60_000, flushAt: 100 });
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('clicked then left');
  });
  await page.goto('about:blank');
  await eventually(async () => names(await stored()).includes('clicked then left'));
});

test('hostile input never throws and the next valid call works', async ({ page }) => {
  await start(page);
  const result = await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    const cyclic = {};
    cyclic.self = cyclic;
    const thrown = [];
    const attempt = (f) => {
      try {
        f();
      } catch (error) {
        thrown.push(String(error));
      }
    };
    attempt(() => cx.track(undefined));
    attempt(() => cx.track(Symbol('s')));
    attempt(() => cx.track('cyclic', cyclic));
    attempt(() => cx.track('bigint', { n: 10n }));
    attempt(() => cx.track('huge', { blob: 'x'.repeat(10 * 1024 * 1024) }));
    attempt(() => cx.track('x'.repeat(10 * 1024 * 1024)));
    attempt(() => cx.track('array props', [1, 2]));
    attempt(() => cx.track('bad purposes', {}, { purposes: 'analytics' }));
    attempt(() => cx.track('options that throw', {}, { get purposes() { throw new Error('no'); } }));
    attempt(() => cx.track('lone surrogate', { s: '\ud800' }));
    attempt(() => cx.identify(42));
    attempt(() => cx.track('valid after all that', { ok: true }));
    await cx.flush();
    return { thrown, stats: cx.stats() };
  });
  expect(result.thrown).toEqual([]);
  expect(result.stats.dropped).toMatchObject({
    invalid_name: 2,
    invalid_properties: 4,
    properties_too_large: 1,
    name_too_long: 1,
    unknown_purpose: 1,
    invalid_user_id: 1,
    invalid_options: 1,
  });
  await eventually(async () => names(await stored()).includes('valid after all that'));
});

test('init rejects a bad config with an Error naming the field, and refuses plain http', async ({ page }) => {
  await page.goto(site + '/pages/blank.html');
  const messages = await page.evaluate(async (endpoint) => {
    const { Consentry } = await import('/pkg/consentry.js');
    const failures = [];
    for (const config of [
      { endpoint: 'http://collect.example.com', apiKey: 'k', purposes: [] },
      { endpoint, apiKey: 'k', purposes: ['Analytics'] },
      { endpoint, apiKey: 'k', purposes: [], flushAt: 'soon' },
      { endpoint, apiKey: 'k', purposes: [], flushAtt: 3 },
    ]) {
      await Consentry.init(config).then(
        () => failures.push('accepted'),
        (error) => failures.push(`${error instanceof Error}:${error.message}`),
      );
    }
    return failures;
  }, endpoint);
  expect(messages).toEqual([
    'true:invalid config: `endpoint` must use https:// (plain http:// is allowed only for localhost, 127.0.0.1 and [::1])',
    'true:invalid config: `purposes` has `Analytics`, but a purpose name is a lower-case letter then up to 63 of a-z, 0-9, _ and -',
    'true:invalid config: `flushAt` must be a whole number from 1 to 100',
    'true:invalid config: `flushAtt` is not a config field',
  ]);
});

test('offline events wait, and arrive once the browser is back online', async ({ page, context }) => {
  await start(page);
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  await context.setOffline(true);
  await page.evaluate(async () => {
    cx.track('while offline');
    await cx.flush();
  });
  expect(names(await stored())).toEqual([]);
  await context.setOffline(false);
  await eventually(async () => names(await stored()).includes('while offline'));
});

test('unsent events survive a reload and arrive once, with the same ids', async ({ page, context }) => {
  await start(page);
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    await cx.flush();
  });
  await eventually(async () => (await collector.events()).length === 1);
  await context.setOffline(true);
  await page.evaluate(async () => {
    cx.track('before reload 1');
    cx.track('before reload 2');
    await cx.flush();
  });
  // Queue writes are coalesced (1 s); the reload's page hide would write at once anyway.
  await eventually(async () => (await page.evaluate(scanStorage)).areas.some((a) => a.includes('/docs/queue:')));
  // Leave while still offline (the page hide's keepalive send fails), then come back online.
  await page.goto('about:blank');
  await context.setOffline(false);
  await start(page);
  await eventually(async () => (await stored()).length === 2);
  await page.evaluate(() => cx.flush());
  const events = await stored();
  expect(names(events).sort()).toEqual(['before reload 1', 'before reload 2']);
  expect(new Set(events.map((e) => e.event_id)).size).toBe(2);
  const restored = await page.evaluate(() => cx.stats().restored);
  expect(restored).toBe(2);
});

test('withdrawing consent in one tab stops the other tab sending', async ({ context }) => {
  const first = await context.newPage();
  const second = await context.newPage();
  await start(first, { flushIntervalMs: 60_000, flushAt: 100 });
  await first.evaluate(() => cx.setConsent({ analytics: true }));
  await start(second, { flushIntervalMs: 60_000, flushAt: 100 });
  expect(await second.evaluate(() => cx.consent().granted)).toEqual(['necessary', 'analytics']);
  await second.evaluate(() => cx.track('queued in the second tab'));
  await first.evaluate(() => cx.setConsent({ analytics: false }));
  await eventually(() => second.evaluate(() => !cx.consent().granted.includes('analytics')));
  await second.evaluate(() => cx.flush());
  await first.evaluate(() => cx.flush());
  const purged = await second.evaluate(() => cx.stats().dropped.purged);
  expect(purged).toBe(1);
  expect(names(await stored())).toEqual([]);
});

test('calls made before the wasm is ready are kept, in order, with their own times', async ({ page }) => {
  await page.goto(site + '/pages/blank.html');
  await page.evaluate(async (config) => {
    const { Consentry } = await import('/pkg/consentry.js');
    const cx = Consentry.create(config);
    cx.setConsent({ analytics: true });
    cx.track('early 1');
    cx.track('early 2');
    await cx.flush();
  }, baseConfig);
  await eventually(async () => (await stored()).length === 2);
  expect(names(await stored())).toEqual(['early 1', 'early 2']);
});
