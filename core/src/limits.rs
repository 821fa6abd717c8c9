//! Size limits on what the page hands in and on what goes out.
//!
//! The collector's own limits are looser than these, so an event the SDK admits is never refused
//! for its size at the other end.

/// The longest event name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest user id, in UTF-8 bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// The largest properties object, as JSON text.
pub const MAX_PROPERTIES_BYTES: usize = 24 * 1024;

/// How deeply properties may nest; the properties object itself is level 1.
pub const MAX_PROPERTIES_DEPTH: usize = 16;

/// The largest encoded event. Below [`KEEPALIVE_BUDGET_BYTES`] so any event fits a beacon.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// The longest page URL or referrer kept on a page event; longer ones are cut at a character
/// boundary, never dropped.
pub const MAX_PAGE_URL_BYTES: usize = 2048;

/// The longest page title kept on a page event.
pub const MAX_PAGE_TITLE_BYTES: usize = 1024;

/// The bytes all keepalive requests of a page may have in flight at once (the Fetch standard's
/// limit, shared with `sendBeacon`).
pub const KEEPALIVE_BUDGET_BYTES: usize = 64 * 1024;

/// The largest batch body sent by a normal request.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;

/// The largest queue snapshot written to storage; the rest of the queue stays in memory. The
/// encrypted store (IndexedDB) holds far more than this; the limit bounds the cost of one write.
pub const MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

/// The deepest nesting accepted in config and stored snapshots.
pub const MAX_DOCUMENT_DEPTH: usize = MAX_PROPERTIES_DEPTH + 8;

/// The longest config or stored snapshot the core reads: every snapshot it writes, with room.
pub const MAX_DOCUMENT_BYTES: usize = 2 * MAX_SNAPSHOT_BYTES;
