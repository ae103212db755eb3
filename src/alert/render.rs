//! The text of alert e-mails: subjects `[slaprobe] KIND: services (contract)` (DESIGN.md §3) and
//! a plain-text body naming every service the message covers.

use std::fmt::Write;

use super::policy::{Note, Notice, What};
use crate::notify::Email;
use crate::sla::budget::Budget;
use crate::text::human_duration;

/// What the body says about a service besides the policy's item.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    pub name: String,
    pub client: String,
    pub zone: jiff::tz::TimeZone,
    pub zone_name: String,
    /// What is probed, secrets redacted.
    pub target: String,
    /// The month's error budget at the time of writing (DOWN messages).
    pub budget: Option<Budget>,
}

/// Services named in a subject before it says "and N more".
const SUBJECT_SERVICES: usize = 5;

pub fn subject(notice: &Notice) -> String {
    let mut contracts: Vec<(&str, Vec<&str>)> = Vec::new();
    for item in &notice.items {
        match contracts.iter_mut().find(|(c, _)| *c == item.contract) {
            Some((_, services)) => services.push(&item.service),
            None => contracts.push((&item.contract, vec![&item.service])),
        }
    }
    let n = notice.items.len();
    let names = if n <= SUBJECT_SERVICES {
        contracts
            .iter()
            .map(|(c, services)| format!("{} ({c})", services.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        let first: Vec<&str> = notice
            .items
            .iter()
            .take(3)
            .map(|i| i.service.as_str())
            .collect();
        let all: Vec<&str> = contracts.iter().map(|(c, _)| *c).collect();
        format!(
            "{n} services: {} and {} more ({})",
            first.join(", "),
            n - first.len(),
            all.join(", ")
        )
    };
    format!("[slaprobe] {}: {names}", notice.kind.word())
}

/// The whole message; `facts` describes a service, `now_ms` is the time of writing.
pub fn email(notice: &Notice, facts: &dyn Fn(&str) -> Option<ServiceFacts>, now_ms: i64) -> Email {
    let mut text = String::new();
    let count = notice.items.len();
    let _ = writeln!(
        text,
        "{}: {count} service{}",
        notice.kind.word(),
        if count == 1 { "" } else { "s" }
    );
    for item in &notice.items {
        let f = facts(&item.service);
        let _ = writeln!(text);
        match &f {
            Some(f) if f.name != item.service => {
                let _ = writeln!(text, "{} ({})", item.service, f.name);
            }
            _ => {
                let _ = writeln!(text, "{}", item.service);
            }
        }
        let client = f
            .as_ref()
            .map_or(String::new(), |f| format!(" ({})", f.client));
        line(&mut text, "Contract", &format!("{}{client}", item.contract));
        if let Some(f) = &f {
            line(&mut text, "Target", &f.target);
        }
        let when = |ms: i64| at(ms, f.as_ref());
        match &item.what {
            What::Down {
                start_ms,
                failure,
                note,
            } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(&mut text, "Cause", &failure.to_string());
                match note {
                    Some(Note::AfterMaintenance) => line(
                        &mut text,
                        "Note",
                        "the outage began inside a maintenance window and outlasted it",
                    ),
                    Some(Note::StoppedFlapping) => {
                        line(&mut text, "Note", "stopped flapping and stays down")
                    }
                    None => {}
                }
                if let Some(budget) = f.as_ref().and_then(|f| f.budget) {
                    line(&mut text, "Error budget", &budget_left(budget));
                }
            }
            What::Recovered { start_ms, end_ms } => {
                line(&mut text, "Down from", &when(*start_ms));
                line(&mut text, "Up again", &when(*end_ms));
                line(&mut text, "Downtime", &human_duration(end_ms - start_ms));
            }
            What::Stable { since_ms } => {
                line(
                    &mut text,
                    "Stable",
                    &format!("no change since {}", when(*since_ms)),
                );
                line(&mut text, "State", "up");
            }
            What::Escalated { start_ms, failure } | What::StillDown { start_ms, failure } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(&mut text, "Down for", &human_duration(now_ms - start_ms));
                line(&mut text, "Cause", &failure.to_string());
            }
            What::Flapping {
                transitions,
                window_ms,
            } => {
                line(
                    &mut text,
                    "Flapping",
                    &format!(
                        "{transitions} changes of state within {}; further alerts for it are \
                         held until it stays stable for {}",
                        human_duration(*window_ms),
                        human_duration(*window_ms)
                    ),
                );
            }
            What::Budget { summary } => line(&mut text, "Budget", summary),
            What::Certificate { summary } => line(&mut text, "Certificate", summary),
        }
    }
    let _ = writeln!(
        text,
        "\n-- \nslaprobe, written {}.\nTo mute a service or route, set alert = false in its config table.",
        at(now_ms, None)
    );
    Email {
        subject: subject(notice),
        to: notice.to.clone(),
        text,
        html: None,
        attachment: None,
    }
}

