//! A service's history as reports, statements, status and alerting read it, on either
//! backend: on SQLite the one location's own record (`store::read`); on PostgreSQL the fleet's
//! verdict over its locations (`store::pg::read`, DESIGN.md §6.3), or one location's own view
//! when the connection is narrowed to it (`report --location L`).

use std::collections::HashMap;

use super::acks::{self, OpenAck, RecordedIncident};
use super::db::{Conn, DbError, args};
use super::pg::read as pg_read;
use super::{ServiceNum, read};
use crate::config::{Config, Service};
use crate::probe::{Failure, Reason};
use crate::sla::Intervals;
use crate::sla::availability::Timeline;
use crate::sla::quorum;
use crate::sla::response::Ack;
use crate::sla::tracker::OpenIncident;

/// What the reads need to know of a service: its number in the store, how many locations must
/// see it down, and its cadence.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub num: ServiceNum,
    pub quorum: usize,
    pub interval_ms: i64,
    pub max_gap_ms: i64,
}

/// The number of a service id, if it was ever registered (the same on both backends).
pub fn service_num(conn: Conn<'_>, id: &str) -> Result<Option<ServiceNum>, DbError> {
    if let Some(num) = preloaded(conn, |p| p.num(id)) {
        return Ok(Some(num));
    }
    conn.query_opt("SELECT num FROM service WHERE id = ?1", args![id], |r| {
        r.get(0)
    })
}

/// The subject of `service`'s reads, if the store knows it.
pub fn subject<'a>(
    conn: Conn<'_>,
    config: &Config,
    service: &'a Service,
) -> Result<Option<Subject<'a>>, DbError> {
    Ok(service_num(conn, &service.id)?.map(|num| Subject {
        id: &service.id,
        num,
        quorum: config.quorum_of(service),
        interval_ms: service.interval.as_millis() as i64,
        max_gap_ms: service.max_gap().as_millis() as i64,
    }))
}

/// The locations a PostgreSQL connection reads, and the quorum over them: one location's own
/// view counts alone.
fn in_view(conn: Conn<'_>, quorum: usize) -> (Vec<String>, usize) {
    match conn {
        Conn::Postgres(pg) => {
            let pg = pg.borrow();
            match &pg.only {
                Some(location) => (vec![location.clone()], 1),
                None => (pg.locations.clone(), quorum),
            }
        }
        Conn::Sqlite(_) => (Vec::new(), 1),
    }
}

/// What `preload` read, asked through `read` (PostgreSQL; `None` when nothing was preloaded or
/// it does not cover the question).
pub(super) fn preloaded<T>(
    conn: Conn<'_>,
    read: impl FnOnce(&pg_read::Preloaded) -> Option<T>,
) -> Option<T> {
    match conn {
        Conn::Postgres(pg) => pg.borrow().preloaded.as_ref().and_then(read),
        Conn::Sqlite(_) => None,
    }
}

/// How many services one `preload` should cover at most: what it holds is about 24 bytes per
/// service, location and hour of latency counts (a month of 250 services at three locations:
/// 13 MB), and the queries gain little beyond.
pub const PRELOAD_AT_MOST: usize = 250;

/// What `preload` reads beside the services' histories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// The hourly latency counts of the services with a latency objective (full reports).
    Counted,
    /// None (availability only: budgets, the status page's bars).
    Skipped,
}

