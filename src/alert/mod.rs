//! Alerting: the task that feeds incident transitions to the pure `policy`, checks error-budget
//! burn rates and the month's budget once a minute, and writes the resulting e-mails to the
//! outbox (or, without `[smtp]`, to the log), recording what was told so a restart neither
//! repeats nor forgets an alert.

pub mod policy;
pub mod render;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::Mailbox;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::{Alert, Config, Service};
use crate::notify::delivery::{SharedConnection, with_db};
use crate::notify::outbox::{self, Kind as MailKind};
use crate::probe::Failure;
use crate::report::{self, Period};
use crate::sla::burn::{self, Severity};
use crate::sla::tracker::OpenIncident;
use crate::text::human_duration;
use policy::{MaintenanceCalendar, Notice, Policy, RouteRules, Told, Watched, What};
use render::ServiceFacts;

/// Burn rates and budgets are checked this often (more often if a rule's short window is
/// shorter than two minutes).
const BUDGET_EVERY: Duration = Duration::from_secs(60);

/// An incident transition from a service task.
#[derive(Debug, Clone)]
pub enum Transition {
    Opened {
        service: String,
        start_ms: i64,
        failure: Failure,
    },
    Closed {
        service: String,
        start_ms: i64,
        end_ms: i64,
    },
}

/// What the alert task hears: transitions, and reloaded configs in order with them.
#[derive(Debug)]
pub enum AlertInput {
    Transition(Transition),
    /// A reload: the new config, and the open incident of each service it starts.
    Reload {
        config: Arc<Config>,
        added: HashMap<String, Option<OpenIncident>>,
    },
}

/// Where service tasks send transitions. Never blocks.
#[derive(Clone)]
pub struct AlertSender(mpsc::UnboundedSender<AlertInput>);

impl AlertSender {
    pub fn send(&self, transition: Transition) {
        let _ = self.0.send(AlertInput::Transition(transition));
    }

    /// Hands over a reloaded config; sent before the services it adds start, so that their
    /// transitions find them watched.
    pub fn reload(&self, config: Arc<Config>, added: HashMap<String, Option<OpenIncident>>) {
        let _ = self.0.send(AlertInput::Reload { config, added });
    }
}

/// Counters for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Messages written to the outbox (or logged without `[smtp]`).
    pub notices: AtomicU64,
}

/// Where composed alerts go: the outbox (with the sender and the delivery task to wake), or
/// the log when there is no `[smtp]`.
#[derive(Clone)]
pub struct MailOut {
    pub from: Mailbox,
    pub wake: Arc<Notify>,
    /// For alerts the outbox cannot take (database full or locked): sent directly.
    pub mailer: Arc<crate::notify::Mailer>,
}

/// How often alerts kept in memory are written to the outbox again.
const UNWRITTEN_RETRY: Duration = Duration::from_secs(5);

/// An alert decided but not yet in the outbox because the database refused the write. It is
/// sent directly meanwhile, and written (as sent, or pending if sending failed too) with what
/// it told once the database takes writes again.
struct Unwritten {
    notice: Notice,
    composed: Option<crate::notify::Composed>,
    sent: bool,
}

/// The route a service's alerts follow, if any (`alert = false` anywhere mutes).
pub fn route_of<'a>(config: &'a Config, service: &Service) -> Option<&'a crate::config::Route> {
    let id = match &service.alert {
        Alert::Muted => return None,
        Alert::Route(id) => id,
        Alert::Inherit => match &config.contract(&service.contract)?.alert {
            Alert::Route(id) => id,
            Alert::Muted | Alert::Inherit => return None,
        },
    };
    config.routes.iter().find(|r| &r.id == id && !r.muted)
}

/// Maintenance windows from the config.
pub struct ConfigCalendar(pub Arc<Config>);

impl MaintenanceCalendar for ConfigCalendar {
    fn maintenance_until(&self, service: &str, at_ms: i64) -> Option<i64> {
        const DAY: i64 = 86_400_000;
        let service = self.0.service(service)?;
        let windows = crate::sla::maintenance::windows(
            &self.0.maintenance,
            service,
            at_ms - 7 * DAY,
            at_ms + 2 * DAY,
        );
        windows
            .spans()
            .iter()
            .find(|(start, end)| *start <= at_ms && at_ms < *end)
            .map(|(_, end)| *end)
    }
}

