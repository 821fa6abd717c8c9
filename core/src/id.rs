//! Identifiers and the random numbers behind them.
//!
//! The core has no entropy source of its own. The shell seeds [`Rng`] with 256 bits from
//! `crypto.getRandomValues` ([`Entropy`]) and hands in 256 fresh bits with every call that may
//! rotate the visitor's identity; a rotation mixes them in ([`Rng::reseed`]) before the new
//! anonymous id is drawn, so that id is independent of everything drawn before it.
//!
//! [`Rng`] is ChaCha20 (RFC 8439's block function) used as a *fast-key-erasure* generator
//! (Bernstein, "Fast-key-erasure random-number generators", 2017): each block is computed under
//! the current key, its first half becomes the next key and only its second half is handed out.
//! No output — an event id, a batch id, an anonymous id on the wire — reveals anything about the
//! key, and even the generator's state in memory reveals nothing about outputs already drawn.
//! (The generator it replaces, xoshiro256**, is invertible: a few ids on the wire gave away its
//! whole state; `core/tests/unlinkable.rs` keeps that attack as the test that this one resists.)
//! Jitter draws from the same generator: nothing it outputs helps predict anything else.
//!
//! Ids are UUID version 4 strings on the wire.

use alloc::string::String;
use core::fmt;

/// 256 bits from the platform's cryptographically secure generator.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Entropy(pub [u8; 32]);

impl Entropy {
    /// Reads 64 hexadecimal digits (either case); any other text is `None`.
    pub fn from_hex(text: &str) -> Option<Entropy> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let high = hex_value(*digits.get(i * 2)?)?;
            let low = hex_value(*digits.get(i * 2 + 1)?)?;
            *byte = (high << 4) | low;
        }
        Some(Entropy(bytes))
    }
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(..)")
    }
}

/// The word pairs of ChaCha's column rounds then its diagonal rounds.
const QUARTER_ROUNDS: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The ChaCha20 block function (RFC 8439, section 2.3): 16 words of keystream for `key` and
/// the last four state words `tail` (block counter and nonce).
pub fn chacha20_block(key: &[u32; 8], tail: [u32; 4]) -> [u32; 16] {
    let mut input = [0u32; 16];
    for i in 0..16 {
        input[i] = match i {
            0..=3 => SIGMA[i],
            4..=11 => key[i - 4],
            _ => tail[i - 12],
        };
    }
    let mut x = input;
    for _ in 0..10 {
        for [a, b, c, d] in QUARTER_ROUNDS {
            quarter_round(&mut x, a & 15, b & 15, c & 15, d & 15);
        }
    }
    for (word, start) in x.iter_mut().zip(input) {
        *word = word.wrapping_add(start);
    }
    x
}

/// One ChaCha quarter round on words `a`, `b`, `c`, `d` of `x` (each below 16).
#[inline(never)]
fn quarter_round(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

/// The SDK's random generator: ChaCha20 with fast key erasure. See the module documentation.
#[derive(Clone)]
pub struct Rng {
    key: [u32; 8],
    /// The unused half of the last block, handed out word by word from the end.
    spare: [u32; 8],
    left: usize,
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng(..)")
    }
}

fn words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (i, word) in out.iter_mut().enumerate() {
        let at = i * 4;
        *word = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    }
    out
}

impl Rng {
    /// A generator keyed with `seed`.
    pub fn from_entropy(seed: &Entropy) -> Self {
        Rng {
            key: words(&seed.0),
            spare: [0; 8],
            left: 0,
        }
    }

