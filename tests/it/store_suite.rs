//! One set of store tests, run against each backend: SQLite (a file) and PostgreSQL (a
//! throwaway cluster). The same records give the same timeline, to the millisecond.

use std::time::Duration;

use slaprobe::clock::Clock;
use slaprobe::probe::{Failure, Outcome, Reason};
use slaprobe::sla::availability::Timeline;
use slaprobe::sla::tracker::Event;
use slaprobe::store::alerts::{self, QueuedAlert, Told, ToldOf};
use slaprobe::store::db::Db;
use slaprobe::store::exclusions::{self, NewExclusion, Revoked, Scope};
use slaprobe::store::outbox::{self, ChannelMessage, Composed, Kind, Transport};
use slaprobe::store::pg::{self, PgTarget};
use slaprobe::store::{Record, Store, StoreSettings, read, statements};

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
    /// A connection for the tables the fleet shares (outbox, alert records, statements,
    /// exclusions), on a store `open` made.
    fn db(&self) -> Db;
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

    fn db(&self) -> Db {
        slaprobe::store::open_writer_connection(&self.0.path().join("s.db"))
            .unwrap()
            .into()
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

    fn db(&self) -> Db {
        Db::postgres(&self.target, "local", &["local".to_string()]).unwrap()
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

/// `story` told on a fresh store of each backend: every backend's equals SQLite's, which it
/// returns (for the test to check against what was worked out by hand).
fn story_on_every_backend(story: fn(&Db) -> Vec<String>) -> Vec<String> {
    let mut told = backends().into_iter().map(|(name, backend)| {
        drop(backend.open(&["web".to_string()]));
        (name, story(&backend.db()))
    });
    let (_, sqlite) = told.next().expect("SQLite is always there");
    for (name, other) in told {
        assert_eq!(other, sqlite, "{name} differs from sqlite");
    }
    sqlite
}

/// A webhook as the outbox stores its destination (the channel's table, secrets by name).
const HOOK: &str = r#"{"webhook":{"url":"http://127.0.0.1:9/hook","secret_env":"HOOK_SECRET"}}"#;

fn composed(subject: &str, to: &str) -> Composed {
    Composed {
        subject: subject.into(),
        sender: "probe@example.net".into(),
        recipients: vec![to.into(), "second@example.net".into()],
        bytes: format!("Subject: {subject}\r\n\r\nbody").into_bytes(),
    }
}

/// What one pass over the outbox's life gives: claims, due times, marks and the summary, as
/// plain values to compare between backends.
fn outbox_story(db: &Db) -> Vec<String> {
    let conn = db.conn();
    let mut story = Vec::new();
    let a = outbox::enqueue(conn, T0, Kind::Alert, &composed("a", "x@example.net")).unwrap();
    let b = outbox::enqueue(
        conn,
        T0 + 1,
        Kind::Statement,
        &composed("b", "x@example.net"),
    )
    .unwrap();
    let c = outbox::enqueue(conn, T0 + 2, Kind::Alert, &composed("c", "y@example.net")).unwrap();
    let hook = ChannelMessage {
        channel: "webhook",
        destination: HOOK.into(),
        subject: "d".into(),
        body: b"{}".to_vec(),
    };
    let d = outbox::enqueue_channel(conn, T0 + 3, Kind::Alert, &hook).unwrap();
    assert!(a < b && b < c && c < d, "ids grow: {a} {b} {c} {d}");
    let subjects = |claimed: Vec<outbox::Claimed>| -> String {
        claimed
            .iter()
            .map(|m| format!("{}:{}:{}", m.subject, m.attempts, m.recipients.join("+")))
            .collect::<Vec<_>>()
            .join(",")
    };
    // b waits behind a (same recipients); the webhook belongs to the other deliverer.
    story.push(subjects(
        outbox::claim_due(conn, T0 + 10, 10, Transport::Email).unwrap(),
    ));
    story.push(subjects(
        outbox::claim_due(conn, T0 + 10, 10, Transport::Email).unwrap(),
    ));
    story.push(subjects(
        outbox::claim_due(conn, T0 + 10, 10, Transport::Http).unwrap(),
    ));
    outbox::mark_retry(conn, a, 1, T0 + 60_000, "421 try later").unwrap();
    story.push(format!(
        "next email {:?}",
        outbox::next_due_ms(conn, Transport::Email)
            .unwrap()
            .map(|t| t - T0)
    ));
    story.push(format!("pending {}", outbox::pending_count(conn).unwrap()));
    story.push(format!(
        "retried now {}",
        outbox::retry_waiting_now(conn, T0 + 20, "email").unwrap()
    ));
    let again = outbox::claim_next(conn, T0 + 20, Transport::Email)
        .unwrap()
        .unwrap();
    story.push(format!("again {}:{}", again.subject, again.attempts));
    outbox::mark_sent(conn, again.id, 2, T0 + 21).unwrap();
    story.push(format!(
        "claim_id b {:?}",
        outbox::claim_id(conn, b, T0 + 22)
            .unwrap()
            .map(|m| m.subject)
    ));
    story.push(format!(
        "claim_id b twice {:?}",
        outbox::claim_id(conn, b, T0 + 23)
            .unwrap()
            .map(|m| m.subject)
    ));
    outbox::mark_failed(conn, b, 1, T0 + 24, "550 no such user").unwrap();
    outbox::mark_sent(conn, c, 1, T0 + 25).unwrap();
    let summary = outbox::summary(conn, 0).unwrap();
    story.push(format!(
        "summary sent {} pending {:?} failed {:?}",
        summary.sent,
        summary
            .pending
            .iter()
            .map(|l| (l.subject.clone(), l.channel.clone(), l.recipients.clone()))
            .collect::<Vec<_>>(),
        summary
            .failed
            .iter()
            .map(|l| (l.subject.clone(), l.attempts, l.last_error.clone()))
            .collect::<Vec<_>>()
    ));
    story
}

#[test]
fn every_backend_keeps_the_outbox_alike() {
    let sqlite = story_on_every_backend(outbox_story);
    assert_eq!(
        &sqlite,
        &vec![
            "a:0:x@example.net+second@example.net,c:0:y@example.net+second@example.net".to_string(),
            String::new(),
            format!("d:0:{HOOK}"),
            "next email Some(1)".to_string(),
            "pending 4".to_string(),
            "retried now 1".to_string(),
            "again a:1".to_string(),
            "claim_id b Some(\"b\")".to_string(),
            "claim_id b twice None".to_string(),
            "summary sent 2 pending [(\"d\", \"webhook\", [\"webhook http://127.0.0.1:9/hook\"])] \
             failed [(\"b\", 1, Some(\"550 no such user\"))]"
                .to_string(),
        ],
    );
}

#[test]
fn every_backend_gives_each_due_message_to_one_claimant() {
    for (name, backend) in backends() {
        drop(backend.open(&["web".to_string()]));
        {
            let db = backend.db();
            for i in 0..40 {
                let to = format!("r{i}@example.net");
                outbox::enqueue(db.conn(), T0, Kind::Alert, &composed("m", &to)).unwrap();
            }
        }
        let claimants: Vec<_> = (0..3)
            .map(|_| {
                let db = backend.db();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let claimed = loop {
                            match outbox::claim_due(db.conn(), T0 + 1, 2, Transport::Email) {
                                Ok(claimed) => break claimed,
                                // SQLite's other writer holds the lock: try again.
                                Err(_) => std::thread::sleep(Duration::from_millis(2)),
                            }
                        };
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed.into_iter().map(|m| m.id));
                    }
                })
            })
            .collect();
        let mut all: Vec<i64> = claimants
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let claimed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            claimed, 40,
            "{name}: every message claimed once: {claimed} claims"
        );
        assert_eq!(all.len(), 40, "{name}: no message claimed twice");
    }
}

