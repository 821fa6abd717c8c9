// Playwright drives Debian's Chromium (never a downloaded browser) against the real collector.
// `browser`: the SDK's JavaScript host in a page (storage, keepalive, timers, retries, tabs).
// `e2e`: the demo site over HTTPS against the collector over TLS, as `npm start` runs them.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './tests/support/global-setup.mjs',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: './test-results',
  projects: [
    { name: 'browser', testMatch: 'browser/*.spec.mjs' },
    { name: 'e2e', testMatch: 'e2e/*.spec.mjs' },
  ],
});
