//! # consentry: the wasm shell
//!
//! The boundary between [`consentry_core`] and the browser. This crate is the `#[wasm_bindgen]`
//! API ([`Sdk`]): it turns what JavaScript hands over (strings, numbers, `Date.now()`) into core
//! inputs, and the core's outputs into compact strings for the JavaScript host (`js/host.js`),
//! which performs them with `fetch`, `localStorage`, one `setTimeout` and page lifecycle events.
//!
//! Neither half decides anything: consent, policy, limits, batching, retries and what is stored
//! when are the core's. The I/O lives in JavaScript rather than in `web-sys` calls from Rust
//! because that more than halves the download (`ARCHITECTURE.md` has the measurements).
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

mod api;
mod boundary;
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
mod runtime;

pub use api::{Input, Sdk};
pub use boundary::encode_output;
