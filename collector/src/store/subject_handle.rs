//! The store handle's data-subject operations: each runs on the store thread, writes in the
//! group's transaction and answers after COMMIT.

use super::subjects::{self, ConsentRecord, Erased, IdentityLink, Tombstone};
use super::{access, dsr, Store, StoreError, StoredEvent};
use crate::audit::NewAuditEntry;
use serde::Serialize;

/// Everything held about one user or anonymous id.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// The id asked about.
    pub id: String,
    /// Its events and those of the ids linked to it, oldest first, from `since`.
    pub events: Vec<StoredEvent>,
    /// The cursor of the next page of events.
    pub next_since: i64,
    /// Its consent changes (at most 1000), oldest first.
    pub consent_history: Vec<ConsentRecord>,
    /// Anonymous id ↔ user id links seen on identify events.
    pub identity_links: Vec<IdentityLink>,
    /// Data-subject requests naming it, with their status.
    pub requests: Vec<dsr::RequestSummary>,
    /// Since when it is suppressed (Unix ms), or `null`.
    pub suppressed_since_ms: Option<i64>,
    /// Erasures of it (tombstones).
    pub erasures: Vec<Tombstone>,
}

impl Store {
    /// Everything held about `id` (a user id or an anonymous id), events paged from `since`.
    pub async fn user_view(
        &self,
        id: String,
        since: i64,
        limit: u32,
    ) -> Result<UserView, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| {
            let ids = [id.clone()];
            let (subject, identity_links) = subjects::subject(conn, &codec, &ids)?;
            let events = subjects::subject_events(conn, &codec, &subject, since, limit)?;
            let next_since = events.last().map_or(since, |e| e.seq);
            Ok(UserView {
                consent_history: subjects::consent_history(conn, &codec, &subject, 1000)?,
                requests: dsr::requests_of(conn, &subject.own)?,
                suppressed_since_ms: subjects::suppressed_since(conn, &codec, &id)?,
                erasures: subjects::tombstones(conn, &codec, &id)?,
                events,
                next_since,
                identity_links,
                id,
            })
        })
        .await
    }

    /// Erases everything held about `ids` at once (the code path of every erasure); removes
    /// the deleted exports' files after COMMIT.
    pub async fn erase(
        &self,
        request_id: String,
        ids: Vec<String>,
        now_ms: i64,
        audit: impl FnOnce(&Erased) -> NewAuditEntry + Send + 'static,
    ) -> Result<Erased, StoreError> {
        let codec = self.codec.clone();
        let erased = self
            .write(move |conn| {
                let erased = subjects::erase(conn, &codec, &request_id, &ids, true, now_ms)?;
                access::append_audit(conn, audit(&erased))?;
                Ok(erased)
            })
            .await?;
        remove_files(&erased.files);
        Ok(erased)
    }

    /// Puts `identity` on the suppression list; `false` if it was already on it. The entry
    /// `audit` makes of the answer is appended in the same transaction.
    pub async fn suppress(
        &self,
        identity: String,
        now_ms: i64,
        audit: impl FnOnce(bool) -> NewAuditEntry + Send + 'static,
    ) -> Result<bool, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let added = subjects::suppress(conn, &codec, &identity, now_ms)?;
            access::append_audit(conn, audit(added))?;
            Ok(added)
        })
        .await
    }

    /// Whether an identify event linked `anonymous_id` to `user_id`.
    pub async fn is_linked(
        &self,
        anonymous_id: String,
        user_id: String,
    ) -> Result<bool, StoreError> {
        let codec = self.codec.clone();
        self.read(move |conn| {
            let ids = [anonymous_id.clone(), user_id.clone()];
            let (_, links) = subjects::subject_with(conn, &codec, &ids, false)?;
            Ok(links
                .iter()
                .any(|l| l.anonymous_id == anonymous_id && l.user_id == user_id))
        })
        .await
    }

    /// Takes `identity` off the suppression list; `false` if it was not on it.
    pub async fn unsuppress(
        &self,
        identity: String,
        audit: NewAuditEntry,
    ) -> Result<bool, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let removed = subjects::unsuppress(conn, &codec, &identity)?;
            access::append_audit(conn, audit)?;
            Ok(removed)
        })
        .await
    }

    /// Applies `patch` to user `user_id`'s traits; the number of identify events changed.
    pub async fn rectify_traits(
        &self,
        user_id: String,
        patch: serde_json::Map<String, serde_json::Value>,
        audit: impl FnOnce(u64) -> NewAuditEntry + Send + 'static,
    ) -> Result<u64, StoreError> {
        let codec = self.codec.clone();
        self.write(move |conn| {
            let updated = subjects::rectify_traits(conn, &codec, &user_id, &patch)?;
            access::append_audit(conn, audit(updated))?;
            Ok(updated)
        })
        .await
    }
}

/// Removes export files (a missing file is already gone).
pub fn remove_files(files: &[String]) {
    for file in files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(error = %e, "cannot remove an export file"),
        }
    }
}
