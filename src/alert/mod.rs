//! Alerting: the task that feeds incident transitions and acknowledgements to the pure
//! `policy`, checks error-budget burn rates and the month's budget once a minute, sends the
//! daily digests, and writes the resulting e-mails (or, without `[smtp]`, log lines) and channel
//! messages to the outbox, recording what was told so a restart neither repeats nor forgets an
//! alert.

pub mod budget;
pub mod cert;
pub mod digest;
pub mod policy;
pub mod render;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::notify::{HttpChannels, MailOut};
use crate::probe::Failure;
use crate::report::{self, Period};
use crate::sla::burn::{self, Severity};
use crate::sla::tracker::OpenIncident;
use crate::store::alerts::{self, QueuedAlert, ToldOf};
use crate::store::db::{Conn, DbError};
use crate::store::outbox::ChannelMessage;
use crate::store::{SharedConnection, history, with_db};
use crate::text::Chain;
use budget::BurnVerdict;
use policy::{MaintenanceCalendar, Notice, Policy, Recipient, RouteRules, Told, Watched, What};
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
    /// A probe saw a certificate expiring within `cert_expiry_warn`.
    CertExpiring {
        service: String,
        not_after_ms: i64,
    },
}

/// Where service tasks send transitions. Never blocks.
#[derive(Clone)]
pub struct AlertSender(mpsc::UnboundedSender<AlertInput>);

impl AlertSender {
    pub fn send(&self, transition: Transition) {
        let _ = self.0.send(AlertInput::Transition(transition));
    }

