//! A small JSON reader and writer, enough for the wire format, stored snapshots and config.
//!
//! The core cannot afford `serde_json` in the browser (formatting and float machinery would
//! triple the wasm), and it does not need it: numbers are kept as their source text and copied
//! through unchanged, strings are escaped on the way out, and every reader has a depth limit so
//! hostile input can neither overflow the stack nor panic.

mod read;
mod write;

pub use read::{parse, validate, JsonError, Kind, Value};
pub(crate) use write::push_hex;
pub use write::{write_str, write_u64, write_value, ObjectWriter};
