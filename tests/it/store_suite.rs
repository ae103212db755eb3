//! One set of store tests, run against each backend: SQLite (a file) and PostgreSQL (a
//! throwaway cluster). The same records give the same timeline, to the millisecond.

use std::time::Duration;

use slaprobe::clock::Clock;
use slaprobe::probe::{Failure, Outcome, Reason};
use slaprobe::sla::availability::Timeline;
use slaprobe::sla::tracker::Event;
use slaprobe::store::pg::{self, PgTarget};
use slaprobe::store::{Record, Store, StoreSettings, read};

use crate::pg_server::PgServer;

const T0: i64 = 1_790_000_000_000;
const S: i64 = 1_000;
const INTERVAL_MS: i64 = 10_000;
const MAX_GAP_MS: i64 = 25_000;

/// A store under test: writes through the daemon's `Store`, reads a service's timeline back.
trait Backend {
    fn open(&self, ids: &[String]) -> slaprobe::store::Opened;
    fn timeline(&self, id: &str, from_ms: i64, to_ms: i64) -> Timeline;
    /// Rollups of completed hours, then raw outcomes past `retention` deleted, as the writer's
    /// maintenance does.
    fn maintain(&self, now_ms: i64, retention: Duration);
    /// Every rollup row: (hour, probes, failures, latency, minutes_unprobed, minutes_all_failed).
    fn rollups(&self) -> Vec<Rollup>;
    /// How many raw chunks are stored.
    fn chunks(&self) -> i64;
}

/// A rollup row: (hour, probes, failures, latency, minutes_unprobed, minutes_all_failed).
pub(crate) type Rollup = (i64, i64, i64, Vec<u8>, i64, i64);

const ROLLUP_COLUMNS: &str =
    "hour, probes, failures, latency, minutes_unprobed, minutes_all_failed";

