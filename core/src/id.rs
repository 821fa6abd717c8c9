//! Identifiers and the random numbers behind them.
//!
//! The core has no access to an entropy source: the shell seeds [`Rng`] once with 256 bits from
//! `crypto.getRandomValues`, and every id and jitter afterwards comes from that generator
//! (xoshiro256**), so tests can replay a run exactly. Ids are UUID version 4 strings on the wire.

use alloc::string::String;

/// A seeded pseudo-random generator (xoshiro256**). Not for secrets: for ids and jitter.
#[derive(Clone, Debug)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator seeded with 256 bits. Each seed word is passed through splitmix64 first, so
    /// weak seeds (small numbers, all zeros) still start from a well-mixed state.
    pub fn from_seed(seed: [u64; 4]) -> Self {
        let mut state = [0u64; 4];
        let mut mixer = 0u64;
        for (word, seed_word) in state.iter_mut().zip(seed) {
            mixer ^= seed_word;
            *word = splitmix64(&mut mixer);
        }
        Rng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniformly distributed value in `0..=max` (slightly biased for huge ranges; fine for jitter).
    pub fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.next_u64() % bound,
            None => self.next_u64(),
        }
    }

    /// A fresh random UUID (version 4).
    pub fn uuid(&mut self) -> Uuid {
        let low = u128::from(self.next_u64());
        let high = u128::from(self.next_u64());
        // The first word's bytes then the second's, without slice copies (and their panics).
        let mut bytes = (high << 64 | low).to_le_bytes();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 128-bit id, written on the wire as a lower-case hyphenated UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// The id with these 16 bytes, in the order the hyphenated form writes them.
    pub const fn from_bytes(bytes: [u8; 16]) -> Uuid {
        Uuid(bytes)
    }

    /// The 16 bytes, in the order the hyphenated form writes them.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the hyphenated form (`8-4-4-4-12` hex digits, either case). Any other text is `None`.
    pub fn parse(text: &str) -> Option<Uuid> {
        let text = text.as_bytes();
        if text.len() != 36 {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut nibbles = 0usize;
        for (at, &c) in text.iter().enumerate() {
            if matches!(at, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let value = hex_value(c)?;
            let byte = bytes.get_mut(nibbles / 2)?;
            *byte = (*byte << 4) | value;
            nibbles += 1;
        }
        Some(Uuid(bytes))
    }

    /// Appends the hyphenated lower-case form to `out`.
    pub fn write_to(&self, out: &mut String) {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            crate::json::push_hex(out, *byte);
        }
    }

    /// The hyphenated lower-case form as a new string.
    pub fn to_hyphenated(&self) -> String {
        let mut out = String::with_capacity(36);
        self.write_to(&mut out);
        out
    }
}

/// The value of one hexadecimal digit, either case.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Uuid);
    };
}

uuid_newtype!(
    /// The id of one event, assigned once at capture; the same on every retry and reload.
    EventId
);
uuid_newtype!(
    /// The id of one transmission attempt of a batch.
    BatchId
);
uuid_newtype!(
    /// A random visitor id, never derived from anything about the device.
    AnonymousId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_round_trip() {
        let mut rng = Rng::from_seed([1, 2, 3, 4]);
        for _ in 0..100 {
            let id = rng.uuid();
            let text = id.to_hyphenated();
            assert_eq!(text.len(), 36);
            assert_eq!(&text[14..15], "4");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(Uuid::parse(&text), Some(id));
            assert_eq!(Uuid::parse(&text.to_uppercase()), Some(id));
        }
    }

    #[test]
    fn malformed_uuids_are_refused() {
        for bad in [
            "",
            "not-a-uuid",
            "3f1c2a9e7b4d4e8a9c2f5d6e7f809a1b0000",
            "3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1",
            "3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1g",
            "3f1c2a9e+7b4d-4e8a-9c2f-5d6e7f809a1b",
            "3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809aé",
        ] {
            assert_eq!(Uuid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn same_seed_same_sequence_and_zero_seed_works() {
        let mut a = Rng::from_seed([9, 8, 7, 6]);
        let mut b = Rng::from_seed([9, 8, 7, 6]);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut zero = Rng::from_seed([0; 4]);
        assert_ne!(zero.next_u64(), 0);
        assert!(Rng::from_seed([5; 4]).below_or_equal(10) <= 10);
        let _ = Rng::from_seed([5; 4]).below_or_equal(u64::MAX);
    }
}
