//! Browser tests of the wasm boundary in headless Chromium (wasm-bindgen-test): the `Sdk` as the
//! JavaScript host drives it, with hostile input, TLS refusal and the output encoding the host
//! parses. Run with `cargo test --target wasm32-unknown-unknown -p consentry --features std`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use consentry::Sdk;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const T0: f64 = 1_763_800_000_000.0;
const SEED: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn config(endpoint: &str) -> String {
    format!(
        r#"{{"endpoint":"{endpoint}","apiKey":"pk_test","purposes":["analytics","advertising"],
            "defaultPurposes":["analytics"],"flushAt":1}}"#
    )
}

fn sdk() -> Sdk {
    Sdk::new(&config("https://collect.example.com"), &SEED, T0).unwrap()
}

fn drain(sdk: &mut Sdk) -> Vec<String> {
    std::iter::from_fn(|| sdk.poll()).collect()
}

fn error_message(error: wasm_bindgen::JsError) -> String {
    let value: JsValue = error.into();
    js_sys::Reflect::get(&value, &"message".into())
        .unwrap()
        .as_string()
        .unwrap()
}

#[wasm_bindgen_test]
fn plain_http_is_refused_except_for_loopback() {
    let refused = Sdk::new(&config("http://collect.example.com"), &SEED, T0)
        .err()
        .expect("refused");
    assert!(error_message(refused).starts_with("invalid config: `endpoint` must use https://"));
    for endpoint in [
        "http://localhost:8444",
        "http://127.0.0.1:8444",
        "http://[::1]:8444",
        "https://c.example",
    ] {
        assert!(Sdk::new(&config(endpoint), &SEED, T0).is_ok(), "{endpoint}");
    }
}

#[wasm_bindgen_test]
fn a_bad_config_throws_an_error_naming_the_field() {
    let error = Sdk::new(
        r#"{"endpoint":"https://c.example","apiKey":"k","purposes":["ok"],"flushAt":"soon"}"#,
        &SEED,
        T0,
    )
    .err()
    .expect("refused");
    assert_eq!(
        error_message(error),
        "invalid config: `flushAt` must be a whole number from 1 to 100"
    );
}

