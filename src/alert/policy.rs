//! The alert policy: which notices go to whom and when. Pure: transitions and the time come in
//! as parameters, notices come out; no I/O, no clock.
//!
//! Per service: DOWN when an incident opens, RECOVERED when it closes (only if DOWN was sent),
//! ESCALATED once per step of the chain `after` the DOWN, STILL DOWN every `repeat` — neither
//! once the incident is acknowledged, which sends ACKNOWLEDGED to those already told; RESPONSE
//! OVERDUE when `respond_within` passes unacknowledged and RESTORE OVERDUE when
//! `restore_within` passes, once each (DESIGN.md §6.2); nothing while a
//! maintenance window is on (unless the route says otherwise: a DOWN held back goes out when the
//! window ends and the service is still down); more than `flap_transitions` transitions within
//! `flap_window` send one FLAPPING notice and then nothing until a whole window passes quietly.
//! Items for the same recipients and kind within `group_window` become one message.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::config::{Channel, Route};
use crate::probe::Failure;
pub use crate::sla::response::Ack;
use crate::sla::response::Targets;

/// Who a notice goes to: an e-mail address or a channel. A notice's recipients are sorted, so
/// that the same set gathers into one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    Email(String),
    Channel(Channel),
}

impl Recipient {
    /// Addresses as e-mail recipients.
    pub fn emails(addresses: &[String]) -> impl Iterator<Item = Recipient> + '_ {
        addresses.iter().cloned().map(Recipient::Email)
    }
}

/// A step of the escalation chain, in milliseconds after the DOWN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRules {
    pub after_ms: i64,
    pub to: Vec<Recipient>,
}

/// A route's rules in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRules {
    pub id: String,
    /// The first line: e-mail addresses and channels.
    pub to: Vec<Recipient>,
    /// The escalation chain, by `after_ms`.
    pub escalate: Vec<StepRules>,
    pub repeat_ms: Option<i64>,
    pub group_window_ms: i64,
    pub flap_transitions: usize,
    pub flap_window_ms: i64,
    pub maintenance_alerts: bool,
}

impl RouteRules {
    pub fn of(route: &Route) -> RouteRules {
        let ms = |d: std::time::Duration| d.as_millis() as i64;
        let to = |email: &[String], channels: &[Channel]| -> Vec<Recipient> {
            Recipient::emails(email)
                .chain(channels.iter().cloned().map(Recipient::Channel))
                .collect()
        };
        RouteRules {
            id: route.id.clone(),
            to: to(&route.email, &route.channels),
            escalate: route
                .escalate
                .iter()
                .map(|step| StepRules {
                    after_ms: ms(step.after),
                    to: to(&step.email, &step.channels),
                })
                .collect(),
            repeat_ms: route.repeat.map(ms),
            group_window_ms: ms(route.group_window),
            flap_transitions: route.flap_transitions as usize,
            flap_window_ms: ms(route.flap_window),
            maintenance_alerts: route.maintenance_alerts,
        }
    }
}

/// Answers whether a service is inside a maintenance window at a time, and until when.
pub trait MaintenanceCalendar {
    fn maintenance_until(&self, service: &str, at_ms: i64) -> Option<i64>;
}

/// The subject line's word; one message carries one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Down,
    Recovered,
    Escalated,
    StillDown,
    Flapping,
    AtRisk,
    CertExpiring,
    Acknowledged,
    ResponseOverdue,
    RestoreOverdue,
    /// The daily digest of a route (not decided here: the alerting task writes it).
    Digest,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Down => "DOWN",
            Kind::Recovered => "RECOVERED",
            Kind::Escalated => "ESCALATED",
            Kind::StillDown => "STILL DOWN",
            Kind::Flapping => "FLAPPING",
            Kind::AtRisk => "SLA AT RISK",
            Kind::CertExpiring => "CERT EXPIRING",
            Kind::Acknowledged => "ACKNOWLEDGED",
            Kind::ResponseOverdue => "RESPONSE OVERDUE",
            Kind::RestoreOverdue => "RESTORE OVERDUE",
            Kind::Digest => "DAILY DIGEST",
        }
    }

    /// The `event` of a webhook's JSON (DESIGN.md §6.2).
    pub fn event(self) -> &'static str {
        match self {
            Kind::Down => "down",
            Kind::Recovered => "recovered",
            Kind::Escalated => "escalated",
            Kind::StillDown => "still_down",
            Kind::Flapping => "flapping",
            Kind::AtRisk => "at_risk",
            Kind::CertExpiring => "cert_expiring",
            Kind::Acknowledged => "acknowledged",
            Kind::ResponseOverdue => "response_overdue",
            Kind::RestoreOverdue => "restore_overdue",
            Kind::Digest => "digest",
        }
    }
}

/// Why a DOWN or RECOVERED is not the plain case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The outage began inside a maintenance window that has now ended.
    AfterMaintenance,
    /// The service stopped flapping and is down.
    StoppedFlapping,
}

