//! The daemon against real local servers, read back from its SQLite file: incidents with a
//! backdated start, blips that are not downtime, recovery, no-data across a stop, and a clean
//! SIGTERM that loses nothing.

use std::time::Duration;

use slaprobe::runtime::{self, Options};

use crate::support::{Db, Mode, TestHttp, Workspace, eventually};

/// interval 300ms, timeout 200ms, retry 100ms: max gap 800ms.
fn fast_service(id: &str, url: &str) -> String {
    format!(
        "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"300ms\"\n\
         timeout = \"200ms\"\nretry_interval = \"100ms\"\nconfirm_down = 2\nconfirm_up = 1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_becomes_one_backdated_incident_and_recovers() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let config = ws.config(&fast_service("web", &http.url("/")));
    let running = runtime::start(config, Options::default()).await.unwrap();

    let db_path = ws.db();
    eventually(Duration::from_secs(5), "two healthy outcomes", || {
        (Db::open(&db_path).outcomes("web").len() >= 2).then_some(())
    })
    .await;
    http.set(Mode::FailNext(3));
    let incident = eventually(Duration::from_secs(10), "a closed incident", || {
        Db::open(&db_path)
            .incidents("web")
            .into_iter()
            .find(|i| i.end_ms.is_some())
    })
    .await;
    running.stop().await.unwrap();

    let db = Db::open(&db_path);
    assert_eq!(db.incidents("web").len(), 1);
    let outcomes = db.outcomes("web");
    let first_failure = outcomes.iter().position(|o| !o.is_ok()).unwrap();
    let failures: Vec<_> = outcomes[first_failure..]
        .iter()
        .take_while(|o| !o.is_ok())
        .collect();
    assert_eq!(failures.len(), 3, "{outcomes:#?}");
    let recovery = &outcomes[first_failure + 3];
    assert!(recovery.is_ok());
    // Backdated to the first failure of the confirming streak; ends at the first success.
    assert_eq!(incident.start_ms, outcomes[first_failure].at_ms);
    assert_eq!(incident.end_ms, Some(recovery.at_ms));
    assert_eq!(incident.reason, "status");
    // Retries come after retry_interval, not interval.
    let gap = failures[1].at_ms - failures[0].at_ms;
    assert!((90..250).contains(&gap), "retry gap {gap} ms");
    assert!(db.blips("web").is_empty());
    assert!(db.no_data("web").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_failure_is_a_blip_not_an_incident() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let config = ws.config(&fast_service("web", &http.url("/")));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let db_path = ws.db();
    eventually(Duration::from_secs(5), "a healthy outcome", || {
        (!Db::open(&db_path).outcomes("web").is_empty()).then_some(())
    })
    .await;
    http.set(Mode::FailNext(1));
    let blip = eventually(Duration::from_secs(5), "a blip", || {
        Db::open(&db_path).blips("web").first().copied()
    })
    .await;
    running.stop().await.unwrap();
    let db = Db::open(&db_path);
    assert!(db.incidents("web").is_empty());
    let outcomes = db.outcomes("web");
    let failed = outcomes.iter().find(|o| !o.is_ok()).unwrap();
    assert_eq!((blip.0, blip.2), (failed.at_ms, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_records_no_data_and_resumes_the_open_incident() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let service = fast_service("web", &http.url("/"));
    let db_path = ws.db();

    http.set(Mode::Status(503));
    let running = runtime::start(ws.config(&service), Options::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "an open incident", || {
        Db::open(&db_path).incidents("web").first().cloned()
    })
    .await;
    running.stop().await.unwrap();
    let before = Db::open(&db_path).outcomes("web");
    let last_before = before.last().unwrap().at_ms;

    // Stopped for longer than the max gap (2 × 300ms + 200ms).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let running = runtime::start(ws.config(&service), Options::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "an outcome after the restart",
        || (Db::open(&db_path).outcomes("web").len() > before.len()).then_some(()),
    )
    .await;
    http.set(Mode::Healthy);
    eventually(Duration::from_secs(5), "the incident closed", || {
        Db::open(&db_path)
            .incidents("web")
            .first()
            .and_then(|i| i.end_ms)
    })
    .await;
    running.stop().await.unwrap();

    let db = Db::open(&db_path);
    let incidents = db.incidents("web");
    assert_eq!(
        incidents.len(),
        1,
        "the open incident was resumed, not duplicated"
    );
    let outcomes = db.outcomes("web");
    let first_after = outcomes[before.len()].at_ms;
    assert_eq!(db.no_data("web"), vec![(last_before + 300, first_after)]);
    // The incident spans the stop; the stretch without data is recorded separately.
    assert!(incidents[0].start_ms < last_before);
    assert!(incidents[0].end_ms.unwrap() > first_after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_reports_health_and_counters() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99%\"\n\n{}",
        fast_service("web", &http.url("/"))
    );
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    let addr = running.endpoint_addr().unwrap();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let body = client
        .get(format!("http://{addr}/api/v1/daemon"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["services"], 1);
    assert_eq!(report["location"], "local");
    assert_eq!(report["locations"], serde_json::json!(["local"]));
    assert!(report["probes"].as_u64().unwrap() >= 2, "{report}");
    assert!(
        report["lateness"]["count"].as_u64().unwrap() >= 2,
        "{report}"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_probes_in_flight_and_loses_nothing() {
    let http = TestHttp::start().await;
    http.set(Mode::Slow(Duration::from_millis(120)));
    let ws = Workspace::new();
    let services: String = (0..5)
        .map(|i| fast_service(&format!("web{i}"), &http.url("/")))
        .collect();
    ws.config(&services);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["run", "--config"])
        .arg(ws.path("probes.toml"))
        .env("SLAPROBE_LOG", "warn")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let db = Db::open(&ws.db());
    let stored: usize = (0..5).map(|i| db.outcomes(&format!("web{i}")).len()).sum();
    assert!(stored >= 10, "only {stored} outcomes");
    // Every request the target answered is a stored outcome: in-flight probes finished.
    assert_eq!(stored as u64, http.requests());
}
