//! One task per service: wait for the schedule, take a slot under the global cap, probe, feed
//! the state machine, hand the outcome and its events to the store. A reload hands the task
//! new settings (it keeps its state) or ends it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::alert::{AlertSender, Transition};
use crate::clock::Clock;
use crate::config::Service;
use crate::http::metrics::DaemonMetrics;
use crate::http::service_series::{ServiceLabels, ServiceSeries};
use crate::probe::{Outcome, Prober};
use crate::runtime::schedule::Schedule;
use crate::sla::tracker::{Event, Health, Tracker};
use crate::store::{Record, ServiceNum, Store};
use crate::text::Chain;

/// Runs one probe of a service. The daemon uses `Prober`; scheduler tests use a stand-in that
/// answers at once, so timing can be checked on tokio's paused clock.
pub trait ProbeRunner: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        service: &'a Service,
        at_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

    /// `run`, and the `notAfter` (ms) of a certificate near expiry if the probe saw one.
    fn run_noted<'a>(
        &'a self,
        service: &'a Service,
        at_ms: i64,
    ) -> Pin<Box<dyn Future<Output = (Outcome, Option<i64>)> + Send + 'a>> {
        Box::pin(async move { (self.run(service, at_ms).await, None) })
    }
}

impl ProbeRunner for Prober {
    fn run<'a>(
        &'a self,
        service: &'a Service,
        at_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(Prober::run(self, &service.probe, service.timeout, at_ms))
    }

    fn run_noted<'a>(
        &'a self,
        service: &'a Service,
        at_ms: i64,
    ) -> Pin<Box<dyn Future<Output = (Outcome, Option<i64>)> + Send + 'a>> {
        Box::pin(Prober::run_noted(
            self,
            &service.probe,
            service.timeout,
            at_ms,
        ))
    }
}

/// What every service task shares.
pub struct Shared {
    pub runner: Arc<dyn ProbeRunner>,
    /// Where incident transitions go for alerting (a single machine's; a fleet's alerting
    /// follows the verdict instead).
    pub alerts: Option<AlertSender>,
    /// Where a certificate near expiry is told.
    pub certificates: CertificateNotices,
    pub store: Store,
    pub clock: Clock,
    /// The global cap on probes in flight.
    pub slots: Arc<Semaphore>,
    pub metrics: Arc<DaemonMetrics>,
}

/// Where the service tasks tell of a certificate near expiry: alerting on a single machine; on
/// a fleet the speaker's alerting while this daemon speaks, and nowhere while it stands by (a
/// certificate is a fact, not a verdict: the speaker's own probes see it, and the flag that it
/// was told is shared, so a new speaker does not tell it again).
#[derive(Clone, Default)]
pub struct CertificateNotices(Arc<std::sync::Mutex<Option<AlertSender>>>);

impl CertificateNotices {
    pub fn to(alerts: Option<AlertSender>) -> CertificateNotices {
        CertificateNotices(Arc::new(std::sync::Mutex::new(alerts)))
    }

    /// From here on, tell `alerts` (`None`: tell no one).
    pub fn set(&self, alerts: Option<AlertSender>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = alerts;
    }

    fn tell(&self, service: &str, not_after_ms: i64) {
        if let Some(alerts) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            alerts.cert_expiring(service, not_after_ms);
        }
    }
}

/// One service's task state.
pub struct ServiceTask {
    pub service: Arc<Service>,
    /// Its `/metrics` series.
    pub series: ServiceSeries,
    pub num: ServiceNum,
    pub tracker: Tracker,
    pub schedule: Schedule,
    pub shared: Arc<Shared>,
    /// Where the daemon leaves the task its news.
    pub updates: Arc<Updates>,
}

/// What a reload (or the daemon's stop) tells a service task.
#[derive(Debug, Clone)]
pub enum Update {
    Reloaded(Arc<Service>),
    /// Removed from the config: its series go too.
    Removed,
    /// The daemon stops: the probe in flight, if any, finishes and is recorded.
    Stop,
}

