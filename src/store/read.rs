//! Read-side queries: resuming state at start, and what `status` shows. Readers open their
//! own connections; WAL lets them read while the writer writes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::chunk::{self, HOUR_MS, RawOutcome};
use super::rollup::{Histogram, HourRollup};
use super::{ServiceNum, StoreError};
use crate::probe::{Failure, Reason};
use crate::sla::Intervals;
use crate::sla::availability::Timeline;
use crate::sla::tracker::{OpenIncident, Resume};

/// Opens the database read-only; it must exist (the daemon creates it).
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The query planner stability guarantee: a cached statement keeps its plan whatever values
    // are bound, instead of being prepared again for each new binding (a report binds a new
    // service to the same few statements a thousand times).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// The number of a service id, if it was ever registered.
pub fn service_num(conn: &Connection, id: &str) -> rusqlite::Result<Option<ServiceNum>> {
    conn.query_row("SELECT num FROM service WHERE id = ?1", [id], |r| r.get(0))
        .optional()
}

/// When the service `id` was first probed, if it ever was.
pub fn first_outcome_ms(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT first_ms FROM service WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// When the latest stored outcome of a service was, as far as the store knows: the latest raw
/// outcome, or, for an hour whose raw outcomes are past the retention, the end of its rollup
/// (its outcomes are gone but the hour is taken). A backfill must come after it.
pub fn latest_stored_ms(conn: &Connection, service: ServiceNum) -> rusqlite::Result<Option<i64>> {
    let raw = latest_outcomes(conn, service, 1)?.pop().map(|o| o.at_ms);
    let expired_hour: Option<i64> = conn.query_row(
        "SELECT MAX(hour) FROM rollup_hour r WHERE service = ?1 AND NOT EXISTS
             (SELECT 1 FROM outcome_chunk c WHERE c.service = r.service AND c.hour = r.hour)",
        [service],
        |r| r.get(0),
    )?;
    let rolled = expired_hour.map(|h| (h + 1) * HOUR_MS - 1);
    Ok(raw.max(rolled))
}

/// The latest `n` raw outcomes of a service, oldest first.
pub fn latest_outcomes(
    conn: &Connection,
    service: ServiceNum,
    n: usize,
) -> rusqlite::Result<Vec<RawOutcome>> {
    let mut statement = conn.prepare_cached(
        "SELECT hour, data FROM outcome_chunk WHERE service = ?1 ORDER BY hour DESC",
    )?;
    let mut rows = statement.query([service])?;
    let mut newest_first: Vec<RawOutcome> = Vec::new();
    while newest_first.len() < n {
        let Some(row) = rows.next()? else { break };
        let hour: i64 = row.get(0)?;
        let data: Vec<u8> = row.get(1)?;
        newest_first.extend(chunk::decode(hour, &data).into_iter().rev());
    }
    newest_first.truncate(n);
    newest_first.reverse();
    Ok(newest_first)
}

/// A failure from a row whose columns `first` and `first + 1` are reason and detail.
fn failure_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Failure> {
    let reason: String = row.get(first)?;
    Ok(Failure::new(
        Reason::parse(&reason).unwrap_or(Reason::Internal),
        row.get::<_, String>(first + 1)?,
    ))
}

/// The failure reason and detail recorded for an outcome.
pub fn failure_at(
    conn: &Connection,
    service: ServiceNum,
    at_ms: i64,
) -> rusqlite::Result<Option<Failure>> {
    conn.prepare_cached("SELECT reason, detail FROM failure WHERE service = ?1 AND at_ms = ?2")?
        .query_row(params![service, at_ms], |r| failure_from_row(r, 0))
        .optional()
}

/// The open incident of a service, if any.
pub fn open_incident(
    conn: &Connection,
    service: ServiceNum,
) -> rusqlite::Result<Option<OpenIncident>> {
    conn.prepare_cached(
        "SELECT start_ms, reason, detail FROM incident WHERE service = ?1 AND end_ms IS NULL",
    )?
    .query_row([service], |r| {
        Ok(OpenIncident {
            start_ms: r.get(0)?,
            first_failure: failure_from_row(r, 1)?,
        })
    })
    .optional()
}

/// What a service's state machine needs to continue where it stopped.
pub fn resume(conn: &Connection, service: ServiceNum, recent: usize) -> rusqlite::Result<Resume> {
    let outcomes = latest_outcomes(conn, service, recent + 1)?;
    let had_history = outcomes.len() > recent
        || conn
            .prepare_cached("SELECT 1 FROM rollup_hour WHERE service = ?1 LIMIT 1")?
            .exists([service])?;
    let skip = outcomes.len().saturating_sub(recent);
    let mut with_failures = Vec::with_capacity(recent);
    for o in &outcomes[skip..] {
        let failure = match o.reason {
            None => None,
            Some(reason) => Some(
                failure_at(conn, service, o.at_ms)?
                    .unwrap_or_else(|| Failure::new(reason, "(detail not kept)")),
            ),
        };
        with_failures.push((o.at_ms, failure));
    }
    Ok(Resume {
        open_incident: open_incident(conn, service)?,
        recent: with_failures,
        had_history,
    })
}

/// One line of `slaprobe status`.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub open_incident: Option<OpenIncident>,
    /// End of the latest closed incident.
    pub last_recovery_ms: Option<i64>,
    pub first_ms: Option<i64>,
    pub last: Option<RawOutcome>,
    pub last_failure: Option<Failure>,
}

