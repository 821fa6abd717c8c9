//! Re-encrypting stored rows under a new key, in small batches, each its own transaction, so a
//! collector serving the same file keeps writing and reading in between. Rows in clear (stored
//! with `--insecure-no-encryption` or before encryption existed) are sealed the same way.

use super::sealed::{aad, register_key, Codec};
use super::sql::Connection;
use super::sql::Value;
use super::StoreError;

/// A table with sealed columns.
struct SealedTable {
    name: &'static str,
    /// The column to walk the table by.
    cursor: &'static str,
    /// The column the associated data names the row by.
    row: &'static str,
    sealed: &'static [&'static str],
    /// Index columns and the sealed column each indexes.
    indexes: &'static [(&'static str, &'static str)],
}

const TABLES: [SealedTable; 7] = [
    SealedTable {
        name: "events",
        cursor: "seq",
        row: "event_id",
        sealed: &["anonymous_id", "user_id", "properties", "page"],
        indexes: &[
            ("anonymous_id_index", "anonymous_id"),
            ("user_id_index", "user_id"),
        ],
    },
    SealedTable {
        name: "batches",
        cursor: "seq",
        row: "batch_id",
        sealed: &["consent_state"],
        indexes: &[],
    },
    SealedTable {
        name: "consent_changes",
        cursor: "rowid",
        row: "event_id",
        sealed: &["anonymous_id", "current", "previous"],
        indexes: &[],
    },
    SealedTable {
        name: "identity_links",
        cursor: "rowid",
        row: "event_id",
        sealed: &["anonymous_id", "user_id"],
        indexes: &[
            ("anonymous_id_index", "anonymous_id"),
            ("user_id_index", "user_id"),
        ],
    },
    SealedTable {
        name: "suppressions",
        cursor: "rowid",
        row: "id",
        sealed: &["identity"],
        indexes: &[("identity_index", "identity")],
    },
    SealedTable {
        name: "dsr_requests",
        cursor: "seq",
        row: "id",
        sealed: &["identities", "results_token"],
        indexes: &[],
    },
    SealedTable {
        name: "dsr_callbacks",
        cursor: "seq",
        row: "request_id",
        sealed: &["body"],
        indexes: &[],
    },
];

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Which table of [`TABLES`] is being walked.
    table: usize,
    /// The last cursor value done in it.
    after: i64,
    /// Rows re-encrypted so far.
    pub rewritten: u64,
}

impl Progress {
    /// Whether every table has been walked.
    pub fn done(&self) -> bool {
        self.table >= TABLES.len()
    }
}

/// Records the new key, so a collector started without it is refused from now on. Unless
/// `offline` (no collector serves the file), a collector must already have started with the
/// new key as its current one: otherwise the running one still seals under the old key, which
/// the rotation would retire.
pub fn begin(conn: &Connection, codec: &Codec, offline: bool) -> Result<(), StoreError> {
    let id = codec
        .key_id()
        .ok_or_else(|| StoreError::Crypto("rotation needs a new key".to_owned()))?;
    let in_use: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM encryption_keys WHERE key_id = ?1 AND retired_at_ms IS NULL)",
        [id],
        |row| row.get(0),
    )?;
    if !in_use && !offline {
        return Err(StoreError::Crypto(format!(
            "no collector has started with the new key {id}: restart the collector with it as \
             --encryption-key-file and the old key as --old-encryption-key-file first (or pass \
             --offline when no collector serves this database)"
        )));
    }
    register_key(conn, id)
}

/// Re-encrypts up to `batch` more rows under `codec`'s current key (reading with any key it
/// has). Call inside a write transaction, until [`Progress::done`].
pub fn step(
    conn: &Connection,
    codec: &Codec,
    batch: u32,
    mut progress: Progress,
) -> Result<Progress, StoreError> {
    let Some(table) = TABLES.get(progress.table) else {
        return Ok(progress);
    };
    let new_id = codec.key_id().unwrap_or_default();
    let columns = table.sealed.join(", ");
    let select = format!(
        "SELECT {cursor}, {row}, key_id, {columns} FROM {name} WHERE {cursor} > ?1 ORDER BY {cursor} LIMIT ?2",
        cursor = table.cursor,
        row = table.row,
        name = table.name,
    );
    let mut assignments: Vec<String> = table.sealed.iter().map(|c| format!("{c} = ?")).collect();
    assignments.push("key_id = ?".to_owned());
    assignments.extend(
        table
            .indexes
            .iter()
            .map(|(index, _)| format!("{index} = ?")),
    );
    let update = format!(
        "UPDATE {} SET {} WHERE {} = ?",
        table.name,
        assignments.join(", "),
        table.cursor
    );
    let mut rows_seen = 0u32;
    let mut statement = conn.prepare_cached(&select)?;
    let mut rows = statement.query((progress.after, batch))?;
    let mut updates: Vec<Vec<Value>> = Vec::new();
    while let Some(row) = rows.next()? {
        rows_seen += 1;
        let cursor: i64 = row.get(0)?;
        progress.after = cursor;
        let row_id: String = row.get(1)?;
        let key_id: Option<String> = row.get(2)?;
        if key_id.as_deref() == Some(new_id) {
            continue;
        }
        let mut plain = Vec::with_capacity(table.sealed.len());
        for (i, column) in table.sealed.iter().enumerate() {
            let where_ = aad(&format!("{}.{column}", table.name), &row_id);
            plain.push(codec.open_opt(key_id.as_deref(), &where_, row.get(3 + i)?)?);
        }
        let mut params = Vec::with_capacity(assignments.len() + 1);
        for (column, text) in table.sealed.iter().zip(&plain) {
            let where_ = aad(&format!("{}.{column}", table.name), &row_id);
            params.push(codec.seal_opt(&where_, text.as_deref())?);
        }
        params.push(Value::Text(new_id.to_owned()));
        for (_, source) in table.indexes {
            let text = table
                .sealed
                .iter()
                .position(|c| c == source)
                .and_then(|i| plain.get(i).cloned().flatten());
            params.push(text.map_or(Value::Null, |t| Value::Blob(codec.index(&t))));
        }
        params.push(Value::Integer(cursor));
        updates.push(params);
    }
    drop(rows);
    let mut write = conn.prepare_cached(&update)?;
    for params in updates {
        write.execute(super::sql::params_from_iter(params))?;
        progress.rewritten += 1;
    }
    if rows_seen < batch {
        progress.table += 1;
        progress.after = 0;
    }
    Ok(progress)
}

/// How many rows are still not under `codec`'s current key.
pub fn remaining(conn: &Connection, codec: &Codec) -> Result<u64, StoreError> {
    let id = codec.key_id().unwrap_or_default();
    let mut total = 0u64;
    for table in &TABLES {
        let n: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE key_id IS NULL OR key_id != ?1",
                table.name
            ),
            [id],
            |row| row.get(0),
        )?;
        total += u64::try_from(n).unwrap_or(0);
    }
    Ok(total)
}

/// Marks every key but the current one retired: no row is under them any more.
pub fn finish(conn: &Connection, codec: &Codec) -> Result<Vec<String>, StoreError> {
    let id = codec.key_id().unwrap_or_default();
    let mut statement = conn.prepare(
        "SELECT key_id FROM encryption_keys WHERE key_id != ?1 AND retired_at_ms IS NULL",
    )?;
    let retired: Vec<String> = statement
        .query_map([id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    conn.execute(
        "UPDATE encryption_keys SET retired_at_ms = ?2 WHERE key_id != ?1 AND retired_at_ms IS NULL",
        (id, crate::clock::now_ms()),
    )?;
    Ok(retired)
}
