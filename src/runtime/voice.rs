//! One voice for a fleet (DESIGN.md §6.3): of the daemons sharing a PostgreSQL, the one holding
//! a session advisory lock decides and sends alerts, escalations, digests and statements, on
//! the fleet's verdict; the others stand by, asking for the lock every few seconds, and take
//! over when the holder's session ends (a killed daemon's connection closes at once).
//!
//! A daemon that becomes the speaker starts messaging as a restarted single daemon would: from
//! the verdict's open incidents and what the shared alert records say was told of them, so a
//! takeover repeats nothing already sent and sends what the old speaker left due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::alert::{AlertSender, Transition};
use crate::clock::Clock;
use crate::config::{Config, LiveConfig, PgTarget};
use crate::http::metrics::DaemonMetrics;
use crate::sla::tracker::OpenIncident;
use crate::store::db::{Conn, Db, DbError};
use crate::store::history;
use crate::store::pg::{self, speaker};
use crate::text::Chain;

/// How often a standby asks for the lock and the speaker checks it still holds it.
const LOCK_POLL: Duration = Duration::from_secs(5);

/// How often the speaker reads the locations' open incidents for changes of the verdict.
const VERDICT_POLL: Duration = Duration::from_secs(2);

/// What starts and stops the messaging tasks (alerting, statements, delivery) for the speaker.
pub trait Messenger: Send {
    /// Starts messaging with the verdict's open incidents; returns where transitions go.
    fn start(
        &mut self,
        config: &Arc<Config>,
        open: HashMap<String, Option<OpenIncident>>,
    ) -> impl std::future::Future<Output = Result<AlertSender, String>> + Send;
    /// Stops it (alerts gathering are written to the outbox first).
    fn stop(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// The session holding (or asking for) the lock.
struct LockSession {
    target: PgTarget,
    name: String,
    client: Option<postgres::Client>,
}

impl LockSession {
    /// Whether this session holds the lock now: takes it if free, checks the connection if
    /// held. A lost connection loses the lock with it (the server releases it).
    fn poll(&mut self, held: bool) -> Result<bool, DbError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            if held {
                self.client = None;
                return Ok(false);
            }
            self.client = Some(pg::connect_lock_session(&self.target, &self.name)?);
        }
        let client = self.client.as_mut().expect("connected");
        let result = if held {
            speaker::check(client).map(|()| true)
        } else {
            speaker::try_take(client)
        };
        match result {
            Ok(holds) => Ok(holds),
            Err(e) => {
                self.client = None;
                if held { Ok(false) } else { Err(e.into()) }
            }
        }
    }

    /// The daemon holding the lock, as its session names itself ("slaprobe fra" → "fra").
    fn holder(&mut self) -> Option<String> {
        let name = speaker::holder(self.client.as_mut()?).ok()??;
        Some(name.strip_prefix("slaprobe ").unwrap_or(&name).to_string())
    }
}

/// Runs until `stop`: stands by, speaks while holding the lock, stands by again if it is lost.
pub async fn run<M: Messenger>(
    target: PgTarget,
    live: LiveConfig,
    clock: Clock,
    metrics: Arc<DaemonMetrics>,
    mut messenger: M,
    mut stop: watch::Receiver<bool>,
) {
    let location = live.current().daemon.location.clone();
    let mut session = Some(LockSession {
        target: target.clone(),
        name: format!("slaprobe {location}"),
        client: None,
    });
    let mut speaking: Option<Speaking> = None;
    let mut next_lock_poll = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        let now = tokio::time::Instant::now();
        if now >= next_lock_poll {
            next_lock_poll = now + LOCK_POLL;
            let held = speaking.is_some();
            let mut s = session.take().expect("the session is put back");
            let (s, polled, holder) = tokio::task::spawn_blocking(move || {
                let polled = s.poll(held);
                let holder = s.holder();
                (s, polled, holder)
            })
            .await
            .expect("the lock poll does not panic");
            session = Some(s);
            metrics.set_speaker(holder);
            match (polled, held) {
                (Ok(true), false) => {
                    warned = false;
                    match Speaking::start(&target, &live, &clock, &mut messenger).await {
                        Ok(started) => {
                            info!(location = %location, "Speaking for the fleet: this daemon now decides and sends alerts, digests and statements.");
                            metrics.set_speaking(true);
                            speaking = Some(started);
                        }
                        Err(e) => {
                            error!(error = %e, "Cannot start speaking for the fleet; giving the lock back.");
                            session = Some(release(session.take().expect("put back")).await);
                        }
                    }
                }
                (Ok(false), true) => {
                    warn!(location = %location, "Lost the fleet's speaker lock (the database connection ended): standing by.");
                    messenger.stop().await;
                    if let Some(s) = speaking.take() {
                        s.close().await;
                    }
                    metrics.set_speaking(false);
                }
                (Err(e), _) if !warned => {
                    warned = true;
                    warn!(error = %Chain(&e), "Cannot reach PostgreSQL to ask for the fleet's speaker lock; trying again.");
                }
                _ => {}
            }
        }
        if let Some(s) = &mut speaking {
            let config = live.current();
            s.watch(&config, clock.now_ms()).await;
        }
        let wait = if speaking.is_some() {
            VERDICT_POLL
        } else {
            LOCK_POLL
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(wait.min(next_lock_poll.saturating_duration_since(tokio::time::Instant::now()))) => {}
        }
    }
    if let Some(s) = speaking.take() {
        messenger.stop().await;
        s.close().await;
        metrics.set_speaking(false);
    }
    if let Some(s) = session.take() {
        release(s).await;
    }
}

