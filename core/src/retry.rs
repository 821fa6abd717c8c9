//! The delivery table: what each answer from the endpoint means, and how long to wait before
//! trying again.
//!
//! | answer | verdict |
//! | --- | --- |
//! | 2xx | delivered |
//! | 408, 429, 5xx | retry with backoff; counts as an attempt |
//! | network error (offline, DNS, CORS, reset) | retry with backoff; does not count as an attempt |
//! | deferred by the leading tab (it is offline or backing off) | wait that long; no attempt, no backoff |
//! | any other status | rejected: retrying cannot fix it |
//!
//! Backoff doubles from the base delay up to the cap, with "equal jitter" (a random point in the
//! upper half of the window). `Retry-After` in seconds is honoured as a minimum, up to a day.

use crate::id::Rng;
use crate::time::Duration;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// What came back from one attempt to send a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The endpoint answered with this status; `retry_after` is its `Retry-After`, if readable.
    Status {
        /// The HTTP status.
        code: u16,
        /// The parsed `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// No answer: offline, DNS, TLS, CORS or a dropped connection.
    NetworkError,
    /// Not sent: the tab that sends for this one cannot send now (offline, backing off, or its
    /// consent has not caught up yet) and asks to be asked again after `wait`.
    Deferred {
        /// How long to wait.
        wait: Duration,
    },
}

/// What to do with a batch after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered: forget the events.
    Delivered,
    /// Try again later.
    Retry {
        /// The endpoint asked to wait at least this long.
        not_before: Option<Duration>,
        /// Whether this answer uses up one of the events' attempts.
        counts_as_attempt: bool,
    },
    /// The endpoint refused it for good: drop the events.
    Rejected,
    /// Not sent at all: put it back and wait this long, without counting a failure.
    Wait(Duration),
}

/// Classifies one outcome by the delivery table.
pub fn classify(outcome: SendOutcome) -> Verdict {
    match outcome {
        SendOutcome::Status {
            code: 200..=299, ..
        } => Verdict::Delivered,
        SendOutcome::Status {
            code: 408 | 429 | 500..=599,
            retry_after,
        } => Verdict::Retry {
            not_before: retry_after,
            counts_as_attempt: true,
        },
        SendOutcome::Status { .. } => Verdict::Rejected,
        SendOutcome::NetworkError => Verdict::Retry {
            not_before: None,
            counts_as_attempt: false,
        },
        SendOutcome::Deferred { wait } => Verdict::Wait(wait.min(MAX_RETRY_AFTER)),
    }
}

/// Reads a `Retry-After` value given in seconds. HTTP dates are not read (they need a clock the
/// server and browser agree on); the normal backoff applies instead.
pub fn parse_retry_after(header: &str) -> Option<Duration> {
    let digits = header.trim_ascii();
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = digits
        .bytes()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// How many attempts a batch gets and how long to wait between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retryable answers an event may receive before it is dropped.
    pub max_attempts: u32,
    /// The first backoff window.
    pub base_delay: Duration,
    /// The largest backoff window.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` consecutive failures (1 for the first), jittered by `rng`.
    pub fn backoff(&self, failures: u32, rng: &mut Rng) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        let window = self
            .base_delay
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay);
        let half = window.as_millis() / 2;
        Duration::from_millis(window.as_millis() - half + rng.below_or_equal(half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_answers() {
        let status = |code| SendOutcome::Status {
            code,
            retry_after: None,
        };
        let retry = |counts| Verdict::Retry {
            not_before: None,
            counts_as_attempt: counts,
        };
        for (outcome, verdict) in [
            (status(200), Verdict::Delivered),
            (status(202), Verdict::Delivered),
            (status(204), Verdict::Delivered),
            (status(299), Verdict::Delivered),
            (status(408), retry(true)),
            (status(429), retry(true)),
            (status(500), retry(true)),
            (status(503), retry(true)),
            (status(599), retry(true)),
            (status(400), Verdict::Rejected),
            (status(401), Verdict::Rejected),
            (status(403), Verdict::Rejected),
            (status(404), Verdict::Rejected),
            (status(410), Verdict::Rejected),
            (status(413), Verdict::Rejected),
            (status(422), Verdict::Rejected),
            (status(301), Verdict::Rejected),
            (status(0), Verdict::Rejected),
            (SendOutcome::NetworkError, retry(false)),
            (
                SendOutcome::Deferred {
                    wait: Duration::from_secs(2),
                },
                Verdict::Wait(Duration::from_secs(2)),
            ),
            (
                SendOutcome::Deferred {
                    wait: Duration::from_secs(u64::MAX),
                },
                Verdict::Wait(MAX_RETRY_AFTER),
            ),
        ] {
            assert_eq!(classify(outcome), verdict, "{outcome:?}");
        }
        let asked = Some(Duration::from_secs(30));
        assert_eq!(
            classify(SendOutcome::Status {
                code: 429,
                retry_after: asked
            }),
            Verdict::Retry {
                not_before: asked,
                counts_as_attempt: true
            }
        );
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        for (header, expected) in [
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            ("99999999999", Some(MAX_RETRY_AFTER)),
            ("9999999999999", None),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ] {
            assert_eq!(parse_retry_after(header), expected, "{header:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let mut rng = Rng::from_entropy(&crate::id::Entropy([3; 32]));
        for failures in 1..40 {
            let window = (1000u64 << (failures - 1).min(32)).min(300_000);
            for _ in 0..50 {
                let wait = policy.backoff(failures, &mut rng).as_millis();
                assert!(
                    wait >= window - window / 2 && wait <= window,
                    "{failures}: {wait}"
                );
            }
        }
        assert!(policy.backoff(0, &mut rng).as_millis() <= 1000);
    }
}
