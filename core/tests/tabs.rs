//! One uploader across tabs: several machines of one site, connected by a scripted broadcast
//! channel and answered by a scripted endpoint that does **not** deduplicate. Only the leading
//! tab ever sends; followers hand their batches over; when the leader goes, mid-flight, the
//! next one takes over and adopts what it left; every admitted event arrives exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use consentry_core::{Coordination, Liveness, PeerId, Role, SendOutcome, StorageKey};
use std::collections::{BTreeMap, HashMap};
use support::{status, Harness, CONFIG, FRESH};

/// The tabs of one site.
struct Site {
    tabs: Vec<Option<Harness>>,
    /// What closed tabs left in storage.
    left_behind: Vec<(PeerId, BTreeMap<StorageKey, String>)>,
    /// Event ids in every batch the endpoint answered with 2xx, in order, duplicates kept.
    delivered: Vec<String>,
    /// Event ids the pages' calls were told were admitted.
    admitted: Vec<String>,
}

impl Site {
    fn new(tabs: u64, coordination: Coordination) -> Site {
        let mut site = Site {
            tabs: Vec::new(),
            left_behind: Vec::new(),
            delivered: Vec::new(),
            admitted: Vec::new(),
        };
        for n in 0..tabs {
            let mut tab = Harness::unstarted(CONFIG, [n + 1, 2, 3, 4]);
            tab.sdk.handle_coordination(tab.now, coordination);
            tab.start();
            site.tabs.push(Some(tab));
        }
        site.pump();
        site
    }

    fn tab(&mut self, n: usize) -> &mut Harness {
        self.tabs[n].as_mut().expect("an open tab")
    }

