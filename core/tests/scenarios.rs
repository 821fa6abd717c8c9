//! Scenario tests: the core driven through its public API with a virtual clock and a scripted
//! endpoint. Milliseconds per scenario, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use consentry_core::limits::KEEPALIVE_BUDGET_BYTES;
use consentry_core::{
    Config, ConsentContext, ConsentError, Consentry, DropReason, Duration, EventInput, Liveness,
    Notice, PageInfo, SendOutcome, StorageKey, Timestamp,
};
use support::{banner, entropy, status, Harness, CONFIG, FRESH, T0};

fn granted_analytics() -> Harness {
    let mut h = Harness::new(CONFIG);
    h.consent(&[
        ("analytics", true),
        ("advertising", false),
        ("personalization", false),
    ]);
    h.advance(2_000);
    h.ok();
    h.sent.clear();
    h
}

#[test]
fn nothing_is_admitted_before_a_choice_and_nothing_is_stored() {
    let mut h = Harness::new(CONFIG);
    assert_eq!(h.track("Product Viewed"), Err(DropReason::ConsentDenied));
    assert_eq!(h.track("ad_click"), Err(DropReason::ConsentDenied));
    h.advance(60_000);
    assert!(h.sent.is_empty());
    assert!(
        h.storage.is_empty(),
        "nothing may touch storage before a choice: {:?}",
        h.storage
    );
    assert_eq!(h.dropped(DropReason::ConsentDenied), 2);
    assert!(h.notices.contains(&Notice::Dropped {
        reason: DropReason::ConsentDenied,
        count: 1
    }));
}

