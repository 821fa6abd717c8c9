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

/// Checks the rules serde types cannot express.
pub fn check_batch(batch: &Batch) -> Result<(), ValidationError> {
    if batch.version != WIRE_VERSION {
        return Err(ValidationError::at(
            "version",
            format!("must be {WIRE_VERSION}"),
        ));
    }
    uuid_v4("batch_id", &batch.batch_id)?;
    unixtime("sent_at", batch.sent_at)?;
    if let Some(key) = &batch.api_key {
        chars("api_key", key, 1, crate::keys::MAX_API_KEY_CHARS)?;
    }
    chars("sdk.name", &batch.sdk.name, 0, 64)?;
    chars("sdk.version", &batch.sdk.version, 0, 32)?;
    consent_state("consent_state", &batch.consent_state)?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return Err(ValidationError::at(
            "events",
            format!("must hold 1 to {MAX_BATCH_EVENTS} events"),
        ));
    }
    for (i, event) in batch.events.iter().enumerate() {
        check_event(&format!("events[{i}]"), event)?;
    }
    Ok(())
}

fn check_event(at: &str, event: &Event) -> Result<(), ValidationError> {
    let field = |name: &str| format!("{at}.{name}");
    uuid_v4(&field("id"), &event.id)?;
    chars(&field("name"), &event.name, 1, 256)?;
    unixtime(&field("timestamp_unixtime_ms"), event.timestamp_unixtime_ms)?;
    if event.purposes.is_empty() {
        return Err(ValidationError::at(
            field("purposes"),
            "must name at least one purpose",
        ));
    }
    for (j, purpose) in event.purposes.iter().enumerate() {
        let here = format!("{at}.purposes[{j}]");
        purpose_name(&here, purpose)?;
        if event.purposes[..j].contains(purpose) {
            return Err(ValidationError::at(here, "repeats an earlier purpose"));
        }
    }
    if let Some(anonymous_id) = &event.anonymous_id {
        uuid_v4(&field("anonymous_id"), anonymous_id)?;
    }
    if let Some(user_id) = &event.user_id {
        chars(&field("user_id"), user_id, 1, 256)?;
    }
    properties(&field("properties"), event.properties.get())?;
    if let Some(page) = &event.page {
        for (name, value, max) in [
            ("url", &page.url, 2048),
            ("title", &page.title, 1024),
            ("referrer", &page.referrer, 2048),
        ] {
            if let Some(value) = value {
                chars(&format!("{at}.page.{name}"), value, 0, max)?;
            }
        }
    }
    if let Some(consent) = &event.consent {
        consent_state(&format!("{at}.consent.current"), &consent.current)?;
        consent_state(&format!("{at}.consent.previous"), &consent.previous)?;
    }
    if event.kind == EventKind::ConsentChange && event.consent.is_none() {
        return Err(ValidationError::at(
            field("consent"),
            "is required on consent_change events",
        ));
    }
    if event.kind == EventKind::Identify && event.user_id.is_none() {
        return Err(ValidationError::at(
            field("user_id"),
            "is required on identify events",
        ));
    }
    Ok(())
}

fn consent_state(at: &str, state: &ConsentState) -> Result<(), ValidationError> {
    for (name, record) in &state.gdpr {
        let here = format!("{at}.gdpr.{name}");
        purpose_name(&here, name)?;
        consent_record(&here, record)?;
    }
    if let Some(record) = state
        .ccpa
        .as_ref()
        .and_then(|c| c.data_sale_opt_out.as_ref())
    {
        consent_record(&format!("{at}.ccpa.data_sale_opt_out"), record)?;
    }
    Ok(())
}

fn consent_record(at: &str, record: &ConsentRecord) -> Result<(), ValidationError> {
    unixtime(
        &format!("{at}.timestamp_unixtime_ms"),
        record.timestamp_unixtime_ms,
    )?;
    for (name, value) in [
        ("document", &record.document),
        ("location", &record.location),
        ("hardware_id", &record.hardware_id),
    ] {
        if let Some(value) = value {
            chars(&format!("{at}.{name}"), value, 0, 256)?;
        }
    }
    Ok(())
}

fn properties(at: &str, json: &str) -> Result<(), ValidationError> {
    if !json.starts_with('{') {
        return Err(ValidationError::at(at, "must be a JSON object"));
    }
    if json.len() > MAX_PROPERTIES_BYTES {
        return Err(ValidationError::at(
            at,
            format!("must be at most {MAX_PROPERTIES_BYTES} bytes of JSON"),
        ));
    }
    if nesting_depth(json) > MAX_PROPERTIES_DEPTH {
        return Err(ValidationError::at(
            at,
            format!("must nest at most {MAX_PROPERTIES_DEPTH} levels deep"),
        ));
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

fn uuid_v4(at: &str, text: &str) -> Result<(), ValidationError> {
    if is_uuid_v4(text) {
        Ok(())
    } else {
        Err(ValidationError::at(
            at,
            "must be a lower-case version 4 UUID (xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx)",
        ))
    }
}

fn purpose_name(at: &str, name: &str) -> Result<(), ValidationError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ValidationError::at(
            at,
            "must be a purpose name: a lower-case letter then up to 63 of a-z, 0-9, _ and -",
        ))
    }
}

fn unixtime(at: &str, ms: u64) -> Result<(), ValidationError> {
    if ms <= MAX_UNIXTIME_MS {
        Ok(())
    } else {
        Err(ValidationError::at(
            at,
            format!("must be a Unix time in milliseconds up to {MAX_UNIXTIME_MS}"),
        ))
    }
}

fn chars(at: &str, text: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let n = text.chars().count();
    if (min..=max).contains(&n) {
        Ok(())
    } else if min == 0 {
        Err(ValidationError::at(
            at,
            format!("must be at most {max} characters"),
        ))
    } else {
        Err(ValidationError::at(
            at,
            format!("must be {min} to {max} characters"),
        ))
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