#[wasm_bindgen_test]
fn nothing_leaves_before_consent_and_grant_sends_in_the_wire_format() {
    let mut sdk = sdk();
    assert_eq!(sdk.track(T0, Some("Viewed".into()), None, None), None);
    assert_eq!(
        drain(&mut sdk),
        ["ndrop\n{\"reason\":\"consent_denied\",\"count\":1}"]
    );
    assert!(sdk
        .set_consent(
            T0,
            r#"{"analytics":true}"#,
            Some(r#"{"document":"v1","location":"banner"}"#.into())
        )
        .unwrap());
    let outputs = drain(&mut sdk);
    let sends: Vec<&String> = outputs.iter().filter(|o| o.starts_with('s')).collect();
    assert_eq!(sends.len(), 1, "{outputs:?}");
    let body: &str = &sends[0][38..];
    let parsed = js_sys::JSON::parse(body).unwrap();
    let events = js_sys::Reflect::get(&parsed, &"events".into()).unwrap();
    let first = js_sys::Reflect::get(&events, &0.into()).unwrap();
    assert_eq!(
        js_sys::Reflect::get(&first, &"type".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "consent_change"
    );
    assert!(
        outputs.iter().any(|o| o.starts_with("pc={\"v\":1")),
        "the choice is stored: {outputs:?}"
    );
    assert!(
        outputs.iter().any(|o| o.starts_with("pi={\"v\":1")),
        "the identity is stored once granted"
    );
    let batch_id = &sends[0][1..37];
    sdk.send_result(T0, batch_id, 200, None);
    let id = sdk
        .track(
            T0,
            Some("Viewed".into()),
            Some(r#"{"sku":"tea"}"#.into()),
            None,
        )
        .expect("admitted");
    assert_eq!(id.len(), 36);
}

#[wasm_bindgen_test]
fn hostile_input_is_dropped_with_a_reason_and_never_throws() {
    let mut sdk = sdk();
    sdk.set_consent(T0, r#"{"analytics":true}"#, None).unwrap();
    drain(&mut sdk);
    let huge = "x".repeat(10 * 1024 * 1024);
    let cases: Vec<(Option<String>, Option<String>, Option<String>, &str)> = vec![
        (None, None, None, "invalid_name"),
        (Some(String::new()), None, None, "invalid_name"),
        (Some(huge.clone()), None, None, "name_too_long"),
        (
            Some("e".into()),
            Some(String::new()),
            None,
            "invalid_properties",
        ),
        (Some("e".into()), Some(huge), None, "properties_too_large"),
        (
            Some("e".into()),
            Some("[1]".into()),
            None,
            "invalid_properties",
        ),
        (
            Some("e".into()),
            None,
            Some("\"analytics\"".into()),
            "unknown_purpose",
        ),
        (
            Some("e".into()),
            None,
            Some(r#"["nope"]"#.into()),
            "unknown_purpose",
        ),
        (Some("e".into()), None, Some("[]".into()), "no_purpose"),
    ];
    for (name, properties, purposes, reason) in cases {
        assert_eq!(sdk.track(T0, name, properties, purposes), None, "{reason}");
        let outputs = drain(&mut sdk);
        assert!(
            outputs
                .iter()
                .any(|o| o.contains(&format!("\"reason\":\"{reason}\""))),
            "{reason}: {outputs:?}"
        );
    }
    assert_eq!(sdk.identify(T0, None, None, None), None);
    assert!(sdk
        .track(
            T0,
            Some("</script>\u{0}😀".into()),
            Some(r#"{"ok":true}"#.into()),
            None
        )
        .is_some());
    let stats = sdk.stats();
    assert!(stats.contains("\"invalid_name\":2"), "{stats}");
    assert!(stats.contains("\"invalid_user_id\":1"), "{stats}");
}

#[wasm_bindgen_test]
fn consent_calls_naming_unknown_purposes_throw_clear_errors() {
    let mut sdk = sdk();
    let error = sdk
        .set_consent(T0, r#"{"analytics":true,"typo":true}"#, None)
        .err()
        .expect("refused");
    assert_eq!(
        error_message(error),
        "purpose `typo` is not declared in the config"
    );
    let error = sdk
        .set_consent(T0, r#"{"necessary":false}"#, None)
        .err()
        .expect("refused");
    assert_eq!(
        error_message(error),
        "purpose `necessary` is essential: it is always granted and cannot be set"
    );
    let error = sdk.set_consent(T0, "[true]", None).err().expect("refused");
    assert_eq!(
        error_message(error),
        "setConsent takes an object such as {analytics: true}"
    );
    assert!(sdk.consent().contains("\"hasChoices\":false"));
}

#[wasm_bindgen_test]
fn the_deadline_and_timeout_drive_time_based_flushes() {
    let mut sdk = Sdk::new(
        r#"{"endpoint":"https://c.example","apiKey":"k","purposes":["analytics"],"defaultPurposes":["analytics"],"flushAt":50,"flushIntervalMs":2000}"#,
        &SEED,
        T0,
    )
    .unwrap();
    assert_eq!(sdk.deadline(), -1.0);
    sdk.set_consent(T0, r#"{"analytics":true}"#, None).unwrap();
    drain(&mut sdk);
    let deadline = sdk.deadline();
    assert!(deadline > T0 && deadline <= T0 + 2000.0, "{deadline}");
    sdk.timeout(T0 + 2000.0);
    assert!(drain(&mut sdk).iter().any(|o| o.starts_with('s')));
    assert!(!sdk.is_idle());
}

#[wasm_bindgen_test]
fn page_hide_sends_with_keepalive_and_persists() {
    let mut sdk = sdk();
    sdk.set_consent(T0, r#"{"analytics":true}"#, None).unwrap();
    sdk.network(T0, false);
    sdk.track(T0, Some("a".into()), None, None).unwrap();
    drain(&mut sdk);
    sdk.network(T0, true);
    sdk.visibility(T0, true);
    let outputs = drain(&mut sdk);
    assert!(
        outputs
            .iter()
            .any(|o| o.starts_with('s') && o.as_bytes()[37] == b'k'),
        "{outputs:?}"
    );
    assert!(
        outputs.iter().any(|o| o.starts_with("pq={\"v\":1")),
        "{outputs:?}"
    );
}
