//! The site's configuration, read from the JSON the page passes to `init`, checked field by field.
//!
//! Every problem is a [`ConfigError`] naming the field, so `init` can throw an error a developer
//! can act on. Unknown fields are refused too: a typo must not silently weaken a setting.
//!
//! The checks are written for a small wasm: one error constructor taking `&str`s, and the
//! numeric fields read from tables rather than one call site each.

use crate::endpoint::Endpoint;
use crate::event::EventKind;
use crate::json::{self, Value};
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH};
use crate::policy::{NamePattern, Policy, PurposeRule};
use crate::purpose::{is_valid_name, PurposeCatalog, PurposeSet};
use crate::retry::RetryPolicy;
use crate::time::Duration;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The longest API key.
pub const MAX_API_KEY_BYTES: usize = 128;

/// Where the shell keeps what it persists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageMode {
    /// `localStorage`, falling back to memory when it is unavailable or full.
    Local,
    /// Memory only: nothing survives a reload.
    Memory,
}

/// When batches go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Send as soon as this many events are queued.
    pub flush_at: usize,
    /// Send queued events at most this long after the first of them was queued.
    pub flush_interval: Duration,
    /// The most events kept waiting; beyond it the oldest is dropped.
    pub max_queue_events: usize,
    /// Events older than this are dropped instead of sent.
    pub max_event_age: Duration,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where batches go.
    pub endpoint: Endpoint,
    /// The site's public write key.
    pub api_key: String,
    /// Purposes, rules and defaults.
    pub policy: Policy,
    /// Batching and queue limits.
    pub batch: BatchPolicy,
    /// Retry attempts and backoff.
    pub retry: RetryPolicy,
    /// Where the shell persists.
    pub storage: StorageMode,
    /// The prefix of every storage key the shell writes.
    pub storage_prefix: String,
    /// Whether the shell reports diagnostics on the console.
    pub debug: bool,
}

/// A configuration the core refuses, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as the page wrote it (`rules[2].purposes`).
    pub field: String,
    /// What is wrong with it, lower-case.
    pub problem: String,
}

/// A refusal while checking: boxed so a `Result` carrying it is two words, which keeps every `?`
/// below a register move instead of a copy of two `String`s.
type Refusal = Box<ConfigError>;

impl ConfigError {
    // Not generic and never inlined: one copy serves every refusal below.
    #[inline(never)]
    fn new(field: &str, problem: &str) -> Refusal {
        Box::new(ConfigError {
            field: String::from(field),
            problem: String::from(problem),
        })
    }