#[test]
fn reject_all_sends_only_the_consent_change_and_stores_no_identity() {
    let mut h = Harness::new(CONFIG);
    assert!(h.consent(&[
        ("analytics", false),
        ("advertising", false),
        ("personalization", false)
    ]));
    assert_eq!(h.track("Product Viewed"), Err(DropReason::ConsentDenied));
    h.advance(2_000);
    assert_eq!(h.sent_names(), ["consent_change"]);
    let change = &h.sent[0].body["events"][0];
    assert_eq!(change["purposes"], serde_json::json!(["necessary"]));
    assert_eq!(
        change["consent"]["previous"]["gdpr"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        change["consent"]["current"]["gdpr"]["analytics"]["consented"],
        false
    );
    assert_eq!(
        change["consent"]["current"]["gdpr"]["analytics"]["document"],
        "notice-v3"
    );
    assert!(
        h.storage.contains_key(&StorageKey::Consent),
        "the refusal itself is remembered"
    );
    assert!(
        !h.storage.contains_key(&StorageKey::Identity),
        "no identifier without a granted purpose"
    );
}

#[test]
fn grant_then_events_arrive_with_their_purposes() {
    let mut h = granted_analytics();
    let id = h
        .track_with(
            "Product Viewed",
            Some(r#"{"sku":"tea-001","price":4.5}"#),
            None,
        )
        .unwrap();
    assert_eq!(h.track("ad_click"), Err(DropReason::ConsentDenied));
    h.advance(2_000);
    assert_eq!(h.sent_names(), ["Product Viewed"]);
    let event = &h.sent[0].body["events"][0];
    assert_eq!(event["id"], id.0.to_hyphenated());
    assert_eq!(event["purposes"], serde_json::json!(["analytics"]));
    assert_eq!(event["properties"]["price"], 4.5);
    assert_eq!(
        h.sent[0].body["consent_state"]["gdpr"]["analytics"]["consented"],
        true
    );
    assert!(h.storage.contains_key(&StorageKey::Identity));
}

#[test]
fn setting_the_same_consent_twice_changes_nothing_and_emits_nothing() {
    let mut h = granted_analytics();
    let stored = h.storage.get(&StorageKey::Consent).cloned();
    assert!(!h.consent(&[("analytics", true)]));
    h.advance(5_000);
    assert!(h.sent.is_empty());
    assert_eq!(h.storage.get(&StorageKey::Consent).cloned(), stored);
}

#[test]
fn withdrawing_purges_queued_and_persisted_events_and_they_are_never_sent() {
    let mut h = granted_analytics();
    h.track("one").unwrap();
    h.track("two").unwrap();
    h.advance(1_000);
    assert_eq!(h.stored_ids().len(), 2, "queued events are persisted");
    h.consent(&[("analytics", false)]);
    assert!(
        h.stored_ids().len() <= 1,
        "only the consent change may remain stored"
    );
    h.advance(10_000);
    while !h.pending.is_empty() {
        h.ok();
        h.advance(10_000);
    }
    assert_eq!(h.sent_names(), ["consent_change"]);
    assert_eq!(h.dropped(DropReason::Purged), 2);
    h.assert_accounting();
}

#[test]
fn a_failed_send_is_retried_with_backoff_and_the_same_event_ids() {
    let mut h = granted_analytics();
    for name in ["a", "b", "c", "d", "e"] {
        h.track(name).unwrap();
    }
    assert_eq!(h.sent.len(), 1, "flushAt 5 sends at once");
    let first_ids = h.sent[0].event_ids();
    h.respond(status(500));
    assert!(matches!(
        h.notices.last(),
        Some(Notice::RetryScheduled {
            status: Some(500),
            ..
        })
    ));
    h.advance(499);
    assert_eq!(
        h.sent.len(),
        1,
        "no retry before the backoff window's lower half"
    );
    h.advance(600);
    assert_eq!(h.sent.len(), 2);
    assert_eq!(h.sent[1].event_ids(), first_ids);
    assert_ne!(h.sent[1].body["batch_id"], h.sent[0].body["batch_id"]);
    h.ok();
    assert_eq!(h.sdk.stats().delivered, 5 + 1);
    assert_eq!(h.sdk.stats().retries, 1);
    assert!(
        h.stored_ids().is_empty() || {
            h.advance(2_000);
            h.stored_ids().is_empty()
        }
    );
    h.assert_accounting();
}

#[test]
fn retry_after_is_honoured_even_over_a_shorter_backoff() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.flush();
    h.respond(SendOutcome::Status {
        code: 429,
        retry_after: Some(Duration::from_secs(30)),
    });
    h.advance(29_999);
    assert_eq!(h.sent.len(), 1);
    h.hide();
    assert_eq!(
        h.sent.len(),
        1,
        "page hide does not override an explicit Retry-After"
    );
    h.show();
    h.advance(2);
    assert_eq!(h.sent.len(), 2);
}

#[test]
fn network_errors_do_not_use_up_attempts_but_server_errors_do() {
    let config = CONFIG.replace("\"flushAt\": 5", "\"flushAt\": 1, \"retry\": {\"maxAttempts\": 3, \"baseDelayMs\": 100, \"maxDelayMs\": 100}");
    let mut h = Harness::new(&config);
    h.consent(&[("analytics", true)]);
    h.ok();
    h.track("a").unwrap();
    for _ in 0..10 {
        h.respond(SendOutcome::NetworkError);
        h.advance(100);
    }
    assert_eq!(h.dropped(DropReason::RetriesExhausted), 0);
    for _ in 0..3 {
        h.respond(status(503));
        h.advance(100);
    }
    assert_eq!(h.dropped(DropReason::RetriesExhausted), 1);
    assert!(h.pending.is_empty());
    h.assert_accounting();
}

#[test]
fn client_errors_are_dropped_and_counted_not_retried() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.flush();
    h.respond(status(400));
    h.advance(600_000);
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.dropped(DropReason::Rejected), 1);
    h.assert_accounting();
}

#[test]
fn offline_waits_and_online_sends_at_once() {
    let mut h = granted_analytics();
    h.sdk.handle_network(h.now, false);
    h.track("a").unwrap();
    h.flush();
    h.advance(60_000);
    assert!(h.sent.is_empty());
    assert!(h.sdk.is_idle(), "a flush while offline finishes at once");
    h.sdk.handle_network(h.now, true);
    h.drain();
    assert_eq!(h.sent_names(), ["a"]);
}

#[test]
fn withdrawing_while_a_batch_is_in_flight_purges_it_if_it_fails() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.flush();
    assert_eq!(h.pending.len(), 1);
    h.consent(&[("analytics", false)]);
    h.respond(status(500));
    h.advance(2_000);
    h.ok();
    assert_eq!(h.sent_names(), ["a", "consent_change"]);
    assert_eq!(h.dropped(DropReason::Purged), 1);
    h.assert_accounting();
}

