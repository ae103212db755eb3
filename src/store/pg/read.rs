//! Reading one location's history from PostgreSQL: what a restarted daemon resumes from, and
//! the raw outcomes and events a report or test reads.

use std::collections::HashMap;

use postgres::Row;
use postgres::types::ToSql;

use crate::probe::{Failure, Reason};
use crate::sla::Intervals;
use crate::sla::availability::Timeline;
use crate::sla::quorum::{self, LocationView, Verdict};
use crate::sla::response::Ack;
use crate::sla::tracker::{OpenIncident, Resume};
use crate::store::ServiceNum;
use crate::store::chunk::{self, RawOutcome};
use crate::store::read;
use crate::store::rollup::{Histogram, HourRollup};

/// A PostgreSQL client the reads run on: a plain client or transaction (each statement parsed
/// again on every call), or a connection that keeps its statements prepared
/// (`store::db::PgReader`, what reports read through).
pub trait Reader {
    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error>;

    fn row_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}

impl Reader for postgres::Client {
    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.query(sql, params)
    }
}

impl Reader for postgres::Transaction<'_> {
    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.query(sql, params)
    }
}

/// The latest `n` outcomes of a service at a location, oldest first.
pub fn latest_outcomes(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    n: usize,
) -> Result<Vec<RawOutcome>, postgres::Error> {
    let mut newest_first: Vec<RawOutcome> = Vec::new();
    let mut before = i64::MAX;
    while newest_first.len() < n {
        let Some(row) = client.row_opt(
            "SELECT hour, data FROM outcome_chunk
             WHERE service = $1 AND location = $2 AND hour < $3 ORDER BY hour DESC LIMIT 1",
            &[&service, &location, &before],
        )?
        else {
            break;
        };
        let hour: i64 = row.get(0);
        let data: Vec<u8> = row.get(1);
        newest_first.extend(chunk::decode(hour, &data).into_iter().rev());
        before = hour;
    }
    newest_first.truncate(n);
    newest_first.reverse();
    Ok(newest_first)
}

