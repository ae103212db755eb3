//! The daily digest (DESIGN.md §6.2): on a route with `digest = "daily"`, one message a day
//! after `digest_hour` in `[daemon] timezone`, with yesterday's incidents, the open incidents
//! nobody has acknowledged, the response and restore breaches, and each contract's month to
//! date with its error budget left. The store records each digest sent, so a restart neither
//! repeats nor skips one.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use tracing::error;

use super::policy::{Item, Kind, Notice, RouteRules, What};
use crate::config::{Config, Route};
use crate::report;
use crate::sla::availability::ContractLevel;
use crate::sla::calendar;
use crate::sla::response;
use crate::store::acks::RecordedIncident;
use crate::store::db::{Conn, DbError};
use crate::store::{SharedConnection, alerts, history, with_db};
use crate::text::{Chain, human_duration, percent, timestamp_to_second};

/// A failed digest is tried again this much later.
const RETRY_MS: i64 = 60_000;

/// Which digests were handled, per route: the day summarised, or when to try again.
#[derive(Default)]
pub struct Digests {
    done: HashMap<String, String>,
    retry_at: HashMap<String, i64>,
}

/// The day a digest written at `now_ms` summarises (yesterday, local), and when it is due.
fn schedule(config: &Config, route: &Route, now_ms: i64) -> Option<(String, i64, i64, i64)> {
    let digest = route.digest?;
    let tz = &config.daemon.timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let yesterday = today.yesterday().ok()?;
    let due = calendar::local_to_ms(tz, today.at(digest.hour as i8, 0, 0, 0));
    let from = calendar::local_to_ms(tz, yesterday.at(0, 0, 0, 0));
    let to = calendar::local_to_ms(tz, today.at(0, 0, 0, 0));
    Some((yesterday.to_string(), due, from, to))
}

impl Digests {
    /// When the next digest is due (`i64::MAX`: none).
    pub fn next_due(&self, config: &Config, now_ms: i64) -> i64 {
        config
            .routes
            .iter()
            .filter(|r| !r.muted)
            .filter_map(|route| {
                let (day, due, ..) = schedule(config, route, now_ms)?;
                if self.done.get(&route.id) == Some(&day) {
                    // Tomorrow's, at the same hour (give or take a DST change: re-read then).
                    return Some(due + 86_400_000);
                }
                Some(due.max(self.retry_at.get(&route.id).copied().unwrap_or(i64::MIN)))
            })
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The digests due at `now_ms` and not sent yet, recorded as sent.
    pub async fn due(
        &mut self,
        db: &SharedConnection,
        config: &Arc<Config>,
        now_ms: i64,
    ) -> Vec<Notice> {
        let mut notices = Vec::new();
        for route in config.routes.iter().filter(|r| !r.muted) {
            let Some((day, due, from, to)) = schedule(config, route, now_ms) else {
                continue;
            };
            let waiting = self.retry_at.get(&route.id).is_some_and(|t| now_ms < *t);
            if now_ms < due || waiting || self.done.get(&route.id) == Some(&day) {
                continue;
            }
            let (config, id, day_for_db) = (config.clone(), route.id.clone(), day.clone());
            let written = with_db(db, move |conn| {
                if !alerts::mark_digest(conn.conn(), &id, &day_for_db, now_ms)? {
                    return Ok(None);
                }
                let route = config.routes.iter().find(|r| r.id == id).expect("listed");
                Ok::<_, DbError>(Some(digest_text(
                    conn.conn(),
                    &config,
                    route,
                    &day_for_db,
                    (from, to),
                    now_ms,
                )?))
            })
            .await;
            match written {
                Ok(text) => {
                    self.done.insert(route.id.clone(), day.clone());
                    self.retry_at.remove(&route.id);
                    if let Some(text) = text {
                        notices.push(notice(route, day, text));
                    }
                }
                Err(e) => {
                    error!(route = %route.id, error = %Chain(&e), "Cannot write the daily digest; trying again in a minute.");
                    self.retry_at.insert(route.id.clone(), now_ms + RETRY_MS);
                }
            }
        }
        notices
    }
}

fn notice(route: &Route, day: String, text: String) -> Notice {
    let mut to = RouteRules::of(route).to;
    to.sort();
    to.dedup();
    Notice {
        kind: Kind::Digest,
        to,
        items: vec![Item {
            service: String::new(),
            contract: route.id.clone(),
            what: What::Digest { day, text },
        }],
    }
}

/// One incident as the digest lists it.
struct Listed<'a> {
    service: &'a str,
    contract: &'a str,
    incident: RecordedIncident,
    judged: response::Judged,
}

