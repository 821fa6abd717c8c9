//! Tabs: which of a site's open pages sends, and the messages they exchange.
//!
//! One page at a time talks to the endpoint: the *leader*. The others (*followers*) hand each
//! batch they assemble to it as a [`Message::Relay`]; it sends the batch and answers with what
//! the endpoint said ([`Message::Answer`]), so a follower keeps its own queue, retries, storage
//! and counters exactly as if it had sent the batch itself. Nothing is lost when the leader
//! goes: a follower's batch stays in flight at the follower until an answer comes, and is handed
//! to the next leader when the leader changes.
//!
//! Who leads is decided in one of three ways ([`Coordination`]):
//! - [`Coordination::Locks`]: the browser decides (Web Locks: the page holding the lock leads);
//!   the shell reports the role.
//! - [`Coordination::Heartbeats`]: where Web Locks are missing, the tabs decide among
//!   themselves ([`Election`]): every tab says hello on a broadcast channel every
//!   [`HEARTBEAT_INTERVAL`], and the oldest tab heard from within [`PEER_TIMEOUT`] leads.
//! - [`Coordination::Alone`]: no way to reach other tabs: every page sends for itself.
//!
//! Messages travel as short texts (the shell posts them on a `BroadcastChannel` and hands in
//! what arrives): every one names its sender or its addressee, and anything unreadable is
//! ignored.

use crate::id::{BatchId, Uuid};
use crate::json;
use crate::retry::SendOutcome;
use crate::time::{Duration, Timestamp};
use alloc::string::String;
use alloc::vec::Vec;

/// How often a tab says hello when tabs elect their leader by heartbeats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long after its last hello a tab still counts as alive. Long, because browsers throttle
/// the timers of hidden tabs to one a minute after five minutes; a tab that closes says
/// goodbye, so the usual hand-over is immediate.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(70);

/// How long a new tab listens for the others before it decides who leads.
pub const LISTEN_BEFORE_ELECTING: Duration = Duration::from_millis(300);

/// A page's id among the site's open tabs: random, drawn at start, never sent to the endpoint
/// and never stored beyond the names of that page's own storage entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u64);

impl PeerId {
    /// The id as 16 lower-case hex digits.
    pub fn write_to(self, out: &mut String) {
        for byte in self.0.to_be_bytes() {
            json::push_hex(out, byte);
        }
    }

    /// The id as 16 lower-case hex digits, in a new string.
    pub fn to_hex(self) -> String {
        let mut out = String::with_capacity(16);
        self.write_to(&mut out);
        out
    }

    /// Reads 16 hex digits (either case).
    pub fn parse(text: &str) -> Option<PeerId> {
        if text.len() != 16 {
            return None;
        }
        let mut value = 0u64;
        for &c in text.as_bytes() {
            value = (value << 4) | u64::from(crate::id::hex_value(c)?);
        }
        Some(PeerId(value))
    }
}

/// Whether the page that stored a queue is still open, as far as the shell can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It holds its page lock: its queue is its own.
    Alive,
    /// Its page lock is free: it is gone.
    Gone,
    /// The shell cannot tell (no Web Locks).
    Unknown,
}

/// How the site's tabs decide which of them sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coordination {
    /// Every page sends for itself (no way to reach other tabs).
    Alone,
    /// The browser decides (Web Locks); the shell reports this page's [`Role`].
    Locks,
    /// The tabs decide by heartbeats on a broadcast channel ([`Election`]).
    Heartbeats,
}

/// This page's part in sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (just started, or frozen): nothing is sent or handed over.
    Undecided,
    /// This page sends, its own batches and those the followers hand over.
    Leader,
    /// Another page sends; this one hands its batches over.
    Follower,
}

/// A message between tabs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "I am here, since then": a heartbeat, and a new tab's hello.
    Hello {
        /// The sender.
        from: PeerId,
        /// When the sender started (the oldest tab leads).
        since: Timestamp,
    },
    /// "I am leaving": the page is being unloaded.
    Bye {
        /// The sender.
        from: PeerId,
    },
    /// "I lead now": batches handed to the previous leader go to this one.
    Leader {
        /// The sender.
        from: PeerId,
    },
    /// A follower's batch for the leader to send.
    Relay {
        /// The follower.
        from: PeerId,
        /// The wire-format batch, exactly as the endpoint is to receive it.
        body: String,
    },
    /// The leader's answer for a relayed batch.
    Answer {
        /// The follower that handed it over.
        to: PeerId,
        /// The batch.
        batch_id: BatchId,
        /// What became of it.
        outcome: SendOutcome,
    },
}

