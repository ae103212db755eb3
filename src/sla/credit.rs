//! Service credits: the tier a month's availability falls in, capped, in exact cents.

use super::values::{Cents, Fraction};

/// `{ below = "99.9%", credit = "10%" }`: the credit owed when availability is under `below`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditTier {
    pub below: Fraction,
    pub credit: Fraction,
}

/// The credit owed for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    /// The share of the fee credited, after `credit_cap` (0 when no tier applies).
    pub percent: Fraction,
    /// The amount issued: 0 when it is not above `credit_min`.
    pub amount: Cents,
}

/// The contract terms that decide a credit.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// Sorted by `below`, highest first (as the config holds them).
    pub tiers: &'a [CreditTier],
    pub cap: Fraction,
    pub fee: Cents,
    pub min: Cents,
}

/// Decides the credit for availability `uptime_ms / measured_ms`, exactly.
///
/// The tier is the lowest one whose `below` the availability is strictly under. With nothing
/// measured the availability is undefined and no credit is owed.
pub fn credit(terms: Terms<'_>, uptime_ms: i64, measured_ms: i64) -> Credit {
    let none = Credit {
        percent: Fraction::ZERO,
        amount: Cents(0),
    };
    if measured_ms <= 0 {
        return none;
    }
    let (up, measured) = (uptime_ms.max(0) as u64, measured_ms as u64);
    let Some(tier) = terms
        .tiers
        .iter()
        .rfind(|t| t.below.is_above_ratio(up, measured))
    else {
        return none;
    };
    let percent = min_fraction(tier.credit, terms.cap);
    let amount = half_up_cents(terms.fee, percent);
    Credit {
        percent,
        amount: if amount > terms.min { amount } else { Cents(0) },
    }
}

fn min_fraction(a: Fraction, b: Fraction) -> Fraction {
    if (a.num() as u128) * (b.den() as u128) <= (b.num() as u128) * (a.den() as u128) {
        a
    } else {
        b
    }
}

/// `fee × share`, rounded half-up to the cent.
fn half_up_cents(fee: Cents, share: Fraction) -> Cents {
    let fee = fee.0.max(0) as u128;
    let (num, den) = (share.num() as u128, share.den() as u128);
    Cents(((fee * num * 2 + den) / (2 * den)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(text: &str) -> Fraction {
        Fraction::parse_percent(text).unwrap()
    }

    fn tiers() -> Vec<CreditTier> {
        vec![
            CreditTier {
                below: pct("99.9%"),
                credit: pct("10%"),
            },
            CreditTier {
                below: pct("99%"),
                credit: pct("25%"),
            },
            CreditTier {
                below: pct("95%"),
                credit: pct("100%"),
            },
        ]
    }

    /// The standard tiers with a cap, fee and minimum.
    fn with<'a>(tiers: &'a [CreditTier], cap: &str, fee: i64, min: i64) -> Terms<'a> {
        Terms {
            tiers,
            cap: pct(cap),
            fee: Cents(fee),
            min: Cents(min),
        }
    }

    #[test]
    fn tiers_at_and_just_below_each_boundary() {
        let tiers = tiers();
        let terms = with(&tiers, "100%", 200_000, 0);
        // A 30-day month measured in ms: 2,592,000,000 ms.
        let month = 2_592_000_000i64;
        // (uptime ms, expected credit %, expected amount in cents) — computed by hand:
        let cases = [
            // exactly 99.9%: 0.999 × 2,592,000,000 = 2,589,408,000 → not below 99.9% → no credit
            (2_589_408_000, "0%", 0),
            // one ms less → below 99.9% → 10% of 2000.00 = 200.00
            (2_589_407_999, "10%", 20_000),
            // exactly 99%: 2,566,080,000 → not below 99% → still the 99.9% tier, 10%
            (2_566_080_000, "10%", 20_000),
            // one ms less → 25% = 500.00
            (2_566_079_999, "25%", 50_000),
            // exactly 95%: 2,462,400,000 → 25%
            (2_462_400_000, "25%", 50_000),
            // one ms less → 100% = 2000.00
            (2_462_399_999, "100%", 200_000),
            (0, "100%", 200_000),
            (month, "0%", 0),
        ];
        for (uptime, percent, cents) in cases {
            let c = credit(terms, uptime, month);
            assert_eq!(
                (c.percent, c.amount),
                (pct(percent), Cents(cents)),
                "uptime {uptime}"
            );
        }
    }

    #[test]
    fn a_value_that_prints_as_the_target_is_still_below_it() {
        // 99.89997% prints as 99.9000% with 4 decimals, yet it is below 99.9%.
        let tiers = tiers();
        let terms = with(&tiers, "100%", 200_000, 0);
        let c = credit(terms, 9_989_997, 10_000_000);
        assert_eq!(c.percent, pct("10%"));
    }

    #[test]
    fn cap_rounding_and_minimum() {
        let tiers = tiers();
        // Capped at 50%: the 100% tier gives 50% of 333.33 = 166.665 → 166.67 (half-up).
        let terms = with(&tiers, "50%", 33_333, 0);
        let c = credit(terms, 0, 1000);
        assert_eq!((c.percent, c.amount), (pct("50%"), Cents(16_667)));
        // 10% of 1.25 = 0.125 → 0.13; with credit_min 0.13 it is not above → 0.
        let terms = with(&tiers, "100%", 125, 0);
        assert_eq!(credit(terms, 998, 1000).amount, Cents(13));
        let terms = Terms {
            min: Cents(13),
            ..terms
        };
        let c = credit(terms, 998, 1000);
        assert_eq!((c.percent, c.amount), (pct("10%"), Cents(0)));
    }

    #[test]
    fn nothing_measured_owes_nothing() {
        let tiers = tiers();
        let terms = with(&tiers, "100%", 200_000, 0);
        assert_eq!(credit(terms, 0, 0).amount, Cents(0));
    }
}
