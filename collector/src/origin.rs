//! Web origins: parsing the configured ones and deciding whether a request's `Origin` is allowed.
//!
//! An origin is `scheme://host[:port]` with scheme `http` or `https`, compared the way browsers
//! send it: lower-case, without a trailing slash, without the scheme's default port.

use std::fmt;
use std::str::FromStr;

/// A normalised web origin, e.g. `https://shop.example` or `http://localhost:8080`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why a text is not an origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidOrigin(String);

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an origin: expected http(s)://host[:port] with no path",
            self.0
        )
    }
}

impl std::error::Error for InvalidOrigin {}

impl Origin {
    /// Parses an origin as an operator writes it: case-insensitive, a trailing `/` allowed.
    pub fn parse(text: &str) -> Result<Origin, InvalidOrigin> {
        let invalid = || InvalidOrigin(text.to_owned());
        let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let parts = split(&lower).ok_or_else(invalid)?;
        let default_port = if parts.scheme == "https" { 443 } else { 80 };
        let mut out = format!("{}://{}", parts.scheme, parts.host);
        if let Some(port) = parts.port.filter(|&p| p != default_port) {
            out.push(':');
            out.push_str(&port.to_string());
        }
        Ok(Origin(out))
    }

    /// The origin as browsers write it in the `Origin` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Origin {
    type Err = InvalidOrigin;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Origin::parse(s)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

/// Splits `scheme://host[:port]`, refusing anything else (paths, user info, queries).
fn split(text: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (address, after) = inner.split_once(']')?;
        if address.is_empty()
            || !address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let host = rest.get(..address.len() + 2)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !host_ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
    };
    Some(Parts { scheme, host, port })
}

/// Whether `origin`, exactly as a browser sent it, is `http(s)://` on `localhost`, `127.0.0.1`
/// or `[::1]`, with any port.
pub fn is_loopback(origin: &str) -> bool {
    if origin.bytes().any(|b| b.is_ascii_uppercase()) || origin.ends_with('/') {
        return false;
    }
    split(origin).is_some_and(|p| matches!(p.host, "localhost" | "127.0.0.1" | "[::1]"))
}

/// Which origins a group of routes grants CORS to.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
    loopback: bool,
}

impl OriginPolicy {
    /// Grants exactly `allowed`, and any loopback origin when `loopback` is set.
    pub fn new(allowed: Vec<Origin>, loopback: bool) -> Self {
        OriginPolicy { allowed, loopback }
    }

    /// Grants nothing: requests without an `Origin` header are still served.
    pub fn none() -> Self {
        OriginPolicy::default()
    }

    /// Whether a request whose `Origin` header is `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.iter().any(|o| o.as_str() == origin) || (self.loopback && is_loopback(origin))
    }

    /// The origins granted by name.
    pub fn origins(&self) -> &[Origin] {
        &self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_origins_are_normalised_like_browsers_send_them() {
        for (input, expected) in [
            ("https://shop.example", "https://shop.example"),
            ("HTTPS://Shop.Example/", "https://shop.example"),
            ("https://shop.example:443", "https://shop.example"),
            ("http://shop.example:80", "http://shop.example"),
            ("https://localhost:8443", "https://localhost:8443"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://127.0.0.1:1", "http://127.0.0.1:1"),
        ] {
            assert_eq!(Origin::parse(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn things_that_are_not_origins_are_refused() {
        for input in [
            "",
            "shop.example",
            "ftp://shop.example",
            "https://",
            "https://shop.example/path",
            "https://user@shop.example",
            "https://shop.example:",
            "https://shop.example:0",
            "https://shop.example:70000",
            "https://shop.example?x=1",
            "https://[]:80",
            "https://[::1",
            "null",
        ] {
            assert!(Origin::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn loopback_origins_match_only_exact_loopback_hosts() {
        for (origin, expected) in [
            ("http://localhost:8080", true),
            ("https://localhost", true),
            ("https://127.0.0.1:8443", true),
            ("http://[::1]:5173", true),
            ("http://localhost.evil.example", false),
            ("http://127.0.0.2:80", false),
            ("http://LOCALHOST:80", false),
            ("http://localhost:80/", false),
            ("file://localhost", false),
            ("null", false),
        ] {
            assert_eq!(is_loopback(origin), expected, "{origin}");
        }
    }

    #[test]
    fn a_policy_grants_listed_and_optionally_loopback_origins() {
        let listed = vec![Origin::parse("https://shop.example").unwrap()];
        let strict = OriginPolicy::new(listed.clone(), false);
        assert!(strict.allows("https://shop.example"));
        assert!(!strict.allows("https://evil.example"));
        assert!(!strict.allows("http://localhost:3000"));
        let dev = OriginPolicy::new(listed, true);
        assert!(dev.allows("http://localhost:3000"));
        assert!(!OriginPolicy::none().allows("https://shop.example"));
    }
}
