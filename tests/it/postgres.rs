//! The PostgreSQL store against a real server (a throwaway cluster, `pg_server`).

use slaprobe::store::pg::{self, PgTarget, schema};

use crate::pg_server::PgServer;

fn target(url: String) -> PgTarget {
    PgTarget {
        url,
        password_env: None,
    }
}

/// A new database gets the whole schema; connecting again changes nothing; three daemons
/// starting at once take turns (one migrates, two find it done); a newer schema is refused.
#[test]
fn the_schema_migrates_once_even_when_three_daemons_start_together() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("fleet");
    let racers: Vec<_> = (0..3)
        .map(|_| {
            let t = target(url.clone());
            std::thread::spawn(move || pg::connect(&t).map(|_| ()))
        })
        .collect();
    for racer in racers {
        racer.join().unwrap().unwrap_or_else(|e| panic!("{e:?}"));
    }
    let mut client = pg::connect(&target(url.clone())).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::VERSION);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM slaprobe_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // Every table a location writes carries the location.
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE column_name = 'location' AND table_schema = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "blip",
            "failure",
            "incident",
            "meta",
            "no_data",
            "outcome_chunk",
            "rollup_hour",
            "rollup_pending",
            "service_location"
        ]
    );

    client
        .execute(
            "UPDATE slaprobe_schema SET version = $1",
            &[&(schema::VERSION as i64 + 1)],
        )
        .unwrap();
    let refused = pg::connect(&target(url)).map(|_| ()).unwrap_err();
    assert!(format!("{:?}", refused).contains("TooNew"), "{refused:?}");
}

/// A server that is not there: the error names where it looked, never a password.
#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let empty = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql:///fleet?host={}&user=slaprobe&password=hunter2",
        empty.path().display()
    );
    let e = pg::connect(&target(url)).map(|_| ()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&empty.path().display().to_string()), "{text}");
    assert!(text.contains("/fleet"), "{text}");
    assert!(!format!("{e:?}{text}").contains("hunter2"));
    assert!(pg::is_url("postgres://db.example/slaprobe"));
    assert!(pg::is_url("postgresql:///slaprobe?host=/run/postgresql"));
    assert!(!pg::is_url("slaprobe.db"));
}

/// The harness's outage: a stopped server refuses connections, and after a start the same
/// database is there with its schema.
#[test]
fn a_stopped_server_comes_back_with_its_data() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("fleet");
    drop(pg::connect(&target(url.clone())).unwrap());
    server.stop();
    assert!(pg::connect_only(&target(url.clone())).is_err());
    server.start_again();
    let mut client = pg::connect_only(&target(url)).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::VERSION);
}

mod writing {
    use std::time::Duration;

    use slaprobe::clock::Clock;
    use slaprobe::probe::{Failure, Outcome, Reason};
    use slaprobe::sla::tracker::Event;
    use slaprobe::store::pg::{self, read, writer::Postgres};
    use slaprobe::store::{Record, Store, StoreSettings};

    use super::target;
    use crate::pg_server::PgServer;

