// `npm run bench`: Consentry side by side with the JavaScript SDKs people use today, in headless
// Chromium, one fresh page per run, runs interleaved, medians reported:
// - the main-thread cost of 10,000 track() calls (the synchronous loop, and the loop plus the work
//   it queued, measured until the next macrotask);
// - time to ready (module fetch + compile + init);
// - what a page downloads (gzip and brotli of each SDK bundled and minified).
// A local sink answers every request with 200, so no SDK waits on a network. Not a test: timings
// on this machine are noisy, so compare ratios within one run.
//
//   node bench/track.mjs [--runs 7] [--calls 10000]

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
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

// A sink that accepts anything, with CORS, like a healthy collector.
const sink = createServer((req, res) => {
  res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
  res.setHeader('access-control-allow-credentials', 'true');
  res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '*');
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
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

async function measure(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(site.url + '/pages/blank.html');
  const url = name === 'consentry' ? '/entries/consentry.js' : `/bench/${name}.js`;
  const result = await page.evaluate(
    async ({ url, endpoint, calls }) => {
      const started = performance.now();
      const sdk = await (await import(url)).setup(endpoint);
      const ready = performance.now() - started;
      for (let i = 0; i < 200; i++) sdk.track(i); // warm up the JIT
      await new Promise((ok) => setTimeout(ok, 50));
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) sdk.track(i);
      const t1 = performance.now();
      await new Promise((ok) => setTimeout(ok, 0));
      const t2 = performance.now();
      return { ready, sync: t1 - t0, withQueued: t2 - t0 };
    },
    { url, endpoint, calls: CALLS },
  );
  await context.close();
  return result;
}

const timed = ['consentry', 'snowplow', 'segment'];
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
const base = Object.fromEntries(['sync', 'withQueued', 'ready'].map((k) => [k, median(samples.consentry.map((s) => s[k]))]));

console.log(`\n${CALLS} track() calls in headless Chromium, median of ${RUNS} runs (lower is better)`);
console.log('sdk        loop        loop+queued   per call   vs consentry   ready');
for (const name of timed) {
  const m = Object.fromEntries(['sync', 'withQueued', 'ready'].map((k) => [k, median(samples[name].map((s) => s[k]))]));
  console.log(
    `${name.padEnd(10)} ${ms(m.sync).padStart(10)} ${ms(m.withQueued).padStart(12)} ${((m.withQueued * 1000) / CALLS).toFixed(2).padStart(7)} µs ${('x' + (m.withQueued / base.withQueued).toFixed(2)).padStart(12)} ${ms(m.ready).padStart(10)}`,
  );
}
console.log('\nwhat a page downloads (minified bundle; Consentry: wasm + JS)');
for (const [name, size] of Object.entries(sizes)) {
  console.log(`${name.padEnd(10)} gzip ${kb(size.gzip).padStart(9)}   brotli ${kb(size.brotli).padStart(9)}`);
}