/// What one line of a notice says about one service.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Down {
        start_ms: i64,
        failure: Failure,
        note: Option<Note>,
    },
    Recovered {
        start_ms: i64,
        end_ms: i64,
    },
    /// Stopped flapping and is up.
    Stable {
        since_ms: i64,
    },
    /// Step `step` (from 0) of the escalation chain.
    Escalated {
        start_ms: i64,
        failure: Failure,
        step: usize,
    },
    StillDown {
        start_ms: i64,
        failure: Failure,
    },
    Flapping {
        transitions: usize,
        window_ms: i64,
    },
    /// A burn-rate rule fires, or the month's budget runs low; the text is the alerting task's.
    Budget {
        summary: String,
    },
    /// A certificate near expiry (the service is up).
    Certificate {
        summary: String,
    },
    Acknowledged {
        start_ms: i64,
        ack: Ack,
    },
    /// `respond_within` passed without an acknowledgement.
    ResponseOverdue {
        start_ms: i64,
        failure: Failure,
        limit_ms: i64,
    },
    /// `restore_within` passed with the service still down.
    RestoreOverdue {
        start_ms: i64,
        failure: Failure,
        limit_ms: i64,
    },
    /// A route's daily digest of `day` (`YYYY-MM-DD`); the item's `service` is empty and its
    /// `contract` is the route.
    Digest {
        day: String,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub service: String,
    pub contract: String,
    pub what: What,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: Kind,
    /// Sorted, without duplicates.
    pub to: Vec<Recipient>,
    pub items: Vec<Item>,
}

/// What was already told about an incident that is still open (from the database at start).
#[derive(Debug, Clone, PartialEq)]
pub struct Told {
    pub start_ms: i64,
    pub failure: Failure,
    pub down_sent_ms: Option<i64>,
    /// How many steps of the escalation chain were sent.
    pub escalated: usize,
    pub reminded_ms: Option<i64>,
    pub ack: Option<Ack>,
    /// Whether ACKNOWLEDGED was sent (or there was nobody to tell).
    pub ack_told: bool,
    pub response_overdue_told: bool,
    pub restore_overdue_told: bool,
}

impl Told {
    /// A new incident: nothing told yet.
    pub fn new(start_ms: i64, failure: Failure) -> Told {
        Told {
            start_ms,
            failure,
            down_sent_ms: None,
            escalated: 0,
            reminded_ms: None,
            ack: None,
            ack_told: false,
            response_overdue_told: false,
            restore_overdue_told: false,
        }
    }
}

/// A service the policy alerts for (muted services are not watched).
#[derive(Debug, Clone)]
pub struct Watched {
    pub service: String,
    pub contract: String,
    pub route: Arc<RouteRules>,
    /// The response targets in force (RESPONSE and RESTORE OVERDUE).
    pub targets: Targets,
}

struct ServiceState {
    watched: Watched,
    incident: Option<Told>,
    transitions: VecDeque<i64>,
    flapping: bool,
}

impl ServiceState {
    /// The route's first line and every escalation step sent for the open incident.
    fn recipients(&self) -> Vec<Recipient> {
        let route = &self.watched.route;
        let steps = self.incident.as_ref().map_or(0, |i| i.escalated);
        let mut to = route.to.clone();
        for step in route.escalate.iter().take(steps) {
            to.extend(step.to.iter().cloned());
        }
        to
    }

    fn item(&self, what: What) -> Item {
        Item {
            service: self.watched.service.clone(),
            contract: self.watched.contract.clone(),
            what,
        }
    }

    /// Counts a transition; true when it makes the service flapping.
    fn count_transition(&mut self, now_ms: i64) -> bool {
        let window = self.watched.route.flap_window_ms;
        self.transitions.push_back(now_ms);
        while self
            .transitions
            .front()
            .is_some_and(|t| *t <= now_ms - window)
        {
            self.transitions.pop_front();
        }
        !self.flapping && self.transitions.len() > self.watched.route.flap_transitions
    }

    fn muted_by_maintenance(&self, now_ms: i64, calendar: &dyn MaintenanceCalendar) -> Option<i64> {
        if self.watched.route.maintenance_alerts {
            return None;
        }
        calendar.maintenance_until(&self.watched.service, now_ms)
    }
}

struct Group {
    due_ms: i64,
    items: Vec<Item>,
}

/// The policy's state: per service, and messages gathering.
#[derive(Default)]
pub struct Policy {
    services: HashMap<String, ServiceState>,
    groups: BTreeMap<(Kind, Vec<Recipient>), Group>,
}

impl Policy {
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Starts (or replaces) watching a service; `open` is its open incident and what was told.
    pub fn watch(&mut self, watched: Watched, open: Option<Told>) {
        self.services.insert(
            watched.service.clone(),
            ServiceState {
                watched,
                incident: open,
                transitions: VecDeque::new(),
                flapping: false,
            },
        );
    }

    pub fn unwatch(&mut self, service: &str) {
        self.services.remove(service);
    }

    /// Gives a watched service a reloaded route or contract, keeping its incident, what was
    /// told and its flapping count; `false` if it was not watched.
    pub fn rewatch(&mut self, watched: Watched) -> bool {
        match self.services.get_mut(&watched.service) {
            Some(st) => {
                st.watched = watched;
                true
            }
            None => false,
        }
    }

