//! The machine among the site's tabs: how it learns its role, what it tells the other tabs,
//! and what it does with what they tell it (see [`crate::tabs`] for the protocol).
//!
//! A follower's batches go out as [`Message::Relay`] broadcasts and stay in flight until the
//! leader's [`Message::Answer`] (or a change of leader, which hands them to the next one). The
//! leader checks a relayed batch against its own consent before it sends it, answers
//! "deferred" when it cannot send now, and passes on what the endpoint said.

use super::relay::read_batch;
use super::Consentry;
use crate::output::Output;
use crate::retry::{classify, SendOutcome, Verdict};
use crate::tabs::{Coordination, Message, PeerId, Role, HEARTBEAT_INTERVAL};
use crate::time::{Duration, Timestamp};
use crate::BatchId;
use crate::Transmission;

/// How often the leader looks for queues that departed tabs left in storage.
pub const ADOPTION_SCAN_INTERVAL: Duration = Duration::from_secs(30);

/// How long after a tab's goodbye the leader looks for its queue: time for the page to go and
/// for its last storage write to land.
pub const SCAN_AFTER_BYE: Duration = Duration::from_secs(2);

/// How long a follower waits when the leader cannot send its batch now and does not know
/// for how long (it is offline, not started, or its consent has not caught up yet).
pub const RELAY_RETRY: Duration = Duration::from_secs(1);

/// Whether this page sends its batches itself, hands them to the leader, or holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sender {
    /// This page talks to the endpoint.
    Itself,
    /// The leading tab does.
    Leader,
}

impl Consentry {
    /// This page's id among the site's tabs (its storage entries are named with it).
    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    /// This page's role among the site's tabs.
    pub fn role(&self) -> Role {
        match self.coordination {
            Coordination::Alone => Role::Leader,
            _ => self.role,
        }
    }

    /// How the shell can reach the other tabs: call once, before
    /// [`Consentry::handle_start`]. Until then the page is alone and sends for itself.
    pub fn handle_coordination(&mut self, now: Timestamp, coordination: Coordination) {
        self.coordination = coordination;
        match coordination {
            Coordination::Alone => self.request_adoption(now),
            Coordination::Locks => self.set_role(now, Role::Undecided),
            Coordination::Heartbeats => {
                self.role = Role::Undecided;
                self.broadcast(self.election.hello());
                self.next_hello = Some(now.saturating_add(HEARTBEAT_INTERVAL));
                self.elect(now);
            }
        }
    }

    /// The browser's election changed this page's role (Web Locks: the lock was granted, or
    /// released because the page froze). Ignored unless coordinating by locks.
    pub fn handle_role(&mut self, now: Timestamp, role: Role) {
        if self.coordination == Coordination::Locks {
            self.set_role(now, role);
        }
    }

    /// A message another tab broadcast. Anything unreadable is ignored.
    pub fn handle_message(&mut self, now: Timestamp, text: &str) {
        let Some(message) = Message::decode(text) else {
            return;
        };
        match message {
            Message::Hello { from, since } => {
                if self.coordination == Coordination::Heartbeats {
                    if self.election.heard(from, since, now) {
                        // A new tab: it should hear from us before it decides.
                        self.broadcast(self.election.hello());
                    }
                    self.elect(now);
                }
            }
            Message::Bye { from } => {
                if self.coordination == Coordination::Heartbeats {
                    self.election.left(from);
                    self.elect(now);
                }
                if self.role() == Role::Leader {
                    let soon = now.saturating_add(SCAN_AFTER_BYE);
                    self.next_scan = Some(self.next_scan.map_or(soon, |t| t.min(soon)));
                }
            }
            Message::Leader { from } => {
                if from != self.me && self.role() == Role::Follower {
                    self.hand_over_to_new_leader(now);
                }
            }
            Message::Relay { from, body } => self.relay(now, from, &body),
            Message::Answer {
                to,
                batch_id,
                outcome,
            } => {
                if to == self.me {
                    self.handle_send_result(now, batch_id, outcome);
                }
            }
        }
    }

    /// The page is being unloaded: the other tabs hear goodbye (a leader's successor takes over
    /// at once, and adopts what this page leaves in storage).
    pub fn handle_leaving(&mut self, _now: Timestamp) {
        if self.coordination != Coordination::Alone {
            self.broadcast(Message::Bye { from: self.me });
        }
    }

    // ----- for the machine -----

    /// Who sends this page's batches now; `None` while the role is undecided.
    pub(super) fn sender(&self) -> Option<Sender> {
        match self.role() {
            Role::Leader => Some(Sender::Itself),
            Role::Follower => Some(Sender::Leader),
            Role::Undecided => None,
        }
    }

    /// The coordination timers due at `now`: hellos, the election, scans, relayed batches the
    /// endpoint has not answered.
    pub(super) fn coordination_timeout(&mut self, now: Timestamp) {
        for batch_id in self.relays.timed_out(now) {
            self.answer_relayed(now, batch_id, SendOutcome::NetworkError);
        }
        if self.next_hello.is_some_and(|t| t <= now) {
            self.broadcast(self.election.hello());
            self.next_hello = Some(now.saturating_add(HEARTBEAT_INTERVAL));
        }
        if self.coordination == Coordination::Heartbeats {
            self.elect(now);
        }
        if self.next_scan.is_some_and(|t| t <= now) {
            self.request_adoption(now);
        }
    }

