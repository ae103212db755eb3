//! What alerting has told and which budget notices are in force: the `alert_incident`,
//! `alert_flag` and `digest_sent` tables, and the transaction that queues alerts with what
//! they told.

use std::collections::HashMap;

use super::db::{Conn, DbError, args};
use super::outbox::{self, ChannelMessage, Composed, Kind};

/// What a message told about one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    Down,
    /// Step `n` (from 0) of the escalation chain.
    Escalated(usize),
    Reminded,
    Acknowledged,
    ResponseOverdue,
    RestoreOverdue,
    /// The incident is over: its record is deleted.
    Recovered,
}

/// One incident a message spoke of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToldOf {
    pub service: String,
    pub start_ms: i64,
    pub told: Told,
}

/// What was queued about an open incident: DOWN, the escalation steps, the latest STILL DOWN,
/// ACKNOWLEDGED and the OVERDUE notices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToldTimes {
    pub down_sent_ms: Option<i64>,
    pub escalation_steps: usize,
    pub reminded_ms: Option<i64>,
    pub ack_told: bool,
    pub response_overdue: bool,
    pub restore_overdue: bool,
}

/// An alert to write: its message (none when it could not be composed or there is no
/// `[smtp]`), whether it was already sent directly, and what it told.
#[derive(Debug, Clone, Copy)]
pub struct QueuedAlert<'a> {
    pub message: Option<&'a Composed>,
    pub sent: bool,
    /// Its messages to channels, each with whether it was already sent directly.
    pub channels: &'a [(&'a ChannelMessage, bool)],
    pub told: &'a [ToldOf],
}

/// What was told about the incident of `service` that started at `start_ms`.
pub fn told_times(conn: Conn<'_>, service: &str, start_ms: i64) -> Result<ToldTimes, DbError> {
    let row = conn.query_opt(
        "SELECT down_sent_ms, escalation_steps, reminded_ms, ack_told_ms IS NOT NULL,
                response_overdue_ms IS NOT NULL, restore_overdue_ms IS NOT NULL
         FROM alert_incident WHERE service = ?1 AND start_ms = ?2",
        args![service, start_ms],
        |r| {
            Ok(ToldTimes {
                down_sent_ms: r.get(0)?,
                escalation_steps: r.get::<i64>(1)?.max(0) as usize,
                reminded_ms: r.get(2)?,
                ack_told: r.get(3)?,
                response_overdue: r.get(4)?,
                restore_overdue: r.get(5)?,
            })
        },
    )?;
    Ok(row.unwrap_or_default())
}

/// Services with an incident open or ended since `since_ms`, with when they were last down
/// (`i64::MAX` while down).
pub fn recent_downtime(conn: Conn<'_>, since_ms: i64) -> Result<HashMap<String, i64>, DbError> {
    let rows = conn.query(
        "SELECT s.id, MAX(COALESCE(i.end_ms, 9223372036854775807)) FROM incident i
         JOIN service s ON s.num = i.service
         WHERE i.end_ms IS NULL OR i.end_ms >= ?1 GROUP BY s.id",
        args![since_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}

/// Writes alerts to the outbox (those already sent directly as sent) with what they told, in
/// one transaction: a restart neither repeats nor forgets an alert.
pub fn queue(conn: Conn<'_>, alerts: &[QueuedAlert<'_>], now_ms: i64) -> Result<(), DbError> {
    conn.transaction(|tx| {
        for alert in alerts {
            if let Some(message) = alert.message {
                let id = outbox::enqueue(tx, now_ms, Kind::Alert, message)?;
                if alert.sent {
                    outbox::mark_sent(tx, id, 1, now_ms)?;
                }
            }
            for (message, sent) in alert.channels {
                let id = outbox::enqueue_channel(tx, now_ms, Kind::Alert, message)?;
                if *sent {
                    outbox::mark_sent(tx, id, 1, now_ms)?;
                }
            }
            for item in alert.told {
                record_told(tx, item, now_ms)?;
            }
        }
        Ok(())
    })
}

fn record_told(tx: Conn<'_>, item: &ToldOf, now_ms: i64) -> Result<(), DbError> {
    let column = match item.told {
        Told::Down => "down_sent_ms",
        Told::Escalated(step) => {
            tx.execute(
                "INSERT INTO alert_incident (service, start_ms, escalated_ms, escalation_steps)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, start_ms) DO UPDATE SET escalated_ms = excluded.escalated_ms,
                 escalation_steps = CASE
                   WHEN alert_incident.escalation_steps > excluded.escalation_steps
                   THEN alert_incident.escalation_steps ELSE excluded.escalation_steps END",
                args![&item.service, item.start_ms, now_ms, step as i64 + 1],
            )?;
            return Ok(());
        }
        Told::Reminded => "reminded_ms",
        Told::Acknowledged => "ack_told_ms",
        Told::ResponseOverdue => "response_overdue_ms",
        Told::RestoreOverdue => "restore_overdue_ms",
        Told::Recovered => {
            tx.execute(
                "DELETE FROM alert_incident WHERE service = ?1 AND start_ms = ?2",
                args![&item.service, item.start_ms],
            )?;
            return Ok(());
        }
    };
    tx.execute(
        &format!(
            "INSERT INTO alert_incident (service, start_ms, {column}) VALUES (?1, ?2, ?3)
             ON CONFLICT (service, start_ms) DO UPDATE SET {column} = excluded.{column}"
        ),
        args![&item.service, item.start_ms, now_ms],
    )?;
    Ok(())
}

/// Sets a budget flag (`burn:page`, `at_risk:2026-10`, …); true if it was not set.
pub fn set_flag(conn: Conn<'_>, service: &str, flag: &str, now_ms: i64) -> Result<bool, DbError> {
    Ok(conn.execute(
        "INSERT INTO alert_flag (service, flag, since_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        args![service, flag, now_ms],
    )? > 0)
}

/// Clears a budget flag; true if it was set.
pub fn clear_flag(conn: Conn<'_>, service: &str, flag: &str) -> Result<bool, DbError> {
    Ok(conn.execute(
        "DELETE FROM alert_flag WHERE service = ?1 AND flag = ?2",
        args![service, flag],
    )? > 0)
}

/// Records that the digest of `route` for `day` is written; true if it was not before.
pub fn mark_digest(conn: Conn<'_>, route: &str, day: &str, now_ms: i64) -> Result<bool, DbError> {
    Ok(conn.execute(
        "INSERT INTO digest_sent (route, day, at_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        args![route, day, now_ms],
    )? > 0)
}
