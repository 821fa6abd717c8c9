//! What crosses between JavaScript and the core: consent calls and event options arrive as the
//! JSON text `JSON.stringify` made of them; outputs leave as one tagged string each.
//!
//! Output strings, read by `js/host.js`:
//! - `s<batch id><k|->` then the body: send the body, with `keepalive` when `k`;
//! - `p<name>=<text>` to store a document, `p<name>-` to remove it, where the name is `c`
//!   (consent), `i` (identity) or `q` and a slot digit (a queue document);
//! - `n<type>` then a newline and the detail JSON: a diagnostic for the page's listeners;
//! - `b` then a message: post it to the site's other tabs;
//! - `a`: offer the queues other pages left in storage (`AdoptQueue`, each).

use alloc::string::String;
use alloc::vec::Vec;
use consentry_core::json::{self, Value};
use consentry_core::text::concat;
use consentry_core::{
    ConsentContext, ConsentSource, Consentry, DropReason, Entropy, Output, StorageKey, StorageMode,
};

/// The longest consent field, in bytes (document, location, hardware id).
const MAX_FIELD_BYTES: usize = consentry_core::consent::MAX_CONSENT_FIELD_BYTES;

/// Encodes one core output for the JavaScript host (format in the module docs).
pub fn encode_output(output: Output) -> String {
    match output {
        Output::Send(transmission) => {
            let mut out = String::with_capacity(transmission.body.len() + 38);
            out.push('s');
            transmission.batch_id.0.write_to(&mut out);
            out.push(if transmission.keepalive { 'k' } else { '-' });
            out.push_str(&transmission.body);
            out
        }
        Output::Persist { key, value } => {
            let mut out = String::from("p");
            write_storage_name(&mut out, key);
            match value {
                Some(value) => {
                    out.push('=');
                    out.push_str(&value);
                }
                None => out.push('-'),
            }
            out
        }
        Output::Notify(notice) => concat(&["n", notice.kind(), "\n", &notice.detail_json()]),
        Output::Broadcast(message) => concat(&["b", &message]),
        Output::AdoptQueues => String::from("a"),
    }
}

/// The longest string the facade hands in: longer than any limit the core applies (names
/// 256 B, properties 24 KiB), so clipping to it never changes a decision; it only keeps a 10 MB
/// string out of wasm memory.
pub const MAX_INPUT_CHARS: u64 = 65_537;

/// What the host needs, as JSON: `{batchUrl, storage, storagePrefix, debug, pageId,
/// maxInputChars, scope, sendTimeoutMs}`. The scope names this configuration (its endpoint and
/// API key) in the names of the tabs' channel and locks and of stored queues, so two
/// configurations sharing a storage prefix never take each other's events.
pub(crate) fn host_config(core: &Consentry) -> String {
    let config = core.config();
    let mut scope = [0u8; 16];
    for (i, byte) in scope_hash(&config.endpoint.batch_url(), &config.api_key)
        .to_be_bytes()
        .into_iter()
        .enumerate()
    {
        for (j, digit) in [byte >> 4, byte & 0x0f].into_iter().enumerate() {
            if let Some(slot) = scope.get_mut(i * 2 + j) {
                *slot = b"0123456789abcdef"[usize::from(digit)];
            }
        }
    }
    let mut out = String::new();
    let mut object = json::ObjectWriter::new(&mut out);
    object.str("batchUrl", &config.endpoint.batch_url());
    object.str(
        "storage",
        match config.storage {
            StorageMode::Local => "local",
            StorageMode::Memory => "memory",
        },
    );
    object.str("storagePrefix", &config.storage_prefix);
    object.bool("debug", config.debug);
    object.str("pageId", &core.peer_id().to_hex());
    object.u64("maxInputChars", MAX_INPUT_CHARS);
    object.str("scope", core::str::from_utf8(&scope).unwrap_or_default());
    object.u64(
        "sendTimeoutMs",
        consentry_core::machine::SEND_TIMEOUT.as_millis(),
    );
    object.finish();
    out
}

