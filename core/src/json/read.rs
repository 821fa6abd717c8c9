//! Reading JSON text: a validating scanner for event properties and a parser into [`Value`] for
//! config and stored snapshots. Both refuse nesting deeper than the caller's limit.

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
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
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
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.bytes().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
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
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
        max_depth,
    };
    let value = reader.value(0)?;
    reader.end()?;
    Ok(value)
}

/// Checks that `text` is one JSON value nesting at most `max_depth` deep, without building it.
pub fn validate(text: &str, max_depth: usize) -> Result<Kind, JsonError> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
        max_depth,
    };
    let kind = reader.skip(0)?;
    reader.end()?;
    Ok(kind)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    max_depth: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, JsonError> {
        let byte = self.peek().ok_or(JsonError::Syntax)?;
        self.at += 1;
        Ok(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.next()? == byte {
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn end(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, JsonError> {
        if depth >= self.max_depth {
            Err(JsonError::TooDeep)
        } else {
            Ok(depth + 1)
        }
    }

    /// Walks the members of an array (`close` = `]`) or object (`close` = `}`) after its opening
    /// bracket, calling `member` for each; for objects the key has been read into `key`.
    fn members(
        &mut self,
        close: u8,
        mut member: impl FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            member(self)?;
            self.skip_whitespace();
            match self.next()? {
                b',' => continue,
                b if b == close => return Ok(()),
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.skip_whitespace();
        match self.peek().ok_or(JsonError::Syntax)? {
            b'{' => {
                self.at += 1;
                let inner = self.enter(depth)?;
                let mut members = Vec::new();
                self.members(b'}', |r| {
                    let key = r.string()?;
                    r.skip_whitespace();
                    r.expect(b':')?;
                    members.push((key, r.value(inner)?));
                    Ok(())
                })?;
                Ok(Value::Object(members))
            }
            b'[' => {
                self.at += 1;
                let inner = self.enter(depth)?;
                let mut items = Vec::new();
                self.members(b']', |r| {
                    items.push(r.value(inner)?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            b'"' => self.string().map(Value::String),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            _ => {
                let start = self.at;
                self.number()?;
                let text = core::str::from_utf8(self.bytes.get(start..self.at).unwrap_or_default())
                    .map_err(|_| JsonError::Syntax)?;
                Ok(Value::Number(String::from(text)))
            }
        }
    }

    fn skip(&mut self, depth: usize) -> Result<Kind, JsonError> {
        self.skip_whitespace();
        match self.peek().ok_or(JsonError::Syntax)? {
            b'{' => {
                self.at += 1;
                let inner = self.enter(depth)?;
                self.members(b'}', |r| {
                    r.skip_string()?;
                    r.skip_whitespace();
                    r.expect(b':')?;
                    r.skip(inner).map(drop)
                })?;
                Ok(Kind::Object)
            }
            b'[' => {
                self.at += 1;
                let inner = self.enter(depth)?;
                self.members(b']', |r| r.skip(inner).map(drop))?;
                Ok(Kind::Array)
            }
            b'"' => self.skip_string().map(|()| Kind::String),
            b't' => self.literal(b"true").map(|()| Kind::Bool),
            b'f' => self.literal(b"false").map(|()| Kind::Bool),
            b'n' => self.literal(b"null").map(|()| Kind::Null),
            _ => self.number().map(|()| Kind::Number),
        }
    }

    fn digits(&mut self) -> Result<(), JsonError> {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        if self.at == start {
            Err(JsonError::Syntax)
        } else {
            Ok(())
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if self.peek() == Some(b'0') {
            self.at += 1;
        } else {
            self.digits()?;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        (0..4).try_fold(0u32, |n, _| {
            let digit = char::from(self.next()?)
                .to_digit(16)
                .ok_or(JsonError::Syntax)?;
            Ok(n * 16 + digit)
        })
    }

    /// Reads one escape after its backslash and returns the character it stands for. A lone
    /// surrogate (which `JSON.stringify` writes for a broken JS string) is refused: neither a Rust
    /// string nor a strict JSON reader at the endpoint can hold one.
    fn escape(&mut self) -> Result<char, JsonError> {
        Ok(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&first) {
                    if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                        return Err(JsonError::Syntax);
                    }
                    self.at += 2;
                    let second = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&second) {
                        return Err(JsonError::Syntax);
                    }
                    0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                } else {
                    first
                };
                char::from_u32(code).ok_or(JsonError::Syntax)?
            }
            _ => return Err(JsonError::Syntax),
        })
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.at += 1;
            }
            let run = self.bytes.get(start..self.at).unwrap_or_default();
            out.push_str(core::str::from_utf8(run).map_err(|_| JsonError::Syntax)?);
            match self.next()? {
                b'"' => return Ok(out),
                b'\\' => out.push(self.escape()?),
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    fn skip_string(&mut self) -> Result<(), JsonError> {
        self.expect(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => drop(self.escape()?),
                byte if byte < 0x20 => return Err(JsonError::Syntax),
                _ => {}
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
