//! Contracts that survive a dispute (DESIGN.md §6.1), end to end through the real binary:
//! histories imported, then `report` and `statement` checked against numbers computed by hand.

use tokio::process::Command;

use crate::support::{Workspace, history_line};

/// One contract of 1000.00 EUR a month over three services, with a downtime credit of 100.00
/// for every started hour of downtime.
const CONFIG: &str = r#"
[daemon]
database = "slaprobe.db"

[provider]
name = "Example Hosting GmbH"
address = "Musterstrasse 1, 10115 Berlin"
contact = "billing@hosting.example"

[[contract]]
id = "acme"
client = "ACME Corp"
timezone = "UTC"
target = "99.9%"
monthly_fee = 1000.00
currency = "EUR"
credits = [ { below = "99.9%", credit = "10%" }, { below = "99%", credit = "25%" }, { below = "95%", credit = "100%" } ]
credit_cap = "100%"
downtime_credit = { per = "1h", amount = 100.00, count = "started" }

[[service]]
id = "a"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "60s"

[[service]]
id = "b"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "60s"

[[service]]
id = "c"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "60s"
"#;

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// An outcome every 60 s from 2026-09-30T23:00Z to `end`, failing inside each of `down`.
fn history_until(end: &str, down: &[(&str, &str)]) -> String {
    let (start, end) = (ms("2026-09-30T23:00:00Z"), ms(end));
    let down: Vec<_> = down.iter().map(|(from, to)| ms(from)..ms(to)).collect();
    let mut out = String::new();
    let mut t = start;
    while t < end {
        out.push_str(&history_line(t, !down.iter().any(|d| d.contains(&t))));
        t += 60_000;
    }
    out
}

/// October 2026, failing in `[from, to)` if given.
fn history(down: Option<(&str, &str)>) -> String {
    history_until("2026-11-01T00:00:00Z", down.as_slice())
}

async fn slaprobe(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(args)
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    out
}

