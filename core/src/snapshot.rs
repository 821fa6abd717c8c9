//! What the SDK keeps in storage, versioned, and reading it back from whatever storage holds.
//!
//! Three documents, each `{"v":1,...}`:
//! - consent: the visitor's recorded choices (written when a choice is recorded);
//! - identity: the anonymous id and user id (only while a non-essential purpose is granted);
//! - queue: events not yet confirmed delivered (only while there are any).
//!
//! Storage is untrusted input: another script, an older SDK or a full disk may have left anything
//! there. Decoders never panic; they return `None` for a document they cannot use and skip the
//! events inside a queue that are malformed, counting them.

use crate::consent::ConsentState;
use crate::event::QueuedEvent;
use crate::id::{AnonymousId, EventId, Uuid};
use crate::json::{self, write_value, ObjectWriter, Value};
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH, MAX_USER_ID_BYTES};
use crate::purpose::PurposeCatalog;
use crate::time::Timestamp;
use alloc::string::String;
use alloc::vec::Vec;

/// The storage format version this core writes and reads.
pub const SNAPSHOT_VERSION: u64 = 1;

/// The documents the SDK persists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageKey {
    /// The visitor's recorded choices.
    Consent,
    /// The anonymous id and user id.
    Identity,
    /// Events awaiting delivery: one document per anonymous id, in numbered slots, so events
    /// carrying ids from before and after a rotation never share a document.
    Queue(u8),
}

impl StorageKey {
    /// The key's name, used in storage key names and diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKey::Consent => "consent",
            StorageKey::Identity => "identity",
            StorageKey::Queue(_) => "queue",
        }
    }
}

fn read_document(text: &str) -> Option<Value> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return None;
    }
    let value = json::parse(text, MAX_DOCUMENT_DEPTH).ok()?;
    (value.get("v")?.as_u64()? == SNAPSHOT_VERSION).then_some(value)
}

/// Writes the consent document.
pub fn encode_consent(state: &ConsentState, catalog: &PurposeCatalog) -> String {
    let mut out = String::from("{\"v\":1,\"state\":");
    state.write_wire(catalog, &mut out, crate::consent::Detail::Stored);
    out.push('}');
    out
}

/// Reads the consent document.
pub fn decode_consent(text: &str, catalog: &PurposeCatalog) -> Option<ConsentState> {
    ConsentState::read_stored(read_document(text)?.get("state")?, catalog)
}

/// The stored identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The anonymous id.
    pub anonymous_id: AnonymousId,
    /// The user id, if one was admitted.
    pub user_id: Option<String>,
}

/// Writes the identity document.
pub fn encode_identity(identity: &Identity) -> String {
    let mut out = String::new();
    let mut doc = ObjectWriter::new(&mut out);
    doc.u64("v", SNAPSHOT_VERSION);
    doc.str("anonymous_id", &identity.anonymous_id.0.to_hyphenated());
    doc.opt_str("user_id", identity.user_id.as_deref());
    doc.finish();
    out
}

/// Reads the identity document.
pub fn decode_identity(text: &str) -> Option<Identity> {
    let doc = read_document(text)?;
    let user_id = match doc.get("user_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_USER_ID_BYTES => Some(s.clone()),
        Some(_) => return None,
    };
    Some(Identity {
        anonymous_id: AnonymousId(Uuid::parse(doc.get("anonymous_id")?.as_str()?)?),
        user_id,
    })
}

/// A queue read back from storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// When it was written.
    pub saved_at: Timestamp,
    /// Whether its page was hidden when it was written (it may be gone).
    pub hidden: bool,
    /// The events that could be read, oldest first.
    pub events: Vec<QueuedEvent>,
    /// How many stored events could not be read.
    pub discarded: usize,
}

/// Writes the queue document from `events` (oldest first), stopping before `max_bytes`.
/// Returns the text and how many events it holds.
pub fn encode_queue<'a>(
    events: impl Iterator<Item = &'a QueuedEvent>,
    saved_at: Timestamp,
    hidden: bool,
    max_bytes: usize,
) -> (String, usize) {
    let mut out = String::from("{\"v\":1,\"saved_at\":");
    json::write_u64(&mut out, saved_at.as_unix_ms());
    out.push_str(if hidden {
        ",\"hidden\":true,\"events\":["
    } else {
        ",\"hidden\":false,\"events\":["
    });
    let mut count = 0;
    for event in events {
        let mut entry = String::with_capacity(event.wire.len() + 24);
        entry.push_str("{\"attempts\":");
        json::write_u64(&mut entry, u64::from(event.attempts));
        entry.push_str(",\"event\":");
        entry.push_str(&event.wire);
        entry.push('}');
        if out.len() + entry.len() + 3 > max_bytes {
            break;
        }
        if count > 0 {
            out.push(',');
        }
        out.push_str(&entry);
        count += 1;
    }
    out.push_str("]}");
    (out, count)
}

/// Reads a queue document. Events whose purposes the catalog does not declare, or that are not
/// well-formed wire events, are skipped and counted in `discarded`.
pub fn decode_queue(text: &str, catalog: &PurposeCatalog) -> Option<QueueSnapshot> {
    let doc = read_document(text)?;
    let saved_at = Timestamp::from_unix_ms(doc.get("saved_at")?.as_u64()?);
    let hidden = doc.get("hidden").and_then(Value::as_bool).unwrap_or(false);
    let entries = doc.get("events")?.as_array()?;
    let mut events = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(event) = decode_entry(entry, catalog) {
            events.push(event);
        }
    }
    let discarded = entries.len() - events.len();
    Some(QueueSnapshot {
        saved_at,
        hidden,
        events,
        discarded,
    })
}