pub struct AlertTask {
    config: Arc<Config>,
    db: SharedConnection,
    mail: Option<MailOut>,
    clock: Clock,
    policy: Policy,
    /// Per service: when it was last down (`i64::MAX` while down), for the budget checks.
    last_down: HashMap<String, i64>,
    /// Every configured service's open incident (watched or not), for a reload that starts
    /// watching one.
    open: HashMap<String, OpenIncident>,
    /// Alerts the outbox could not take yet, oldest first.
    unwritten: Vec<Unwritten>,
    stats: Arc<AlertStats>,
}

impl AlertTask {
    /// Sets up alerting for `config`; `open` lists each service's open incident at start.
    pub fn new(
        config: Arc<Config>,
        db: SharedConnection,
        mail: Option<MailOut>,
        clock: Clock,
        open: &HashMap<String, Option<OpenIncident>>,
    ) -> rusqlite::Result<(AlertTask, AlertSender, mpsc::UnboundedReceiver<AlertInput>)> {
        let now = clock.now_ms();
        let last_down = {
            let conn = db.lock().unwrap_or_else(|p| p.into_inner());
            recent_downtime(&conn, now - longest_window(&config))?
        };
        let mut task = AlertTask {
            config: config.clone(),
            db,
            mail,
            clock,
            policy: Policy::new(),
            last_down,
            open: HashMap::new(),
            unwritten: Vec::new(),
            stats: Arc::new(AlertStats::default()),
        };
        task.configure(config, open.clone())?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((task, AlertSender(tx), rx))
    }

    /// Takes `config`: watches each service that has a route (resuming what was told about its
    /// open incident), stops watching the others. `added` holds the open incidents of services
    /// new to the daemon.
    fn configure(
        &mut self,
        config: Arc<Config>,
        added: HashMap<String, Option<OpenIncident>>,
    ) -> rusqlite::Result<()> {
        for (id, incident) in added {
            match incident {
                Some(incident) => self.open.insert(id, incident),
                None => self.open.remove(&id),
            };
        }
        self.open.retain(|id, _| config.service(id).is_some());
        let routes: HashMap<&str, Arc<RouteRules>> = config
            .routes
            .iter()
            .map(|r| (r.id.as_str(), Arc::new(RouteRules::of(r))))
            .collect();
        let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
        for service in &config.services {
            let Some(route) = route_of(&config, service) else {
                self.policy.unwatch(&service.id);
                continue;
            };
            let watched = Watched {
                service: service.id.clone(),
                contract: service.contract.clone(),
                route: routes[route.id.as_str()].clone(),
            };
            if !self.policy.rewatch(watched.clone()) {
                let told = match self.open.get(&service.id) {
                    Some(incident) => Some(load_told(&conn, &service.id, incident.clone())?),
                    None => None,
                };
                self.policy.watch(watched, told);
            }
        }
        drop(conn);
        self.policy.retain(|id| config.service(id).is_some());
        self.config = config;
        Ok(())
    }

    pub fn stats(&self) -> Arc<AlertStats> {
        self.stats.clone()
    }

