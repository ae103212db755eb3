//! The daemon: opens the store, starts one task per service and the HTTP endpoint, tells
//! systemd it is ready, applies reloaded configs (SIGHUP) without stopping unchanged services,
//! and on shutdown lets in-flight probes finish and flushes the store.

pub mod allocator;
pub mod reload;
pub mod schedule;
pub mod service_task;
pub mod systemd;
pub mod voice;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::alert::Outlet;
use crate::alert::{AlertSender, AlertTask};
use crate::clock::Clock;
use crate::config::{Config, Database, LiveConfig, Service};
use crate::http::endpoint;
use crate::http::exposition::Exposition;
use crate::http::metrics::DaemonMetrics;
use crate::http::service_series::ServiceLabels;
use crate::http::status_page::StatusPage;
use crate::notify::MailOut;
use crate::notify::{Backoff, Deliverer, DeliveryStats, HttpChannels, Mailer};
use crate::probe::{Prober, ProberError};
use crate::runtime::reload::Plan;
use crate::runtime::schedule::{Schedule, Ticks};
use crate::runtime::service_task::{
    CertificateNotices, ProbeRunner, ServiceTask, Shared, Update, Updates,
};
use crate::sla::tracker::{OpenIncident, Tracker};
use crate::store::SharedConnection;
use crate::store::{Opened, Store, StoreError, StoreSettings};
use crate::text::Chain;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prober(#[from] ProberError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the store writer thread panicked")]
    WriterPanicked,
    #[error(transparent)]
    Mailer(#[from] crate::notify::smtp::MailerError),
    #[error("cannot set up alerting")]
    Alerting(#[source] crate::store::db::DbError),
    #[error("cannot set up the HTTP client for webhooks, Slack and Telegram")]
    Channels(#[source] reqwest::Error),
    #[error(
        "the environment variables {} are not set: the config's webhook, Slack or Telegram \
         channels need them (set them in the unit's Environment= or EnvironmentFile=)",
        .0.join(", ")
    )]
    ChannelSecrets(Vec<String>),
    #[error("the store could not register the added services")]
    Register(#[source] StoreError),
}

/// What can be swapped in for tests: the clock and the probe runner.
pub struct Options {
    pub clock: Clock,
    pub runner: Option<Arc<dyn ProbeRunner>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::system(),
            runner: None,
        }
    }
}

/// A started daemon.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Each running service's slot for its news: reloaded settings, removal, the stop.
    services: HashMap<String, Arc<Updates>>,
    live: watch::Sender<Arc<Config>>,
    shared: Arc<Shared>,
    exposition: Arc<Exposition>,
    /// `None` on PostgreSQL: a fleet's alerts follow its verdict, not one location's view.
    alerts: Option<AlertSender>,
    store: Store,
    writer: std::thread::JoinHandle<()>,
    endpoint: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    metrics: Arc<DaemonMetrics>,
    /// When the daemon started: the origin of its probes' ticks.
    started: tokio::time::Instant,
    /// On SQLite: alerting, statements and delivery, always running.
    messaging: Option<Messaging>,
    /// On PostgreSQL: the task that speaks for the fleet while it holds the lock, and its stop.
    voice: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

/// The tasks that decide and send messages: alerting, statements and mail delivery.
struct Messaging {
    alerting: tokio::task::JoinHandle<()>,
    statements: tokio::task::JoinHandle<()>,
    /// Stops alerting and statements (after the service tasks, so no transition is lost).
    alert_stop: watch::Sender<bool>,
    delivery: Option<tokio::task::JoinHandle<()>>,
    /// Delivery to the HTTP channels (always running: a reload may add a channel).
    channel_delivery: tokio::task::JoinHandle<()>,
    /// Stops delivery (last, so alerts written at the stop still get a try).
    mail_stop: watch::Sender<bool>,
}

impl Messaging {
    /// Stops alerting and statements (alerts gathering go to the outbox), then delivery.
    async fn stop(self) {
        let _ = self.alert_stop.send(true);
        let _ = self.alerting.await;
        let _ = self.statements.await;
        let _ = self.mail_stop.send(true);
        let _ = self.channel_delivery.await;
        if let Some(delivery) = self.delivery {
            let _ = delivery.await;
        }
    }
}

