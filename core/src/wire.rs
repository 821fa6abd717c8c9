//! Wire format v1: how events and batches are written for the endpoint.
//!
//! `schema/v1/batch.schema.json` is the contract and `schema/v1/fixtures/` the golden examples;
//! a change here that the fixtures do not show is a bug, and a breaking one is a new version.

use crate::consent::write_purpose_names;
use crate::event::EventKind;
use crate::id::{AnonymousId, BatchId, EventId, Uuid};
use crate::json::{write_str, ObjectWriter};
use crate::privacy::PageInfo;
use crate::purpose::{PurposeCatalog, PurposeSet};
use crate::time::Timestamp;
use alloc::string::String;

/// The wire format version this core writes.
pub const WIRE_VERSION: u64 = 1;

/// The SDK name sent with every batch.
pub const SDK_NAME: &str = "consentry-web";

/// The SDK version sent with every batch.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything one event carries on the wire.
#[derive(Clone, Copy, Debug)]
pub struct EventFields<'a> {
    /// The event's id.
    pub id: EventId,
    /// Its kind.
    pub kind: EventKind,
    /// Its name.
    pub name: &'a str,
    /// When it was captured.
    pub timestamp: Timestamp,
    /// The purposes it needs.
    pub purposes: PurposeSet,
    /// The visitor's anonymous id at capture; none before the visitor's first choice.
    pub anonymous_id: Option<AnonymousId>,
    /// The user id, once an identify call was admitted.
    pub user_id: Option<&'a str>,
    /// The properties as a JSON object's text; `None` writes `{}`.
    pub properties: Option<&'a str>,
    /// Page details, on page events.
    pub page: Option<&'a PageInfo>,
    /// The consent state after and before, as `consent_state` JSON texts, on consent changes.
    pub consent: Option<(&'a str, &'a str)>,
}

/// Writes one event as its wire JSON object.
pub fn encode_event(fields: &EventFields<'_>, catalog: &PurposeCatalog) -> String {
    let mut out =
        String::with_capacity(320 + fields.name.len() + fields.properties.map_or(2, str::len));
    let mut event = ObjectWriter::new(&mut out);
    write_uuid(event.key("id"), &fields.id.0);
    event.str("type", fields.kind.as_str());
    event.str("name", fields.name);
    event.u64("timestamp_unixtime_ms", fields.timestamp.as_unix_ms());
    write_purpose_names(catalog, fields.purposes, event.key("purposes"));
    if let Some(anonymous_id) = fields.anonymous_id {
        write_uuid(event.key("anonymous_id"), &anonymous_id.0);
    }
    if let Some(user_id) = fields.user_id {
        event.str("user_id", user_id);
    }
    event.raw("properties", fields.properties.unwrap_or("{}"));
    if let Some(page) = fields.page {
        let mut object = ObjectWriter::new(event.key("page"));
        for (key, value) in [
            ("url", &page.url),
            ("title", &page.title),
            ("referrer", &page.referrer),
        ] {
            if let Some(value) = value {
                object.str(key, value);
            }
        }
        object.finish();
    }
    if let Some((current, previous)) = fields.consent {
        let mut object = ObjectWriter::new(event.key("consent"));
        object.raw("current", current);
        object.raw("previous", previous);
        object.finish();
    }
    event.finish();
    out
}

fn write_uuid(out: &mut String, id: &Uuid) {
    out.push('"');
    id.write_to(out);
    out.push('"');
}

/// Starts a batch body: the envelope up to and including the opening `[` of `events`.
pub fn begin_batch(
    batch_id: BatchId,
    sent_at: Timestamp,
    api_key: &str,
    consent_state: &str,
    capacity: usize,
) -> String {
    let mut out = String::with_capacity(capacity);
    out.push_str("{\"version\":1,\"batch_id\":");
    write_uuid(&mut out, &batch_id.0);
    out.push_str(",\"sent_at\":");
    crate::json::write_u64(&mut out, sent_at.as_unix_ms());
    out.push_str(",\"api_key\":");
    write_str(&mut out, api_key);
    out.push_str(",\"sdk\":{\"name\":\"");
    out.push_str(SDK_NAME);
    out.push_str("\",\"version\":\"");
    out.push_str(SDK_VERSION);
    out.push_str("\"},\"consent_state\":");
    out.push_str(consent_state);
    out.push_str(",\"events\":[");
    out
}

/// The bytes [`finish_batch`] adds.
pub const BATCH_END_BYTES: usize = 2;

/// Appends one event to a batch started by [`begin_batch`]; `first` for the first event.
pub fn push_event(body: &mut String, event_wire: &str, first: bool) {
    if !first {
        body.push(',');
    }
    body.push_str(event_wire);
}

/// Closes a batch body.
pub fn finish_batch(body: &mut String) {
    body.push_str("]}");
}
