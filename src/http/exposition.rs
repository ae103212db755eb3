//! `/metrics`: per-service and daemon series in the Prometheus (OpenMetrics) text format, with
//! prometheus-client. Service tasks update their series as they probe; the month-to-date
//! availability and error budget are refreshed in the background; daemon gauges are read from
//! their counters at each scrape.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use tokio::sync::watch;

use crate::config::{LiveConfig, Service};
use crate::http::metrics::DaemonMetrics;
use crate::http::service_series::{ServiceFamilies, ServiceLabels, ServiceSeries};
use crate::notify::DeliveryStats;
use crate::store::StoreStats;
use crate::text::Chain;

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How often the month-to-date series are recomputed, and the first time (after the first
/// probes).
const MONTH_REFRESH: Duration = Duration::from_secs(300);
const MONTH_FIRST: Duration = Duration::from_secs(2);
/// How many services' months are computed together (their history is read at once).
const MONTH_BATCH: usize = 1000;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series `/metrics` shows.
pub struct Exposition {
    registry: Registry,
    /// Every service's series.
    services: Arc<ServiceFamilies>,
    in_flight: Gauge,
    store_queue: Gauge,
    store_commit_last: FloatGauge,
    store_commit_max: FloatGauge,
    store_write_errors: Counter,
    store_shed: Counter,
    probes_late: Counter,
    speaking: Gauge,
    outbox_pending: Gauge,
    daemon: Arc<DaemonMetrics>,
    store: Arc<StoreStats>,
    delivery: Arc<DeliveryStats>,
}

/// Registers a new metric under `name` and hands it back (clones share the value).
fn registered<M: Metric + Default + Clone>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Exposition {
    pub fn new(
        daemon: Arc<DaemonMetrics>,
        store: Arc<StoreStats>,
        delivery: Arc<DeliveryStats>,
    ) -> Exposition {
        let mut registry = Registry::with_prefix("slaprobe");
        let r = &mut registry;
        let services = Arc::new(ServiceFamilies::default());
        r.register_collector(Box::new(services.clone()));
        let in_flight = registered(r, "probes_in_flight", "Probes running now");
        r.register(
            "schedule_lateness_seconds",
            "How late probes started against their schedule, since start",
            daemon.lateness_seconds.clone(),
        );
        let store_queue = registered(
            r,
            "store_queue_depth",
            "Outcomes waiting for the store writer",
        );
        let store_commit_last = registered(
            r,
            "store_commit_last_seconds",
            "How long the store's latest commit took",
        );
        let store_commit_max = registered(
            r,
            "store_commit_max_seconds",
            "The longest store commit since start",
        );
        let store_write_errors = registered(
            r,
            "store_write_errors",
            "Commits the database refused (disk full, locked); the records are kept and retried",
        );
        let probes_late = registered(
            r,
            "probes_late",
            "Probes that started more than their interval late (overload: a schedule point missed)",
        );
        let store_shed = registered(
            r,
            "store_shed_records",
            "Outcomes dropped from memory during a long write outage (recorded as no-data)",
        );
        let outbox_pending = registered(r, "outbox_pending", "E-mails waiting in the outbox");
        let speaking = registered(
            r,
            "speaking",
            "1 when this daemon decides and sends alerts, digests and statements (a fleet's \
             speaker; always on SQLite), else 0",
        );
        Exposition {
            registry,
            services,
            in_flight,
            store_queue,
            store_commit_last,
            store_commit_max,
            store_write_errors,
            store_shed,
            probes_late,
            speaking,
            outbox_pending,
            daemon,
            store,
            delivery,
        }
    }

    /// A service's series, created when its task starts so that every service shows up before
    /// its first probe.
    pub fn service(&self, labels: ServiceLabels) -> ServiceSeries {
        self.services.service(labels)
    }

    /// Sets the month-to-date series of a service.
    pub fn set_month(
        &self,
        labels: &ServiceLabels,
        availability: Option<f64>,
        budget_left: Option<f64>,
    ) {
        self.services.set_month(labels, availability, budget_left);
    }

    /// A service's confirmed state (1 up, 0 down, -1 unknown) and its open incident's start
    /// (Unix seconds, 0 for none), as its task last published them; `None` for a service not
    /// shown.
    pub fn state(&self, labels: &ServiceLabels) -> Option<(i64, i64)> {
        self.services.state(labels)
    }

    /// The page, as of now.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(1 << 20);
        self.render_to(&mut text)
            .expect("writing to a String does not fail");
        text
    }

    /// The daemon-wide series, read from the counters they follow.
    fn update_daemon_series(&self) {
        let d = &self.daemon;
        self.in_flight.set(d.in_flight.load(Ordering::Relaxed));
        self.speaking
            .set(i64::from(d.speaking.load(Ordering::Relaxed)));
        self.store_queue
            .set(self.store.queued.load(Ordering::Relaxed) as i64);
        self.store_commit_last
            .set(self.store.last_commit_us.load(Ordering::Relaxed) as f64 / 1e6);
        self.store_commit_max
            .set(self.store.max_commit_us.load(Ordering::Relaxed) as f64 / 1e6);
        // Counters follow the writer's own atomics (which only grow).
        for (counter, total) in [
            (&self.store_write_errors, &self.store.write_errors),
            (&self.store_shed, &self.store.shed_records),
            (&self.probes_late, &self.daemon.probes_late),
        ] {
            let total = total.load(Ordering::Relaxed);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.outbox_pending
            .set(self.delivery.pending.load(Ordering::Relaxed) as i64);
    }

    /// Writes the exposition into `out` as it is encoded, so that a scrape can be streamed
    /// (10,000 services are 15 MB of text, which then never sits in memory whole).
    pub fn render_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        self.update_daemon_series();
        prometheus_client::encoding::text::encode(out, &self.registry)
    }
}

/// Recomputes every service's month-to-date availability and budget shortly after start and
/// after a reload, then every few minutes, until `stop`.
pub async fn refresh(
    exposition: Arc<Exposition>,
    mut config: LiveConfig,
    clock: crate::clock::Clock,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = MONTH_FIRST;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            true = config.changed() => {
                wait = MONTH_FIRST;
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait = MONTH_REFRESH;
        let (exposition_c, live) = (exposition.clone(), config.clone());
        let now = clock.now_ms();
        let result =
            tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
                let config = live.current();
                let db = crate::store::open_reader_db(&config.daemon)?;
                let services: Vec<&Service> = config.services.iter().map(|s| &**s).collect();
                // A service removed or moved by a reload meanwhile gets no series back.
                let current = live.current();
                let in_force: HashSet<(&str, &str)> = current
                    .services
                    .iter()
                    .map(|s| (s.id.as_str(), s.contract.as_str()))
                    .collect();
                // A batch at a time: at 100,000 services every month at once took 50 MB.
                for batch in services.chunks(MONTH_BATCH) {
                    let months = crate::report::month_budgets(db.conn(), &config, batch, now)?;
                    for (service, month) in batch.iter().zip(months) {
                        if !in_force.contains(&(service.id.as_str(), service.contract.as_str())) {
                            continue;
                        }
                        exposition_c.set_month(
                            &ServiceLabels::new(&service.id, &service.contract),
                            month.numbers.availability(),
                            month.budget.remaining_share(),
                        );
                    }
                }
                Ok(())
            })
            .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %Chain(&e), "Cannot refresh the month-to-date metrics.");
        }
    }
}