impl Message {
    /// The message as the text tabs exchange.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            Message::Hello { from, since } => {
                out.push('h');
                from.write_to(&mut out);
                out.push(',');
                json::write_u64(&mut out, since.as_unix_ms());
            }
            Message::Bye { from } => {
                out.push('x');
                from.write_to(&mut out);
            }
            Message::Leader { from } => {
                out.push('l');
                from.write_to(&mut out);
            }
            Message::Relay { from, body } => {
                out.reserve(body.len() + 18);
                out.push('r');
                from.write_to(&mut out);
                out.push(',');
                out.push_str(body);
            }
            Message::Answer {
                to,
                batch_id,
                outcome,
            } => {
                out.push('a');
                to.write_to(&mut out);
                out.push(',');
                batch_id.0.write_to(&mut out);
                let (kind, n, extra) = match *outcome {
                    SendOutcome::Status { code, retry_after } => {
                        ('s', u64::from(code), retry_after.map(Duration::as_millis))
                    }
                    SendOutcome::NetworkError => ('n', 0, None),
                    SendOutcome::Deferred { wait } => ('w', wait.as_millis(), None),
                };
                out.push(',');
                out.push(kind);
                json::write_u64(&mut out, n);
                if let Some(extra) = extra {
                    out.push(',');
                    json::write_u64(&mut out, extra);
                }
            }
        }
        out
    }

    /// Reads a message; `None` for anything else.
    pub fn decode(text: &str) -> Option<Message> {
        let kind = *text.as_bytes().first()?;
        let rest = text.get(1..)?;
        let peer = PeerId::parse(rest.get(..16)?)?;
        let after = rest.get(16..)?;
        match kind {
            b'h' => Some(Message::Hello {
                from: peer,
                since: Timestamp::from_unix_ms(number(after.strip_prefix(',')?)?),
            }),
            b'x' if after.is_empty() => Some(Message::Bye { from: peer }),
            b'l' if after.is_empty() => Some(Message::Leader { from: peer }),
            b'r' => Some(Message::Relay {
                from: peer,
                body: String::from(after.strip_prefix(',')?),
            }),
            b'a' => {
                let after = after.strip_prefix(',')?;
                let batch_id = BatchId(Uuid::parse(after.get(..36)?)?);
                let mut fields = after.get(36..)?.strip_prefix(',')?.split(',');
                let head = fields.next()?;
                let n = number(head.get(1..)?)?;
                let extra = fields.next().map(number);
                let outcome = match (head.as_bytes().first()?, extra) {
                    (b's', extra) => SendOutcome::Status {
                        code: u16::try_from(n).ok()?,
                        retry_after: match extra {
                            Some(ms) => Some(Duration::from_millis(ms?)),
                            None => None,
                        },
                    },
                    (b'n', None) => SendOutcome::NetworkError,
                    (b'w', None) => SendOutcome::Deferred {
                        wait: Duration::from_millis(n),
                    },
                    _ => return None,
                };
                if fields.next().is_some() {
                    return None;
                }
                Some(Message::Answer {
                    to: peer,
                    batch_id,
                    outcome,
                })
            }
            _ => None,
        }
    }
}

/// A decimal number of at most 15 digits (every millisecond count until the year 33658).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 15 {
        return None;
    }
    let mut value = 0u64;
    for &c in text.as_bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(c - b'0');
    }
    Some(value)
}

/// The election by heartbeats: the tabs heard from lately, and who of them leads.
#[derive(Clone, Debug)]
pub struct Election {
    me: PeerId,
    since: Timestamp,
    /// Peers heard from: id, when they started, when last heard.
    peers: Vec<(PeerId, Timestamp, Timestamp)>,
    /// Before this, the tab is still listening and decides nothing.
    decide_at: Timestamp,
    /// Whether [`Election::role`] has been asked at or after `decide_at`.
    decided: bool,
}

impl Election {
    /// This tab, started at `now`.
    pub fn new(me: PeerId, now: Timestamp) -> Self {
        Election {
            me,
            since: now,
            peers: Vec::new(),
            decide_at: now.saturating_add(LISTEN_BEFORE_ELECTING),
            decided: false,
        }
    }

    /// This tab's hello.
    pub fn hello(&self) -> Message {
        Message::Hello {
            from: self.me,
            since: self.since,
        }
    }

    /// A hello from `from`, which started at `since`, heard at `now`. Answers whether the
    /// peer was new (it should hear our hello at once).
    pub fn heard(&mut self, from: PeerId, since: Timestamp, now: Timestamp) -> bool {
        if from == self.me {
            return false;
        }
        match self.peers.iter_mut().find(|(id, _, _)| *id == from) {
            Some(peer) => {
                *peer = (from, since, now);
                false
            }
            None => {
                self.peers.push((from, since, now));
                true
            }
        }
    }

    /// `from` said goodbye.
    pub fn left(&mut self, from: PeerId) {
        self.peers.retain(|(id, _, _)| *id != from);
    }

    /// Whether `peer` was heard from within [`PEER_TIMEOUT`] of `now`.
    pub fn is_alive(&self, peer: PeerId, now: Timestamp) -> bool {
        peer == self.me
            || self
                .peers
                .iter()
                .any(|&(id, _, last)| id == peer && now.saturating_since(last) <= PEER_TIMEOUT)
    }

