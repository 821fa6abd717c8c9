//! The queue of admitted events waiting to be sent, oldest first, with the byte total of their
//! wire texts kept in step by every change (the batch trigger and the snapshot budget read it).
//!
//! Every operation that removes events answers how many it removed, so the machine can count
//! the drop by reason; none of them decides why.

use crate::event::QueuedEvent;
use crate::id::EventId;
use crate::purpose::PurposeSet;
use crate::time::{Duration, Timestamp};
use alloc::vec::Vec;

/// Admitted events, oldest first, and the total length of their wire texts.
///
/// A `Vec` rather than a `VecDeque`: the deque's ring-buffer code costs more wasm than the
/// occasional move of the front costs time.
#[derive(Clone, Debug, Default)]
pub(super) struct Queue {
    events: Vec<QueuedEvent>,
    bytes: usize,
}

impl Queue {
    /// How many events wait.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The total length of the waiting events' wire texts.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The waiting events, oldest first.
    pub(super) fn iter(&self) -> core::slice::Iter<'_, QueuedEvent> {
        self.events.iter()
    }

    /// Whether an event with this id waits.
    pub(super) fn contains(&self, id: EventId) -> bool {
        self.events.iter().any(|e| e.id == id)
    }

    /// Appends a newly admitted event.
    pub(super) fn push(&mut self, event: QueuedEvent) {
        self.bytes += event.wire.len();
        self.events.push(event);
    }

    /// Takes the first `count` events (in order) and leaves the rest.
    pub(super) fn take_front(&mut self, count: usize) -> Vec<QueuedEvent> {
        let taken = take_front(&mut self.events, count);
        self.bytes -= taken.iter().map(|e| e.wire.len()).sum::<usize>();
        taken
    }

    /// Puts `events` (oldest first) back at the front.
    pub(super) fn requeue_front(&mut self, mut events: Vec<QueuedEvent>) {
        self.bytes += events.iter().map(|e| e.wire.len()).sum::<usize>();
        events.append(&mut self.events);
        self.events = events;
    }

    /// Drops the oldest events beyond `max`. Answers how many went.
    pub(super) fn trim_to(&mut self, max: usize) -> usize {
        let overflow = self.events.len().saturating_sub(max);
        if overflow > 0 {
            self.take_front(overflow);
        }
        overflow
    }

    /// Drops every event that needs a purpose in `withdrawn`. Answers how many went.
    pub(super) fn purge(&mut self, withdrawn: PurposeSet) -> usize {
        self.retain(|e| !e.purposes.intersects(withdrawn))
    }

    /// Drops every event captured longer than `max_age` before `now`. Answers how many went.
    pub(super) fn drop_older_than(&mut self, now: Timestamp, max_age: Duration) -> usize {
        self.retain(|e| now.saturating_since(e.captured_at) <= max_age)
    }

    fn retain(&mut self, keep: impl FnMut(&QueuedEvent) -> bool) -> usize {
        let before = self.events.len();
        self.events.retain(keep);
        let removed = before - self.events.len();
        if removed > 0 {
            self.bytes = self.events.iter().map(|e| e.wire.len()).sum();
        }
        removed
    }
}

/// Takes the first `count` items of `items` (in order) and leaves the rest. The same moves as
/// `drain(..count).collect()` (the rest goes to a new allocation instead of down the old one), in
/// less wasm than `Drain` and `rotate_left` cost.
fn take_front<T>(items: &mut Vec<T>, count: usize) -> Vec<T> {
    let rest = items.split_off(count.min(items.len()));
    core::mem::replace(items, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Uuid;
    use alloc::string::String;

    fn event(n: u8, purposes: PurposeSet, wire_len: usize) -> QueuedEvent {
        let mut id = [0u8; 16];
        id[15] = n;
        QueuedEvent {
            id: EventId(Uuid::from_bytes(id)),
            purposes,
            captured_at: Timestamp::from_unix_ms(u64::from(n) * 1000),
            attempts: 0,
            anonymous_id: None,
            durable: true,
            wire: String::from("x").repeat(wire_len),
        }
    }

    fn ids(queue: &Queue) -> Vec<u8> {
        queue.iter().map(|e| e.id.0.as_bytes()[15]).collect()
    }

    #[test]
    fn the_byte_total_follows_every_change() {
        let a = PurposeSet::only(1);
        let b = PurposeSet::only(2);
        let mut queue = Queue::default();
        for n in 0..6 {
            queue.push(event(
                n,
                if n % 2 == 0 { a } else { b },
                10 + usize::from(n),
            ));
        }
        assert_eq!(queue.bytes(), 10 + 11 + 12 + 13 + 14 + 15);

        let front = queue.take_front(2);
        assert_eq!(front.len(), 2);
        assert_eq!(ids(&queue), [2, 3, 4, 5]);
        assert_eq!(queue.bytes(), 12 + 13 + 14 + 15);

        queue.requeue_front(front);
        assert_eq!(ids(&queue), [0, 1, 2, 3, 4, 5]);
        assert_eq!(queue.bytes(), 75);

        assert_eq!(queue.purge(b), 3);
        assert_eq!(ids(&queue), [0, 2, 4]);
        assert_eq!(queue.bytes(), 10 + 12 + 14);

        assert_eq!(queue.trim_to(2), 1);
        assert_eq!(ids(&queue), [2, 4]);
        assert_eq!(queue.bytes(), 12 + 14);
        assert_eq!(queue.trim_to(5), 0);

        // Captured at 2 s and 4 s: at 5 s with a 2 s maximum age only the second is fresh.
        let now = Timestamp::from_unix_ms(5000);
        assert_eq!(queue.drop_older_than(now, Duration::from_millis(2000)), 1);
        assert_eq!(ids(&queue), [4]);
        assert_eq!(queue.bytes(), 14);
        assert!(queue.contains(event(4, a, 0).id));
        assert!(!queue.contains(event(2, a, 0).id));

        assert_eq!(queue.take_front(9).len(), 1);
        assert!(queue.is_empty());
        assert_eq!(queue.bytes(), 0);
    }
}
