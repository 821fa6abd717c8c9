//! Checking a batch against the v1 schema's rules, naming the first field that breaks one.
//!
//! [`parse_batch`] reads the typed [`Batch`] (serde enforces shape, types, required and unknown
//! fields, with the path from `serde_path_to_error`); [`check_batch`] enforces what types cannot:
//! the version, UUID and purpose-name patterns, ranges, string lengths (in characters, as JSON
//! Schema counts them), unique purposes, the properties object's depth and size, and the fields
//! required by event type. A batch that fails any rule is rejected whole.

use crate::wire::{Batch, ConsentRecord, ConsentState, Event};
use crate::{MAX_BATCH_EVENTS, MAX_PROPERTIES_BYTES, MAX_PROPERTIES_DEPTH, MAX_UNIXTIME_MS};
use consentry_core::event::EventKind;
use consentry_core::purpose::is_valid_name;
use consentry_core::wire::WIRE_VERSION;
use serde_path_to_error::Segment;
use std::fmt;

/// Why a batch is invalid, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The path of the offending field (`events[3].purposes[0]`); `None` for the body as a whole.
    pub field: Option<String>,
    /// What is wrong, lower-case.
    pub message: String,
}

impl ValidationError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ValidationError {}

/// Parses and checks a batch body (UTF-8 JSON text).
pub fn validate(body: &[u8]) -> Result<Batch, ValidationError> {
    let batch = parse_batch(body)?;
    check_batch(&batch)?;
    Ok(batch)
}

/// Reads the typed batch; errors name the path where serde stopped.
pub fn parse_batch(body: &[u8]) -> Result<Batch, ValidationError> {
    // Most batches are valid: parse without tracking the path, and only a body that fails is
    // parsed again, with `serde_path_to_error`, to name the field.
    if let Ok(batch) = serde_json::from_slice::<Batch>(body) {
        return Ok(batch);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let batch: Batch = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = without_location(&e.inner().to_string());
        if e.inner().is_syntax() || e.inner().is_eof() {
            return ValidationError {
                field: None,
                message: format!("body is not JSON: {message}"),
            };
        }
        let mut path = render_path(e.path());
        // serde reports a missing or unknown field at the object holding it: point at the field.
        for prefix in ["missing field `", "unknown field `"] {
            if let Some(name) = message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
            {
                if !path.ends_with(name) {
                    path = join(&path, name);
                }
            }
        }
        ValidationError {
            field: (!path.is_empty()).then_some(path),
            message,
        }
    })?;
    de.end().map_err(|e| ValidationError {
        field: None,
        message: without_location(&e.to_string()),
    })?;
    Ok(batch)
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            // A key serde had not read yet: the path up to here is the useful part.
            Segment::Unknown => {}
        }
    }
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn without_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Where a check is, rendered as `events[3].purposes[0]` only when the check fails: a valid
/// batch builds no path strings.
#[derive(Clone, Copy)]
enum Path<'a> {
    /// A top-level field (or the start of a longer path).
    Root(&'a str),
    /// A field inside another.
    Field(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl<'a> Path<'a> {
    fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    fn error(&self, message: impl Into<String>) -> ValidationError {
        ValidationError::at(self.to_string(), message)
    }
}

/// Checks the rules serde types cannot express.
pub fn check_batch(batch: &Batch) -> Result<(), ValidationError> {
    if batch.version != WIRE_VERSION {
        return Err(Path::Root("version").error(format!("must be {WIRE_VERSION}")));
    }
    uuid_v4(Path::Root("batch_id"), &batch.batch_id)?;
    unixtime(Path::Root("sent_at"), batch.sent_at)?;
    if let Some(key) = &batch.api_key {
        chars(
            Path::Root("api_key"),
            key,
            1,
            crate::keys::MAX_API_KEY_CHARS,
        )?;
    }
    let sdk = Path::Root("sdk");
    chars(sdk.field("name"), &batch.sdk.name, 0, 64)?;
    chars(sdk.field("version"), &batch.sdk.version, 0, 32)?;
    consent_state(Path::Root("consent_state"), &batch.consent_state)?;
    let events = Path::Root("events");
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(events.error(format!("must hold 1 to {MAX_BATCH_EVENTS} events")));
    }
    for (i, event) in batch.events.iter().enumerate() {
        check_event(events.index(i), event)?;
    }
    Ok(())
}

fn check_event(at: Path<'_>, event: &Event) -> Result<(), ValidationError> {
    uuid_v4(at.field("id"), &event.id)?;
    chars(at.field("name"), &event.name, 1, 256)?;
    unixtime(
        at.field("timestamp_unixtime_ms"),
        event.timestamp_unixtime_ms,
    )?;
    let purposes = at.field("purposes");
    if event.purposes.is_empty() {
        return Err(purposes.error("must name at least one purpose"));
    }
    for (j, purpose) in event.purposes.iter().enumerate() {
        let here = purposes.index(j);
        purpose_name(here, purpose)?;
        if event.purposes[..j].contains(purpose) {
            return Err(here.error("repeats an earlier purpose"));
        }
    }
    if let Some(anonymous_id) = &event.anonymous_id {
        uuid_v4(at.field("anonymous_id"), anonymous_id)?;
    }
    if let Some(user_id) = &event.user_id {
        chars(at.field("user_id"), user_id, 1, 256)?;
    }
    properties(at.field("properties"), event.properties.get())?;
    if let Some(page) = &event.page {
        let at_page = at.field("page");
        for (name, value, max) in [
            ("url", &page.url, 2048),
            ("title", &page.title, 1024),
            ("referrer", &page.referrer, 2048),
        ] {
            if let Some(value) = value {
                chars(at_page.field(name), value, 0, max)?;
            }
        }
    }
    if let Some(consent) = &event.consent {
        let at_consent = at.field("consent");
        consent_state(at_consent.field("current"), &consent.current)?;
        consent_state(at_consent.field("previous"), &consent.previous)?;
    }
    if event.kind == EventKind::ConsentChange && event.consent.is_none() {
        return Err(at
            .field("consent")
            .error("is required on consent_change events"));
    }
    if event.kind == EventKind::Identify && event.user_id.is_none() {
        return Err(at.field("user_id").error("is required on identify events"));
    }
    Ok(())
}

fn consent_state(at: Path<'_>, state: &ConsentState) -> Result<(), ValidationError> {
    let gdpr = at.field("gdpr");
    for (name, record) in &state.gdpr {
        let here = gdpr.field(name);
        purpose_name(here, name)?;
        consent_record(here, record)?;
    }
    if let Some(record) = state
        .ccpa
        .as_ref()
        .and_then(|c| c.data_sale_opt_out.as_ref())
    {
        let ccpa = at.field("ccpa");
        consent_record(ccpa.field("data_sale_opt_out"), record)?;
    }
    Ok(())
}

fn consent_record(at: Path<'_>, record: &ConsentRecord) -> Result<(), ValidationError> {
    if let Some(timestamp) = record.timestamp_unixtime_ms {
        unixtime(at.field("timestamp_unixtime_ms"), timestamp)?;
    }
    for (name, value) in [
        ("document", &record.document),
        ("location", &record.location),
        ("hardware_id", &record.hardware_id),
    ] {
        if let Some(Some(value)) = value {
            chars(at.field(name), value, 0, 256)?;
        }
    }
    Ok(())
}

fn properties(at: Path<'_>, json: &str) -> Result<(), ValidationError> {
    if !json.starts_with('{') {
        return Err(at.error("must be a JSON object"));
    }
    if json.len() > MAX_PROPERTIES_BYTES {
        return Err(at.error(format!(
            "must be at most {MAX_PROPERTIES_BYTES} bytes of JSON"
        )));
    }
    if nesting_depth(json) > MAX_PROPERTIES_DEPTH {
        return Err(at.error(format!(
            "must nest at most {MAX_PROPERTIES_DEPTH} levels deep"
        )));
    }
    Ok(())
}

/// How deeply objects and arrays nest in `json` (valid JSON text); `{}` is 1.
pub fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether `text` matches the schema's uuid pattern: the hyphenated form in lower case,
/// version 4, RFC 4122 variant (parsed by the `uuid` crate; the case and form are the schema's).
pub fn is_uuid_v4(text: &str) -> bool {
    text.len() == 36
        && !text.bytes().any(|b| b.is_ascii_uppercase())
        && uuid::Uuid::try_parse(text)
            .is_ok_and(|id| id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122)
}

fn uuid_v4(at: Path<'_>, text: &str) -> Result<(), ValidationError> {
    if is_uuid_v4(text) {
        Ok(())
    } else {
        Err(at.error(
            "must be a lower-case version 4 UUID (xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx)",
        ))
    }
}

fn purpose_name(at: Path<'_>, name: &str) -> Result<(), ValidationError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(at.error(
            "must be a purpose name: a lower-case letter then up to 63 of a-z, 0-9, _ and -",
        ))
    }
}

