//! The ingestion endpoint's address, and the rule that data only travels over TLS.
//!
//! `https://` is required; plain `http://` is accepted only for a loopback host (`localhost`,
//! `127.0.0.1`, `[::1]`), which never leaves the machine. The check reads the host the way a
//! browser would, so `http://localhost.evil.example` and `http://user@evil` are refused.

use alloc::string::String;

/// The path events are posted to, below the endpoint.
pub const BATCH_PATH: &str = "/v1/batch";

/// A validated endpoint: its base URL without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
}

/// Why an endpoint is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// Neither `https://` nor `http://`.
    NotHttp,
    /// Plain `http://` to a host that is not loopback.
    NotTls,
    /// No host, credentials in the URL, a query or fragment, or characters a URL cannot hold
    /// (non-ASCII included: an international host name is written in punycode).
    Malformed,
}

impl EndpointError {
    /// A lower-case description.
    pub fn message(self) -> &'static str {
        match self {
            EndpointError::NotHttp => "must be an https:// URL",
            EndpointError::NotTls => "must use https:// (plain http:// is allowed only for localhost, 127.0.0.1 and [::1])",
            EndpointError::Malformed => "must be an ASCII URL with a host and no credentials, query or fragment",
        }
    }
}

impl core::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for EndpointError {}

impl Endpoint {
    /// Validates `url` as an endpoint base such as `https://collect.example.com` or
    /// `https://example.com/consentry`.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        // ASCII trimming: anything else is refused below, so no Unicode tables are needed.
        let url = url.trim_ascii();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else {
            return Err(EndpointError::NotHttp);
        };
        if rest
            .bytes()
            .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'?' | b'#' | b'@' | b'\\'))
        {
            return Err(EndpointError::Malformed);
        }
        let authority = rest.get(..find_byte(rest, b"/")).unwrap_or_default();
        let host = host_of(authority).ok_or(EndpointError::Malformed)?;
        if !tls && !is_loopback(host) {
            return Err(EndpointError::NotTls);
        }
        let mut end = url.len();
        while end > 0 && url.as_bytes().get(end - 1) == Some(&b'/') {
            end -= 1;
        }
        Ok(Endpoint {
            base: String::from(url.get(..end).unwrap_or_default()),
        })
    }

    /// The URL batches are posted to.
    pub fn batch_url(&self) -> String {
        crate::text::concat(&[self.base.as_str(), BATCH_PATH])
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// The position of the first of `bytes` in `text`, or its length. Plain byte loops instead of
/// `str` pattern searches (which decode characters) or `<[u8]>::contains` (which brings a
/// word-at-a-time `memchr`): each costs the wasm more than the loop.
pub(crate) fn find_byte(text: &str, bytes: &[u8]) -> usize {
    for (at, byte) in text.bytes().enumerate() {
        for wanted in bytes {
            if byte == *wanted {
                return at;
            }
        }
    }
    text.len()
}

/// The host of `host[:port]` or `[v6][:port]`, or `None` when there is none or the port is bad.
fn host_of(authority: &str) -> Option<&str> {
    let end = if authority.starts_with('[') {
        // Up to and including the `]`.
        let close = find_byte(authority, b"]");
        if close == authority.len() {
            return None;
        }
        close + 1
    } else {
        find_byte(authority, b":")
    };
    let host = authority.get(..end)?;
    let port = authority.get(end..)?;
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    if host.is_empty() || !port_ok {
        return None;
    }
    Some(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_endpoints() {
        use EndpointError::*;
        for (url, expected) in [
            (
                "https://collect.example.com",
                Ok("https://collect.example.com/v1/batch"),
            ),
            (
                "https://collect.example.com/",
                Ok("https://collect.example.com/v1/batch"),
            ),
            (
                "HTTPS://Example.com:8443/base/",
                Ok("HTTPS://Example.com:8443/base/v1/batch"),
            ),
            (
                "http://localhost:8080",
                Ok("http://localhost:8080/v1/batch"),
            ),
            ("http://LOCALHOST", Ok("http://LOCALHOST/v1/batch")),
            ("http://127.0.0.1:9/x", Ok("http://127.0.0.1:9/x/v1/batch")),
            ("http://[::1]:3000", Ok("http://[::1]:3000/v1/batch")),
            (
                "https://[2001:db8::1]",
                Ok("https://[2001:db8::1]/v1/batch"),
            ),
            ("http://example.com", Err(NotTls)),
            ("http://localhost.evil.example", Err(NotTls)),
            ("http://127.0.0.2", Err(NotTls)),
            ("http://[::2]", Err(NotTls)),
            ("http://user@localhost", Err(Malformed)),
            ("https://localhost@evil.example", Err(Malformed)),
            ("ftp://example.com", Err(NotHttp)),
            ("//example.com", Err(NotHttp)),
            ("javascript:alert(1)", Err(NotHttp)),
            ("", Err(NotHttp)),
            ("https://", Err(Malformed)),
            ("https://example.com?x=1", Err(Malformed)),
            ("https://example.com/#f", Err(Malformed)),
            ("https://exa mple.com", Err(Malformed)),
            ("https://example.com:abc", Err(Malformed)),
            ("https://example.com:", Err(Malformed)),
            ("http://localhost\\@evil.example", Err(Malformed)),
            ("https://[::1", Err(Malformed)),
            (" https://c.example/\n", Ok("https://c.example/v1/batch")),
            ("https://exämple.com", Err(Malformed)),
            ("https://c.example\u{a0}", Err(Malformed)),
            ("\u{a0}https://c.example", Err(NotHttp)),
        ] {
            assert_eq!(
                Endpoint::parse(url)
                    .map(|e| e.batch_url())
                    .as_deref()
                    .map_err(|e| *e),
                expected,
                "{url}"
            );
        }
    }
}
