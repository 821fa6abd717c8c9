// The package as users get it: loaded by a plain <script type="module"> tag, and bundled by a
// bundler (esbuild here) from `import { Consentry } from 'consentry'` with the wasm served next
// to the bundle.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { test, expect, eventually } from '../support/fixtures.mjs';
import { collectorClient } from '../support/collector.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const site = process.env.CONSENTRY_BROWSER_SITE;
const endpoint = process.env.CONSENTRY_BROWSER_COLLECTOR;
const collector = collectorClient(endpoint, process.env.CONSENTRY_BROWSER_ADMIN_TOKEN);
const names = async () => (await collector.events()).map((e) => e.name);

test.beforeEach(async () => {
  await collector.reset();
});

test('works from a plain script tag', async ({ page }) => {
  await page.goto(`${site}/pages/script-tag.html?endpoint=${encodeURIComponent(endpoint)}`);
  await expect(page.locator('body[data-done="yes"]')).toHaveCount(1);
  await eventually(async () => (await names()).includes('from a script tag'));
});

test('works from a bundler', async ({ page }) => {
  const out = join(root, 'target/test-bundle');
  mkdirSync(out, { recursive: true });
  await esbuild.build({
    entryPoints: [join(root, 'tests/pages/bundled-app.js')],
    bundle: true,
    format: 'esm',
    minify: true,
    outfile: join(out, 'app.js'),
    alias: { consentry: join(root, 'pkg/consentry.js') },
    logLevel: 'error',
  });
  copyFileSync(join(root, 'pkg/consentry_bg.wasm'), join(out, 'consentry_bg.wasm'));
  writeFileSync(join(out, 'index.html'), '<!doctype html><meta charset="utf-8"><body><script type="module" src="app.js"></script></body>');
  await page.goto(`${site}/bundle/index.html?endpoint=${encodeURIComponent(endpoint)}`);
  await expect(page.locator('body[data-done="yes"]')).toHaveCount(1);
  await eventually(async () => (await names()).includes('from a bundle'));
});
