//! Reading bits out of base64url text, most significant bit first, as both IAB formats store
//! them: each character of `A–Z a–z 0–9 - _` carries six bits, there is no padding character,
//! and the bits of the last character that no field uses are ignored.
//!
//! The reader borrows the text and decodes one character per bit it reads: no buffer, no
//! allocation, and every read past the end is an error rather than a panic.

/// Why bits could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitsError {
    /// The text ends inside a field.
    Truncated,
    /// A Fibonacci-coded integer is larger than 64 bits can hold.
    Overflow,
}

/// A cursor over the bits of one base64url segment.
#[derive(Clone, Debug)]
pub(crate) struct Bits<'a> {
    text: &'a [u8],
    at: usize,
}

/// The six bits a base64url character stands for.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

impl<'a> Bits<'a> {
    /// A reader over `text`, or `None` when a character is not base64url. Empty text is allowed
    /// (every read from it is truncated); callers that refuse empty segments check first.
    pub(crate) fn new(text: &'a str) -> Option<Bits<'a>> {
        let text = text.as_bytes();
        text.iter()
            .all(|&c| sextet(c).is_some())
            .then_some(Bits { text, at: 0 })
    }

    /// How many bits the text holds (six per character).
    pub(crate) fn len(&self) -> usize {
        self.text.len().saturating_mul(6)
    }

    /// How many bits are left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.len().saturating_sub(self.at)
    }

    /// The next bit.
    pub(crate) fn bit(&mut self) -> Result<bool, BitsError> {
        let c = self
            .text
            .get(self.at / 6)
            .and_then(|&c| sextet(c))
            .ok_or(BitsError::Truncated)?;
        let bit = (c >> (5 - self.at % 6)) & 1 == 1;
        self.at += 1;
        Ok(bit)
    }

    /// The next `n` bits as an unsigned integer (`n` at most 64).
    pub(crate) fn int(&mut self, n: u32) -> Result<u64, BitsError> {
        if (n as usize) > self.remaining() {
            return Err(BitsError::Truncated);
        }
        let mut value = 0u64;
        for _ in 0..n.min(64) {
            value = value << 1 | u64::from(self.bit()?);
        }
        Ok(value)
    }

    /// The next `n` bits (at most 64) as a mask whose bit `i` is the `i`-th bit read: bit 0 is
    /// id 1 of a fixed bitfield.
    pub(crate) fn mask(&mut self, n: u32) -> Result<u64, BitsError> {
        if (n as usize) > self.remaining() {
            return Err(BitsError::Truncated);
        }
        let mut mask = 0u64;
        for i in 0..n.min(64) {
            mask |= u64::from(self.bit()?) << i;
        }
        Ok(mask)
    }

    /// The next `n` bits (at most 8) as a small integer.
    pub(crate) fn u8(&mut self, n: u32) -> Result<u8, BitsError> {
        self.int(n.min(8)).map(|v| v as u8)
    }

    /// The next `n` bits (at most 16) as an integer.
    pub(crate) fn u16(&mut self, n: u32) -> Result<u16, BitsError> {
        self.int(n.min(16)).map(|v| v as u16)
    }

    /// A Fibonacci-coded integer (GPP): bits `b0 b1 …` up to the first `11`, worth the sum of
    /// `F(i)` over the set `b_i` with `F = 1, 2, 3, 5, 8, …`; the final `1` only terminates.
    pub(crate) fn fibonacci(&mut self) -> Result<u64, BitsError> {
        // `None` once a Fibonacci number no longer fits: a set bit there is an overflow.
        let (mut value, mut fib, mut next) = (0u64, Some(1u64), Some(2u64));
        let mut previous = false;
        loop {
            let bit = self.bit()?;
            if bit && previous {
                return Ok(value);
            }
            if bit {
                value = fib
                    .and_then(|f| value.checked_add(f))
                    .ok_or(BitsError::Overflow)?;
            }
            previous = bit;
            let sum = fib.zip(next).and_then(|(a, b)| a.checked_add(b));
            (fib, next) = (next, sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sextets_most_significant_bit_first() {
        // 'D' = 3 = 000011, 'B' = 1 = 000001, '_' = 63
        let mut bits = Bits::new("DB_").unwrap();
        assert_eq!(bits.len(), 18);
        assert_eq!(bits.int(6), Ok(3));
        assert_eq!(bits.int(4), Ok(0));
        assert_eq!(bits.int(2), Ok(1));
        assert_eq!(bits.remaining(), 6);
        assert_eq!(bits.int(6), Ok(63));
        assert_eq!(bits.bit(), Err(BitsError::Truncated));
    }

    #[test]
    fn refuses_what_is_not_base64url() {
        for text in ["AB=", "A+B", "a/b", "A B", "é", "AA\n"] {
            assert!(Bits::new(text).is_none(), "{text:?}");
        }
        assert!(Bits::new("").is_some());
        assert!(Bits::new("Az09-_").is_some());
    }

    #[test]
    fn a_read_past_the_end_consumes_nothing() {
        let mut bits = Bits::new("A").unwrap();
        assert_eq!(bits.int(7), Err(BitsError::Truncated));
        assert_eq!(bits.int(6), Ok(0));
    }

    #[test]
    fn masks_number_from_the_first_bit() {
        // 'g' = 32 = 100000, 'B' = 000001: bits 1 0 0 0 0 0 0 0 0 0 0 1
        let mut bits = Bits::new("gB").unwrap();
        assert_eq!(bits.mask(12), Ok(1 | 1 << 11));
    }

    #[test]
    fn fibonacci_codes() {
        // From the GPP specification: 1 = 11, 2 = 011, 3 = 0011, 4 = 1011, 5 = 00011,
        // 6 = 10011, 7 = 01011, 8 = 000011, 12 = 101011.
        let cases: [(&str, u64); 9] = [
            ("11", 1),
            ("011", 2),
            ("0011", 3),
            ("1011", 4),
            ("00011", 5),
            ("10011", 6),
            ("01011", 7),
            ("000011", 8),
            ("101011", 12),
        ];
        for (code, value) in cases {
            let text = to_base64(code);
            let mut bits = Bits::new(&text).unwrap();
            assert_eq!(bits.fibonacci(), Ok(value), "{code}");
        }
        let mut bits = Bits::new("AAAA").unwrap();
        assert_eq!(bits.fibonacci(), Err(BitsError::Truncated));
    }

    #[test]
    fn fibonacci_overflow_is_an_error() {
        // 100 zero bits then a terminator: F(99) does not fit in 64 bits.
        let code = "0".repeat(98) + "111";
        let text = to_base64(&code);
        assert_eq!(
            Bits::new(&text).unwrap().fibonacci(),
            Err(BitsError::Overflow)
        );
    }

    fn to_base64(bits: &str) -> String {
        const DICT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut padded = bits.to_owned();
        while padded.len() % 6 != 0 {
            padded.push('0');
        }
        padded
            .as_bytes()
            .chunks(6)
            .map(|chunk| {
                let v = chunk
                    .iter()
                    .fold(0, |acc, b| acc << 1 | usize::from(*b == b'1'));
                char::from(DICT[v])
            })
            .collect()
    }
}
