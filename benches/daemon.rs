//! Benchmark: the release daemon against local HTTP/TCP targets, measured from outside.
//!
//!     cargo bench --bench daemon                          # 1,000 and 10,000 services, 10 s
//!     cargo bench --bench daemon -- --services 10000 --interval 10s --duration 120s --kind mixed
//!     cargo bench --bench daemon -- --services 10000 --duration 20s --skip-storage --reload
//!     cargo bench --bench daemon -- --services 1000 --duration 60s --skip-storage \
//!         --target-delay 500ms --max-in-flight 10                # 5x overload for a minute
//!     cargo bench --bench daemon -- --services 10000 --skip-storage --binary OLD,NEW   # A/B
//!     cargo bench --bench daemon -- --services 15000 --skip-storage --daemon-cpus 0  # 1.5x on 1 core
//!     cargo bench --bench daemon -- --services 10000 --skip-storage --fleet 3   # 3 locations, PostgreSQL
//!     cargo bench --bench daemon -- --services 10000 --skip-storage --fleet 3 --fleet-sqlite
//!
//! The targets run in this process on loopback addresses 127.0.0.2–127.0.0.9 (several ports
//! each, so that 1,000 new connections a second do not exhaust ephemeral ports); the daemon is
//! the real `slaprobe run` in a child process, so its CPU time and peak RSS are its own. It
//! prints probes per second (achieved and scheduled), CPU per 1,000 probes, peak RSS, schedule
//! lateness p50/p99/max (from the daemon's `/api/v1/daemon`) and database bytes per
//! service-day. With `--reload` it then rewrites the config (5% of services changed, 5% removed,
//! 10% added), sends SIGHUP and reports how long the reload took to apply and, from the stored
//! outcomes, the longest gap between probes of the unchanged services around it. With
//! `--target-delay` (targets answer that late) and `--max-in-flight` it reports overload: the
//! demand against the cap, probes late, outcomes stored against requests the targets saw, and
//! the no-data written for missed schedule points. With `--fleet N` it runs N daemons, one per
//! location, into one throwaway PostgreSQL cluster (Debian's server binaries, a Unix socket in
//! a temporary directory) and reports each one's CPU per probe, the outcomes stored against the
//! requests the targets saw, and the writer's lag (now minus each location's latest stored
//! outcome, sampled every second); with `--fleet-sqlite` as well, N daemons on SQLite (each its
//! own file) at once instead: what sharing the machine costs without PostgreSQL. Nothing is
//! asserted: the figures go in the README.

mod common;
#[allow(dead_code)] // the bench uses what it needs of the tests' server
#[path = "../tests/it/pg_server.rs"]
mod pg_server;

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::process::{cpu_seconds, free_port, http_get, status_kib, stop, wait_for, wall_ms};

const TARGET_ADDRESSES: u8 = 8;
const PORTS_PER_ADDRESS: usize = 4;

#[derive(Clone)]
struct Scenario {
    services: usize,
    interval: Duration,
    duration: Duration,
    kind: String,
    worker_threads: Option<usize>,
    reload: bool,
    max_in_flight: usize,
    target_delay: Duration,
    /// The daemon binary (`--binary A,B` runs each scenario with each, in turn).
    binary: std::path::PathBuf,
    /// `--daemon-cpus 0`: the daemon runs under `taskset -c 0` (the targets do not).
    daemon_cpus: Option<String>,
}

