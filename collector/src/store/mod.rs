//! Durable storage: SQLite by default (one file in the data directory, WAL mode,
//! `synchronous=FULL`), or PostgreSQL shared by several collector instances (synchronous commit
//! on); versioned migrations either way. The queries are written once, over [`sql::Connection`].
//!
//! Database calls block, so they never run on the async runtime. One dedicated thread owns the
//! process's connection and serves every operation, sent as a message over a bounded channel and
//! answered on a oneshot channel ([`Store`] is the async handle). One owner means no connection
//! mutex and no `SQLITE_BUSY` between our own writers, and it allows group commit: the thread
//! takes every batch waiting in the channel, stores each in its own SAVEPOINT inside one
//! transaction, COMMITs once (one fsync), and only then answers them all. Each batch is still
//! atomic, and none is acknowledged before the COMMIT that makes it durable. A full channel
//! makes handlers wait: back-pressure instead of unbounded memory.

mod access;
pub mod console;
mod direct;
pub mod dsr;
pub mod dsr_handle;
mod queries;
pub mod retention;
mod rotation;
mod schema;
mod schema_postgres;
mod sealed;
pub mod sql;
pub mod subject_handle;
pub mod subjects;
mod worker;

pub use direct::Database;
pub use sealed::Codec;

use crate::audit::{AuditEntry, NewAuditEntry};
use crate::tokens::{Principal, TokenRecord};
use sql::Connection;

use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "collector.sqlite3";

/// How many operations may wait for the store thread before handlers wait too.
const CHANNEL_CAPACITY: usize = 256;

/// A storage failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    Database(String),
    /// The database was written by a newer collector.
    NewerSchema {
        /// The schema version in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The store thread has stopped.
    Closed,
    /// The store thread could not be started.
    Thread(String),
    /// A sealed value does not open, or a row names a key that was not given.
    Crypto(String),
    /// The database holds data under keys that were not given.
    WrongKey {
        /// Key ids the database holds data under.
        stored: Vec<String>,
        /// Key ids given (empty with `--insecure-no-encryption`).
        given: Vec<String>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(e) => write!(f, "{e}"),
            StoreError::NewerSchema { found, known } => write!(
                f,
                "the database has schema version {found}, newer than {known}: use a newer collector"
            ),
            StoreError::Closed => f.write_str("the store is closed"),
            StoreError::Thread(e) => write!(f, "cannot start the store thread: {e}"),
            StoreError::Crypto(e) => write!(f, "encryption: {e}"),
            StoreError::WrongKey { stored, given } if given.is_empty() => write!(
                f,
                "the database is encrypted (key ids {}), but no key was given: give --encryption-key-file",
                stored.join(", ")
            ),
            StoreError::WrongKey { stored, given } => write!(
                f,
                "the database holds data encrypted with key id {}, and the given keys are {}: \
                 wrong key? (during a rotation give the old key with --old-encryption-key-file)",
                stored.join(", "),
                given.join(", ")
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(format!("sqlite: {e}"))
    }
}

impl From<sql::Error> for StoreError {
    fn from(e: sql::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Where the store keeps its data.
#[derive(Clone, Debug)]
pub enum Location {
    /// One SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, which several collector instances may share.
    Postgres(Box<sql::PostgresTarget>),
}

impl Location {
    /// Opens a connection (creating and migrating the schema if needed). Blocks: call it off
    /// the async runtime.
    pub fn connect(&self) -> Result<Connection, StoreError> {
        schema::open(self)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres(target) => write!(f, "{target}"),
        }
    }
}

/// A valid batch, ready to store: the events that passed the consent check, as JSON texts.
#[derive(Clone, Debug)]
pub struct NewBatch {
    /// The batch's `batch_id`.
    pub batch_id: String,
    /// The environment its API key maps to.
    pub environment: String,
    /// When the collector received it, Unix milliseconds.
    pub received_at_ms: u64,
    /// Its `sent_at`.
    pub sent_at_ms: u64,
    /// `sdk.name`.
    pub sdk_name: String,
    /// `sdk.version`.
    pub sdk_version: String,
    /// Its `consent_state`, as JSON.
    pub consent_state: String,
    /// The events to store.
    pub events: Vec<NewEvent>,
    /// How many of its events the consent check refused (counted, not stored).
    pub refused: u64,
}

/// One event to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Its id: stored once, later copies are duplicates.
    pub event_id: String,
    /// Its wire type.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// When it was captured, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Its purposes, as a JSON array.
    pub purposes: String,
    /// The visitor's anonymous id; `None` before the visitor's first choice.
    pub anonymous_id: Option<String>,
    /// The user id, on identify events and after.
    pub user_id: Option<String>,
    /// Its properties, the JSON text as sent.
    pub properties: String,
    /// Page details as JSON, on page events.
    pub page: Option<String>,
    /// Current and previous consent states as JSON, on consent changes.
    pub consent: Option<(String, String)>,
}

/// What storing one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    /// Events stored now.
    pub stored: u64,
    /// Events whose id was already stored (retries, beacons, reloads); ignored.
    pub duplicates: u64,
    /// Events of suppressed identities: dropped before storage, answered as stored.
    pub suppressed: u64,
}

