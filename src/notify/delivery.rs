//! The delivery task: claims due messages from the outbox one at a time, hands them to the SMTP
//! server, and records the result: sent, retried later with exponential backoff (a transient
//! failure: connection refused, timeout, 4xx), or failed (a 5xx rejection, logged and kept).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::backoff::Backoff;
use super::smtp::Mailer;
use crate::clock::Clock;
use crate::store::outbox::{self, Claimed};
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

/// Delivers until `stop` turns true. Mail left over stays in the outbox for the next start.
pub async fn deliver(
    db: SharedConnection,
    mailer: Arc<Mailer>,
    clock: Clock,
    wake: Arc<Notify>,
    stats: Arc<DeliveryStats>,
    backoff: Backoff,
    mut stop: watch::Receiver<bool>,
) {
    info!(server = %mailer.server, "Mail delivery started.");
    loop {
        if *stop.borrow() {
            break;
        }
        let now = clock.now_ms();
        let claimed = match with_db(&db, move |c| outbox::claim_next(c, now)).await {
            Ok(claimed) => claimed,
            Err(e) => {
                error!(error = %Chain(&e), "Cannot read the outbox; trying again shortly.");
                None
            }
        };
        if let Some(message) = claimed {
            // Never cancelled half-way: the server may already have taken the message, and
            // dropping the answer would send it twice. `Mailer::send` bounds the whole conversation.
            let result = mailer
                .send(&message.sender, &message.recipients, &message.message)
                .await;
            record(&db, &clock, &stats, backoff, message, result).await;
            continue;
        }
        let next = with_db(&db, |c| outbox::next_due_ms(c))
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
    info!("Mail delivery stopped; anything not sent stays in the outbox.");
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
                to = %message.recipients.join(", "),
                attempts,
                waited_ms = now - message.created_ms,
                "Mail sent."
            );
            let was_retried = message.attempts > 0;
            with_db(db, move |c| {
                outbox::mark_sent(c, id, attempts, now)?;
                if was_retried {
                    // The server is back: what waits for its backoff can go now.
                    outbox::retry_waiting_now(c, now)?;
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
                to = %message.recipients.join(", "),
                error = %e.message,
                "Mail rejected permanently; not retrying (see `slaprobe status`)."
            );
            with_db(db, move |c| {
                outbox::mark_failed(c, id, attempts, now, &e.message)
            })
            .await
        }
        Err(e) => {
            stats.retries.fetch_add(1, Ordering::Relaxed);
            let next = now + backoff.delay_ms(attempts);
            warn!(
                id,
                subject = %message.subject,
                error = %e.message,
                attempts,
                retry_in_s = (next - now) / 1000,
                "Mail not delivered yet; will retry."
            );
            with_db(db, move |c| {
                outbox::mark_retry(c, id, attempts, next, &e.message)
            })
            .await
        }
    };
    if let Err(e) = write {
        error!(id, error = %Chain(&e), "Cannot record the delivery result; the message may be sent again.");
    }
}
