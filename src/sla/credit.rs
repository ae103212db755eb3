//! Service credits: the tier a month's availability falls in, capped, in exact cents.

use super::values::{Cents, ExactCents, Fraction};

/// `{ below = "99.9%", credit = "10%" }`: the credit owed when availability is under `below`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditTier {
    pub below: Fraction,
    pub credit: Fraction,
}

/// `downtime_credit`: an amount for each `per` of downtime (compensation per hour of
/// downtime), added to the tier credit before the contract's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DowntimeCredit {
    pub per_ms: i64,
    pub amount: Cents,
    pub count: DowntimeCount,
    /// `beyond = "budget"`: only downtime beyond the error budget, (1 − target) × measured.
    pub beyond_budget: bool,
}

/// How downtime is counted in `per`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowntimeCount {
    /// Every started `per` counts whole: 61 minutes are two hours.
    Started,
    /// `downtime / per` exactly: 90 minutes are 1.5 hours.
    Prorata,
}

/// The credit owed for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    /// The tier's share of the fee, after `credit_cap` (0 when no tier applies).
    pub percent: Fraction,
    /// `percent × fee`, exactly.
    pub tier: ExactCents,
    /// The downtime credit, exactly.
    pub downtime: ExactCents,
    /// The response and restore breaches' credit (DESIGN.md §6.2), exactly.
    pub breach: ExactCents,
    /// What is issued, exactly: tier + downtime + breach, or 0 when that is not above
    /// `credit_min`.
    /// A contract's total is the sum of these (then capped), not of the rounded amounts.
    pub issued: ExactCents,
    /// `issued`, rounded half-up to the cent.
    pub amount: Cents,
}

impl Credit {
    pub const NONE: Credit = Credit {
        percent: Fraction::ZERO,
        tier: ExactCents::ZERO,
        downtime: ExactCents::ZERO,
        breach: ExactCents::ZERO,
        issued: ExactCents::ZERO,
        amount: Cents(0),
    };
}

/// The contract terms that decide a credit.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// Sorted by `below`, highest first (as the config holds them).
    pub tiers: &'a [CreditTier],
    pub cap: Fraction,
    /// The service's own fee (its share of the contract's).
    pub fee: Cents,
    pub min: Cents,
    /// The availability target, for `beyond = "budget"`.
    pub target: Fraction,
    pub downtime: Option<DowntimeCredit>,
}

/// Decides the credit for availability `uptime_ms / measured_ms`, exactly.
///
/// The tier is the lowest one whose `below` the availability is strictly under; its share is
/// capped at `credit_cap`. The downtime credit (downtime = measured − uptime) is added to it.
/// With nothing measured the availability is undefined and no credit is owed.
pub fn credit(terms: Terms<'_>, uptime_ms: i64, measured_ms: i64) -> Credit {
    if measured_ms <= 0 {
        return Credit::NONE;
    }
    let (up, measured) = (uptime_ms.max(0) as u64, measured_ms as u64);
    let percent = terms
        .tiers
        .iter()
        .rfind(|t| t.below.is_above_ratio(up, measured))
        .map_or(Fraction::ZERO, |tier| min_fraction(tier.credit, terms.cap));
    let tier = ExactCents::share_of(terms.fee, percent);
    let downtime_ms = (measured_ms - uptime_ms.max(0)).max(0);
    let downtime = terms.downtime.map_or(ExactCents::ZERO, |rule| {
        downtime_credit(rule, downtime_ms, measured_ms, terms.target)
    });
    let total = tier + downtime;
    let issued = if total.round_half_up() > terms.min {
        total
    } else {
        ExactCents::ZERO
    };
    Credit {
        percent,
        tier,
        downtime,
        breach: ExactCents::ZERO,
        issued,
        amount: issued.round_half_up(),
    }
}

/// `credit` with the breaches' credit added (each breaching incident's `breach_credit` share of
/// the fee, DESIGN.md §6.2), `min` decided again on the whole; the contract's cap applies to
/// the total afterwards.
pub fn with_breaches(credit: Credit, breach: ExactCents, min: Cents) -> Credit {
    let total = credit.tier + credit.downtime + breach;
    let issued = if total.round_half_up() > min {
        total
    } else {
        ExactCents::ZERO
    };
    Credit {
        breach,
        issued,
        amount: issued.round_half_up(),
        ..credit
    }
}