    /// Stops watching every service `keep` turns down.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.services.retain(|id, _| keep(id));
    }

    pub fn is_watched(&self, service: &str) -> bool {
        self.services.contains_key(service)
    }

    /// An incident opened (confirmed at `now_ms`, backdated to `start_ms`).
    pub fn opened(
        &mut self,
        now_ms: i64,
        service: &str,
        start_ms: i64,
        failure: Failure,
        calendar: &dyn MaintenanceCalendar,
    ) {
        let Some(st) = self.services.get_mut(service) else {
            return;
        };
        st.incident = Some(Told::new(start_ms, failure));
        if st.count_transition(now_ms) {
            return self.start_flapping(now_ms, service);
        }
        if !st.flapping {
            self.announce_down(now_ms, service, None, calendar);
        }
    }

    /// The open incident closed at `end_ms`.
    pub fn closed(&mut self, now_ms: i64, service: &str, start_ms: i64, end_ms: i64) {
        let Some(st) = self.services.get_mut(service) else {
            return;
        };
        let to = st.recipients();
        let told = st.incident.take();
        if st.count_transition(now_ms) {
            return self.start_flapping(now_ms, service);
        }
        if st.flapping || told.is_none_or(|t| t.down_sent_ms.is_none()) {
            return;
        }
        let item = st.item(What::Recovered { start_ms, end_ms });
        let window = st.watched.route.group_window_ms;
        self.add(now_ms, Kind::Recovered, to, window, item);
    }

    /// A budget notice (burn rate or SLA at risk) for a watched service.
    pub fn budget(&mut self, now_ms: i64, service: &str, summary: String) {
        let Some(st) = self.services.get(service) else {
            return;
        };
        let item = st.item(What::Budget { summary });
        let (to, window) = (
            st.watched.route.to.clone(),
            st.watched.route.group_window_ms,
        );
        self.add(now_ms, Kind::AtRisk, to, window, item);
    }

    /// A certificate of `service` expires soon: one CERT EXPIRING notice (the caller keeps it
    /// to one per certificate and stage).
    pub fn certificate(&mut self, now_ms: i64, service: &str, summary: String) {
        let Some(st) = self.services.get(service) else {
            return;
        };
        let item = st.item(What::Certificate { summary });
        let (to, window) = (
            st.watched.route.to.clone(),
            st.watched.route.group_window_ms,
        );
        self.add(now_ms, Kind::CertExpiring, to, window, item);
    }

    /// Timers: DOWN held back by maintenance, escalation, reminders, the end of flapping.
    pub fn tick(&mut self, now_ms: i64, calendar: &dyn MaintenanceCalendar) {
        let mut ids: Vec<String> = self
            .services
            .iter()
            .filter(|(_, st)| st.incident.is_some() || st.flapping)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in ids {
            self.tick_service(now_ms, &id, calendar);
        }
    }

    fn tick_service(&mut self, now_ms: i64, id: &str, calendar: &dyn MaintenanceCalendar) {
        let st = self.services.get_mut(id).expect("listed");
        let route = st.watched.route.clone();
        if st.flapping {
            let last = st.transitions.back().copied().unwrap_or(i64::MIN);
            if now_ms - last < route.flap_window_ms {
                return;
            }
            st.flapping = false;
            st.transitions.clear();
            if st.incident.is_some() {
                return self.announce_down(now_ms, id, Some(Note::StoppedFlapping), calendar);
            }
            let item = st.item(What::Stable { since_ms: last });
            return self.add(
                now_ms,
                Kind::Recovered,
                route.to.clone(),
                route.group_window_ms,
                item,
            );
        }
        if st.muted_by_maintenance(now_ms, calendar).is_some() {
            return;
        }
        let Some(incident) = st.incident.clone() else {
            return;
        };
        let Some(down_sent) = incident.down_sent_ms else {
            return self.announce_down(now_ms, id, Some(Note::AfterMaintenance), calendar);
        };
        self.overdue(now_ms, id, &incident);
        if incident.ack.is_some() {
            return; // taken up: no escalation, no reminders
        }
        let st = self.services.get_mut(id).expect("listed");
        let due_steps = route
            .escalate
            .iter()
            .enumerate()
            .skip(incident.escalated)
            .take_while(|(_, step)| now_ms >= down_sent + step.after_ms);
        let mut fired = Vec::new();
        for (index, step) in due_steps {
            let item = st.item(What::Escalated {
                start_ms: incident.start_ms,
                failure: incident.failure.clone(),
                step: index,
            });
            fired.push((step.to.clone(), item));
            if let Some(i) = st.incident.as_mut() {
                i.escalated = index + 1;
            }
        }
        for (to, item) in fired {
            self.add(now_ms, Kind::Escalated, to, route.group_window_ms, item);
        }
        let st = self.services.get_mut(id).expect("listed");
        if let Some(repeat) = route.repeat_ms {
            let last = incident.reminded_ms.unwrap_or(down_sent).max(down_sent);
            if now_ms >= last + repeat {
                let item = st.item(What::StillDown {
                    start_ms: incident.start_ms,
                    failure: incident.failure.clone(),
                });
                let to = st.recipients();
                if let Some(i) = st.incident.as_mut() {
                    i.reminded_ms = Some(now_ms);
                }
                self.add(now_ms, Kind::StillDown, to, route.group_window_ms, item);
            }
        }
    }

    /// RESPONSE OVERDUE and RESTORE OVERDUE, once each, to everyone told so far.
    fn overdue(&mut self, now_ms: i64, id: &str, incident: &Told) {
        let st = self.services.get_mut(id).expect("listed");
        let targets = st.watched.targets;
        let window = st.watched.route.group_window_ms;
        let lasted = now_ms - incident.start_ms;
        let mut due = Vec::new();
        if let Some(limit) = targets.respond_within_ms
            && incident.ack.is_none()
            && !incident.response_overdue_told
            && lasted > limit
        {
            due.push(What::ResponseOverdue {
                start_ms: incident.start_ms,
                failure: incident.failure.clone(),
                limit_ms: limit,
            });
        }
        if let Some(limit) = targets.restore_within_ms
            && !incident.restore_overdue_told
            && lasted > limit
        {
            due.push(What::RestoreOverdue {
                start_ms: incident.start_ms,
                failure: incident.failure.clone(),
                limit_ms: limit,
            });
        }
        let mut notices = Vec::new();
        for what in due {
            let kind = match what {
                What::ResponseOverdue { .. } => Kind::ResponseOverdue,
                _ => Kind::RestoreOverdue,
            };
            if let Some(i) = st.incident.as_mut() {
                match kind {
                    Kind::ResponseOverdue => i.response_overdue_told = true,
                    _ => i.restore_overdue_told = true,
                }
            }
            notices.push((kind, st.recipients(), st.item(what)));
        }
        for (kind, to, item) in notices {
            self.add(now_ms, kind, to, window, item);
        }
    }

    /// The open incident of `service` that started at `start_ms` was acknowledged: no more
    /// escalation or reminders, and ACKNOWLEDGED to those already told. `false` when that
    /// incident is not the open one (it ended, or another one opened since).
    pub fn acknowledged(&mut self, now_ms: i64, service: &str, start_ms: i64, ack: Ack) -> bool {
        let Some(st) = self.services.get_mut(service) else {
            return false;
        };
        let Some(incident) = st.incident.as_mut().filter(|i| i.start_ms == start_ms) else {
            return false;
        };
        if incident.ack.is_some() {
            return true;
        }
        let told = incident.down_sent_ms.is_some();
        incident.ack = Some(ack.clone());
        incident.ack_told = true;
        if told && !st.flapping {
            let item = st.item(What::Acknowledged { start_ms, ack });
            let (to, window) = (st.recipients(), st.watched.route.group_window_ms);
            self.add(now_ms, Kind::Acknowledged, to, window, item);
        }
        true
    }

    /// The next time `tick` or `take_due` has something to do.
    pub fn next_due(&self, now_ms: i64, calendar: &dyn MaintenanceCalendar) -> Option<i64> {
        let groups = self.groups.values().map(|g| g.due_ms);
        let services = self.services.values().filter_map(|st| {
            let route = &st.watched.route;
            if st.flapping {
                return Some(
                    st.transitions.back().copied().unwrap_or(now_ms) + route.flap_window_ms,
                );
            }
            let incident = st.incident.as_ref()?;
            if let Some(until) = st.muted_by_maintenance(now_ms, calendar) {
                return Some(until);
            }
            let Some(down_sent) = incident.down_sent_ms else {
                return Some(now_ms);
            };
            let targets = st.watched.targets;
            let response = targets
                .respond_within_ms
                .filter(|_| incident.ack.is_none() && !incident.response_overdue_told)
                .map(|limit| incident.start_ms + limit + 1);
            let restore = targets
                .restore_within_ms
                .filter(|_| !incident.restore_overdue_told)
                .map(|limit| incident.start_ms + limit + 1);
            let overdue = response.into_iter().chain(restore);
            if incident.ack.is_some() {
                return overdue.min();
            }
            let escalate = route
                .escalate
                .get(incident.escalated)
                .map(|step| down_sent + step.after_ms);
            let remind = route
                .repeat_ms
                .map(|r| incident.reminded_ms.unwrap_or(down_sent).max(down_sent) + r);
            escalate.into_iter().chain(remind).chain(overdue).min()
        });
        groups.chain(services).min()
    }

    /// Messages whose group window has passed (all of them with `everything`, at shutdown).
    pub fn take_due(&mut self, now_ms: i64, everything: bool) -> Vec<Notice> {
        let due: Vec<(Kind, Vec<Recipient>)> = self
            .groups
            .iter()
            .filter(|(_, g)| everything || g.due_ms <= now_ms)
            .map(|(key, _)| key.clone())
            .collect();
        due.into_iter()
            .map(|key| {
                let mut group = self.groups.remove(&key).expect("listed");
                group
                    .items
                    .sort_by(|a, b| (&a.contract, &a.service).cmp(&(&b.contract, &b.service)));
                Notice {
                    kind: key.0,
                    to: key.1,
                    items: group.items,
                }
            })
            .collect()
    }

    fn announce_down(
        &mut self,
        now_ms: i64,
        id: &str,
        note: Option<Note>,
        calendar: &dyn MaintenanceCalendar,
    ) {
        let st = self.services.get_mut(id).expect("watched");
        if st.muted_by_maintenance(now_ms, calendar).is_some() {
            return; // held back; `tick` sends it when the window ends
        }
        let Some(incident) = st.incident.as_mut() else {
            return;
        };
        incident.down_sent_ms = Some(now_ms);
        incident.reminded_ms = None;
        let what = What::Down {
            start_ms: incident.start_ms,
            failure: incident.failure.clone(),
            note,
        };
        let item = st.item(what);
        let (to, window) = (st.recipients(), st.watched.route.group_window_ms);
        self.add(now_ms, Kind::Down, to, window, item);
    }

    fn start_flapping(&mut self, now_ms: i64, id: &str) {
        let st = self.services.get_mut(id).expect("watched");
        st.flapping = true;
        let item = st.item(What::Flapping {
            transitions: st.transitions.len(),
            window_ms: st.watched.route.flap_window_ms,
        });
        let (to, window) = (st.recipients(), st.watched.route.group_window_ms);
        self.add(now_ms, Kind::Flapping, to, window, item);
    }

    fn add(&mut self, now_ms: i64, kind: Kind, mut to: Vec<Recipient>, window_ms: i64, item: Item) {
        to.sort();
        to.dedup();
        if to.is_empty() {
            return;
        }
        self.groups
            .entry((kind, to))
            .or_insert_with(|| Group {
                due_ms: now_ms + window_ms,
                items: Vec::new(),
            })
            .items
            .push(item);
    }

    /// What is known of a service's open incident (for persistence and tests).
    pub fn told(&self, service: &str) -> Option<&Told> {
        self.services.get(service)?.incident.as_ref()
    }

    pub fn is_flapping(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|s| s.flapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Reason;

    const S: i64 = 1_000;
    const MIN: i64 = 60 * S;
    const T0: i64 = 1_790_000_000_000;

    struct NoMaintenance;
    impl MaintenanceCalendar for NoMaintenance {
        fn maintenance_until(&self, _: &str, _: i64) -> Option<i64> {
            None
        }
    }

    /// One window [from, to) for every service.
    struct Window(i64, i64);
    impl MaintenanceCalendar for Window {
        fn maintenance_until(&self, _: &str, at: i64) -> Option<i64> {
            (self.0 <= at && at < self.1).then_some(self.1)
        }
    }

    fn rules() -> RouteRules {
        RouteRules {
            id: "oncall".into(),
            to: vec![Recipient::Email("oncall@x.example".into())],
            escalate: vec![StepRules {
                after_ms: 30 * MIN,
                to: vec![Recipient::Email("lead@x.example".into())],
            }],
            repeat_ms: Some(60 * MIN),
            group_window_ms: 30 * S,
            flap_transitions: 6,
            flap_window_ms: 60 * MIN,
            maintenance_alerts: false,
        }
    }

    fn policy_with(n: usize, rules: RouteRules) -> Policy {
        let route = Arc::new(rules);
        let mut p = Policy::new();
        for i in 0..n {
            p.watch(
                Watched {
                    service: format!("s{i:03}"),
                    contract: "c".into(),
                    route: route.clone(),
                    targets: Targets::default(),
                },
                None,
            );
        }
        p
    }

    fn failure() -> Failure {
        Failure::new(Reason::Timeout, "no answer within 10s")
    }

    /// Runs the policy to `now` the way the alerting task does: timers, then due messages.
    fn at(
        p: &mut Policy,
        now: i64,
        cal: &dyn MaintenanceCalendar,
    ) -> Vec<(Kind, Vec<String>, usize)> {
        p.tick(now, cal);
        p.take_due(now, false)
            .into_iter()
            .map(|n| (n.kind, names(&n.to), n.items.len()))
            .collect()
    }

    /// Recipients as text: the address, or the channel's description.
    fn names(to: &[Recipient]) -> Vec<String> {
        to.iter()
            .map(|r| match r {
                Recipient::Email(a) => a.clone(),
                Recipient::Channel(c) => c.describe(),
            })
            .collect()
    }

    fn oncall() -> Vec<String> {
        vec!["oncall@x.example".to_string()]
    }

    #[test]
    fn an_outage_is_one_down_and_one_recovered() {
        let mut p = policy_with(1, rules());
        let cal = NoMaintenance;
        // First failure at T0, confirmed 5 s later.
        p.opened(T0 + 5 * S, "s000", T0, failure(), &cal);
        // Gathering for the 30 s group window: nothing yet.
        assert_eq!(at(&mut p, T0 + 34 * S, &cal), []);
        assert_eq!(p.next_due(T0 + 34 * S, &cal), Some(T0 + 35 * S));
        assert_eq!(at(&mut p, T0 + 35 * S, &cal), [(Kind::Down, oncall(), 1)]);
        p.closed(T0 + 10 * MIN, "s000", T0, T0 + 10 * MIN);
        assert_eq!(at(&mut p, T0 + 10 * MIN + 29 * S, &cal), []);
        assert_eq!(
            at(&mut p, T0 + 10 * MIN + 30 * S, &cal),
            [(Kind::Recovered, oncall(), 1)]
        );
        assert_eq!(at(&mut p, T0 + 5 * 60 * MIN, &cal), [], "nothing more");
    }

    #[test]
    fn two_hundred_services_down_together_are_one_message() {
        let mut p = policy_with(200, rules());
        let cal = NoMaintenance;
        // Confirmations spread over 20 s, inside one 30 s window.
        for i in 0..200 {
            let now = T0 + (i as i64 * 100);
            p.opened(now, &format!("s{i:03}"), now - 5 * S, failure(), &cal);
        }
        let sent = p.take_due(T0 + 30 * S, false);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, Kind::Down);
        assert_eq!(sent[0].items.len(), 200);
        assert_eq!(sent[0].items[0].service, "s000");
        assert_eq!(sent[0].items[199].service, "s199");
    }

    /// `service` of contract `c` on a route that sends each notice at once.
    fn ungrouped_watch(service: &str) -> Watched {
        Watched {
            service: service.into(),
            contract: "c".into(),
            route: Arc::new(RouteRules {
                group_window_ms: 0,
                ..rules()
            }),
            targets: Targets::default(),
        }
    }

    /// One watched service on a route that sends each notice at once (no group window).
    fn one_service_ungrouped() -> Policy {
        policy_with(
            1,
            RouteRules {
                group_window_ms: 0,
                ..rules()
            },
        )
    }

    #[test]
    fn escalation_and_reminders_come_at_their_times() {
        let mut p = one_service_ungrouped();
        let cal = NoMaintenance;
        p.opened(T0, "s000", T0 - 5 * S, failure(), &cal);
        assert_eq!(at(&mut p, T0, &cal), [(Kind::Down, oncall(), 1)]);
        // DOWN at T0: escalation due at T0 + 30 min, the first reminder at T0 + 60 min.
        assert_eq!(p.next_due(T0, &cal), Some(T0 + 30 * MIN));
        assert_eq!(at(&mut p, T0 + 30 * MIN - 1, &cal), []);
        assert_eq!(
            at(&mut p, T0 + 30 * MIN, &cal),
            [(Kind::Escalated, vec!["lead@x.example".to_string()], 1)]
        );
        assert_eq!(p.next_due(T0 + 30 * MIN, &cal), Some(T0 + 60 * MIN));
        let both = vec!["lead@x.example".to_string(), "oncall@x.example".to_string()];
        assert_eq!(at(&mut p, T0 + 60 * MIN - 1, &cal), []);
        assert_eq!(
            at(&mut p, T0 + 60 * MIN, &cal),
            [(Kind::StillDown, both.clone(), 1)]
        );
        assert_eq!(at(&mut p, T0 + 119 * MIN, &cal), []);
        assert_eq!(
            at(&mut p, T0 + 120 * MIN, &cal),
            [(Kind::StillDown, both.clone(), 1)]
        );
        // Escalated once only; the recovery goes to everyone who was told.
        p.closed(T0 + 125 * MIN, "s000", T0 - 5 * S, T0 + 125 * MIN);
        assert_eq!(
            at(&mut p, T0 + 125 * MIN, &cal),
            [(Kind::Recovered, both, 1)]
        );
        assert_eq!(p.next_due(T0 + 125 * MIN, &cal), None);
    }

    #[test]
    fn maintenance_holds_alerts_back() {
        let rules = RouteRules {
            group_window_ms: 0,
            ..rules()
        };
        // Window 02:00–04:00 (as offsets from T0).
        let cal = Window(T0, T0 + 120 * MIN);

        // An outage entirely inside the window: nothing at all.
        let mut p = policy_with(1, rules.clone());
        p.opened(T0 + 10 * MIN, "s000", T0 + 9 * MIN, failure(), &cal);
        assert_eq!(at(&mut p, T0 + 10 * MIN, &cal), []);
        assert_eq!(p.next_due(T0 + 10 * MIN, &cal), Some(T0 + 120 * MIN));
        p.closed(T0 + 50 * MIN, "s000", T0 + 9 * MIN, T0 + 50 * MIN);
        assert_eq!(at(&mut p, T0 + 200 * MIN, &cal), []);

        // Still down when the window ends: DOWN then, escalation 30 min after that.
        let mut p = policy_with(1, rules.clone());
        p.opened(T0 + 10 * MIN, "s000", T0 + 9 * MIN, failure(), &cal);
        assert_eq!(at(&mut p, T0 + 119 * MIN, &cal), []);
        let sent = {
            p.tick(T0 + 120 * MIN, &cal);
            p.take_due(T0 + 120 * MIN, false)
        };
        assert_eq!(sent.len(), 1);
        assert!(matches!(
            sent[0].items[0].what,
            What::Down {
                note: Some(Note::AfterMaintenance),
                ..
            }
        ));
        assert_eq!(p.next_due(T0 + 120 * MIN, &cal), Some(T0 + 150 * MIN));

        // With maintenance_alerts = true the DOWN goes out at once.
        let mut p = policy_with(
            1,
            RouteRules {
                maintenance_alerts: true,
                ..rules
            },
        );
        p.opened(T0 + 10 * MIN, "s000", T0 + 9 * MIN, failure(), &cal);
        assert_eq!(at(&mut p, T0 + 10 * MIN, &cal), [(Kind::Down, oncall(), 1)]);
    }

    #[test]
    fn flapping_sends_one_notice_then_waits_for_quiet() {
        let mut p = one_service_ungrouped();
        let cal = NoMaintenance;
        let mut sent = Vec::new();
        // Down 1 min, up 1 min, over and over: transitions at 0, 1, 2, … minutes.
        for k in 0..12i64 {
            let now = T0 + k * MIN;
            if k % 2 == 0 {
                p.opened(now, "s000", now - 5 * S, failure(), &cal);
            } else {
                p.closed(now, "s000", now - MIN - 5 * S, now);
            }
            sent.extend(at(&mut p, now, &cal).into_iter().map(|n| n.0));
        }
        // Transitions 1–6 alert as usual (3 DOWN, 3 RECOVERED), the 7th marks flapping.
        use Kind::*;
        assert_eq!(
            sent,
            [Down, Recovered, Down, Recovered, Down, Recovered, Flapping]
        );
        assert!(p.is_flapping("s000"));
        // The last transition (k = 11, a recovery) at T0 + 11 min: quiet for 60 min → stable.
        assert_eq!(at(&mut p, T0 + 71 * MIN - 1, &cal), []);
        let stable = {
            p.tick(T0 + 71 * MIN, &cal);
            p.take_due(T0 + 71 * MIN, false)
        };
        assert_eq!(stable.len(), 1);
        assert_eq!(stable[0].kind, Kind::Recovered);
        assert!(matches!(stable[0].items[0].what, What::Stable { .. }));
        assert!(!p.is_flapping("s000"));
    }

    #[test]
    fn a_resumed_incident_is_not_announced_twice() {
        let mut p = Policy::new();
        let cal = NoMaintenance;
        p.watch(
            ungrouped_watch("s"),
            Some(Told {
                down_sent_ms: Some(T0 + 5 * S),
                ..Told::new(T0, failure())
            }),
        );
        assert_eq!(at(&mut p, T0 + 10 * MIN, &cal), []);
        // Escalation still counts from the DOWN sent before the restart.
        assert_eq!(p.next_due(T0 + 10 * MIN, &cal), Some(T0 + 5 * S + 30 * MIN));
        p.closed(T0 + 20 * MIN, "s", T0, T0 + 20 * MIN);
        assert_eq!(
            at(&mut p, T0 + 20 * MIN, &cal),
            [(Kind::Recovered, oncall(), 1)]
        );

        // Never told (e.g. stopped inside the group window): told now, once.
        let mut p = one_service_ungrouped();
        p.watch(ungrouped_watch("s000"), Some(Told::new(T0, failure())));
        assert_eq!(at(&mut p, T0 + MIN, &cal), [(Kind::Down, oncall(), 1)]);
        assert_eq!(at(&mut p, T0 + 2 * MIN, &cal), []);
    }

    #[test]
    fn unwatched_services_send_nothing() {
        let mut p = policy_with(0, rules());
        p.opened(T0, "muted", T0, failure(), &NoMaintenance);
        p.closed(T0 + MIN, "muted", T0, T0 + MIN);
        assert!(p.take_due(T0 + 60 * MIN, true).is_empty());
    }

    #[test]
    fn a_reloaded_route_keeps_the_incident_and_takes_the_new_recipients() {
        let mut p = policy_with(2, rules());
        let cal = NoMaintenance;
        p.opened(T0, "s000", T0, failure(), &cal);
        assert_eq!(at(&mut p, T0 + MIN, &cal), [(Kind::Down, oncall(), 1)]);
        let moved = RouteRules {
            id: "night".into(),
            to: vec![Recipient::Email("night@x.example".into())],
            escalate: Vec::new(),
            ..rules()
        };
        assert!(p.rewatch(Watched {
            service: "s000".into(),
            contract: "c".into(),
            route: Arc::new(moved),
            targets: Targets::default(),
        }));
        // s001 left the config.
        p.retain(|id| id != "s001");
        assert!(!p.is_watched("s001"));
        // No second DOWN, no escalation under the new route; the RECOVERED goes to its recipients.
        assert_eq!(at(&mut p, T0 + 40 * MIN, &cal), []);
        p.closed(T0 + 41 * MIN, "s000", T0, T0 + 41 * MIN);
        assert_eq!(
            at(&mut p, T0 + 42 * MIN, &cal),
            [(Kind::Recovered, vec!["night@x.example".to_string()], 1)]
        );
    }

    fn mail(address: &str) -> Recipient {
        Recipient::Email(address.into())
    }

    /// A route with a two-step chain (15 min → lead, 60 min → cto), reminders every 30 min,
    /// no group window, and the given response targets.
    fn chained(targets: Targets) -> Policy {
        let route = Arc::new(RouteRules {
            group_window_ms: 0,
            repeat_ms: Some(30 * MIN),
            escalate: vec![
                StepRules {
                    after_ms: 15 * MIN,
                    to: vec![mail("lead@x.example")],
                },
                StepRules {
                    after_ms: 60 * MIN,
                    to: vec![mail("cto@x.example")],
                },
            ],
            ..rules()
        });
        let mut p = Policy::new();
        p.watch(
            Watched {
                service: "s".into(),
                contract: "c".into(),
                route,
                targets,
            },
            None,
        );
        p
    }

    fn ack(at: i64, by: &str) -> Ack {
        Ack {
            at_ms: at,
            by: Some(by.into()),
            note: None,
        }
    }

    #[test]
    fn each_step_of_the_chain_fires_once_and_an_ack_stops_the_rest() {
        let cal = NoMaintenance;
        let lead = vec!["lead@x.example".to_string()];
        let oncall_lead = vec!["lead@x.example".to_string(), "oncall@x.example".to_string()];

        // Unacknowledged: DOWN at T0, lead at +15 min, a reminder to both at +30, cto at +60.
        let mut p = chained(Targets::default());
        p.opened(T0, "s", T0, failure(), &cal);
        assert_eq!(at(&mut p, T0, &cal), [(Kind::Down, oncall(), 1)]);
        assert_eq!(p.next_due(T0, &cal), Some(T0 + 15 * MIN));
        assert_eq!(
            at(&mut p, T0 + 15 * MIN, &cal),
            [(Kind::Escalated, lead.clone(), 1)]
        );
        assert_eq!(
            at(&mut p, T0 + 30 * MIN, &cal),
            [(Kind::StillDown, oncall_lead.clone(), 1)]
        );
        assert_eq!(
            at(&mut p, T0 + 60 * MIN, &cal),
            [
                (Kind::Escalated, vec!["cto@x.example".to_string()], 1),
                (
                    Kind::StillDown,
                    vec![
                        "cto@x.example".to_string(),
                        "lead@x.example".to_string(),
                        "oncall@x.example".to_string()
                    ],
                    1
                )
            ]
        );
        assert_eq!(p.told("s").unwrap().escalated, 2);

        // Acknowledged between the steps: the first step was sent, the second never is, nor
        // any reminder; ACKNOWLEDGED goes to those told so far.
        let mut p = chained(Targets::default());
        p.opened(T0, "s", T0, failure(), &cal);
        at(&mut p, T0, &cal);
        assert_eq!(
            at(&mut p, T0 + 15 * MIN, &cal),
            [(Kind::Escalated, lead.clone(), 1)]
        );
        assert!(p.acknowledged(T0 + 20 * MIN, "s", T0, ack(T0 + 20 * MIN, "jo")));
        assert_eq!(
            at(&mut p, T0 + 20 * MIN, &cal),
            [(Kind::Acknowledged, oncall_lead.clone(), 1)]
        );
        assert_eq!(p.next_due(T0 + 20 * MIN, &cal), None);
        assert_eq!(at(&mut p, T0 + 5 * 60 * MIN, &cal), []);
        // The recovery still goes to everyone told.
        p.closed(T0 + 6 * 60 * MIN, "s", T0, T0 + 6 * 60 * MIN);
        assert_eq!(
            at(&mut p, T0 + 6 * 60 * MIN, &cal),
            [(Kind::Recovered, oncall_lead, 1)]
        );

        // An ack for another incident (or none open) changes nothing.
        let mut p = chained(Targets::default());
        assert!(!p.acknowledged(T0, "s", T0, ack(T0, "jo")));
        p.opened(T0, "s", T0, failure(), &cal);
        assert!(!p.acknowledged(T0, "s", T0 - MIN, ack(T0, "jo")));
    }

    #[test]
    fn overdue_notices_come_once_when_the_targets_pass() {
        let cal = NoMaintenance;
        let targets = Targets {
            respond_within_ms: Some(10 * MIN),
            restore_within_ms: Some(4 * 60 * MIN),
        };
        let mut p = chained(targets);
        p.opened(T0, "s", T0, failure(), &cal);
        at(&mut p, T0, &cal);
        // 10 min is still in time; just past it, RESPONSE OVERDUE to those told (on-call).
        assert_eq!(p.next_due(T0, &cal), Some(T0 + 10 * MIN + 1));
        assert_eq!(at(&mut p, T0 + 10 * MIN, &cal), []);
        assert_eq!(
            at(&mut p, T0 + 10 * MIN + 1, &cal),
            [(Kind::ResponseOverdue, oncall(), 1)]
        );
        // Acknowledged at 40 min (after the lead and a reminder): restore is still watched.
        at(&mut p, T0 + 30 * MIN, &cal);
        assert!(p.acknowledged(T0 + 40 * MIN, "s", T0, ack(T0 + 40 * MIN, "jo")));
        at(&mut p, T0 + 40 * MIN, &cal);
        assert_eq!(p.next_due(T0 + 40 * MIN, &cal), Some(T0 + 4 * 60 * MIN + 1));
        let both = vec!["lead@x.example".to_string(), "oncall@x.example".to_string()];
        assert_eq!(
            at(&mut p, T0 + 4 * 60 * MIN + 1, &cal),
            [(Kind::RestoreOverdue, both, 1)]
        );
        assert_eq!(at(&mut p, T0 + 9 * 60 * MIN, &cal), [], "once each");

        // Acknowledged in time: no RESPONSE OVERDUE ever.
        let mut p = chained(targets);
        p.opened(T0, "s", T0, failure(), &cal);
        at(&mut p, T0, &cal);
        p.acknowledged(T0 + 5 * MIN, "s", T0, ack(T0 + 5 * MIN, "jo"));
        assert_eq!(
            at(&mut p, T0 + 5 * MIN, &cal),
            [(Kind::Acknowledged, oncall(), 1)]
        );
        assert_eq!(at(&mut p, T0 + 3 * 60 * MIN, &cal), []);
    }

    /// The chained route's service resuming an open incident after a restart.
    fn resumed(told: Told) -> Policy {
        let mut p = chained(Targets::default());
        let watched = p.services["s"].watched.clone();
        p.watch(watched, Some(told));
        p
    }

    #[test]
    fn a_resumed_incident_keeps_its_steps_and_its_ack() {
        let cal = NoMaintenance;
        let p = resumed(Told {
            down_sent_ms: Some(T0),
            escalated: 1,
            reminded_ms: Some(T0 + 30 * MIN),
            ..Told::new(T0, failure())
        });
        // Step 1 was sent before the restart: the next is the cto's at +60 min.
        assert_eq!(p.next_due(T0 + 40 * MIN, &cal), Some(T0 + 60 * MIN));
        let mut p = resumed(Told {
            down_sent_ms: Some(T0),
            ack: Some(ack(T0 + MIN, "jo")),
            ack_told: true,
            ..Told::new(T0, failure())
        });
        assert_eq!(p.next_due(T0 + 40 * MIN, &cal), None);
        assert_eq!(at(&mut p, T0 + 5 * 60 * MIN, &cal), []);
    }

    #[test]
    fn channels_gather_with_e_mail_into_one_notice() {
        let hook = Recipient::Channel(Channel::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret_env: "HOOK".into(),
        });
        let mut p = policy_with(
            200,
            RouteRules {
                to: vec![mail("oncall@x.example"), hook.clone()],
                ..rules()
            },
        );
        for i in 0..200 {
            p.opened(T0, &format!("s{i:03}"), T0, failure(), &NoMaintenance);
        }
        let sent = p.take_due(T0 + 30 * S, false);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].items.len(), 200);
        assert_eq!(sent[0].to, vec![mail("oncall@x.example"), hook]);
    }
}
