// Shared Playwright setup: Debian's Chromium with the flags this machine needs, trusting exactly
// the e2e collector's certificate key (SPKI pin), never a download and never the closed network.
// Every spec imports `test` from here, so all of them share one set of options.
import { test as base, expect } from '@playwright/test';

/** How to launch Debian's Chromium here; `spki` pins the one certificate key it trusts. */
export function chromiumLaunchOptions(spki) {
  return {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(spki ? [`--ignore-certificate-errors-spki-list=${spki}`] : []),
    ],
  };
}

/** Playwright's `test`, launching Chromium as `chromiumLaunchOptions` says (the pin is known once
 * global setup has started the e2e collector, so it is read when the worker starts). */
export const test = base.extend({
  launchOptions: [async ({}, use) => use(chromiumLaunchOptions(process.env.CONSENTRY_SPKI)), { scope: 'worker' }],
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
