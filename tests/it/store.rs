//! The store on a real SQLite file: rollups of completed hours, retention, resuming.

use std::time::Duration;

use slaprobe::probe::{Failure, Outcome, Reason};
use slaprobe::sla::tracker::Event;
use slaprobe::store::{self, Histogram, Record, Store, StoreSettings, read};

use crate::support::Workspace;

const HOUR: i64 = 3_600_000;

fn settings(retention_days: u64) -> StoreSettings {
    StoreSettings {
        flush_interval: Duration::from_millis(10),
        retention: Duration::from_secs(retention_days * 86_400),
        clock: slaprobe::clock::Clock::system(),
    }
}

fn outcome(at_ms: i64, latency_ms: u64, failed: bool) -> Outcome {
    Outcome {
        at_ms,
        latency: Duration::from_millis(latency_ms),
        failure: failed.then(|| Failure::new(Reason::Timeout, "slow")),
    }
}

#[tokio::test]
async fn completed_hours_are_rolled_up_exactly() {
    let ws = Workspace::new();
    let db = ws.db();
    let ids = vec!["a".to_string()];
    let opened = Store::open(&db, &ids, 2, settings(35)).unwrap();
    let hour_start = (jiff::Timestamp::now().as_millisecond() / HOUR - 3) * HOUR;
    // Minute 0: ok 10 ms and a failure; minute 1: two failures; minute 2: ok 299 ms, ok 300 ms.
    let plan = [
        (0, 10, false),
        (30_000, 0, true),
        (60_000, 0, true),
        (90_000, 0, true),
        (120_000, 299, false),
        (150_000, 300, false),
    ];
    for (offset, latency, failed) in plan {
        opened
            .store
            .record(Record {
                service: opened.services["a"].0,
                outcome: outcome(hour_start + offset, latency, failed),
                events: Vec::new(),
                first: offset == 0,
            })
            .unwrap();
    }
    opened.store.close().await.unwrap();
    opened.writer.join().unwrap();

    let now = jiff::Timestamp::now().as_millisecond();
    assert!(store::roll_up(&db, now).unwrap() >= 1);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (probes, failures, latency, unprobed, all_failed): (u32, u32, Vec<u8>, i64, i64) = conn
        .query_row(
            "SELECT probes, failures, latency, minutes_unprobed, minutes_all_failed
             FROM rollup_hour WHERE hour = ?1",
            [hour_start / HOUR],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((probes, failures), (6, 3));
    // Minutes 0–2 probed (stored as the 57 minutes that were not), minute 1 all failed.
    assert_eq!((unprobed, all_failed), (((1 << 60) - 1) & !0b111, 0b010));
    let histogram = Histogram::decode(&latency);
    assert_eq!(histogram.total(), 3);
    // Under 300 ms: the 10 ms and 299 ms probes; 300 ms itself is not under.
    assert_eq!(histogram.count_below(300), 2);
    // A second run finds nothing new to roll up.
    assert_eq!(store::roll_up(&db, now).unwrap(), 0);
    let first_ms: i64 = conn
        .query_row("SELECT first_ms FROM service WHERE id = 'a'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(first_ms, hour_start);
}

#[tokio::test]
async fn events_and_outcomes_resume_after_reopening() {
    let ws = Workspace::new();
    let db = ws.db();
    let ids = vec!["a".to_string()];
    let opened = Store::open(&db, &ids, 2, settings(35)).unwrap();
    let num = opened.services["a"].0;
    let t0 = jiff::Timestamp::now().as_millisecond() - 60_000;
    let failure = Failure::new(Reason::Status, "status 503");
    opened
        .store
        .record(Record {
            service: num,
            outcome: outcome(t0, 5, false),
            events: Vec::new(),
            first: true,
        })
        .unwrap();
    for (i, at) in [t0 + 10_000, t0 + 15_000].into_iter().enumerate() {
        opened
            .store
            .record(Record {
                service: num,
                outcome: Outcome {
                    at_ms: at,
                    latency: Duration::from_millis(3),
                    failure: Some(failure.clone()),
                },
                events: if i == 1 {
                    vec![Event::IncidentOpened {
                        start_ms: t0 + 10_000,
                        first_failure: failure.clone(),
                    }]
                } else {
                    Vec::new()
                },
                first: false,
            })
            .unwrap();
    }
    opened.store.flush().await.unwrap();
    // Readers see the flushed data while the writer still runs.
    let reader = read::open(&db).unwrap();
    assert_eq!(read::latest_outcomes(&reader, num, 10).unwrap().len(), 3);
    opened.store.close().await.unwrap();
    opened.writer.join().unwrap();

    let reopened = Store::open(&db, &ids, 2, settings(35)).unwrap();
    let (num_again, resume) = &reopened.services["a"];
    assert_eq!(*num_again, num);
    let incident = resume.open_incident.as_ref().unwrap();
    assert_eq!(incident.start_ms, t0 + 10_000);
    assert_eq!(incident.first_failure, failure);
    assert_eq!(resume.recent.len(), 2);
    assert_eq!(resume.recent[1], (t0 + 15_000, Some(failure.clone())));
    assert!(resume.had_history);
    reopened.store.close().await.unwrap();
    reopened.writer.join().unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let db = ws.db();
    let opened = Store::open(&db, &[], 1, settings(35)).unwrap();
    opened.store.close().await.unwrap();
    opened.writer.join().unwrap();
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn retention_deletes_old_raw_outcomes_only_after_rollup() {
    let ws = Workspace::new();
    let db = ws.db();
    let ids = vec!["a".to_string()];
    let opened = Store::open(&db, &ids, 2, settings(35)).unwrap();
    let num = opened.services["a"].0;
    let now = jiff::Timestamp::now().as_millisecond();
    // One outcome per hour for the last 72 hours, every fifth a failure.
    for h in (1..=72).rev() {
        opened
            .store
            .record(Record {
                service: num,
                outcome: outcome(now - h * HOUR, 20, h % 5 == 0),
                events: Vec::new(),
                first: h == 72,
            })
            .unwrap();
    }
    opened.store.close().await.unwrap();
    opened.writer.join().unwrap();

    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    let raw_before = count("SELECT count(*) FROM outcome_chunk");
    assert!(raw_before >= 72);
    let (rolled, deleted) = store::maintain(&db, now, Duration::from_secs(86_400)).unwrap();
    assert!(rolled >= 71, "{rolled}");
    // Raw chunks older than a day are gone; every hour stays in the rollups.
    assert!(deleted >= 47, "{deleted}");
    assert!(count("SELECT count(*) FROM outcome_chunk") <= 25);
    assert!(count("SELECT count(*) FROM rollup_hour") >= 71);
    let oldest_failure = count("SELECT min(at_ms) FROM failure");
    assert!(oldest_failure >= now - 25 * HOUR);
    assert_eq!(
        count("SELECT coalesce(sum(probes), 0) FROM rollup_hour"),
        count("SELECT count(*) FROM rollup_hour")
    );
}

#[tokio::test]
async fn retention_shrinks_the_file_and_keeps_old_reports_unchanged() {
    use std::fmt::Write as _;
    let ws = Workspace::new();
    let config = ws.config("[[service]]\nid = \"api\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"30s\"\ntimeout = \"5s\"\n");
    let now = jiff::Timestamp::now().as_millisecond() / HOUR * HOUR;
    let day = 24 * HOUR;
    // 50 days every 30 s, latencies 20–79 ms, a 2-hour outage 45 days ago.
    let (start, outage) = (now - 50 * day, now - 45 * day);
    let mut lines = String::new();
    let mut t = start;
    while t < now - HOUR {
        let ts = jiff::Timestamp::from_millisecond(t).unwrap();
        if (outage..outage + 2 * HOUR).contains(&t) {
            writeln!(
                lines,
                r#"{{"ts":"{ts}","ok":false,"latency_ms":5,"reason":"connect"}}"#
            )
            .unwrap();
        } else {
            let latency = 20 + (t / 30_000) % 60;
            writeln!(lines, r#"{{"ts":"{ts}","ok":true,"latency_ms":{latency}}}"#).unwrap();
        }
        t += 30_000;
    }
    let file = ws.path("history.jsonl");
    std::fs::write(&file, lines).unwrap();
    // Imported under a retention longer than the history, so that everything is kept here.
    slaprobe::cli::import::import(
        config.daemon.database.sqlite().unwrap(),
        &config.services[0],
        &file,
        Duration::from_secs(400 * 86_400),
    )
    .unwrap();

    let db = ws.db();
    let report = || {
        let conn = read::open(&db).unwrap();
        let period = slaprobe::report::Period {
            from_ms: start,
            to_ms: now - 36 * day,
        };
        let r = slaprobe::report::service_report(
            (&conn).into(),
            &config,
            &config.services[0],
            period,
            now,
        )
        .unwrap();
        serde_json::to_value(r.to_json()).unwrap()
    };
    let size = || std::fs::metadata(&db).unwrap().len();
    // Everything rolled up first, so the comparison is about retention alone.
    store::roll_up(&db, now).unwrap();
    let (before, size_before) = (report(), size());
    assert_eq!(before["downtime_s"], 7200.0, "{before}");

    let (_, deleted) = store::maintain(&db, now, Duration::from_secs(35 * 86_400)).unwrap();
    let (after, size_after) = (report(), size());
    // 50 days of hourly chunks, 35 kept (plus the hour at the edge): about 15 × 24 deleted.
    assert!((15 * 24 - 2..=15 * 24 + 2).contains(&deleted), "{deleted}");
    assert_eq!(before, after, "old numbers survive the raw outcomes");
    // The file gives the space back: about 15/50 of the raw data.
    assert!(
        size_after < size_before * 85 / 100,
        "{size_before} → {size_after} bytes"
    );
    let free: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0);
}

#[tokio::test]
async fn an_import_applies_the_retention_and_still_refuses_an_overlap() {
    let ws = Workspace::new();
    let config = ws.config("[[service]]\nid = \"api\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"30s\"\ntimeout = \"5s\"\n");
    let now = jiff::Timestamp::now().as_millisecond() / HOUR * HOUR;
    let day = 24 * HOUR;
    let history = |from: i64, to: i64| {
        let mut lines = String::new();
        let mut t = from;
        while t < to {
            lines.push_str(&crate::support::history_line(t, true));
            t += 30_000;
        }
        lines
    };
    // 60 days up to an hour ago, under the default 35-day retention.
    let file = ws.path("year.jsonl");
    std::fs::write(&file, history(now - 60 * day, now - HOUR)).unwrap();
    let import = |file: &std::path::Path| {
        slaprobe::cli::import::import(
            config.daemon.database.sqlite().unwrap(),
            &config.services[0],
            file,
            config.daemon.retention,
        )
    };
    import(&file).unwrap();
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Every hour is rolled up; raw outcomes are kept for the last 35 days only (the hour at
    // the edge either way).
    assert_eq!(count("SELECT COUNT(*) FROM rollup_hour"), 60 * 24 - 1);
    let raw_hours = count("SELECT COUNT(*) FROM outcome_chunk");
    assert!(
        (35 * 24 - 2..=35 * 24 + 1).contains(&raw_hours),
        "{raw_hours}"
    );
    assert_eq!(count("PRAGMA freelist_count"), 0, "the space is given back");

    // A backfill into the expired part is still an overlap, though its outcomes are gone.
    let late = ws.path("late.jsonl");
    std::fs::write(&late, history(now - 50 * day, now - 50 * day + HOUR)).unwrap();
    let refused = import(&late).unwrap_err().to_string();
    assert!(refused.contains("api"), "{refused}");
    // One after the latest outcome is taken.
    let next = ws.path("next.jsonl");
    std::fs::write(&next, history(now - HOUR, now - HOUR + 10 * 60_000)).unwrap();
    assert_eq!(import(&next).unwrap().outcomes, 20);
}