/// Reads at once what reports of `services` over `[from_ms, to_ms)` need, for the reads below
/// until the returned guard is dropped. On PostgreSQL a report's dozen small queries per service
/// become a few for all of them (callers take `PRELOAD_AT_MOST` services at a time); on SQLite
/// (a file read in-process) this does nothing.
pub fn preload<'c>(
    conn: Conn<'c>,
    services: &[&Service],
    (from_ms, to_ms): (i64, i64),
    latency: Latency,
) -> Result<Preloading<'c>, DbError> {
    let Conn::Postgres(pg) = conn else {
        return Ok(Preloading(None));
    };
    let (locations, _) = in_view(conn, 1);
    let wanted: Vec<pg_read::Wanted<'_>> = services
        .iter()
        .map(|s| pg_read::Wanted {
            id: &s.id,
            cadence: (
                s.interval.as_millis() as i64,
                s.max_gap().as_millis() as i64,
            ),
            threshold_ms: s
                .latency
                .filter(|_| latency == Latency::Counted)
                .map(|slo| slo.threshold.as_millis() as u32),
        })
        .collect();
    let mut pg_conn = pg.borrow_mut();
    // Worth a second connection only when there are many rollups to read.
    let counted = wanted.iter().filter(|w| w.threshold_ms.is_some()).count();
    let mut helper = if counted >= HELPER_FROM_SERVICES {
        pg_conn.connect_another().ok()
    } else {
        None
    };
    let read = pg_read::preload(
        &mut pg_conn.reader()?,
        helper.as_mut(),
        &locations,
        &wanted,
        (from_ms, to_ms),
    )?;
    pg_conn.preloaded = Some(read);
    Ok(Preloading(Some(pg)))
}

/// How many services with a latency objective `preload` reads over a second connection.
const HELPER_FROM_SERVICES: usize = 100;

/// Keeps what `preload` read for the reads that follow; dropped, they go to the server again.
#[must_use = "the preloaded reads last as long as this guard"]
pub struct Preloading<'c>(Option<&'c std::cell::RefCell<super::db::PgConnection>>);

impl Drop for Preloading<'_> {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            pg.borrow_mut().preloaded = None;
        }
    }
}

/// When the service was first probed (by any location in view), if ever.
pub fn first_outcome_ms(conn: Conn<'_>, id: &str) -> Result<Option<i64>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(read::first_outcome_ms(c, id)?),
        Conn::Postgres(pg) => {
            let Some(num) = service_num(conn, id)? else {
                return Ok(None);
            };
            let (locations, _) = in_view(conn, 1);
            let mut pg = pg.borrow_mut();
            let first = pg_read::first_outcomes(&mut pg.reader()?, &locations, num)?;
            Ok(first.into_iter().map(|(_, at)| at).min())
        }
    }
}

/// What the SLA maths needs of the service for `[from_ms, to_ms)` as of `now_ms`: on
/// PostgreSQL the verdict of the locations in view.
pub fn timeline(
    conn: Conn<'_>,
    s: &Subject<'_>,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Timeline, DbError> {
    Ok(verdict(conn, s, from_ms, to_ms, now_ms)?.timeline)
}

/// The timeline with, for each incident, the locations that saw it (on SQLite: none named).
pub fn verdict(
    conn: Conn<'_>,
    s: &Subject<'_>,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<quorum::Verdict, DbError> {
    match conn {
        Conn::Sqlite(c) => {
            let timeline = read::timeline(c, s.num, from_ms, to_ms, s.interval_ms, s.max_gap_ms)?;
            let seen_by = vec![Vec::new(); timeline.incidents.len()];
            Ok(quorum::Verdict { timeline, seen_by })
        }
        Conn::Postgres(pg) => {
            let (locations, quorum) = in_view(conn, s.quorum);
            let span = (from_ms, to_ms);
            let timelines = match preloaded(conn, |p| p.timelines(&locations, s.num, span)) {
                Some(timelines) => timelines,
                None => pg_read::timelines(
                    &mut pg.borrow_mut().reader()?,
                    &locations,
                    s.num,
                    span,
                    (s.interval_ms, s.max_gap_ms),
                )?,
            };
            let views: Vec<quorum::LocationView<'_>> = locations
                .iter()
                .zip(&timelines)
                .map(|(location, timeline)| quorum::LocationView { location, timeline })
                .collect();
            let mut verdict = quorum::verdict(&views, quorum, now_ms);
            // One location in view confirms nothing beyond itself: reports then read as a
            // single machine's (a history moved by `migrate` reports the same bytes).
            if locations.len() < 2 {
                verdict.seen_by.iter_mut().for_each(Vec::clear);
            }
            Ok(verdict)
        }
    }
}

