//! Live reload: services added, removed and changed while the daemon runs, judged from what
//! the store recorded and what the endpoint shows.

use std::time::Duration;

use slaprobe::runtime::{self, Options};

use crate::support::{Db, Mode, TestHttp, Workspace, eventually};

const STEADY_INTERVAL_MS: i64 = 400;

fn service(id: &str, url: &str, interval: &str, extra: &str) -> String {
    format!(
        "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"{interval}\"\n\
         timeout = \"150ms\"\n{extra}\n"
    )
}

fn config_text(services: &[String]) -> String {
    format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nflush_interval = \"20ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n\n\
         [[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99.5%\"\n\n{}",
        services.concat()
    )
}

/// The longest stretch between consecutive stored outcomes.
fn longest_gap(at: &[i64]) -> i64 {
    at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_starts_stops_and_changes_services_without_a_gap_for_the_others() {
    let http = TestHttp::start().await;
    let failing = TestHttp::start().await;
    failing.set(Mode::Status(503));
    let ws = Workspace::new();
    let url = http.url("/");
    let before = config_text(&[
        service("steady", &url, "400ms", ""),
        service("gone", &url, "200ms", ""),
        service("moved", &failing.url("/"), "600ms", "confirm_down = 2"),
    ]);
    let mut running = runtime::start(ws.config_text(&before), Options::default())
        .await
        .unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "moved to be down", || {
        (!Db::open(&db).incidents("moved").is_empty()).then_some(())
    })
    .await;

    // `gone` removed, `fresh` added, `moved` faster and under contract `d` (still failing: its
    // incident must stay the same one), `steady` untouched.
    let after = config_text(&[
        service("steady", &url, "400ms", ""),
        service("moved", &failing.url("/"), "200ms", "confirm_down = 3")
            .replace("contract = \"c\"", "contract = \"d\""),
        service("fresh", &url, "200ms", ""),
    ]);
    let reloaded_at = jiff::Timestamp::now().as_millisecond();
    let plan = running.reload(ws.config_text(&after)).await.unwrap();
    assert_eq!(plan.added.len(), 1);
    assert_eq!(plan.removed, ["gone"]);
    assert_eq!(plan.changed.len(), 1);
    assert_eq!(plan.unchanged, 1);

    eventually(Duration::from_secs(10), "fresh outcomes", || {
        (Db::open(&db).outcomes("fresh").len() >= 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The endpoint serves the new config.
    let base = format!("http://{}", running.endpoint_addr().unwrap());
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("slaprobe_up{service=\"fresh\",contract=\"c\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("slaprobe_up{service=\"moved\",contract=\"d\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("service=\"gone\""), "{metrics}");
    assert!(
        !metrics.contains("service=\"moved\",contract=\"c\""),
        "{metrics}"
    );
    let services: serde_json::Value = reqwest::get(format!("{base}/api/v1/services"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let ids: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["steady", "moved", "fresh"]);
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("fresh") && !page.contains("gone"), "{page}");
    let stopped_at = jiff::Timestamp::now().as_millisecond();
    running.stop().await.unwrap();

    let store = Db::open(&db);
    // Unchanged: probed on its grid throughout, never a no-data stretch.
    let steady: Vec<i64> = store.outcomes("steady").iter().map(|o| o.at_ms).collect();
    assert!(steady.first().unwrap() < &(reloaded_at - STEADY_INTERVAL_MS));
    assert!(steady.last().unwrap() > &(stopped_at - 2 * STEADY_INTERVAL_MS));
    assert!(
        longest_gap(&steady) < STEADY_INTERVAL_MS + 250,
        "a gap around the reload at {reloaded_at}: {steady:?}"
    );
    assert!(store.no_data("steady").is_empty());
    // Removed: at most the probe in flight at the reload is recorded after it.
    let gone_after = store
        .outcomes("gone")
        .iter()
        .filter(|o| o.at_ms > reloaded_at)
        .count();
    assert!(gone_after <= 1, "{gone_after} outcomes after removal");
    // Added: probed from the reload on.
    let fresh = store.outcomes("fresh");
    assert!(fresh.iter().all(|o| o.at_ms >= reloaded_at));
    assert!(fresh.len() >= 5);
    // Changed: the same open incident (its state kept), probed at the new interval, no no-data.
    let incidents = store.incidents("moved");
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].end_ms, None);
    assert!(store.no_data("moved").is_empty());
    let moved_after: Vec<i64> = store
        .outcomes("moved")
        .iter()
        .map(|o| o.at_ms)
        .filter(|at| *at > reloaded_at)
        .collect();
    // Failing at a 200 ms interval (its retries too) instead of 600 ms.
    assert!(moved_after.len() >= 6, "{moved_after:?}");
    assert!(longest_gap(&moved_after) < 450, "{moved_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_service_added_back_resumes_its_history() {
    let failing = TestHttp::start().await;
    failing.set(Mode::Status(500));
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let both = config_text(&[
        service("keep", &http.url("/"), "200ms", ""),
        service("flaky", &failing.url("/"), "200ms", ""),
    ]);
    let only_keep = config_text(&[service("keep", &http.url("/"), "200ms", "")]);
    let mut running = runtime::start(ws.config_text(&both), Options::default())
        .await
        .unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "flaky to be down", || {
        (!Db::open(&db).incidents("flaky").is_empty()).then_some(())
    })
    .await;
    running.reload(ws.config_text(&only_keep)).await.unwrap();
    // Longer than its longest allowed gap (2 × 200 ms + 150 ms).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    failing.set(Mode::Healthy);
    running.reload(ws.config_text(&both)).await.unwrap();
    eventually(Duration::from_secs(10), "flaky to recover", || {
        let incidents = Db::open(&db).incidents("flaky");
        incidents[0].end_ms.map(|_| incidents)
    })
    .await;
    running.stop().await.unwrap();
    let store = Db::open(&db);
    // One incident, resumed and closed; the stretch it was not probed is no-data.
    assert_eq!(store.incidents("flaky").len(), 1);
    assert_eq!(store.no_data("flaky").len(), 1);
}