    /// Ten minutes ago on a whole minute: recent, so that the writer's maintenance (rollups,
    /// the 35-day retention) leaves the outcomes where the test reads them.
    static T0: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
        let now = slaprobe::clock::Clock::system().now_ms();
        now - now % 60_000 - 600_000
    });

    fn ok(service: i64, at_ms: i64) -> Record {
        Record {
            service,
            outcome: Outcome {
                at_ms,
                latency: Duration::from_micros(1_500),
                failure: None,
            },
            events: Vec::new(),
            first: false,
        }
    }

    fn failed(service: i64, at_ms: i64, events: Vec<Event>) -> Record {
        Record {
            outcome: Outcome {
                failure: Some(Failure::new(Reason::Connect, "connection refused")),
                ..ok(service, at_ms).outcome
            },
            events,
            ..ok(service, at_ms)
        }
    }

    fn settings() -> StoreSettings {
        StoreSettings {
            flush_interval: Duration::from_millis(50),
            retention: Duration::from_secs(35 * 86_400),
            clock: Clock::system(),
        }
    }

    /// Outcomes and events of two locations land in one database, each under its location;
    /// a restarted daemon resumes from what its own location wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_locations_write_their_own_view_and_resume_from_it() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let t = target(server.database("fleet"));
        let ids = vec!["api".to_string(), "web".to_string()];
        let fra = blocking(|| Store::open_postgres(&t, "fra", &ids, 5, settings()).unwrap());
        let nyc = blocking(|| Store::open_postgres(&t, "nyc", &ids, 5, settings()).unwrap());
        let api = fra.services["api"].0;
        assert_eq!(
            nyc.services["api"].0, api,
            "a fleet shares the service numbers"
        );
        let first = |mut r: Record| {
            r.first = true;
            r
        };
        let opened = Event::IncidentOpened {
            start_ms: *T0 + 10_000,
            first_failure: Failure::new(Reason::Connect, "connection refused"),
        };
        fra.store.record(first(ok(api, *T0))).unwrap();
        fra.store.record(failed(api, *T0 + 10_000, vec![])).unwrap();
        fra.store
            .record(failed(api, *T0 + 20_000, vec![opened]))
            .unwrap();
        nyc.store.record(first(ok(api, *T0 + 1_000))).unwrap();
        nyc.store.record(ok(api, *T0 + 11_000)).unwrap();
        fra.store.flush().await.unwrap();
        nyc.store.flush().await.unwrap();

        blocking(|| {
            let mut client = pg::connect(&t).unwrap();
            let at =
                |v: Vec<slaprobe::store::RawOutcome>| v.iter().map(|o| o.at_ms).collect::<Vec<_>>();
            let fra_seen = read::outcomes(&mut client, "fra", api, *T0, *T0 + 60_000).unwrap();
            assert_eq!(at(fra_seen.clone()), [*T0, *T0 + 10_000, *T0 + 20_000]);
            assert!(fra_seen[0].is_ok() && !fra_seen[1].is_ok());
            assert_eq!(latency_us(&fra_seen), 1_500);
            let nyc_seen = read::outcomes(&mut client, "nyc", api, *T0, *T0 + 60_000).unwrap();
            assert_eq!(at(nyc_seen), [*T0 + 1_000, *T0 + 11_000]);
            assert_eq!(
                read::incidents(&mut client, "fra", api).unwrap(),
                [(*T0 + 10_000, None)]
            );
            assert!(read::incidents(&mut client, "nyc", api).unwrap().is_empty());
            let firsts: Vec<(String, i64)> = client
                .query(
                    "SELECT location, first_ms FROM service_location WHERE service = $1 ORDER BY 1",
                    &[&api],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            assert_eq!(firsts, [("fra".into(), *T0), ("nyc".into(), *T0 + 1_000)]);
        });

        fra.store.close().await.unwrap();
        nyc.store.close().await.unwrap();
        let again = blocking(|| Store::open_postgres(&t, "fra", &ids, 5, settings()).unwrap());
        let resume = &again.services["api"].1;
        assert_eq!(
            resume.open_incident.as_ref().unwrap().start_ms,
            *T0 + 10_000
        );
        assert_eq!(resume.recent.len(), 3);
        assert_eq!(
            resume.recent[1].1.as_ref().unwrap().detail,
            "connection refused"
        );
        again.store.close().await.unwrap();
    }

    /// The blocking PostgreSQL client on a thread of its own, off the async threads (as the
    /// daemon uses it: its writer thread and `spawn_blocking`).
    fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().unwrap())
    }

    fn latency_us(outcomes: &[slaprobe::store::RawOutcome]) -> u32 {
        outcomes[0].latency_us
    }

    /// A batch retried after an attempt that committed without saying so (and grown by what
    /// came meanwhile) writes only the new outcomes: no row twice.
    #[test]
    fn a_retried_batch_writes_nothing_twice() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let t = target(server.database("fleet"));
        let mut client = pg::connect(&t).unwrap();
        let nums = pg::writer::register(&mut client, &["api".to_string()]).unwrap();
        let api = nums["api"];
        let mut writer = Postgres::new(t.clone(), "fra".into(), None);
        let opened = Event::IncidentOpened {
            start_ms: *T0,
            first_failure: Failure::new(Reason::Connect, "connection refused"),
        };
        let batch = vec![failed(api, *T0, vec![opened]), ok(api, *T0 + 10_000)];
        writer.commit_batch(&batch, false).unwrap();
        let mut grown = batch.clone();
        grown.push(ok(api, *T0 + 20_000));
        writer.commit_batch(&grown, true).unwrap();
        let seen = read::outcomes(&mut client, "fra", api, *T0, *T0 + 60_000).unwrap();
        let times: Vec<i64> = seen.iter().map(|o| o.at_ms).collect();
        assert_eq!(times, [*T0, *T0 + 10_000, *T0 + 20_000]);
        let n: i64 = client
            .query_one("SELECT n FROM outcome_chunk WHERE service = $1", &[&api])
            .unwrap()
            .get(0);
        assert_eq!(n, 3);
        assert_eq!(read::incidents(&mut client, "fra", api).unwrap().len(), 1);
        let failures: i64 = client
            .query_one("SELECT count(*) FROM failure", &[])
            .unwrap()
            .get(0);
        assert_eq!(failures, 1);
    }

    /// PostgreSQL stopped for a while: probing's records wait in memory and are all written,
    /// once, when it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_wait_out_an_outage_of_postgres() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let t = target(server.database("fleet"));
        let opened = blocking(|| {
            Store::open_postgres(&t, "fra", &["api".to_string()], 5, settings()).unwrap()
        });
        let api = opened.services["api"].0;
        opened.store.record(ok(api, *T0)).unwrap();
        opened.store.flush().await.unwrap();
        server.stop();
        for i in 1..=20 {
            opened.store.record(ok(api, *T0 + i * 1_000)).unwrap();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            opened
                .store
                .stats()
                .write_errors
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        );
        assert!(
            opened
                .store
                .stats()
                .refusing
                .load(std::sync::atomic::Ordering::Relaxed),
            "the store says it refuses writes (/readyz: not ready)"
        );
        server.start_again();
        tokio::time::timeout(Duration::from_secs(30), opened.store.flush())
            .await
            .expect("written within 30 s of the return")
            .unwrap();
        let seen = blocking(|| {
            let mut client = pg::connect(&t).unwrap();
            read::outcomes(&mut client, "fra", api, *T0, *T0 + 60_000).unwrap()
        });
        let times: Vec<i64> = seen.iter().map(|o| o.at_ms).collect();
        let expected: Vec<i64> = (0..=20).map(|i| *T0 + i * 1_000).collect();
        assert_eq!(times, expected);
        assert!(
            !opened
                .store
                .stats()
                .refusing
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        opened.store.close().await.unwrap();
    }
}