/// The whole minutes of `[from_ms, to_ms)` in which every probe failed: on PostgreSQL, those
/// in which at least the quorum of locations saw every probe fail.
pub fn down_minutes(
    conn: Conn<'_>,
    s: &Subject<'_>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Intervals, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(read::down_minutes(c, s.num, from_ms, to_ms)?),
        Conn::Postgres(pg) => {
            let (locations, quorum) = in_view(conn, s.quorum);
            let mut pg = pg.borrow_mut();
            let client = &mut pg.reader()?;
            let mut sets = Vec::with_capacity(locations.len());
            for location in &locations {
                sets.push(pg_read::down_minutes(
                    client, location, s.num, from_ms, to_ms,
                )?);
            }
            Ok(quorum::at_least(&sets, quorum))
        }
    }
}

fn failure(reason: String, detail: String) -> Failure {
    Failure::new(Reason::parse(&reason).unwrap_or(Reason::Internal), detail)
}

/// The first failure of the incident that started at `start_ms` (on PostgreSQL: of the
/// location whose incident started then, the one that brought the verdict down).
pub fn incident_cause(
    conn: Conn<'_>,
    s: &Subject<'_>,
    start_ms: i64,
) -> Result<Option<Failure>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(read::incident_cause(c, s.num, start_ms)?),
        Conn::Postgres(_) => match preloaded(conn, |p| p.cause(s.num, start_ms)) {
            Some(cause) => Ok(Some(cause)),
            None => conn.query_opt(
                "SELECT reason, detail FROM incident WHERE service = ?1 AND start_ms = ?2
                 ORDER BY location LIMIT 1",
                args![s.num, start_ms],
                |r| Ok(failure(r.get(0)?, r.get(1)?)),
            ),
        },
    }
}

/// The first failure recorded (by any location) in `[from_ms, to_ms)`.
pub fn first_failure_in(
    conn: Conn<'_>,
    s: &Subject<'_>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<Failure>, DbError> {
    conn.query_opt(
        "SELECT reason, detail FROM failure WHERE service = ?1 AND at_ms >= ?2 AND at_ms < ?3
         ORDER BY at_ms LIMIT 1",
        args![s.num, from_ms, to_ms],
        |r| Ok(failure(r.get(0)?, r.get(1)?)),
    )
}

/// Probes that succeeded under `threshold_ms`, and all probes, started in `measured` time: on
/// PostgreSQL every location in view's probes.
pub fn latency_counts(
    conn: Conn<'_>,
    s: &Subject<'_>,
    measured: &Intervals,
    threshold_ms: u32,
) -> Result<(u64, u64), DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(read::latency_counts(c, s.num, measured, threshold_ms)?),
        Conn::Postgres(pg) => {
            let (locations, _) = in_view(conn, 1);
            let mut pg = pg.borrow_mut();
            if let (Some(preloaded), mut reader) = pg.preloaded_and_reader()?
                && let Some(counts) =
                    preloaded.latency_counts(&mut reader, &locations, s.num, measured, threshold_ms)
            {
                return Ok(counts?);
            }
            let client = &mut pg.reader()?;
            let (mut good, mut total) = (0, 0);
            for location in &locations {
                let (g, t) =
                    pg_read::latency_counts(client, location, s.num, measured, threshold_ms)?;
                good += g;
                total += t;
            }
            Ok((good, total))
        }
    }
}

/// The acknowledgement in columns `at, at + 1, at + 2` (ack_ms, ack_by, ack_note), if any.
fn ack_from(r: &super::db::Row<'_, '_>, at: usize) -> Result<Option<Ack>, DbError> {
    let Some(at_ms) = r.get::<Option<i64>>(at)? else {
        return Ok(None);
    };
    Ok(Some(Ack {
        at_ms,
        by: r.get(at + 1)?,
        note: r.get(at + 2)?,
    }))
}

