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
    /// Local ranges per weekday, less holidays.
    Weekly {
        /// Index 0 is Monday: each range `(start, end)` in minutes after that day's local
        /// midnight. An end at or before the start runs past midnight and belongs to the day it
        /// starts ("Fri" 22:00–06:00 is Friday 22:00 to Saturday 06:00); 1440 is "24:00".
        days: [Vec<(u32, u32)>; 7],
        holidays: Vec<Holiday>,
    },
}

impl Coverage {
    /// The same hours on each of `days` (index 0 is Monday): the `{ days, hours }` form.
    pub fn business_hours(
        days: [bool; 7],
        start_minute: u32,
        end_minute: u32,
        holidays: Vec<Holiday>,
    ) -> Coverage {
        Coverage::Weekly {
            days: days.map(|on| {
                if on {
                    vec![(start_minute, end_minute)]
                } else {
                    Vec::new()
                }
            }),
            holidays,
        }
    }
}

/// A day without coverage: a date, or a date every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holiday {
    On(Date),
    /// `--MM-DD`.
    Yearly {
        month: i8,
        day: i8,
    },
}

impl Holiday {
    pub fn is(&self, date: Date) -> bool {
        match *self {
            Holiday::On(d) => d == date,
            Holiday::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }
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
    let Coverage::Weekly { days, holidays } = coverage else {
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
        if !holidays.iter().any(|h| h.is(date)) {
            for &(start, end) in &days[weekday] {
                // An end at or before the start is the next day's.
                let end = if end <= start { end + 1440 } else { end };
                spans.push((at(date, start), at(date, end)));
            }
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
        let coverage = Coverage::business_hours(
            [true, true, true, true, true, false, false],
            9 * 60,
            18 * 60,
            vec![Holiday::On("2026-10-28".parse().unwrap())],
        );
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

    fn utc(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    /// Coverage with `ranges` on one weekday (0 is Monday) and `holidays`.
    fn one_day(weekday: usize, ranges: &[(u32, u32)], holidays: Vec<Holiday>) -> Coverage {
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        days[weekday] = ranges.to_vec();
        Coverage::Weekly { days, holidays }
    }

    /// (what, coverage, from, to, the covered spans expected, in UTC).
    type CoverageCase = (
        &'static str,
        Coverage,
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    );

    const SAT: usize = 5;
    const FRI: usize = 4;
    const SUN: usize = 6;

    #[test]
    fn weekday_ranges_overnight_and_across_dst_nights() {
        let tz = berlin();
        let h = |hh: u32| hh * 60;
        // (what, coverage, from, to, expected UTC spans) — all computed by hand; Berlin is
        // UTC+2 (CEST) until 2026-10-25 03:00, then UTC+1 (CET); CET→CEST on 2026-03-29 02:00.
        let cases: Vec<CoverageCase> = vec![
            (
                "a Saturday with two ranges: 10–12 and 13–15 CEST = 08–10Z and 11–13Z",
                one_day(SAT, &[(h(10), h(12)), (h(13), h(15))], vec![]),
                "2026-10-17T00:00:00Z",
                "2026-10-19T00:00:00Z",
                vec![
                    ("2026-10-17T08:00:00Z", "2026-10-17T10:00:00Z"),
                    ("2026-10-17T11:00:00Z", "2026-10-17T13:00:00Z"),
                ],
            ),
            (
                "Fri 22:00–06:00: Friday 22:00 CEST to Saturday 06:00 CEST, 8 h (20:00Z–04:00Z)",
                one_day(FRI, &[(h(22), h(6))], vec![]),
                "2026-10-23T00:00:00Z",
                "2026-10-25T00:00:00Z",
                vec![("2026-10-23T20:00:00Z", "2026-10-24T04:00:00Z")],
            ),
            (
                "Sat 22:00–06:00 across the autumn DST night: 22:00 CEST (20:00Z) to 06:00 CET \
                 (05:00Z), 9 h elapsed",
                one_day(SAT, &[(h(22), h(6))], vec![]),
                "2026-10-24T00:00:00Z",
                "2026-10-26T00:00:00Z",
                vec![("2026-10-24T20:00:00Z", "2026-10-25T05:00:00Z")],
            ),
            (
                "Sat 22:00–06:00 across the spring DST night: 22:00 CET (21:00Z) to 06:00 CEST \
                 (04:00Z), 7 h elapsed",
                one_day(SAT, &[(h(22), h(6))], vec![]),
                "2026-03-28T00:00:00Z",
                "2026-03-30T00:00:00Z",
                vec![("2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z")],
            ),
            (
                "Sun 00:00–24:00 on the autumn DST Sunday: 25 h (22:00Z Sat to 23:00Z Sun)",
                one_day(SUN, &[(0, 1440)], vec![]),
                "2026-10-24T00:00:00Z",
                "2026-10-27T00:00:00Z",
                vec![("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")],
            ),
            (
                "a holiday on the Friday removes the overnight range that starts on it",
                one_day(
                    FRI,
                    &[(h(22), h(6))],
                    vec![Holiday::On("2026-10-23".parse().unwrap())],
                ),
                "2026-10-23T00:00:00Z",
                "2026-10-25T00:00:00Z",
                vec![],
            ),
            (
                "a holiday on the Saturday leaves Friday's range, Saturday morning included",
                one_day(
                    FRI,
                    &[(h(22), h(6))],
                    vec![Holiday::On("2026-10-24".parse().unwrap())],
                ),
                "2026-10-23T00:00:00Z",
                "2026-10-25T00:00:00Z",
                vec![("2026-10-23T20:00:00Z", "2026-10-24T04:00:00Z")],
            ),
        ];
        for (what, coverage, from, to, expected) in cases {
            let got = covered(&coverage, &tz, utc(from), utc(to));
            let expected: Vec<(i64, i64)> =
                expected.iter().map(|(a, b)| (utc(a), utc(b))).collect();
            assert_eq!(got.spans(), &expected[..], "{what}");
        }
    }

    #[test]
    fn a_yearly_holiday_recurs() {
        // Mon–Fri 09:00–18:00 Berlin (CET, UTC+1) with --01-01: the week of Mon 2026-12-28 has
        // Mon–Thu covered (4 × 9 h = 36 h), New Year's Friday not; so does the week of
        // 2027-12-27 (Fri 2027-12-31 covered, Sat 2028-01-01 is a weekend anyway): 5 × 9 h.
        let tz = berlin();
        let coverage = Coverage::business_hours(
            [true, true, true, true, true, false, false],
            9 * 60,
            18 * 60,
            vec![Holiday::Yearly { month: 1, day: 1 }],
        );
        let week = |from: &str, to: &str| covered(&coverage, &tz, utc(from), utc(to)).total();
        assert_eq!(
            week("2026-12-27T23:00:00Z", "2027-01-03T23:00:00Z"),
            36 * HOUR
        );
        assert_eq!(
            week("2027-12-26T23:00:00Z", "2028-01-02T23:00:00Z"),
            45 * HOUR
        );
        assert!(Holiday::Yearly { month: 12, day: 25 }.is("2031-12-25".parse().unwrap()));
    }
}