impl Update {
    /// Which word stands when another comes before the task reads it: a stop over a removal
    /// over a change.
    fn weight(&self) -> u8 {
        match self {
            Update::Reloaded(_) => 0,
            Update::Removed => 1,
            Update::Stop => 2,
        }
    }
}

/// Where the daemon leaves a service task its news: one slot, the weightiest word wins (the
/// latest among changes). Ten thousand services each had a tokio channel, half a kilobyte
/// apiece, for news that comes once in months.
#[derive(Debug, Default)]
pub struct Updates {
    next: std::sync::Mutex<Option<Update>>,
    notify: tokio::sync::Notify,
}

impl Updates {
    pub fn send(&self, update: Update) {
        {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            if next.as_ref().is_none_or(|n| update.weight() >= n.weight()) {
                *next = Some(update);
            }
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Update> {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The next word; waits for one. (A `notify_one` with nobody waiting is kept, so a word
    /// left between the look and the wait is not missed.)
    async fn next(&self) -> Update {
        loop {
            if let Some(update) = self.take() {
                return update;
            }
            self.notify.notified().await;
        }
    }
}

impl ServiceTask {
    /// Probes on schedule until `updates` says stop or removed; a probe in flight then
    /// finishes (bounded by its timeout) and is recorded before the task ends. New settings
    /// from `updates` apply between probes.
    #[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see the body
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        // Not an `async fn` taking `self`: that keeps the task's state twice in its future
        // (once as it came, once as the body's own), 1,400 bytes a service instead of 768.
        async move { self.probe_until_stopped().await }
    }

    async fn probe_until_stopped(&mut self) {
        let (shared, updates) = (self.shared.clone(), self.updates.clone());
        loop {
            let id = &self.service.id;
            let word = tokio::select! {
                biased;
                word = updates.next() => Some(word),
                _ = tokio::time::sleep_until(self.schedule.due()) => None,
            };
            let permit = match word {
                Some(word) => Err(word),
                None => match shared.slots.try_acquire() {
                    Ok(permit) => Ok(permit),
                    // Every slot is taken: wait for one, or for news.
                    Err(_) => tokio::select! {
                        biased;
                        word = updates.next() => Err(word),
                        permit = shared.slots.acquire() => permit.map_err(|_| Update::Stop),
                    },
                },
            };
            let permit = match permit {
                Ok(permit) => permit,
                Err(Update::Stop) => break,
                Err(Update::Removed) => {
                    info!(service = %id, "Removed from the config: no longer probed.");
                    self.series.retire();
                    return;
                }
                Err(Update::Reloaded(service)) => {
                    self.apply(service);
                    continue;
                }
            };
            let due = self.schedule.due();
            let started = Instant::now();
            let late = started.saturating_duration_since(due);
            shared.metrics.record_lateness(late);
            if late > self.service.interval
                && let Some(total) = shared.metrics.note_late(shared.clock.now_ms())
            {
                warn!(
                    service = %id,
                    late = %humantime::format_duration(std::time::Duration::from_millis(late.as_millis() as u64)),
                    probes_late = total,
                    "Probes are running late, missing schedule points (recorded as no-data): \
                     raise `max_in_flight`, lengthen intervals or shorten timeouts."
                );
            }
            shared.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
            let at_ms = shared.clock.now_ms();
            let (outcome, cert_expiring) = shared.runner.run_noted(&self.service, at_ms).await;
            if let Some(not_after_ms) = cert_expiring {
                shared.certificates.tell(id, not_after_ms);
            }
            shared.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);

            shared.metrics.probes.fetch_add(1, Ordering::Relaxed);
            if let Some(failure) = &outcome.failure {
                shared.metrics.probes_failed.fetch_add(1, Ordering::Relaxed);
                debug!(service = %id, reason = %failure.reason, detail = %failure.detail, "Probe failed.");
            }
            let first = !self.tracker.has_history();
            let events = self.tracker.observe(&outcome);
            self.series.observe(&outcome);
            self.publish_state();
            for event in &events {
                log_event(id, event);
                if let Some(alerts) = &shared.alerts {
                    match event {
                        Event::IncidentOpened {
                            start_ms,
                            first_failure,
                        } => alerts.send(Transition::Opened {
                            service: id.clone(),
                            start_ms: *start_ms,
                            failure: first_failure.clone(),
                        }),
                        Event::IncidentClosed { start_ms, end_ms } => {
                            alerts.send(Transition::Closed {
                                service: id.clone(),
                                start_ms: *start_ms,
                                end_ms: *end_ms,
                            })
                        }
                        _ => {}
                    }
                }
            }
            let ok = outcome.is_ok();
            if let Err(e) = shared.store.record(Record {
                service: self.num,
                outcome,
                events,
                first,
            }) {
                error!(service = %id, error = %Chain(&e), "Cannot record the outcome; stopping.");
                break;
            }
            self.schedule.advance(ok, Instant::now());
        }
    }
}

impl ServiceTask {
    /// Takes a reloaded service's settings, keeping the state machine's state. A new interval
    /// or retry interval restarts the schedule from now; otherwise the schedule goes on.
    fn apply(&mut self, service: Arc<Service>) {
        if service.contract != self.service.contract {
            self.series
                .relabel(ServiceLabels::new(&service.id, &service.contract));
        }
        self.tracker.set_rules(service.tracker_rules());
        if (service.interval, service.retry_interval)
            != (self.service.interval, self.service.retry_interval)
        {
            self.schedule = Schedule::new(
                self.schedule.ticks(),
                Instant::now(),
                &service.id,
                service.interval,
                service.retry_interval,
            );
        }
        info!(service = %service.id, "Reloaded: new settings apply from the next probe.");
        self.service = service;
        self.publish_state();
    }

    /// Shows the tracker's state in the service's series.
    pub fn publish_state(&self) {
        let up = match self.tracker.health() {
            Health::Up => Some(true),
            Health::Down => Some(false),
            Health::Unknown => None,
        };
        self.series
            .set_state(up, self.tracker.open_incident().map(|i| i.start_ms));
    }
}

fn log_event(id: &str, event: &Event) {
    let at = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ms.to_string())
    };
    match event {
        Event::IncidentOpened {
            start_ms,
            first_failure,
        } => warn!(
            service = %id,
            since = %at(*start_ms),
            reason = %first_failure.reason,
            detail = %first_failure.detail,
            "Service is DOWN."
        ),
        Event::IncidentClosed { start_ms, end_ms } => info!(
            service = %id,
            since = %at(*start_ms),
            until = %at(*end_ms),
            down_s = (end_ms - start_ms) as f64 / 1000.0,
            "Service RECOVERED."
        ),
        Event::Blip {
            start_ms,
            failures,
            reason,
            ..
        } => {
            info!(service = %id, at = %at(*start_ms), failures, %reason, "Blip (not confirmed as down).")
        }
        Event::NoData { start_ms, end_ms } => info!(
            service = %id,
            from = %at(*start_ms),
            until = %at(*end_ms),
            "No data for this stretch (recorded as no-data)."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str) -> Arc<Service> {
        let text = format!(
            "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99%\"\n\n\
             [[service]]\nid = \"{id}\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\n"
        );
        let config = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        config.services[0].clone()
    }

    #[tokio::test]
    async fn the_latest_change_wins_and_a_removal_or_a_stop_stands() {
        let updates = Updates::default();
        // Sent before anyone waits: kept, not lost.
        updates.send(Update::Reloaded(service("a")));
        updates.send(Update::Reloaded(service("b")));
        match updates.next().await {
            Update::Reloaded(s) => assert_eq!(s.id, "b"),
            other => panic!("{other:?}"),
        }
        updates.send(Update::Removed);
        updates.send(Update::Reloaded(service("c")));
        assert!(matches!(updates.next().await, Update::Removed));
        updates.send(Update::Stop);
        updates.send(Update::Removed);
        updates.send(Update::Reloaded(service("d")));
        assert!(matches!(updates.next().await, Update::Stop));
        updates.send(Update::Removed);
        updates.send(Update::Stop);
        assert!(matches!(updates.next().await, Update::Stop));
        // Nothing more: the wait goes on.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), updates.next()).await;
        assert!(waited.is_err());
    }
}
