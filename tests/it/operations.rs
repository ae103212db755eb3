//! Operating the daemon: online backups.

use std::time::Duration;

use slaprobe::daemon::{self, Options};

use crate::support::{Db, TestHttp, Workspace, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_heavy_writes_is_consistent() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let services: String = (0..30)
        .map(|i| {
            format!(
                "[[service]]\nid = \"s{i}\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"100ms\"\n\
                 timeout = \"80ms\"\n\n",
                http.url("/")
            )
        })
        .collect();
    let running = daemon::start(ws.config(&services), Options::default())
        .await
        .unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "outcomes being written", || {
        (Db::open(&db).outcomes("s0").len() >= 5).then_some(())
    })
    .await;
    let mut copies = Vec::new();
    for n in 0..3 {
        let copy = ws.path(&format!("backup-{n}.db"));
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .arg("backup")
            .arg(&copy)
            .arg("--config")
            .arg(ws.path("probes.toml"))
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("integrity ok"));
        copies.push(copy);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A second backup to an existing file is refused.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .arg("backup")
        .arg(&copies[0])
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    running.stop().await.unwrap();

    let mut previous = 0;
    for copy in &copies {
        let conn = rusqlite::Connection::open(copy).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let outcomes = Db::open(copy).outcomes("s0").len();
        assert!(
            outcomes > previous,
            "later copies hold more: {outcomes} after {previous}"
        );
        previous = outcomes;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(copy).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the copy is private");
        }
    }
}

/// Runs `slaprobe run` for a moment with `args`, stops it with SIGTERM, returns its stderr.
async fn run_briefly(ws: &Workspace, args: &[&str]) -> String {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = child.id().unwrap().to_string();
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn logs_are_plain_text_or_json_lines() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\n",
        http.url("/")
    ));
    let text = run_briefly(&ws, &[]).await;
    assert!(text.contains("Store open."), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );

    let json = run_briefly(&ws, &["--log-format", "json"]).await;
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 3, "{json}");
    let open = lines
        .iter()
        .find(|l| l["message"] == "Store open.")
        .expect("the store line");
    assert_eq!(open["level"], "INFO");
    assert_eq!(open["services"], 1);
    assert!(open["timestamp"].is_string());
}

#[tokio::test]
async fn sighup_with_a_broken_config_keeps_the_daemon_running() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n",
        http.url("/")
    ));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["run", "--config"])
        .arg(ws.path("probes.toml"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let signal = |name: &'static str| {
        let pid = pid.clone();
        async move {
            tokio::process::Command::new("kill")
                .args([name, &pid])
                .status()
                .await
                .unwrap()
        }
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = http.requests();
    std::fs::write(ws.path("probes.toml"), "[daemon]\nlisten = \"nowhere\"\n").unwrap();
    signal("-HUP").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(http.requests() > before, "still probing after the SIGHUP");
    signal("-TERM").await;
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("probes.toml:2:10"),
        "the error with its position: {log}"
    );
    assert!(
        log.contains("still running the config it started with"),
        "{log}"
    );
}
