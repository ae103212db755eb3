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

    const MINUTE_MS: i64 = 60_000;

    fn percent(text: &str) -> Fraction {
        Fraction::parse_percent(text).unwrap()
    }

    #[test]
    fn a_rule_judges_only_once_monitoring_covers_its_long_window() {
        let rules = burn::default_rules();
        let now = 6000 * MINUTE_MS;
        // The verdict for a service monitored for `monitored_min` minutes whose last `down_min`
        // minutes were down (all of every window measured), against 99.9%.
        let verdict = |severity, monitored_min: i64, down_min: i64| {
            burn_verdict(
                &rules,
                severity,
                percent("99.9%"),
                now - monitored_min * MINUTE_MS,
                now,
                |length: Duration| Window {
                    downtime_ms: (down_min * MINUTE_MS).min(length.as_millis() as i64),
                    measured_ms: length.as_millis() as i64,
                },
            )
        };
        // Probed for 30 minutes: no page rule (1 h and 6 h windows) can judge.
        assert_eq!(verdict(Severity::Page, 30, 60), BurnVerdict::Unjudged);
        // Probed for 2 hours, down the last 10 minutes: over 1 h, 10 m down burns at
        // (10/60) / 0.001 = 166.7x ≥ 14.4; over 5 m, 5/5 → 1000x. The 1 h rule fires.
        let BurnVerdict::Firing(f) = verdict(Severity::Page, 120, 10) else {
            panic!("the 1 h page rule fires")
        };
        assert_eq!(f.rule.long, Duration::from_secs(3600));
        assert_eq!(f.long.downtime_ms, 10 * MINUTE_MS);
        // Nothing down: the rules judge and stay quiet.
        assert_eq!(verdict(Severity::Page, 120, 0), BurnVerdict::Quiet);
        // Ticket (3 d) needs three days of monitoring.
        assert_eq!(verdict(Severity::Ticket, 120, 0), BurnVerdict::Unjudged);
    }

    #[test]
    fn summaries_name_the_rates_and_the_rule() {
        // 6 m of 60 m = 10% / 0.1% = 100x; 5 m of 5 m = 1000x.
        let firing = Firing {
            rule: burn::default_rules()[0],
            long: Window {
                downtime_ms: 6 * MINUTE_MS,
                measured_ms: 60 * MINUTE_MS,
            },
            short: Window {
                downtime_ms: 5 * MINUTE_MS,
                measured_ms: 5 * MINUTE_MS,
            },
        };
        assert_eq!(
            burn_summary(&firing, percent("99.9%")),
            "the error budget burns at 100.0x over the last 1 h 00 m 00 s and 1000.0x over the \
             last 5 m 00 s (page rule: 14.4x over 1 h 00 m 00 s confirmed by 5 m 00 s)"
        );
        assert_eq!(burn_flag(Severity::Ticket), "burn:ticket");
        assert_eq!(at_risk_flag("2026-10"), "at_risk:2026-10");
    }
}
