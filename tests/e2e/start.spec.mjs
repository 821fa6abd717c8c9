// `npm start` itself, as a person runs it: it builds what is missing, starts the collector and the
// site, and prints the URL; a browser that trusts the printed certificate key opens it, makes a
// choice, clicks, and sees the stored event in the inspector; Ctrl-C stops everything cleanly.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { test, expect, chromiumLaunchOptions } from '../support/fixtures.mjs';
import { request } from '../support/http.mjs';
import { assertPortFree, freePort } from '../support/ports.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

test('npm start serves the demo over HTTPS against a running collector, and Ctrl-C stops both', async () => {
  test.setTimeout(15 * 60_000); // a fresh machine builds the release collector first
  const dataDir = mkdtempSync(join(tmpdir(), 'consentry-start-'));
  const [sitePort, collectorPort] = [await freePort(), await freePort()];
  const child = spawn('node', [join(root, 'scripts/start.mjs')], {
    cwd: root,
    env: { ...process.env, PORT: String(sitePort), COLLECTOR_PORT: String(collectorPort), CONSENTRY_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  let browser;
  try {
    const url = await new Promise((ok, fail) => {
      const timer = setInterval(() => {
        const match = output.match(/Consentry demo: (https:\/\/localhost:\d+)/);
        if (match) {
          clearInterval(timer);
          ok(match[1]);
        }
      }, 200);
      exited.then(() => {
        clearInterval(timer);
        fail(new Error('npm start exited:\n' + output));
      });
    });
    expect(url).toBe(`https://localhost:${sitePort}`);
    const spki = readFileSync(join(dataDir, 'spki.txt'), 'utf8').trim();
    expect(output).toContain(`--ignore-certificate-errors-spki-list=${spki}`);

    const ca = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
    const stats = await request(url + '/inspector/api/v1/stats', { ca });
    expect(stats.status).toBe(200);
    expect(stats.json()).toMatchObject({ events: 0 });

    browser = await chromium.launch(chromiumLaunchOptions(spki));
    const page = await browser.newPage();
    await page.goto(url);
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'yes');
    await page.getByTestId('banner').getByRole('button', { name: 'Accept all' }).click();
    await page.getByTestId('add-tea-001').click();
    await expect(page.locator('#stored-events')).toContainText('Product Added', { timeout: 15_000 });
  } finally {
    await browser?.close();
    child.kill('SIGINT');
    const { code } = await exited;
    rmSync(dataDir, { recursive: true, force: true });
    expect(code, output).toBe(0);
  }
  // Both ports are free again: nothing was left running.
  for (const port of [sitePort, collectorPort]) await assertPortFree(port);
});