fn main() {
    let args = common::Args::read();
    let value = |name: &str| args.value(name);
    let interval = humantime::parse_duration(&value("--interval").unwrap_or("10s".into())).unwrap();
    let duration = humantime::parse_duration(&value("--duration").unwrap_or("60s".into())).unwrap();
    let kind = value("--kind").unwrap_or_else(|| "http".into());
    let worker_threads: Option<usize> = value("--worker-threads").map(|v| v.parse().unwrap());
    let counts: Vec<usize> = match value("--services") {
        Some(n) => vec![n.parse().unwrap()],
        None => vec![1_000, 10_000],
    };

    let max_in_flight: usize = value("--max-in-flight").map_or(1024, |v| v.parse().unwrap());
    let target_delay =
        value("--target-delay").map_or(Duration::ZERO, |v| humantime::parse_duration(&v).unwrap());
    let targets = Targets::start(target_delay);
    println!(
        "slaprobe daemon benchmark: {} target endpoints on 127.0.0.2-127.0.0.{}, {} cores",
        targets.addrs.len(),
        1 + TARGET_ADDRESSES,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "worker threads: {}",
        worker_threads.map_or("one per core (default)".to_string(), |n| n.to_string())
    );
    println!(
        "{:>8} {:>6} {:>8} {:>11} {:>11} {:>14} {:>10} {:>24}",
        "services",
        "kind",
        "interval",
        "sched/s",
        "achieved/s",
        "cpu ms/1000",
        "peak RSS",
        "lateness p50/p99/max ms",
    );
    let binaries: Vec<std::path::PathBuf> = match value("--binary") {
        Some(list) => list.split(',').map(Into::into).collect(),
        None => vec![env!("CARGO_BIN_EXE_slaprobe").into()],
    };
    let runs: Vec<(usize, std::path::PathBuf)> = counts
        .iter()
        .flat_map(|n| binaries.iter().map(move |b| (*n, b.clone())))
        .collect();
    for (services, binary) in runs {
        if binaries.len() > 1 {
            println!("binary {}:", binary.display());
        }
        let scenario = Scenario {
            services,
            interval,
            duration,
            kind: kind.clone(),
            worker_threads,
            reload: args.flag("--reload"),
            max_in_flight,
            target_delay,
            binary,
            daemon_cpus: value("--daemon-cpus"),
        };
        let r = run(&scenario, &targets);
        println!(
            "{:>8} {:>6} {:>8} {:>11.1} {:>11.1} {:>14.1} {:>7.1} MiB {:>24}",
            services,
            scenario.kind,
            humantime::format_duration(interval).to_string(),
            services as f64 / interval.as_secs_f64(),
            r.probes_per_s,
            r.cpu_ms_per_1000,
            r.peak_rss_kib as f64 / 1024.0,
            format!(
                "{:.2}/{:.2}/{:.1}",
                r.lateness_p50_us as f64 / 1000.0,
                r.lateness_p99_us as f64 / 1000.0,
                r.lateness_max_us as f64 / 1000.0
            ),
        );
        println!(
            "         (failed probes: {}, probes late: {}, targets answered {} requests)",
            r.failed, r.late, r.target_hits
        );
        println!(
            "         /metrics: {:.1} ms median, {:.1} ms max of 5 scrapes, {:.1} MB",
            r.metrics_ms_median,
            r.metrics_ms_max,
            r.metrics_bytes as f64 / 1e6
        );
        println!(
            "         status page /: {:.1} ms median, {:.1} ms max of 5 loads, {:.1} MB",
            r.page_ms_median,
            r.page_ms_max,
            r.page_bytes as f64 / 1e6
        );
        if let Some(o) = &r.overload {
            let demand = services as f64 / interval.as_secs_f64();
            let concurrent = demand * target_delay.as_secs_f64();
            println!(
                "         overload: {demand:.0} probes/s due, each {} long = {concurrent:.0} in \
                 flight needed against max_in_flight {max_in_flight} ({:.1}x)",
                humantime::format_duration(target_delay),
                concurrent / max_in_flight as f64
            );
            println!(
                "           achieved {:.1} probes/s; {} probes started over an interval late; \
                 /healthz {:.1} ms median, {:.1} ms max of 5 during the overload",
                r.probes_per_s, o.probes_late, o.healthz_ms_median, o.healthz_ms_max
            );
            println!(
                "           outcomes stored {} = requests the targets saw {} (none invented); \
                 {} no-data stretches covering {:.0}% of service time",
                o.stored,
                r.target_hits,
                o.no_data,
                o.no_data_share * 100.0
            );
        }
        if let Some(reload) = &r.reload {
            println!(
                "         reload (SIGHUP; {} changed, {} removed, {} added, {} unchanged): \
                 applied in {:.0} ms",
                reload.changed, reload.removed, reload.added, reload.unchanged, reload.applied_ms
            );
            println!(
                "           unchanged services, {} s either side of it: longest gap between \
                 probes {:.2} s (interval {} s), {} no-data stretches in the database",
                interval.as_secs() * 2,
                reload.longest_gap_ms as f64 / 1000.0,
                interval.as_secs(),
                reload.no_data
            );
            println!(
                "           added services probed: {} of {}, the last one's first probe {:.2} s \
                 after the SIGHUP; removed services' outcomes after it: {}",
                reload.added_probed,
                reload.added,
                reload.added_first_max_ms as f64 / 1000.0,
                reload.removed_after
            );
        }
    }
    if let Some(n) = value("--fleet") {
        let scenario = Scenario {
            services: counts[0],
            interval,
            duration,
            kind: kind.clone(),
            worker_threads,
            reload: false,
            max_in_flight,
            target_delay,
            binary: binaries[0].clone(),
            daemon_cpus: None,
        };
        if args.flag("--fleet-sqlite") {
            fleet_of_sqlite(&scenario, &targets, n.parse().unwrap());
        } else {
            fleet(&scenario, &targets, n.parse().unwrap());
        }
    }
    if !args.flag("--skip-storage") {
        storage(&[Duration::from_secs(10), Duration::from_secs(30)]);
    }
}