    /// A service's certificate expires soon (told once per certificate, again on its last day).
    pub fn cert_expiring(&self, service: &str, not_after_ms: i64) {
        let _ = self.0.send(AlertInput::CertExpiring {
            service: service.to_string(),
            not_after_ms,
        });
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

/// How often alerts kept in memory are written to the outbox again.
const UNWRITTEN_RETRY: Duration = Duration::from_secs(5);

/// How often the store is read for acknowledgements (`slaprobe ack` runs in another process).
const ACK_POLL: Duration = Duration::from_secs(1);

/// An alert decided but not yet in the outbox because the database refused the write. It is
/// sent directly meanwhile, and written (as sent, or pending if sending failed too) with what
/// it told once the database takes writes again.
struct Unwritten {
    notice: Notice,
    composed: Option<crate::notify::Composed>,
    sent: bool,
    /// One message per channel the notice goes to, and whether it was sent directly.
    channels: Vec<(ChannelMessage, bool)>,
}

/// The HTTP channels' sender and the delivery task to wake when messages are queued.
#[derive(Clone)]
pub struct Outlet {
    pub channels: Arc<HttpChannels>,
    pub wake: Arc<tokio::sync::Notify>,
}

/// Maintenance windows from the config.
pub struct ConfigCalendar(pub Arc<Config>);

impl MaintenanceCalendar for ConfigCalendar {
    fn maintenance_until(&self, service: &str, at_ms: i64) -> Option<i64> {
        const DAY: i64 = 86_400_000;
        let service = self.0.service(service)?;
        let windows = crate::sla::maintenance::windows(
            &self.0.maintenance,
            &service.id,
            &service.contract,
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
    /// The channels beside e-mail: written to the outbox (and their deliverer woken), or sent
    /// directly when the outbox is unavailable.
    http: Outlet,
    clock: Clock,
    policy: Policy,
    /// Per service: when it was last down (`i64::MAX` while down), for the budget checks.
    last_down: HashMap<String, i64>,
    /// Every configured service's open incident (watched or not), for a reload that starts
    /// watching one.
    open: HashMap<String, OpenIncident>,
    /// Alerts the outbox could not take yet, oldest first.
    unwritten: Vec<Unwritten>,
    /// Certificates seen expiring since the last look: (service, notAfter ms).
    certs: Vec<(String, i64)>,
    stats: Arc<AlertStats>,
}

impl AlertTask {
    /// Sets up alerting for `config`; `open` lists each service's open incident at start.
    pub fn new(
        config: Arc<Config>,
        db: SharedConnection,
        mail: Option<MailOut>,
        http: Outlet,
        clock: Clock,
        open: &HashMap<String, Option<OpenIncident>>,
    ) -> Result<(AlertTask, AlertSender, mpsc::UnboundedReceiver<AlertInput>), DbError> {
        let now = clock.now_ms();
        let last_down = {
            let db = db.lock().unwrap_or_else(|p| p.into_inner());
            alerts::recent_downtime(db.conn(), now - longest_window(&config))?
        };
        let mut task = AlertTask {
            config: config.clone(),
            db,
            mail,
            http,
            clock,
            policy: Policy::new(),
            last_down,
            open: HashMap::new(),
            unwritten: Vec::new(),
            certs: Vec::new(),
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
    ) -> Result<(), DbError> {
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
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        for service in &config.services {
            let Some(route) = config.route_of(service) else {
                self.policy.unwatch(&service.id);
                continue;
            };
            let contract = config.contract_of(service).in_force(now);
            let watched = Watched {
                service: service.id.clone(),
                contract: service.contract.clone(),
                route: routes[route.id.as_str()].clone(),
                targets: config.targets_of(service, &contract),
            };
            if !self.policy.rewatch(watched.clone()) {
                let told = match self.open.get(&service.id) {
                    Some(incident) => Some(told(db.conn(), &service.id, incident.clone())?),
                    None => None,
                };
                self.policy.watch(watched, told);
            }
        }
        drop(db);
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
        let mut next_ack_check = self.clock.now_ms();
        let mut digests = digest::Digests::default();
        loop {
            let calendar = ConfigCalendar(self.config.clone());
            let now = self.clock.now_ms();
            let due = self
                .policy
                .next_due(now, &calendar)
                .unwrap_or(i64::MAX)
                .min(next_budget_check)
                .min(next_ack_check)
                .min(digests.next_due(&self.config, now));
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
            if now >= next_ack_check && !stopping {
                self.check_acks(now).await;
                next_ack_check = now + ACK_POLL.as_millis() as i64;
            }
            let calendar = ConfigCalendar(self.config.clone());
            self.policy.tick(now, &calendar);
            if !self.certs.is_empty() && !stopping {
                self.check_certs(now).await;
            }
            if now >= next_budget_check && !stopping {
                self.check_budgets(now).await;
                next_budget_check = now + budget_every(&self.config).as_millis() as i64;
            }
            let mut notices = self.policy.take_due(now, stopping);
            if !stopping {
                notices.extend(digests.due(&self.db, &self.config, now).await);
            }
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
            AlertInput::CertExpiring {
                service,
                not_after_ms,
            } => {
                if !self.certs.contains(&(service.clone(), not_after_ms)) {
                    self.certs.push((service, not_after_ms));
                }
                return;
            }
            AlertInput::Reload { config, added } => {
                // Reading what was told blocks on the database: on PostgreSQL its client may
                // not block an async thread, so the worker steps aside for it.
                let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                });
                let configured = if multi_thread {
                    tokio::task::block_in_place(|| self.configure(config, added))
                } else {
                    self.configure(config, added)
                };
                if let Err(e) = configured {
                    error!(error = %Chain(&e), "Cannot read what was told of open incidents; alerts for \
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

    /// Acknowledgements recorded since the last look (by `slaprobe ack` or the API): each
    /// stops its incident's escalation and reminders and tells those already told, once.
    async fn check_acks(&mut self, now: i64) {
        let found = with_db(&self.db, |db| history::open_acks(db.conn())).await;
        let acks = match found {
            Ok(acks) => acks,
            Err(e) => {
                error!(error = %Chain(&e), "Cannot read acknowledgements.");
                return;
            }
        };
        for open in acks {
            let known = self
                .policy
                .told(&open.service)
                .is_some_and(|t| t.start_ms == open.start_ms && t.ack.is_some());
            if known || !self.policy.is_watched(&open.service) {
                continue;
            }
            if self
                .policy
                .acknowledged(now, &open.service, open.start_ms, open.ack.clone())
            {
                info!(
                    service = %open.service,
                    by = open.ack.by.as_deref().unwrap_or("(not named)"),
                    "Incident acknowledged: no further escalation or reminders."
                );
            }
        }
    }

    /// Certificates seen expiring: one CERT EXPIRING per certificate, again on its last day
    /// (flags in the store keep each to one notice across restarts).
    async fn check_certs(&mut self, now: i64) {
        let certs: Vec<(String, i64)> = std::mem::take(&mut self.certs)
            .into_iter()
            .filter(|(s, _)| self.policy.is_watched(s))
            .collect();
        if certs.is_empty() {
            return;
        }
        let due = with_db(&self.db, move |conn| {
            let mut due = Vec::new();
            for (service, not_after_ms) in certs {
                if alerts::set_flag(conn.conn(), &service, &cert::flag(not_after_ms, now), now)? {
                    due.push((service, cert::summary(not_after_ms, now)));
                }
            }
            Ok::<_, DbError>(due)
        })
        .await;
        match due {
            Ok(due) => {
                for (service, summary) in due {
                    self.policy.certificate(now, &service, summary);
                }
            }
            Err(e) => error!(error = %Chain(&e), "Cannot record certificate notices."),
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
        let found = with_db(&self.db, move |db| {
            let conn = db.conn();
            let mut notices = Vec::new();
            for id in candidates {
                notices.extend(budget_notice(conn, &config, &id, now)?);
            }
            Ok::<_, DbError>(notices)
        })
        .await;
        match found {
            Ok(found) => {
                for (service, summary) in found {
                    self.policy.budget(now, &service, summary);
                }
            }
            Err(e) => error!(error = %Chain(&e), "Cannot check error budgets."),
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
        let result = with_db(&self.db, move |db| {
            let conn = db.conn();
            for notice in notices {
                items.push(render_notice(conn, &config, from.as_ref(), notice, now));
            }
            let told: Vec<Vec<ToldOf>> = items.iter().map(|i| told_of(&i.notice)).collect();
            let channels: Vec<Vec<(&ChannelMessage, bool)>> = items
                .iter()
                .map(|i| i.channels.iter().map(|(m, sent)| (m, *sent)).collect())
                .collect();
            let queued: Vec<QueuedAlert<'_>> = items
                .iter()
                .zip(&told)
                .zip(&channels)
                .map(|((item, told), channels)| QueuedAlert {
                    message: item.composed.as_ref(),
                    sent: item.sent,
                    channels,
                    told,
                })
                .collect();
            let written = alerts::queue(db.conn(), &queued, now);
            drop(queued);
            drop(channels);
            Ok::<_, DbError>((items, written.err()))
        })
        .await;
        self.stats.notices.fetch_add(count, Ordering::Relaxed);
        let (mut items, failure) = match result {
            Ok(done) => done,
            Err(e) => {
                error!(error = %Chain(&e), "Cannot write alerts to the outbox; they are lost.");
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
                if items
                    .iter()
                    .any(|i| i.channels.iter().any(|(_, sent)| !sent))
                {
                    self.http.wake.notify_one();
                }
            }
            Some(e) => {
                if kept == 0 {
                    error!(
                        error = %Chain(&e),
                        alerts = items.len(),
                        "Cannot write alerts to the outbox: sending them directly and keeping \
                         them in memory until the database takes writes again."
                    );
                }
                let mailer = self.mail.as_ref().map(|m| m.mailer.clone());
                send_directly(mailer.as_deref(), &self.http.channels, &mut items, now).await;
                self.unwritten = items;
            }
        }
    }
}

/// An e-mail (composed, or logged without `[smtp]`) and one message per channel for `notice`.
fn render_notice(
    conn: Conn<'_>,
    config: &Config,
    from: Option<&lettre::message::Mailbox>,
    notice: Notice,
    now: i64,
) -> Unwritten {
    let channels: Vec<(ChannelMessage, bool)> = notice
        .to
        .iter()
        .filter_map(|r| match r {
            Recipient::Channel(channel) => {
                Some((render::channel_message(&notice, channel, now), false))
            }
            Recipient::Email(_) => None,
        })
        .collect();
    let mut composed = None;
    if !render::email_recipients(&notice).is_empty() {
        let facts = |id: &str| facts(conn, config, id, &notice, now);
        let email = render::email(&notice, &facts, now);
        match from {
            Some(from) => match crate::notify::compose(from, &email) {
                Ok(c) => composed = Some(c),
                Err(e) => {
                    error!(subject = %email.subject, error = %Chain(&e), "Cannot compose an alert.")
                }
            },
            None => warn!(
                to = %email.to.join(", "),
                body = %email.text,
                "{} (no [smtp]: logged only)",
                email.subject
            ),
        }
    }
    Unwritten {
        notice,
        composed,
        sent: false,
        channels,
    }
}

/// Sends alerts the outbox could not take, straight to the SMTP server and the channels; each
/// one once.
async fn send_directly(
    mailer: Option<&crate::notify::Mailer>,
    channels: &HttpChannels,
    items: &mut [Unwritten],
    now: i64,
) {
    for item in items.iter_mut() {
        for (message, sent) in item.channels.iter_mut().filter(|(_, sent)| !sent) {
            match channels
                .send(&message.destination, &message.body, now)
                .await
            {
                Ok(()) => {
                    *sent = true;
                    info!(subject = %message.subject, channel = message.channel, "Alert sent directly (the outbox is unavailable).");
                }
                Err(e) => warn!(
                    subject = %message.subject,
                    error = %e.message,
                    "Cannot send an alert directly either; it stays in memory and is tried again."
                ),
            }
        }
    }
    let Some(mailer) = mailer else {
        return;
    };
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

/// What was told of an open incident, as the policy resumes it.
fn told(conn: Conn<'_>, service: &str, incident: OpenIncident) -> Result<Told, DbError> {
    let times = alerts::told_times(conn, service, incident.start_ms)?;
    // An acknowledgement not yet announced is left for `check_acks` to find and announce.
    let ack = history::ack_of(conn, service, incident.start_ms)?.filter(|_| times.ack_told);
    Ok(Told {
        down_sent_ms: times.down_sent_ms,
        escalated: times.escalation_steps,
        reminded_ms: times.reminded_ms,
        ack,
        ack_told: times.ack_told,
        response_overdue_told: times.response_overdue,
        restore_overdue_told: times.restore_overdue,
        ..Told::new(incident.start_ms, incident.first_failure)
    })
}

/// What a notice tells of incidents, as the store records it.
fn told_of(notice: &Notice) -> Vec<ToldOf> {
    notice
        .items
        .iter()
        .filter_map(|item| {
            let (start_ms, told) = match &item.what {
                What::Down { start_ms, .. } => (*start_ms, alerts::Told::Down),
                What::Escalated { start_ms, step, .. } => {
                    (*start_ms, alerts::Told::Escalated(*step))
                }
                What::StillDown { start_ms, .. } => (*start_ms, alerts::Told::Reminded),
                What::Recovered { start_ms, .. } => (*start_ms, alerts::Told::Recovered),
                What::Acknowledged { start_ms, .. } => (*start_ms, alerts::Told::Acknowledged),
                What::ResponseOverdue { start_ms, .. } => {
                    (*start_ms, alerts::Told::ResponseOverdue)
                }
                What::RestoreOverdue { start_ms, .. } => (*start_ms, alerts::Told::RestoreOverdue),
                _ => return None,
            };
            Some(ToldOf {
                service: item.service.clone(),
                start_ms,
                told,
            })
        })
        .collect()
}

/// What a message says about a service besides the item: names, zone, target, and for DOWN
/// the month's error budget.
fn facts(
    conn: Conn<'_>,
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
        name: service.name().to_string(),
        client: contract.client.clone(),
        zone: contract.timezone.zone.clone(),
        zone_name: contract.timezone.name.clone(),
        target: service.probe.target(),
        budget,
    })
}

/// A new budget notice for a service, if any: burn-rate rules that started firing, and the
/// month's budget dropping below the contract's `at_risk_below`, in one line. Flags in the
/// store keep each to one notice.
fn budget_notice(
    conn: Conn<'_>,
    config: &Config,
    id: &str,
    now: i64,
) -> Result<Option<(String, String)>, DbError> {
    let Some(service) = config.service(id) else {
        return Ok(None);
    };
    let Some(route) = config.route_of(service) else {
        return Ok(None);
    };
    let contract = config.contract_of(service);
    let monitored_since = history::first_outcome_ms(conn, id)?.unwrap_or(i64::MAX);
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
    let mut summaries = Vec::new();
    for severity in [Severity::Page, Severity::Ticket] {
        let flag = budget::burn_flag(severity);
        let verdict = budget::burn_verdict(
            &route.burn_rules,
            severity,
            contract.target,
            monitored_since,
            now,
            &mut window_of,
        );
        match verdict {
            BurnVerdict::Unjudged => {}
            BurnVerdict::Quiet => {
                if alerts::clear_flag(conn, id, flag)? {
                    info!(service = id, flag, "Budget alert cleared.");
                }
            }
            BurnVerdict::Firing(firing) => {
                if alerts::set_flag(conn, id, flag, now)? {
                    summaries.push(budget::burn_summary(&firing, contract.target));
                }
            }
        }
    }
    let month = report::month_budget(conn, config, service, now)?;
    if month.budget.is_below_share(contract.at_risk_below)
        && alerts::set_flag(conn, id, &budget::at_risk_flag(&month.month), now)?
    {
        summaries.push(budget::at_risk_summary(&month, contract.at_risk_below));
    }
    Ok((!summaries.is_empty()).then(|| (id.to_string(), summaries.join("; also "))))
}
