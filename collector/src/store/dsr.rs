//! The SQL of data-subject requests: creating one (idempotent by `subject_request_id`), reading
//! it with its callbacks, cancelling it, the worker's claim (an `in_progress` request is resumed
//! first, so a crash never loses one), completing it, the callback outbox with every attempt,
//! and exports.
//!
//! Every status change and the callbacks it owes are written in one transaction (an outbox):
//! a status is never changed without its callbacks, nor a callback queued for a change that
//! did not commit.

use super::sealed::{aad, Codec};
use super::sql::Value;
use super::sql::{Connection, Dialect, OptionalExtension};
use super::StoreError;
use serde::Serialize;
use std::collections::BTreeSet;

/// A request's status, as the OpenDSR specification names them (section 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Received and well formed.
    Pending,
    /// Being fulfilled.
    InProgress,
    /// Fulfilled.
    Completed,
    /// Cancelled while pending.
    Cancelled,
}

impl Status {
    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    /// The status named `text`, as stored.
    pub fn parse(text: &str) -> Result<Status, StoreError> {
        match text {
            "pending" => Ok(Status::Pending),
            "in_progress" => Ok(Status::InProgress),
            "completed" => Ok(Status::Completed),
            "cancelled" => Ok(Status::Cancelled),
            other => Err(StoreError::Database(format!(
                "unknown request status {other}"
            ))),
        }
    }
}

/// A request to store.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// `subject_request_id`.
    pub id: String,
    /// `erasure`, `access` or `portability`.
    pub kind: String,
    /// `opendsr` (a controller) or `intake` (a visitor's browser).
    pub origin: String,
    /// `gdpr` or `ccpa`.
    pub regulation: String,
    /// The controller's id in this processor (the token's name).
    pub controller_id: String,
    /// `submitted_time`, as sent (RFC 3339).
    pub submitted_time: String,
    /// When it was received.
    pub received_at_ms: i64,
    /// When it is expected to be fulfilled.
    pub expected_at_ms: i64,
    /// SHA-256 of the request body, to tell a retry from a different request with the same id.
    pub request_hash: String,
    /// The ids it names (user ids and anonymous ids), resolved from its identities.
    pub ids: Vec<String>,
    /// Where to send status callbacks.
    pub callback_urls: Vec<String>,
    /// SHA-256 of the secret that reads its status (intake requests).
    pub status_secret_hash: Option<String>,
}

/// A stored request.
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    /// `subject_request_id`.
    pub id: String,
    /// Its type.
    pub kind: String,
    /// Who made it.
    pub origin: String,
    /// Its regulation.
    pub regulation: String,
    /// Its status.
    pub status: Status,
    /// The controller's id.
    pub controller_id: String,
    /// As submitted.
    pub submitted_time: String,
    /// When received.
    pub received_at_ms: i64,
    /// When expected done.
    pub expected_at_ms: i64,
    /// Last status change.
    pub updated_at_ms: i64,
    /// The body's SHA-256.
    #[serde(skip)]
    pub request_hash: String,
    /// Its callback URLs.
    pub callback_urls: Vec<String>,
    /// Results found (exports: lines; erasure: events deleted).
    pub results_count: Option<i64>,
    /// The export's download token (access and portability, once completed).
    #[serde(skip)]
    pub results_token: Option<String>,
    /// SHA-256 of the status secret (intake).
    #[serde(skip)]
    pub status_secret_hash: Option<String>,
    /// How many times a worker claimed it (more than 1 only after a crash).
    pub claims: i64,
}

/// A request in one user's view.
#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    /// Its id.
    pub id: String,
    /// Its type.
    pub kind: String,
    /// Its status.
    pub status: Status,
    /// Who made it.
    pub origin: String,
    /// When received.
    pub received_at_ms: i64,
    /// Last status change.
    pub updated_at_ms: i64,
}

/// One callback and its attempts.
#[derive(Clone, Debug, Serialize)]
pub struct Callback {
    /// Its outbox position.
    pub seq: i64,
    /// The URL.
    pub url: String,
    /// The status it reports.
    pub request_status: String,
    /// `pending`, `delivered` or `failed` (attempts spent).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_at_ms: i64,
    /// Every attempt: when, and how it ended.
    pub history: Vec<Attempt>,
}

/// One delivery attempt.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// When.
    pub at_ms: i64,
    /// `202`, `500`, `connect: …`.
    pub outcome: String,
}

