//! How values are written to and read from the columns that hold personal data: sealed with
//! the keyring's current key (AES-256-GCM, the key id in the row's `key_id` column), or in clear
//! with `--insecure-no-encryption` (`key_id` NULL). Ids that are looked up are stored as a keyed
//! hash beside the sealed value.

use super::sql::Value;
use super::sql::{Connection, OptionalExtension};
use super::{NewBatch, NewEvent, StoreError};
use crate::crypto::{DataKey, Keyring, NoncePool};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Sealing for the store: a keyring, or none.
#[derive(Clone, Debug)]
pub struct Codec(Option<Arc<Keyring>>);

impl Codec {
    /// Values sealed with `keyring`.
    pub fn encrypted(keyring: Keyring) -> Codec {
        Codec(Some(Arc::new(keyring)))
    }

    /// Values in clear (`--insecure-no-encryption`).
    pub fn plain() -> Codec {
        Codec(None)
    }

    /// The keyring, if any.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.0.as_deref()
    }

    /// The key id new rows get (`None` in clear).
    pub fn key_id(&self) -> Option<&str> {
        self.keyring().map(|k| k.current().id())
    }

    /// `text` as stored: sealed and bound to `aad`, or in clear.
    pub fn seal(&self, aad: &str, text: &str) -> Result<Value, StoreError> {
        match self.keyring() {
            Some(keyring) => Ok(Value::Blob(seal_with(keyring.current(), aad, text)?)),
            None => Ok(Value::Text(text.to_owned())),
        }
    }

    /// An optional text as stored.
    pub fn seal_opt(&self, aad: &str, text: Option<&str>) -> Result<Value, StoreError> {
        text.map_or(Ok(Value::Null), |t| self.seal(aad, t))
    }

    /// A stored value read back, given the row's key id.
    pub fn open(
        &self,
        key_id: Option<&str>,
        aad: &str,
        value: Value,
    ) -> Result<String, StoreError> {
        match (key_id, value) {
            (None, Value::Text(text)) => Ok(text),
            // PostgreSQL keeps a value in clear as its UTF-8 bytes in the same BYTEA column.
            (None, Value::Blob(bytes)) => String::from_utf8(bytes)
                .map_err(|_| StoreError::Crypto(format!("{aad}: not UTF-8"))),
            (Some(id), Value::Blob(sealed)) => {
                let keyring = self.keyring().ok_or_else(|| {
                    StoreError::Crypto(format!("row sealed with key {id}, but no key was given"))
                })?;
                let key = keyring
                    .get(id)
                    .map_err(|e| StoreError::Crypto(e.to_string()))?;
                let plain = key
                    .open(aad.as_bytes(), &sealed)
                    .map_err(|e| StoreError::Crypto(format!("{aad}: {e}")))?;
                String::from_utf8(plain)
                    .map_err(|_| StoreError::Crypto(format!("{aad}: not UTF-8")))
            }
            _ => Err(StoreError::Crypto(format!(
                "{aad}: stored value does not match its key id"
            ))),
        }
    }

    /// An optional stored value read back.
    pub fn open_opt(
        &self,
        key_id: Option<&str>,
        aad: &str,
        value: Value,
    ) -> Result<Option<String>, StoreError> {
        match value {
            Value::Null => Ok(None),
            value => self.open(key_id, aad, value).map(Some),
        }
    }

    /// The index of an id as new rows store it: HMAC-SHA-256 under the current key, or plain
    /// SHA-256 in clear (where the id itself is in clear anyway).
    pub fn index(&self, id: &str) -> Vec<u8> {
        match self.keyring() {
            Some(keyring) => keyring.current().index(id),
            None => Sha256::digest(id.as_bytes()).to_vec(),
        }
    }

    /// Every index an id may be stored under now (one per key, during a rotation).
    pub fn indexes(&self, id: &str) -> Vec<Vec<u8>> {
        match self.keyring() {
            Some(keyring) => keyring
                .ids()
                .into_iter()
                .filter_map(|kid| keyring.get(kid).ok())
                .map(|key| key.index(id))
                .collect(),
            None => vec![self.index(id)],
        }
    }
}

