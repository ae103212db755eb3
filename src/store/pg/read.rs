//! Reading one location's history from PostgreSQL: what a restarted daemon resumes from, and
//! the raw outcomes and events a report or test reads.

use std::collections::HashMap;

use postgres::GenericClient;

use crate::probe::{Failure, Reason};
use crate::sla::Intervals;
use crate::sla::availability::Timeline;
use crate::sla::quorum::{self, LocationView, Verdict};
use crate::sla::tracker::{OpenIncident, Resume};
use crate::store::ServiceNum;
use crate::store::chunk::{self, RawOutcome};
use crate::store::read;
use crate::store::rollup::{Histogram, HourRollup};

/// The latest `n` outcomes of a service at a location, oldest first.
pub fn latest_outcomes(
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
    n: usize,
) -> Result<Vec<RawOutcome>, postgres::Error> {
    let mut newest_first: Vec<RawOutcome> = Vec::new();
    let mut before = i64::MAX;
    while newest_first.len() < n {
        let Some(row) = client.query_opt(
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
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<RawOutcome>, postgres::Error> {
    let rows = client.query(
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
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
) -> Result<Option<OpenIncident>, postgres::Error> {
    let row = client.query_opt(
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
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
) -> Result<Vec<(i64, Option<i64>)>, postgres::Error> {
    let rows = client.query(
        "SELECT start_ms, end_ms FROM incident WHERE service = $1 AND location = $2
         ORDER BY start_ms",
        &[&service, &location],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What a location's state machine for a service needs to continue where it stopped.
pub fn resume(
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
    recent: usize,
) -> Result<Resume, postgres::Error> {
    let outcomes = latest_outcomes(client, location, service, recent + 1)?;
    let had_history = outcomes.len() > recent
        || client
            .query_opt(
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
                    .query_opt(
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
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
    span: (i64, i64),
    interval_ms: i64,
    max_gap_ms: i64,
) -> Result<Timeline, postgres::Error> {
    let (from_ms, to_ms) = span;
    let pairs = |rows: Vec<postgres::Row>| -> Vec<(i64, i64)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let incidents = client
        .query(
            "SELECT start_ms, end_ms FROM incident
             WHERE service = $1 AND location = $2 AND start_ms < $4
               AND (end_ms IS NULL OR end_ms > $3)
             ORDER BY start_ms",
            &[&service, &location, &from_ms, &to_ms],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let no_data = pairs(client.query(
        "SELECT start_ms, end_ms FROM no_data
         WHERE service = $1 AND location = $2 AND start_ms < $4 AND end_ms > $3
         ORDER BY start_ms",
        &[&service, &location, &from_ms, &to_ms],
    )?);
    let blips = client
        .query(
            "SELECT start_ms FROM blip
             WHERE service = $1 AND location = $2 AND start_ms >= $3 AND start_ms < $4
             ORDER BY start_ms",
            &[&service, &location, &from_ms, &to_ms],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let first_ms = client
        .query_opt(
            "SELECT first_ms FROM service_location WHERE service = $1 AND location = $2",
            &[&service, &location],
        )?
        .map(|r| r.get(0));
    let last_ms = match latest_outcomes(client, location, service, 1)?.pop() {
        Some(o) => Some(o.at_ms),
        None => client
            .query_one(
                "SELECT max(hour) FROM rollup_hour WHERE service = $1 AND location = $2",
                &[&service, &location],
            )?
            .get::<_, Option<i64>>(0)
            .map(|hour| (hour + 1) * chunk::HOUR_MS - 1),
    };
    Ok(Timeline {
        incidents,
        no_data,
        blips,
        first_ms,
        last_ms,
        interval_ms,
        max_gap_ms,
    })
}

/// The fleet's verdict on a service for `[from_ms, to_ms)` as of `now_ms` (DESIGN.md §6.3):
/// every expected location's own timeline (one that never wrote is without data throughout)
/// combined under `quorum`. `cadence` is the service's interval and max gap.
pub fn verdict(
    client: &mut impl GenericClient,
    locations: &[String],
    quorum: usize,
    service: ServiceNum,
    span: (i64, i64),
    now_ms: i64,
    (interval_ms, max_gap_ms): (i64, i64),
) -> Result<Verdict, postgres::Error> {
    let mut timelines = Vec::with_capacity(locations.len());
    for location in locations {
        timelines.push(timeline(
            client,
            location,
            service,
            span,
            interval_ms,
            max_gap_ms,
        )?);
    }
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
    client: &mut impl GenericClient,
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
    for row in client.query(
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
    for row in client.query(
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
    client: &mut impl GenericClient,
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
    for row in client.query(
        "SELECT hour, minutes_all_failed FROM rollup_hour
         WHERE service = $1 AND location = $2 AND hour BETWEEN $3 AND $4
           AND minutes_all_failed != 0",
        &[&service, &location, &from_hour, &to_hour],
    )? {
        masks.insert(row.get(0), row.get::<_, i64>(1) as u64);
    }
    let rolled_until: i64 = client
        .query_opt(
            "SELECT value FROM meta WHERE location = $1 AND key = 'rolled_until_hour'",
            &[&location],
        )?
        .map_or(i64::MIN, |r| r.get(0));
    for row in client.query(
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
    client: &mut impl GenericClient,
    locations: &[String],
    service: ServiceNum,
) -> Result<Vec<(String, i64)>, postgres::Error> {
    Ok(client
        .query(
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
    client: &mut impl GenericClient,
    location: &str,
    service: ServiceNum,
) -> Result<read::ServiceStatus, postgres::Error> {
    let last = latest_outcomes(client, location, service, 1)?.pop();
    let last_failure = match &last {
        Some(o) if !o.is_ok() => client
            .query_opt(
                "SELECT reason, detail FROM failure
                 WHERE service = $1 AND location = $2 AND at_ms = $3",
                &[&service, &location, &o.at_ms],
            )?
            .map(|r| failure(r.get(0), r.get(1))),
        _ => None,
    };
    let last_recovery_ms: Option<i64> = client
        .query_one(
            "SELECT max(end_ms) FROM incident WHERE service = $1 AND location = $2",
            &[&service, &location],
        )?
        .get(0);
    let first_ms = client
        .query_opt(
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
pub fn open_everywhere(client: &mut impl GenericClient) -> Result<Vec<OpenAt>, postgres::Error> {
    Ok(client
        .query(
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