/// A callback due for delivery.
#[derive(Clone, Debug)]
pub struct DueCallback {
    /// Its outbox position.
    pub seq: i64,
    /// Its request.
    pub request_id: String,
    /// The URL.
    pub url: String,
    /// The body to sign and send.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// What creating a request did.
#[derive(Clone, Debug)]
pub enum Created {
    /// A new request.
    New(Request),
    /// The same request again (same id, same body): the stored one.
    Again(Request),
    /// A different request with an id already used.
    Conflict,
}

const REQUEST_COLUMNS: &str = "id, kind, origin, regulation, status, controller_id,
    submitted_time, received_at_ms, expected_at_ms, updated_at_ms, request_hash, callback_urls,
    results_count, results_token, status_secret_hash, claims, key_id";

fn request_from(row: &super::sql::Row<'_>, codec: &Codec) -> Result<Request, StoreError> {
    let id: String = row.get(0)?;
    let status: String = row.get(4)?;
    let urls: String = row.get(11)?;
    let key: Option<String> = row.get(16)?;
    Ok(Request {
        kind: row.get(1)?,
        origin: row.get(2)?,
        regulation: row.get(3)?,
        status: Status::parse(&status)?,
        controller_id: row.get(5)?,
        submitted_time: row.get(6)?,
        received_at_ms: row.get(7)?,
        expected_at_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
        request_hash: row.get(10)?,
        callback_urls: serde_json::from_str(&urls)
            .map_err(|e| StoreError::Database(format!("stored callback URLs: {e}")))?,
        results_count: row.get(12)?,
        results_token: codec.open_opt(
            key.as_deref(),
            &aad("dsr_requests.results_token", &id),
            row.get(13)?,
        )?,
        status_secret_hash: row.get(14)?,
        claims: row.get(15)?,
        id,
    })
}

/// The request with this id.
pub fn get(conn: &Connection, codec: &Codec, id: &str) -> Result<Option<Request>, StoreError> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM dsr_requests WHERE id = ?1");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([id])?;
    match rows.next()? {
        Some(row) => Ok(Some(request_from(row, codec)?)),
        None => Ok(None),
    }
}

