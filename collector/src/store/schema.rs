//! Opening the database: pragmas for durability and the versioned migrations.
//!
//! `schema_migrations` records every applied version; each migration runs in its own
//! transaction. A file with a version newer than this build knows is refused rather than
//! guessed at. A migration that rebuilds tables (SQLite cannot drop a `NOT NULL`) runs with
//! foreign keys off, as SQLite's documented procedure says, and is checked with
//! `PRAGMA foreign_key_check` before it commits.

use super::{schema_postgres, sql, Location, StoreError};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// One migration: its SQL, and whether it rebuilds tables (then foreign keys are off while it
/// runs).
struct Migration {
    sql: &'static str,
    rebuilds_tables: bool,
}

/// A migration that only adds or changes within tables.
const fn plain(sql: &'static str) -> Migration {
    Migration {
        sql,
        rebuilds_tables: false,
    }
}

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[Migration] = &[
    // 1: batches, events (deduplicated by id), consent changes, counters.
    plain(
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
    ),
    // 2: tokens (only their hashes) and the hash-chained audit log.
    plain(
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
    ),
    // 3: encryption at rest: the key id beside every sealed row, keyed-hash indexes in place of
    // ids in clear, and the keys the database holds data under (by id, never the key).
    plain(
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
    ),
    // 4: stored rows counted as they are stored (stats no longer counts every row).
    plain(
        "INSERT INTO counters (name, value)
        SELECT 'batches', COUNT(*) FROM batches WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;
    INSERT INTO counters (name, value)
        SELECT 'events', COUNT(*) FROM events WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;
    INSERT INTO counters (name, value)
        SELECT 'consent_changes', COUNT(*) FROM consent_changes WHERE true
        ON CONFLICT(name) DO UPDATE SET value = excluded.value;",
    ),
    // 5: events captured before the visitor's first choice carry no anonymous id: the column
    // (and the consent changes' copy) may be NULL. Both tables are rebuilt with every row, key
    // id and index as it was, and the events' AUTOINCREMENT counter carried over, so stored
    // rows read as before and old cursors stay valid.
    Migration {
        sql: "CREATE TABLE events_v5 (
            seq                INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id           TEXT    NOT NULL UNIQUE,
            batch_seq          INTEGER NOT NULL REFERENCES batches(seq),
            type               TEXT    NOT NULL,
            name               TEXT    NOT NULL,
            timestamp_ms       INTEGER NOT NULL,
            purposes           TEXT    NOT NULL,
            anonymous_id       TEXT,
            user_id            TEXT,
            properties         TEXT    NOT NULL,
            page               TEXT,
            key_id             TEXT,
            anonymous_id_index BLOB,
            user_id_index      BLOB
        );
        INSERT INTO events_v5
            (seq, event_id, batch_seq, type, name, timestamp_ms, purposes, anonymous_id, user_id,
             properties, page, key_id, anonymous_id_index, user_id_index)
            SELECT seq, event_id, batch_seq, type, name, timestamp_ms, purposes, anonymous_id,
                   user_id, properties, page, key_id, anonymous_id_index, user_id_index
            FROM events ORDER BY seq;
        DELETE FROM sqlite_sequence WHERE name = 'events_v5';
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'events_v5', seq FROM sqlite_sequence WHERE name = 'events';
        CREATE TABLE consent_changes_v5 (
            event_id     TEXT    PRIMARY KEY REFERENCES events(event_id),
            anonymous_id TEXT,
            timestamp_ms INTEGER NOT NULL,
            current      TEXT    NOT NULL,
            previous     TEXT    NOT NULL,
            key_id       TEXT
        );
        INSERT INTO consent_changes_v5
            (rowid, event_id, anonymous_id, timestamp_ms, current, previous, key_id)
            SELECT rowid, event_id, anonymous_id, timestamp_ms, current, previous, key_id
            FROM consent_changes;
        DROP TABLE consent_changes;
        DROP TABLE events;
        ALTER TABLE events_v5 RENAME TO events;
        ALTER TABLE consent_changes_v5 RENAME TO consent_changes;
        CREATE INDEX events_by_batch ON events(batch_seq);
        CREATE INDEX events_by_anonymous_id_index ON events(anonymous_id_index)
            WHERE anonymous_id_index IS NOT NULL;
        CREATE INDEX events_by_user_id_index ON events(user_id_index)
            WHERE user_id_index IS NOT NULL;",
        rebuilds_tables: true,
    },
    // 6: data subjects' rights (issue 9): identity links seen on identify events, the
    // suppression list, erasure tombstones, DSR requests with their identities (by index),
    // status callbacks (an outbox, with every attempt), exports, and batches by time of receipt
    // for the retention sweeper. Sealed columns are named in
    // `rotation::TABLES`, so `key rotate` re-seals them too.
    plain(
        "CREATE TABLE identity_links (
        anonymous_id_index BLOB    NOT NULL,
        user_id_index      BLOB    NOT NULL,
        event_id           TEXT    NOT NULL,
        environment        TEXT    NOT NULL,
        anonymous_id       BLOB    NOT NULL,
        user_id            BLOB    NOT NULL,
        key_id             TEXT,
        first_seen_ms      INTEGER NOT NULL,
        UNIQUE (anonymous_id_index, user_id_index)
    );
    CREATE INDEX identity_links_by_user ON identity_links(user_id_index);
    CREATE TABLE suppressions (
        identity_index BLOB    NOT NULL UNIQUE,
        id             TEXT    NOT NULL UNIQUE,
        identity       BLOB    NOT NULL,
        key_id         TEXT,
        created_at_ms  INTEGER NOT NULL
    );
    CREATE TABLE erasures (
        seq            INTEGER PRIMARY KEY,
        request_id     TEXT    NOT NULL,
        identity_hash  TEXT    NOT NULL,
        at_ms          INTEGER NOT NULL,
        events_deleted INTEGER NOT NULL
    );
    CREATE INDEX erasures_by_identity ON erasures(identity_hash);
    CREATE TABLE dsr_requests (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT    NOT NULL UNIQUE,
        kind              TEXT    NOT NULL,
        origin            TEXT    NOT NULL,
        regulation        TEXT    NOT NULL,
        status            TEXT    NOT NULL,
        controller_id     TEXT    NOT NULL,
        submitted_time    TEXT    NOT NULL,
        received_at_ms    INTEGER NOT NULL,
        expected_at_ms    INTEGER NOT NULL,
        updated_at_ms     INTEGER NOT NULL,
        request_hash      TEXT    NOT NULL,
        identities        BLOB    NOT NULL,
        callback_urls     TEXT    NOT NULL,
        results_count     INTEGER,
        results_token     BLOB,
        status_secret_hash TEXT,
        claims            INTEGER NOT NULL DEFAULT 0,
        key_id            TEXT
    );
    CREATE INDEX dsr_requests_by_status ON dsr_requests(status, seq);
    CREATE TABLE dsr_identities (
        request_id     TEXT NOT NULL REFERENCES dsr_requests(id),
        identity_index BLOB NOT NULL,
        PRIMARY KEY (identity_index, request_id)
    );
    CREATE TABLE dsr_callbacks (
        seq            INTEGER PRIMARY KEY,
        request_id     TEXT    NOT NULL REFERENCES dsr_requests(id),
        url            TEXT    NOT NULL,
        request_status TEXT    NOT NULL,
        body           BLOB    NOT NULL,
        state          TEXT    NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        next_at_ms     INTEGER NOT NULL,
        key_id         TEXT
    );
    CREATE INDEX dsr_callbacks_due ON dsr_callbacks(state, next_at_ms);
    CREATE INDEX dsr_callbacks_by_request ON dsr_callbacks(request_id);
    CREATE TABLE dsr_callback_attempts (
        seq          INTEGER PRIMARY KEY,
        callback_seq INTEGER NOT NULL REFERENCES dsr_callbacks(seq),
        at_ms        INTEGER NOT NULL,
        outcome      TEXT    NOT NULL
    );
    CREATE INDEX dsr_callback_attempts_by_callback ON dsr_callback_attempts(callback_seq);
    CREATE TABLE exports (
        token_hash    TEXT    PRIMARY KEY,
        request_id    TEXT    NOT NULL REFERENCES dsr_requests(id),
        file          TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        results_count INTEGER NOT NULL
    );
    CREATE INDEX exports_by_expiry ON exports(expires_at_ms);
    CREATE INDEX exports_by_request ON exports(request_id);
    CREATE INDEX batches_by_received_at ON batches(received_at_ms);",
    ),
    // 7: how many values each key has sealed (random nonces allow 2^32 per key).
    plain("ALTER TABLE encryption_keys ADD COLUMN sealed_values INTEGER NOT NULL DEFAULT 0;"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens the database at `location` and applies pending migrations: SQLite's below, or
/// PostgreSQL's ([`schema_postgres`]) with synchronous commit on.
pub fn open(location: &Location) -> Result<sql::Connection, StoreError> {
    match location {
        Location::Sqlite(path) => open_sqlite(path).map(sql::Connection::sqlite),
        Location::Postgres(target) => {
            let conn = sql::Connection::postgres(target)?;
            // A 2xx means committed: the commit waits for the WAL flush on the server.
            conn.execute_batch("SET synchronous_commit TO on")?;
            schema_postgres::migrate(&conn)?;
            Ok(conn)
        }
    }
}

/// Opens the SQLite file, sets durability pragmas and applies pending migrations.
fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
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
    migrate_to(conn, SCHEMA_VERSION)
}

