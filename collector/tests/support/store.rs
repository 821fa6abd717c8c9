//! Which store the tests run on: SQLite in each test's data directory, or, when
//! `CONSENTRY_TEST_POSTGRES` names a PostgreSQL database (`npm test` starts a throwaway one),
//! a schema of that database of the test's own, made on first use and named in the data
//! directory (so a server restarted on the same directory finds its data again).

use consentry_collector::config::store_location;
use consentry_collector::store::sql::Connection;
use consentry_collector::store::Location;
use std::path::Path;

/// The variable naming the PostgreSQL database to test on.
pub const POSTGRES_VARIABLE: &str = "CONSENTRY_TEST_POSTGRES";

/// The file in a data directory naming its PostgreSQL schema.
const SCHEMA_FILE: &str = "test-postgres-schema";

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var_os(POSTGRES_VARIABLE).is_some_and(|v| !v.is_empty())
}

/// The `--store` value for a data directory: `None` on SQLite (the default place).
pub fn store_url(dir: &Path) -> Option<String> {
    let base = std::env::var(POSTGRES_VARIABLE)
        .ok()
        .filter(|v| !v.is_empty())?;
    let file = dir.join(SCHEMA_FILE);
    let schema = match std::fs::read_to_string(&file) {
        Ok(name) => name.trim().to_owned(),
        Err(_) => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).unwrap();
            let name = format!(
                "t_{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            let admin = base.clone();
            let create = name.clone();
            // The client blocks; never on the test's runtime.
            std::thread::spawn(move || {
                let location = store_location(&admin, None).unwrap();
                let Location::Postgres(target) = location else {
                    unreachable!()
                };
                Connection::postgres(&target)
                    .unwrap()
                    .execute_batch(&format!("CREATE SCHEMA {create}"))
                    .unwrap();
            })
            .join()
            .unwrap();
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&file, &name).unwrap();
            name
        }
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// The environment that points a collector process at the store of `dir` (none on SQLite,
/// whose file is found in the data directory).
pub fn store_env(dir: &Path) -> Vec<(&'static str, String)> {
    store_url(dir)
        .map(|url| ("CONSENTRY_STORE", url))
        .into_iter()
        .collect()
}

/// Whether the store of (stopped) `dir` holds `needle` anywhere: on SQLite in the database
/// file or its WAL; on PostgreSQL in any row of any table, as text or, in `BYTEA` columns
/// (which print as hex), as bytes.
pub fn stored_contains(dir: &Path, needle: &str) -> bool {
    if !on_postgres() {
        let mut bytes = Vec::new();
        for name in ["collector.sqlite3", "collector.sqlite3-wal"] {
            bytes.extend(std::fs::read(dir.join(name)).unwrap_or_default());
        }
        return bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    }
    let text: String = with_db(dir, |conn| {
        let tables: Vec<String> = conn
            .prepare("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            .unwrap()
            .query_map((), |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        tables
            .iter()
            .map(|table| {
                conn.query_row(
                    &format!(
                        "SELECT COALESCE(string_agg(CAST(t AS TEXT), ' '), '') FROM {table} t"
                    ),
                    (),
                    |r| r.get::<String>(0),
                )
                .unwrap()
            })
            .collect()
    });
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    text.contains(needle) || text.contains(&hex)
}

/// The store of a data directory.
pub fn location(dir: &Path) -> Location {
    match store_url(dir) {
        Some(url) => store_location(&url, None).unwrap(),
        None => Location::Sqlite(dir.join(consentry_collector::store::DATABASE_FILE)),
    }
}

/// A connection to the store of a data directory, for tests that look at (or tamper with) the
/// rows themselves. Blocks: call it off the test's runtime with [`with_db`].
fn connect(dir: &Path) -> Connection {
    location(dir).connect().unwrap()
}

/// Runs `look` on a connection to the store of `dir`, on a thread of its own (a PostgreSQL
/// client must not run on the test's runtime).
pub fn with_db<T: Send>(dir: &Path, look: impl FnOnce(&Connection) -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let conn = connect(dir);
                look(&conn)
            })
            .join()
            .unwrap()
    })
}

/// Makes every insert into the audit log fail (a trigger), as a full disk or a broken log
/// would; [`allow_audit_inserts`] undoes it.
pub fn refuse_audit_inserts(dir: &Path) {
    with_db(dir, |conn| {
        let sql = if on_postgres() {
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit();"
        } else {
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
        };
        conn.execute_batch(sql).unwrap();
    });
}

/// Lets audit inserts through again.
pub fn allow_audit_inserts(dir: &Path) {
    with_db(dir, |conn| {
        let sql = if on_postgres() {
            "DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit();"
        } else {
            "DROP TRIGGER refuse_audit"
        };
        conn.execute_batch(sql).unwrap();
    });
}

/// A new data directory whose store holds a copy of `dir`'s audit log (on SQLite, of the
/// whole file), to tamper with while the original stays as it is.
pub fn copy_audit_log(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    match store_url(dir) {
        None => {
            let file = consentry_collector::store::DATABASE_FILE;
            std::fs::copy(dir.join(file), copy.path().join(file)).unwrap();
        }
        Some(_) => {
            let from = std::fs::read_to_string(dir.join(SCHEMA_FILE)).unwrap();
            with_db(copy.path(), |conn| {
                conn.execute_batch(&format!(
                    "INSERT INTO audit_log SELECT * FROM {}.audit_log",
                    from.trim()
                ))
                .unwrap();
            });
        }
    }
    copy
}