#[test]
fn page_hide_beacons_what_fits_and_persists_the_rest() {
    let mut h = granted_analytics();
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(20_000));
    for i in 0..6 {
        h.track_with(&format!("big{i}"), Some(&big), None).unwrap();
    }
    // flushAt 5 sent five already (a regular batch, too big for keepalive); one is queued.
    assert_eq!(h.sent.len(), 1);
    assert!(!h.sent[0].transmission.keepalive);
    for i in 6..9 {
        h.track_with(&format!("big{i}"), Some(&big), None).unwrap();
    }
    h.hide();
    let beacons: Vec<_> = h.sent.iter().filter(|s| s.transmission.keepalive).collect();
    assert!(!beacons.is_empty());
    let beacon_bytes: usize = beacons.iter().map(|s| s.transmission.body.len()).sum();
    assert!(beacon_bytes <= KEEPALIVE_BUDGET_BYTES);
    let stored = h.stored_ids();
    assert_eq!(
        stored.len(),
        9,
        "everything unconfirmed is persisted: in flight and queued"
    );
    let doc: serde_json::Value = serde_json::from_str(&h.storage[&StorageKey::Queue(0)]).unwrap();
    assert_eq!(doc["hidden"], true);
}

#[test]
fn a_reload_resends_unconfirmed_events_with_the_same_ids() {
    let mut h = granted_analytics();
    h.sdk.handle_network(h.now, false);
    h.track("a").unwrap();
    h.track("b").unwrap();
    h.hide();
    let ids_before = h.stored_ids();
    assert_eq!(ids_before.len(), 2);
    let mut next = h.reload(CONFIG, [9, 9, 9, 9]);
    assert_eq!(
        next.sdk.granted(),
        h.sdk.granted(),
        "consent survives the reload"
    );
    assert_eq!(
        next.sdk.anonymous_id(),
        h.sdk.anonymous_id(),
        "so does the identity, while granted"
    );
    next.advance(2_000);
    assert_eq!(next.sent_ids(), ids_before);
    assert_eq!(next.sdk.stats().restored, 2);
    next.ok();
    next.assert_accounting();
}

#[test]
fn a_queue_saved_by_a_live_visible_page_is_left_alone() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.advance(1_000);
    let text = h.storage[&StorageKey::Queue(0)].clone();
    let mut other = Harness::with_seed(CONFIG, [5; 4]);
    other.now = h.now;
    let owner = h.sdk.peer_id();
    assert!(!other
        .sdk
        .adopt_queue(other.now, &text, owner, Liveness::Unknown));
    assert!(
        !other
            .sdk
            .adopt_queue(other.now, &text, owner, Liveness::Alive),
        "a live page's queue is never taken"
    );
    assert!(
        other
            .sdk
            .adopt_queue(other.now, &text, owner, Liveness::Gone),
        "a departed page's queue is taken at once"
    );
    let mut third = Harness::with_seed(CONFIG, [6; 4]);
    third.now = h.now.saturating_add(Duration::from_secs(86_400));
    assert!(third
        .sdk
        .adopt_queue(third.now, &text, owner, Liveness::Unknown));
}

#[test]
fn withdrawal_in_another_tab_purges_here_without_a_second_change_event() {
    let mut tab_a = granted_analytics();
    let mut tab_b = granted_analytics();
    tab_b.track("b1").unwrap();
    tab_a.consent(&[("analytics", false)]);
    let stored = tab_a.storage[&StorageKey::Consent].clone();
    tab_b
        .sdk
        .handle_consent_sync(tab_b.now, Some(&stored), &FRESH);
    tab_b.drain();
    assert_eq!(tab_b.dropped(DropReason::Purged), 1);
    assert_eq!(tab_b.track("b2"), Err(DropReason::ConsentDenied));
    tab_b.advance(10_000);
    assert!(
        tab_b.sent.is_empty(),
        "the other tab already sent the change"
    );
    // Storage cleared elsewhere: back to default-deny.
    let mut tab_c = granted_analytics();
    tab_c.sdk.handle_consent_sync(tab_c.now, None, &FRESH);
    assert_eq!(
        tab_c.sdk.granted(),
        tab_c.sdk.config().policy.catalog.essential()
    );
}

