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

    /// A TCP service on this target, probed every 100 ms.
    fn service(&self, id: &str) -> String {
        format!(
            "[[service]]\nid = \"{id}\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"100ms\"\n\
             timeout = \"80ms\"\n\n",
            self.addr
        )
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

/// Stops the daemon with SIGTERM and checks that it exits cleanly within ten seconds.
async fn stop_cleanly(child: &mut tokio::process::Child) {
    let pid = libc::pid_t::try_from(child.id().expect("the daemon is running")).unwrap();
    // SAFETY: kill takes no pointers; the pid is our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A write past a file-size limit raises SIGXFSZ, which would kill the process: the child
/// ignores it, so the write fails with EFBIG instead, as a full disk fails with ENOSPC.
fn survive_file_size_limit(command: &mut tokio::process::Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
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
        text.push_str(&target.service(&format!("s{i}")));
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
    stop_cleanly(&mut child).await;
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
    use slaprobe::runtime::{self, Options};
    use std::sync::atomic::Ordering;

    let target = CountingTarget::start().await;
    let ws = Workspace::new();
    let config = ws.config_text(&format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"20ms\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\n\n{}",
        target.service("web")
    ));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let ready = format!("http://{}/readyz", running.endpoint_addr().unwrap());
    let readiness = || async {
        let answer = reqwest::get(&ready).await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    assert_eq!(readiness().await, (200, "ready\n".to_string()));
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
    // Not ready while records wait: a fleet's monitor or a load balancer sees it.
    let (status, said) = readiness().await;
    assert_eq!(status, 503, "{said}");
    assert!(said.contains("the database refuses writes"), "{said}");
    locker.execute_batch("COMMIT").unwrap();
    drop(locker);

    running.store().flush().await.unwrap();
    assert_eq!(readiness().await, (200, "ready\n".to_string()));
    running.stop().await.unwrap();
    let db = Db::open(&db_path);
    let outcomes = db.outcomes("web");
    // Every probe the target saw is stored, and nothing is missing around the lock.
    assert_eq!(outcomes.len(), target.arrived(0, i64::MAX));
    assert!(outcomes.iter().any(|o| o.at_ms > locked_at + 11_000));
    assert!(db.no_data("web").is_empty());
    assert_eq!(integrity(&db_path), "ok");
}

/// Sets the soft limit on the size of any file `pid` writes (RLIMIT_FSIZE): writing past it
/// fails as a full disk would. `None` lifts the limit.
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing back (null old limit).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_probing_and_alerting_and_loses_nothing_once_space_returns() {
    use crate::smtp_server::TestSmtp;
    use crate::support::{Mode, TestHttp, eventually};

    let smtp = TestSmtp::start().await;
    let web = CountingTarget::start().await;
    let api = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config_text(&format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"100ms\"\n\n\
         [smtp]\nurl = \"{}\"\nfrom = \"SLA monitor <sla@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\n\
         group_window = \"500ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
         [[service]]\nid = \"web\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"100ms\"\n\
         timeout = \"80ms\"\n\n\
         [[service]]\nid = \"api\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\n\
         timeout = \"150ms\"\nretry_interval = \"100ms\"\nconfirm_down = 2\n",
        smtp.url(),
        web.addr,
        api.url("/")
    ));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"));
    child
        .args(["run", "--config"])
        .arg(ws.path("probes.toml"))
        .env("SLAPROBE_LOG", "info")
        // A pipe: the file-size limit below applies to files only, so the log stays readable.
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    survive_file_size_limit(&mut child);
    let mut child = child.spawn().unwrap();
    let pid = child.id().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let collected = log.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            collected
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let db_path = ws.db();
    let wal = ws.path("slaprobe.db-wal");
    let logged = |what: &str| log.lock().unwrap().contains(what);
    eventually(Duration::from_secs(10), "stored outcomes", || {
        (logged("Store open.") && Db::open(&db_path).outcomes("web").len() >= 3).then_some(())
    })
    .await;

    // The disk fills: no file may grow.
    limit_file_size(pid, Some(0));
    let full_from = now_ms();
    let sizes = (file_len(&db_path), file_len(&wal));
    eventually(Duration::from_secs(10), "a logged write failure", || {
        logged("Probing goes on").then_some(())
    })
    .await;
    // The service goes down while the disk is full: on-call staff still hear of it.
    api.set(Mode::Status(503));
    let mails = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert!(
        mails[0].subject().contains("DOWN: api"),
        "{}",
        mails[0].subject()
    );
    assert!(logged("sending them directly"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored_during = Db::open(&db_path)
        .outcomes("web")
        .iter()
        .filter(|o| o.at_ms > full_from + 1_000)
        .count();
    assert_eq!(
        stored_during, 0,
        "the disk was full, yet outcomes were written"
    );
    assert_eq!((file_len(&db_path), file_len(&wal)), sizes);

    // Space returns: everything kept in memory lands.
    limit_file_size(pid, None);
    let refilled_at = now_ms();
    eventually(
        Duration::from_secs(15),
        "the kept records and alerts written",
        || {
            (logged("takes writes again: wrote every record")
                && logged("alerts kept meanwhile are in the outbox"))
            .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_cleanly(&mut child).await;

    assert_eq!(integrity(&db_path), "ok");
    let db = Db::open(&db_path);
    let outcomes = db.outcomes("web");
    assert_eq!(
        outcomes.len(),
        web.arrived(0, i64::MAX),
        "every probe is stored"
    );
    let during = outcomes
        .iter()
        .filter(|o| full_from < o.at_ms && o.at_ms < refilled_at)
        .count();
    assert!(
        during >= 20,
        "only {during} outcomes from the full-disk stretch"
    );
    assert!(db.no_data("web").is_empty());
    assert_eq!(db.incidents("api").len(), 1);
    // The alert sent directly is on record as sent, and was not sent a second time.
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let states: Vec<(String, String)> = conn
        .prepare("SELECT subject, state FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert!(
        states[0].0.contains("DOWN: api") && states[0].1 == "sent",
        "{states:?}"
    );
    assert_eq!(smtp.received().len(), 1);
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("Writing the database failed")
            || log.contains("disk holding the database is full"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_neither_break_the_schedule_nor_count_time_twice() {
    use slaprobe::clock::Clock;
    use slaprobe::runtime::{self, Options};

    let target = CountingTarget::start().await;
    let ws = Workspace::new();
    let config = ws.config(&target.service("web"));
    let clock = Clock::following_tokio(now_ms());
    let options = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let running = runtime::start(config, options).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let before_back = clock.now_ms();
    // NTP (or an operator) sets the clock back ten minutes, then, later, an hour forward.
    clock.step(-600_000);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before_forward = clock.now_ms();
    clock.step(3_600_000);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    running.stop().await.unwrap();

    // The schedule runs on the monotonic clock: probes kept their pace through both steps.
    let arrivals = target.arrivals.lock().unwrap().clone();
    let longest = arrivals.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(arrivals.len() >= 25, "{} probes in 3.5 s", arrivals.len());
    assert!(longest < 400, "a {longest} ms pause between probes");

    let db = Db::open(&ws.db());
    let outcomes = db.outcomes("web");
    assert_eq!(outcomes.len(), arrivals.len(), "every probe stored once");
    // Stamps never go back: no negative interval, and the ten minutes set back are not
    // counted again (the stamps hold, then move on from where they were).
    assert!(outcomes.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let held = outcomes
        .iter()
        .filter(|o| o.at_ms >= before_back && o.at_ms <= before_forward)
        .count();
    assert!(held >= 10, "{held} outcomes stamped during the step back");
    // The stretch skipped forward is one stretch of no data, not time up: the hour forward
    // less the ten minutes the stamps held for, plus the 1.5 s spent holding.
    let gaps = db.no_data("web");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let skipped = gaps[0].1 - gaps[0].0;
    assert!(
        (3_000_000 + 1_000..=3_000_000 + 2_500).contains(&skipped),
        "no-data of {skipped} ms"
    );
    assert!(db.incidents("web").is_empty() && db.blips("web").is_empty());

    // Restarted with the clock two hours behind what is stored: stamps start from the latest
    // stored outcome, never before it.
    let latest = outcomes.last().unwrap().at_ms;
    let options = Options {
        clock: Clock::following_tokio(now_ms() - 7_200_000),
        ..Options::default()
    };
    let config = ws.config(&target.service("web"));
    let running = runtime::start(config, options).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await.unwrap();
    let after = Db::open(&ws.db()).outcomes("web");
    assert!(after.len() > outcomes.len());
    assert!(after.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(after[outcomes.len()..].iter().all(|o| o.at_ms >= latest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_measured_never_invents_outcomes_and_leaves_no_data() {
    use crate::support::{Mode, TestHttp, get_text};
    use slaprobe::runtime::{self, Options};
    use std::sync::atomic::Ordering;

    // 12 services every 200 ms whose target takes 150 ms: 9 probes in flight on average,
    // against a cap of 2 (4.5 times what the cap can serve).
    let http = TestHttp::start().await;
    http.set(Mode::Slow(Duration::from_millis(150)));
    let ws = Workspace::new();
    let services: String = (0..12)
        .map(|i| {
            format!(
                "[[service]]\nid = \"s{i}\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\n\
                 timeout = \"180ms\"\n\n",
                http.url("/")
            )
        })
        .collect();
    let config = ws.config_text(&format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nmax_in_flight = 2\n\
         flush_interval = \"50ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n\n{services}"
    ));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let addr = running.endpoint_addr().unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // The daemon answers while overloaded, and says it is late.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let report: serde_json::Value =
        serde_json::from_str(&get_text(&client, &format!("http://{addr}/api/v1/daemon")).await)
            .unwrap();
    assert!(report["probes_late"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["lateness"]["max_us"].as_u64().unwrap() > 200_000,
        "{report}"
    );
    let metrics = get_text(&client, &format!("http://{addr}/metrics")).await;
    assert!(metrics.contains("slaprobe_probes_late_total "), "{metrics}");
    assert!(running.metrics().in_flight.load(Ordering::Relaxed) <= 2);
    running.stop().await.unwrap();

    let db = Db::open(&ws.db());
    let stored: usize = (0..12).map(|i| db.outcomes(&format!("s{i}")).len()).sum();
    // Only what was probed is stored: two at a time for 2.5 s is at most ~35, not the 150 the
    // schedule asked for.
    assert_eq!(
        stored as u64,
        http.requests(),
        "outcomes match requests one to one"
    );
    assert!(stored < 60, "{stored} outcomes from a cap of 2 over 2.5 s");
    // The schedule points that were missed are no-data, not time up.
    let gaps: usize = (0..12).map(|i| db.no_data(&format!("s{i}")).len()).sum();
    assert!(gaps > 0, "no no-data recorded under overload");
    let incidents: usize = (0..12).map(|i| db.incidents(&format!("s{i}")).len()).sum();
    assert_eq!(incidents, 0, "lateness is not downtime");
}

/// The log on the full disk too (stderr sent to a file): log lines that cannot be written are
/// dropped, and the store writer, which logs the failure, keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_on_the_full_disk_does_not_stop_the_store() {
    let web = CountingTarget::start().await;
    let ws = Workspace::new();
    ws.config(&web.service("web"));
    let log = ws.path("daemon.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"));
    command
        .args(["run", "--config"])
        .arg(ws.path("probes.toml"))
        .env("SLAPROBE_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    survive_file_size_limit(&mut command);
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    let db_path = ws.db();
    crate::support::eventually(Duration::from_secs(10), "stored outcomes", || {
        let started = std::fs::read_to_string(&log)
            .unwrap()
            .contains("Store open.");
        (started && !Db::open(&db_path).outcomes("web").is_empty()).then_some(())
    })
    .await;
    limit_file_size(pid, Some(0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    limit_file_size(pid, None);
    let stored = Db::open(&db_path).outcomes("web").len();
    crate::support::eventually(Duration::from_secs(15), "writing again", || {
        (Db::open(&db_path).outcomes("web").len() > stored + 10).then_some(())
    })
    .await;
    stop_cleanly(&mut child).await;
    let db = Db::open(&db_path);
    assert_eq!(db.outcomes("web").len(), web.arrived(0, i64::MAX));
    assert!(db.no_data("web").is_empty());
}
