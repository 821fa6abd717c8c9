//! The store thread: takes operations off the channel in groups, writes each group in one
//! transaction (a SAVEPOINT per write), answers writes only after COMMIT, then answers reads.

use super::sql::Connection;
use super::{queries, sealed, Codec, Command, PendingCounters, ReadOp, StoreError, WriteOp};
use prometheus::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The most operations handled in one group (one COMMIT).
const MAX_GROUP: usize = 64;

/// The longest rejection counts wait for a commit of their own (they go sooner with any other
/// write, before any read, and at close).
const COUNTS_INTERVAL: Duration = Duration::from_secs(1);

/// Serves operations until told to close (or every handle is gone), then checkpoints and
/// closes the database.
pub(super) fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Command>,
    pending: &PendingCounters,
    commit_seconds: &Histogram,
    codec: &Codec,
) {
    let mut close_reply = None;
    let mut counts_written = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        let handled = handle_group(
            &conn,
            group,
            (pending, codec),
            commit_seconds,
            &mut counts_written,
        );
        if let Some(reply) = handled {
            close_reply = Some(reply);
            break;
        }
    }
    let result = close(conn, pending, codec);
    match &result {
        Ok(()) => tracing::info!("database checkpointed and closed"),
        Err(e) => tracing::error!(error = %e, "closing the database failed"),
    }
    if let Some(reply) = close_reply {
        let _ = reply.send(result);
    }
}

/// Handles one group; returns the close request if the group held one.
fn handle_group(
    conn: &Connection,
    group: Vec<Command>,
    (pending, codec): (&PendingCounters, &Codec),
    commit_seconds: &Histogram,
    counts_written: &mut Instant,
) -> Option<oneshot::Sender<Result<(), StoreError>>> {
    let mut writes = Vec::new();
    let mut reads: Vec<ReadOp> = Vec::new();
    let mut close = None;
    for command in group {
        match command {
            Command::Write(op) => writes.push(op),
            Command::Read(op) => reads.push(op),
            Command::Flush => pending.flush_taken(),
            Command::Close(reply) => close = Some(reply),
        }
    }
    let counts_due = !writes.is_empty()
        || !reads.is_empty()
        || close.is_some()
        || counts_written.elapsed() >= COUNTS_INTERVAL;
    let rejected = if counts_due {
        pending.take()
    } else {
        BTreeMap::new()
    };
    if !rejected.is_empty() {
        *counts_written = Instant::now();
    }
    if !writes.is_empty() || !rejected.is_empty() {
        let timer = commit_seconds.start_timer();
        write_group(conn, writes, rejected, (pending, codec));
        timer.observe_duration();
    }
    for read in reads {
        read(conn);
    }
    close
}

fn write_group(
    conn: &Connection,
    mut writes: Vec<Box<dyn WriteOp>>,
    rejected: BTreeMap<u16, u64>,
    (pending, codec): (&PendingCounters, &Codec),
) {
    if let Err(e) = conn.begin_write() {
        let _ = conn.rollback();
        return fail_all(writes, rejected, pending, &StoreError::from(e));
    }
    if let Err(e) = queries::add_rejected(conn, &rejected) {
        let _ = conn.rollback();
        return fail_all(writes, rejected, pending, &e);
    }
    for write in &mut writes {
        // Each write in its own savepoint: a failure rolls back that write alone, and the
        // write keeps its error to answer with.
        let _ = conn.savepoint(|sp| write.apply(sp));
    }
    // The seals made for these writes (and any made since) are recorded with them.
    let seals = match sealed::record_seals(conn, codec) {
        Ok(seals) => seals,
        Err(e) => {
            let _ = conn.rollback();
            return fail_all(writes, rejected, pending, &e);
        }
    };
    if let Err(e) = conn.commit() {
        let _ = conn.rollback();
        sealed::unrecord_seals(codec, seals);
        return fail_all(writes, rejected, pending, &StoreError::from(e));
    }
    for write in writes {
        write.answer(Ok(()));
    }
}

/// Answers every write with `error` and keeps the rejected counts for the next try.
fn fail_all(
    writes: Vec<Box<dyn WriteOp>>,
    rejected: BTreeMap<u16, u64>,
    pending: &PendingCounters,
    error: &StoreError,
) {
    tracing::error!(error = %error, "storing failed");
    for (status, n) in rejected {
        pending.add(status, n);
    }
    for write in writes {
        write.answer(Err(error.clone()));
    }
}

fn close(conn: Connection, pending: &PendingCounters, codec: &Codec) -> Result<(), StoreError> {
    let rejected = pending.take();
    if !rejected.is_empty() {
        queries::add_rejected(&conn, &rejected)?;
    }
    sealed::record_seals(&conn, codec)?;
    conn.close()?;
    Ok(())
}
