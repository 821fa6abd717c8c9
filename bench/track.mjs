// `npm run bench`: Consentry side by side with the JavaScript SDKs people use today, in headless
// Chromium, one fresh page per run, runs interleaved, medians reported:
// - the main-thread cost of 10,000 track() calls: the synchronous loop, and all main-thread
//   time until the last event reached the server (CDP `Performance.getMetrics` TaskDuration);
// - time until the last event reached the server, the requests and retries it took, and the
//   body bytes sent per event (gzip where the SDK compresses);
// - time to ready (module fetch + compile + init);
// - what a page downloads (gzip and brotli of each SDK bundled and minified).
// A local sink answers every request with 200 and reads every body. Not a test: timings on this
// machine are noisy, so compare ratios within one run.
//
//   node bench/track.mjs [--runs 7] [--calls 10000] [--sdks consentry,snowplow,segment]

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { chromium } from '@playwright/test';
import { startStaticServer } from '../scripts/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const at = argv.indexOf(name);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
};
const RUNS = option('--runs', 7);
const CALLS = option('--calls', 10_000);

if (!existsSync(join(root, 'pkg/consentry.js'))) execFileSync('node', [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
if (!existsSync(join(here, 'node_modules/@snowplow/browser-tracker'))) {
  console.log('installing the competitor SDKs into bench/node_modules ...');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: here, stdio: 'inherit' });
}

// Bundle each competitor the way an app would ship it: minified, tree-shaken, for browsers.
const out = join(root, 'target/bench');
mkdirSync(out, { recursive: true });
const competitors = ['snowplow', 'segment', 'mparticle'];
for (const name of competitors) {
  await esbuild.build({
    entryPoints: [join(here, 'entries', name + '.js')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    outfile: join(out, name + '.js'),
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
}

const compressed = (files) =>
  files.reduce(
    (sum, file) => {
      const bytes = readFileSync(file);
      sum.gzip += gzipSync(bytes, { level: 9 }).length;
      sum.brotli += brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
      return sum;
    },
    { gzip: 0, brotli: 0 },
  );
const sizes = {
  consentry: compressed([join(root, 'pkg/consentry.js'), join(root, 'pkg/consentry_bg.wasm')]),
  ...Object.fromEntries(competitors.map((name) => [name, compressed([join(out, name + '.js')])])),
};

// A sink that accepts anything, with CORS, like a healthy collector, and counts what arrives:
// requests, body bytes as sent, events (in Consentry's, Snowplow's and Segment's formats) and
// when the last one came.
const received = { requests: 0, bytes: 0, events: 0, lastAt: 0 };
const countEvents = (body) => {
  try {
    const parsed = JSON.parse(body);
    return (parsed.events ?? parsed.data ?? parsed.batch ?? [parsed]).length;
  } catch {
    return 0;
  }
};
const sink = createServer((req, res) => {
  res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
  res.setHeader('access-control-allow-credentials', 'true');
  res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '*');
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method === 'POST') {
      const raw = Buffer.concat(chunks);
      received.requests += 1;
      received.bytes += raw.length;
      const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString();
      received.events += countEvents(text);
      received.lastAt = Date.now();
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise((ok) => sink.listen(0, '127.0.0.1', ok));
const endpoint = `http://127.0.0.1:${sink.address().port}`;
const site = await startStaticServer({
  mounts: { '/pkg/': join(root, 'pkg'), '/bench/': out, '/entries/': join(here, 'entries'), '/pages/': join(root, 'tests/pages') },
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const taskSeconds = async (cdp) =>
  (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;

async function measure(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.goto(site.url + '/pages/blank.html');
  const url = name === 'consentry' ? '/entries/consentry.js' : `/bench/${name}.js`;
  const ready = await page.evaluate(
    async ({ url, endpoint }) => {
      const started = performance.now();
      window.sdk = await (await import(url)).setup(endpoint);
      const ready = performance.now() - started;
      for (let i = 0; i < 200; i++) window.sdk.track(i); // warm up the JIT
      window.sdk.flush?.();
      return ready;
    },
    { url, endpoint },
  );
  // Let the warm-up drain, then count only what the measured loop causes.
  await quiet(1000);
  Object.assign(received, { requests: 0, bytes: 0, events: 0, lastAt: 0 });
  const before = await taskSeconds(cdp);
  const startedAt = Date.now();
  const sync = await page.evaluate((calls) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) window.sdk.track(i);
    return performance.now() - t0;
  }, CALLS);
  const deadline = Date.now() + 120_000;
  while (received.events < CALLS && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
  const delivered = received.events >= CALLS;
  const untilDelivered = (await taskSeconds(cdp)) - before;
  const retries = await page.evaluate(() => window.sdk.retries?.() ?? null);
  const result = {
    ready,
    sync,
    mainThread: untilDelivered * 1000,
    lastEvent: delivered ? received.lastAt - startedAt : NaN,
    requests: received.requests,
    bytesPerEvent: received.bytes / Math.max(1, received.events),
    retries,
  };
  await context.close();
  return result;
}

/** Waits until the sink has heard nothing for `ms`. */
async function quiet(ms) {
  for (;;) {
    const last = received.lastAt;
    await new Promise((ok) => setTimeout(ok, ms));
    if (received.lastAt === last) return;
  }
}

const at = argv.indexOf('--sdks');
const timed = at >= 0 ? argv[at + 1].split(',') : ['consentry', 'snowplow', 'segment'];
const samples = Object.fromEntries(timed.map((name) => [name, []]));
for (let run = 0; run < RUNS; run++) {
  for (const name of run % 2 ? [...timed].reverse() : timed) samples[name].push(await measure(name));
}
await browser.close();
await site.close();
sink.close();

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
const ms = (n) => n.toFixed(1) + ' ms';
const keys = ['sync', 'mainThread', 'ready', 'lastEvent', 'requests', 'bytesPerEvent'];
const medians = (name) => Object.fromEntries(keys.map((k) => [k, median(samples[name].map((s) => s[k]))]));
const base = medians('consentry');

console.log(`\n${CALLS} track() calls in headless Chromium, median of ${RUNS} runs (lower is better)`);
console.log('sdk        loop    per call   main thread until delivered   per event   vs consentry   last event   requests  bytes/event   ready');
for (const name of timed) {
  const m = medians(name);
  console.log(
    [
      name.padEnd(10),
      ms(m.sync).padStart(9),
      `${((m.sync * 1000) / CALLS).toFixed(2)} µs`.padStart(10),
      ms(m.mainThread).padStart(16),
      `${((m.mainThread * 1000) / CALLS).toFixed(1)} µs`.padStart(24),
      `x${(m.sync / base.sync).toFixed(1)} / x${(m.mainThread / base.mainThread).toFixed(1)}`.padStart(14),
      ms(m.lastEvent).padStart(12),
      String(m.requests).padStart(10),
      m.bytesPerEvent.toFixed(0).padStart(12),
      ms(m.ready).padStart(8),
    ].join(' '),
  );
}
const consentryRetries = samples.consentry.map((s) => s.retries);
console.log(`consentry retries per run: ${consentryRetries.join(', ')}`);
console.log('\nwhat a page downloads (minified bundle; Consentry: wasm + JS)');
for (const [name, size] of Object.entries(sizes)) {
  console.log(`${name.padEnd(10)} gzip ${kb(size.gzip).padStart(9)}   brotli ${kb(size.brotli).padStart(9)}`);
}