#[test]
fn identity_is_stored_only_while_granted_and_rotated_after_full_withdrawal() {
    let mut h = Harness::new(CONFIG);
    let first = h.sdk.anonymous_id();
    h.consent(&[("analytics", true)]);
    assert!(h.storage.contains_key(&StorageKey::Identity));
    h.sdk
        .handle_identify(h.now, "user-42", EventInput::default())
        .unwrap();
    h.drain();
    assert!(h.storage[&StorageKey::Identity].contains("user-42"));
    h.consent(&[("analytics", false)]);
    assert!(!h.storage.contains_key(&StorageKey::Identity));
    assert_ne!(h.sdk.anonymous_id(), first);
    h.advance(2_000);
    while !h.pending.is_empty() {
        h.ok();
        h.advance(2_000);
    }
    let withdrawal = h
        .sent
        .iter()
        .flat_map(|s| s.body["events"].as_array().unwrap().clone())
        .last()
        .unwrap();
    assert_eq!(withdrawal["type"], "consent_change");
    assert_eq!(
        withdrawal["anonymous_id"],
        first.0.to_hyphenated(),
        "the withdrawal names the old id"
    );
    assert_eq!(withdrawal["user_id"], "user-42");
}

#[test]
fn ccpa_opt_out_withholds_sale_purposes() {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", true), ("advertising", true)]);
    h.track("ad_click").unwrap();
    assert!(h
        .sdk
        .handle_ccpa_opt_out(h.now, true, &ConsentContext::user(), &FRESH)
        .unwrap());
    h.drain();
    assert!(!h
        .sdk
        .handle_ccpa_opt_out(h.now, true, &ConsentContext::user(), &FRESH)
        .unwrap());
    assert_eq!(h.track("ad_view"), Err(DropReason::ConsentDenied));
    h.track("Product Viewed").unwrap();
    assert_eq!(h.dropped(DropReason::Purged), 1);
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }
    assert!(!h.sent_names().iter().any(|n| n.starts_with("ad_")));
    let last = h.sent.last().unwrap();
    assert_eq!(
        last.body["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"],
        true
    );
}

#[test]
fn consent_calls_naming_unknown_or_essential_purposes_are_refused_whole() {
    let mut h = Harness::new(CONFIG);
    assert_eq!(
        h.sdk.handle_consent(
            h.now,
            &[("analytics", true), ("typo", true)],
            &banner(),
            &FRESH
        ),
        Err(ConsentError::UnknownPurpose("typo".into()))
    );
    assert_eq!(
        h.sdk
            .handle_consent(h.now, &[("necessary", false)], &banner(), &FRESH),
        Err(ConsentError::EssentialPurpose("necessary".into()))
    );
    let long = ConsentContext {
        document: Some("d".repeat(257)),
        ..banner()
    };
    assert_eq!(
        h.sdk
            .handle_consent(h.now, &[("analytics", true)], &long, &FRESH),
        Err(ConsentError::FieldTooLong("document"))
    );
    assert_eq!(h.sdk.granted(), h.sdk.config().policy.catalog.essential());
}

#[test]
fn flushes_by_count_by_time_and_by_bytes() {
    let mut h = granted_analytics();
    for i in 0..4 {
        h.track(&format!("e{i}")).unwrap();
    }
    assert!(h.sent.is_empty());
    h.advance(1_999);
    assert!(h.sent.is_empty());
    h.advance(1);
    assert_eq!(h.sent.len(), 1, "by time");
    h.ok();
    for i in 0..5 {
        h.track(&format!("f{i}")).unwrap();
    }
    assert_eq!(h.sent.len(), 2, "by count");
    h.ok();
    let config = CONFIG.replace(
        "\"flushAt\": 5",
        "\"flushAt\": 100, \"flushIntervalMs\": 600000",
    );
    let mut h = Harness::new(&config);
    h.consent(&[("analytics", true)]);
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(20_000));
    for i in 0..14 {
        h.track_with(&format!("b{i}"), Some(&big), None).unwrap();
    }
    assert_eq!(h.sent.len(), 1, "by bytes: 256 KiB queued");
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let config = CONFIG.replace("\"flushAt\": 5", "\"flushAt\": 100, \"maxQueueEvents\": 3");
    let mut h = Harness::new(&config);
    h.consent(&[("analytics", true)]);
    h.sdk.handle_network(h.now, false);
    for i in 0..5 {
        h.track(&format!("e{i}")).unwrap();
    }
    assert_eq!(h.sdk.queued(), 3);
    assert_eq!(
        h.dropped(DropReason::QueueOverflow),
        3,
        "the consent change and e0, e1"
    );
    h.sdk.handle_network(h.now, true);
    h.flush();
    assert_eq!(h.sent_names(), ["e2", "e3", "e4"]);
    h.assert_accounting();
}

