//! `slaprobe import` then `slaprobe report`: a known timeline reproduced to the second.

use std::fmt::Write as _;

use tokio::process::Command;

use crate::support::{Db, Workspace};

const CONFIG: &str = r#"
[daemon]
database = "slaprobe.db"

[[contract]]
id = "acme"
client = "ACME Corp"
timezone = "Europe/Berlin"
target = "99.9%"
monthly_fee = 2000.00
currency = "EUR"
credits = [ { below = "99.9%", credit = "10%" }, { below = "99%", credit = "25%" } ]

[[service]]
id = "api"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "30s"
timeout = "10s"
confirm_down = 2

[[maintenance]]
services = ["api"]
start = "2026-10-25T00:00:00Z"
duration = "1h"
"#;

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Every 30 s from 2026-09-30T21:00Z to 2026-11-01T00:00Z, with: failures 2026-10-10 10:00–12:59:30
/// (ok again at 13:00), one failure at 2026-10-12T00:00Z (a blip), and nothing between
/// 2026-10-20T00:00:00Z and 01:00:00Z.
fn timeline() -> String {
    let (start, end) = (ms("2026-09-30T21:00:00Z"), ms("2026-11-01T00:00:00Z"));
    let (outage, recovery) = (ms("2026-10-10T10:00:00Z"), ms("2026-10-10T13:00:00Z"));
    let blip = ms("2026-10-12T00:00:00Z");
    let (gap_from, gap_to) = (ms("2026-10-20T00:00:00Z"), ms("2026-10-20T01:00:00Z"));
    let mut out = String::new();
    let mut t = start;
    while t < end {
        if t > gap_from && t < gap_to {
            t += 30_000;
            continue;
        }
        let ts = jiff::Timestamp::from_millisecond(t).unwrap();
        if (outage..recovery).contains(&t) || t == blip {
            writeln!(
                out,
                r#"{{"ts":"{ts}","ok":false,"latency_ms":10000,"reason":"timeout"}}"#
            )
            .unwrap();
        } else {
            writeln!(out, r#"{{"ts":"{ts}","ok":true,"latency_ms":42.5}}"#).unwrap();
        }
        t += 30_000;
    }
    out
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

/// A workspace with `config`, after importing `history` into `api` (the output of the import).
async fn imported(config: &str, history: &str) -> (Workspace, std::process::Output) {
    let ws = Workspace::new();
    ws.config_text(config);
    let file = ws.path("history.jsonl");
    std::fs::write(&file, history).unwrap();
    let out = slaprobe(&ws, &["import", "--service", "api", file.to_str().unwrap()]).await;
    (ws, out)
}

/// `statement --contract acme --month 2026-10 --format FORMAT`.
async fn october_statement(ws: &Workspace, format: &str) -> std::process::Output {
    slaprobe(
        ws,
        &[
            "statement",
            "--contract",
            "acme",
            "--month",
            "2026-10",
            "--format",
            format,
        ],
    )
    .await
}

/// `report --service api --month 2026-10 --format json`, parsed.
async fn october_report(ws: &Workspace) -> serde_json::Value {
    let out = slaprobe(
        ws,
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
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn import_then_report_reproduces_a_known_month() {
    let (ws, out) = imported(CONFIG, &timeline()).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("1 incidents opened, 1 closed, 1 blips, 1 no-data"),
        "{said}"
    );

    let r = october_report(&ws).await;
    // October 2026 in Berlin: 2026-09-30T22:00Z to 2026-10-31T23:00Z, 745 h = 2,682,000 s.
    assert_eq!(r["from"], "2026-09-30T22:00:00Z");
    assert_eq!(r["to"], "2026-10-31T23:00:00Z");
    assert_eq!(r["partial"], false);
    assert_eq!(r["period_s"], 2_682_000.0);
    // Maintenance 2026-10-25 00:00–01:00Z: 3,600 s.
    assert_eq!(r["maintenance_s"], 3_600.0);
    // No data: the last result before the gap (00:00:00) stands for 30 s; 00:00:30–01:00:00
    // is 3,570 s.
    assert_eq!(r["no_data_s"], 3_570.0);
    assert_eq!(r["excluded_s"], 7_170.0);
    assert_eq!(r["measured_s"], 2_674_830.0); // 2,682,000 − 7,170
    // The incident: first failure 10:00:00 to first success 13:00:00 = 10,800 s.
    assert_eq!(r["downtime_s"], 10_800.0);
    assert_eq!(r["uptime_s"], 2_664_030.0); // 2,674,830 − 10,800
    assert_eq!(r["incidents"], 1);
    assert_eq!(r["mttr_s"], 10_800.0);
    assert_eq!(r["mtbf_s"], 2_664_030.0);
    assert_eq!(r["blips"], 1);
    // 2,664,030 / 2,674,830 = 0.995962…: below 99.9%, not below 99% → 10% of 2000.00.
    let availability = r["availability"].as_f64().unwrap();
    assert!((availability - 2_664_030.0 / 2_674_830.0).abs() < 1e-15);
    assert_eq!(r["met"], false);
    assert_eq!(r["credit_percent"], 10.0);
    assert_eq!(r["credit_amount"], "200.00");
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["incident_list"][0]["start"], "2026-10-10T10:00:00Z");
    assert_eq!(r["incident_list"][0]["end"], "2026-10-10T13:00:00Z");

    // The file is this daemon's location ("local" by default): its own view is the same report;
    // any other location is not in it.
    let args = [
        "report",
        "--service",
        "api",
        "--month",
        "2026-10",
        "--format",
        "json",
    ];
    let own = slaprobe(&ws, &[&args[..], &["--location", "local"]].concat()).await;
    assert_eq!(own.status.code(), Some(0), "{own:?}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&own.stdout).unwrap(),
        r
    );
    let other = slaprobe(&ws, &[&args[..], &["--location", "fra"]].concat()).await;
    assert_eq!(other.status.code(), Some(64), "{other:?}");
    assert!(String::from_utf8_lossy(&other.stderr).contains("no location `fra`"));

    // The same history again overlaps what is stored: refused, nothing written.
    let before = Db::open(&ws.db()).outcomes("api").len();
    let file = ws.path("history.jsonl");
    let out = slaprobe(&ws, &["import", "--service", "api", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("overlaps"),
        "{out:?}"
    );
    assert_eq!(Db::open(&ws.db()).outcomes("api").len(), before);
}

/// The status page recomputes today's bar on its own every five minutes: at any moment of a
/// day it must equal the last of the 90 days computed together (an incident open, then closed,
/// that day; a blip; a no-data stretch; a maintenance window on the day the clocks go back; the
/// first second of a day).
#[tokio::test]
async fn todays_bar_alone_equals_the_last_of_ninety_days() {
    let (ws, out) = imported(CONFIG, &timeline()).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let config = ws.config_text(CONFIG);
    let service = config.service("api").unwrap();
    let db = slaprobe::store::open_reader_db(&config.daemon).unwrap();
    let mut below_target = 0;
    for now in [
        "2026-10-10T11:30:00Z",
        "2026-10-10T21:59:59Z",
        "2026-10-10T22:00:00Z",
        "2026-10-11T09:00:00Z",
        "2026-10-12T00:00:10Z",
        "2026-10-20T00:30:00Z",
        "2026-10-20T05:00:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T22:59:59Z",
        "2026-10-31T22:59:00Z",
    ] {
        let now = ms(now);
        let today = slaprobe::report::daily(db.conn(), &config, service, 1, now).unwrap();
        let all = slaprobe::report::daily(db.conn(), &config, service, 90, now).unwrap();
        assert_eq!((today.len(), all.len()), (1, 90));
        assert_eq!(today.last(), all.last(), "at {now}");
        below_target += usize::from(today[0].met == Some(false));
    }
    // Not vacuous: the incident's day is below target while it lasts.
    assert!(below_target >= 2, "{below_target}");
}

#[tokio::test]
async fn a_bad_line_imports_nothing() {
    let mut text = timeline().lines().take(100).collect::<Vec<_>>().join("\n");
    text.push_str("\n{\"ts\":\"2026-10-05T00:00:00Z\",\"ok\":false,\"latency_ms\":1}\n");
    let (ws, out) = imported(CONFIG, &text).await;
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("history.jsonl:101: a failed outcome needs a `reason`"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    // The database holds no outcome (it may not even exist).
    if ws.db().exists() {
        let conn = rusqlite::Connection::open(ws.db()).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM outcome_chunk", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}

#[tokio::test]
async fn statement_renders_the_month_escaped_and_deterministic() {
    let config = CONFIG.replace(
        "client = \"ACME Corp\"",
        "client = \"<script>alert('x')</script> & Co\"",
    );
    let (ws, out) = imported(&config, &timeline()).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let html = october_statement(&ws, "html").await;
    assert_eq!(html.status.code(), Some(0), "{html:?}");
    let again = october_statement(&ws, "html").await;
    assert_eq!(
        html.stdout, again.stdout,
        "the same data renders the same bytes"
    );
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2F;script&gt; &amp; Co"),
        "{html}"
    );
    // Figures and the period in the client's zone.
    assert!(
        html.contains("2026-10-01 00:00:00 CEST to 2026-11-01 00:00:00 CET"),
        "{html}"
    );
    assert!(html.contains("99.5962% (missed)"), "{html}");
    assert!(html.contains("2026-10-10 12:00:00 CEST"), "{html}");
    assert!(html.contains("timeout: imported"), "{html}");
    assert!(html.contains("Total credit: 200.00 EUR"), "{html}");
    assert!(html.contains("October 2026 (Europe&#x2F;Berlin)"), "{html}");

    let json = october_statement(&ws, "json").await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["credit_total"], "200.00");
    assert_eq!(json["services"][0]["downtime_s"], 10_800.0);
    assert_eq!(json["services"][0]["incident_list"][0]["reason"], "timeout");

    let csv = october_statement(&ws, "csv").await;
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.lines().last().unwrap().starts_with("TOTAL,acme,"),
        "{csv}"
    );
    assert!(
        csv.lines().last().unwrap().ends_with(",200.00,EUR"),
        "{csv}"
    );

    let text = slaprobe(
        &ws,
        &["statement", "--contract", "acme", "--month", "2026-10"],
    )
    .await;
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Total credit: 200.00 EUR"), "{text}");
    assert!(
        text.contains("MTTR                   3 h 00 m 00 s"),
        "{text}"
    );
}

#[tokio::test]
async fn minute_granularity_counts_only_minutes_where_every_probe_failed() {
    let config = CONFIG.replace(
        "target = \"99.9%\"",
        "target = \"99.9%\"\ngranularity = \"minute\"",
    );
    // The outage now starts at 10:00:30: minute 10:00 had a success (10:00:00), so the down
    // minutes are 10:01–12:59, 179 minutes = 10,740 s (the per-second incident is 10,770 s).
    let text = timeline().replace(
        r#"{"ts":"2026-10-10T10:00:00Z","ok":false,"latency_ms":10000,"reason":"timeout"}"#,
        r#"{"ts":"2026-10-10T10:00:00Z","ok":true,"latency_ms":42.5}"#,
    );
    let (ws, out) = imported(&config, &text).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = october_report(&ws).await;
    assert_eq!(r["downtime_s"], 10_740.0);
    assert_eq!(r["incidents"], 1);
    assert_eq!(r["incident_list"][0]["start"], "2026-10-10T10:01:00Z");
    assert_eq!(r["incident_list"][0]["end"], "2026-10-10T13:00:00Z");
    assert_eq!(r["incident_list"][0]["reason"], "timeout");
    // The blip minute (a failure and a success) is not down.
    assert_eq!(r["measured_s"], 2_674_830.0);
}

/// (what is wrong, the third line, text the error must carry)
const BAD_LINES: &[(&str, &str, &str)] = &[
    ("not JSON", "{\"ts\":", "write {\"ts\""),
    ("not an object", "[1, 2, 3]", "write {\"ts\""),
    (
        "a bad instant",
        "{\"ts\":\"2026-10-01 00:01:00\",\"ok\":true,\"latency_ms\":5}",
        "is not an RFC 3339 instant",
    ),
    (
        "a negative latency",
        "{\"ts\":\"2026-10-01T00:01:00Z\",\"ok\":true,\"latency_ms\":-1}",
        "must be a number of milliseconds",
    ),
    (
        "an ok outcome with a reason",
        "{\"ts\":\"2026-10-01T00:01:00Z\",\"ok\":true,\"latency_ms\":5,\"reason\":\"status\"}",
        "an ok outcome has no `reason`",
    ),
    (
        "a failure without a reason",
        "{\"ts\":\"2026-10-01T00:01:00Z\",\"ok\":false,\"latency_ms\":5}",
        "a failed outcome needs a `reason`",
    ),
    (
        "an unknown reason",
        "{\"ts\":\"2026-10-01T00:01:00Z\",\"ok\":false,\"latency_ms\":5,\"reason\":\"gremlins\"}",
        "`reason` `gremlins` is not one of",
    ),
    (
        "time going back",
        "{\"ts\":\"2026-09-30T23:00:00Z\",\"ok\":true,\"latency_ms\":5}",
        "timestamps must increase",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_import_line_is_named_and_nothing_is_written() {
    for (what, bad, needle) in BAD_LINES {
        let history = format!(
            "{{\"ts\":\"2026-10-01T00:00:00Z\",\"ok\":true,\"latency_ms\":5}}\n\
             {{\"ts\":\"2026-10-01T00:00:30Z\",\"ok\":true,\"latency_ms\":5}}\n\
             {bad}\n\
             {{\"ts\":\"2026-10-01T00:01:30Z\",\"ok\":true,\"latency_ms\":5}}\n"
        );
        let (ws, out) = imported(CONFIG, &history).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{what}: {stderr}");
        assert!(
            stderr.contains("history.jsonl:3: ") && stderr.contains(needle),
            "{what}: {stderr}"
        );
        assert!(stderr.contains("nothing was imported"), "{what}: {stderr}");
        if ws.db().exists() {
            let conn = rusqlite::Connection::open(ws.db()).unwrap();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM outcome_chunk", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{what}: outcomes were written");
        }
    }
}
