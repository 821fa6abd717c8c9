//! The fulfilment worker: claims requests one at a time, oldest first (a request left
//! `in_progress` by a crash is claimed again first, so none is lost), and fulfils each.
//!
//! Exactly once: an erasure's deletions and its `completed` status commit in one transaction,
//! so a crash before that COMMIT leaves it `in_progress` with nothing erased, and a crash after
//! leaves it completed; resuming it erases again only what is still there, which is nothing
//! that was erased. An export is written to a file named by its request (a resumed one
//! overwrites the half-written file) and its token and `completed` status commit together.

use super::{random_token, EXPORT_TTL_MS};
use crate::api::App;
use crate::store::dsr::Request;
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// The longest wait before retrying a request whose fulfilment failed.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);

/// Serves until shutdown begins. A failure (a full disk, the store) is retried with the same
/// request first, after a wait that doubles per failure (up to ten minutes).
pub async fn run(app: Arc<App>) {
    let mut stopping = app.stopping.clone();
    let poll = app.rights.settings.poll_interval;
    let mut failures = 0u32;
    loop {
        if *stopping.borrow() {
            return;
        }
        let wait = match step(&app).await {
            Ok(true) => {
                failures = 0;
                continue;
            }
            Ok(false) => {
                failures = 0;
                poll
            }
            Err(e) => {
                tracing::error!(error = %e, "fulfilling a data-subject request failed");
                failures = failures.saturating_add(1);
                poll.saturating_mul(1 << failures.min(16))
                    .min(MAX_RETRY_WAIT)
            }
        };
        if failures > 0 {
            // Not woken by new requests: the failed one comes first anyway.
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopping.changed() => return,
            }
            continue;
        }
        tokio::select! {
            () = app.rights.work.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Claims and fulfils one request; `false` when there was none.
pub async fn step(app: &App) -> Result<bool, StoreError> {
    let rights = &app.rights;
    let body = rights.callback_body();
    let now = rights.clock.now_ms();
    let Some((request, ids)) = app.store.claim_request(now, Arc::clone(&body)).await? else {
        return Ok(false);
    };
    rights.callbacks.notify_one();
    if rights.settings.hold_in_progress {
        // Test only: stay `in_progress` until the process is killed or stopped.
        tracing::warn!(request_id = %request.id, "holding the request in_progress (test flag)");
        let mut stopping = app.stopping.clone();
        let _ = stopping.wait_for(|stop| *stop).await;
        return Ok(false);
    }
    match request.kind.as_str() {
        "erasure" => {
            let now = rights.clock.now_ms();
            if let Some(erased) = app
                .store
                .complete_erasure(request.id.clone(), now, body)
                .await?
            {
                app.metrics.events_erased.inc_by(erased.events);
                app.metrics
                    .dsr_completed
                    .with_label_values(&["erasure"])
                    .inc();
                tracing::info!(request_id = %request.id, events = erased.events, "erasure completed");
            }
        }
        _ => export(app, &request, ids).await?,
    }
    rights.callbacks.notify_one();
    Ok(true)
}

async fn export(app: &App, request: &Request, ids: Vec<String>) -> Result<(), StoreError> {
    let rights = &app.rights;
    // A visitor's own request reaches exactly the ids it named (see api/intake.rs).
    let follow_links = request.origin != "intake";
    let (lines, count) = app.store.export_lines(ids, follow_links).await?;
    let sealed = app.store.seal_export(&request.id, &lines)?;
    let file = rights
        .exports_dir
        .join(format!("{}.ndjson.sealed", request.id));
    let partial = rights.exports_dir.join(format!("{}.partial", request.id));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&rights.exports_dir)?;
        std::fs::write(&partial, &sealed)?;
        std::fs::rename(&partial, &file)
    };
    write().map_err(|e| StoreError::Database(format!("cannot write the export: {e}")))?;
    let token = random_token().map_err(|e| StoreError::Crypto(e.to_string()))?;
    let now = rights.clock.now_ms();
    let done = app
        .store
        .complete_export(
            request.id.clone(),
            token,
            file.to_string_lossy().into_owned(),
            count,
            now,
            now.saturating_add(EXPORT_TTL_MS),
            rights.callback_body(),
        )
        .await?;
    if done {
        app.metrics
            .dsr_completed
            .with_label_values(&[request.kind.as_str()])
            .inc();
        tracing::info!(request_id = %request.id, lines = count, "export completed");
    }
    Ok(())
}
