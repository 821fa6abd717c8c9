// Promises that hold when things go wrong, in Chromium against a recording endpoint: a
// withdrawal made while the SDK loads purges what storage held before anything is sent; a
// trapped wasm never throws into the page; a burst is delivered without retries, even behind an
// endpoint that answers `Cache-Control: no-store`; bodies are gzipped except at page hide.

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
  salePurposes: ['advertising'],
  defaultPurposes: ['analytics'],
  rules: [{ event: 'ad_*', purposes: ['advertising'] }],
  flushIntervalMs: 200,
  retry: { baseDelayMs: 100, maxDelayMs: 400 },
  ...extra,
});

for (const kind of ['setConsent', 'setCcpaOptOut']) {
  test(`a withdrawal by ${kind} right after create() purges the stored event before anything is sent`, async ({ page }) => {
    const name = kind === 'setConsent' ? 'Product Viewed' : 'ad_click';
    recorder().fallback('500');
    await startSdk(page, site, config());
    await page.evaluate(async (name) => {
      await cx.setConsent({ analytics: true, advertising: true });
      cx.track(name);
      await cx.flush();
    }, name);
    await eventually(async () => (await page.evaluate(scanStorage)).areas.some((a) => a.includes('/docs/queue:')));
    await page.waitForTimeout(1200); // the coalesced write of the retried batch
    await page.goto('about:blank');
    await page.waitForTimeout(300); // the page hide's own attempt is answered 500 too
    expect(recorder().delivered).toEqual([]);
    recorder().fallback('200');

    await page.goto(site + '/pages/blank.html');
    const stats = await page.evaluate(
      async ([config, kind]) => {
        const { Consentry } = await import('/pkg/consentry.js');
        const cx = Consentry.create(config);
        if (kind === 'setConsent') cx.setConsent({ analytics: false, advertising: false });
        else cx.setCcpaOptOut(true);
        await cx.ready;
        await cx.flush();
        await new Promise((ok) => setTimeout(ok, 1000));
        await cx.flush();
        return cx.stats();
      },
      [config(), kind],
    );
    expect(stats.dropped.purged).toBe(1);
    await page.waitForTimeout(500);
    expect(recorder().events.map((e) => e.name)).not.toContain(name);
  });
}

test('a trapped wasm never throws into the page: one error, then every call is a no-op', async ({ page }) => {
  // Wrap the module's exports so the test can make `sdk_input` trap as an aborted wasm does.
  await page.addInitScript(() => {
    const wrap = (result) => {
      const instance = result.instance ?? result;
      const exports = { ...instance.exports };
      const input = exports.sdk_input;
      window.callsAfterTrap = 0;
      exports.sdk_input = (...args) => {
        if (window.trapNow) {
          window.callsAfterTrap += 1;
          throw new WebAssembly.RuntimeError('unreachable');
        }
        return input(...args);
      };
      const wrapped = { exports };
      return result.instance ? { module: result.module, instance: wrapped } : wrapped;
    };
    for (const name of ['instantiateStreaming', 'instantiate']) {
      const original = WebAssembly[name];
      WebAssembly[name] = async (...args) => wrap(await original.apply(WebAssembly, args));
    }
    window.pageErrors = [];
    window.addEventListener('error', (event) => window.pageErrors.push(String(event.message)));
    window.addEventListener('unhandledrejection', (event) => window.pageErrors.push(String(event.reason)));
  });
  await startSdk(page, site, config({ flushIntervalMs: 100 }));
  const result = await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('before the trap');
    await cx.flush();
    window.trapNow = true;
    const thrown = [];
    const attempt = async (f) => {
      try {
        return await f();
      } catch (error) {
        thrown.push(String(error));
        return 'threw';
      }
    };
    const answers = {
      track: await attempt(() => cx.track('after the trap')),
      setConsent: await attempt(() => cx.setConsent({ analytics: false })),
      consent: await attempt(() => cx.consent()),
      stats: await attempt(() => cx.stats()),
      flush: await attempt(() => cx.flush()),
      shutdown: await attempt(() => cx.shutdown()),
    };
    // Timers, lifecycle and network callbacks would run into the trap too.
    const callsBefore = window.callsAfterTrap;
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('offline'));
    window.dispatchEvent(new Event('pagehide'));
    window.dispatchEvent(new StorageEvent('storage', { key: 'consentry:v1:consent', newValue: null }));
    await new Promise((ok) => setTimeout(ok, 2500)); // past every timer the SDK had armed
    const locks = await navigator.locks.query();
    return {
      answers,
      thrown,
      errors: window.diagnostics.filter((d) => d.type === 'error'),
      pageErrors: window.pageErrors,
      // Listeners and timers removed: nothing called into the wasm again, and no lock is held.
      callsAfterStop: window.callsAfterTrap - callsBefore,
      locksHeld: locks.held.map((lock) => lock.name),
    };
  });
  expect(result.thrown).toEqual([]);
  expect(result.pageErrors).toEqual([]);
  expect(result.answers).toEqual({ track: undefined, setConsent: false, consent: null, stats: null, flush: undefined, shutdown: undefined });
  expect(result.errors).toHaveLength(1);
  expect(result.callsAfterStop).toBe(0);
  expect(result.locksHeld).toEqual([]);
  expect(result.errors[0].message).toContain('stopped');
  await eventually(() => recorder().events.some((e) => e.name === 'before the trap'));
});

