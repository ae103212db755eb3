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
