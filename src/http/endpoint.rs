//! The daemon's HTTP endpoint: health, readiness, the daemon's own counters, the status page,
//! `/metrics` and the API (read-only but for the operator's acknowledgements).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::http::api::{ApiError, Reading};
use crate::http::audience::Audience;
use crate::http::metrics::{DaemonMetrics, DurationSummary};
use crate::store::StoreStats;
use crate::text::Chain;

/// The writer must have turned its loop this recently for `/healthz` to say ok.
const WRITER_STALE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct State {
    pub config: crate::config::LiveConfig,
    pub page: Arc<crate::http::status_page::StatusPage>,
    pub exposition: Arc<crate::http::exposition::Exposition>,
    pub metrics: Arc<DaemonMetrics>,
    pub store: Arc<StoreStats>,
    pub clock: Clock,
}

/// Serves until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/daemon", get(daemon))
        .route("/metrics", get(metrics))
        .route("/api/v1/services", get(crate::http::api::services))
        .route("/api/v1/services/{id}", get(crate::http::api::service))
        .route(
            "/api/v1/services/{id}/ack",
            axum::routing::post(crate::http::api::ack),
        )
        .route("/api/v1/report", get(crate::http::api::report))
        .route(
            "/api/v1/contracts/{id}/statements/{month}",
            get(crate::http::api::statement),
        )
        .with_state(state);
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %Chain(&e), "The HTTP endpoint stopped.");
    }
}

impl axum::extract::FromRequestParts<State> for Reading {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &State,
    ) -> Result<Self, Self::Rejection> {
        let config = state.config.current();
        let audience =
            Audience::of(&parts.headers, &config).map_err(|_| ApiError::unauthorized())?;
        Ok(Reading {
            config,
            clock: state.clock.clone(),
            audience,
        })
    }
}

async fn healthz(Extract(state): Extract<State>) -> (StatusCode, &'static str) {
    if state.store.heartbeat.since_last() <= WRITER_STALE {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store writer stalled\n")
    }
}

/// `/metrics`, streamed: encoded on a blocking thread in chunks of `METRICS_CHUNK` bytes while
/// the scraper reads, so a 15 MB exposition costs a few chunks of memory, not 15 MB.
async fn metrics(Extract(state): Extract<State>) -> impl axum::response::IntoResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel::<axum::body::Bytes>(4);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            text: String::with_capacity(METRICS_CHUNK),
            sender,
            runtime,
        };
        // An error means the scraper went away (or stalled): the rest is not encoded.
        if state.exposition.render_to(&mut out).is_ok() {
            let _ = out.send();
        }
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::http::exposition::CONTENT_TYPE,
        )],
        axum::body::Body::from_stream(chunks),
    )
}

/// How much `/metrics` text is encoded before it is handed to the connection.
const METRICS_CHUNK: usize = 64 * 1024;

/// A scraper that reads nothing for this long is dropped (the encoding holds the series' locks).
const METRICS_STALL: Duration = Duration::from_secs(10);

/// The exposition's text, sent on in chunks.
struct Chunks {
    text: String,
    sender: tokio::sync::mpsc::Sender<axum::body::Bytes>,
    runtime: tokio::runtime::Handle,
}

impl Chunks {
    fn send(&mut self) -> std::fmt::Result {
        let full = std::mem::replace(&mut self.text, String::with_capacity(METRICS_CHUNK));
        let sent = self.runtime.block_on(tokio::time::timeout(
            METRICS_STALL,
            self.sender.send(axum::body::Bytes::from(full)),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            _ => Err(std::fmt::Error),
        }
    }
}

impl std::fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.text.push_str(s);
        if self.text.len() >= METRICS_CHUNK {
            self.send()?;
        }
        Ok(())
    }
}

async fn status_page(Extract(state): Extract<State>) -> axum::response::Html<String> {
    let html = tokio::task::spawn_blocking(move || {
        let db = crate::store::open_reader_db(&state.config.current().daemon).ok();
        state
            .page
            .render(db.as_ref().map(|db| db.conn()), state.clock.now_ms())
    })
    .await
    .unwrap_or_default();
    axum::response::Html(html)
}

/// `/readyz`: ready while the store takes writes. While it refuses them (disk full, locked,
/// PostgreSQL unreachable) probing goes on and records wait in memory, but the daemon is not
/// doing its whole job: 503, with how much is waiting.
async fn readyz(Extract(state): Extract<State>) -> (StatusCode, String) {
    if state.store.refusing.load(Ordering::Relaxed) {
        let waiting = state.store.queued.load(Ordering::Relaxed);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the database refuses writes; {waiting} records wait in memory\n"),
        )
    } else {
        (StatusCode::OK, "ready\n".to_string())
    }
}

/// `/api/v1/daemon`: what the daemon itself is doing.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct DaemonReport {
    /// Where this daemon probes from, and every location the fleet expects.
    pub location: String,
    pub locations: Vec<String>,
    /// Whether this daemon decides and sends alerts, digests and statements, and the location
    /// of the one that does (one daemon of a fleet at a time; on SQLite always this one).
    pub speaking: bool,
    pub speaker: Option<String>,
    pub services: usize,
    pub probes: u64,
    pub probes_failed: u64,
    /// Probes that started more than their interval late (a schedule point missed).
    pub probes_late: u64,
    pub in_flight: i64,
    pub lateness: DurationSummary,
    pub store: StoreReport,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StoreReport {
    pub queued: u64,
    pub committed_records: u64,
    pub commits: u64,
    pub last_commit_us: u64,
    pub max_commit_us: u64,
    pub write_errors: u64,
    pub shed_records: u64,
}

async fn daemon(Extract(state): Extract<State>) -> Json<DaemonReport> {
    let m = &state.metrics;
    let s = &state.store;
    let config = state.config.current();
    Json(DaemonReport {
        location: config.daemon.location.clone(),
        locations: config.daemon.locations.clone(),
        speaking: m.speaking.load(Ordering::Relaxed),
        speaker: m.speaker(),
        services: config.services.len(),
        probes: m.probes.load(Ordering::Relaxed),
        probes_failed: m.probes_failed.load(Ordering::Relaxed),
        probes_late: m.probes_late.load(Ordering::Relaxed),
        in_flight: m.in_flight.load(Ordering::Relaxed),
        lateness: m.lateness.summary(),
        store: StoreReport {
            queued: s.queued.load(Ordering::Relaxed),
            committed_records: s.committed_records.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            last_commit_us: s.last_commit_us.load(Ordering::Relaxed),
            max_commit_us: s.max_commit_us.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            shed_records: s.shed_records.load(Ordering::Relaxed),
        },
    })
}
