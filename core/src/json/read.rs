//! Reading JSON text: a validating scanner for event properties and a parser into [`Value`] for
//! config and stored snapshots. Both refuse nesting deeper than the caller's limit.
//!
//! Both are one reader: validation walks the same grammar with building switched off, so the two
//! cannot disagree about what is JSON, and the wasm carries the grammar once.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A parsed JSON value. Numbers keep their source text so they are copied through exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object's members in source order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an unsigned integer, if it is written as one (no fraction, no exponent)
    /// and fits.
    pub fn as_u64(&self) -> Option<u64> {
        let Value::Number(text) = self else {
            return None;
        };
        if text.is_empty() {
            return None;
        }
        let mut n = 0u64;
        for byte in text.bytes() {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
        }
        Some(n)
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }
}

/// The kind of a JSON value, as reported by [`validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `null`.
    Null,
    /// A boolean.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// Why text is not acceptable JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonError {
    /// Not JSON: a syntax error, or text after the value.
    Syntax,
    /// Nested deeper than the limit.
    TooDeep,
}

impl JsonError {
    /// A lower-case description.
    pub fn message(self) -> &'static str {
        match self {
            JsonError::Syntax => "not valid JSON",
            JsonError::TooDeep => "nested too deeply",
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for JsonError {}

/// Parses `text` as one JSON value whose arrays and objects nest at most `max_depth` deep.
pub fn parse(text: &str, max_depth: usize) -> Result<Value, JsonError> {
    read(text, max_depth, true)
}

/// Checks that `text` is one JSON value nesting at most `max_depth` deep, without building it.
pub fn validate(text: &str, max_depth: usize) -> Result<Kind, JsonError> {
    Ok(match read(text, max_depth, false)? {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    })
}

/// Reads one value and checks that only whitespace follows. Without `build`, arrays, objects,
/// strings and numbers come back empty, which allocates nothing.
fn read(text: &str, max_depth: usize, build: bool) -> Result<Value, JsonError> {
    let mut reader = Reader {
        text,
        at: 0,
        max_depth,
        build,
    };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at == text.len() {
        Ok(value)
    } else {
        Err(JsonError::Syntax)
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
    max_depth: usize,
    build: bool,
}

impl Reader<'_> {
    /// The byte at the cursor, or 0 past the end: a NUL is an error everywhere it is looked at,
    /// so the end needs no case of its own.
    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u8 {
        let byte = self.peek();
        self.at += 1;
        byte
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), b' ' | b'\n' | b'\r' | b'\t') {
            self.at += 1;
        }
    }

    /// The text from `start` to the cursor (always on character boundaries: both ends sit at
    /// ASCII bytes or the end).
    fn since(&self, start: usize) -> Result<&str, JsonError> {
        self.text.get(start..self.at).ok_or(JsonError::Syntax)
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.skip_whitespace();
        let open = self.peek();
        let literal = match open {
            b'{' | b'[' => return self.container(open, depth),
            b'"' => return self.string().map(Value::String),
            b't' => ("true", Value::Bool(true)),
            b'f' => ("false", Value::Bool(false)),
            b'n' => ("null", Value::Null),
            _ => return self.number(),
        };
        let rest = self.text.as_bytes().get(self.at..).unwrap_or_default();
        if rest.starts_with(literal.0.as_bytes()) {
            self.at += literal.0.len();
            Ok(literal.1)
        } else {
            Err(JsonError::Syntax)
        }
    }

    /// An array (`open` = `[`) or an object (`open` = `{`), from its opening bracket.
    fn container(&mut self, open: u8, depth: usize) -> Result<Value, JsonError> {
        if depth >= self.max_depth {
            return Err(JsonError::TooDeep);
        }
        self.at += 1;
        // `]` and `}` are two code points after `[` and `{`.
        let close = open + 2;
        let mut items = Vec::new();
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == close {
            self.at += 1;
        } else {
            loop {
                self.skip_whitespace();
                let key = if open == b'{' {
                    let key = self.string()?;
                    self.skip_whitespace();
                    if self.next() != b':' {
                        return Err(JsonError::Syntax);
                    }
                    Some(key)
                } else {
                    None
                };
                let item = self.value(depth + 1)?;
                if self.build {
                    match key {
                        Some(key) => members.push((key, item)),
                        None => items.push(item),
                    }
                }
                self.skip_whitespace();
                match self.next() {
                    b',' => {}
                    byte if byte == close => break,
                    _ => return Err(JsonError::Syntax),
                }
            }
        }
        Ok(if open == b'{' {
            Value::Object(members)
        } else {
            Value::Array(items)
        })
    }

