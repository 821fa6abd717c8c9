//! RFC 3339 date-times, as OpenDSR writes every time: formatting Unix milliseconds as
//! `2018-10-02T15:00:00Z` and checking and reading the times controllers send.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `ms` as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds; times before 1970 print as 1970).
pub fn format(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000).max(0))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn number(text: &str, at: usize, len: usize) -> Option<u32> {
    let digits = text.get(at..at + len)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads an RFC 3339 date-time (`2018-10-02T15:00:00Z`, `2018-10-02T17:00:00.5+02:00`) as Unix
/// milliseconds; `None` if it is not one.
pub fn parse(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't'))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let year = i32::try_from(number(text, 0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(number(text, 5, 2)?).ok()?).ok()?;
    let day = u8::try_from(number(text, 8, 2)?).ok()?;
    let hour = u8::try_from(number(text, 11, 2)?).ok()?;
    let minute = u8::try_from(number(text, 14, 2)?).ok()?;
    let second = u8::try_from(number(text, 17, 2)?).ok()?;
    let mut rest = text.get(19..)?;
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", fraction.get(..digits.min(3))?);
        millis = first3.parse().ok()?;
        rest = fraction.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours = i8::try_from(number(rest, 1, 2)?).ok()?;
            let minutes = i8::try_from(number(rest, 4, 2)?).ok()?;
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    // A leap second reads as the second before it.
    let time = Time::from_hms(hour, minute, second.min(59)).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    Some(at.unix_timestamp() * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_and_parse_as_the_spec_writes_them() {
        assert_eq!(format(1_538_492_400_000), "2018-10-02T15:00:00Z");
        for (text, expected) in [
            ("2018-10-02T15:00:00Z", Some(1_538_492_400_000)),
            ("2018-10-02t15:00:00z", Some(1_538_492_400_000)),
            ("2018-10-02T17:00:00+02:00", Some(1_538_492_400_000)),
            ("2018-10-02T15:00:00.25Z", Some(1_538_492_400_250)),
            ("2018-10-02T15:00:00", None),
            ("2018-02-30T15:00:00Z", None),
            ("2018-10-02 15:00:00Z", None),
            ("2018-10-02T25:00:00Z", None),
            ("yesterday", None),
            ("2018-10-02T15:00:00.Z", None),
            ("2018-10-02T15:00:00+0200", None),
        ] {
            assert_eq!(parse(text), expected, "{text}");
        }
    }
}