/// Every raw outcome of a service at a location in `[from_ms, to_ms)`, in time order.
pub fn outcomes(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<RawOutcome>, postgres::Error> {
    let rows = client.rows(
        "SELECT hour, data FROM outcome_chunk
         WHERE service = $1 AND location = $2 AND hour >= $3 AND hour <= $4 ORDER BY hour",
        &[
            &service,
            &location,
            &chunk::hour_of(from_ms),
            &chunk::hour_of(to_ms - 1),
        ],
    )?;
    Ok(rows
        .iter()
        .flat_map(|r| chunk::decode(r.get(0), r.get::<_, &[u8]>(1)))
        .filter(|o| (from_ms..to_ms).contains(&o.at_ms))
        .collect())
}

fn failure(reason: &str, detail: String) -> Failure {
    Failure::new(Reason::parse(reason).unwrap_or(Reason::Internal), detail)
}

/// The open incident of a service at a location, if any.
pub fn open_incident(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
) -> Result<Option<OpenIncident>, postgres::Error> {
    let row = client.row_opt(
        "SELECT start_ms, reason, detail FROM incident
         WHERE service = $1 AND location = $2 AND end_ms IS NULL",
        &[&service, &location],
    )?;
    Ok(row.map(|r| OpenIncident {
        start_ms: r.get(0),
        first_failure: failure(r.get(1), r.get(2)),
    }))
}

/// Each incident of a service at a location: start and end (`None`: open), in order.
pub fn incidents(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
) -> Result<Vec<(i64, Option<i64>)>, postgres::Error> {
    let rows = client.rows(
        "SELECT start_ms, end_ms FROM incident WHERE service = $1 AND location = $2
         ORDER BY start_ms",
        &[&service, &location],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What a location's state machine for a service needs to continue where it stopped.
pub fn resume(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    recent: usize,
) -> Result<Resume, postgres::Error> {
    let outcomes = latest_outcomes(client, location, service, recent + 1)?;
    let had_history = outcomes.len() > recent
        || client
            .row_opt(
                "SELECT 1 FROM rollup_hour WHERE service = $1 AND location = $2 LIMIT 1",
                &[&service, &location],
            )?
            .is_some();
    let skip = outcomes.len().saturating_sub(recent);
    let mut with_failures = Vec::with_capacity(recent);
    for o in &outcomes[skip..] {
        let failure = match o.reason {
            None => None,
            Some(reason) => Some(
                client
                    .row_opt(
                        "SELECT reason, detail FROM failure
                         WHERE service = $1 AND location = $2 AND at_ms = $3",
                        &[&service, &location, &o.at_ms],
                    )?
                    .map_or_else(
                        || Failure::new(reason, "(detail not kept)"),
                        |r| failure(r.get(0), r.get(1)),
                    ),
            ),
        };
        with_failures.push((o.at_ms, failure));
    }
    Ok(Resume {
        open_incident: open_incident(client, location, service)?,
        recent: with_failures,
        had_history,
    })
}

/// What the SLA maths needs of a service at one location for `[from_ms, to_ms)`: that
/// location's incidents and no-data stretches overlapping it, its blips in it, its first and
/// latest outcome (as `store::read::timeline` for SQLite).
pub fn timeline(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    span: (i64, i64),
    interval_ms: i64,
    max_gap_ms: i64,
) -> Result<Timeline, postgres::Error> {
    let locations = [location.to_string()];
    let mut timelines = timelines(client, &locations, service, span, (interval_ms, max_gap_ms))?;
    Ok(timelines.pop().expect("one timeline per location"))
}

/// Each of `locations`' own timeline of a service for `[from_ms, to_ms)`, in the order given,
/// read in one query (a report asks this of every service, so one round trip each).
pub fn timelines(
    client: &mut impl Reader,
    locations: &[String],
    service: ServiceNum,
    (from_ms, to_ms): (i64, i64),
    (interval_ms, max_gap_ms): (i64, i64),
) -> Result<Vec<Timeline>, postgres::Error> {
    // kind 0: incidents, 1: no-data stretches, 2: blips, 3: first outcome, 4: latest outcome,
    // 5: the end of the latest rolled-up hour (the latest outcome once raw ones are gone).
    let rows = client.rows(
        "SELECT location, 0, start_ms, end_ms FROM incident
         WHERE service = $1 AND location = ANY($2) AND start_ms < $4
           AND (end_ms IS NULL OR end_ms > $3)
         UNION ALL
         SELECT location, 1, start_ms, end_ms FROM no_data
         WHERE service = $1 AND location = ANY($2) AND start_ms < $4 AND end_ms > $3
         UNION ALL
         SELECT location, 2, start_ms, NULL FROM blip
         WHERE service = $1 AND location = ANY($2) AND start_ms >= $3 AND start_ms < $4
         UNION ALL
         SELECT location, 3, first_ms, NULL FROM service_location
         WHERE service = $1 AND location = ANY($2)
         UNION ALL
         SELECT l.location, 4,
                (SELECT c.last_ms FROM outcome_chunk c
                 WHERE c.service = $1 AND c.location = l.location ORDER BY c.hour DESC LIMIT 1),
                (SELECT (max(r.hour) + 1) * 3600000 - 1 FROM rollup_hour r
                 WHERE r.service = $1 AND r.location = l.location)
         FROM unnest($2::text[]) AS l(location)
         ORDER BY 2, 3",
        &[&service, &locations, &from_ms, &to_ms],
    )?;
    let mut timelines = vec![
        Timeline {
            interval_ms,
            max_gap_ms,
            ..Timeline::default()
        };
        locations.len()
    ];
    for row in &rows {
        let location: &str = row.get(0);
        let Some(at) = locations.iter().position(|l| l == location) else {
            continue;
        };
        add_row(&mut timelines[at], row.get(1), row.get(2), row.get(3));
    }
    Ok(timelines)
}

/// One row of the timeline queries (`kind`, then two times) into a location's timeline.
fn add_row(t: &mut Timeline, kind: i32, start: Option<i64>, end: Option<i64>) {
    match (kind, start) {
        (0, Some(start)) => t.incidents.push((start, end)),
        (1, Some(start)) => t
            .no_data
            .push((start, end.expect("a no-data stretch ends"))),
        (2, Some(start)) => t.blips.push(start),
        (3, first) => t.first_ms = first,
        (4, latest) => t.last_ms = latest.or(end),
        _ => {}
    }
}

/// The fleet's verdict on a service for `[from_ms, to_ms)` as of `now_ms` (DESIGN.md §6.3):
/// every expected location's own timeline (one that never wrote is without data throughout)
/// combined under `quorum`. `cadence` is the service's interval and max gap.
pub fn verdict(
    client: &mut impl Reader,
    locations: &[String],
    quorum: usize,
    service: ServiceNum,
    span: (i64, i64),
    now_ms: i64,
    cadence: (i64, i64),
) -> Result<Verdict, postgres::Error> {
    let timelines = timelines(client, locations, service, span, cadence)?;
    let views: Vec<LocationView<'_>> = locations
        .iter()
        .zip(&timelines)
        .map(|(location, timeline)| LocationView { location, timeline })
        .collect();
    Ok(quorum::verdict(&views, quorum, now_ms))
}

/// Probes under `threshold_ms` and all probes a location started in `measured` time (as
/// `store::read::latency_counts` for SQLite).
pub fn latency_counts(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    measured: &Intervals,
    threshold_ms: u32,
) -> Result<(u64, u64), postgres::Error> {
    let (Some(&(first, _)), Some(&(_, last))) = (measured.spans().first(), measured.spans().last())
    else {
        return Ok((0, 0));
    };
    let (from_hour, to_hour) = (chunk::hour_of(first), chunk::hour_of(last - 1));
    let hours = (to_hour - from_hour + 1).max(0) as usize;
    let mut rollups: Vec<Option<(u64, u64)>> = vec![None; hours];
    for row in client.rows(
        "SELECT hour, probes, latency FROM rollup_hour
         WHERE service = $1 AND location = $2 AND hour BETWEEN $3 AND $4",
        &[&service, &location, &from_hour, &to_hour],
    )? {
        let hour: i64 = row.get(0);
        let probes = row.get::<_, i64>(1) as u64;
        let good = Histogram::encoded_count_below(row.get(2), threshold_ms);
        rollups[(hour - from_hour) as usize] = Some((probes, good));
    }
    let mut raw: Vec<Option<Vec<u8>>> = vec![None; hours];
    for row in client.rows(
        "SELECT hour, data FROM outcome_chunk
         WHERE service = $1 AND location = $2 AND hour BETWEEN $3 AND $4",
        &[&service, &location, &from_hour, &to_hour],
    )? {
        let hour: i64 = row.get(0);
        raw[(hour - from_hour) as usize] = Some(row.get(1));
    }
    Ok(read::count_latency(
        measured,
        threshold_ms,
        from_hour,
        &rollups,
        &raw,
    ))
}

/// The whole minutes of `[from_ms, to_ms)` in which a location probed the service and every
/// probe failed (as `store::read::down_minutes` for SQLite).
pub fn down_minutes(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> Result<Intervals, postgres::Error> {
    if from_ms >= to_ms {
        return Ok(Intervals::empty());
    }
    let (from_hour, to_hour) = (chunk::hour_of(from_ms), chunk::hour_of(to_ms - 1));
    let mut masks: HashMap<i64, u64> = HashMap::new();
    for row in client.rows(
        "SELECT hour, minutes_all_failed FROM rollup_hour
         WHERE service = $1 AND location = $2 AND hour BETWEEN $3 AND $4
           AND minutes_all_failed != 0",
        &[&service, &location, &from_hour, &to_hour],
    )? {
        masks.insert(row.get(0), row.get::<_, i64>(1) as u64);
    }
    let rolled_until: i64 = client
        .row_opt(
            "SELECT value FROM meta WHERE location = $1 AND key = 'rolled_until_hour'",
            &[&location],
        )?
        .map_or(i64::MIN, |r| r.get(0));
    for row in client.rows(
        "SELECT hour, data FROM outcome_chunk
         WHERE service = $1 AND location = $2 AND hour BETWEEN $3 AND $4",
        &[&service, &location, &from_hour.max(rolled_until), &to_hour],
    )? {
        let hour: i64 = row.get(0);
        let data: &[u8] = row.get(1);
        let rollup = HourRollup::from_outcomes(hour * chunk::HOUR_MS, &chunk::decode(hour, data));
        masks.insert(hour, rollup.minutes_all_failed);
    }
    Ok(read::minutes_of(&masks).clip(from_ms, to_ms))
}

/// When each of `locations` first probed the service (those that never did are left out).
pub fn first_outcomes(
    client: &mut impl Reader,
    locations: &[String],
    service: ServiceNum,
) -> Result<Vec<(String, i64)>, postgres::Error> {
    Ok(client
        .rows(
            "SELECT location, first_ms FROM service_location WHERE service = $1
             ORDER BY location",
            &[&service],
        )?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .filter(|(location, _)| locations.contains(location))
        .collect())
}

/// A location's own state of a service, as `store::read::service_status` for SQLite.
pub fn service_status(
    client: &mut impl Reader,
    location: &str,
    service: ServiceNum,
) -> Result<read::ServiceStatus, postgres::Error> {
    let last = latest_outcomes(client, location, service, 1)?.pop();
    let last_failure = match &last {
        Some(o) if !o.is_ok() => client
            .row_opt(
                "SELECT reason, detail FROM failure
                 WHERE service = $1 AND location = $2 AND at_ms = $3",
                &[&service, &location, &o.at_ms],
            )?
            .map(|r| failure(r.get(0), r.get(1))),
        _ => None,
    };
    let last_recovery_ms: Option<i64> = client
        .row_opt(
            "SELECT max(end_ms) FROM incident WHERE service = $1 AND location = $2",
            &[&service, &location],
        )?
        .and_then(|r| r.get(0));
    let first_ms = client
        .row_opt(
            "SELECT first_ms FROM service_location WHERE service = $1 AND location = $2",
            &[&service, &location],
        )?
        .map(|r| r.get(0));
    Ok(read::ServiceStatus {
        open_incident: open_incident(client, location, service)?,
        last_recovery_ms,
        first_ms,
        last,
        last_failure,
    })
}

/// An open incident of one location, with that location's latest outcome (to tell a location
/// still probing from one that stopped).
#[derive(Debug, Clone)]
pub struct OpenAt {
    pub service: String,
    pub location: String,
    pub start_ms: i64,
    pub first_failure: Failure,
    pub last_ms: Option<i64>,
}

/// Every location's open incidents.
pub fn open_everywhere(client: &mut impl Reader) -> Result<Vec<OpenAt>, postgres::Error> {
    Ok(client
        .rows(
            "SELECT s.id, i.location, i.start_ms, i.reason, i.detail,
                    (SELECT c.last_ms FROM outcome_chunk c
                     WHERE c.service = i.service AND c.location = i.location
                     ORDER BY c.hour DESC LIMIT 1)
             FROM incident i JOIN service s ON s.num = i.service WHERE i.end_ms IS NULL",
            &[],
        )?
        .iter()
        .map(|r| OpenAt {
            service: r.get(0),
            location: r.get(1),
            start_ms: r.get(2),
            first_failure: failure(r.get(3), r.get(4)),
            last_ms: r.get(5),
        })
        .collect())
}

/// A service a report is about to read, for `preload`.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub id: &'a str,
    /// The service's interval and max gap.
    pub cadence: (i64, i64),
    /// The latency objective's threshold, if the service has one.
    pub threshold_ms: Option<u32>,
}

/// An incident of one location, as `incident_cause` and `ack_of` read it.
#[derive(Debug, Clone)]
struct LocationIncident {
    cause: Failure,
    ack: Option<Ack>,
}

/// What reports of many services over one span read, fetched in a few queries for all of them
/// (a report asks a dozen small questions of each service; PostgreSQL answers a few large ones
/// far faster). Reads inside the span are answered from it exactly as the single queries would
/// answer them; anything else still goes to the server.
#[derive(Debug, Default)]
pub struct Preloaded {
    span: (i64, i64),
    locations: Vec<String>,
    nums: HashMap<String, ServiceNum>,
    /// Each service's timeline at each location in view (in `locations`' order) over `span`.
    timelines: HashMap<ServiceNum, Vec<Timeline>>,
    /// Every location's incidents overlapping `span`, by service and start, in location order.
    incidents: HashMap<(ServiceNum, i64), Vec<LocationIncident>>,
    /// The acknowledgements a fleet keeps beside what alerts told (all of these services').
    fleet_acks: HashMap<(String, i64), Ack>,
    /// Per service with a latency objective: the threshold counted, and for each location in
    /// view each hour's probes and probes under the threshold from its rollup (from the span's
    /// first hour on; `None`: not rolled up).
    latency: RolledLatency,
    /// Each service's earliest raw chunk at each location in view (none: no raw outcomes).
    earliest_raw: HashMap<ServiceNum, Vec<Option<i64>>>,
    /// The agreed exclusions in force overlapping `span`: service, contract, start, end.
    exclusions: Vec<(Option<String>, Option<String>, i64, i64)>,
}

/// What `rolled_latency` reads: per service, the threshold and each location's hours.
type RolledLatency = HashMap<ServiceNum, (u32, Vec<Vec<Option<(u64, u64)>>>)>;

/// Each hour's probes and probes under the service's threshold in `[from_hour, to_hour]`, from
/// the rollups of `services` (number and threshold) at `locations`.
fn rolled_latency(
    client: &mut impl Reader,
    locations: &[String],
    services: &[(ServiceNum, u32)],
    (from_hour, to_hour): (i64, i64),
) -> Result<RolledLatency, postgres::Error> {
    let hours = (to_hour - from_hour + 1).max(0) as usize;
    let mut rolled: RolledLatency = services
        .iter()
        .map(|&(num, threshold)| (num, (threshold, vec![vec![None; hours]; locations.len()])))
        .collect();
    if services.is_empty() || hours == 0 {
        return Ok(rolled);
    }
    let nums: Vec<ServiceNum> = services.iter().map(|(num, _)| *num).collect();
    // One index range per service and location (with the services as `= ANY($1)` the planner
    // reads the whole table instead), each range sent as one row of arrays (a month is 720
    // rows of it otherwise).
    for row in client.rows(
        "SELECT s.num, l.location, r.hours, r.probes, r.latency
         FROM unnest($1::bigint[]) AS s(num) CROSS JOIN unnest($2::text[]) AS l(location)
         JOIN LATERAL (SELECT array_agg(hour) AS hours, array_agg(probes) AS probes,
                              array_agg(latency) AS latency
                       FROM rollup_hour
                       WHERE service = s.num AND location = l.location
                         AND hour BETWEEN $3 AND $4) AS r ON r.hours IS NOT NULL",
        &[&nums, &locations, &from_hour, &to_hour],
    )? {
        let num: ServiceNum = row.get(0);
        let location: &str = row.get(1);
        let (Some((threshold, per_location)), Some(at)) = (
            rolled.get_mut(&num),
            locations.iter().position(|l| l == location),
        ) else {
            continue;
        };
        let (hour, probes, latency): (Vec<i64>, Vec<i64>, Vec<&[u8]>) =
            (row.get(2), row.get(3), row.get(4));
        for ((hour, probes), latency) in hour.into_iter().zip(probes).zip(latency) {
            let under = Histogram::encoded_count_below(latency, *threshold);
            per_location[at][(hour - from_hour) as usize] = Some((probes as u64, under));
        }
    }
    Ok(rolled)
}

/// Reads what reports of `wanted` over `span` need, at `locations`, in a few queries (services
/// the store does not know are left out); `helper`, a second connection, shares the largest.
pub fn preload(
    client: &mut impl Reader,
    helper: Option<&mut postgres::Client>,
    locations: &[String],
    wanted: &[Wanted<'_>],
    (from_ms, to_ms): (i64, i64),
) -> Result<Preloaded, postgres::Error> {
    let ids: Vec<&str> = wanted.iter().map(|w| w.id).collect();
    let mut p = Preloaded {
        span: (from_ms, to_ms),
        locations: locations.to_vec(),
        ..Preloaded::default()
    };
    for row in client.rows("SELECT id, num FROM service WHERE id = ANY($1)", &[&ids])? {
        p.nums.insert(row.get(0), row.get(1));
    }
    let wanted: Vec<(ServiceNum, &Wanted<'_>)> = wanted
        .iter()
        .filter_map(|w| Some((p.num(w.id)?, w)))
        .collect();
    let counted: Vec<(ServiceNum, u32)> = wanted
        .iter()
        .filter_map(|(num, w)| Some((*num, w.threshold_ms?)))
        .collect();
    let hours = (chunk::hour_of(from_ms), chunk::hour_of(to_ms - 1));
    // PostgreSQL runs each query on one core: a second connection, if given, reads half the
    // rollups (the bulk of a month's report) meanwhile.
    let (mine, theirs) = if helper.is_some() {
        counted.split_at(counted.len() / 2)
    } else {
        (&counted[..], &counted[..0])
    };
    std::thread::scope(|scope| {
        let theirs =
            helper.map(|h| scope.spawn(move || rolled_latency(h, locations, theirs, hours)));
        read_histories(client, &mut p, locations, &wanted, (from_ms, to_ms))?;
        p.latency = rolled_latency(client, locations, mine, hours)?;
        if let Some(theirs) = theirs {
            p.latency
                .extend(theirs.join().expect("the rollup reading thread panicked")?);
        }
        Ok(p)
    })
}

/// Into `p`: the timelines, causes and acknowledgements of `wanted` (numbered), the
/// acknowledgements kept beside alerts, the agreed exclusions, and each service's earliest raw
/// hour (`preload`'s queries but the rollups').
fn read_histories(
    client: &mut impl Reader,
    p: &mut Preloaded,
    locations: &[String],
    wanted: &[(ServiceNum, &Wanted<'_>)],
    (from_ms, to_ms): (i64, i64),
) -> Result<(), postgres::Error> {
    let nums: Vec<ServiceNum> = wanted.iter().map(|(num, _)| *num).collect();
    let ids: Vec<&str> = wanted.iter().map(|(_, w)| w.id).collect();
    for (num, w) in wanted {
        let (interval_ms, max_gap_ms) = w.cadence;
        let blank = Timeline {
            interval_ms,
            max_gap_ms,
            ..Timeline::default()
        };
        p.timelines.insert(*num, vec![blank; locations.len()]);
    }
    // kind 0: incidents (every location's, for causes and acknowledgements), 1: no-data
    // stretches, 2: blips, 3: first outcome, 4: latest outcome and the end of the latest
    // rolled-up hour (the latest outcome once raw ones are gone).
    let rows = client.rows(
        "SELECT service, location, 0, start_ms, end_ms, reason, detail, ack_ms, ack_by, ack_note
         FROM incident
         WHERE service = ANY($1) AND start_ms < $4 AND (end_ms IS NULL OR end_ms > $3)
         UNION ALL
         SELECT service, location, 1, start_ms, end_ms, NULL, NULL, NULL, NULL, NULL
         FROM no_data
         WHERE service = ANY($1) AND location = ANY($2) AND start_ms < $4 AND end_ms > $3
         UNION ALL
         SELECT service, location, 2, start_ms, NULL, NULL, NULL, NULL, NULL, NULL FROM blip
         WHERE service = ANY($1) AND location = ANY($2) AND start_ms >= $3 AND start_ms < $4
         UNION ALL
         SELECT service, location, 3, first_ms, NULL, NULL, NULL, NULL, NULL, NULL
         FROM service_location WHERE service = ANY($1) AND location = ANY($2)
         UNION ALL
         SELECT s.num, l.location, 4,
                (SELECT c.last_ms FROM outcome_chunk c
                 WHERE c.service = s.num AND c.location = l.location
                 ORDER BY c.hour DESC LIMIT 1),
                (SELECT (max(r.hour) + 1) * 3600000 - 1 FROM rollup_hour r
                 WHERE r.service = s.num AND r.location = l.location),
                NULL, NULL, NULL, NULL, NULL
         FROM unnest($1::bigint[]) AS s(num) CROSS JOIN unnest($2::text[]) AS l(location)
         ORDER BY 3, 1, 4, 2",
        &[&nums, &locations, &from_ms, &to_ms],
    )?;
    for row in &rows {
        let num: ServiceNum = row.get(0);
        let location: &str = row.get(1);
        let kind: i32 = row.get(2);
        let (start, end): (Option<i64>, Option<i64>) = (row.get(3), row.get(4));
        if let (0, Some(start)) = (kind, start) {
            let ack = row.get::<_, Option<i64>>(7).map(|at_ms| Ack {
                at_ms,
                by: row.get(8),
                note: row.get(9),
            });
            let cause = failure(row.get(5), row.get(6));
            p.incidents
                .entry((num, start))
                .or_default()
                .push(LocationIncident { cause, ack });
        }
        let Some(at) = locations.iter().position(|l| l == location) else {
            continue;
        };
        if let Some(timelines) = p.timelines.get_mut(&num) {
            add_row(&mut timelines[at], kind, start, end);
        }
    }
    for row in client.rows(
        "SELECT service, start_ms, ack_ms, ack_by, ack_note FROM alert_incident
         WHERE service = ANY($1) AND ack_ms IS NOT NULL",
        &[&ids],
    )? {
        let ack = Ack {
            at_ms: row.get(2),
            by: row.get(3),
            note: row.get(4),
        };
        p.fleet_acks.insert((row.get(0), row.get(1)), ack);
    }
    for row in client.rows(
        "SELECT service, contract, start_ms, end_ms FROM exclusion
         WHERE revoked_ms IS NULL AND end_ms > $1 AND start_ms < $2 ORDER BY start_ms",
        &[&from_ms, &to_ms],
    )? {
        p.exclusions
            .push((row.get(0), row.get(1), row.get(2), row.get(3)));
    }
    for row in client.rows(
        "SELECT s.num, l.location,
                (SELECT c.hour FROM outcome_chunk c
                 WHERE c.service = s.num AND c.location = l.location ORDER BY c.hour LIMIT 1)
         FROM unnest($1::bigint[]) AS s(num) CROSS JOIN unnest($2::text[]) AS l(location)",
        &[&nums, &locations],
    )? {
        let num: ServiceNum = row.get(0);
        let location: &str = row.get(1);
        if let Some(at) = locations.iter().position(|l| l == location) {
            p.earliest_raw
                .entry(num)
                .or_insert_with(|| vec![None; locations.len()])[at] = row.get(2);
        }
    }
    Ok(())
}

impl Preloaded {
    /// The number of service `id`, if preloaded.
    pub fn num(&self, id: &str) -> Option<ServiceNum> {
        self.nums.get(id).copied()
    }

    fn covers(&self, locations: &[String], from_ms: i64, to_ms: i64) -> bool {
        self.locations == locations && self.span.0 <= from_ms && to_ms <= self.span.1
    }

    /// Each location's timeline of a service for `[from_ms, to_ms)`, if inside what was read:
    /// the rows of the preloaded span that the narrower queries would have answered.
    pub fn timelines(
        &self,
        locations: &[String],
        num: ServiceNum,
        (from_ms, to_ms): (i64, i64),
    ) -> Option<Vec<Timeline>> {
        if !self.covers(locations, from_ms, to_ms) {
            return None;
        }
        let narrowed = |t: &Timeline| Timeline {
            incidents: t
                .incidents
                .iter()
                .copied()
                .filter(|&(s, e)| s < to_ms && e.is_none_or(|e| e > from_ms))
                .collect(),
            no_data: t
                .no_data
                .iter()
                .copied()
                .filter(|&(s, e)| s < to_ms && e > from_ms)
                .collect(),
            blips: t
                .blips
                .iter()
                .copied()
                .filter(|s| (from_ms..to_ms).contains(s))
                .collect(),
            ..t.clone()
        };
        Some(self.timelines.get(&num)?.iter().map(narrowed).collect())
    }

    /// The spans of the agreed exclusions in force for `service` of `contract` overlapping
    /// `[from_ms, to_ms)`, if inside what was read (as `store::exclusions::active_spans`).
    pub fn exclusion_spans(
        &self,
        service: &str,
        contract: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Option<Vec<(i64, i64)>> {
        if from_ms < self.span.0 || to_ms > self.span.1 {
            return None;
        }
        Some(
            self.exclusions
                .iter()
                .filter(|(s, c, start, end)| {
                    *end > from_ms
                        && *start < to_ms
                        && (s.as_deref() == Some(service) || c.as_deref() == Some(contract))
                })
                .map(|&(_, _, start, end)| (start, end))
                .collect(),
        )
    }

    /// The first failure of the incident (of any location, the first by name) that started at
    /// `start_ms`, if it was read.
    pub fn cause(&self, num: ServiceNum, start_ms: i64) -> Option<Failure> {
        Some(self.incidents.get(&(num, start_ms))?.first()?.cause.clone())
    }

    /// The acknowledgement of service `id`'s incident that started at `start_ms`: `None` when
    /// that incident was not read, `Some(None)` when it was and nobody acknowledged it.
    pub fn ack(&self, id: &str, start_ms: i64) -> Option<Option<Ack>> {
        if let Some(ack) = self.fleet_acks.get(&(id.to_string(), start_ms)) {
            return Some(Some(ack.clone()));
        }
        let seen = self.incidents.get(&(self.num(id)?, start_ms))?;
        Some(
            seen.iter()
                .filter_map(|i| i.ack.clone())
                .min_by_key(|a| a.at_ms),
        )
    }

    /// Probes under `threshold_ms` and all probes the locations in view started in `measured`
    /// time, if the rollups were read for that threshold: raw outcomes are fetched only for the
    /// hours the rollups cannot answer (partly measured, or not rolled up yet).
    pub fn latency_counts(
        &self,
        client: &mut impl Reader,
        locations: &[String],
        num: ServiceNum,
        measured: &Intervals,
        threshold_ms: u32,
    ) -> Option<Result<(u64, u64), postgres::Error>> {
        let (Some(&(first, _)), Some(&(_, last))) =
            (measured.spans().first(), measured.spans().last())
        else {
            return Some(Ok((0, 0)));
        };
        if !self.covers(locations, first, last) {
            return None;
        }
        let (counted, per_location) = self.latency.get(&num)?;
        if *counted != threshold_ms {
            return None;
        }
        let (from_hour, to_hour) = (chunk::hour_of(first), chunk::hour_of(last - 1));
        let hours = (to_hour - from_hour + 1).max(0) as usize;
        let skip = (from_hour - chunk::hour_of(self.span.0)) as usize;
        let (mut good, mut total) = (0, 0);
        let earliest = self.earliest_raw.get(&num)?;
        for ((location, rolled), earliest_raw) in locations.iter().zip(per_location).zip(earliest) {
            let rollups = &rolled[skip..skip + hours];
            let need_raw: Vec<i64> = (from_hour..=to_hour)
                .zip(rollups)
                .filter(|&(h, rollup)| {
                    let inside = measured.overlap(h * chunk::HOUR_MS, (h + 1) * chunk::HOUR_MS);
                    inside > 0
                        && (inside < chunk::HOUR_MS || rollup.is_none())
                        && earliest_raw.is_some_and(|earliest| h >= earliest)
                })
                .map(|(h, _)| h)
                .collect();
            let mut raw: Vec<Option<Vec<u8>>> = vec![None; hours];
            if !need_raw.is_empty() {
                let rows = match client.rows(
                    "SELECT hour, data FROM outcome_chunk
                     WHERE service = $1 AND location = $2 AND hour = ANY($3)",
                    &[&num, location, &need_raw],
                ) {
                    Ok(rows) => rows,
                    Err(e) => return Some(Err(e)),
                };
                for row in rows {
                    let hour: i64 = row.get(0);
                    raw[(hour - from_hour) as usize] = Some(row.get(1));
                }
            }
            let (g, t) = read::count_latency(measured, threshold_ms, from_hour, rollups, &raw);
            good += g;
            total += t;
        }
        Some(Ok((good, total)))
    }
}
