//! The error budget: how much downtime the target allows in a window, and what is left.

use super::values::Fraction;

/// Allowed and remaining downtime in milliseconds (remaining may be negative: overspent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub allowed_ms: i64,
    pub remaining_ms: i64,
}

impl Budget {
    /// The share of the budget left (negative when overspent); `None` with a 100% target.
    pub fn remaining_share(&self) -> Option<f64> {
        (self.allowed_ms > 0).then(|| self.remaining_ms as f64 / self.allowed_ms as f64)
    }
}

impl Budget {
    /// Whether less than `share` of the budget is left (`remaining / allowed < share`, on
    /// integers). Never with a zero share or a 100% target (no budget to speak of).
    pub fn is_below_share(&self, share: Fraction) -> bool {
        if share.num() == 0 || self.allowed_ms <= 0 {
            return false;
        }
        let (num, den) = (share.num() as i128, share.den() as i128);
        (self.remaining_ms as i128) * den < num * self.allowed_ms as i128
    }
}

/// `(1 − target) × window_ms`, rounded down to the millisecond, minus `downtime_ms`.
pub fn budget(target: Fraction, window_ms: i64, downtime_ms: i64) -> Budget {
    let (num, den) = (target.num() as i128, target.den() as i128);
    let allowed = ((den - num) * window_ms.max(0) as i128 / den) as i64;
    Budget {
        allowed_ms: allowed,
        remaining_ms: allowed - downtime_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_by_hand() {
        let target = Fraction::parse_percent("99.9%").unwrap();
        // 30 days = 2,592,000,000 ms; 0.1% of it = 2,592,000 ms (43 m 12 s).
        let b = budget(target, 2_592_000_000, 600_000);
        assert_eq!(
            b,
            Budget {
                allowed_ms: 2_592_000,
                remaining_ms: 1_992_000
            }
        );
        // October in Berlin, 745 h: 0.1% = 2,682,000 ms (44 m 42 s); overspent by 18 s.
        let b = budget(target, 2_682_000_000, 2_700_000);
        assert_eq!(b.remaining_ms, -18_000);
        assert!(b.remaining_share().unwrap() < 0.0);
        assert_eq!(budget(Fraction::ONE, 1000, 0).remaining_share(), None);
    }

    #[test]
    fn below_a_share_is_decided_on_integers() {
        let quarter = Fraction::parse_percent("25%").unwrap();
        // 2,592,000 ms allowed (99.9% of 30 days); a quarter is 648,000 ms.
        let b = |remaining_ms| Budget {
            allowed_ms: 2_592_000,
            remaining_ms,
        };
        assert!(!b(648_000).is_below_share(quarter));
        assert!(b(647_999).is_below_share(quarter));
        assert!(b(-1).is_below_share(quarter));
        assert!(!b(0).is_below_share(Fraction::ZERO));
        let none = Budget {
            allowed_ms: 0,
            remaining_ms: -5,
        };
        assert!(!none.is_below_share(quarter));
    }
}
