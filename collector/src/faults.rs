//! Fault injection for tests (`--fault-injection` only): a queue of failures that the next
//! `POST /v1/batch` requests meet, in order, before anything is read or stored.
//!
//! A fault is written `"500"` (that status), `"429:5"` (that status with `Retry-After: 5`) or
//! `"drop"` (close the connection without answering).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

/// One injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (400 to 599) and optionally a `Retry-After` in seconds.
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header value, in seconds.
        retry_after: Option<u32>,
    },
    /// Close the connection without a response.
    Drop,
}

/// A fault text that is not `drop`, `STATUS` or `STATUS:SECONDS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidFault;

impl fmt::Display for InvalidFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "must be \"drop\", a status from 400 to 599 (\"503\"), or a status with Retry-After seconds (\"429:5\")",
        )
    }
}

impl std::error::Error for InvalidFault {}

impl FromStr for Fault {
    type Err = InvalidFault;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "drop" {
            return Ok(Fault::Drop);
        }
        let (status, retry_after) = match text.split_once(':') {
            Some((status, seconds)) => (status, Some(seconds)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(status) || !retry_after.is_none_or(digits) {
            return Err(InvalidFault);
        }
        let status: u16 = status.parse().map_err(|_| InvalidFault)?;
        if !(400..=599).contains(&status) {
            return Err(InvalidFault);
        }
        let retry_after = retry_after
            .map(|s| s.parse::<u32>().map_err(|_| InvalidFault))
            .transpose()?;
        Ok(Fault::Status {
            status,
            retry_after,
        })
    }
}

/// The faults waiting for the next batch requests.
#[derive(Debug, Default)]
pub struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    /// Replaces what is queued.
    pub fn set(&self, faults: Vec<Fault>) {
        *self.lock() = faults.into();
    }

    /// Empties the queue.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The fault the current request meets, if any.
    pub fn next(&self) -> Option<Fault> {
        self.lock().pop_front()
    }

    /// How many faults are queued.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no fault is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        // The queue holds plain values, so a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_their_short_forms() {
        let status = |status, retry_after| {
            Ok(Fault::Status {
                status,
                retry_after,
            })
        };
        for (text, expected) in [
            ("drop", Ok(Fault::Drop)),
            ("500", status(500, None)),
            ("429:5", status(429, Some(5))),
            ("503:0", status(503, Some(0))),
            ("200", Err(InvalidFault)),
            ("600", Err(InvalidFault)),
            ("429:", Err(InvalidFault)),
            ("429:-1", Err(InvalidFault)),
            ("+500", Err(InvalidFault)),
            ("Drop", Err(InvalidFault)),
            ("", Err(InvalidFault)),
        ] {
            assert_eq!(text.parse::<Fault>(), expected, "{text}");
        }
    }

    #[test]
    fn the_queue_hands_faults_out_in_order() {
        let queue = FaultQueue::default();
        queue.set(vec![Fault::Drop, "500".parse().unwrap()]);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.next(), Some(Fault::Drop));
        queue.clear();
        assert!(queue.is_empty());
        assert_eq!(queue.next(), None);
    }
}
