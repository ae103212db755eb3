//! The `statement` table: per contract and month, the statement's SHA-256, its outbox
//! message and how many times it was sent.
//!
//! A statement is decided, queued and recorded in one `Conn::transaction` that first calls
//! `lock`, so the daemon and `slaprobe statement --send` decide one after the other (SQLite's
//! immediate transaction, PostgreSQL's advisory transaction lock on the contract and month).

use super::db::{Conn, DbError, args};

/// Inside the deciding transaction: waits for anyone else deciding the statement of
/// `contract` for `month` (a PostgreSQL advisory transaction lock on the pair; SQLite's
/// immediate transaction already excludes every other writer).
pub fn lock(tx: Conn<'_>, contract: &str, month: &str) -> Result<(), DbError> {
    if tx.is_postgres() {
        tx.query_one(
            "SELECT pg_advisory_xact_lock(hashtextextended(?1, 0)) IS NULL",
            args![&format!("statement\n{contract}\n{month}")],
            |r| r.get::<bool>(0),
        )?;
    }
    Ok(())
}

/// How many times the statement of `contract` for `month` was sent, if it was recorded.
pub fn sends(conn: Conn<'_>, contract: &str, month: &str) -> Result<Option<i64>, DbError> {
    conn.query_opt(
        "SELECT sends FROM statement WHERE contract = ?1 AND month = ?2",
        args![contract, month],
        |r| r.get(0),
    )
}

/// Records a statement decided: its SHA-256 and, when it was queued, its outbox message (one
/// more send).
pub fn record(
    tx: Conn<'_>,
    contract: &str,
    month: &str,
    sha256: &str,
    outbox: Option<i64>,
    now_ms: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO statement (contract, month, sha256, outbox, sends, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (contract, month) DO UPDATE SET sha256 = excluded.sha256,
           outbox = COALESCE(excluded.outbox, statement.outbox),
           sends = statement.sends + excluded.sends, at_ms = excluded.at_ms",
        args![contract, month, sha256, outbox, outbox.is_some(), now_ms],
    )?;
    Ok(())
}

/// Keeps the rendered bytes of a statement as recorded (replacing an earlier copy: a resent
/// statement's record is what was sent last), each under its format's name.
pub fn keep_copies(
    tx: Conn<'_>,
    contract: &str,
    month: &str,
    copies: &[(&str, &[u8])],
    now_ms: i64,
) -> Result<(), DbError> {
    for (format, bytes) in copies {
        tx.execute(
            "INSERT INTO statement_copy (contract, month, format, bytes, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (contract, month, format) DO UPDATE SET bytes = excluded.bytes,
               at_ms = excluded.at_ms",
            args![contract, month, *format, *bytes, now_ms],
        )?;
    }
    Ok(())
}

/// The recorded bytes of a statement in `format`, and when they were recorded.
pub fn copy(
    conn: Conn<'_>,
    contract: &str,
    month: &str,
    format: &str,
) -> Result<Option<(Vec<u8>, i64)>, DbError> {
    conn.query_opt(
        "SELECT bytes, at_ms FROM statement_copy WHERE contract = ?1 AND month = ?2 AND format = ?3",
        args![contract, month, format],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
