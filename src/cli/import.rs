//! `slaprobe import`: backfill a service's outcomes from JSON lines (DESIGN.md §3), through the
//! same state machine as live outcomes. The whole file is checked before anything is written,
//! and it is written in one transaction: a bad line means nothing is imported.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Service;
use crate::probe::{Failure, Outcome, Reason};
use crate::sla::tracker::{Event, Tracker};
use crate::store::{self, Record, StoreError};

/// One line: `{"ts":"2026-10-01T00:00:30Z","ok":false,"latency_ms":12.5,"reason":"timeout"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    ts: String,
    ok: bool,
    latency_ms: f64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// At most this many bad lines are listed.
const MAX_ERRORS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Every bad line, as `FILE:LINE: message`.
    #[error("{}", .0.join("\n"))]
    BadLines(Vec<String>),
    #[error("{0} contains no outcomes")]
    Empty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub outcomes: usize,
    pub incidents_opened: usize,
    pub incidents_closed: usize,
    pub blips: usize,
    pub no_data: usize,
}

/// Parses JSON lines into outcomes, checking every line; blank lines are skipped.
pub fn parse(text: &str, file: &str) -> Result<Vec<Outcome>, ImportError> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut errors = Vec::new();
    let mut previous: Option<(usize, i64)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match parse_line(raw) {
            Err(message) => errors.push(format!("{file}:{number}: {message}")),
            Ok(outcome) => {
                if let Some((line, at)) = previous
                    && outcome.at_ms <= at
                {
                    errors.push(format!(
                        "{file}:{number}: `ts` is not after line {line}'s: timestamps must \
                         increase"
                    ));
                }
                previous = Some((number, outcome.at_ms));
                outcomes.push(outcome);
            }
        }
        if errors.len() >= MAX_ERRORS {
            errors.push(format!("{file}: (stopped after {MAX_ERRORS} errors)"));
            break;
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::BadLines(errors));
    }
    if outcomes.is_empty() {
        return Err(ImportError::Empty(file.to_string()));
    }
    Ok(outcomes)
}

fn parse_line(raw: &str) -> Result<Outcome, String> {
    let line: Line = serde_json::from_str(raw).map_err(|e| {
        format!(
            "{e}: write {{\"ts\":\"2026-10-01T00:00:30Z\",\"ok\":false,\"latency_ms\":12.5,\"reason\":\"timeout\"}}"
        )
    })?;
    let at = line.ts.parse::<jiff::Timestamp>().map_err(|_| {
        format!(
            "`ts` `{}` is not an RFC 3339 instant such as 2026-10-01T00:00:30Z",
            line.ts
        )
    })?;
    if !line.latency_ms.is_finite() || line.latency_ms < 0.0 || line.latency_ms > 3_600_000.0 {
        return Err(format!(
            "`latency_ms` {} must be a number of milliseconds from 0 to 3600000",
            line.latency_ms
        ));
    }
    let failure = match (line.ok, line.reason) {
        (true, None) => None,
        (true, Some(_)) => return Err("an ok outcome has no `reason`".to_string()),
        (false, None) => {
            return Err(format!(
                "a failed outcome needs a `reason`: one of {}",
                reasons()
            ));
        }
        (false, Some(reason)) => match Reason::parse(&reason) {
            Some(reason) => Some(Failure::new(
                reason,
                line.detail.unwrap_or_else(|| "imported".to_string()),
            )),
            None => return Err(format!("`reason` `{reason}` is not one of {}", reasons())),
        },
    };
    Ok(Outcome {
        at_ms: at.as_millisecond(),
        latency: Duration::from_micros((line.latency_ms * 1000.0).round() as u64),
        failure,
    })
}

fn reasons() -> String {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    names.join(", ")
}

/// Imports the JSON-lines file at `path` into `service`'s history in the database at `db`.
pub fn import(
    db: &Path,
    service: &Service,
    path: &Path,
    retention: Duration,
) -> Result<Summary, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let outcomes = parse(&text, &path.display().to_string())?;
    let recent = service.confirm_down.max(service.confirm_up) as usize;
    let (resume, _) = store::history_state(db, &service.id, recent)?;
    let mut tracker = Tracker::resume(service.tracker_rules(), resume);
    let mut summary = Summary::default();
    let mut records = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let first = !tracker.has_history();
        let events = tracker.observe(&outcome);
        for event in &events {
            match event {
                Event::IncidentOpened { .. } => summary.incidents_opened += 1,
                Event::IncidentClosed { .. } => summary.incidents_closed += 1,
                Event::Blip { .. } => summary.blips += 1,
                Event::NoData { .. } => summary.no_data += 1,
            }
        }
        records.push(Record {
            service: 0,
            outcome,
            events,
            first,
        });
    }
    let now_ms = crate::clock::Clock::system().now_ms();
    summary.outcomes = store::append_history(db, &service.id, records, now_ms, retention)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_lines() {
        let text = "{\"ts\":\"2026-10-01T00:00:00Z\",\"ok\":true,\"latency_ms\":12.5}\n\n\
                    {\"ts\":\"2026-10-01T00:00:30Z\",\"ok\":false,\"latency_ms\":1000,\"reason\":\"timeout\"}\n";
        let outcomes = parse(text, "f").unwrap();
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].latency, Duration::from_micros(12_500));
        assert_eq!(
            outcomes[1].failure.as_ref().unwrap().reason,
            Reason::Timeout
        );
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let text = "{\"ts\":\"2026-10-01T00:00:00Z\",\"ok\":true,\"latency_ms\":1}\n\
                    {\"ts\":\"2026-10-01T00:00:00Z\",\"ok\":true,\"latency_ms\":1}\n\
                    {\"ts\":\"yesterday\",\"ok\":true,\"latency_ms\":1}\n\
                    {\"ts\":\"2026-10-01T00:02:00Z\",\"ok\":false,\"latency_ms\":1}\n\
                    {\"ts\":\"2026-10-01T00:03:00Z\",\"ok\":false,\"latency_ms\":1,\"reason\":\"gremlins\"}\n\
                    {\"ts\":\"2026-10-01T00:04:00Z\",\"ok\":true,\"latency_ms\":-1}\n\
                    {\"ts\":\"2026-10-01T00:05:00Z\",\"ok\":true,\"latency_ms\":1,\"colour\":\"red\"}\n\
                    not json\n";
        let Err(ImportError::BadLines(errors)) = parse(text, "f.jsonl") else {
            panic!("accepted");
        };
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "f.jsonl:2",
                "f.jsonl:3",
                "f.jsonl:4",
                "f.jsonl:5",
                "f.jsonl:6",
                "f.jsonl:7",
                "f.jsonl:8"
            ]
        );
        assert!(errors[0].contains("must increase"), "{errors:?}");
        assert!(errors[2].contains("needs a `reason`"), "{errors:?}");
        assert!(errors[5].contains("unknown field"), "{errors:?}");
    }
}
