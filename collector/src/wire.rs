//! Wire format v1 as typed serde structs: the shape of `schema/v1/batch.schema.json`.
//!
//! Serde enforces what a type can say: required fields, JSON types, `additionalProperties:
//! false` (`deny_unknown_fields`), nullable-but-required strings and the enums.
//! [`crate::validate`] checks the rest (patterns, ranges, lengths, conditional fields).
//! Properties stay the exact JSON text that was sent ([`RawValue`]): never re-encoded, never
//! logged.

use consentry_core::event::EventKind;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// One batch: the body of `POST /v1/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Wire format version; must be [`consentry_core::wire::WIRE_VERSION`].
    pub version: u64,
    /// New for every transmission attempt; informational.
    pub batch_id: String,
    /// The browser clock when this attempt was sent.
    pub sent_at: u64,
    /// The site's public write key. Required by the schema; when absent the collector falls
    /// back to the `?api_key=` query parameter.
    #[serde(default, deserialize_with = "present")]
    pub api_key: Option<String>,
    /// Which SDK sent it.
    pub sdk: Sdk,
    /// The visitor's consent when the batch was sent.
    pub consent_state: ConsentState,
    /// The events, 1 to [`crate::MAX_BATCH_EVENTS`].
    pub events: Vec<Event>,
}

/// The sending SDK.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sdk {
    /// e.g. `consentry-web`.
    pub name: String,
    /// e.g. `0.1.0`.
    pub version: String,
}

/// Recorded consent: per-purpose GDPR records and the CCPA opt-out.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentState {
    /// Every essential purpose and every purpose with a recorded choice; absent means denied.
    pub gdpr: BTreeMap<String, ConsentRecord>,
    /// The CCPA "do not sell or share" record, when there is one.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ccpa: Option<Ccpa>,
}

/// The CCPA part of a consent state.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ccpa {
    /// `consented: true` means the visitor opted out of the sale or sharing of their data.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_sale_opt_out: Option<ConsentRecord>,
}

/// One recorded choice. A batch's consent state carries only `consented` and `source`; a
/// consent change event carries the whole record (schema v1).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// Granted (or, for the CCPA record, opted out).
    pub consented: bool,
    /// When the choice was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_unixtime_ms: Option<u64>,
    /// The notice version the visitor saw: absent, `null`, or the text, kept as sent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub document: Option<Option<String>>,
    /// Where the choice was collected, likewise.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub location: Option<Option<String>>,
    /// A device identifier, if the site records one, likewise.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub hardware_id: Option<Option<String>>,
    /// Who made the choice.
    pub source: ConsentSource,
}

/// Who made a consent choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// The visitor, in a consent UI.
    User,
    /// The site's code.
    Api,
    /// The site's configuration (essential purposes).
    Default,
}

/// One event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Assigned once at capture; the deduplication key.
    pub id: String,
    /// `track`, `page`, `identify` or `consent_change`.
    #[serde(rename = "type", deserialize_with = "event_kind")]
    pub kind: EventKind,
    /// The event's name.
    pub name: String,
    /// When it was captured.
    pub timestamp_unixtime_ms: u64,
    /// Every purpose it needs.
    pub purposes: Vec<String>,
    /// The visitor's anonymous id; absent on events captured before the visitor's first choice
    /// (essential purposes only, nothing identifying).
    #[serde(default, deserialize_with = "present")]
    pub anonymous_id: Option<String>,
    /// Required on identify events.
    #[serde(default, deserialize_with = "present")]
    pub user_id: Option<String>,
    /// The page's own data, exactly as sent.
    pub properties: Box<RawValue>,
    /// Where the page was, on page events.
    #[serde(default, deserialize_with = "present")]
    pub page: Option<Page>,
    /// The state after and before, on consent_change events.
    #[serde(default, deserialize_with = "present")]
    pub consent: Option<ConsentChange>,
}

/// Page details.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Without query string or fragment.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// The document title.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// The referrer, without query string or fragment.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub referrer: Option<String>,
}

/// A consent change: the state after and before.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    /// After the change.
    pub current: ConsentState,
    /// Before the change.
    pub previous: ConsentState,
}

/// An optional field that, when present, must hold a `T` (not `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The event type, by the core's wire names.
fn event_kind<'de, D: Deserializer<'de>>(d: D) -> Result<EventKind, D::Error> {
    let name = String::deserialize(d)?;
    EventKind::from_wire(&name).ok_or_else(|| {
        serde::de::Error::custom(
            "unknown event type: expected track, page, identify or consent_change",
        )
    })
}
