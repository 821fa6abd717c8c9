// Consentry's public API: a small facade over the wasm core and its browser host.
//
// It loads the wasm once per page, buffers calls made before it is ready (keeping the time of
// each call), serialises properties with the browser's own JSON, and never lets an exception
// reach the page: bad input is dropped with a reason the core counts, caller mistakes become
// 'error' diagnostics. Only init() with a bad config rejects, with an Error naming the field.

import initWasm, { Sdk } from './generated/consentry_wasm.js';
import { freshEntropy } from './entropy.js';
import { Host } from './host.js';
import { CONSENT, FLUSH, IDENTIFY, PAGE, SET_CCPA_OPT_OUT, SET_CONSENT, SHUTDOWN, STATS, TRACK } from './inputs.js';

let loading;
function loadWasm(url) {
  loading ??= initWasm({ module_or_path: url ?? new URL('consentry_bg.wasm', import.meta.url) });
  return loading;
}

// JSON for the core: undefined when absent, '' when it cannot be serialised (a cycle, a BigInt,
// a getter that throws), which the core drops as invalid.
function json(value) {
  if (value === undefined || value === null) return undefined;
  try {
    const serialised = JSON.stringify(value);
    return typeof serialised === 'string' ? serialised : '';
  } catch {
    return '';
  }
}

const text = (value) => (typeof value === 'string' ? value : undefined);

// An event call's purposes: undefined when not named, '' when the options cannot be read (the
// core drops the event as `invalid_options`).
function purposesOf(options) {
  if (options === undefined || options === null) return undefined;
  try {
    const purposes = options.purposes;
    return purposes === undefined ? undefined : (json(purposes) ?? 'null');
  } catch {
    return '';
  }
}

const message = (error) => String((error && error.message) || error);

export class Consentry {
  #host = null;
  #pending = [];
  #listeners = new Map();
  #debug = false;

  /** Starts the SDK and resolves once it is ready. Rejects with an Error for a bad config. */
  static init(config) {
    const instance = new Consentry(config);
    return instance.ready.then(() => instance);
  }

  /** Starts the SDK and returns at once; calls made before it is ready are buffered. */
  static create(config) {
    return new Consentry(config);
  }

  constructor(config) {
    const { wasmUrl, ...coreConfig } = config ?? {};
    this.#debug = coreConfig.debug === true;
    this.ready = loadWasm(wasmUrl)
      .then(() => {
        let configJson;
        try {
          configJson = JSON.stringify(coreConfig);
        } catch (error) {
          throw new Error('invalid config: cannot be serialised: ' + message(error));
        }
        const sdk = new Sdk(configJson, crypto.getRandomValues(new Uint32Array(8)), Date.now());
        return Host.open(sdk, (type, detail) => this.#emit(type, detail));
      })
      .then((host) => {
        this.#host = host;
        // Replay what the page did while loading before anything is sent: a withdrawal made
        // early purges what storage held first.
        const pending = this.#pending;
        this.#pending = null;
        pending.forEach((call) => call());
        host.start();
      });
    this.ready.catch((error) => {
      this.#pending = null;
      this.#emit('error', { message: message(error) });
    });
  }

  // Runs `call(sdk, at, clip)` with the time of the public call, now or once ready, for calls
  // whose result the page awaits; `clip` shortens a string to the longest the core reads;
  // resolves `fallback` on failure.
  #callAsync(call, fallback) {
    const at = Date.now();
    return new Promise((resolve) => {
      const run = () => resolve(this.#run(call, at, fallback));
      if (this.#host) run();
      else if (this.#pending) this.#pending.push(run);
      else resolve(fallback);
    });
  }

  #run(call, at, fallback) {
    const host = this.#host;
    return host.input((sdk) => call(sdk, at, host.clip)) ?? fallback;
  }

  // Asks the ready core for `kind`'s JSON answer; null before ready or once stopped.
  #read(kind) {
    const answer = this.#host?.input((sdk) => sdk.input(kind, 0, 0));
    return answer === undefined ? null : JSON.parse(answer);
  }

  // A consent call's answer: '1' changed, '0' unchanged, '!' and the reason when refused.
  #answer(answer) {
    if (answer[0] !== '!') return answer === '1';
    this.#emit('error', { message: answer.slice(1) });
    return false;
  }