test('with Web Locks refused (as in an opaque-origin frame) the tabs fall back to heartbeats and still deliver', async ({ page }) => {
  await page.addInitScript(() => {
    LockManager.prototype.request = function () {
      return Promise.reject(new DOMException('refused', 'SecurityError'));
    };
  });
  await startSdk(page, site, config());
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    cx.track('no locks');
    await cx.flush();
  });
  await eventually(() => recorder().events.some((e) => e.name === 'no locks'));
});

test('a trap while the early calls are replayed still resolves ready', async ({ page }) => {
  await page.addInitScript(() => {
    const original = WebAssembly.instantiateStreaming;
    WebAssembly.instantiateStreaming = async (...args) => {
      const result = await original.apply(WebAssembly, args);
      const exports = { ...result.instance.exports };
      const input = exports.sdk_input;
      exports.sdk_input = (kind, ...rest) => {
        if (kind === 0) throw new WebAssembly.RuntimeError('unreachable'); // TRACK
        return input(kind, ...rest);
      };
      return { module: result.module, instance: { exports } };
    };
  });
  await page.goto(site + '/pages/blank.html');
  const outcome = await page.evaluate(async (config) => {
    const { Consentry } = await import('/pkg/consentry.js');
    const cx = Consentry.create(config);
    cx.track('replayed into a trap');
    return cx.ready.then(
      () => 'resolved',
      (error) => 'rejected: ' + error,
    );
  }, config());
  expect(outcome).toBe('resolved');
});

test('a burst of 10,000 events is delivered without a single retry', async ({ page }) => {
  await startSdk(page, site, config({ flushIntervalMs: 2000 }));
  await page.evaluate(() => cx.setConsent({ analytics: true }));
  const started = Date.now();
  const stats = await page.evaluate(async () => {
    for (let i = 0; i < 10000; i++) cx.track('burst', { i, sku: 'tea-' + (i % 50) });
    await cx.flush();
    return cx.stats();
  });
  await eventually(() => recorder().events.filter((e) => e.name === 'burst').length === 10000, { timeout: 30_000 });
  console.log(`burst: 10,000 events at the endpoint after ${Date.now() - started} ms, ${recorder().requests.length} requests`);
  const final = await page.evaluate(() => cx.stats());
  expect(final.retries).toBe(0);
  expect(stats.dropped).toEqual({});
  expect(recorder().duplicates()).toEqual([]);
  const big = recorder().requests.filter((r) => r.rawBytes > 1024);
  expect(big.length).toBeGreaterThan(0);
  expect(big.every((r) => r.encoding === 'gzip')).toBe(true);
});

test('behind an endpoint answering Cache-Control: no-store, 100 events 50 ms apart all arrive', async ({ page }) => {
  recorder().fallback('nostore');
  await startSdk(page, site, config({ flushAt: 1 }));
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    for (let i = 0; i < 100; i++) {
      cx.track('spaced', { i, pad: 'p'.repeat(600) });
      await new Promise((ok) => setTimeout(ok, 50));
    }
  });
  await eventually(() => recorder().events.filter((e) => e.name === 'spaced').length === 100, { timeout: 30_000 });
  const stats = await page.evaluate(() => cx.stats());
  expect(stats.retries).toBe(0);
  expect(stats.queued).toBe(0);
});

test('only what is sent as the page hides uses keepalive, uncompressed', async ({ page }) => {
  await startSdk(page, site, config({ flushIntervalMs: 60_000, flushAt: 100 }));
  await page.evaluate(async () => {
    await cx.setConsent({ analytics: true });
    await cx.flush();
    for (let i = 0; i < 20; i++) cx.track('left behind', { i, pad: 'q'.repeat(200) });
  });
  await page.goto('about:blank');
  await eventually(() => recorder().events.filter((e) => e.name === 'left behind').length === 20);
  const last = recorder().requests.at(-1);
  expect(last.rawBytes).toBeGreaterThan(1024);
  expect(last.encoding).toBe(null);
});