fn unixtime(at: Path<'_>, ms: u64) -> Result<(), ValidationError> {
    if ms <= MAX_UNIXTIME_MS {
        Ok(())
    } else {
        Err(at.error(format!(
            "must be a Unix time in milliseconds up to {MAX_UNIXTIME_MS}"
        )))
    }
}

fn chars(at: Path<'_>, text: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    // Counting characters needs no decoding when every byte is one (ASCII, the usual case).
    let n = if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    };
    if (min..=max).contains(&n) {
        Ok(())
    } else if min == 0 {
        Err(at.error(format!("must be at most {max} characters")))
    } else {
        Err(at.error(format!("must be {min} to {max} characters")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_depth_ignores_brackets_inside_strings() {
        for (json, depth) in [
            ("{}", 1),
            ("{\"a\":[1,{\"b\":2}]}", 3),
            ("{\"a\":\"{[{[\"}", 1),
            ("{\"a\":\"\\\"{\"}", 1),
            ("{\"a\":{},\"b\":{\"c\":{}}}", 3),
        ] {
            assert_eq!(nesting_depth(json), depth, "{json}");
        }
    }

    #[test]
    fn only_lower_case_v4_uuids_pass() {
        for (text, ok) in [
            ("9b2e4c1a-0d3f-4a5b-8c6d-7e8f9a0b1c2d", true),
            ("9B2E4C1A-0D3F-4A5B-8C6D-7E8F9A0B1C2D", false),
            ("9b2e4c1a-0d3f-1a5b-8c6d-7e8f9a0b1c2d", false),
            ("9b2e4c1a-0d3f-4a5b-cc6d-7e8f9a0b1c2d", false),
            ("9b2e4c1a0d3f4a5b8c6d7e8f9a0b1c2d", false),
            ("", false),
        ] {
            assert_eq!(is_uuid_v4(text), ok, "{text}");
        }
    }

    #[test]
    fn serde_errors_point_at_the_field() {
        let missing = parse_batch(br#"{"version":1}"#).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("batch_id"));
        let not_json = parse_batch(b"{").unwrap_err();
        assert_eq!(not_json.field, None);
        let trailing = parse_batch(
            br#"{"version":1,"batch_id":"x","sent_at":1,"sdk":{"name":"a","version":"b"},"consent_state":{"gdpr":{}},"events":[]} x"#,
        )
        .unwrap_err();
        assert_eq!(trailing.field, None);
    }
}
