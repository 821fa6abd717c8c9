/* tslint:disable */
/* eslint-disable */

/**
 * One running SDK instance: the core and nothing else.
 */
export class Sdk {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * When to hand in [`Input::Timeout`] next (milliseconds since the epoch), or -1 for never.
     */
    deadline(): number;
    /**
     * Hands the core one input (`kind`, an [`Input`] discriminant) and answers what it
     * answers. Unknown kinds do nothing. Never throws.
     */
    input(kind: number, now: number, n: number, a?: string | null, b?: string | null, c?: string | null, d?: string | null, e?: string | null): string | undefined;
    /**
     * Starts an instance from the JSON text of the page's config, eight random words from
     * `crypto.getRandomValues` and the time.
     */
    constructor(config: string, seed: Uint32Array | number[], now: number);
}

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_sdk_free: (a: number, b: number) => void;
    readonly sdk_deadline: (a: number) => number;
    readonly sdk_input: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number, k: number, l: number, m: number, n: number) => [number, number];
    readonly sdk_new: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
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
