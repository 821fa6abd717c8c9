//! The SQL of tokens and the audit log. Plain functions over a connection (or transaction): the
//! store thread and the command-line tools both call them, inside a write transaction whenever
//! they change anything, so two processes appending to the audit log serialise on SQLite's
//! write lock and the chain stays one chain.

use super::sql::{Connection, OptionalExtension, Row};
use super::StoreError;
use crate::audit::{AuditEntry, NewAuditEntry, GENESIS_HASH};
use crate::roles::Role;
use crate::tokens::{Principal, TokenRecord};

/// Stores a new token.
pub fn insert_token(conn: &Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tokens (id, name, role, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((
        &token.id,
        &token.name,
        token.role.as_str(),
        &token.hash,
        token.created_at_ms,
    ))?;
    Ok(())
}

fn token_from(row: &Row<'_>) -> super::sql::Result<(TokenRecord, String)> {
    let role: String = row.get(2)?;
    Ok((
        TokenRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            role: Role::Admin,
            hash: row.get(3)?,
            created_at_ms: row.get(4)?,
            revoked_at_ms: row.get(5)?,
        },
        role,
    ))
}

fn with_role((mut token, role): (TokenRecord, String)) -> Result<TokenRecord, StoreError> {
    token.role = role
        .parse()
        .map_err(|e| StoreError::Database(format!("token {}: {e}", token.id)))?;
    Ok(token)
}

/// Every token, oldest first, revoked ones included.
pub fn list_tokens(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, name, role, hash, created_at_ms, revoked_at_ms FROM tokens ORDER BY created_at_ms, id",
    )?;
    let rows = statement.query_map((), token_from)?;
    rows.map(|row| with_role(row?)).collect()
}

/// Records the configured admin token whose secret hashes to `hash` as revoked; `false` if it
/// already was.
pub fn revoke_configured_admin(
    conn: &Connection,
    hash: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let record = crate::tokens::revoked_admin(hash, now_ms);
    let changed = conn
        .prepare_cached(
            "INSERT INTO tokens (id, name, role, hash, created_at_ms, revoked_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (hash) DO NOTHING",
        )?
        .execute((
            &record.id,
            &record.name,
            record.role.as_str(),
            &record.hash,
            now_ms,
        ))?;
    Ok(changed == 1)
}

/// Whether a token whose secret hashes to `hash` was revoked.
pub fn is_revoked(conn: &Connection, hash: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tokens WHERE hash = ?1 AND revoked_at_ms IS NOT NULL")?
        .query_row([hash], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Marks a token revoked at `now_ms`; `false` if there is no such live token.
pub fn revoke_token(conn: &Connection, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
        )?
        .execute((id, now_ms))?;
    Ok(changed == 1)
}

/// The live token whose secret hashes to `hash`, as a principal.
pub fn find_token(conn: &Connection, hash: &str) -> Result<Option<Principal>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT id, name, role, hash, created_at_ms, revoked_at_ms FROM tokens
             WHERE hash = ?1 AND revoked_at_ms IS NULL",
        )?
        .query_row([hash], token_from)
        .optional()?;
    let Some(found) = found else { return Ok(None) };
    let token = with_role(found)?;
    // The index found it by hash; compare again in constant time all the same.
    if !crate::keys::constant_time_eq(token.hash.as_bytes(), hash.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Principal {
        name: token.name,
        role: token.role,
        token_id: Some(token.id),
    }))
}

/// Appends an entry after the current head. Call inside a write transaction.
pub fn append_audit(conn: &Connection, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row((), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (seq, prev) = head.map_or((1, GENESIS_HASH.to_owned()), |(seq, hash)| (seq + 1, hash));
    let stored = entry.chain(seq, &prev);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at_ms, actor, role, action, target, outcome, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute((
        stored.seq,
        stored.fields.at_ms,
        &stored.fields.actor,
        &stored.fields.role,
        &stored.fields.action,
        &stored.fields.target,
        &stored.fields.outcome,
        &stored.prev_hash,
        &stored.hash,
    ))?;
    tracing::info!(audit_seq = stored.seq, audit_hash = %stored.hash, action = %stored.fields.action, "audit");
    Ok(stored)
}

/// Entries with `seq > since`, oldest first, at most `limit`.
pub fn audit_page(
    conn: &Connection,
    since: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, at_ms, actor, role, action, target, outcome, prev_hash, hash
         FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = statement.query_map((since, limit), |row| {
        Ok(AuditEntry {
            seq: row.get(0)?,
            fields: NewAuditEntry {
                at_ms: row.get(1)?,
                actor: row.get(2)?,
                role: row.get(3)?,
                action: row.get(4)?,
                target: row.get(5)?,
                outcome: row.get(6)?,
            },
            prev_hash: row.get(7)?,
            hash: row.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many entries the log holds (its head's sequence number).
pub fn audit_length(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_log", (), |row| {
            row.get(0)
        })?,
    )
}
