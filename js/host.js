// The browser half of the shell: it runs the core's loop. After every input it drains the core's
// outputs and performs them (send, persist, notify), re-arms its one timer to the core's next
// deadline, and settles flush() promises once the core is idle. It decides nothing.

import { openStorage } from './storage.js';
import { send } from './transport.js';
import { watchLifecycle } from './lifecycle.js';
import { ADOPT_QUEUE, HOST_CONFIG, IS_IDLE, NETWORK, POLL, RESTORE, START, STORAGE_FAILED, TIMEOUT, VISIBILITY } from './inputs.js';

const MAX_TIMER_MS = 2147483647; // setTimeout fires at once above 2^31-1 ms

export class Host {
  constructor(sdk, notify) {
    this.sdk = sdk;
    this.notify = notify;
    this.timer = 0;
    this.timerAt = -1;
    this.waiters = [];
    const config = JSON.parse(sdk.input(HOST_CONFIG, 0, 0));
    this.batchUrl = config.batchUrl;
    const pageId = Array.from(crypto.getRandomValues(new Uint32Array(2)), (w) => w.toString(36)).join('');
    this.storage = openStorage(config.storage, config.storagePrefix, pageId);
    const now = Date.now();
    sdk.input(RESTORE, now, 0, this.storage.read('c'), this.storage.read('i'));
    if (this.storage.fellBack) notify('storage', '{"key":null,"problem":"unavailable"}');
    for (const [key, text] of this.storage.otherQueues()) {
      if (sdk.input(ADOPT_QUEUE, now, 0, text) === '1') this.storage.removeOther(key);
    }
    this.unwatch = watchLifecycle(this, this.storage.consentKey);
    if (navigator.onLine === false) sdk.input(NETWORK, now, 0);
    if (document.visibilityState === 'hidden') sdk.input(VISIBILITY, now, 1);
    this.pump();
  }

  /** Restored and replayed the page's early calls: sending may begin. */
  start() {
    this.input((sdk) => sdk.input(START, Date.now(), 0));
  }

  /** Hands the core one input (`call(sdk)`), then performs what it asks for. */
  input(call) {
    const result = call(this.sdk);
    this.pump();
    return result;
  }

  pump() {
    for (let output; (output = this.sdk.input(POLL, 0, 0)) !== undefined; ) this.perform(output);
    this.arm(this.sdk.deadline());
    if (this.waiters.length && this.sdk.input(IS_IDLE, 0, 0) === '1') {
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((resolve) => resolve());
    }
  }

  // Output encoding: see src/boundary.rs.
  perform(output) {
    const tag = output[0];
    if (tag === 's') {
      send(this, output.slice(1, 37), output[37] === 'k', output.slice(38));
    } else if (tag === 'p') {
      const name = output[1] === 'q' ? output.slice(1, 3) : output[1];
      const at = 1 + name.length;
      if (!this.storage.write(name, output[at] === '=' ? output.slice(at + 1) : null)) {
        this.sdk.input(STORAGE_FAILED, Date.now(), 0, name);
      }
    } else if (tag === 'n') {
      const newline = output.indexOf('\n');
      this.notify(output.slice(1, newline), output.slice(newline + 1));
    }
  }

  arm(deadline) {
    if (deadline === this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = deadline;
    if (deadline < 0) return;
    this.timer = setTimeout(() => {
      this.timerAt = -1;
      this.input((sdk) => sdk.input(TIMEOUT, Date.now(), 0));
    }, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
  }

  /** Resolves once nothing is being flushed or is in flight. */
  whenIdle() {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  stop() {
    clearTimeout(this.timer);
    this.timerAt = -1;
    this.unwatch();
  }
}