/// The ids a request names (empty once an erasure has completed: they are gone with the data).
pub fn ids_of(conn: &Connection, codec: &Codec, id: &str) -> Result<Vec<String>, StoreError> {
    let (sealed, key): (Value, Option<String>) = conn.query_row(
        "SELECT identities, key_id FROM dsr_requests WHERE id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let text = codec.open(key.as_deref(), &aad("dsr_requests.identities", id), sealed)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Database(format!("stored identities: {e}")))
}

/// Stores a new request and queues its `pending` callbacks; the same request again is answered
/// with the stored one.
pub fn create(
    conn: &Connection,
    codec: &Codec,
    request: &NewRequest,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<Created, StoreError> {
    if let Some(existing) = get(conn, codec, &request.id)? {
        return Ok(if existing.request_hash == request.request_hash {
            Created::Again(existing)
        } else {
            Created::Conflict
        });
    }
    let ids = serde_json::to_string(&request.ids)
        .map_err(|e| StoreError::Database(format!("cannot encode identities: {e}")))?;
    let urls = serde_json::to_string(&request.callback_urls)
        .map_err(|e| StoreError::Database(format!("cannot encode callback URLs: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO dsr_requests
            (id, kind, origin, regulation, status, controller_id, submitted_time, received_at_ms,
             expected_at_ms, updated_at_ms, request_hash, identities, callback_urls,
             status_secret_hash, key_id)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?7, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(super::sql::params![
        &request.id,
        &request.kind,
        &request.origin,
        &request.regulation,
        &request.controller_id,
        &request.submitted_time,
        request.received_at_ms,
        request.expected_at_ms,
        &request.request_hash,
        codec.seal(&aad("dsr_requests.identities", &request.id), &ids)?,
        urls,
        &request.status_secret_hash,
        codec.key_id(),
    ])?;
    let mut link = conn.prepare_cached(
        "INSERT INTO dsr_identities (request_id, identity_index) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
    )?;
    for id in &request.ids {
        for index in codec.indexes(id) {
            link.execute(super::sql::params![&request.id, index])?;
        }
    }
    let stored = get(conn, codec, &request.id)?
        .ok_or_else(|| StoreError::Database("the new request is not there".to_owned()))?;
    queue_callbacks(conn, codec, &stored, request.received_at_ms, callback_body)?;
    Ok(Created::New(stored))
}

/// Queues one callback per URL for the request's current status.
fn queue_callbacks(
    conn: &Connection,
    codec: &Codec,
    request: &Request,
    now_ms: i64,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO dsr_callbacks
            (request_id, url, request_status, body, state, attempts, next_at_ms, key_id)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6)",
    )?;
    for url in &request.callback_urls {
        let body = callback_body(request, url);
        insert.execute(super::sql::params![
            &request.id,
            url,
            request.status.as_str(),
            codec.seal(&aad("dsr_callbacks.body", &request.id), &body)?,
            now_ms,
            codec.key_id(),
        ])?;
    }
    Ok(())
}

fn set_status(
    conn: &Connection,
    codec: &Codec,
    id: &str,
    status: Status,
    now_ms: i64,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<Request, StoreError> {
    conn.prepare_cached("UPDATE dsr_requests SET status = ?2, updated_at_ms = ?3 WHERE id = ?1")?
        .execute((id, status.as_str(), now_ms))?;
    let request = get(conn, codec, id)?
        .ok_or_else(|| StoreError::Database(format!("request {id} vanished")))?;
    queue_callbacks(conn, codec, &request, now_ms, callback_body)?;
    Ok(request)
}

/// What a cancellation did.
#[derive(Clone, Debug)]
pub enum Cancelled {
    /// Cancelled now.
    Done(Request),
    /// Not pending any more: its status.
    TooLate(Request),
    /// No such request.
    NotFound,
}

/// Cancels a pending request.
pub fn cancel(
    conn: &Connection,
    codec: &Codec,
    id: &str,
    now_ms: i64,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<Cancelled, StoreError> {
    match get(conn, codec, id)? {
        None => Ok(Cancelled::NotFound),
        Some(request) if request.status != Status::Pending => Ok(Cancelled::TooLate(request)),
        Some(_) => Ok(Cancelled::Done(set_status(
            conn,
            codec,
            id,
            Status::Cancelled,
            now_ms,
            callback_body,
        )?)),
    }
}

/// The advisory-lock class (first key) of claimed requests on PostgreSQL: ASCII "dsr".
const CLAIM_LOCK_CLASS: i32 = 0x0064_7372;

/// Takes the claim lock of request `seq` for this connection's session, if no other session
/// holds it. A session lock outlives transactions and ends with the connection: an instance
/// that dies releases its claims at once, and one that lives keeps them until it finishes.
fn try_claim_lock(conn: &Connection, seq: i64) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT pg_try_advisory_lock(?1, CAST(?2 AS INTEGER))",
        (CLAIM_LOCK_CLASS, seq % i64::from(i32::MAX)),
        |row| row.get(0),
    )?)
}

/// Ends this session's claim of request `id` (PostgreSQL; nothing to do on SQLite).
pub fn release_claim(conn: &Connection, id: &str) -> Result<(), StoreError> {
    if conn.dialect() == Dialect::Postgres {
        conn.query_row(
            "SELECT pg_advisory_unlock(?1, CAST(seq % 2147483647 AS INTEGER)) FROM dsr_requests WHERE id = ?2",
            (CLAIM_LOCK_CLASS, id),
            |_| Ok(()),
        )
        .optional()?;
    }
    Ok(())
}

/// The request to work on: on SQLite (one collector on the file) one left `in_progress` by a
/// crash, else the oldest pending one. On PostgreSQL, shared by instances, an `in_progress`
/// one is taken only if no live instance holds its claim lock (its claimant died), and a
/// pending one is read `FOR UPDATE SKIP LOCKED` and locked for this instance: no two
/// instances ever work on one request at a time.
fn next_request(conn: &Connection) -> Result<Option<(String, String)>, StoreError> {
    let pick = |sql: &str| -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut statement = conn.prepare_cached(sql)?;
        let rows = statement.query_map((), |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    match conn.dialect() {
        Dialect::Sqlite => {
            for status in ["in_progress", "pending"] {
                let first = pick(&format!(
                    "SELECT seq, id, status FROM dsr_requests WHERE status = '{status}' ORDER BY seq LIMIT 1"
                ))?;
                if let Some((_, id, status)) = first.into_iter().next() {
                    return Ok(Some((id, status)));
                }
            }
            Ok(None)
        }
        Dialect::Postgres => {
            let stuck = pick(
                "SELECT seq, id, status FROM dsr_requests WHERE status = 'in_progress' ORDER BY seq",
            )?;
            for (seq, id, status) in stuck {
                if try_claim_lock(conn, seq)? {
                    return Ok(Some((id, status)));
                }
            }
            let pending = pick(
                "SELECT seq, id, status FROM dsr_requests WHERE status = 'pending'
                 ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
            )?;
            for (seq, id, status) in pending {
                if try_claim_lock(conn, seq)? {
                    return Ok(Some((id, status)));
                }
            }
            Ok(None)
        }
    }
}

/// The next request to work on (see `next_request`); a pending one becomes `in_progress`
/// (with its callbacks). `None` when there is none.
pub fn claim(
    conn: &Connection,
    codec: &Codec,
    now_ms: i64,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<Option<Request>, StoreError> {
    let Some((id, status)) = next_request(conn)? else {
        return Ok(None);
    };
    conn.prepare_cached("UPDATE dsr_requests SET claims = claims + 1 WHERE id = ?1")?
        .execute([&id])?;
    if status == "pending" {
        return set_status(conn, codec, &id, Status::InProgress, now_ms, callback_body).map(Some);
    }
    get(conn, codec, &id)
}

/// Marks an in-progress request completed with its result count (and export token), clears
/// the identities of a completed erasure (they are erased with the data), and queues the
/// `completed` callbacks. `false` if it was not in progress (done already: nothing changes).
pub fn complete(
    conn: &Connection,
    codec: &Codec,
    id: &str,
    results_count: i64,
    results_token: Option<&str>,
    now_ms: i64,
    callback_body: &dyn Fn(&Request, &str) -> String,
) -> Result<bool, StoreError> {
    // Inside the write transaction (exclusive until COMMIT): no instance can take the request
    // between this and the status change.
    release_claim(conn, id)?;
    let Some(request) = get(conn, codec, id)? else {
        return Ok(false);
    };
    if request.status != Status::InProgress {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE dsr_requests SET results_count = ?2, results_token = ?3 WHERE id = ?1",
    )?
    .execute(super::sql::params![
        id,
        results_count,
        codec.seal_opt(&aad("dsr_requests.results_token", id), results_token)?,
    ])?;
    if request.kind == "erasure" {
        conn.prepare_cached("UPDATE dsr_requests SET identities = ?2 WHERE id = ?1")?
            .execute(super::sql::params![
                id,
                codec.seal(&aad("dsr_requests.identities", id), "[]")?
            ])?;
    }
    set_status(conn, codec, id, Status::Completed, now_ms, callback_body)?;
    Ok(true)
}

/// The callbacks of a request, with every attempt.
pub fn callbacks_of(conn: &Connection, id: &str) -> Result<Vec<Callback>, StoreError> {
    let mut out = Vec::new();
    let mut statement = conn.prepare_cached(
        "SELECT seq, url, request_status, state, attempts, next_at_ms FROM dsr_callbacks
         WHERE request_id = ?1 ORDER BY seq",
    )?;
    let mut rows = statement.query([id])?;
    while let Some(row) = rows.next()? {
        out.push(Callback {
            seq: row.get(0)?,
            url: row.get(1)?,
            request_status: row.get(2)?,
            state: row.get(3)?,
            attempts: row.get(4)?,
            next_at_ms: row.get(5)?,
            history: Vec::new(),
        });
    }
    drop(rows);
    let mut attempts = conn.prepare_cached(
        "SELECT at_ms, outcome FROM dsr_callback_attempts WHERE callback_seq = ?1 ORDER BY seq",
    )?;
    for callback in &mut out {
        let mut rows = attempts.query([callback.seq])?;
        while let Some(row) = rows.next()? {
            callback.history.push(Attempt {
                at_ms: row.get(0)?,
                outcome: row.get(1)?,
            });
        }
    }
    Ok(out)
}

/// Callbacks due at `now_ms`, oldest first, at most `limit`.
pub fn due_callbacks(
    conn: &Connection,
    codec: &Codec,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<DueCallback>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, request_id, url, body, key_id, attempts FROM dsr_callbacks
         WHERE state = 'pending' AND next_at_ms <= ?1 ORDER BY next_at_ms, seq LIMIT ?2",
    )?;
    let mut rows = statement.query((now_ms, limit))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let request_id: String = row.get(1)?;
        let key: Option<String> = row.get(4)?;
        out.push(DueCallback {
            seq: row.get(0)?,
            url: row.get(2)?,
            body: codec.open(
                key.as_deref(),
                &aad("dsr_callbacks.body", &request_id),
                row.get(3)?,
            )?,
            attempts: row.get(5)?,
            request_id,
        });
    }
    Ok(out)
}

/// Records one delivery attempt: delivered, or due again at `retry_at_ms` (`None`: attempts
/// spent, failed for good).
pub fn record_attempt(
    conn: &Connection,
    seq: i64,
    at_ms: i64,
    outcome: &str,
    delivered: bool,
    retry_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dsr_callback_attempts (callback_seq, at_ms, outcome) VALUES (?1, ?2, ?3)",
    )?
    .execute((seq, at_ms, outcome))?;
    let (state, next) = match (delivered, retry_at_ms) {
        (true, _) => ("delivered", at_ms),
        (false, Some(next)) => ("pending", next),
        (false, None) => ("failed", at_ms),
    };
    conn.prepare_cached(
        "UPDATE dsr_callbacks SET state = ?2, attempts = attempts + 1, next_at_ms = ?3
         WHERE seq = ?1",
    )?
    .execute((seq, state, next))?;
    Ok(())
}

/// The requests naming any of these indexes.
pub fn requests_of(
    conn: &Connection,
    indexes: &BTreeSet<Vec<u8>>,
) -> Result<Vec<RequestSummary>, StoreError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut statement = conn.prepare_cached(
        "SELECT r.id, r.kind, r.status, r.origin, r.received_at_ms, r.updated_at_ms
         FROM dsr_identities d JOIN dsr_requests r ON r.id = d.request_id
         WHERE d.identity_index = ?1",
    )?;
    for index in indexes {
        let mut rows = statement.query([index])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            if !seen.insert(id.clone()) {
                continue;
            }
            let status: String = row.get(2)?;
            out.push(RequestSummary {
                kind: row.get(1)?,
                status: Status::parse(&status)?,
                origin: row.get(3)?,
                received_at_ms: row.get(4)?,
                updated_at_ms: row.get(5)?,
                id,
            });
        }
    }
    out.sort_by_key(|r| r.received_at_ms);
    Ok(out)
}