/// `locations` daemons of one fleet, each probing every service, into one PostgreSQL.
fn fleet(s: &Scenario, targets: &Targets, locations: usize) {
    let Some(server) = pg_server::PgServer::start() else {
        println!("fleet: skipped (no PostgreSQL server installed)");
        return;
    };
    let url = server.database("fleet");
    let names: Vec<String> = (1..=locations).map(|i| format!("loc{i}")).collect();
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = tempfile::tempdir().unwrap();
    let hits_before = targets.hits.load(Ordering::Relaxed);
    let mut daemons = Vec::new();
    for name in &names {
        let listen = free_port();
        let text = config_text(s, targets, listen).replacen(
            "database = \"slaprobe.db\"",
            &format!("database = \"{url}\"\nlocation = \"{name}\"\nlocations = [{list}]"),
            1,
        );
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        daemons.push(spawn_daemon(s, &config, listen));
    }
    warm_up(s, &daemons);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let start = probes_and_cpu(&daemons);
    let started = Instant::now();
    // The writer's lag: how far each location's latest stored outcome is behind now.
    let mut lags_ms: Vec<i64> = Vec::new();
    while started.elapsed() < s.duration {
        std::thread::sleep(Duration::from_secs(1));
        let now = wall_ms();
        for row in client
            .query(
                "SELECT location, max(last_ms) FROM outcome_chunk GROUP BY location",
                &[],
            )
            .unwrap()
        {
            let last: i64 = row.get(1);
            lags_ms.push(now - last);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "fleet: {locations} locations x {} services at {} into one PostgreSQL ({} outcomes/s due)",
        s.services,
        humantime::format_duration(s.interval),
        (locations * s.services) as f64 / s.interval.as_secs_f64()
    );
    let total_probed = print_each(&daemons, &start, elapsed);
    for (child, _) in &mut daemons {
        stop(child);
    }
    let hits = targets.hits.load(Ordering::Relaxed) - hits_before;
    let stored: i64 = client
        .query_one(
            "SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM outcome_chunk",
            &[],
        )
        .unwrap()
        .get(0);
    lags_ms.sort_unstable();
    let at = |q: f64| lags_ms[((lags_ms.len() - 1) as f64 * q) as usize];
    println!(
        "  outcomes stored {stored}, requests the targets saw {hits} (probed in the measured \
         stretch {total_probed}); writer lag p50/p99/max {}/{}/{} ms over {} samples",
        at(0.5),
        at(0.99),
        at(1.0),
        lags_ms.len()
    );
}

/// Starts `slaprobe run` on `config` (listening on `listen`): the child and its API's URL.
fn spawn_daemon(s: &Scenario, config: &Path, listen: u16) -> (Child, String) {
    let child = Command::new(&s.binary)
        .args(["run", "--config"])
        .arg(config)
        .env("SLAPROBE_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{listen}/api/v1/daemon"))
}

