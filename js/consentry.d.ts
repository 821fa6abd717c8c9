// Type declarations for Consentry's public API (the facade in consentry.js).

/** A purpose name declared in the config: a lower-case letter, then up to 63 of a-z, 0-9, _ and -. */
export type PurposeName = string;

/** A config rule: events it matches need `purposes`. The first matching rule wins. */
export interface PurposeRule {
  /** An exact event name, or a prefix ending in `*` (`"ad_*"`). */
  event?: string;
  /** Only events of this type. */
  type?: 'track' | 'page' | 'identify';
  /** What matching events need; every one must be granted. */
  purposes: PurposeName[];
}

/** Everything `init` accepts. Unknown fields are refused, so a typo cannot weaken a setting. */
export interface ConsentryConfig {
  /** The ingestion endpoint's base URL, in ASCII (punycode for an international host); batches
   * go to `<endpoint>/v1/batch`. https only (plain http is accepted for localhost, 127.0.0.1 and
   * [::1]). */
  endpoint: string;
  /** The site's public write key (1 to 128 bytes). */
  apiKey: string;
  /** The non-essential purposes the site uses, e.g. ['analytics', 'advertising']. Each is
   * denied until the visitor's choice is recorded. */
  purposes: PurposeName[];
  /** Always granted, never recorded; consent changes are sent under them. Default ['necessary']. */
  essentialPurposes?: PurposeName[];
  /** Purposes denied while the visitor opts out of the sale of their data (CCPA). Default []. */
  salePurposes?: PurposeName[];
  /** What an event needs when neither the call nor a rule says. Default [] (such events are dropped). */
  defaultPurposes?: PurposeName[];
  /** Rules mapping event names and types to purposes. */
  rules?: PurposeRule[];
  /** Send as soon as this many events are queued (1 to 100, default 20). */
  flushAt?: number;
  /** Send queued events at most this long after the first was queued (0 to 3600000 ms, default 2000). */
  flushIntervalMs?: number;
  /** The most events kept waiting; beyond it the oldest is dropped (1 to 100000, default 10000). */
  maxQueueEvents?: number;
  /** Events older than this are dropped instead of sent (default 7 days). */
  maxEventAgeMs?: number;
  /** Retries for 408, 429, 5xx and network errors. */
  retry?: {
    /** Retryable answers an event may receive before it is dropped (1 to 100, default 10). Network
     * errors do not count. */
    maxAttempts?: number;
    /** The first backoff window (default 1000 ms). */
    baseDelayMs?: number;
    /** The largest backoff window (default 300000 ms). */
    maxDelayMs?: number;
  };
  /** 'local' (default): localStorage, with a memory fallback when it is unavailable. 'memory':
   * nothing survives a reload. */
  storage?: 'local' | 'memory';
  /** The prefix of every storage key (default 'consentry'). */
  storagePrefix?: string;
  /** Log every diagnostic to the console. */
  debug?: boolean;
  /** Where to load the wasm from (default: next to consentry.js). */
  wasmUrl?: string | URL;
}

/** Where and under which notice a choice was made. */
export interface ConsentOptions {
  /** The notice version the visitor saw, e.g. 'notice-v3'. */
  document?: string;
  /** Where the choice was collected, e.g. 'banner' or 'preference_centre'. */
  location?: string;
  /** A device id the site chooses to attach to the record. */
  hardwareId?: string;
  /** 'user' (default): the visitor chose; 'api': the site's code set it. */
  source?: 'user' | 'api';
}

/** Options of an event call. */
export interface EventOptions {
  /** The purposes this event needs, overriding rules and defaults. */
  purposes?: PurposeName[];
}

/** One recorded choice (mParticle's consent record shape). */
export interface ConsentRecord {
  consented: boolean;
  timestamp_unixtime_ms: number;
  document: string | null;
  location: string | null;
  hardware_id: string | null;
  source: 'user' | 'api' | 'default';
}

