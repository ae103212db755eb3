//! The numbers of DESIGN.md §2 for one service and period: measured time, downtime,
//! availability, incidents, MTTR, MTBF, blips. Pure: everything, `now` included, is an input.

use super::interval::Intervals;

/// What a stretch without data counts as (the contract's `no_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDataPolicy {
    Exclude,
    Hold,
    Down,
}

/// Whether downtime is counted to the second or in whole minutes (the contract's `granularity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Second,
    Minute,
}

/// What the store knows of a service, as intervals in UTC milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Each incident: start, and end unless it is still open.
    pub incidents: Vec<(i64, Option<i64>)>,
    /// Recorded no-data stretches (gaps between results).
    pub no_data: Vec<(i64, i64)>,
    /// Blip starts.
    pub blips: Vec<i64>,
    /// The first and the latest outcome ever recorded.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// The service's interval: the latest result stands for this long...
    pub interval_ms: i64,
    /// ...or until now, if now is within this gap of it.
    pub max_gap_ms: i64,
}

/// The period's exclusions, decided by the contract and already expanded into intervals.
#[derive(Debug, Clone)]
pub struct Exclusions {
    /// Covered time within the period (all of it for 24×7).
    pub covered: Intervals,
    /// Maintenance windows (any part of the period).
    pub maintenance: Intervals,
    /// Agreed exclusions in force (client-caused outages, force majeure, settled disputes):
    /// left out of the measured time like maintenance.
    pub agreed: Intervals,
    pub no_data_policy: NoDataPolicy,
}

/// One incident as it counts in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentInPeriod {
    /// As recorded (not clipped).
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// Its downtime inside the period's measured time.
    pub downtime_ms: i64,
}

/// The numbers for `[from, to)`, all in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub from_ms: i64,
    /// The end actually computed: the period's end, or `now` if that comes first.
    pub to_ms: i64,
    pub partial: bool,
    pub period_ms: i64,
    pub excluded_ms: i64,
    pub out_of_coverage_ms: i64,
    pub maintenance_ms: i64,
    /// Inside coverage and outside maintenance: agreed exclusions.
    pub exclusion_ms: i64,
    pub no_data_ms: i64,
    pub measured_ms: i64,
    pub downtime_ms: i64,
    pub uptime_ms: i64,
    pub incidents: Vec<IncidentInPeriod>,
    pub blips: usize,
    /// The measured time and the downtime inside it, as intervals (for contract-level figures).
    pub measured: Intervals,
    pub down: Intervals,
}

impl Availability {
    /// uptime / measured, `None` when nothing was measured. For display: decisions use
    /// `uptime_ms` and `measured_ms` exactly.
    pub fn availability(&self) -> Option<f64> {
        share(self.uptime_ms, self.measured_ms)
    }

    /// Mean time to repair: downtime / incidents; `None` with no incidents.
    pub fn mttr_ms(&self) -> Option<i64> {
        per_incident(self.downtime_ms, self.incidents.len())
    }

    /// Mean time between failures: uptime / incidents; `None` with no incidents.
    pub fn mtbf_ms(&self) -> Option<i64> {
        per_incident(self.uptime_ms, self.incidents.len())
    }
}

/// `part / whole` for display; `None` when `whole` is 0 (undefined, not 100%).
fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// `total / incidents`; `None` with no incidents ("no failures", never 0 or infinity).
fn per_incident(total_ms: i64, incidents: usize) -> Option<i64> {
    (incidents > 0).then(|| total_ms / incidents as i64)
}

