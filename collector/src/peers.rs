//! The per-address connection cap: how many connections each client address holds at once, so
//! one address cannot take every place under the global cap.
//!
//! Counted by the peer's address on accept (before TLS, so before any header could be believed),
//! as [`address_key`] says (an IPv6 address by its /64). Trusted proxies are exempt: every client behind one
//! shares its address.

use crate::network::{address_key, Networks};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Connections open per address, and the most each may hold.
#[derive(Debug)]
pub struct PeerCounts {
    cap: usize,
    exempt: Networks,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place under its address's cap; given back when dropped.
#[derive(Debug)]
pub struct PeerSlot {
    counts: Arc<PeerCounts>,
    key: Option<IpAddr>,
}

impl PeerCounts {
    /// At most `cap` connections per address (no cap when 0); `exempt` addresses have none.
    pub fn new(cap: usize, exempt: Networks) -> Arc<PeerCounts> {
        Arc::new(PeerCounts {
            cap,
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, or `None` if its address holds the cap.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        if self.cap == 0 || self.exempt.contains(ip) {
            return Some(PeerSlot {
                counts: Arc::clone(self),
                key: None,
            });
        }
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            counts: Arc::clone(self),
            key: Some(key),
        })
    }

    /// How many addresses hold connections now.
    pub fn addresses(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::parse_network;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_the_cap_and_gets_places_back() {
        let counts = PeerCounts::new(2, Networks::default());
        let a = counts.take(ip("192.0.2.1")).unwrap();
        let _b = counts.take(ip("192.0.2.1")).unwrap();
        assert!(counts.take(ip("192.0.2.1")).is_none());
        assert!(
            counts.take(ip("::ffff:192.0.2.1")).is_none(),
            "IPv4-mapped is the same address"
        );
        assert!(counts.take(ip("192.0.2.2")).is_some(), "another address");
        drop(a);
        assert!(counts.take(ip("192.0.2.1")).is_some());
        assert_eq!(counts.addresses(), 1, "places given back are forgotten");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_proxies_and_zero_have_no_cap() {
        let counts = PeerCounts::new(1, Networks::new(vec![parse_network("10.0.0.1").unwrap()]));
        let _a = counts.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(counts.take(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(counts.take(ip("2001:db8:1:3::1")).is_some());
        let proxy: Vec<_> = (0..5).map(|_| counts.take(ip("10.0.0.1"))).collect();
        assert!(proxy.iter().all(Option::is_some));
        let off = PeerCounts::new(0, Networks::default());
        let many: Vec<_> = (0..5).map(|_| off.take(ip("192.0.2.1"))).collect();
        assert!(many.iter().all(Option::is_some));
    }
}
