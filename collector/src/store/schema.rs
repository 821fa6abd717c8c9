//! Opening the database: pragmas for durability and the versioned migrations.
//!
//! `schema_migrations` records every applied version; each migration runs in its own
//! transaction. A file with a version newer than this build knows is refused rather than
//! guessed at.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: batches, events (deduplicated by id), consent changes, counters.
    "CREATE TABLE batches (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id       TEXT    NOT NULL,
        environment    TEXT    NOT NULL,
        received_at_ms INTEGER NOT NULL,
        sent_at_ms     INTEGER NOT NULL,
        sdk_name       TEXT    NOT NULL,
        sdk_version    TEXT    NOT NULL,
        consent_state  TEXT    NOT NULL
    );
    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id     TEXT    NOT NULL UNIQUE,
        batch_seq    INTEGER NOT NULL REFERENCES batches(seq),
        type         TEXT    NOT NULL,
        name         TEXT    NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        purposes     TEXT    NOT NULL,
        anonymous_id TEXT    NOT NULL,
        user_id      TEXT,
        properties   TEXT    NOT NULL,
        page         TEXT
    );
    CREATE INDEX events_by_batch ON events(batch_seq);
    CREATE INDEX events_by_anonymous_id ON events(anonymous_id);
    CREATE TABLE consent_changes (
        event_id     TEXT    PRIMARY KEY REFERENCES events(event_id),
        anonymous_id TEXT    NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        current      TEXT    NOT NULL,
        previous     TEXT    NOT NULL
    );
    CREATE TABLE counters (
        name  TEXT    PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 2: tokens (only their hashes) and the hash-chained audit log.
    "CREATE TABLE tokens (
        id            TEXT    PRIMARY KEY,
        name          TEXT    NOT NULL,
        role          TEXT    NOT NULL,
        hash          TEXT    NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    );
    CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        actor     TEXT    NOT NULL,
        role      TEXT    NOT NULL,
        action    TEXT    NOT NULL,
        target    TEXT    NOT NULL,
        outcome   TEXT    NOT NULL,
        prev_hash TEXT    NOT NULL,
        hash      TEXT    NOT NULL
    );",
    // 3: encryption at rest: the key id beside every sealed row, keyed-hash indexes in place of
    // ids in clear, and the keys the database holds data under (by id, never the key).
    "ALTER TABLE batches ADD COLUMN key_id TEXT;
    ALTER TABLE events ADD COLUMN key_id TEXT;
    ALTER TABLE events ADD COLUMN anonymous_id_index BLOB;
    ALTER TABLE events ADD COLUMN user_id_index BLOB;
    ALTER TABLE consent_changes ADD COLUMN key_id TEXT;
    DROP INDEX events_by_anonymous_id;
    CREATE INDEX events_by_anonymous_id_index ON events(anonymous_id_index);
    CREATE INDEX events_by_user_id_index ON events(user_id_index)
        WHERE user_id_index IS NOT NULL;
    CREATE TABLE encryption_keys (
        key_id        TEXT    PRIMARY KEY,
        added_at_ms   INTEGER NOT NULL,
        retired_at_ms INTEGER
    );",
    // 4: stored rows counted as they are stored (stats no longer counts every row).
    "INSERT INTO counters (name, value)
        SELECT 'batches', COUNT(*) FROM batches WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;
    INSERT INTO counters (name, value)
        SELECT 'events', COUNT(*) FROM events WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;
    INSERT INTO counters (name, value)
        SELECT 'consent_changes', COUNT(*) FROM consent_changes WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens the database, sets durability pragmas and applies pending migrations.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite(format!(
            "cannot use WAL mode (got {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version       INTEGER PRIMARY KEY,
            applied_at_ms INTEGER NOT NULL
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    let now = crate::clock::now_ms();
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            (version, now),
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(versions, SCHEMA_VERSION);
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, 0)",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
        drop(conn);
        assert!(matches!(open(&path), Err(StoreError::NewerSchema { .. })));
    }
}
