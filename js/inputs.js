// The inputs the host hands the wasm with `sdk.input(kind, now, n, a, b, c, d, e)`: the numbers
// of `Input` in src/api.rs, which documents each one's arguments and answer. The bundler inlines
// them.

export const TRACK = 0;
export const PAGE = 1;
export const IDENTIFY = 2;
export const SET_CONSENT = 3;
export const SET_CCPA_OPT_OUT = 4;
export const CONSENT_SYNC = 5;
export const RESTORE = 6;
export const ADOPT_QUEUE = 7;
export const TIMEOUT = 8;
export const SEND_RESULT = 9;
export const VISIBILITY = 10;
export const NETWORK = 11;
export const STORAGE_FAILED = 12;
export const FLUSH = 13;
export const SHUTDOWN = 14;
export const POLL = 15;
export const CONSENT = 16;
export const STATS = 17;
export const HOST_CONFIG = 18;
export const IS_IDLE = 19;
export const START = 20;
export const COORDINATE = 21;
export const ROLE = 22;
export const MESSAGE = 23;
export const LEAVING = 24;
export const STORAGE_UNAVAILABLE = 25;
