//! `/metrics`: per-service and daemon series in the Prometheus (OpenMetrics) text format, with
//! prometheus-client. Service tasks update their series as they probe; the month-to-date
//! availability and error budget are refreshed in the background; daemon gauges are read from
//! their counters at each scrape.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use tokio::sync::watch;

use crate::config::{LiveConfig, Service};
use crate::http::metrics::DaemonMetrics;
use crate::notify::DeliveryStats;
use crate::probe::Outcome;
use crate::store::StoreStats;
use crate::text::Chain;

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Probe duration buckets, in seconds.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the month-to-date series are recomputed, and the first time (after the first
/// probes).
const MONTH_REFRESH: Duration = Duration::from_secs(300);
const MONTH_FIRST: Duration = Duration::from_secs(2);

/// A service's labels. The names are shared (`Arc<str>`): each of a service's six families
/// holds the same two strings, not a copy of them.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: Arc<str>,
    pub contract: Arc<str>,
}

impl ServiceLabels {
    pub fn new(service: &str, contract: &str) -> ServiceLabels {
        ServiceLabels {
            service: service.into(),
            contract: contract.into(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    service: Arc<str>,
    contract: Arc<str>,
    result: &'static str,
    reason: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series `/metrics` shows.
pub struct Exposition {
    registry: Registry,
    up: Family<ServiceLabels, Gauge>,
    duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    probes: Family<ProbeLabels, Counter>,
    availability: Family<ServiceLabels, FloatGauge>,
    budget_remaining: Family<ServiceLabels, FloatGauge>,
    incident_since: Family<ServiceLabels, Gauge>,
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

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Exposition {
    pub fn new(
        daemon: Arc<DaemonMetrics>,
        store: Arc<StoreStats>,
        delivery: Arc<DeliveryStats>,
    ) -> Exposition {
        let mut registry = Registry::with_prefix("slaprobe");
        let r = &mut registry;
        let up = registered(
            r,
            "up",
            "1 when the service is up, 0 when down, -1 before its first confirmed state",
        );
        let duration = Family::<ServiceLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        r.register(
            "probe_duration_seconds",
            "How long each probe took (failed ones included)",
            duration.clone(),
        );
        let probes = registered(
            r,
            "probes",
            "Probes run, by result (ok, failed) and failure reason",
        );
        let availability = registered(
            r,
            "availability_month_ratio",
            "This month's availability so far, in the contract's zone (refreshed every 5 minutes)",
        );
        let budget_remaining = registered(
            r,
            "error_budget_remaining_ratio",
            "Share of this month's error budget left (negative: overspent; refreshed every 5 minutes)",
        );
        let incident_since = registered(
            r,
            "incident_open_since_seconds",
            "Unix time the open incident started; 0 when there is none",
        );
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
            up,
            duration,
            probes,
            availability,
            budget_remaining,
            incident_since,
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
        ServiceSeries::new(
            Families {
                up: self.up.clone(),
                duration: self.duration.clone(),
                probes: self.probes.clone(),
                availability: self.availability.clone(),
                budget_remaining: self.budget_remaining.clone(),
                incident_since: self.incident_since.clone(),
            },
            labels,
        )
    }

    /// Sets the month-to-date series of a service.
    pub fn set_month(
        &self,
        labels: &ServiceLabels,
        availability: Option<f64>,
        budget_left: Option<f64>,
    ) {
        let set = |family: &Family<ServiceLabels, FloatGauge>, value: Option<f64>| match value {
            Some(v) => {
                family.get_or_create(labels).set(v);
            }
            None => {
                family.remove(labels);
            }
        };
        set(&self.availability, availability);
        set(&self.budget_remaining, budget_left);
    }

    /// A service's confirmed state (1 up, 0 down, -1 unknown) and its open incident's start
    /// (Unix seconds, 0 for none), as its task last published them.
    pub fn state(&self, labels: &ServiceLabels) -> (i64, i64) {
        (
            self.up.get_or_create(labels).get(),
            self.incident_since.get_or_create(labels).get(),
        )
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

/// The per-service families, shared by every service's series.
#[derive(Clone)]
struct Families {
    up: Family<ServiceLabels, Gauge>,
    duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    probes: Family<ProbeLabels, Counter>,
    availability: Family<ServiceLabels, FloatGauge>,
    budget_remaining: Family<ServiceLabels, FloatGauge>,
    incident_since: Family<ServiceLabels, Gauge>,
}

/// One service's series, held by its task.
pub struct ServiceSeries {
    families: Families,
    labels: ServiceLabels,
    up: Gauge,
    duration: Histogram,
    ok: Counter,
    incident_since: Gauge,
}

impl ServiceSeries {
    fn new(families: Families, labels: ServiceLabels) -> ServiceSeries {
        let series = ServiceSeries {
            up: families.up.get_or_create_owned(&labels),
            duration: families.duration.get_or_create_owned(&labels),
            ok: families
                .probes
                .get_or_create_owned(&probe_labels(&labels, None)),
            incident_since: families.incident_since.get_or_create_owned(&labels),
            families,
            labels,
        };
        series.up.set(-1);
        series
    }

    pub fn labels(&self) -> &ServiceLabels {
        &self.labels
    }

    pub fn observe(&self, outcome: &Outcome) {
        self.duration.observe(outcome.latency.as_secs_f64());
        match &outcome.failure {
            None => {
                self.ok.inc();
            }
            Some(failure) => {
                self.families
                    .probes
                    .get_or_create(&probe_labels(&self.labels, Some(failure.reason)))
                    .inc();
            }
        }
    }

    /// The confirmed state: `Some(true)` up, `Some(false)` down, with the open incident's start.
    pub fn set_state(&self, up: Option<bool>, incident_start_ms: Option<i64>) {
        self.up.set(match up {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        });
        self.incident_since
            .set(incident_start_ms.map_or(0, |ms| ms.div_euclid(1000)));
    }

    /// The same service under new labels (its contract changed in a reload): the old series
    /// go, new ones start from zero (Prometheus sees a new series, not a reset).
    pub fn relabel(&mut self, labels: ServiceLabels) {
        self.retire();
        *self = ServiceSeries::new(self.families.clone(), labels);
    }

    /// Removes every series of the service (it was removed from the config).
    pub fn retire(&self) {
        let f = &self.families;
        f.up.remove(&self.labels);
        f.duration.remove(&self.labels);
        f.availability.remove(&self.labels);
        f.budget_remaining.remove(&self.labels);
        f.incident_since.remove(&self.labels);
        f.probes.remove(&probe_labels(&self.labels, None));
        for reason in crate::probe::Reason::ALL {
            f.probes.remove(&probe_labels(&self.labels, Some(reason)));
        }
    }
}

fn probe_labels(labels: &ServiceLabels, failed: Option<crate::probe::Reason>) -> ProbeLabels {
    ProbeLabels {
        service: labels.service.clone(),
        contract: labels.contract.clone(),
        result: if failed.is_some() { "failed" } else { "ok" },
        reason: failed.map_or("", |r| r.as_str()),
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
                let months = crate::report::month_budgets(db.conn(), &config, &services, now)?;
                // A service removed or moved by a reload meanwhile gets no series back.
                let current = live.current();
                let in_force: HashSet<(&str, &str)> = current
                    .services
                    .iter()
                    .map(|s| (s.id.as_str(), s.contract.as_str()))
                    .collect();
                for (service, month) in services.iter().zip(months) {
                    if !in_force.contains(&(service.id.as_str(), service.contract.as_str())) {
                        continue;
                    }
                    exposition_c.set_month(
                        &ServiceLabels::new(&service.id, &service.contract),
                        month.numbers.availability(),
                        month.budget.remaining_share(),
                    );
                }
                Ok(())
            })
            .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %Chain(&e), "Cannot refresh the month-to-date metrics.");
        }
    }
}
