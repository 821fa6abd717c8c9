// The browser half of the shell: it runs the core's loop. After every input it drains the core's
// outputs and performs them (send, persist, notify), re-arms its one timer to the core's next
// deadline, and settles flush() promises once the core is idle. It decides nothing.

import { openStorage } from './storage.js';
import { send } from './transport.js';
import { watchLifecycle } from './lifecycle.js';

const MAX_TIMER_MS = 2147483647; // setTimeout fires at once above 2^31-1 ms

export class Host {
  constructor(sdk, notify) {
    this.sdk = sdk;
    this.notify = notify;
    this.timer = 0;
    this.timerAt = -1;
    this.waiters = [];
    const config = JSON.parse(sdk.hostConfig());
    this.batchUrl = config.batchUrl;
    const pageId = Array.from(crypto.getRandomValues(new Uint32Array(2)), (w) => w.toString(36)).join('');
    this.storage = openStorage(config.storage, config.storagePrefix, pageId);
    const now = Date.now();
    sdk.restore(now, this.storage.read('c'), this.storage.read('i'));
    if (this.storage.fellBack) notify('storage', '{"key":null,"problem":"unavailable"}');
    for (const [key, text] of this.storage.otherQueues()) {
      if (sdk.adoptQueue(now, text)) this.storage.removeOther(key);
    }
    this.unwatch = watchLifecycle(this, this.storage.consentKey);
    if (navigator.onLine === false) sdk.network(now, false);
    if (document.visibilityState === 'hidden') sdk.visibility(now, true);
    this.pump();
  }

  /** Hands the core one input (`call(sdk)`), then performs what it asks for. */
  input(call) {
    const result = call(this.sdk);
    this.pump();
    return result;
  }

  pump() {
    for (let output; (output = this.sdk.poll()) !== undefined; ) this.perform(output);
    this.arm(this.sdk.deadline());
    if (this.waiters.length && this.sdk.isIdle()) {
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
      const letter = output[1];
      if (!this.storage.write(letter, output[2] === '=' ? output.slice(3) : null)) {
        this.sdk.storageFailed(Date.now(), letter);
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
      this.input((sdk) => sdk.timeout(Date.now()));
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
