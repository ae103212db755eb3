//! `slaprobe report` over what a real daemon recorded.

use std::time::Duration;

use slaprobe::runtime::{self, Options};
use slaprobe::text::timestamp;

use crate::support::{Db, Mode, TestHttp, Workspace, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_json_matches_the_recorded_incident_to_the_millisecond() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"300ms\"\n\
         timeout = \"200ms\"\nretry_interval = \"100ms\"\n",
        http.url("/")
    ));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let db_path = ws.db();
    eventually(Duration::from_secs(5), "two outcomes", || {
        (Db::open(&db_path).outcomes("web").len() >= 2).then_some(())
    })
    .await;
    http.set(Mode::FailNext(3));
    eventually(
        Duration::from_secs(10),
        "a closed incident and two more outcomes",
        || {
            let db = Db::open(&db_path);
            let closed = db.incidents("web").iter().any(|i| i.end_ms.is_some());
            (closed && db.outcomes("web").len() >= 8).then_some(())
        },
    )
    .await;
    running.stop().await.unwrap();

    let db = Db::open(&db_path);
    let outcomes = db.outcomes("web");
    let incident = db.incidents("web")[0].clone();
    let (from, to) = (outcomes[0].at_ms, outcomes.last().unwrap().at_ms);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["report", "--service", "web", "--format", "json", "--from"])
        .arg(timestamp(from))
        .arg("--to")
        .arg(timestamp(to))
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let downtime_ms = incident.end_ms.unwrap() - incident.start_ms;
    let period_ms = to - from;
    assert_eq!(r["service"], "web");
    assert_eq!(r["partial"], false);
    assert_eq!(r["period_s"].as_f64().unwrap(), period_ms as f64 / 1000.0);
    assert_eq!(r["measured_s"], r["period_s"]);
    assert_eq!(r["no_data_s"].as_f64().unwrap(), 0.0);
    assert_eq!(
        r["downtime_s"].as_f64().unwrap(),
        downtime_ms as f64 / 1000.0
    );
    assert_eq!(r["incidents"], 1);
    assert_eq!(r["mttr_s"].as_f64().unwrap(), downtime_ms as f64 / 1000.0);
    let expected = (period_ms - downtime_ms) as f64 / period_ms as f64;
    assert!((r["availability"].as_f64().unwrap() - expected).abs() < 1e-12);
    assert_eq!(r["met"], false);
    assert_eq!(r["target"].as_f64().unwrap(), 0.999);

    // CSV and text render the same report.
    let csv = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args([
            "report",
            "--service",
            "web",
            "--format",
            "csv",
            "--last",
            "1h",
            "--config",
        ])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("service,contract,from,to,partial"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("web,c,"), "{csv}");
    let text = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["report", "--contract", "c", "--last", "1h", "--config"])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("incidents        1"), "{text}");
}
