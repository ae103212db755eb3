//! Fault injection: the daemon killed with SIGKILL while it writes, the database locked by
//! another process, the disk full, the wall clock stepping. Each test checks what the README's
//! Reliability section promises.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::support::{Db, Workspace, closed_port};

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A TCP target that notes when each connection arrived (Unix ms).
struct CountingTarget {
    addr: std::net::SocketAddr,
    arrivals: Arc<Mutex<Vec<i64>>>,
}

impl CountingTarget {
    async fn start() -> CountingTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let noted = arrivals.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                noted.lock().unwrap().push(now_ms());
                drop(stream);
            }
        });
        CountingTarget { addr, arrivals }
    }

    fn arrived(&self, from_ms: i64, until_ms: i64) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|&&t| from_ms <= t && t < until_ms)
            .count()
    }
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn spawn_daemon(config: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["run", "--config"])
        .arg(config)
        .env("SLAPROBE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Up to a flush interval of outcomes may be lost on SIGKILL; the commit that was under way
/// when the kill came is allowed this much more on a loaded machine.
const COMMIT_SLACK_MS: i64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_heavy_writing_loses_at_most_the_last_batch() {
    const SERVICES: usize = 40;
    const KILLS: usize = 6;
    const FLUSH_MS: i64 = 200;
    let ws = Workspace::new();
    let mut targets = Vec::new();
    let mut text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"{FLUSH_MS}ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n\n"
    );
    for i in 0..SERVICES {
        let target = CountingTarget::start().await;
        text.push_str(&format!(
            "[[service]]\nid = \"s{i}\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"100ms\"\n\
             timeout = \"80ms\"\n\n",
            target.addr
        ));
        targets.push(target);
    }
    // One service is down throughout: its incident must survive every kill, once.
    text.push_str(&format!(
        "[[service]]\nid = \"down\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"100ms\"\n\
         timeout = \"80ms\"\nretry_interval = \"100ms\"\nconfirm_down = 2\n",
        closed_port().await
    ));
    ws.config_text(&text);
    let config = ws.path("probes.toml");
    let db_path = ws.db();

    // Kill moments spread over a batch: a fixed seed keeps a failure reproducible.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = Vec::new();
    for run in 0..KILLS {
        let started_at = now_ms();
        let mut child = spawn_daemon(&config);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let alive_ms = 1_200 + seed % 900;
        tokio::time::sleep(Duration::from_millis(alive_ms)).await;
        let killed_at = now_ms();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        kills.push(killed_at);

        assert_eq!(integrity(&db_path), "ok", "after kill {run}");
        let db = Db::open(&db_path);
        let cutoff = killed_at - FLUSH_MS - COMMIT_SLACK_MS;
        for (i, target) in targets.iter().enumerate() {
            // This run's probes: each starts (at_ms) before its connection arrives.
            let expected = target.arrived(started_at, cutoff);
            let stored = db
                .outcomes(&format!("s{i}"))
                .iter()
                .filter(|o| started_at <= o.at_ms && o.at_ms < cutoff)
                .count();
            assert!(
                stored >= expected,
                "kill {run} (after {alive_ms} ms): s{i} has {stored} outcomes before the \
                 cutoff, its target saw {expected} probes"
            );
        }
        let lost: usize = (0..SERVICES)
            .map(|i| {
                let id = format!("s{i}");
                let stored = db
                    .outcomes(&id)
                    .iter()
                    .filter(|o| o.at_ms >= started_at)
                    .count();
                targets[i]
                    .arrived(started_at, killed_at)
                    .saturating_sub(stored)
            })
            .sum();
        eprintln!("kill {run} after {alive_ms} ms: {lost} probes of the last moments not stored");
        // Stay stopped for longer than the longest gap (2 × interval + timeout).
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // A last run, stopped cleanly, writes the stretch of the last kill.
    let mut child = spawn_daemon(&config);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let pid = child.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(integrity(&db_path), "ok");

    let db = Db::open(&db_path);
    for (i, target) in targets.iter().enumerate() {
        let id = format!("s{i}");
        let outcomes = db.outcomes(&id);
        // Never more outcomes than probes: nothing invented, nothing written twice.
        let probes = target.arrived(0, i64::MAX);
        assert!(
            outcomes.len() <= probes,
            "{id}: {} > {probes}",
            outcomes.len()
        );
        assert!(outcomes.iter().all(|o| o.is_ok()), "{id}");
        // Each kill is one stretch of no data: from one interval after the last stored outcome
        // (at most a batch before the kill) to the first outcome after the restart.
        let gaps = db.no_data(&id);
        assert_eq!(gaps.len(), KILLS, "{id}: {gaps:?}");
        for (gap, killed_at) in gaps.iter().zip(&kills) {
            assert!(
                (killed_at - FLUSH_MS - COMMIT_SLACK_MS..=killed_at + 100).contains(&gap.0)
                    && *killed_at < gap.1,
                "{id}: no-data {gap:?} does not match the kill at {killed_at}"
            );
        }
    }
    let incidents = db.incidents("down");
    assert_eq!(incidents.len(), 1, "resumed, not reopened: {incidents:?}");
    assert_eq!(incidents[0].end_ms, None);
    assert_eq!(db.no_data("down").len(), KILLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_delays_writes_and_loses_nothing() {
    use slaprobe::daemon::{self, Options};
    use std::sync::atomic::Ordering;

    let target = CountingTarget::start().await;
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"100ms\"\n\
         timeout = \"80ms\"\n",
        target.addr
    ));
    let running = daemon::start(config, Options::default()).await.unwrap();
    let db_path = ws.db();
    crate::support::eventually(Duration::from_secs(5), "a stored outcome", || {
        (!Db::open(&db_path).outcomes("web").is_empty()).then_some(())
    })
    .await;

    // Another process (a sqlite3 shell, a backup tool) takes the write lock for longer than the
    // writer's busy timeout (10 s): the writer waits, fails, keeps its batch and tries again.
    let locker = rusqlite::Connection::open(&db_path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = now_ms();
    let stored_before = Db::open(&db_path).outcomes("web").len();
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Nothing was written meanwhile, yet reading went on.
    assert_eq!(Db::open(&db_path).outcomes("web").len(), stored_before);
    let stats = running.store().stats().clone();
    assert!(stats.write_errors.load(Ordering::Relaxed) >= 1);
    assert!(
        stats.queued.load(Ordering::Relaxed) >= 60,
        "probing went on"
    );
    locker.execute_batch("COMMIT").unwrap();
    drop(locker);

    running.store().flush().await.unwrap();
    running.stop().await.unwrap();
    let db = Db::open(&db_path);
    let outcomes = db.outcomes("web");
    // Every probe the target saw is stored, and nothing is missing around the lock.
    assert_eq!(outcomes.len(), target.arrived(0, i64::MAX));
    assert!(outcomes.iter().any(|o| o.at_ms > locked_at + 11_000));
    assert!(db.no_data("web").is_empty());
    assert_eq!(integrity(&db_path), "ok");
}
