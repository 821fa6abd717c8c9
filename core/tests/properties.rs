//! Property tests over random sequences of consent changes, events, time, send results, page
//! hides, network changes, storage failures and reloads. After every step:
//! - nothing sent needs a purpose that was not granted when it was captured, nor one the batch's
//!   own consent state does not grant (the collector's check never fails);
//! - nothing stored needs a purpose that is not granted now;
//! - nothing at all is stored before the visitor records a choice;
//! - `admitted + restored = delivered + dropped after admission + queued + in flight`;
//! - no batch exceeds its limits and every batch satisfies the wire schema (checked on send).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use consentry_core::json::{self, write_str};
use consentry_core::snapshot::{self, decode_queue, encode_queue};
use consentry_core::{Config, ConsentContext, EventInput, SendOutcome, StorageKey, Timestamp};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use support::{status, Harness, CONFIG, FRESH};

const PURPOSES: [&str; 3] = ["analytics", "advertising", "personalization"];

#[derive(Clone, Debug)]
enum Op {
    Consent(usize, bool),
    Ccpa(bool),
    Track {
        explicit: Option<Vec<usize>>,
        big: bool,
    },
    AdTrack,
    Advance(u64),
    Respond(u16),
    NetworkError,
    Hide,
    Show,
    Online(bool),
    Flush,
    StorageFailure,
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, any::<bool>()).prop_map(|(p, g)| Op::Consent(p, g)),
        1 => any::<bool>().prop_map(Op::Ccpa),
        6 => (proptest::option::of(proptest::collection::vec(0..3usize, 0..3)), proptest::bool::weighted(0.1))
            .prop_map(|(explicit, big)| Op::Track { explicit, big }),
        1 => Just(Op::AdTrack),
        3 => (0..40_000u64).prop_map(Op::Advance),
        3 => prop_oneof![Just(200u16), Just(204), Just(400), Just(408), Just(429), Just(500), Just(503)].prop_map(Op::Respond),
        1 => Just(Op::NetworkError),
        1 => Just(Op::Hide),
        1 => Just(Op::Show),
        1 => any::<bool>().prop_map(Op::Online),
        1 => Just(Op::Flush),
        1 => Just(Op::StorageFailure),
        1 => Just(Op::Reload),
    ]
}

struct Model {
    granted_at_capture: HashMap<String, HashSet<String>>,
    chose: bool,
    checked_batches: usize,
}

fn granted_names(h: &Harness) -> HashSet<String> {
    let catalog = &h.sdk.config().policy.catalog;
    catalog
        .names_of(h.sdk.granted())
        .map(|p| p.as_str().to_owned())
        .collect()
}

fn check(h: &Harness, model: &mut Model) {
    // Consent changes are captured too, under the essential purpose.
    for sent in &h.sent[model.checked_batches..] {
        for event in sent.body["events"].as_array().unwrap() {
            if event["type"] == "consent_change" {
                model
                    .granted_at_capture
                    .entry(event["id"].as_str().unwrap().to_owned())
                    .or_insert_with(|| HashSet::from(["necessary".to_owned()]));
            }
        }
    }
    for sent in &h.sent[model.checked_batches..] {
        let state = &sent.body["consent_state"];
        let opted_out = state["ccpa"]["data_sale_opt_out"]["consented"] == Value::Bool(true);
        for event in sent.body["events"].as_array().unwrap() {
            let id = event["id"].as_str().unwrap();
            let captured = model
                .granted_at_capture
                .get(id)
                .unwrap_or_else(|| panic!("sent an event never captured: {id}"));
            for purpose in event["purposes"].as_array().unwrap() {
                let purpose = purpose.as_str().unwrap();
                assert!(
                    captured.contains(purpose),
                    "{id} needs {purpose}, not granted at capture"
                );
                assert_eq!(
                    state["gdpr"][purpose]["consented"],
                    Value::Bool(true),
                    "{id}: batch state lacks {purpose}"
                );
                assert!(
                    !(opted_out && purpose == "advertising"),
                    "{id}: sale purpose sent after opt-out"
                );
            }
        }
    }
    model.checked_batches = h.sent.len();
    let granted = granted_names(h);
    for event in h.stored_queue_events() {
        for purpose in event["purposes"].as_array().unwrap() {
            assert!(
                granted.contains(purpose.as_str().unwrap()),
                "stored event needs a purpose not granted"
            );
        }
    }
    if !model.chose {
        assert!(
            h.storage.is_empty(),
            "storage touched before any choice: {:?}",
            h.storage.keys()
        );
    }
    h.assert_accounting();
}

