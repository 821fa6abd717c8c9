//! Reading a batch body: the accepted content types and encodings, and the size limit applied
//! both to the bytes received and to what gzip expands them to (a gzip bomb is a 413).
//!
//! Browsers send batches with `fetch` or `sendBeacon` and a string body, which makes the type
//! `text/plain;charset=UTF-8` and needs no CORS preflight; servers may send `application/json`.
//!
//! Kept by hand rather than tower-http's `RequestBodyLimitLayer` and `RequestDecompressionLayer`
//! (not measured: a contract reason): those answer 413 and 415 with their own plain-text bodies
//! and accept encodings we do not, while this API answers every refusal as JSON naming the
//! field, tells a corrupt gzip stream (400) from a bomb (413), and must reserve body memory
//! between the declared length and the read. The limit itself is `http-body-util`'s `Limited`.

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderMap;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::io::Read;

/// Why a body was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// Not `text/plain` or `application/json` (415).
    UnsupportedType,
    /// A `Content-Encoding` other than `gzip` or `identity` (415).
    UnsupportedEncoding,
    /// Over the limit, as received or once decompressed (413).
    TooLarge,
    /// The gzip stream is corrupt (400).
    BadGzip,
    /// The client went away or the connection failed mid-body (400).
    Incomplete,
    /// The next piece of the body did not arrive in time (408).
    TimedOut,
}

impl BodyError {
    /// A lower-case sentence for the response.
    pub fn message(&self, limit: usize) -> String {
        match self {
            BodyError::UnsupportedType => {
                "content type must be text/plain or application/json".to_owned()
            }
            BodyError::UnsupportedEncoding => "content encoding must be gzip or none".to_owned(),
            BodyError::TooLarge => format!("body is larger than {limit} bytes"),
            BodyError::BadGzip => "body is not valid gzip".to_owned(),
            BodyError::Incomplete => "body could not be read".to_owned(),
            BodyError::TimedOut => "the body stopped arriving".to_owned(),
        }
    }
}

/// Checks the `Content-Type`: `text/plain` or `application/json`, with any parameters, and a
/// charset, if given, of UTF-8.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), BodyError> {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(BodyError::UnsupportedType)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence != "text/plain" && essence != "application/json" {
        return Err(BodyError::UnsupportedType);
    }
    for parameter in parts {
        if let Some((name, charset)) = parameter.split_once('=') {
            let charset = charset.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset")
                && !charset.eq_ignore_ascii_case("utf-8")
                && !charset.eq_ignore_ascii_case("utf8")
            {
                return Err(BodyError::UnsupportedType);
            }
        }
    }
    Ok(())
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| BodyError::UnsupportedEncoding)?;
        codings.extend(
            text.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    match codings.as_slice() {
        [] => Ok(Encoding::Identity),
        [one] if one == "gzip" || one == "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(BodyError::UnsupportedEncoding),
    }
}

/// The body's declared length, refused before anything is read when over `limit`.
pub fn check_declared_length(
    headers: &HeaderMap,
    limit: usize,
) -> Result<Option<usize>, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(BodyError::TooLarge),
        Some(n) => Ok(usize::try_from(n).ok()),
        None => Ok(None),
    }
}

/// How much memory reading this body may take: its declared length (or `limit` when it
/// declares none), plus `limit` more when gzip expands it.
pub fn memory_needed(
    headers: &HeaderMap,
    declared: Option<usize>,
    limit: usize,
) -> Result<usize, BodyError> {
    let raw = declared.unwrap_or(limit);
    Ok(match encoding(headers)? {
        Encoding::Identity => raw,
        Encoding::Gzip => raw.saturating_add(limit),
    })
}

/// Reads the whole body, decoding gzip, refusing more than `limit` bytes at either stage.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let encoding = encoding(headers)?;
    check_declared_length(headers, limit)?;
    let raw = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(BodyError::TooLarge)
        }
        Err(e) if caused_by::<tower_http::timeout::TimeoutError>(&*e) => {
            return Err(BodyError::TimedOut)
        }
        Err(_) => return Err(BodyError::Incomplete),
    };
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => gunzip(&raw, limit),
    }
}

/// Whether `error` or anything in its source chain is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Decompresses at most `limit` bytes; one more means the body is too large.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    GzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BodyError::BadGzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn content_types_from_fetch_beacon_and_servers_are_accepted() {
        for (value, ok) in [
            ("text/plain", true),
            ("text/plain;charset=UTF-8", true),
            ("Text/Plain; charset=\"utf-8\"", true),
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("text/plain;charset=ISO-8859-1", false),
            ("application/x-www-form-urlencoded", false),
            ("multipart/form-data; boundary=x", false),
            ("text/html", false),
        ] {
            assert_eq!(
                check_content_type(&headers(&[("content-type", value)])).is_ok(),
                ok,
                "{value}"
            );
        }
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn encodings_other_than_gzip_are_refused() {
        assert!(matches!(encoding(&headers(&[])), Ok(Encoding::Identity)));
        assert!(matches!(
            encoding(&headers(&[("content-encoding", "GZIP")])),
            Ok(Encoding::Gzip)
        ));
        for value in ["br", "deflate", "gzip, gzip", "zstd"] {
            assert!(
                encoding(&headers(&[("content-encoding", value)])).is_err(),
                "{value}"
            );
        }
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b' '; 10_000]).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_eq!(gunzip(&compressed, 10_000).unwrap().len(), 10_000);
        assert_eq!(gunzip(&compressed, 9_999), Err(BodyError::TooLarge));
        assert_eq!(gunzip(b"not gzip", 100), Err(BodyError::BadGzip));
    }
}