/// The acknowledgement of the incident of service `id` that started at `start_ms`: on
/// PostgreSQL the fleet's (kept beside what alerts told of it), else one carried over from a
/// single machine's history by `slaprobe migrate`.
pub fn ack_of(conn: Conn<'_>, id: &str, start_ms: i64) -> Result<Option<Ack>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(acks::ack_of(c, id, start_ms)?),
        Conn::Postgres(_) => {
            if let Some(ack) = preloaded(conn, |p| p.ack(id, start_ms)) {
                return Ok(ack);
            }
            let fleet = conn.query_opt(
                "SELECT ack_ms, ack_by, ack_note FROM alert_incident
                 WHERE service = ?1 AND start_ms = ?2 AND ack_ms IS NOT NULL",
                args![id, start_ms],
                |r| ack_from(r, 0),
            )?;
            if let Some(ack) = fleet.flatten() {
                return Ok(Some(ack));
            }
            Ok(conn
                .query_opt(
                    "SELECT i.ack_ms, i.ack_by, i.ack_note FROM incident i
                     JOIN service s ON s.num = i.service
                     WHERE s.id = ?1 AND i.start_ms = ?2 AND i.ack_ms IS NOT NULL
                     ORDER BY i.ack_ms LIMIT 1",
                    args![id, start_ms],
                    |r| ack_from(r, 0),
                )?
                .flatten())
        }
    }
}

/// Acknowledgements alerting has not announced yet: on SQLite those of every open incident
/// (alerting skips those it announced); on PostgreSQL those whose announcement is not recorded.
pub fn open_acks(conn: Conn<'_>) -> Result<Vec<OpenAck>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(acks::open_acks(c)?),
        Conn::Postgres(_) => Ok(conn
            .query(
                "SELECT service, start_ms, ack_ms, ack_by, ack_note FROM alert_incident
                 WHERE ack_ms IS NOT NULL AND ack_told_ms IS NULL",
                args![],
                |r| {
                    let (service, start_ms) = (r.get(0)?, r.get(1)?);
                    Ok(ack_from(r, 2)?.map(|ack| OpenAck {
                        service,
                        start_ms,
                        ack,
                    }))
                },
            )?
            .into_iter()
            .flatten()
            .collect()),
    }
}

/// The incidents overlapping `[from_ms, to_ms)` as of `now_ms`, by start, with their
/// acknowledgements: on PostgreSQL the verdict's.
pub fn recorded_incidents(
    conn: Conn<'_>,
    s: &Subject<'_>,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Vec<RecordedIncident>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(acks::recorded_incidents(c, s.num, from_ms, to_ms)?),
        Conn::Postgres(_) => {
            let timeline = timeline(conn, s, from_ms, to_ms, now_ms)?;
            timeline
                .incidents
                .into_iter()
                .map(|(start_ms, end_ms)| {
                    Ok(RecordedIncident {
                        start_ms,
                        end_ms,
                        ack: ack_of(conn, s.id, start_ms)?,
                    })
                })
                .collect()
        }
    }
}

/// How long past its max gap a location's latest stored outcome may be and the location still
/// count as probing (its writer's lag), for the fleet's open incidents.
const WRITE_LAG_ALLOWANCE_MS: i64 = 5_000;

/// How far back `service_status` looks for the verdict's latest incident on PostgreSQL.
const STATUS_LOOKBACK_MS: i64 = 35 * 86_400_000;

