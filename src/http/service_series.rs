//! Every service's `/metrics` series, one small record a service: its task updates the record
//! as it probes, the month-to-date refresh sets its month's figures, and a scrape writes them
//! as the six per-service families. (prometheus-client's families kept a hash-map entry and an
//! allocation for each series of each service: about 650 bytes a service, against 270 here.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::http::duration_histogram::DurationHistogram;
use crate::probe::{Outcome, Reason};

/// A service's labels. The names are `Arc<str>`, so that a contract's name is held once for
/// all its services (`ServiceFamilies::service` shares it).
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

/// An `f64` gauge that may be absent (no month figure yet): absent is `NONE`'s bits.
#[derive(Debug)]
struct OptionalRatio(AtomicU64);

impl OptionalRatio {
    const NONE: u64 = u64::MAX;

    fn set(&self, value: Option<f64>) {
        self.0
            .store(value.map_or(Self::NONE, f64::to_bits), Ordering::Relaxed);
    }

    fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            Self::NONE => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

impl Default for OptionalRatio {
    fn default() -> Self {
        OptionalRatio(AtomicU64::new(Self::NONE))
    }
}

type FailedCounts = [AtomicU64; Reason::ALL.len()];

/// One service's figures.
#[derive(Debug)]
struct Values {
    /// 1 up, 0 down, -1 before the first confirmed state.
    up: AtomicI64,
    /// Unix seconds the open incident started; 0 for none.
    incident_since: AtomicI64,
    ok: AtomicU64,
    /// Failed probes by reason, in `Reason::ALL`'s order; made at the first failure (most
    /// services never fail: 80 bytes each saved).
    failed: OnceLock<Box<FailedCounts>>,
    duration: DurationHistogram,
    availability: OptionalRatio,
    budget_remaining: OptionalRatio,
}

impl Default for Values {
    fn default() -> Self {
        Values {
            up: AtomicI64::new(-1),
            incident_since: AtomicI64::new(0),
            ok: AtomicU64::new(0),
            failed: OnceLock::new(),
            duration: DurationHistogram::default(),
            availability: OptionalRatio::default(),
            budget_remaining: OptionalRatio::default(),
        }
    }
}

/// The records of every service shown, by labels; registered once as a collector.
#[derive(Debug, Default)]
pub struct ServiceFamilies {
    services: RwLock<HashMap<ServiceLabels, Arc<Values>>>,
    /// Each contract's name once, for all its services' labels.
    contracts: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
}

impl ServiceFamilies {
    /// A new service's series (its record starts afresh, replacing any under the same labels).
    pub fn service(self: &Arc<Self>, mut labels: ServiceLabels) -> ServiceSeries {
        {
            let mut contracts = self.contracts.lock().unwrap_or_else(|p| p.into_inner());
            match contracts.get(&labels.contract) {
                Some(same) => labels.contract = same.clone(),
                None => {
                    contracts.insert(labels.contract.clone());
                }
            }
        }
        let values = Arc::new(Values::default());
        self.write().insert(labels.clone(), values.clone());
        ServiceSeries {
            families: self.clone(),
            labels,
            values,
        }
    }

    /// Sets the month-to-date figures of the service under `labels`, if it is shown.
    pub fn set_month(
        &self,
        labels: &ServiceLabels,
        availability: Option<f64>,
        budget_left: Option<f64>,
    ) {
        if let Some(values) = self.read().get(labels) {
            values.availability.set(availability);
            values.budget_remaining.set(budget_left);
        }
    }