/// A stored export.
#[derive(Clone, Debug)]
pub struct Export {
    /// Its request.
    pub request_id: String,
    /// Its file (empty once deleted).
    pub file: String,
    /// When it stops being served.
    pub expires_at_ms: i64,
}

/// Records an export under the SHA-256 of its token.
pub fn insert_export(
    conn: &Connection,
    token_hash: &str,
    request_id: &str,
    file: &str,
    now_ms: i64,
    expires_at_ms: i64,
    results_count: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO exports (token_hash, request_id, file, created_at_ms, expires_at_ms,
         results_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(super::sql::params![
        token_hash,
        request_id,
        file,
        now_ms,
        expires_at_ms,
        results_count
    ])?;
    Ok(())
}

/// The export with this token hash.
pub fn export(conn: &Connection, token_hash: &str) -> Result<Option<Export>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT request_id, file, expires_at_ms FROM exports WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |row| {
            Ok(Export {
                request_id: row.get(0)?,
                file: row.get(1)?,
                expires_at_ms: row.get(2)?,
            })
        })
        .optional()?)
}

/// Marks up to `limit` exports expired at `now_ms` as deleted; returns their files (to remove
/// after COMMIT).
pub fn expire_exports(
    conn: &Connection,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let mut files = Vec::new();
    {
        let mut statement = conn.prepare_cached(
            "SELECT token_hash, file FROM exports WHERE expires_at_ms <= ?1 AND file != ''
             LIMIT ?2",
        )?;
        let mut rows = statement.query((now_ms, limit))?;
        let mut hashes = Vec::new();
        while let Some(row) = rows.next()? {
            hashes.push(row.get::<String>(0)?);
            files.push(row.get::<String>(1)?);
        }
        drop(rows);
        let mut clear =
            conn.prepare_cached("UPDATE exports SET file = '' WHERE token_hash = ?1")?;
        for hash in hashes {
            clear.execute([hash])?;
        }
    }
    Ok(files)
}

/// Makes the body of a status callback for a request and one of its URLs.
pub type CallbackBody = std::sync::Arc<dyn Fn(&Request, &str) -> String + Send + Sync>;