/// One stored event, as the read API returns it.
#[derive(Debug, Serialize)]
pub struct StoredEvent {
    /// Its position in the store: the `since` cursor.
    pub seq: i64,
    /// Its id.
    pub event_id: String,
    /// The batch that first delivered it.
    pub batch_id: String,
    /// When that batch was received, Unix milliseconds.
    pub received_at: i64,
    /// Its wire type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
    /// When it was captured.
    pub timestamp_unixtime_ms: i64,
    /// Its purposes.
    pub purposes: Box<RawValue>,
    /// The visitor's anonymous id; absent (and left out of the JSON) on events sent before the
    /// visitor's first choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// The user id, if any.
    pub user_id: Option<String>,
    /// Its properties, as sent.
    pub properties: Box<RawValue>,
    /// Page details, on page events.
    pub page: Option<Box<RawValue>>,
    /// The consent after and before, on consent changes.
    pub consent: Option<StoredConsent>,
}

/// The consent states of a stored consent change.
#[derive(Debug, Serialize)]
pub struct StoredConsent {
    /// After the change.
    pub current: Box<RawValue>,
    /// Before the change.
    pub previous: Box<RawValue>,
}

/// A page of stored events.
#[derive(Debug, Serialize)]
pub struct EventsPage {
    /// Events with `seq` above the cursor, oldest first.
    pub events: Vec<StoredEvent>,
    /// The cursor for the next page: the last `seq` here, or the given one when empty.
    pub next_since: i64,
}

/// What the store holds and has counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Batches stored.
    pub batches: u64,
    /// Events stored.
    pub events: u64,
    /// Events ignored because their id was already stored.
    pub duplicates: u64,
    /// Events refused by the consent check.
    pub refused: u64,
    /// Consent changes stored.
    pub consent_changes: u64,
    /// Events of suppressed identities, dropped before storage.
    pub suppressed: u64,
    /// Rejected ingestion requests by HTTP status.
    pub rejected_requests: BTreeMap<String, u64>,
}

/// Rejected-request counts not yet written: counting never waits for the database. The store
/// thread folds them into its next transaction (and before answering stats or closing).
#[derive(Debug, Default)]
struct PendingCounters {
    counts: Mutex<BTreeMap<u16, u64>>,
    /// Whether a [`Command::Flush`] waits on the channel: at most one does.
    flush_queued: std::sync::atomic::AtomicBool,
}

