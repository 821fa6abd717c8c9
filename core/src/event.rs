//! What an event is inside the core: its kind, the reasons it may be dropped, and the queued
//! form that waits for delivery.

use crate::id::{AnonymousId, EventId};
use crate::purpose::PurposeSet;
use crate::time::Timestamp;
use alloc::string::String;

/// The kinds of event the SDK captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `track(name, properties)`.
    Track,
    /// `page(properties)`.
    Page,
    /// `identify(userId, traits)`.
    Identify,
    /// A recorded change of consent, sent under the essential purposes.
    ConsentChange,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Page => "page",
            EventKind::Identify => "identify",
            EventKind::ConsentChange => "consent_change",
        }
    }

    /// The kind named `name` on the wire or in config.
    pub fn from_wire(name: &str) -> Option<EventKind> {
        match name {
            "track" => Some(EventKind::Track),
            "page" => Some(EventKind::Page),
            "identify" => Some(EventKind::Identify),
            "consent_change" => Some(EventKind::ConsentChange),
            _ => None,
        }
    }
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why an event was not sent. Counted by reason; never logged with its content.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in the order stats list them.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The snake_case name developers see in stats and diagnostics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }

            /// This reason's position in [`DropReason::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// A purpose the event needs was not granted when it was captured.
    ConsentDenied => "consent_denied",
    /// No purpose could be resolved for the event: deny by default.
    NoPurpose => "no_purpose",
    /// The event named a purpose the config does not declare.
    UnknownPurpose => "unknown_purpose",
    /// The name was missing, empty or not a string.
    InvalidName => "invalid_name",
    /// The name is longer than the limit.
    NameTooLong => "name_too_long",
    /// Properties were not a JSON object, or could not be serialised (a cycle, a BigInt).
    InvalidProperties => "invalid_properties",
    /// Properties are larger than the limit.
    PropertiesTooLarge => "properties_too_large",
    /// Properties nest deeper than the limit.
    PropertiesTooDeep => "properties_too_deep",
    /// The encoded event is larger than the limit.
    EventTooLarge => "event_too_large",
    /// The user id was empty, not a string or too long.
    InvalidUserId => "invalid_user_id",
    /// The options argument could not be read (a getter threw, a cycle).
    InvalidOptions => "invalid_options",
    /// An identify call while the visitor grants no non-essential purpose (before any choice,
    /// or after "reject all"): no identifier is attached to an event or kept then.
    IdentityDenied => "identity_denied",
    /// A purpose the queued event needs was withdrawn before it was sent.
    Purged => "purged",
    /// The queue was full; the oldest event made room.
    QueueOverflow => "queue_overflow",
    /// The endpoint refused the batch with a status that retrying cannot fix.
    Rejected => "rejected",
    /// Every allowed attempt failed.
    RetriesExhausted => "retries_exhausted",
    /// The event waited longer than the maximum age.
    Expired => "expired",
    /// The SDK was shut down or never started.
    ShutDown => "shut_down",
}

/// An admitted event waiting for delivery, already encoded as its wire JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Its id, fixed at capture.
    pub id: EventId,
    /// Every purpose it needs.
    pub purposes: PurposeSet,
    /// When it was captured.
    pub captured_at: Timestamp,
    /// How many attempts the endpoint answered with a retryable status.
    pub attempts: u32,
    /// The anonymous id it carries; `None` while the visitor grants no non-essential purpose.
    pub anonymous_id: Option<AnonymousId>,
    /// Whether it may be stored: not when captured before the visitor's first choice (it is
    /// sent from memory only).
    pub durable: bool,
    /// The event as a wire-format JSON object.
    pub wire: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason is counted on its own and reported under its own snake_case name: two
    /// reasons sharing a slot, or a slot out of range, would lose or merge counts.
    #[test]
    fn every_reason_is_counted_and_named_apart() {
        for &reason in DropReason::ALL {
            let name = reason.as_str();
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                DropReason::ALL
                    .iter()
                    .filter(|r| r.as_str() == name)
                    .count(),
                1,
                "{name} is used twice"
            );
            let mut stats = crate::stats::Stats::default();
            stats.count_drop(reason, 3);
            for &other in DropReason::ALL {
                let expected = if other == reason { 3 } else { 0 };
                assert_eq!(
                    stats.dropped(other),
                    expected,
                    "{name} counted as {other:?}"
                );
            }
            let json = stats.to_json(0, 0);
            assert!(json.contains(&alloc::format!("\"{name}\":3")), "{json}");
        }
    }

    #[test]
    fn kinds_round_trip_their_wire_names() {
        for kind in [
            EventKind::Track,
            EventKind::Page,
            EventKind::Identify,
            EventKind::ConsentChange,
        ] {
            assert_eq!(EventKind::from_wire(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::from_wire("screen"), None);
    }
}
