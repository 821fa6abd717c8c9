//! The Consentry state machine: every decision the SDK makes, driven by inputs, answering with
//! outputs.
//!
//! # The loop contract
//! The shell owns the clock, the network, storage and one timer. After **every** `handle_*` call
//! it drains [`Consentry::poll_output`] until `None`, performs each output, and re-arms its single
//! timer to [`Consentry::poll_timeout`], calling [`Consentry::handle_timeout`] when it fires.
//! Results of sends come back through [`Consentry::handle_send_result`]. Nothing here reads a
//! clock, touches the network or storage, or panics on any input.
//!
//! # Invariants
//! - No event is queued, persisted or sent unless every purpose it needs was granted when it was
//!   captured and is still granted: withdrawing a purpose purges the queue and the stored queue,
//!   and failed sends are filtered again before they are retried.
//! - Nothing identifying is persisted while no non-essential purpose is granted.
//! - `admitted + restored = delivered + dropped after admission + queued + in flight`.

use crate::config::Config;
use crate::consent::{check_context, ConsentContext, ConsentError, ConsentState, Detail};
use crate::endpoint::Endpoint;
use crate::event::{DropReason, EventKind, QueuedEvent};
use crate::id::{AnonymousId, BatchId, Entropy, EventId, Rng};
use crate::json::{self, Kind};
use crate::limits::{
    MAX_BATCH_BYTES, MAX_EVENT_BYTES, MAX_NAME_BYTES, MAX_PROPERTIES_BYTES, MAX_PROPERTIES_DEPTH,
    MAX_SNAPSHOT_BYTES, MAX_USER_ID_BYTES,
};
use crate::output::{Notice, Output, Persistence};
use crate::policy::admit;
use crate::privacy::PageInfo;
use crate::purpose::PurposeSet;
use crate::retry::{classify, SendOutcome, Verdict};
use crate::snapshot::{self, Identity, StorageKey};
use crate::stats::Stats;
use crate::tabs::{Coordination, Election, Liveness, PeerId, Role};
use crate::time::{Duration, Timestamp};
use crate::wire::{self, EventFields};
use alloc::string::String;
use alloc::vec::Vec;
use coordination::Sender;
use delivery::{earliest, BatchHeader, Delivery, FlightKind};
use queue::Queue;
use relay::Relays;

mod coordination;
mod delivery;
mod queue;
mod relay;

pub use coordination::{ADOPTION_SCAN_INTERVAL, RELAY_RETRY, SCAN_AFTER_BYE};
pub use delivery::{RELAY_GRACE, SEND_TIMEOUT};
pub use relay::REMEMBERED_DELIVERIES;

/// How long queue changes are coalesced before they are written to storage. Page hide, consent
/// withdrawal and adoption write at once.
pub const PERSIST_DELAY: Duration = Duration::from_millis(1000);

/// A stored queue that another page saved while visible is adopted only once it is this old
/// (its page crashed); one saved while hidden is adopted at once (its page may be gone).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(86_400);

/// The most stored queue documents one page keeps: one per anonymous id with unsent events.
/// More than two is rare (each needs a withdrawal of everything and a new grant while the
/// earlier events wait); the events of any further id stay in memory.
pub const MAX_QUEUE_SLOTS: u8 = 4;

/// The SDK's state machine. See the module documentation for the loop contract.
#[derive(Clone, Debug)]
pub struct Consentry {
    config: Config,
    consent: ConsentState,
    granted: PurposeSet,
    rng: Rng,
    anonymous_id: AnonymousId,
    user_id: Option<String>,
    identity_stored: bool,
    queue: Queue,
    delivery: Delivery,
    online: bool,
    hidden: bool,
    shut_down: bool,
    /// Whether sends may start: restoring and the replay of the page's early calls are done.
    started: bool,
    persist_deadline: Option<Timestamp>,
    /// How many queue slots are stored (slot `n` holds the `n`-th identity's unsent events).
    stored_slots: u8,
    /// When the current anonymous id took over from the one before (a rotation); consent
    /// records made until then are never sent in whole with it.
    identity_since: Timestamp,
    snapshot_budget: usize,
    /// What the shell can keep across page loads.
    persistence: Persistence,
    /// This page among the site's tabs, and how they decide who sends.
    me: PeerId,
    coordination: Coordination,
    role: Role,
    election: Election,
    next_hello: Option<Timestamp>,
    next_scan: Option<Timestamp>,
    /// What this page sends for other tabs while it leads.
    relays: Relays,
    outputs: Vec<Output>,
    stats: Stats,
}

