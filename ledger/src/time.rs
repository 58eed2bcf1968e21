//! Timestamps: milliseconds since the Unix epoch, UTC, as an integer.
//!
//! Pure code never reads a clock; timestamps arrive in events (`occurred_at`, claimed by the
//! signer) and in block headers (`time`, agreed by consensus). JSON shows them as RFC 3339
//! strings with millisecond precision and a `Z` suffix; the canonical binary form is the
//! integer.

use std::fmt;

use serde::de::{Error, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

const MS_PER_DAY: u64 = 86_400_000;
/// 9999-12-31T23:59:59.999Z, the largest instant RFC 3339 can write with four year digits.
const MAX_MS: u64 = 253_402_300_799_999;

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Midnight UTC of a calendar date; `None` if the date does not exist or is out of range.
    pub fn from_date(year: u32, month: u32, day: u32) -> Option<Timestamp> {
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(Timestamp(days_from_civil(year, month, day) * MS_PER_DAY))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.mmm]Z` or a bare date `YYYY-MM-DD` (midnight UTC).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = bytes.get(range)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let date = Timestamp::from_date(number(0..4)?, number(5..7)?, number(8..10)?)?;
        if bytes.len() == 10 {
            return Some(date);
        }
        if bytes.len() < 20 || bytes[10] != b'T' || bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let millis = match &bytes[19..] {
            b"Z" => 0,
            [b'.', a, b, c, b'Z'] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                number(20..23)?
            }
            _ => return None,
        };
        let in_day = ((u64::from(hour) * 60 + u64::from(minute)) * 60 + u64::from(second)) * 1000
            + u64::from(millis);
        Some(Timestamp(date.0 + in_day))
    }

    /// The RFC 3339 form, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn to_rfc3339(self) -> String {
        let clamped = self.0.min(MAX_MS);
        let (year, month, day) = civil_from_days(clamped / MS_PER_DAY);
        let in_day = clamped % MS_PER_DAY;
        let (hour, minute) = (in_day / 3_600_000, (in_day / 60_000) % 60);
        let (second, millis) = ((in_day / 1000) % 60, in_day % 1000);
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
    }
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date on or after it (proleptic Gregorian calendar).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    // Count in years starting in March so that the leap day is the last day of a year.
    let (y, m) = if month <= 2 {
        (u64::from(year) - 1, u64::from(month) + 9)
    } else {
        (u64::from(year), u64::from(month) - 3)
    };
    let era = y / 400;
    let year_of_era = y % 400;
    let day_of_year = (153 * m + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 is the day number of 1970-01-01 counted from 0000-03-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC timestamp such as 2026-07-01T00:00:00Z")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).ok_or_else(|| {
                    E::custom("expected an RFC 3339 UTC timestamp such as 2026-07-01T00:00:00Z")
                })
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(TimestampVisitor)
        } else {
            deserializer.deserialize_u64(TimestampVisitor)
        }
    }
}

/// A timestamp is an RFC 3339 string in JSON.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An instant in UTC, RFC 3339 with milliseconds and `Z`, as the ledger writes it \
                 (`2026-07-01T12:34:56.000Z`). Also read: whole seconds without a fraction, \
                 and a bare date `YYYY-MM-DD` for midnight UTC. Offsets other than `Z` are \
                 refused.",
            ))
            .pattern(Some(
                r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z)?$",
            ))
            .examples(["2026-07-01T12:34:56.000Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp::from_date(1970, 1, 1), Some(Timestamp(0)));
        // 2025-08-29 is day 20,329 after the epoch.
        assert_eq!(
            Timestamp::from_date(2025, 8, 29),
            Some(Timestamp(20_329 * MS_PER_DAY))
        );
        assert_eq!(Timestamp::from_date(2024, 2, 30), None);
        assert_eq!(Timestamp::from_date(2023, 2, 29), None);
        assert!(Timestamp::from_date(2024, 2, 29).is_some());
        assert_eq!(
            Timestamp(1_782_864_000_123).to_rfc3339(),
            "2026-07-01T00:00:00.123Z"
        );
    }

    #[test]
    fn parse_forms() {
        let t = Timestamp::parse_rfc3339("2026-07-01T12:34:56Z");
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-07-01T12:34:56.000Z")
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-07-01"),
            Timestamp::from_date(2026, 7, 1)
        );
        for bad in [
            "",
            "2026-7-01",
            "2026-07-01T24:00:00Z",
            "2026-07-01T12:34:56+02:00",
            "2026-07-01T12:34:56.1Z",
            "２０２６-07-01",
            "2026-13-01",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ms in 0u64..=MAX_MS) {
            let text = Timestamp(ms).to_rfc3339();
            prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp(ms)));
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Timestamp::parse_rfc3339(&text);
        }
    }
}
