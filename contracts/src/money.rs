//! Integer money arithmetic: exact rationals, half-up rounding to the minor unit.
//!
//! Amounts are `u64` minor units. Intermediate products are `u128`, so a product of two `u64`
//! values never overflows; a product of three can, and is reported as `money.overflow` rather
//! than wrapping. There are no floats anywhere.
//!
//! **Rounding rule.** Every computed amount (a converted value, a line's duty, a line's tax)
//! is an exact fraction `n / d` rounded once, half up, to the minor unit:
//! `round(n / d) = floor((2n + d) / 2d)`. Rounding happens per line, never on a sum, so the
//! total of a declaration is the sum of its rounded lines.

use custody_ledger::model::ExchangeRate;
use custody_ledger::reject::Rejection;

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// An amount is too large to compute with.
    pub const OVERFLOW: Code = ContractCode::MoneyOverflow.code();
}

/// `numerator / denominator` rounded half up. `denominator` must not be zero.
pub fn div_half_up(numerator: u128, denominator: u128) -> Option<u128> {
    assert!(denominator > 0, "division by a zero denominator");
    numerator
        .checked_mul(2)?
        .checked_add(denominator)
        .map(|twice| twice / denominator.checked_mul(2).expect("denominator fits twice"))
}

/// Narrows a computed amount to `u64`, or reports an overflow on `field`.
pub fn to_minor(field: &str, value: Option<u128>) -> Result<u64, Rejection> {
    value
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| overflow(field))
}

/// The rejection for an amount too large to compute.
pub fn overflow(field: &str) -> Rejection {
    Rejection::new(
        codes::OVERFLOW,
        field,
        "the amounts are too large to compute exactly in minor units",
    )
}

/// `value × rate_ppm / 1,000,000`, half up: a percentage given in parts per million.
pub fn ppm_of(field: &str, value_minor: u64, rate_ppm: u32) -> Result<u64, Rejection> {
    let product = u128::from(value_minor) * u128::from(rate_ppm);
    to_minor(field, div_half_up(product, 1_000_000))
}

/// Converts an amount between currencies with an exact rate, half up.
///
/// `amount` is in minor units of `rate.from` (with `from_minor_units` decimals); the result
/// is in minor units of `rate.to` (with `to_minor_units` decimals):
/// `amount × numerator × 10^to / (denominator × 10^from)`.
pub fn convert(
    field: &str,
    amount_minor: u64,
    rate: &ExchangeRate,
    from_minor_units: u32,
    to_minor_units: u32,
) -> Result<u64, Rejection> {
    let scale_to = 10u128
        .checked_pow(to_minor_units)
        .ok_or_else(|| overflow(field))?;
    let scale_from = 10u128
        .checked_pow(from_minor_units)
        .ok_or_else(|| overflow(field))?;
    let numerator = u128::from(amount_minor)
        .checked_mul(u128::from(rate.numerator))
        .and_then(|n| n.checked_mul(scale_to));
    let denominator = u128::from(rate.denominator).checked_mul(scale_from);
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0 => to_minor(field, div_half_up(n, d)),
        _ => Err(overflow(field)),
    }
}

/// Splits `total` over `weights` in proportion, deterministically: each share but the last
/// is `floor(total × weight / Σ weights)`; the last takes the remainder, so the shares add up
/// to `total` exactly. With all weights zero, the last share takes everything.
pub fn allocate(field: &str, total: u64, weights: &[u64]) -> Result<Vec<u64>, Rejection> {
    assert!(!weights.is_empty(), "allocation over no lines");
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    let mut shares = Vec::with_capacity(weights.len());
    let mut given: u64 = 0;
    for (i, weight) in weights.iter().enumerate() {
        let share = if i + 1 == weights.len() {
            total - given
        } else {
            // With all weights zero, every share but the last is zero.
            let exact = (u128::from(total) * u128::from(*weight)).checked_div(sum);
            to_minor(field, Some(exact.unwrap_or(0)))?
        };
        given += share;
        shares.push(share);
    }
    assert_eq!(given, total, "shares add up to the total");
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::model::CurrencyCode;
    use proptest::prelude::*;

    fn rate(numerator: u64, denominator: u64) -> ExchangeRate {
        ExchangeRate {
            from: CurrencyCode::parse("USD").expect("USD"),
            to: CurrencyCode::parse("EUR").expect("EUR"),
            numerator,
            denominator,
        }
    }

    #[test]
    fn half_up_rounds_halves_away_from_zero() {
        assert_eq!(div_half_up(5, 2), Some(3)); // 2.5 -> 3
        assert_eq!(div_half_up(7, 2), Some(4)); // 3.5 -> 4
        assert_eq!(div_half_up(149, 100), Some(1)); // 1.49 -> 1
        assert_eq!(div_half_up(150, 100), Some(2)); // 1.50 -> 2
        assert_eq!(div_half_up(0, 3), Some(0));
    }

    #[test]
    fn percentages_in_ppm() {
        // 12 % of €253.73 = €30.4476 -> €30.45.
        assert_eq!(ppm_of("f", 25_373, 120_000), Ok(3_045));
        // 20 % of 0.025 -> 0.005, exactly half a cent: rounds up to 1 cent.
        assert_eq!(ppm_of("f", 25, 200_000), Ok(5));
        assert_eq!(ppm_of("f", 1, 500_000), Ok(1));
        assert_eq!(ppm_of("f", 1, 499_999), Ok(0));
    }

    #[test]
    fn conversion_with_an_exact_rate() {
        // $100.00 at 0.9215 EUR/USD = €92.15.
        assert_eq!(convert("f", 10_000, &rate(9_215, 10_000), 2, 2), Ok(9_215));
        // ¥1,000 (no minor units) at 0.0062 EUR/JPY = €6.20.
        assert_eq!(convert("f", 1_000, &rate(62, 10_000), 0, 2), Ok(620));
        // $0.01 at 1/3: 0.333… cent -> 0 cents; $0.02 at 3/4: 1.5 cents -> 2 cents.
        assert_eq!(convert("f", 1, &rate(1, 3), 2, 2), Ok(0));
        assert_eq!(convert("f", 2, &rate(3, 4), 2, 2), Ok(2));
        assert_eq!(
            convert("amount", u64::MAX, &rate(u64::MAX, 1), 2, 2).map_err(|r| (r.code, r.field)),
            Err((codes::OVERFLOW, "amount".to_string()))
        );
    }

    #[test]
    fn allocation_adds_up() {
        assert_eq!(allocate("f", 100, &[1, 1, 1]), Ok(vec![33, 33, 34]));
        assert_eq!(allocate("f", 1_200, &[15_000, 10_000]), Ok(vec![720, 480]));
        assert_eq!(allocate("f", 7, &[0, 0]), Ok(vec![0, 7]));
    }

    proptest! {
        #[test]
        fn allocation_always_adds_up(total in any::<u64>(), weights in proptest::collection::vec(any::<u64>(), 1..20)) {
            let shares = allocate("f", total, &weights).expect("no overflow: shares are at most the total");
            prop_assert_eq!(shares.iter().map(|s| u128::from(*s)).sum::<u128>(), u128::from(total));
        }

        #[test]
        fn half_up_is_within_half_a_unit(n in 0u128..1u128 << 100, d in 1u128..1u128 << 60) {
            let q = div_half_up(n, d).expect("fits");
            // |q·d − n| ≤ d/2, and exact halves round up.
            let diff = (q * d).abs_diff(n);
            prop_assert!(2 * diff <= d);
            if 2 * (n % d) == d { prop_assert_eq!(q, n / d + 1); }
        }
    }
}