fn run(ops: Vec<Op>) {
    let mut h = Harness::new(CONFIG);
    let mut model = Model {
        granted_at_capture: HashMap::new(),
        chose: false,
        checked_batches: 0,
    };
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(15_000));
    let mut reloads = 0u64;
    for op in ops {
        match op {
            Op::Consent(p, granted) => {
                h.consent(&[(PURPOSES[p], granted)]);
                model.chose = true;
            }
            Op::Ccpa(opt_out) => {
                h.sdk
                    .handle_ccpa_opt_out(h.now, opt_out, &ConsentContext::user(), &FRESH)
                    .unwrap();
                h.drain();
                model.chose = true;
            }
            Op::Track {
                explicit,
                big: is_big,
            } => {
                let names: Option<Vec<&str>> =
                    explicit.map(|e| e.iter().map(|&i| PURPOSES[i]).collect());
                let granted = granted_names(&h);
                let properties = if is_big {
                    Some(big.as_str())
                } else {
                    Some(r#"{"n":1}"#)
                };
                let result = h.sdk.handle_track(
                    h.now,
                    "e",
                    EventInput {
                        properties,
                        purposes: names.as_deref(),
                    },
                );
                if let Ok(id) = result {
                    model
                        .granted_at_capture
                        .insert(id.0.to_hyphenated(), granted);
                }
                h.drain();
            }
            Op::AdTrack => {
                let granted = granted_names(&h);
                if let Ok(id) = h.track("ad_click") {
                    model
                        .granted_at_capture
                        .insert(id.0.to_hyphenated(), granted);
                }
            }
            Op::Advance(ms) => h.advance(ms),
            Op::Respond(code) => {
                if !h.pending.is_empty() {
                    h.respond(status(code));
                }
            }
            Op::NetworkError => {
                if !h.pending.is_empty() {
                    h.respond(SendOutcome::NetworkError);
                }
            }
            Op::Hide => h.hide(),
            Op::Show => h.show(),
            Op::Online(online) => {
                h.sdk.handle_network(h.now, online);
                h.drain();
            }
            Op::Flush => h.flush(),
            Op::StorageFailure => {
                h.sdk.handle_storage_failure(h.now, StorageKey::Queue(0));
                h.drain();
            }
            Op::Reload => {
                h.hide();
                check(&h, &mut model);
                reloads += 1;
                h = h.reload(CONFIG, [reloads, 2, 3, 4]);
                model.checked_batches = 0;
            }
        }
        check(&h, &mut model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_over_random_sessions(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }

    #[test]
    fn stored_queues_round_trip(names in proptest::collection::vec(".{0,40}", 1..20), attempts in 0u32..20) {
        let mut h = Harness::new(CONFIG);
        h.consent(&[("analytics", true)]);
        h.sdk.handle_network(h.now, false);
        for name in &names {
            let mut properties = String::from("{\"name\":");
            write_str(&mut properties, name);
            properties.push('}');
            let _ = h.track_with(if name.is_empty() { "x" } else { name }, Some(&properties), None);
        }
        h.hide();
        let text = h.storage.get(&StorageKey::Queue(0)).cloned().unwrap();
        let config = Config::from_json(CONFIG).unwrap();
        let decoded = decode_queue(&text, &config.policy.catalog).unwrap();
        prop_assert_eq!(decoded.discarded, 0);
        let mut with_attempts = decoded.events.clone();
        for e in &mut with_attempts { e.attempts = attempts; }
        let (again, count) = encode_queue(with_attempts.iter(), Timestamp::from_unix_ms(1), false, usize::MAX);
        prop_assert_eq!(count, with_attempts.len());
        prop_assert_eq!(decode_queue(&again, &config.policy.catalog).unwrap().events, with_attempts);
    }

    #[test]
    fn our_reader_accepts_exactly_what_serde_json_accepts(text in "[\\[\\]{}\",:0-9a-z\\\\. -]{0,30}") {
        let ours = json::parse(&text, 64).is_ok();
        let validated = json::validate(&text, 64).is_ok();
        let theirs = serde_json::from_str::<Value>(&text).is_ok();
        prop_assert_eq!(ours, theirs, "parse disagrees on {:?}", text);
        prop_assert_eq!(validated, theirs, "validate disagrees on {:?}", text);
    }

    #[test]
    fn any_string_survives_the_writer(s in any::<String>()) {
        let mut out = String::new();
        write_str(&mut out, &s);
        prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s.clone());
        prop_assert_eq!(json::parse(&out, 1).unwrap(), json::Value::String(s));
    }
}

#[derive(Clone, Debug)]
enum Unchosen {
    Track(Option<usize>),
    Identify,
    Page,
    Advance(u64),
    Respond(u16),
    Hide,
    Show,
    Online(bool),
    Flush,
}

fn unchosen() -> impl Strategy<Value = Unchosen> {
    prop_oneof![
        6 => proptest::option::of(0..4usize).prop_map(Unchosen::Track),
        1 => Just(Unchosen::Identify),
        1 => Just(Unchosen::Page),
        3 => (0..40_000u64).prop_map(Unchosen::Advance),
        3 => prop_oneof![Just(200u16), Just(400), Just(503)].prop_map(Unchosen::Respond),
        1 => Just(Unchosen::Hide),
        1 => Just(Unchosen::Show),
        1 => any::<bool>().prop_map(Unchosen::Online),
        1 => Just(Unchosen::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sessions with no choice: not one storage write or removal, and no event on the
    /// wire carries an anonymous id or a user id, whatever the purposes the calls name.
    #[test]
    fn before_a_choice_nothing_is_stored_and_nothing_sent_carries_an_identifier(
        ops in proptest::collection::vec(unchosen(), 1..60)
    ) {
        let mut h = Harness::new(CONFIG);
        let names = ["necessary", "analytics", "advertising", "personalization"];
        for op in ops {
            match op {
                Unchosen::Track(purpose) => {
                    let named = purpose.map(|p| [names[p]]);
                    let _ = h.track_with("e", Some(r#"{"k":1}"#), named.as_ref().map(|n| &n[..]));
                }
                Unchosen::Identify => {
                    let _ = h.sdk.handle_identify(h.now, "user-1", EventInput { properties: None, purposes: Some(&["necessary"]) });
                    h.drain();
                }
                Unchosen::Page => {
                    let page = consentry_core::PageInfo { url: Some("https://shop.example/a?b=c".into()), title: None, referrer: None };
                    let _ = h.sdk.handle_page(h.now, &page, EventInput { properties: None, purposes: Some(&["necessary"]) });
                    h.drain();
                }
                Unchosen::Advance(ms) => h.advance(ms),
                Unchosen::Respond(code) => {
                    if !h.pending.is_empty() {
                        h.respond(status(code));
                    }
                }
                Unchosen::Hide => h.hide(),
                Unchosen::Show => h.show(),
                Unchosen::Online(online) => {
                    h.sdk.handle_network(h.now, online);
                    h.drain();
                }
                Unchosen::Flush => h.flush(),
            }
            prop_assert!(h.persists.is_empty(), "storage touched: {:?}", h.persists);
            for sent in &h.sent {
                for event in sent.body["events"].as_array().unwrap() {
                    prop_assert!(event.get("anonymous_id").is_none(), "{}", event);
                    prop_assert!(event.get("user_id").is_none(), "{}", event);
                }
            }
            h.assert_accounting();
        }
    }
}

/// Valid documents of every kind the decoders read: the seed corpus of the fuzz-style tests.
fn corpus() -> Vec<Vec<u8>> {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", true), ("advertising", false)]);
    h.sdk
        .handle_ccpa_opt_out(h.now, true, &ConsentContext::user(), &FRESH)
        .unwrap();
    h.drain();
    h.sdk.handle_network(h.now, false);
    let _ = h.track_with(
        "Viewed",
        Some(r#"{"sku":"tea","n":[1,2.5,-3e2],"s":"\\u00e9\\n"}"#),
        None,
    );
    let _ = h.sdk.handle_identify(
        h.now,
        "user-1",
        EventInput {
            properties: Some(r#"{"plan":"pro"}"#),
            purposes: None,
        },
    );
    h.drain();
    h.hide();
    let mut seeds: Vec<Vec<u8>> = h.storage.values().map(|t| t.clone().into_bytes()).collect();
    seeds.push(CONFIG.as_bytes().to_vec());
    seeds.push(
        br#"{"endpoint":"http://localhost:8444","apiKey":"k","purposes":["a","b"],"essentialPurposes":["n"],
            "salePurposes":["b"],"defaultPurposes":["a"],"rules":[{"event":"x_*","type":"track","purposes":["b"]}],
            "flushAt":1,"flushIntervalMs":0,"maxQueueEvents":5,"maxEventAgeMs":1,
            "retry":{"maxAttempts":1,"baseDelayMs":1,"maxDelayMs":2},"storage":"memory","storagePrefix":"p","debug":true}"#
            .to_vec(),
    );
    assert!(seeds.len() >= 5, "consent, identity, queue and two configs");
    seeds
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (
            at,
            prop_oneof![
                Just(b'{'),
                Just(b'}'),
                Just(b'['),
                Just(b'"'),
                Just(b','),
                Just(b':'),
                Just(b'\\'),
                Just(b'0'),
                any::<u8>()
            ]
        )
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (at, 1..40usize).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (at, 1..60usize).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), at, 1..80usize).prop_map(|(s, a, n)| Mutation::Splice(s, a, n)),
    ]
}

fn mutate(seeds: &[Vec<u8>], seed: usize, mutations: &[Mutation]) -> String {
    let mut bytes = seeds[seed % seeds.len()].clone();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(at, b) => {
                if !bytes.is_empty() {
                    bytes[at % len] ^= b;
                }
            }
            Mutation::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            Mutation::Delete(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                bytes.drain(start.min(end)..end);
            }
            Mutation::Duplicate(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                let copy = bytes[start.min(end)..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Splice(other, at, n) => {
                let donor = &seeds[other % seeds.len()];
                let from = at % donor.len().max(1);
                let piece = donor[from..(from + n).min(donor.len())].to_vec();
                let to = at % (bytes.len() + 1);
                bytes.splice(to..to, piece);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Byte-level mutations of valid stored documents and configs: every decoder answers
    /// without panicking, and whatever it accepts round-trips through its encoder.
    #[test]
    fn decoders_survive_mutated_documents_and_what_they_accept_round_trips(
        seed in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 0..8),
    ) {
        let seeds = corpus();
        let text = mutate(&seeds, seed, &mutations);
        let config = Config::from_json(CONFIG).unwrap();
        let catalog = &config.policy.catalog;

        if let Some(state) = snapshot::decode_consent(&text, catalog) {
            let again = snapshot::encode_consent(&state, catalog);
            prop_assert_eq!(snapshot::decode_consent(&again, catalog), Some(state));
        }
        if let Some(identity) = snapshot::decode_identity(&text) {
            let again = snapshot::encode_identity(&identity);
            prop_assert_eq!(snapshot::decode_identity(&again), Some(identity));
        }
        if let Some(queue) = decode_queue(&text, catalog) {
            for event in &queue.events {
                let wire: Value = serde_json::from_str(&event.wire).expect("a kept event is JSON");
                prop_assert_eq!(wire["id"].as_str(), Some(&event.id.0.to_hyphenated()[..]));
            }
            let (again, count) = encode_queue(queue.events.iter(), queue.saved_at, queue.hidden, usize::MAX);
            prop_assert_eq!(count, queue.events.len());
            prop_assert_eq!(decode_queue(&again, catalog).map(|q| q.events), Some(queue.events));
        }
        match Config::from_json(&text) {
            Ok(parsed) => {
                prop_assert!((1..=100).contains(&parsed.batch.flush_at));
                prop_assert_eq!(Config::from_json(&text), Ok(parsed));
            }
            Err(error) => {
                let message = error.message();
                prop_assert!(message.starts_with("invalid config: "), "{}", message);
            }
        }
        let _ = json::validate(&text, 16);
    }
}
