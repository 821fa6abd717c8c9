//! The SQL of retention: deleting, a bounded batch at a time, the events one schedule has
//! expired (with their consent changes, and batches left empty). Each batch is its own write on
//! the store thread, so ingestion's writes go in between.

use super::sql::{Connection, Dialect};
use super::StoreError;

/// Counter of events deleted by retention.
pub const RETENTION_DELETED: &str = "retention_deleted";

/// What a schedule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every event of this environment.
    Environment(String),
    /// Every event with this purpose.
    Purpose(String),
}

/// The events expired at `?1` that `filter` (on `?2`) selects, at most `?3`: batches by
/// their time of receipt (an index range), then their events (by batch).
fn select(filter: &str) -> String {
    format!(
        "SELECT e.seq, e.event_id, e.batch_seq FROM batches b JOIN events e ON e.batch_seq = b.seq
         WHERE b.received_at_ms <= ?1 AND {filter} LIMIT ?3"
    )
}

/// Whether an event's purposes (a JSON array) hold `?2`, in SQLite.
const SQLITE_HAS_PURPOSE: &str =
    "EXISTS (SELECT 1 FROM json_each(e.purposes) WHERE json_each.value = ?2)";

/// The same in PostgreSQL.
const POSTGRES_HAS_PURPOSE: &str =
    "EXISTS (SELECT 1 FROM jsonb_array_elements_text(e.purposes::jsonb) AS p(v) WHERE p.v = ?2)";

/// Deletes up to `limit` events in `scope` received at or before `cutoff_ms`; how many.
pub fn sweep_step(
    conn: &Connection,
    scope: &Scope,
    cutoff_ms: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let (filter, key) = match scope {
        Scope::Environment(env) => ("b.environment = ?2", env),
        Scope::Purpose(purpose) => (
            match conn.dialect() {
                Dialect::Sqlite => SQLITE_HAS_PURPOSE,
                Dialect::Postgres => POSTGRES_HAS_PURPOSE,
            },
            purpose,
        ),
    };
    let sql = select(filter);
    let mut found: Vec<(i64, String, i64)> = Vec::new();
    {
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(super::sql::params![cutoff_ms, key, limit])?;
        while let Some(row) = rows.next()? {
            found.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    let mut consent = conn.prepare_cached("DELETE FROM consent_changes WHERE event_id = ?1")?;
    let mut event = conn.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
    let mut empty = conn.prepare_cached(
        "DELETE FROM batches WHERE seq = ?1
         AND NOT EXISTS (SELECT 1 FROM events WHERE batch_seq = ?1)",
    )?;
    let mut deleted = 0u64;
    for (seq, event_id, _) in &found {
        consent.execute([event_id])?;
        deleted += event.execute([seq])? as u64;
    }
    for (_, _, batch) in &found {
        empty.execute([batch])?;
    }
    if deleted > 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = counters.value + excluded.value",
        )?
        .execute(super::sql::params![
            RETENTION_DELETED,
            i64::try_from(deleted).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(deleted)
}

impl super::Store {
    /// Deletes up to `limit` events `scope` has expired at `cutoff_ms`; how many.
    pub async fn retention_step(
        &self,
        scope: Scope,
        cutoff_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| sweep_step(conn, &scope, cutoff_ms, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_reads_batches_by_time_and_their_events_by_batch() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::Location::Sqlite(dir.path().join("db.sqlite3"))
            .connect()
            .unwrap();
        for filter in ["b.environment = ?2", SQLITE_HAS_PURPOSE] {
            let sql = format!("EXPLAIN QUERY PLAN {}", select(filter));
            let mut statement = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = statement
                .query_map(crate::store::sql::params![0, "x", 10], |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("batches_by_received_at"), "{plan}");
            assert!(plan.contains("events_by_batch"), "{plan}");
        }
    }
}
