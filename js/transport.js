// Sending batches: fetch with no cookies (`credentials: 'omit'`); keepalive only when the core
// says so (the page is being hidden and the body fits the shared 64 KiB budget); every other
// request aborted when the core stops waiting for it, so a late answer cannot make a copy; the
// status reported as soon as it arrives, then the body cancelled, because Chromium counts a
// keepalive request against that budget until its body is consumed. Bodies of more than 1 KiB
// are gzipped with CompressionStream where the browser has it, except keepalive ones
// (compressing could outlive the page). A plain string body is `text/plain`, which needs no CORS
// preflight; a gzipped one carries `Content-Encoding: gzip`, whose preflight the collector
// answers (and the browser caches). The outcome goes back to the core; the transport decides
// nothing.

import { SEND_RESULT } from './inputs.js';

const COMPRESS_ABOVE = 1024;
const encoder = new TextEncoder();

async function gzip(text) {
  const compression = new CompressionStream('gzip');
  const writer = compression.writable.getWriter();
  writer.write(encoder.encode(text)).catch(() => {});
  writer.close().catch(() => {});
  return new Response(compression.readable).arrayBuffer();
}

async function post(url, keepalive, body, timeoutMs) {
  const init = { method: 'POST', body, keepalive, mode: 'cors', credentials: 'omit' };
  if (!keepalive) {
    if (timeoutMs > 0 && typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(timeoutMs);
    if (body.length > COMPRESS_ABOVE && typeof CompressionStream === 'function') {
      try {
        init.body = await gzip(body);
        init.headers = { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Encoding': 'gzip' };
      } catch {
        // Compression failed: send the text as it is.
      }
    }
  }
  return fetch(url, init);
}

/** Posts `body` and reports the outcome to the core through `host`. */
export function send(host, batchId, keepalive, body) {
  post(host.batchUrl, keepalive, body, host.sendTimeoutMs).then(
    (response) => {
      host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), response.status, batchId, response.headers.get('retry-after') ?? undefined));
      response.body?.cancel().catch(() => {});
    },
    () => host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), 0, batchId)),
  );
}
