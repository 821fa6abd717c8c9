// Shared Playwright setup: Debian's Chromium with the flags this machine needs, trusting exactly
// the e2e collector's certificate key (SPKI pin), never a download and never the closed network.
import { test as base, expect } from '@playwright/test';

export const test = base.extend({});

test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(process.env.CONSENTRY_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.CONSENTRY_SPKI}`] : []),
    ],
  },
});

export { expect };

/** Waits until `check()` resolves truthy (polling), for what arrives asynchronously. */
export async function eventually(check, { timeout = 15_000, interval = 100 } = {}) {
  const until = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((ok) => setTimeout(ok, interval));
  }
}
