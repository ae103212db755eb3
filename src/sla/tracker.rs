//! The per-service state machine of DESIGN.md §2: confirmation streaks, backdated incidents,
//! blips and no-data gaps. Pure: outcomes in, events out; no I/O, no clock.

use crate::probe::{Failure, Outcome, Reason};

/// A service's confirmed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the state machine concluded from one outcome; the store records each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An incident opened, backdated to the first failure of the confirming streak.
    IncidentOpened {
        start_ms: i64,
        first_failure: Failure,
    },
    /// The open incident ended at the first success of the recovering streak.
    IncidentClosed { start_ms: i64, end_ms: i64 },
    /// A failure streak shorter than `confirm_down`: recorded, never downtime.
    Blip {
        start_ms: i64,
        end_ms: i64,
        failures: u32,
        reason: Reason,
    },
    /// No result stood for `[start_ms, end_ms)` (daemon stopped, host overloaded).
    NoData { start_ms: i64, end_ms: i64 },
}

/// The per-service settings the state machine needs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub confirm_down: u32,
    pub confirm_up: u32,
    pub interval_ms: i64,
    /// A result stands until the next one if it comes within this gap (2 × interval + timeout).
    pub max_gap_ms: i64,
}

/// A run of identical results that has not (yet) changed the health.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Streak {
    ok: bool,
    count: u32,
    first_ms: i64,
    first_failure: Option<Failure>,
}

/// An incident that has not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub start_ms: i64,
    pub first_failure: Failure,
}

/// What the store remembers of a service, to resume its state machine after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    pub open_incident: Option<OpenIncident>,
    /// The latest outcomes, oldest first (at least `max(confirm_down, confirm_up)` of them when
    /// there are that many), with their failures.
    pub recent: Vec<(i64, Option<Failure>)>,
    /// Whether any outcome was ever recorded before `recent` (so the state was known).
    pub had_history: bool,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    rules: Rules,
    /// Set by a reload until the next outcome: the rules the last outcome was taken under.
    /// Boxed: a reload is rare, and every service's task holds a tracker.
    reloaded_from: Option<Box<Rules>>,
    health: Health,
    since_ms: Option<i64>,
    streak: Option<Streak>,
    incident: Option<OpenIncident>,
    last_ms: Option<i64>,
}

impl Tracker {
    pub fn new(rules: Rules) -> Tracker {
        Tracker {
            rules,
            reloaded_from: None,
            health: Health::Unknown,
            since_ms: None,
            streak: None,
            incident: None,
            last_ms: None,
        }
    }

