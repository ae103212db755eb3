//! Benchmark: reports over a year of history for 1,000 services (30 s interval).
//!
//!     cargo bench --bench report
//!     cargo bench --bench report -- --keep      # leave the database and config for a profile
//!
//! Builds the database a year of operation leaves behind: hourly rollups for every service-hour
//! (120 probes each, latencies 20–80 ms), two 10-minute incidents and one 5-minute no-data
//! stretch per service and month, written hour by hour as the daemon rolls up (so the pages
//! fill as in production). Raw outcomes are past the 35-day retention for the months
//! reported, as in production, so reports read rollups and intervals only. Then it times
//! `slaprobe report --contract` for one month over all services (the real binary, process start
//! and config parsing included), the same computed in-process, and a single-service report over
//! the whole year. Then, where PostgreSQL's server is installed, it moves the year into a
//! throwaway cluster with `slaprobe migrate --to` and times the same CLI report on it (and says
//! whether its JSON equals SQLite's). Nothing is asserted: the figures go in the README.

#[allow(dead_code)] // the bench uses what it needs of the tests' server
#[path = "../tests/it/pg_server.rs"]
mod pg_server;

use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::params;
use slaprobe::store::{Histogram, Store, StoreSettings};

const SERVICES: usize = 1_000;
const HOUR: i64 = 3_600_000;

fn main() {
    let keep = std::env::args().any(|a| a == "--keep");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("probes.toml");
    let mut text = String::from(
        "[daemon]\ndatabase = \"slaprobe.db\"\n\n[[contract]]\nid = \"bench\"\nclient = \"Bench\"\n\
         timezone = \"Europe/Berlin\"\ntarget = \"99.9%\"\nmonthly_fee = 1000\ncurrency = \"EUR\"\n\
         credits = [ { below = \"99.9%\", credit = \"10%\" } ]\n\n",
    );
    for i in 0..SERVICES {
        text.push_str(&format!(
            "[[service]]\nid = \"svc-{i}\"\ncontract = \"bench\"\ntcp = \"127.0.0.1:9\"\n\
             latency = {{ threshold = \"50ms\", target = \"95%\" }}\n"
        ));
    }
    std::fs::write(&config_path, &text).unwrap();
    let db = dir.path().join("slaprobe.db");

    let started = Instant::now();
    let now = jiff::Timestamp::now().as_millisecond() / HOUR * HOUR;
    let year_ago = now - 365 * 24 * HOUR;
    build_history(&db, year_ago, now);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "history: {SERVICES} services × 365 days of hourly rollups built in {:.1} s; database {:.0} MiB \
         ({:.2} MB per service-year)",
        started.elapsed().as_secs_f64(),
        size as f64 / 1_048_576.0,
        size as f64 / SERVICES as f64 / 1e6
    );

    // A closed month three months back, in the contract's zone.
    let month = jiff::Timestamp::from_millisecond(now - 90 * 24 * HOUR)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .strftime("%Y-%m")
        .to_string();
    let config = slaprobe::config::load(&config_path).unwrap();

    let cli_report = |config: &std::path::Path| {
        let mut runs = Vec::new();
        let mut json = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
                .args([
                    "report",
                    "--contract",
                    "bench",
                    "--month",
                    &month,
                    "--format",
                    "json",
                ])
                .arg("--config")
                .arg(config)
                .output()
                .unwrap();
            runs.push(t.elapsed());
            assert!(out.status.success(), "{out:?}");
            json = out.stdout;
        }
        (runs, json)
    };
    let (mut cli_runs, sqlite_json) = cli_report(&config_path);
    let conn = slaprobe::store::read::open(&db).unwrap();
    let contract = config.contract("bench").unwrap();
    let period = slaprobe::report::PeriodSpec::month(&month)
        .unwrap()
        .resolve(contract, now);
    let mut library_runs = Vec::new();
    let mut incidents = 0;
    for _ in 0..5 {
        let t = Instant::now();
        incidents = 0;
        for service in &config.services {
            let r = slaprobe::report::service_report((&conn).into(), &config, service, period, now)
                .unwrap();
            incidents += r.numbers.incidents.len();
        }
        library_runs.push(t.elapsed());
    }
    let year = slaprobe::report::Period {
        from_ms: year_ago,
        to_ms: now,
    };
    let mut single_runs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = slaprobe::report::service_report(
            (&conn).into(),
            &config,
            &config.services[7],
            year,
            now,
        )
        .unwrap();
        std::hint::black_box(r);
        single_runs.push(t.elapsed());
    }
    println!(
        "report --contract, month {month}, {SERVICES} services ({incidents} incidents): \
         CLI {} (median of 5, process and config included), in-process {}",
        median(&mut cli_runs),
        median(&mut library_runs)
    );
    println!(
        "report --service over the whole year: {} (median of 20)",
        median(&mut single_runs)
    );
    if let Some(server) = pg_server::PgServer::start() {
        let url = server.database("report");
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["migrate", "--to", &url, "--config"])
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let moved = t.elapsed();
        let pg_config = dir.path().join("fleet.toml");
        std::fs::write(
            &pg_config,
            text.replacen(
                "database = \"slaprobe.db\"",
                &format!("database = \"{url}\""),
                1,
            ),
        )
        .unwrap();
        let (mut pg_runs, pg_json) = cli_report(&pg_config);
        if pg_json != sqlite_json {
            let out = std::env::temp_dir();
            std::fs::write(out.join("report-sqlite.json"), &sqlite_json).unwrap();
            std::fs::write(out.join("report-postgres.json"), &pg_json).unwrap();
            println!(
                "(both reports written to {} as report-sqlite.json and report-postgres.json)",
                out.display()
            );
        }
        println!(
            "on PostgreSQL (the year moved by `slaprobe migrate` in {:.1} s): report --contract, \
             month {month}: CLI {} (median of 5); JSON {} SQLite's",
            moved.as_secs_f64(),
            median(&mut pg_runs),
            if pg_json == sqlite_json {
                "equal to"
            } else {
                "DIFFERENT from"
            }
        );
    }
    if keep {
        println!("kept: {} (month {month})", config_path.display());
        let _ = dir.keep();
    }
}

