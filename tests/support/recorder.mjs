// A recording endpoint for browser tests that must see exactly what the SDK sends: it does NOT
// deduplicate. It answers `POST /v1/batch` from a script of behaviours and records the events
// of every batch it answered with 2xx, duplicates kept, so "exactly once" can be counted.
//
// Behaviours, taken in order from the script, then `fallback`:
//   '200'     answer 200 with a small JSON body
//   '500'     answer 500
//   'drop'    destroy the connection without an answer
//   'hold'    keep the request unanswered until `release('200' | 'drop')`
//   'nostore' answer 200 with `Cache-Control: no-store` and a body (what some gateways do)
//
// Every answer closes its connection (`keepAlive` off unless asked for): Chromium re-sends a
// request by itself when a *reused* connection closes without an answer, which would turn a
// dropped connection into a hidden retry (with the same body) that no page ever hears about.

import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** Starts a recorder on a free loopback port; resolves { url, delivered, requests, ... }. */
export async function startRecorder({ fallback = '200', keepAlive = false } = {}) {
  const script = [];
  const held = [];
  const delivered = []; // event ids of 2xx-answered batches, in order, duplicates kept
  const events = [];
  const requests = []; // every request: { behaviour, ids, bytes, encoding, at }
  let current = fallback;

  function cors(req, res) {
    if (!keepAlive) res.setHeader('Connection', 'close');
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
    }
  }

  function answer(res, behaviour, batch) {
    if (behaviour === 'drop') {
      res.socket?.destroy();
      return;
    }
    if (behaviour === '500') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"scripted"}');
      return;
    }
    for (const event of batch.events ?? []) {
      delivered.push(event.id);
      events.push(event);
    }
    const headers = { 'content-type': 'application/json' };
    if (behaviour === 'nostore') headers['cache-control'] = 'no-store';
    res.writeHead(200, headers);
    res.end(JSON.stringify({ accepted: (batch.events ?? []).length, padding: 'x'.repeat(256) }));
  }

  const server = createServer((req, res) => {
    cors(req, res);
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, content-encoding');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204);
      res.end();
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      const encoding = req.headers['content-encoding'] ?? null;
      if (encoding === 'gzip') raw = gunzipSync(raw);
      let batch;
      try {
        batch = JSON.parse(raw.toString('utf8'));
      } catch {
        res.writeHead(400);
        res.end();
        return;
      }
      const behaviour = script.shift() ?? current;
      requests.push({
        behaviour,
        ids: (batch.events ?? []).map((e) => e.id),
        bytes: Buffer.concat(chunks).length,
        rawBytes: raw.length,
        encoding,
        anonymousIds: [...new Set((batch.events ?? []).map((e) => e.anonymous_id ?? null))],
        batchId: batch.batch_id,
        at: Date.now(),
      });
      if (behaviour === 'hold') held.push({ res, batch });
      else answer(res, behaviour, batch);
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    delivered,
    events,
    requests,
    /** Answers the next requests with these behaviours, in order. */
    script: (...behaviours) => script.push(...behaviours),
    /** What requests get once the script is used up. */
    fallback: (behaviour) => (current = behaviour),
    /** Answers every held request with `behaviour`. */
    release(behaviour) {
      for (const { res, batch } of held.splice(0)) answer(res, behaviour, batch);
    },
    heldCount: () => held.length,
    /** Ids delivered more than once. */
    duplicates() {
      const seen = new Set();
      return delivered.filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
    },
    close: () =>
      new Promise((ok) => {
        for (const { res } of held.splice(0)) res.socket?.destroy();
        server.closeAllConnections?.();
        server.close(ok);
      }),
  };
}

/** A fresh recorder for every test of a spec file: registers the hooks on `test` and answers a
 * function that returns the current one. */
export function recorderPerTest(test) {
  let current;
  test.beforeEach(async () => {
    current = await startRecorder();
  });
  test.afterEach(async () => {
    await current.close();
  });
  return () => current;
}
