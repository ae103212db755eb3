//! Alerts end to end: the daemon probes real local servers, its policy decides, the outbox
//! delivers to a real SMTP server on 127.0.0.1:0, and the tests read what arrived.

use std::time::Duration;

use slaprobe::runtime::{self, Options};

use crate::smtp_server::{Received, TestSmtp};
use crate::support::{Db, Mode, TestHttp, Workspace, eventually};

/// A config with an SMTP server, an `oncall` route and `services` (TOML text).
fn config_text(smtp: &TestSmtp, route_extra: &str, services: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"20ms\"\n\n\
         [smtp]\nurl = \"{}\"\nfrom = \"SLA monitor <sla@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\n{route_extra}\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
         {services}",
        smtp.url()
    )
}

/// interval 300ms, timeout 200ms, retry 100ms.
fn service(id: &str, url: &str) -> String {
    format!(
        "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"300ms\"\n\
         timeout = \"200ms\"\nretry_interval = \"100ms\"\n\n"
    )
}

fn subjects(received: &[Received]) -> Vec<String> {
    received.iter().map(|m| m.subject()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_sends_one_down_and_one_recovered() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let config = ws.config_text(&config_text(
        &smtp,
        "group_window = \"200ms\"",
        &service("web", &http.url("/")),
    ));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(5), "a healthy outcome", || {
        (!Db::open(&db).outcomes("web").is_empty()).then_some(())
    })
    .await;

    http.set(Mode::Status(503));
    let down = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(subjects(&down), ["[slaprobe] DOWN: web (c)"]);
    http.set(Mode::Healthy);
    smtp.wait_for(2, Duration::from_secs(10)).await;
    // Nothing else follows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();

    let all = smtp.received();
    assert_eq!(
        subjects(&all),
        ["[slaprobe] DOWN: web (c)", "[slaprobe] RECOVERED: web (c)"]
    );
    assert_eq!(all[0].to, ["oncall@provider.example"]);
    assert_eq!(all[0].from, "sla@provider.example");
    let down = all[0].text();
    let incident = &Db::open(&db).incidents("web")[0];
    let since = jiff::Timestamp::from_millisecond(incident.start_ms)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(down.contains(&format!("Down since:   {since}")), "{down}");
    assert!(down.contains("Cause:        status: status 503"), "{down}");
    assert!(down.contains("Contract:     c (Test Client)"), "{down}");
    assert!(down.contains("left this month"), "{down}");
    let recovered = all[1].text();
    assert!(recovered.contains("Downtime:"), "{recovered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_services_down_at_once_are_one_message() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let services: String = (0..200)
        .map(|i| {
            format!(
                "[[service]]\nid = \"s{i:03}\"\ncontract = \"c\"\nhttp = \"{}\"\n\
                 interval = \"1s\"\ntimeout = \"500ms\"\nretry_interval = \"200ms\"\n\n",
                http.url("/")
            )
        })
        .collect();
    let config = ws.config_text(&config_text(&smtp, "group_window = \"3s\"", &services));
    http.set(Mode::Status(503));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let got = smtp.wait_for(1, Duration::from_secs(20)).await;
    // Everything confirmed within the first window went out together.
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await.unwrap();
    let got = if got.len() < smtp.received().len() {
        smtp.received()
    } else {
        got
    };
    assert_eq!(got.len(), 1, "{:?}", subjects(&got));
    assert_eq!(
        got[0].subject(),
        "[slaprobe] DOWN: 200 services: s000, s001, s002 and 197 more (c)"
    );
    let text = got[0].text();
    assert!(text.starts_with("DOWN: 200 services"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for i in 0..200 {
        assert!(
            lines.contains(&format!("s{i:03}").as_str()),
            "s{i:03} is named"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_escalates_and_reminds() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let route = "group_window = \"0s\"\nescalate_after = \"1s\"\nescalate_to = \
                 [\"lead@provider.example\"]\nrepeat = \"2s\"";
    let config = ws.config_text(&config_text(&smtp, route, &service("web", &http.url("/"))));
    http.set(Mode::Status(500));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let got = smtp.wait_for(3, Duration::from_secs(15)).await;
    running.stop().await.unwrap();
    let got = &got[..3];
    assert_eq!(
        subjects(got),
        [
            "[slaprobe] DOWN: web (c)",
            "[slaprobe] ESCALATED: web (c)",
            "[slaprobe] STILL DOWN: web (c)"
        ]
    );
    assert_eq!(got[1].to, ["lead@provider.example"]);
    // The reminder goes to everyone told so far.
    assert_eq!(
        got[2].to,
        ["lead@provider.example", "oncall@provider.example"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_inside_maintenance_sends_nothing() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let maintenance =
        format!("[[maintenance]]\ncontract = \"c\"\nstart = \"{start}\"\nduration = \"1h\"\n\n");
    let config = ws.config_text(&config_text(
        &smtp,
        "group_window = \"0s\"",
        &format!("{}{maintenance}", service("web", &http.url("/"))),
    ));
    http.set(Mode::Status(503));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "the incident", || {
        (!Db::open(&db).incidents("web").is_empty()).then_some(())
    })
    .await;
    http.set(Mode::Healthy);
    eventually(Duration::from_secs(10), "the recovery", || {
        Db::open(&db).incidents("web")[0].end_ms
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await.unwrap();
    assert_eq!(subjects(&smtp.received()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_outage_neither_repeats_nor_forgets() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let text = config_text(
        &smtp,
        "group_window = \"0s\"",
        &service("web", &http.url("/")),
    );
    http.set(Mode::Status(503));
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    smtp.wait_for(1, Duration::from_secs(10)).await;
    running.stop().await.unwrap();

    // Started again while still down: no second DOWN; the recovery is announced.
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    http.set(Mode::Healthy);
    smtp.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await.unwrap();
    assert_eq!(
        subjects(&smtp.received()),
        ["[slaprobe] DOWN: web (c)", "[slaprobe] RECOVERED: web (c)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_burn_and_a_low_budget_send_one_sla_at_risk() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    // Rules scaled down to seconds so the test runs quickly; at_risk_below = 100% fires on any
    // downtime this month.
    let route = "group_window = \"0s\"\nburn_rules = [ { long = \"2s\", short = \"1s\", burn = 1, \
                 severity = \"page\" } ]";
    let text = config_text(&smtp, route, &service("web", &http.url("/"))).replace(
        "alert = \"oncall\"",
        "alert = \"oncall\"\nat_risk_below = \"100%\"",
    );
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    // Monitored for longer than the 2 s window first.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    http.set(Mode::Status(503));
    let got = eventually(Duration::from_secs(15), "an SLA AT RISK message", || {
        smtp.received()
            .into_iter()
            .find(|m| m.subject().starts_with("[slaprobe] SLA AT RISK:"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    assert_eq!(got.subject(), "[slaprobe] SLA AT RISK: web (c)");
    let text = got.text();
    assert!(text.contains("the error budget burns at"), "{text}");
    assert!(
        text.contains("page rule: 1.0x over 2 s confirmed by 1 s"),
        "{text}"
    );
    assert!(text.contains("of the error budget for"), "{text}");
    let at_risk = smtp
        .received()
        .iter()
        .filter(|m| m.subject().starts_with("[slaprobe] SLA AT RISK:"))
        .count();
    assert_eq!(at_risk, 1, "one notice while the flags stay set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_still_gathering_at_shutdown_is_kept() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    // A window far longer than the test: the DOWN is still gathering when the daemon stops.
    let config = ws.config_text(&config_text(
        &smtp,
        "group_window = \"1h\"",
        &service("web", &http.url("/")),
    ));
    http.set(Mode::Status(503));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "the incident", || {
        (!Db::open(&db).incidents("web").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.stop().await.unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let subjects: Vec<String> = conn
        .prepare("SELECT subject FROM outbox WHERE kind = 'alert'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(subjects, ["[slaprobe] DOWN: web (c)"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_expiry_is_one_notice_not_downtime() {
    let smtp = TestSmtp::start().await;
    let today = jiff::Zoned::now().date();
    let https =
        crate::support::TestHttps::start(today.checked_add(jiff::Span::new().days(5)).unwrap())
            .await;
    let ws = Workspace::new();
    let services = format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ntls_verify = false\n\
         cert_expiry_warn = \"14d\"\ninterval = \"300ms\"\ntimeout = \"250ms\"\n",
        https.url()
    );
    let config = ws.config_text(&config_text(&smtp, "group_window = \"100ms\"", &services));
    let running = runtime::start(config, Options::default()).await.unwrap();
    let notice = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(subjects(&notice), ["[slaprobe] CERT EXPIRING: web (c)"]);
    assert!(
        notice[0].text().contains("the certificate expires at"),
        "{}",
        notice[0].text()
    );
    // Many more probes see the same certificate: no second notice, and no downtime.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    running.stop().await.unwrap();
    assert_eq!(smtp.received().len(), 1, "{:?}", subjects(&smtp.received()));
    let db = Db::open(&ws.db());
    assert!(db.incidents("web").is_empty());
    assert!(db.outcomes("web").iter().all(|o| o.is_ok()));
}
