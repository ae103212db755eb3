//! The outbox table: messages are written here before any attempt, claimed with a lease when
//! due (so the daemon and `slaprobe statement --send` never send the same row twice at once),
//! and marked sent, retried later, or failed. `notify` composes what goes in and delivers it.
//!
//! A row is an e-mail (`channel = 'email'`: envelope and RFC 5322 bytes) or a message to a
//! channel (`webhook`, `slack`, `telegram`: `recipients` names the destination without its
//! secrets, `message` is the body). Messages to one destination are claimed in order: a newer
//! one waits while an older one is pending, so a channel that was down gets them in order.

use super::db::{Conn, DbError, Row, args};

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
pub fn enqueue(tx: Conn<'_>, now_ms: i64, kind: Kind, mail: &Composed) -> Result<i64, DbError> {
    tx.query_one(
        "INSERT INTO outbox (created_ms, kind, subject, sender, recipients, message, state, next_try_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?1) RETURNING id",
        args![
            now_ms,
            kind.as_str(),
            &mail.subject,
            &mail.sender,
            &mail.recipients.join("\n"),
            &mail.bytes
        ],
        |r| r.get(0),
    )
}

/// Writes a channel message to send now; returns its id. Part of the caller's transaction.
pub fn enqueue_channel(
    tx: Conn<'_>,
    now_ms: i64,
    kind: Kind,
    message: &ChannelMessage,
) -> Result<i64, DbError> {
    tx.query_one(
        "INSERT INTO outbox (created_ms, kind, subject, sender, recipients, message, state,
                             next_try_ms, channel)
         VALUES (?1, ?2, ?3, '', ?4, ?5, 'pending', ?1, ?6) RETURNING id",
        args![
            now_ms,
            kind.as_str(),
            &message.subject,
            &message.destination,
            &message.body,
            message.channel
        ],
        |r| r.get(0),
    )
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
    conn: Conn<'_>,
    now_ms: i64,
    transport: Transport,
) -> Result<Option<Claimed>, DbError> {
    Ok(claim_due(conn, now_ms, 1, transport)?.pop())
}

/// Takes the lease of message `id` if it is pending and nobody holds it; true if taken. The
/// condition is checked again under the row's lock, so of two claimants only one wins.
fn take_lease(conn: Conn<'_>, id: i64, now_ms: i64) -> Result<bool, DbError> {
    Ok(conn.execute(
        "UPDATE outbox SET leased_until = ?2
         WHERE id = ?1 AND state = 'pending' AND leased_until <= ?3",
        args![id, now_ms + LEASE_MS, now_ms],
    )? == 1)
}

const CLAIMED_COLUMNS: &str =
    "id, subject, sender, recipients, message, attempts, created_ms, channel";

