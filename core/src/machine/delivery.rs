//! Delivery: the batches in flight, the failure count and the backoff and `Retry-After` windows
//! that follow from it, when the queue is due to go out, keepalive accounting, and the assembly
//! of one batch from the front of the queue. It answers its own next deadline.
//!
//! It holds no consent and counts no drops: the machine filters what comes back for retry and
//! counts what it drops.

use super::queue::Queue;
use crate::event::QueuedEvent;
use crate::id::{BatchId, EventId};
use crate::limits::{KEEPALIVE_BUDGET_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use crate::output::Transmission;
use crate::time::{Duration, Timestamp};
use crate::wire;
use alloc::vec::Vec;

/// How long a request may stay unanswered before it is treated as a network error.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer a follower waits for the leader's answer than the leader waits for the
/// endpoint's, so the leader's timeout always answers first.
pub const RELAY_GRACE: Duration = Duration::from_secs(5);

/// Why a batch is in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlightKind {
    /// The one regular batch at a time.
    Regular,
    /// Sent with keepalive because the page was hidden.
    Unload,
}

/// One batch sent and not yet answered.
#[derive(Clone, Debug)]
pub(super) struct Flight {
    pub(super) batch_id: BatchId,
    pub(super) kind: FlightKind,
    pub(super) events: Vec<QueuedEvent>,
    /// Handed to the leading tab rather than sent by this one.
    via_leader: bool,
    keepalive_bytes: usize,
    deadline: Timestamp,
}

/// What a batch is sent as: everything [`Delivery::assemble`] needs besides the queue.
pub(super) struct BatchHeader<'a> {
    pub(super) batch_id: BatchId,
    pub(super) api_key: &'a str,
    pub(super) consent_state: &'a str,
}

/// The state of delivery. See the module documentation.
#[derive(Clone, Debug, Default)]
pub(super) struct Delivery {
    flights: Vec<Flight>,
    /// When the queued events are due to go out even if fewer than `flushAt` wait.
    flush_deadline: Option<Timestamp>,
    /// No regular send before this (backoff, or `Retry-After` when longer).
    retry_not_before: Option<Timestamp>,
    /// Until when the endpoint itself asked us to wait (`Retry-After`); page hide honours it.
    retry_after_until: Option<Timestamp>,
    /// Consecutive failed attempts.
    failures: u32,
    /// A flush was asked for and has not finished.
    flushing: bool,
}

impl Delivery {
    /// Events sent and not yet answered.
    pub(super) fn in_flight_events(&self) -> usize {
        self.flights.iter().map(|f| f.events.len()).sum()
    }

    /// Whether a flush has finished: none is under way and nothing is in flight.
    pub(super) fn is_idle(&self) -> bool {
        !self.flushing && self.flights.is_empty()
    }

    /// Whether an event with this id is in flight.
    pub(super) fn holds(&self, id: EventId) -> bool {
        self.flights
            .iter()
            .any(|f| f.events.iter().any(|e| e.id == id))
    }

