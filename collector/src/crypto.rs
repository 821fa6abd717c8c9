//! Encryption at rest: the data keys, AES-256-GCM for stored values and HMAC-SHA-256 for the
//! indexes that replace ids in clear (ring, already the TLS crate's provider).
//!
//! A data key is 32 random bytes (base64 in a file or `CONSENTRY_ENCRYPTION_KEY`). It is never
//! used directly: HKDF-SHA-256 derives from it an AES-256-GCM key, a separate HMAC key for
//! indexes, and a key id (16 hex digits, safe to store and print) that is kept beside every
//! encrypted row. Each value is sealed with a fresh random 96-bit nonce and bound by its
//! associated data to its table, column and row (an event id or batch id), so a ciphertext moved
//! to another row or column does not open. Random nonces keep a key safe for 2^32 values: every
//! seal is counted per key (persisted with the store's writes, see `store::sealed`), a warning
//! is logged at 2^30, and at 2^32 the key seals nothing more until it is rotated.

use crate::config::{Encryption, KeySource};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::{hkdf, hmac};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most values one key seals: the NIST SP 800-38D bound for random 96-bit nonces.
pub const SEAL_LIMIT: u64 = 1 << 32;

/// Where a warning says the key should be rotated soon.
pub const SEAL_WARNING: u64 = 1 << 30;

/// The first byte of every sealed value: the format, so a later one can be told apart.
const FORMAT_V1: u8 = 1;

/// Why a key or a sealed value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key text is not base64 of 32 bytes.
    BadKey(String),
    /// A value does not open with the key its row names (tampered, or the wrong key).
    Corrupt,
    /// A row names a key id that is not in the keyring.
    UnknownKey(String),
    /// The operating system gave no random bytes for a nonce.
    NoRandomness,
    /// The key sealed as many values as random nonces allow: rotate it.
    WornOut(String),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::BadKey(why) => write!(f, "encryption key: {why}"),
            CryptoError::Corrupt => f.write_str("a stored value does not decrypt (tampered?)"),
            CryptoError::UnknownKey(id) => {
                write!(f, "data encrypted with key {id}, which was not given")
            }
            CryptoError::NoRandomness => f.write_str("no random bytes for a nonce"),
            CryptoError::WornOut(id) => write!(
                f,
                "key {id} has sealed as many values as random nonces allow: rotate it (`key rotate`)"
            ),
        }
    }
}

impl std::error::Error for CryptoError {}

/// One data key and what is derived from it.
pub struct DataKey {
    id: String,
    aead: LessSafeKey,
    index: hmac::Key,
    /// Values sealed under it as the database last recorded.
    persisted: AtomicU64,
    /// Values sealed by this process and not yet recorded.
    unpersisted: AtomicU64,
    /// The most it may seal ([`SEAL_LIMIT`], lower in tests).
    limit: AtomicU64,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::BadKey("cannot derive keys".to_owned()))
}