/// Every rollup row of an SQLite store, by hour.
pub(crate) fn sqlite_rollups(conn: &rusqlite::Connection) -> Vec<Rollup> {
    conn.prepare(&format!(
        "SELECT {ROLLUP_COLUMNS} FROM rollup_hour ORDER BY hour"
    ))
    .unwrap()
    .query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every rollup row of one location in PostgreSQL, by hour.
pub(crate) fn pg_rollups(client: &mut postgres::Client, location: &str) -> Vec<Rollup> {
    client
        .query(
            &format!("SELECT {ROLLUP_COLUMNS} FROM rollup_hour WHERE location = $1 ORDER BY hour"),
            &[&location],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn open(&self, ids: &[String]) -> slaprobe::store::Opened {
        Store::open(&self.0.path().join("s.db"), ids, 5, settings()).unwrap()
    }

    fn timeline(&self, id: &str, from_ms: i64, to_ms: i64) -> Timeline {
        let conn = read::open(&self.0.path().join("s.db")).unwrap();
        let num = read::service_num(&conn, id).unwrap().unwrap();
        read::timeline(&conn, num, from_ms, to_ms, INTERVAL_MS, MAX_GAP_MS).unwrap()
    }

    fn maintain(&self, now_ms: i64, retention: Duration) {
        slaprobe::store::maintain(&self.0.path().join("s.db"), now_ms, retention).unwrap();
    }

    fn rollups(&self) -> Vec<Rollup> {
        sqlite_rollups(&rusqlite::Connection::open(self.0.path().join("s.db")).unwrap())
    }

    fn chunks(&self) -> i64 {
        let conn = rusqlite::Connection::open(self.0.path().join("s.db")).unwrap();
        conn.query_row("SELECT count(*) FROM outcome_chunk", [], |r| r.get(0))
            .unwrap()
    }
}

struct Postgres {
    /// Runs while the backend is in use; stopped and removed with it.
    _server: PgServer,
    target: PgTarget,
}

impl Backend for Postgres {
    fn open(&self, ids: &[String]) -> slaprobe::store::Opened {
        Store::open_postgres(&self.target, "local", ids, 5, settings()).unwrap()
    }

    fn timeline(&self, id: &str, from_ms: i64, to_ms: i64) -> Timeline {
        let mut client = pg::connect(&self.target).unwrap();
        let nums = pg::writer::register(&mut client, &[id.to_string()]).unwrap();
        pg::read::timeline(
            &mut client,
            "local",
            nums[id],
            (from_ms, to_ms),
            INTERVAL_MS,
            MAX_GAP_MS,
        )
        .unwrap()
    }

    fn maintain(&self, now_ms: i64, retention: Duration) {
        let mut writer = pg::writer::Postgres::new(self.target.clone(), "local".into(), None);
        writer.maintain(now_ms, retention).unwrap();
    }

    fn rollups(&self) -> Vec<Rollup> {
        pg_rollups(&mut pg::connect(&self.target).unwrap(), "local")
    }

    fn chunks(&self) -> i64 {
        let mut client = pg::connect(&self.target).unwrap();
        client
            .query_one("SELECT count(*) FROM outcome_chunk", &[])
            .unwrap()
            .get(0)
    }
}

/// Every backend available here: SQLite always, PostgreSQL when installed (required in CI).
fn backends() -> Vec<(&'static str, Box<dyn Backend>)> {
    let mut all: Vec<(&'static str, Box<dyn Backend>)> =
        vec![("sqlite", Box::new(Sqlite(tempfile::tempdir().unwrap())))];
    if let Some(server) = PgServer::start() {
        let url = server.database("suite");
        all.push((
            "postgres",
            Box::new(Postgres {
                _server: server,
                target: PgTarget {
                    url,
                    password_env: None,
                },
            }),
        ));
    }
    all
}

fn settings() -> StoreSettings {
    StoreSettings {
        flush_interval: Duration::from_millis(20),
        retention: Duration::from_secs(35 * 86_400),
        clock: Clock::system(),
    }
}

fn outcome(service: i64, at_ms: i64, ok: bool, events: Vec<Event>) -> Record {
    Record {
        service,
        outcome: Outcome {
            at_ms,
            latency: Duration::from_millis(3),
            failure: (!ok).then(|| Failure::new(Reason::Status, "HTTP 503")),
        },
        events,
        first: false,
    }
}

/// Up, an incident (10 s – 30 s), a blip at 40 s, no data 60 s – 120 s.
fn scenario(service: i64) -> Vec<Record> {
    let failure = Failure::new(Reason::Status, "HTTP 503");
    let mut first = outcome(service, T0, true, vec![]);
    first.first = true;
    vec![
        first,
        outcome(service, T0 + 10 * S, false, vec![]),
        outcome(
            service,
            T0 + 20 * S,
            false,
            vec![Event::IncidentOpened {
                start_ms: T0 + 10 * S,
                first_failure: failure,
            }],
        ),
        outcome(
            service,
            T0 + 30 * S,
            true,
            vec![Event::IncidentClosed {
                start_ms: T0 + 10 * S,
                end_ms: T0 + 30 * S,
            }],
        ),
        outcome(service, T0 + 40 * S, false, vec![]),
        outcome(
            service,
            T0 + 50 * S,
            true,
            vec![Event::Blip {
                start_ms: T0 + 40 * S,
                end_ms: T0 + 50 * S,
                failures: 1,
                reason: Reason::Status,
            }],
        ),
        outcome(
            service,
            T0 + 120 * S,
            true,
            vec![Event::NoData {
                start_ms: T0 + 60 * S,
                end_ms: T0 + 120 * S,
            }],
        ),
    ]
}

#[test]
fn every_backend_gives_the_same_timeline_for_the_same_records() {
    let expected = Timeline {
        incidents: vec![(T0 + 10 * S, Some(T0 + 30 * S))],
        no_data: vec![(T0 + 60 * S, T0 + 120 * S)],
        blips: vec![T0 + 40 * S],
        first_ms: Some(T0),
        last_ms: Some(T0 + 120 * S),
        interval_ms: INTERVAL_MS,
        max_gap_ms: MAX_GAP_MS,
    };
    for (name, backend) in backends() {
        let ids = vec!["api".to_string(), "web".to_string()];
        let opened = backend.open(&ids);
        let num = opened.services["api"].0;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for record in scenario(num) {
            opened.store.record(record).unwrap();
        }
        runtime.block_on(opened.store.close()).unwrap();
        opened.writer.join().unwrap();
        let seen = backend.timeline("api", T0 - 3_600_000, T0 + 3_600_000);
        assert_eq!(seen, expected, "{name}");
        // A period that cuts the incident and the gap still finds both; one before it, none.
        let cut = backend.timeline("api", T0 + 20 * S, T0 + 70 * S);
        assert_eq!(cut.incidents, expected.incidents, "{name}");
        assert_eq!(cut.no_data, expected.no_data, "{name}");
        assert!(cut.blips == expected.blips, "{name}");
        let before = backend.timeline("api", T0 - 60 * S, T0);
        assert!(
            before.incidents.is_empty() && before.blips.is_empty(),
            "{name}"
        );

        // Reopened, the store resumes from the last outcomes, no incident open.
        let again = backend.open(&ids);
        let resume = &again.services["api"].1;
        assert_eq!(resume.open_incident, None, "{name}");
        assert_eq!(resume.recent.last().unwrap().0, T0 + 120 * S, "{name}");
        assert!(resume.had_history, "{name}");
        runtime.block_on(again.store.close()).unwrap();
    }
}

/// The writer's maintenance on each backend: the same outcomes give the same hourly rollups,
/// byte for byte; raw outcomes past the retention go once rolled up, the rollups stay, and the
/// timeline still knows the last outcome.
#[test]
fn every_backend_rolls_up_alike_and_applies_the_retention() {
    const HOUR: i64 = 3_600_000;
    let mut expected: Option<Vec<Rollup>> = None;
    for (name, backend) in backends() {
        let opened = backend.open(&["api".to_string()]);
        let num = opened.services["api"].0;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Three hours of a probe every 10 s from T0's hour on, a failing minute in the second.
        let start = T0 - T0 % HOUR;
        for i in 0..(3 * 360) {
            let at = start + i * 10 * S;
            let failing = (HOUR + 20 * 60 * S..HOUR + 21 * 60 * S).contains(&(at - start));
            let mut r = outcome(num, at, !failing, vec![]);
            r.first = i == 0;
            opened.store.record(r).unwrap();
        }
        runtime.block_on(opened.store.close()).unwrap();
        opened.writer.join().unwrap();
        // Four days later, with a one-day retention: all three hours rolled up, their raw
        // outcomes gone.
        backend.maintain(start + 4 * 24 * HOUR, Duration::from_secs(86_400));
        let rollups = backend.rollups();
        assert_eq!(rollups.len(), 3, "{name}");
        assert_eq!(rollups[0].1, 360, "{name}: probes in the first hour");
        assert_eq!(rollups[1].2, 6, "{name}: failures in the second");
        assert_ne!(
            rollups[1].5, 0,
            "{name}: a minute in which every probe failed"
        );
        assert_eq!(backend.chunks(), 0, "{name}");
        let t = backend.timeline("api", start, start + 3 * HOUR);
        assert_eq!(
            t.last_ms,
            Some(start + 3 * HOUR - 1),
            "{name}: known from the rollups"
        );
        match &expected {
            None => expected = Some(rollups),
            Some(first) => assert_eq!(&rollups, first, "{name} rolls up as sqlite does"),
        }
    }
}
