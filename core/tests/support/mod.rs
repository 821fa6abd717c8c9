//! A scripted shell for driving the core in tests: a virtual clock, an in-memory storage, and a
//! fake endpoint that records every batch (checked against the wire schema) and answers on cue.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use consentry_core::limits::{KEEPALIVE_BUDGET_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use consentry_core::{
    Config, ConsentContext, Consentry, DropReason, Entropy, EventId, EventInput, Liveness, Notice,
    Output, SendOutcome, StorageKey, Timestamp, Transmission,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The start of every test's clock: 2025-11-22.
pub const T0: u64 = 1_763_800_000_000;

/// 256 bits from four words, as a test's stand-in for `crypto.getRandomValues`.
pub fn entropy(words: [u64; 4]) -> Entropy {
    let mut bytes = [0u8; 32];
    for (i, word) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    Entropy(bytes)
}

/// The fresh entropy scripted consent calls hand in.
pub const FRESH: Entropy = Entropy([0xa5; 32]);

pub const CONFIG: &str = r#"{
    "endpoint": "https://collect.example.com",
    "apiKey": "pk_test",
    "purposes": ["analytics", "advertising", "personalization"],
    "salePurposes": ["advertising"],
    "defaultPurposes": ["analytics"],
    "rules": [{"event": "ad_*", "purposes": ["advertising"]}],
    "flushAt": 5,
    "flushIntervalMs": 2000
}"#;

fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/v1/batch.schema.json"
        ))
        .expect("schema file");
        jsonschema::validator_for(&serde_json::from_str(&text).expect("schema JSON"))
            .expect("valid schema")
    })
}

/// Checks a body against the wire schema and the size limits; returns it parsed.
pub fn check_batch(transmission: &Transmission) -> Value {
    let body: Value = serde_json::from_str(&transmission.body).expect("batch body is JSON");
    let errors: Vec<String> = schema()
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "batch violates the schema: {errors:?}\n{}",
        transmission.body
    );
    assert!(
        transmission.body.len() <= MAX_BATCH_BYTES,
        "batch over the byte limit"
    );
    if transmission.keepalive {
        assert!(
            transmission.body.len() <= KEEPALIVE_BUDGET_BYTES,
            "keepalive batch over the budget"
        );
    }
    assert!(body["events"].as_array().unwrap().len() <= MAX_BATCH_EVENTS);
    body
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub transmission: Transmission,
    pub body: Value,
}