impl DataKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<DataKey, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"consentry data key v1").extract(bytes);
        let mut aead = [0u8; 32];
        let mut index = [0u8; 32];
        let mut id = [0u8; 8];
        derive(&prk, b"aes-256-gcm", &mut aead)?;
        derive(&prk, b"index hmac-sha-256", &mut index)?;
        derive(&prk, b"key id", &mut id)?;
        let aead = UnboundKey::new(&AES_256_GCM, &aead)
            .map_err(|_| CryptoError::BadKey("not an AES-256 key".to_owned()))?;
        Ok(DataKey {
            id: crate::tokens::hex(&id),
            aead: LessSafeKey::new(aead),
            index: hmac::Key::new(hmac::HMAC_SHA256, &index),
            persisted: AtomicU64::new(0),
            unpersisted: AtomicU64::new(0),
            limit: AtomicU64::new(SEAL_LIMIT),
        })
    }

    /// A key from its base64 text (standard alphabet, padding optional, whitespace trimmed).
    pub fn from_base64(text: &str) -> Result<DataKey, CryptoError> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| CryptoError::BadKey("not base64".to_owned()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| CryptoError::BadKey(format!("{} bytes, not 32", b.len())))?;
        DataKey::from_bytes(&bytes)
    }

    /// A key from a file holding its base64 text (a warning when others may read the file).
    pub fn from_file(path: &Path) -> Result<DataKey, String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "the encryption key file is readable by others: chmod 600 it"
                    );
                }
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        DataKey::from_base64(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Its id: safe to store and print.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Values sealed under it so far, recorded or not.
    pub fn sealed(&self) -> u64 {
        self.persisted.load(Ordering::Acquire) + self.unpersisted.load(Ordering::Acquire)
    }

    /// What the database recorded it sealed (read at open).
    pub fn set_persisted(&self, count: u64) {
        self.persisted.store(count, Ordering::Release);
    }

    /// The seals not yet recorded, now handed to a transaction that records them (give them
    /// back with [`DataKey::unrecorded`] if it fails).
    pub fn take_unrecorded(&self) -> u64 {
        let delta = self.unpersisted.swap(0, Ordering::AcqRel);
        self.persisted.fetch_add(delta, Ordering::AcqRel);
        delta
    }

    /// Gives back seals a failed transaction did not record.
    pub fn unrecorded(&self, delta: u64) {
        self.persisted.fetch_sub(delta, Ordering::AcqRel);
        self.unpersisted.fetch_add(delta, Ordering::AcqRel);
    }

    /// Lowers the most it may seal (tests).
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit.min(SEAL_LIMIT), Ordering::Release);
    }

    /// Counts one more seal, or refuses it past the limit.
    fn count_seal(&self) -> Result<(), CryptoError> {
        let before = self.unpersisted.fetch_add(1, Ordering::AcqRel);
        let total = self.persisted.load(Ordering::Acquire) + before + 1;
        if total > self.limit.load(Ordering::Acquire) {
            self.unpersisted.fetch_sub(1, Ordering::AcqRel);
            return Err(CryptoError::WornOut(self.id.clone()));
        }
        if total == SEAL_WARNING {
            tracing::warn!(key_id = %self.id, sealed = total, "the data key has sealed 2^30 values: rotate it before 2^32");
        }
        Ok(())
    }

    /// Seals `plaintext` bound to `aad` under a fresh random nonce: format byte, nonce,
    /// ciphertext and tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with(NoncePool::new().take()?, aad, plaintext)
    }

    /// Seals `plaintext` bound to `aad` under `nonce`, which must be random and never used
    /// before: one taken from a [`NoncePool`]. One allocation, sealed in place.
    pub fn seal_with(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.count_seal()?;
        let header = 1 + NONCE_LEN;
        let mut out = Vec::with_capacity(header + plaintext.len() + AES_256_GCM.tag_len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                out.split_at_mut(header).1,
            )
            .map_err(|_| CryptoError::Corrupt)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`DataKey::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (format, rest) = sealed.split_first().ok_or(CryptoError::Corrupt)?;
        if *format != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(CryptoError::Corrupt);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Corrupt)?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| CryptoError::Corrupt)?;
        let len = plain.len();
        body.truncate(len);
        Ok(body)
    }

    /// The keyed hash that indexes an id (never the id in clear).
    pub fn index(&self, id: &str) -> Vec<u8> {
        hmac::sign(&self.index, id.as_bytes()).as_ref().to_vec()
    }
}

/// How many nonces one system call draws.
const NONCES_PER_DRAW: usize = 64;

/// Random nonces from the operating system, drawn 64 at a time: sealing a batch costs one
/// `getrandom` call per 64 values instead of one per value. Each nonce is handed out once and
/// the pool is never shared or copied, so the nonces stay as random and as unique as when each
/// was drawn by itself.
pub struct NoncePool {
    block: [u8; NONCE_LEN * NONCES_PER_DRAW],
    next: usize,
}

impl fmt::Debug for NoncePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoncePool(…)")
    }
}

impl Default for NoncePool {
    fn default() -> Self {
        NoncePool::new()
    }
}

impl NoncePool {
    /// An empty pool: the first [`NoncePool::take`] draws.
    pub fn new() -> NoncePool {
        NoncePool {
            block: [0; NONCE_LEN * NONCES_PER_DRAW],
            next: NONCES_PER_DRAW,
        }
    }

    /// The next unused nonce, drawing a new block when the pool is spent.
    pub fn take(&mut self) -> Result<[u8; NONCE_LEN], CryptoError> {
        if self.next >= NONCES_PER_DRAW {
            getrandom::fill(&mut self.block).map_err(|_| CryptoError::NoRandomness)?;
            self.next = 0;
        }
        let start = self.next * NONCE_LEN;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(
            self.block
                .get(start..start + NONCE_LEN)
                .ok_or(CryptoError::NoRandomness)?,
        );
        self.next += 1;
        Ok(nonce)
    }
}

/// The key that encrypts, and older ones that still decrypt (during a rotation).
#[derive(Debug)]
pub struct Keyring {
    current: DataKey,
    old: Vec<DataKey>,
}

impl Keyring {
    /// A keyring encrypting with `current` and also decrypting with `old`.
    pub fn new(current: DataKey, old: Vec<DataKey>) -> Keyring {
        Keyring { current, old }
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> &DataKey {
        &self.current
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Result<&DataKey, CryptoError> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))
    }

    /// Every key, current first.
    pub fn into_keys(self) -> Vec<DataKey> {
        std::iter::once(self.current).chain(self.old).collect()
    }

    /// Every key id, current first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .map(|k| k.id())
            .collect()
    }
}

/// The key file `--generate-encryption-key` makes in the data directory (demo and tests).
pub const GENERATED_KEY_FILE: &str = "encryption-key";

/// Reads the generated key in `data_dir`, or makes one (32 random bytes, base64, mode 0600).
pub fn load_or_generate(data_dir: &Path) -> io::Result<DataKey> {
    let path = data_dir.join(GENERATED_KEY_FILE);
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        crate::keys::write_private(&path, format!("{text}\n").as_bytes())?;
    }
    DataKey::from_file(&path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The keyring `encryption` describes (`None` for `--insecure-no-encryption`), reading key
/// files and, for [`Encryption::GeneratedInDataDir`], making the key in `data_dir` if missing.
pub fn keyring_for(encryption: &Encryption, data_dir: &Path) -> Result<Option<Keyring>, String> {
    match encryption {
        Encryption::Insecure => Ok(None),
        Encryption::GeneratedInDataDir => load_or_generate(data_dir)
            .map(|key| Some(Keyring::new(key, Vec::new())))
            .map_err(|e| format!("{}: {e}", data_dir.join(GENERATED_KEY_FILE).display())),
        Encryption::Keys { current, old } => {
            let current = match current {
                KeySource::File(path) => DataKey::from_file(path)?,
                KeySource::Text(text) => DataKey::from_base64(text)
                    .map_err(|e| format!("CONSENTRY_ENCRYPTION_KEY: {e}"))?,
            };
            let old = old
                .iter()
                .map(|path| DataKey::from_file(path))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Keyring::new(current, old)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let a = key(1);
        let sealed = a
            .seal(b"events.properties:e1", b"{\"sku\":\"tea\"}")
            .unwrap();
        assert_eq!(
            a.open(b"events.properties:e1", &sealed).unwrap(),
            b"{\"sku\":\"tea\"}"
        );
        assert_ne!(
            sealed,
            a.seal(b"events.properties:e1", b"{\"sku\":\"tea\"}")
                .unwrap(),
            "fresh nonces"
        );
        assert_eq!(
            a.open(b"events.properties:e2", &sealed),
            Err(CryptoError::Corrupt)
        );
        assert_eq!(
            key(2).open(b"events.properties:e1", &sealed),
            Err(CryptoError::Corrupt)
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            a.open(b"events.properties:e1", &flipped),
            Err(CryptoError::Corrupt)
        );
        assert!(!sealed.windows(3).any(|w| w == b"tea"));
    }

    #[test]
    fn pooled_nonces_are_never_repeated_across_draws() {
        let mut pool = NoncePool::new();
        let nonces: Vec<_> = (0..3 * NONCES_PER_DRAW + 5)
            .map(|_| pool.take().unwrap())
            .collect();
        let unique: std::collections::BTreeSet<_> = nonces.iter().collect();
        assert_eq!(unique.len(), nonces.len());
        let a = key(1);
        let sealed = a.seal_with(nonces[0], b"aad", b"tea").unwrap();
        assert_eq!(&sealed[1..1 + NONCE_LEN], &nonces[0]);
        assert_eq!(a.open(b"aad", &sealed).unwrap(), b"tea");
    }

    #[test]
    fn ids_and_indexes_are_stable_per_key_and_differ_between_keys() {
        assert_eq!(key(1).id(), key(1).id());
        assert_ne!(key(1).id(), key(2).id());
        assert_eq!(key(1).id().len(), 16);
        assert_eq!(key(1).index("user-1"), key(1).index("user-1"));
        assert_ne!(key(1).index("user-1"), key(2).index("user-1"));
        assert_ne!(key(1).index("user-1"), key(1).index("user-2"));
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            DataKey::from_base64(&format!(" {text}\n")).unwrap().id(),
            key(7).id()
        );
        assert!(DataKey::from_base64("not base64!").is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert!(DataKey::from_base64(&short)
            .unwrap_err()
            .to_string()
            .contains("16 bytes"));
    }

    #[test]
    fn the_keyring_finds_old_keys_and_names_missing_ones() {
        let ring = Keyring::new(key(2), vec![key(1)]);
        assert_eq!(ring.current().id(), key(2).id());
        assert!(ring.get(key(1).id()).is_ok());
        assert!(matches!(
            ring.get(key(3).id()),
            Err(CryptoError::UnknownKey(_))
        ));
    }
}
