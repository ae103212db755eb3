//! The outbox table: messages are written here before any attempt, claimed with a lease when
//! due (so the daemon and `slaprobe statement --send` never send the same row twice at once),
//! and marked sent, retried later, or failed. `notify` composes what goes in and delivers it.
//!
//! A row is an e-mail (`channel = 'email'`: envelope and RFC 5322 bytes) or a message to a
//! channel (`webhook`, `slack`, `telegram`: `recipients` names the destination without its
//! secrets, `message` is the body). Messages to one destination are claimed in order: a newer
//! one waits while an older one is pending, so a channel that was down gets them in order.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// A claimed message is not claimed again for this long (a crashed sender's claim expires).
pub const LEASE_MS: i64 = 2 * 60_000;

/// A composed message, as the outbox stores it (`notify::compose` makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    /// Envelope sender and recipients.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The whole message; a retry sends these bytes again (same Message-ID and Date).
    pub bytes: Vec<u8>,
}

/// A message to a channel beside e-mail, as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    /// `webhook`, `slack` or `telegram`.
    pub channel: &'static str,
    /// The destination as the sender reads it back (names of secrets, never secrets).
    pub destination: String,
    /// For logs and `status`.
    pub subject: String,
    pub body: Vec<u8>,
}

/// Which deliverer claims a row: the SMTP one takes e-mail, the HTTP one every other channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Email,
    Http,
}

impl Transport {
    fn condition(self) -> &'static str {
        match self {
            Transport::Email => "channel = 'email'",
            Transport::Http => "channel <> 'email'",
        }
    }
}

/// What kind of message a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Statement,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Statement => "statement",
        }
    }
}

/// Writes a message to send now; returns its id. Part of the caller's transaction, so that
/// what caused the message (an alert decision, a statement) is recorded with it.
pub fn enqueue(
    tx: &Transaction<'_>,
    now_ms: i64,
    kind: Kind,
    mail: &Composed,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO outbox (created_ms, kind, subject, sender, recipients, message, state, next_try_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?1)",
        params![
            now_ms,
            kind.as_str(),
            mail.subject,
            mail.sender,
            mail.recipients.join("\n"),
            mail.bytes
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Writes a channel message to send now; returns its id. Part of the caller's transaction.
pub fn enqueue_channel(
    tx: &Transaction<'_>,
    now_ms: i64,
    kind: Kind,
    message: &ChannelMessage,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO outbox (created_ms, kind, subject, sender, recipients, message, state,
                             next_try_ms, channel)
         VALUES (?1, ?2, ?3, '', ?4, ?5, 'pending', ?1, ?6)",
        params![
            now_ms,
            kind.as_str(),
            message.subject,
            message.destination,
            message.body,
            message.channel
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub subject: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
    pub attempts: u32,
    pub created_ms: i64,
    /// `email`, or the channel (`webhook`, `slack`, `telegram`).
    pub channel: String,
}

/// Claims the oldest due message for `transport`, if any, for `LEASE_MS`.
pub fn claim_next(
    conn: &mut Connection,
    now_ms: i64,
    transport: Transport,
) -> rusqlite::Result<Option<Claimed>> {
    Ok(claim_due(conn, now_ms, 1, transport)?.pop())
}

/// Claims message `id` if it is pending and nobody holds it.
pub fn claim_id(conn: &mut Connection, id: i64, now_ms: i64) -> rusqlite::Result<Option<Claimed>> {
    let claimed = conn.execute(
        "UPDATE outbox SET leased_until = ?2
         WHERE id = ?1 AND state = 'pending' AND leased_until <= ?3",
        params![id, now_ms + LEASE_MS, now_ms],
    )?;
    if claimed == 0 {
        return Ok(None);
    }
    conn.query_row(
        "SELECT id, subject, sender, recipients, message, attempts, created_ms, channel
         FROM outbox WHERE id = ?1",
        [id],
        claimed_from_row,
    )
    .map(Some)
}

/// A stored channel as `status` names it: `webhook https://…`, `slack $VAR`, `telegram ID`.
fn describe_destination(stored: &str) -> String {
    serde_json::from_str::<crate::config::Channel>(stored)
        .map(|c| c.describe())
        .unwrap_or_else(|_| stored.to_string())
}

/// The stored recipients: one address per line.
fn recipients(stored: String) -> Vec<String> {
    stored.lines().map(str::to_string).collect()
}

fn claimed_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Claimed> {
    Ok(Claimed {
        id: r.get(0)?,
        subject: r.get(1)?,
        sender: r.get(2)?,
        recipients: recipients(r.get(3)?),
        message: r.get(4)?,
        attempts: r.get(5)?,
        created_ms: r.get(6)?,
        channel: r.get(7)?,
    })
}

/// Claims up to `limit` due messages for `transport` (oldest first) for `LEASE_MS`; a message
/// waits while an older one to the same destination is pending.
pub fn claim_due(
    conn: &mut Connection,
    now_ms: i64,
    limit: usize,
    transport: Transport,
) -> rusqlite::Result<Vec<Claimed>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let claimed = {
        let mut select = tx.prepare_cached(&format!(
            "SELECT id, subject, sender, recipients, message, attempts, created_ms, channel
             FROM outbox o
             WHERE state = 'pending' AND next_try_ms <= ?1 AND leased_until <= ?1 AND {}
               AND NOT EXISTS (SELECT 1 FROM outbox older
                               WHERE older.state = 'pending' AND older.channel = o.channel
                                 AND older.recipients = o.recipients AND older.id < o.id)
             ORDER BY next_try_ms, id LIMIT ?2",
            transport.condition()
        ))?;
        let rows = select.query_map(params![now_ms, limit as i64], claimed_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    for c in &claimed {
        tx.execute(
            "UPDATE outbox SET leased_until = ?2 WHERE id = ?1",
            params![c.id, now_ms + LEASE_MS],
        )?;
    }
    tx.commit()?;
    Ok(claimed)
}

/// The server accepted the message.
pub fn mark_sent(conn: &Connection, id: i64, attempts: u32, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox SET state = 'sent', attempts = ?2, done_ms = ?3, last_error = NULL,
         leased_until = 0 WHERE id = ?1",
        params![id, attempts, now_ms],
    )?;
    Ok(())
}

/// A transient failure: try again at `next_try_ms`.
pub fn mark_retry(
    conn: &Connection,
    id: i64,
    attempts: u32,
    next_try_ms: i64,
    error: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = ?2, next_try_ms = ?3, last_error = ?4, leased_until = 0
         WHERE id = ?1",
        params![id, attempts, next_try_ms, error],
    )?;
    Ok(())
}

/// A permanent rejection: never retried, shown by `status` until someone looks.
pub fn mark_failed(
    conn: &Connection,
    id: i64,
    attempts: u32,
    now_ms: i64,
    error: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox SET state = 'failed', attempts = ?2, done_ms = ?3, last_error = ?4,
         leased_until = 0 WHERE id = ?1",
        params![id, attempts, now_ms, error],
    )?;
    Ok(())
}

/// After a success the server is back: every message waiting for the same transport and
/// channel becomes due now (claims in progress keep their lease).
pub fn retry_waiting_now(conn: &Connection, now_ms: i64, channel: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE outbox SET next_try_ms = ?1
         WHERE state = 'pending' AND next_try_ms > ?1 AND channel = ?2",
        params![now_ms, channel],
    )
}

