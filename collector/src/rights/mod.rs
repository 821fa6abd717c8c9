//! Data subjects' rights (issue 9): the OpenDSR processor side, fulfilment, status callbacks,
//! exports and retention. The HTTP routes are in `api/`; the SQL in `store/`; this module holds
//! the settings, the shared context and the background workers.
//!
//! | status | who acts | callbacks |
//! | --- | --- | --- |
//! | `pending` | a controller (`POST /opendsr/v1/requests`) or a visitor (`POST /v1/dsr`) | one per `status_callback_urls` entry |
//! | `in_progress` | the fulfilment worker claims the oldest pending request | one per URL |
//! | `completed` | the worker erased, or wrote the export | one per URL, with `results_url` for exports |
//! | `cancelled` | the controller (`DELETE`) while pending | one per URL |

pub mod callbacks;
pub mod fulfil;
pub mod retention;
pub mod rfc3339;
pub mod signing;

use crate::clock::Clock;
use crate::store::dsr::{CallbackBody, Request, Status};
use retention::RetentionConfig;
use serde_json::json;
use signing::Signer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long an export's download link works.
pub const EXPORT_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The API version discovery announces (the specification's current version).
pub const API_VERSION: &str = "2.0";

/// The settings of data-subject work.
#[derive(Clone, Debug)]
pub struct RightsSettings {
    /// The domain in `X-OpenDSR-Processor-Domain` (and the signing certificate's name).
    pub processor_domain: String,
    /// The operator's signing certificate and key; `None` makes a development pair.
    pub signing: Option<(PathBuf, PathBuf)>,
    /// The base of download and status URLs; `None` uses the listening URL.
    pub public_url: Option<String>,
    /// The time promised for fulfilment (`expected_completion_time`).
    pub sla: Duration,
    /// Extra CA certificates (PEM) callback servers may be verified against.
    pub callback_cas: Vec<PathBuf>,
    /// Whether `http://` callbacks to loopback addresses are allowed (tests).
    pub allow_loopback_http_callbacks: bool,
    /// How often the workers look for work (they are also woken by new requests).
    pub poll_interval: Duration,
    /// The first callback retry's wait; it doubles per attempt, capped at an hour.
    pub callback_backoff: Duration,
    /// Attempts per callback before it is marked failed.
    pub callback_attempts: u32,
    /// Retention schedules.
    pub retention: RetentionConfig,
    /// Whether the fulfilment worker runs (tests of pending requests turn it off).
    pub worker: bool,
    /// Test only (with `--fault-injection`): claim requests but never fulfil them, so a test can
    /// kill the process while one is `in_progress`.
    pub hold_in_progress: bool,
}

impl Default for RightsSettings {
    fn default() -> Self {
        RightsSettings {
            processor_domain: "localhost".to_owned(),
            signing: None,
            public_url: None,
            sla: Duration::from_secs(30 * 24 * 60 * 60),
            callback_cas: Vec::new(),
            allow_loopback_http_callbacks: false,
            poll_interval: Duration::from_secs(1),
            callback_backoff: Duration::from_secs(1),
            callback_attempts: 8,
            retention: RetentionConfig::default(),
            worker: true,
            hold_in_progress: false,
        }
    }
}

/// What the routes and workers of data-subject work share.
#[derive(Debug)]
pub struct Rights {
    /// The settings.
    pub settings: RightsSettings,
    /// The signing key and published certificate.
    pub signer: Signer,
    /// The base of download and status URLs, without a trailing slash.
    pub public_url: String,
    /// Where exports are written.
    pub exports_dir: PathBuf,
    /// The clock of every decision in time.
    pub clock: Clock,
    /// Wakes the fulfilment worker (a new request).
    pub work: Notify,
    /// Wakes the callback sender (new callbacks queued).
    pub callbacks: Notify,
    /// The HTTPS client configuration of callbacks.
    pub tls: Arc<rustls::ClientConfig>,
}

impl Rights {
    /// The URL of the processor certificate, as discovery names it.
    pub fn certificate_url(&self) -> String {
        format!("{}/opendsr/v1/certificate.pem", self.public_url)
    }

    /// The download URL of an export.
    pub fn results_url(&self, token: &str) -> String {
        format!("{}/v1/exports/{token}", self.public_url)
    }

    /// The maker of callback bodies (OpenDSR section 8.6).
    pub fn callback_body(self: &Arc<Self>) -> CallbackBody {
        let rights = Arc::clone(self);
        Arc::new(move |request: &Request, url: &str| {
            let mut body = json!({
                "controller_id": request.controller_id,
                "expected_completion_time": rfc3339::format(request.expected_at_ms),
                "status_callback_url": url,
                "subject_request_id": request.id,
                "request_status": request.status.as_str(),
                "api_version": API_VERSION,
            });
            if request.status == Status::Completed {
                if let Some(token) = &request.results_token {
                    body["results_url"] = json!(rights.results_url(token));
                }
                if let Some(count) = request.results_count {
                    body["results_count"] = json!(count);
                }
            }
            body.to_string()
        })
    }
}

/// 32 random bytes, base64url: a download token or a status secret.
pub fn random_token() -> std::io::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A random lower-case version 4 UUID.
pub fn uuid_v4() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(std::io::Error::other)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::tokens::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Whether `text` is a lower-case version 4 UUID.
pub fn is_uuid_v4(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            14 => *c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_are_version_4_and_checked_strictly() {
        let id = uuid_v4().unwrap();
        assert!(is_uuid_v4(&id), "{id}");
        assert!(is_uuid_v4("a7551968-d5d6-44b2-9831-815ac9017798"));
        assert!(!is_uuid_v4("A7551968-D5D6-44B2-9831-815AC9017798"));
        assert!(!is_uuid_v4("a7551968-d5d6-14b2-9831-815ac9017798"));
        assert!(!is_uuid_v4("a7551968d5d644b29831815ac9017798"));
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }
}
