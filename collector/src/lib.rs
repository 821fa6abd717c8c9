//! # consentry-collector
//!
//! The reference ingestion endpoint for Consentry: it receives wire format v1 batches
//! (`schema/v1/batch.schema.json`) from the browser SDK over HTTPS, checks them by hand against
//! the schema's rules, re-checks every event's purposes against the batch's consent state, and
//! stores what passes in SQLite, counting each event id once.
//!
//! **In scope:** TLS (operator certificates or a local development CA), CORS for the configured
//! origins, per-environment API keys, validation with the failing field named, durable storage
//! acknowledged only after COMMIT, encryption at rest, roles and tokens, a hash-chained audit
//! log, address allowlists, rate limits, connection hygiene, metrics, health and readiness, a
//! read API, fault injection for tests, graceful shutdown.
//!
//! **Also in scope** (issue 9): data subjects' rights: the OpenDSR processor API with signed
//! status callbacks, erasure, access and portability exports, rectification, suppression,
//! retention schedules and a per-user view ([`rights`]).
//!
//! **Out of scope:** analytics, forwarding to other systems, multi-node storage (issue 11).
//!
//! Codemap:
//! - [`config`]: the command line ([`config::Cli`]) and the checked [`config::Settings`];
//! - [`commands`]: the tools beside the server (`token`, `audit`, `key`);
//! - [`server`]: listener, TLS, the accept loop, graceful shutdown ([`server::start`]);
//! - [`connection`]: one connection's protocol, cap, deadlines and watchdog;
//! - [`api`]: the HTTP routes and every layer, stacked in one place;
//! - [`wire`] and [`validate`]: the typed v1 batch and the checks serde cannot express;
//! - [`consent_check`]: the defence-in-depth purpose check;
//! - [`body`] and [`body_budget`]: content types, gzip, size limits, and body memory;
//! - [`store`]: SQLite on its own thread, behind one handle ([`store::Store`]) and a direct
//!   connection for the tools ([`store::Database`]);
//! - [`roles`], [`tokens`], [`audit`]: who may do what, bearer tokens, the audit chain;
//! - [`crypto`]: data keys, AES-256-GCM and HMAC indexes;
//! - [`rights`]: OpenDSR signing, fulfilment, callbacks, exports, retention;
//! - [`network`]: client addresses, allowlists, rate limits; [`peers`]: the per-address
//!   connection cap; [`auth_throttle`]: failed authentication per address; [`metrics`]:
//!   Prometheus;
//! - [`tls`], [`origin`], [`keys`], [`faults`], [`clock`]: the small things the rest is made of.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod audit;
pub mod auth_throttle;
pub mod body;
pub mod body_budget;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod consent_check;
pub mod crypto;
pub mod faults;
pub mod keys;
pub mod metrics;
pub mod network;
pub mod origin;
pub mod peers;
pub mod rights;
pub mod roles;
pub mod server;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod validate;
pub mod wire;

/// The largest number of events one batch may hold (the schema's `maxItems`).
pub const MAX_BATCH_EVENTS: usize = 500;

/// The largest properties object of one event, as the JSON text that was sent.
pub const MAX_PROPERTIES_BYTES: usize = 64 * 1024;

/// How deeply properties may nest; the properties object itself is level 1.
pub const MAX_PROPERTIES_DEPTH: usize = consentry_core::limits::MAX_PROPERTIES_DEPTH;

/// The latest time the schema allows (`unixtime_ms`'s maximum: the end of year 9999).
pub const MAX_UNIXTIME_MS: u64 = 253_402_300_799_999;

/// The default limit on a request body, before and after gzip.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

// The collector's limits are looser than the SDK's, so an event the SDK admits is never refused
// for its size here.
const _: () = assert!(MAX_BATCH_EVENTS >= consentry_core::limits::MAX_BATCH_EVENTS);
const _: () = assert!(MAX_PROPERTIES_BYTES >= consentry_core::limits::MAX_PROPERTIES_BYTES);
const _: () = assert!(DEFAULT_MAX_BODY_BYTES >= consentry_core::limits::MAX_BATCH_BYTES);