/// Ends the session (and so any lock it holds).
async fn release(mut s: LockSession) -> LockSession {
    tokio::task::spawn_blocking(move || {
        s.client = None;
        s
    })
    .await
    .expect("closing does not panic")
}

/// The speaker's state: where transitions go, the verdict's open incidents it has told
/// alerting of, and its connection for reading the verdict.
struct Speaking {
    alerts: AlertSender,
    open: HashMap<String, i64>,
    db: Option<Db>,
    config: Arc<Config>,
}

impl Speaking {
    /// Closes its connection off the async threads (closing a blocking client blocks).
    async fn close(mut self) {
        if let Some(db) = self.db.take() {
            let _ = tokio::task::spawn_blocking(move || drop(db)).await;
        }
    }

    async fn start<M: Messenger>(
        target: &PgTarget,
        live: &LiveConfig,
        clock: &Clock,
        messenger: &mut M,
    ) -> Result<Speaking, String> {
        let config = live.current();
        let (target_c, config_c, now) = (target.clone(), config.clone(), clock.now_ms());
        let (db, open) = tokio::task::spawn_blocking(move || {
            let db = Db::postgres(
                &target_c,
                &config_c.daemon.location,
                &config_c.daemon.locations,
            )?;
            let open = history::verdict_open(db.conn(), &config_c, now)?;
            Ok::<_, DbError>((db, open))
        })
        .await
        .expect("reading the verdict does not panic")
        .map_err(|e| Chain(&e).to_string())?;
        let incidents: HashMap<String, Option<OpenIncident>> = config
            .services
            .iter()
            .map(|s| (s.id.clone(), open.get(&s.id).cloned()))
            .collect();
        let alerts = messenger.start(&config, incidents).await?;
        Ok(Speaking {
            alerts,
            open: open.into_iter().map(|(id, i)| (id, i.start_ms)).collect(),
            db: Some(db),
            config,
        })
    }

    /// Reads the verdict and tells alerting of incidents it opened and closed since the last
    /// look; hands alerting a reloaded config first.
    async fn watch(&mut self, config: &Arc<Config>, now: i64) {
        if !Arc::ptr_eq(config, &self.config) {
            self.config = config.clone();
            self.alerts.reload(config.clone(), HashMap::new());
        }
        let Some(db) = self.db.take() else {
            return;
        };
        let (config, open) = (config.clone(), self.open.clone());
        let (db, found) = tokio::task::spawn_blocking(move || {
            let found = changes(db.conn(), &config, &open, now);
            (db, found)
        })
        .await
        .expect("reading the verdict does not panic");
        self.db = Some(db);
        match found {
            Ok(transitions) => {
                for t in transitions {
                    match &t {
                        Transition::Opened {
                            service, start_ms, ..
                        } => {
                            self.open.insert(service.clone(), *start_ms);
                        }
                        Transition::Closed { service, .. } => {
                            self.open.remove(service);
                        }
                    }
                    self.alerts.send(t);
                }
            }
            Err(e) => warn!(error = %Chain(&e), "Cannot read the fleet's verdict; trying again."),
        }
    }
}

/// What changed in the verdict since `open` (service → start of the open incident told).
fn changes(
    conn: Conn<'_>,
    config: &Config,
    open: &HashMap<String, i64>,
    now: i64,
) -> Result<Vec<Transition>, DbError> {
    let by_service = history::open_by_location(conn, config, now)?;
    let mut transitions = Vec::new();
    for service in &config.services {
        let id = &service.id;
        let seen = by_service.get(id).map_or(&[][..], Vec::as_slice);
        let down = seen.len() >= config.quorum_of(service);
        match (open.get(id), down) {
            (None, true) => {
                if let Some(incident) = history::verdict_incident(conn, config, service, seen, now)?
                {
                    transitions.push(Transition::Opened {
                        service: id.clone(),
                        start_ms: incident.start_ms,
                        failure: incident.first_failure,
                    });
                }
            }
            (Some(&start_ms), false) => {
                let end_ms = verdict_end(conn, config, service, start_ms, now)?;
                transitions.push(Transition::Closed {
                    service: id.clone(),
                    start_ms,
                    end_ms,
                });
            }
            _ => {}
        }
    }
    Ok(transitions)
}

/// When the verdict's incident that started at `start_ms` ended (fewer than the quorum of
/// locations down): from the locations' own incidents; `now` if the store no longer says.
fn verdict_end(
    conn: Conn<'_>,
    config: &Config,
    service: &crate::config::Service,
    start_ms: i64,
    now: i64,
) -> Result<i64, DbError> {
    let Some(subject) = history::subject(conn, config, service)? else {
        return Ok(now);
    };
    let timeline = history::timeline(conn, &subject, start_ms, now + 1, now)?;
    Ok(timeline
        .incidents
        .iter()
        .find(|(s, _)| *s <= start_ms)
        .or(timeline.incidents.first())
        .and_then(|(_, end)| *end)
        .unwrap_or(now)
        .max(start_ms))
}