/// An event with its personal data sealed, ready for the store thread.
#[derive(Debug)]
pub struct SealedEvent {
    /// Its id (in clear: it is random, and the unique constraint needs it).
    pub event_id: String,
    /// Its wire type.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// When it was captured.
    pub timestamp_ms: u64,
    /// Its purposes, as a JSON array.
    pub purposes: String,
    /// Sealed anonymous id, or NULL before the visitor's first choice.
    pub anonymous_id: Value,
    /// Sealed user id, or NULL.
    pub user_id: Value,
    /// Sealed properties.
    pub properties: Value,
    /// Sealed page, or NULL.
    pub page: Value,
    /// The anonymous id's index, when there is one.
    pub anonymous_id_index: Option<Vec<u8>>,
    /// The user id's index.
    pub user_id_index: Option<Vec<u8>>,
    /// Sealed anonymous id (or NULL), current and previous states, for the consent changes
    /// table.
    pub consent: Option<[Value; 3]>,
    /// Sealed anonymous id and user id for the identity links table, on identify events that
    /// carry both.
    pub link: Option<[Value; 2]>,
}

/// A batch with its personal data sealed, ready for the store thread.
#[derive(Debug)]
pub struct SealedBatch {
    /// The plain fields of the batch.
    pub batch: NewBatch,
    /// Its sealed consent state.
    pub consent_state: Value,
    /// The key id every value is sealed under (`None` in clear).
    pub key_id: Option<String>,
    /// Its events, sealed.
    pub events: Vec<SealedEvent>,
}

impl Codec {
    /// Seals a batch's personal data. Runs on the request's task, so the store thread only
    /// writes (the cost of AES-GCM, HMAC and nonces spreads over the runtime's threads).
    pub fn seal_batch(&self, mut batch: NewBatch) -> Result<SealedBatch, StoreError> {
        let mut sealer = BatchSealer {
            key: self.keyring().map(Keyring::current),
            nonces: NoncePool::new(),
            aad: String::with_capacity(64),
            indexed: Vec::new(),
        };
        let events = std::mem::take(&mut batch.events)
            .into_iter()
            .map(|event| sealer.event(event))
            .collect::<Result<_, _>>()?;
        let consent_state = sealer.seal(
            "batches.consent_state",
            &batch.batch_id,
            &std::mem::take(&mut batch.consent_state),
        )?;
        Ok(SealedBatch {
            batch,
            consent_state,
            key_id: self.key_id().map(str::to_owned),
            events,
        })
    }
}

/// Seals the values of one batch: nonces drawn in blocks, one buffer for the associated data,
/// and each id indexed once (a batch carries one anonymous id, and at most a few user ids).
struct BatchSealer<'a> {
    key: Option<&'a DataKey>,
    nonces: NoncePool,
    aad: String,
    indexed: Vec<(String, Vec<u8>)>,
}

impl BatchSealer<'_> {
    fn seal(&mut self, column: &str, row: &str, text: &str) -> Result<Value, StoreError> {
        let Some(key) = self.key else {
            return Ok(Value::Text(text.to_owned()));
        };
        self.aad.clear();
        self.aad.push_str(column);
        self.aad.push(':');
        self.aad.push_str(row);
        let nonce = self
            .nonces
            .take()
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        key.seal_with(nonce, self.aad.as_bytes(), text.as_bytes())
            .map(Value::Blob)
            .map_err(|e| StoreError::Crypto(e.to_string()))
    }

    fn seal_opt(
        &mut self,
        column: &str,
        row: &str,
        text: Option<&str>,
    ) -> Result<Value, StoreError> {
        text.map_or(Ok(Value::Null), |t| self.seal(column, row, t))
    }

    fn index(&mut self, id: &str) -> Vec<u8> {
        if let Some((_, index)) = self.indexed.iter().find(|(known, _)| known == id) {
            return index.clone();
        }
        let index = match self.key {
            Some(key) => key.index(id),
            None => Sha256::digest(id.as_bytes()).to_vec(),
        };
        self.indexed.push((id.to_owned(), index.clone()));
        index
    }

    fn event(&mut self, event: NewEvent) -> Result<SealedEvent, StoreError> {
        let id = event.event_id.as_str();
        let anonymous_id = event.anonymous_id.as_deref();
        let consent = match &event.consent {
            Some((current, previous)) => Some([
                self.seal_opt("consent_changes.anonymous_id", id, anonymous_id)?,
                self.seal("consent_changes.current", id, current)?,
                self.seal("consent_changes.previous", id, previous)?,
            ]),
            None => None,
        };
        let link = match (event.kind, anonymous_id, event.user_id.as_deref()) {
            ("identify", Some(a), Some(u)) => Some([
                self.seal("identity_links.anonymous_id", id, a)?,
                self.seal("identity_links.user_id", id, u)?,
            ]),
            _ => None,
        };
        Ok(SealedEvent {
            link,
            anonymous_id: self.seal_opt("events.anonymous_id", id, anonymous_id)?,
            user_id: self.seal_opt("events.user_id", id, event.user_id.as_deref())?,
            properties: self.seal("events.properties", id, &event.properties)?,
            page: self.seal_opt("events.page", id, event.page.as_deref())?,
            anonymous_id_index: anonymous_id.map(|a| self.index(a)),
            user_id_index: event.user_id.as_deref().map(|u| self.index(u)),
            consent,
            kind: event.kind,
            name: event.name,
            timestamp_ms: event.timestamp_ms,
            purposes: event.purposes,
            event_id: event.event_id,
        })
    }
}