/// The service's state as `status` shows it: on SQLite its one location's; on PostgreSQL the
/// verdict's incident (open, or the latest recovery within 35 days) and the latest outcome of
/// any location in view.
pub fn service_status(
    conn: Conn<'_>,
    s: &Subject<'_>,
    now_ms: i64,
) -> Result<read::ServiceStatus, DbError> {
    if let Conn::Sqlite(c) = conn {
        return Ok(read::service_status(c, s.num)?);
    }
    let own = location_states(conn, s)?;
    let verdict = verdict(conn, s, now_ms - STATUS_LOOKBACK_MS, now_ms + 1, now_ms)?;
    let open_incident = match verdict.timeline.incidents.last() {
        Some(&(start_ms, None)) => Some(crate::sla::tracker::OpenIncident {
            start_ms,
            first_failure: incident_cause(conn, s, start_ms)?
                .unwrap_or_else(|| Failure::new(Reason::Internal, "(cause not recorded)")),
        }),
        _ => None,
    };
    let last_recovery_ms = verdict
        .timeline
        .incidents
        .iter()
        .filter_map(|(_, end)| *end)
        .max();
    let latest = own
        .iter()
        .filter(|(_, st)| st.last.is_some())
        .max_by_key(|(_, st)| st.last.as_ref().map(|o| o.at_ms));
    Ok(read::ServiceStatus {
        open_incident,
        last_recovery_ms,
        first_ms: own.iter().filter_map(|(_, st)| st.first_ms).min(),
        last: latest.and_then(|(_, st)| st.last),
        last_failure: latest.and_then(|(_, st)| st.last_failure.clone()),
    })
}

/// Each location's own state of the service, in the order of `locations` (on SQLite: none;
/// its one location is the service's state).
pub fn location_states(
    conn: Conn<'_>,
    s: &Subject<'_>,
) -> Result<Vec<(String, read::ServiceStatus)>, DbError> {
    let Conn::Postgres(pg) = conn else {
        return Ok(Vec::new());
    };
    let (locations, _) = in_view(conn, 1);
    let mut pg = pg.borrow_mut();
    let client = &mut pg.reader()?;
    let mut states = Vec::with_capacity(locations.len());
    for location in locations {
        let status = pg_read::service_status(client, &location, s.num)?;
        states.push((location, status));
    }
    Ok(states)
}

/// Every location's open incidents (PostgreSQL: a fleet's; SQLite has no fleet, so none).
pub fn open_everywhere(conn: Conn<'_>) -> Result<Vec<pg_read::OpenAt>, DbError> {
    match conn {
        Conn::Sqlite(_) => Ok(Vec::new()),
        Conn::Postgres(pg) => Ok(pg_read::open_everywhere(&mut pg.borrow_mut().reader()?)?),
    }
}

/// The open incidents of locations still probing, by service id: (start, first failure). A
/// location whose latest stored outcome is older than the service's max gap (plus the writer's
/// lag) is without data, not down (a stopped daemon's incident stays open in the store).
pub fn open_by_location(
    conn: Conn<'_>,
    config: &Config,
    now: i64,
) -> Result<HashMap<String, Vec<(i64, Failure)>>, DbError> {
    let mut by_service: HashMap<String, Vec<(i64, Failure)>> = HashMap::new();
    for open in open_everywhere(conn)? {
        let Some(service) = config.service(&open.service) else {
            continue;
        };
        // The latest *stored* outcome lags the latest probe by the writer's flush and commit
        // (over a second under load): judged on the max gap alone, a busy location would flap
        // between down and without data.
        let max_gap = service.max_gap().as_millis() as i64 + WRITE_LAG_ALLOWANCE_MS;
        let fresh = open.last_ms.is_some_and(|last| now - last <= max_gap);
        if fresh && config.daemon.locations.contains(&open.location) {
            by_service
                .entry(open.service)
                .or_default()
                .push((open.start_ms, open.first_failure));
        }
    }
    Ok(by_service)
}

/// The verdict's open incident of every service at least a quorum of locations sees down.
pub fn verdict_open(
    conn: Conn<'_>,
    config: &Config,
    now: i64,
) -> Result<HashMap<String, OpenIncident>, DbError> {
    let by_service = open_by_location(conn, config, now)?;
    let mut open = HashMap::new();
    for service in &config.services {
        let Some(seen) = by_service.get(&service.id) else {
            continue;
        };
        if seen.len() < config.quorum_of(service) {
            continue;
        }
        if let Some(incident) = verdict_incident(conn, config, service, seen, now)? {
            open.insert(service.id.clone(), incident);
        }
    }
    Ok(open)
}

