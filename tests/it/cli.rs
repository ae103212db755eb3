//! The binary: exit codes and output of `check` and `probe`.

use std::process::Command;

use crate::support::{Mode, TestHttp, Workspace};

fn slaprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaprobe"))
}

#[test]
fn check_exits_64_with_every_error() {
    let ws = Workspace::new();
    let path = ws.path("probes.toml");
    std::fs::write(
        &path,
        "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9\"\n[[service]]\nid = \"s\"\n\
         contract = \"c\"\ntcp = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out = slaprobe()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:", path.display());
    assert!(
        stderr.contains(&format!("{prefix}4:10: `target`")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{prefix}8:7: `tcp`")), "{stderr}");
}

#[test]
fn check_accepts_the_example() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.example.toml");
    let out = slaprobe()
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test]
async fn probe_exits_0_when_ok_and_1_when_failed() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ntimeout = \"2s\"\n",
        http.url("/")
    ));
    let path = ws.path("probes.toml");
    let run = |path: std::path::PathBuf| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["probe", "web", "--config"])
            .arg(path)
            .output()
            .await
            .unwrap()
    };
    let out = run(path.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("web: ok in"));

    http.set(Mode::Status(500));
    let out = run(path.clone()).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED status: status 500"), "{stdout}");

    let out = slaprobe()
        .args(["probe", "nope", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_state_since_and_last_outcome() {
    let up = TestHttp::start().await;
    let down = TestHttp::start().await;
    down.set(Mode::Status(503));
    let ws = Workspace::new();
    let service = |id: &str, url: String| {
        format!(
            "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"300ms\"\n\
             timeout = \"200ms\"\nretry_interval = \"100ms\"\n"
        )
    };
    let config = ws.config(&format!(
        "{}{}[[service]]\nid = \"never\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"1h\"\n",
        service("up", up.url("/")),
        service("down", down.url("/"))
    ));
    let running = slaprobe::runtime::start(config, slaprobe::runtime::Options::default())
        .await
        .unwrap();
    let db = ws.db();
    crate::support::eventually(std::time::Duration::from_secs(5), "an incident", || {
        crate::support::Db::open(&db)
            .incidents("down")
            .first()
            .cloned()
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["status", "--format", "json", "--config"])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    let text_out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["status", "--config"])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    running.stop().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["mail"]["pending"], serde_json::json!([]));
    let lines = &status["services"];
    let by_id = |id: &str| {
        lines
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["service"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("up")["state"], "up");
    assert_eq!(by_id("up")["last"]["ok"], true);
    // Month to date: fully available so far, the whole budget left (0.1% of the month's time).
    let month = &by_id("up")["month"];
    assert_eq!(month["availability"], 1.0);
    assert!(month["budget_s"].as_f64().unwrap() > 2_000.0, "{month}");
    assert_eq!(month["budget_remaining_s"], month["budget_s"]);
    let down_month = &by_id("down")["month"];
    assert!(
        down_month["availability"].as_f64().unwrap() < 1.0,
        "{down_month}"
    );
    assert!(
        down_month["budget_remaining_s"].as_f64().unwrap()
            < down_month["budget_s"].as_f64().unwrap()
    );
    let down_line = by_id("down");
    assert_eq!(down_line["state"], "down");
    assert_eq!(down_line["last"]["reason"], "status");
    assert!(
        down_line["last"]["detail"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    let incident = crate::support::Db::open(&db).incidents("down")[0].clone();
    let since = jiff::Timestamp::from_millisecond(incident.start_ms)
        .unwrap()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    assert_eq!(down_line["since"], since.as_str());
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert!(text.starts_with("SERVICE"), "{text}");
    assert!(text.contains("down"), "{text}");
}
