// Starts what the browser and end-to-end suites run against, once for the whole run:
// - browser suite: a collector on plain loopback HTTP and a static server for pkg/ and test pages;
// - e2e suite: a collector on real TLS with its own local certificate, and the demo site over
//   HTTPS with the same certificate and policy, as `npm start` runs them.
// Addresses reach the tests through environment variables; the returned function stops it all.

import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCollector } from './collector.mjs';
import { startStaticServer } from '../../scripts/serve.mjs';
import { startDemoSite } from '../../scripts/demo-site.mjs';
import { freePort } from './ports.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export default async function globalSetup() {
  const stops = [];
  try {
    const browserCollector = await startCollector();
    stops.push(() => browserCollector.stop());
    const browserSite = await startStaticServer({
      mounts: {
        '/pkg/': join(root, 'pkg'),
        '/pages/': join(root, 'tests/pages'),
        '/bundle/': join(root, 'target/test-bundle'),
      },
    });
    stops.push(() => browserSite.close());

    // The site's origin must be known before the collector starts (its CORS grant), and the site
    // needs the certificate the collector creates on start: pick the site's port first.
    const sitePort = await freePort();
    const e2eCollector = await startCollector({
      tls: true,
      origins: [`https://localhost:${sitePort}`],
      extra: ['--sale-purposes', 'advertising'],
    });
    stops.push(() => e2eCollector.stop());
    const e2eSite = await startDemoSite({
      port: sitePort,
      collectorUrl: e2eCollector.url,
      collectorDataDir: e2eCollector.dataDir,
      adminToken: e2eCollector.adminToken,
      apiKey: 'pk_test',
    });
    stops.push(() => e2eSite.close());

    Object.assign(process.env, {
      CONSENTRY_BROWSER_COLLECTOR: browserCollector.url,
      CONSENTRY_BROWSER_ADMIN_TOKEN: browserCollector.adminToken,
      CONSENTRY_BROWSER_SITE: browserSite.url,
      CONSENTRY_E2E_COLLECTOR: e2eCollector.url,
      CONSENTRY_E2E_ADMIN_TOKEN: e2eCollector.adminToken,
      CONSENTRY_E2E_CA_DIR: e2eCollector.dataDir,
      CONSENTRY_E2E_SITE: e2eSite.url,
      CONSENTRY_SPKI: e2eCollector.spki,
    });
  } catch (error) {
    for (const stop of stops.reverse()) await stop();
    throw error;
  }
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