#[test]
fn events_older_than_the_maximum_age_are_dropped_not_sent() {
    let config = CONFIG.replace("\"flushAt\": 5", "\"flushAt\": 5, \"maxEventAgeMs\": 60000");
    let mut h = Harness::new(&config);
    h.consent(&[("analytics", true)]);
    h.sdk.handle_network(h.now, false);
    h.track("old").unwrap();
    h.advance(120_000);
    h.sdk.handle_network(h.now, true);
    h.drain();
    h.flush();
    assert!(h.sent.is_empty());
    assert_eq!(h.dropped(DropReason::Expired), 2);
    h.assert_accounting();
}

#[test]
fn an_unanswered_request_times_out_and_is_retried() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.flush();
    h.advance(30_000);
    assert!(matches!(
        h.notices.last(),
        Some(Notice::RetryScheduled { status: None, .. })
    ));
    let stale = h.pending.remove(0);
    h.advance(2_000);
    assert_eq!(h.sent.len(), 2);
    // The late answer to the timed-out attempt is ignored.
    h.sdk.handle_send_result(h.now, stale.batch_id, status(200));
    h.drain();
    assert_eq!(h.sdk.in_flight(), 1);
}

#[test]
fn storage_failure_keeps_events_in_memory_and_shrinks_the_snapshot() {
    let mut h = granted_analytics();
    h.sdk.handle_network(h.now, false);
    for i in 0..3 {
        h.track(&format!("e{i}")).unwrap();
    }
    h.advance(1_000);
    h.sdk.handle_storage_failure(h.now, StorageKey::Queue(0));
    h.drain();
    assert!(h.notices.contains(&Notice::StorageFailed {
        key: StorageKey::Queue(0)
    }));
    h.advance(1_000);
    assert!(h.storage.contains_key(&StorageKey::Queue(0)), "tried again");
    assert_eq!(h.sdk.queued(), 3);
    h.sdk.handle_network(h.now, true);
    h.flush();
    assert_eq!(h.sent_names(), ["e0", "e1", "e2"]);
}