    /// A service's confirmed state (1 up, 0 down, -1 unknown) and its open incident's start
    /// (Unix seconds, 0 for none), as its task last published them; `None` for a service not
    /// shown.
    pub fn state(&self, labels: &ServiceLabels) -> Option<(i64, i64)> {
        let services = self.read();
        let values = services.get(labels)?;
        Some((
            values.up.load(Ordering::Relaxed),
            values.incident_since.load(Ordering::Relaxed),
        ))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ServiceLabels, Arc<Values>>> {
        self.services.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ServiceLabels, Arc<Values>>> {
        self.services.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Collector for ServiceFamilies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Taken out from under the lock first: a scrape streamed to a slow client must not hold
        // up a reload that adds or removes services.
        let services: Vec<(ServiceLabels, Arc<Values>)> = self
            .read()
            .iter()
            .map(|(labels, values)| (labels.clone(), values.clone()))
            .collect();
        gauges(
            &mut encoder,
            "up",
            "1 when the service is up, 0 when down, -1 before its first confirmed state",
            &services,
            |v| Some(v.up.load(Ordering::Relaxed)),
        )?;
        let mut family = encoder.encode_descriptor(
            "probe_duration_seconds",
            "How long each probe took (failed ones included)",
            None,
            MetricType::Histogram,
        )?;
        for (labels, values) in &services {
            values.duration.encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "probes",
            "Probes run, by result (ok, failed) and failure reason",
            None,
            MetricType::Counter,
        )?;
        for (labels, values) in &services {
            let probe_labels = |result: &'static str, reason: &'static str| {
                [
                    ("service", &*labels.service),
                    ("contract", &*labels.contract),
                    ("result", result),
                    ("reason", reason),
                ]
            };
            let ok = values.ok.load(Ordering::Relaxed);
            ConstCounter::new(ok).encode(family.encode_family(&probe_labels("ok", ""))?)?;
            // A reason is shown from its first failure on.
            let failed = values.failed.get().map_or(&[][..], |f| &f[..]);
            for (reason, count) in Reason::ALL.iter().zip(failed) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let labels = probe_labels("failed", reason.as_str());
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        gauges(
            &mut encoder,
            "availability_month_ratio",
            "This month's availability so far, in the contract's zone (refreshed every 5 minutes)",
            &services,
            |v| v.availability.get(),
        )?;
        gauges(
            &mut encoder,
            "error_budget_remaining_ratio",
            "Share of this month's error budget left (negative: overspent; refreshed every 5 minutes)",
            &services,
            |v| v.budget_remaining.get(),
        )?;
        gauges(
            &mut encoder,
            "incident_open_since_seconds",
            "Unix time the open incident started; 0 when there is none",
            &services,
            |v| Some(v.incident_since.load(Ordering::Relaxed)),
        )?;
        Ok(())
    }
}

/// A gauge family: each service's `value`, and no series for a service whose value is `None`.
fn gauges<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    services: &[(ServiceLabels, Arc<Values>)],
    value: impl Fn(&Values) -> Option<N>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, values) in services {
        if let Some(value) = value(values) {
            ConstGauge::new(value).encode(family.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// One service's series, held by its task.
pub struct ServiceSeries {
    families: Arc<ServiceFamilies>,
    labels: ServiceLabels,
    values: Arc<Values>,
}

impl ServiceSeries {
    pub fn labels(&self) -> &ServiceLabels {
        &self.labels
    }

    pub fn observe(&self, outcome: &Outcome) {
        let values = &self.values;
        values.duration.observe(outcome.latency);
        let count = match &outcome.failure {
            None => &values.ok,
            Some(failure) => {
                let i = Reason::ALL.iter().position(|r| *r == failure.reason);
                let failed = values.failed.get_or_init(Default::default);
                &failed[i.unwrap_or(Reason::ALL.len() - 1)]
            }
        };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// The confirmed state: `Some(true)` up, `Some(false)` down, with the open incident's start.
    pub fn set_state(&self, up: Option<bool>, incident_start_ms: Option<i64>) {
        let up = match up {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        };
        self.values.up.store(up, Ordering::Relaxed);
        let since = incident_start_ms.map_or(0, |ms| ms.div_euclid(1000));
        self.values.incident_since.store(since, Ordering::Relaxed);
    }

    /// The same service under new labels (its contract changed in a reload): the old series
    /// go, new ones start from zero (Prometheus sees a new series, not a reset).
    pub fn relabel(&mut self, labels: ServiceLabels) {
        self.retire();
        *self = self.families.service(labels);
    }

    /// Removes every series of the service (it was removed from the config).
    pub fn retire(&self) {
        let mut services = self.families.write();
        // Only its own record: a service re-added meanwhile under the same labels has a new one.
        if services
            .get(&self.labels)
            .is_some_and(|v| Arc::ptr_eq(v, &self.values))
        {
            services.remove(&self.labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Failure;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use std::time::Duration;

    fn page(families: &Arc<ServiceFamilies>) -> String {
        let mut registry = Registry::with_prefix("slaprobe");
        registry.register_collector(Box::new(families.clone()));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    fn value<'a>(page: &'a str, series: &str) -> Option<&'a str> {
        page.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    fn outcome(ms: u64, failure: Option<Reason>) -> Outcome {
        Outcome {
            at_ms: 0,
            latency: Duration::from_millis(ms),
            failure: failure.map(|r| Failure::new(r, "x")),
        }
    }

    #[test]
    fn a_services_series_follow_its_probes_and_the_month() {
        let families = Arc::new(ServiceFamilies::default());
        let web = families.service(ServiceLabels::new("web", "c"));
        let page0 = page(&families);
        let labels = "{service=\"web\",contract=\"c\"}";
        assert_eq!(value(&page0, &format!("slaprobe_up{labels}")), Some("-1"));
        assert_eq!(
            value(
                &page0,
                "slaprobe_probes_total{service=\"web\",contract=\"c\",result=\"ok\",reason=\"\"}"
            ),
            Some("0")
        );
        // No month figure yet: no series.
        assert!(!page0.contains("slaprobe_availability_month_ratio{"));

        for (ms, failure) in [
            (5, None),
            (6, None),
            (10, Some(Reason::Timeout)),
            (250, Some(Reason::Timeout)),
            (20_000, Some(Reason::Connect)),
        ] {
            web.observe(&outcome(ms, failure));
        }
        web.set_state(Some(false), Some(1_700_000_000_999));
        families.set_month(&ServiceLabels::new("web", "c"), Some(0.9995), Some(-0.25));
        let page = page(&families);
        let at =
            |series: &str| value(&page, series).unwrap_or_else(|| panic!("{series} in {page}"));
        assert_eq!(at(&format!("slaprobe_up{labels}")), "0");
        assert_eq!(
            at(&format!("slaprobe_incident_open_since_seconds{labels}")),
            "1700000000"
        );
        assert_eq!(
            at(&format!("slaprobe_availability_month_ratio{labels}")),
            "0.9995"
        );
        assert_eq!(
            at(&format!("slaprobe_error_budget_remaining_ratio{labels}")),
            "-0.25"
        );
        let probes = |result: &str, reason: &str| {
            format!(
                "slaprobe_probes_total{{service=\"web\",contract=\"c\",result=\"{result}\",reason=\"{reason}\"}}"
            )
        };
        assert_eq!(at(&probes("ok", "")), "2");
        assert_eq!(at(&probes("failed", "timeout")), "2");
        assert_eq!(at(&probes("failed", "connect")), "1");
        assert_eq!(value(&page, &probes("failed", "dns")), None);
        // The histogram: buckets take their upper bound, and the text is cumulative.
        let bucket = |le: &str| {
            format!(
                "slaprobe_probe_duration_seconds_bucket{{le=\"{le}\",service=\"web\",contract=\"c\"}}"
            )
        };
        assert_eq!(
            at(&format!("slaprobe_probe_duration_seconds_count{labels}")),
            "5"
        );
        assert_eq!(
            at(&format!("slaprobe_probe_duration_seconds_sum{labels}")),
            "20.271"
        );
        assert_eq!(at(&bucket("0.005")), "1");
        assert_eq!(at(&bucket("0.01")), "3");
        assert_eq!(at(&bucket("0.1")), "3");
        assert_eq!(at(&bucket("0.25")), "4");
        assert_eq!(at(&bucket("10.0")), "4");
        assert_eq!(at(&bucket("+Inf")), "5");
        assert_eq!(
            families.state(&ServiceLabels::new("web", "c")),
            Some((0, 1_700_000_000))
        );
    }

    #[test]
    fn a_relabelled_or_retired_service_leaves_no_series_behind() {
        let families = Arc::new(ServiceFamilies::default());
        let mut moved = families.service(ServiceLabels::new("moved", "c"));
        moved.observe(&outcome(5, None));
        moved.relabel(ServiceLabels::new("moved", "d"));
        let page1 = page(&families);
        assert!(!page1.contains("contract=\"c\""), "{page1}");
        assert_eq!(
            value(
                &page1,
                "slaprobe_probe_duration_seconds_count{service=\"moved\",contract=\"d\"}"
            ),
            Some("0")
        );
        // A service removed and added again under the same labels keeps its new record when
        // the old task retires late.
        let old = families.service(ServiceLabels::new("again", "c"));
        let new = families.service(ServiceLabels::new("again", "c"));
        old.retire();
        new.set_state(Some(true), None);
        assert_eq!(
            families.state(&ServiceLabels::new("again", "c")),
            Some((1, 0))
        );
        new.retire();
        moved.retire();
        assert_eq!(families.state(&ServiceLabels::new("again", "c")), None);
        assert!(!page(&families).contains("service="));
    }
}