/// Each daemon's probes so far and CPU seconds, to measure from.
fn probes_and_cpu(daemons: &[(Child, String)]) -> Vec<(u64, f64)> {
    daemons
        .iter()
        .map(|(child, api)| {
            (
                daemon_report(api)["probes"].as_u64().unwrap(),
                cpu_seconds(child.id()),
            )
        })
        .collect()
}

/// Prints each daemon's probes per second, CPU per probe and peak RSS since `start` (over
/// `elapsed` seconds); returns the probes of all.
fn print_each(daemons: &[(Child, String)], start: &[(u64, f64)], elapsed: f64) -> u64 {
    let mut total = 0;
    for ((child, api), (probes0, cpu0)) in daemons.iter().zip(start) {
        let probes = daemon_report(api)["probes"].as_u64().unwrap() - probes0;
        let cpu = cpu_seconds(child.id()) - cpu0;
        total += probes;
        println!(
            "  {api}: {:.1} probes/s, {:.3} CPU-ms per probe, peak RSS {:.1} MiB",
            probes as f64 / elapsed,
            cpu * 1000.0 / probes as f64,
            status_kib(child.id(), "VmHWM:") as f64 / 1024.0
        );
    }
    total
}

/// Waits until every daemon answers, then one full interval (every service has started).
fn warm_up(s: &Scenario, daemons: &[(Child, String)]) {
    for (_, api) in daemons {
        wait_for(api);
    }
    std::thread::sleep(s.interval + Duration::from_secs(1));
}

/// `daemons` SQLite daemons at once, each with its own database file and every service: what
/// a fleet's daemons pay on this machine for sharing it, without PostgreSQL (the fair
/// comparison for the PostgreSQL fleet's CPU per probe).
fn fleet_of_sqlite(s: &Scenario, targets: &Targets, daemons: usize) {
    let dirs: Vec<tempfile::TempDir> = (0..daemons).map(|_| tempfile::tempdir().unwrap()).collect();
    let running: Vec<(Child, String)> = dirs
        .iter()
        .map(|dir| {
            let listen = free_port();
            let config = dir.path().join("probes.toml");
            std::fs::write(&config, config_text(s, targets, listen)).unwrap();
            spawn_daemon(s, &config, listen)
        })
        .collect();
    warm_up(s, &running);
    let start = probes_and_cpu(&running);
    let started = Instant::now();
    std::thread::sleep(s.duration);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{daemons} SQLite daemons at once x {} services at {}, each its own database",
        s.services,
        humantime::format_duration(s.interval)
    );
    print_each(&running, &start, elapsed);
    for (mut child, _) in running {
        stop(&mut child);
    }
}

struct Results {
    probes_per_s: f64,
    cpu_ms_per_1000: f64,
    peak_rss_kib: u64,
    lateness_p50_us: u64,
    lateness_p99_us: u64,
    lateness_max_us: u64,
    failed: u64,
    /// Probes started more than an interval late during the measured stretch.
    late: u64,
    target_hits: u64,
    metrics_ms_median: f64,
    metrics_ms_max: f64,
    metrics_bytes: usize,
    page_ms_median: f64,
    page_ms_max: f64,
    page_bytes: usize,
    reload: Option<ReloadResults>,
    overload: Option<OverloadResults>,
}

struct OverloadResults {
    probes_late: u64,
    healthz_ms_median: f64,
    healthz_ms_max: f64,
    stored: u64,
    no_data: i64,
    /// No-data time over the service time the run covered.
    no_data_share: f64,
}

struct ReloadResults {
    changed: usize,
    removed: usize,
    added: usize,
    unchanged: usize,
    applied_ms: f64,
    longest_gap_ms: i64,
    no_data: i64,
    added_probed: usize,
    added_first_max_ms: i64,
    removed_after: usize,
}

