//! The client statement for a contract and month: the report numbers of every service, the
//! incidents, and the credit owed, rendered as text, HTML, JSON or CSV. Deterministic: the same
//! data renders the same bytes (no "generated at"); every value in the HTML is escaped.

use std::fmt::Write as _;

use html_escape::encode_safe as esc;
use serde::Serialize;

use crate::config::{Contract, Provider};
use crate::report::{self, ReportJson, ServiceReport};
use crate::sla::values::{Cents, ExactCents, Fraction};
use crate::store::exclusions::Exclusion;
use crate::text::{human_duration, percent};

/// Everything a statement shows.
#[derive(Debug, Clone)]
pub struct Statement {
    pub contract: String,
    pub client: String,
    pub timezone: String,
    /// `YYYY-MM`.
    pub month: String,
    pub partial: bool,
    pub currency: String,
    pub services: Vec<ServiceReport>,
    /// The services' fees added up.
    pub total_fee: Cents,
    /// The exact sum of the services' credits, never above `credit_cap` × `total_fee`.
    pub credit_total: Cents,
    /// Whether the cap lowered the total.
    pub credit_capped: bool,
    pub credit_cap: Fraction,
    /// Agreed exclusions of the month (revoked ones too), listed with their reasons.
    pub exclusions: Vec<Exclusion>,
    /// The contract as one service, as JSON (`report::contract_level_json`).
    pub contract_level: serde_json::Value,
    /// `CONTRACT-YYYY-MM`.
    pub number: String,
    /// The day after the month closes, in the contract's zone; `None` while it is open (a
    /// draft). Derived from the month, so the same data renders the same bytes.
    pub issue_date: Option<String>,
    /// Who issues it (`[provider]`).
    pub provider: Option<Provider>,
    zone: jiff::tz::TimeZone,
}

impl Statement {
    pub fn new(contract: &Contract, month: &str, services: Vec<ServiceReport>) -> Statement {
        let total = report::contract_credit(contract, &services);
        let contract_level = report::contract_level_json(contract, &services);
        let partial = services.iter().any(|s| s.numbers.partial);
        let credit_cap = services.first().map_or(contract.credit_cap, |s| {
            contract.in_force(s.numbers.from_ms).credit_cap
        });
        Statement {
            contract: contract.id.clone(),
            client: contract.client.clone(),
            timezone: contract.timezone.name.clone(),
            month: month.to_string(),
            partial,
            currency: contract.currency.clone(),
            services,
            total_fee: total.total_fee,
            credit_total: total.total,
            credit_capped: total.capped,
            credit_cap,
            exclusions: Vec::new(),
            contract_level,
            number: format!("{}-{month}", contract.id),
            issue_date: None,
            provider: None,
            zone: contract.timezone.zone.clone(),
        }
    }

    /// An instant in the client's zone: "2026-10-10 12:00:00 CEST".
    fn local(&self, ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned(self.zone.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| ms.to_string())
    }

    /// "October 2026".
    fn month_label(&self) -> String {
        format!("{}-01", self.month)
            .parse::<jiff::civil::Date>()
            .map(|d| d.strftime("%B %Y").to_string())
            .unwrap_or_else(|_| self.month.clone())
    }

    /// "Issued by …" lines: the provider's name, address and contact.
    fn issuer(&self) -> Vec<String> {
        let Some(p) = &self.provider else {
            return Vec::new();
        };
        let mut lines = vec![p.name.clone()];
        lines.extend(p.address.clone());
        lines.extend(p.contact.clone());
        lines
    }

    fn issued(&self) -> String {
        self.issue_date
            .clone()
            .unwrap_or_else(|| "draft (the month has not ended)".to_string())
    }

    /// Whether every service met its target (`None` if none measured anything).
    fn met(&self) -> Option<bool> {
        let verdicts: Vec<bool> = self.services.iter().filter_map(|s| s.met()).collect();
        (!verdicts.is_empty()).then(|| verdicts.iter().all(|m| *m))
    }

    /// One row per service: name, target, availability, downtime, credit.
    fn summary(&self) -> Vec<[String; 5]> {
        self.services
            .iter()
            .map(|s| {
                [
                    service_title(s),
                    s.target.to_string(),
                    availability(s),
                    human_duration(s.numbers.downtime_ms),
                    format!("{} {}", s.credit.amount, self.currency),
                ]
            })
            .collect()
    }

    fn period(&self) -> String {
        match self.services.first() {
            Some(s) => format!(
                "{} to {}",
                self.local(s.numbers.from_ms),
                self.local(s.numbers.to_ms)
            ),
            None => self.month.clone(),
        }
    }
}

