/* tslint:disable */
/* eslint-disable */

/**
 * One running SDK instance: the core and nothing else.
 */
export class Sdk {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Offers a queue another page stored; `true` when the host should remove that key.
     */
    adoptQueue(now: number, text: string): boolean;
    /**
     * Another tab changed the stored consent (`None`: it was removed).
     */
    consentSync(now: number, text?: string | null): void;
    /**
     * The consent in force as JSON: `{granted, hasChoices, ccpaOptOut, state}`.
     */
    consent(): string;
    /**
     * When to call [`Sdk::timeout`] next (milliseconds since the epoch), or -1 for never.
     */
    deadline(): number;
    /**
     * Sends everything queued now.
     */
    flush(now: number): void;
    /**
     * What the host needs from the config: `{batchUrl, storage, storagePrefix, debug}` as JSON.
     */
    hostConfig(): string;
    /**
     * `identify(userId, traits, {purposes})`; `user_id` is `None` when the page passed a
     * non-string.
     */
    identify(now: number, user_id?: string | null, traits?: string | null, purposes?: string | null): string | undefined;
    /**
     * Whether a flush has finished: nothing is being flushed or is in flight.
     */
    isIdle(): boolean;
    /**
     * The browser went online or offline.
     */
    network(now: number, online: boolean): void;
    /**
     * Starts an instance from the JSON text of the page's config, eight random words from
     * `crypto.getRandomValues` and the time.
     */
    constructor(config: string, seed: Uint32Array | number[], now: number);
    /**
     * `page(properties, {purposes})`, with what the browser reports of the page.
     */
    page(now: number, url?: string | null, title?: string | null, referrer?: string | null, properties?: string | null, purposes?: string | null): string | undefined;
    /**
     * The next output for the host, encoded as described in `boundary`, or `None` when drained.
     */
    poll(): string | undefined;
    /**
     * Restores the stored consent and identity documents (what storage holds, if anything).
     */
    restore(now: number, consent?: string | null, identity?: string | null): void;
    /**
     * A send settled: `status` 0 means no response (network error, CORS, abort).
     */
    sendResult(now: number, batch_id: string, status: number, retry_after?: string | null): void;
    /**
     * Records the CCPA choice: `true` opts out of the sale of the visitor's data.
     */
    setCcpaOptOut(now: number, opted_out: boolean, options?: string | null): boolean;
    /**
     * Records choices given as the JSON of `{purpose: granted}`, with optional options JSON
     * (`{document, location, hardwareId, source}`). Returns whether anything changed.
     */
    setConsent(now: number, choices: string, options?: string | null): boolean;
    /**
     * Flushes, persists and refuses everything later.
     */
    shutdown(now: number): void;
    /**
     * The counters as JSON.
     */
    stats(): string;
    /**
     * Storage refused to write a document (`c`, `i` or `q`).
     */
    storageFailed(now: number, key: string): void;
    /**
     * The timer fired.
     */
    timeout(now: number): void;
    /**
     * `track(name, properties, {purposes})`: `name` is `None` when the page passed a non-string,
     * `properties` and `purposes` are JSON text (an empty string when serialising failed).
     * Returns the event id when admitted.
     */
    track(now: number, name?: string | null, properties?: string | null, purposes?: string | null): string | undefined;
    /**
     * The page was hidden (`visibilitychange`, `pagehide`) or shown again.
     */
    visibility(now: number, hidden: boolean): void;
}

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_sdk_free: (a: number, b: number) => void;
    readonly sdk_adoptQueue: (a: number, b: number, c: number, d: number) => number;
    readonly sdk_consent: (a: number) => [number, number];
    readonly sdk_consentSync: (a: number, b: number, c: number, d: number) => void;
    readonly sdk_deadline: (a: number) => number;
    readonly sdk_flush: (a: number, b: number) => void;
    readonly sdk_hostConfig: (a: number) => [number, number];
    readonly sdk_identify: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number];
    readonly sdk_isIdle: (a: number) => number;
    readonly sdk_network: (a: number, b: number, c: number) => void;
    readonly sdk_new: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly sdk_page: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number, k: number, l: number) => [number, number];
    readonly sdk_poll: (a: number) => [number, number];
    readonly sdk_restore: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly sdk_sendResult: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => void;
    readonly sdk_setCcpaOptOut: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly sdk_setConsent: (a: number, b: number, c: number, d: number, e: number, f: number) => [number, number, number];
    readonly sdk_shutdown: (a: number, b: number) => void;
    readonly sdk_stats: (a: number) => [number, number];
    readonly sdk_storageFailed: (a: number, b: number, c: number, d: number) => void;
    readonly sdk_timeout: (a: number, b: number) => void;
    readonly sdk_track: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number) => [number, number];
    readonly sdk_visibility: (a: number, b: number, c: number) => void;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