fn run(s: &Scenario, targets: &Targets) -> Results {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let config = dir.path().join("probes.toml");
    std::fs::write(&config, config_text(s, targets, listen)).unwrap();
    let hits_before = targets.hits.load(Ordering::Relaxed);

    let mut command = match &s.daemon_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&s.binary);
            c
        }
        None => Command::new(&s.binary),
    };
    let mut child = command
        .args(["run", "--config"])
        .arg(&config)
        .env("SLAPROBE_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{listen}/api/v1/daemon");
    wait_for(&api);
    // Warm-up: one full interval, so that every service has started its schedule.
    std::thread::sleep(s.interval + Duration::from_secs(1));
    let start_report = daemon_report(&api);
    let start_cpu = cpu_seconds(child.id());
    let warm_rss_kib = status_kib(child.id(), "VmRSS:");
    let started = Instant::now();
    // RSS every 10 s: a daemon that runs for a year must not creep. The first and the last
    // stretch (10 minutes, or a third of a shorter run) are compared.
    let mut rss_kib = Vec::new();
    while started.elapsed() < s.duration {
        let left = s.duration.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(10)));
        rss_kib.push(status_kib(child.id(), "VmRSS:"));
    }
    let window = (rss_kib.len() / 3).clamp(1, 60);
    let max_mib = |w: &[u64]| w.iter().max().copied().unwrap_or(0) as f64 / 1024.0;
    println!(
        "         (RSS max in the first {} s after the warm-up {:.1} MiB, in the last {} s {:.1} MiB)",
        window * 10,
        max_mib(&rss_kib[..window.min(rss_kib.len())]),
        window * 10,
        max_mib(&rss_kib[rss_kib.len().saturating_sub(window)..])
    );
    let end_report = daemon_report(&api);
    let end_cpu = cpu_seconds(child.id());
    let elapsed = started.elapsed().as_secs_f64();
    let peak_rss_kib = status_kib(child.id(), "VmHWM:");
    let end_rss_kib = status_kib(child.id(), "VmRSS:");
    println!(
        "         (RSS after the warm-up {:.1} MiB, at the end {:.1} MiB, peak {:.1} MiB)",
        warm_rss_kib as f64 / 1024.0,
        end_rss_kib as f64 / 1024.0,
        peak_rss_kib as f64 / 1024.0
    );
    // `/metrics`, timed from outside (request to last byte), after the measured stretch.
    let metrics_url = format!("http://127.0.0.1:{listen}/metrics");
    let mut metrics_ms = Vec::new();
    let mut metrics_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        metrics_bytes = http_get(&metrics_url).map_or(0, |b| b.len());
        metrics_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    metrics_ms.sort_by(f64::total_cmp);
    let page_url = format!("http://127.0.0.1:{listen}/");
    let mut page_ms = Vec::new();
    let mut page_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        page_bytes = http_get(&page_url).map_or(0, |b| b.len());
        page_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    page_ms.sort_by(f64::total_cmp);
    let healthz_url = format!("http://127.0.0.1:{listen}/healthz");
    let mut healthz_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        http_get(&healthz_url);
        healthz_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    healthz_ms.sort_by(f64::total_cmp);
    let daemon_started_ms = wall_ms() - (started.elapsed() + s.interval).as_millis() as i64;
    let reload = s
        .reload
        .then(|| reload(s, targets, &config, listen, &child));
    stop(&mut child);
    let reload = reload.map(|(sent_ms, applied_ms)| {
        reload_results(s, &dir.path().join("slaprobe.db"), sent_ms, applied_ms)
    });

    let overload = (!s.target_delay.is_zero()).then(|| {
        let conn = rusqlite::Connection::open(dir.path().join("slaprobe.db")).unwrap();
        let stored: i64 = conn
            .query_row("SELECT coalesce(sum(n), 0) FROM outcome_chunk", [], |r| {
                r.get(0)
            })
            .unwrap();
        let (no_data, no_data_ms): (i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(end_ms - start_ms), 0) FROM no_data",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let span_ms = (wall_ms() - daemon_started_ms) as f64 * s.services as f64;
        OverloadResults {
            probes_late: end_report["probes_late"].as_u64().unwrap(),
            healthz_ms_median: healthz_ms[2],
            healthz_ms_max: healthz_ms[4],
            stored: stored as u64,
            no_data,
            no_data_share: no_data_ms as f64 / span_ms,
        }
    });
    let probes = end_report["probes"].as_u64().unwrap() - start_report["probes"].as_u64().unwrap();
    let lateness = &end_report["lateness"];
    Results {
        probes_per_s: probes as f64 / elapsed,
        cpu_ms_per_1000: (end_cpu - start_cpu) * 1000.0 / probes as f64 * 1000.0,
        peak_rss_kib,
        lateness_p50_us: lateness["p50_us"].as_u64().unwrap(),
        lateness_p99_us: lateness["p99_us"].as_u64().unwrap(),
        lateness_max_us: lateness["max_us"].as_u64().unwrap(),
        failed: end_report["probes_failed"].as_u64().unwrap(),
        late: end_report["probes_late"].as_u64().unwrap()
            - start_report["probes_late"].as_u64().unwrap(),
        metrics_ms_median: metrics_ms[2],
        metrics_ms_max: metrics_ms[4],
        metrics_bytes,
        page_ms_median: page_ms[2],
        page_ms_max: page_ms[4],
        page_bytes,
        target_hits: targets.hits.load(Ordering::Relaxed) - hits_before,
        reload,
        overload,
    }
}

