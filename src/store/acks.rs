//! Acknowledgements (DESIGN.md §6.2): who took up an incident, when, and their note, stored on
//! the incident itself so that reports and statements show them for ever and a restart keeps
//! them. Written by `slaprobe ack` and the API; read by alerting and reports.

use rusqlite::{Connection, OptionalExtension, params};

use crate::sla::response::{Ack, Response};

/// What acknowledging a service's open incident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded now; the incident started at `start_ms`.
    Acknowledged { start_ms: i64 },
    /// It was acknowledged before: that first acknowledgement stands.
    Already { start_ms: i64, ack: Ack },
    /// The service has no open incident.
    NoOpenIncident,
}

/// Acknowledges the open incident of service `id`. The first acknowledgement stands: a second
/// one changes nothing and says who came first.
pub fn acknowledge(conn: &Connection, id: &str, ack: &Ack) -> rusqlite::Result<AckOutcome> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let open: Option<(i64, i64, Option<Ack>)> = tx
        .query_row(
            "SELECT i.id, i.start_ms, i.ack_ms, i.ack_by, i.ack_note FROM incident i
             JOIN service s ON s.num = i.service WHERE s.id = ?1 AND i.end_ms IS NULL",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, ack_from_row(r, 2)?)),
        )
        .optional()?;
    let outcome = match open {
        None => AckOutcome::NoOpenIncident,
        Some((_, start_ms, Some(ack))) => AckOutcome::Already { start_ms, ack },
        Some((row, start_ms, None)) => {
            tx.execute(
                "UPDATE incident SET ack_ms = ?2, ack_by = ?3, ack_note = ?4 WHERE id = ?1",
                params![row, ack.at_ms, ack.by, ack.note],
            )?;
            AckOutcome::Acknowledged { start_ms }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

/// The acknowledgement in columns `at, at + 1, at + 2` (ack_ms, ack_by, ack_note), if any.
fn ack_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Ack>> {
    let at_ms: Option<i64> = r.get(at)?;
    Ok(match at_ms {
        Some(at_ms) => Some(Ack {
            at_ms,
            by: r.get(at + 1)?,
            note: r.get(at + 2)?,
        }),
        None => None,
    })
}

/// An open incident's acknowledgement: the service, its start, the ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAck {
    pub service: String,
    pub start_ms: i64,
    pub ack: Ack,
}

/// The acknowledgements of every open incident (alerting looks for new ones).
pub fn open_acks(conn: &Connection) -> rusqlite::Result<Vec<OpenAck>> {
    let mut s = conn.prepare_cached(
        "SELECT s.id, i.start_ms, i.ack_ms, i.ack_by, i.ack_note FROM incident i
         JOIN service s ON s.num = i.service
         WHERE i.end_ms IS NULL AND i.ack_ms IS NOT NULL",
    )?;
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, ack_from_row(r, 2)?)))?;
    let mut acks = Vec::new();
    for row in rows {
        let (service, start_ms, ack) = row?;
        if let Some(ack) = ack {
            acks.push(OpenAck {
                service,
                start_ms,
                ack,
            });
        }
    }
    Ok(acks)
}

/// The acknowledgement of the incident of service `id` that started at `start_ms`, if any.
pub fn ack_of(conn: &Connection, id: &str, start_ms: i64) -> rusqlite::Result<Option<Ack>> {
    conn.prepare_cached(
        "SELECT i.ack_ms, i.ack_by, i.ack_note FROM incident i JOIN service s ON s.num = i.service
         WHERE s.id = ?1 AND i.start_ms = ?2 AND i.ack_ms IS NOT NULL",
    )?
    .query_row(params![id, start_ms], |r| ack_from_row(r, 0))
    .optional()
    .map(Option::flatten)
}

/// A recorded incident with its acknowledgement, as reports judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedIncident {
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub ack: Option<Ack>,
}

impl RecordedIncident {
    /// Its times, as `sla::response` judges them.
    pub fn response(&self) -> Response {
        Response {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            ack_ms: self.ack.as_ref().map(|a| a.at_ms),
        }
    }
}

/// The recorded incidents of service number `num` overlapping `[from_ms, to_ms)`, by start.
pub fn recorded_incidents(
    conn: &Connection,
    num: super::ServiceNum,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<RecordedIncident>> {
    let mut s = conn.prepare_cached(
        "SELECT start_ms, end_ms, ack_ms, ack_by, ack_note FROM incident
         WHERE service = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)
         ORDER BY start_ms",
    )?;
    let rows = s.query_map(params![num, from_ms, to_ms], |r| {
        Ok(RecordedIncident {
            start_ms: r.get(0)?,
            end_ms: r.get(1)?,
            ack: ack_from_row(r, 2)?,
        })
    })?;
    rows.collect()
}