/// The downtime credit for `downtime_ms` of downtime in `measured_ms` of measured time.
pub fn downtime_credit(
    rule: DowntimeCredit,
    downtime_ms: i64,
    measured_ms: i64,
    target: Fraction,
) -> ExactCents {
    if rule.per_ms <= 0 {
        return ExactCents::ZERO;
    }
    // The downtime counted, as counted_num / den ms.
    let (counted_num, den) = if rule.beyond_budget {
        let (num, den) = (target.num() as i128, target.den() as i128);
        (
            downtime_ms as i128 * den - (den - num) * measured_ms as i128,
            den,
        )
    } else {
        (downtime_ms as i128, 1)
    };
    if counted_num <= 0 {
        return ExactCents::ZERO;
    }
    let per = den * rule.per_ms as i128;
    let amount = rule.amount.0 as i128;
    match rule.count {
        DowntimeCount::Started => ExactCents::new(amount * ((counted_num + per - 1) / per), 1),
        DowntimeCount::Prorata => ExactCents::new(amount * counted_num, per),
    }
}

/// A contract's total credit: the exact sum of its services' issued credits, capped at
/// `cap × total_fee`, rounded half-up. It never exceeds the cap of the total fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractCredit {
    pub total_fee: Cents,
    pub total: Cents,
    /// Whether the cap lowered the sum.
    pub capped: bool,
}

/// Sums `issued` (each service's exact credit) and caps it; a contract without a fee has no
/// cap to apply (its credits can only be downtime credits, which the contract sets itself).
pub fn contract_total(issued: &[ExactCents], cap: Fraction, total_fee: Cents) -> ContractCredit {
    let sum = issued.iter().fold(ExactCents::ZERO, |acc, c| acc + *c);
    let limit = ExactCents::share_of(total_fee, cap);
    let capped = total_fee.0 > 0 && sum > limit;
    ContractCredit {
        total_fee,
        total: if capped { limit } else { sum }.round_half_up(),
        capped,
    }
}

/// Splits a contract's fee among its services by `shares` (the largest-remainder method):
/// each gets its exact share rounded down to the cent, and the cents left over go one each
/// to the largest remainders (the first service on a tie), so the fees add up to `total`.
pub fn split_fee(total: Cents, shares: &[u32]) -> Vec<Cents> {
    let sum: i128 = shares.iter().map(|&s| s as i128).sum();
    if sum == 0 {
        return vec![Cents(0); shares.len()];
    }
    let total_cents = total.0.max(0) as i128;
    let mut fees: Vec<i128> = shares
        .iter()
        .map(|&s| total_cents * s as i128 / sum)
        .collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep config order.
    order.sort_by_key(|&i| std::cmp::Reverse(total_cents * shares[i] as i128 % sum));
    let left = total_cents - fees.iter().sum::<i128>();
    for &i in order.iter().take(left as usize) {
        fees[i] += 1;
    }
    fees.into_iter().map(|f| Cents(f as i64)).collect()
}

/// `split_fee(total, shares)[index]` without building the whole split: the member's whole share
/// plus the cent it gets when its remainder ranks among the largest (ties in config order).
pub fn fee_share_of(total: Cents, shares: &[u32], index: usize) -> Cents {
    let sum: i128 = shares.iter().map(|&s| s as i128).sum();
    if sum == 0 || index >= shares.len() {
        return Cents(0);
    }
    let total_cents = total.0.max(0) as i128;
    let floor = |s: u32| total_cents * s as i128 / sum;
    let remainder = |s: u32| total_cents * s as i128 % sum;
    let left = total_cents - shares.iter().map(|&s| floor(s)).sum::<i128>();
    let own = remainder(shares[index]);
    let ahead = shares
        .iter()
        .enumerate()
        .filter(|&(i, &s)| remainder(s) > own || (remainder(s) == own && i < index))
        .count() as i128;
    Cents((floor(shares[index]) + i128::from(ahead < left)) as i64)
}