/// How a reload splits the services: (changed, removed, added).
fn reload_split(s: &Scenario) -> (usize, usize, usize) {
    (s.services / 20, s.services / 20, s.services / 10)
}

/// Rewrites the config (the first 5% changed, the last 5% removed, 10% added), sends SIGHUP,
/// waits until the daemon reports the new service count and two more intervals. Returns the
/// wall-clock ms the SIGHUP was sent and prints nothing.
fn reload(
    s: &Scenario,
    targets: &Targets,
    config: &Path,
    listen: u16,
    child: &Child,
) -> (i64, f64) {
    let (changed, removed, added) = reload_split(s);
    let kept = Scenario {
        services: s.services - removed,
        ..s.clone()
    };
    let mut text = config_text(&kept, targets, listen);
    for i in 0..changed {
        let from = format!("id = \"svc-{i}\"\n");
        text = text.replacen(&from, &format!("{from}confirm_down = 2\n"), 1);
    }
    for i in 0..added {
        let addr = targets.addrs[i % targets.addrs.len()];
        text.push_str(&format!(
            "[[service]]\nid = \"new-{i}\"\ncontract = \"bench\"\nhttp = \"http://{addr}/health\"\n"
        ));
    }
    std::fs::write(config, text).unwrap();
    let expected = (s.services - removed + added) as u64;
    let api = format!("http://127.0.0.1:{listen}/api/v1/daemon");
    let sent_ms = wall_ms();
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    while daemon_report(&api)["services"].as_u64() != Some(expected) {
        assert!(
            sent.elapsed() < Duration::from_secs(120),
            "the reload did not apply"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied_ms = sent.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(s.interval * 2 + Duration::from_secs(1));
    (sent_ms, applied_ms)
}

fn config_text(s: &Scenario, targets: &Targets, listen: u16) -> String {
    let interval = humantime::format_duration(s.interval);
    let workers = s
        .worker_threads
        .map(|n| format!("worker_threads = {n}\n"))
        .unwrap_or_default();
    let mut text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:{listen}\"\nmax_in_flight = {}\n{workers}\n\
         [defaults]\ninterval = \"{interval}\"\ntimeout = \"2s\"\n\n\
         [[contract]]\nid = \"bench\"\nclient = \"Bench\"\ntarget = \"99.9%\"\n\n",
        s.max_in_flight
    );
    for i in 0..s.services {
        let addr = targets.addrs[i % targets.addrs.len()];
        let tcp = match s.kind.as_str() {
            "tcp" => true,
            "mixed" => i % 5 == 4,
            _ => false,
        };
        if tcp {
            text.push_str(&format!(
                "[[service]]\nid = \"svc-{i}\"\ncontract = \"bench\"\ntcp = \"{addr}\"\n"
            ));
        } else {
            text.push_str(&format!(
                "[[service]]\nid = \"svc-{i}\"\ncontract = \"bench\"\nhttp = \"http://{addr}/health\"\nbody_contains = \"ok\"\n"
            ));
        }
    }
    text
}

/// Minimal HTTP targets: read the request head, answer 200 "ok", close.
struct Targets {
    addrs: Vec<SocketAddr>,
    hits: Arc<AtomicU64>,
}

impl Targets {
    /// Targets that answer `delay` after reading the request.
    fn start(delay: Duration) -> Targets {
        let hits = Arc::new(AtomicU64::new(0));
        let mut listeners = Vec::new();
        for a in 0..TARGET_ADDRESSES {
            let ip = Ipv4Addr::new(127, 0, 0, 2 + a);
            for _ in 0..PORTS_PER_ADDRESS {
                let l = StdListener::bind((ip, 0)).unwrap();
                l.set_nonblocking(true).unwrap();
                listeners.push(l);
            }
        }
        let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let counter = hits.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                for l in listeners {
                    let listener = tokio::net::TcpListener::from_std(l).unwrap();
                    let hits = counter.clone();
                    tokio::spawn(async move {
                        loop {
                            let Ok((mut stream, _)) = listener.accept().await else {
                                continue;
                            };
                            let hits = hits.clone();
                            tokio::spawn(async move {
                                let mut buf = [0u8; 2048];
                                let mut seen = 0;
                                loop {
                                    match stream.read(&mut buf[seen..]).await {
                                        Ok(0) | Err(_) => return,
                                        Ok(n) => seen += n,
                                    }
                                    if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") || seen == buf.len() {
                                        break;
                                    }
                                }
                                hits.fetch_add(1, Ordering::Relaxed);
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                let _ = stream
                                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                                    .await;
                            });
                        }
                    });
                }
                std::future::pending::<()>().await;
            });
        });
        Targets { addrs, hits }
    }
}

