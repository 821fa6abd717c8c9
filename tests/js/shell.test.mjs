// Fast tests of the JavaScript shell's pure parts, in Node (no browser): entropy, where storage
// puts each document, and how the transport shapes a request. The browser suites cover the rest.
//   node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { freshEntropy } from '../../js/entropy.js';
import { KEEPS_NOTHING, openStorage } from '../../js/storage.js';
import { send } from '../../js/transport.js';

test('fresh entropy is 64 hex digits, new every time', () => {
  const seen = new Set();
  for (let i = 0; i < 100; i++) {
    const hex = freshEntropy();
    assert.match(hex, /^[0-9a-f]{64}$/);
    seen.add(hex);
  }
  assert.equal(seen.size, 100);
});

function fakeLocalStorage({ full = false } = {}) {
  const items = new Map();
  return {
    items,
    get length() {
      return items.size;
    },
    getItem: (k) => items.get(k) ?? null,
    setItem(k, v) {
      if (full) throw new DOMException('full', 'QuotaExceededError');
      items.set(k, v);
    },
    removeItem: (k) => void items.delete(k),
  };
}

test('storage: the consent record goes to localStorage; without a vault nothing else is written', async () => {
  const local = fakeLocalStorage();
  globalThis.localStorage = local;
  const failed = [];
  const storage = openStorage('local', 'site', 'abcd', 'page1', (name) => failed.push(name), () => {});
  // Node has no IndexedDB: the vault cannot exist, so the core is told "consent only".
  assert.equal(storage.keeps, 1);
  assert.equal(storage.shared, true);
  storage.write('c', '{"v":1}');
  storage.write('i', '{"secret":"id"}');
  storage.write('q0', '{"secret":"events"}');
  assert.deepEqual([...local.items], [['site:v1:consent', '{"v":1}']]);
  assert.equal(storage.readConsent(), '{"v":1}');
  assert.equal(await storage.readIdentity(), undefined);
  assert.deepEqual(await storage.otherQueues(), []);
  storage.write('c', null);
  assert.equal(local.items.size, 0);
  assert.deepEqual(failed, []);
  delete globalThis.localStorage;
});

test('storage: a refused write is reported; denied storage keeps nothing and shares nothing', () => {
  globalThis.localStorage = fakeLocalStorage({ full: true });
  const failed = [];
  const storage = openStorage('local', 'site', 'abcd', 'page1', (name) => failed.push(name), () => {});
  storage.write('c', '{"v":1}');
  assert.deepEqual(failed, ['c']);
  Object.defineProperty(globalThis, 'localStorage', {
    configurable: true,
    get() {
      throw new DOMException('denied', 'SecurityError');
    },
  });
  const denied = openStorage('local', 'site', 'abcd', 'page1', () => {}, () => {});
  assert.equal(denied.keeps, KEEPS_NOTHING);
  assert.equal(denied.shared, false);
  denied.write('c', '{"v":1}');
  assert.equal(denied.readConsent(), '{"v":1}', 'kept in memory for this page');
  delete globalThis.localStorage;
  const memory = openStorage('memory', 'site', 'abcd', 'page1', () => {}, () => {});
  assert.equal(memory.keeps, null, 'the site chose memory: nothing to report');
  assert.equal(memory.shared, false);
});

/** Sends one body through the transport with `fetch` replaced; answers what fetch was given. */
async function sendWith(body, keepalive, response = { status: 200 }) {
  const calls = [];
  const results = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    return {
      status: response.status,
      headers: new Map(Object.entries(response.headers ?? {})),
      body: { cancel: async () => (calls.at(-1).cancelled = true) },
    };
  };
  const host = {
    batchUrl: 'https://c.example/v1/batch',
    sendTimeoutMs: 30000,
    input: (call) => call({ input: (...args) => results.push(args) }),
  };
  send(host, 'batch-1', keepalive, body);
  for (let i = 0; i < 50 && !results.length; i++) await new Promise((ok) => setTimeout(ok, 5));
  delete globalThis.fetch;
  return { call: calls[0], result: results[0] };
}

test('transport: small bodies go as text, large ones gzipped, keepalive ones never compressed or aborted', async () => {
  const small = await sendWith('{"version":1}', false);
  assert.equal(small.call.init.body, '{"version":1}');
  assert.equal(small.call.init.headers, undefined, 'no custom header: no preflight');
  assert.equal(small.call.init.credentials, 'omit');
  assert.ok(small.call.init.signal, 'aborted when the core stops waiting');

  const text = JSON.stringify({ version: 1, events: Array.from({ length: 50 }, (_, i) => ({ i, pad: 'x'.repeat(40) })) });
  const large = await sendWith(text, false);
  assert.equal(large.call.init.headers['Content-Encoding'], 'gzip');
  assert.equal(gunzipSync(Buffer.from(large.call.init.body)).toString(), text);

  const leaving = await sendWith(text, true);
  assert.equal(leaving.call.init.body, text);
  assert.equal(leaving.call.init.keepalive, true);
  assert.equal(leaving.call.init.signal, undefined);
});

test('transport: the status and Retry-After go back to the core, then the body is cancelled', async () => {
  const { call, result } = await sendWith('{}', false, { status: 429, headers: { 'retry-after': '7' } });
  // SEND_RESULT, time, status, batch id, Retry-After
  assert.equal(result[0], 9);
  assert.equal(result[2], 429);
  assert.equal(result[3], 'batch-1');
  assert.equal(result[4], '7');
  await new Promise((ok) => setTimeout(ok, 5));
  assert.equal(call.cancelled, true);
});