    fn open(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.tabs.len()).filter(|&n| self.tabs[n].is_some())
    }

    /// Delivers every broadcast to every other open tab, and offers a tab that asks the
    /// queues closed tabs left (gone) and open ones keep (alive), until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for from in 0..self.tabs.len() {
                let Some(tab) = self.tabs[from].as_mut() else {
                    continue;
                };
                let messages = std::mem::take(&mut tab.broadcasts);
                let asked = std::mem::take(&mut tab.adoption_requests) > 0;
                for message in messages {
                    moved = true;
                    for to in 0..self.tabs.len() {
                        if to == from {
                            continue;
                        }
                        if let Some(other) = self.tabs[to].as_mut() {
                            other.sdk.handle_message(other.now, &message);
                            other.drain();
                        }
                    }
                }
                if asked {
                    moved = true;
                    self.offer_queues(from);
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn offer_queues(&mut self, to: usize) {
        let mut offers = Vec::new();
        for (owner, storage) in &self.left_behind {
            for (key, text) in storage {
                if matches!(key, StorageKey::Queue(_)) {
                    offers.push((*owner, *key, text.clone(), Liveness::Gone));
                }
            }
        }
        for n in 0..self.tabs.len() {
            if let (Some(other), true) = (self.tabs[n].as_ref(), n != to) {
                for (key, text) in &other.storage {
                    if matches!(key, StorageKey::Queue(_)) {
                        offers.push((other.sdk.peer_id(), *key, text.clone(), Liveness::Alive));
                    }
                }
            }
        }
        for (owner, key, text, liveness) in offers {
            let tab = self.tabs[to].as_mut().unwrap();
            let taken = tab.sdk.adopt_queue(tab.now, &text, owner, liveness);
            tab.drain();
            if taken {
                for (gone, storage) in &mut self.left_behind {
                    if *gone == owner {
                        storage.remove(&key);
                    }
                }
            }
        }
    }

    /// Every open tab records `choices`; the others hear it as another tab's change.
    fn consent(&mut self, from: usize, choices: &[(&str, bool)]) {
        self.tab(from).consent(choices);
        let stored = self.tab(from).storage[&StorageKey::Consent].clone();
        for n in self.open().collect::<Vec<_>>() {
            if n != from {
                let tab = self.tab(n);
                tab.sdk.handle_consent_sync(tab.now, Some(&stored), &FRESH);
                tab.drain();
            }
        }
        self.pump();
    }

    fn track(&mut self, n: usize, name: &str) {
        if let Ok(id) = self.tab(n).track(name) {
            self.admitted.push(id.0.to_hyphenated());
        }
        self.pump();
    }

    /// Answers the oldest batch tab `n` sent; the endpoint records it only for a 2xx.
    fn answer(&mut self, n: usize, outcome: SendOutcome) -> bool {
        let tab = self.tab(n);
        if tab.pending.is_empty() {
            return false;
        }
        let transmission = tab.respond(outcome);
        if let SendOutcome::Status {
            code: 200..=299, ..
        } = outcome
        {
            let body: serde_json::Value = serde_json::from_str(&transmission.body).unwrap();
            for event in body["events"].as_array().unwrap() {
                self.delivered
                    .push(event["id"].as_str().unwrap().to_owned());
            }
        }
        self.pump();
        true
    }

    /// Moves every tab's clock forward in small steps, delivering messages between them.
    fn advance(&mut self, ms: u64) {
        let mut left = ms;
        while left > 0 {
            let step = left.min(100);
            for n in self.open().collect::<Vec<_>>() {
                self.tab(n).advance(step);
            }
            self.pump();
            left -= step;
        }
    }

    /// The tab's page goes away mid-flight: it hides (persisting, saying goodbye) and is gone;
    /// what it had sent is never answered; its storage stays.
    fn close(&mut self, n: usize) {
        let tab = self.tab(n);
        tab.hide();
        tab.sdk.handle_leaving(tab.now);
        tab.drain();
        self.pump();
        let tab = self.tabs[n].take().unwrap();
        self.left_behind.push((tab.sdk.peer_id(), tab.storage));
    }

    /// Answers every batch with 200 until nothing is left anywhere.
    fn settle(&mut self) {
        for _ in 0..200 {
            let mut any = false;
            for n in self.open().collect::<Vec<_>>() {
                while self.answer(n, status(200)) {
                    any = true;
                }
            }
            self.advance(2_000);
            let quiet = self.open().collect::<Vec<_>>().into_iter().all(|n| {
                let tab = self.tabs[n].as_ref().unwrap();
                tab.sdk.queued() == 0 && tab.sdk.in_flight() == 0 && tab.pending.is_empty()
            });
            if quiet && !any {
                return;
            }
        }
        panic!("the site never settled");
    }

    fn senders(&self) -> Vec<usize> {
        (0..self.tabs.len())
            .filter(|&n| self.tabs[n].as_ref().is_some_and(|t| !t.sent.is_empty()))
            .collect()
    }

    fn assert_exactly_once(&self) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &self.delivered {
            *counts.entry(id).or_default() += 1;
        }
        let duplicates: Vec<_> = counts.iter().filter(|(_, &c)| c > 1).collect();
        assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
        let lost: Vec<_> = self
            .admitted
            .iter()
            .filter(|id| !counts.contains_key(id.as_str()))
            .collect();
        assert!(lost.is_empty(), "never delivered: {lost:?}");
    }
}

