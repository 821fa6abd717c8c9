//! # consentry-core
//!
//! The sans-IO core of Consentry, a client-side consent and event SDK. It decides everything the
//! SDK does and performs none of it.
//!
//! **In scope:** the consent model ([`consent`]), which purposes an event needs and whether it is
//! admitted ([`policy`]), privacy transforms ([`privacy`]), batching, the retry table and backoff
//! ([`retry`]), the wire format ([`wire`]), persisted snapshots ([`snapshot`]), counters
//! ([`stats`]), the state machine that composes them ([`Consentry`]), and the decoders of the IAB
//! privacy signals (TCF v2.2 and GPP strings) with what they mean for the site ([`signals`]).
//!
//! **Out of scope:** clocks, randomness, the network, storage, timers and the browser. The crate
//! is `no_std` (with `alloc`): it cannot read a clock or do I/O even by accident. Every "now" and
//! every random seed is an input; every effect is an [`Output`] for a shell to perform.
//!
//! ```
//! use consentry_core::{Config, Consentry, ConsentContext, Entropy, EventInput, Output, Timestamp};
//!
//! let config = Config::from_json(
//!     r#"{"endpoint":"https://collect.example.com","apiKey":"pk_demo","purposes":["analytics"],
//!         "defaultPurposes":["analytics"],"flushAt":1}"#,
//! )?;
//! let now = Timestamp::from_unix_ms(1_763_800_000_000);
//! // 256 bits from `crypto.getRandomValues` in a browser.
//! let mut sdk = Consentry::new(config, now, Entropy([7; 32]));
//! sdk.handle_start(now); // restored what storage held, replayed the page's early calls
//!
//! // Denied until the visitor chooses: the event is dropped, counted by reason.
//! assert!(sdk.handle_track(now, "Product Viewed", EventInput::default()).is_err());
//!
//! // Fresh bits with every consent call: a withdrawal of everything rotates the identity.
//! sdk.handle_consent(now, &[("analytics", true)], &ConsentContext::user(), &Entropy([9; 32]))?;
//! sdk.handle_track(now, "Product Viewed", EventInput::default()).ok();
//! let sends = std::iter::from_fn(|| sdk.poll_output())
//!     .filter(|o| matches!(o, Output::Send(_)))
//!     .count();
//! assert_eq!(sends, 1); // the consent change goes out; the event waits for its answer
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod consent;
pub mod endpoint;
pub mod event;
pub mod id;
pub mod json;
pub mod limits;
pub mod machine;
pub mod output;
pub mod policy;
pub mod privacy;
pub mod purpose;
pub mod retry;
/// Privacy signals a page carries, read from their text: IAB TCF v2.2 TC strings and IAB GPP
/// strings, and what they grant or opt out of. Pure functions, not yet wired into the machine.
pub mod signals;
pub mod snapshot;
pub mod stats;
pub mod tabs;
pub mod text;
pub mod time;
pub mod wire;

pub use config::{Config, ConfigError, StorageMode};
pub use consent::{ConsentContext, ConsentError, ConsentSource};
pub use event::{DropReason, EventKind};
pub use id::{AnonymousId, BatchId, Entropy, EventId, Uuid};
pub use machine::{Consentry, EventInput};
pub use output::{Notice, Output, Persistence, Transmission};
pub use privacy::PageInfo;
pub use retry::{parse_retry_after, SendOutcome};
pub use snapshot::StorageKey;
pub use tabs::{Coordination, Liveness, PeerId, Role};
pub use time::{Duration, Timestamp};
