//! `[[route]]` tables: who hears about a service and how — e-mail, webhooks, Slack, Telegram
//! (DESIGN.md §6.2) — the escalation chain, reminders, grouping, flapping, the daily digest and
//! the burn-rate rules.

use std::time::Duration;

use toml::de::DeValue;

use super::fields::{email_list, required_id};
use super::reader::{Diagnostics, Table, Value, type_name};
use super::*;
use crate::sla::burn::{self, BurnRule};

pub(super) fn routes_section(values: &[Value<'_, '_>], d: &mut Diagnostics) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    let mut seen = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[route]]", d) else {
            continue;
        };
        let id = required_id(&mut t, &mut seen, d);
        let email = email_list(&mut t, "email", d);
        let channels = channels(&mut t, d);
        let escalate = escalation(&mut t, d);
        let repeat = t.duration("repeat", d);
        let group_window = t.duration_or_zero("group_window", d);
        let muted = t.get("alert").and_then(|v| {
            d.parse(v, "alert", |v| match v {
                DeValue::Boolean(b) => Ok(!*b),
                other => Err(format!(
                    "expected true or false (false mutes the route), found {}",
                    type_name(other)
                )),
            })
        });
        let flap_transitions = t.integer("flap_transitions", 2, 1000, d);
        let flap_window = t.duration("flap_window", d);
        let maintenance_alerts = t.bool("maintenance_alerts", d);
        let burn_rules = t.get("burn_rules").map(|v| burn_rules(v, d));
        let digest = digest(&mut t, d);
        if email.is_empty() && channels.is_empty() && !t.has("email") {
            t.missing(
                "email",
                "write email = [\"oncall@example.com\"], or a channel such as \
                 webhook = [{ url = \"https://…\", secret_env = \"HOOK_SECRET\" }]",
                d,
            );
        }
        t.finish(d);
        if let Some(id) = id {
            routes.push(Route {
                id,
                muted: muted.unwrap_or(false),
                email,
                channels,
                escalate,
                repeat,
                group_window: group_window.unwrap_or(Duration::from_secs(30)),
                flap_transitions: flap_transitions.unwrap_or(6) as u32,
                flap_window: flap_window.unwrap_or(Duration::from_secs(3600)),
                maintenance_alerts: maintenance_alerts.unwrap_or(false),
                burn_rules: burn_rules.flatten().unwrap_or_else(burn::default_rules),
                digest,
            });
        }
    }
    routes
}