fn availability(s: &ServiceReport) -> String {
    let n = &s.numbers;
    percent(n.uptime_ms.max(0) as u64, n.measured_ms.max(0) as u64)
}

/// "ACME public API (acme-api)", or the id alone when there is no other name.
fn service_title(s: &ServiceReport) -> String {
    if s.name == s.service {
        s.service.clone()
    } else {
        format!("{} ({})", s.name, s.service)
    }
}

fn met_word(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

fn coverage_percent(s: &ServiceReport) -> String {
    let n = &s.numbers;
    let expected = n.period_ms - n.out_of_coverage_ms - n.maintenance_ms - n.exclusion_ms;
    if expected <= 0 {
        return "n/a".to_string();
    }
    format!(
        "{:.2}%",
        100.0 * (expected - n.no_data_ms) as f64 / expected as f64
    )
}

fn mean(ms: Option<i64>) -> String {
    ms.map_or("no failures".to_string(), human_duration)
}

/// The figures of one service, in the order both renderings show them.
fn figures(st: &Statement, s: &ServiceReport) -> Vec<(&'static str, String)> {
    let n = &s.numbers;
    let mut rows = vec![
        ("Target", s.target.to_string()),
        (
            "Availability",
            format!("{} ({})", availability(s), met_word(s.met())),
        ),
        ("Downtime", human_duration(n.downtime_ms)),
        ("Incidents", n.incidents.len().to_string()),
        ("MTTR", mean(n.mttr_ms())),
        ("MTBF", mean(n.mtbf_ms())),
        ("Maintenance excluded", human_duration(n.maintenance_ms)),
        (
            "Outside covered hours",
            human_duration(n.out_of_coverage_ms),
        ),
        ("No data", human_duration(n.no_data_ms)),
        ("Monitoring coverage", coverage_percent(s)),
    ];
    if let Some(l) = s.latency {
        rows.push((
            "Latency",
            format!(
                "{} under {} ms (target {}, {})",
                percent(l.good, l.total),
                l.threshold_ms,
                l.target,
                met_word(l.met())
            ),
        ));
    }
    rows.extend(report::response_figures(
        s,
        [
            "Acknowledged",
            "MTTA",
            "Response breaches",
            "Restore breaches",
            "Longest restore",
        ],
    ));
    if s.fee.0 > 0 {
        rows.push(("Monthly fee", format!("{} {}", s.fee, st.currency)));
    }
    let mut parts = vec![s.credit.tier.round_half_up().to_string()];
    if s.credit.downtime > ExactCents::ZERO {
        parts.push(format!("downtime {}", s.credit.downtime.round_half_up()));
    }
    if s.credit.breach > ExactCents::ZERO {
        parts.push(format!("breaches {}", s.credit.breach.round_half_up()));
    }
    let credit = if parts.len() > 1 {
        format!(
            "{} = {} = {} {}",
            s.credit.percent,
            parts.join(" + "),
            s.credit.amount,
            st.currency
        )
    } else {
        format!("{} = {} {}", s.credit.percent, s.credit.amount, st.currency)
    };
    rows.push(("Credit", credit));
    rows
}

/// "Total credit: 1000.00 EUR", with why when the contract's cap lowered it.
fn total_line(st: &Statement) -> String {
    let mut line = format!("Total credit: {} {}", st.credit_total, st.currency);
    if st.credit_capped {
        line.push_str(&format!(
            " (capped at {} of the total fee of {} {})",
            st.credit_cap, st.total_fee, st.currency
        ));
    }
    line
}

/// "every target met", "a target missed", or "nothing measured".
fn met_summary(st: &Statement) -> &'static str {
    match st.met() {
        Some(true) => "every target met",
        Some(false) => "a target missed",
        None => "nothing measured",
    }
}

/// Each incident: start and end in the client's zone, duration, first failure, response.
/// An incident's end: when it ended; for a closed month, an incident still down at the month's
/// end says so (with its end, once known) instead of "ongoing".
fn incident_end(st: &Statement, s: &ServiceReport, end_ms: Option<i64>) -> String {
    let month_end = s.numbers.to_ms;
    match end_ms {
        Some(end) if st.partial || end <= month_end => st.local(end),
        Some(end) => format!("continues past the month's end (until {})", st.local(end)),
        None if st.partial => "ongoing".to_string(),
        None => "continues past the month's end".to_string(),
    }
}