/// FNV-1a over the batch URL, a newline and the API key: a name, not a secret.
fn scope_hash(batch_url: &str, api_key: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in batch_url.bytes().chain([b'\n']).chain(api_key.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Writes the host's name of a storage document: `c`, `i`, or `q` and the slot digit.
fn write_storage_name(out: &mut String, key: StorageKey) {
    match key {
        StorageKey::Consent => out.push('c'),
        StorageKey::Identity => out.push('i'),
        StorageKey::Queue(slot) => {
            out.push('q');
            out.push(char::from(b'0' + slot % 10));
        }
    }
}

/// The storage document a host name (`c`, `i`, `q0` to `q9`) names.
pub(crate) fn storage_key(name: &str) -> Option<StorageKey> {
    match name.as_bytes() {
        b"c" => Some(StorageKey::Consent),
        b"i" => Some(StorageKey::Identity),
        [b'q', digit @ b'0'..=b'9'] => Some(StorageKey::Queue(digit - b'0')),
        _ => None,
    }
}

/// 256 bits from the 64 hex digits the host sends of `crypto.getRandomValues` output. Anything
/// else gives zero bits, which a reseed mixes in as nothing: the generator stays as strong as
/// it was, so a host bug cannot weaken an id, only fail to add to it.
pub(crate) fn entropy(hex: Option<&str>) -> Entropy {
    hex.and_then(Entropy::from_hex).unwrap_or(Entropy([0; 32]))
}

/// `setConsent`'s choices: the JSON of an object mapping purpose names to `true`/`false`.
pub(crate) fn consent_choices(text: &str) -> Result<Vec<(String, bool)>, String> {
    let value = json::parse(text, 2).ok();
    let Some(Value::Object(members)) = value else {
        return Err(String::from(
            "setConsent takes an object such as {analytics: true}",
        ));
    };
    let mut choices = Vec::with_capacity(members.len());
    for (name, granted) in members {
        match granted {
            Value::Bool(granted) => choices.push((name, granted)),
            _ => return Err(concat(&["consent for `", &name, "` must be true or false"])),
        }
    }
    Ok(choices)
}

/// A consent call's options: the JSON of `{document, location, hardwareId, source}`, or `None`.
pub(crate) fn consent_context(text: Option<&str>) -> Result<ConsentContext, String> {
    let mut context = ConsentContext::user();
    let Some(text) = text else { return Ok(context) };
    let Ok(Value::Object(members)) = json::parse(text, 2) else {
        return Err(String::from("consent options must be an object"));
    };
    for (field, value) in members {
        let text = match value {
            Value::Null => None,
            Value::String(s) if s.len() <= MAX_FIELD_BYTES => Some(s),
            _ => {
                return Err(concat(&[
                    "consent option `",
                    &field,
                    "` must be a string of at most 256 bytes",
                ]))
            }
        };
        match field.as_str() {
            "document" => context.document = text,
            "location" => context.location = text,
            "hardwareId" => context.hardware_id = text,
            "source" => {
                context.source = match text.as_deref() {
                    None | Some("user") => ConsentSource::User,
                    Some("api") => ConsentSource::Api,
                    Some(_) => {
                        return Err(String::from(
                            "consent option `source` must be \"user\" or \"api\"",
                        ))
                    }
                }
            }
            _ => return Err(concat(&["consent option `", &field, "` is not known"])),
        }
    }
    Ok(context)
}

/// The purposes an event call named: the JSON of an array of names, or `None` for none. The
/// empty text is what the facade sends when it could not read the options at all.
pub(crate) fn purposes(text: Option<&str>) -> Result<Option<Vec<String>>, DropReason> {
    let Some(text) = text else { return Ok(None) };
    if text.is_empty() {
        return Err(DropReason::InvalidOptions);
    }
    let Ok(Value::Array(items)) = json::parse(text, 1) else {
        return Err(DropReason::UnknownPurpose);
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(name) => names.push(name),
            _ => return Err(DropReason::UnknownPurpose),
        }
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_choices_are_read_or_refused_with_a_message() {
        assert_eq!(
            consent_choices(r#"{"analytics":true,"ads":false}"#),
            Ok(alloc::vec![
                ("analytics".into(), true),
                ("ads".into(), false)
            ])
        );
        assert_eq!(
            consent_choices(r#"{"analytics":"yes"}"#),
            Err("consent for `analytics` must be true or false".into())
        );
        for bad in ["[]", "true", "", "{\"a\":{\"b\":true}}"] {
            assert!(consent_choices(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consent_options_are_read_or_refused_with_a_message() {
        let context = consent_context(Some(
            r#"{"document":"v3","location":"banner","hardwareId":null,"source":"api"}"#,
        ))
        .unwrap();
        assert_eq!(context.document.as_deref(), Some("v3"));
        assert_eq!(context.source, ConsentSource::Api);
        assert_eq!(consent_context(None), Ok(ConsentContext::user()));
        assert_eq!(
            consent_context(Some(r#"{"where":"x"}"#)),
            Err("consent option `where` is not known".into())
        );
        assert_eq!(
            consent_context(Some(r#"{"source":"robot"}"#)),
            Err("consent option `source` must be \"user\" or \"api\"".into())
        );
        let long = ["{\"document\":\"", &"d".repeat(300), "\"}"].concat();
        assert!(consent_context(Some(&long)).is_err());
    }

    #[test]
    fn purposes_must_be_an_array_of_strings() {
        assert_eq!(purposes(None), Ok(None));
        assert_eq!(
            purposes(Some(r#"["a","b"]"#)),
            Ok(Some(alloc::vec!["a".into(), "b".into()]))
        );
        assert_eq!(purposes(Some("")), Err(DropReason::InvalidOptions));
        for bad in ["\"a\"", "[1]", "{}", "[[\"a\"]]"] {
            assert_eq!(
                purposes(Some(bad)),
                Err(DropReason::UnknownPurpose),
                "{bad}"
            );
        }
    }

    #[test]
    fn outputs_are_tagged_strings() {
        assert_eq!(
            encode_output(Output::Persist {
                key: StorageKey::Queue(2),
                value: None
            }),
            "pq2-"
        );
        assert_eq!(
            encode_output(Output::Persist {
                key: StorageKey::Consent,
                value: Some("{}".into())
            }),
            "pc={}"
        );
        let notice = consentry_core::Notice::Delivered { count: 2 };
        assert_eq!(
            encode_output(Output::Notify(notice)),
            "ndeliver\n{\"count\":2}"
        );
        assert_eq!(storage_key("q0"), Some(StorageKey::Queue(0)));
        assert_eq!(storage_key("q3"), Some(StorageKey::Queue(3)));
        for bad in ["q", "x", "qq", "q10", ""] {
            assert_eq!(storage_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn entropy_is_read_from_hex_or_is_nothing() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let Entropy(bytes) = entropy(Some(hex));
        assert_eq!(bytes[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(bytes[31], 0xff);
        for bad in [
            None,
            Some(""),
            Some("abc"),
            Some(&hex.replace('0', "g")[..]),
        ] {
            assert_eq!(entropy(bad), Entropy([0; 32]), "{bad:?}");
        }
    }
}
