//! The store's reads for the privacy console: the overview's aggregates (from indexes: batches
//! by time of receipt then their events by batch, requests by status, callbacks by state), the
//! list of data-subject requests with filters, and the audit chain's verification on the store
//! thread (the same check as `audit verify`).

use super::dsr::{RequestSummary, Status};
use super::{access, Store, StoreError};
use crate::audit::{self, BrokenChain, GENESIS_HASH};
use serde::Serialize;
use std::collections::BTreeMap;

/// Audit entries checked per page when verifying the chain.
const VERIFY_PAGE: u32 = 1000;

/// The most requests one list answers.
pub const MAX_REQUESTS: u32 = 500;

/// One day, in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// Stored events of one day, environment and purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day, as Unix days (milliseconds / 86 400 000) of the batch's receipt.
    pub day: i64,
    /// The batch's environment.
    pub environment: String,
    /// A purpose the event was sent under (`none` for an event with none).
    pub purpose: String,
    /// How many events.
    pub events: u64,
}

/// The overview's counts that come from the database.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overview {
    /// Events per day, environment and purpose, over the last days asked for.
    pub events_by_day: Vec<DayCount>,
    /// Data-subject requests by status.
    pub requests_by_status: BTreeMap<String, u64>,
    /// Status callbacks whose attempts are spent.
    pub callbacks_failed: u64,
}

/// Filters of the request list.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Only this type (`erasure`, `access`, `portability`).
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only requests past their expected completion and not finished, at this time.
    pub overdue_at_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl Store {
    /// The overview's aggregates for the `days` days up to `now_ms`.
    pub async fn console_overview(&self, now_ms: i64, days: i64) -> Result<Overview, StoreError> {
        self.read(move |conn| {
            let since = (now_ms / DAY_MS - days + 1) * DAY_MS;
            let mut by_key: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
            let mut statement = conn.prepare_cached(
                "SELECT b.received_at_ms / 86400000, b.environment, e.purposes, COUNT(*)
                 FROM batches b JOIN events e ON e.batch_seq = b.seq
                 WHERE b.received_at_ms >= ?1
                 GROUP BY 1, 2, 3",
            )?;
            let mut rows = statement.query([since])?;
            while let Some(row) = rows.next()? {
                let day: i64 = row.get(0)?;
                let environment: String = row.get(1)?;
                let purposes: String = row.get(2)?;
                let count: i64 = row.get(3)?;
                let mut list: Vec<String> = serde_json::from_str(&purposes).unwrap_or_default();
                if list.is_empty() {
                    list.push("none".to_owned());
                }
                for purpose in list {
                    *by_key
                        .entry((day, environment.clone(), purpose))
                        .or_default() += u64::try_from(count).unwrap_or(0);
                }
            }
            let events_by_day = by_key
                .into_iter()
                .map(|((day, environment, purpose), events)| DayCount {
                    day,
                    environment,
                    purpose,
                    events,
                })
                .collect();
            let mut requests_by_status = BTreeMap::new();
            let mut statement =
                conn.prepare_cached("SELECT status, COUNT(*) FROM dsr_requests GROUP BY status")?;
            let mut rows = statement.query(())?;
            while let Some(row) = rows.next()? {
                let status: String = row.get(0)?;
                let count: i64 = row.get(1)?;
                requests_by_status.insert(status, u64::try_from(count).unwrap_or(0));
            }
            let failed: i64 = conn.query_row(
                "SELECT COUNT(*) FROM dsr_callbacks WHERE state = 'failed'",
                (),
                |row| row.get(0),
            )?;
            Ok(Overview {
                events_by_day,
                requests_by_status,
                callbacks_failed: u64::try_from(failed).unwrap_or(0),
            })
        })
        .await
    }

    /// Requests matching `filter`, newest first.
    pub async fn console_requests(
        &self,
        filter: RequestFilter,
    ) -> Result<Vec<RequestSummary>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, kind, status, origin, received_at_ms, updated_at_ms
                 FROM dsr_requests
                 WHERE (CAST(?1 AS TEXT) IS NULL OR kind = ?1)
                   AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)
                   AND (CAST(?3 AS BIGINT) IS NULL OR (expected_at_ms < ?3
                        AND status IN ('pending', 'in_progress')))
                 ORDER BY seq DESC LIMIT ?4",
            )?;
            let status = filter.status.map(Status::as_str);
            let limit = filter.limit.min(MAX_REQUESTS);
            let mut rows =
                statement.query((filter.kind.as_deref(), status, filter.overdue_at_ms, limit))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let status: String = row.get(2)?;
                out.push(RequestSummary {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    status: Status::parse(&status)?,
                    origin: row.get(3)?,
                    received_at_ms: row.get(4)?,
                    updated_at_ms: row.get(5)?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// When the export of request `id` stops being served, if it has one.
    pub async fn export_expiry(&self, id: String) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT MAX(expires_at_ms) FROM exports WHERE request_id = ?1 AND file != ''",
            )?;
            let expiry: Option<i64> = statement.query_row([id], |row| row.get(0))?;
            Ok(expiry)
        })
        .await
    }

    /// Checks the whole audit chain, page by page, as `audit verify` does: the length and head
    /// hash, or the first broken entry.
    pub async fn verify_audit_chain(
        &self,
    ) -> Result<Result<(i64, String), BrokenChain>, StoreError> {
        self.read(|conn| {
            let (mut seq, mut hash) = (0, GENESIS_HASH.to_owned());
            loop {
                let page = access::audit_page(conn, seq, VERIFY_PAGE)?;
                if page.is_empty() {
                    return Ok(Ok((seq, hash)));
                }
                match audit::verify(&page, seq + 1, &hash) {
                    Ok((last, head)) => (seq, hash) = (last, head),
                    Err(broken) => return Ok(Err(broken)),
                }
            }
        })
        .await
    }
}
