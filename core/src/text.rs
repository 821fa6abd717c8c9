//! Joining text without the panicking paths of `[..].concat()` (its overflow `expect` and slice
//! splitting bring formatting code and messages into the wasm that a loop of `push_str` does not).

use alloc::string::String;

/// Joins `parts` into one string, like `parts.concat()`.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_concat() {
        assert_eq!(concat(&["a", "", "bc"]), "abc");
        assert_eq!(concat(&[]), "");
    }
}
