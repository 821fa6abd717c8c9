//! The Consentry wasm shell.