/// Alert records, budget flags, digests, statements and exclusions through one life, as
/// plain values to compare between backends.
fn records_story(db: &Db) -> Vec<String> {
    let conn = db.conn();
    let mut story = Vec::new();
    let down = composed("DOWN web", "oncall@example.net");
    let told = |told: Told| ToldOf {
        service: "web".into(),
        start_ms: T0,
        told,
    };
    let queue = |items: &[ToldOf], sent: bool| {
        alerts::queue(
            conn,
            &[QueuedAlert {
                message: Some(&down),
                sent,
                channels: &[],
                told: items,
            }],
            T0 + 5,
        )
        .unwrap()
    };
    queue(&[told(Told::Down)], true);
    queue(&[told(Told::Escalated(1))], false);
    queue(&[told(Told::Escalated(0)), told(Told::Reminded)], false);
    let times = alerts::told_times(conn, "web", T0).unwrap();
    story.push(format!("{times:?}"));
    queue(
        &[told(Told::Acknowledged), told(Told::ResponseOverdue)],
        false,
    );
    let times = alerts::told_times(conn, "web", T0).unwrap();
    story.push(format!("{times:?}"));
    story.push(format!(
        "outbox {} pending {}",
        outbox::summary(conn, 0).unwrap().sent,
        outbox::pending_count(conn).unwrap()
    ));
    queue(&[told(Told::Recovered)], false);
    story.push(format!(
        "{:?}",
        alerts::told_times(conn, "web", T0).unwrap()
    ));
    story.push(format!(
        "flags {} {} {} {}",
        alerts::set_flag(conn, "web", "burn:page", T0).unwrap(),
        alerts::set_flag(conn, "web", "burn:page", T0 + 1).unwrap(),
        alerts::clear_flag(conn, "web", "burn:page").unwrap(),
        alerts::clear_flag(conn, "web", "burn:page").unwrap(),
    ));
    story.push(format!(
        "digest {} {}",
        alerts::mark_digest(conn, "oncall", "2026-11-30", T0).unwrap(),
        alerts::mark_digest(conn, "oncall", "2026-11-30", T0).unwrap(),
    ));
    let decided = conn
        .transaction(|tx| {
            statements::lock(tx, "acme", "2026-11")?;
            let before = statements::sends(tx, "acme", "2026-11")?;
            statements::record(tx, "acme", "2026-11", "aa", Some(7), T0)?;
            statements::keep_copies(tx, "acme", "2026-11", &[("text", b"one")], T0)?;
            Ok::<_, slaprobe::store::db::DbError>(before)
        })
        .unwrap();
    statements::record(conn, "acme", "2026-11", "bb", None, T0 + 1).unwrap();
    statements::record(conn, "acme", "2026-11", "cc", Some(9), T0 + 2).unwrap();
    statements::keep_copies(conn, "acme", "2026-11", &[("text", b"two")], T0 + 2).unwrap();
    story.push(format!(
        "statement before {decided:?} sends {:?} copy {:?} none {:?}",
        statements::sends(conn, "acme", "2026-11").unwrap(),
        statements::copy(conn, "acme", "2026-11", "text").unwrap(),
        statements::copy(conn, "acme", "2026-11", "html").unwrap(),
    ));
    let rolled_back = conn.transaction(|tx| {
        statements::record(tx, "acme", "2026-12", "dd", None, T0)?;
        Err::<(), _>(slaprobe::store::db::DbError::NoRow)
    });
    story.push(format!(
        "rolled back {} left {:?}",
        rolled_back.is_err(),
        statements::sends(conn, "acme", "2026-12").unwrap()
    ));
    let service = Scope::Service("web".into());
    let contract = Scope::Contract("acme".into());
    let first = exclusions::add(
        conn,
        &NewExclusion {
            scope: &service,
            start_ms: T0,
            end_ms: T0 + 600 * S,
            reason: "agreed change",
            by: Some("ops"),
        },
        T0 + 1,
    )
    .unwrap();
    let second = exclusions::add(
        conn,
        &NewExclusion {
            scope: &contract,
            start_ms: T0 + 3_600 * S,
            end_ms: T0 + 7_200 * S,
            reason: "client's own outage",
            by: None,
        },
        T0 + 2,
    )
    .unwrap();
    story.push(format!(
        "revoke {:?} {:?} {:?}",
        exclusions::revoke(conn, first, "entered twice", Some("lead"), T0 + 3).unwrap(),
        exclusions::revoke(conn, first, "again", None, T0 + 4).unwrap(),
        exclusions::revoke(conn, second + 100, "none", None, T0 + 4).unwrap(),
    ));
    story.push(format!(
        "spans {:?}",
        exclusions::active_spans(conn, "web", "acme", T0, T0 + 86_400 * S)
            .unwrap()
            .iter()
            .map(|(a, b)| (a - T0, b - T0))
            .collect::<Vec<_>>()
    ));
    let listed = exclusions::list(conn, T0, T0 + 86_400 * S).unwrap();
    story.push(format!(
        "listed {:?}",
        listed
            .iter()
            .map(|e| (
                e.id - first,
                e.scope.clone(),
                e.by.clone(),
                e.revoked.as_ref().map(|r| (r.reason.clone(), r.by.clone()))
            ))
            .collect::<Vec<_>>()
    ));
    assert_eq!(
        exclusions::revoke(conn, first, "x", None, 0).unwrap(),
        Revoked::AlreadyRevoked
    );
    story
}

