//! The SQL of data subjects' rights over stored events: who an id is linked to, the suppression
//! list, erasure (the one code path of `DELETE /v1/users/{id}` and OpenDSR erasure requests),
//! rectification of traits, and everything held about one id.
//!
//! Ids are never in clear here: every lookup goes through the keyed-hash indexes (every key's,
//! during a rotation), and every query is an index search, never a scan of `events` (test
//! `the_user_view_searches_indexes_and_never_scans_events`).

use super::queries::{raw, EVENT_COLUMNS};
use super::sealed::{aad, Codec};
use super::sql::Connection;
use super::sql::Value;
use super::{StoreError, StoredEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeSet;

/// Counter of events deleted by erasure.
pub const ERASED: &str = "erased";

/// `?, ?, ?` for `n` parameters (at least one, so `IN ()` never happens).
fn marks(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

fn blobs(indexes: &BTreeSet<Vec<u8>>) -> Vec<Value> {
    if indexes.is_empty() {
        // Matches nothing: an index is 32 bytes.
        return vec![Value::Blob(Vec::new())];
    }
    indexes.iter().cloned().map(Value::Blob).collect()
}

/// The indexes an id is known by, and the indexes of the ids linked to it by identify events.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// Indexes the events' `anonymous_id_index` may hold for this subject.
    pub anonymous: BTreeSet<Vec<u8>>,
    /// Indexes the events' `user_id_index` may hold for this subject.
    pub users: BTreeSet<Vec<u8>>,
    /// The index of each id as given (under every key).
    pub own: BTreeSet<Vec<u8>>,
}

/// One identity link: an anonymous id seen with a user id on an identify event.
#[derive(Clone, Debug, Serialize)]
pub struct IdentityLink {
    /// The anonymous id.
    pub anonymous_id: String,
    /// The user id.
    pub user_id: String,
    /// The environment of the batch it came in.
    pub environment: String,
    /// The identify event that made it.
    pub event_id: String,
    /// When it was first stored, Unix milliseconds.
    pub first_seen_ms: i64,
}

const LINKS_BY_USER: &str = "SELECT anonymous_id, user_id, key_id, event_id, environment,
    first_seen_ms, anonymous_id_index, user_id_index FROM identity_links WHERE user_id_index IN";
const LINKS_BY_ANONYMOUS: &str = "SELECT anonymous_id, user_id, key_id, event_id, environment,
    first_seen_ms, anonymous_id_index, user_id_index FROM identity_links WHERE anonymous_id_index IN";

/// The subject named by `ids` (user ids or anonymous ids, both are tried), with the ids linked
/// to them, and the links themselves.
pub fn subject(
    conn: &Connection,
    codec: &Codec,
    ids: &[String],
) -> Result<(Subject, Vec<IdentityLink>), StoreError> {
    subject_with(conn, codec, ids, true)
}

/// The subject named by `ids`; with `follow_links` false, exactly those ids (a visitor's
/// intake request reaches its own anonymous id, and a user id only when it names one).
pub fn subject_with(
    conn: &Connection,
    codec: &Codec,
    ids: &[String],
    follow_links: bool,
) -> Result<(Subject, Vec<IdentityLink>), StoreError> {
    let mut subject = Subject::default();
    for id in ids {
        subject.own.extend(codec.indexes(id));
    }
    subject.anonymous.extend(subject.own.iter().cloned());
    subject.users.extend(subject.own.iter().cloned());
    let mut links = Vec::new();
    let mut seen = BTreeSet::new();
    for sql in [LINKS_BY_USER, LINKS_BY_ANONYMOUS] {
        let params = blobs(&subject.own);
        let sql = format!("{sql} ({})", marks(params.len()));
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(super::sql::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let event_id: String = row.get(3)?;
            let key: Option<String> = row.get(2)?;
            let anonymous_index: Vec<u8> = row.get(6)?;
            let user_index: Vec<u8> = row.get(7)?;
            if follow_links {
                subject.anonymous.insert(anonymous_index.clone());
                subject.users.insert(user_index.clone());
            } else if !(subject.own.contains(&anonymous_index) && subject.own.contains(&user_index))
            {
                continue;
            }
            if !seen.insert((anonymous_index, user_index)) {
                continue;
            }
            links.push(IdentityLink {
                anonymous_id: codec.open(
                    key.as_deref(),
                    &aad("identity_links.anonymous_id", &event_id),
                    row.get(0)?,
                )?,
                user_id: codec.open(
                    key.as_deref(),
                    &aad("identity_links.user_id", &event_id),
                    row.get(1)?,
                )?,
                environment: row.get(4)?,
                first_seen_ms: row.get(5)?,
                event_id,
            });
        }
    }
    Ok((subject, links))
}

/// The subquery of the `seq`s of a subject's events: two index searches, unioned.
fn subject_seqs(subject: &Subject, params: &mut Vec<Value>, since: i64) -> String {
    let anonymous = blobs(&subject.anonymous);
    let users = blobs(&subject.users);
    let sql = format!(
        "SELECT seq FROM events WHERE anonymous_id_index IN ({}) AND seq > ?
         UNION SELECT seq FROM events WHERE user_id_index IN ({}) AND seq > ?",
        marks(anonymous.len()),
        marks(users.len())
    );
    params.extend(anonymous);
    params.push(Value::Integer(since));
    params.extend(users);
    params.push(Value::Integer(since));
    sql
}

/// The SQL and parameters of a page of a subject's events.
fn events_query(subject: &Subject, since: i64, limit: u32) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let seqs = subject_seqs(subject, &mut params, since);
    params.push(Value::Integer(i64::from(limit)));
    (
        format!("SELECT {EVENT_COLUMNS} WHERE e.seq IN ({seqs}) ORDER BY e.seq LIMIT ?"),
        params,
    )
}

