//! The store thread: takes operations off the channel in groups, writes each group in one
//! transaction (a SAVEPOINT per batch), answers writes only after COMMIT, then answers reads.

use super::{queries, Command, IngestCounts, PendingCounters, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

/// The most operations handled in one group (one COMMIT).
const MAX_GROUP: usize = 64;

enum Write {
    Ingest(
        Box<super::NewBatch>,
        oneshot::Sender<Result<IngestCounts, StoreError>>,
    ),
    Reset(oneshot::Sender<Result<(), StoreError>>),
}

/// Serves operations until told to close (or every handle is gone), then checkpoints and
/// closes the database.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Command>,
    pending: &PendingCounters,
) {
    let mut close_reply = None;
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        if let Some(reply) = handle_group(&mut conn, group, pending) {
            close_reply = Some(reply);
            break;
        }
    }
    let result = close(conn, pending);
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
    conn: &mut Connection,
    group: Vec<Command>,
    pending: &PendingCounters,
) -> Option<oneshot::Sender<Result<(), StoreError>>> {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let mut close = None;
    for command in group {
        match command {
            Command::Ingest(batch, reply) => writes.push(Write::Ingest(batch, reply)),
            Command::Reset(reply) => writes.push(Write::Reset(reply)),
            Command::Flush => {}
            Command::Close(reply) => close = Some(reply),
            read => reads.push(read),
        }
    }
    let rejected = pending.take();
    if !writes.is_empty() || !rejected.is_empty() {
        write_group(conn, writes, rejected, pending);
    }
    for read in reads {
        answer_read(conn, read);
    }
    close
}

fn write_group(
    conn: &mut Connection,
    writes: Vec<Write>,
    rejected: BTreeMap<u16, u64>,
    pending: &PendingCounters,
) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(writes, rejected, pending, &StoreError::from(e)),
    };
    if let Err(e) = queries::add_rejected(&tx, &rejected) {
        drop(tx);
        return fail_all(writes, rejected, pending, &e);
    }
    let mut done = Vec::with_capacity(writes.len());
    for write in writes {
        // Each write in its own savepoint: a failure rolls back that write alone.
        let outcome = match &write {
            Write::Ingest(batch, _) => tx.savepoint().map_err(StoreError::from).and_then(|sp| {
                let counts = queries::insert_batch(&sp, batch)?;
                sp.commit()?;
                Ok(Some(counts))
            }),
            Write::Reset(_) => tx.savepoint().map_err(StoreError::from).and_then(|sp| {
                queries::reset(&sp)?;
                sp.commit()?;
                Ok(None)
            }),
        };
        done.push((write, outcome));
    }
    if let Err(e) = tx.commit() {
        let e = StoreError::from(e);
        let writes = done.into_iter().map(|(write, _)| write).collect();
        return fail_all(writes, rejected, pending, &e);
    }
    for (write, outcome) in done {
        match write {
            Write::Ingest(_, reply) => {
                let _ = reply.send(outcome.map(Option::unwrap_or_default));
            }
            Write::Reset(reply) => {
                let _ = reply.send(outcome.map(|_| ()));
            }
        }
    }
}

/// Answers every write with `error` and keeps the rejected counts for the next try.
fn fail_all(
    writes: Vec<Write>,
    rejected: BTreeMap<u16, u64>,
    pending: &PendingCounters,
    error: &StoreError,
) {
    tracing::error!(error = %error, "storing failed");
    for (status, n) in rejected {
        pending.add(status, n);
    }
    for write in writes {
        match write {
            Write::Ingest(_, reply) => {
                let _ = reply.send(Err(error.clone()));
            }
            Write::Reset(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn answer_read(conn: &Connection, read: Command) {
    match read {
        Command::Events {
            since,
            limit,
            reply,
        } => {
            let _ = reply.send(queries::events(conn, since, limit));
        }
        Command::Stats(reply) => {
            let _ = reply.send(queries::stats(conn));
        }
        _ => {}
    }
}

fn close(conn: Connection, pending: &PendingCounters) -> Result<(), StoreError> {
    let rejected = pending.take();
    if !rejected.is_empty() {
        queries::add_rejected(&conn, &rejected)?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.close().map_err(|(_, e)| StoreError::from(e))
}
