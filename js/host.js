// The browser half of the shell: it runs the core's loop. After every input it drains the core's
// outputs and performs them (send, persist, notify, tell the other tabs, offer their queues),
// re-arms its one timer to the core's next deadline, and settles flush() promises once the core
// is idle. It decides nothing.
//
// Every call into the wasm goes through `input`, the host's single entry. A wasm module that
// traps (an allocation failure, say) cannot be used again, so the first exception there poisons
// the host: one 'error' diagnostic, its timer, listeners, locks and channel released, and every
// later call a no-op that answers nothing. No exception reaches the page.

import { KEEPS_CONSENT_ONLY, openStorage } from './storage.js';
import { send } from './transport.js';
import { watchLifecycle } from './lifecycle.js';
import { joinTabs } from './tabs.js';
import {
  ADOPT_QUEUE,
  HOST_CONFIG,
  IS_IDLE,
  NETWORK,
  POLL,
  RESTORE,
  START,
  STORAGE_FAILED,
  STORAGE_UNAVAILABLE,
  TIMEOUT,
  VISIBILITY,
} from './inputs.js';

const MAX_TIMER_MS = 2147483647; // setTimeout fires at once above 2^31-1 ms

const message = (error) => String((error && error.message) || error);

// Every SDK instance of the page runs in the one wasm module: once it traps, none can use it.
let trapped = false;

export class Host {
  /** A host for `sdk`, once it has restored what storage holds (the encrypted part is read
   * asynchronously) and joined the other tabs. Nothing is sent until `start()`. */
  static async open(sdk, notify) {
    const host = new Host(sdk, notify);
    await host.restore();
    return host;
  }

  constructor(sdk, notify) {
    this.sdk = sdk;
    this.notify = notify;
    this.timer = 0;
    this.timerAt = -1;
    this.waiters = [];
    this.dead = false;
    this.stopped = false;
    this.tabs = null;
    this.unwatch = () => {};
    const config = this.input((core) => JSON.parse(core.input(HOST_CONFIG, 0, 0))) ?? {};
    this.config = config;
    this.batchUrl = config.batchUrl;
    this.sendTimeoutMs = config.sendTimeoutMs;
    const max = config.maxInputChars ?? 0;
    /** Shortens a string to the longest the core reads (longer than any limit it applies, so
     * clipping never changes a decision; it keeps a 10 MB string out of wasm memory). */
    this.clip = (value) => (typeof value === 'string' && value.length > max ? value.slice(0, max) : value);
    this.storage = openStorage(
      config.storage,
      config.storagePrefix,
      config.scope,
      config.pageId,
      (name) => this.input((core) => core.input(STORAGE_FAILED, Date.now(), 0, name)),
      () => this.input((core) => core.input(STORAGE_UNAVAILABLE, Date.now(), KEEPS_CONSENT_ONLY)),
    );
  }

  async restore() {
    const identity = await this.storage.readIdentity();
    // Read after the wait, with nothing awaited before the listeners are attached: a choice
    // another tab made meanwhile is not missed.
    const consent = this.storage.readConsent();
    this.input((core) => {
      const now = Date.now();
      core.input(RESTORE, now, 0, consent, identity);
      if (this.storage.keeps !== null) core.input(STORAGE_UNAVAILABLE, now, this.storage.keeps);
      if (navigator.onLine === false) core.input(NETWORK, now, 0);
      if (document.visibilityState === 'hidden') core.input(VISIBILITY, now, 1);
    });
    if (this.dead) return;
    this.tabs = joinTabs(this, this.config.storagePrefix, this.config.scope, this.config.pageId, this.storage.shared);
    this.tabs.join();
    this.unwatch = watchLifecycle(this, this.storage.consentKey, this.tabs);
  }

  /** Restored, and the page's early calls replayed: sending may begin. */
  start() {
    this.input((core) => core.input(START, Date.now(), 0));
  }

  /** The single entry: hands the core one input (`call(sdk)`), performs what it asks for, and
   * answers the call's result; undefined once poisoned. */
  input(call) {
    if (trapped) this.poison(new Error('another instance of the SDK in this page failed'));
    if (this.dead) return undefined;
    try {
      const result = call(this.sdk);
      this.pump();
      return result;
    } catch (error) {
      this.poison(error);
      return undefined;
    }
  }

  /** The hot path of `track`, `page` and `identify`: one event input (`kind`, strings `a` to
   * `e` clipped), with no closure to allocate; otherwise exactly `input`. */
  event(kind, at, a, b, c, d, e) {
    if (trapped) this.poison(new Error('another instance of the SDK in this page failed'));
    if (this.dead) return;
    const clip = this.clip;
    try {
      this.sdk.input(kind, at, 0, clip(a), clip(b), clip(c), clip(d), clip(e));
      this.pump();
    } catch (error) {
      this.poison(error);
    }
  }

  pump() {
    for (let output; !this.dead && (output = this.sdk.input(POLL, 0, 0)) !== undefined; ) this.perform(output);
    if (this.dead) return;
    this.arm(this.sdk.deadline());
    if (this.waiters.length && this.sdk.input(IS_IDLE, 0, 0) === '1') this.settleWaiters();
  }

  // Output encoding: see src/boundary.rs.
  perform(output) {
    const tag = output[0];
    if (this.stopped && tag !== 'n' && tag !== 'p') return;
    if (tag === 's') {
      send(this, output.slice(1, 37), output[37] === 'k', output.slice(38));
    } else if (tag === 'p') {
      const name = output[1] === 'q' ? output.slice(1, 3) : output[1];
      const at = 1 + name.length;
      this.storage.write(name, output[at] === '=' ? output.slice(at + 1) : null);
    } else if (tag === 'n') {
      const newline = output.indexOf('\n');
      this.notify(output.slice(1, newline), JSON.parse(output.slice(newline + 1)));
    } else if (tag === 'b') {
      this.tabs?.post(output.slice(1));
    } else if (tag === 'a') {
      this.adopt();
    }
  }

  /** Offers the core the queues other pages left, each with whether its page is still open. */
  async adopt() {
    const queues = await this.storage.otherQueues();
    if (!queues.length || this.dead || !this.tabs) return;
    const liveness = await this.tabs.liveness(queues.map(([owner]) => owner));
    queues.forEach(([owner, doc, text], i) => {
      const taken = this.input((core) => core.input(ADOPT_QUEUE, Date.now(), liveness[i], text, owner));
      if (taken === '1') this.storage.removeOther(doc);
    });
  }

  arm(deadline) {
    if (this.stopped) return;
    if (deadline === this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = deadline;
    if (deadline < 0) return;
    this.timer = setTimeout(() => {
      this.timerAt = -1;
      this.input((core) => core.input(TIMEOUT, Date.now(), 0));
    }, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
  }

  /** Resolves once nothing is being flushed or is in flight (at once when poisoned). */
  whenIdle() {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (this.dead) this.settleWaiters();
      else this.input(() => undefined);
    });
  }

  settleWaiters() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((resolve) => resolve());
  }

  poison(error) {
    if (this.dead) return;
    this.dead = true;
    trapped = true;
    this.stop();
    this.settleWaiters();
    this.notify('error', { message: 'consentry stopped after an internal error and does nothing more: ' + message(error) });
  }

  /** Stops for good: no timer, listener, lock or channel, nothing sent, told or adopted again
   * (`shutdown()`, or a trap). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timerAt = -1;
    this.unwatch();
    this.tabs?.stop();
  }
}
