//! Browser tests of the wasm boundary in headless Chromium (wasm-bindgen-test): the `Sdk` as the
//! JavaScript host drives it, with hostile input, TLS refusal and the output encoding the host
//! parses. Run with `cargo test --target wasm32-unknown-unknown -p consentry --features std`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use consentry::{Input, Sdk};
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
    started(Sdk::new(&config("https://collect.example.com"), &SEED, T0).unwrap())
}

/// What the host does once it has restored storage and replayed the page's early calls.
fn started(mut sdk: Sdk) -> Sdk {
    call(&mut sdk, Input::Start, 0.0, &[]);
    sdk
}

/// Hands `sdk` one input the way `js/host.js` does: the kind, the time, a number, up to five strings.
fn call(sdk: &mut Sdk, kind: Input, n: f64, args: &[Option<&str>]) -> Option<String> {
    let arg = |i: usize| args.get(i).copied().flatten().map(String::from);
    sdk.input(kind as u8, T0, n, arg(0), arg(1), arg(2), arg(3), arg(4))
}

fn drain(sdk: &mut Sdk) -> Vec<String> {
    std::iter::from_fn(|| call(sdk, Input::Poll, 0.0, &[])).collect()
}

fn track(
    sdk: &mut Sdk,
    name: Option<&str>,
    properties: Option<&str>,
    purposes: Option<&str>,
) -> Option<String> {
    call(sdk, Input::Track, 0.0, &[name, properties, purposes])
}