    fn digits(&mut self) -> Result<(), JsonError> {
        let start = self.at;
        while self.peek().is_ascii_digit() {
            self.at += 1;
        }
        if self.at == start {
            Err(JsonError::Syntax)
        } else {
            Ok(())
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        if self.peek() == b'-' {
            self.at += 1;
        }
        if self.peek() == b'0' {
            self.at += 1;
        } else {
            self.digits()?;
        }
        if self.peek() == b'.' {
            self.at += 1;
            self.digits()?;
        }
        // `e` or `E`.
        if self.peek() | 0x20 == b'e' {
            self.at += 1;
            if matches!(self.peek(), b'+' | b'-') {
                self.at += 1;
            }
            self.digits()?;
        }
        let mut text = String::new();
        if self.build {
            text.push_str(self.since(start)?);
        }
        Ok(Value::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = crate::id::hex_value(self.next()).ok_or(JsonError::Syntax)?;
            n = n * 16 + u32::from(digit);
        }
        Ok(n)
    }

    /// Reads one escape after its backslash and returns the character it stands for. A lone
    /// surrogate (which `JSON.stringify` writes for a broken JS string) is refused: neither a Rust
    /// string nor a strict JSON reader at the endpoint can hold one.
    fn escape(&mut self) -> Result<char, JsonError> {
        let code = match self.next() {
            b'"' => 0x22,
            b'\\' => 0x5c,
            b'/' => 0x2f,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => 0x0a,
            b'r' => 0x0d,
            b't' => 0x09,
            b'u' => {
                let first = self.hex4()?;
                if (0xd800..0xdc00).contains(&first) {
                    if self.next() != b'\\' || self.next() != b'u' {
                        return Err(JsonError::Syntax);
                    }
                    let second = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&second) {
                        return Err(JsonError::Syntax);
                    }
                    0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                } else {
                    first
                }
            }
            _ => return Err(JsonError::Syntax),
        };
        char::from_u32(code).ok_or(JsonError::Syntax)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        if self.next() != b'"' {
            return Err(JsonError::Syntax);
        }
        let mut out = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek(), b'"' | b'\\' | 0..=0x1f) {
                self.at += 1;
            }
            if self.build {
                out.push_str(self.since(start)?);
            }
            match self.next() {
                b'"' => return Ok(out),
                b'\\' => {
                    let c = self.escape()?;
                    if self.build {
                        out.push(c);
                    }
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::write_value;
    use super::*;

    #[test]
    fn parses_and_writes_back_compactly() {
        let text = r#" { "a" : [1, -2.5e+3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}, "e": 0 } "#;
        let value = parse(text, 8).unwrap();
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(
            out,
            "{\"a\":[1,-2.5e+3,true,false,null],\"b\":{\"c\":\"d\\né😀\"},\"e\":0}"
        );
        assert_eq!(value.get("e").and_then(Value::as_u64), Some(0));
        assert_eq!(validate(text, 8), Ok(Kind::Object));
    }

    #[test]
    fn table_of_invalid_text() {
        for bad in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"raw \u{1} control\"",
            "tru",
            "nul",
            "[1] x",
            "{\"a\":1,}",
            "\"\\u12\"",
            "[1 2]",
        ] {
            assert_eq!(parse(bad, 8), Err(JsonError::Syntax), "parse {bad:?}");
            assert_eq!(validate(bad, 8), Err(JsonError::Syntax), "validate {bad:?}");
        }
    }

    #[test]
    fn depth_is_limited_without_recursing_past_the_limit() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(parse(&deep, 16), Err(JsonError::TooDeep));
        assert_eq!(validate(&deep, 16), Err(JsonError::TooDeep));
        let ok = "[".repeat(16) + &"]".repeat(16);
        assert!(parse(&ok, 16).is_ok());
        assert_eq!(validate(&ok, 16), Ok(Kind::Array));
        let seventeen = "[".repeat(17) + &"]".repeat(17);
        assert_eq!(validate(&seventeen, 16), Err(JsonError::TooDeep));
    }

    #[test]
    fn lone_surrogates_are_refused_and_pairs_decoded() {
        for lone in [
            r#""\ud800x""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800""#,
        ] {
            assert_eq!(parse(lone, 1), Err(JsonError::Syntax), "{lone}");
            assert_eq!(validate(lone, 1), Err(JsonError::Syntax), "{lone}");
        }
        assert_eq!(
            parse(r#""\ud83d\ude00""#, 1),
            Ok(Value::String("😀".into()))
        );
    }

    #[test]
    fn integers_are_read_only_when_written_as_integers() {
        for (text, expected) in [
            ("42", Some(42)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-1", None),
            ("1.0", None),
            ("1e3", None),
        ] {
            assert_eq!(parse(text, 1).unwrap().as_u64(), expected, "{text}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_json() {
        for text in [
            "{\"k\":[{},{\"x\":[]}]}",
            "\"\\/\"",
            "[1e-7, 0.0, -0]",
            "{\"dup\":1,\"dup\":2}",
        ] {
            let ours = parse(text, 16).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut out = String::new();
            write_value(&mut out, &ours);
            let again: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(again, theirs, "{text}");
        }
    }
}