fn daemon_report(url: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(url).expect("daemon report")).expect("daemon report is JSON")
}

/// Reads the stopped daemon's database: gaps of the unchanged services within two intervals
/// of the SIGHUP, no-data stretches, the added and removed services' outcomes.
fn reload_results(s: &Scenario, db: &Path, sent_ms: i64, applied_ms: f64) -> ReloadResults {
    use slaprobe::store::read;
    let (changed, removed, added) = reload_split(s);
    let conn = read::open(db).unwrap();
    let outcomes = |id: &str| -> Vec<i64> {
        let num = read::service_num(&conn, id).unwrap().unwrap();
        read::latest_outcomes(&conn, num, usize::MAX)
            .unwrap()
            .iter()
            .map(|o| o.at_ms)
            .collect()
    };
    let around = s.interval.as_millis() as i64 * 2;
    let mut longest_gap_ms = 0;
    for i in changed..s.services - removed {
        let at: Vec<i64> = outcomes(&format!("svc-{i}"))
            .into_iter()
            .filter(|t| (sent_ms - around..=sent_ms + around).contains(t))
            .collect();
        let gap = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(i64::MAX);
        longest_gap_ms = longest_gap_ms.max(gap);
    }
    let mut added_probed = 0;
    let mut added_first_max_ms = 0;
    for i in 0..added {
        if let Some(first) = outcomes(&format!("new-{i}")).first() {
            added_probed += 1;
            added_first_max_ms = added_first_max_ms.max(first - sent_ms);
        }
    }
    // A removed service's probe in flight at the reload may still be recorded.
    let removed_after = (s.services - removed..s.services)
        .map(|i| {
            outcomes(&format!("svc-{i}"))
                .iter()
                .filter(|t| **t > sent_ms + applied_ms as i64)
                .count()
        })
        .sum();
    let no_data = conn
        .query_row("SELECT COUNT(*) FROM no_data", [], |r| r.get(0))
        .unwrap();
    ReloadResults {
        changed,
        removed,
        added,
        unchanged: s.services - changed - removed,
        applied_ms,
        longest_gap_ms,
        no_data,
        added_probed,
        added_first_max_ms,
        removed_after,
    }
}