/// A fleet daemon's messaging, started when it becomes the speaker and stopped when it stops
/// being one.
struct FleetMessenger {
    live: LiveConfig,
    clock: Clock,
    delivery_stats: Arc<DeliveryStats>,
    running: Option<Messaging>,
    /// The service tasks' certificate notices, pointed at alerting while this daemon speaks.
    certificates: CertificateNotices,
}

impl voice::Messenger for FleetMessenger {
    async fn start(
        &mut self,
        config: &Arc<Config>,
        open: HashMap<String, Option<OpenIncident>>,
    ) -> Result<AlertSender, String> {
        // Off the async threads: the connections to PostgreSQL are opened blocking.
        let (config, live, clock) = (config.clone(), self.live.clone(), self.clock.clone());
        let stats = self.delivery_stats.clone();
        let (messaging, alerts) = tokio::task::spawn_blocking(move || {
            start_messaging(&config, &live, &clock, &open, stats)
        })
        .await
        .map_err(|_| "starting messaging panicked".to_string())?
        .map_err(|e| crate::text::Chain(&e).to_string())?;
        self.running = Some(messaging);
        self.certificates.set(Some(alerts.clone()));
        Ok(alerts)
    }

    async fn stop(&mut self) {
        self.certificates.set(None);
        if let Some(messaging) = self.running.take() {
            messaging.stop().await;
        }
    }
}

impl Running {
    /// Where the HTTP endpoint listens (the real port when `listen` ended in `:0`).
    pub fn endpoint_addr(&self) -> Option<SocketAddr> {
        self.endpoint.as_ref().map(|(addr, _)| *addr)
    }

    pub fn metrics(&self) -> &Arc<DaemonMetrics> {
        &self.metrics
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.live.borrow().clone()
    }

    /// Applies a new (already valid) config: added services start, removed ones stop, changed
    /// ones take their new settings keeping their state, unchanged ones go on untouched.
    /// Settings that need a restart keep their running value (each is logged). Alerting,
    /// statements, the API, the status page and `/metrics` see the new config from here on.
    pub async fn reload(&mut self, new: Config) -> Result<Plan, DaemonError> {
        let missing = new.missing_channel_secrets();
        if !missing.is_empty() {
            return Err(DaemonError::ChannelSecrets(missing));
        }
        let plan = crate::runtime::reload::plan(&self.config(), new);
        for key in &plan.at_restart {
            warn!(
                setting = key,
                "Changed in the config, but applies only at a restart; keeping the running value."
            );
        }
        let config = Arc::new(plan.config.clone());

        // Added services are registered (and their history read) before anything sees them.
        let ids: Vec<String> = plan.added.iter().map(|s| s.id.clone()).collect();
        let mut registered = if ids.is_empty() {
            HashMap::new()
        } else {
            self.shared.store.flush().await?;
            let daemon = config.daemon.clone();
            let recent = resume_depth(&config);
            tokio::task::spawn_blocking(move || crate::store::register(&daemon, &ids, recent))
                .await
                .expect("registering services does not panic")
                .map_err(DaemonError::Register)?
        };
        let added_open = registered
            .iter()
            .map(|(id, (_, resume))| (id.clone(), resume.open_incident.clone()))
            .collect();
        let _ = self.live.send(config.clone());
        // In order with transitions: alerting knows the added services before they probe.
        if let Some(alerts) = &self.alerts {
            alerts.reload(config.clone(), added_open);
        }

        for id in &plan.removed {
            // The task ends after its probe in flight, if any.
            if let Some(updates) = self.services.remove(id) {
                updates.send(Update::Removed);
            }
        }
        for service in &plan.changed {
            if let Some(updates) = self.services.get(&service.id) {
                updates.send(Update::Reloaded(service.clone()));
            }
        }
        // Added services start on the running services' ticks, at a length for the new config.
        let start = tokio::time::Instant::now();
        let ticks = Ticks::new(self.started, probes_per_second(&config));
        for service in &plan.added {
            let (num, resume) = registered
                .remove(&service.id)
                .expect("every added service was registered");
            self.spawn_service(service.clone(), num, resume, ticks, start);
        }
        while self.tasks.try_join_next().is_some() {}
        info!(
            added = plan.added.len(),
            removed = plan.removed.len(),
            changed = plan.changed.len(),
            unchanged = plan.unchanged,
            "Config reloaded."
        );
        Ok(plan)
    }

