//! What `slaprobe status` and `/api/v1/services` show of a service: its state, since when, the
//! last outcome, who acknowledged its open incident, and the month so far with its error
//! budget.

use rusqlite::Connection;
use serde::Serialize;

use crate::config::{self, Config};
use crate::store::db::DbError;
use crate::store::read;

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
    conn: &Connection,
    config: &Config,
    service: &config::Service,
    now_ms: i64,
) -> Result<StatusLine, DbError> {
    let mut line = status_only(conn, service, now_ms)?;
    line.month = Some(month_to_date(conn, config, service, now_ms)?);
    Ok(line)
}

fn status_only(
    conn: &Connection,
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
    };
    let Some(num) = read::service_num(conn, &service.id)? else {
        return Ok(line);
    };
    let s = read::service_status(conn, num)?;
    let Some(last) = s.last else {
        return Ok(line);
    };
    let stale = now_ms - last.at_ms > service.max_gap().as_millis() as i64;
    let (state, since) = match (&s.open_incident, stale) {
        (_, true) => ("no-data", last.at_ms + service.interval.as_millis() as i64),
        (Some(incident), false) => {
            line.acknowledged = crate::store::acks::ack_of(conn, &service.id, incident.start_ms)?
                .map(|ack| Acknowledged {
                    at: crate::text::timestamp_to_second(ack.at_ms),
                    by: ack.by,
                });
            ("down", incident.start_ms)
        }
        (None, false) => (
            "up",
            s.last_recovery_ms.or(s.first_ms).unwrap_or(last.at_ms),
        ),
    };
    line.state = state;
    line.since = Some(crate::text::timestamp_to_second(since));
    line.last = Some(LastOutcome {
        at: crate::text::timestamp_to_second(last.at_ms),
        ok: last.is_ok(),
        latency_ms: f64::from(last.latency_us) / 1000.0,
        reason: last.reason.map(|r| r.to_string()),
        detail: s.last_failure.map(|f| f.detail),
    });
    Ok(line)
}

/// The month so far and its error budget.
fn month_to_date(
    conn: &Connection,
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