fn min_fraction(a: Fraction, b: Fraction) -> Fraction {
    if (a.num() as u128) * (b.den() as u128) <= (b.num() as u128) * (a.den() as u128) {
        a
    } else {
        b
    }
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
            target: pct("99.9%"),
            downtime: None,
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

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    /// A 30-day month in ms.
    const MONTH: i64 = 30 * 24 * HOUR;

    fn per_hour(amount: i64, count: DowntimeCount, beyond_budget: bool) -> DowntimeCredit {
        DowntimeCredit {
            per_ms: HOUR,
            amount: Cents(amount),
            count,
            beyond_budget,
        }
    }

    #[test]
    fn a_fee_splits_by_share_and_adds_up() {
        // 1000.00 over three equal shares: 333.333… each; floors 333.33 × 3 = 999.99, the cent
        // left goes to the first (all remainders tie).
        assert_eq!(
            split_fee(Cents(100_000), &[1, 1, 1]),
            [Cents(33_334), Cents(33_333), Cents(33_333)]
        );
        // Shares 2:1:1 of 1000.00: 500.00, 250.00, 250.00.
        assert_eq!(
            split_fee(Cents(100_000), &[2, 1, 1]),
            [Cents(50_000), Cents(25_000), Cents(25_000)]
        );
        // 0.02 over three: floors 0; remainders 2, 2, 2; two cents to the first two.
        assert_eq!(
            split_fee(Cents(2), &[1, 1, 1]),
            [Cents(1), Cents(1), Cents(0)]
        );
        // 10.00 by 1:2: 3.333… and 6.666…; floors 3.33 + 6.66 = 9.99; the larger remainder
        // (1000 × 2 mod 3 = 2 against 1) is the second's.
        assert_eq!(split_fee(Cents(1_000), &[1, 2]), [Cents(333), Cents(667)]);
    }

    #[test]
    fn downtime_is_paid_per_started_hour_or_pro_rata() {
        let target = pct("99.9%");
        let started = per_hour(5_000, DowntimeCount::Started, false);
        let prorata = per_hour(5_000, DowntimeCount::Prorata, false);
        // (downtime, started: whole hours × 50.00, prorata: downtime / 1 h × 50.00)
        let cases = [
            // 90 min: 2 started hours = 100.00; 1.5 h = 75.00
            (90 * MIN, 10_000, 7_500),
            // 61 min: 2 started = 100.00; 61/60 × 50.00 = 50.8333… → 50.83
            (61 * MIN, 10_000, 5_083),
            // exactly 1 h: 1 started = 50.00; 50.00
            (HOUR, 5_000, 5_000),
            // 1 ms: 1 started = 50.00; 50.00 / 3,600,000 = 0.0000139 → 0.00
            (1, 5_000, 0),
            (0, 0, 0),
        ];
        for (down, by_started, by_prorata) in cases {
            let got = |rule| downtime_credit(rule, down, MONTH, target).round_half_up();
            assert_eq!(got(started), Cents(by_started), "started, {down} ms");
            assert_eq!(got(prorata), Cents(by_prorata), "prorata, {down} ms");
        }
    }

    #[test]
    fn beyond_the_budget_counts_only_the_downtime_past_it() {
        // 99.9% of a 30-day month allows 0.1% × 2,592,000,000 ms = 2,592,000 ms (43.2 min).
        let target = pct("99.9%");
        let started = per_hour(5_000, DowntimeCount::Started, true);
        let prorata = per_hour(5_000, DowntimeCount::Prorata, true);
        let budget = 2_592_000;
        let cases = [
            // Inside the budget: nothing.
            (budget, 0, 0),
            // 1 ms past it: one started hour = 50.00; pro rata 0.0000139 → 0.00.
            (budget + 1, 5_000, 0),
            // An hour past it: 50.00 either way.
            (budget + HOUR, 5_000, 5_000),
            // 90 min past it: 2 started = 100.00; 75.00.
            (budget + 90 * MIN, 10_000, 7_500),
        ];
        for (down, by_started, by_prorata) in cases {
            let got = |rule| downtime_credit(rule, down, MONTH, target).round_half_up();
            assert_eq!(got(started), Cents(by_started), "started, {down} ms");
            assert_eq!(got(prorata), Cents(by_prorata), "prorata, {down} ms");
        }
    }

    #[test]
    fn the_downtime_credit_adds_to_the_tier_and_the_contract_total_is_capped() {
        let tiers = tiers();
        // 1000.00 over three services; each down 10 h of a 30-day month: availability
        // (720 − 10) / 720 = 98.61% → the 25% tier; plus 10 started hours × 100.00 = 1000.00.
        let fees = split_fee(Cents(100_000), &[1, 1, 1]);
        let issued: Vec<Credit> = fees
            .iter()
            .map(|&fee| {
                let terms = Terms {
                    downtime: Some(per_hour(10_000, DowntimeCount::Started, false)),
                    ..with(&tiers, "100%", fee.0, 0)
                };
                credit(terms, MONTH - 10 * HOUR, MONTH)
            })
            .collect();
        // First service: 25% × 333.34 = 83.335 → tier 83.34 (half-up); + 1000.00 = 1083.335
        // exactly, issued 1083.34.
        assert_eq!(issued[0].percent, pct("25%"));
        assert_eq!(issued[0].tier.round_half_up(), Cents(8_334));
        assert_eq!(issued[0].downtime.round_half_up(), Cents(100_000));
        assert_eq!(issued[0].amount, Cents(108_334));
        // 25% × 333.33 = 83.3325 → 83.33; + 1000.00 = 1083.33.
        assert_eq!(issued[1].amount, Cents(108_333));
        // The exact sum is 25% × 1000.00 + 3000.00 = 3250.00: above 100% × 1000.00, so the
        // contract's total is 1000.00, capped.
        let exact: Vec<ExactCents> = issued.iter().map(|c| c.issued).collect();
        let total = contract_total(&exact, pct("100%"), Cents(100_000));
        assert_eq!(
            total,
            ContractCredit {
                total_fee: Cents(100_000),
                total: Cents(100_000),
                capped: true
            }
        );
        // Under a 50% cap: 500.00.
        assert_eq!(
            contract_total(&exact, pct("50%"), Cents(100_000)).total,
            Cents(50_000)
        );
    }

    #[test]
    fn the_total_is_the_rounded_exact_sum_not_the_sum_of_roundings() {
        // 10% of 333.34, 333.33, 333.33 = 33.334 + 33.333 + 33.333 = 100.000 exactly: the
        // total is 100.00, though the issued amounts (33.33 each) add up to 99.99.
        let tiers = tiers();
        let fees = split_fee(Cents(100_000), &[1, 1, 1]);
        let credits: Vec<Credit> = fees
            .iter()
            .map(|&fee| credit(with(&tiers, "100%", fee.0, 0), 9_989, 10_000))
            .collect();
        let amounts: Vec<Cents> = credits.iter().map(|c| c.amount).collect();
        assert_eq!(amounts, [Cents(3_333), Cents(3_333), Cents(3_333)]);
        let exact: Vec<ExactCents> = credits.iter().map(|c| c.issued).collect();
        let total = contract_total(&exact, pct("100%"), Cents(100_000));
        assert_eq!((total.total, total.capped), (Cents(10_000), false));
    }

    proptest::proptest! {
        #[test]
        fn the_total_never_exceeds_the_cap_of_the_total_fee(
            fee in 0i64..10_000_000,
            shares in proptest::collection::vec(1u32..5, 1..6),
            cap_percent in 0u64..=100,
            downtimes in proptest::collection::vec(0i64..MONTH, 6),
            amount in 0i64..100_000,
            prorata in proptest::bool::ANY,
        ) {
            let tiers = tiers();
            let cap = Fraction::new(cap_percent, 100);
            let fees = split_fee(Cents(fee), &shares);
            proptest::prop_assert_eq!(fees.iter().map(|f| f.0).sum::<i64>(), fee);
            let count = if prorata { DowntimeCount::Prorata } else { DowntimeCount::Started };
            let issued: Vec<ExactCents> = fees
                .iter()
                .zip(&downtimes)
                .map(|(&f, &down)| {
                    let terms = Terms {
                        tiers: &tiers,
                        cap,
                        fee: f,
                        min: Cents(0),
                        target: pct("99.9%"),
                        downtime: Some(per_hour(amount, count, false)),
                    };
                    credit(terms, MONTH - down, MONTH).issued
                })
                .collect();
            let total = contract_total(&issued, cap, Cents(fee));
            let limit = ExactCents::share_of(Cents(fee), cap).round_half_up();
            if fee > 0 {
                proptest::prop_assert!(total.total <= limit, "{:?} > {:?}", total.total, limit);
            }
        }
    }

    #[test]
    fn breaches_add_to_the_credit_and_count_towards_the_minimum() {
        let none = Credit::NONE;
        // 2 × 5% of 100.00 = 10.00, under a minimum of 10.00: not issued; above 9.99: issued.
        let breach = ExactCents::new(1_000 * 100, 100);
        assert_eq!(with_breaches(none, breach, Cents(1_000)).amount, Cents(0));
        let issued = with_breaches(none, breach, Cents(999));
        assert_eq!(issued.amount, Cents(1_000));
        assert_eq!(issued.breach, breach);
    }

    proptest::proptest! {
        #[test]
        fn one_share_is_that_of_the_whole_split(
            total in 0i64..10_000_000,
            shares in proptest::collection::vec(0u32..20, 1..40),
        ) {
            let all = split_fee(Cents(total), &shares);
            for (i, fee) in all.iter().enumerate() {
                proptest::prop_assert_eq!(fee_share_of(Cents(total), &shares, i), *fee);
            }
        }
    }
}
