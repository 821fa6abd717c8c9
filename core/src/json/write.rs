//! Writing JSON text: string escaping, integers, objects with their commas, and whole values.

use super::Value;
use alloc::string::String;

/// Appends `s` to `out` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain_from = 0;
    for (at, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' | b'\\' => byte,
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.push_str(s.get(plain_from..at).unwrap_or_default());
        out.push('\\');
        out.push(char::from(escape));
        if escape == b'u' {
            out.push_str("00");
            push_hex(out, byte);
        }
        plain_from = at + 1;
    }
    out.push_str(s.get(plain_from..).unwrap_or_default());
    out.push('"');
}

/// Appends `byte` as two lower-case hexadecimal digits.
pub(crate) fn push_hex(out: &mut String, byte: u8) {
    for nibble in [byte >> 4, byte & 0x0f] {
        out.push(char::from(
            if nibble < 10 { b'0' } else { b'a' - 10 } + nibble,
        ));
    }
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut String, mut n: u64) {
    // Into a buffer from the end, then one append: a push per digit costs a capacity check each
    // (a timestamp has 13 digits, and every event carries one).
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(digit) = digits.get_mut(at) {
            *digit = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.push_str(core::str::from_utf8(digits.get(at..).unwrap_or_default()).unwrap_or_default());
}

/// Appends a parsed [`Value`] back as compact JSON. Numbers are copied as they were read.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => write_bool(out, *b),
        Value::Number(text) => out.push_str(text),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            let mut close = '[';
            for item in items {
                out.push(close);
                close = ',';
                write_value(out, item);
            }
            if close == '[' {
                out.push('[');
            }
            out.push(']');
        }
        Value::Object(members) => {
            // Names read from a document may need escaping: written here, not by ObjectWriter.
            let mut open = '{';
            for (key, member) in members {
                out.push(open);
                open = ',';
                write_str(out, key);
                out.push(':');
                write_value(out, member);
            }
            if open == '{' {
                out.push('{');
            }
            out.push('}');
        }
    }
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut String, value: bool) {
    out.push_str(if value { "true" } else { "false" });
}

/// Writes one JSON object member by member, placing the commas.
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens an object on `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, empty: true }
    }

    /// Writes the member name `key` and returns the output for its value. Member names are the
    /// SDK's own (field names, purpose names, drop reasons): none needs escaping, so none is
    /// escaped.
    pub fn key(&mut self, key: &str) -> &mut String {
        self.out.push_str(if self.empty { "\"" } else { ",\"" });
        self.empty = false;
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    /// Writes a string member.
    pub fn str(&mut self, key: &str, value: &str) {
        write_str(self.key(key), value);
    }

    /// Writes a string member, or `null` when absent.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        write_opt_str(self.key(key), value);
    }

    /// Writes an integer member.
    pub fn u64(&mut self, key: &str, value: u64) {
        write_u64(self.key(key), value);
    }

    /// Writes a boolean member.
    pub fn bool(&mut self, key: &str, value: bool) {
        write_bool(self.key(key), value);
    }

    /// Writes a member whose value is already JSON text.
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
    }

    /// Closes the object.
    pub fn finish(self) {
        self.out.push('}');
    }
}

/// Appends a string literal, or `null` when absent.
pub(crate) fn write_opt_str(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => write_str(out, v),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_so_any_text_round_trips() {
        for (input, expected) in [
            ("plain", "\"plain\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("line\nbreak\ttab\r", "\"line\\nbreak\\ttab\\r\""),
            ("\u{0}\u{1f}", "\"\\u0000\\u001f\""),
            ("é ☃ 😀 \u{2028}", "\"é ☃ 😀 \u{2028}\""),
            ("</script>", "\"</script>\""),
        ] {
            let mut out = String::new();
            write_str(&mut out, input);
            assert_eq!(out, expected);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn names_read_from_a_document_are_escaped_when_written_back() {
        let text = r#"{"a\"b":{"c\\d":[1,"\n"]},"":{},"e":[]}"#;
        let value = crate::json::parse(text, 8).unwrap();
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(out, text);
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_763_800_000_000, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn objects_place_their_commas() {
        let mut out = String::new();
        let mut object = ObjectWriter::new(&mut out);
        object.str("a", "x");
        object.opt_str("b", None);
        object.u64("c", 3);
        object.bool("d", false);
        object.raw("e", "[1]");
        object.finish();
        assert_eq!(out, r#"{"a":"x","b":null,"c":3,"d":false,"e":[1]}"#);
        let mut empty = String::new();
        ObjectWriter::new(&mut empty).finish();
        assert_eq!(empty, "{}");
    }
}