    /// This tab's role at `now`: undecided while listening, then leader if it is the oldest
    /// live tab (ties broken by the smaller id), else follower.
    pub fn role(&mut self, now: Timestamp) -> Role {
        self.peers
            .retain(|&(_, _, last)| now.saturating_since(last) <= PEER_TIMEOUT);
        if now < self.decide_at {
            return Role::Undecided;
        }
        self.decided = true;
        let mine = (self.since, self.me);
        if self.peers.iter().all(|&(id, since, _)| mine < (since, id)) {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    /// When the role may change by itself: the end of listening, then the first peer's
    /// timeout.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if !self.decided {
            return Some(self.decide_at);
        }
        self.peers
            .iter()
            .map(|&(_, _, last)| {
                last.saturating_add(PEER_TIMEOUT)
                    .saturating_add(Duration::from_millis(1))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u64) -> PeerId {
        PeerId(n)
    }

    #[test]
    fn messages_round_trip_and_garbage_is_ignored() {
        let batch_id = BatchId(Uuid::parse("3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b").unwrap());
        let messages = [
            Message::Hello {
                from: peer(0x0123_4567_89ab_cdef),
                since: Timestamp::from_unix_ms(1_763_800_000_000),
            },
            Message::Bye { from: peer(1) },
            Message::Leader {
                from: peer(u64::MAX),
            },
            Message::Relay {
                from: peer(2),
                body: String::from(r#"{"version":1,"events":[]}"#),
            },
            Message::Answer {
                to: peer(3),
                batch_id,
                outcome: SendOutcome::Status {
                    code: 429,
                    retry_after: Some(Duration::from_secs(30)),
                },
            },
            Message::Answer {
                to: peer(3),
                batch_id,
                outcome: SendOutcome::Status {
                    code: 200,
                    retry_after: None,
                },
            },
            Message::Answer {
                to: peer(3),
                batch_id,
                outcome: SendOutcome::NetworkError,
            },
            Message::Answer {
                to: peer(3),
                batch_id,
                outcome: SendOutcome::Deferred {
                    wait: Duration::from_millis(1500),
                },
            },
        ];
        for message in messages {
            let text = message.encode();
            assert_eq!(Message::decode(&text), Some(message), "{text}");
        }
        assert_eq!(
            Message::Hello {
                from: peer(0xab),
                since: Timestamp::from_unix_ms(5)
            }
            .encode(),
            "h00000000000000ab,5"
        );
        for garbage in [
            "",
            "h",
            "h0000000000000001",
            "h0000000000000001,",
            "h0000000000000001,x",
            "h000000000000000g,1",
            "x0000000000000001,",
            "q0000000000000001",
            "a0000000000000001,3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b,s70000",
            "a0000000000000001,3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b,n0,1",
            "a0000000000000001,3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b,s200,1,2",
            "a0000000000000001,not-a-uuid-at-all-not-a-uuid-at-all!,s200",
            "h0000000000000001,9999999999999999",
            "é",
        ] {
            assert_eq!(Message::decode(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_oldest_live_tab_leads_after_listening() {
        let t = Timestamp::from_unix_ms;
        let mut election = Election::new(peer(5), t(1_000));
        assert_eq!(election.role(t(1_000)), Role::Undecided, "still listening");
        assert!(election.heard(peer(9), t(500), t(1_100)), "an older tab");
        assert!(!election.heard(peer(9), t(500), t(1_200)), "known now");
        assert!(!election.heard(peer(5), t(1_000), t(1_200)), "our own echo");
        assert_eq!(election.role(t(1_300)), Role::Follower);
        // A newer tab does not take over; ties in age go to the smaller id.
        election.heard(peer(1), t(2_000), t(2_000));
        assert_eq!(election.role(t(2_000)), Role::Follower);
        election.left(peer(9));
        assert_eq!(election.role(t(2_000)), Role::Leader, "the older one left");
        election.heard(peer(2), t(1_000), t(2_100));
        assert_eq!(
            election.role(t(2_100)),
            Role::Follower,
            "same age, smaller id"
        );
        assert!(election.is_alive(peer(2), t(2_100)));
        // Silence for longer than the timeout counts as gone.
        let later = t(2_100)
            .saturating_add(PEER_TIMEOUT)
            .saturating_add(Duration::from_millis(1));
        assert!(!election.is_alive(peer(2), later));
        assert_eq!(election.role(later), Role::Leader);
    }

    #[test]
    fn the_next_deadline_is_the_end_of_listening_then_the_first_peer_expiry() {
        let t = Timestamp::from_unix_ms;
        let mut election = Election::new(peer(5), t(1_000));
        assert_eq!(election.next_deadline(), Some(t(1_300)));
        assert_eq!(election.role(t(1_300)), Role::Leader);
        assert_eq!(election.next_deadline(), None, "alone");
        election.heard(peer(1), t(0), t(1_100));
        election.heard(peer(2), t(0), t(1_050));
        let first_expiry = t(1_050)
            .saturating_add(PEER_TIMEOUT)
            .saturating_add(Duration::from_millis(1));
        assert_eq!(election.role(t(1_400)), Role::Follower);
        assert_eq!(election.next_deadline(), Some(first_expiry));
    }
}
