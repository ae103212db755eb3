//! The `statement` table: per contract and month, the statement's SHA-256, its outbox
//! message and how many times it was sent.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// Starts the transaction in which a statement is decided, queued and recorded: immediate, so
/// that the daemon and `slaprobe statement --send` decide one after the other, never both.
pub fn begin(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// How many times the statement of `contract` for `month` was sent, if it was recorded.
pub fn sends(conn: &Connection, contract: &str, month: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT sends FROM statement WHERE contract = ?1 AND month = ?2",
        params![contract, month],
        |r| r.get(0),
    )
    .optional()
}

/// Records a statement decided: its SHA-256 and, when it was queued, its outbox message (one
/// more send).
pub fn record(
    tx: &Transaction<'_>,
    contract: &str,
    month: &str,
    sha256: &str,
    outbox: Option<i64>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO statement (contract, month, sha256, outbox, sends, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (contract, month) DO UPDATE SET sha256 = excluded.sha256,
           outbox = COALESCE(excluded.outbox, outbox), sends = sends + excluded.sends,
           at_ms = excluded.at_ms",
        params![
            contract,
            month,
            sha256,
            outbox,
            outbox.is_some() as i64,
            now_ms
        ],
    )?;
    Ok(())
}

/// Keeps the rendered bytes of a statement as recorded (replacing an earlier copy: a resent
/// statement's record is what was sent last), each under its format's name.
pub fn keep_copies(
    tx: &Transaction<'_>,
    contract: &str,
    month: &str,
    copies: &[(&str, &[u8])],
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO statement_copy (contract, month, format, bytes, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (contract, month, format) DO UPDATE SET bytes = excluded.bytes,
           at_ms = excluded.at_ms",
    )?;
    for (format, bytes) in copies {
        insert.execute(params![contract, month, format, bytes, now_ms])?;
    }
    Ok(())
}

/// The recorded bytes of a statement in `format`, and when they were recorded.
pub fn copy(
    conn: &Connection,
    contract: &str,
    month: &str,
    format: &str,
) -> rusqlite::Result<Option<(Vec<u8>, i64)>> {
    conn.query_row(
        "SELECT bytes, at_ms FROM statement_copy WHERE contract = ?1 AND month = ?2 AND format = ?3",
        params![contract, month, format],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}