    /// Every event in flight, batch by batch.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = &QueuedEvent> {
        self.flights.iter().flat_map(|f| f.events.iter())
    }

    /// Whether the one regular batch is in flight.
    pub(super) fn regular_in_flight(&self) -> bool {
        self.flights.iter().any(|f| f.kind == FlightKind::Regular)
    }

    /// What keepalive requests may still carry: the page's budget minus what is in flight.
    pub(super) fn keepalive_budget(&self) -> usize {
        let in_flight: usize = self.flights.iter().map(|f| f.keepalive_bytes).sum();
        KEEPALIVE_BUDGET_BYTES.saturating_sub(in_flight)
    }

    /// Whether the endpoint's own `Retry-After` still holds at `now`.
    pub(super) fn asked_to_wait(&self, now: Timestamp) -> bool {
        self.retry_after_until.is_some_and(|t| t > now)
    }

    /// Starts a flush: everything queued goes out, batch after batch.
    pub(super) fn start_flush(&mut self) {
        self.flushing = true;
    }

    /// Ends a flush (finished, or it has to wait).
    pub(super) fn stop_flush(&mut self) {
        self.flushing = false;
    }

    /// The queue got its first event at `now`: it is due `interval` later.
    pub(super) fn queue_started(&mut self, now: Timestamp, interval: Duration) {
        self.flush_deadline = Some(now.saturating_add(interval));
    }

    /// The queue emptied: nothing is due.
    pub(super) fn queue_emptied(&mut self) {
        self.flush_deadline = None;
    }

    /// Events came back to the queue at `now` (a retry, an adoption): due at once unless a
    /// deadline is already set.
    pub(super) fn queue_refilled(&mut self, now: Timestamp) {
        if self.flush_deadline.is_none() {
            self.flush_deadline = Some(now);
        }
    }

    /// The browser came back online at `now`: backoff is forgotten unless the endpoint itself
    /// asked to wait longer.
    pub(super) fn back_online(&mut self, now: Timestamp) {
        if !self.asked_to_wait(now) {
            self.retry_not_before = None;
            self.failures = 0;
        }
    }

    /// Whether a regular batch may go out at `now` (nothing regular in flight, no backoff).
    pub(super) fn may_send(&self, now: Timestamp) -> bool {
        !self.regular_in_flight() && self.retry_not_before.is_none_or(|t| t <= now)
    }

    /// Whether the queue is due at `now`: flushing, enough events, enough bytes, or its deadline.
    pub(super) fn is_due(&self, queue: &Queue, flush_at: usize, now: Timestamp) -> bool {
        self.flushing
            || queue.len() >= flush_at
            || queue.bytes() >= MAX_BATCH_BYTES
            || self.flush_deadline.is_some_and(|t| t <= now)
    }

    /// When the machine must be woken next for delivery: the send deadline when events wait
    /// and a regular batch could go, and every flight's timeout.
    pub(super) fn next_deadline(&self, queue_waiting: bool, online: bool) -> Option<Timestamp> {
        let send = if queue_waiting && online && !self.regular_in_flight() {
            match (self.flush_deadline, self.retry_not_before) {
                (Some(flush), Some(retry)) => Some(flush.max(retry)),
                (flush, None) => flush,
                (None, retry) => retry,
            }
        } else {
            None
        };
        let mut next = send;
        for flight in &self.flights {
            next = earliest(next, Some(flight.deadline));
        }
        next
    }

    /// The batches handed to the leading tab and not answered yet.
    pub(super) fn relayed(&self) -> Vec<BatchId> {
        self.flights
            .iter()
            .filter(|f| f.via_leader)
            .map(|f| f.batch_id)
            .collect()
    }

    /// The endpoint itself cannot be asked now: the next regular send waits until `now + wait`,
    /// with no failure counted.
    pub(super) fn wait(&mut self, now: Timestamp, wait: Duration) {
        self.flushing = false;
        self.retry_not_before = Some(now.saturating_add(wait));
    }

    /// How long, from `now`, until a regular send may go (zero when it may now).
    pub(super) fn backing_off_for(&self, now: Timestamp) -> Duration {
        self.retry_not_before
            .map_or(Duration::ZERO, |t| t.saturating_since(now))
    }

    /// The batches whose answer is overdue at `now`.
    pub(super) fn timed_out(&self, now: Timestamp) -> Vec<BatchId> {
        self.flights
            .iter()
            .filter(|f| f.deadline <= now)
            .map(|f| f.batch_id)
            .collect()
    }

    /// Removes and answers the flight of `batch_id`, if it is one.
    pub(super) fn settle(&mut self, batch_id: BatchId) -> Option<Flight> {
        let position = self.flights.iter().position(|f| f.batch_id == batch_id)?;
        Some(self.flights.swap_remove(position))
    }

    /// A batch was delivered: failures and backoff are forgotten.
    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_not_before = None;
    }

    /// A batch was refused for good: it says nothing about the endpoint's health.
    pub(super) fn refused(&mut self) {
        self.failures = 0;
    }

    /// An attempt failed at `now`: one more failure, the flush stops, and the next regular send
    /// waits for the backoff (`backoff(failures)`), or the endpoint's `asked` wait when longer.
    /// Answers the delay.
    pub(super) fn failed(
        &mut self,
        now: Timestamp,
        asked: Option<Duration>,
        backoff: impl FnOnce(u32) -> Duration,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.flushing = false;
        let backoff = backoff(self.failures);
        let delay = asked.map_or(backoff, |asked| asked.max(backoff));
        self.retry_not_before = Some(now.saturating_add(delay));
        self.retry_after_until = asked.map(|asked| now.saturating_add(asked));
        delay
    }

    /// Takes events from the front of `queue` into one batch of at most `byte_limit` bytes,
    /// records it as in flight (handed to the leading tab when `via_leader`) and answers the
    /// transmission; `None` when not even one event fits.
    pub(super) fn assemble(
        &mut self,
        queue: &mut Queue,
        now: Timestamp,
        kind: FlightKind,
        byte_limit: usize,
        header: &BatchHeader<'_>,
        via_leader: bool,
    ) -> Option<Transmission> {
        let mut body = wire::begin_batch(
            header.batch_id,
            now,
            header.api_key,
            header.consent_state,
            byte_limit.min(64 * 1024),
        );
        let mut count = 0;
        let identity = queue.iter().next().map(|e| e.anonymous_id);
        for event in queue.iter() {
            // One anonymous id per batch: nothing links the ids before and after a rotation.
            if Some(event.anonymous_id) != identity {
                break;
            }
            let fits =
                body.len() + usize::from(count > 0) + event.wire.len() + wire::BATCH_END_BYTES
                    <= byte_limit;
            if count >= MAX_BATCH_EVENTS || !fits {
                break;
            }
            wire::push_event(&mut body, &event.wire, count == 0);
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let events = queue.take_front(count);
        wire::finish_batch(&mut body);
        if queue.is_empty() {
            self.queue_emptied();
        }
        // Keepalive only while the page is being hidden: Chromium counts a keepalive request
        // against the page's budget until its response body is consumed, so regular sends with
        // it starve each other in a burst.
        let keepalive =
            kind == FlightKind::Unload && !via_leader && body.len() <= self.keepalive_budget();
        let timeout = if via_leader {
            SEND_TIMEOUT.saturating_add(RELAY_GRACE)
        } else {
            SEND_TIMEOUT
        };
        self.flights.push(Flight {
            batch_id: header.batch_id,
            kind,
            events,
            via_leader,
            keepalive_bytes: if keepalive { body.len() } else { 0 },
            deadline: now.saturating_add(timeout),
        });
        Some(Transmission {
            batch_id: header.batch_id,
            body,
            keepalive,
        })
    }
}

/// The earlier of two optional deadlines (a plain match: the iterator form costs the wasm more).
pub(super) fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
