//! Who a request comes from and how much it may send: the client address (the peer, or behind
//! a trusted proxy the last untrusted `X-Forwarded-For` entry), the admin address allowlist, and
//! token-bucket rate limits per client address and per API key.
//!
//! The client address is used for these decisions only: it is never stored with events and
//! never logged. Rate limits are `governor`'s GCRA, which is a token bucket: `burst` requests
//! at once, refilled at `per_minute`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A list of address ranges (CIDR; a bare address is a /32 or /128).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

/// A text that is not an address or CIDR range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadNetwork(pub String);

impl fmt::Display for BadNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an address or CIDR range (e.g. 10.0.0.0/8, ::1)",
            self.0
        )
    }
}

impl std::error::Error for BadNetwork {}

/// Parses one CIDR range or address.
pub fn parse_network(text: &str) -> Result<IpNet, BadNetwork> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| BadNetwork(text.to_owned()))
}

impl Networks {
    /// These ranges.
    pub fn new(ranges: Vec<IpNet>) -> Networks {
        Networks(ranges)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[IpNet] {
        &self.0
    }

    /// Whether no range is given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the ranges (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Who a request comes from, as far as the collector can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress {
    /// The address limits are counted against.
    pub ip: IpAddr,
    /// Whether `ip` is known to be the client's: `false` when a trusted proxy sent no usable
    /// `X-Forwarded-For` (none, or an entry that is not an address), so `ip` is only the last
    /// trusted hop. The admin allowlist admits only a vouched address.
    pub vouched: bool,
}

/// The client's address: the peer, unless the peer is a trusted proxy, then the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy (entries further left are the client's
/// own claims and are not believed). `forwarded_for` holds the header's values in order, `None`
/// for one that is not text. When the chain of trusted hops ends in something that is not an
/// address, or in nothing, the answer is the last trusted hop, not vouched for: a client that
/// garbles the header must not borrow a proxy's address.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = Option<&'a str>>,
    trusted: &Networks,
) -> ClientAddress {
    if !trusted.contains(peer) {
        return ClientAddress {
            ip: peer,
            vouched: true,
        };
    }
    let mut client = ClientAddress {
        ip: peer,
        vouched: false,
    };
    for value in forwarded_for.rev() {
        let Some(value) = value else {
            return ClientAddress {
                vouched: false,
                ..client
            };
        };
        for entry in value.rsplit(',') {
            match IpAddr::from_str(entry.trim()) {
                Ok(ip) if trusted.contains(ip) => {
                    client = ClientAddress { ip, vouched: true };
                }
                Ok(ip) => return ClientAddress { ip, vouched: true },
                Err(_) => {
                    return ClientAddress {
                        vouched: false,
                        ..client
                    }
                }
            }
        }
    }
    client
}

/// What per-address limits (rate, body memory, connections) count a client address as: an IPv4
/// address (or IPv4-mapped IPv6) alone, an IPv6 address by its /64, which is what one subscriber
/// is usually given, so rotating through a prefix gains nothing.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A token bucket's size: `burst` at once, refilled at `per_minute`. Zero turns it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests a minute, sustained.
    pub per_minute: u32,
    /// Requests at once.
    pub burst: u32,
}

/// Per-key token buckets.
pub struct Limiter<K: std::hash::Hash + Eq + Clone> {
    buckets: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: std::hash::Hash + Eq + Clone> fmt::Debug for Limiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.buckets.is_some() {
            "Limiter(on)"
        } else {
            "Limiter(off)"
        })
    }
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    /// Buckets of `rate` (off when either number is zero).
    pub fn new(rate: Rate) -> Limiter<K> {
        let buckets = NonZeroU32::new(rate.per_minute)
            .zip(NonZeroU32::new(rate.burst))
            .and_then(|(per_minute, burst)| {
                Quota::with_period(Duration::from_secs(60) / per_minute.get())
                    .map(|q| q.allow_burst(burst))
            })
            .map(DefaultKeyedRateLimiter::keyed);
        Limiter { buckets }
    }

    /// Takes one token from `key`'s bucket, or says how long until there is one (at least a
    /// second: `Retry-After` counts in seconds).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        buckets.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .max(Duration::from_secs(1))
        })
    }

    /// Forgets full buckets, so idle clients take no memory.
    pub fn forget_idle(&self) {
        if let Some(buckets) = &self.buckets {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Networks {
        Networks::new(list.iter().map(|t| parse_network(t).unwrap()).collect())
    }

    #[test]
    fn networks_parse_and_match() {
        let allowed = nets(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
        for (ip, inside) in [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("2001:db8::1", true),
            ("::ffff:10.9.9.9", true),
        ] {
            assert_eq!(allowed.contains(ip.parse().unwrap()), inside, "{ip}");
        }
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("shop.example")
            .unwrap_err()
            .to_string()
            .contains("CIDR"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("127.0.0.1");
        for (peer, headers, client, vouched) in [
            (proxy, vec![Some("203.0.113.9")], "203.0.113.9", true),
            (
                proxy,
                vec![Some("198.51.100.1, 203.0.113.9, 10.0.0.2")],
                "203.0.113.9",
                true,
            ),
            (
                proxy,
                vec![Some("198.51.100.1"), Some("203.0.113.9")],
                "203.0.113.9",
                true,
            ),
            (proxy, vec![Some("10.0.0.4, 10.0.0.3")], "10.0.0.4", true),
            // Nothing usable from a trusted proxy: its own address, not vouched for.
            (proxy, vec![], "127.0.0.1", false),
            (proxy, vec![Some("garbage, 10.0.0.3")], "10.0.0.3", false),
            (proxy, vec![Some("10.0.0.3, ")], "127.0.0.1", false),
            (proxy, vec![Some("10.0.0.5"), None], "127.0.0.1", false),
            (
                ip("198.51.100.5"),
                vec![Some("203.0.113.9")],
                "198.51.100.5",
                true,
            ),
        ] {
            assert_eq!(
                client_ip(peer, headers.clone().into_iter(), &trusted),
                ClientAddress {
                    ip: ip(client),
                    vouched
                },
                "{peer} {headers:?}"
            );
        }
    }

    #[test]
    fn buckets_allow_the_burst_then_say_how_long_to_wait() {
        let limiter = Limiter::new(Rate {
            per_minute: 60,
            burst: 2,
        });
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        let wait = limiter.check(&"a").unwrap_err();
        assert!((1..=2).contains(&wait.as_secs()), "{wait:?}");
        assert!(limiter.check(&"b").is_ok(), "one bucket per key");
        let off = Limiter::new(Rate {
            per_minute: 0,
            burst: 0,
        });
        assert!((0..100).all(|_| off.check(&"a").is_ok()));
    }
}