fn set_consent(sdk: &mut Sdk, choices: &str, options: Option<&str>) -> String {
    call(sdk, Input::SetConsent, 0.0, &[Some(choices), options]).expect("answered")
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
    assert_eq!(track(&mut sdk, Some("Viewed"), None, None), None);
    assert_eq!(
        drain(&mut sdk),
        ["ndrop\n{\"reason\":\"consent_denied\",\"count\":1}"]
    );
    let options = r#"{"document":"v1","location":"banner"}"#;
    assert_eq!(
        set_consent(&mut sdk, r#"{"analytics":true}"#, Some(options)),
        "1"
    );
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
    call(&mut sdk, Input::SendResult, 200.0, &[Some(batch_id)]);
    assert_eq!(
        call(&mut sdk, Input::IsIdle, 0.0, &[]).as_deref(),
        Some("1")
    );
    let admitted = |sdk: &mut Sdk| -> String { call(sdk, Input::Stats, 0.0, &[]).unwrap() };
    assert!(admitted(&mut sdk).contains("\"admitted\":1,"));
    assert_eq!(
        track(&mut sdk, Some("Viewed"), Some(r#"{"sku":"tea"}"#), None),
        None,
        "no answer"
    );
    assert!(admitted(&mut sdk).contains("\"admitted\":2,"));
    assert_eq!(
        set_consent(&mut sdk, r#"{"analytics":true}"#, Some(options)),
        "0"
    );
}

#[wasm_bindgen_test]
fn hostile_input_is_dropped_with_a_reason_and_never_throws() {
    let mut sdk = sdk();
    set_consent(&mut sdk, r#"{"analytics":true}"#, None);
    drain(&mut sdk);
    let huge = "x".repeat(10 * 1024 * 1024);
    // (name, properties, purposes, the reason it is dropped for)
    let cases = [
        (None, None, None, "invalid_name"),
        (Some(""), None, None, "invalid_name"),
        (Some(&huge), None, None, "name_too_long"),
        (Some("e"), Some(""), None, "invalid_properties"),
        (Some("e"), Some(&huge), None, "properties_too_large"),
        (Some("e"), Some("[1]"), None, "invalid_properties"),
        (Some("e"), None, Some("\"analytics\""), "unknown_purpose"),
        (Some("e"), None, Some(r#"["nope"]"#), "unknown_purpose"),
        (Some("e"), None, Some("[]"), "no_purpose"),
    ];
    for (name, properties, purposes, reason) in cases {
        assert_eq!(
            track(&mut sdk, name, properties, purposes),
            None,
            "{reason}"
        );
        let outputs = drain(&mut sdk);
        assert!(
            outputs
                .iter()
                .any(|o| o.contains(&format!("\"reason\":\"{reason}\""))),
            "{reason}: {outputs:?}"
        );
    }
    assert_eq!(call(&mut sdk, Input::Identify, 0.0, &[]), None);
    for kind in [26, 99, 255] {
        assert_eq!(sdk.input(kind, T0, 0.0, None, None, None, None, None), None);
    }
    call(
        &mut sdk,
        Input::SendResult,
        200.0,
        &[Some("not a batch id")],
    );
    call(&mut sdk, Input::StorageFailed, 0.0, &[Some("x")]);
    track(
        &mut sdk,
        Some("</script>\u{0}😀"),
        Some(r#"{"ok":true}"#),
        None,
    );
    let stats = call(&mut sdk, Input::Stats, 0.0, &[]).unwrap();
    assert!(
        stats.contains("\"admitted\":2,"),
        "the consent change and the last: {stats}"
    );
    assert!(stats.contains("\"invalid_name\":2"), "{stats}");
    assert!(stats.contains("\"invalid_user_id\":1"), "{stats}");
}

#[wasm_bindgen_test]
fn consent_calls_naming_unknown_purposes_are_refused_with_clear_reasons() {
    let mut sdk = sdk();
    assert_eq!(
        set_consent(&mut sdk, r#"{"analytics":true,"typo":true}"#, None),
        "!purpose `typo` is not declared in the config"
    );
    assert_eq!(
        set_consent(&mut sdk, r#"{"necessary":false}"#, None),
        "!purpose `necessary` is essential: it is always granted and cannot be set"
    );
    assert_eq!(
        set_consent(&mut sdk, "[true]", None),
        "!setConsent takes an object such as {analytics: true}"
    );
    assert_eq!(
        call(
            &mut sdk,
            Input::SetCcpaOptOut,
            1.0,
            &[None, Some(r#"{"where":"x"}"#)]
        )
        .unwrap(),
        "!consent option `where` is not known"
    );
    let consent = call(&mut sdk, Input::Consent, 0.0, &[]).unwrap();
    assert!(consent.contains("\"hasChoices\":false"), "{consent}");
    assert_eq!(
        call(&mut sdk, Input::SetCcpaOptOut, 1.0, &[]).as_deref(),
        Some("1")
    );
    let consent = call(&mut sdk, Input::Consent, 0.0, &[]).unwrap();
    assert!(consent.contains("\"ccpaOptOut\":true"), "{consent}");
}

#[wasm_bindgen_test]
fn the_deadline_and_timeout_drive_time_based_flushes() {
    let mut sdk = started(
        Sdk::new(
            r#"{"endpoint":"https://c.example","apiKey":"k","purposes":["analytics"],"defaultPurposes":["analytics"],"flushAt":50,"flushIntervalMs":2000}"#,
            &SEED,
            T0,
        )
        .unwrap(),
    );
    assert_eq!(sdk.deadline(), -1.0);
    set_consent(&mut sdk, r#"{"analytics":true}"#, None);
    drain(&mut sdk);
    let deadline = sdk.deadline();
    assert!(deadline > T0 && deadline <= T0 + 2000.0, "{deadline}");
    sdk.input(
        Input::Timeout as u8,
        T0 + 2000.0,
        0.0,
        None,
        None,
        None,
        None,
        None,
    );
    assert!(drain(&mut sdk).iter().any(|o| o.starts_with('s')));
    assert_eq!(
        call(&mut sdk, Input::IsIdle, 0.0, &[]).as_deref(),
        Some("0")
    );
}

#[wasm_bindgen_test]
fn only_page_hide_sends_with_keepalive_and_it_persists() {
    let mut sdk = sdk();
    set_consent(&mut sdk, r#"{"analytics":true}"#, None);
    // The consent change goes out as a regular request and stays unanswered; "a" waits.
    track(&mut sdk, Some("a"), None, None);
    let regular = drain(&mut sdk);
    assert!(
        regular
            .iter()
            .any(|o| o.starts_with('s') && o.as_bytes()[37] == b'-'),
        "{regular:?}"
    );
    call(&mut sdk, Input::Visibility, 1.0, &[]);
    let outputs = drain(&mut sdk);
    assert!(
        outputs
            .iter()
            .any(|o| o.starts_with('s') && o.as_bytes()[37] == b'k'),
        "{outputs:?}"
    );
    assert!(
        outputs.iter().any(|o| o.starts_with("pq0={\"v\":1")),
        "{outputs:?}"
    );
}

#[wasm_bindgen_test]
fn the_host_config_says_where_and_how_to_store() {
    let mut sdk = sdk();
    let answer = call(&mut sdk, Input::HostConfig, 0.0, &[]).unwrap();
    assert!(
        answer.starts_with(
            r#"{"batchUrl":"https://collect.example.com/v1/batch","storage":"local","storagePrefix":"consentry","debug":false,"pageId":""#
        ),
        "{answer}"
    );
    assert!(
        answer.contains(r#"","maxInputChars":65537,"scope":""#),
        "{answer}"
    );
    assert!(answer.ends_with(r#"","sendTimeoutMs":30000}"#), "{answer}");
    // The scope names the endpoint and key: another key, another scope.
    let scope = |config: &str| config.split("\"scope\":\"").nth(1).unwrap()[..16].to_owned();
    let other = Sdk::new(
        &config("https://collect.example.com").replace("pk_test", "pk_other"),
        &SEED,
        T0,
    )
    .unwrap();
    let mut other = started(other);
    let other_config = call(&mut other, Input::HostConfig, 0.0, &[]).unwrap();
    assert_ne!(scope(&answer), scope(&other_config));
    // The page id is 16 hex digits, drawn from the instance's seed.
    let page_id = &answer.split("\"pageId\":\"").nth(1).unwrap()[..16];
    assert!(page_id.bytes().all(|b| b.is_ascii_hexdigit()), "{page_id}");
}