    /// The whole message: ``invalid config: `field` problem``.
    pub fn message(&self) -> String {
        if self.field.is_empty() {
            crate::text::concat(&["invalid config: ", &self.problem])
        } else {
            crate::text::concat(&["invalid config: `", &self.field, "` ", &self.problem])
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for ConfigError {}

const FIELDS: &[&str] = &[
    "endpoint",
    "apiKey",
    "purposes",
    "essentialPurposes",
    "salePurposes",
    "defaultPurposes",
    "rules",
    "flushAt",
    "flushIntervalMs",
    "maxQueueEvents",
    "maxEventAgeMs",
    "retry",
    "storage",
    "storagePrefix",
    "debug",
];

/// A whole-number field: its name, smallest and largest value, and default.
type IntegerField = (&'static str, u64, u64, u64);

/// The batching fields, in the order they are checked.
const BATCH_FIELDS: [IntegerField; 4] = [
    ("flushAt", 1, 100, 20),
    ("flushIntervalMs", 0, 3_600_000, 2_000),
    ("maxQueueEvents", 1, 100_000, 10_000),
    ("maxEventAgeMs", 60_000, 90 * 86_400_000, 7 * 86_400_000),
];

/// The retry fields, in the order they are checked; the defaults are [`RetryPolicy::default`]'s.
const RETRY_FIELDS: [IntegerField; 3] = [
    ("maxAttempts", 1, 100, 10),
    ("baseDelayMs", 10, 600_000, 1_000),
    ("maxDelayMs", 10, 86_400_000, 300_000),
];

const NOT_PURPOSE_NAMES: &str = "must be an array of purpose names";

impl Config {
    /// Reads and checks a configuration from its JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(*ConfigError::new("", "is larger than 4 MiB"));
        }
        let value = json::parse(text, MAX_DOCUMENT_DEPTH).map_err(|e| {
            *ConfigError::new(
                "",
                &crate::text::concat(&["is not a JSON object: ", e.message()]),
            )
        })?;
        Config::from_value(&value)
    }

    /// Checks a configuration already parsed.
    pub fn from_value(value: &Value) -> Result<Config, ConfigError> {
        check(value).map_err(|refusal| *refusal)
    }
}

fn check(value: &Value) -> Result<Config, Refusal> {
    // The checks in the order their refusals take precedence.
    known_fields(value, "", FIELDS, "is not a config field")?;
    let endpoint = Endpoint::parse(required_str(value, "endpoint")?)
        .map_err(|e| ConfigError::new("endpoint", e.message()))?;
    let api_key = required_str(value, "apiKey")?;
    if api_key.is_empty() || api_key.len() > MAX_API_KEY_BYTES {
        return Err(ConfigError::new("apiKey", "must be 1 to 128 bytes long"));
    }
    let optional = purpose_list(value, "purposes")?.ok_or_else(|| {
        ConfigError::new(
            "purposes",
            "is required: the non-essential purposes the site uses",
        )
    })?;
    let essential =
        purpose_list(value, "essentialPurposes")?.unwrap_or_else(|| alloc::vec!["necessary"]);
    let sale = purpose_list(value, "salePurposes")?.unwrap_or_default();
    let catalog = PurposeCatalog::from_names(&essential, &optional, &sale)
        .map_err(|e| ConfigError::new("purposes", &e.message()))?;
    let default_purposes = match value.get("defaultPurposes") {
        Some(v) => purpose_set(&catalog, v, "defaultPurposes")?,
        None => PurposeSet::EMPTY,
    };
    let rules = rules(&catalog, value.get("rules"))?;
    let mut batch = [0; 4];
    integers(value, "", &BATCH_FIELDS, &mut batch)?;
    let [flush_at, flush_interval, max_queue_events, max_event_age] = batch;
    let retry = retry_policy(value.get("retry"))?;
    let storage = match value.get("storage").map(Value::as_str) {
        None => StorageMode::Local,
        Some(Some("local")) => StorageMode::Local,
        Some(Some("memory")) => StorageMode::Memory,
        Some(_) => {
            return Err(ConfigError::new(
                "storage",
                "must be \"local\" or \"memory\"",
            ))
        }
    };
    let storage_prefix = match value.get("storagePrefix").map(Value::as_str) {
        None => "consentry",
        Some(Some(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
        {
            s
        }
        Some(_) => {
            return Err(ConfigError::new(
                "storagePrefix",
                "must be 1 to 64 of A-Z, a-z, 0-9, _, - and .",
            ))
        }
    };
    let debug = match value.get("debug") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ConfigError::new("debug", "must be true or false"))?,
    };
    Ok(Config {
        endpoint,
        api_key: String::from(api_key),
        policy: Policy {
            catalog,
            rules,
            default_purposes,
        },
        batch: BatchPolicy {
            flush_at: flush_at as usize,
            flush_interval: Duration::from_millis(flush_interval),
            max_queue_events: max_queue_events as usize,
            max_event_age: Duration::from_millis(max_event_age),
        },
        retry,
        storage,
        storage_prefix: String::from(storage_prefix),
        debug,
    })
}

/// Refuses the first member of the object `value` not named in `known`, as `prefix` + its name.
fn known_fields(value: &Value, prefix: &str, known: &[&str], problem: &str) -> Result<(), Refusal> {
    let field = if prefix.is_empty() {
        ""
    } else {
        // `rules[2].` names the rule itself as `rules[2]`.
        prefix.get(..prefix.len() - 1).unwrap_or_default()
    };
    let members = value
        .as_object()
        .ok_or_else(|| ConfigError::new(field, "must be an object"))?;
    match members.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((unknown, _)) => Err(ConfigError::new(
            &crate::text::concat(&[prefix, unknown]),
            problem,
        )),
        None => Ok(()),
    }
}

fn required_str<'a>(value: &'a Value, field: &str) -> Result<&'a str, Refusal> {
    match value.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ConfigError::new(field, "must be a string")),
        None => Err(ConfigError::new(field, "is required")),
    }
}

/// Reads the whole-number fields `table` of the object `value` into `numbers`, in order; errors
/// name the field as `prefix` + its name.
fn integers(
    value: &Value,
    prefix: &str,
    table: &[IntegerField],
    numbers: &mut [u64],
) -> Result<(), Refusal> {
    for (slot, &(field, min, max, default)) in numbers.iter_mut().zip(table) {
        *slot = match value.get(field) {
            None => default,
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => n,
                _ => {
                    let mut problem = String::from("must be a whole number from ");
                    json::write_u64(&mut problem, min);
                    problem.push_str(" to ");
                    json::write_u64(&mut problem, max);
                    return Err(ConfigError::new(
                        &crate::text::concat(&[prefix, field]),
                        &problem,
                    ));
                }
            },
        };
    }
    Ok(())
}

