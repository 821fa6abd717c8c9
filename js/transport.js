// Sending batches: fetch with a text/plain string body and no custom headers, so the browser needs
// no CORS preflight; credentials 'omit', so no cookie ever travels; keepalive when the core says
// the body fits the page's shared 64 KiB budget, so the send survives the page going away.
// The outcome goes back to the core; the transport decides nothing.

import { SEND_RESULT } from './inputs.js';

/** Posts `body` and reports the outcome to the core through `host`. */
export function send(host, batchId, keepalive, body) {
  let request;
  try {
    request = fetch(host.batchUrl, { method: 'POST', body, keepalive, mode: 'cors', credentials: 'omit' });
  } catch (error) {
    request = Promise.reject(error);
  }
  request.then(
    (response) =>
      host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), response.status, batchId, response.headers.get('retry-after') ?? undefined)),
    () => host.input((sdk) => sdk.input(SEND_RESULT, Date.now(), 0, batchId)),
  );
}