pub fn service_status(conn: &Connection, service: ServiceNum) -> rusqlite::Result<ServiceStatus> {
    let last = latest_outcomes(conn, service, 1)?.pop();
    let last_failure = match &last {
        Some(o) if !o.is_ok() => failure_at(conn, service, o.at_ms)?,
        _ => None,
    };
    let last_recovery_ms: Option<i64> = conn
        .prepare_cached("SELECT max(end_ms) FROM incident WHERE service = ?1")?
        .query_row([service], |r| r.get(0))?;
    let first_ms: Option<i64> = conn
        .prepare_cached("SELECT first_ms FROM service WHERE num = ?1")?
        .query_row([service], |r| r.get(0))?;
    Ok(ServiceStatus {
        open_incident: open_incident(conn, service)?,
        last_recovery_ms,
        first_ms,
        last,
        last_failure,
    })
}

/// What the SLA maths needs of a service for `[from_ms, to_ms)`: incidents and no-data
/// stretches overlapping it, blips in it, the first and latest outcome.
pub fn timeline(
    conn: &Connection,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
    interval_ms: i64,
    max_gap_ms: i64,
) -> rusqlite::Result<Timeline> {
    let incidents = conn
        .prepare_cached(
            "SELECT start_ms, end_ms FROM incident
             WHERE service = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)
             ORDER BY start_ms",
        )?
        .query_map(params![service, from_ms, to_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let no_data = conn
        .prepare_cached(
            "SELECT start_ms, end_ms FROM no_data
             WHERE service = ?1 AND start_ms < ?3 AND end_ms > ?2",
        )?
        .query_map(params![service, from_ms, to_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let blips = conn
        .prepare_cached(
            "SELECT start_ms FROM blip WHERE service = ?1 AND start_ms >= ?2 AND start_ms < ?3",
        )?
        .query_map(params![service, from_ms, to_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let first_ms: Option<i64> = conn
        .prepare_cached("SELECT first_ms FROM service WHERE num = ?1")?
        .query_row([service], |r| r.get(0))
        .optional()?
        .flatten();
    let last_ms = match latest_outcomes(conn, service, 1)?.pop() {
        Some(o) => Some(o.at_ms),
        None => conn
            .prepare_cached("SELECT max(hour) FROM rollup_hour WHERE service = ?1")?
            .query_row([service], |r| r.get::<_, Option<i64>>(0))?
            .map(|hour| (hour + 1) * HOUR_MS - 1),
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

/// Probes that succeeded under `threshold_ms`, and all probes, started in `measured` time.
///
/// Whole measured hours come from the rollups (exact: thresholds are histogram edges); hours
/// partly measured, or not rolled up yet, from the raw outcomes. A partly measured hour whose
/// raw outcomes are past the retention counts whole, from its rollup.
pub fn latency_counts(
    conn: &Connection,
    service: ServiceNum,
    measured: &Intervals,
    threshold_ms: u32,
) -> rusqlite::Result<(u64, u64)> {
    let (Some(&(first, _)), Some(&(_, last))) = (measured.spans().first(), measured.spans().last())
    else {
        return Ok((0, 0));
    };
    let (from_hour, to_hour) = (chunk::hour_of(first), chunk::hour_of(last - 1));
    // Per hour of the span (by offset from `from_hour`): the rollup's (probes, probes under the
    // threshold) and the raw outcomes, where stored.
    let hours = (to_hour - from_hour + 1).max(0) as usize;
    let mut rollups: Vec<Option<(u64, u64)>> = vec![None; hours];
    let mut statement = conn.prepare_cached(
        "SELECT hour, probes, latency FROM rollup_hour WHERE service = ?1 AND hour BETWEEN ?2 AND ?3",
    )?;
    let mut rows = statement.query(params![service, from_hour, to_hour])?;
    while let Some(row) = rows.next()? {
        let hour: i64 = row.get(0)?;
        let probes = row.get::<_, i64>(1)? as u64;
        let good = Histogram::encoded_count_below(row.get_ref(2)?.as_blob()?, threshold_ms);
        rollups[(hour - from_hour) as usize] = Some((probes, good));
    }
    let mut statement = conn.prepare_cached(
        "SELECT hour, data FROM outcome_chunk WHERE service = ?1 AND hour BETWEEN ?2 AND ?3",
    )?;
    let mut raw: Vec<Option<Vec<u8>>> = vec![None; hours];
    let mut rows = statement.query(params![service, from_hour, to_hour])?;
    while let Some(row) = rows.next()? {
        let hour: i64 = row.get(0)?;
        raw[(hour - from_hour) as usize] = Some(row.get(1)?);
    }
    Ok(count_latency(
        measured,
        threshold_ms,
        from_hour,
        &rollups,
        &raw,
    ))
}

/// The latency counts of `measured` from one location's hours `from_hour..` (offsets into
/// `rollups`, each hour's (probes, probes under the threshold), and `raw`, its chunk): whole
/// measured hours from the rollup, others from the raw outcomes where kept.
pub(super) fn count_latency(
    measured: &Intervals,
    threshold_ms: u32,
    from_hour: i64,
    rollups: &[Option<(u64, u64)>],
    raw: &[Option<Vec<u8>>],
) -> (u64, u64) {
    let to_hour = from_hour + rollups.len() as i64 - 1;
    let (mut good, mut total) = (0u64, 0u64);
    let threshold_us = u64::from(threshold_ms) * 1000;
    for hour in from_hour..=to_hour {
        let inside = measured.overlap(hour * HOUR_MS, (hour + 1) * HOUR_MS);
        if inside == 0 {
            continue;
        }
        let whole = inside == HOUR_MS;
        let at = (hour - from_hour) as usize;
        match (whole, &rollups[at], &raw[at]) {
            (true, Some((probes, under)), _) | (false, Some((probes, under)), None) => {
                good += under;
                total += probes;
            }
            (_, _, Some(data)) => {
                for o in chunk::decode(hour, data) {
                    if measured
                        .spans()
                        .iter()
                        .any(|(s, e)| *s <= o.at_ms && o.at_ms < *e)
                    {
                        total += 1;
                        if o.is_ok() && u64::from(o.latency_us) < threshold_us {
                            good += 1;
                        }
                    }
                }
            }
            (_, None, None) => {}
        }
    }
    (good, total)
}

/// The first failure (reason, detail) of the incident that started at `start_ms`, if recorded.
pub fn incident_cause(
    conn: &Connection,
    service: ServiceNum,
    start_ms: i64,
) -> rusqlite::Result<Option<Failure>> {
    conn.prepare_cached("SELECT reason, detail FROM incident WHERE service = ?1 AND start_ms = ?2")?
        .query_row(params![service, start_ms], |r| failure_from_row(r, 0))
        .optional()
}

/// The whole minutes of `[from_ms, to_ms)` in which the service was probed and every probe
/// failed: from the hourly rollups' minute masks, or the raw outcomes for hours not rolled up.
pub fn down_minutes(
    conn: &Connection,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Intervals> {
    if from_ms >= to_ms {
        return Ok(Intervals::empty());
    }
    let (from_hour, to_hour) = (chunk::hour_of(from_ms), chunk::hour_of(to_ms - 1));
    let mut masks: HashMap<i64, u64> = HashMap::new();
    let mut statement = conn.prepare_cached(
        "SELECT hour, minutes_all_failed FROM rollup_hour
         WHERE service = ?1 AND hour BETWEEN ?2 AND ?3 AND minutes_all_failed != 0",
    )?;
    let mut rows = statement.query(params![service, from_hour, to_hour])?;
    while let Some(row) = rows.next()? {
        masks.insert(row.get(0)?, row.get::<_, i64>(1)? as u64);
    }
    let rolled_until: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'rolled_until_hour'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(i64::MIN);
    let mut statement = conn.prepare_cached(
        "SELECT hour, data FROM outcome_chunk WHERE service = ?1 AND hour BETWEEN ?2 AND ?3",
    )?;
    let mut rows = statement.query(params![service, from_hour.max(rolled_until), to_hour])?;
    while let Some(row) = rows.next()? {
        let hour: i64 = row.get(0)?;
        let data: Vec<u8> = row.get(1)?;
        let rollup = HourRollup::from_outcomes(hour * HOUR_MS, &chunk::decode(hour, &data));
        masks.insert(hour, rollup.minutes_all_failed);
    }
    Ok(minutes_of(&masks).clip(from_ms, to_ms))
}

/// The minutes set in each hour's mask (bit m: minute m of that hour).
pub(super) fn minutes_of(masks: &HashMap<i64, u64>) -> Intervals {
    let mut spans = Vec::new();
    for (&hour, &mask) in masks {
        for minute in 0..60 {
            if mask & (1 << minute) != 0 {
                let start = hour * HOUR_MS + minute * 60_000;
                spans.push((start, start + 60_000));
            }
        }
    }
    Intervals::from_spans(spans)
}

/// The first failure recorded in `[from_ms, to_ms)`.
pub fn first_failure_in(
    conn: &Connection,
    service: ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Option<Failure>> {
    conn.prepare_cached(
        "SELECT reason, detail FROM failure WHERE service = ?1 AND at_ms >= ?2 AND at_ms < ?3
         ORDER BY at_ms LIMIT 1",
    )?
    .query_row(params![service, from_ms, to_ms], |r| failure_from_row(r, 0))
    .optional()
}
