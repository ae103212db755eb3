//! What `slaprobe status` and `/api/v1/services` show of a service: its state, since when, the
//! last outcome, who acknowledged its open incident, and the month so far with its error
//! budget.

use serde::Serialize;

use crate::config::{self, Config};
use crate::store::db::{Conn, DbError};
use crate::store::history;
use crate::store::read::ServiceStatus;

/// One service as `status` shows it.
#[derive(Debug, Serialize)]
pub struct StatusLine {
    pub service: String,
    pub contract: String,
    pub state: &'static str,
    pub since: Option<String>,
    pub last: Option<LastOutcome>,
    /// This calendar month so far, in the contract's zone.
    pub month: Option<MonthToDate>,
    /// Who took up the open incident, and when (`slaprobe ack`).
    pub acknowledged: Option<Acknowledged>,
    /// On a fleet's PostgreSQL: each location's own view (the state above is the verdict).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<LocationState>,
}

/// One location's own view of a service.
#[derive(Debug, Serialize)]
pub struct LocationState {
    pub location: String,
    pub state: &'static str,
    pub since: Option<String>,
    pub last: Option<LastOutcome>,
}

#[derive(Debug, Serialize)]
pub struct Acknowledged {
    pub at: String,
    pub by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MonthToDate {
    pub availability: Option<f64>,
    pub downtime_s: f64,
    /// The month's error budget: (1 − target) × the month's covered time outside maintenance.
    pub budget_s: f64,
    pub budget_remaining_s: f64,
}

#[derive(Debug, Serialize)]
pub struct LastOutcome {
    pub at: String,
    pub ok: bool,
    pub latency_ms: f64,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// A service's line: state, since when, last outcome and the month so far.
pub fn line(
    conn: Conn<'_>,
    config: &Config,
    service: &config::Service,
    now_ms: i64,
) -> Result<StatusLine, DbError> {
    let mut line = status_only(conn, config, service, now_ms)?;
    line.month = Some(month_to_date(conn, config, service, now_ms)?);
    Ok(line)
}

fn status_only(
    conn: Conn<'_>,
    config: &Config,
    service: &config::Service,
    now_ms: i64,
) -> Result<StatusLine, DbError> {
    let mut line = StatusLine {
        service: service.id.clone(),
        contract: service.contract.clone(),
        state: "unknown",
        since: None,
        last: None,
        month: None,
        acknowledged: None,
        locations: Vec::new(),
    };
    let Some(subject) = history::subject(conn, config, service)? else {
        return Ok(line);
    };
    let status = history::service_status(conn, &subject, now_ms)?;
    let (state, since, last) = state_of(&status, service, now_ms);
    if state == "down"
        && let Some(incident) = &status.open_incident
    {
        line.acknowledged =
            history::ack_of(conn, &service.id, incident.start_ms)?.map(|ack| Acknowledged {
                at: crate::text::timestamp_to_second(ack.at_ms),
                by: ack.by,
            });
    }
    (line.state, line.since, line.last) = (state, since, last);
    for (location, own) in history::location_states(conn, &subject)? {
        let (state, since, last) = state_of(&own, service, now_ms);
        line.locations.push(LocationState {
            location,
            state,
            since,
            last,
        });
    }
    Ok(line)
}

/// State, since when, and the last outcome, from what the store says of a service.
fn state_of(
    s: &ServiceStatus,
    service: &config::Service,
    now_ms: i64,
) -> (&'static str, Option<String>, Option<LastOutcome>) {
    let Some(last) = &s.last else {
        return ("unknown", None, None);
    };
    let stale = now_ms - last.at_ms > service.max_gap().as_millis() as i64;
    let (state, since) = match (&s.open_incident, stale) {
        (_, true) => ("no-data", last.at_ms + service.interval.as_millis() as i64),
        (Some(incident), false) => ("down", incident.start_ms),
        (None, false) => (
            "up",
            s.last_recovery_ms.or(s.first_ms).unwrap_or(last.at_ms),
        ),
    };
    let shown = LastOutcome {
        at: crate::text::timestamp_to_second(last.at_ms),
        ok: last.is_ok(),
        latency_ms: f64::from(last.latency_us) / 1000.0,
        reason: last.reason.map(|r| r.to_string()),
        detail: s.last_failure.as_ref().map(|f| f.detail.clone()),
    };
    (
        state,
        Some(crate::text::timestamp_to_second(since)),
        Some(shown),
    )
}

/// The month so far and its error budget.
fn month_to_date(
    conn: Conn<'_>,
    config: &Config,
    service: &config::Service,
    now_ms: i64,
) -> Result<MonthToDate, DbError> {
    let m = crate::report::month_budget(conn, config, service, now_ms)?;
    Ok(MonthToDate {
        availability: m.numbers.availability(),
        downtime_s: m.numbers.downtime_ms as f64 / 1000.0,
        budget_s: m.budget.allowed_ms as f64 / 1000.0,
        budget_remaining_s: m.budget.remaining_ms as f64 / 1000.0,
    })
}
