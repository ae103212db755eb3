//! The JSON API under `/api/v1/`: services and their state, reports and client statements —
//! the same numbers as the CLI, computed from the database on each request — and the one
//! write, `POST /api/v1/services/{id}/ack`, for the operator token only (DESIGN.md §6.2, §6.4).

use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::clock::Clock;
use crate::config::{Config, Service};
use crate::http::audience::Audience;
use crate::report::{self, PeriodSpec};
use crate::report::{monthly, status};
use crate::store::acks;
use crate::store::db::Conn;
use crate::store::history;

/// How many latest outcomes `/api/v1/services/{id}` lists.
const RECENT_OUTCOMES: usize = 50;
/// The incidents `/api/v1/services/{id}` lists: those of this span.
const INCIDENT_SPAN_MS: i64 = 90 * 86_400_000;

/// An error answer: `{"error": "..."}` with a status.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl ApiError {
    /// A token that matches no operator or client token.
    pub fn unauthorized() -> ApiError {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "the token is not valid here".into(),
        )
    }
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what)
}

fn bad_request(what: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, what)
}

/// What a request reads with: the config in force, the daemon's clock and who is asking.
#[derive(Clone)]
pub struct Reading {
    pub config: Arc<Config>,
    pub clock: Clock,
    pub audience: Audience,
}

/// Runs `f` with a read connection off the async threads.
async fn with_read<T: Send + 'static>(
    reading: Reading,
    f: impl FnOnce(Conn<'_>, &Config, i64) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let db = crate::store::open_reader_db(&reading.config.daemon)
            .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        f(db.conn(), &reading.config, reading.clock.now_ms())
    })
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed".into(),
        )
    })?
}

fn db_error(e: impl Into<crate::store::db::DbError>) -> ApiError {
    let e = e.into();
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}"))
}

/// The body of `POST /api/v1/services/{id}/ack`; empty is allowed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/services/{id}/ack` (operator token): acknowledges the service's open incident.
/// 200 with the acknowledgement (`"already": true` when someone came first, whose it is), 409
/// when no incident is open, 401 without the operator token (403 with a client token for its
/// own contract).
pub async fn ack(
    reading: Reading,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let config = reading.config.clone();
    let contract = config.service(&id).map(|s| s.contract.clone());
    match &reading.audience {
        Audience::Operator => {}
        Audience::Public => {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "acknowledging needs the operator token (Authorization: Bearer …)".into(),
            ));
        }
        Audience::Client(_) => {
            return Err(match contract {
                Some(c) if reading.audience.sees(&config, &c) => ApiError(
                    StatusCode::FORBIDDEN,
                    "a client token may read, not acknowledge".into(),
                ),
                _ => not_found(format!("no service `{id}`")),
            });
        }
    }
    if contract.is_none() {
        return Err(not_found(format!("no service `{id}`")));
    }
    let body: AckBody = if body.iter().all(u8::is_ascii_whitespace) {
        AckBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad_request(format!(
                "the body is {{\"by\": \"NAME\", \"note\": \"TEXT\"}} (both optional): {e}"
            ))
        })?
    };
    let now = reading.clock.now_ms();
    let ack = crate::sla::response::Ack::new(now, body.by.as_deref(), body.note.as_deref())
        .map_err(bad_request)?;
    let service = id.clone();
    let wanted = ack.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let db = crate::store::open_db(&config.daemon)
            .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        history::acknowledge(db.conn(), &config, &service, &wanted).map_err(db_error)
    })
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed".into(),
        )
    })??;
    let (start_ms, ack, already) = match outcome {
        acks::AckOutcome::Acknowledged { start_ms } => (start_ms, ack, false),
        acks::AckOutcome::Already { start_ms, ack } => (start_ms, ack, true),
        acks::AckOutcome::NoOpenIncident => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("`{id}` has no open incident: nothing to acknowledge"),
            ));
        }
    };
    tracing::info!(service = %id, by = ack.by.as_deref().unwrap_or("(not named)"), already, "Acknowledged through the API.");
    Ok(axum::Json(serde_json::json!({
        "service": id,
        "incident_start": crate::text::timestamp(start_ms),
        "acknowledged_at": crate::text::timestamp(ack.at_ms),
        "acknowledged_by": ack.by,
        "note": ack.note,
        "already": already,
    }))
    .into_response())
}

/// `GET /api/v1/services`.
pub async fn services(reading: Reading) -> Result<Response, ApiError> {
    let audience = reading.audience.clone();
    let lines = with_read(reading, move |conn, config, now| {
        config
            .services
            .iter()
            .filter(|s| audience.sees(config, &s.contract))
            .map(|s| status::line(conn, config, s, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "services": lines })).into_response())
}

