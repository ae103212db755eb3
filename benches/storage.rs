//! Benchmark: database bytes per service-year in steady state, measured the way an operator
//! would: a year of 30 s outcomes imported with `slaprobe import` (the real binary), which
//! applies the retention as the daemon does (raw outcomes older than 35 days rolled up and not
//! kept), then the file's size.
//!
//!     cargo bench --bench storage
//!     cargo bench --bench storage -- --services 4 --interval 30s [--keep]
//!
//! `--keep` leaves the database in place (its path is printed) for a look with `sqlite3`.
//! Each service's year: latencies spread over 20–80 ms, two 10-minute incidents a month. The
//! file size includes SQLite's fixed overhead (schema, a few pages), divided among the
//! services. Nothing is asserted: the figures go in the README.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000;

fn main() {
    let args = common::Args::read();
    let value = |name: &str| args.value(name);
    let services: usize = value("--services").map_or(2, |v| v.parse().unwrap());
    let interval = humantime::parse_duration(&value("--interval").unwrap_or("30s".into()))
        .unwrap()
        .as_millis() as i64;

    let dir = tempfile::tempdir().unwrap();
    let keep = args.flag("--keep");
    let config = dir.path().join("probes.toml");
    let mut text = String::from(
        "[daemon]\ndatabase = \"slaprobe.db\"\n\n[[contract]]\nid = \"bench\"\nclient = \"Bench\"\n\
         target = \"99.9%\"\n\n",
    );
    for i in 0..services {
        text.push_str(&format!(
            "[[service]]\nid = \"svc-{i}\"\ncontract = \"bench\"\ntcp = \"127.0.0.1:9\"\n\
             interval = \"{}ms\"\ntimeout = \"5s\"\n",
            interval
        ));
    }
    std::fs::write(&config, text).unwrap();

    let now = jiff::Timestamp::now().as_millisecond();
    let from = now - 365 * DAY;
    let mut import_time = Duration::ZERO;
    let mut probes = 0u64;
    for i in 0..services {
        let file = dir.path().join(format!("svc-{i}.jsonl"));
        probes += write_year(&file, from, now, interval, i as u64);
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["import", "--service", &format!("svc-{i}")])
            .arg(&file)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        import_time += started.elapsed();
        assert!(out.status.success(), "{out:?}");
        std::fs::remove_file(&file).unwrap();
    }
    let db = dir.path().join("slaprobe.db");
    let size = std::fs::metadata(&db).unwrap().len();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let sum = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0) };
    let raw = sum("SELECT COALESCE(SUM(length(data)), 0) FROM outcome_chunk");
    let rollups = sum("SELECT COUNT(*) FROM rollup_hour");
    let histogram = sum("SELECT COALESCE(SUM(length(latency)), 0) FROM rollup_hour");
    let pages = sum("PRAGMA page_count");
    let page_size = sum("PRAGMA page_size");
    println!(
        "storage: {services} services × a year at {} s ({probes} outcomes) imported in {:.1} s",
        interval / 1000,
        import_time.as_secs_f64()
    );
    println!(
        "database {:.2} MB: {:.2} MB per service-year ({pages} pages of {page_size} B)",
        size as f64 / 1e6,
        size as f64 / services as f64 / 1e6
    );
    println!(
        "of which, per service: raw outcomes kept (35 days) {:.2} MB of data, {} hourly rollups \
         with {:.1} B of latency histogram each",
        raw as f64 / services as f64 / 1e6,
        rollups / services as i64,
        histogram as f64 / rollups.max(1) as f64
    );
    if keep {
        println!("kept: {}", db.display());
        let _ = dir.keep();
    }
}

/// A year of outcomes for one service as `slaprobe import` lines; returns how many.
fn write_year(path: &std::path::Path, from: i64, to: i64, interval: i64, salt: u64) -> u64 {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ salt;
    let mut t = from;
    let mut n = 0;
    while t < to {
        // Two 10-minute incidents a month (30-day months), at hours that differ by service.
        let in_month = (t - from) % (30 * DAY);
        let a = (salt as i64 * 7_919 % 300) * 3_600_000;
        let b = a + 15 * DAY;
        let failing = (a..a + 600_000).contains(&in_month) || (b..b + 600_000).contains(&in_month);
        let ts = jiff::Timestamp::from_millisecond(t).unwrap();
        if failing {
            writeln!(
                out,
                r#"{{"ts":"{ts}","ok":false,"latency_ms":5000,"reason":"timeout"}}"#
            )
            .unwrap();
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let latency = 20.0 + (seed % 60_000) as f64 / 1000.0;
            writeln!(
                out,
                r#"{{"ts":"{ts}","ok":true,"latency_ms":{latency:.3}}}"#
            )
            .unwrap();
        }
        t += interval;
        n += 1;
    }
    n
}