/// The items of a purpose-name array field.
fn name_items<'a>(value: &'a Value, field: &str) -> Result<&'a [Value], Refusal> {
    value
        .as_array()
        .ok_or_else(|| ConfigError::new(field, NOT_PURPOSE_NAMES))
}

/// A purpose-name array field as checked names, or `None` when absent.
fn purpose_list<'a>(config: &'a Value, field: &str) -> Result<Option<Vec<&'a str>>, Refusal> {
    let Some(value) = config.get(field) else {
        return Ok(None);
    };
    let items = name_items(value, field)?;
    let mut list = Vec::with_capacity(items.len());
    for item in items {
        let name = item
            .as_str()
            .ok_or_else(|| ConfigError::new(field, NOT_PURPOSE_NAMES))?;
        if !is_valid_name(name) {
            return Err(ConfigError::new(
                field,
                &crate::text::concat(&["has `", name, "`, but a purpose name is a lower-case letter then up to 63 of a-z, 0-9, _ and -"]),
            ));
        }
        list.push(name);
    }
    Ok(Some(list))
}

fn purpose_set(
    catalog: &PurposeCatalog,
    value: &Value,
    field: &str,
) -> Result<PurposeSet, Refusal> {
    let items = name_items(value, field)?;
    if items.iter().any(|item| item.as_str().is_none()) {
        return Err(ConfigError::new(field, NOT_PURPOSE_NAMES));
    }
    catalog.set_of_values(items).map_err(|unknown| {
        ConfigError::new(
            field,
            &crate::text::concat(&["names `", unknown, "`, which is not a declared purpose"]),
        )
    })
}

fn rules(catalog: &PurposeCatalog, value: Option<&Value>) -> Result<Vec<PurposeRule>, Refusal> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| ConfigError::new("rules", "must be an array"))?;
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut prefix = String::from("rules[");
        json::write_u64(&mut prefix, i as u64);
        prefix.push_str("].");
        let field = |name: &str| crate::text::concat(&[prefix.as_str(), name]);
        known_fields(
            item,
            &prefix,
            &["event", "type", "purposes"],
            "is not a rule field",
        )?;
        let name = match item.get("event").map(Value::as_str) {
            None => None,
            Some(Some(s)) if !s.is_empty() => Some(NamePattern::parse(s)),
            Some(_) => {
                return Err(ConfigError::new(
                    &field("event"),
                    "must be a non-empty string",
                ))
            }
        };
        let kind = match item.get("type") {
            None => None,
            Some(v) => match v.as_str().and_then(EventKind::from_wire) {
                Some(k) if k != EventKind::ConsentChange => Some(k),
                _ => {
                    return Err(ConfigError::new(
                        &field("type"),
                        "must be \"track\", \"page\" or \"identify\"",
                    ))
                }
            },
        };
        let purposes_field = field("purposes");
        let purposes = match item.get("purposes") {
            Some(v) => purpose_set(catalog, v, &purposes_field)?,
            None => return Err(ConfigError::new(&purposes_field, "is required")),
        };
        if purposes.is_empty() {
            return Err(ConfigError::new(
                &purposes_field,
                "must name at least one purpose",
            ));
        }
        rules.push(PurposeRule {
            kind,
            name,
            purposes,
        });
    }
    Ok(rules)
}