fn decode_entry(entry: &Value, catalog: &PurposeCatalog) -> Option<QueuedEvent> {
    let attempts = u32::try_from(entry.get("attempts")?.as_u64()?).ok()?;
    let event = entry.get("event")?;
    let id = EventId(Uuid::parse(event.get("id")?.as_str()?)?);
    let captured_at = Timestamp::from_unix_ms(event.get("timestamp_unixtime_ms")?.as_u64()?);
    let anonymous_id = match event.get("anonymous_id") {
        None => None,
        Some(id) => Some(AnonymousId(Uuid::parse(id.as_str()?)?)),
    };
    let names = event.get("purposes")?.as_array()?;
    let purposes = catalog.set_of_values(names).ok()?;
    let well_formed = !purposes.is_empty()
        && event.get("type").and_then(Value::as_str).is_some()
        && event.get("name").and_then(Value::as_str).is_some()
        && event.get("properties").and_then(Value::as_object).is_some();
    if !well_formed {
        return None;
    }
    let mut wire = String::new();
    write_value(&mut wire, event);
    Some(QueuedEvent {
        id,
        purposes,
        captured_at,
        attempts,
        anonymous_id,
        durable: true,
        wire,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::ConsentContext;
    use crate::purpose::{Purpose, PurposeSet};
    use alloc::vec;

    fn catalog() -> PurposeCatalog {
        let p = |n: &str| Purpose::parse(n).unwrap();
        PurposeCatalog::new(vec![p("necessary")], vec![p("analytics")], &[]).unwrap()
    }

    fn event(n: u8) -> QueuedEvent {
        let id = Uuid::parse(&alloc::format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap();
        QueuedEvent {
            id: EventId(id),
            purposes: PurposeSet::only(1),
            captured_at: Timestamp::from_unix_ms(1000 + u64::from(n)),
            attempts: u32::from(n % 3),
            anonymous_id: Some(AnonymousId(
                Uuid::parse("00000000-0000-4000-8000-000000000000").unwrap(),
            )),
            durable: true,
            wire: alloc::format!(
                r#"{{"id":"{}","type":"track","name":"e{n}","timestamp_unixtime_ms":{},"purposes":["analytics"],"anonymous_id":"00000000-0000-4000-8000-000000000000","properties":{{"n":{n}}}}}"#,
                id.to_hyphenated(),
                1000 + u64::from(n)
            ),
        }
    }

    #[test]
    fn queue_round_trips_and_respects_its_byte_budget() {
        let events: Vec<QueuedEvent> = (0..5).map(event).collect();
        let (text, count) =
            encode_queue(events.iter(), Timestamp::from_unix_ms(77), true, usize::MAX);
        assert_eq!(count, 5);
        let back = decode_queue(&text, &catalog()).unwrap();
        assert_eq!(
            back,
            QueueSnapshot {
                saved_at: Timestamp::from_unix_ms(77),
                hidden: true,
                events: events.clone(),
                discarded: 0
            }
        );
        let (small, count) = encode_queue(events.iter(), Timestamp::ZERO, false, 600);
        assert!(small.len() <= 600);
        assert!(count < 5);
        assert_eq!(
            decode_queue(&small, &catalog()).unwrap().events.len(),
            count
        );
    }

    #[test]
    fn garbage_in_storage_is_refused_or_skipped_never_a_panic() {
        let catalog = catalog();
        for text in [
            "",
            "null",
            "{}",
            "[]",
            "{\"v\":2,\"saved_at\":1,\"events\":[]}",
            "{\"v\":1}",
            "\u{0}\u{ffff}",
            "{\"v\":1,\"saved_at\":-1,\"events\":[]}",
        ] {
            assert_eq!(decode_queue(text, &catalog), None, "{text:?}");
            assert_eq!(decode_identity(text), None, "{text:?}");
            assert_eq!(decode_consent(text, &catalog), None, "{text:?}");
        }
        let good = event(1);
        let text = alloc::format!(
            r#"{{"v":1,"saved_at":5,"events":[1,{{"attempts":0}},{{"attempts":0,"event":{{"id":"x"}}}},{{"attempts":1,"event":{}}},{{"attempts":0,"event":{}}}]}}"#,
            good.wire,
            good.wire.replace("analytics", "removed_purpose")
        );
        let back = decode_queue(&text, &catalog).unwrap();
        assert_eq!(back.events.len(), 1);
        assert_eq!(back.events[0].id, good.id);
        assert_eq!(back.discarded, 4);
    }

    #[test]
    fn identity_and_consent_round_trip() {
        let identity = Identity {
            anonymous_id: AnonymousId(event(9).id.0),
            user_id: Some("u\"1".into()),
        };
        assert_eq!(decode_identity(&encode_identity(&identity)), Some(identity));
        let catalog = catalog();
        let mut state = ConsentState::new(catalog.len());
        state.apply(
            &[(1, true)],
            &ConsentContext::user(),
            Timestamp::from_unix_ms(3),
        );
        assert_eq!(
            decode_consent(&encode_consent(&state, &catalog), &catalog),
            Some(state)
        );
    }
}
