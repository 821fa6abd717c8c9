// Sending batches: fetch with no cookies (`credentials: 'omit'`); keepalive only when the core
// says so (the page is being hidden and the body fits the shared 64 KiB budget); every response
// body read to the end, because Chromium counts a keepalive request against that budget until
// its body is consumed. Bodies of more than 1 KiB are gzipped with CompressionStream where the
// browser has it, except keepalive ones (compressing could outlive the page). A plain string
// body is `text/plain`, which needs no CORS preflight; a gzipped one carries
// `Content-Encoding: gzip`, whose preflight the collector answers (and the browser caches).
// The outcome goes back to the core; the transport decides nothing.

import { SEND_RESULT } from './inputs.js';

const COMPRESS_ABOVE = 1024;

const encoder = new TextEncoder();

async function gzip(text) {
  const compression = new CompressionStream('gzip');
  const writer = compression.writable.getWriter();
  writer.write(encoder.encode(text));
  writer.close();
  return new Response(compression.readable).arrayBuffer();
}

async function post(url, keepalive, body) {
  const compress = !keepalive && body.length > COMPRESS_ABOVE && typeof CompressionStream === 'function';
  const init = { method: 'POST', body, keepalive, mode: 'cors', credentials: 'omit' };
  if (compress) {
    try {
      init.body = await gzip(body);
      init.headers = { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Encoding': 'gzip' };
    } catch {
      // Compression failed: send the text as it is.
    }
  }
  const response = await fetch(url, init);
  try {
    await response.arrayBuffer();
  } catch {
    // The status is what counts; a body cut short changes nothing.
  }
  return response;
}

/** Posts `body` and reports the outcome to the core through `host`. */
export function send(host, batchId, keepalive, body) {
  post(host.batchUrl, keepalive, body).then(
    (response) =>
      host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), response.status, batchId, response.headers.get('retry-after') ?? undefined)),
    () => host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), 0, batchId)),
  );
}
