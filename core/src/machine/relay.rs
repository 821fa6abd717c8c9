//! The leader's side of relaying: the batches other tabs handed over that are in flight, whom
//! to answer for each, and the ids of relayed events lately delivered (so that a queue a
//! departed tab left in storage does not bring them back).

use crate::id::{BatchId, EventId};
use crate::json::{self, Value};
use crate::limits::MAX_DOCUMENT_DEPTH;
use crate::purpose::{PurposeCatalog, PurposeSet};
use crate::tabs::PeerId;
use crate::time::Timestamp;
use alloc::vec::Vec;

/// How many delivered relayed event ids the leader remembers.
pub const REMEMBERED_DELIVERIES: usize = 4096;

/// A relayed batch in flight.
#[derive(Clone, Debug)]
pub(super) struct Relayed {
    pub(super) batch_id: BatchId,
    /// The tab to answer.
    pub(super) to: PeerId,
    pub(super) ids: Vec<EventId>,
    deadline: Timestamp,
}

/// What the leader holds for other tabs. See the module documentation.
#[derive(Clone, Debug, Default)]
pub(super) struct Relays {
    flights: Vec<Relayed>,
    /// A ring of the last [`REMEMBERED_DELIVERIES`] relayed event ids delivered.
    delivered: Vec<EventId>,
    next: usize,
}

/// What a relayed body holds, as far as the leader checks it.
pub(super) struct RelayedBatch {
    pub(super) batch_id: BatchId,
    pub(super) ids: Vec<EventId>,
    /// The union of the events' purposes; `None` when one names a purpose this page's
    /// configuration does not declare.
    pub(super) purposes: Option<PurposeSet>,
}

/// Reads what the leader needs from a relayed wire batch: its id, its events' ids and
/// purposes. `None` when it is not a wire batch.
pub(super) fn read_batch(body: &str, catalog: &PurposeCatalog) -> Option<RelayedBatch> {
    let batch = json::parse(body, MAX_DOCUMENT_DEPTH).ok()?;
    let batch_id = BatchId(crate::id::Uuid::parse(batch.get("batch_id")?.as_str()?)?);
    let events = batch.get("events")?.as_array()?;
    let mut ids = Vec::with_capacity(events.len());
    let mut purposes = Some(PurposeSet::EMPTY);
    for event in events {
        ids.push(EventId(crate::id::Uuid::parse(event.get("id")?.as_str()?)?));
        let names = event.get("purposes").and_then(Value::as_array)?;
        purposes = match (purposes, catalog.set_of_values(names)) {
            (Some(all), Ok(these)) => Some(all.union(these)),
            _ => None,
        };
    }
    Some(RelayedBatch {
        batch_id,
        ids,
        purposes,
    })
}

impl Relays {
    /// Records a relayed batch sent at `now`, answered by `deadline` at the latest.
    pub(super) fn push(&mut self, batch: RelayedBatch, to: PeerId, deadline: Timestamp) {
        self.flights.push(Relayed {
            batch_id: batch.batch_id,
            to,
            ids: batch.ids,
            deadline,
        });
    }

    /// Whether a relayed batch in flight carries the event `id`.
    pub(super) fn carries(&self, id: EventId) -> bool {
        self.flights.iter().any(|f| f.ids.contains(&id))
    }

    /// Removes and answers the relayed batch `batch_id`, if it is one.
    pub(super) fn settle(&mut self, batch_id: BatchId) -> Option<Relayed> {
        let position = self.flights.iter().position(|f| f.batch_id == batch_id)?;
        Some(self.flights.swap_remove(position))
    }

    /// The relayed batches whose answer is overdue at `now`.
    pub(super) fn timed_out(&self, now: Timestamp) -> Vec<BatchId> {
        self.flights
            .iter()
            .filter(|f| f.deadline <= now)
            .map(|f| f.batch_id)
            .collect()
    }

    /// The earliest relayed batch's deadline.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.flights.iter().map(|f| f.deadline).min()
    }

    /// Remembers that these relayed events were delivered.
    pub(super) fn delivered(&mut self, ids: &[EventId]) {
        for &id in ids {
            if self.delivered.len() < REMEMBERED_DELIVERIES {
                self.delivered.push(id);
            } else if let Some(slot) = self.delivered.get_mut(self.next) {
                *slot = id;
            }
            self.next = (self.next + 1) % REMEMBERED_DELIVERIES;
        }
    }

    /// Whether a relayed event with this id was delivered lately.
    pub(super) fn was_delivered(&self, id: EventId) -> bool {
        self.delivered.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Uuid;
    use crate::purpose::Purpose;
    use alloc::vec;

    fn id(n: u16) -> EventId {
        let mut bytes = [0u8; 16];
        bytes[14..].copy_from_slice(&n.to_be_bytes());
        EventId(Uuid::from_bytes(bytes))
    }

    #[test]
    fn the_delivered_ring_keeps_the_latest_ids() {
        let mut relays = Relays::default();
        let first: Vec<EventId> = (0..10).map(id).collect();
        relays.delivered(&first);
        assert!(relays.was_delivered(id(3)));
        let many: Vec<EventId> = (10..10 + REMEMBERED_DELIVERIES as u16).map(id).collect();
        relays.delivered(&many);
        assert!(!relays.was_delivered(id(3)), "pushed out");
        assert!(relays.was_delivered(id(10 + REMEMBERED_DELIVERIES as u16 - 1)));
        assert_eq!(relays.delivered.len(), REMEMBERED_DELIVERIES);
    }

    #[test]
    fn a_relayed_body_is_read_for_its_ids_and_purposes() {
        let p = |n: &str| Purpose::parse(n).unwrap();
        let catalog =
            PurposeCatalog::new(vec![p("necessary")], vec![p("analytics"), p("ads")], &[]).unwrap();
        let body = r#"{"version":1,"batch_id":"3f1c2a9e-7b4d-4e8a-9c2f-5d6e7f809a1b","events":[
            {"id":"00000000-0000-4000-8000-000000000001","purposes":["analytics"]},
            {"id":"00000000-0000-4000-8000-000000000002","purposes":["necessary","ads"]}]}"#;
        let batch = read_batch(body, &catalog).unwrap();
        assert_eq!(batch.ids.len(), 2);
        assert_eq!(
            batch.purposes,
            Some(catalog.set_of(["necessary", "analytics", "ads"]).unwrap())
        );
        let unknown = body.replace("\"ads\"", "\"telemetry\"");
        assert_eq!(read_batch(&unknown, &catalog).unwrap().purposes, None);
        for bad in ["", "{}", "[]", r#"{"batch_id":"x","events":[]}"#] {
            assert!(read_batch(bad, &catalog).is_none(), "{bad}");
        }
    }
}