/// A page of a subject's events, oldest first.
pub fn subject_events(
    conn: &Connection,
    codec: &Codec,
    subject: &Subject,
    since: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (sql, params) = events_query(subject, since, limit);
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(super::sql::params_from_iter(params))?;
    super::queries::page_of(&mut rows, codec)
}

/// One consent change of a subject.
#[derive(Debug, Serialize)]
pub struct ConsentRecord {
    /// The consent change event.
    pub event_id: String,
    /// When it was captured.
    pub timestamp_unixtime_ms: i64,
    /// The consent after the change.
    pub current: Box<RawValue>,
    /// The consent before it.
    pub previous: Box<RawValue>,
}

fn consent_query(subject: &Subject, limit: u32) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let seqs = subject_seqs(subject, &mut params, 0);
    params.push(Value::Integer(i64::from(limit)));
    (
        format!(
            "SELECT e.event_id, e.timestamp_ms, c.current, c.previous, c.key_id
             FROM events e JOIN consent_changes c ON c.event_id = e.event_id
             WHERE e.seq IN ({seqs}) ORDER BY e.seq LIMIT ?"
        ),
        params,
    )
}

/// A subject's consent history (at most `limit` changes), oldest first.
pub fn consent_history(
    conn: &Connection,
    codec: &Codec,
    subject: &Subject,
    limit: u32,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let (sql, params) = consent_query(subject, limit);
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(super::sql::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let key: Option<String> = row.get(4)?;
        let current = codec.open(
            key.as_deref(),
            &aad("consent_changes.current", &id),
            row.get(2)?,
        )?;
        let previous = codec.open(
            key.as_deref(),
            &aad("consent_changes.previous", &id),
            row.get(3)?,
        )?;
        out.push(ConsentRecord {
            timestamp_unixtime_ms: row.get(1)?,
            current: raw(current)?,
            previous: raw(previous)?,
            event_id: id,
        });
    }
    Ok(out)
}

/// Whether an event with these indexes is suppressed: its anonymous id or user id is on the
/// list, or its anonymous id is linked to a user id that is.
pub fn is_suppressed(
    conn: &Connection,
    anonymous_index: Option<&[u8]>,
    user_index: Option<&[u8]>,
) -> Result<bool, StoreError> {
    if anonymous_index.is_none() && user_index.is_none() {
        return Ok(false);
    }
    let found: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM suppressions WHERE identity_index IN (?1, ?2))
             OR EXISTS(SELECT 1 FROM identity_links l
                       JOIN suppressions s ON s.identity_index = l.user_id_index
                       WHERE l.anonymous_id_index = ?1)",
        )?
        .query_row((anonymous_index, user_index), |row| row.get(0))?;
    Ok(found)
}

