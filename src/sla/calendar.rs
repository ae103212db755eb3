//! Calendar time in a contract's zone: month boundaries, covered hours, recurring windows.
//!
//! Local times follow RFC 5545 on DST days (DESIGN.md §2): an ambiguous local time means its
//! first occurrence, a local time in a gap is read with the offset from before the gap (jiff's
//! "compatible" disambiguation does exactly this), and a window's duration is elapsed time.

use std::time::Duration;

use chrono::TimeZone as _;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::interval::Intervals;

/// An IANA time zone with the name it was given.
#[derive(Debug, Clone)]
pub struct TimeZoneName {
    pub name: String,
    pub zone: jiff::tz::TimeZone,
}

/// The hours a contract covers, in its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    Always,
    BusinessHours {
        /// Index 0 is Monday.
        days: [bool; 7],
        /// Minutes after local midnight; `end_minute` may be 1440.
        start_minute: u32,
        end_minute: u32,
        holidays: Vec<jiff::civil::Date>,
    },
}

/// Milliseconds of a local date-time in `tz`, RFC 5545 rules for gaps and folds.
pub fn local_to_ms(tz: &TimeZone, local: DateTime) -> i64 {
    tz.to_ambiguous_zoned(local)
        .compatible()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or_else(|_| {
            local
                .to_zoned(TimeZone::UTC)
                .map_or(0, |z| z.timestamp().as_millisecond())
        })
}

/// The local date of an instant in `tz`.
pub fn local_date(tz: &TimeZone, ms: i64) -> Date {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .date()
}

/// `[first instant of the month, first instant of the next)` in `tz`.
pub fn month(tz: &TimeZone, year: i16, month: i8) -> Option<(i64, i64)> {
    let first = Date::new(year, month, 1).ok()?;
    let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
    Some((
        local_to_ms(tz, first.to_datetime(Time::midnight())),
        local_to_ms(tz, next.to_datetime(Time::midnight())),
    ))
}

/// The covered time within `[from, to)`: all of it for 24×7, else each covered day's hours in
/// `tz`, without holidays.
pub fn covered(coverage: &Coverage, tz: &TimeZone, from: i64, to: i64) -> Intervals {
    let Coverage::BusinessHours {
        days,
        start_minute,
        end_minute,
        holidays,
    } = coverage
    else {
        return Intervals::single(from, to);
    };
    if from >= to {
        return Intervals::empty();
    }
    let at = |date: Date, minute: u32| -> i64 {
        let (date, minute) = if minute >= 1440 {
            (date.tomorrow().unwrap_or(date), minute - 1440)
        } else {
            (date, minute)
        };
        let time =
            Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).unwrap_or(Time::midnight());
        local_to_ms(tz, date.to_datetime(time))
    };
    let mut spans = Vec::new();
    let mut date = local_date(tz, from)
        .yesterday()
        .unwrap_or(local_date(tz, from));
    let last = local_date(tz, to).tomorrow().unwrap_or(local_date(tz, to));
    while date <= last {
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        if days[weekday] && !holidays.contains(&date) {
            spans.push((at(date, *start_minute), at(date, *end_minute)));
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    Intervals::from_spans(spans).clip(from, to)
}

/// Parses a 5-field cron expression (minute hour day-of-month month day-of-week).
pub fn parse_cron(text: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
}

/// The windows of `duration` starting at each local time matching `cron` in `tz` that overlap
/// `[from, to)`. The cron expression is matched against local (civil) times, so a window at
/// 02:30 happens once on every day: on a spring-forward night at 03:30 summer time (the
/// offset before the gap), on a fall-back night at the first 02:30.
pub fn recurring(
    cron: &croner::Cron,
    duration: Duration,
    tz: &TimeZone,
    from: i64,
    to: i64,
) -> Intervals {
    let length = duration.as_millis() as i64;
    if from >= to {
        return Intervals::empty();
    }
    // Start early enough to catch a window that began before `from` (plus a day of DST slack).
    let search_from = local_civil(tz, from - length - 86_400_000);
    let search_to = local_civil(tz, to)
        .checked_add(jiff::Span::new().days(1))
        .unwrap_or(local_civil(tz, to));
    let Some(start) = to_chrono(search_from) else {
        return Intervals::empty();
    };
    let mut spans = Vec::new();
    for occurrence in cron.iter_after(chrono::Utc.from_utc_datetime(&start)) {
        let Some(civil) = from_chrono(occurrence.naive_utc()) else {
            break;
        };
        if civil > search_to {
            break;
        }
        let begins = local_to_ms(tz, civil);
        spans.push((begins, begins + length));
    }
    Intervals::from_spans(spans).clip(from, to)
}

fn local_civil(tz: &TimeZone, ms: i64) -> DateTime {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .datetime()
}

fn to_chrono(dt: DateTime) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDate::from_ymd_opt(i32::from(dt.year()), dt.month() as u32, dt.day() as u32)?
        .and_hms_opt(dt.hour() as u32, dt.minute() as u32, dt.second() as u32)
}