/// The digest of `route` for `day` (`[from, to)` in UTC ms), as of `now_ms`.
pub fn digest_text(
    conn: Conn<'_>,
    config: &Config,
    route: &Route,
    day: &str,
    (from, to): (i64, i64),
    now_ms: i64,
) -> Result<String, DbError> {
    let services: Vec<_> = config
        .services
        .iter()
        .filter(|s| config.route_of(s).is_some_and(|r| r.id == route.id))
        .map(|s| &**s)
        .collect();
    let mut yesterday = Vec::new();
    let mut open = Vec::new();
    for service in &services {
        let Some(subject) = history::subject(conn, config, service)? else {
            continue;
        };
        let contract = config.contract_of(service);
        let judge = |incident: RecordedIncident| {
            let terms = contract.in_force(incident.start_ms);
            let targets = config.targets_of(service, &terms);
            let judged = response::judge(incident.response(), targets, now_ms);
            Listed {
                service: &service.id,
                contract: &service.contract,
                incident,
                judged,
            }
        };
        for incident in history::recorded_incidents(conn, &subject, from, to, now_ms)? {
            yesterday.push(judge(incident));
        }
        for incident in history::recorded_incidents(conn, &subject, now_ms - 1, now_ms + 1, now_ms)?
        {
            if incident.end_ms.is_none() && incident.ack.is_none() {
                open.push(judge(incident));
            }
        }
    }
    let zone = &config.daemon.timezone.name;
    let mut text = format!("Daily digest of {day} ({zone}), route {}\n", route.id);
    let _ = writeln!(text, "\nIncidents that day: {}", yesterday.len());
    for l in &yesterday {
        let _ = writeln!(text, "  {}", describe(l, now_ms));
    }
    let _ = writeln!(text, "\nOpen and not acknowledged: {}", open.len());
    for l in &open {
        let _ = writeln!(
            text,
            "  {} ({}): down since {}, for {}",
            l.service,
            l.contract,
            timestamp_to_second(l.incident.start_ms),
            human_duration(now_ms - l.incident.start_ms)
        );
    }
    let breaches: Vec<&Listed> = yesterday
        .iter()
        .filter(|l| l.judged.response_breach || l.judged.restore_breach)
        .collect();
    let _ = writeln!(text, "\nBreaches that day: {}", breaches.len());
    for l in breaches {
        let mut kinds = Vec::new();
        if l.judged.response_breach {
            kinds.push("response");
        }
        if l.judged.restore_breach {
            kinds.push("restore");
        }
        let _ = writeln!(
            text,
            "  {} ({}): {} (incident from {})",
            l.service,
            l.contract,
            kinds.join(" and "),
            timestamp_to_second(l.incident.start_ms)
        );
    }
    month_to_date(conn, config, &services, now_ms, &mut text)?;
    Ok(text)
}

/// "api (acme): 2026-12-01T10:00:00Z – 2026-12-01T10:30:00Z, 30 m; acknowledged by jo after 5 m".
fn describe(l: &Listed<'_>, now_ms: i64) -> String {
    let i = &l.incident;
    let end = i
        .end_ms
        .map_or("(still down)".to_string(), timestamp_to_second);
    let lasted = human_duration(i.end_ms.unwrap_or(now_ms) - i.start_ms);
    let ack = match (&i.ack, l.judged.ack_ms) {
        (Some(ack), Some(after)) => format!(
            "acknowledged by {} after {}",
            ack.by.as_deref().unwrap_or("(not named)"),
            human_duration(after)
        ),
        _ => "not acknowledged".to_string(),
    };
    format!(
        "{} ({}): {} – {end}, {lasted}; {ack}",
        l.service,
        l.contract,
        timestamp_to_second(i.start_ms)
    )
}

/// Each contract's month so far: availability as one service, and each service's budget left.
fn month_to_date(
    conn: Conn<'_>,
    config: &Config,
    services: &[&crate::config::Service],
    now_ms: i64,
    text: &mut String,
) -> Result<(), DbError> {
    let mut contracts: Vec<&str> = services.iter().map(|s| s.contract.as_str()).collect();
    contracts.sort_unstable();
    contracts.dedup();
    let _ = writeln!(text, "\nMonth to date:");
    for id in contracts {
        let Some(contract) = config.contract(id) else {
            continue;
        };
        let mut numbers = Vec::new();
        let mut budgets = Vec::new();
        let mut month = String::new();
        for service in services.iter().filter(|s| s.contract == id) {
            let m = report::month_budget(conn, config, service, now_ms)?;
            let left = m
                .budget
                .remaining_share()
                .map_or("n/a".to_string(), |share| {
                    format!("{:.0}%", (share.max(0.0) * 100.0).floor())
                });
            budgets.push(format!("{} {left}", service.id));
            month = m.month;
            numbers.push(m.numbers);
        }
        let refs: Vec<_> = numbers.iter().collect();
        let whole = ContractLevel::of(&refs);
        let availability = match whole.measured_ms {
            0 => "n/a (nothing measured)".to_string(),
            measured => percent(whole.uptime_ms.max(0) as u64, measured as u64),
        };
        let target = contract.in_force(now_ms).target;
        let _ = writeln!(
            text,
            "  {id} ({}) {month}: {availability} (target {target}); error budget left: {}",
            contract.client,
            budgets.join(", ")
        );
    }
    Ok(())
}
