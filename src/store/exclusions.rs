//! Agreed exclusions (DESIGN.md §6.1): stretches a client and provider agreed to leave out of
//! the measured time, kept as audited acts. Revoking one records who, when and why; neither act
//! is ever deleted.

use super::db::{Conn, DbError, Row, args};

/// What an exclusion covers: one service, or every service of a contract.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Service(String),
    Contract(String),
}

/// One exclusion as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exclusion {
    pub id: i64,
    pub scope: Scope,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub by: Option<String>,
    pub at_ms: i64,
    pub revoked: Option<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub at_ms: i64,
    pub reason: String,
    pub by: Option<String>,
}

/// A new exclusion to record.
#[derive(Debug, Clone)]
pub struct NewExclusion<'a> {
    pub scope: &'a Scope,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: &'a str,
    pub by: Option<&'a str>,
}

/// Records an exclusion; returns its id.
pub fn add(conn: Conn<'_>, new: &NewExclusion<'_>, now_ms: i64) -> Result<i64, DbError> {
    let (service, contract) = match new.scope {
        Scope::Service(id) => (Some(id.as_str()), None),
        Scope::Contract(id) => (None, Some(id.as_str())),
    };
    conn.query_one(
        "INSERT INTO exclusion (service, contract, start_ms, end_ms, reason, by, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        args![
            service,
            contract,
            new.start_ms,
            new.end_ms,
            new.reason,
            new.by,
            now_ms
        ],
        |r| r.get(0),
    )
}

/// Why a revocation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    Done,
    NoSuchExclusion,
    AlreadyRevoked,
}

/// Revokes exclusion `id`, recording when, why and by whom.
pub fn revoke(
    conn: Conn<'_>,
    id: i64,
    reason: &str,
    by: Option<&str>,
    now_ms: i64,
) -> Result<Revoked, DbError> {
    let state: Option<Option<i64>> = conn.query_opt(
        "SELECT revoked_ms FROM exclusion WHERE id = ?1",
        args![id],
        |r| r.get(0),
    )?;
    match state {
        None => Ok(Revoked::NoSuchExclusion),
        Some(Some(_)) => Ok(Revoked::AlreadyRevoked),
        Some(None) => {
            conn.execute(
                "UPDATE exclusion SET revoked_ms = ?2, revoke_reason = ?3, revoked_by = ?4
                 WHERE id = ?1",
                args![id, now_ms, reason, by],
            )?;
            Ok(Revoked::Done)
        }
    }
}

fn from_row(r: &Row<'_, '_>) -> Result<Exclusion, DbError> {
    let service: Option<String> = r.get(1)?;
    let contract: Option<String> = r.get(2)?;
    let revoked_ms: Option<i64> = r.get(8)?;
    Ok(Exclusion {
        id: r.get(0)?,
        scope: match service {
            Some(s) => Scope::Service(s),
            None => Scope::Contract(contract.unwrap_or_default()),
        },
        start_ms: r.get(3)?,
        end_ms: r.get(4)?,
        reason: r.get(5)?,
        by: r.get(6)?,
        at_ms: r.get(7)?,
        revoked: match revoked_ms {
            Some(at_ms) => Some(Revocation {
                at_ms,
                reason: r.get::<Option<String>>(9)?.unwrap_or_default(),
                by: r.get(10)?,
            }),
            None => None,
        },
    })
}

const COLUMNS: &str = "id, service, contract, start_ms, end_ms, reason, by, at_ms, revoked_ms, \
                       revoke_reason, revoked_by";

/// Every exclusion overlapping `[from_ms, to_ms)` (revoked ones too), oldest first.
pub fn list(conn: Conn<'_>, from_ms: i64, to_ms: i64) -> Result<Vec<Exclusion>, DbError> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM exclusion WHERE end_ms > ?1 AND start_ms < ?2 ORDER BY id"),
        args![from_ms, to_ms],
        from_row,
    )
}

/// The exclusions in force (not revoked) for `service` of `contract` overlapping
/// `[from_ms, to_ms)`, as `(start, end)` spans.
pub fn active_spans(
    conn: Conn<'_>,
    service: &str,
    contract: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let preloaded =
        |p: &super::pg::read::Preloaded| p.exclusion_spans(service, contract, from_ms, to_ms);
    if let Some(spans) = super::history::preloaded(conn, preloaded) {
        return Ok(spans);
    }
    conn.query(
        "SELECT start_ms, end_ms FROM exclusion
         WHERE revoked_ms IS NULL AND end_ms > ?3 AND start_ms < ?4
           AND (service = ?1 OR contract = ?2) ORDER BY start_ms",
        args![service, contract, from_ms, to_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