/// Claims message `id` if it is pending and nobody holds it.
pub fn claim_id(conn: Conn<'_>, id: i64, now_ms: i64) -> Result<Option<Claimed>, DbError> {
    if !take_lease(conn, id, now_ms)? {
        return Ok(None);
    }
    conn.query_opt(
        &format!("SELECT {CLAIMED_COLUMNS} FROM outbox WHERE id = ?1"),
        args![id],
        claimed_from_row,
    )
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

fn claimed_from_row(r: &Row<'_, '_>) -> Result<Claimed, DbError> {
    Ok(Claimed {
        id: r.get(0)?,
        subject: r.get(1)?,
        sender: r.get(2)?,
        recipients: recipients(r.get(3)?),
        message: r.get(4)?,
        attempts: attempts(r.get(5)?),
        created_ms: r.get(6)?,
        channel: r.get(7)?,
    })
}

fn attempts(stored: i64) -> u32 {
    u32::try_from(stored.max(0)).unwrap_or(u32::MAX)
}

/// Claims up to `limit` due messages for `transport` (oldest first) for `LEASE_MS`; a message
/// waits while an older one to the same destination is pending. A message another claimant
/// took in the meantime is left to it.
pub fn claim_due(
    conn: Conn<'_>,
    now_ms: i64,
    limit: usize,
    transport: Transport,
) -> Result<Vec<Claimed>, DbError> {
    conn.transaction(|tx| {
        let due = tx.query(
            &format!(
                "SELECT {CLAIMED_COLUMNS}
                 FROM outbox o
                 WHERE state = 'pending' AND next_try_ms <= ?1 AND leased_until <= ?1 AND {}
                   AND NOT EXISTS (SELECT 1 FROM outbox older
                                   WHERE older.state = 'pending' AND older.channel = o.channel
                                     AND older.recipients = o.recipients AND older.id < o.id)
                 ORDER BY next_try_ms, id LIMIT ?2",
                transport.condition()
            ),
            args![now_ms, limit as i64],
            claimed_from_row,
        )?;
        let mut claimed = Vec::with_capacity(due.len());
        for c in due {
            if take_lease(tx, c.id, now_ms)? {
                claimed.push(c);
            }
        }
        Ok(claimed)
    })
}

/// The server accepted the message.
pub fn mark_sent(conn: Conn<'_>, id: i64, attempts: u32, now_ms: i64) -> Result<(), DbError> {
    conn.execute(
        "UPDATE outbox SET state = 'sent', attempts = ?2, done_ms = ?3, last_error = NULL,
         leased_until = 0 WHERE id = ?1",
        args![id, attempts, now_ms],
    )?;
    Ok(())
}

/// A transient failure: try again at `next_try_ms`.
pub fn mark_retry(
    conn: Conn<'_>,
    id: i64,
    attempts: u32,
    next_try_ms: i64,
    error: &str,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE outbox SET attempts = ?2, next_try_ms = ?3, last_error = ?4, leased_until = 0
         WHERE id = ?1",
        args![id, attempts, next_try_ms, error],
    )?;
    Ok(())
}

/// A permanent rejection: never retried, shown by `status` until someone looks.
pub fn mark_failed(
    conn: Conn<'_>,
    id: i64,
    attempts: u32,
    now_ms: i64,
    error: &str,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE outbox SET state = 'failed', attempts = ?2, done_ms = ?3, last_error = ?4,
         leased_until = 0 WHERE id = ?1",
        args![id, attempts, now_ms, error],
    )?;
    Ok(())
}

/// After a success the server is back: every message waiting for the same transport and
/// channel becomes due now (claims in progress keep their lease).
pub fn retry_waiting_now(conn: Conn<'_>, now_ms: i64, channel: &str) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE outbox SET next_try_ms = ?1
         WHERE state = 'pending' AND next_try_ms > ?1 AND channel = ?2",
        args![now_ms, channel],
    )
}

/// How many messages wait to be sent.
pub fn pending_count(conn: Conn<'_>) -> Result<u64, DbError> {
    conn.query_one(
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
        args![],
        |r| r.get::<i64>(0),
    )
    .map(|n| n.max(0) as u64)
}

/// When the next pending message for `transport` is due.
pub fn next_due_ms(conn: Conn<'_>, transport: Transport) -> Result<Option<i64>, DbError> {
    conn.query_one(
        &format!(
            "SELECT MIN(CASE WHEN next_try_ms > leased_until THEN next_try_ms ELSE leased_until END)
             FROM outbox WHERE state = 'pending' AND {}",
            transport.condition()
        ),
        args![],
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
pub fn summary(conn: Conn<'_>, failed_since_ms: i64) -> Result<MailSummary, DbError> {
    let lines = |state: &str, since: i64| -> Result<Vec<MailLine>, DbError> {
        conn.query(
            "SELECT id, kind, subject, recipients, created_ms, attempts, last_error, channel
             FROM outbox WHERE state = ?1 AND created_ms >= ?2 ORDER BY id",
            args![state, since],
            |r| {
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
                    attempts: attempts(r.get(5)?),
                    last_error: r.get(6)?,
                    channel,
                })
            },
        )
    };
    let sent: i64 = conn.query_one(
        "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
        args![],
        |r| r.get(0),
    )?;
    Ok(MailSummary {
        pending: lines("pending", i64::MIN)?,
        failed: lines("failed", failed_since_ms)?,
        sent: sent.max(0) as u64,
    })
}