/// What a page event, track or identify call carries besides its kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventInput<'a> {
    /// The properties (traits for identify) as JSON text, as `JSON.stringify` wrote them.
    pub properties: Option<&'a str>,
    /// Purposes named by the call, overriding rules and defaults.
    pub purposes: Option<&'a [&'a str]>,
}

impl Consentry {
    /// A machine for `config`, started at `now`, with 256 bits of randomness from the platform.
    ///
    /// It sends nothing until [`Consentry::handle_start`]: restore what storage holds, replay
    /// the calls the page made while the SDK was loading, then start.
    pub fn new(config: Config, now: Timestamp, seed: Entropy) -> Self {
        let mut rng = Rng::from_entropy(&seed);
        let consent = ConsentState::new(config.policy.catalog.len());
        let granted = consent.granted(&config.policy.catalog);
        let me = PeerId(rng.next_u64());
        Consentry {
            me,
            coordination: Coordination::Alone,
            role: Role::Undecided,
            election: Election::new(me, now),
            next_hello: None,
            next_scan: None,
            relays: Relays::default(),
            anonymous_id: AnonymousId(rng.uuid()),
            rng,
            consent,
            granted,
            config,
            user_id: None,
            identity_stored: false,
            queue: Queue::default(),
            delivery: Delivery::default(),
            online: true,
            hidden: false,
            shut_down: false,
            started: false,
            persist_deadline: None,
            stored_slots: 0,
            identity_since: Timestamp::ZERO,
            snapshot_budget: MAX_SNAPSHOT_BYTES,
            persistence: Persistence::Everything,
            outputs: Vec::new(),
            stats: Stats::default(),
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The endpoint batches go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// The purposes granted now.
    pub fn granted(&self) -> PurposeSet {
        self.granted
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Events waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Events sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.delivery.in_flight_events()
    }

    /// The counters and gauges as JSON.
    pub fn stats_json(&self) -> String {
        self.stats.to_json(self.queued(), self.in_flight())
    }

    /// Whether a flush has finished: no flush is sending and nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.delivery.is_idle()
    }

    /// Whether the SDK was shut down.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// The visitor's anonymous id.
    pub fn anonymous_id(&self) -> AnonymousId {
        self.anonymous_id
    }

    /// The consent as the page sees it: granted purpose names, whether any choice was recorded,
    /// and the wire-format `consent_state`.
    pub fn consent_json(&self) -> String {
        let catalog = &self.config.policy.catalog;
        let mut out = String::from("{\"granted\":");
        crate::consent::write_purpose_names(catalog, self.granted, &mut out);
        out.push_str(",\"hasChoices\":");
        out.push_str(if self.consent.has_choices() {
            "true"
        } else {
            "false"
        });
        out.push_str(",\"ccpaOptOut\":");
        out.push_str(if self.consent.opted_out_of_sale() {
            "true"
        } else {
            "false"
        });
        out.push_str(",\"state\":");
        self.consent.write_wire(catalog, &mut out, Detail::Full);
        out.push('}');
        out
    }

    // ----- outputs -----

    /// The next command for the shell, if any. Drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            None
        } else {
            Some(self.outputs.remove(0))
        }
    }

    /// When the shell should call [`Consentry::handle_timeout`] next, if at all.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let sending = self.online && self.started && self.sender().is_some();
        let delivery = self.delivery.next_deadline(!self.queue.is_empty(), sending);
        earliest(
            earliest(delivery, self.persist_deadline),
            self.coordination_deadline(),
        )
    }

    // ----- inputs -----

    /// Restores what an earlier page stored: the consent document, then the identity document.
    /// Call once, right after [`Consentry::new`], with the texts found in storage.
    pub fn restore(&mut self, _now: Timestamp, consent: Option<&str>, identity: Option<&str>) {
        if let Some(text) = consent {
            match snapshot::decode_consent(text, &self.config.policy.catalog) {
                Some(state) => {
                    self.consent = state;
                    self.granted = self.consent.granted(&self.config.policy.catalog);
                }
                None => self.discard_stored(StorageKey::Consent),
            }
        }
        if let Some(text) = identity {
            match snapshot::decode_identity(text) {
                Some(identity) if self.grants_non_essential() => {
                    self.anonymous_id = identity.anonymous_id;
                    self.user_id = identity.user_id;
                    self.identity_stored = true;
                }
                Some(_) => self.persist(StorageKey::Identity, None),
                None => self.discard_stored(StorageKey::Identity),
            }
        }
        self.update_identity_storage();
    }

    /// Offers a queue that the page `owner` stored, with what the shell knows of whether that
    /// page is still open. Only the page that sends adopts, and only the queues of pages that
    /// are gone (by their page lock, or by their heartbeats; where neither can tell, a queue
    /// saved while hidden or at least [`ABANDONED_AFTER`] ago). Events it holds, and relayed
    /// events it delivered lately, are not taken twice. Returns whether the queue was taken
    /// over (or was unreadable), in which case the shell removes it.
    pub fn adopt_queue(
        &mut self,
        now: Timestamp,
        text: &str,
        owner: PeerId,
        liveness: Liveness,
    ) -> bool {
        if owner == self.me || self.role() != Role::Leader {
            return false;
        }
        let liveness = match self.coordination {
            Coordination::Heartbeats if self.election.is_alive(owner, now) => Liveness::Alive,
            Coordination::Heartbeats => Liveness::Gone,
            Coordination::Locks | Coordination::Alone => liveness,
        };
        if liveness == Liveness::Alive {
            return false;
        }
        let Some(stored) = snapshot::decode_queue(text, &self.config.policy.catalog) else {
            self.notify(Notice::StorageDiscarded {
                key: StorageKey::Queue(0),
            });
            return true;
        };
        let abandoned = stored.hidden || now.saturating_since(stored.saved_at) >= ABANDONED_AFTER;
        if liveness == Liveness::Unknown && !abandoned {
            return false;
        }
        if stored.discarded > 0 {
            self.notify(Notice::StorageDiscarded {
                key: StorageKey::Queue(0),
            });
        }
        if stored.events.iter().any(|e| self.relays.carries(e.id)) {
            // Its page handed these over and the answer has not come: look again later.
            return false;
        }
        let mut adopted = Vec::with_capacity(stored.events.len());
        for event in stored.events {
            if self.holds(event.id)
                || self.relayed_here(event.id)
                || adopted.iter().any(|e: &QueuedEvent| e.id == event.id)
            {
                continue;
            }
            self.stats.restored += 1;
            if let Err(reason) = self.still_sendable(now, &event) {
                self.drop_events(reason, 1);
                continue;
            }
            adopted.push(event);
        }
        self.queue.requeue_front(adopted);
        self.trim_overflow();
        if !self.queue.is_empty() {
            self.delivery.queue_refilled(now);
        }
        self.persist_queue(now);
        self.maybe_send(now);
        true
    }

    /// Another tab changed the stored consent (`None`: it was removed). Applies it without
    /// recording a change event: the other tab already sent one. `fresh` is 256 new bits from
    /// the platform, used only if the change rotates the identity.
    pub fn handle_consent_sync(&mut self, now: Timestamp, text: Option<&str>, fresh: &Entropy) {
        let catalog = &self.config.policy.catalog;
        let state = match text {
            Some(text) => match snapshot::decode_consent(text, catalog) {
                Some(state) => state,
                None => return,
            },
            None => ConsentState::new(catalog.len()),
        };
        if state == self.consent {
            return;
        }
        let previous_granted = self.granted;
        let grants_non_essential = !state
            .granted(catalog)
            .difference(catalog.essential())
            .is_empty();
        self.consent = state;
        // The tab that made the change stored the identity; do not overwrite it with ours.
        self.identity_stored |= grants_non_essential;
        self.after_consent_change(now, None, previous_granted, fresh);
    }

    /// Records the visitor's choices, by purpose name. Returns whether anything changed; the
    /// whole call is refused if it names an unknown or essential purpose. `fresh` is 256 new
    /// bits from the platform: when the choice withdraws the last non-essential purpose, the
    /// identity rotates and the new anonymous id is drawn after mixing them in.
    pub fn handle_consent(
        &mut self,
        now: Timestamp,
        choices: &[(&str, bool)],
        context: &ConsentContext,
        fresh: &Entropy,
    ) -> Result<bool, ConsentError> {
        if self.shut_down {
            return Err(ConsentError::ShutDown);
        }
        check_context(context)?;
        let catalog = &self.config.policy.catalog;
        let mut indexed = Vec::with_capacity(choices.len());
        for &(name, granted) in choices {
            let index = catalog
                .index_of(name)
                .ok_or_else(|| ConsentError::UnknownPurpose(String::from(name)))?;
            if catalog.essential().contains(index) {
                return Err(ConsentError::EssentialPurpose(String::from(name)));
            }
            indexed.push((index, granted));
        }
        Ok(self.record_choice(now, fresh, |consent| consent.apply(&indexed, context, now)))
    }

    /// Records the visitor's CCPA choice: `true` opts out of the sale of their data. `fresh` as
    /// for [`Consentry::handle_consent`]: opting out rotates the identity when the sale purposes
    /// were the only non-essential ones granted.
    pub fn handle_ccpa_opt_out(
        &mut self,
        now: Timestamp,
        opted_out: bool,
        context: &ConsentContext,
        fresh: &Entropy,
    ) -> Result<bool, ConsentError> {
        if self.shut_down {
            return Err(ConsentError::ShutDown);
        }
        check_context(context)?;
        Ok(self.record_choice(now, fresh, |consent| {
            consent.apply_ccpa(opted_out, context, now)
        }))
    }

    /// Applies a choice the visitor made here (`apply` answers whether it changed anything) and,
    /// when it did, everything that follows from it. Answers whether it changed anything.
    fn record_choice(
        &mut self,
        now: Timestamp,
        fresh: &Entropy,
        apply: impl FnOnce(&mut ConsentState) -> bool,
    ) -> bool {
        let previous = self.wire_consent(Detail::MadeAfter(self.identity_since));
        let previous_granted = self.granted;
        if !apply(&mut self.consent) {
            return false;
        }
        self.after_consent_change(now, Some(previous), previous_granted, fresh);
        true
    }

    /// `track(name, properties, {purposes})`.
    pub fn handle_track(
        &mut self,
        now: Timestamp,
        name: &str,
        input: EventInput<'_>,
    ) -> Result<EventId, DropReason> {
        let result = self.capture(now, EventKind::Track, name, input, None, None);
        self.settle(result)
    }

    /// `page(properties)`, with what the shell knows of the page (minimised here).
    pub fn handle_page(
        &mut self,
        now: Timestamp,
        page: &PageInfo,
        input: EventInput<'_>,
    ) -> Result<EventId, DropReason> {
        let page = page.minimised();
        let result = self.capture(now, EventKind::Page, "page_view", input, None, Some(&page));
        self.settle(result)
    }

    /// `identify(userId, traits)`. Once admitted, the user id is attached to later events.
    pub fn handle_identify(
        &mut self,
        now: Timestamp,
        user_id: &str,
        input: EventInput<'_>,
    ) -> Result<EventId, DropReason> {
        let result = if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
            Err(DropReason::InvalidUserId)
        } else {
            self.capture(
                now,
                EventKind::Identify,
                "identify",
                input,
                Some(user_id),
                None,
            )
        };
        if result.is_ok() && self.user_id.as_deref() != Some(user_id) {
            self.user_id = Some(String::from(user_id));
            if self.identity_stored {
                self.write_identity();
            }
        }
        self.settle(result)
    }

    /// Counts an event the shell could not even hand in (a cyclic object, a symbol as name).
    pub fn handle_rejected_input(&mut self, reason: DropReason) {
        self.drop_events(reason, 1);
    }

    /// The timer fired.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.coordination_timeout(now);
        for batch_id in self.delivery.timed_out(now) {
            self.handle_send_result(now, batch_id, SendOutcome::NetworkError);
        }
        if self.persist_deadline.is_some_and(|t| t <= now) {
            self.persist_queue(now);
        }
        self.maybe_send(now);
    }

    /// The outcome of a [`Transmission`](crate::Transmission). Unknown or late batch ids are ignored.
    pub fn handle_send_result(&mut self, now: Timestamp, batch_id: BatchId, outcome: SendOutcome) {
        if self.answer_relayed(now, batch_id, outcome) {
            self.maybe_send(now);
            return;
        }
        let Some(flight) = self.delivery.settle(batch_id) else {
            return;
        };
        let count = flight.events.len() as u64;
        match classify(outcome) {
            Verdict::Delivered => {
                self.stats.delivered += count;
                self.delivery.succeeded();
                self.notify(Notice::Delivered { count });
            }
            Verdict::Rejected => {
                self.delivery.refused();
                self.drop_events(DropReason::Rejected, count);
            }
            Verdict::Retry {
                not_before,
                counts_as_attempt,
            } => {
                self.stats.retries += 1;
                self.take_back(now, flight.events, counts_as_attempt);
                let (policy, rng) = (&self.config.retry, &mut self.rng);
                let delay = self
                    .delivery
                    .failed(now, not_before, |failures| policy.backoff(failures, rng));
                if !self.queue.is_empty() {
                    self.delivery.queue_refilled(now);
                }
                let status = match outcome {
                    SendOutcome::Status { code, .. } => Some(code),
                    SendOutcome::NetworkError | SendOutcome::Deferred { .. } => None,
                };
                self.notify(Notice::RetryScheduled { status, delay });
            }
            Verdict::Wait(wait) => {
                self.take_back(now, flight.events, false);
                self.delivery.wait(now, wait);
                if !self.queue.is_empty() {
                    self.delivery.queue_refilled(now);
                }
            }
        }
        self.schedule_persist(now);
        self.maybe_send(now);
    }

    /// The page became hidden (`true`: `visibilitychange` to hidden or `pagehide`) or visible.
    /// On hide, what fits the keepalive budget is sent and everything unsent is persisted now.
    /// A page hidden before its tabs have elected a sender sends its own queue: waiting for a
    /// role it may never get would leave its events in storage until a later page adopts them
    /// (should one do so and send them again, the collector stores each event id once).
    pub fn handle_visibility(&mut self, now: Timestamp, hidden: bool) {
        self.hidden = hidden;
        if !hidden {
            if self.stored_slots > 0 {
                self.schedule_persist(now);
            }
            return;
        }
        let sender = self.sender().unwrap_or(Sender::Itself);
        if self.online && self.started && !self.delivery.asked_to_wait(now) {
            while !self.queue.is_empty() {
                // What goes to the endpoint fits the keepalive budget; what goes to the
                // leading tab has no such limit.
                let budget = match sender {
                    Sender::Itself => self.delivery.keepalive_budget(),
                    Sender::Leader => MAX_BATCH_BYTES,
                };
                if !self.send_batch(now, FlightKind::Unload, budget) {
                    break;
                }
            }
        }
        self.persist_queue(now);
    }

    /// The browser went online or offline.
    pub fn handle_network(&mut self, now: Timestamp, online: bool) {
        let was_online = self.online;
        self.online = online;
        if online && !was_online {
            self.delivery.back_online(now);
            self.maybe_send(now);
        } else if !online {
            self.delivery.stop_flush();
        }
    }

    /// A storage write failed (quota, denied). The data stays in memory; a queue write is retried
    /// with half the budget.
    pub fn handle_storage_failure(&mut self, now: Timestamp, key: StorageKey) {
        self.notify(Notice::StorageFailed { key });
        if let StorageKey::Queue(slot) = key {
            self.snapshot_budget /= 2;
            // Whatever the failed write left behind is removed by the next write.
            self.stored_slots = self.stored_slots.max(slot.saturating_add(1));
            self.schedule_persist(now);
        }
    }

    /// The browser offers less storage than the SDK uses (say at start): what it cannot keep
    /// is kept in memory, never written elsewhere, and the page hears it once.
    pub fn handle_storage_unavailable(&mut self, _now: Timestamp, keeps: Persistence) {
        if keeps != self.persistence {
            self.persistence = keeps;
            self.notify(Notice::StorageUnavailable { keeps });
        }
    }

    /// Restoring and the replay of the calls the page made while the SDK loaded are done:
    /// sending may begin. Until then nothing is sent, so a withdrawal made early purges first.
    pub fn handle_start(&mut self, now: Timestamp) {
        self.started = true;
        self.maybe_send(now);
    }

    /// Sends everything queued now, batch after batch, unless offline or backing off.
    /// [`Consentry::is_idle`] tells when it has finished.
    pub fn handle_flush(&mut self, now: Timestamp) {
        self.delivery.start_flush();
        self.maybe_send(now);
        // While the page's role among the tabs is not known yet (it is a moment), the flush
        // waits for it rather than finishing with nothing sent.
        if !self.delivery.regular_in_flight() && self.sender().is_some() {
            self.delivery.stop_flush();
        }
    }

    /// Flushes, persists what is left, and refuses every later event and consent change.
    pub fn handle_shutdown(&mut self, now: Timestamp) {
        self.handle_flush(now);
        self.persist_queue(now);
        self.shut_down = true;
    }

    // ----- internals -----

    fn notify(&mut self, notice: Notice) {
        self.outputs.push(Output::Notify(notice));
    }

    fn persist(&mut self, key: StorageKey, value: Option<String>) {
        if self.persistence.keeps(key) {
            self.outputs.push(Output::Persist { key, value });
        }
    }

    fn discard_stored(&mut self, key: StorageKey) {
        self.notify(Notice::StorageDiscarded { key });
        self.persist(key, None);
    }

    fn drop_events(&mut self, reason: DropReason, count: u64) {
        if count > 0 {
            self.stats.count_drop(reason, count);
            self.notify(Notice::Dropped { reason, count });
        }
    }

    fn settle(&mut self, result: Result<EventId, DropReason>) -> Result<EventId, DropReason> {
        if let Err(reason) = result {
            self.drop_events(reason, 1);
        }
        result
    }

    fn grants_non_essential(&self) -> bool {
        !self
            .granted
            .difference(self.config.policy.catalog.essential())
            .is_empty()
    }

    fn wire_consent(&self, detail: Detail) -> String {
        let mut out = String::with_capacity(256);
        self.consent
            .write_wire(&self.config.policy.catalog, &mut out, detail);
        out
    }

    fn holds(&self, id: EventId) -> bool {
        self.queue.contains(id) || self.delivery.holds(id)
    }

    /// Whether a queued event may still go out: consent still covers it and it is not too old.
    fn still_sendable(&self, now: Timestamp, event: &QueuedEvent) -> Result<(), DropReason> {
        if !event.purposes.is_subset_of(self.granted) {
            Err(DropReason::Purged)
        } else if now.saturating_since(event.captured_at) > self.config.batch.max_event_age {
            Err(DropReason::Expired)
        } else {
            Ok(())
        }
    }

    fn capture(
        &mut self,
        now: Timestamp,
        kind: EventKind,
        name: &str,
        input: EventInput<'_>,
        new_user_id: Option<&str>,
        page: Option<&PageInfo>,
    ) -> Result<EventId, DropReason> {
        if self.shut_down {
            return Err(DropReason::ShutDown);
        }
        if name.is_empty() {
            return Err(DropReason::InvalidName);
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(DropReason::NameTooLong);
        }
        let required = self
            .config
            .policy
            .required_purposes(kind, name, input.purposes)?;
        admit(required, self.granted)?;
        if new_user_id.is_some() && !self.grants_non_essential() {
            return Err(DropReason::IdentityDenied);
        }
        if let Some(properties) = input.properties {
            check_properties(properties)?;
        }
        let anonymous_id = self.event_identity();
        let id = EventId(self.rng.uuid());
        let wire = wire::encode_event(
            &EventFields {
                id,
                kind,
                name,
                timestamp: now,
                purposes: required,
                anonymous_id,
                user_id: new_user_id.or(self.user_id.as_deref()),
                properties: input.properties,
                page,
                consent: None,
            },
            &self.config.policy.catalog,
        );
        if wire.len() > MAX_EVENT_BYTES {
            return Err(DropReason::EventTooLarge);
        }
        self.enqueue(
            now,
            QueuedEvent {
                id,
                purposes: required,
                captured_at: now,
                attempts: 0,
                anonymous_id,
                durable: self.consent.has_choices(),
                wire,
            },
        );
        Ok(id)
    }

    fn enqueue(&mut self, now: Timestamp, event: QueuedEvent) {
        self.stats.admitted += 1;
        if self.queue.is_empty() {
            self.delivery
                .queue_started(now, self.config.batch.flush_interval);
        }
        let storable = event.durable;
        self.queue.push(event);
        self.trim_overflow();
        if storable {
            self.schedule_persist(now);
        }
        self.maybe_send(now);
    }

    /// Puts the events of a failed attempt back at the front of the queue, each filtered again
    /// (consent, age) and, when the attempt `counts`, one attempt closer to its limit.
    fn take_back(&mut self, now: Timestamp, events: Vec<QueuedEvent>, counts: bool) {
        let mut retry = Vec::with_capacity(events.len());
        for mut event in events {
            if counts {
                event.attempts = event.attempts.saturating_add(1);
                if event.attempts >= self.config.retry.max_attempts {
                    self.drop_events(DropReason::RetriesExhausted, 1);
                    continue;
                }
            }
            match self.still_sendable(now, &event) {
                Ok(()) => retry.push(event),
                Err(reason) => self.drop_events(reason, 1),
            }
        }
        self.queue.requeue_front(retry);
        self.trim_overflow();
    }

    fn trim_overflow(&mut self) {
        let overflow = self.queue.trim_to(self.config.batch.max_queue_events);
        self.drop_events(DropReason::QueueOverflow, overflow as u64);
    }

    /// After the recorded consent changed: record the change event (when `previous` is given),
    /// purge what is no longer granted, keep identity storage in line, persist the choice.
    fn after_consent_change(
        &mut self,
        now: Timestamp,
        previous: Option<String>,
        previous_granted: PurposeSet,
        fresh: &Entropy,
    ) {
        self.granted = self.consent.granted(&self.config.policy.catalog);
        let withdrawn = previous_granted.difference(self.granted);
        if !withdrawn.is_empty() {
            // Before anything is enqueued: enqueueing may send a batch at once.
            self.purge(now, withdrawn);
        }
        let local = previous.is_some();
        if let Some(previous) = previous {
            self.record_consent_change(now, &previous, previous_granted);
        }
        let had_non_essential = !previous_granted
            .difference(self.config.policy.catalog.essential())
            .is_empty();
        if had_non_essential && !self.grants_non_essential() {
            // Every non-essential purpose is gone: later events must not be linkable to earlier
            // ones. The change event above still carries the old id, so the withdrawal can be
            // applied to what was collected under it.
            self.rng.reseed(fresh);
            self.anonymous_id = AnonymousId(self.rng.uuid());
            self.user_id = None;
            self.identity_since = now;
        }
        self.update_identity_storage();
        if local {
            let stored = snapshot::encode_consent(&self.consent, &self.config.policy.catalog);
            self.persist(StorageKey::Consent, Some(stored));
        }
        self.notify(Notice::ConsentChanged);
        self.maybe_send(now);
    }

    /// Records the consent change event. It carries the anonymous id when the visitor had or
    /// now has granted a non-essential purpose (a withdrawal carries the id it withdraws from),
    /// and whole records only for choices made under that id.
    fn record_consent_change(
        &mut self,
        now: Timestamp,
        previous: &str,
        previous_granted: PurposeSet,
    ) {
        let current = self.wire_consent(Detail::MadeAfter(self.identity_since));
        let essential = self.config.policy.catalog.essential();
        let identified =
            self.grants_non_essential() || !previous_granted.difference(essential).is_empty();
        let anonymous_id = identified.then_some(self.anonymous_id);
        let id = EventId(self.rng.uuid());
        let wire = wire::encode_event(
            &EventFields {
                id,
                kind: EventKind::ConsentChange,
                name: EventKind::ConsentChange.as_str(),
                timestamp: now,
                purposes: essential,
                anonymous_id,
                user_id: self.user_id.as_deref(),
                properties: None,
                page: None,
                consent: Some((&current, previous)),
            },
            &self.config.policy.catalog,
        );
        self.enqueue(
            now,
            QueuedEvent {
                id,
                purposes: essential,
                captured_at: now,
                attempts: 0,
                anonymous_id,
                durable: true,
                wire,
            },
        );
    }

    /// The anonymous id an event captured now carries: only while the visitor grants a
    /// non-essential purpose. Before any choice and after "reject all" nothing carries one.
    fn event_identity(&self) -> Option<AnonymousId> {
        self.grants_non_essential().then_some(self.anonymous_id)
    }

    /// Drops every queued event that needs a withdrawn purpose and rewrites the stored queue now.
    fn purge(&mut self, now: Timestamp, withdrawn: PurposeSet) {
        let purged = self.queue.purge(withdrawn) as u64;
        if self.queue.is_empty() {
            self.delivery.queue_emptied();
        }
        self.drop_events(DropReason::Purged, purged);
        self.persist_queue(now);
    }

    /// Persists the identity while a non-essential purpose is granted and erases it otherwise.
    fn update_identity_storage(&mut self) {
        let wanted = self.grants_non_essential();
        if wanted && !self.identity_stored {
            self.write_identity();
        } else if !wanted && self.identity_stored {
            self.persist(StorageKey::Identity, None);
            self.identity_stored = false;
        }
    }

    fn write_identity(&mut self) {
        let identity = Identity {
            anonymous_id: self.anonymous_id,
            user_id: self.user_id.clone(),
        };
        self.persist(
            StorageKey::Identity,
            Some(snapshot::encode_identity(&identity)),
        );
        self.identity_stored = true;
    }

    fn schedule_persist(&mut self, now: Timestamp) {
        if self.persist_deadline.is_none() {
            self.persist_deadline = Some(now.saturating_add(PERSIST_DELAY));
        }
    }

    /// Writes everything not yet confirmed (in flight, then queued) that consent still covers,
    /// one document per anonymous id (slot `n` for the `n`-th, oldest first; events without an
    /// id have one of their own), and removes the slots no longer needed. Nothing is written
    /// while no choice is recorded (before the first one, or after another tab removed it), and
    /// events captured before the first choice are never written.
    fn persist_queue(&mut self, now: Timestamp) {
        self.persist_deadline = None;
        let granted = self.granted;
        let mut groups: Vec<(Option<AnonymousId>, Vec<&QueuedEvent>)> = Vec::new();
        let unsent = self
            .delivery
            .in_flight()
            .filter(|e| e.purposes.is_subset_of(granted))
            .chain(self.queue.iter())
            .filter(|e| e.durable && self.consent.has_choices());
        for event in unsent {
            let id = event.anonymous_id;
            match groups.iter_mut().find(|(group, _)| *group == id) {
                Some((_, events)) => events.push(event),
                None => groups.push((id, alloc::vec![event])),
            }
        }
        let mut budget = self.snapshot_budget;
        let mut written = 0u8;
        let mut writes = Vec::new();
        for (_, events) in groups.into_iter().take(usize::from(MAX_QUEUE_SLOTS)) {
            let (text, _) = snapshot::encode_queue(events.into_iter(), now, self.hidden, budget);
            budget = budget.saturating_sub(text.len());
            writes.push((StorageKey::Queue(written), text));
            written += 1;
        }
        for (key, text) in writes {
            self.persist(key, Some(text));
        }
        for slot in written..self.stored_slots {
            self.persist(StorageKey::Queue(slot), None);
        }
        self.stored_slots = written;
    }

    fn maybe_send(&mut self, now: Timestamp) {
        let can_send = self.online
            && self.started
            && self.sender().is_some()
            && !self.queue.is_empty()
            && self.delivery.may_send(now);
        if can_send
            && self
                .delivery
                .is_due(&self.queue, self.config.batch.flush_at, now)
        {
            self.send_batch(now, FlightKind::Regular, MAX_BATCH_BYTES);
        }
        if self.queue.is_empty() && !self.delivery.regular_in_flight() {
            self.delivery.stop_flush();
        }
    }

    /// Drops what has grown too old, then takes events from the front of the queue into one
    /// batch of at most `byte_limit` bytes and emits it. Returns whether a batch was sent.
    fn send_batch(&mut self, now: Timestamp, kind: FlightKind, byte_limit: usize) -> bool {
        let expired = self
            .queue
            .drop_older_than(now, self.config.batch.max_event_age);
        self.drop_events(DropReason::Expired, expired as u64);
        let header = BatchHeader {
            batch_id: BatchId(self.rng.uuid()),
            api_key: &self.config.api_key,
            consent_state: &self.wire_consent(Detail::Summary),
        };
        let via_leader = self.sender() == Some(Sender::Leader);
        let Some(transmission) =
            self.delivery
                .assemble(&mut self.queue, now, kind, byte_limit, &header, via_leader)
        else {
            return false;
        };
        self.stats.batches_sent += 1;
        self.outputs.push(if via_leader {
            Output::Broadcast(
                crate::tabs::Message::Relay {
                    from: self.me,
                    body: transmission.body,
                }
                .encode(),
            )
        } else {
            Output::Send(transmission)
        });
        true
    }
}

/// Checks properties JSON text against the limits: an object, small and shallow enough.
fn check_properties(text: &str) -> Result<(), DropReason> {
    if text.len() > MAX_PROPERTIES_BYTES {
        return Err(DropReason::PropertiesTooLarge);
    }
    match json::validate(text, MAX_PROPERTIES_DEPTH) {
        Ok(Kind::Object) => Ok(()),
        Ok(_) | Err(json::JsonError::Syntax) => Err(DropReason::InvalidProperties),
        Err(_) => Err(DropReason::PropertiesTooDeep),
    }
}
