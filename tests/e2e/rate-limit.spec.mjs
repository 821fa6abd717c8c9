// The collector's rate limit end to end: a collector that allows a burst of two batches and then
// one every two seconds per address, the real SDK in Chromium sending more than that. The SDK must
// back off on 429 (waiting at least the Retry-After it was told) and deliver every event exactly
// once when the limit clears. Asserted on what the collector stored.

import { test, expect, eventually } from '../support/fixtures.mjs';
import { startCollector } from '../support/collector.mjs';

const site = process.env.CONSENTRY_BROWSER_SITE;
let collector;

test.beforeAll(async () => {
  collector = await startCollector({
    rateLimits: ['--ip-rate-per-minute', '30', '--ip-burst', '2', '--key-rate-per-minute', '0'],
  });
});

test.afterAll(async () => {
  await collector?.stop();
});

test('the SDK backs off on 429 and delivers everything once the rate limit clears', async ({ page }) => {
  await page.goto(site + '/pages/blank.html');
  await page.evaluate(async (endpoint) => {
    const { Consentry } = await import('/pkg/consentry.js');
    window.diagnostics = [];
    window.cx = Consentry.create({
      endpoint,
      apiKey: 'pk_test',
      purposes: ['analytics'],
      defaultPurposes: ['analytics'],
      flushIntervalMs: 100,
      retry: { baseDelayMs: 100, maxDelayMs: 400 },
    });
    for (const type of ['deliver', 'retry', 'drop']) {
      window.cx.on(type, (detail) => window.diagnostics.push({ type, ...detail }));
    }
    await window.cx.ready;
    await window.cx.setConsent({ analytics: true });
  }, collector.url);

  // More batches than the burst allows: each flush sends what is queued at once.
  const names = Array.from({ length: 8 }, (_, i) => `rate limited ${i}`);
  for (const name of names) {
    await page.evaluate((name) => {
      window.cx.track(name);
      return window.cx.flush();
    }, name);
  }

  const tracked = async () => (await collector.events()).filter((e) => e.type !== 'consent_change');
  await eventually(async () => (await tracked()).length === names.length, { timeout: 45_000 });
  const stored = await tracked();
  expect(stored.map((e) => e.name).sort()).toEqual([...names].sort());
  expect(new Set(stored.map((e) => e.event_id)).size).toBe(names.length);

  const retries = await page.evaluate(() => window.diagnostics.filter((d) => d.type === 'retry'));
  const limited = retries.filter((r) => r.status === 429);
  expect(limited.length).toBeGreaterThan(0);
  // Retry-After is at least one second; the SDK waited at least that long each time.
  for (const retry of limited) expect(retry.delayMs).toBeGreaterThanOrEqual(1000);
  expect(await page.evaluate(() => window.diagnostics.filter((d) => d.type === 'drop').length)).toBe(0);

  const stats = await collector.stats();
  expect(stats.rejected_requests['429']).toBeGreaterThan(0);
  expect(stats.events).toBe(names.length + 1); // and the consent change
  expect(stats.duplicates).toBe(0);
});
