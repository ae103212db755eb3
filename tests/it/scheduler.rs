//! Scheduling on tokio's paused clock: drift-free spacing, spread first probes, retries after a
//! failure, the global cap. Probes answer at once (or after a paused-clock delay).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slaprobe::clock::Clock;
use slaprobe::config::Service;
use slaprobe::probe::{Failure, Outcome, Reason};
use slaprobe::runtime::service_task::ProbeRunner;
use slaprobe::runtime::{self, Options};
use tokio::time::Instant;

use crate::support::{Db, Workspace};

/// Records when each service was probed; fails the first `fail_first` probes of a service.
struct Recorder {
    start: Instant,
    probes: Mutex<HashMap<String, Vec<Duration>>>,
    fail_first: HashMap<String, u32>,
    delay: Duration,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

impl Recorder {
    fn new(fail_first: &[(&str, u32)], delay: Duration) -> Arc<Recorder> {
        Arc::new(Recorder {
            start: Instant::now(),
            probes: Mutex::new(HashMap::new()),
            fail_first: fail_first
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            delay,
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
        })
    }

    fn times(&self, id: &str) -> Vec<Duration> {
        self.probes
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default()
    }
}

impl ProbeRunner for Recorder {
    fn run<'a>(
        &'a self,
        service: &'a Service,
        at_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(async move {
            let n = {
                let mut probes = self.probes.lock().unwrap();
                let list = probes.entry(service.id.clone()).or_default();
                list.push(self.start.elapsed());
                list.len() as u32
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let fail = n <= self.fail_first.get(&service.id).copied().unwrap_or(0);
            Outcome {
                at_ms,
                latency: self.delay,
                failure: fail.then(|| Failure::new(Reason::Status, "planned failure")),
            }
        })
    }
}

/// Starts the daemon with `recorder` as its prober and a wall clock that follows tokio's.
async fn start(config: slaprobe::config::Config, recorder: &Arc<Recorder>) -> runtime::Running {
    runtime::start(
        config,
        Options {
            clock: Clock::following_tokio(1_800_000_000_000),
            runner: Some(recorder.clone()),
        },
    )
    .await
    .unwrap()
}

fn services(n: usize, interval: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[service]]\nid = \"svc-{i}\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\n\
                 interval = \"{interval}\"\ntimeout = \"1s\"\nretry_interval = \"2s\"\n"
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn probes_are_drift_free_and_first_runs_are_spread() {
    let ws = Workspace::new();
    let config = ws.config(&services(200, "10s"));
    let recorder = Recorder::new(&[], Duration::ZERO);
    let running = start(config, &recorder).await;
    tokio::time::sleep(Duration::from_secs(65)).await;
    running.stop().await.unwrap();

    let mut first_second = [0u32; 10];
    for i in 0..200 {
        let times = recorder.times(&format!("svc-{i}"));
        assert!(times.len() >= 6, "svc-{i}: {times:?}");
        first_second[times[0].as_secs() as usize] += 1;
        for pair in times.windows(2) {
            // Exactly one interval apart: the schedule does not drift.
            let gap = pair[1] - pair[0];
            assert!(
                gap.abs_diff(Duration::from_secs(10)) < Duration::from_millis(2),
                "svc-{i}: {times:?}"
            );
        }
    }
    // 200 first probes spread over the 10 s interval, none of its seconds empty or crowded.
    for count in first_second {
        assert!((5..=40).contains(&count), "{first_second:?}");
    }

    // Timestamps follow the (paused) clock and are stored.
    let db = Db::open(&ws.db());
    let stored = db.outcomes("svc-0");
    let times = recorder.times("svc-0");
    assert_eq!(stored.len(), times.len());
    assert_eq!(
        stored[1].at_ms - stored[0].at_ms,
        (times[1] - times[0]).as_millis() as i64
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_retried_after_retry_interval_then_back_on_the_grid() {
    let ws = Workspace::new();
    let config = ws.config(&services(1, "30s"));
    let recorder = Recorder::new(&[("svc-0", 3)], Duration::ZERO);
    let running = start(config, &recorder).await;
    tokio::time::sleep(Duration::from_secs(100)).await;
    running.stop().await.unwrap();

    let t = recorder.times("svc-0");
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // Three failures: retried every 2 s; the success at +6 s; then the grid again (+30 s from
    // the first probe).
    assert_eq!(gaps[0], Duration::from_secs(2), "{t:?}");
    assert_eq!(gaps[1], Duration::from_secs(2), "{t:?}");
    assert_eq!(gaps[2], Duration::from_secs(2), "{t:?}");
    assert_eq!(t[4] - t[0], Duration::from_secs(30), "{t:?}");
    assert_eq!(t[5] - t[4], Duration::from_secs(30), "{t:?}");

    let db = Db::open(&ws.db());
    let incidents = db.incidents("svc-0");
    assert_eq!(incidents.len(), 1);
    let stored = db.outcomes("svc-0");
    assert_eq!(incidents[0].start_ms, stored[0].at_ms);
    assert_eq!(incidents[0].end_ms, Some(stored[3].at_ms));
}

#[tokio::test(start_paused = true)]
async fn the_global_cap_limits_probes_in_flight_and_lateness_is_measured() {
    let ws = Workspace::new();
    let text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nmax_in_flight = 2\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99%\"\n\n{}",
        services(20, "10s")
    );
    let config = ws.config_text(&text);
    // Each probe takes 900 ms: 20 services × 0.9 s on 2 slots = 9 s of work per 10 s.
    let recorder = Recorder::new(&[], Duration::from_millis(900));
    let running = start(config, &recorder).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let lateness = running.metrics().lateness.summary();
    running.stop().await.unwrap();
    assert_eq!(recorder.max_in_flight.load(Ordering::SeqCst), 2);
    assert!(lateness.count >= 100, "{lateness:?}");
    assert!(lateness.max_us > 0, "{lateness:?}");
}