    /// Rebuilds the state from what the store holds: down while an incident is open, else up
    /// once anything was recorded, plus the unfinished streak at the end of `recent`.
    pub fn resume(rules: Rules, resume: Resume) -> Tracker {
        let mut tracker = Tracker::new(rules);
        let Some(&(last_ms, _)) = resume.recent.last() else {
            if let Some(incident) = resume.open_incident {
                tracker.health = Health::Down;
                tracker.since_ms = Some(incident.start_ms);
                tracker.incident = Some(incident);
            }
            return tracker;
        };
        tracker.last_ms = Some(last_ms);
        // The trailing run of identical results.
        let trailing_ok = resume.recent.last().is_some_and(|(_, f)| f.is_none());
        let run: Vec<&(i64, Option<Failure>)> = resume
            .recent
            .iter()
            .rev()
            .take_while(|(at, f)| {
                f.is_none() == trailing_ok
                    && resume
                        .open_incident
                        .as_ref()
                        .is_none_or(|i| *at >= i.start_ms)
            })
            .collect();
        let first = run.last().copied();
        let streak = first.map(|(first_ms, first_failure)| Streak {
            ok: trailing_ok,
            count: run.len() as u32,
            first_ms: *first_ms,
            first_failure: first_failure.clone(),
        });
        if let Some(incident) = resume.open_incident {
            tracker.health = Health::Down;
            tracker.since_ms = Some(incident.start_ms);
            tracker.incident = Some(incident);
            tracker.streak = streak.filter(|s| s.ok && s.count < rules.confirm_up);
        } else if resume.had_history || resume.recent.len() > run.len() {
            tracker.health = Health::Up;
            tracker.streak = streak.filter(|s| !s.ok && s.count < rules.confirm_down);
        } else {
            // Everything ever recorded is one run that confirmed nothing yet.
            tracker.streak = streak;
        }
        tracker
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// When the current health began (the incident start while down).
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    pub fn open_incident(&self) -> Option<&OpenIncident> {
        self.incident.as_ref()
    }

    /// Whether any outcome was observed (here or before a restart).
    pub fn has_history(&self) -> bool {
        self.last_ms.is_some()
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Applies new settings (a reloaded config) without losing the state. The last outcome was
    /// taken under the old interval: it stands for that long, and the gap to the next one is
    /// judged by the more lenient of the two rules, so a reload alone never makes no-data.
    pub fn set_rules(&mut self, rules: Rules) {
        if self.reloaded_from.is_none() {
            self.reloaded_from = Some(Box::new(self.rules));
        }
        self.rules = rules;
    }

    /// Feeds one outcome; returns what it concluded, in time order.
    pub fn observe(&mut self, outcome: &Outcome) -> Vec<Event> {
        let mut events = Vec::new();
        // A wall clock that stepped back must not create negative intervals.
        let at = self
            .last_ms
            .map_or(outcome.at_ms, |last| outcome.at_ms.max(last));

        let (max_gap_ms, held_ms) = match self.reloaded_from.take() {
            Some(old) => (old.max_gap_ms.max(self.rules.max_gap_ms), old.interval_ms),
            None => (self.rules.max_gap_ms, self.rules.interval_ms),
        };
        if let Some(last) = self.last_ms
            && at - last > max_gap_ms
        {
            let held_until = last + held_ms;
            // Consecutive means without a gap: an unfinished failure streak ends as a blip.
            if let Some(streak) = self.streak.take()
                && !streak.ok
                && self.health != Health::Down
            {
                events.push(blip(&streak, held_until));
            }
            events.push(Event::NoData {
                start_ms: held_until,
                end_ms: at,
            });
        }
        self.last_ms = Some(at);

        let ok = outcome.failure.is_none();
        let streak = match self.streak.take() {
            Some(mut s) if s.ok == ok => {
                s.count += 1;
                s
            }
            previous => {
                if let Some(previous) = previous
                    && !previous.ok
                    && self.health != Health::Down
                {
                    events.push(blip(&previous, at));
                }
                Streak {
                    ok,
                    count: 1,
                    first_ms: at,
                    first_failure: outcome.failure.clone(),
                }
            }
        };

        match (self.health, ok) {
            (Health::Unknown | Health::Up, false) if streak.count >= self.rules.confirm_down => {
                let first_failure = streak
                    .first_failure
                    .clone()
                    .unwrap_or_else(|| Failure::new(Reason::Internal, "unknown failure"));
                self.health = Health::Down;
                self.since_ms = Some(streak.first_ms);
                self.incident = Some(OpenIncident {
                    start_ms: streak.first_ms,
                    first_failure: first_failure.clone(),
                });
                events.push(Event::IncidentOpened {
                    start_ms: streak.first_ms,
                    first_failure,
                });
            }
            (Health::Unknown, true) if streak.count >= self.rules.confirm_up => {
                self.health = Health::Up;
                self.since_ms = Some(streak.first_ms);
            }
            (Health::Down, true) if streak.count >= self.rules.confirm_up => {
                let start_ms = self.incident.take().map_or(streak.first_ms, |i| i.start_ms);
                self.health = Health::Up;
                self.since_ms = Some(streak.first_ms);
                events.push(Event::IncidentClosed {
                    start_ms,
                    end_ms: streak.first_ms,
                });
            }
            // Successes while up and failures while down change nothing and start no streak.
            (Health::Up, true) | (Health::Down, false) => {}
            _ => self.streak = Some(streak),
        }
        events
    }
}

fn blip(streak: &Streak, end_ms: i64) -> Event {
    Event::Blip {
        start_ms: streak.first_ms,
        end_ms,
        failures: streak.count,
        reason: streak
            .first_failure
            .as_ref()
            .map_or(Reason::Internal, |f| f.reason),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RULES: Rules = Rules {
        confirm_down: 2,
        confirm_up: 1,
        interval_ms: 30_000,
        max_gap_ms: 70_000,
    };

    fn ok(at_ms: i64) -> Outcome {
        Outcome {
            at_ms,
            latency: Duration::from_millis(5),
            failure: None,
        }
    }

    fn fail(at_ms: i64) -> Outcome {
        Outcome {
            at_ms,
            latency: Duration::from_millis(5),
            failure: Some(Failure::new(Reason::Timeout, "slow")),
        }
    }

    fn run(tracker: &mut Tracker, outcomes: &[Outcome]) -> Vec<Event> {
        outcomes.iter().flat_map(|o| tracker.observe(o)).collect()
    }

    #[test]
    fn first_success_confirms_up() {
        let mut t = Tracker::new(RULES);
        assert_eq!(t.health(), Health::Unknown);
        assert!(run(&mut t, &[ok(0)]).is_empty());
        assert_eq!(t.health(), Health::Up);
        assert_eq!(t.since_ms(), Some(0));
    }

    #[test]
    fn incident_is_backdated_to_first_failure_and_ends_at_first_success() {
        let mut t = Tracker::new(RULES);
        // up at 0; fails at 30s, retried at 35s (confirms), 40s; ok at 45s.
        let events = run(
            &mut t,
            &[ok(0), fail(30_000), fail(35_000), fail(40_000), ok(45_000)],
        );
        assert_eq!(
            events,
            vec![
                Event::IncidentOpened {
                    start_ms: 30_000,
                    first_failure: Failure::new(Reason::Timeout, "slow"),
                },
                Event::IncidentClosed {
                    start_ms: 30_000,
                    end_ms: 45_000,
                },
            ]
        );
        assert_eq!(t.health(), Health::Up);
    }

    #[test]
    fn short_failure_streak_is_a_blip_not_an_incident() {
        let mut t = Tracker::new(RULES);
        let events = run(&mut t, &[ok(0), fail(30_000), ok(35_000)]);
        assert_eq!(
            events,
            vec![Event::Blip {
                start_ms: 30_000,
                end_ms: 35_000,
                failures: 1,
                reason: Reason::Timeout,
            }]
        );
        assert_eq!(t.health(), Health::Up);
    }

    #[test]
    fn recovery_needs_confirm_up_consecutive_successes() {
        let rules = Rules {
            confirm_up: 3,
            ..RULES
        };
        let mut t = Tracker::new(rules);
        let mut events = run(&mut t, &[ok(0), ok(1), ok(2), fail(10), fail(20)]);
        assert!(matches!(
            events[0],
            Event::IncidentOpened { start_ms: 10, .. }
        ));
        // ok, ok, fail: the two successes count as down; then ok ×3 from 60.
        events = run(
            &mut t,
            &[ok(30), ok(40), fail(50), ok(60), ok(70), ok(80), ok(90)],
        );
        assert_eq!(
            events,
            vec![Event::IncidentClosed {
                start_ms: 10,
                end_ms: 60
            }]
        );
    }

    #[test]
    fn gap_longer_than_max_gap_is_no_data_and_breaks_streaks() {
        let mut t = Tracker::new(RULES);
        // ok at 0, one failure at 30s, daemon stopped, failure at 300s, ok at 330s.
        let events = run(&mut t, &[ok(0), fail(30_000), fail(300_000), ok(330_000)]);
        assert_eq!(
            events,
            vec![
                Event::Blip {
                    start_ms: 30_000,
                    end_ms: 60_000,
                    failures: 1,
                    reason: Reason::Timeout,
                },
                Event::NoData {
                    start_ms: 60_000,
                    end_ms: 300_000,
                },
                Event::Blip {
                    start_ms: 300_000,
                    end_ms: 330_000,
                    failures: 1,
                    reason: Reason::Timeout,
                },
            ]
        );
    }

    #[test]
    fn gap_within_max_gap_holds_the_sample() {
        let mut t = Tracker::new(RULES);
        assert!(run(&mut t, &[ok(0), ok(70_000)]).is_empty());
    }

    #[test]
    fn a_reload_to_a_shorter_interval_makes_no_gap_of_the_last_sample() {
        // 30 s interval (gap 70 s) reloaded to 5 s (gap 15 s): the outcome at 0 was taken
        // under the old interval, so the next one 40 s later is no gap.
        let mut t = Tracker::new(RULES);
        assert!(run(&mut t, &[ok(0)]).is_empty());
        let short = Rules {
            interval_ms: 5_000,
            max_gap_ms: 15_000,
            ..RULES
        };
        t.set_rules(short);
        assert!(run(&mut t, &[ok(40_000), ok(45_000)]).is_empty());
        // From then on the new rules hold: 20 s is a gap of 5 s held, then no-data.
        assert_eq!(
            run(&mut t, &[ok(65_000)]),
            vec![Event::NoData {
                start_ms: 50_000,
                end_ms: 65_000,
            }]
        );
    }

    #[test]
    fn a_reload_to_a_longer_interval_holds_the_last_sample_for_the_old_interval() {
        let mut t = Tracker::new(RULES);
        run(&mut t, &[ok(0)]);
        let long = Rules {
            interval_ms: 300_000,
            max_gap_ms: 610_000,
            ..RULES
        };
        t.set_rules(long);
        // Two reloads before the next outcome: the outcome at 0 still stands for the 30 s it
        // was taken for, and a gap beyond even the longer rules is no-data from there.
        t.set_rules(long);
        assert_eq!(
            run(&mut t, &[ok(700_000)]),
            vec![Event::NoData {
                start_ms: 30_000,
                end_ms: 700_000,
            }]
        );
        // From then on the new rules hold: 500 s is within their 610 s gap.
        assert!(run(&mut t, &[ok(1_200_000)]).is_empty());
    }

    #[test]
    fn open_incident_survives_a_gap() {
        let mut t = Tracker::new(RULES);
        let events = run(&mut t, &[fail(0), fail(5_000), fail(500_000), ok(505_000)]);
        assert_eq!(
            events,
            vec![
                Event::IncidentOpened {
                    start_ms: 0,
                    first_failure: Failure::new(Reason::Timeout, "slow"),
                },
                Event::NoData {
                    start_ms: 35_000,
                    end_ms: 500_000,
                },
                Event::IncidentClosed {
                    start_ms: 0,
                    end_ms: 505_000,
                },
            ]
        );
    }

    #[test]
    fn clock_stepping_back_never_makes_negative_intervals() {
        let mut t = Tracker::new(RULES);
        let events = run(&mut t, &[ok(100_000), fail(90_000), ok(95_000)]);
        assert_eq!(
            events,
            vec![Event::Blip {
                start_ms: 100_000,
                end_ms: 100_000,
                failures: 1,
                reason: Reason::Timeout,
            }]
        );
    }

    #[test]
    fn resume_restores_open_incident_and_streaks() {
        let incident = OpenIncident {
            start_ms: 10,
            first_failure: Failure::new(Reason::Status, "500"),
        };
        let rules = Rules {
            confirm_up: 2,
            ..RULES
        };
        let mut t = Tracker::resume(
            rules,
            Resume {
                open_incident: Some(incident.clone()),
                recent: vec![(10, Some(incident.first_failure.clone())), (20, None)],
                had_history: true,
            },
        );
        assert_eq!(t.health(), Health::Down);
        // One more success completes the recovering streak that began at 20.
        assert_eq!(
            t.observe(&ok(30)),
            vec![Event::IncidentClosed {
                start_ms: 10,
                end_ms: 20
            }]
        );

        // Up with one failure pending: the next failure confirms, backdated to it.
        let mut t = Tracker::resume(
            RULES,
            Resume {
                open_incident: None,
                recent: vec![
                    (0, None),
                    (30_000, Some(Failure::new(Reason::Connect, "refused"))),
                ],
                had_history: true,
            },
        );
        assert_eq!(t.health(), Health::Up);
        assert!(matches!(
            t.observe(&fail(35_000))[..],
            [Event::IncidentOpened {
                start_ms: 30_000,
                ..
            }]
        ));
    }
}