/// Puts `identity` on the suppression list; `false` if it was already there.
pub fn suppress(
    conn: &Connection,
    codec: &Codec,
    identity: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if is_listed(conn, codec, identity)? {
        return Ok(false);
    }
    let id = crate::tokens::hex(&codec.index(&format!("suppression:{identity}:{now_ms}")));
    let sealed = codec.seal(&aad("suppressions.identity", &id), identity)?;
    conn.prepare_cached(
        "INSERT INTO suppressions (identity_index, id, identity, key_id, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((codec.index(identity), &id, sealed, codec.key_id(), now_ms))?;
    Ok(true)
}

/// When `identity` was put on the suppression list, if it is on it.
pub fn suppressed_since(
    conn: &Connection,
    codec: &Codec,
    identity: &str,
) -> Result<Option<i64>, StoreError> {
    let indexes = codec.indexes(identity);
    let sql = format!(
        "SELECT MIN(created_at_ms) FROM suppressions WHERE identity_index IN ({})",
        marks(indexes.len())
    );
    let since: Option<i64> = conn.query_row(
        &sql,
        super::sql::params_from_iter(indexes.into_iter().map(Value::Blob)),
        |row| row.get(0),
    )?;
    Ok(since)
}

fn is_listed(conn: &Connection, codec: &Codec, identity: &str) -> Result<bool, StoreError> {
    Ok(suppressed_since(conn, codec, identity)?.is_some())
}

/// Takes `identity` off the suppression list; `false` if it was not on it.
pub fn unsuppress(conn: &Connection, codec: &Codec, identity: &str) -> Result<bool, StoreError> {
    let indexes = codec.indexes(identity);
    let sql = format!(
        "DELETE FROM suppressions WHERE identity_index IN ({})",
        marks(indexes.len())
    );
    let removed = conn.execute(
        &sql,
        super::sql::params_from_iter(indexes.into_iter().map(Value::Blob)),
    )?;
    Ok(removed > 0)
}

/// What one erasure deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Events deleted.
    pub events: u64,
    /// Consent changes deleted.
    pub consent_changes: u64,
    /// Identity links deleted.
    pub identity_links: u64,
    /// Exports deleted (their files are removed once the deletion is committed).
    pub exports: u64,
    /// Batches left without events, deleted with their consent state.
    pub batches: u64,
    /// The export files to remove.
    #[serde(skip)]
    pub files: Vec<String>,
}

