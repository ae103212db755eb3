//! Incident response end to end (DESIGN.md §6.2): `slaprobe ack` and the API's ack stop the
//! escalation chain, the OVERDUE notices, webhooks (signed), Slack and Telegram through the
//! outbox with retries, response figures in reports from imported timelines, the daily digest.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use slaprobe::runtime::{self, Options};
use tokio::process::Command;

use crate::receiver::{Answer, TestReceiver};
use crate::smtp_server::{Received, TestSmtp};
use crate::support::{DaemonProcess, Db, Mode, TestHttp, Workspace, eventually, history_line};

const OPERATOR: &str = "operator-token-a8c2e41";
const HOOK_SECRET: &str = "hook-secret-9f2b77d1";
const SLACK_PATH: &str = "/slack/T00/B00/slack-secret-40aa";
const BOT_TOKEN: &str = "123456:telegram-secret-c0ffee";

/// interval 300ms, timeout 200ms, retry 100ms, with `extra` keys.
fn service(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"300ms\"\n\
         timeout = \"200ms\"\nretry_interval = \"100ms\"\n{extra}\n\n"
    )
}

fn config(smtp: &TestSmtp, daemon_extra: &str, route: &str, services: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"20ms\"\n{daemon_extra}\n\n\
         [smtp]\nurl = \"{}\"\nfrom = \"SLA monitor <sla@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\n\
         group_window = \"0s\"\n{route}\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
         {services}",
        smtp.url()
    )
}

fn subjects(received: &[Received]) -> Vec<String> {
    received.iter().map(|m| m.subject()).collect()
}