fn incident_rows(st: &Statement, s: &ServiceReport) -> Vec<[String; 5]> {
    s.numbers
        .incidents
        .iter()
        .zip(&s.causes)
        .enumerate()
        .map(|(index, (i, cause))| {
            [
                st.local(i.start_ms),
                incident_end(st, s, i.end_ms),
                human_duration(i.downtime_ms),
                match (cause, s.confirmed_from.get(index)) {
                    (Some(c), Some(seen)) if !seen.is_empty() => {
                        format!("{c}; confirmed from {}", seen.join(", "))
                    }
                    (Some(c), _) => c.to_string(),
                    (None, _) => "no data".to_string(),
                },
                report::incident_response(s, index),
            ]
        })
        .collect()
}

pub fn to_text(st: &Statement) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Availability statement {} — {}", st.number, st.client);
    let issuer = st.issuer();
    if !issuer.is_empty() {
        let _ = writeln!(out, "Issued by: {}", issuer.join(", "));
    }
    let _ = writeln!(out, "Issue date: {}", st.issued());
    let _ = writeln!(
        out,
        "Contract {}, {} ({})",
        st.contract, st.month, st.timezone
    );
    let _ = writeln!(out, "Period: {}", st.period());
    if st.partial {
        let _ = writeln!(
            out,
            "PARTIAL: the month has not ended; figures are up to now."
        );
    }
    let _ = writeln!(out, "\nSummary");
    let rows = st.summary();
    let headers = ["Service", "Target", "Availability", "Downtime", "Credit"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    for row in std::iter::once(headers.map(String::from)).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    let _ = writeln!(out, "  {} — {}", total_line(st), met_summary(st));
    for s in &st.services {
        let _ = writeln!(out, "\nService {}", service_title(s));
        for (label, value) in figures(st, s) {
            let _ = writeln!(out, "  {label:<22} {value}");
        }
        for [start, end, duration, cause, response] in incident_rows(st, s) {
            let response = if response.is_empty() {
                String::new()
            } else {
                format!("  ({response})")
            };
            let _ = writeln!(out, "    {start} – {end}  {duration}  {cause}{response}");
        }
    }
    if st.services.len() > 1 {
        let c = report::contract_level(&st.services);
        let availability = match c.measured_ms {
            0 => "n/a".to_string(),
            measured => percent(c.uptime_ms.max(0) as u64, measured as u64),
        };
        let _ = writeln!(
            out,
            "\nThe contract as a whole (down while any service is down): availability {}, \
             downtime {}, {} incident{}",
            availability,
            human_duration(c.downtime_ms),
            c.incidents.len(),
            if c.incidents.len() == 1 { "" } else { "s" }
        );
    }
    if !st.exclusions.is_empty() {
        let _ = writeln!(out, "\nAgreed exclusions (left out of the measured time):");
        for e in &st.exclusions {
            let _ = writeln!(
                out,
                "  {}",
                report::describe_exclusion(e).replace('\n', "\n  ")
            );
        }
    }
    let _ = writeln!(out, "\n{}", total_line(st));
    out
}