/// Database bytes per service-day, measured by writing one simulated day of outcomes for 1,000
/// services through the real store (channel, writer thread, encoding, SQLite), then rolling it
/// up. Healthy services: latencies spread over 20–80 ms, one failure in a thousand.
fn storage(intervals: &[Duration]) {
    const SERVICES: usize = 1_000;
    println!();
    println!("storage: one simulated day of {SERVICES} services through the store");
    println!(
        "{:>8} {:>14} {:>16} {:>16} {:>20} {:>18}",
        "interval",
        "outcomes",
        "raw B/svc-day",
        "rollup B/svc-day",
        "steady state B/svc",
        "+ per year kept"
    );
    for interval in intervals {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("slaprobe.db");
        let ids: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i}")).collect();
        let baseline = {
            let path = dir.path().join("baseline.db");
            write_day(&path, &ids, *interval, false);
            used_bytes(&path)
        };
        let outcomes = write_day(&db, &ids, *interval, true);
        let raw = used_bytes(&db) - baseline;
        let far_future = jiff::Timestamp::now().as_millisecond() + 3 * 3_600_000;
        slaprobe::store::roll_up(&db, far_future).unwrap();
        let with_rollups = used_bytes(&db) - baseline;
        let raw_per_day = raw as f64 / SERVICES as f64;
        let rollup_per_day = (with_rollups - raw) as f64 / SERVICES as f64;
        println!(
            "{:>8} {:>14} {:>16.0} {:>16.0} {:>20.0} {:>18.0}",
            humantime::format_duration(*interval).to_string(),
            outcomes,
            raw_per_day,
            rollup_per_day,
            raw_per_day * 35.0,
            rollup_per_day * 365.0,
        );
    }
    println!(
        "(steady state: 35 days of raw outcomes, the default retention; rollups are kept for ever)"
    );
}

/// Writes a day of outcomes (yesterday, UTC) for `ids` at `interval`, or only registers the
/// services when `outcomes` is false. Returns how many outcomes were written.
fn write_day(path: &Path, ids: &[String], interval: Duration, outcomes: bool) -> u64 {
    use slaprobe::probe::{Failure, Outcome, Reason};
    use slaprobe::store::{Record, Store, StoreSettings};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opened = Store::open(
            path,
            ids,
            1,
            StoreSettings {
                flush_interval: Duration::from_millis(50),
                retention: Duration::from_secs(35 * 86_400),
                clock: slaprobe::clock::Clock::system(),
            },
        )
        .unwrap();
        let store = opened.store;
        let mut written = 0u64;
        if outcomes {
            let today = jiff::Timestamp::now().as_millisecond() / 86_400_000 * 86_400_000;
            let day_start = today - 86_400_000;
            let step = interval.as_millis() as i64;
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut t = 0;
            while t < 86_400_000 {
                for (num, _) in ids.iter().enumerate() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let latency = Duration::from_micros(20_000 + seed % 60_000);
                    let failure = seed
                        .is_multiple_of(1000)
                        .then(|| Failure::new(Reason::Timeout, "simulated"));
                    let at_ms = day_start + t + (num as i64 * 997) % step;
                    store
                        .record(Record {
                            service: num as i64 + 1,
                            outcome: Outcome {
                                at_ms,
                                latency,
                                failure,
                            },
                            events: Vec::new(),
                            first: t == 0,
                        })
                        .unwrap();
                    written += 1;
                }
                if written % 200_000 < ids.len() as u64 {
                    store.flush().await.unwrap();
                }
                t += step;
            }
        }
        store.close().await.unwrap();
        opened.writer.join().unwrap();
        written
    })
}

/// Bytes in use in a database file (pages not on the free list).
fn used_bytes(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let count: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    (count - free) * size
}
