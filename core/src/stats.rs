//! Counters a developer can read: what was admitted, delivered, retried, and dropped by reason.
//!
//! Counts only, never content (like sentry's client reports). Across the lifetime of one SDK
//! instance, `admitted + restored = delivered + dropped after admission + queued + in flight`.

use crate::event::DropReason;
use crate::json::ObjectWriter;
use alloc::string::String;

const REASONS: usize = DropReason::ALL.len();

/// The counters of one SDK instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events captured and admitted by consent.
    pub admitted: u64,
    /// Events read back from storage (this tab's earlier page or an abandoned tab).
    pub restored: u64,
    /// Events the endpoint confirmed.
    pub delivered: u64,
    /// Batches handed to the transport.
    pub batches_sent: u64,
    /// Attempts that failed and were scheduled again.
    pub retries: u64,
    /// Batches this page sent for other tabs while it led.
    pub relayed: u64,
    dropped: [u64; REASONS],
}

impl Stats {
    /// Counts `count` events dropped for `reason`.
    pub fn count_drop(&mut self, reason: DropReason, count: u64) {
        if let Some(slot) = self.dropped.get_mut(reason.index()) {
            *slot = slot.saturating_add(count);
        }
    }

    /// Events dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.index()).copied().unwrap_or(0)
    }

    /// Events dropped after they had been admitted (purged, overflowed, rejected, exhausted,
    /// expired).
    pub fn dropped_after_admission(&self) -> u64 {
        [
            DropReason::Purged,
            DropReason::QueueOverflow,
            DropReason::Rejected,
            DropReason::RetriesExhausted,
            DropReason::Expired,
        ]
        .iter()
        .map(|&r| self.dropped(r))
        .sum()
    }

    /// The counters as a JSON object, with the queue gauges the machine supplies.
    pub fn to_json(&self, queued: usize, in_flight: usize) -> String {
        let mut out = String::with_capacity(256);
        let mut stats = ObjectWriter::new(&mut out);
        stats.u64("admitted", self.admitted);
        stats.u64("restored", self.restored);
        stats.u64("delivered", self.delivered);
        stats.u64("batchesSent", self.batches_sent);
        stats.u64("retries", self.retries);
        stats.u64("relayed", self.relayed);
        stats.u64("queued", queued as u64);
        stats.u64("inFlight", in_flight as u64);
        let mut dropped = ObjectWriter::new(stats.key("dropped"));
        for &reason in DropReason::ALL {
            if self.dropped(reason) > 0 {
                dropped.u64(reason.as_str(), self.dropped(reason));
            }
        }
        dropped.finish();
        stats.finish();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_only_reasons_that_happened() {
        let mut stats = Stats {
            admitted: 3,
            ..Stats::default()
        };
        stats.count_drop(DropReason::ConsentDenied, 2);
        stats.count_drop(DropReason::Purged, 1);
        assert_eq!(stats.dropped_after_admission(), 1);
        assert_eq!(
            stats.to_json(2, 0),
            r#"{"admitted":3,"restored":0,"delivered":0,"batchesSent":0,"retries":0,"relayed":0,"queued":2,"inFlight":0,"dropped":{"consent_denied":2,"purged":1}}"#
        );
    }
}