/// Three tabs under Web Locks, intermittent 500s and a dropped connection, the leader closed
/// with batches in flight, then a healthy endpoint.
#[test]
fn one_tab_sends_and_every_event_arrives_exactly_once_when_the_leader_goes() {
    let mut site = Site::new(3, Coordination::Locks);
    for n in 0..3 {
        assert_eq!(site.tab(n).sdk.role(), Role::Undecided);
    }
    let role = |site: &mut Site, n: usize, role: Role| {
        let tab = site.tab(n);
        tab.sdk.handle_role(tab.now, role);
        tab.drain();
        site.pump();
    };
    role(&mut site, 0, Role::Leader);
    role(&mut site, 1, Role::Follower);
    role(&mut site, 2, Role::Follower);
    site.consent(0, &[("analytics", true)]);

    for round in 0..4 {
        for n in 0..3 {
            for e in 0..3 {
                site.track(n, &format!("t{n}-r{round}-e{e}"));
            }
        }
        // Intermittent trouble at the endpoint.
        site.answer(0, status(500));
        site.answer(0, SendOutcome::NetworkError);
        site.advance(1_500);
        site.answer(0, status(200));
        site.advance(3_000);
    }
    assert_eq!(site.senders(), [0], "only the leader talks to the endpoint");
    assert!(
        site.tab(0).sdk.stats().relayed > 0,
        "the followers' batches went through it"
    );

    // The leader's tab closes with batches in flight: the endpoint never answers them.
    for n in 0..3 {
        site.track(n, &format!("last-{n}"));
    }
    site.advance(2_500);
    assert!(!site.tab(0).pending.is_empty(), "something is in flight");
    site.close(0);
    role(&mut site, 1, Role::Leader);
    for n in [1, 2] {
        site.track(n, &format!("after-{n}"));
    }
    site.settle();

    assert_eq!(site.senders(), [1], "the new leader alone sends");
    assert!(
        site.tab(1).sdk.stats().restored > 0,
        "the new leader adopted what the old one left"
    );
    assert!(
        site.tab(2).sdk.stats().retries > 0,
        "the follower handed its unanswered batch to the new leader"
    );
    site.assert_exactly_once();
    for n in [1, 2] {
        site.tab(n).assert_accounting();
    }
}

/// Without Web Locks: the tabs elect the oldest by heartbeats; the leader's goodbye hands over
/// at once, a silent leader after its timeout.
#[test]
fn without_locks_the_tabs_elect_one_sender_by_heartbeats() {
    let mut site = Site::new(3, Coordination::Heartbeats);
    site.advance(500);
    let roles: Vec<Role> = (0..3).map(|n| site.tab(n).sdk.role()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == Role::Leader).count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == Role::Follower).count(),
        2,
        "{roles:?}"
    );
    let leader = roles.iter().position(|r| *r == Role::Leader).unwrap();
    site.consent(leader, &[("analytics", true)]);
    for n in 0..3 {
        for e in 0..4 {
            site.track(n, &format!("t{n}-e{e}"));
        }
    }
    site.advance(2_500);
    site.answer(leader, status(503));
    site.advance(2_500);
    assert_eq!(site.senders(), [leader]);

    site.close(leader);
    let roles: Vec<(usize, Role)> = site
        .open()
        .collect::<Vec<_>>()
        .into_iter()
        .map(|n| (n, site.tab(n).sdk.role()))
        .collect();
    assert_eq!(
        roles.iter().filter(|(_, r)| *r == Role::Leader).count(),
        1,
        "the goodbye hands over at once: {roles:?}"
    );
    site.settle();
    site.assert_exactly_once();
}

/// A follower's batch the leader cannot vouch for yet (its consent has not caught up) is
/// deferred, not sent; a purpose the leader does not know is refused.
#[test]
fn the_leader_sends_only_what_its_own_consent_covers() {
    let mut site = Site::new(2, Coordination::Locks);
    for (n, r) in [(0, Role::Leader), (1, Role::Follower)] {
        let tab = site.tab(n);
        tab.sdk.handle_role(tab.now, r);
        tab.drain();
    }
    site.pump();
    // Only the follower has heard of the grant so far.
    site.tab(1).consent(&[("analytics", true)]);
    site.track(1, "Product Viewed");
    site.tab(1).flush();
    site.pump();
    assert!(
        site.tab(0).pending.is_empty(),
        "not sent: the leader has not granted analytics"
    );
    assert!(
        site.tab(1).sdk.in_flight() == 0,
        "deferred back to the follower"
    );
    let stored = site.tab(1).storage[&StorageKey::Consent].clone();
    let leader = site.tab(0);
    leader
        .sdk
        .handle_consent_sync(leader.now, Some(&stored), &FRESH);
    leader.drain();
    site.advance(1_500);
    assert_eq!(
        site.tab(0).pending.len(),
        1,
        "sent once the leader's consent caught up"
    );
    site.settle();
    site.assert_exactly_once();
}

