//! The SQL: storing a batch, counters, reset, and the two reads. Plain functions over a
//! connection (or transaction); the store thread decides when they run and commit.

use super::sealed::{aad, Codec, SealedBatch};
use super::sql::Connection;
use super::sql::Value;
use super::{EventsPage, IngestCounts, Stats, StoreError, StoredConsent, StoredEvent};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

const BATCHES: &str = "batches";
const EVENTS: &str = "events";
const CONSENT_CHANGES: &str = "consent_changes";
const DUPLICATES: &str = "duplicates";
const REFUSED: &str = "refused";
const REJECTED_PREFIX: &str = "rejected:";
const SUPPRESSED: &str = "suppressed";

fn int(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::Database(format!("{n} does not fit an integer column")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Inserts a sealed batch and its events; an event id already stored is ignored and counted
/// as a duplicate. Runs inside the caller's transaction or savepoint.
pub fn insert_batch(conn: &Connection, sealed: &SealedBatch) -> Result<IngestCounts, StoreError> {
    insert(conn, sealed, true)
}

/// Inserts a batch as a collector before schema 6 did: no suppression list, no identity links
/// (for the tests of older files).
#[cfg(test)]
pub fn insert_batch_before_v6(
    conn: &Connection,
    sealed: &SealedBatch,
) -> Result<IngestCounts, StoreError> {
    insert(conn, sealed, false)
}

fn insert(
    conn: &Connection,
    sealed: &SealedBatch,
    subject_rights: bool,
) -> Result<IngestCounts, StoreError> {
    let batch = &sealed.batch;
    let key_id = sealed.key_id.as_deref();
    let batch_seq: i64 = conn.prepare_cached(
        "INSERT INTO batches
            (batch_id, environment, received_at_ms, sent_at_ms, sdk_name, sdk_version, consent_state,
             key_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         RETURNING seq",
    )?
    .query_row((
        &batch.batch_id,
        &batch.environment,
        int(batch.received_at_ms)?,
        int(batch.sent_at_ms)?,
        &batch.sdk_name,
        &batch.sdk_version,
        &sealed.consent_state,
        key_id,
    ), |row| row.get(0))?;
    // `ON CONFLICT(event_id) DO NOTHING` is INSERT OR IGNORE narrowed to the one constraint
    // that means "already stored": any other violation is still an error.
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events
            (event_id, batch_seq, type, name, timestamp_ms, purposes, anonymous_id, user_id,
             properties, page, key_id, anonymous_id_index, user_id_index)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(event_id) DO NOTHING",
    )?;
    let mut insert_consent = conn.prepare_cached(
        "INSERT INTO consent_changes
            (event_id, anonymous_id, timestamp_ms, current, previous, key_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut insert_link = subject_rights
        .then(|| {
            conn.prepare_cached(
                "INSERT INTO identity_links
            (anonymous_id_index, user_id_index, event_id, environment, anonymous_id, user_id,
             key_id, first_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(anonymous_id_index, user_id_index) DO NOTHING",
            )
        })
        .transpose()?;
    // One look at an empty list spares every event its two lookups.
    let any_suppressed = subject_rights
        && conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM suppressions)")?
            .query_row((), |row| row.get::<bool>(0))?;
    let mut counts = IngestCounts::default();
    let mut consent_changes = 0;
    for event in &sealed.events {
        // Suppressed identities are dropped before anything of them is stored.
        if any_suppressed
            && super::subjects::is_suppressed(
                conn,
                event.anonymous_id_index.as_deref(),
                event.user_id_index.as_deref(),
            )?
        {
            counts.suppressed += 1;
            continue;
        }
        let inserted = insert_event.execute(super::sql::params![
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
            key_id,
            &event.anonymous_id_index,
            &event.user_id_index,
        ])?;
        if inserted == 0 {
            counts.duplicates += 1;
            continue;
        }
        counts.stored += 1;
        if let (Some(insert_link), Some([anonymous_id, user_id]), Some(a), Some(u)) = (
            insert_link.as_mut(),
            &event.link,
            &event.anonymous_id_index,
            &event.user_id_index,
        ) {
            insert_link.execute(super::sql::params![
                a,
                u,
                &event.event_id,
                &batch.environment,
                anonymous_id,
                user_id,
                key_id,
                int(batch.received_at_ms)?,
            ])?;
        }
        if let Some([anonymous_id, current, previous]) = &event.consent {
            consent_changes += 1;
            insert_consent.execute((
                &event.event_id,
                anonymous_id,
                int(event.timestamp_ms)?,
                current,
                previous,
                key_id,
            ))?;
        }
    }
    // What is stored is counted as it is stored, in one statement: `stats` reads a few counter
    // rows instead of counting every row on the store thread.
    conn.prepare_cached(
        "INSERT INTO counters (name, value)
         VALUES (?1, 1), (?2, ?3), (?4, ?5), (?6, ?7), (?8, ?9), (?10, ?11)
         ON CONFLICT(name) DO UPDATE SET value = counters.value + excluded.value",
    )?
    .execute(super::sql::params![
        BATCHES,
        EVENTS,
        int(counts.stored)?,
        CONSENT_CHANGES,
        consent_changes,
        DUPLICATES,
        int(counts.duplicates)?,
        REFUSED,
        int(batch.refused)?,
        SUPPRESSED,
        int(counts.suppressed)?,
    ])?;
    Ok(counts)
}

fn add_counter(conn: &Connection, name: &str, n: u64) -> Result<(), StoreError> {
    if n > 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = counters.value + excluded.value",
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

pub(super) fn raw(text: String) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(text)
        .map_err(|e| StoreError::Database(format!("stored JSON is corrupt: {e}")))
}

pub(super) const EVENT_COLUMNS: &str =
    "e.seq, e.event_id, b.batch_id, b.received_at_ms, e.type, e.name,
    e.timestamp_ms, e.purposes, e.anonymous_id, e.user_id, e.properties, e.page, e.key_id,
    c.current, c.previous, c.key_id
    FROM events e
    JOIN batches b ON b.seq = e.batch_seq
    LEFT JOIN consent_changes c ON c.event_id = e.event_id";

/// Events after `since`, oldest first.
pub fn events(
    conn: &Connection,
    since: i64,
    limit: u32,
    codec: &Codec,
) -> Result<EventsPage, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query((since, limit))?;
    let events = page_of(&mut rows, codec)?;
    let next_since = events.last().map_or(since, |e| e.seq);
    Ok(EventsPage { events, next_since })
}

/// Events of one anonymous id after `since`, oldest first, found through its keyed-hash index
/// (every key's, during a rotation).
pub fn events_of_anonymous_id(
    conn: &Connection,
    anonymous_id: &str,
    since: i64,
    limit: u32,
    codec: &Codec,
) -> Result<EventsPage, StoreError> {
    let indexes = codec.indexes(anonymous_id);
    let marks = vec!["?"; indexes.len()].join(", ");
    let sql = format!(
        "SELECT {EVENT_COLUMNS} WHERE e.anonymous_id_index IN ({marks}) AND e.seq > ? ORDER BY e.seq LIMIT ?"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut params: Vec<Value> = indexes.into_iter().map(Value::Blob).collect();
    params.push(Value::Integer(since));
    params.push(Value::Integer(i64::from(limit)));
    let mut rows = statement.query(super::sql::params_from_iter(params))?;
    let events = page_of(&mut rows, codec)?;
    let next_since = events.last().map_or(since, |e| e.seq);
    Ok(EventsPage { events, next_since })
}

/// The most bytes of event content (properties, page and consent texts) one page holds; a page
/// stops at the event that passes it (so it always holds at least one), and `next_since`
/// continues from there. A page is decrypted on the store thread that also commits ingestion:
/// this bounds the time and memory one read takes, whatever `limit` says.
pub const MAX_PAGE_CONTENT_BYTES: usize = 4 * 1024 * 1024;

/// Reads events off `rows` until they end or hold [`MAX_PAGE_CONTENT_BYTES`].
pub(super) fn page_of(
    rows: &mut super::sql::Rows,
    codec: &Codec,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        let event = stored_event(row, codec)?;
        bytes += event.properties.get().len()
            + event.page.as_ref().map_or(0, |p| p.get().len())
            + event
                .consent
                .as_ref()
                .map_or(0, |c| c.current.get().len() + c.previous.get().len());
        events.push(event);
        if bytes >= MAX_PAGE_CONTENT_BYTES {
            break;
        }
    }
    Ok(events)
}

pub(super) fn stored_event(
    row: &super::sql::Row<'_>,
    codec: &Codec,
) -> Result<StoredEvent, StoreError> {
    let id: String = row.get(1)?;
    let key: Option<String> = row.get(12)?;
    let key = key.as_deref();
    let consent_key: Option<String> = row.get(15)?;
    let consent_key = consent_key.as_deref();
    let current = codec.open_opt(
        consent_key,
        &aad("consent_changes.current", &id),
        row.get(13)?,
    )?;
    let previous = codec.open_opt(
        consent_key,
        &aad("consent_changes.previous", &id),
        row.get(14)?,
    )?;
    let consent = match (current, previous) {
        (Some(current), Some(previous)) => Some(StoredConsent {
            current: raw(current)?,
            previous: raw(previous)?,
        }),
        _ => None,
    };
    Ok(StoredEvent {
        seq: row.get(0)?,
        batch_id: row.get(2)?,
        received_at: row.get(3)?,
        kind: row.get(4)?,
        name: row.get(5)?,
        timestamp_unixtime_ms: row.get(6)?,
        purposes: raw(row.get(7)?)?,
        anonymous_id: codec.open_opt(key, &aad("events.anonymous_id", &id), row.get(8)?)?,
        user_id: codec.open_opt(key, &aad("events.user_id", &id), row.get(9)?)?,
        properties: raw(codec.open(key, &aad("events.properties", &id), row.get(10)?)?)?,
        page: codec
            .open_opt(key, &aad("events.page", &id), row.get(11)?)?
            .map(raw)
            .transpose()?,
        consent,
        event_id: id,
    })
}

/// What is stored and counted: counter rows only, whatever the number of events.
pub fn stats(conn: &Connection) -> Result<Stats, StoreError> {
    let mut stats = Stats::default();
    let mut statement = conn.prepare_cached("SELECT name, value FROM counters")?;
    let mut rows = statement.query(())?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let value = count(row.get(1)?);
        match name.as_str() {
            BATCHES => stats.batches = value,
            EVENTS => stats.events = value,
            CONSENT_CHANGES => stats.consent_changes = value,
            DUPLICATES => stats.duplicates = value,
            REFUSED => stats.refused = value,
            SUPPRESSED => stats.suppressed = value,
            other => {
                if let Some(status) = other.strip_prefix(REJECTED_PREFIX) {
                    stats.rejected_requests.insert(status.to_owned(), value);
                }
            }
        }
    }
    Ok(stats)
}