/// Erases everything held about `ids` and the ids linked to them: events, consent changes,
/// identity links, exports, and batches left empty. Leaves one tombstone per id (request id,
/// the id's index, time, events deleted). Runs in the caller's transaction.
pub fn erase(
    conn: &Connection,
    codec: &Codec,
    request_id: &str,
    ids: &[String],
    follow_links: bool,
    now_ms: i64,
) -> Result<Erased, StoreError> {
    let (subject, _) = subject_with(conn, codec, ids, follow_links)?;
    let mut erased = Erased::default();
    let mut params = Vec::new();
    let seqs = subject_seqs(&subject, &mut params, 0);
    let sql = format!("SELECT seq, event_id, batch_seq FROM events WHERE seq IN ({seqs})");
    let mut found: Vec<(i64, String, i64)> = Vec::new();
    {
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(super::sql::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            found.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    let mut batches = BTreeSet::new();
    {
        let mut consent = conn.prepare_cached("DELETE FROM consent_changes WHERE event_id = ?1")?;
        let mut event = conn.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
        for (seq, event_id, batch_seq) in &found {
            erased.consent_changes += consent.execute([event_id])? as u64;
            erased.events += event.execute([seq])? as u64;
            batches.insert(*batch_seq);
        }
    }
    {
        let mut empty = conn.prepare_cached(
            "DELETE FROM batches WHERE seq = ?1
             AND NOT EXISTS (SELECT 1 FROM events WHERE batch_seq = ?1)",
        )?;
        for batch in batches {
            erased.batches += empty.execute([batch])? as u64;
        }
    }
    for column in ["anonymous_id_index", "user_id_index"] {
        let set = if column == "user_id_index" {
            &subject.users
        } else {
            &subject.anonymous
        };
        let params = blobs(set);
        let sql = format!(
            "DELETE FROM identity_links WHERE {column} IN ({})",
            marks(params.len())
        );
        erased.identity_links += conn.execute(&sql, super::sql::params_from_iter(params))? as u64;
    }
    // Exports made for any of the ids erased, linked ones included.
    let every: BTreeSet<Vec<u8>> = subject.anonymous.union(&subject.users).cloned().collect();
    let params = blobs(&every);
    let sql = format!(
        "SELECT DISTINCT x.token_hash, x.file FROM exports x
         JOIN dsr_identities d ON d.request_id = x.request_id
         WHERE d.identity_index IN ({})",
        marks(params.len())
    );
    let mut exports: Vec<(String, String)> = Vec::new();
    {
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(super::sql::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            exports.push((row.get(0)?, row.get(1)?));
        }
    }
    for (token_hash, file) in exports {
        conn.execute("DELETE FROM exports WHERE token_hash = ?1", [&token_hash])?;
        erased.exports += 1;
        erased.files.push(file);
    }
    // Other finished requests that named the person keep their index rows (pseudonyms, so the
    // user view can still list them) but not the identities themselves (an e-mail in clear
    // under the seal). Pending and in-progress ones keep theirs until they run.
    let params = blobs(&every);
    let sql = format!(
        "SELECT DISTINCT r.id FROM dsr_requests r
         JOIN dsr_identities d ON d.request_id = r.id
         WHERE d.identity_index IN ({}) AND r.status IN ('completed', 'cancelled')",
        marks(params.len())
    );
    let mut finished: Vec<String> = Vec::new();
    {
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(super::sql::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            finished.push(row.get(0)?);
        }
    }
    for id in finished {
        // As `dsr::complete` clears an erasure's own identities: sealed under the current key,
        // which is the row's own outside a rotation.
        conn.execute(
            "UPDATE dsr_requests SET identities = ?2 WHERE id = ?1",
            super::sql::params![
                id,
                codec.seal(&super::sealed::aad("dsr_requests.identities", &id), "[]")?
            ],
        )?;
    }
    let mut tombstone = conn.prepare_cached(
        "INSERT INTO erasures (request_id, identity_hash, at_ms, events_deleted)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let deleted = i64::try_from(erased.events).unwrap_or(i64::MAX);
    for id in ids {
        tombstone.execute((
            request_id,
            crate::tokens::hex(&codec.index(id)),
            now_ms,
            deleted,
        ))?;
    }
    if erased.events > 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = counters.value + excluded.value",
        )?
        .execute((ERASED, deleted))?;
    }
    Ok(erased)
}

/// One erasure tombstone.
#[derive(Clone, Debug, Serialize)]
pub struct Tombstone {
    /// The request (a DSR id, or the API request's id).
    pub request_id: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// How many events it deleted.
    pub events_deleted: i64,
}

/// The tombstones of erasures of `id`.
pub fn tombstones(
    conn: &Connection,
    codec: &Codec,
    id: &str,
) -> Result<Vec<Tombstone>, StoreError> {
    let mut out = Vec::new();
    let mut statement = conn.prepare_cached(
        "SELECT request_id, at_ms, events_deleted FROM erasures WHERE identity_hash = ?1 ORDER BY seq",
    )?;
    for index in codec.indexes(id) {
        let mut rows = statement.query([crate::tokens::hex(&index)])?;
        while let Some(row) = rows.next()? {
            out.push(Tombstone {
                request_id: row.get(0)?,
                at_ms: row.get(1)?,
                events_deleted: row.get(2)?,
            });
        }
    }
    Ok(out)
}

/// Applies `patch` to the traits (properties) of every identify event of user `user_id`: a key
/// with a value sets it, a key with `null` removes it. Returns how many events changed.
pub fn rectify_traits(
    conn: &Connection,
    codec: &Codec,
    user_id: &str,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> Result<u64, StoreError> {
    let indexes = codec.indexes(user_id);
    let sql = format!(
        "SELECT seq, event_id, properties, key_id FROM events
         WHERE user_id_index IN ({}) AND type = 'identify'",
        marks(indexes.len())
    );
    let mut found: Vec<(i64, String, String)> = Vec::new();
    {
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(super::sql::params_from_iter(
            indexes.into_iter().map(Value::Blob),
        ))?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(1)?;
            let key: Option<String> = row.get(3)?;
            let text = codec.open(key.as_deref(), &aad("events.properties", &id), row.get(2)?)?;
            found.push((row.get(0)?, id, text));
        }
    }
    let mut changed = 0;
    for (seq, id, text) in found {
        let mut traits: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| StoreError::Database(format!("stored traits are corrupt: {e}")))?;
        for (name, value) in patch {
            if value.is_null() {
                traits.remove(name);
            } else {
                traits.insert(name.clone(), value.clone());
            }
        }
        let text = serde_json::to_string(&traits)
            .map_err(|e| StoreError::Database(format!("cannot encode traits: {e}")))?;
        // Re-sealed under the current key: every sealed column of the row is re-sealed so the
        // row's one key id stays true.
        let (anonymous, user, page, old_key): (Value, Value, Value, Option<String>) = conn
            .query_row(
                "SELECT anonymous_id, user_id, page, key_id FROM events WHERE seq = ?1",
                [seq],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )?;
        let old_key = old_key.as_deref();
        let anonymous = codec.open_opt(old_key, &aad("events.anonymous_id", &id), anonymous)?;
        let user = codec.open_opt(old_key, &aad("events.user_id", &id), user)?;
        let page = codec.open_opt(old_key, &aad("events.page", &id), page)?;
        conn.execute(
            "UPDATE events SET properties = ?1, anonymous_id = ?2, user_id = ?3, page = ?4,
             key_id = ?5 WHERE seq = ?6",
            super::sql::params![
                codec.seal(&aad("events.properties", &id), &text)?,
                codec.seal_opt(&aad("events.anonymous_id", &id), anonymous.as_deref())?,
                codec.seal_opt(&aad("events.user_id", &id), user.as_deref())?,
                codec.seal_opt(&aad("events.page", &id), page.as_deref())?,
                codec.key_id(),
                seq
            ],
        )?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{DataKey, Keyring};

    /// The plan's lines that read a table whole (a constant row is no table).
    fn scans(plan: &str) -> Vec<&str> {
        plan.lines()
            .filter(|l| l.starts_with("SCAN") && *l != "SCAN CONSTANT ROW")
            .collect()
    }

    fn plan(conn: &Connection, sql: &str, params: Vec<Value>) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = statement
            .query(crate::store::sql::params_from_iter(params))
            .unwrap();
        let mut out = String::new();
        while let Some(row) = rows.next().unwrap() {
            let detail: String = row.get(3).unwrap();
            out.push_str(&detail);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_user_view_searches_indexes_and_never_scans_events() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::Location::Sqlite(dir.path().join("db.sqlite3"))
            .connect()
            .unwrap();
        let codec = Codec::encrypted(Keyring::new(
            DataKey::from_bytes(&[4; 32]).unwrap(),
            Vec::new(),
        ));
        let (subject, _) = subject(&conn, &codec, &["user-1".to_owned()]).unwrap();
        let (events, params) = events_query(&subject, 0, 100);
        let (consent, consent_params) = consent_query(&subject, 100);
        let user = blobs(&subject.own);
        let links_by_user = format!("{LINKS_BY_USER} ({})", marks(user.len()));
        let links_by_anonymous = format!("{LINKS_BY_ANONYMOUS} ({})", marks(user.len()));
        for (name, sql, params) in [
            ("events", events, params),
            ("consent", consent, consent_params),
            ("links by user", links_by_user, user.clone()),
            ("links by anonymous id", links_by_anonymous, user.clone()),
        ] {
            let plan = plan(&conn, &sql, params);
            assert!(scans(&plan).is_empty(), "{name} scans:\n{plan}");
            assert!(plan.contains("USING"), "{name}:\n{plan}");
        }
        let suppressed = plan(
            &conn,
            "SELECT EXISTS(SELECT 1 FROM suppressions WHERE identity_index IN (?1, ?2))
             OR EXISTS(SELECT 1 FROM identity_links l
                       JOIN suppressions s ON s.identity_index = l.user_id_index
                       WHERE l.anonymous_id_index = ?1)",
            vec![Value::Blob(vec![1]), Value::Blob(vec![2])],
        );
        assert!(scans(&suppressed).is_empty(), "{suppressed}");
    }
}