/// The verdict's open incident of a service some locations see down (`seen`), if the verdict
/// says it is down now: its start (when the quorum was reached) and the cause.
pub fn verdict_incident(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    seen: &[(i64, Failure)],
    now: i64,
) -> Result<Option<OpenIncident>, DbError> {
    let Some(subject) = subject(conn, config, service)? else {
        return Ok(None);
    };
    let from = seen.iter().map(|(start, _)| *start).min().unwrap_or(now);
    let timeline = timeline(conn, &subject, from, now + 1, now)?;
    let Some(&(start_ms, None)) = timeline.incidents.last() else {
        return Ok(None);
    };
    let first_failure = match incident_cause(conn, &subject, start_ms)? {
        Some(f) => f,
        None => seen
            .iter()
            .min_by_key(|(start, _)| *start)
            .map(|(_, f)| f.clone())
            .expect("seen is not empty"),
    };
    Ok(Some(OpenIncident {
        start_ms,
        first_failure,
    }))
}

/// Acknowledges the open incident of service `id` (on PostgreSQL the verdict's, kept beside
/// what alerts told of it). The first acknowledgement stands: a second one changes nothing and
/// says who came first.
pub fn acknowledge(
    conn: Conn<'_>,
    config: &Config,
    id: &str,
    ack: &Ack,
) -> Result<acks::AckOutcome, DbError> {
    use acks::AckOutcome;
    match conn {
        Conn::Sqlite(c) => Ok(acks::acknowledge(c, id, ack)?),
        Conn::Postgres(_) => {
            let Some(service) = config.service(id) else {
                return Ok(AckOutcome::NoOpenIncident);
            };
            let Some(open) = verdict_open_incident(conn, config, service, ack.at_ms)? else {
                return Ok(AckOutcome::NoOpenIncident);
            };
            let start_ms = open.start_ms;
            conn.transaction(|tx| {
                if let Some(first) = ack_of(tx, id, start_ms)? {
                    return Ok(AckOutcome::Already {
                        start_ms,
                        ack: first,
                    });
                }
                tx.execute(
                    "INSERT INTO alert_incident (service, start_ms, ack_ms, ack_by, ack_note)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (service, start_ms) DO UPDATE SET ack_ms = excluded.ack_ms,
                         ack_by = excluded.ack_by, ack_note = excluded.ack_note",
                    args![
                        id,
                        start_ms,
                        ack.at_ms,
                        ack.by.as_deref(),
                        ack.note.as_deref()
                    ],
                )?;
                Ok(AckOutcome::Acknowledged { start_ms })
            })
        }
    }
}

/// The verdict's open incident of one service as of `now`, if a quorum of locations still
/// probing sees it down.
pub fn verdict_open_incident(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    now: i64,
) -> Result<Option<OpenIncident>, DbError> {
    let by_service = open_by_location(conn, config, now)?;
    match by_service.get(&service.id) {
        Some(seen) if seen.len() >= config.quorum_of(service) => {
            verdict_incident(conn, config, service, seen, now)
        }
        _ => Ok(None),
    }
}

/// The latest `n` raw outcomes of a service, oldest first: on PostgreSQL those of the location
/// in view, else this daemon's own.
pub fn latest_outcomes(
    conn: Conn<'_>,
    num: ServiceNum,
    n: usize,
) -> Result<Vec<super::RawOutcome>, DbError> {
    match conn {
        Conn::Sqlite(c) => Ok(read::latest_outcomes(c, num, n)?),
        Conn::Postgres(pg) => {
            let mut pg = pg.borrow_mut();
            let location = pg.only.clone().unwrap_or_else(|| pg.location.clone());
            Ok(pg_read::latest_outcomes(
                &mut pg.reader()?,
                &location,
                num,
                n,
            )?)
        }
    }
}
