//! Identifiers an observer cannot predict or link.
//!
//! The ingestion endpoint sees every id the SDK draws for an event, a batch or the visitor. With
//! the SDK's old generator (xoshiro256**) two of them gave away its whole state and with it the
//! anonymous id drawn after "reject all"; these tests keep that attack (`support/xoshiro_attack.rs`)
//! as the judge: it must work on xoshiro and get nothing from the ids the SDK sends now. They
//! also check that a rotation mixes in fresh entropy, and that nothing carrying the id from
//! after a rotation travels or is stored with anything carrying the id from before it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;
#[path = "support/xoshiro_attack.rs"]
mod xoshiro_attack;

use consentry_core::{ConsentContext, Entropy, StorageKey, Uuid};
use serde_json::Value;
use support::{banner, status, Harness, CONFIG};
use xoshiro_attack::{predictions, recover, Xoshiro};

fn uuid(value: &Value) -> Uuid {
    Uuid::parse(value.as_str().unwrap()).unwrap()
}

/// Every event sent, in order.
fn sent_events(h: &Harness) -> Vec<Value> {
    h.sent
        .iter()
        .flat_map(|s| s.body["events"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn the_attack_predicts_the_rotated_id_of_the_old_generator() {
    // The old machine's draws: the anonymous id at start; on "accept" the consent change's id
    // and its batch id; two events (a retry's jitter in between); then "reject all" draws the
    // change's id and the "unlinkable" new anonymous id.
    let mut old = Xoshiro([0x1234_5678, 0x9abc_def0, 0x0fed_cba9, 0x8765_4321]);
    let anonymous_id = old.uuid();
    let accept_change = old.uuid();
    let _batch = old.uuid();
    let first_event = old.uuid();
    old.next_u64(); // jitter
    let _batch = old.uuid();
    let second_event = old.uuid();
    let _withdrawal_change = old.uuid();
    let rotated = old.uuid();

    let attacker = recover(&anonymous_id, &accept_change, &[first_event, second_event])
        .expect("the attack recovers xoshiro's state from ids on the wire");
    assert!(
        predictions(&attacker).contains(&rotated),
        "and names the rotated anonymous id"
    );
}

#[test]
fn the_attack_gets_nothing_from_the_ids_the_sdk_sends() {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", true)]);
    h.track("a").unwrap();
    h.track("b").unwrap();
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }
    let events = sent_events(&h);
    let anonymous_id = uuid(&events[0]["anonymous_id"]);
    let ids: Vec<Uuid> = events.iter().map(|e| uuid(&e["id"])).collect();
    let batch_ids: Vec<Uuid> = h.sent.iter().map(|s| uuid(&s.body["batch_id"])).collect();
    // The first three ids on the wire (the anonymous id and two event ids), then every
    // window of three in the order they were drawn, batch ids included.
    assert!(recover(&anonymous_id, &ids[0], &ids[1..2]).is_none());
    let mut drawn = vec![anonymous_id];
    for (i, sent) in h.sent.iter().enumerate() {
        for event in sent.body["events"].as_array().unwrap() {
            drawn.push(uuid(&event["id"]));
        }
        drawn.push(batch_ids[i]);
    }
    for window in drawn.windows(3) {
        assert!(
            recover(&window[0], &window[1], &window[2..]).is_none(),
            "the generator's output reveals its state"
        );
    }

    h.consent(&[("analytics", false)]);
    let rotated = h.sdk.anonymous_id();
    assert_ne!(rotated.0, anonymous_id);
}

#[test]
fn a_rotation_draws_the_new_id_after_mixing_in_fresh_entropy() {
    let rotate = |fresh: [u8; 32]| {
        let mut h = Harness::with_seed(CONFIG, [3, 1, 4, 1]);
        h.consent(&[("analytics", true)]);
        let before = h.sdk.anonymous_id();
        h.sdk
            .handle_consent(h.now, &[("analytics", false)], &banner(), &Entropy(fresh))
            .unwrap();
        h.drain();
        (before, h.sdk.anonymous_id())
    };
    let (before_a, after_a) = rotate([1; 32]);
    let (before_b, after_b) = rotate([2; 32]);
    let (_, after_a_again) = rotate([1; 32]);
    assert_eq!(before_a, before_b, "same seed, same id before");
    assert_ne!(after_a, before_a);
    assert_ne!(after_a, after_b, "the new id depends on the fresh bits");
    assert_eq!(after_a, after_a_again, "and on nothing else");

    // The CCPA opt-out rotates too when sale purposes were the only ones granted.
    let mut h = Harness::new(CONFIG);
    h.consent(&[("advertising", true)]);
    let before = h.sdk.anonymous_id();
    h.sdk
        .handle_ccpa_opt_out(h.now, true, &ConsentContext::user(), &Entropy([8; 32]))
        .unwrap();
    h.drain();
    assert_ne!(h.sdk.anonymous_id(), before);
    assert!(!h.storage.contains_key(&StorageKey::Identity));
}

#[test]
fn after_a_rotation_no_batch_and_no_stored_queue_mixes_the_old_id_with_the_new() {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", true)]);
    h.flush();
    h.ok();
    let old_id = h.sdk.anonymous_id();
    h.sdk.handle_network(h.now, false);
    h.track("before").unwrap();
    // Reject all: the withdrawal (old id) waits offline; then a new grant and new events.
    h.consent(&[("analytics", false)]);
    h.consent(&[("analytics", true)]);
    let new_id = h.sdk.anonymous_id();
    assert_ne!(old_id, new_id);
    h.track("after").unwrap();
    h.hide();

    let slots: Vec<Vec<String>> = [0u8, 1]
        .iter()
        .map(|&slot| {
            let doc: Value = serde_json::from_str(&h.storage[&StorageKey::Queue(slot)]).unwrap();
            doc["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event"]["anonymous_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert!(slots[0].iter().all(|id| *id == old_id.0.to_hyphenated()));
    assert!(slots[1].iter().all(|id| *id == new_id.0.to_hyphenated()));
    assert_eq!(
        slots[0].len() + slots[1].len(),
        3,
        "withdrawal, grant, after"
    );

    let already = h.sent.len();
    h.show();
    h.sdk.handle_network(h.now, true);
    h.drain();
    h.flush();
    while !h.pending.is_empty() {
        h.respond(status(200));
        h.flush();
    }
    assert!(h.sent.len() - already >= 2, "one batch per id");
    for sent in &h.sent {
        let ids: std::collections::HashSet<&str> = sent.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["anonymous_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "a batch carries one anonymous id: {ids:?}");
    }
    h.advance(2_000);
    assert!(
        !h.storage.keys().any(|k| matches!(k, StorageKey::Queue(_))),
        "every slot is removed once delivered"
    );
    h.assert_accounting();
}

/// Nothing sent with the new id repeats a time, a notice field or an id sent with the old one:
/// batch headers carry only what the endpoint re-checks, and the first consent change after a
/// rotation carries the earlier records without their details.
#[test]
fn nothing_sent_after_a_rotation_repeats_a_detail_sent_before_it() {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", true), ("advertising", true)]);
    h.track("before").unwrap();
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }
    h.advance(1_000);
    h.consent(&[("analytics", false), ("advertising", false)]);
    let rotated_at = h.now.as_unix_ms();
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }
    let before = h.sent.len();
    h.advance(1_000);
    h.consent(&[("analytics", true)]);
    h.track("after").unwrap();
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }

    fn leaves(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
            Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
            Value::Number(n) => out.push(n.to_string()),
            Value::String(s) => out.push(s.clone()),
            _ => {}
        }
    }
    for sent in &h.sent {
        // Batch headers: consented and source, nothing else.
        for (_, record) in sent.body["consent_state"]["gdpr"].as_object().unwrap() {
            let fields: Vec<&String> = record.as_object().unwrap().keys().collect();
            assert_eq!(fields, ["consented", "source"], "{record}");
        }
    }
    let mut old = Vec::new();
    for sent in &h.sent[..before] {
        leaves(&sent.body["events"], &mut old);
    }
    let old_ids: Vec<&Value> = h.sent[..before]
        .iter()
        .flat_map(|s| s.body["events"].as_array().unwrap())
        .map(|e| &e["anonymous_id"])
        .collect();
    for sent in &h.sent[before..] {
        for event in sent.body["events"].as_array().unwrap() {
            assert!(!old_ids.contains(&&event["anonymous_id"]), "{event}");
            if event["type"] == "consent_change" {
                let mut times = Vec::new();
                for side in ["current", "previous"] {
                    for record in event["consent"][side]["gdpr"].as_object().unwrap().values() {
                        if let Some(t) = record.get("timestamp_unixtime_ms") {
                            times.push(t.as_u64().unwrap());
                        }
                    }
                }
                assert!(
                    times.iter().all(|&t| t > rotated_at),
                    "a record from before the rotation went out whole: {event}"
                );
                let mut here = Vec::new();
                leaves(&event["consent"], &mut here);
                for value in here {
                    if value.parse::<u64>().is_ok() {
                        assert!(
                            !old.contains(&value),
                            "{value} was sent before the rotation"
                        );
                    }
                }
            }
        }
    }
    assert!(h.sent_names().contains(&"after".to_owned()));
}