pub fn to_html(st: &Statement) -> String {
    let mut out = String::new();
    let title = format!(
        "Availability statement — {} — {}",
        st.client,
        st.month_label()
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\n\
         table{{border-collapse:collapse;margin:0.5em 0 1.5em}}\n\
         th,td{{border:1px solid #bbb;padding:0.3em 0.6em;text-align:left}}\n\
         th{{background:#f0f0f0}}\ntd.t{{white-space:nowrap}}\n.missed{{color:#a00;font-weight:bold}}\n.met{{color:#060}}\n\
         @page{{size:auto;margin:15mm}}\n\
         @media print{{body{{margin:0;font-size:10pt}}\
         table{{width:auto;max-width:99%;page-break-inside:auto}}td.t{{white-space:normal}}\
         tr,td,th{{page-break-inside:avoid}}thead{{display:table-header-group}}\
         h2{{page-break-after:avoid}}}}\n</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(out, "<h1>Availability statement {}</h1>", esc(&st.number));
    let issuer = st.issuer();
    if !issuer.is_empty() {
        let lines: Vec<String> = issuer.iter().map(|l| esc(l).to_string()).collect();
        let _ = writeln!(
            out,
            "<p><strong>Issued by:</strong> {}</p>",
            lines.join("<br>\n")
        );
    }
    let _ = writeln!(
        out,
        "<p><strong>Issue date:</strong> {}</p>",
        esc(&st.issued())
    );
    let _ = writeln!(
        out,
        "<p><strong>Client:</strong> {}<br>\n<strong>Contract:</strong> {}<br>\n\
         <strong>Month:</strong> {} ({})<br>\n<strong>Period:</strong> {}</p>",
        esc(&st.client),
        esc(&st.contract),
        esc(&st.month_label()),
        esc(&st.timezone),
        esc(&st.period())
    );
    if st.partial {
        let _ = writeln!(
            out,
            "<p class=\"missed\">Partial: the month has not ended; figures are up to now.</p>"
        );
    }
    let _ = writeln!(
        out,
        "<h2>Summary</h2>\n<table>\n<thead><tr><th>Service</th><th>Target</th>\
         <th>Availability</th><th>Downtime</th><th>Credit</th></tr></thead>"
    );
    for row in st.summary() {
        let cells: Vec<String> = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
        let _ = writeln!(out, "<tr>{}</tr>", cells.join(""));
    }
    let _ = writeln!(
        out,
        "</table>\n<p><strong>{}</strong> — {}</p>",
        esc(&total_line(st)),
        met_summary(st)
    );
    for s in &st.services {
        let n = &s.numbers;
        let met_class = match s.met() {
            Some(false) => "missed",
            _ => "met",
        };
        let _ = writeln!(out, "<h2>{}</h2>\n<table>", esc(&service_title(s)));
        for (label, value) in figures(st, s) {
            let class = if label == "Availability" {
                met_class
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td class=\"{}\">{}</td></tr>",
                esc(label),
                esc(class),
                esc(&value)
            );
        }
        let _ = writeln!(out, "</table>");
        if !n.incidents.is_empty() {
            let rows = incident_rows(st, s);
            let responded = rows.iter().any(|r| !r[4].is_empty());
            let _ = writeln!(
                out,
                "<table>\n<tr><th>Start</th><th>End</th><th>Duration</th><th>First failure</th>{}</tr>",
                if responded { "<th>Response</th>" } else { "" }
            );
            for [start, end, duration, cause, response] in rows {
                let response = if responded {
                    format!("<td>{}</td>", esc(&response))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td>{response}</tr>",
                    esc(&start),
                    esc(&end),
                    esc(&duration),
                    esc(&cause)
                );
            }
            let _ = writeln!(out, "</table>");
        }
    }
    if !st.exclusions.is_empty() {
        let _ = writeln!(out, "<h2>Agreed exclusions</h2>\n<ul>");
        for e in &st.exclusions {
            let _ = writeln!(out, "<li>{}</li>", esc(&report::describe_exclusion(e)));
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "<h2>{}</h2>\n</body>\n</html>", esc(&total_line(st)));
    out
}

#[derive(Serialize)]
struct StatementJson<'a> {
    number: &'a str,
    issue_date: Option<&'a str>,
    provider: Option<serde_json::Value>,
    contract: &'a str,
    client: &'a str,
    timezone: &'a str,
    month: &'a str,
    partial: bool,
    currency: &'a str,
    total_fee: String,
    credit_total: String,
    credit_capped: bool,
    contract_level: serde_json::Value,
    services: Vec<ReportJson>,
}

pub fn to_json(st: &Statement) -> String {
    let json = StatementJson {
        number: &st.number,
        issue_date: st.issue_date.as_deref(),
        provider: st.provider.as_ref().map(
            |p| serde_json::json!({ "name": p.name, "address": p.address, "contact": p.contact }),
        ),
        contract: &st.contract,
        client: &st.client,
        timezone: &st.timezone,
        month: &st.month,
        partial: st.partial,
        currency: &st.currency,
        total_fee: st.total_fee.to_string(),
        credit_total: st.credit_total.to_string(),
        credit_capped: st.credit_capped,
        contract_level: st.contract_level.clone(),
        services: st.services.iter().map(|s| s.to_json()).collect(),
    };
    let mut text = serde_json::to_string_pretty(&json).expect("a statement serializes");
    text.push('\n');
    text
}

/// The report CSV of every service, then a `TOTAL` row with the credit owed.
pub fn to_csv(st: &Statement) -> String {
    let mut out = report::to_csv(&st.services);
    let columns = out.lines().next().map_or(0, |h| h.split(',').count());
    let mut total = vec![String::new(); columns];
    total[0] = "TOTAL".to_string();
    total[1] = st.contract.clone();
    total[columns - 2] = st.credit_total.to_string();
    total[columns - 1] = st.currency.clone();
    out.push_str(&total.join(","));
    out.push('\n');
    out
}
