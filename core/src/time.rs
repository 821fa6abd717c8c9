//! Time as plain numbers: the core never reads a clock, so every "now" is an input.
//!
//! [`Timestamp`] is milliseconds since the Unix epoch as the browser reports it (`Date.now()`),
//! [`Duration`] a span of milliseconds. Arithmetic saturates: a clock that jumps backwards or a
//! hostile value can delay a deadline but never panic.

/// A point in time: milliseconds since the Unix epoch, as given by the shell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_ms(self) -> u64 {
        self.0
    }

    /// This time plus `d`, saturating at the largest representable time.
    pub const fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// How long after `earlier` this is; zero when `earlier` is later.
    pub const fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A span of time in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// A span of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }

    /// A span of `s` seconds, saturating.
    pub const fn from_secs(s: u64) -> Self {
        Duration(s.saturating_mul(1000))
    }

    /// The span in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This span plus `other`, saturating.
    pub const fn saturating_add(self, other: Duration) -> Self {
        Duration(self.0.saturating_add(other.0))
    }

    /// This span times `factor`, saturating.
    pub const fn saturating_mul(self, factor: u64) -> Self {
        Duration(self.0.saturating_mul(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let late = Timestamp::from_unix_ms(u64::MAX - 1);
        assert_eq!(
            late.saturating_add(Duration::from_secs(10)).as_unix_ms(),
            u64::MAX
        );
        let early = Timestamp::from_unix_ms(5);
        assert_eq!(early.saturating_since(late), Duration::ZERO);
        assert_eq!(late.saturating_since(early).as_millis(), u64::MAX - 6);
        assert_eq!(Duration::from_secs(u64::MAX).as_millis(), u64::MAX);
    }
}