fn from_chrono(dt: chrono::NaiveDateTime) -> Option<DateTime> {
    use chrono::{Datelike, Timelike};
    DateTime::new(
        dt.year() as i16,
        dt.month() as i8,
        dt.day() as i8,
        dt.hour() as i8,
        dt.minute() as i8,
        dt.second() as i8,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn months_in_berlin_follow_dst() {
        let tz = berlin();
        let hours = |y, m| {
            let (a, b) = month(&tz, y, m).unwrap();
            (b - a) / HOUR
        };
        assert_eq!(hours(2026, 10), 745); // 31 × 24 + 1 (clocks go back on the 25th)
        assert_eq!(hours(2026, 3), 743); // 31 × 24 − 1 (clocks go forward on the 29th)
        assert_eq!(hours(2026, 2), 672); // 28 × 24
        assert_eq!(hours(2028, 2), 696); // 29 × 24, a leap year
        // October 2026 starts at 2026-09-30T22:00Z (CEST, +02:00).
        assert_eq!(month(&tz, 2026, 10).unwrap().0, ms("2026-09-30T22:00:00Z"));
        // November starts at 2026-10-31T23:00Z (CET, +01:00).
        assert_eq!(month(&tz, 2026, 10).unwrap().1, ms("2026-10-31T23:00:00Z"));
    }

    #[test]
    fn business_hours_across_a_week_with_a_holiday_and_dst() {
        let tz = berlin();
        let coverage = Coverage::BusinessHours {
            days: [true, true, true, true, true, false, false],
            start_minute: 9 * 60,
            end_minute: 18 * 60,
            holidays: vec!["2026-10-28".parse().unwrap()],
        };
        // Mon 2026-10-26 .. Mon 2026-11-02 local: Mon, Tue, Thu, Fri covered (Wed is a holiday),
        // 9 h each = 36 h; Saturday and Sunday not covered.
        let from = ms("2026-10-25T23:00:00Z");
        let to = ms("2026-11-01T23:00:00Z");
        let c = covered(&coverage, &tz, from, to);
        assert_eq!(c.total(), 36 * HOUR);
        // Monday 09:00 CET is 08:00Z (after the fall-back on Sunday the 25th).
        assert_eq!(
            c.spans()[0],
            (ms("2026-10-26T08:00:00Z"), ms("2026-10-26T17:00:00Z"))
        );
        // The Friday before (the 23rd, still CEST) starts at 07:00Z.
        let friday = covered(
            &coverage,
            &tz,
            ms("2026-10-23T00:00:00Z"),
            ms("2026-10-24T00:00:00Z"),
        );
        assert_eq!(
            friday.spans(),
            &[(ms("2026-10-23T07:00:00Z"), ms("2026-10-23T16:00:00Z"))]
        );
    }

    #[test]
    fn twenty_four_seven_is_everything() {
        let c = covered(&Coverage::Always, &berlin(), 10, 500);
        assert_eq!(c.spans(), &[(10, 500)]);
    }

    #[test]
    fn recurring_window_at_0230_on_dst_nights() {
        let tz = berlin();
        let cron = parse_cron("30 2 * * *").unwrap();
        let hour = Duration::from_secs(3600);
        // Spring forward, 2026-03-29: 02:30 does not exist; read with the offset before the gap
        // (+01:00) it is 01:30Z = 03:30 CEST. Window 01:30Z–02:30Z.
        let spring = recurring(
            &cron,
            hour,
            &tz,
            ms("2026-03-29T00:00:00Z"),
            ms("2026-03-29T12:00:00Z"),
        );
        assert_eq!(
            spring.spans(),
            &[(ms("2026-03-29T01:30:00Z"), ms("2026-03-29T02:30:00Z"))]
        );
        // Fall back, 2026-10-25: 02:30 happens twice; the first (CEST, 00:30Z) counts, once.
        let autumn = recurring(
            &cron,
            hour,
            &tz,
            ms("2026-10-24T22:00:00Z"),
            ms("2026-10-25T12:00:00Z"),
        );
        assert_eq!(
            autumn.spans(),
            &[(ms("2026-10-25T00:30:00Z"), ms("2026-10-25T01:30:00Z"))]
        );
        // An ordinary week has seven windows of an hour.
        let week = recurring(
            &cron,
            hour,
            &tz,
            ms("2026-11-02T00:00:00Z"),
            ms("2026-11-09T00:00:00Z"),
        );
        assert_eq!(week.total(), 7 * HOUR);
    }

    #[test]
    fn recurring_window_that_began_before_the_period_is_clipped() {
        let tz = TimeZone::UTC;
        let cron = parse_cron("0 23 * * SUN").unwrap();
        // Sunday 2026-11-01 23:00Z for 2 h: the period from Monday 00:00Z sees the last hour.
        let w = recurring(
            &cron,
            Duration::from_secs(7200),
            &tz,
            ms("2026-11-02T00:00:00Z"),
            ms("2026-11-03T00:00:00Z"),
        );
        assert_eq!(
            w.spans(),
            &[(ms("2026-11-02T00:00:00Z"), ms("2026-11-02T01:00:00Z"))]
        );
    }
}
