//! Hand-computed cases over the calendar and the availability maths together (pure, no store).

use slaprobe::sla::availability::NoDataPolicy;
use slaprobe::sla::availability::{Exclusions, Timeline, compute};
use slaprobe::sla::calendar::Coverage;
use slaprobe::sla::values::Fraction;
use slaprobe::sla::{Intervals, budget, calendar};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap()
}

/// Monitored all along (first outcome long before, latest one just now).
fn timeline(incidents: &[(&str, &str)], now: i64) -> Timeline {
    Timeline {
        incidents: incidents
            .iter()
            .map(|(a, b)| (ms(a), Some(ms(b))))
            .collect(),
        first_ms: Some(ms("2020-01-01T00:00:00Z")),
        last_ms: Some(now - 1000),
        interval_ms: 30_000,
        max_gap_ms: 70_000,
        ..Timeline::default()
    }
}

fn month_numbers(
    tz: &str,
    year: i16,
    month: i8,
    coverage: &Coverage,
    incidents: &[(&str, &str)],
) -> (i64, i64, i64) {
    let tz = zone(tz);
    let (from, to) = calendar::month(&tz, year, month).unwrap();
    let now = ms("2027-06-01T00:00:00Z");
    let ex = Exclusions {
        covered: calendar::covered(coverage, &tz, from, to),
        maintenance: Intervals::empty(),
        agreed: Intervals::empty(),
        no_data_policy: NoDataPolicy::Exclude,
    };
    let a = compute(&timeline(incidents, now), &ex, from, to, now);
    (a.period_ms, a.measured_ms, a.downtime_ms)
}

#[test]
fn outage_across_a_month_boundary_in_berlin() {
    // Berlin's October ends at 2026-10-31T23:00Z. An outage 22:30Z–23:30Z gives 30 min to
    // October and 30 min to November.
    let outage = [("2026-10-31T22:30:00Z", "2026-10-31T23:30:00Z")];
    let october = month_numbers("Europe/Berlin", 2026, 10, &Coverage::Always, &outage);
    let november = month_numbers("Europe/Berlin", 2026, 11, &Coverage::Always, &outage);
    assert_eq!(october, (745 * HOUR, 745 * HOUR, 30 * MIN));
    assert_eq!(november, (720 * HOUR, 720 * HOUR, 30 * MIN));
}

#[test]
fn march_in_berlin_has_743_hours() {
    // One hour down in 743: availability 742/743 = 99.8654%.
    let (period, measured, down) = month_numbers(
        "Europe/Berlin",
        2026,
        3,
        &Coverage::Always,
        &[("2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z")],
    );
    assert_eq!((period, measured, down), (743 * HOUR, 743 * HOUR, HOUR));
}

#[test]
fn february_exactly_at_the_target_is_met() {
    // February 2026 (UTC): 28 days = 672 h = 2,419,200,000 ms; 0.1% of it = 2,419,200 ms
    // (40 min 19.2 s) of downtime leaves exactly 99.9%: met, and the budget is used up exactly.
    let (period, measured, down) = month_numbers(
        "UTC",
        2026,
        2,
        &Coverage::Always,
        &[("2026-02-14T12:00:00Z", "2026-02-14T12:40:19.200Z")],
    );
    assert_eq!((period, down), (672 * HOUR, 2_419_200));
    let target = Fraction::parse_percent("99.9%").unwrap();
    assert!(!target.is_above_ratio((measured - down) as u64, measured as u64));
    assert_eq!(budget::budget(target, measured, down).remaining_ms, 0);
    // One more millisecond misses it.
    assert!(target.is_above_ratio((measured - down - 1) as u64, measured as u64));
}

#[test]
fn business_hours_in_berlin_october_with_a_night_outage() {
    // Mon–Fri 09:00–18:00 Berlin in October 2026: 22 weekdays × 9 h = 198 h covered.
    // An outage Tue 2026-10-06 03:00–10:00 local (01:00Z–08:00Z) counts 09:00–10:00 = 1 h.
    let coverage = Coverage::business_hours(
        [true, true, true, true, true, false, false],
        9 * 60,
        18 * 60,
        vec![],
    );
    let (period, measured, down) = month_numbers(
        "Europe/Berlin",
        2026,
        10,
        &coverage,
        &[("2026-10-06T01:00:00Z", "2026-10-06T08:00:00Z")],
    );
    assert_eq!((period, measured, down), (745 * HOUR, 198 * HOUR, HOUR));
}