impl Sent {
    pub fn event_ids(&self) -> Vec<String> {
        self.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn event_names(&self) -> Vec<String> {
        self.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub struct Harness {
    pub sdk: Consentry,
    pub now: Timestamp,
    pub sent: Vec<Sent>,
    pub pending: Vec<Transmission>,
    pub storage: BTreeMap<StorageKey, String>,
    /// Every storage write and removal the machine asked for, in order.
    pub persists: Vec<StorageKey>,
    /// Messages for the other tabs, not yet delivered.
    pub broadcasts: Vec<String>,
    /// How many times the machine asked to be offered other pages' queues.
    pub adoption_requests: usize,
    pub notices: Vec<Notice>,
}

impl Harness {
    pub fn new(config: &str) -> Self {
        Harness::with_seed(config, [7, 7, 7, 7])
    }

    pub fn with_seed(config: &str, seed: [u64; 4]) -> Self {
        let mut harness = Harness::unstarted(config, seed);
        harness.start();
        harness
    }

    /// A machine that is not started yet (a page still loading).
    pub fn unstarted(config: &str, seed: [u64; 4]) -> Self {
        let config = Config::from_json(config).expect("test config");
        let now = Timestamp::from_unix_ms(T0);
        let mut harness = Harness {
            sdk: Consentry::new(config, now, entropy(seed)),
            now,
            sent: Vec::new(),
            pending: Vec::new(),
            storage: BTreeMap::new(),
            persists: Vec::new(),
            broadcasts: Vec::new(),
            adoption_requests: 0,
            notices: Vec::new(),
        };
        harness.drain();
        harness
    }

    pub fn start(&mut self) {
        self.sdk.handle_start(self.now);
        self.drain();
    }

    /// A second page load: a new machine restoring what this one stored.
    pub fn reload(&self, config: &str, seed: [u64; 4]) -> Harness {
        let mut next = self.reload_unstarted(config, seed);
        next.start();
        next
    }

    /// A second page load that has restored and adopted what was stored but not started.
    pub fn reload_unstarted(&self, config: &str, seed: [u64; 4]) -> Harness {
        let mut next = Harness::unstarted(config, seed);
        next.now = self.now;
        next.storage = self.storage.clone();
        let consent = next.storage.get(&StorageKey::Consent).cloned();
        let identity = next.storage.get(&StorageKey::Identity).cloned();
        next.sdk
            .restore(next.now, consent.as_deref(), identity.as_deref());
        next.drain();
        let queues: Vec<(StorageKey, String)> = next
            .storage
            .iter()
            .filter(|(key, _)| matches!(key, StorageKey::Queue(_)))
            .map(|(key, text)| (*key, text.clone()))
            .collect();
        let owner = self.sdk.peer_id();
        for (key, queue) in queues {
            let now = next.now;
            if next.sdk.adopt_queue(now, &queue, owner, Liveness::Gone) {
                next.storage.remove(&key);
            }
            next.drain();
        }
        next
    }

    pub fn drain(&mut self) {
        while let Some(output) = self.sdk.poll_output() {
            match output {
                Output::Send(transmission) => {
                    let body = check_batch(&transmission);
                    self.pending.push(transmission.clone());
                    self.sent.push(Sent { transmission, body });
                }
                Output::Persist {
                    key,
                    value: Some(value),
                } => {
                    self.persists.push(key);
                    self.storage.insert(key, value);
                }
                Output::Persist { key, value: None } => {
                    self.persists.push(key);
                    self.storage.remove(&key);
                }
                Output::Notify(notice) => self.notices.push(notice),
                Output::Broadcast(message) => self.broadcasts.push(message),
                Output::AdoptQueues => self.adoption_requests += 1,
            }
        }
    }

    /// Moves the virtual clock forward by `ms`, firing every timeout on the way, in order.
    pub fn advance(&mut self, ms: u64) {
        let target = self
            .now
            .saturating_add(consentry_core::Duration::from_millis(ms));
        while let Some(deadline) = self.sdk.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.sdk.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Answers the oldest unanswered batch.
    pub fn respond(&mut self, outcome: SendOutcome) -> Transmission {
        assert!(!self.pending.is_empty(), "no batch to answer");
        let transmission = self.pending.remove(0);
        self.sdk
            .handle_send_result(self.now, transmission.batch_id, outcome);
        self.drain();
        transmission
    }

    pub fn ok(&mut self) -> Transmission {
        self.respond(status(200))
    }

    pub fn consent(&mut self, choices: &[(&str, bool)]) -> bool {
        let changed = self
            .sdk
            .handle_consent(self.now, choices, &banner(), &FRESH)
            .expect("consent accepted");
        self.drain();
        changed
    }

    pub fn track(&mut self, name: &str) -> Result<EventId, DropReason> {
        self.track_with(name, None, None)
    }

    pub fn track_with(
        &mut self,
        name: &str,
        properties: Option<&str>,
        purposes: Option<&[&str]>,
    ) -> Result<EventId, DropReason> {
        let result = self.sdk.handle_track(
            self.now,
            name,
            EventInput {
                properties,
                purposes,
            },
        );
        self.drain();
        result
    }

    pub fn hide(&mut self) {
        self.sdk.handle_visibility(self.now, true);
        self.drain();
    }

    pub fn show(&mut self) {
        self.sdk.handle_visibility(self.now, false);
        self.drain();
    }

    pub fn flush(&mut self) {
        self.sdk.handle_flush(self.now);
        self.drain();
    }

    /// Every event name sent so far, in order.
    pub fn sent_names(&self) -> Vec<String> {
        self.sent.iter().flat_map(Sent::event_names).collect()
    }

    pub fn sent_ids(&self) -> Vec<String> {
        self.sent.iter().flat_map(Sent::event_ids).collect()
    }

    /// Event ids in the stored queue documents, slot by slot.
    pub fn stored_ids(&self) -> Vec<String> {
        self.stored_queue_events()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The events of the stored queue documents, slot by slot.
    pub fn stored_queue_events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        for (key, text) in &self.storage {
            if let StorageKey::Queue(_) = key {
                let doc: Value = serde_json::from_str(text).unwrap();
                for entry in doc["events"].as_array().unwrap() {
                    events.push(entry["event"].clone());
                }
            }
        }
        events
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.sdk.stats().dropped(reason)
    }

    /// admitted + restored = delivered + dropped after admission + queued + in flight.
    pub fn assert_accounting(&self) {
        let stats = self.sdk.stats();
        assert_eq!(
            stats.admitted + stats.restored,
            stats.delivered
                + stats.dropped_after_admission()
                + self.sdk.queued() as u64
                + self.sdk.in_flight() as u64,
            "accounting broken: {}",
            self.sdk.stats_json()
        );
    }
}

pub fn banner() -> ConsentContext {
    ConsentContext {
        document: Some("notice-v3".into()),
        location: Some("banner".into()),
        hardware_id: None,
        source: consentry_core::ConsentSource::User,
    }
}

pub fn status(code: u16) -> SendOutcome {
    SendOutcome::Status {
        code,
        retry_after: None,
    }
}
