//! The store handle's data-subject-request operations (see [`super::dsr`] for the SQL): each
//! runs on the store thread; writes answer after COMMIT. Every status change is appended to
//! the audit log (`dsr.status`, target the request id, outcome the new status) in the same
//! transaction as the change itself.

use super::dsr::{
    self, Callback, CallbackBody, Cancelled, Created, DueCallback, Export, NewRequest, Request,
};
use super::sealed::aad;
use super::sql::Connection;
use super::sql::Value;
use super::subject_handle::remove_files;
use super::subjects::{self, Erased};
use super::{access, Store, StoreError};
use crate::audit::{NewAuditEntry, SYSTEM_ACTOR};
use serde_json::json;

/// Who changed a request's status, for the audit log: a token's name and role, or the system.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
}

impl Actor {
    /// The collector itself (the fulfilment worker).
    pub fn system() -> Actor {
        Actor {
            name: SYSTEM_ACTOR.to_owned(),
            role: SYSTEM_ACTOR.to_owned(),
        }
    }
}

fn audit_status(
    conn: &Connection,
    actor: &Actor,
    id: &str,
    status: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    access::append_audit(
        conn,
        NewAuditEntry {
            at_ms: now_ms,
            actor: actor.name.clone(),
            role: actor.role.clone(),
            action: "dsr.status".to_owned(),
            target: id.to_owned(),
            outcome: status.to_owned(),
        },
    )?;
    Ok(())
}

impl Store {
    /// Stores a new request (or finds the same one again) and queues its callbacks.
    pub async fn create_request(
        &self,
        request: NewRequest,
        actor: Actor,
        body: CallbackBody,
    ) -> Result<Created, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let created = dsr::create(conn, &codec, &request, &*body)?;
            if let Created::New(new) = &created {
                audit_status(conn, &actor, &new.id, "pending", request.received_at_ms)?;
            }
            Ok(created)
        })
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
        actor: Actor,
        body: CallbackBody,
    ) -> Result<Cancelled, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let cancelled = dsr::cancel(conn, &codec, &id, now_ms, &*body)?;
            if let Cancelled::Done(_) = &cancelled {
                audit_status(conn, &actor, &id, "cancelled", now_ms)?;
            }
            Ok(cancelled)
        })
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
                    let outcome = if request.claims > 1 {
                        "in_progress (resumed)"
                    } else {
                        "in_progress"
                    };
                    audit_status(conn, &Actor::system(), &request.id, outcome, now_ms)?;
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
                let follow_links = request.origin != "intake";
                let erased = subjects::erase(conn, &codec, &id, &ids, follow_links, now_ms)?;
                let count = i64::try_from(erased.events).unwrap_or(i64::MAX);
                dsr::complete(conn, &codec, &id, count, None, now_ms, &*body)?;
                audit_status(conn, &Actor::system(), &id, "completed", now_ms)?;
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
    pub async fn export_lines(
        &self,
        ids: Vec<String>,
        follow_links: bool,
    ) -> Result<(String, i64), StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| {
            let (subject, links) = subjects::subject_with(conn, &codec, &ids, follow_links)?;
            let mut out = String::new();
            let mut count = 0i64;
            let mut push = |value: serde_json::Value, out: &mut String| -> Result<(), StoreError> {
                let line = serde_json::to_string(&value)
                    .map_err(|e| StoreError::Database(format!("cannot encode the export: {e}")))?;
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
            let done = dsr::complete(
                conn,
                &codec,
                &id,
                results_count,
                Some(&token),
                now_ms,
                &*body,
            )?;
            if done {
                audit_status(conn, &Actor::system(), &id, "completed", now_ms)?;
            }
            Ok(done)
        })
        .await
    }

    /// An export's text as written to its file: the key id (or `-` in clear) on the first
    /// line, then the sealed bytes, bound to the request.
    pub fn seal_export(&self, request_id: &str, text: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = format!("{}\n", self.codec.key_id().unwrap_or("-")).into_bytes();
        match self.codec.seal(&aad("exports.file", request_id), text)? {
            Value::Blob(bytes) => out.extend(bytes),
            Value::Text(text) => out.extend(text.into_bytes()),
            _ => return Err(StoreError::Crypto("cannot seal an export".to_owned())),
        }
        Ok(out)
    }

    /// An export file's text, opened.
    pub fn open_export(&self, request_id: &str, file: &[u8]) -> Result<String, StoreError> {
        let corrupt = || StoreError::Crypto("the export file is corrupt".to_owned());
        let split = file.iter().position(|b| *b == b'\n').ok_or_else(corrupt)?;
        let (head, body) = file.split_at(split);
        let key = std::str::from_utf8(head).map_err(|_| corrupt())?;
        let body = body.get(1..).ok_or_else(corrupt)?.to_vec();
        let where_ = aad("exports.file", request_id);
        if key == "-" {
            let text = String::from_utf8(body).map_err(|_| corrupt())?;
            return self.codec.open(None, &where_, Value::Text(text));
        }
        self.codec.open(Some(key), &where_, Value::Blob(body))
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
