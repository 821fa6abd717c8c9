//! Throttling of failed bearer authentication: an address that keeps presenting tokens that
//! open nothing (401) is answered 429 for a while, before any token lookup, so guessing the
//! admin token or flooding the store thread with lookups costs the guesser, not the collector.
//!
//! Failures are counted per address (as [`address_key`] counts it: IPv6 by its /64) in a token
//! bucket: `burst` failures at once, refilled at `per_minute`. When a failure finds the bucket
//! empty, the address is blocked until the bucket has a token again; while blocked, every call
//! with a token (right or wrong) is 429 with `Retry-After`. Successes cost nothing.

use crate::network::{address_key, Limiter, Rate};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed authentications per address, and who is blocked until when.
#[derive(Debug)]
pub struct AuthThrottle {
    failures: Limiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl AuthThrottle {
    /// A throttle allowing `rate` failures (off when either number is zero).
    pub fn new(rate: Rate) -> AuthThrottle {
        AuthThrottle {
            failures: Limiter::new(rate),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// How long `ip` must still wait, if it is blocked now.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let key = address_key(ip);
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *blocked.get(&key)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&key);
            return None;
        }
        let wait = until - now;
        Some(Duration::from_secs(
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        ))
    }

    /// Counts a failure of `ip`; when it used up the allowance, blocks the address and returns
    /// how long.
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let key = address_key(ip);
        let wait = self.failures.check(&key).err()?;
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Instant::now() + wait);
        Some(wait)
    }

    /// Forgets addresses no longer blocked and full buckets.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, until| *until > now);
        self.failures.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_once_its_failures_are_used_up_and_others_are_not() {
        let throttle = AuthThrottle::new(Rate {
            per_minute: 6,
            burst: 3,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(throttle.blocked(a).is_none());
            assert!(throttle.failed(a).is_none());
        }
        let wait = throttle.failed(a).unwrap();
        assert!((1..=10).contains(&wait.as_secs()), "{wait:?}");
        assert!(throttle.blocked(a).is_some());
        assert!(throttle.blocked(b).is_none());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..4 {
            throttle.failed(v6);
        }
        assert!(
            throttle
                .blocked("2001:db8::ffff".parse().unwrap())
                .is_some(),
            "the same /64"
        );
        let off = AuthThrottle::new(Rate {
            per_minute: 0,
            burst: 0,
        });
        assert!((0..100).all(|_| off.failed(a).is_none()));
    }
}