#[test]
fn every_backend_keeps_alert_records_statements_and_exclusions_alike() {
    let sqlite = story_on_every_backend(records_story);
    let expected = [
        "ToldTimes { down_sent_ms: Some(1790000000005), escalation_steps: 2, \
         reminded_ms: Some(1790000000005), ack_told: false, response_overdue: false, \
         restore_overdue: false }",
        "ToldTimes { down_sent_ms: Some(1790000000005), escalation_steps: 2, \
         reminded_ms: Some(1790000000005), ack_told: true, response_overdue: true, \
         restore_overdue: false }",
        "outbox 1 pending 3",
        "ToldTimes { down_sent_ms: None, escalation_steps: 0, reminded_ms: None, \
         ack_told: false, response_overdue: false, restore_overdue: false }",
        "flags true false true false",
        "digest true false",
        "statement before None sends Some(2) copy Some(([116, 119, 111], 1790000000002)) none None",
        "rolled back true left None",
        "revoke Done AlreadyRevoked NoSuchExclusion",
        "spans [(3600000, 7200000)]",
        "listed [(0, Service(\"web\"), Some(\"ops\"), Some((\"entered twice\", Some(\"lead\")))), \
         (1, Contract(\"acme\"), None, None)]",
    ];
    assert_eq!(sqlite, expected.map(String::from).to_vec());
}
