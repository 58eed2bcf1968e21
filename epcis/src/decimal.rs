//! Exact decimals for JSON numbers.
//!
//! Custody keeps sensor values as integer thousandths; EPCIS writes them as JSON numbers. Going
//! out, a value becomes the JSON number with exactly its decimal digits. Coming back, and in the
//! event hash, a number is read from its decimal text (serde_json writes an `f64` as the
//! shortest text that reads back to it, so a number given with up to 15 significant digits
//! keeps its digits) and handled as digits: no float arithmetic decides anything.

use serde_json::Number;

/// Longest exponent read; beyond it a number is refused rather than expanded into digits.
const EXPONENT_MAX: i64 = 400;

/// A number's canonical decimal text: no exponent, no `+`, no leading zeros, no trailing zeros
/// in the fraction, no fraction if it is whole, and `0` for zero.
pub fn canonical(number: &Number) -> Option<String> {
    canonical_text(&number.to_string())
}

/// [`canonical`] of a decimal written as text (JSON number syntax, exponent allowed).
pub fn canonical_text(text: &str) -> Option<String> {
    let (negative, digits, scale) = parse(text)?;
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".to_owned());
    }
    let body = place_point(digits, scale);
    Some(if negative { format!("-{body}") } else { body })
}

/// The sign, the significant digits and how many of them are decimals (negative: trailing
/// zeros to add).
fn parse(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], parse_exponent(&rest[at + 1..])?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || mantissa.ends_with('.') {
        return None;
    }
    let scale = i64::try_from(frac.len()).ok()? - exponent;
    Some((negative, format!("{int}{frac}"), scale))
}

fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    (value <= EXPONENT_MAX).then(|| if text.starts_with('-') { -value } else { value })
}

/// Writes significant digits (no leading zeros) with `scale` of them after the point.
fn place_point(digits: &str, scale: i64) -> String {
    if scale <= 0 {
        let zeros = usize::try_from(-scale).unwrap_or(0);
        return format!("{digits}{}", "0".repeat(zeros));
    }
    let scale = usize::try_from(scale).unwrap_or(0);
    let padded = format!("{}{digits}", "0".repeat(scale.saturating_sub(digits.len())));
    let (int, frac) = padded.split_at(padded.len() - scale);
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

/// A number as integer thousandths, exactly: `None` if it has more than three decimals or does
/// not fit an `i64`.
pub fn to_milli(number: &Number) -> Option<i64> {
    let text = canonical(number)?;
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() > 3 || int.len() > 19 {
        return None;
    }
    let magnitude = int
        .parse::<i128>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(format!("{frac:0<3}").parse::<i128>().ok()?)?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The JSON number of `milli` thousandths: an integer when it is whole, otherwise the number
/// whose shortest text is exactly the decimal (output only; [`to_milli`] reads it back).
pub fn from_milli(milli: i64) -> Number {
    if milli % 1000 == 0 {
        return Number::from(milli / 1000);
    }
    let magnitude = milli.unsigned_abs();
    let frac = format!("{:03}", magnitude % 1000);
    let text = format!(
        "{}{}.{}",
        if milli < 0 { "-" } else { "" },
        magnitude / 1000,
        frac.trim_end_matches('0')
    );
    // Every i64 of thousandths parses to a finite f64.
    let value: f64 = text.parse().expect("a decimal parses");
    Number::from_f64(value).expect("finite")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (text, expected) in [
            ("1.0", "1"),
            ("0.3434000", "0.3434"),
            ("-0.0", "0"),
            ("+12", "12"),
            ("007.50", "7.5"),
            ("1e3", "1000"),
            ("1.25E-2", "0.0125"),
            ("-12.5e1", "-125"),
            ("26", "26"),
        ] {
            assert_eq!(canonical_text(text).as_deref(), Some(expected), "{text}");
        }
        for bad in ["", "-", "1.", ".5", "1e", "1e99999", "0x10", "1,5", "NaN"] {
            assert_eq!(canonical_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn milli_round_trips() {
        for milli in [
            0,
            1,
            -1,
            4_500,
            -1_250,
            21_500,
            999,
            1_000,
            123_456_789,
            -9_007_199_254_740,
        ] {
            let number = from_milli(milli);
            assert_eq!(to_milli(&number), Some(milli), "{milli} as {number}");
        }
        assert_eq!(from_milli(4_500).to_string(), "4.5");
        assert_eq!(from_milli(-50).to_string(), "-0.05");
        assert_eq!(from_milli(8_000).to_string(), "8");
    }

    #[test]
    fn milli_refuses_what_it_cannot_hold_exactly() {
        let number: Number = serde_json::from_str("1.0005").unwrap();
        assert_eq!(to_milli(&number), None);
        let number: Number = serde_json::from_str("1e30").unwrap();
        assert_eq!(to_milli(&number), None);
        let number: Number = serde_json::from_str("2.500").unwrap();
        assert_eq!(to_milli(&number), Some(2_500));
    }
}
