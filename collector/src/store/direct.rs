//! Direct, synchronous access to the database for the command-line tools (`token`, `audit`,
//! `key`), which may run while collectors serve the same database: every change is one write
//! transaction, so it waits for the collectors' write lock (SQLite's busy timeout, PostgreSQL's
//! advisory lock) rather than interleaving with them.

use super::sql::Connection;
use super::{access, rotation, sealed, Codec, Location, StoreError};
use crate::audit::{self, AuditEntry, BrokenChain, NewAuditEntry, GENESIS_HASH};
use crate::tokens::TokenRecord;

/// How many audit entries `verify_audit` reads at a time.
const VERIFY_PAGE: u32 = 1000;

/// An open database for one command.
pub struct Database {
    conn: Connection,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

impl Database {
    /// Opens (creating and migrating if needed) the database at `location`. Blocks: call it
    /// off the async runtime.
    pub fn open(location: &Location) -> Result<Database, StoreError> {
        Ok(Database {
            conn: location.connect()?,
        })
    }

    /// Runs `change` in one write transaction.
    pub(super) fn change<T>(
        &mut self,
        change: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.write(change)
    }

    /// Stores a token and its audit entry.
    pub fn create_token(
        &mut self,
        token: &TokenRecord,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        self.change(|conn| {
            access::insert_token(conn, token)?;
            access::append_audit(conn, audit).map(drop)
        })
    }

    /// Every token, revoked ones included.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        access::list_tokens(&self.conn)
    }

    /// Revokes a live token and records it; `false` if there is none with this id.
    pub fn revoke_token(
        &mut self,
        id: &str,
        now_ms: i64,
        audit: NewAuditEntry,
    ) -> Result<bool, StoreError> {
        self.revoke_audited(
            |conn| access::revoke_token(conn, id, now_ms),
            "not_found",
            audit,
        )
    }

    /// Records the configured admin token (by its hash) as revoked, with its audit entry;
    /// `false` if it already was.
    pub fn revoke_configured_admin(
        &mut self,
        hash: &str,
        now_ms: i64,
        audit: NewAuditEntry,
    ) -> Result<bool, StoreError> {
        self.revoke_audited(
            |conn| access::revoke_configured_admin(conn, hash, now_ms),
            "already_revoked",
            audit,
        )
    }

    /// Runs `revoke` and appends `audit` with outcome `ok`, or `otherwise` when nothing was
    /// revoked, in one transaction.
    fn revoke_audited(
        &mut self,
        revoke: impl FnOnce(&Connection) -> Result<bool, StoreError>,
        otherwise: &str,
        audit: NewAuditEntry,
    ) -> Result<bool, StoreError> {
        self.change(|conn| {
            let revoked = revoke(conn)?;
            let outcome = if revoked { "ok" } else { otherwise };
            access::append_audit(
                conn,
                NewAuditEntry {
                    outcome: outcome.to_owned(),
                    ..audit
                },
            )?;
            Ok(revoked)
        })
    }

    /// Appends one audit entry.
    pub fn audit(&mut self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        self.change(|conn| access::append_audit(conn, entry))
    }

    /// Re-encrypts every row under `codec`'s current key, `batch` rows per transaction, while
    /// a collector may serve the file; `progress` hears the rows done so far. Fails, retiring
    /// nothing, if rows under another key remain at the end (a collector still writing with
    /// it). Returns the rows re-encrypted and the key ids retired.
    pub fn rotate(
        &mut self,
        codec: &Codec,
        (batch, offline): (u32, bool),
        mut progress: impl FnMut(u64),
    ) -> Result<(u64, Vec<String>), StoreError> {
        self.change(|conn| {
            rotation::begin(conn, codec, offline)?;
            sealed::load_seal_count(conn, codec)
        })?;
        let mut at = rotation::Progress::default();
        while !at.done() {
            at = self.change(|conn| {
                let at = rotation::step(conn, codec, batch, at)?;
                sealed::record_seals(conn, codec)?;
                Ok(at)
            })?;
            progress(at.rewritten);
        }
        // The check and the retirement in one write transaction: no row can be sealed under
        // an old key between them.
        let retired = self.change(|conn| {
            let left = rotation::remaining(conn, codec)?;
            if left > 0 {
                return Err(StoreError::Crypto(format!(
                    "{left} rows were stored under another key during the rotation: a collector is \
                     still writing with the old key; restart it with the new key as \
                     --encryption-key-file and the old one as --old-encryption-key-file, then rotate again"
                )));
            }
            rotation::finish(conn, codec)
        })?;
        Ok((at.rewritten, retired))
    }

    /// The hash of audit entry `seq`, if the log holds it.
    pub fn audit_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let page = access::audit_page(&self.conn, seq - 1, 1)?;
        Ok(page.into_iter().find(|e| e.seq == seq).map(|e| e.hash))
    }

    /// Checks the whole audit chain, page by page: the length and head hash, or the first
    /// broken entry.
    pub fn verify_audit(&self) -> Result<Result<(i64, String), BrokenChain>, StoreError> {
        let (mut seq, mut hash) = (0, GENESIS_HASH.to_owned());
        loop {
            let page = access::audit_page(&self.conn, seq, VERIFY_PAGE)?;
            if page.is_empty() {
                return Ok(Ok((seq, hash)));
            }
            match audit::verify(&page, seq + 1, &hash) {
                Ok((last, head)) => (seq, hash) = (last, head),
                Err(broken) => return Ok(Err(broken)),
            }
        }
    }
}