async fn slaprobe(ws: &Workspace, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(args)
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_between_two_steps_stops_the_second_and_the_reminders() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let route = "repeat = \"3s\"\nescalate = [ { after = \"1s\", to = [\"lead@provider.example\"] }, \
                 { after = \"5s\", to = [\"cto@provider.example\"] } ]";
    let cfg = ws.config_text(&config(
        &smtp,
        "",
        route,
        &service("web", &http.url("/"), ""),
    ));
    let running = runtime::start(cfg, Options::default()).await.unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(5), "a healthy outcome", || {
        (!Db::open(&db).outcomes("web").is_empty()).then_some(())
    })
    .await;

    // No incident yet: nothing to acknowledge (exit 1); an unknown service is a usage error.
    let none = slaprobe(&ws, &["ack", "web", "--by", "jo"]).await;
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no open incident"));
    let unknown = slaprobe(&ws, &["ack", "nosuch"]).await;
    assert_eq!(unknown.status.code(), Some(64), "{unknown:?}");

    http.set(Mode::Status(503));
    let first = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        subjects(&first),
        ["[slaprobe] DOWN: web (c)", "[slaprobe] ESCALATED: web (c)"]
    );
    assert_eq!(first[1].to, ["lead@provider.example"]);
    let acked = slaprobe(
        &ws,
        &["ack", "web", "--by", "jo", "--note", "restarting the pool"],
    )
    .await;
    assert_eq!(acked.status.code(), Some(0), "{acked:?}");
    assert!(String::from_utf8_lossy(&acked.stdout).contains("taken up by jo"));
    let again = slaprobe(&ws, &["ack", "web", "--by", "kim"]).await;
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already acknowledged"),
        "{again:?}"
    );

    let told = smtp.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(told[2].subject(), "[slaprobe] ACKNOWLEDGED: web (c) by jo");
    let mut to = told[2].to.clone();
    to.sort();
    assert_eq!(to, ["lead@provider.example", "oncall@provider.example"]);
    assert!(told[2].text().contains("restarting the pool"));
    let status = slaprobe(&ws, &["status", "--format", "json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["services"][0]["state"], "down", "{status}");
    assert_eq!(
        status["services"][0]["acknowledged"]["by"], "jo",
        "{status}"
    );
    // Past the second step's time and two reminder periods: nothing more while still down.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(smtp.received().len(), 3, "{:?}", subjects(&smtp.received()));

    http.set(Mode::Healthy);
    let all = smtp.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(all[3].subject(), "[slaprobe] RECOVERED: web (c)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await.unwrap();
    assert!(
        smtp.received()
            .iter()
            .all(|m| !m.to.contains(&"cto@provider.example".to_string())),
        "the second step never fired"
    );

    // The acknowledgement is on the record: the report shows who and how fast.
    let out = slaprobe(
        &ws,
        &[
            "report",
            "--service",
            "web",
            "--last",
            "1h",
            "--format",
            "json",
        ],
    )
    .await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["acknowledged"], 1, "{report}");
    let incident = &report["incident_list"][0];
    assert_eq!(incident["acknowledged_by"], "jo");
    let ack_s = incident["ack_s"].as_f64().unwrap();
    assert!((0.5..10.0).contains(&ack_s), "{incident}");
    assert_eq!(report["mtta_s"].as_f64(), Some(ack_s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_notices_fire_once_when_the_targets_pass() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let extra = "respond_within = \"1s\"\nrestore_within = \"2s\"";
    let cfg = ws.config_text(&config(
        &smtp,
        "",
        "",
        &service("web", &http.url("/"), extra),
    ));
    let running = runtime::start(cfg, Options::default()).await.unwrap();
    http.set(Mode::Status(503));
    let got = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(
        subjects(&got),
        [
            "[slaprobe] DOWN: web (c)",
            "[slaprobe] RESPONSE OVERDUE: web (c)",
            "[slaprobe] RESTORE OVERDUE: web (c)"
        ]
    );
    assert!(
        got[1].text().contains("not acknowledged within 1 s"),
        "{}",
        got[1].text()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 3, "once each");
    running.stop().await.unwrap();
}

/// HMAC-SHA256 of `body`, computed with the RustCrypto crates (the daemon signs with ring).
fn expected_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A route with the three channels on `receiver`, and the environment holding their secrets.
fn channels_route(receiver: &TestReceiver) -> String {
    format!(
        "webhook = [ {{ url = \"{}\", secret_env = \"TEST_HOOK_SECRET\" }} ]\n\
         slack = {{ url_env = \"TEST_SLACK_URL\" }}\n\
         telegram = {{ token_env = \"TEST_BOT_TOKEN\", chat_id = \"-10042\", api = \"{}\" }}",
        receiver.url("/hook"),
        receiver.url("")
    )
}

fn channel_env(receiver: &TestReceiver) -> Vec<(&'static str, String)> {
    vec![
        ("TEST_OPERATOR", OPERATOR.to_string()),
        ("TEST_HOOK_SECRET", HOOK_SECRET.to_string()),
        ("TEST_SLACK_URL", receiver.url(SLACK_PATH)),
        ("TEST_BOT_TOKEN", BOT_TOKEN.to_string()),
    ]
}

fn spawn(ws: &Workspace, env: &[(&'static str, String)]) -> DaemonProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    DaemonProcess::spawn(ws, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_slack_and_telegram_hear_an_outage_and_the_api_ack() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let receiver = TestReceiver::start().await;
    // The first two requests fail (503, then 429 asking for 1 s): retried, delivered once.
    receiver.script(&[Answer::Status(503), Answer::TooMany(1)]);
    let ws = Workspace::new();
    ws.config_text(&config(
        &smtp,
        "listen = \"127.0.0.1:0\"\noperator_token_env = \"TEST_OPERATOR\"",
        &channels_route(&receiver),
        &service("web", &http.url("/"), ""),
    ));
    let daemon = spawn(&ws, &channel_env(&receiver));
    let base = format!("http://{}", daemon.endpoint().await);
    let client = reqwest::Client::new();
    let ack = |token: Option<&str>, id: &str| {
        let mut request = client
            .post(format!("{base}/api/v1/services/{id}/ack"))
            .body(r#"{"by": "sam", "note": "on it"}"#);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    eventually(Duration::from_secs(10), "a healthy outcome", || {
        (!Db::open(&ws.db()).outcomes("web").is_empty()).then_some(())
    })
    .await;
    assert_eq!(ack(Some(OPERATOR), "web").await.unwrap().status(), 409);

    http.set(Mode::Status(503));
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let hook = receiver.wait_for("/hook", 1, Duration::from_secs(30)).await;
    let slack = receiver
        .wait_for("/slack/", 1, Duration::from_secs(30))
        .await;
    let telegram = receiver.wait_for("/bot", 1, Duration::from_secs(30)).await;

    // The webhook: the event as JSON, signed with the secret.
    let down = hook[0].json();
    assert_eq!(down["event"], "down", "{down}");
    assert_eq!(down["services"][0]["service"], "web");
    assert_eq!(down["services"][0]["contract"], "c");
    assert_eq!(down["services"][0]["reason"], "status");
    assert!(
        down["services"][0]["since"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        down["text"]
            .as_str()
            .unwrap()
            .starts_with("[slaprobe] DOWN: web (c)")
    );
    assert_eq!(
        hook[0].header("x-slaprobe-signature"),
        Some(expected_signature(&hook[0].body))
    );
    // Slack's incoming webhook and Telegram's sendMessage.
    assert_eq!(slack[0].path, SLACK_PATH);
    assert!(
        slack[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("[slaprobe] DOWN: web (c)")
    );
    assert_eq!(telegram[0].path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(telegram[0].json()["chat_id"], "-10042");
    // The two refusals were retried; the one after the 429 waited its second.
    let requests = receiver.requests();
    assert_eq!(requests[0].answer, Answer::Status(503));
    assert_eq!(requests[1].answer, Answer::TooMany(1));
    let after_429 = requests[2..]
        .iter()
        .find(|r| r.path == requests[1].path)
        .expect("the 429 was retried");
    assert!(after_429.at - requests[1].at >= Duration::from_millis(950));
    for path in ["/hook", "/slack/", "/bot"] {
        let delivered = receiver
            .delivered()
            .iter()
            .filter(|r| r.path.starts_with(path))
            .count();
        assert_eq!(delivered, 1, "{path} delivered once");
    }

    // The API: the operator token may acknowledge; nobody else.
    assert_eq!(ack(None, "web").await.unwrap().status(), 401);
    assert_eq!(ack(Some("wrong"), "web").await.unwrap().status(), 401);
    assert_eq!(ack(Some(OPERATOR), "nosuch").await.unwrap().status(), 404);
    let first = ack(Some(OPERATOR), "web").await.unwrap();
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = serde_json::from_slice(&first.bytes().await.unwrap()).unwrap();
    assert_eq!(first["acknowledged_by"], "sam");
    assert_eq!(first["already"], false);
    let second = ack(Some(OPERATOR), "web").await.unwrap();
    let second: serde_json::Value = serde_json::from_slice(&second.bytes().await.unwrap()).unwrap();
    assert_eq!(second["already"], true);
    let acked = receiver.wait_for("/hook", 2, Duration::from_secs(10)).await;
    let acked = acked[1].json();
    assert_eq!(acked["event"], "acknowledged", "{acked}");
    assert_eq!(acked["services"][0]["acknowledged_by"], "sam");
    let mail = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mail[1].subject(), "[slaprobe] ACKNOWLEDGED: web (c) by sam");

    http.set(Mode::Healthy);
    let recovered = receiver.wait_for("/hook", 3, Duration::from_secs(10)).await;
    assert_eq!(recovered[2].json()["event"], "recovered");
    let status = slaprobe(&ws, &["status", "--format", "json"]).await;
    let (_, log) = daemon.stop().await;

    // The secrets appear nowhere: not in the log, the database, the outbox or `status`.
    let mut database = std::fs::read(ws.db()).unwrap();
    if let Ok(wal) = std::fs::read(ws.path("slaprobe.db-wal")) {
        database.extend(wal);
    }
    let database = String::from_utf8_lossy(&database);
    let stdout = String::from_utf8_lossy(&status.stdout);
    for secret in [HOOK_SECRET, "slack-secret-40aa", BOT_TOKEN, OPERATOR] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!database.contains(secret), "{secret} in the database");
        assert!(!stdout.contains(secret), "{secret} in status");
        for m in smtp.received() {
            assert!(!String::from_utf8_lossy(&m.data).contains(secret));
        }
        for r in receiver.requests() {
            assert!(!String::from_utf8_lossy(&r.body).contains(secret));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_down_longer_than_the_group_window_gets_each_message_once_in_order() {
    let smtp = TestSmtp::start().await;
    let http = TestHttp::start().await;
    let receiver = TestReceiver::start().await;
    receiver.usually(Answer::Status(503));
    let ws = Workspace::new();
    let route = format!(
        "webhook = [ {{ url = \"{}\", secret_env = \"TEST_HOOK_SECRET\" }} ]",
        receiver.url("/hook")
    );
    ws.config_text(&config(
        &smtp,
        "listen = \"127.0.0.1:0\"",
        &route,
        &service("web", &http.url("/"), ""),
    ));
    let daemon = spawn(&ws, &channel_env(&receiver));
    daemon.endpoint().await;
    eventually(Duration::from_secs(10), "a healthy outcome", || {
        (!Db::open(&ws.db()).outcomes("web").is_empty()).then_some(())
    })
    .await;
    http.set(Mode::Status(503));
    smtp.wait_for(1, Duration::from_secs(10)).await;
    http.set(Mode::Healthy);
    smtp.wait_for(2, Duration::from_secs(10)).await;
    // The receiver has been refusing all along; now it takes messages again.
    eventually(Duration::from_secs(10), "refused attempts", || {
        (receiver.requests().len() >= 2).then_some(())
    })
    .await;
    let started = Instant::now();
    receiver.usually(Answer::Ok);
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(30)).await;
    let events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["down", "recovered"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered().len(), 2, "each once");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (status, _) = daemon.stop().await;
    assert!(status.success());
}

/// Outcomes every 30 s through October 2026, failing in each `[from, to)` (minutes after
/// 2026-10-01T00:00Z).
fn october_with(down: &[(i64, i64)]) -> String {
    let start = jiff::Timestamp::from_second(1_790_812_800)
        .unwrap()
        .as_millisecond();
    let mut out = String::new();
    let mut t = start;
    while t < start + 31 * 86_400_000 {
        let minute = (t - start) / 60_000;
        let failing = down.iter().any(|(from, to)| (*from..*to).contains(&minute));
        out.push_str(&history_line(t, !failing));
        t += 30_000;
    }
    out
}

#[tokio::test]
async fn reports_judge_response_and_restore_against_the_contract() {
    let ws = Workspace::new();
    ws.config_text(
        "[daemon]\ndatabase = \"slaprobe.db\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\n\
         monthly_fee = 1000.00\ncurrency = \"EUR\"\n\
         credits = [ { below = \"99.9%\", credit = \"10%\" } ]\n\
         respond_within = \"15m\"\nrestore_within = \"4h\"\n\
         breach_credit = { response = \"5%\", restore = \"10%\" }\n\n\
         [[service]]\nid = \"api\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\n",
    );
    // Four incidents (minutes after the month's start): A 30 min, B 60 min, C 10 min, D 5 h.
    let incidents = [
        (1_000, 1_030),
        (5_000, 5_060),
        (9_000, 9_010),
        (20_000, 20_300),
    ];
    let file = ws.path("api.jsonl");
    std::fs::write(&file, october_with(&incidents)).unwrap();
    let out = slaprobe(&ws, &["import", "--service", "api", file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{out:?}");
    // Acknowledgements as `slaprobe ack` records them, at chosen times: A after 5 min, B after
    // 20 min (late), C never, D after 2 min.
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let month = 1_790_812_800_000i64;
    for (start, after) in [(1_000i64, 5i64), (5_000, 20), (20_000, 2)] {
        let n = conn
            .execute(
                "UPDATE incident SET ack_ms = ?1, ack_by = 'jo' WHERE start_ms = ?2",
                [month + (start + after) * 60_000, month + start * 60_000],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    drop(conn);
    let out = slaprobe(
        &ws,
        &[
            "report",
            "--service",
            "api",
            "--month",
            "2026-10",
            "--format",
            "json",
        ],
    )
    .await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // By hand: MTTA (5 + 20 + 2) / 3 = 9 min; B responds late; C ended before 15 min (no
    // breach); D lasted 5 h > 4 h.
    assert_eq!(r["incidents"], 4, "{r}");
    assert_eq!(r["acknowledged"], 3);
    assert_eq!(r["mtta_s"], 540.0);
    assert_eq!(r["response_breaches"], 1);
    assert_eq!(r["restore_breaches"], 1);
    assert_eq!(r["max_restore_s"], 18_000.0);
    let list = r["incident_list"].as_array().unwrap();
    let flags: Vec<(bool, bool)> = list
        .iter()
        .map(|i| {
            (
                i["response_breach"].as_bool().unwrap(),
                i["restore_breach"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [(false, false), (true, false), (false, false), (false, true)]
    );
    assert_eq!(list[1]["ack_s"], 1_200.0);
    assert_eq!(list[2]["ack_s"], serde_json::Value::Null);
    assert_eq!(list[3]["restore_s"], 18_000.0);
    assert_eq!(list[0]["acknowledged_by"], "jo");
    // Downtime 400 min of 44,640: 99.10%, the 10% tier = 100.00; breaches 5% + 10% of
    // 1000.00 = 150.00; 250.00 in all.
    assert_eq!(r["breach_credit_amount"], "150.00");
    assert_eq!(r["credit_amount"], "250.00");

    // The statement shows each incident's response.
    let out = slaprobe(&ws, &["statement", "--contract", "c", "--month", "2026-10"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("acknowledged by jo after 20 m"), "{text}");
    assert!(text.contains("RESPONSE BREACH"), "{text}");
    assert!(text.contains("RESTORE BREACH"), "{text}");
    assert!(text.contains("MTTA"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_digest_goes_out_once_a_day() {
    let smtp = TestSmtp::start().await;
    let ws = Workspace::new();
    let text = config(
        &smtp,
        "",
        "digest = \"daily\"\ndigest_hour = 0",
        "[[service]]\nid = \"api\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\nalert = false\n\n\
         [[service]]\nid = \"web\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\ninterval = \"1h\"\n",
    );
    ws.config_text(&text);
    // Yesterday (UTC), `web` was down 10:00–10:30.
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let yesterday = today.yesterday().unwrap();
    let from = yesterday
        .at(9, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    let mut lines = String::new();
    for k in 0..240 {
        let t = from + k * 30_000;
        let failing = (120..180).contains(&k);
        lines.push_str(&history_line(t, !failing));
    }
    let file = ws.path("web.jsonl");
    std::fs::write(&file, lines).unwrap();
    let out = slaprobe(&ws, &["import", "--service", "web", file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{out:?}");

    let cfg = ws.config_text(&text);
    let running = runtime::start(cfg.clone(), Options::default())
        .await
        .unwrap();
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].subject(),
        format!("[slaprobe] DAILY DIGEST: {yesterday} (route oncall)")
    );
    let body = got[0].text();
    assert!(body.contains("Incidents that day: 1"), "{body}");
    assert!(
        body.contains(&format!("web (c): {yesterday}T10:00:00Z")),
        "{body}"
    );
    assert!(body.contains("not acknowledged"), "{body}");
    assert!(body.contains("Month to date:"), "{body}");
    assert!(
        !body.contains("api (c)"),
        "a muted service is not on the route: {body}"
    );
    running.stop().await.unwrap();

    // A restart the same day sends no second digest.
    let running = runtime::start(cfg, Options::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_channel_whose_secret_is_not_set_stops_the_start_and_a_reload() {
    let ws = Workspace::new();
    let route = |env: &str| {
        format!(
            "[daemon]\ndatabase = \"slaprobe.db\"\n\n\
             [[route]]\nid = \"r\"\nslack = {{ url_env = \"{env}\" }}\n\n\
             [[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99%\"\nalert = \"r\"\n\n\
             [[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\n"
        )
    };
    let unset = ws.config_text(&route("SLAPROBE_TEST_NEVER_SET_A"));
    let error = match runtime::start(unset, Options::default()).await {
        Ok(_) => panic!("started without the channel's secret"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("SLAPROBE_TEST_NEVER_SET_A"), "{error}");
    assert!(error.contains("are not set"), "{error}");

    // `PATH` is always set: the daemon starts; a reload naming an unset variable is refused.
    let set = ws.config_text(&route("PATH"));
    let mut running = runtime::start(set, Options::default()).await.unwrap();
    let unset = ws.config_text(&route("SLAPROBE_TEST_NEVER_SET_B"));
    let refused = running.reload(unset).await;
    assert!(refused.is_err());
    assert_eq!(
        running.config().routes[0].channels,
        [slaprobe::config::Channel::Slack {
            url_env: "PATH".into()
        }]
    );
    running.stop().await.unwrap();
}
