//! Monthly statements sent by the daemon exactly once per contract and month, across restarts
//! and an SMTP outage; `statement --send` resends on purpose.

use std::time::Duration;

use mail_parser::MimeHeaders;
use slaprobe::report::monthly;
use slaprobe::runtime::{self, Options};

use crate::smtp_server::{SmtpMode, TestSmtp};
use crate::support::{TestTcp, Workspace, eventually, history_line};

fn config_text(smtp: &TestSmtp, tcp: &TestTcp, statements: &str) -> String {
    format!(
        r#"[daemon]
database = "slaprobe.db"
flush_interval = "20ms"

[smtp]
url = "{}"
from = "SLA monitor <sla@provider.example>"

[[contract]]
id = "acme"
client = "ACME <Corp>"
timezone = "Europe/Berlin"
target = "99.9%"
monthly_fee = 2000.00
currency = "EUR"
credits = [ {{ below = "99.9%", credit = "10%" }} ]
statement_to = ["billing@acme.example"]
statements = "{statements}"
statement_hour = 0

[[service]]
id = "api"
contract = "acme"
tcp = "{}"
interval = "1h"
timeout = "5s"
"#,
        smtp.url(),
        tcp.addr
    )
}

/// Imports a history for the month whose statement is due now: one outcome every 10 minutes,
/// failing for `down_minutes` from the 10th at noon.
fn import_due_month(ws: &Workspace, down_minutes: i64) -> monthly::Month {
    let config = slaprobe::config::load(&ws.path("probes.toml")).unwrap();
    let contract = &config.contracts[0];
    let month = monthly::due_month(contract, jiff::Timestamp::now().as_millisecond()).unwrap();
    let outage = month.from_ms + 9 * 86_400_000 + 12 * 3_600_000;
    let mut lines = String::new();
    let mut t = month.from_ms;
    while t < month.to_ms {
        let failed = (outage..outage + down_minutes * 60_000).contains(&t);
        lines.push_str(&history_line(t, !failed));
        t += 600_000;
    }
    let file = ws.path("history.jsonl");
    std::fs::write(&file, lines).unwrap();
    slaprobe::cli::import::import(
        config.daemon.database.sqlite().unwrap(),
        &config.services[0],
        &file,
        config.daemon.retention,
    )
    .unwrap();
    month
}

