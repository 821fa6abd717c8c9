// The demo site as `npm start` and the end-to-end tests serve it: www/ at /, the built package at
// /pkg/, HTTPS with the collector's local certificate, the inspector's reads proxied to the
// collector's admin API (the token stays on the server), /demo-config.json telling the page
// where the collector is, and a Content-Security-Policy as strict as a real site would send.

import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStaticServer } from './serve.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The policy the demo runs under: its own scripts and the wasm, and the collector to talk to. */
export function demoCsp(collectorUrl) {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    `connect-src 'self' ${new URL(collectorUrl).origin}`,
    "img-src 'self' data:",
    "style-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Serves the demo.
 * @param {object} options
 * @param {number} options.port the port (the collector's CORS grant names it)
 * @param {string} options.collectorUrl where the page sends batches
 * @param {string} options.collectorDataDir the collector's data directory (cert.pem, key.pem, ca.pem)
 * @param {string} options.adminToken the collector's admin token, for the inspector proxy
 * @param {string} options.apiKey the write key the page uses
 */
export function startDemoSite({ port, collectorUrl, collectorDataDir, adminToken, apiKey }) {
  return startStaticServer({
    port,
    host: '127.0.0.1',
    mounts: { '/': join(root, 'www'), '/pkg/': join(root, 'pkg') },
    tls: { cert: join(collectorDataDir, 'cert.pem'), key: join(collectorDataDir, 'key.pem') },
    inspector: { url: collectorUrl, token: adminToken, ca: join(collectorDataDir, 'ca.pem') },
    documents: { '/demo-config.json': { endpoint: collectorUrl, apiKey } },
    csp: demoCsp(collectorUrl),
  });
}