/// `GET /api/v1/services/{id}`: state, the latest outcomes, the last 90 days' report with its
/// incidents.
pub async fn service(reading: Reading, Path(id): Path<String>) -> Result<Response, ApiError> {
    let audience = reading.audience.clone();
    let value = with_read(reading, move |conn, config, now| {
        let service = config
            .service(&id)
            .filter(|s| audience.sees(config, &s.contract))
            .ok_or_else(|| not_found(format!("no service `{id}`")))?;
        let line = status::line(conn, config, service, now).map_err(db_error)?;
        let recent = match history::service_num(conn, &id).map_err(db_error)? {
            Some(num) => history::latest_outcomes(conn, num, RECENT_OUTCOMES).map_err(db_error)?,
            None => Vec::new(),
        };
        let recent: Vec<_> = recent
            .iter()
            .rev()
            .map(|o| {
                serde_json::json!({
                    "at": crate::text::timestamp(o.at_ms),
                    "ok": o.is_ok(),
                    "latency_ms": f64::from(o.latency_us) / 1000.0,
                    "reason": o.reason.map(|r| r.to_string()),
                })
            })
            .collect();
        let period = report::Period {
            from_ms: now - INCIDENT_SPAN_MS,
            to_ms: now,
        };
        let last_90_days = report::service_report(conn, config, service, period, now)
            .map_err(db_error)?
            .to_json();
        Ok(serde_json::json!({
            "status": line,
            "recent_outcomes": recent,
            "last_90_days": last_90_days,
        }))
    })
    .await?;
    Ok(axum::Json(value).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    service: Option<String>,
    contract: Option<String>,
    month: Option<String>,
    from: Option<String>,
    to: Option<String>,
    last: Option<String>,
}

/// `GET /api/v1/report?(service=ID|contract=ID)&(month=YYYY-MM|from=T&to=T|last=30d)`: the
/// JSON of `slaprobe report --format json`.
pub async fn report(reading: Reading, Query(q): Query<ReportQuery>) -> Result<Response, ApiError> {
    let spec = PeriodSpec::from_args(
        q.month.as_deref(),
        q.from.as_deref().zip(q.to.as_deref()),
        q.last.as_deref(),
    )
    .map_err(|e| bad_request(e.to_string()))?;
    let audience = reading.audience.clone();
    let value = with_read(reading, move |conn, config, now| {
        let services: Vec<_> = match (&q.service, &q.contract) {
            (Some(id), None) => vec![
                config
                    .service(id)
                    .filter(|s| audience.sees(config, &s.contract))
                    .ok_or_else(|| not_found(format!("no service `{id}`")))?,
            ],
            (None, Some(id)) => {
                config
                    .contract(id)
                    .filter(|c| audience.sees(config, &c.id))
                    .ok_or_else(|| not_found(format!("no contract `{id}`")))?;
                config
                    .services
                    .iter()
                    .filter(|s| &s.contract == id)
                    .map(|s| &**s)
                    .collect()
            }
            _ => return Err(bad_request("give service=ID or contract=ID".into())),
        };
        let period_of = |s: &Service| spec.resolve(config.contract_of(s), now);
        let reports = report::service_reports(conn, config, &services, period_of, now)
            .map_err(|(_, e)| db_error(e))?;
        let contract = q.contract.as_deref().and_then(|id| config.contract(id));
        Ok(report::json(contract, &reports))
    })
    .await?;
    Ok(axum::Json(value).into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatementQuery {
    format: Option<String>,
    /// `recompute=true`: a fresh computation even when the month's statement was recorded.
    #[serde(default)]
    recompute: bool,
}

/// `GET /api/v1/contracts/{id}/statements/{YYYY-MM}?format=json|html|csv` (default json).
pub async fn statement(
    reading: Reading,
    Path((id, month)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_else(|| "json".into());
    let content_type = match format.as_str() {
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        other => {
            return Err(bad_request(format!(
                "format `{other}`: use json, html or csv"
            )));
        }
    };
    let audience = reading.audience.clone();
    let body = with_read(reading, move |conn, config, now| {
        let contract = config
            .contract(&id)
            .filter(|c| audience.sees(config, &c.id))
            .ok_or_else(|| not_found(format!("no contract `{id}`")))?;
        let month = monthly::Month::of(contract, &month).map_err(|e| bad_request(e.to_string()))?;
        let st = monthly::render(conn, config, contract, &month, now).map_err(db_error)?;
        monthly::shown(conn, &st, &format, q.recompute).map_err(db_error)
    })
    .await?;
    // A recorded statement is served as recorded; the header says when a fresh computation
    // differs (`?recompute=true` for that one).
    let differs = if body.recomputed_differs {
        "true"
    } else {
        "false"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("x-slaprobe-recomputed-differs"),
                differs,
            ),
        ],
        body.bytes,
    )
        .into_response())
}
