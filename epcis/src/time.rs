//! EPCIS timestamps: RFC 3339 date-times with any zone offset and any number of decimals.
//!
//! The ledger's own timestamps are UTC milliseconds from 1970 on; EPCIS documents carry local
//! times with offsets (`2022-02-16T20:33:31.116-06:00`) and sometimes more than three decimals.
//! Both the event hash (CBV 2.0 §8.9: UTC, milliseconds, `Z`) and the capture mapping need the
//! instant in UTC milliseconds; this module computes it with integers only.

const MS_PER_DAY: i64 = 86_400_000;

/// A parsed timestamp: the instant in UTC milliseconds (the third decimal rounded half up on
/// the fourth, as CBV 2.0 §8.9 rule 9 says) and whether any digit after the third was nonzero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    /// Milliseconds since 1970-01-01T00:00:00Z (negative before).
    pub utc_millis: i64,
    /// Whether digits beyond the milliseconds were dropped or rounded.
    pub sub_milli: bool,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`; `None` if it is not one.
pub fn parse(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 7)?, digits(b, 8, 10)?);
    let (hour, minute, second) = (digits(b, 11, 13)?, digits(b, 14, 16)?, digits(b, 17, 19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (fraction, zone) = split_fraction(&text[19..])?;
    let (millis, sub_milli) = fraction_millis(fraction)?;
    let offset = zone_offset_minutes(zone)?;
    let local = days_from_civil(year, month, day) * MS_PER_DAY
        + ((hour * 60 + minute) * 60 + second) * 1000
        + millis;
    Some(Instant {
        utc_millis: local - offset * 60_000,
        sub_milli,
    })
}

fn digits(bytes: &[u8], from: usize, to: usize) -> Option<i64> {
    let part = bytes.get(from..to)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

/// Splits `.123456+01:00` into the fraction digits and the zone.
fn split_fraction(rest: &str) -> Option<(&str, &str)> {
    let Some(after_point) = rest.strip_prefix('.') else {
        return Some(("", rest));
    };
    let end = after_point
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_point.len());
    (end > 0).then(|| after_point.split_at(end))
}

/// The milliseconds of a fraction, rounded half up on the fourth decimal, and whether any
/// decimal after the third was nonzero.
fn fraction_millis(fraction: &str) -> Option<(i64, bool)> {
    let b = fraction.as_bytes();
    let digit = |i: usize| b.get(i).map_or(0, |d| i64::from(d - b'0'));
    let millis = digit(0) * 100 + digit(1) * 10 + digit(2);
    let round_up = digit(3) >= 5;
    let sub_milli = b.iter().skip(3).any(|d| *d != b'0');
    Some((millis + i64::from(round_up), sub_milli))
}

/// Minutes east of UTC for `Z` or `±hh:mm`.
fn zone_offset_minutes(zone: &str) -> Option<i64> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    parse_offset(zone)
}

/// Minutes east of UTC of an `eventTimeZoneOffset` (`±hh:mm`, at most 14:00 either way).
pub fn parse_offset(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = (digits(b, 1, 3)?, digits(b, 4, 6)?);
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 14 * 60).then_some(sign * total)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of UTC milliseconds (years 0000 to 9999).
pub fn format_utc_millis(millis: i64) -> String {
    let days = millis.div_euclid(MS_PER_DAY);
    let in_day = millis.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, (in_day / 60_000) % 60);
    let (second, ms) = ((in_day / 1000) % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z")
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (negative before).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        format_utc_millis(parse(text).expect(text).utc_millis)
    }

    #[test]
    fn offsets_and_precision() {
        assert_eq!(
            utc("2022-02-16T20:33:31.116000-06:00"),
            "2022-02-17T02:33:31.116Z"
        );
        assert_eq!(utc("2020-03-04T11:00:30+01:00"), "2020-03-04T10:00:30.000Z");
        assert_eq!(utc("2023-02-02T11:04:03.1415Z"), "2023-02-02T11:04:03.142Z");
        assert_eq!(utc("2023-02-02T11:04:03.1414Z"), "2023-02-02T11:04:03.141Z");
        assert_eq!(utc("2023-12-31T23:59:59.9996Z"), "2024-01-01T00:00:00.000Z");
        assert_eq!(utc("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500Z");
        assert_eq!(
            utc("2024-02-29T00:30:00.0+14:00"),
            "2024-02-28T10:30:00.000Z"
        );
        assert!(parse("2023-02-02T11:04:03.1415Z").unwrap().sub_milli);
        assert!(!parse("2023-02-02T11:04:03.141000Z").unwrap().sub_milli);
    }

    #[test]
    fn refusals() {
        for bad in [
            "2022-02-16",
            "2022-02-16T20:33:31",
            "2022-02-30T00:00:00Z",
            "2022-02-16T24:00:00Z",
            "2022-02-16T20:33:31.Z",
            "2022-02-16T20:33:31+1:00",
            "2022-02-16T20:33:31+15:00",
            "2022-02-16 20:33:31Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn agrees_with_the_ledger_clock() {
        let t = custody_ledger::Timestamp(1_793_491_200_123);
        assert_eq!(format_utc_millis(1_793_491_200_123), t.to_rfc3339());
        assert_eq!(
            parse(&t.to_rfc3339()).unwrap().utc_millis,
            1_793_491_200_123
        );
    }
}
