//! The text of alerts: e-mail subjects `[slaprobe] KIND: services (contract)` (DESIGN.md §3)
//! and a plain-text body naming every service the message covers; for the channels a short
//! text, Slack's and Telegram's bodies and the webhook's JSON (DESIGN.md §6.2).

use std::fmt::Write;

use super::policy::{Note, Notice, Recipient, What};
use crate::config::Channel;
use crate::notify::Email;
use crate::sla::budget::Budget;
use crate::store::outbox::ChannelMessage;
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
    if let Some(item) = notice.items.first()
        && let What::Digest { day, .. } = &item.what
    {
        return format!("[slaprobe] DAILY DIGEST: {day} (route {})", item.contract);
    }
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
    let by = acknowledged_by(notice).map_or(String::new(), |by| format!(" by {by}"));
    format!("[slaprobe] {}: {names}{by}", notice.kind.word())
}

/// Who acknowledged, when every item of an ACKNOWLEDGED notice names the same person.
fn acknowledged_by(notice: &Notice) -> Option<String> {
    let mut names = notice.items.iter().map(|item| match &item.what {
        What::Acknowledged { ack, .. } => Some(ack.by.clone().unwrap_or_else(|| "someone".into())),
        _ => None,
    });
    let first = names.next()??;
    names
        .all(|n| n.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// The e-mail addresses among a notice's recipients.
pub fn email_recipients(notice: &Notice) -> Vec<String> {
    notice
        .to
        .iter()
        .filter_map(|r| match r {
            Recipient::Email(address) => Some(address.clone()),
            Recipient::Channel(_) => None,
        })
        .collect()
}

/// The whole message; `facts` describes a service, `now_ms` is the time of writing.
pub fn email(notice: &Notice, facts: &dyn Fn(&str) -> Option<ServiceFacts>, now_ms: i64) -> Email {
    if let Some(text) = digest_text(notice) {
        return Email {
            subject: subject(notice),
            to: email_recipients(notice),
            text: format!("{text}\n-- \nslaprobe, written {}.\n", at(now_ms, None)),
            html: None,
            attachment: None,
        };
    }
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
            What::Escalated {
                start_ms, failure, ..
            }
            | What::StillDown { start_ms, failure } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(&mut text, "Down for", &human_duration(now_ms - start_ms));
                line(&mut text, "Cause", &failure.to_string());
                line(&mut text, "Acknowledge", &ack_hint(&item.service));
            }
            What::Acknowledged { start_ms, ack } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(
                    &mut text,
                    "Taken up by",
                    ack.by.as_deref().unwrap_or("(not named)"),
                );
                line(&mut text, "At", &when(ack.at_ms));
                line(
                    &mut text,
                    "Response",
                    &format!("{} after the start", human_duration(ack.at_ms - start_ms)),
                );
                if let Some(note) = &ack.note {
                    line(&mut text, "Note", note);
                }
                line(
                    &mut text,
                    "Next",
                    "no further escalation or reminders; RECOVERED when it is up again",
                );
            }
            What::ResponseOverdue {
                start_ms,
                failure,
                limit_ms,
            } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(
                    &mut text,
                    "Overdue",
                    &format!(
                        "not acknowledged within {} (the contract's respond_within)",
                        human_duration(*limit_ms)
                    ),
                );
                line(&mut text, "Cause", &failure.to_string());
                line(&mut text, "Acknowledge", &ack_hint(&item.service));
            }
            What::RestoreOverdue {
                start_ms,
                failure,
                limit_ms,
            } => {
                line(&mut text, "Down since", &when(*start_ms));
                line(&mut text, "Down for", &human_duration(now_ms - start_ms));
                line(
                    &mut text,
                    "Overdue",
                    &format!(
                        "not restored within {} (the contract's restore_within)",
                        human_duration(*limit_ms)
                    ),
                );
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
            What::Digest { text: digest, .. } => text.push_str(digest),
        }
    }
    let _ = writeln!(
        text,
        "\n-- \nslaprobe, written {}.\nTo mute a service or route, set alert = false in its config table.",
        at(now_ms, None)
    );
    Email {
        subject: subject(notice),
        to: email_recipients(notice),
        text,
        html: None,
        attachment: None,
    }
}

/// A digest's text, if `notice` is one.
fn digest_text(notice: &Notice) -> Option<&str> {
    match &notice.items.first()?.what {
        What::Digest { text, .. } => Some(text),
        _ => None,
    }
}

fn ack_hint(service: &str) -> String {
    format!("slaprobe ack {service} --by NAME (or POST /api/v1/services/{service}/ack)")
}

/// Items a chat message lists before it says "and N more".
const CHAT_ITEMS: usize = 20;