/// How many messages wait to be sent.
pub fn pending_count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// When the next pending message for `transport` is due.
pub fn next_due_ms(conn: &Connection, transport: Transport) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        &format!(
            "SELECT MIN(MAX(next_try_ms, leased_until)) FROM outbox
             WHERE state = 'pending' AND {}",
            transport.condition()
        ),
        [],
        |r| r.get(0),
    )
}

/// A message `status` lists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MailLine {
    pub id: i64,
    pub kind: String,
    /// `email`, `webhook`, `slack` or `telegram`.
    pub channel: String,
    pub subject: String,
    pub recipients: Vec<String>,
    pub created_ms: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Pending and failed mail, for `status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MailSummary {
    pub pending: Vec<MailLine>,
    pub failed: Vec<MailLine>,
    pub sent: u64,
}

/// Pending mail and permanent failures of the last `failed_since_ms`.
pub fn summary(conn: &Connection, failed_since_ms: i64) -> rusqlite::Result<MailSummary> {
    let lines = |state: &str, since: i64| -> rusqlite::Result<Vec<MailLine>> {
        let mut s = conn.prepare(
            "SELECT id, kind, subject, recipients, created_ms, attempts, last_error, channel
             FROM outbox WHERE state = ?1 AND created_ms >= ?2 ORDER BY id",
        )?;
        let rows = s.query_map(params![state, since], |r| {
            let channel: String = r.get(7)?;
            let stored: String = r.get(3)?;
            Ok(MailLine {
                id: r.get(0)?,
                kind: r.get(1)?,
                subject: r.get(2)?,
                recipients: if channel == "email" {
                    recipients(stored)
                } else {
                    vec![describe_destination(&stored)]
                },
                created_ms: r.get(4)?,
                attempts: r.get(5)?,
                last_error: r.get(6)?,
                channel,
            })
        })?;
        rows.collect()
    };
    let sent: Option<i64> = conn
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(MailSummary {
        pending: lines("pending", i64::MIN)?,
        failed: lines("failed", failed_since_ms)?,
        sent: sent.unwrap_or(0) as u64,
    })
}
