//! The budget checks' decisions and their one-line summaries: which burn-rate rule fires for
//! a service, and what an "SLA AT RISK" notice says. Pure: windows and budgets are given.

use std::time::Duration;

use crate::report::MonthBudget;
use crate::sla::burn::{self, BurnRule, Severity, Window};
use crate::sla::values::Fraction;
use crate::text::human_duration;

/// A rule that fires, with the windows that made it fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    pub rule: BurnRule,
    pub long: Window,
    pub short: Window,
}

/// What the burn-rate rules of one severity say about a service now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurnVerdict {
    /// No rule of this severity can judge yet: monitoring does not cover its long window.
    Unjudged,
    /// The rules judged and none fires.
    Quiet,
    Firing(Firing),
}

/// Judges the rules of `severity` that monitoring since `monitored_since_ms` lets judge (a
/// service probed for a minute has no meaningful burn rate over an hour); `window_of` gives
/// a look-back window's downtime and measured time.
pub fn burn_verdict(
    rules: &[BurnRule],
    severity: Severity,
    target: Fraction,
    monitored_since_ms: i64,
    now_ms: i64,
    mut window_of: impl FnMut(Duration) -> Window,
) -> BurnVerdict {
    let rules: Vec<BurnRule> = rules
        .iter()
        .filter(|r| r.severity == severity)
        .filter(|r| monitored_since_ms <= now_ms - r.long.as_millis() as i64)
        .copied()
        .collect();
    if rules.is_empty() {
        return BurnVerdict::Unjudged;
    }
    match burn::firing(&rules, target, &mut window_of).copied() {
        Some(rule) => BurnVerdict::Firing(Firing {
            rule,
            long: window_of(rule.long),
            short: window_of(rule.short),
        }),
        None => BurnVerdict::Quiet,
    }
}

/// The flag that keeps a firing severity to one notice.
pub fn burn_flag(severity: Severity) -> &'static str {
    match severity {
        Severity::Page => "burn:page",
        Severity::Ticket => "burn:ticket",
    }
}

/// The flag that keeps a month's "at risk" to one notice.
pub fn at_risk_flag(month: &str) -> String {
    format!("at_risk:{month}")
}

/// "the error budget burns at 20.0x over the last 1 h 00 m 00 s and …".
pub fn burn_summary(firing: &Firing, target: Fraction) -> String {
    let rule = firing.rule;
    let rate = |w| burn::rate(w, target).unwrap_or(f64::INFINITY);
    let severity = match rule.severity {
        Severity::Page => "page",
        Severity::Ticket => "ticket",
    };
    format!(
        "the error budget burns at {:.1}x over the last {} and {:.1}x over the last {} ({} \
         rule: {:.1}x over {} confirmed by {})",
        rate(firing.long),
        human_duration(rule.long.as_millis() as i64),
        rate(firing.short),
        human_duration(rule.short.as_millis() as i64),
        severity,
        rule.rate_tenths as f64 / 10.0,
        human_duration(rule.long.as_millis() as i64),
        human_duration(rule.short.as_millis() as i64),
    )
}

/// "12% of the error budget for 2026-10 is left (…); availability so far 99.912%".
pub fn at_risk_summary(month: &MonthBudget, threshold: Fraction) -> String {
    let share = month.budget.remaining_share().unwrap_or(0.0);
    format!(
        "{:.0}% of the error budget for {} is left ({} of {}; the alert threshold is {}); \
         availability so far {}",
        (share * 100.0).floor().max(0.0),
        month.month,
        human_duration(month.budget.remaining_ms),
        human_duration(month.budget.allowed_ms),
        threshold,
        month
            .numbers
            .availability()
            .map_or("n/a".to_string(), |a| format!("{:.3}%", a * 100.0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn target() -> Fraction {
        Fraction::parse_percent("99.9%").unwrap()
    }

    /// A window of `length` with `down_ms` downtime, all of it measured.
    fn down(down_ms: i64) -> impl FnMut(Duration) -> Window {
        move |length| Window {
            downtime_ms: down_ms.min(length.as_millis() as i64),
            measured_ms: length.as_millis() as i64,
        }
    }

    #[test]
    fn a_rule_judges_only_once_monitoring_covers_its_long_window() {
        let rules = burn::default_rules();
        let now = 100 * HOUR;
        // Probed for 30 minutes: no page rule (1 h and 6 h windows) can judge.
        let v = burn_verdict(
            &rules,
            Severity::Page,
            target(),
            now - 30 * MIN,
            now,
            down(HOUR),
        );
        assert_eq!(v, BurnVerdict::Unjudged);
        // Probed for 2 hours, down the last 10 minutes: over 1 h, 10 m down burns at
        // (10/60) / 0.001 = 166.7x ≥ 14.4; over 5 m, 5/5 → 1000x. The 1 h rule fires.
        let v = burn_verdict(
            &rules,
            Severity::Page,
            target(),
            now - 2 * HOUR,
            now,
            down(10 * MIN),
        );
        let BurnVerdict::Firing(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(f.rule.long, Duration::from_secs(3600));
        assert_eq!(f.long.downtime_ms, 10 * MIN);
        // Nothing down: the rules judge and stay quiet.
        let v = burn_verdict(
            &rules,
            Severity::Page,
            target(),
            now - 2 * HOUR,
            now,
            down(0),
        );
        assert_eq!(v, BurnVerdict::Quiet);
        // Ticket (3 d) needs three days of monitoring.
        let v = burn_verdict(
            &rules,
            Severity::Ticket,
            target(),
            now - 2 * HOUR,
            now,
            down(0),
        );
        assert_eq!(v, BurnVerdict::Unjudged);
    }

    #[test]
    fn summaries_name_the_rates_and_the_rule() {
        let rule = burn::default_rules()[0];
        let firing = Firing {
            rule,
            // 6 m of 60 m = 10% / 0.1% = 100x; 5 m of 5 m = 1000x.
            long: Window {
                downtime_ms: 6 * MIN,
                measured_ms: HOUR,
            },
            short: Window {
                downtime_ms: 5 * MIN,
                measured_ms: 5 * MIN,
            },
        };
        assert_eq!(
            burn_summary(&firing, target()),
            "the error budget burns at 100.0x over the last 1 h 00 m 00 s and 1000.0x over the \
             last 5 m 00 s (page rule: 14.4x over 1 h 00 m 00 s confirmed by 5 m 00 s)"
        );
        assert_eq!(burn_flag(Severity::Ticket), "burn:ticket");
        assert_eq!(at_risk_flag("2026-10"), "at_risk:2026-10");
    }
}