    /// Runs until `stop`; then writes out every message still gathering.
    pub async fn run(
        mut self,
        mut transitions: mpsc::UnboundedReceiver<AlertInput>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut next_budget_check = self.clock.now_ms();
        loop {
            let calendar = ConfigCalendar(self.config.clone());
            let now = self.clock.now_ms();
            let due = self
                .policy
                .next_due(now, &calendar)
                .unwrap_or(i64::MAX)
                .min(next_budget_check);
            let mut wait = Duration::from_millis((due - now).clamp(0, 3_600_000) as u64);
            if !self.unwritten.is_empty() {
                wait = wait.min(UNWRITTEN_RETRY);
            }
            let stopping = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => true,
                received = transitions.recv() => match received {
                    Some(t) => {
                        self.observe(t);
                        false
                    }
                    // Every service task has ended: the daemon is stopping.
                    None => true,
                },
                _ = tokio::time::sleep(wait) => false,
            };
            // Everything already sent, so that a burst is decided together.
            while let Ok(t) = transitions.try_recv() {
                self.observe(t);
            }
            let now = self.clock.now_ms();
            let calendar = ConfigCalendar(self.config.clone());
            self.policy.tick(now, &calendar);
            if now >= next_budget_check && !stopping {
                self.check_budgets(now).await;
                next_budget_check = now + budget_every(&self.config).as_millis() as i64;
            }
            let notices = self.policy.take_due(now, stopping);
            if !notices.is_empty() || !self.unwritten.is_empty() {
                self.write(notices, now).await;
            }
            if stopping {
                if !self.unwritten.is_empty() {
                    error!(
                        alerts = self.unwritten.len(),
                        "Stopping with alerts the database never took: they were sent directly \
                         where SMTP allowed, but what they told is not recorded."
                    );
                }
                return;
            }
        }
    }

    fn observe(&mut self, input: AlertInput) {
        let now = self.clock.now_ms();
        let transition = match input {
            AlertInput::Transition(transition) => transition,
            AlertInput::Reload { config, added } => {
                if let Err(e) = self.configure(config, added) {
                    error!(error = %e, "Cannot read what was told of open incidents; alerts for \
                           services a reload started watching start afresh.");
                }
                return;
            }
        };
        match transition {
            Transition::Opened {
                service,
                start_ms,
                failure,
            } => {
                self.last_down.insert(service.clone(), i64::MAX);
                self.open.insert(
                    service.clone(),
                    OpenIncident {
                        start_ms,
                        first_failure: failure.clone(),
                    },
                );
                self.policy.opened(
                    now,
                    &service,
                    start_ms,
                    failure,
                    &ConfigCalendar(self.config.clone()),
                );
            }
            Transition::Closed {
                service,
                start_ms,
                end_ms,
            } => {
                self.last_down.insert(service.clone(), end_ms);
                self.open.remove(&service);
                self.policy.closed(now, &service, start_ms, end_ms);
            }
        }
    }

    /// Burn-rate rules and the month's budget for services down lately.
    async fn check_budgets(&mut self, now: i64) {
        let since = now - longest_window(&self.config);
        self.last_down.retain(|_, last| *last >= since);
        let candidates: Vec<String> = self
            .last_down
            .keys()
            .filter(|s| self.policy.is_watched(s))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return;
        }
        let config = self.config.clone();
        let found = with_db(&self.db, move |conn| {
            let mut notices = Vec::new();
            for id in candidates {
                notices.extend(budget_notices(conn, &config, &id, now)?);
            }
            Ok(notices)
        })
        .await;
        match found {
            Ok(found) => {
                for (service, summary) in found {
                    self.policy.budget(now, &service, summary);
                }
            }
            Err(e) => error!(error = %e, "Cannot check error budgets."),
        }
    }

    /// Renders `notices` and writes them, after any kept from an earlier failure, to the
    /// outbox with what they told, in one transaction. If the database refuses, they are kept
    /// in memory and sent directly, so that a full or locked disk does not silence alerts.
    async fn write(&mut self, notices: Vec<Notice>, now: i64) {
        let config = self.config.clone();
        let from = self.mail.as_ref().map(|m| m.from.clone());
        let count = notices.len() as u64;
        let mut items = std::mem::take(&mut self.unwritten);
        let kept = items.len();
        let result = with_db(&self.db, move |conn| {
            for notice in notices {
                let facts = |id: &str| facts(conn, &config, id, &notice, now);
                let email = render::email(&notice, &facts, now);
                let composed = match &from {
                    Some(from) => match crate::notify::compose(from, &email) {
                        Ok(composed) => Some(composed),
                        Err(e) => {
                            error!(subject = %email.subject, error = %e, "Cannot compose an alert.");
                            None
                        }
                    },
                    None => {
                        warn!(
                            to = %email.to.join(", "),
                            body = %email.text,
                            "{} (no [smtp]: logged only)",
                            email.subject
                        );
                        None
                    }
                };
                items.push(Unwritten {
                    notice,
                    composed,
                    sent: false,
                });
            }
            let written = persist(conn, &items, now);
            Ok((items, written.err()))
        })
        .await;
        self.stats.notices.fetch_add(count, Ordering::Relaxed);
        let (mut items, failure) = match result {
            Ok(done) => done,
            Err(e) => {
                error!(error = %e, "Cannot write alerts to the outbox; they are lost.");
                return;
            }
        };
        match failure {
            None => {
                if kept > 0 {
                    info!(
                        alerts = kept,
                        "The database takes writes again: alerts kept meanwhile are in the outbox."
                    );
                }
                if let Some(mail) = &self.mail
                    && items.iter().any(|i| i.composed.is_some() && !i.sent)
                {
                    mail.wake.notify_one();
                }
            }
            Some(e) => {
                if kept == 0 {
                    error!(
                        error = %e,
                        alerts = items.len(),
                        "Cannot write alerts to the outbox: sending them directly and keeping \
                         them in memory until the database takes writes again."
                    );
                }
                if let Some(mail) = &self.mail {
                    send_directly(&mail.mailer, &mut items).await;
                }
                self.unwritten = items;
            }
        }
    }
}