#[test]
fn hostile_input_is_dropped_with_a_reason_and_the_next_call_works() {
    let mut h = granted_analytics();
    let deep = "[".repeat(40) + &"]".repeat(40);
    let cases: Vec<(String, Option<String>, DropReason)> = vec![
        (String::new(), None, DropReason::InvalidName),
        ("n".repeat(257), None, DropReason::NameTooLong),
        (
            "x".into(),
            Some("[1,2]".into()),
            DropReason::InvalidProperties,
        ),
        (
            "x".into(),
            Some("\"str\"".into()),
            DropReason::InvalidProperties,
        ),
        (
            "x".into(),
            Some("{bad json".into()),
            DropReason::InvalidProperties,
        ),
        (
            "x".into(),
            Some(format!("{{\"a\":{deep}}}")),
            DropReason::PropertiesTooDeep,
        ),
        (
            "x".into(),
            Some(format!("{{\"a\":\"{}\"}}", "y".repeat(30_000))),
            DropReason::PropertiesTooLarge,
        ),
        (
            "x".into(),
            Some(r#"{"lone":"\ud800"}"#.into()),
            DropReason::InvalidProperties,
        ),
    ];
    for (name, properties, reason) in cases {
        assert_eq!(
            h.track_with(&name, properties.as_deref(), None),
            Err(reason),
            "{reason:?}"
        );
    }
    assert_eq!(
        h.track_with("x", None, Some(&["nope"])),
        Err(DropReason::UnknownPurpose)
    );
    assert_eq!(
        h.track_with("x", None, Some(&[])),
        Err(DropReason::NoPurpose)
    );
    let hostile_name = "</script><script>alert(1)</script>\u{0}\"\\\u{2028}😀";
    h.track_with(hostile_name, Some(r#"{"k":"\u0000\ud83d\ude00"}"#), None)
        .unwrap();
    h.flush();
    assert_eq!(h.sent_names(), [hostile_name]);
    assert_eq!(
        h.sdk.handle_identify(h.now, "", EventInput::default()),
        Err(DropReason::InvalidUserId)
    );
}

#[test]
fn page_events_carry_minimised_page_details() {
    let config = CONFIG.replace(
        "\"rules\": [",
        "\"rules\": [{\"type\": \"page\", \"purposes\": [\"analytics\"]},",
    );
    let mut h = Harness::new(&config);
    h.consent(&[("analytics", true)]);
    let page = PageInfo {
        url: Some("https://shop.example/tea?email=a@b.example#x".into()),
        title: Some("Tea".into()),
        referrer: Some("https://search.example/?q=private".into()),
    };
    h.sdk
        .handle_page(h.now, &page, EventInput::default())
        .unwrap();
    h.drain();
    h.flush();
    let event = &h.sent[0].body["events"][1];
    assert_eq!(event["type"], "page");
    assert_eq!(event["page"]["url"], "https://shop.example/tea");
    assert_eq!(event["page"]["referrer"], "https://search.example/");
}

#[test]
fn shutdown_flushes_persists_and_refuses_later_calls() {
    let mut h = granted_analytics();
    h.track("a").unwrap();
    h.sdk.handle_shutdown(h.now);
    h.drain();
    assert_eq!(h.sent_names(), ["a"]);
    assert_eq!(h.stored_ids().len(), 1);
    assert_eq!(h.track("b"), Err(DropReason::ShutDown));
    assert_eq!(
        h.sdk
            .handle_consent(h.now, &[("analytics", false)], &banner(), &FRESH),
        Err(ConsentError::ShutDown)
    );
    h.ok();
    assert!(h.sdk.is_idle());
}

#[test]
fn restore_erases_a_stored_identity_that_no_granted_purpose_covers_and_discards_garbage() {
    let config = Config::from_json(CONFIG).unwrap();
    let now = Timestamp::from_unix_ms(T0);
    let mut sdk = Consentry::new(config, now, entropy([1; 4]));
    sdk.restore(
        now,
        Some("{\"v\":1,\"state\":{\"gdpr\":{}}}"),
        Some(
            "{\"v\":1,\"anonymous_id\":\"3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b\",\"user_id\":null}",
        ),
    );
    let outputs: Vec<_> = std::iter::from_fn(|| sdk.poll_output()).collect();
    assert!(outputs.contains(&consentry_core::Output::Persist {
        key: StorageKey::Identity,
        value: None
    }));
    assert_ne!(
        sdk.anonymous_id().0.to_hyphenated(),
        "3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b"
    );
    let mut sdk = Consentry::new(Config::from_json(CONFIG).unwrap(), now, entropy([1; 4]));
    sdk.restore(now, Some("garbage"), None);
    assert!(sdk.adopt_queue(
        now,
        "{\"v\":1,\"saved_at\":\"no\"}",
        consentry_core::PeerId(1),
        Liveness::Gone
    ));
    let outputs: Vec<_> = std::iter::from_fn(|| sdk.poll_output()).collect();
    assert!(outputs.contains(&consentry_core::Output::Persist {
        key: StorageKey::Consent,
        value: None
    }));
    assert!(
        outputs.contains(&consentry_core::Output::Notify(Notice::StorageDiscarded {
            key: StorageKey::Queue(0)
        }))
    );
}

#[test]
fn before_any_choice_essential_events_go_out_from_memory_without_an_identifier() {
    let mut h = Harness::new(CONFIG);
    h.track_with(
        "cart_restored",
        Some(r#"{"items":2}"#),
        Some(&["necessary"]),
    )
    .unwrap();
    assert_eq!(
        h.sdk.handle_identify(
            h.now,
            "user-1",
            EventInput {
                properties: None,
                purposes: Some(&["necessary"]),
            }
        ),
        Err(DropReason::IdentityDenied)
    );
    h.drain();
    h.hide();
    assert!(
        h.sent[0].transmission.keepalive,
        "sent at once as the page hides"
    );
    h.ok();
    h.advance(60_000);
    assert_eq!(h.sent_names(), ["cart_restored"]);
    let event = &h.sent[0].body["events"][0];
    assert!(event.get("anonymous_id").is_none(), "{event}");
    assert!(event.get("user_id").is_none(), "{event}");
    assert!(h.persists.is_empty(), "storage touched: {:?}", h.persists);

    // A failed send comes back to memory, never to storage, even after the first choice.
    h.show();
    h.track_with("help_opened", None, Some(&["necessary"]))
        .unwrap();
    h.flush();
    h.respond(status(503));
    h.consent(&[("analytics", true)]);
    h.hide();
    for event in h.stored_queue_events() {
        assert!(
            event.get("anonymous_id").is_some(),
            "stored without an id: {event}"
        );
        assert_ne!(event["name"], "help_opened");
    }
    assert_eq!(
        h.sdk.queued() + h.sdk.in_flight(),
        2,
        "help_opened and the grant"
    );
    h.assert_accounting();
}

#[test]
fn a_withdrawal_made_before_the_sdk_started_purges_what_was_restored_first() {
    for withdraw_with_ccpa in [false, true] {
        let mut page1 = granted_analytics();
        page1.consent(&[("advertising", true)]);
        page1.flush();
        while !page1.pending.is_empty() {
            page1.ok();
        }
        page1.track("Product Viewed").unwrap();
        page1.track("ad_click").unwrap();
        page1.flush();
        page1.respond(status(503));
        page1.hide();
        assert_eq!(page1.stored_ids().len(), 2);

        let mut page2 = page1.reload_unstarted(CONFIG, [4, 4, 4, 4]);
        assert_eq!(page2.sdk.queued(), 2, "restored and adopted");
        if withdraw_with_ccpa {
            page2
                .sdk
                .handle_ccpa_opt_out(page2.now, true, &ConsentContext::user(), &FRESH)
                .unwrap();
        } else {
            page2
                .sdk
                .handle_consent(
                    page2.now,
                    &[("analytics", false), ("advertising", false)],
                    &banner(),
                    &FRESH,
                )
                .unwrap();
        }
        page2.drain();
        assert!(page2.sent.is_empty(), "nothing is sent before start");
        page2.start();
        page2.advance(5_000);
        let names = page2.sent_names();
        assert!(!names.contains(&"ad_click".to_owned()), "{names:?}");
        if !withdraw_with_ccpa {
            assert!(!names.contains(&"Product Viewed".to_owned()), "{names:?}");
        }
        for sent in &page2.sent {
            let state = &sent.body["consent_state"];
            for event in sent.body["events"].as_array().unwrap() {
                for purpose in event["purposes"].as_array().unwrap() {
                    let purpose = purpose.as_str().unwrap();
                    if purpose != "necessary" {
                        assert_eq!(state["gdpr"][purpose]["consented"], true);
                    }
                }
            }
        }
        assert!(page2.dropped(DropReason::Purged) >= 1);
    }
}

#[test]
fn removing_the_consent_record_in_another_tab_removes_the_stored_queue_too() {
    let mut h = granted_analytics();
    h.sdk.handle_network(h.now, false);
    h.track("a").unwrap();
    h.advance(1_500);
    assert!(h.storage.contains_key(&StorageKey::Queue(0)));
    h.sdk.handle_consent_sync(h.now, None, &FRESH);
    h.drain();
    assert!(
        !h.storage.keys().any(|k| matches!(k, StorageKey::Queue(_))),
        "the purged events must not stay behind for another page to adopt: {:?}",
        h.storage.keys()
    );
    h.hide();
    assert!(!h.storage.keys().any(|k| matches!(k, StorageKey::Queue(_))));
}

#[test]
fn after_reject_all_no_event_carries_an_identifier_and_identify_is_refused() {
    let mut h = Harness::new(CONFIG);
    h.consent(&[("analytics", false), ("advertising", false)]);
    h.track_with("help_opened", None, Some(&["necessary"]))
        .unwrap();
    assert_eq!(
        h.sdk.handle_identify(
            h.now,
            "user-1",
            EventInput {
                properties: None,
                purposes: Some(&["necessary"]),
            }
        ),
        Err(DropReason::IdentityDenied)
    );
    h.drain();
    h.flush();
    while !h.pending.is_empty() {
        h.ok();
    }
    for sent in &h.sent {
        for event in sent.body["events"].as_array().unwrap() {
            assert!(event.get("anonymous_id").is_none(), "{event}");
            assert!(event.get("user_id").is_none(), "{event}");
        }
    }
    assert_eq!(h.sent_names(), ["consent_change", "help_opened"]);
}
