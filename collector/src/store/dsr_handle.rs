//! The store handle's data-subject-request operations (see [`super::dsr`] for the SQL): each
//! runs on the store thread; writes answer after COMMIT.

use super::dsr::{
    self, Callback, CallbackBody, Cancelled, Created, DueCallback, Export, NewRequest, Request,
};
use super::subject_handle::remove_files;
use super::subjects::{self, Erased};
use super::{Store, StoreError};
use serde_json::json;

impl Store {
    /// Stores a new request (or finds the same one again) and queues its callbacks.
    pub async fn create_request(
        &self,
        request: NewRequest,
        body: CallbackBody,
    ) -> Result<Created, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| dsr::create(conn, &codec, &request, &*body))
            .await
    }

    /// A request and its callbacks with every attempt.
    pub async fn request(
        &self,
        id: String,
    ) -> Result<Option<(Request, Vec<Callback>)>, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| match dsr::get(conn, &codec, &id)? {
            Some(request) => Ok(Some((request, dsr::callbacks_of(conn, &id)?))),
            None => Ok(None),
        })
        .await
    }

    /// Cancels a pending request.
    pub async fn cancel_request(
        &self,
        id: String,
        now_ms: i64,
        body: CallbackBody,
    ) -> Result<Cancelled, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| dsr::cancel(conn, &codec, &id, now_ms, &*body))
            .await
    }

    /// Claims the next request to work on (an interrupted one first), with the ids it names.
    pub async fn claim_request(
        &self,
        now_ms: i64,
        body: CallbackBody,
    ) -> Result<Option<(Request, Vec<String>)>, StoreError> {
        let codec = self.codec.clone();
        self.write(
            move |conn| match dsr::claim(conn, &codec, now_ms, &*body)? {
                Some(request) => {
                    let ids = dsr::ids_of(conn, &codec, &request.id)?;
                    Ok(Some((request, ids)))
                }
                None => Ok(None),
            },
        )
        .await
    }

    /// Fulfils an in-progress erasure: erases its ids and marks it completed in one
    /// transaction. `None` if it was not in progress (nothing is done twice).
    pub async fn complete_erasure(
        &self,
        id: String,
        now_ms: i64,
        body: CallbackBody,
    ) -> Result<Option<Erased>, StoreError> {
        let codec = self.codec.clone();
        let erased = self
            .write(move |conn| {
                let Some(request) = dsr::get(conn, &codec, &id)? else {
                    return Ok(None);
                };
                if request.status != dsr::Status::InProgress {
                    return Ok(None);
                }
                let ids = dsr::ids_of(conn, &codec, &id)?;
                let erased = subjects::erase(conn, &codec, &id, &ids, now_ms)?;
                let count = i64::try_from(erased.events).unwrap_or(i64::MAX);
                dsr::complete(conn, &codec, &id, count, None, now_ms, &*body)?;
                Ok(Some(erased))
            })
            .await?;
        if let Some(erased) = &erased {
            remove_files(&erased.files);
        }
        Ok(erased)
    }

    /// The NDJSON export of everything held about `ids`: one line per event, then one per
    /// consent change; and the number of lines.
    pub async fn export_lines(&self, ids: Vec<String>) -> Result<(String, i64), StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| {
            let (subject, links) = subjects::subject(conn, &codec, &ids)?;
            let mut out = String::new();
            let mut count = 0i64;
            let mut push = |value: serde_json::Value, out: &mut String| -> Result<(), StoreError> {
                let line = serde_json::to_string(&value)
                    .map_err(|e| StoreError::Sqlite(format!("cannot encode the export: {e}")))?;
                out.push_str(&line);
                out.push('\n');
                count += 1;
                Ok(())
            };
            let mut since = 0;
            loop {
                let events = subjects::subject_events(conn, &codec, &subject, since, 1000)?;
                let done = events.len() < 1000;
                for event in &events {
                    since = event.seq;
                    push(json!({"record": "event", "event": event}), &mut out)?;
                }
                if done {
                    break;
                }
            }
            for change in subjects::consent_history(conn, &codec, &subject, u32::MAX)? {
                push(
                    json!({"record": "consent_change", "consent_change": change}),
                    &mut out,
                )?;
            }
            for link in links {
                push(
                    json!({"record": "identity_link", "identity_link": link}),
                    &mut out,
                )?;
            }
            Ok((out, count))
        })
        .await
    }

    /// Records an export and completes its in-progress request in one transaction; `false`
    /// if the request was not in progress.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_export(
        &self,
        id: String,
        token: String,
        file: String,
        results_count: i64,
        now_ms: i64,
        expires_at_ms: i64,
        body: CallbackBody,
    ) -> Result<bool, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let Some(request) = dsr::get(conn, &codec, &id)? else {
                return Ok(false);
            };
            if request.status != dsr::Status::InProgress {
                return Ok(false);
            }
            let hash = crate::tokens::hash(&token);
            dsr::insert_export(
                conn,
                &hash,
                &id,
                &file,
                now_ms,
                expires_at_ms,
                results_count,
            )?;
            dsr::complete(
                conn,
                &codec,
                &id,
                results_count,
                Some(&token),
                now_ms,
                &*body,
            )
        })
        .await
    }

    /// Callbacks due now, oldest first.
    pub async fn due_callbacks(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueCallback>, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| dsr::due_callbacks(conn, &codec, now_ms, limit))
            .await
    }

    /// Records a callback attempt.
    pub async fn record_callback_attempt(
        &self,
        seq: i64,
        at_ms: i64,
        outcome: String,
        delivered: bool,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            dsr::record_attempt(conn, seq, at_ms, &outcome, delivered, retry_at_ms)
        })
        .await
    }

    /// The export whose token has this SHA-256.
    pub async fn export(&self, token_hash: String) -> Result<Option<Export>, StoreError> {
        self.read(move |conn| dsr::export(conn, &token_hash)).await
    }

    /// Deletes up to `limit` exports expired at `now_ms` (their files after COMMIT); how many.
    pub async fn expire_exports(&self, now_ms: i64, limit: u32) -> Result<usize, StoreError> {
        let files = self
            .write(move |conn| dsr::expire_exports(conn, now_ms, limit))
            .await?;
        remove_files(&files);
        Ok(files.len())
    }
}