    fn spawn_service(
        &mut self,
        service: Arc<Service>,
        num: crate::store::ServiceNum,
        resume: crate::sla::tracker::Resume,
        ticks: Ticks,
        start: tokio::time::Instant,
    ) {
        let tracker = Tracker::resume(service.tracker_rules(), resume);
        let schedule = Schedule::new(
            ticks,
            start,
            &service.id,
            service.interval,
            service.retry_interval,
        );
        let series = self
            .exposition
            .service(ServiceLabels::new(&service.id, &service.contract));
        let updates = Arc::new(Updates::default());
        self.services.insert(service.id.clone(), updates.clone());
        let task = ServiceTask {
            service,
            series,
            num,
            tracker,
            schedule,
            shared: self.shared.clone(),
            updates,
        };
        task.publish_state();
        self.tasks.spawn(task.run());
    }

    /// Stops probing (probes in flight finish or time out), commits everything and closes the
    /// database.
    pub async fn stop(mut self) -> Result<(), DaemonError> {
        let _ = systemd::notify_stopping();
        let _ = self.stop.send(true);
        for updates in self.services.values() {
            updates.send(Update::Stop);
        }
        while self.tasks.join_next().await.is_some() {}
        // Alerts still gathering go to the outbox; mail not yet sent waits there for the next start.
        if let Some(messaging) = self.messaging {
            messaging.stop().await;
        }
        if let Some((stop, voice)) = self.voice {
            let _ = stop.send(true);
            let _ = voice.await;
        }
        if let Some((_, handle)) = self.endpoint.take() {
            let _ = handle.await;
        }
        self.store.close().await?;
        tokio::task::spawn_blocking(move || self.writer.join())
            .await
            .map_err(|_| DaemonError::WriterPanicked)?
            .map_err(|_| DaemonError::WriterPanicked)?;
        let lost = self
            .store
            .stats()
            .queued
            .load(std::sync::atomic::Ordering::Relaxed);
        if lost == 0 {
            info!("Stopped; everything recorded.");
        } else {
            error!(
                records = lost,
                "Stopped; these records could not be written."
            );
        }
        Ok(())
    }
}

/// How many probes a second `config`'s services start on average.
fn probes_per_second(config: &Config) -> f64 {
    config
        .services
        .iter()
        .map(|s| 1.0 / s.interval.as_secs_f64().max(0.001))
        .sum()
}