    /// The coordination deadlines: the next hello, the election's, the next scan, relayed
    /// batches' timeouts.
    pub(super) fn coordination_deadline(&self) -> Option<Timestamp> {
        let mut next = super::earliest(self.next_hello, self.next_scan);
        next = super::earliest(next, self.relays.next_deadline());
        if self.coordination == Coordination::Heartbeats {
            next = super::earliest(next, self.election.next_deadline());
        }
        next
    }

    /// Answers the relayed batch `batch_id` with `outcome` if it is one; the endpoint's health
    /// counts for this page's own sends too.
    pub(super) fn answer_relayed(
        &mut self,
        now: Timestamp,
        batch_id: BatchId,
        outcome: SendOutcome,
    ) -> bool {
        let Some(relayed) = self.relays.settle(batch_id) else {
            return false;
        };
        match classify(outcome) {
            Verdict::Delivered => {
                self.delivery.succeeded();
                self.relays.delivered(&relayed.ids);
            }
            Verdict::Rejected => self.delivery.refused(),
            Verdict::Retry { not_before, .. } => {
                let (policy, rng) = (&self.config.retry, &mut self.rng);
                self.delivery
                    .failed(now, not_before, |failures| policy.backoff(failures, rng));
            }
            Verdict::Wait(_) => {}
        }
        self.broadcast(Message::Answer {
            to: relayed.to,
            batch_id,
            outcome,
        });
        true
    }

    /// Whether an event with this id was relayed here by another tab and is in flight or was
    /// delivered lately: a queue that tab left must not bring it back.
    pub(super) fn relayed_here(&self, id: crate::EventId) -> bool {
        self.relays.was_delivered(id) || self.relays.carries(id)
    }

    fn broadcast(&mut self, message: Message) {
        self.outputs.push(Output::Broadcast(message.encode()));
    }

    fn request_adoption(&mut self, now: Timestamp) {
        self.outputs.push(Output::AdoptQueues);
        self.next_scan = match self.coordination {
            // Alone, other pages' queues cannot be told from live ones: only at start.
            Coordination::Alone => None,
            _ => Some(now.saturating_add(ADOPTION_SCAN_INTERVAL)),
        };
    }

    fn elect(&mut self, now: Timestamp) {
        let role = self.election.role(now);
        self.set_role(now, role);
    }

    fn set_role(&mut self, now: Timestamp, role: Role) {
        if role == self.role {
            return;
        }
        let previous = self.role;
        self.role = role;
        // A follower that freezes (undecided) keeps what it handed over: the leader may well
        // send it and answer, and handing it on would send it twice.
        if previous == Role::Follower && role != Role::Undecided {
            self.hand_over_to_new_leader(now);
        }
        match role {
            Role::Leader => {
                self.broadcast(Message::Leader { from: self.me });
                self.request_adoption(now);
            }
            Role::Follower | Role::Undecided => self.next_scan = None,
        }
        self.maybe_send(now);
    }

    /// The leader changed: what was handed to the previous one goes to the next (or is sent by
    /// this page, if it leads now). Counted as a network error: no attempt is used up.
    fn hand_over_to_new_leader(&mut self, now: Timestamp) {
        for batch_id in self.delivery.relayed() {
            self.handle_send_result(now, batch_id, SendOutcome::NetworkError);
        }
    }

    /// A follower's batch: checked against this page's consent, then sent now or deferred.
    fn relay(&mut self, now: Timestamp, from: PeerId, body: &str) {
        if from == self.me || self.role() != Role::Leader {
            return;
        }
        let Some(batch) = read_batch(body, &self.config.policy.catalog) else {
            return;
        };
        let batch_id = batch.batch_id;
        let answer = |outcome| Message::Answer {
            to: from,
            batch_id,
            outcome,
        };
        let Some(purposes) = batch.purposes else {
            // A purpose this page's configuration does not declare: it cannot vouch for it.
            let refused = answer(SendOutcome::Status {
                code: 422,
                retry_after: None,
            });
            return self.broadcast(refused);
        };
        let backoff = self.delivery.backing_off_for(now);
        let wait = if !purposes.is_subset_of(self.granted) || !self.online || !self.started {
            Some(RELAY_RETRY)
        } else if backoff > Duration::ZERO {
            Some(backoff)
        } else {
            None
        };
        if let Some(wait) = wait {
            return self.broadcast(answer(SendOutcome::Deferred { wait }));
        }
        self.relays
            .push(batch, from, now.saturating_add(super::SEND_TIMEOUT));
        self.stats.relayed += 1;
        self.outputs.push(Output::Send(Transmission {
            batch_id,
            body: alloc::string::String::from(body),
            keepalive: false,
        }));
    }
}