/// The verdict read from a shared database: a location whose own network failed sees an
/// outage nobody else sees (no downtime for the fleet, all of it in its own view); an outage
/// every location sees is one incident, from the second location's first failure on, confirmed
/// from the locations in the order they saw it.
#[test]
fn the_fleet_verdict_overrules_one_cut_off_location() {
    use slaprobe::probe::{Failure, Outcome, Reason};
    use slaprobe::sla::tracker::Event;
    use slaprobe::store::Record;
    use slaprobe::store::pg::writer::Postgres;

    let Some(server) = PgServer::start() else {
        return;
    };
    let t = target(server.database("fleet"));
    let mut client = pg::connect(&t).unwrap();
    let nums = pg::writer::register(&mut client, &["api".to_string()]).unwrap();
    let api = nums["api"];
    const T0: i64 = 1_790_000_000_000;
    const M: i64 = 60_000;
    let record = |at_ms: i64, ok: bool, events: Vec<Event>, first: bool| Record {
        service: api,
        outcome: Outcome {
            at_ms,
            latency: std::time::Duration::from_millis(2),
            failure: (!ok).then(|| Failure::new(Reason::Connect, "network unreachable")),
        },
        events,
        first,
    };
    // Each location probes every minute for an hour. fra is cut off from 10 min on (its
    // incident never closes). nyc and sgp see the service down 40–50 min and 42–48 min.
    let opened = |start_ms| Event::IncidentOpened {
        start_ms,
        first_failure: Failure::new(Reason::Connect, "network unreachable"),
    };
    let closed = |start_ms, end_ms| Event::IncidentClosed { start_ms, end_ms };
    let down: [(&str, Option<(i64, i64)>); 3] = [
        ("fra", Some((10, 61))),
        ("nyc", Some((40, 50))),
        ("sgp", Some((42, 48))),
    ];
    for (location, outage) in down {
        let mut writer = Postgres::new(t.clone(), location.into(), None);
        let mut batch = Vec::new();
        for m in 0..=60 {
            let failing = outage.is_some_and(|(s, e)| (s..e).contains(&m));
            let mut events = Vec::new();
            if let Some((s, e)) = outage {
                if m == s + 1 {
                    events.push(opened(T0 + s * M));
                }
                if m == e && e <= 60 {
                    events.push(closed(T0 + s * M, T0 + e * M));
                }
            }
            batch.push(record(T0 + m * M, !failing, events, m == 0));
        }
        writer.commit_batch(&batch, false).unwrap();
    }
    let locations: Vec<String> = ["fra", "nyc", "sgp"].map(String::from).to_vec();
    let now = T0 + 60 * M + 1;
    const CADENCE: (i64, i64) = (M, 2 * M + 10_000);
    let mut verdict_until = |to_ms: i64| {
        pg::read::verdict(&mut client, &locations, 2, api, (T0, to_ms), now, CADENCE).unwrap()
    };
    let verdict = verdict_until(T0 + 60 * M);
    // With the fleet's other two healthy (quorum 2 of 3), fra's cut-off alone costs nothing.
    assert!(verdict_until(T0 + 40 * M).timeline.incidents.is_empty());
    // fra alone (10–40 min) is no outage; from nyc's first failure (40 min) two locations see
    // it down, until nyc recovers (50 min): the fleet's one incident, 10 minutes.
    assert_eq!(
        verdict.timeline.incidents,
        [(T0 + 40 * M, Some(T0 + 50 * M))]
    );
    assert_eq!(verdict.seen_by, [vec!["fra", "nyc", "sgp"]]);
    // fra's own view has its whole cut-off as an open incident.
    let own = pg::read::timeline(
        &mut client,
        "fra",
        api,
        (T0, T0 + 60 * M),
        CADENCE.0,
        CADENCE.1,
    )
    .unwrap();
    assert_eq!(own.incidents, [(T0 + 10 * M, None)]);
}

