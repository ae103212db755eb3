//! The fleet's verdict (DESIGN.md §6.3): several locations' views of one service combined into
//! the one timeline that availability, incidents and credits are computed from. Pure.
//!
//! Each location's view is a §2 timeline of its own: its incidents (down stretches, backdated to
//! the first failure) and its monitoring gaps (no data). At each instant, with `d` locations that
//! see the service down, `x` without data and a quorum `q`, the verdict is
//! - **down** when `d ≥ q`,
//! - **up** when `d + x < q`,
//! - **no-data** otherwise (the locations that could say are too few to decide).
//!
//! The verdict is itself a timeline, so the contract's `no_data` policy applies to it as to a
//! single location's: under `exclude` a no-data verdict is left out of the measured time, under
//! `down` it counts as down, under `hold` the verdict's incidents (where at least `q` locations
//! hold an incident open, gap or not) are the downtime. With one location and a quorum of 1 the
//! verdict is that location's timeline, to the millisecond.

use super::availability::{Timeline, monitoring_gaps};
use super::interval::Intervals;

/// One location's view of a service.
#[derive(Debug, Clone, Copy)]
pub struct LocationView<'a> {
    pub location: &'a str,
    pub timeline: &'a Timeline,
}

/// The combined timeline, and for each of its incidents the locations that saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub timeline: Timeline,
    /// Parallel to `timeline.incidents`: the locations down during the incident, in the order
    /// their own down stretch began ("confirmed from fra, nyc").
    pub seen_by: Vec<Vec<String>>,
}

/// The default quorum: a majority of the expected locations (1 of 1, 2 of 2 or 3, 3 of 4 or 5).
pub fn majority(locations: usize) -> usize {
    locations / 2 + 1
}