fn seal_with(key: &DataKey, aad: &str, text: &str) -> Result<Vec<u8>, StoreError> {
    key.seal(aad.as_bytes(), text.as_bytes())
        .map_err(|e| StoreError::Crypto(e.to_string()))
}

/// The associated data of one column of one row.
pub fn aad(column: &str, row: &str) -> String {
    format!("{column}:{row}")
}

/// Refuses a keyring that lacks a key the database still holds data under, and records the
/// current key as in use.
pub fn check_keys(conn: &Connection, codec: &Codec) -> Result<(), StoreError> {
    let mut statement = conn.prepare(
        "SELECT key_id FROM encryption_keys WHERE retired_at_ms IS NULL ORDER BY key_id",
    )?;
    let stored: Vec<String> = statement
        .query_map((), |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let given: Vec<String> = codec
        .keyring()
        .map(|k| k.ids().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if stored.iter().any(|id| !given.contains(id)) {
        return Err(StoreError::WrongKey { stored, given });
    }
    if let Some(id) = codec.key_id() {
        register_key(conn, id)?;
    }
    load_seal_count(conn, codec)
}

/// Reads how many values the current key has sealed, as recorded.
pub fn load_seal_count(conn: &Connection, codec: &Codec) -> Result<(), StoreError> {
    let Some(key) = codec.keyring().map(Keyring::current) else {
        return Ok(());
    };
    let recorded: i64 = conn
        .query_row(
            "SELECT sealed_values FROM encryption_keys WHERE key_id = ?1",
            [key.id()],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    key.set_persisted(u64::try_from(recorded).unwrap_or(0));
    Ok(())
}

/// Records the current key's seals made since the last record, in the caller's transaction;
/// returns them so a failed transaction can give them back ([`unrecord_seals`]).
pub fn record_seals(conn: &Connection, codec: &Codec) -> Result<u64, StoreError> {
    let Some(key) = codec.keyring().map(Keyring::current) else {
        return Ok(0);
    };
    let delta = key.take_unrecorded();
    if delta == 0 {
        return Ok(0);
    }
    // RETURNING also brings in what other processes on the file (a `key rotate`) recorded.
    let result = conn
        .query_row(
            "UPDATE encryption_keys SET sealed_values = sealed_values + ?2 WHERE key_id = ?1
             RETURNING sealed_values",
            (key.id(), i64::try_from(delta).unwrap_or(i64::MAX)),
            |row| row.get::<i64>(0),
        )
        .optional();
    match result {
        Ok(total) => {
            if let Some(total) = total {
                key.set_persisted(u64::try_from(total).unwrap_or(u64::MAX));
            }
            Ok(delta)
        }
        Err(e) => {
            key.unrecorded(delta);
            Err(e.into())
        }
    }
}

/// Gives back seals a failed transaction did not record.
pub fn unrecord_seals(codec: &Codec, delta: u64) {
    if let Some(key) = codec.keyring().map(Keyring::current) {
        key.unrecorded(delta);
    }
}

/// Records that data may now be sealed with key `id`.
pub fn register_key(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO encryption_keys (key_id, added_at_ms) VALUES (?1, ?2)
         ON CONFLICT(key_id) DO UPDATE SET retired_at_ms = NULL",
        (id, crate::clock::now_ms()),
    )?;
    Ok(())
}