    /// Mixes `fresh` into the key and forgets every output already computed. When `fresh` is
    /// uniformly random and independent of the past, so is the new key (a one-time pad over
    /// the old one); when it is not, the generator is still as strong as before.
    pub fn reseed(&mut self, fresh: &Entropy) {
        for (word, fresh) in self.key.iter_mut().zip(words(&fresh.0)) {
            *word ^= fresh;
        }
        self.spare = [0; 8];
        self.left = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.left == 0 {
            let block = chacha20_block(&self.key, [0; 4]);
            let (key, spare) = block.split_at(8);
            self.key.copy_from_slice(key);
            self.spare.copy_from_slice(spare);
            self.left = 8;
        }
        self.left -= 1;
        let word = self.spare[self.left];
        self.spare[self.left] = 0;
        word
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
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
        // Into a fixed buffer, then one append: a push per character costs a capacity check each.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            if let Some([high, low]) = text.get_mut(at..at + 2) {
                *high = DIGITS[usize::from(byte >> 4)];
                *low = DIGITS[usize::from(byte & 0x0f)];
            }
            at += 2;
        }
        out.push_str(core::str::from_utf8(&text).unwrap_or_default());
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

    /// RFC 8439, section 2.3.2: the block function's test vector.
    #[test]
    fn the_block_function_matches_rfc_8439() {
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = i as u8;
        }
        let block = chacha20_block(&words(&key), [1, 0x0900_0000, 0x4a00_0000, 0]);
        assert_eq!(
            block,
            [
                0xe4e7_f110,
                0x1559_3bd1,
                0x1fdd_0f50,
                0xc471_20a3,
                0xc7f4_d1c7,
                0x0368_c033,
                0x9aaa_2204,
                0x4e6c_d4c3,
                0x4664_82d2,
                0x09aa_9f07,
                0x05d7_c214,
                0xa202_8bd9,
                0xd19c_12b5,
                0xb94e_16de,
                0xe883_d0cb,
                0x4e3c_50a2,
            ]
        );
    }

    /// The generator's own known answer: the key stream of the all-zero key is RFC 8439's
    /// (appendix A.1, test vector 1), whose second half is the first output.
    #[test]
    fn the_generator_hands_out_only_the_second_half_of_each_block() {
        let mut rng = Rng::from_entropy(&Entropy([0; 32]));
        let block = chacha20_block(&[0; 8], [0; 4]);
        // A.1 #1 begins 76 b8 e0 ad a0 f1 3d 90: the first key word of the next block.
        assert_eq!(block[0], 0xade0_b876);
        let mut expected = [0u32; 8];
        for (i, word) in expected.iter_mut().enumerate() {
            *word = block[15 - i];
        }
        for word in expected {
            assert_eq!(rng.next_u32(), word);
        }
        // The next block is keyed by the first half of the previous one.
        let mut next_key = [0u32; 8];
        next_key.copy_from_slice(&block[..8]);
        assert_eq!(rng.next_u32(), chacha20_block(&next_key, [0; 4])[15]);
    }

    #[test]
    fn a_reseed_with_fresh_bits_changes_everything_after_it_and_nothing_before() {
        let seed = Entropy([9; 32]);
        let mut a = Rng::from_entropy(&seed);
        let mut b = Rng::from_entropy(&seed);
        assert_eq!(a.uuid(), b.uuid());
        a.reseed(&Entropy([1; 32]));
        b.reseed(&Entropy([2; 32]));
        assert_ne!(a.uuid(), b.uuid());
        // The same state and the same fresh bits give the same stream: nothing else goes in.
        let mut c = Rng::from_entropy(&seed);
        let mut d = Rng::from_entropy(&seed);
        c.next_u32();
        d.next_u32();
        c.reseed(&Entropy([3; 32]));
        d.reseed(&Entropy([3; 32]));
        assert_eq!(c.next_u64(), d.next_u64());
    }

    #[test]
    fn uuids_are_version_4_and_round_trip() {
        let mut rng = Rng::from_entropy(&Entropy([1; 32]));
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
    fn below_or_equal_stays_in_range_and_covers_it() {
        let mut rng = Rng::from_entropy(&Entropy([5; 32]));
        let mut seen = [false; 11];
        for _ in 0..1000 {
            let n = rng.below_or_equal(10);
            assert!(n <= 10, "{n}");
            seen[n as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
        // The whole range: no overflow, and not stuck at one value.
        let first = rng.below_or_equal(u64::MAX);
        assert!((0..8).any(|_| rng.below_or_equal(u64::MAX) != first));
    }
}