/// Computes the numbers for `[from_ms, to_ms)` as of `now_ms`.
///
/// Decisions an auditor would ask about:
/// - time before the first outcome ever, and after the latest one once it is older than the
///   max gap (the daemon stopped), is no-data, like the recorded gaps;
/// - an open incident lasts until `now`;
/// - under `no_data = "down"` each stretch of no-data in the measured time that no recorded
///   incident covers counts as an incident of its own (so the incidents' downtime adds up to the
///   downtime and MTTR stays downtime / incidents);
/// - an incident counts when any of it falls in the measured time; its downtime is the part that
///   does.
pub fn compute(
    timeline: &Timeline,
    exclusions: &Exclusions,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Availability {
    let end = to_ms.min(now_ms).max(from_ms);
    let parts = parts(timeline, exclusions, from_ms, end, now_ms);
    let (measured, no_data) = (&parts.measured, &parts.no_data);

    let mut incidents = Vec::new();
    let mut down_spans = Vec::new();
    for &(start, stop) in &timeline.incidents {
        let span = Intervals::single(start, stop.unwrap_or(now_ms)).intersect(measured);
        if !span.is_empty() {
            incidents.push(IncidentInPeriod {
                start_ms: start,
                end_ms: stop,
                downtime_ms: span.total(),
            });
            down_spans.extend_from_slice(span.spans());
        }
    }
    let mut down = Intervals::from_spans(down_spans);
    if exclusions.no_data_policy == NoDataPolicy::Down {
        for &(start, stop) in no_data.subtract(&down).spans() {
            incidents.push(IncidentInPeriod {
                start_ms: start,
                end_ms: Some(stop),
                downtime_ms: stop - start,
            });
        }
        down = down.union(no_data);
    }
    incidents.sort_by_key(|i| i.start_ms);
    assemble(timeline, &parts, &down, incidents, from_ms, to_ms, now_ms)
}

/// The numbers under `granularity = "minute"`: downtime is the whole minutes in which every
/// probe failed (`down_minutes`), within the measured time, and each run of consecutive down
/// minutes is one incident. Exclusions and no-data are as in `compute`.
pub fn compute_minutes(
    timeline: &Timeline,
    exclusions: &Exclusions,
    down_minutes: &Intervals,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Availability {
    let end = to_ms.min(now_ms).max(from_ms);
    let parts = parts(timeline, exclusions, from_ms, end, now_ms);
    let mut down = down_minutes.intersect(&parts.measured);
    if exclusions.no_data_policy == NoDataPolicy::Down {
        down = down.union(&parts.no_data);
    }
    let incidents = down
        .spans()
        .iter()
        .map(|&(start, stop)| IncidentInPeriod {
            start_ms: start,
            end_ms: Some(stop),
            downtime_ms: stop - start,
        })
        .collect();
    assemble(timeline, &parts, &down, incidents, from_ms, to_ms, now_ms)
}

/// The numbers from a period's parts, its downtime and its incidents.
fn assemble(
    timeline: &Timeline,
    parts: &Parts,
    down: &Intervals,
    incidents: Vec<IncidentInPeriod>,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Availability {
    let end = to_ms.min(now_ms).max(from_ms);
    let blips = timeline
        .blips
        .iter()
        .filter(|&&t| parts.measured.contains(t))
        .count();
    let measured_ms = parts.measured.total();
    Availability {
        from_ms,
        to_ms: end,
        partial: to_ms > now_ms,
        period_ms: end - from_ms,
        excluded_ms: parts.excluded.total(),
        out_of_coverage_ms: parts.out_of_coverage.total(),
        maintenance_ms: parts.maintenance.total(),
        exclusion_ms: parts.agreed.total(),
        no_data_ms: parts.no_data.total(),
        measured_ms,
        downtime_ms: down.total(),
        uptime_ms: measured_ms - down.total(),
        incidents,
        blips,
        measured: parts.measured.clone(),
        down: down.clone(),
    }
}

/// A contract as one service (DESIGN.md §6.1, "contract-level figures"): down while any of its
/// services is down inside that service's measured time, measured over the union of their
/// measured time; overlapping (or touching) downtime of several services is one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractLevel {
    pub measured_ms: i64,
    pub downtime_ms: i64,
    pub uptime_ms: i64,
    /// `(start, end)` of each incident, in order.
    pub incidents: Vec<(i64, i64)>,
}

impl ContractLevel {
    /// Combines the services' numbers of one period.
    pub fn of(services: &[&Availability]) -> ContractLevel {
        let measured = services
            .iter()
            .fold(Intervals::empty(), |acc, a| acc.union(&a.measured));
        let down = services.iter().fold(Intervals::empty(), |acc, a| {
            acc.union(&a.down.intersect(&a.measured))
        });
        let (measured_ms, downtime_ms) = (measured.total(), down.total());
        ContractLevel {
            measured_ms,
            downtime_ms,
            uptime_ms: measured_ms - downtime_ms,
            incidents: down.spans().to_vec(),
        }
    }

    /// uptime / measured; `None` when nothing was measured.
    /// uptime / measured, downtime / incidents and uptime / incidents, as for a service.
    pub fn availability_mttr_mtbf(&self) -> (Option<f64>, Option<i64>, Option<i64>) {
        let n = self.incidents.len();
        (
            share(self.uptime_ms, self.measured_ms),
            per_incident(self.downtime_ms, n),
            per_incident(self.uptime_ms, n),
        )
    }
}

/// The measured time of `[from_ms, to_ms)` (cut at `now_ms`) as intervals.
pub fn measured(
    timeline: &Timeline,
    exclusions: &Exclusions,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Intervals {
    let end = to_ms.min(now_ms).max(from_ms);
    parts(timeline, exclusions, from_ms, end, now_ms).measured
}

/// How a period divides: `excluded` is the union of what is left out, `measured` the rest.
struct Parts {
    out_of_coverage: Intervals,
    maintenance: Intervals,
    /// Agreed exclusions inside coverage and outside maintenance.
    agreed: Intervals,
    /// Inside coverage, outside maintenance and agreed exclusions, under every policy.
    no_data: Intervals,
    excluded: Intervals,
    measured: Intervals,
}

fn parts(timeline: &Timeline, exclusions: &Exclusions, from: i64, end: i64, now: i64) -> Parts {
    let period = Intervals::single(from, end);
    let covered = exclusions.covered.clip(from, end);
    let out_of_coverage = period.subtract(&covered);
    let maintenance = exclusions.maintenance.intersect(&covered);
    let agreed = exclusions.agreed.intersect(&covered).subtract(&maintenance);
    let no_data = monitoring_gaps(timeline, from, end, now)
        .intersect(&covered)
        .subtract(&maintenance)
        .subtract(&agreed);
    let mut excluded = out_of_coverage.union(&maintenance).union(&agreed);
    if exclusions.no_data_policy == NoDataPolicy::Exclude {
        excluded = excluded.union(&no_data);
    }
    let measured = period.subtract(&excluded);
    Parts {
        out_of_coverage,
        maintenance,
        agreed,
        no_data,
        excluded,
        measured,
    }
}

/// Every stretch of `[from, to)` without a result standing for it.
pub fn monitoring_gaps(timeline: &Timeline, from: i64, to: i64, now: i64) -> Intervals {
    let mut gaps = timeline.no_data.clone();
    match (timeline.first_ms, timeline.last_ms) {
        (Some(first), Some(last)) => {
            gaps.push((i64::MIN, first));
            if now - last > timeline.max_gap_ms {
                gaps.push((last + timeline.interval_ms, i64::MAX));
            }
        }
        _ => gaps.push((i64::MIN, i64::MAX)),
    }
    Intervals::from_spans(gaps).clip(from, to)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    /// Monitored from well before the period until now, 30 s interval.
    fn timeline(incidents: Vec<(i64, Option<i64>)>, no_data: Vec<(i64, i64)>) -> Timeline {
        Timeline {
            incidents,
            no_data,
            blips: Vec::new(),
            first_ms: Some(-DAY),
            last_ms: Some(100 * DAY),
            interval_ms: 30_000,
            max_gap_ms: 70_000,
        }
    }

    fn always(from: i64, to: i64, policy: NoDataPolicy) -> Exclusions {
        Exclusions {
            covered: Intervals::single(from, to),
            maintenance: Intervals::empty(),
            agreed: Intervals::empty(),
            no_data_policy: policy,
        }
    }

    #[test]
    fn a_clean_month_has_no_incidents_and_null_mttr_mtbf() {
        // 30 days, nothing happened: availability 1, MTTR and MTBF undefined.
        let a = compute(
            &timeline(vec![], vec![]),
            &always(0, 30 * DAY, NoDataPolicy::Exclude),
            0,
            30 * DAY,
            100 * DAY,
        );
        assert_eq!(a.measured_ms, 30 * DAY);
        assert_eq!(a.availability(), Some(1.0));
        assert_eq!((a.mttr_ms(), a.mtbf_ms()), (None, None));
        assert!(!a.partial);
    }

    #[test]
    fn outage_partly_inside_maintenance_counts_only_outside() {
        // Day 0..1. Outage 01:00–03:00; maintenance 02:00–04:00.
        // measured = 24 h − 2 h = 22 h; downtime = 01:00–02:00 = 1 h; uptime 21 h.
        let mut ex = always(0, DAY, NoDataPolicy::Exclude);
        ex.maintenance = Intervals::single(2 * HOUR, 4 * HOUR);
        let a = compute(
            &timeline(vec![(HOUR, Some(3 * HOUR))], vec![]),
            &ex,
            0,
            DAY,
            100 * DAY,
        );
        assert_eq!(a.maintenance_ms, 2 * HOUR);
        assert_eq!(a.measured_ms, 22 * HOUR);
        assert_eq!(a.downtime_ms, HOUR);
        assert_eq!(a.uptime_ms, 21 * HOUR);
        assert_eq!(a.incidents.len(), 1);
        assert_eq!(a.mttr_ms(), Some(HOUR));
        assert_eq!(a.mtbf_ms(), Some(21 * HOUR));
    }

    #[test]
    fn incident_entirely_inside_maintenance_does_not_count() {
        let mut ex = always(0, DAY, NoDataPolicy::Exclude);
        ex.maintenance = Intervals::single(2 * HOUR, 4 * HOUR);
        let a = compute(
            &timeline(vec![(2 * HOUR, Some(3 * HOUR))], vec![]),
            &ex,
            0,
            DAY,
            100 * DAY,
        );
        assert!(a.incidents.is_empty());
        assert_eq!(a.downtime_ms, 0);
    }

    #[test]
    fn business_hours_outage_that_starts_at_night() {
        // Covered 09:00–18:00 (9 h). Outage 06:00–10:30: only 09:00–10:30 = 1.5 h is downtime.
        let ex = Exclusions {
            covered: Intervals::single(9 * HOUR, 18 * HOUR),
            maintenance: Intervals::empty(),
            agreed: Intervals::empty(),
            no_data_policy: NoDataPolicy::Exclude,
        };
        let a = compute(
            &timeline(vec![(6 * HOUR, Some(10 * HOUR + 30 * MIN))], vec![]),
            &ex,
            0,
            DAY,
            100 * DAY,
        );
        assert_eq!(a.out_of_coverage_ms, 15 * HOUR);
        assert_eq!(a.measured_ms, 9 * HOUR);
        assert_eq!(a.downtime_ms, 90 * MIN);
        // 7.5 h / 9 h = 0.8333…
        assert_eq!(a.uptime_ms, 7 * HOUR + 30 * MIN);
        assert_eq!(a.incidents.len(), 1);
    }

    #[test]
    fn no_data_under_each_policy() {
        // Day 0..1: no data 10:00–12:00; an incident 11:00–13:00 spans the end of the gap.
        let t = timeline(
            vec![(11 * HOUR, Some(13 * HOUR))],
            vec![(10 * HOUR, 12 * HOUR)],
        );
        // exclude: measured 22 h; downtime only 12:00–13:00 = 1 h.
        let a = compute(
            &t,
            &always(0, DAY, NoDataPolicy::Exclude),
            0,
            DAY,
            100 * DAY,
        );
        assert_eq!(
            (a.no_data_ms, a.excluded_ms, a.measured_ms, a.downtime_ms),
            (2 * HOUR, 2 * HOUR, 22 * HOUR, HOUR)
        );
        // hold: measured 24 h; the incident as recorded, 11:00–13:00 = 2 h.
        let a = compute(&t, &always(0, DAY, NoDataPolicy::Hold), 0, DAY, 100 * DAY);
        assert_eq!(
            (a.no_data_ms, a.excluded_ms, a.measured_ms, a.downtime_ms),
            (2 * HOUR, 0, 24 * HOUR, 2 * HOUR)
        );
        // down: measured 24 h; downtime 10:00–13:00 = 3 h; the part of the gap before the
        // incident (10:00–11:00) is an incident of its own.
        let a = compute(&t, &always(0, DAY, NoDataPolicy::Down), 0, DAY, 100 * DAY);
        assert_eq!(
            (a.measured_ms, a.downtime_ms, a.incidents.len()),
            (24 * HOUR, 3 * HOUR, 2)
        );
        assert_eq!(a.incidents[0].downtime_ms, HOUR);
        // down, with a gap away from any incident: it is an incident.
        let t = timeline(vec![], vec![(HOUR, 2 * HOUR)]);
        let a = compute(&t, &always(0, DAY, NoDataPolicy::Down), 0, DAY, 100 * DAY);
        assert_eq!((a.downtime_ms, a.incidents.len()), (HOUR, 1));
    }

    #[test]
    fn before_the_first_outcome_and_after_a_stop_is_no_data() {
        // First outcome at 06:00, last at 18:00 and now is the next day: the daemon stopped.
        // No data: 00:00–06:00 and 18:00:30 (last + interval)–24:00 = 6 h + 5 h 59 m 30 s.
        let t = Timeline {
            first_ms: Some(6 * HOUR),
            last_ms: Some(18 * HOUR),
            interval_ms: 30_000,
            max_gap_ms: 70_000,
            ..Timeline::default()
        };
        let a = compute(&t, &always(0, DAY, NoDataPolicy::Exclude), 0, DAY, 2 * DAY);
        assert_eq!(a.no_data_ms, 12 * HOUR - 30_000);
        assert_eq!(a.measured_ms, 12 * HOUR + 30_000);
        // A service never probed: nothing measured, availability undefined.
        let never = Timeline::default();
        let a = compute(
            &never,
            &always(0, DAY, NoDataPolicy::Exclude),
            0,
            DAY,
            2 * DAY,
        );
        assert_eq!((a.measured_ms, a.availability()), (0, None));
    }

    #[test]
    fn the_month_in_progress_is_cut_at_now_and_open_incidents_last_until_now() {
        // Period day 0..30, now = day 10 + 1 h, last outcome 10 s ago; incident open since day 10.
        let mut t = timeline(vec![(10 * DAY, None)], vec![]);
        t.last_ms = Some(10 * DAY + HOUR - 10_000);
        let now = 10 * DAY + HOUR;
        let a = compute(
            &t,
            &always(0, 30 * DAY, NoDataPolicy::Exclude),
            0,
            30 * DAY,
            now,
        );
        assert!(a.partial);
        assert_eq!(a.to_ms, now);
        assert_eq!(a.period_ms, now);
        assert_eq!(a.downtime_ms, HOUR);
        assert_eq!(a.incidents[0].end_ms, None);
    }

    #[test]
    fn incident_across_the_period_start_is_clipped() {
        // Incident from day −1 22:00 to day 0 02:00: in day 0 it counts once, 2 h.
        let t = timeline(vec![(-2 * HOUR, Some(2 * HOUR))], vec![]);
        let a = compute(
            &t,
            &always(0, DAY, NoDataPolicy::Exclude),
            0,
            DAY,
            100 * DAY,
        );
        assert_eq!((a.incidents.len(), a.downtime_ms), (1, 2 * HOUR));
        assert_eq!(a.incidents[0].start_ms, -2 * HOUR);
    }

    /// A timeline with merged incidents, gaps, maintenance windows and a no-data policy.
    #[test]
    fn minute_granularity_counts_whole_failed_minutes_as_runs() {
        // Down minutes 10:00–10:03 and 10:04–10:05 (10:03 had a success): two incidents,
        // 3 + 1 = 4 minutes of downtime over a 24 h day.
        let down = Intervals::from_spans(vec![
            (10 * HOUR, 10 * HOUR + 3 * MIN),
            (10 * HOUR + 4 * MIN, 10 * HOUR + 5 * MIN),
        ]);
        let a = compute_minutes(
            &timeline(vec![], vec![]),
            &always(0, DAY, NoDataPolicy::Exclude),
            &down,
            0,
            DAY,
            100 * DAY,
        );
        assert_eq!(a.downtime_ms, 4 * MIN);
        assert_eq!(a.incidents.len(), 2);
        assert_eq!(a.mttr_ms(), Some(2 * MIN));
        assert_eq!(a.measured_ms, DAY);
    }

    fn arbitrary_case() -> impl Strategy<Value = (Timeline, Vec<(i64, i64)>, NoDataPolicy)> {
        let spans = || {
            prop::collection::vec((0i64..DAY, 1i64..4 * HOUR), 0..6)
                .prop_map(|v| v.into_iter().map(|(s, l)| (s, s + l)).collect::<Vec<_>>())
        };
        let policy = prop::sample::select(vec![
            NoDataPolicy::Exclude,
            NoDataPolicy::Hold,
            NoDataPolicy::Down,
        ]);
        (spans(), spans(), spans(), 0i64..DAY / 4, policy).prop_map(
            |(incidents, no_data, windows, first, policy)| {
                let incidents = Intervals::from_spans(incidents)
                    .spans()
                    .iter()
                    .map(|(s, e)| (*s, Some(*e)))
                    .collect();
                let t = Timeline {
                    incidents,
                    no_data,
                    blips: vec![],
                    first_ms: Some(first),
                    last_ms: Some(10 * DAY),
                    interval_ms: 30_000,
                    max_gap_ms: 70_000,
                };
                (t, windows, policy)
            },
        )
    }

    proptest! {
        #[test]
        fn invariants_hold((t, windows, policy) in arbitrary_case(), split in 1i64..DAY) {
            let ex = Exclusions {
                covered: Intervals::from_spans(vec![(0, 8 * HOUR), (9 * HOUR, DAY)]),
                maintenance: Intervals::from_spans(windows),
                agreed: Intervals::empty(),
                no_data_policy: policy,
            };
            let whole = compute(&t, &ex, 0, DAY, 10 * DAY);
            prop_assert_eq!(whole.excluded_ms + whole.measured_ms, whole.period_ms);
            prop_assert!(whole.downtime_ms <= whole.measured_ms);
            prop_assert!(whole.downtime_ms >= 0);
            if let Some(a) = whole.availability() {
                prop_assert!((0.0..=1.0).contains(&a));
            }
            // Splitting the period changes neither total downtime nor measured time.
            let left = compute(&t, &ex, 0, split, 10 * DAY);
            let right = compute(&t, &ex, split, DAY, 10 * DAY);
            prop_assert_eq!(left.downtime_ms + right.downtime_ms, whole.downtime_ms);
            prop_assert_eq!(left.measured_ms + right.measured_ms, whole.measured_ms);
            let incident_time = |a: &Availability| a.incidents.iter().map(|i| i.downtime_ms).sum::<i64>();
            prop_assert_eq!(incident_time(&left) + incident_time(&right), incident_time(&whole));
        }
    }

    proptest! {
        #[test]
        fn agreed_exclusions_are_a_disjoint_part_of_what_is_excluded(
            (t, windows, policy) in arbitrary_case(),
            agreed in prop::collection::vec((0i64..DAY, 1i64..4 * HOUR), 0..4),
        ) {
            let agreed = Intervals::from_spans(
                agreed.into_iter().map(|(start, len)| (start, start + len)).collect(),
            );
            let without = Exclusions {
                covered: Intervals::from_spans(vec![(0, 8 * HOUR), (9 * HOUR, DAY)]),
                maintenance: Intervals::from_spans(windows),
                agreed: Intervals::empty(),
                no_data_policy: policy,
            };
            let with = Exclusions { agreed, ..without.clone() };
            let a = compute(&t, &with, 0, DAY, 10 * DAY);
            // The parts of excluded_s do not overlap: they add up to it exactly.
            let no_data_excluded = if policy == NoDataPolicy::Exclude { a.no_data_ms } else { 0 };
            prop_assert_eq!(
                a.out_of_coverage_ms + a.maintenance_ms + a.exclusion_ms + no_data_excluded,
                a.excluded_ms
            );
            prop_assert_eq!(a.excluded_ms + a.measured_ms, a.period_ms);
            // An exclusion never adds downtime; taking it away (a revocation) gives back the
            // numbers without it, exactly.
            let b = compute(&t, &without, 0, DAY, 10 * DAY);
            prop_assert!(a.downtime_ms <= b.downtime_ms);
            prop_assert_eq!(b.exclusion_ms, 0);
            let revoked = compute(&t, &Exclusions { agreed: Intervals::empty(), ..with }, 0, DAY, 10 * DAY);
            prop_assert_eq!(revoked.measured_ms, b.measured_ms);
            prop_assert_eq!(revoked.downtime_ms, b.downtime_ms);
            prop_assert_eq!(revoked.incidents, b.incidents);
        }
    }

    #[test]
    fn a_contract_is_down_while_any_service_is_and_overlaps_are_one_incident() {
        // A day; service a down 10:00–12:00, b down 11:00–13:00 (overlapping) and 18:00–18:30;
        // b has no data 20:00–22:00 (excluded from its measured time), while a is down 21:00–21:30.
        // Contract: measured = a's day ∪ b's day less 20–22 = the whole day (a measures it);
        // down = 10:00–13:00 (one incident, 3 h) + 18:00–18:30 + 21:00–21:30 = 4 h, 3 incidents.
        let tl = |incidents: Vec<(i64, i64)>, no_data: Vec<(i64, i64)>| Timeline {
            incidents: incidents.into_iter().map(|(s, e)| (s, Some(e))).collect(),
            no_data,
            blips: vec![],
            first_ms: Some(0),
            last_ms: Some(DAY),
            interval_ms: 30_000,
            max_gap_ms: 70_000,
        };
        let ex = always(0, DAY, NoDataPolicy::Exclude);
        let a = compute(
            &tl(
                vec![(10 * HOUR, 12 * HOUR), (21 * HOUR, 21 * HOUR + 30 * MIN)],
                vec![],
            ),
            &ex,
            0,
            DAY,
            2 * DAY,
        );
        let b = compute(
            &tl(
                vec![(11 * HOUR, 13 * HOUR), (18 * HOUR, 18 * HOUR + 30 * MIN)],
                vec![(20 * HOUR, 22 * HOUR)],
            ),
            &ex,
            0,
            DAY,
            2 * DAY,
        );
        assert_eq!(b.measured_ms, 22 * HOUR);
        let c = ContractLevel::of(&[&a, &b]);
        assert_eq!(c.measured_ms, DAY);
        assert_eq!(c.downtime_ms, 4 * HOUR);
        assert_eq!(
            c.incidents,
            [
                (10 * HOUR, 13 * HOUR),
                (18 * HOUR, 18 * HOUR + 30 * MIN),
                (21 * HOUR, 21 * HOUR + 30 * MIN)
            ]
        );
        let (_, mttr, mtbf) = c.availability_mttr_mtbf();
        assert_eq!(mttr, Some(80 * MIN));
        assert_eq!(mtbf, Some(20 * HOUR / 3));
        // One service alone: exactly its own numbers.
        let alone = ContractLevel::of(&[&a]);
        assert_eq!(
            (alone.measured_ms, alone.downtime_ms),
            (a.measured_ms, a.downtime_ms)
        );
        assert_eq!(alone.incidents.len(), a.incidents.len());
    }
}
