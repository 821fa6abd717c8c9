// One uploader across tabs, in Chromium: three tabs of one site against a recording endpoint
// that does NOT deduplicate, with intermittent 500s, dropped connections and the sending tab
// closed mid-flight. Exactly one tab talks to the endpoint at a time; every admitted event
// arrives exactly once. Then the same without Web Locks (the tabs elect a sender by heartbeats).

import { test, expect, eventually } from '../support/fixtures.mjs';
import { recorderPerTest } from '../support/recorder.mjs';
import { countFetches, startSdk } from '../support/sdk-page.mjs';

const site = process.env.CONSENTRY_BROWSER_SITE;

const recorder = recorderPerTest(test);

const config = () => ({
  endpoint: recorder().url,
  apiKey: 'pk_test',
  purposes: ['analytics'],
  defaultPurposes: ['analytics'],
  flushAt: 3,
  flushIntervalMs: 200,
  retry: { baseDelayMs: 100, maxDelayMs: 400 },
});

async function openTabs(context, count) {
  const pages = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    await countFetches(page);
    await startSdk(page, site, config());
    pages.push(page);
  }
  return pages;
}

async function trackIn(page, names) {
  await page.evaluate((names) => names.forEach((name) => cx.track(name)), names);
}

async function exactlyOnce(tracked) {
  await eventually(() => tracked.every((name) => recorder().events.some((e) => e.name === name)), { timeout: 30_000 });
  // Give a late duplicate every chance to show up before counting.
  await new Promise((ok) => setTimeout(ok, 1500));
  expect(recorder().duplicates()).toEqual([]);
  const names = recorder().events.map((e) => e.name).filter((n) => n !== 'consent_change');
  expect(names.sort()).toEqual([...tracked].sort());
}

test('three tabs, one sender, 500s, dropped connections and the sender closed mid-flight: every event exactly once', async ({ context }) => {
  const [first, second, third] = await openTabs(context, 3);
  await first.evaluate(() => cx.setConsent({ analytics: true }));
  for (const page of [second, third]) {
    await eventually(() => page.evaluate(() => cx.consent().granted.includes('analytics')));
  }
  const tracked = [];
  const track = async (page, prefix, n) => {
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    tracked.push(...names);
    await trackIn(page, names);
  };

  recorder().script('500', 'drop', 'drop', '200', '500');
  await track(first, 'one', 7);
  await track(second, 'two', 7);
  await track(third, 'three', 7);
  await eventually(() => recorder().requests.length >= 6, { timeout: 20_000 });
  const fetches = await Promise.all([first, second, third].map((p) => p.evaluate(() => window.fetches)));
  expect(fetches[1]).toBe(0);
  expect(fetches[2]).toBe(0);
  expect(fetches[0]).toBeGreaterThan(0);

  // The sending tab closes with batches held at the endpoint; they are never answered.
  recorder().fallback('hold');
  await track(second, 'two-late', 4);
  await track(third, 'three-late', 4);
  await eventually(() => recorder().heldCount() > 0);
  await first.close();
  recorder().release('drop');
  recorder().fallback('200');
  await track(second, 'after', 2);
  await track(third, 'after-third', 2);
  await exactlyOnce(tracked);
  const after = await Promise.all([second, third].map((p) => p.evaluate(() => window.fetches)));
  expect(after.filter((n) => n > 0).length).toBe(1);
});

test('without Web Locks the tabs elect one sender by heartbeats, and hand over when it leaves', async ({ context }) => {
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
  });
  const [first, second, third] = await openTabs(context, 3);
  await first.evaluate(() => cx.setConsent({ analytics: true }));
  for (const page of [second, third]) {
    await eventually(() => page.evaluate(() => cx.consent().granted.includes('analytics')));
  }
  const tracked = [];
  for (const [page, prefix] of [[first, 'a'], [second, 'b'], [third, 'c']]) {
    const names = Array.from({ length: 5 }, (_, i) => `${prefix}-${i}`);
    tracked.push(...names);
    await trackIn(page, names);
  }
  await eventually(() => tracked.every((name) => recorder().events.some((e) => e.name === name)), { timeout: 20_000 });
  const pages = [first, second, third];
  const fetches = await Promise.all(pages.map((p) => p.evaluate(() => window.fetches)));
  expect(fetches.filter((n) => n > 0).length).toBe(1);
  const leader = pages[fetches.findIndex((n) => n > 0)];
  await leader.close();
  const rest = pages.filter((p) => p !== leader);
  const late = ['late-1', 'late-2', 'late-3'];
  tracked.push(...late);
  await trackIn(rest[0], late);
  await exactlyOnce(tracked);
});

// Headless Chromium never freezes a visible page (CDP's Page.setWebLifecycleState leaves it
// running), so the page lifecycle's own `freeze` and `resume` events are dispatched to it.
test('a sender that freezes lets the next tab send, and queues for its turn again when it resumes', async ({ context }) => {
  const [first, second] = await openTabs(context, 2);
  await first.evaluate(() => cx.setConsent({ analytics: true }));
  await eventually(() => second.evaluate(() => cx.consent().granted.includes('analytics')));
  await trackIn(first, ['warm-up']);
  await eventually(() => recorder().events.some((e) => e.name === 'warm-up'));
  expect(await second.evaluate(() => window.fetches)).toBe(0);

  await first.evaluate(() => document.dispatchEvent(new Event('freeze')));
  const sentBefore = await first.evaluate(() => window.fetches);
  await trackIn(second, ['while-frozen-1', 'while-frozen-2', 'while-frozen-3']);
  await eventually(() => recorder().events.filter((e) => e.name.startsWith('while-frozen')).length === 3);
  expect(await second.evaluate(() => window.fetches)).toBeGreaterThan(0);
  expect(await first.evaluate(() => window.fetches)).toBe(sentBefore);

  await first.evaluate(() => document.dispatchEvent(new Event('resume')));
  await trackIn(first, ['after-resume']);
  await exactlyOnce(['warm-up', 'while-frozen-1', 'while-frozen-2', 'while-frozen-3', 'after-resume']);
});