fn statement_rows(ws: &Workspace) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut s = conn
        .prepare("SELECT month, sha256, sends FROM statement ORDER BY month")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn outbox_states(ws: &Workspace) -> Vec<(String, u32)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut s = conn
        .prepare("SELECT state, attempts FROM outbox WHERE kind = 'statement' ORDER BY id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_month_goes_out_once_across_an_smtp_outage_and_restarts() {
    let smtp = TestSmtp::start().await;
    let tcp = TestTcp::start(None).await;
    let ws = Workspace::new();
    let text = config_text(&smtp, &tcp, "always");
    ws.config_text(&text);
    // 3 hours down: below 99.9%, a 10% credit.
    let month = import_due_month(&ws, 180);

    // The mail server is down the morning the month closes.
    smtp.set(SmtpMode::Unavailable);
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "a failed attempt", || {
        outbox_states(&ws)
            .first()
            .filter(|(_, attempts)| *attempts >= 1)
            .cloned()
    })
    .await;
    running.stop().await.unwrap();
    assert_eq!(outbox_states(&ws)[0].0, "pending");
    // `status` shows it waiting, with the server's answer.
    let status = |format: &'static str| {
        let config = ws.path("probes.toml");
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
                .args(["status", "--format", format, "--config"])
                .arg(config)
                .output()
                .await
                .unwrap()
        }
    };
    let json: serde_json::Value = serde_json::from_slice(&status("json").await.stdout).unwrap();
    let pending = &json["mail"]["pending"][0];
    assert_eq!(pending["kind"], "statement");
    assert!(pending["attempts"].as_u64().unwrap() >= 1, "{pending}");
    assert!(
        pending["last_error"].as_str().unwrap().contains("421"),
        "{pending}"
    );
    let table = String::from_utf8(status("text").await.stdout).unwrap();
    assert!(table.contains("MAIL: 1 pending, 0 failed"), "{table}");

    // Restarted with the server back: delivered, once.
    smtp.set(SmtpMode::Accept);
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    let got = smtp.wait_for(1, Duration::from_secs(15)).await;
    running.stop().await.unwrap();
    // And once more: nothing new.
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    running.stop().await.unwrap();
    assert_eq!(smtp.received().len(), 1);
    let rows = statement_rows(&ws);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, month.label);
    assert_eq!(rows[0].2, 1);
    assert_eq!(outbox_states(&ws), [("sent".to_string(), 2)]);

    let m = &got[0];
    assert_eq!(m.to, ["billing@acme.example"]);
    let parsed = m.parsed();
    assert_eq!(
        parsed.subject().unwrap(),
        format!(
            "[slaprobe] Availability statement {}: ACME <Corp> (acme)",
            month.label
        )
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("ACME <Corp>"), "{text}");
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("ACME &lt;Corp&gt;"), "escaped in HTML");
    let csv = parsed.attachment(0).expect("the CSV is attached");
    assert_eq!(
        csv.attachment_name(),
        Some(format!("acme-{}.csv", month.label).as_str())
    );
    let csv_text = String::from_utf8_lossy(csv.contents()).to_string();
    assert!(csv_text.contains("TOTAL"), "{csv_text}");
    assert!(
        csv_text.contains("200.00"),
        "10% of 2000.00 EUR: {csv_text}"
    );
    // The recorded hash is the SHA-256 of the text statement.
    assert_eq!(
        rows[0].1,
        monthly::sha256_hex(text.replace("\r\n", "\n").as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_breach_records_a_met_month_without_sending_and_send_resends() {
    let smtp = TestSmtp::start().await;
    let tcp = TestTcp::start(None).await;
    let ws = Workspace::new();
    let text = config_text(&smtp, &tcp, "on_breach");
    ws.config_text(&text);
    let month = import_due_month(&ws, 0);
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the statement recorded", || {
        (!statement_rows(&ws).is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await.unwrap();
    assert!(smtp.received().is_empty(), "met: nothing sent");
    assert_eq!(statement_rows(&ws)[0].2, 0);

    // On purpose: sent now, counted.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args([
            "statement",
            "--contract",
            "acme",
            "--month",
            &month.label,
            "--send",
            "--config",
        ])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent to billing@acme.example"));
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(statement_rows(&ws)[0].2, 1);

    // The month in progress cannot be sent.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
    let current = format!("{:04}-{:02}", now.year(), now.month());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args([
            "statement",
            "--contract",
            "acme",
            "--month",
            &current,
            "--send",
            "--config",
        ])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has not closed yet"));
}

/// `slaprobe statement …` with `args`, on the workspace's config.
async fn statement_cli(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .arg("statement")
        .args(args)
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_statement_reprints_as_sent_after_the_contract_changes() {
    let smtp = TestSmtp::start().await;
    let tcp = TestTcp::start(None).await;
    let ws = Workspace::new();
    let text = config_text(&smtp, &tcp, "never");
    ws.config_text(&text);
    let month = import_due_month(&ws, 180);
    let month = month.label.as_str();
    let args = ["--contract", "acme", "--month", month];
    statement_cli(&ws, &[&args[..], &["--send"]].concat()).await;
    let sent = smtp.received();
    assert_eq!(sent.len(), 1);
    let as_sent = statement_cli(&ws, &args).await;
    let as_sent_html = statement_cli(&ws, &[&args[..], &["--format", "html"]].concat()).await;
    assert!(as_sent.stderr.is_empty(), "{as_sent:?}");
    // 10% of 2000.00 = 200.00 was sent.
    assert!(String::from_utf8_lossy(&as_sent.stdout).contains("Total credit: 200.00 EUR"));

    // The fee is raised in the config afterwards: the record still prints byte for byte, with
    // a note on stderr; a fresh computation is one flag away.
    ws.config_text(&text.replace("monthly_fee = 2000.00", "monthly_fee = 4000.00"));
    let again = statement_cli(&ws, &args).await;
    assert_eq!(again.stdout, as_sent.stdout);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("a fresh computation differs"),
        "{again:?}"
    );
    let html = statement_cli(&ws, &[&args[..], &["--format", "html"]].concat()).await;
    assert_eq!(html.stdout, as_sent_html.stdout);
    let fresh = statement_cli(&ws, &[&args[..], &["--recompute"]].concat()).await;
    assert!(
        String::from_utf8_lossy(&fresh.stdout).contains("Total credit: 400.00 EUR"),
        "{fresh:?}"
    );
    assert!(fresh.stderr.is_empty(), "{fresh:?}");
    let json = statement_cli(&ws, &[&args[..], &["--format", "json"]].concat()).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["recomputed_differs"], true);
    assert_eq!(json["credit_total"], "200.00");
}
