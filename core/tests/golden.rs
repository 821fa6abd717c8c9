//! Golden wire fixtures: the core's encoding of a known batch must equal the reviewed fixture in
//! `schema/v1/fixtures/`, and every fixture must satisfy the schema. A wire change shows up here
//! as a fixture diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use consentry_core::consent::{ConsentContext, ConsentSource, ConsentState, Detail};
use consentry_core::id::{AnonymousId, BatchId, EventId, Uuid};
use consentry_core::wire::{begin_batch, encode_event, finish_batch, push_event, EventFields};
use consentry_core::{Config, EventKind, PageInfo, Timestamp, Transmission};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../schema/v1/fixtures/batch-analytics.json"
);

fn uuid(text: &str) -> Uuid {
    Uuid::parse(text).unwrap()
}

#[test]
fn the_core_writes_the_golden_batch() {
    let config = Config::from_json(
        r#"{"endpoint":"https://c.example","apiKey":"pk_demo","purposes":["analytics","advertising"]}"#,
    )
    .unwrap();
    let catalog = &config.policy.catalog;
    let t = Timestamp::from_unix_ms;
    let anonymous_id = AnonymousId(uuid("5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d"));
    let banner = ConsentContext {
        document: Some("notice-v3".into()),
        location: Some("banner".into()),
        hardware_id: None,
        source: ConsentSource::User,
    };
    // The consent change carries whole records; the batch a summary of the state in force.
    let mut state = ConsentState::new(catalog.len());
    let mut previous = String::new();
    state.write_wire(catalog, &mut previous, Detail::MadeAfter(Timestamp::ZERO));
    state.apply(&[(1, true), (2, false)], &banner, t(1_763_800_001_000));
    let mut current = String::new();
    state.write_wire(catalog, &mut current, Detail::MadeAfter(Timestamp::ZERO));
    let mut summary = String::new();
    state.write_wire(catalog, &mut summary, Detail::Summary);

    let analytics = catalog.set_of(["analytics"]).unwrap();
    let base = |id: &str, kind, name, at| EventFields {
        id: EventId(uuid(id)),
        kind,
        name,
        timestamp: t(at),
        purposes: analytics,
        anonymous_id: Some(anonymous_id),
        user_id: None,
        properties: None,
        page: None,
        consent: None,
    };
    let page = PageInfo {
        url: Some("https://shop.example/tea".into()),
        title: Some("Tea".into()),
        referrer: Some("https://search.example/".into()),
    };
    let events = [
        EventFields {
            purposes: catalog.essential(),
            consent: Some((&current, &previous)),
            ..base(
                "9b2e4c1a-0d3f-4a5b-8c6d-7e8f9a0b1c2d",
                EventKind::ConsentChange,
                "consent_change",
                1_763_800_001_000,
            )
        },
        EventFields {
            properties: Some(r#"{"sku":"tea-001","price":4.5,"tags":["green","loose"]}"#),
            ..base(
                "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                EventKind::Track,
                "Product Viewed",
                1_763_800_002_000,
            )
        },
        EventFields {
            page: Some(&page),
            ..base(
                "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
                EventKind::Page,
                "page_view",
                1_763_800_003_000,
            )
        },
        EventFields {
            user_id: Some("user-42"),
            properties: Some(r#"{"plan":"pro"}"#),
            ..base(
                "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7",
                EventKind::Identify,
                "identify",
                1_763_800_004_000,
            )
        },
    ];
    let batch_id = BatchId(uuid("3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b"));
    let mut body = begin_batch(batch_id, t(1_763_800_005_000), "pk_demo", &summary, 4096);
    for (i, fields) in events.iter().enumerate() {
        push_event(&mut body, &encode_event(fields, catalog), i == 0);
    }
    finish_batch(&mut body);

    let ours: serde_json::Value = serde_json::from_str(&body).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let mut expected = golden.clone();
    expected["sdk"]["version"] = env!("CARGO_PKG_VERSION").into();
    assert_eq!(
        ours, expected,
        "wire output differs from the golden fixture:\n{body}"
    );
    support::check_batch(&Transmission {
        batch_id,
        body,
        keepalive: false,
    });
}

/// Before the visitor's first choice, an essential event goes out without any identifier.
#[test]
fn the_core_writes_the_golden_batch_from_before_a_choice() {
    let config = Config::from_json(
        r#"{"endpoint":"https://c.example","apiKey":"pk_demo","purposes":["analytics"]}"#,
    )
    .unwrap();
    let catalog = &config.policy.catalog;
    let t = Timestamp::from_unix_ms;
    let mut state = String::new();
    ConsentState::new(catalog.len()).write_wire(catalog, &mut state, Detail::Summary);
    let event = EventFields {
        id: EventId(uuid("5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e")),
        kind: EventKind::Track,
        name: "cart_restored",
        timestamp: t(1_763_800_000_100),
        purposes: catalog.essential(),
        anonymous_id: None,
        user_id: None,
        properties: Some(r#"{"items":2}"#),
        page: None,
        consent: None,
    };
    let batch_id = BatchId(uuid("4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"));
    let mut body = begin_batch(batch_id, t(1_763_800_000_500), "pk_demo", &state, 1024);
    push_event(&mut body, &encode_event(&event, catalog), true);
    finish_batch(&mut body);
    let ours: serde_json::Value = serde_json::from_str(&body).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/v1/fixtures/batch-before-choice.json"
    );
    let mut expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    expected["sdk"]["version"] = env!("CARGO_PKG_VERSION").into();
    assert_eq!(
        ours, expected,
        "wire output differs from the golden fixture:\n{body}"
    );
}

#[test]
fn every_fixture_satisfies_the_schema() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/v1/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        support::check_batch(&Transmission {
            batch_id: BatchId(uuid("3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b")),
            body,
            keepalive: false,
        });
        seen += 1;
    }
    assert!(seen >= 2);
}