/// A flush asked for before the page knows its role waits for it instead of finishing empty.
#[test]
fn a_flush_before_the_role_is_known_waits_for_it() {
    let mut site = Site::new(1, Coordination::Locks);
    site.tab(0).consent(&[("analytics", true)]);
    site.track(0, "early");
    site.tab(0).flush();
    assert!(!site.tab(0).sdk.is_idle(), "the flush is still under way");
    assert!(
        site.tab(0).sent.is_empty(),
        "and nothing was sent undecided"
    );
    let tab = site.tab(0);
    tab.sdk.handle_role(tab.now, Role::Leader);
    tab.drain();
    assert_eq!(site.tab(0).sent.len(), 1, "sent as soon as it leads");
    site.answer(0, status(200));
    assert!(site.tab(0).sdk.is_idle());
    site.assert_exactly_once();
}

/// A follower that freezes keeps what it handed over: the leader's answer settles it, and
/// nothing is handed over twice.
#[test]
fn a_follower_that_freezes_keeps_its_relayed_batch_until_the_answer() {
    let mut site = Site::new(2, Coordination::Locks);
    for (n, r) in [(0, Role::Leader), (1, Role::Follower)] {
        let tab = site.tab(n);
        tab.sdk.handle_role(tab.now, r);
        tab.drain();
    }
    site.pump();
    site.consent(0, &[("analytics", true)]);
    site.answer(0, status(200));
    site.track(1, "relayed");
    site.tab(1).flush();
    site.pump();
    assert_eq!(site.tab(0).pending.len(), 1, "the leader sends it");
    let tab = site.tab(1);
    tab.sdk.handle_role(tab.now, Role::Undecided);
    tab.drain();
    site.pump();
    assert_eq!(
        site.tab(1).sdk.in_flight(),
        1,
        "still handed over, not taken back"
    );
    site.answer(0, status(200));
    let tab = site.tab(1);
    tab.sdk.handle_role(tab.now, Role::Follower);
    tab.drain();
    site.settle();
    site.assert_exactly_once();
}

/// A departed follower's stored queue is not adopted while the batch it handed over is still
/// in flight at the leader, nor thrown away: when that send fails (and no one is left to retry
/// it), the next look adopts the queue and every event still arrives once.
#[test]
fn the_leader_does_not_adopt_what_a_departed_follower_handed_it_and_is_still_in_flight() {
    let mut site = Site::new(2, Coordination::Locks);
    for (n, r) in [(0, Role::Leader), (1, Role::Follower)] {
        let tab = site.tab(n);
        tab.sdk.handle_role(tab.now, r);
        tab.drain();
    }
    site.pump();
    site.consent(0, &[("analytics", true)]);
    site.answer(0, status(200));
    for e in 0..3 {
        site.track(1, &format!("f{e}"));
    }
    site.tab(1).flush();
    site.pump();
    assert_eq!(site.tab(0).pending.len(), 1);
    site.close(1);
    site.offer_queues(0);
    assert_eq!(
        site.tab(0).sdk.stats().restored,
        0,
        "not while the relay is in flight"
    );
    site.answer(0, status(500));
    site.offer_queues(0);
    assert!(
        site.tab(0).sdk.stats().restored > 0,
        "adopted once the relay failed"
    );
    site.settle();
    site.assert_exactly_once();
}

/// A page that leaves before the election has named a sender does not take its events with it
/// into storage: it sends them itself, with keepalive.
#[test]
fn a_page_hidden_before_its_role_is_known_sends_its_own_queue_with_keepalive() {
    let mut site = Site::new(1, Coordination::Locks);
    site.tab(0).consent(&[("analytics", true)]);
    site.track(0, "clicked then left");
    assert!(site.tab(0).sent.is_empty(), "undecided: nothing sent yet");
    site.tab(0).hide();
    let tab = site.tab(0);
    assert_eq!(tab.sent.len(), 1, "sent at hide");
    assert!(tab.sent[0].transmission.keepalive);
    assert!(tab.sent_names().contains(&"clicked then left".to_owned()));
    site.answer(0, status(200));
    site.assert_exactly_once();
}