/// Sends alerts the outbox could not take, straight to the SMTP server; each one once.
async fn send_directly(mailer: &crate::notify::Mailer, items: &mut [Unwritten]) {
    for item in items.iter_mut().filter(|i| !i.sent) {
        let Some(composed) = &item.composed else {
            continue;
        };
        match mailer
            .send(&composed.sender, &composed.recipients, &composed.bytes)
            .await
        {
            Ok(()) => {
                item.sent = true;
                info!(subject = %composed.subject, "Alert sent directly (the outbox is unavailable).");
            }
            Err(e) => warn!(
                subject = %composed.subject,
                error = %e.message,
                "Cannot send an alert directly either; it stays in memory and is tried again."
            ),
        }
    }
}

/// Writes alerts to the outbox (those already sent directly as sent) with what they told.
fn persist(conn: &mut Connection, items: &[Unwritten], now: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for item in items {
        if let Some(composed) = &item.composed {
            let id = outbox::enqueue(&tx, now, MailKind::Alert, composed)?;
            if item.sent {
                outbox::mark_sent(&tx, id, 1, now)?;
            }
        }
        record_told(&tx, &item.notice, now)?;
    }
    tx.commit()
}

/// How often budgets are checked: every minute, or at half the shortest burn-rule window.
fn budget_every(config: &Config) -> Duration {
    config
        .routes
        .iter()
        .flat_map(|r| r.burn_rules.iter().map(|rule| rule.short / 2))
        .fold(BUDGET_EVERY, Duration::min)
        .max(Duration::from_millis(100))
}

/// The longest look-back any check needs: the longest burn-rule window, at least a day.
fn longest_window(config: &Config) -> i64 {
    config
        .routes
        .iter()
        .flat_map(|r| r.burn_rules.iter().map(|rule| rule.long.as_millis() as i64))
        .max()
        .unwrap_or(0)
        .max(86_400_000)
}

fn load_told(conn: &Connection, service: &str, incident: OpenIncident) -> rusqlite::Result<Told> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT down_sent_ms, escalated_ms, reminded_ms FROM alert_incident
             WHERE service = ?1 AND start_ms = ?2",
            params![service, incident.start_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (down_sent_ms, escalated_ms, reminded_ms) = row.unwrap_or_default();
    Ok(Told {
        start_ms: incident.start_ms,
        failure: incident.first_failure,
        down_sent_ms,
        escalated_ms,
        reminded_ms,
    })
}

