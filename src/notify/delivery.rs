//! The delivery tasks: one per transport (the SMTP server; the HTTP channels), each claims due
//! messages from the outbox one at a time, hands them over, and records the result: sent,
//! retried later with exponential backoff or after the receiver's `Retry-After` (a transient
//! failure: connection refused, timeout, SMTP 4xx, HTTP 408/429/5xx), or failed (a permanent
//! rejection, logged and kept for `status`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::backoff::Backoff;
use super::channels::HttpChannels;
use super::smtp::Mailer;
use crate::clock::Clock;
use crate::store::outbox::{self, Claimed, Transport};
use crate::store::{SharedConnection, with_db};
use crate::text::Chain;

/// The outbox is looked at this often even without a wake-up (messages queued by another
/// process, such as `slaprobe statement --send`, or leases that expired).
const POLL_EVERY: Duration = Duration::from_secs(5);

/// Counters for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
    /// Messages pending in the outbox at the latest look.
    pub pending: AtomicU64,
}

/// Where composed alerts go: the outbox (with the sender and the delivery task to wake), or
/// the log when there is no `[smtp]`.
#[derive(Clone)]
pub struct MailOut {
    pub from: lettre::message::Mailbox,
    pub wake: Arc<Notify>,
    /// For alerts the outbox cannot take (database full or locked): sent directly.
    pub mailer: Arc<Mailer>,
}

/// What hands claimed messages over: the SMTP server, or the HTTP channels.
#[derive(Clone)]
pub enum Deliverer {
    Smtp(Arc<Mailer>),
    Http(Arc<HttpChannels>),
}

impl Deliverer {
    fn transport(&self) -> Transport {
        match self {
            Deliverer::Smtp(_) => Transport::Email,
            Deliverer::Http(_) => Transport::Http,
        }
    }

    /// Sends one claimed message. Never cancelled half-way: the receiver may already have
    /// taken it, and dropping the answer would send it twice; each transport bounds its time.
    pub async fn send(&self, message: &Claimed, now_ms: i64) -> Result<(), super::SendError> {
        match self {
            Deliverer::Smtp(mailer) => {
                mailer
                    .send(&message.sender, &message.recipients, &message.message)
                    .await
            }
            Deliverer::Http(channels) => {
                let destination = message.recipients.join("\n");
                channels.send(&destination, &message.message, now_ms).await
            }
        }
    }
}

/// Delivers until `stop` turns true. Messages left over stay in the outbox for the next start.
pub async fn deliver(
    db: SharedConnection,
    deliverer: Deliverer,
    clock: Clock,
    wake: Arc<Notify>,
    stats: Arc<DeliveryStats>,
    backoff: Backoff,
    mut stop: watch::Receiver<bool>,
) {
    let transport = deliverer.transport();
    match &deliverer {
        Deliverer::Smtp(mailer) => info!(server = %mailer.server, "Mail delivery started."),
        Deliverer::Http(_) => info!("Delivery to webhooks, Slack and Telegram started."),
    }
    loop {
        if *stop.borrow() {
            break;
        }
        let now = clock.now_ms();
        let claimed =
            match with_db(&db, move |c| outbox::claim_next(c.conn(), now, transport)).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    error!(error = %Chain(&e), "Cannot read the outbox; trying again shortly.");
                    None
                }
            };
        if let Some(message) = claimed {
            let result = deliverer.send(&message, now).await;
            record(&db, &clock, &stats, backoff, message, result).await;
            continue;
        }
        let next = with_db(&db, move |c| outbox::next_due_ms(c.conn(), transport))
            .await
            .ok()
            .flatten();
        let wait = next
            .map(|due| Duration::from_millis((due - clock.now_ms()).max(0) as u64))
            .unwrap_or(POLL_EVERY)
            .min(POLL_EVERY);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    match transport {
        Transport::Email => info!("Mail delivery stopped; anything not sent stays in the outbox."),
        Transport::Http => {
            info!("Channel delivery stopped; anything not sent stays in the outbox.")
        }
    }
}

/// Who a message goes to, for logs: the addresses, or the channel without its secrets.
fn destination_label(message: &Claimed) -> String {
    if message.channel == "email" {
        return message.recipients.join(", ");
    }
    serde_json::from_str::<crate::config::Channel>(&message.recipients.join("\n"))
        .map(|c| c.describe())
        .unwrap_or_else(|_| message.channel.clone())
}

/// Records the result of one delivery attempt (and logs it).
pub async fn record(
    db: &SharedConnection,
    clock: &Clock,
    stats: &DeliveryStats,
    backoff: Backoff,
    message: Claimed,
    result: Result<(), super::SendError>,
) {
    let now = clock.now_ms();
    let attempts = message.attempts + 1;
    let id = message.id;
    let write = match result {
        Ok(()) => {
            stats.sent.fetch_add(1, Ordering::Relaxed);
            info!(
                id,
                subject = %message.subject,
                channel = %message.channel,
                to = %destination_label(&message),
                attempts,
                waited_ms = now - message.created_ms,
                "Mail sent."
            );
            let was_retried = message.attempts > 0;
            let channel = message.channel.clone();
            with_db(db, move |c| {
                outbox::mark_sent(c.conn(), id, attempts, now)?;
                if was_retried {
                    // The receiver is back: what waits for its backoff can go now.
                    outbox::retry_waiting_now(c.conn(), now, &channel)?;
                }
                Ok(())
            })
            .await
        }
        Err(e) if e.permanent => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            error!(
                id,
                subject = %message.subject,
                channel = %message.channel,
                to = %destination_label(&message),
                error = %e.message,
                "Mail rejected permanently; not retrying (see `slaprobe status`)."
            );
            with_db(db, move |c| {
                outbox::mark_failed(c.conn(), id, attempts, now, &e.message)
            })
            .await
        }
        Err(e) => {
            stats.retries.fetch_add(1, Ordering::Relaxed);
            let next = now
                + e.retry_after_ms
                    .unwrap_or_else(|| backoff.delay_ms(attempts));
            warn!(
                id,
                subject = %message.subject,
                error = %e.message,
                attempts,
                retry_in_s = (next - now) / 1000,
                "Mail not delivered yet; will retry."
            );
            with_db(db, move |c| {
                outbox::mark_retry(c.conn(), id, attempts, next, &e.message)
            })
            .await
        }
    };
    if let Err(e) = write {
        error!(id, error = %Chain(&e), "Cannot record the delivery result; the message may be sent again.");
    }
}