/// The escalation chain: `escalate = [ { after = "15m", to = [...] }, … ]`, or the one-step
/// form `escalate_after` + `escalate_to`.
fn escalation(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Vec<EscalationStep> {
    let after = t.duration("escalate_after", d);
    let to = email_list(t, "escalate_to", d);
    let chain = t.get("escalate");
    if let Some(chain) = chain {
        if t.has("escalate_after") || t.has("escalate_to") {
            d.error(
                t.key_span("escalate_after")
                    .start
                    .min(t.key_span("escalate_to").start)
                    ..t.key_span("escalate").end,
                "`escalate` and `escalate_after`/`escalate_to` are both set: keep the chain \
                 (escalate = [ { after = \"30m\", to = [\"lead@example.com\"] } ])",
            );
        }
        return escalation_chain(chain, d);
    }
    match after {
        Some(after) if !to.is_empty() => vec![EscalationStep {
            after,
            email: to,
            channels: Vec::new(),
        }],
        Some(_) => {
            d.error(
                t.key_span("escalate_after"),
                "`escalate_after` needs `escalate_to`: write escalate_to = [\"lead@example.com\"]",
            );
            Vec::new()
        }
        None => Vec::new(),
    }
}

fn escalation_chain(v: Value<'_, '_>, d: &mut Diagnostics) -> Vec<EscalationStep> {
    const HINT: &str = "write escalate = [ { after = \"15m\", to = [\"lead@example.com\"] }, \
                        { after = \"1h\", to = [\"cto@example.com\"] } ]";
    let DeValue::Array(items) = v.get_ref() else {
        d.error(v.span(), format!("`escalate` is a list of steps: {HINT}"));
        return Vec::new();
    };
    let mut steps = Vec::new();
    for item in items {
        let Some(mut step) = Table::new(item, "an `escalate` step", d) else {
            continue;
        };
        let after = step.duration("after", d);
        let email = email_list(&mut step, "to", d);
        let channels = channels(&mut step, d);
        if after.is_none() && !step.has("after") {
            step.missing("after", HINT, d);
        }
        if email.is_empty() && channels.is_empty() && !step.has("to") {
            step.missing("to", HINT, d);
        }
        step.finish(d);
        if let Some(after) = after {
            steps.push(EscalationStep {
                after,
                email,
                channels,
            });
        }
    }
    steps.sort_by_key(|s| s.after);
    steps
}

/// `digest = "daily"` with `digest_hour` (default 8).
fn digest(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Option<Digest> {
    let daily = t.choice("digest", &[("daily", true)], d);
    let hour = t.integer("digest_hour", 0, 23, d);
    if hour.is_some() && daily.is_none() && !t.has("digest") {
        d.error(
            t.key_span("digest_hour"),
            "`digest_hour` without `digest`: write digest = \"daily\" as well",
        );
    }
    daily.map(|_| Digest {
        hour: hour.unwrap_or(8) as u8,
    })
}

/// `webhook`, `slack` and `telegram` of a route or an escalation step; each is one table or a
/// list of them.
fn channels(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Vec<Channel> {
    let mut found = Vec::new();
    for (key, read) in [
        ("webhook", webhook as ChannelReader),
        ("slack", slack),
        ("telegram", telegram),
    ] {
        let Some(v) = t.get(key) else {
            continue;
        };
        let items: Vec<Value<'_, '_>> = match v.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            _ => vec![v],
        };
        for item in items {
            if let Some(mut table) = Table::new(item, &format!("`{key}`"), d) {
                if let Some(channel) = read(&mut table, d) {
                    found.push(channel);
                }
                table.finish(d);
            }
        }
    }
    found
}

type ChannelReader = fn(&mut Table<'_, '_>, &mut Diagnostics) -> Option<Channel>;

/// The name of an environment variable holding a secret.
fn env_name(
    t: &mut Table<'_, '_>,
    key: &'static str,
    hint: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let Some(v) = t.get(key) else {
        t.missing(key, hint, d);
        return None;
    };
    d.parse(v, key, |v| {
        let name = super::reader::as_string(v)?;
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(name.to_string())
        } else {
            Err(format!(
                "`{name}` is not an environment variable's name (the secret itself never goes \
                 in the config): {hint}"
            ))
        }
    })
}

fn webhook(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Option<Channel> {
    const HINT: &str = "write webhook = [{ url = \"https://hooks.example.com/slaprobe\", secret_env = \"HOOK_SECRET\" }]";
    let url = match t.get("url") {
        None => {
            t.missing("url", HINT, d);
            None
        }
        Some(v) => d.parse(v, "url", |v| http_url(super::reader::as_string(v)?)),
    };
    let secret_env = env_name(t, "secret_env", HINT, d);
    Some(Channel::Webhook {
        url: url?,
        secret_env: secret_env?,
    })
}

fn slack(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Option<Channel> {
    const HINT: &str = "write slack = { url_env = \"SLACK_WEBHOOK_URL\" } (the variable holds \
                        the incoming-webhook URL)";
    if t.has("url") {
        d.error(
            t.key_span("url"),
            format!("a Slack webhook URL is a secret and never goes in the config: {HINT}"),
        );
        t.get("url");
    }
    let url_env = env_name(t, "url_env", HINT, d)?;
    Some(Channel::Slack { url_env })
}

fn telegram(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Option<Channel> {
    const HINT: &str =
        "write telegram = { token_env = \"TELEGRAM_BOT_TOKEN\", chat_id = \"-1001234567890\" }";
    let token_env = env_name(t, "token_env", HINT, d);
    let chat_id = match t.get("chat_id") {
        None => {
            t.missing("chat_id", HINT, d);
            None
        }
        Some(v) => d.parse(v, "chat_id", |v| match v {
            DeValue::String(s) if !s.is_empty() => Ok(s.to_string()),
            DeValue::Integer(i) => Ok(i.as_str().to_string()),
            _ => Err(format!(
                "expected a chat id such as \"-1001234567890\" or \"@channel\": {HINT}"
            )),
        }),
    };
    let api = match t.get("api") {
        None => Some("https://api.telegram.org".to_string()),
        Some(v) => d.parse(v, "api", |v| http_url(super::reader::as_string(v)?)),
    };
    Some(Channel::Telegram {
        token_env: token_env?,
        chat_id: chat_id?,
        api: api?.trim_end_matches('/').to_string(),
    })
}

/// An `http://` or `https://` URL without credentials in it.
fn http_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!("`{text}` is not a URL ({e}): write e.g. \"https://hooks.example.com/x\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "do not put credentials in the URL: the receiver checks the X-Slaprobe-Signature \
             header signed with `secret_env`"
                .to_string(),
        );
    }
    Ok(text.to_string())
}

/// `burn_rules = [ { long = "1h", short = "5m", burn = 14.4, severity = "page" }, … ]`.
fn burn_rules(v: Value<'_, '_>, d: &mut Diagnostics) -> Option<Vec<BurnRule>> {
    const HINT: &str = "write burn_rules = [ { long = \"1h\", short = \"5m\", burn = 14.4, \
                        severity = \"page\" }, … ] (or [] for none)";
    d.parse(v, "burn_rules", |v| {
        let DeValue::Array(items) = v else {
            return Err(format!("expected a list of rules: {HINT}"));
        };
        let mut rules = Vec::new();
        for item in items {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(format!("every rule is a table: {HINT}"));
            };
            let (mut long, mut short, mut rate, mut severity) = (None, None, None, None);
            for (key, value) in table.iter() {
                let value = value.get_ref();
                match key.get_ref().as_ref() {
                    "long" => long = Some(super::reader::parse_duration(value)?),
                    "short" => short = Some(super::reader::parse_duration(value)?),
                    "burn" => rate = Some(burn_tenths(value)?),
                    "severity" => {
                        severity = Some(match value {
                            DeValue::String(s) if s == "page" => burn::Severity::Page,
                            DeValue::String(s) if s == "ticket" => burn::Severity::Ticket,
                            _ => {
                                return Err(format!(
                                    "`severity` is \"page\" or \"ticket\": {HINT}"
                                ));
                            }
                        })
                    }
                    other => return Err(format!("unknown key `{other}` in a burn rule: {HINT}")),
                }
            }
            let (Some(long), Some(short), Some(rate_tenths)) = (long, short, rate) else {
                return Err(format!(
                    "every rule needs `long`, `short` and `burn`: {HINT}"
                ));
            };
            if short >= long {
                return Err(format!(
                    "a rule's `short` window ({}) must be shorter than its `long` one ({})",
                    humantime::format_duration(short),
                    humantime::format_duration(long)
                ));
            }
            rules.push(BurnRule {
                long,
                short,
                rate_tenths,
                severity: severity.unwrap_or(burn::Severity::Page),
            });
        }
        Ok(rules)
    })
}

/// A burn rate with at most one decimal (14.4), in tenths.
fn burn_tenths(v: &DeValue<'_>) -> Result<u64, String> {
    let text = match v {
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        _ => return Err("`burn` is a number such as 14.4".to_string()),
    };
    let (whole, tenth) = text.split_once('.').unwrap_or((&text, "0"));
    match (whole.parse::<u64>(), tenth.len(), tenth.parse::<u64>()) {
        (Ok(w), 1, Ok(t)) if w * 10 + t > 0 => Ok(w * 10 + t),
        _ => Err(format!(
            "`burn` = {text}: write a positive number with at most one decimal, e.g. 14.4"
        )),
    }
}