/// Services with an incident open or ended since `since_ms`, with when they were last down.
fn recent_downtime(conn: &Connection, since_ms: i64) -> rusqlite::Result<HashMap<String, i64>> {
    let mut s = conn.prepare(
        "SELECT s.id, MAX(COALESCE(i.end_ms, 9223372036854775807)) FROM incident i
         JOIN service s ON s.num = i.service
         WHERE i.end_ms IS NULL OR i.end_ms >= ?1 GROUP BY s.id",
    )?;
    let rows = s.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Records what a message told about incidents (in the transaction that queues it).
fn record_told(tx: &rusqlite::Transaction<'_>, notice: &Notice, now: i64) -> rusqlite::Result<()> {
    for item in &notice.items {
        let (start_ms, column) = match &item.what {
            What::Down { start_ms, .. } => (*start_ms, "down_sent_ms"),
            What::Escalated { start_ms, .. } => (*start_ms, "escalated_ms"),
            What::StillDown { start_ms, .. } => (*start_ms, "reminded_ms"),
            What::Recovered { start_ms, .. } => {
                tx.execute(
                    "DELETE FROM alert_incident WHERE service = ?1 AND start_ms = ?2",
                    params![item.service, start_ms],
                )?;
                continue;
            }
            _ => continue,
        };
        tx.execute(
            &format!(
                "INSERT INTO alert_incident (service, start_ms, {column}) VALUES (?1, ?2, ?3)
                 ON CONFLICT (service, start_ms) DO UPDATE SET {column} = excluded.{column}"
            ),
            params![item.service, start_ms, now],
        )?;
    }
    Ok(())
}

/// What a message says about a service besides the item: names, zone, target, and for DOWN
/// the month's error budget.
fn facts(
    conn: &Connection,
    config: &Config,
    id: &str,
    notice: &Notice,
    now: i64,
) -> Option<ServiceFacts> {
    let service = config.service(id)?;
    let contract = config.contract(&service.contract)?;
    let budget = (notice.kind == policy::Kind::Down)
        .then(|| report::month_budget(conn, config, service, now).ok())
        .flatten()
        .map(|m| m.budget);
    Some(ServiceFacts {
        name: service.name.clone(),
        client: contract.client.clone(),
        zone: contract.timezone.zone.clone(),
        zone_name: contract.timezone.name.clone(),
        target: service.probe.target(),
        budget,
    })
}

/// New budget notices for a service: burn-rate rules that started firing, and the month's
/// budget dropping below the contract's `at_risk_below`. Flags keep each to one notice.
fn budget_notices(
    conn: &Connection,
    config: &Config,
    id: &str,
    now: i64,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let (Some(service), Some(route)) = (
        config.service(id),
        config.service(id).and_then(|s| route_of(config, s)),
    ) else {
        return Ok(out);
    };
    let contract = config.contract(&service.contract).expect("validated");
    let target = contract.target;
    // A rule judges a look-back window only once monitoring covers all of it: a service probed
    // for a minute has no meaningful burn rate over an hour.
    let first_ms: Option<i64> = conn
        .query_row("SELECT first_ms FROM service WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    let monitored_since = first_ms.unwrap_or(i64::MAX);
    for severity in [Severity::Page, Severity::Ticket] {
        let rules: Vec<_> = route
            .burn_rules
            .iter()
            .filter(|r| r.severity == severity)
            .filter(|r| monitored_since <= now - r.long.as_millis() as i64)
            .copied()
            .collect();
        if rules.is_empty() {
            continue;
        }
        let mut windows = HashMap::new();
        let mut window_of = |length: Duration| -> burn::Window {
            *windows.entry(length).or_insert_with(|| {
                let period = Period {
                    from_ms: now - length.as_millis() as i64,
                    to_ms: now,
                };
                report::availability(conn, config, service, period, now)
                    .map(|n| burn::Window {
                        downtime_ms: n.downtime_ms,
                        measured_ms: n.measured_ms,
                    })
                    .unwrap_or(burn::Window {
                        downtime_ms: 0,
                        measured_ms: 0,
                    })
            })
        };
        let firing = burn::firing(&rules, target, &mut window_of).copied();
        let flag = match severity {
            Severity::Page => "burn:page",
            Severity::Ticket => "burn:ticket",
        };
        match firing {
            Some(rule) => {
                if set_flag(conn, id, flag, now)? {
                    let long = window_of(rule.long);
                    let short = window_of(rule.short);
                    let rate = |w| burn::rate(w, target).unwrap_or(f64::INFINITY);
                    out.push((
                        id.to_string(),
                        format!(
                            "the error budget burns at {:.1}x over the last {} and {:.1}x over the \
                             last {} ({} rule: {:.1}x over {} confirmed by {})",
                            rate(long),
                            human_duration(rule.long.as_millis() as i64),
                            rate(short),
                            human_duration(rule.short.as_millis() as i64),
                            if severity == Severity::Page {
                                "page"
                            } else {
                                "ticket"
                            },
                            rule.rate_tenths as f64 / 10.0,
                            human_duration(rule.long.as_millis() as i64),
                            human_duration(rule.short.as_millis() as i64),
                        ),
                    ));
                }
            }
            None => clear_flag(conn, id, flag)?,
        }
    }
    let month = report::month_budget(conn, config, service, now)?;
    let at_risk = contract.at_risk_below;
    if at_risk.num() > 0 && month.budget.allowed_ms > 0 {
        // remaining / allowed < num / den, on integers.
        let (num, den) = (at_risk.num() as i128, at_risk.den() as i128);
        let below =
            (month.budget.remaining_ms as i128) * den < num * month.budget.allowed_ms as i128;
        let flag = format!("at_risk:{}", month.month);
        if below && set_flag(conn, id, &flag, now)? {
            let share = month.budget.remaining_share().unwrap_or(0.0);
            out.push((
                id.to_string(),
                format!(
                    "{:.0}% of the error budget for {} is left ({} of {}; the alert threshold is \
                     {}); availability so far {}",
                    (share * 100.0).floor().max(0.0),
                    month.month,
                    human_duration(month.budget.remaining_ms),
                    human_duration(month.budget.allowed_ms),
                    at_risk,
                    month
                        .numbers
                        .availability()
                        .map_or("n/a".to_string(), |a| format!("{:.3}%", a * 100.0)),
                ),
            ));
        }
    }
    // One line per service, whatever fired.
    let summaries: Vec<String> = out.into_iter().map(|(_, summary)| summary).collect();
    Ok(if summaries.is_empty() {
        Vec::new()
    } else {
        vec![(id.to_string(), summaries.join("; also "))]
    })
}

/// Sets a flag; true if it was not set.
fn set_flag(conn: &Connection, service: &str, flag: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO alert_flag (service, flag, since_ms) VALUES (?1, ?2, ?3)",
        params![service, flag, now],
    )? > 0)
}