/** The consent state as sent with every batch. */
export interface ConsentState {
  /** Essential purposes (source 'default') and every purpose with a recorded choice. */
  gdpr: Record<PurposeName, ConsentRecord>;
  /** The CCPA opt-out, once recorded; consented true means opted out of sale. */
  ccpa?: { data_sale_opt_out: ConsentRecord };
}

/** What `consent()` returns. */
export interface ConsentSnapshot {
  /** The purposes granted now. */
  granted: PurposeName[];
  /** Whether the visitor has recorded any choice (show the banner when false). */
  hasChoices: boolean;
  /** Whether the visitor opted out of the sale of their data. */
  ccpaOptOut: boolean;
  state: ConsentState;
}

/** Why an event was not sent. */
export type DropReason =
  | 'consent_denied'
  | 'no_purpose'
  | 'unknown_purpose'
  | 'invalid_name'
  | 'name_too_long'
  | 'invalid_properties'
  | 'properties_too_large'
  | 'properties_too_deep'
  | 'event_too_large'
  | 'invalid_user_id'
  | 'identity_denied'
  | 'invalid_options'
  | 'purged'
  | 'queue_overflow'
  | 'rejected'
  | 'retries_exhausted'
  | 'expired'
  | 'shut_down';

/** Counters since this instance started. admitted + restored = delivered + dropped after
 * admission + queued + inFlight. */
export interface Stats {
  admitted: number;
  restored: number;
  delivered: number;
  batchesSent: number;
  retries: number;
  /** Batches this tab sent for the site's other tabs while it was their sender. */
  relayed: number;
  queued: number;
  inFlight: number;
  dropped: Partial<Record<DropReason, number>>;
}

/** Diagnostics by type, as `on()` delivers them. Counts and reasons, never event content. */
export interface Diagnostics {
  drop: { reason: DropReason; count: number };
  deliver: { count: number };
  retry: { status: number | null; delayMs: number };
  consent: Record<string, never>;
  /** `keeps` comes with `unavailable`: what the browser still keeps across page loads. */
  storage: {
    key: 'consent' | 'identity' | 'queue' | null;
    problem: 'unreadable' | 'write_failed' | 'unavailable';
    keeps?: 'everything' | 'consent' | 'nothing';
  };
  error: { message: string };
}

/** A Consentry instance. Methods never throw into the page. */
export declare class Consentry {
  /** Starts the SDK and resolves once it is ready. Rejects with an Error naming the bad config field. */
  static init(config: ConsentryConfig): Promise<Consentry>;
  /** Starts the SDK and returns at once; calls made before it is ready are buffered. */
  static create(config: ConsentryConfig): Consentry;
  /** Settles when the SDK is ready; rejects when the config was refused. */
  readonly ready: Promise<void>;
  /** Records the visitor's choices. Resolves whether anything changed (false on a refused call,
   * reported as an 'error' diagnostic). */
  setConsent(choices: Record<PurposeName, boolean>, options?: ConsentOptions): Promise<boolean>;
  /** Records the CCPA choice: true opts out of the sale of the visitor's data. */
  setCcpaOptOut(optOut: boolean, options?: ConsentOptions): Promise<boolean>;
  /** Captures an event; it is sent only if every purpose it needs is granted now. */
  track(name: string, properties?: Record<string, unknown>, options?: EventOptions): void;
  /** Captures a page view (URL and referrer without query string or fragment). */
  page(properties?: Record<string, unknown>, options?: EventOptions): void;
  /** Identifies the visitor; once admitted, the user id goes with later events. */
  identify(userId: string, traits?: Record<string, unknown>, options?: EventOptions): void;
  /** Sends what is queued now; settles when sent or when sending has to wait (offline, backoff). */
  flush(): Promise<void>;
  /** The consent in force, or null before the SDK is ready. */
  consent(): ConsentSnapshot | null;
  /** The counters, or null before the SDK is ready. */
  stats(): Stats | null;
  /** Listens for a diagnostic; returns a function that stops listening. */
  on<K extends keyof Diagnostics>(type: K, listener: (detail: Diagnostics[K]) => void): () => void;
  /** Flushes, persists what is left and stops; later calls are dropped and counted. */
  shutdown(): Promise<void>;
}

export default Consentry;