/// Applies the migrations up to version `target`.
fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
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
    for (version, migration) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
        .take_while(|(version, _)| *version <= target)
    {
        apply(conn, version, migration, now)?;
    }
    Ok(())
}

fn apply(
    conn: &mut Connection,
    version: i64,
    migration: &Migration,
    now: i64,
) -> Result<(), StoreError> {
    if migration.rebuilds_tables {
        // Has no effect inside a transaction, so it is switched before BEGIN.
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    }
    let result = (|| {
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql)?;
        if migration.rebuilds_tables {
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
                .optional()?;
            if let Some(table) = broken {
                return Err(StoreError::Database(format!(
                    "migration {version} left a broken foreign key in {table}"
                )));
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            (version, now),
        )?;
        tx.commit()?;
        Ok(())
    })();
    if migration.rebuilds_tables {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::{queries, Codec, NewBatch, NewEvent};
    use super::*;
    use crate::crypto::{DataKey, Keyring};

    #[test]
    fn migrations_apply_once_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        drop(open_sqlite(&path).unwrap());
        let conn = open_sqlite(&path).unwrap();
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
        assert!(matches!(
            open_sqlite(&path),
            Err(StoreError::NewerSchema { .. })
        ));
    }

    fn batch(id: u64, anonymous_id: Option<&str>, consent: bool) -> NewBatch {
        let uuid = |n: u64| format!("00000000-0000-4000-8000-{n:012x}");
        NewBatch {
            batch_id: uuid(id),
            environment: "demo".to_owned(),
            received_at_ms: 1,
            sent_at_ms: 1,
            sdk_name: "consentry-web".to_owned(),
            sdk_version: "0.1.0".to_owned(),
            consent_state: r#"{"gdpr":{}}"#.to_owned(),
            events: vec![NewEvent {
                event_id: uuid(id + 1),
                kind: if consent { "consent_change" } else { "track" },
                name: "e".to_owned(),
                timestamp_ms: 2,
                purposes: r#"["necessary"]"#.to_owned(),
                anonymous_id: anonymous_id.map(str::to_owned),
                user_id: None,
                properties: r#"{"n":1}"#.to_owned(),
                page: None,
                consent: consent
                    .then(|| (r#"{"gdpr":{}}"#.to_owned(), r#"{"gdpr":{}}"#.to_owned())),
            }],
            refused: 0,
        }
    }

    #[test]
    fn rows_written_before_anonymous_ids_became_optional_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let codec = Codec::encrypted(Keyring::new(
            DataKey::from_bytes(&[3; 32]).unwrap(),
            Vec::new(),
        ));
        let anonymous_id = "5a6b7c8d-9e0f-4a1b-9c3d-4e5f6a7b8c9d";
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, 4).unwrap();
            let conn = sql::Connection::sqlite(conn);
            for (id, consent) in [(10, true), (20, false)] {
                let sealed = codec
                    .seal_batch(batch(id, Some(anonymous_id), consent))
                    .unwrap();
                queries::insert_batch_before_v6(&conn, &sealed).unwrap();
            }
            // The highest sequence number ever used is kept even when its row is gone.
            conn.execute("DELETE FROM events WHERE seq = 2", ())
                .unwrap();
        }
        let conn = sql::Connection::sqlite(open_sqlite(&path).unwrap());
        let not_null: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'anonymous_id' AND \"notnull\" = 0",
                (),
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(not_null, 1);
        let page = queries::events(&conn, 0, 10, &codec).unwrap();
        assert_eq!(page.events.len(), 1);
        let old = &page.events[0];
        assert_eq!(old.anonymous_id.as_deref(), Some(anonymous_id));
        assert!(old.consent.is_some());
        assert_eq!(old.properties.get(), r#"{"n":1}"#);
        let by_index = queries::events_of_anonymous_id(&conn, anonymous_id, 0, 10, &codec).unwrap();
        assert_eq!(by_index.events.len(), 1);

        let sealed = codec.seal_batch(batch(30, None, true)).unwrap();
        queries::insert_batch(&conn, &sealed).unwrap();
        let page = queries::events(&conn, 1, 10, &codec).unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].seq, 3, "sequence numbers are not reused");
        assert_eq!(page.events[0].anonymous_id, None);
        assert!(page.events[0].consent.is_some());
        let violations: Option<String> = conn
            .as_sqlite()
            .unwrap()
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(violations, None);
    }
}
