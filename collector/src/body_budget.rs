//! Memory for request bodies, shared by every request: a body is read only once its share is
//! reserved (its declared length, or the limit), so stalled or slow bodies cannot hold more than
//! the budget between them, and one client address cannot hold more than its share of it, so a
//! single hostile address cannot starve everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Kibibytes reserved per client address.
type Held = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// The budget: a semaphore of KiB, and what each address holds.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    capacity_kib: u32,
    per_client_kib: u32,
    held: Held,
}

/// A reservation; dropping it gives the memory back.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    client: Option<(IpAddr, u32)>,
    held: Held,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((ip, kib)) = self.client {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = held.get_mut(&ip) {
                *slot = slot.saturating_sub(kib);
                if *slot == 0 {
                    held.remove(&ip);
                }
            }
        }
    }
}

fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl BodyBudget {
    /// A budget of `total` bytes, of which one client address may hold `per_client`.
    pub fn new(total: usize, per_client: usize) -> BodyBudget {
        let capacity_kib = kib(total);
        BodyBudget {
            kib: Arc::new(Semaphore::new(
                usize::try_from(capacity_kib)
                    .unwrap_or(usize::MAX)
                    .min(Semaphore::MAX_PERMITS),
            )),
            capacity_kib,
            per_client_kib: kib(per_client).min(capacity_kib),
            held: Arc::default(),
        }
    }

    /// Reserves `bytes` for `client` until the reservation is dropped; `None` when the budget
    /// or the client's share is spent.
    pub fn reserve(&self, client: Option<IpAddr>, bytes: usize) -> Option<Reservation> {
        let wanted = kib(bytes).min(self.capacity_kib);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ip) = client {
            let has = held.get(&ip).copied().unwrap_or(0);
            if has.saturating_add(wanted) > self.per_client_kib {
                return None;
            }
        }
        let permit = Arc::clone(&self.kib).try_acquire_many_owned(wanted).ok()?;
        if let Some(ip) = client {
            *held.entry(ip).or_default() += wanted;
        }
        Some(Reservation {
            _permit: permit,
            client: client.map(|ip| (ip, wanted)),
            held: Arc::clone(&self.held),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_and_each_clients_share_are_bounded_and_given_back() {
        let budget = BodyBudget::new(8 * 1024, 4 * 1024);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = budget.reserve(Some(a), 3 * 1024).unwrap();
        assert!(
            budget.reserve(Some(a), 2 * 1024).is_none(),
            "over a's share"
        );
        let second = budget.reserve(Some(b), 4 * 1024).unwrap();
        assert!(budget.reserve(Some(b), 1024).is_none(), "over b's share");
        assert!(budget.reserve(None, 2 * 1024).is_none(), "over the budget");
        drop(first);
        assert!(budget.reserve(Some(a), 4 * 1024).is_some(), "given back");
        drop(second);
        assert!(budget.held.lock().unwrap().get(&b).is_none());
    }
}
