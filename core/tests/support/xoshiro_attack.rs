//! An attacker model: the generator the SDK used before ChaCha20 (xoshiro256**), and the
//! inversion that recovers its whole state from two UUIDs on the wire and predicts every id it
//! draws next. `tests/unlinkable.rs` shows it working against that generator (so the attack is
//! real) and failing against the SDK's ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use consentry_core::Uuid;

/// xoshiro256**, as `core/src/id.rs` had it.
#[derive(Clone, Debug)]
pub struct Xoshiro(pub [u64; 4]);

impl Xoshiro {
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
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

    /// A version 4 UUID laid out exactly as the SDK laid out its ids.
    pub fn uuid(&mut self) -> Uuid {
        let low = u128::from(self.next_u64());
        let high = u128::from(self.next_u64());
        uuid_of(low as u64, high as u64)
    }
}

fn uuid_of(low: u64, high: u64) -> Uuid {
    let mut bytes = ((u128::from(high) << 64) | u128::from(low)).to_le_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The two generator outputs a UUID was made of, with the six bits the version and variant
/// overwrote set to zero.
fn outputs_of(id: &Uuid) -> (u64, u64) {
    let value = u128::from_le_bytes(*id.as_bytes());
    let low = (value as u64) & !(0xf << 52);
    let high = ((value >> 64) as u64) & !(0x3 << 6);
    (low, high)
}

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// The state word `s[1]` that produced `output`.
fn s1_of(output: u64) -> u64 {
    output
        .wrapping_mul(inverse(9))
        .rotate_right(7)
        .wrapping_mul(inverse(5))
}

type Row = [u64; 4];

/// For each of four consecutive steps, the 64 bits of `s[1]` as linear combinations (over
/// GF(2)) of the 256 bits of the initial state; then the inverse of that 256 x 256 matrix.
fn inverse_of_the_observation_matrix() -> Vec<Row> {
    let mut words: [Vec<Row>; 4] = std::array::from_fn(|w| {
        (0..64)
            .map(|bit| {
                let mut row = [0u64; 4];
                row[w] = 1 << bit;
                row
            })
            .collect()
    });
    let xor = |a: &[Row], b: &[Row]| -> Vec<Row> {
        a.iter()
            .zip(b)
            .map(|(x, y)| [x[0] ^ y[0], x[1] ^ y[1], x[2] ^ y[2], x[3] ^ y[3]])
            .collect()
    };
    let mut rows: Vec<Row> = Vec::new();
    for _ in 0..4 {
        rows.extend(words[1].iter().copied());
        let t: Vec<Row> = (0..64)
            .map(|i| if i >= 17 { words[1][i - 17] } else { [0; 4] })
            .collect();
        words[2] = xor(&words[2], &words[0]);
        words[3] = xor(&words[3], &words[1]);
        words[1] = xor(&words[1], &words[2]);
        words[0] = xor(&words[0], &words[3]);
        words[2] = xor(&words[2], &t);
        words[3] = (0..64).map(|i| words[3][(i + 64 - 45) % 64]).collect();
    }
    // Gauss-Jordan on [A | I].
    let mut a = rows;
    let mut inv: Vec<Row> = (0..256)
        .map(|i| {
            let mut row = [0u64; 4];
            row[i / 64] = 1 << (i % 64);
            row
        })
        .collect();
    for col in 0..256 {
        let (w, b) = (col / 64, col % 64);
        let pivot = (col..256)
            .find(|&r| a[r][w] >> b & 1 == 1)
            .expect("four outputs determine the state");
        a.swap(col, pivot);
        inv.swap(col, pivot);
        for r in 0..256 {
            if r != col && a[r][w] >> b & 1 == 1 {
                let (pa, pi) = (a[col], inv[col]);
                for k in 0..4 {
                    a[r][k] ^= pa[k];
                    inv[r][k] ^= pi[k];
                }
            }
        }
    }
    inv
}

/// How many unseen 64-bit draws may lie between two observed ids.
pub const WINDOW: usize = 24;

/// Recovers the state that drew `first` and, right after it, `second`, checked against every
/// id in `later` (each found within [`WINDOW`] draws of the one before). Answers the generator
/// as it stands after the last observed id, ready to predict what comes next.
pub fn recover(first: &Uuid, second: &Uuid, later: &[Uuid]) -> Option<Xoshiro> {
    let inv = inverse_of_the_observation_matrix();
    let (o0, o1) = outputs_of(first);
    let (o2, o3) = outputs_of(second);
    for guess in 0u32..(1 << 12) {
        let g = |shift: u32, bits: u32| u64::from((guess >> shift) & ((1 << bits) - 1));
        let outputs = [
            o0 | g(0, 4) << 52,
            o1 | g(4, 2) << 6,
            o2 | g(6, 4) << 52,
            o3 | g(10, 2) << 6,
        ];
        let observed: Vec<u64> = outputs.iter().map(|&o| s1_of(o)).collect();
        let mut state = [0u64; 4];
        for (i, row) in inv.iter().enumerate() {
            let mut parity = 0u32;
            for (w, &s1) in observed.iter().enumerate() {
                parity ^= (row[w] & s1).count_ones();
            }
            if parity & 1 == 1 {
                state[i / 64] |= 1 << (i % 64);
            }
        }
        let mut rng = Xoshiro(state);
        if rng.uuid() != *first || rng.uuid() != *second {
            continue;
        }
        if let Some(rng) = follow(rng, later) {
            return Some(rng);
        }
    }
    None
}

/// Finds each id of `later` within [`WINDOW`] draws of the previous one.
fn follow(mut rng: Xoshiro, later: &[Uuid]) -> Option<Xoshiro> {
    for id in later {
        let mut found = None;
        for skip in 0..WINDOW {
            let mut probe = rng.clone();
            for _ in 0..skip {
                probe.next_u64();
            }
            if probe.uuid() == *id {
                found = Some(probe);
                break;
            }
        }
        rng = found?;
    }
    Some(rng)
}

/// The ids `rng` would draw at each of the next [`WINDOW`] offsets: one of them is the next id.
pub fn predictions(rng: &Xoshiro) -> Vec<Uuid> {
    (0..WINDOW)
        .map(|skip| {
            let mut probe = rng.clone();
            for _ in 0..skip {
                probe.next_u64();
            }
            probe.uuid()
        })
        .collect()
}