impl PendingCounters {
    fn add(&self, status: u16, n: u64) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = map.entry(status).or_default();
        *slot = slot.saturating_add(n);
    }

    fn take(&self) -> BTreeMap<u16, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether the caller should queue a flush (none is queued yet); marks one queued.
    fn claim_flush(&self) -> bool {
        !self
            .flush_queued
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// The queued flush was taken off the channel.
    fn flush_taken(&self) {
        self.flush_queued
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// A write: run inside the group's transaction (in its own SAVEPOINT), answered after COMMIT.
trait WriteOp: Send {
    /// Runs the write; an error rolls back its savepoint.
    fn apply(&mut self, conn: &Connection) -> Result<(), StoreError>;
    /// Answers the caller once the group is committed (or failed with `committed`'s error).
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Op<T, F> {
    run: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T, StoreError> + Send> WriteOp for Op<T, F> {
    fn apply(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let result = match self.run.take() {
            Some(run) => run(conn),
            None => Err(StoreError::Closed),
        };
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match (committed, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(result);
    }
}

/// A read: answers on its own channel.
type ReadOp = Box<dyn FnOnce(&Connection) + Send>;

enum Command {
    Write(Box<dyn WriteOp>),
    Read(ReadOp),
    /// Wakes the thread to write pending counters.
    Flush,
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// The async handle to the store thread. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    tx: mpsc::Sender<Command>,
    pending: Arc<PendingCounters>,
    codec: Codec,
}

/// Closes the store: waits for queued operations, checkpoints the WAL, closes the file.
#[derive(Debug)]
pub struct StoreCloser {
    tx: mpsc::Sender<Command>,
    thread: std::thread::JoinHandle<()>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `location`, checks that
    /// `codec` has every key the database holds data under, and starts its thread, which owns
    /// the connection (it is made there: a PostgreSQL client drives its own I/O and must not
    /// run on the async runtime).
    ///
    /// `commit_seconds` observes how long each write group takes from BEGIN to COMMIT.
    pub async fn open(
        location: Location,
        codec: Codec,
        commit_seconds: prometheus::Histogram,
    ) -> Result<(Store, StoreCloser), StoreError> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let pending = Arc::new(PendingCounters::default());
        let thread_pending = Arc::clone(&pending);
        let thread_codec = codec.clone();
        let (opened, answer) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("consentry-store".to_owned())
            .spawn(move || {
                let conn = location.connect().and_then(|conn| {
                    sealed::check_keys(&conn, &thread_codec)?;
                    Ok(conn)
                });
                match conn {
                    Ok(conn) => {
                        let _ = opened.send(Ok(()));
                        worker::run(conn, rx, &thread_pending, &commit_seconds, &thread_codec);
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                    }
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        answer.await.map_err(|_| StoreError::Closed)??;
        Ok((
            Store {
                tx: tx.clone(),
                pending,
                codec,
            },
            StoreCloser { tx, thread },
        ))
    }

    async fn send(&self, command: Command) -> Result<(), StoreError> {
        self.tx.send(command).await.map_err(|_| StoreError::Closed)
    }

    /// Runs `run` in the next group's transaction; answers after COMMIT.
    async fn write<T, F>(&self, run: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op = Op {
            run: Some(run),
            result: None,
            reply,
        };
        self.send(Command::Write(Box::new(op))).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `run` on the store thread after the group's writes.
    async fn read<T, F>(&self, run: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Read(Box::new(move |conn| {
            let _ = reply.send(run(conn));
        })))
        .await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a batch in one transaction; returns after COMMIT.
    pub async fn ingest(&self, batch: NewBatch) -> Result<IngestCounts, StoreError> {
        let sealed = self.codec.seal_batch(batch)?;
        self.write(move |conn| queries::insert_batch(conn, &sealed))
            .await
    }

    /// Events with `seq > since`, at most `limit`, oldest first.
    pub async fn events(&self, since: i64, limit: u32) -> Result<EventsPage, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| queries::events(conn, since, limit, &codec))
            .await
    }

    /// Values the current data key has sealed, recorded or not (`None` in clear).
    pub fn sealed_values(&self) -> Option<u64> {
        self.codec.keyring().map(|k| k.current().sealed())
    }

    /// The index an id is stored under (hex): what the audit log names a person by.
    pub fn index_of(&self, id: &str) -> String {
        crate::tokens::hex(&self.codec.index(id))
    }

    /// Events of one anonymous id with `seq > since`, found by its keyed-hash index.
    pub async fn events_of_anonymous_id(
        &self,
        anonymous_id: String,
        since: i64,
        limit: u32,
    ) -> Result<EventsPage, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| {
            queries::events_of_anonymous_id(conn, &anonymous_id, since, limit, &codec)
        })
        .await
    }

    /// Counts of what is stored and what was refused or rejected.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        // The thread folds pending rejection counts into its group before answering reads.
        self.read(queries::stats).await
    }

    /// Deletes every batch, event, consent change and counter (not tokens, not the audit log),
    /// and appends `audit` in the same transaction.
    pub async fn reset(&self, audit: NewAuditEntry) -> Result<(), StoreError> {
        self.write(move |conn| {
            queries::reset(conn)?;
            access::append_audit(conn, audit).map(drop)
        })
        .await
    }

    /// Appends an audit entry; returns after COMMIT.
    pub async fn audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        self.write(move |conn| access::append_audit(conn, entry))
            .await
    }

    /// Audit entries with `seq > since`, oldest first.
    pub async fn audit_page(&self, since: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| access::audit_page(conn, since, limit))
            .await
    }

    /// The live token whose secret has this SHA-256.
    pub async fn find_token(&self, hash: String) -> Result<Option<Principal>, StoreError> {
        self.read(move |conn| access::find_token(conn, &hash)).await
    }

    /// Stores a token and appends `audit` in the same transaction.
    pub async fn create_token(
        &self,
        token: TokenRecord,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            access::insert_token(conn, &token)?;
            access::append_audit(conn, audit).map(drop)
        })
        .await
    }

    /// Records the configured admin token (by the hash of its secret) as revoked, and appends
    /// the entry `audit` makes of the answer in the same transaction; `false` if it already was.
    pub async fn revoke_configured_admin(
        &self,
        hash: String,
        now_ms: i64,
        audit: impl FnOnce(bool) -> NewAuditEntry + Send + 'static,
    ) -> Result<bool, StoreError> {
        self.revoke_audited(
            move |conn| access::revoke_configured_admin(conn, &hash, now_ms),
            audit,
        )
        .await
    }

    /// Runs `revoke` and appends the entry `audit` makes of its answer, in one transaction.
    async fn revoke_audited(
        &self,
        revoke: impl FnOnce(&Connection) -> Result<bool, StoreError> + Send + 'static,
        audit: impl FnOnce(bool) -> NewAuditEntry + Send + 'static,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let revoked = revoke(conn)?;
            access::append_audit(conn, audit(revoked))?;
            Ok(revoked)
        })
        .await
    }

    /// Whether the token whose secret hashes to `hash` was revoked.
    pub async fn is_revoked(&self, hash: String) -> Result<bool, StoreError> {
        self.read(move |conn| access::is_revoked(conn, &hash)).await
    }

    /// Every token, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(access::list_tokens).await
    }

    /// Revokes a live token; `false` if there is none with this id. The entry `audit` makes
    /// of the answer is appended in the same transaction.
    pub async fn revoke_token(
        &self,
        id: String,
        now_ms: i64,
        audit: impl FnOnce(bool) -> NewAuditEntry + Send + 'static,
    ) -> Result<bool, StoreError> {
        self.revoke_audited(move |conn| access::revoke_token(conn, &id, now_ms), audit)
            .await
    }

    /// Operations waiting for the store thread.
    pub fn queue_depth(&self) -> usize {
        CHANNEL_CAPACITY.saturating_sub(self.tx.capacity())
    }

    /// Whether the store thread answers and the database reads.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM schema_migrations", (), |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// How many entries the audit log holds.
    pub async fn audit_length(&self) -> Result<i64, StoreError> {
        self.read(access::audit_length).await
    }

    /// Counts a rejected ingestion request; never waits. Rejections are free for a client to
    /// make, so they never cost a commit each: at most one flush waits on the channel, and the
    /// thread commits the counts with other work, before a read, or at most once a second.
    pub fn count_rejected(&self, status: u16) {
        self.pending.add(status, 1);
        if self.pending.claim_flush() && self.tx.try_send(Command::Flush).is_err() {
            // A full channel means the thread is busy and folds the count into its next write.
            self.pending.flush_taken();
        }
    }
}

impl StoreCloser {
    /// Waits for every queued operation, checkpoints the WAL into the database file and closes
    /// it.
    pub async fn close(self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Command::Close(reply)).await;
        let result = match sent {
            Ok(()) => answer.await.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed),
        };
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| StoreError::Thread(e.to_string()))?
            .map_err(|_| StoreError::Thread("the store thread panicked".to_owned()))?;
        result
    }
}