/// `slaprobe migrate --to`: a year imported into SQLite, copied into PostgreSQL under the
/// daemon's location: every month's timeline and rollups, and so its numbers, are the same on
/// both; a second copy is refused and writes nothing.
#[test]
fn migrate_copies_a_year_and_the_numbers_stay_the_same() {
    use std::fmt::Write as _;

    use slaprobe::sla::Intervals;
    use slaprobe::sla::availability::{Exclusions, NoDataPolicy, compute};
    use slaprobe::store::read as sqlite;

    let Some(server) = PgServer::start() else {
        return;
    };
    let ws = crate::support::Workspace::new();
    ws.config_text(
        r#"
[daemon]
database = "slaprobe.db"
location = "fra"

[[contract]]
id = "acme"
client = "ACME Corp"
target = "99.9%"

[[service]]
id = "api"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "5m"
timeout = "10s"
confirm_down = 2
"#,
    );
    let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let (start, end) = (ms("2025-11-01T00:00:00Z"), ms("2026-11-01T00:00:00Z"));
    const DAY: i64 = 86_400_000;
    let mut history = String::new();
    let mut t = start;
    while t < end {
        let in_day = (t - start) % (30 * DAY);
        // Every 30 days: down 10:00–10:30 on day 9, a blip at 00:00 on day 11, nothing for an
        // hour on day 19.
        let down =
            (9 * DAY + 36_000_000..9 * DAY + 37_800_000).contains(&in_day) || in_day == 11 * DAY;
        let silent = (19 * DAY..19 * DAY + 3_600_000).contains(&in_day);
        if !silent {
            let ts = jiff::Timestamp::from_millisecond(t).unwrap();
            if down {
                writeln!(history, r#"{{"ts":"{ts}","ok":false,"latency_ms":3,"reason":"connect","detail":"refused"}}"#).unwrap();
            } else {
                writeln!(history, r#"{{"ts":"{ts}","ok":true,"latency_ms":12}}"#).unwrap();
            }
        }
        t += 300_000;
    }
    let file = ws.path("year.jsonl");
    std::fs::write(&file, history).unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(args)
            .arg("--config")
            .arg(ws.path("probes.toml"))
            .output()
            .unwrap()
    };
    let out = cli(&["import", "--service", "api", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let out = cli(&[
        "exclude",
        "--service",
        "api",
        "--from",
        "2026-03-10T10:00:00Z",
        "--to",
        "2026-03-10T10:30:00Z",
        "--reason",
        "client's firewall change",
    ]);
    assert!(out.status.success(), "{out:?}");

    let url = server.database("fleet");
    let out = cli(&["migrate", "--to", &url]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("location `fra`"), "{said}");
    assert!(said.contains("rollup_hour"), "{said}");

    // Through the CLI, on a config naming the PostgreSQL database instead of the file: the
    // same report and statement, byte for byte.
    let fleet_config = ws.path("fleet.toml");
    std::fs::write(
        &fleet_config,
        std::fs::read_to_string(ws.path("probes.toml"))
            .unwrap()
            .replace(
                "database = \"slaprobe.db\"",
                &format!("database = \"{url}\""),
            ),
    )
    .unwrap();
    let on = |config: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        out.stdout
    };
    for args in [
        &[
            "report",
            "--service",
            "api",
            "--from",
            "2025-11-01T00:00:00Z",
            "--to",
            "2026-11-01T00:00:00Z",
            "--format",
            "json",
        ][..],
        &["statement", "--contract", "acme", "--month", "2026-03"][..],
    ] {
        let (before, after) = (on(&ws.path("probes.toml"), args), on(&fleet_config, args));
        assert_eq!(
            String::from_utf8_lossy(&before),
            String::from_utf8_lossy(&after),
            "{args:?}"
        );
    }

    let conn = sqlite::open(&ws.db()).unwrap();
    let old = sqlite::service_num(&conn, "api").unwrap().unwrap();
    let mut client = pg::connect(&target(url.clone())).unwrap();
    let new = pg::writer::register(&mut client, &["api".to_string()]).unwrap()["api"];
    let (interval, gap) = (300_000, 610_000);
    let now = ms("2026-12-02T00:00:00Z");
    let mut month_start = start;
    let mut months = 0;
    let mut incidents = 0;
    while month_start < end {
        let month_end = month_start + 30 * DAY;
        let a = sqlite::timeline(&conn, old, month_start, month_end, interval, gap).unwrap();
        let b = pg::read::timeline(
            &mut client,
            "fra",
            new,
            (month_start, month_end),
            interval,
            gap,
        )
        .unwrap();
        assert_eq!(a, b, "from {month_start}");
        let ex = Exclusions {
            covered: Intervals::single(month_start, month_end),
            maintenance: Intervals::empty(),
            agreed: Intervals::empty(),
            no_data_policy: NoDataPolicy::Exclude,
        };
        let (na, nb) = (
            compute(&a, &ex, month_start, month_end, now),
            compute(&b, &ex, month_start, month_end, now),
        );
        assert_eq!(na, nb);
        incidents += na.incidents.len();
        months += 1;
        month_start = month_end;
    }
    assert_eq!(months, 13);
    assert!(incidents >= 12, "{incidents} incidents in the year");

    // The rollups, row for row.
    let sqlite_rollups = crate::store_suite::sqlite_rollups(&conn);
    let pg_rollups = crate::store_suite::pg_rollups(&mut client, "fra");
    assert!(sqlite_rollups.len() > 8_000, "{}", sqlite_rollups.len());
    assert_eq!(sqlite_rollups, pg_rollups);
    let exclusions: i64 = client
        .query_one("SELECT count(*) FROM exclusion", &[])
        .unwrap()
        .get(0);
    assert_eq!(exclusions, 1);

    // Again: refused, and nothing more written.
    let before: i64 = client
        .query_one("SELECT count(*) FROM rollup_hour", &[])
        .unwrap()
        .get(0);
    let out = cli(&["migrate", "--to", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds history of location `fra`")
    );
    let after: i64 = client
        .query_one("SELECT count(*) FROM rollup_hour", &[])
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    // Not a PostgreSQL URI: a usage error.
    assert_eq!(
        cli(&["migrate", "--to", "fleet.db"]).status.code(),
        Some(64)
    );
}

/// A contract's reports read at once (`report::service_reports`: a few queries for all its
/// services) are exactly those read service by service, for the fleet's verdict and for one
/// location's own view, over a period that cuts through hours and incidents: three locations,
/// rolled-up hours and raw ones, partly measured hours (the latency count then reads raw
/// outcomes), blips, a no-data stretch, an open incident, an acknowledgement and agreed
/// exclusions (one revoked).
#[test]
fn reports_read_at_once_equal_reports_read_one_by_one() {
    use slaprobe::probe::{Failure, Outcome, Reason};
    use slaprobe::report::{self, Period};
    use slaprobe::sla::tracker::Event;
    use slaprobe::store::Record;
    use slaprobe::store::db::Db;
    use slaprobe::store::pg::writer::Postgres;

    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("at_once");
    let t = target(url.clone());
    let mut client = pg::connect(&t).unwrap();
    let ids = ["api", "web"].map(String::from);
    let nums = pg::writer::register(&mut client, &ids).unwrap();
    const M: i64 = 60_000;
    const H0: i64 = 1_790_002_800_000; // a whole hour
    let failure = || Failure::new(Reason::Connect, "connection refused");
    // Per location and service: an incident (start, end) in minutes, a blip, a no-data stretch.
    type Story = (Option<(i64, Option<i64>)>, Option<i64>, Option<(i64, i64)>);
    let story = |location: &str, service: &str| -> Story {
        match (location, service) {
            ("fra", "api") => (Some((70, Some(95))), None, None),
            ("nyc", "api") => (Some((75, Some(100))), Some(130), None),
            ("sgp", "api") => (None, Some(131), None),
            ("nyc", "web") => (Some((200, None)), None, Some((150, 170))),
            (_, "web") => (Some((205, None)), None, None),
            _ => (None, None, None),
        }
    };
    for location in ["fra", "nyc", "sgp"] {
        let mut writer = Postgres::new(t.clone(), location.into(), None);
        let mut batch = Vec::new();
        for m in 0..=260 {
            for id in &ids {
                let (incident, blip, gap) = story(location, id);
                if gap.is_some_and(|(s, e)| (s..e).contains(&m)) {
                    continue;
                }
                let down = incident.is_some_and(|(s, e)| m >= s && e.is_none_or(|e| m < e));
                let mut events = Vec::new();
                if let Some((s, e)) = incident {
                    if m == s {
                        events.push(Event::IncidentOpened {
                            start_ms: H0 + s * M,
                            first_failure: failure(),
                        });
                    }
                    if e == Some(m) {
                        events.push(Event::IncidentClosed {
                            start_ms: H0 + s * M,
                            end_ms: H0 + m * M,
                        });
                    }
                }
                if blip == Some(m) {
                    events.push(Event::Blip {
                        start_ms: H0 + m * M,
                        end_ms: H0 + m * M + 1_000,
                        failures: 1,
                        reason: Reason::Timeout,
                    });
                }
                if let Some((s, e)) = gap
                    && m == e
                {
                    events.push(Event::NoData {
                        start_ms: H0 + s * M,
                        end_ms: H0 + e * M,
                    });
                }
                batch.push(Record {
                    service: nums[id],
                    outcome: Outcome {
                        at_ms: H0 + m * M,
                        latency: std::time::Duration::from_millis(20 + (m % 3 * 30) as u64),
                        failure: down.then(failure),
                    },
                    events,
                    first: m == 0,
                });
            }
        }
        writer.commit_batch(&batch, false).unwrap();
        // Hours 0–3 rolled up; hour 4 (from 240 min) stays raw.
        writer
            .maintain(
                H0 + 4 * 60 * M + 30 * M,
                std::time::Duration::from_secs(1 << 30),
            )
            .unwrap();
    }
    // The verdict's api incident starts when the second location failed (75 min).
    client
        .execute(
            "INSERT INTO alert_incident (service, start_ms, ack_ms, ack_by) VALUES ($1, $2, $3, $4)",
            &[&"api", &(H0 + 75 * M), &(H0 + 80 * M), &"ana"],
        )
        .unwrap();
    // Agreed exclusions: web's at 210–220 min (in its open incident); one for the whole
    // contract, revoked.
    client
        .execute(
            "INSERT INTO exclusion (service, contract, start_ms, end_ms, reason, at_ms, revoked_ms)
             VALUES ('web', NULL, $1, $2, 'agreed', $1, NULL),
                    (NULL, 'c', $1, $2, 'withdrawn', $1, $2)",
            &[&(H0 + 210 * M), &(H0 + 220 * M)],
        )
        .unwrap();
    let text = format!(
        "[daemon]\ndatabase = \"{url}\"\nlocation = \"fra\"\nlocations = [\"fra\", \"nyc\", \"sgp\"]\n\
         \n[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99%\"\n\n\
         [[service]]\nid = \"api\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"60s\"\n\
         latency = {{ threshold = \"50ms\", target = \"95%\" }}\n\n\
         [[service]]\nid = \"web\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"60s\"\n"
    );
    let config = slaprobe::config::parse(&text, std::path::Path::new("p.toml")).unwrap();
    let now = H0 + 261 * M;
    let periods = [
        Period {
            from_ms: H0,
            to_ms: H0 + 5 * 60 * M,
        },
        Period {
            from_ms: H0 + 72 * M + 30_000,
            to_ms: H0 + 250 * M + 7_000,
        },
    ];
    std::thread::spawn(move || {
        let services: Vec<&slaprobe::config::Service> =
            config.services.iter().map(|s| &**s).collect();
        for view in [None, Some("nyc")] {
            let mut db = Db::postgres(&t, "fra", &config.daemon.locations).unwrap();
            if let Some(location) = view {
                db.narrow_to(location);
            }
            for period in periods {
                let json = |r: &report::ServiceReport| serde_json::to_value(r.to_json()).unwrap();
                let one_by_one: Vec<serde_json::Value> = services
                    .iter()
                    .map(|s| {
                        json(&report::service_report(db.conn(), &config, s, period, now).unwrap())
                    })
                    .collect();
                let at_once: Vec<serde_json::Value> =
                    report::service_reports(db.conn(), &config, &services, |_| period, now)
                        .unwrap()
                        .iter()
                        .map(json)
                        .collect();
                assert_eq!(at_once, one_by_one, "{view:?} {period:?}");
                // Not vacuous: the api's incident, its acknowledgement and latency counted;
                // web's open incident.
                let api = &at_once[0];
                assert_eq!(api["incidents"], 1, "{api}");
                assert!(api["latency"]["total"].as_u64().unwrap() > 0, "{api}");
                assert_eq!(at_once[1]["incidents"], 1, "{}", at_once[1]);
                assert_eq!(at_once[1]["exclusion_s"], 600.0, "{}", at_once[1]);
                assert_eq!(api["exclusion_s"], 0.0, "{api}");
                // Availability only, as /metrics' month budgets and the status page's bars
                // read it: the same at once as one by one.
                let budgets = report::month_budgets(db.conn(), &config, &services, now).unwrap();
                for (service, at_once) in services.iter().zip(&budgets) {
                    let alone = report::month_budget(db.conn(), &config, service, now).unwrap();
                    assert_eq!(format!("{at_once:?}"), format!("{alone:?}"));
                    let days = |c| report::daily(c, &config, service, 3, now).unwrap();
                    let one_by_one = days(db.conn());
                    let span = report::daily_span(&config, service, 3, now);
                    let _at_once = slaprobe::store::history::preload(
                        db.conn(),
                        &services,
                        (span.from_ms, span.to_ms),
                        slaprobe::store::history::Latency::Skipped,
                    )
                    .unwrap();
                    assert_eq!(days(db.conn()), one_by_one);
                }
                if view.is_none() {
                    assert_eq!(
                        api["incident_list"][0]["confirmed_from"],
                        serde_json::json!(["fra", "nyc"])
                    );
                    assert_eq!(api["incident_list"][0]["acknowledged_by"], "ana", "{api}");
                }
            }
        }
    })
    .join()
    .unwrap();
}