fn retry_policy(value: Option<&Value>) -> Result<RetryPolicy, Refusal> {
    let Some(value) = value else {
        return Ok(RetryPolicy::default());
    };
    known_fields(
        value,
        "retry.",
        &["maxAttempts", "baseDelayMs", "maxDelayMs"],
        "is not a retry field",
    )?;
    let mut numbers = [0; 3];
    integers(value, "retry.", &RETRY_FIELDS, &mut numbers)?;
    let [max_attempts, base_delay, max_delay] = numbers;
    if max_delay < base_delay {
        return Err(ConfigError::new(
            "retry.maxDelayMs",
            "must not be below retry.baseDelayMs",
        ));
    }
    Ok(RetryPolicy {
        max_attempts: max_attempts as u32,
        base_delay: Duration::from_millis(base_delay),
        max_delay: Duration::from_millis(max_delay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        r#"{"endpoint":"https://c.example","apiKey":"k","purposes":["analytics"]}"#;

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let config = Config::from_json(MINIMAL).unwrap();
        assert_eq!(config.endpoint.batch_url(), "https://c.example/v1/batch");
        assert_eq!(config.policy.catalog.index_of("necessary"), Some(0));
        assert_eq!(config.policy.catalog.essential(), PurposeSet::only(0));
        assert!(config.policy.default_purposes.is_empty());
        assert_eq!(config.batch.flush_at, 20);
        assert_eq!(config.batch.flush_interval, Duration::from_secs(2));
        assert_eq!(config.batch.max_queue_events, 10_000);
        assert_eq!(config.retry, RetryPolicy::default());
        assert_eq!(config.storage, StorageMode::Local);
        assert_eq!(config.storage_prefix, "consentry");
        assert!(!config.debug);
    }

    #[test]
    fn a_full_config_is_read() {
        let config = Config::from_json(
            r#"{"endpoint":"http://localhost:8443","apiKey":"pk","purposes":["analytics","ads"],
                "essentialPurposes":["strictly_necessary"],"salePurposes":["ads"],"defaultPurposes":["analytics"],
                "rules":[{"event":"ad_*","purposes":["ads"]},{"type":"page","purposes":["analytics"]}],
                "flushAt":5,"flushIntervalMs":0,"maxQueueEvents":50,"maxEventAgeMs":60000,
                "retry":{"maxAttempts":3,"baseDelayMs":100,"maxDelayMs":1000},
                "storage":"memory","storagePrefix":"shop.cx","debug":true}"#,
        )
        .unwrap();
        assert_eq!(config.policy.rules.len(), 2);
        assert_eq!(config.policy.catalog.sale(), PurposeSet::only(2));
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.batch.flush_interval, Duration::ZERO);
        assert_eq!(config.storage, StorageMode::Memory);
        assert!(config.debug);
    }

    #[test]
    fn table_of_refusals_names_the_field() {
        let cases = [
            ("[]", "invalid config: must be an object"),
            ("{", "invalid config: is not a JSON object: not valid JSON"),
            (r#"{"apiKey":"k","purposes":[]}"#, "invalid config: `endpoint` is required"),
            (r#"{"endpoint":1,"apiKey":"k","purposes":[]}"#, "invalid config: `endpoint` must be a string"),
            (
                r#"{"endpoint":"http://example.com","apiKey":"k","purposes":[]}"#,
                "invalid config: `endpoint` must use https:// (plain http:// is allowed only for localhost, 127.0.0.1 and [::1])",
            ),
            (r#"{"endpoint":"https://e","apiKey":"","purposes":[]}"#, "invalid config: `apiKey` must be 1 to 128 bytes long"),
            (
                r#"{"endpoint":"https://e","apiKey":"k"}"#,
                "invalid config: `purposes` is required: the non-essential purposes the site uses",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["Analytics"]}"#,
                "invalid config: `purposes` has `Analytics`, but a purpose name is a lower-case letter then up to 63 of a-z, 0-9, _ and -",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["necessary"]}"#,
                "invalid config: `purposes` purpose `necessary` is declared twice",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"essentialPurposes":[]}"#,
                "invalid config: `purposes` at least one essential purpose is needed",
            ),
            (r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"flushAtt":3}"#, "invalid config: `flushAtt` is not a config field"),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"flushAt":0}"#,
                "invalid config: `flushAt` must be a whole number from 1 to 100",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"flushAt":2.5}"#,
                "invalid config: `flushAt` must be a whole number from 1 to 100",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"defaultPurposes":["b"]}"#,
                "invalid config: `defaultPurposes` names `b`, which is not a declared purpose",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"rules":[{"event":"x"}]}"#,
                "invalid config: `rules[0].purposes` is required",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"rules":[{"purposes":["a"]},{"type":"consent_change","purposes":["a"]}]}"#,
                "invalid config: `rules[1].type` must be \"track\", \"page\" or \"identify\"",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"rules":[{"purposes":[],"when":1}]}"#,
                "invalid config: `rules[0].when` is not a rule field",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"rules":[{"purposes":[]}]}"#,
                "invalid config: `rules[0].purposes` must name at least one purpose",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"retry":{"baseDelayMs":5000,"maxDelayMs":1000}}"#,
                "invalid config: `retry.maxDelayMs` must not be below retry.baseDelayMs",
            ),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"retry":{"maxAttempts":0}}"#,
                "invalid config: `retry.maxAttempts` must be a whole number from 1 to 100",
            ),
            (r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"storage":"cookie"}"#, "invalid config: `storage` must be \"local\" or \"memory\""),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"storagePrefix":"a b"}"#,
                "invalid config: `storagePrefix` must be 1 to 64 of A-Z, a-z, 0-9, _, - and .",
            ),
            (r#"{"endpoint":"https://e","apiKey":"k","purposes":[],"debug":"yes"}"#, "invalid config: `debug` must be true or false"),
            (
                r#"{"endpoint":"https://e","apiKey":"k","purposes":["a"],"salePurposes":["necessary"]}"#,
                "invalid config: `purposes` sale purpose `necessary` is not a declared non-essential purpose",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Config::from_json(text).unwrap_err().message(),
                expected,
                "{text}"
            );
        }
    }
}