/// `VERB --contract acme --month 2026-10 --format json` (`report` or `statement`), parsed.
async fn october_json(ws: &Workspace, verb: &str) -> serde_json::Value {
    let args = [
        verb,
        "--contract",
        "acme",
        "--month",
        "2026-10",
        "--format",
        "json",
    ];
    let out = slaprobe(ws, &args).await;
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The workspace after importing: `a` down 10 h on 2026-10-10, `b` down 1 h 30 m on
/// 2026-10-12, `c` healthy.
async fn october() -> Workspace {
    october_under(CONFIG).await
}

/// `october()` under another config.
async fn october_under(config: &str) -> Workspace {
    let ws = Workspace::new();
    ws.config_text(config);
    for (service, down) in [
        ("a", Some(("2026-10-10T00:00:00Z", "2026-10-10T10:00:00Z"))),
        ("b", Some(("2026-10-12T00:00:00Z", "2026-10-12T01:30:00Z"))),
        ("c", None),
    ] {
        let file = ws.path(&format!("{service}.jsonl"));
        std::fs::write(&file, history(down)).unwrap();
        slaprobe(
            &ws,
            &["import", "--service", service, file.to_str().unwrap()],
        )
        .await;
    }
    ws
}

#[tokio::test]
async fn credits_are_shares_of_each_service_fee_and_the_total_is_capped() {
    let ws = october().await;
    let report = october_json(&ws, "report").await;
    let service = |id: &str| {
        report["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == id)
            .unwrap()
            .clone()
    };
    // October 2026 in UTC: 744 h. Fees: 1000.00 over three shares is 333.333…; the cent left
    // goes to the first: 333.34, 333.33, 333.33.
    // a: down 10 h → 734/744 = 98.66% → the 25% tier: 25% × 333.34 = 83.335 → 83.34; plus 10
    //    started hours × 100.00 = 1000.00; issued 1083.335 → 1083.34.
    // b: down 1.5 h → 742.5/744 = 99.80% → 10% × 333.33 = 33.333 → 33.33; plus 2 started
    //    hours = 200.00; issued 233.333 → 233.33.
    // c: no downtime, no credit.
    let a = service("a");
    assert_eq!(a["downtime_s"], 36_000.0);
    assert_eq!(a["fee"], "333.34");
    assert_eq!(a["credit_percent"], 25.0);
    assert_eq!(a["tier_credit_amount"], "83.34");
    assert_eq!(a["downtime_credit_amount"], "1000.00");
    assert_eq!(a["credit_amount"], "1083.34");
    let b = service("b");
    assert_eq!(b["downtime_s"], 5_400.0);
    assert_eq!(b["fee"], "333.33");
    assert_eq!(b["tier_credit_amount"], "33.33");
    assert_eq!(b["downtime_credit_amount"], "200.00");
    assert_eq!(b["credit_amount"], "233.33");
    let c = service("c");
    assert_eq!(
        (c["fee"].clone(), c["credit_amount"].clone()),
        ("333.33".into(), "0.00".into())
    );
    // The exact sum, 1083.335 + 233.333… = 1316.67, is above 100% of the 1000.00 total fee:
    // the contract owes 1000.00, capped.
    assert_eq!(report["total_fee"], "1000.00");
    assert_eq!(report["credit_total"], "1000.00");
    assert_eq!(report["credit_capped"], true);
    // The contract as one service: a's 10 h and b's 1.5 h do not overlap: 11.5 h down in two
    // incidents over 744 h measured; MTTR 5.75 h.
    let whole = &report["contract_level"];
    assert_eq!(whole["measured_s"], 744.0 * 3600.0);
    assert_eq!(whole["downtime_s"], 11.5 * 3600.0);
    assert_eq!(whole["incidents"], 2);
    assert_eq!(whole["mttr_s"], 5.75 * 3600.0);
    let availability = whole["availability"].as_f64().unwrap();
    assert!(
        (availability - 732.5 / 744.0).abs() < 1e-12,
        "{availability}"
    );

    let out = slaprobe(
        &ws,
        &["statement", "--contract", "acme", "--month", "2026-10"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Total credit: 1000.00 EUR (capped at 100% of the total fee of 1000.00 EUR)"),
        "{text}"
    );
    assert!(
        text.contains("25% = 83.34 + downtime 1000.00 = 1083.34 EUR"),
        "{text}"
    );
    // Who issues it, its number and date, and the summary before the details.
    for line in [
        "Availability statement acme-2026-10 — ACME Corp",
        "Issued by: Example Hosting GmbH, Musterstrasse 1, 10115 Berlin, billing@hosting.example",
        "Issue date: 2026-11-01",
        "  Service  Target  Availability  Downtime        Credit",
        "  b        99.9%   99.7983%      1 h 30 m 00 s   233.33 EUR",
        "  a        99.9%   98.6559%      10 h 00 m 00 s  1083.34 EUR",
        "  Total credit: 1000.00 EUR (capped at 100% of the total fee of 1000.00 EUR) — a target missed",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(text.find("Summary").unwrap() < text.find("Service a").unwrap());
    let json = october_json(&ws, "statement").await;
    assert_eq!(json["credit_total"], "1000.00");
    assert_eq!(json["credit_capped"], true);
    assert_eq!(json["total_fee"], "1000.00");
    assert_eq!(json["number"], "acme-2026-10");
    assert_eq!(json["issue_date"], "2026-11-01");
    assert_eq!(json["provider"]["name"], "Example Hosting GmbH");
}

/// The same service judged under the terms of each month: the base contract for October, new
/// terms (target, fee and tiers) from November.
const TERMS_CONFIG: &str = r#"
[daemon]
database = "slaprobe.db"

[[contract]]
id = "acme"
client = "ACME Corp"
timezone = "UTC"
target = "99.9%"
monthly_fee = 1000.00
currency = "EUR"
credits = [ { below = "99.9%", credit = "10%" }, { below = "99%", credit = "25%" } ]

[[contract.terms]]
from = "2026-11"
target = "99%"
monthly_fee = 2000.00
credits = [ { below = "99%", credit = "50%" } ]

[[service]]
id = "a"
contract = "acme"
tcp = "127.0.0.1:9"
interval = "60s"
"#;

#[tokio::test]
async fn each_month_is_judged_under_the_terms_in_force() {
    let ws = Workspace::new();
    ws.config_text(TERMS_CONFIG);
    let file = ws.path("a.jsonl");
    let down = [
        ("2026-10-10T00:00:00Z", "2026-10-10T10:00:00Z"),
        ("2026-11-10T00:00:00Z", "2026-11-10T10:00:00Z"),
    ];
    std::fs::write(&file, history_until("2026-12-01T00:00:00Z", &down)).unwrap();
    slaprobe(&ws, &["import", "--service", "a", file.to_str().unwrap()]).await;
    let report = |args: &'static [&'static str]| {
        let ws = &ws;
        async move {
            let mut all = vec!["report", "--service", "a", "--format", "json"];
            all.extend_from_slice(args);
            let out = slaprobe(ws, &all).await;
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        }
    };
    // October (744 h), base terms: down 10 h → 734/744 = 98.66%: below 99.9% and 99% → 25%
    // of 1000.00 = 250.00; target 99.9%.
    let october = report(&["--month", "2026-10"]).await;
    assert_eq!(october["terms_from"], serde_json::Value::Null);
    assert_eq!(october["target"], 0.999);
    assert_eq!(october["fee"], "1000.00");
    assert_eq!(october["credit_percent"], 25.0);
    assert_eq!(october["credit_amount"], "250.00");
    // November (720 h), terms from 2026-11: down 10 h → 710/720 = 98.61%: below 99% → 50% of
    // 2000.00 = 1000.00; target 99%.
    let november = report(&["--month", "2026-11"]).await;
    assert_eq!(november["terms_from"], "2026-11");
    assert_eq!(november["target"], 0.99);
    assert_eq!(november["fee"], "2000.00");
    assert_eq!(november["credit_percent"], 50.0);
    assert_eq!(november["credit_amount"], "1000.00");
    assert_eq!(november["met"], false);
    // A range takes the terms in force at its start.
    let range = report(&[
        "--from",
        "2026-11-05T00:00:00Z",
        "--to",
        "2026-11-20T00:00:00Z",
    ])
    .await;
    assert_eq!(range["terms_from"], "2026-11");
    let range = report(&[
        "--from",
        "2026-10-25T00:00:00Z",
        "--to",
        "2026-11-20T00:00:00Z",
    ])
    .await;
    assert_eq!(range["terms_from"], serde_json::Value::Null);
}

/// `report --service ID --month 2026-10 --format json`, parsed.
async fn october_report(ws: &Workspace, service: &str) -> serde_json::Value {
    let args = [
        "report",
        "--service",
        service,
        "--month",
        "2026-10",
        "--format",
        "json",
    ];
    let out = slaprobe(ws, &args).await;
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn an_agreed_exclusion_leaves_the_measured_time_and_revoking_it_restores_the_numbers() {
    let ws = october().await;
    let before = october_report(&ws, "a").await;
    // Two of a's ten hours down were the client's own firewall change.
    let out = slaprobe(
        &ws,
        &[
            "exclude",
            "--service",
            "a",
            "--from",
            "2026-10-10T02:00:00Z",
            "--to",
            "2026-10-10T04:00:00Z",
            "--reason",
            "client firewall change (ticket 4711)",
            "--by",
            "Jo",
        ],
    )
    .await;
    let first: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // a: 2 h excluded → measured 742 h, downtime 8 h: 734/742 = 98.92% → 25% of 333.34 =
    // 83.335 → 83.34; 8 started hours × 100.00 = 800.00; issued 883.335 → 883.34.
    let a = october_report(&ws, "a").await;
    assert_eq!(a["exclusion_s"], 7_200.0);
    assert_eq!(a["excluded_s"], 7_200.0);
    assert_eq!(a["maintenance_s"], 0.0);
    assert_eq!(a["measured_s"], 742.0 * 3600.0);
    assert_eq!(a["downtime_s"], 8.0 * 3600.0);
    assert_eq!(a["credit_amount"], "883.34");
    let out = slaprobe(
        &ws,
        &["statement", "--contract", "acme", "--month", "2026-10"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Agreed exclusions"), "{text}");
    assert!(
        text.contains("client firewall change (ticket 4711)"),
        "{text}"
    );

    // Revoked: a's numbers are exactly those before.
    let id = first.to_string();
    slaprobe(
        &ws,
        &[
            "exclude",
            "--revoke",
            &id,
            "--reason",
            "the firewall was ours",
            "--by",
            "Kim",
        ],
    )
    .await;
    let after = october_report(&ws, "a").await;
    assert_eq!(after, before);

    // b's whole outage (00:00–01:30) falls inside a contract-wide exclusion of 00:00–02:00:
    // it does not count at all; every service of the contract loses the 2 h of measured time.
    slaprobe(
        &ws,
        &[
            "exclude",
            "--contract",
            "acme",
            "--from",
            "2026-10-12T00:00:00Z",
            "--to",
            "2026-10-12T02:00:00Z",
            "--reason",
            "force majeure: regional power cut",
        ],
    )
    .await;
    let b = october_report(&ws, "b").await;
    assert_eq!(b["exclusion_s"], 7_200.0);
    assert_eq!(b["downtime_s"], 0.0);
    assert_eq!(b["incidents"], 0);
    assert_eq!(b["credit_amount"], "0.00");
    let c = october_report(&ws, "c").await;
    assert_eq!(c["exclusion_s"], 7_200.0);
    assert_eq!(c["availability"], 1.0);
    let a = october_report(&ws, "a").await;
    assert_eq!(a["exclusion_s"], 7_200.0);
    assert_eq!(a["downtime_s"], 10.0 * 3600.0);
    let out = slaprobe(
        &ws,
        &["statement", "--contract", "acme", "--month", "2026-10"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("force majeure: regional power cut"), "{text}");
    assert!(text.contains("REVOKED by Kim"), "{text}");

    // Both acts stay listed.
    let out = slaprobe(
        &ws,
        &["exclusions", "--contract", "acme", "--format", "json"],
    )
    .await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["reason"], "client firewall change (ticket 4711)");
    assert_eq!(listed[0]["revoked"]["reason"], "the firewall was ours");
    assert_eq!(listed[0]["revoked"]["by"], "Kim");
    assert_eq!(listed[1]["revoked"], serde_json::Value::Null);
    // Revoking twice, or an unknown id, is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["exclude", "--revoke", &id, "--reason", "again", "--config"])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(64), "{again:?}");
}

#[tokio::test]
async fn credit_on_contract_decides_the_tier_on_the_contract_as_a_whole() {
    let config = CONFIG.replace(
        "downtime_credit = { per = \"1h\", amount = 100.00, count = \"started\" }",
        "credit_on = \"contract\"",
    );
    let ws = october_under(&config).await;
    let report = october_json(&ws, "report").await;
    // The contract as one service: 11.5 h down of 744 h = 98.45%, below 99% → the 25% tier,
    // of the total fee: 25% × 1000.00 = 250.00. No service has a tier credit of its own.
    let whole = &report["contract_level"];
    assert_eq!(whole["credit_percent"], 25.0);
    assert_eq!(whole["tier_credit_amount"], "250.00");
    for service in report["services"].as_array().unwrap() {
        assert_eq!(service["credit_amount"], "0.00", "{service}");
    }
    assert_eq!(report["credit_total"], "250.00");
    assert_eq!(report["credit_capped"], false);
}