/// Starts the daemon for `config`.
pub async fn start(config: Config, options: Options) -> Result<Running, DaemonError> {
    let runner: Arc<dyn ProbeRunner> = match options.runner {
        Some(runner) => runner,
        None => Arc::new(Prober::with_clock(options.clock.clone())?),
    };
    let clock = options.clock;
    let mut opened = open_store(&config, &clock).await?;
    let config = Arc::new(config);
    let (live, live_rx) = LiveConfig::new(config.clone());
    let open_incidents: HashMap<String, Option<OpenIncident>> = opened
        .services
        .iter()
        .map(|(id, (_, resume))| (id.clone(), resume.open_incident.clone()))
        .collect();
    let delivery_stats = Arc::new(DeliveryStats::default());
    let metrics = Arc::new(DaemonMetrics::default());
    let (messaging, alerts) = match &config.daemon.database {
        Database::Sqlite(_) => {
            let (messaging, alerts) = start_messaging(
                &config,
                &live_rx,
                &clock,
                &open_incidents,
                delivery_stats.clone(),
            )?;
            metrics.set_speaking(true);
            metrics.set_speaker(Some(config.daemon.location.clone()));
            (Some(messaging), Some(alerts))
        }
        // A fleet's alerts follow its verdict, from whichever daemon holds the lock.
        Database::Postgres(_) => (None, None),
    };
    // The alerting took its copy: gone before the tasks start (12 MB at 100,000 services).
    drop(open_incidents);
    let certificates = CertificateNotices::to(alerts.clone());
    let voice = match &config.daemon.database {
        Database::Sqlite(_) => None,
        Database::Postgres(target) => {
            let (voice_stop, voice_stop_rx) = watch::channel(false);
            let messenger = FleetMessenger {
                live: live_rx.clone(),
                clock: clock.clone(),
                delivery_stats: delivery_stats.clone(),
                running: None,
                certificates: certificates.clone(),
            };
            let task = tokio::spawn(voice::run(
                target.clone(),
                live_rx.clone(),
                clock.clone(),
                metrics.clone(),
                messenger,
                voice_stop_rx,
            ));
            Some((voice_stop, task))
        }
    };

    let exposition = Arc::new(Exposition::new(
        metrics.clone(),
        opened.store.stats().clone(),
        delivery_stats,
    ));
    let shared = Arc::new(Shared {
        alerts: alerts.clone(),
        certificates,
        runner,
        store: opened.store.clone(),
        clock: clock.clone(),
        slots: Arc::new(Semaphore::new(config.daemon.max_in_flight)),
        metrics: metrics.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let endpoint = match config.daemon.listen {
        Some(addr) => {
            let state = endpoint::State {
                page: Arc::new(StatusPage::new(live_rx.clone(), exposition.clone())),
                config: live_rx.clone(),
                exposition: exposition.clone(),
                metrics: metrics.clone(),
                store: opened.store.stats().clone(),
                clock: clock.clone(),
            };
            Some(start_endpoint(addr, state, &stop_rx).await?)
        }
        None => None,
    };
    tokio::spawn(crate::http::exposition::refresh(
        exposition.clone(),
        live_rx,
        clock.clone(),
        stop_rx.clone(),
    ));

    let mut running = Running {
        stop,
        tasks: JoinSet::new(),
        services: HashMap::new(),
        live,
        shared,
        exposition,
        alerts,
        store: opened.store.clone(),
        writer: opened.writer,
        endpoint,
        metrics,
        started: tokio::time::Instant::now(),
        messaging,
        voice,
    };
    let ticks = Ticks::new(running.started, probes_per_second(&config));
    info!(
        tick_ms = ticks.length().as_millis() as u64,
        "Probes start on shared ticks (one wake-up for a batch of probes)."
    );
    for service in config.services.iter().cloned() {
        let (num, resume) = opened
            .services
            .remove(&service.id)
            .expect("every configured service was registered");
        running.spawn_service(service, num, resume, ticks, running.started);
    }

    tokio::spawn(allocator::release_periodically(stop_rx.clone()));
    systemd::notify_ready();
    if let Some(period) = systemd::watchdog_period() {
        tokio::spawn(systemd::watchdog(
            period,
            opened.store.stats().clone(),
            stop_rx.clone(),
        ));
    }
    Ok(running)
}

/// Opens the store, registers the configured services, and floors `clock` at the latest
/// stored outcome: a wall clock set back while the daemon was stopped must not stamp outcomes
/// before the stored ones.
async fn open_store(config: &Config, clock: &Clock) -> Result<Opened, DaemonError> {
    let ids: Vec<String> = config.services.iter().map(|s| s.id.clone()).collect();
    let recent = resume_depth(config);
    let settings = StoreSettings {
        flush_interval: config.daemon.flush_interval,
        retention: config.daemon.retention,
        clock: clock.clone(),
    };
    let daemon = config.daemon.clone();
    let opened = tokio::task::spawn_blocking(move || match &daemon.database {
        Database::Sqlite(path) => Store::open(path, &ids, recent, settings),
        Database::Postgres(target) => {
            Store::open_postgres(target, &daemon.location, &ids, recent, settings)
        }
    })
    .await
    .expect("the store opener does not panic")?;
    info!(
        database = %config.daemon.database,
        location = %config.daemon.location,
        services = config.services.len(),
        "Store open."
    );
    let latest_stored = opened
        .services
        .values()
        .filter_map(|(_, resume)| resume.recent.last().map(|(at_ms, _)| *at_ms))
        .max();
    if let Some(latest) = latest_stored {
        let now = clock.now_ms();
        if latest > now {
            warn!(
                behind_ms = latest - now,
                "The wall clock is behind the latest stored outcome: stamps hold at that \
                 outcome's time until the clock passes it."
            );
            clock.not_before(latest);
        }
    }
    Ok(opened)
}

/// Starts alerting, the statement task and (with `[smtp]`) mail delivery, each on its own
/// database connection; returns them and where service tasks send transitions.
fn start_messaging(
    config: &Arc<Config>,
    live: &LiveConfig,
    clock: &Clock,
    open_incidents: &HashMap<String, Option<OpenIncident>>,
    delivery_stats: Arc<DeliveryStats>,
) -> Result<(Messaging, AlertSender), DaemonError> {
    let mailer = match &config.smtp {
        Some(smtp) => Some(Arc::new(Mailer::new(smtp)?)),
        None => {
            info!("No [smtp] table: alerts go to the log only.");
            None
        }
    };
    let (alert_stop, alert_stop_rx) = watch::channel(false);
    let (mail_stop, mail_stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let side_connection = || -> Result<SharedConnection, DaemonError> {
        Ok(Arc::new(std::sync::Mutex::new(crate::store::open_db(
            &config.daemon,
        )?)))
    };
    let mail_out = mailer.as_ref().map(|m| MailOut {
        from: m.from.clone(),
        wake: wake.clone(),
        mailer: m.clone(),
    });
    let missing = config.missing_channel_secrets();
    if !missing.is_empty() {
        return Err(DaemonError::ChannelSecrets(missing));
    }
    let outlet = Outlet {
        channels: Arc::new(HttpChannels::new().map_err(DaemonError::Channels)?),
        wake: Arc::new(Notify::new()),
    };
    let (alert_task, alerts, transitions) = AlertTask::new(
        config.clone(),
        side_connection()?,
        mail_out.clone(),
        outlet.clone(),
        clock.clone(),
        open_incidents,
    )
    .map_err(DaemonError::Alerting)?;
    let alerting = tokio::spawn(alert_task.run(transitions, alert_stop_rx.clone()));
    let statements = tokio::spawn(crate::report::monthly::run(
        live.clone(),
        side_connection()?,
        mail_out,
        clock.clone(),
        alert_stop_rx,
    ));
    let delivery = match mailer {
        Some(mailer) => Some(tokio::spawn(crate::notify::deliver(
            side_connection()?,
            Deliverer::Smtp(mailer),
            clock.clone(),
            wake,
            delivery_stats.clone(),
            Backoff::default(),
            mail_stop_rx.clone(),
        ))),
        None => None,
    };
    let channel_delivery = tokio::spawn(crate::notify::deliver(
        side_connection()?,
        Deliverer::Http(outlet.channels),
        clock.clone(),
        outlet.wake,
        delivery_stats.clone(),
        Backoff::default(),
        mail_stop_rx,
    ));
    let messaging = Messaging {
        alerting,
        statements,
        alert_stop,
        delivery,
        channel_delivery,
        mail_stop,
    };
    Ok((messaging, alerts))
}

/// Binds `addr` and serves the endpoint (and refreshes the status page) until `stop`.
async fn start_endpoint(
    addr: SocketAddr,
    state: endpoint::State,
    stop: &watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    if !bound.ip().is_loopback() {
        warn!(%bound, "The HTTP endpoint listens beyond loopback.");
    }
    tokio::spawn(crate::http::status_page::refresh(
        state.page.clone(),
        state.clock.clone(),
        stop.clone(),
    ));
    let handle = tokio::spawn(endpoint::serve(listener, state, stop.clone()));
    info!(%bound, "HTTP endpoint listening.");
    Ok((bound, handle))
}

/// How many latest outcomes a service's state machine needs to resume.
fn resume_depth(config: &Config) -> usize {
    config
        .services
        .iter()
        .map(|s| s.confirm_down.max(s.confirm_up) as usize)
        .max()
        .unwrap_or(1)
}

/// Runs the daemon until `shutdown` completes, then stops it cleanly. SIGHUP reloads the
/// config file.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let path = config.path.clone();
    let mut running = start(config, Options::default()).await?;
    let mut hangup = signal(SignalKind::hangup()).expect("installing the SIGHUP handler");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = hangup.recv() => {
                systemd::notify_reloading();
                reload_from_file(&mut running, &path).await;
                systemd::notify_ready();
            }
        }
    }
    info!("Shutting down: letting probes in flight finish.");
    running.stop().await
}

/// SIGHUP (`systemctl reload`): reads and validates the config file again and applies it. An
/// invalid config is reported error by error and the running one stays.
async fn reload_from_file(running: &mut Running, path: &std::path::Path) {
    info!(config = %path.display(), "SIGHUP: reloading the config.");
    let path = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path))
        .await
        .expect("reading the config does not panic");
    match loaded {
        Ok(config) => {
            if let Err(e) = running.reload(config).await {
                error!(error = %Chain(&e), "The reload could not be applied; still running the previous config.");
            }
        }
        Err(errors) => {
            for e in &errors.errors {
                error!("{e}");
            }
            error!(
                errors = errors.errors.len(),
                "The reloaded config is invalid; still running the previous config."
            );
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received."),
        _ = int.recv() => info!("SIGINT received."),
    }
}
