//! The SQL: storing a batch, counters, reset, and the two reads. Plain functions over a
//! connection (or transaction); the store thread decides when they run and commit.

use super::{EventsPage, IngestCounts, NewBatch, Stats, StoreError, StoredConsent, StoredEvent};
use rusqlite::{Connection, OptionalExtension};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

const DUPLICATES: &str = "duplicates";
const REFUSED: &str = "refused";
const REJECTED_PREFIX: &str = "rejected:";

fn int(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Sqlite(format!("{n} does not fit an integer column")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Inserts a batch and its events; an event id already stored is ignored and counted as a
/// duplicate. Runs inside the caller's transaction or savepoint.
pub fn insert_batch(conn: &Connection, batch: &NewBatch) -> Result<IngestCounts, StoreError> {
    conn.prepare_cached(
        "INSERT INTO batches
            (batch_id, environment, received_at_ms, sent_at_ms, sdk_name, sdk_version, consent_state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        &batch.batch_id,
        &batch.environment,
        int(batch.received_at_ms)?,
        int(batch.sent_at_ms)?,
        &batch.sdk_name,
        &batch.sdk_version,
        &batch.consent_state,
    ))?;
    let batch_seq = conn.last_insert_rowid();
    // `ON CONFLICT(event_id) DO NOTHING` is INSERT OR IGNORE narrowed to the one constraint
    // that means "already stored": any other violation is still an error.
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events
            (event_id, batch_seq, type, name, timestamp_ms, purposes, anonymous_id, user_id,
             properties, page)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(event_id) DO NOTHING",
    )?;
    let mut insert_consent = conn.prepare_cached(
        "INSERT INTO consent_changes (event_id, anonymous_id, timestamp_ms, current, previous)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut counts = IngestCounts::default();
    for event in &batch.events {
        let inserted = insert_event.execute((
            &event.event_id,
            batch_seq,
            event.kind,
            &event.name,
            int(event.timestamp_ms)?,
            &event.purposes,
            &event.anonymous_id,
            &event.user_id,
            &event.properties,
            &event.page,
        ))?;
        if inserted == 0 {
            counts.duplicates += 1;
            continue;
        }
        counts.stored += 1;
        if let Some((current, previous)) = &event.consent {
            insert_consent.execute((
                &event.event_id,
                &event.anonymous_id,
                int(event.timestamp_ms)?,
                current,
                previous,
            ))?;
        }
    }
    add_counter(conn, DUPLICATES, counts.duplicates)?;
    add_counter(conn, REFUSED, batch.refused)?;
    Ok(counts)
}

fn add_counter(conn: &Connection, name: &str, n: u64) -> Result<(), StoreError> {
    if n > 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        )?
        .execute((name, int(n)?))?;
    }
    Ok(())
}

/// Adds rejected-request counts by status.
pub fn add_rejected(conn: &Connection, by_status: &BTreeMap<u16, u64>) -> Result<(), StoreError> {
    for (status, n) in by_status {
        add_counter(conn, &format!("{REJECTED_PREFIX}{status}"), *n)?;
    }
    Ok(())
}

/// Deletes all stored data. Sequence numbers keep growing, so old cursors stay valid.
pub fn reset(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "DELETE FROM consent_changes;
         DELETE FROM events;
         DELETE FROM batches;
         DELETE FROM counters;",
    )?;
    Ok(())
}

fn raw(text: String) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(text)
        .map_err(|e| StoreError::Sqlite(format!("stored JSON is corrupt: {e}")))
}

/// Events after `since`, oldest first.
pub fn events(conn: &Connection, since: i64, limit: u32) -> Result<EventsPage, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT e.seq, e.event_id, b.batch_id, b.received_at_ms, e.type, e.name, e.timestamp_ms,
                e.purposes, e.anonymous_id, e.user_id, e.properties, e.page,
                c.current, c.previous
         FROM events e
         JOIN batches b ON b.seq = e.batch_seq
         LEFT JOIN consent_changes c ON c.event_id = e.event_id
         WHERE e.seq > ?1
         ORDER BY e.seq
         LIMIT ?2",
    )?;
    let mut rows = statement.query((since, limit))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let current: Option<String> = row.get(12)?;
        let previous: Option<String> = row.get(13)?;
        let consent = match (current, previous) {
            (Some(current), Some(previous)) => Some(StoredConsent {
                current: raw(current)?,
                previous: raw(previous)?,
            }),
            _ => None,
        };
        events.push(StoredEvent {
            seq: row.get(0)?,
            event_id: row.get(1)?,
            batch_id: row.get(2)?,
            received_at: row.get(3)?,
            kind: row.get(4)?,
            name: row.get(5)?,
            timestamp_unixtime_ms: row.get(6)?,
            purposes: raw(row.get(7)?)?,
            anonymous_id: row.get(8)?,
            user_id: row.get(9)?,
            properties: raw(row.get(10)?)?,
            page: row.get::<_, Option<String>>(11)?.map(raw).transpose()?,
            consent,
        });
    }
    let next_since = events.last().map_or(since, |e| e.seq);
    Ok(EventsPage { events, next_since })
}

/// What is stored and counted.
pub fn stats(conn: &Connection) -> Result<Stats, StoreError> {
    let (batches, events, consent_changes): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM batches),
                (SELECT COUNT(*) FROM events),
                (SELECT COUNT(*) FROM consent_changes)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let counter = |name: &str| -> Result<u64, StoreError> {
        let value: Option<i64> = conn
            .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        Ok(value.map_or(0, count))
    };
    let mut rejected_requests = BTreeMap::new();
    let mut statement =
        conn.prepare_cached("SELECT name, value FROM counters WHERE name LIKE 'rejected:%'")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let value: i64 = row.get(1)?;
        if let Some(status) = name.strip_prefix(REJECTED_PREFIX) {
            rejected_requests.insert(status.to_owned(), count(value));
        }
    }
    Ok(Stats {
        batches: count(batches),
        events: count(events),
        duplicates: counter(DUPLICATES)?,
        refused: counter(REFUSED)?,
        consent_changes: count(consent_changes),
        rejected_requests,
    })
}
