//! systemd integration: `READY=1` once probing starts, `RELOADING=1` around a reload, `STOPPING=1`, and watchdog pings that
//! stop (so systemd restarts us) when the store writer stalls.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::store::StoreStats;
use crate::text::Chain;

/// Tells systemd (if it started us with `Type=notify`) that the daemon is ready.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        debug!(error = %Chain(&e), "sd_notify READY failed (not under systemd?).");
    }
}

/// Tells systemd a reload started (`Type=notify-reload` waits for the next `READY=1`).
pub fn notify_reloading() {
    let state = match NotifyState::monotonic_usec_now() {
        Ok(now) => vec![NotifyState::Reloading, now],
        Err(_) => vec![NotifyState::Reloading],
    };
    if let Err(e) = sd_notify::notify(&state) {
        debug!(error = %Chain(&e), "sd_notify RELOADING failed (not under systemd?).");
    }
}

pub fn notify_stopping() -> std::io::Result<()> {
    sd_notify::notify(&[NotifyState::Stopping])
}

/// The watchdog period systemd asked for (`WatchdogSec=`), if any.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Pings the watchdog at half its period while the store writer keeps turning.
pub async fn watchdog(period: Duration, store: Arc<StoreStats>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticker.tick() => {}
        }
        if store.heartbeat.since_last() > period {
            warn!("The store writer is stalled: not pinging the watchdog.");
            continue;
        }
        if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
            debug!(error = %Chain(&e), "Watchdog ping failed.");
        }
    }
}