fn line(text: &mut String, label: &str, value: &str) {
    let _ = writeln!(text, "  {:<13} {value}", format!("{label}:"));
}

/// `2026-11-22 10:00:05 UTC (11:00:05 CET, Europe/Berlin)`.
fn at(ms: i64, facts: Option<&ServiceFacts>) -> String {
    let Ok(t) = jiff::Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    let utc = t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    match facts {
        Some(f) if f.zone_name != "UTC" => {
            let local = t.to_zoned(f.zone.clone());
            format!(
                "{utc} ({}, {})",
                local.strftime("%Y-%m-%d %H:%M:%S %Z"),
                f.zone_name
            )
        }
        _ => utc,
    }
}

fn budget_left(b: Budget) -> String {
    match b.remaining_share() {
        Some(share) => format!(
            "{} of {} left this month ({:.0}%)",
            human_duration(b.remaining_ms),
            human_duration(b.allowed_ms),
            (share * 100.0).floor()
        ),
        None => "none (the target is 100%)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::policy::{Item, Kind};
    use crate::probe::{Failure, Reason};

    fn item(service: &str, contract: &str) -> Item {
        Item {
            service: service.into(),
            contract: contract.into(),
            what: What::Down {
                start_ms: 1_795_000_000_000,
                failure: Failure::new(Reason::Timeout, "no answer within 10s"),
                note: None,
            },
        }
    }

    #[test]
    fn subjects_name_services_and_contracts() {
        let notice = |items| Notice {
            kind: Kind::Down,
            to: vec!["o@x.example".into()],
            items,
        };
        assert_eq!(
            subject(&notice(vec![item("api", "acme")])),
            "[slaprobe] DOWN: api (acme)"
        );
        assert_eq!(
            subject(&notice(vec![
                item("api", "acme"),
                item("db", "acme"),
                item("web", "beta")
            ])),
            "[slaprobe] DOWN: api, db (acme); web (beta)"
        );
        let many = (0..200)
            .map(|i| item(&format!("s{i:03}"), "acme"))
            .collect();
        assert_eq!(
            subject(&notice(many)),
            "[slaprobe] DOWN: 200 services: s000, s001, s002 and 197 more (acme)"
        );
    }

    #[test]
    fn a_down_body_says_since_when_why_and_the_budget() {
        let notice = Notice {
            kind: Kind::Down,
            to: vec!["o@x.example".into()],
            items: vec![item("api", "acme")],
        };
        let facts = |_: &str| {
            Some(ServiceFacts {
                name: "ACME API".into(),
                client: "ACME Corp".into(),
                zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
                zone_name: "Europe/Berlin".into(),
                target: "https://api.acme.example/health".into(),
                budget: Some(Budget {
                    allowed_ms: 2_682_000,
                    remaining_ms: 2_472_000,
                }),
            })
        };
        let email = email(&notice, &facts, 1_795_000_060_000);
        // 1,795,000,000 s = 20,775 days (2026-11-18) + 40,000 s (11:06:40) UTC = 12:06:40 CET.
        assert!(email.text.contains("api (ACME API)"), "{}", email.text);
        assert!(
            email.text.contains("Contract:     acme (ACME Corp)"),
            "{}",
            email.text
        );
        assert!(
            email.text.contains(
                "Down since:   2026-11-18 11:06:40 UTC (2026-11-18 12:06:40 CET, Europe/Berlin)"
            ),
            "{}",
            email.text
        );
        assert!(
            email
                .text
                .contains("Cause:        timeout: no answer within 10s")
        );
        // 2,472,000 ms of 2,682,000 ms: 41 m 12 s of 44 m 42 s, 92.17% → 92%.
        assert!(
            email
                .text
                .contains("Error budget: 41 m 12 s of 44 m 42 s left this month (92%)"),
            "{}",
            email.text
        );
    }
}
