// Starting the SDK in a test page: the blank page, `window.cx`, every diagnostic recorded in
// `window.diagnostics`, and (optionally) every batch the page sends counted in
// `window.fetches`, so a test can tell which tab talked to the endpoint.

/** Counts the page's batch sends (fetches to `/v1/batch`) in `window.fetches` (install before
 * the page loads). */
export async function countFetches(page) {
  await page.addInitScript(() => {
    window.fetches = 0;
    const original = window.fetch;
    window.fetch = function (...args) {
      if (String(args[0]).endsWith('/v1/batch')) window.fetches += 1;
      return original.apply(this, args);
    };
  });
}

/** Opens `site`'s blank page and starts an SDK with `config` as `window.cx`. */
export async function startSdk(page, site, config) {
  await page.goto(site + '/pages/blank.html');
  await page.evaluate(async (config) => {
    const { Consentry } = await import('/pkg/consentry.js');
    window.diagnostics = [];
    window.cx = Consentry.create(config);
    for (const type of ['drop', 'deliver', 'retry', 'consent', 'storage', 'error']) {
      window.cx.on(type, (detail) => window.diagnostics.push({ type, ...detail }));
    }
    await window.cx.ready;
  }, config);
}