/// The short text of a chat message (Slack, Telegram, the webhook's `text`): the subject, then
/// one line per service.
pub fn chat_text(notice: &Notice, now_ms: i64) -> String {
    if let Some(digest) = digest_text(notice) {
        return format!("{}\n{digest}", subject(notice));
    }
    let mut text = subject(notice);
    for item in notice.items.iter().take(CHAT_ITEMS) {
        let detail = match &item.what {
            What::Down {
                start_ms, failure, ..
            } => {
                format!("down since {}: {failure}", short_at(*start_ms))
            }
            What::Recovered { start_ms, end_ms } => {
                format!("up again after {}", human_duration(end_ms - start_ms))
            }
            What::Stable { since_ms } => format!("stable and up since {}", short_at(*since_ms)),
            What::Escalated {
                start_ms, failure, ..
            }
            | What::StillDown { start_ms, failure } => {
                format!("down for {}: {failure}", human_duration(now_ms - start_ms))
            }
            What::Flapping {
                transitions,
                window_ms,
            } => format!(
                "flapping: {transitions} changes within {}",
                human_duration(*window_ms)
            ),
            What::Budget { summary } | What::Certificate { summary } => summary.clone(),
            What::Acknowledged { start_ms, ack } => {
                let mut t = format!(
                    "acknowledged by {} {} after the start",
                    ack.by.as_deref().unwrap_or("(not named)"),
                    human_duration(ack.at_ms - start_ms)
                );
                if let Some(note) = &ack.note {
                    t.push_str(&format!(": {note}"));
                }
                t
            }
            What::ResponseOverdue { limit_ms, .. } => {
                format!("not acknowledged within {}", human_duration(*limit_ms))
            }
            What::RestoreOverdue { limit_ms, .. } => {
                format!("not restored within {}", human_duration(*limit_ms))
            }
            What::Digest { .. } => String::new(),
        };
        let _ = write!(text, "\n• {} ({}): {detail}", item.service, item.contract);
    }
    if notice.items.len() > CHAT_ITEMS {
        let _ = write!(text, "\n… and {} more", notice.items.len() - CHAT_ITEMS);
    }
    text
}

fn short_at(ms: i64) -> String {
    crate::text::timestamp_to_second(ms)
}

/// The webhook's JSON (DESIGN.md §6.2): the event, one entry per service, the chat text.
pub fn webhook_json(notice: &Notice, text: &str, now_ms: i64) -> serde_json::Value {
    let services: Vec<serde_json::Value> = notice
        .items
        .iter()
        .filter(|item| !matches!(item.what, What::Digest { .. }))
        .map(|item| {
            let (since, reason, detail) = match &item.what {
                What::Down {
                    start_ms, failure, ..
                }
                | What::Escalated {
                    start_ms, failure, ..
                }
                | What::StillDown { start_ms, failure }
                | What::ResponseOverdue {
                    start_ms, failure, ..
                }
                | What::RestoreOverdue {
                    start_ms, failure, ..
                } => (
                    Some(*start_ms),
                    Some(failure.reason.to_string()),
                    Some(failure.detail.clone()),
                ),
                What::Recovered { start_ms, .. } | What::Acknowledged { start_ms, .. } => {
                    (Some(*start_ms), None, None)
                }
                What::Stable { since_ms } => (Some(*since_ms), None, None),
                What::Budget { summary } | What::Certificate { summary } => {
                    (None, None, Some(summary.clone()))
                }
                What::Flapping { .. } | What::Digest { .. } => (None, None, None),
            };
            let mut entry = serde_json::json!({
                "service": item.service,
                "contract": item.contract,
                "since": since.map(crate::text::timestamp),
                "reason": reason,
                "detail": detail,
            });
            match &item.what {
                What::Recovered { end_ms, .. } => {
                    entry["until"] = serde_json::json!(crate::text::timestamp(*end_ms));
                }
                What::Acknowledged { ack, .. } => {
                    entry["acknowledged_at"] = serde_json::json!(crate::text::timestamp(ack.at_ms));
                    entry["acknowledged_by"] = serde_json::json!(ack.by);
                    entry["note"] = serde_json::json!(ack.note);
                }
                What::Escalated { step, .. } => entry["step"] = serde_json::json!(step + 1),
                _ => {}
            }
            entry
        })
        .collect();
    serde_json::json!({
        "event": notice.kind.event(),
        "services": services,
        "text": text,
        "at": crate::text::timestamp(now_ms),
    })
}

/// The outbox message of `notice` for `channel`.
pub fn channel_message(notice: &Notice, channel: &Channel, now_ms: i64) -> ChannelMessage {
    let text = chat_text(notice, now_ms);
    let (name, body) = match channel {
        Channel::Webhook { .. } => ("webhook", webhook_json(notice, &text, now_ms)),
        Channel::Slack { .. } => ("slack", serde_json::json!({ "text": text })),
        Channel::Telegram { chat_id, .. } => (
            "telegram",
            serde_json::json!({ "chat_id": chat_id, "text": telegram_text(&text) }),
        ),
    };
    ChannelMessage {
        channel: name,
        destination: crate::notify::channels::destination(channel),
        subject: subject(notice),
        body: serde_json::to_vec(&body).expect("JSON serializes"),
    }
}

/// Telegram takes at most 4,096 characters.
fn telegram_text(text: &str) -> String {
    const MAX: usize = 4_096;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX - 20).collect();
    cut.push_str("\n… (shortened)");
    cut
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
            to: vec![Recipient::Email("o@x.example".into())],
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
            to: vec![Recipient::Email("o@x.example".into())],
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