fn clear_flag(conn: &Connection, service: &str, flag: &str) -> rusqlite::Result<()> {
    if conn.execute(
        "DELETE FROM alert_flag WHERE service = ?1 AND flag = ?2",
        params![service, flag],
    )? > 0
    {
        info!(service, flag, "Budget alert cleared.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_inherited_overridden_and_muted() {
        let text = r#"
[[route]]
id = "oncall"
email = ["o@x.example"]

[[route]]
id = "quiet"
email = ["q@x.example"]
alert = false

[[contract]]
id = "c"
client = "C"
target = "99.9%"
alert = "oncall"

[[contract]]
id = "d"
client = "D"
target = "99.9%"

[[service]]
id = "inherits"
contract = "c"
tcp = "127.0.0.1:1"

[[service]]
id = "muted"
contract = "c"
tcp = "127.0.0.1:1"
alert = false

[[service]]
id = "muted-route"
contract = "c"
tcp = "127.0.0.1:1"
alert = "quiet"

[[service]]
id = "no-route"
contract = "d"
tcp = "127.0.0.1:1"

[[service]]
id = "own-route"
contract = "d"
tcp = "127.0.0.1:1"
alert = "oncall"
"#;
        let config = crate::config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let route =
            |id: &str| route_of(&config, config.service(id).unwrap()).map(|r| r.id.as_str());
        assert_eq!(route("inherits"), Some("oncall"));
        assert_eq!(route("muted"), None);
        assert_eq!(route("muted-route"), None);
        assert_eq!(route("no-route"), None);
        assert_eq!(route("own-route"), Some("oncall"));
    }
}