  #emit(type, detail) {
    if (this.#debug || type === 'error') console[type === 'error' ? 'warn' : 'debug']('[consentry]', type, detail);
    for (const listener of this.#listeners.get(type) ?? []) {
      try {
        listener(detail);
      } catch {
        // A listener's failure is the listener's own.
      }
    }
  }

  /** Records the visitor's choices, e.g. {analytics: true, advertising: false}. */
  setConsent(choices, options) {
    try {
      const choicesJson = json(choices) ?? '';
      const optionsJson = json(options);
      return this.#callAsync(
        (sdk, at, clip) => this.#answer(sdk.input(SET_CONSENT, at, 0, clip(choicesJson), clip(optionsJson), undefined, undefined, freshEntropy())),
        false,
      );
    } catch (error) {
      this.#emit('error', { message: message(error) });
      return Promise.resolve(false);
    }
  }

  /** Records the visitor's CCPA choice: true opts out of the sale of their data. */
  setCcpaOptOut(optOut, options) {
    try {
      const optionsJson = json(options);
      if (typeof optOut !== 'boolean') throw new Error('setCcpaOptOut takes true or false');
      return this.#callAsync(
        (sdk, at, clip) => this.#answer(sdk.input(SET_CCPA_OPT_OUT, at, optOut ? 1 : 0, undefined, clip(optionsJson), undefined, undefined, freshEntropy())),
        false,
      );
    } catch (error) {
      this.#emit('error', { message: message(error) });
      return Promise.resolve(false);
    }
  }

  // An event input, now or once ready, at the time of the call.
  #event(kind, a, b, c, d, e) {
    const at = Date.now();
    if (this.#host) this.#host.event(kind, at, a, b, c, d, e);
    else this.#pending?.push(() => this.#host.event(kind, at, a, b, c, d, e));
  }

  /** Captures an event. Dropped, with a reason, unless every purpose it needs is granted. */
  track(name, properties, options) {
    try {
      this.#event(TRACK, text(name), json(properties), purposesOf(options));
    } catch (error) {
      this.#emit('error', { message: message(error) });
    }
  }

  /** Captures a page view; the page's URL and referrer are sent without query or fragment. */
  page(properties, options) {
    try {
      this.#event(PAGE, text(location.href), text(document.title), text(document.referrer), json(properties), purposesOf(options));
    } catch (error) {
      this.#emit('error', { message: message(error) });
    }
  }

  /** Identifies the visitor; once admitted, the user id goes with later events. */
  identify(userId, traits, options) {
    try {
      this.#event(IDENTIFY, text(userId), json(traits), purposesOf(options));
    } catch (error) {
      this.#emit('error', { message: message(error) });
    }
  }

  /** Sends what is queued now. Settles when sent, or when sending has to wait. */
  flush() {
    return this.ready.then(
      () => {
        this.#host.input((sdk) => sdk.input(FLUSH, Date.now(), 0));
        return this.#host.whenIdle();
      },
      () => undefined,
    );
  }

  /** The consent in force, or null before the SDK is ready (or after it stopped). */
  consent() {
    return this.#read(CONSENT);
  }

  /** The counters, or null before the SDK is ready (or after it stopped). */
  stats() {
    return this.#read(STATS);
  }

  /** Listens for diagnostics: 'drop', 'deliver', 'retry', 'consent', 'storage', 'error'. */
  on(type, listener) {
    if (typeof listener !== 'function') return () => {};
    const listeners = this.#listeners.get(type) ?? new Set();
    this.#listeners.set(type, listeners.add(listener));
    return () => listeners.delete(listener);
  }

  /** Flushes, persists what is left and stops; later calls are dropped and counted. */
  shutdown() {
    return this.ready.then(
      () => {
        this.#host.input((sdk) => sdk.input(SHUTDOWN, Date.now(), 0));
        return this.#host.whenIdle().then(() => this.#host.stop());
      },
      () => undefined,
    );
  }
}

export default Consentry;