fn median(runs: &mut [Duration]) -> String {
    runs.sort();
    format!("{:.1} ms", runs[runs.len() / 2].as_secs_f64() * 1000.0)
}

fn build_history(db: &std::path::Path, from: i64, to: i64) {
    let ids: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i}")).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opened = Store::open(
            db,
            &ids,
            1,
            StoreSettings {
                flush_interval: Duration::from_millis(10),
                retention: Duration::from_secs(35 * 86_400),
                clock: slaprobe::clock::Clock::system(),
            },
        )
        .unwrap();
        opened.store.close().await.unwrap();
        opened.writer.join().unwrap();
    });
    let mut histogram = Histogram::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..120 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        histogram.add(20_000 + (seed % 60_000) as u32);
    }
    let latency = histogram.encode();
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -2000000;")
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut rollup = tx
            .prepare(
                "INSERT INTO rollup_hour (service, hour, probes, failures, latency, minutes_unprobed,
                 minutes_all_failed) VALUES (?1, ?2, 120, 0, ?3, 0, 0)",
            )
            .unwrap();
        let mut incident = tx
            .prepare(
                "INSERT INTO incident (service, start_ms, end_ms, reason, detail)
                 VALUES (?1, ?2, ?3, 'timeout', 'simulated')",
            )
            .unwrap();
        let mut no_data = tx
            .prepare("INSERT INTO no_data (service, start_ms, end_ms) VALUES (?1, ?2, ?3)")
            .unwrap();
        // Hour by hour, every service each hour: the order the writer rolls up in, so pages
        // fill as they do in production.
        let mut hour = from / HOUR;
        while hour < to / HOUR {
            for num in 1..=SERVICES as i64 {
                rollup.execute(params![num, hour, latency]).unwrap();
            }
            hour += 1;
        }
        for num in 1..=SERVICES as i64 {
            // Two incidents and one no-data stretch a month, spread by service.
            let mut month_start = from;
            while month_start < to {
                // The first in the month's first 300 hours, the second after 360: never one start.
                let a = month_start + (num * 7_919 % 300) * HOUR;
                let b = month_start + 360 * HOUR + (num * 104_729 % 300) * HOUR;
                incident.execute(params![num, a, a + 600_000]).unwrap();
                incident.execute(params![num, b, b + 600_000]).unwrap();
                no_data
                    .execute(params![num, b + 24 * HOUR, b + 24 * HOUR + 300_000])
                    .unwrap();
                month_start += 30 * 24 * HOUR;
            }
        }
        tx.execute("UPDATE service SET first_ms = ?1", [from])
            .unwrap();
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('rolled_until_hour', ?1)",
            [to / HOUR],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA optimize;")
        .unwrap();
}
