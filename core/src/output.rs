//! What the core asks the shell to do: send, persist, tell the page. Drained with
//! [`crate::Consentry::poll_output`].

use crate::event::DropReason;
use crate::id::BatchId;
use crate::json::ObjectWriter;
use crate::snapshot::StorageKey;
use crate::time::Duration;
use alloc::string::String;

/// One command for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// POST `body` to the batch URL and report the outcome with `handle_send_result`.
    Send(Transmission),
    /// Write `value` under `key`, or remove the key when `value` is `None`.
    Persist {
        /// Which document.
        key: StorageKey,
        /// Its new text, or `None` to remove it.
        value: Option<String>,
    },
    /// Tell the page's diagnostic listeners.
    Notify(Notice),
    /// Post this message to the site's other tabs (a `BroadcastChannel`); what arrives there
    /// goes to their machines' `handle_message`.
    Broadcast(String),
    /// Offer the queues other pages left in storage, each with `adopt_queue` and whether its
    /// page is still alive (as far as the shell can tell).
    AdoptQueues,
}

/// One request to the endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmission {
    /// Reported back with the outcome.
    pub batch_id: BatchId,
    /// The wire-format JSON body.
    pub body: String,
    /// Send with `keepalive` so it survives the page going away (the body fits the budget).
    pub keepalive: bool,
}

/// Something a developer may want to see. Counts and reasons only, never event content.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Events were dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// How many.
        count: u64,
    },
    /// The endpoint confirmed a batch.
    Delivered {
        /// How many events it held.
        count: u64,
    },
    /// An attempt failed and will be retried.
    RetryScheduled {
        /// The HTTP status, or `None` for a network error.
        status: Option<u16>,
        /// How long until the next attempt.
        delay: Duration,
    },
    /// The recorded consent changed (here or in another tab).
    ConsentChanged,
    /// A stored document could not be read and was discarded.
    StorageDiscarded {
        /// Which document.
        key: StorageKey,
    },
    /// A storage write failed; the data stays in memory.
    StorageFailed {
        /// Which document.
        key: StorageKey,
    },
    /// The browser offers less storage than the SDK uses: what it cannot keep stays in memory
    /// and is lost with the page.
    StorageUnavailable {
        /// What is still kept across page loads.
        keeps: Persistence,
    },
}

/// What the shell can keep across page loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Everything the SDK stores: the consent record readable, identity and queue encrypted.
    Everything,
    /// Only the consent record: no encrypted store (no IndexedDB or WebCrypto), and identity
    /// and events are never written in plain text.
    ConsentOnly,
    /// Nothing: the browser denies storage altogether. (With `storage: 'memory'` the site chose
    /// this; the shell keeps the documents in memory and says nothing.)
    Nothing,
}

impl Persistence {
    /// Whether a document under `key` may be written.
    pub fn keeps(self, key: StorageKey) -> bool {
        match self {
            Persistence::Everything => true,
            Persistence::ConsentOnly => key == StorageKey::Consent,
            Persistence::Nothing => false,
        }
    }
}

impl Notice {
    /// The diagnostic's type name, as `on(type, ...)` listens for it.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Dropped { .. } => "drop",
            Notice::Delivered { .. } => "deliver",
            Notice::RetryScheduled { .. } => "retry",
            Notice::ConsentChanged => "consent",
            Notice::StorageDiscarded { .. }
            | Notice::StorageFailed { .. }
            | Notice::StorageUnavailable { .. } => "storage",
        }
    }

    /// The diagnostic's details as a JSON object.
    pub fn detail_json(&self) -> String {
        let mut out = String::new();
        let mut detail = ObjectWriter::new(&mut out);
        match self {
            Notice::Dropped { reason, count } => {
                detail.str("reason", reason.as_str());
                detail.u64("count", *count);
            }
            Notice::Delivered { count } => detail.u64("count", *count),
            Notice::RetryScheduled { status, delay } => {
                match status {
                    Some(code) => detail.u64("status", u64::from(*code)),
                    None => detail.key("status").push_str("null"),
                }
                detail.u64("delayMs", delay.as_millis());
            }
            Notice::ConsentChanged => {}
            Notice::StorageDiscarded { key } => {
                detail.str("key", key.as_str());
                detail.str("problem", "unreadable");
            }
            Notice::StorageFailed { key } => {
                detail.str("key", key.as_str());
                detail.str("problem", "write_failed");
            }
            Notice::StorageUnavailable { keeps } => {
                detail.key("key").push_str("null");
                detail.str("problem", "unavailable");
                detail.str(
                    "keeps",
                    match keeps {
                        Persistence::Everything => "everything",
                        Persistence::ConsentOnly => "consent",
                        Persistence::Nothing => "nothing",
                    },
                );
            }
        }
        detail.finish();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_describe_themselves_as_json() {
        let cases = [
            (
                Notice::Dropped {
                    reason: DropReason::ConsentDenied,
                    count: 1,
                },
                "drop",
                r#"{"reason":"consent_denied","count":1}"#,
            ),
            (Notice::Delivered { count: 4 }, "deliver", r#"{"count":4}"#),
            (
                Notice::RetryScheduled {
                    status: Some(503),
                    delay: Duration::from_millis(1500),
                },
                "retry",
                r#"{"status":503,"delayMs":1500}"#,
            ),
            (
                Notice::RetryScheduled {
                    status: None,
                    delay: Duration::ZERO,
                },
                "retry",
                r#"{"status":null,"delayMs":0}"#,
            ),
            (Notice::ConsentChanged, "consent", "{}"),
            (
                Notice::StorageDiscarded {
                    key: StorageKey::Queue(0),
                },
                "storage",
                r#"{"key":"queue","problem":"unreadable"}"#,
            ),
            (
                Notice::StorageFailed {
                    key: StorageKey::Consent,
                },
                "storage",
                r#"{"key":"consent","problem":"write_failed"}"#,
            ),
            (
                Notice::StorageUnavailable {
                    keeps: Persistence::ConsentOnly,
                },
                "storage",
                r#"{"key":null,"problem":"unavailable","keeps":"consent"}"#,
            ),
        ];
        for (notice, kind, json) in cases {
            assert_eq!(notice.kind(), kind);
            assert_eq!(notice.detail_json(), json);
        }
    }
}