/// Combines every expected location's view as of `now_ms`. A location expected but absent from
/// the store is passed with an empty timeline (`first_ms: None`): it is without data throughout.
/// `quorum` is clamped to at least 1; a quorum above the number of locations is never reached.
pub fn verdict(views: &[LocationView<'_>], quorum: usize, now_ms: i64) -> Verdict {
    let quorum = quorum.max(1);
    let down: Vec<Intervals> = views
        .iter()
        .map(|v| incidents(v.timeline, now_ms))
        .collect();
    let gaps: Vec<Intervals> = views
        .iter()
        .map(|v| monitoring_gaps(v.timeline, i64::MIN, i64::MAX, now_ms))
        .collect();

    let mut verdict_down = Vec::new();
    let mut verdict_no_data = Vec::new();
    let mut cursors: Vec<(Cursor, Cursor)> = down
        .iter()
        .zip(&gaps)
        .map(|(d, g)| (Cursor::new(d), Cursor::new(g)))
        .collect();
    for (start, end) in segments(down.iter().chain(&gaps)) {
        let (mut holding, mut seen_down, mut silent) = (0, 0, 0);
        for (d, g) in &mut cursors {
            let (is_down, is_gap) = (d.covers(start), g.covers(start));
            holding += usize::from(is_down);
            seen_down += usize::from(is_down && !is_gap);
            silent += usize::from(is_gap);
        }
        if holding >= quorum {
            verdict_down.push((start, end));
        }
        if seen_down < quorum && seen_down + silent >= quorum {
            verdict_no_data.push((start, end));
        }
    }

    let any_open = views
        .iter()
        .any(|v| v.timeline.incidents.iter().any(|(_, e)| e.is_none()));
    let verdict_down = Intervals::from_spans(verdict_down);
    let incidents: Vec<(i64, Option<i64>)> = verdict_down
        .spans()
        .iter()
        .map(|&(s, e)| (s, (e != now_ms || !any_open).then_some(e)))
        .collect();
    let seen_by = verdict_down
        .spans()
        .iter()
        .map(|&(s, e)| seen_by(views, &down, s, e))
        .collect();

    let first = views.iter().map(|v| v.timeline.first_ms);
    let last = views.iter().map(|v| v.timeline.last_ms);
    let mut blips: Vec<i64> = views
        .iter()
        .flat_map(|v| v.timeline.blips.iter().copied())
        .collect();
    blips.sort_unstable();
    let any = views.first().map(|v| v.timeline);
    Verdict {
        timeline: Timeline {
            incidents,
            no_data: Intervals::from_spans(verdict_no_data).spans().to_vec(),
            blips,
            first_ms: first.flatten().min(),
            last_ms: last.flatten().max(),
            interval_ms: any.map_or(0, |t| t.interval_ms),
            max_gap_ms: any.map_or(0, |t| t.max_gap_ms),
        },
        seen_by,
    }
}

/// Where at least `quorum` of the sets overlap (for `granularity = "minute"`: the minutes in
/// which at least `quorum` locations saw every probe fail).
pub fn at_least(sets: &[Intervals], quorum: usize) -> Intervals {
    let quorum = quorum.max(1);
    let mut cursors: Vec<Cursor> = sets.iter().map(Cursor::new).collect();
    let spans = segments(sets.iter())
        .filter(|&(start, _)| {
            cursors
                .iter_mut()
                .map(|c| usize::from(c.covers(start)))
                .sum::<usize>()
                >= quorum
        })
        .collect();
    Intervals::from_spans(spans)
}

/// A location's incidents as a set, an open one lasting until `now_ms`.
fn incidents(timeline: &Timeline, now_ms: i64) -> Intervals {
    Intervals::from_spans(
        timeline
            .incidents
            .iter()
            .map(|&(s, e)| (s, e.unwrap_or(now_ms)))
            .collect(),
    )
}

/// The locations down during `[start, end)`, ordered by the start of their down stretch.
fn seen_by(views: &[LocationView<'_>], down: &[Intervals], start: i64, end: i64) -> Vec<String> {
    let mut seen: Vec<(i64, &str)> = views
        .iter()
        .zip(down)
        .filter_map(|(v, d)| {
            let first = d.spans().iter().find(|&&(s, e)| s < end && e > start)?;
            Some((first.0, v.location))
        })
        .collect();
    seen.sort();
    seen.into_iter().map(|(_, l)| l.to_owned()).collect()
}

/// The elementary pieces between every boundary of the sets, in order: on each the membership
/// of every set is constant.
fn segments<'a>(sets: impl Iterator<Item = &'a Intervals>) -> impl Iterator<Item = (i64, i64)> {
    let mut edges: Vec<i64> = sets
        .flat_map(|s| s.spans().iter().flat_map(|&(a, b)| [a, b]))
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let pieces: Vec<(i64, i64)> = edges.windows(2).map(|w| (w[0], w[1])).collect();
    pieces.into_iter()
}

/// Walks a set forward: asked in increasing order of `t`, each question is amortised O(1).
struct Cursor<'a> {
    spans: &'a [(i64, i64)],
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(set: &'a Intervals) -> Cursor<'a> {
        Cursor {
            spans: set.spans(),
            next: 0,
        }
    }

    fn covers(&mut self, t: i64) -> bool {
        while self.next < self.spans.len() && self.spans[self.next].1 <= t {
            self.next += 1;
        }
        self.spans.get(self.next).is_some_and(|&(s, _)| s <= t)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sla::availability::{Availability, Exclusions, NoDataPolicy, compute};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    /// Probed all day (and before), 30 s interval, these incidents and gaps.
    fn seen(incidents: &[(i64, Option<i64>)], no_data: &[(i64, i64)]) -> Timeline {
        Timeline {
            incidents: incidents.to_vec(),
            no_data: no_data.to_vec(),
            blips: vec![],
            first_ms: Some(-DAY),
            last_ms: Some(DAY),
            interval_ms: 30_000,
            max_gap_ms: 70_000,
        }
    }

    fn silent() -> Timeline {
        Timeline {
            first_ms: None,
            last_ms: None,
            ..seen(&[], &[])
        }
    }

    fn day(policy: NoDataPolicy) -> Exclusions {
        Exclusions {
            covered: Intervals::single(0, DAY),
            maintenance: Intervals::empty(),
            agreed: Intervals::empty(),
            no_data_policy: policy,
        }
    }

    fn numbers(
        views: &[(&str, &Timeline)],
        quorum: usize,
        policy: NoDataPolicy,
    ) -> (Availability, Verdict) {
        let views: Vec<LocationView> = views
            .iter()
            .map(|&(location, timeline)| LocationView { location, timeline })
            .collect();
        let v = verdict(&views, quorum, DAY);
        (compute(&v.timeline, &day(policy), 0, DAY, DAY), v)
    }

    fn at(h: i64, m: i64) -> i64 {
        h * HOUR + m * MIN
    }

    #[test]
    fn an_outage_seen_from_two_of_three_is_one_incident_from_the_second_location_on() {
        // fra down 10:00–11:00, nyc 10:20–10:50, sgp never: with a quorum of 2 the service was
        // down from nyc's first failure (10:20) to its recovery (10:50): 30 minutes, one
        // incident, confirmed from fra, nyc.
        let fra = seen(&[(at(10, 0), Some(at(11, 0)))], &[]);
        let nyc = seen(&[(at(10, 20), Some(at(10, 50)))], &[]);
        let sgp = seen(&[], &[]);
        let (a, v) = numbers(
            &[("sgp", &sgp), ("nyc", &nyc), ("fra", &fra)],
            2,
            NoDataPolicy::Exclude,
        );
        assert_eq!(a.downtime_ms, 30 * MIN);
        assert_eq!(a.measured_ms, DAY);
        assert_eq!(a.incidents.len(), 1);
        assert_eq!(a.incidents[0].start_ms, at(10, 20));
        assert_eq!(a.incidents[0].end_ms, Some(at(10, 50)));
        assert_eq!(v.seen_by, vec![vec!["fra".to_owned(), "nyc".to_owned()]]);
    }

    #[test]
    fn one_location_cut_off_all_day_costs_nothing() {
        // fra sees everything down for the whole day (its own network failed); nyc and sgp see
        // it up. Quorum 2: no downtime, no incident, the whole day measured.
        let fra = seen(&[(-HOUR, Some(DAY))], &[]);
        let up = seen(&[], &[]);
        for policy in [
            NoDataPolicy::Exclude,
            NoDataPolicy::Hold,
            NoDataPolicy::Down,
        ] {
            let (a, _) = numbers(&[("fra", &fra), ("nyc", &up), ("sgp", &up)], 2, policy);
            assert_eq!((a.downtime_ms, a.incidents.len()), (0, 0), "{policy:?}");
            assert_eq!(a.measured_ms, DAY);
        }
    }

    #[test]
    fn down_at_one_and_silent_at_another_is_no_data_under_a_quorum_of_two() {
        // fra down 10:00–11:00; nyc without data 10:30–12:00; sgp up. Quorum 2:
        // 10:00–10:30 d=1 x=0 up; 10:30–11:00 d=1 x=1 no-data; 11:00–12:00 d=0 x=1 up.
        // exclude: 30 min left out, nothing down; down: those 30 min are one incident.
        let fra = seen(&[(at(10, 0), Some(at(11, 0)))], &[]);
        let nyc = seen(&[], &[(at(10, 30), at(12, 0))]);
        let sgp = seen(&[], &[]);
        let views = [("fra", &fra), ("nyc", &nyc), ("sgp", &sgp)];
        let (a, _) = numbers(&views, 2, NoDataPolicy::Exclude);
        assert_eq!((a.no_data_ms, a.measured_ms), (30 * MIN, DAY - 30 * MIN));
        assert_eq!((a.downtime_ms, a.incidents.len()), (0, 0));
        let (a, _) = numbers(&views, 2, NoDataPolicy::Down);
        assert_eq!((a.downtime_ms, a.incidents.len()), (30 * MIN, 1));
        assert_eq!(a.incidents[0].start_ms, at(10, 30));
        let (a, _) = numbers(&views, 2, NoDataPolicy::Hold);
        assert_eq!((a.downtime_ms, a.measured_ms), (0, DAY));
    }

    #[test]
    fn the_quorum_decides_how_much_of_overlapping_outages_is_down() {
        // fra 10:00–11:00, nyc 10:10–10:40, sgp 10:30–12:00.
        // q=1: union 10:00–12:00 = 2 h; q=2: 10:10–11:00 = 50 min; q=3: 10:30–10:40 = 10 min.
        let fra = seen(&[(at(10, 0), Some(at(11, 0)))], &[]);
        let nyc = seen(&[(at(10, 10), Some(at(10, 40)))], &[]);
        let sgp = seen(&[(at(10, 30), Some(at(12, 0)))], &[]);
        let views = [("fra", &fra), ("nyc", &nyc), ("sgp", &sgp)];
        for (q, down, start, who) in [
            (1, 2 * HOUR, at(10, 0), vec!["fra", "nyc", "sgp"]),
            (2, 50 * MIN, at(10, 10), vec!["fra", "nyc", "sgp"]),
            (3, 10 * MIN, at(10, 30), vec!["fra", "nyc", "sgp"]),
            (4, 0, 0, vec![]),
        ] {
            let (a, v) = numbers(&views, q, NoDataPolicy::Exclude);
            assert_eq!(a.downtime_ms, down, "quorum {q}");
            if down > 0 {
                assert_eq!((a.incidents.len(), a.incidents[0].start_ms), (1, start));
                assert_eq!(v.seen_by[0], who);
            } else {
                assert!(a.incidents.is_empty());
            }
        }
    }

    #[test]
    fn an_outage_still_seen_by_a_quorum_is_open() {
        // fra down since 23:00, nyc since 23:30, both open at midnight (now): one open incident
        // of 30 minutes so far; sgp's closed 22:00–22:10 alone is no incident.
        let fra = seen(&[(at(23, 0), None)], &[]);
        let nyc = seen(&[(at(23, 30), None)], &[]);
        let sgp = seen(&[(at(22, 0), Some(at(22, 10)))], &[]);
        let (a, v) = numbers(
            &[("fra", &fra), ("nyc", &nyc), ("sgp", &sgp)],
            2,
            NoDataPolicy::Exclude,
        );
        assert_eq!(a.downtime_ms, 30 * MIN);
        assert_eq!(v.timeline.incidents, vec![(at(23, 30), None)]);
    }

    #[test]
    fn a_location_that_never_reported_is_without_data_throughout() {
        // Two locations expected, quorum 2, nyc never wrote anything: fra's outage 10:00–11:00
        // cannot be confirmed (d=1, x=1): no-data, excluded; the rest of the day is up (x=1 < 2).
        let fra = seen(&[(at(10, 0), Some(at(11, 0)))], &[]);
        let nyc = silent();
        let (a, _) = numbers(&[("fra", &fra), ("nyc", &nyc)], 2, NoDataPolicy::Exclude);
        assert_eq!((a.downtime_ms, a.no_data_ms), (0, HOUR));
        assert_eq!(a.measured_ms, DAY - HOUR);
    }

    #[test]
    fn no_location_with_data_is_no_data_all_day() {
        let (a, v) = numbers(&[("fra", &silent())], 1, NoDataPolicy::Exclude);
        assert_eq!((a.measured_ms, a.no_data_ms), (0, DAY));
        assert_eq!(v.timeline.first_ms, None);
    }

    #[test]
    fn minutes_down_at_a_quorum_of_locations() {
        let m = |spans: &[(i64, i64)]| Intervals::from_spans(spans.to_vec());
        let sets = [
            m(&[(0, 3 * MIN), (10 * MIN, 11 * MIN)]),
            m(&[(MIN, 4 * MIN)]),
            m(&[(2 * MIN, 5 * MIN), (10 * MIN, 12 * MIN)]),
        ];
        assert_eq!(
            at_least(&sets, 1).spans(),
            &[(0, 5 * MIN), (10 * MIN, 12 * MIN)]
        );
        assert_eq!(
            at_least(&sets, 2).spans(),
            &[(MIN, 4 * MIN), (10 * MIN, 11 * MIN)]
        );
        assert_eq!(at_least(&sets, 3).spans(), &[(2 * MIN, 3 * MIN)]);
        assert!(at_least(&sets, 4).is_empty());
    }

    #[test]
    fn the_default_quorum_is_a_majority() {
        let q: Vec<usize> = (1..=5).map(majority).collect();
        assert_eq!(q, vec![1, 2, 2, 3, 3]);
    }

    /// A location's view of a day: closed incidents, maybe one still open at midnight, gaps, and
    /// a first outcome somewhere in the first quarter of the day (or none at all).
    fn arbitrary_view() -> impl Strategy<Value = Timeline> {
        let spans = || {
            prop::collection::vec((0i64..DAY, 1i64..4 * HOUR), 0..5)
                .prop_map(|v| v.into_iter().map(|(s, l)| (s, s + l)).collect::<Vec<_>>())
        };
        (
            spans(),
            spans(),
            prop::option::of(20 * HOUR..DAY),
            prop::option::weighted(0.9, 0i64..DAY / 4),
            prop::collection::vec(0i64..DAY, 0..3),
        )
            .prop_map(|(incidents, no_data, open, first, blips)| {
                let mut incidents: Vec<(i64, Option<i64>)> = Intervals::from_spans(incidents)
                    .spans()
                    .iter()
                    .filter(|&&(_, e)| open.is_none_or(|o| e < o))
                    .map(|&(s, e)| (s, Some(e.min(DAY - 1))))
                    .collect();
                incidents.extend(open.map(|o| (o, None)));
                Timeline {
                    incidents,
                    no_data,
                    blips,
                    first_ms: first,
                    last_ms: first.map(|_| DAY),
                    interval_ms: 30_000,
                    max_gap_ms: 70_000,
                }
            })
    }

    fn policy() -> impl Strategy<Value = NoDataPolicy> {
        prop::sample::select(vec![
            NoDataPolicy::Exclude,
            NoDataPolicy::Hold,
            NoDataPolicy::Down,
        ])
    }

    const NAMES: [&str; 5] = ["fra", "nyc", "sgp", "syd", "gru"];

    fn downtime(views: &[Timeline], quorum: usize, policy: NoDataPolicy) -> Availability {
        let named: Vec<(&str, &Timeline)> = NAMES.iter().copied().zip(views).collect();
        numbers(&named, quorum, policy).0
    }

    proptest! {
        #[test]
        fn one_location_with_a_quorum_of_one_gives_exactly_its_own_numbers(
            t in arbitrary_view(), policy in policy(),
        ) {
            let own = compute(&t, &day(policy), 0, DAY, DAY);
            prop_assert_eq!(downtime(std::slice::from_ref(&t), 1, policy), own);
        }

        #[test]
        fn raising_the_quorum_never_adds_downtime(
            views in prop::collection::vec(arbitrary_view(), 1..5), policy in policy(),
        ) {
            for q in 1..views.len() {
                let lower = downtime(&views, q, policy);
                let higher = downtime(&views, q + 1, policy);
                prop_assert!(higher.down.subtract(&lower.down).is_empty(), "quorum {}", q + 1);
                prop_assert!(higher.downtime_ms <= lower.downtime_ms);
            }
        }

        #[test]
        fn a_silent_location_never_creates_downtime_by_itself(
            views in prop::collection::vec(arbitrary_view(), 1..4),
            quorum in 1usize..4,
            policy in policy(),
        ) {
            // Added to any fleet, a location without data adds no downtime where the policy
            // does not count no-data as down...
            let mut with = views.clone();
            with.push(silent());
            if policy != NoDataPolicy::Down {
                let before = downtime(&views, quorum, policy).down;
                prop_assert!(downtime(&with, quorum, policy).down.subtract(&before).is_empty());
            }
            // ...and beside locations that all see the service up, none under any policy once
            // the quorum is more than one.
            let up = vec![seen(&[], &[]); views.len()];
            let mut with = up.clone();
            with.push(silent());
            let a = downtime(&with, quorum.max(2), policy);
            prop_assert_eq!((a.downtime_ms, a.measured_ms), (0, DAY));
        }

        #[test]
        fn the_order_of_the_locations_does_not_matter(
            mut views in prop::collection::vec(arbitrary_view(), 1..5),
            quorum in 1usize..5,
            policy in policy(),
        ) {
            let a = downtime(&views, quorum, policy);
            views.reverse();
            let b = downtime(&views, quorum, policy);
            prop_assert_eq!((a.downtime_ms, a.measured_ms, a.incidents), (b.downtime_ms, b.measured_ms, b.incidents));
        }
    }
}
