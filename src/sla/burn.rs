//! Error-budget burn rates and the multiwindow, multi-burn-rate alert rules (DESIGN.md §2).
//!
//! burn = (downtime share of a look-back window) / (1 − target). A rule fires when both its
//! long and its short window burn at or above its rate; decided on integers.

use std::time::Duration;

use super::values::Fraction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Page,
    Ticket,
}

/// Fire when the burn over `long` and over `short` are both ≥ `rate_tenths / 10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnRule {
    pub long: Duration,
    pub short: Duration,
    /// The burn rate in tenths: 144 is 14.4.
    pub rate_tenths: u64,
    pub severity: Severity,
}

/// The default rules: page at 14.4 over 1 h (confirmed by 5 m) and at 6 over 6 h (30 m);
/// ticket at 1 over 3 d (6 h).
pub fn default_rules() -> Vec<BurnRule> {
    let h = |n: u64| Duration::from_secs(n * 3600);
    let m = |n: u64| Duration::from_secs(n * 60);
    vec![
        BurnRule {
            long: h(1),
            short: m(5),
            rate_tenths: 144,
            severity: Severity::Page,
        },
        BurnRule {
            long: h(6),
            short: m(30),
            rate_tenths: 60,
            severity: Severity::Page,
        },
        BurnRule {
            long: h(72),
            short: h(6),
            rate_tenths: 10,
            severity: Severity::Ticket,
        },
    ]
}

/// Downtime and measured time of a look-back window, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub downtime_ms: i64,
    pub measured_ms: i64,
}

/// Whether a window burns at or above `rate_tenths / 10` for `target`. Nothing measured never
/// burns; a 100% target burns at any downtime.
pub fn burns_at(window: Window, target: Fraction, rate_tenths: u64) -> bool {
    if window.measured_ms <= 0 {
        return false;
    }
    let (num, den) = (target.num() as u128, target.den() as u128);
    let allowed = den - num; // (1 − target) × den
    let down = window.downtime_ms.max(0) as u128;
    let measured = window.measured_ms as u128;
    if allowed == 0 {
        return down > 0;
    }
    // down / measured ≥ rate/10 × allowed/den  ⟺  down × 10 × den ≥ rate × allowed × measured
    down * 10 * den >= rate_tenths as u128 * allowed * measured
}

/// The burn rate as a float, for display only.
pub fn rate(window: Window, target: Fraction) -> Option<f64> {
    let allowed = 1.0 - target.as_f64();
    (window.measured_ms > 0 && allowed > 0.0)
        .then(|| window.downtime_ms as f64 / window.measured_ms as f64 / allowed)
}

/// The first rule (most urgent first, as listed) whose windows both burn; `window_of` gives the
/// downtime and measured time of the look-back window of a length.
pub fn firing(
    rules: &[BurnRule],
    target: Fraction,
    mut window_of: impl FnMut(Duration) -> Window,
) -> Option<&BurnRule> {
    rules.iter().find(|rule| {
        burns_at(window_of(rule.long), target, rule.rate_tenths)
            && burns_at(window_of(rule.short), target, rule.rate_tenths)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn target() -> Fraction {
        Fraction::parse_percent("99.9%").unwrap()
    }

    #[test]
    fn burn_thresholds_by_hand() {
        // 99.9%: the budget is 0.1%. Over 1 h (3,600,000 ms) a burn of 14.4 is 14.4 × 0.1% =
        // 1.44% of the hour = 51,840 ms down.
        let w = |down| Window {
            downtime_ms: down,
            measured_ms: HOUR,
        };
        assert!(burns_at(w(51_840), target(), 144));
        assert!(!burns_at(w(51_839), target(), 144));
        // Over 5 min (300,000 ms): 1.44% = 4,320 ms.
        let five = |down| Window {
            downtime_ms: down,
            measured_ms: 5 * MIN,
        };
        assert!(burns_at(five(4_320), target(), 144));
        assert!(!burns_at(five(4_319), target(), 144));
        // A burn of 1 over 3 days (259,200,000 ms) is 0.1% = 259,200 ms (4 m 19.2 s).
        let days = |down| Window {
            downtime_ms: down,
            measured_ms: 72 * HOUR,
        };
        assert!(burns_at(days(259_200), target(), 10));
        assert!(!burns_at(days(259_199), target(), 10));
        assert_eq!(
            rate(w(51_840), target()).map(|r| (r * 10.0).round()),
            Some(144.0)
        );
        assert!(!burns_at(
            Window {
                downtime_ms: 0,
                measured_ms: 0
            },
            target(),
            10
        ));
    }

    #[test]
    fn a_rule_needs_both_windows() {
        let rules = default_rules();
        // A 10-minute outage that ended 20 minutes ago: 1 h burns (10/60 = 16.7% ≫ 1.44%), the
        // last 5 min do not (0 down) → the fast page does not fire; 6 h: 10/360 = 2.78% ≥ 0.6%,
        // last 30 min: 10/30 = 33% → the slow page fires.
        let window_of = |d: Duration| {
            let len = d.as_millis() as i64;
            let down = match len {
                l if l <= 5 * MIN => 0,
                l if l <= 20 * MIN => 0,
                _ => 10 * MIN,
            };
            Window {
                downtime_ms: down,
                measured_ms: len,
            }
        };
        let fired = firing(&rules, target(), window_of).unwrap();
        assert_eq!((fired.rate_tenths, fired.severity), (60, Severity::Page));
        // An ongoing outage of 5 minutes: 5/60 = 8.3% over 1 h and 100% over 5 min → fast page.
        let ongoing = |d: Duration| {
            let len = d.as_millis() as i64;
            Window {
                downtime_ms: len.min(5 * MIN),
                measured_ms: len,
            }
        };
        assert_eq!(firing(&rules, target(), ongoing).unwrap().rate_tenths, 144);
        // Nothing down: nothing fires.
        let clean = |d: Duration| Window {
            downtime_ms: 0,
            measured_ms: d.as_millis() as i64,
        };
        assert!(firing(&rules, target(), clean).is_none());
    }
}
