//! Monthly client statements: once a month has closed in a contract's zone and the local time
//! is past `statement_hour` on the 1st, the statement is rendered and queued in the outbox, and
//! recorded with its SHA-256, in one transaction — exactly once per contract and month, across
//! restarts. `slaprobe statement --send` resends on purpose.

use std::time::Duration;

use lettre::message::Mailbox;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::{Config, Contract, LiveConfig, Service, StatementPolicy};
use crate::notify::MailOut;
use crate::notify::{Attachment, Email};
use crate::report::statement::{self, Statement};
use crate::report::{self, PeriodError, PeriodSpec};
use crate::sla::calendar;
use crate::store::db::{Conn, Db, DbError};
use crate::store::outbox::{self, Kind};
use crate::store::{SharedConnection, with_db};
use crate::store::{history, statements};
use crate::text::Chain;

/// How often the daemon looks for statements to send.
const CHECK_EVERY: Duration = Duration::from_secs(300);

/// A calendar month of a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `YYYY-MM`.
    pub label: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Month {
    pub fn of(contract: &Contract, label: &str) -> Result<Month, PeriodError> {
        let PeriodSpec::Month { year, month } = PeriodSpec::month(label)? else {
            unreachable!("PeriodSpec::month makes a month")
        };
        let (from_ms, to_ms) = calendar::month(&contract.timezone.zone, year, month)
            .ok_or_else(|| PeriodError::MonthOutOfRange(label.to_string()))?;
        Ok(Month {
            label: label.to_string(),
            from_ms,
            to_ms,
        })
    }
}

/// The month whose statement is due at `now_ms`: the previous month in the contract's zone,
/// once the local time has reached `statement_hour` on the 1st.
pub fn due_month(contract: &Contract, now_ms: i64) -> Option<Month> {
    let tz = &contract.timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let (this_month_start, _) = calendar::month(tz, today.year(), today.month())?;
    let send_from = calendar::local_to_ms(
        tz,
        jiff::civil::date(today.year(), today.month(), 1).at(
            contract.statement_hour as i8,
            0,
            0,
            0,
        ),
    );
    if now_ms < send_from {
        return None;
    }
    let previous = calendar::local_date(tz, this_month_start - 1);
    let (from_ms, to_ms) = calendar::month(tz, previous.year(), previous.month())?;
    Some(Month {
        label: format!("{:04}-{:02}", previous.year(), previous.month()),
        from_ms,
        to_ms,
    })
}

/// Renders the statement of `contract` for `month` as of `now_ms`.
pub fn render(
    conn: Conn<'_>,
    config: &Config,
    contract: &Contract,
    month: &Month,
    now_ms: i64,
) -> Result<Statement, DbError> {
    let period = report::Period {
        from_ms: month.from_ms,
        to_ms: month.to_ms,
    };
    let services: Vec<&Service> = config
        .services
        .iter()
        .filter(|s| s.contract == contract.id)
        .map(|s| &**s)
        .collect();
    let reports =
        report::service_reports(conn, config, &services, |_| period, now_ms).map_err(|(_, e)| e)?;
    let mut st = Statement::new(contract, &month.label, reports);
    st.provider = config.provider.clone();
    st.issue_date = (!st.partial)
        .then(|| calendar::local_date(&contract.timezone.zone, month.to_ms).to_string());
    st.exclusions = report::agreed_exclusions(conn, config, contract, month.from_ms, month.to_ms)?;
    Ok(st)
}

/// Whether any service missed its availability or latency target, or a credit is owed.
pub fn breached(st: &Statement) -> bool {
    st.credit_total.0 > 0
        || st.services.iter().any(|s| {
            s.met() == Some(false) || s.latency.as_ref().and_then(|l| l.met()) == Some(false)
        })
}

/// The e-mail: the text statement, the HTML statement as its alternative, the CSV attached.
pub fn email(contract: &Contract, st: &Statement) -> Email {
    Email {
        subject: format!(
            "[slaprobe] Availability statement {}: {} ({})",
            st.month, st.client, st.contract
        ),
        to: contract.statement_to.clone(),
        text: statement::to_text(st),
        html: Some(statement::to_html(st)),
        attachment: Some(Attachment {
            filename: format!("{}-{}.csv", st.contract, st.month),
            content_type: "text/csv; charset=utf-8".to_string(),
            body: statement::to_csv(st).into_bytes(),
        }),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `queue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// Written to the outbox as message `id`.
    Queued { id: i64, sha256: String },
    /// Recorded; nothing to send under `statements = "on_breach"` (the month was met).
    NotNeeded { sha256: String },
    /// Already recorded for this contract and month.
    AlreadyDone,
    /// No service of the contract has any outcome before the month's end.
    NoData,
}

/// What is shown of a month's statement in one format (DESIGN.md §6.1): what was recorded,
/// when it was, or else the fresh rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub bytes: Vec<u8>,
    /// When the shown bytes were recorded (`None`: a fresh rendering).
    pub recorded_ms: Option<i64>,
    /// The recorded bytes are shown and a fresh computation differs from them (JSON then
    /// carries `"recomputed_differs": true`).
    pub recomputed_differs: bool,
}

/// The statement `st` of `contract` and `month` in `format` (`text`, `html`, `json`, `csv`) as
/// recorded, unless `recompute` or nothing was recorded.
pub fn shown(
    conn: Conn<'_>,
    st: &Statement,
    format: &str,
    recompute: bool,
) -> Result<Shown, DbError> {
    let fresh = renderings(st)
        .into_iter()
        .find(|(f, _)| *f == format)
        .map(|(_, text)| text.into_bytes())
        .unwrap_or_default();
    let recorded = match recompute {
        // A database from before the record existed has no copy to show.
        false => statements::copy(conn, &st.contract, &st.month, format).unwrap_or(None),
        true => None,
    };
    Ok(match recorded {
        Some((bytes, at_ms)) if bytes != fresh => Shown {
            bytes: match format {
                "json" => flag_differs(&bytes),
                _ => bytes,
            },
            recorded_ms: Some(at_ms),
            recomputed_differs: true,
        },
        Some((bytes, at_ms)) => Shown {
            bytes,
            recorded_ms: Some(at_ms),
            recomputed_differs: false,
        },
        None => Shown {
            bytes: fresh,
            recorded_ms: None,
            recomputed_differs: false,
        },
    })
}

/// The recorded JSON with `"recomputed_differs": true` added.
fn flag_differs(json: &[u8]) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("recomputed_differs".into(), serde_json::Value::Bool(true));
    }
    let mut text = serde_json::to_string_pretty(&value).expect("JSON serializes");
    text.push('\n');
    text.into_bytes()
}

/// A statement in every format it is kept in, by the format's name.
pub fn renderings(st: &Statement) -> [(&'static str, String); 4] {
    [
        ("text", statement::to_text(st)),
        ("html", statement::to_html(st)),
        ("json", statement::to_json(st)),
        ("csv", statement::to_csv(st)),
    ]
}

/// Renders, records and (by the contract's policy, or always with `resend`) queues the
/// statement, in one transaction.
pub fn queue(
    db: &Db,
    config: &Config,
    contract: &Contract,
    month: &Month,
    from: &Mailbox,
    now_ms: i64,
    resend: bool,
) -> Result<Queued, DbError> {
    db.conn().transaction(|tx| {
        statements::lock(tx, &contract.id, &month.label)?;
        let recorded = statements::sends(tx, &contract.id, &month.label)?;
        if recorded.is_some() && !resend {
            return Ok(Queued::AlreadyDone);
        }
        let ids: Vec<&str> = config
            .services
            .iter()
            .filter(|s| s.contract == contract.id)
            .map(|s| s.id.as_str())
            .collect();
        let mut has_data = false;
        for id in &ids {
            let first = history::first_outcome_ms(tx, id)?;
            has_data |= first.is_some_and(|f| f < month.to_ms);
        }
        if !has_data && !resend {
            return Ok(Queued::NoData);
        }
        let st = render(tx, config, contract, month, now_ms)?;
        let sha256 = sha256_hex(statement::to_text(&st).as_bytes());
        let send = resend
            || match contract.statements {
                StatementPolicy::Always => true,
                StatementPolicy::OnBreach => breached(&st),
                StatementPolicy::Never => false,
            };
        let id = if send && !contract.statement_to.is_empty() {
            match crate::notify::compose(from, &email(contract, &st)) {
                Ok(composed) => Some(outbox::enqueue(tx, now_ms, Kind::Statement, &composed)?),
                Err(e) => {
                    error!(contract = %contract.id, error = %Chain(&e), "Cannot compose the statement.");
                    None
                }
            }
        } else {
            None
        };
        statements::record(tx, &contract.id, &month.label, &sha256, id, now_ms)?;
        let copies = renderings(&st);
        let copies: Vec<(&str, &[u8])> = copies.iter().map(|(f, b)| (*f, b.as_bytes())).collect();
        statements::keep_copies(tx, &contract.id, &month.label, &copies, now_ms)?;
        Ok(match id {
            Some(id) => Queued::Queued { id, sha256 },
            None => Queued::NotNeeded { sha256 },
        })
    })
}

/// The daemon's statement task: at start and every few minutes, queues each contract's due
/// statement if it was not yet.
pub async fn run(
    live: LiveConfig,
    db: SharedConnection,
    mail: Option<MailOut>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let mut warned_no_smtp = false;
    loop {
        let now = clock.now_ms();
        let config = live.current();
        for contract in &config.contracts {
            if matches!(contract.statements, StatementPolicy::Never)
                || contract.statement_to.is_empty()
            {
                continue;
            }
            let Some(month) = due_month(contract, now) else {
                continue;
            };
            let Some(mail) = &mail else {
                if !warned_no_smtp {
                    warn!(
                        contract = %contract.id,
                        month = %month.label,
                        "A statement is due but there is no [smtp] table; it is not sent."
                    );
                    warned_no_smtp = true;
                }
                continue;
            };
            let (config, contract_id, from) =
                (config.clone(), contract.id.clone(), mail.from.clone());
            let label = month.label.clone();
            let result = with_db(&db, move |conn| {
                let contract = config.contract(&contract_id).expect("configured");
                queue(conn, &config, contract, &month, &from, now, false)
            })
            .await;
            match result {
                Ok(Queued::Queued { id, sha256 }) => {
                    info!(contract = %contract.id, month = %label, outbox = id, %sha256, "Statement queued.");
                    mail.wake.notify_one();
                }
                Ok(Queued::NotNeeded { sha256 }) => info!(
                    contract = %contract.id, month = %label, %sha256,
                    "Statement recorded; not sent (statements = \"on_breach\" and the month met its targets)."
                ),
                Ok(Queued::AlreadyDone | Queued::NoData) => {}
                Err(e) => error!(contract = %contract.id, month = %label, error = %Chain(&e),
                    "Cannot queue the statement; trying again later."),
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(zone: &str, hour: u8) -> Contract {
        let text = format!(
            "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\ntimezone = \"{zone}\"\n\
             statement_hour = {hour}\n"
        );
        let config = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        config.contracts[0].clone()
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_statement_is_due_after_the_hour_on_the_first_in_the_contract_zone() {
        let berlin = contract("Europe/Berlin", 6);
        // 1 November 06:00 in Berlin (CET) is 05:00 UTC.
        assert_eq!(due_month(&berlin, ms("2026-11-01T04:59:59Z")), None);
        let october = due_month(&berlin, ms("2026-11-01T05:00:00Z")).unwrap();
        assert_eq!(october.label, "2026-10");
        // October in Berlin: 2026-09-30T22:00Z to 2026-10-31T23:00Z, 745 hours.
        assert_eq!(october.from_ms, ms("2026-09-30T22:00:00Z"));
        assert_eq!(october.to_ms, ms("2026-10-31T23:00:00Z"));
        assert_eq!((october.to_ms - october.from_ms) / 3_600_000, 745);
        // Late in November it is still October's statement that is due.
        assert_eq!(
            due_month(&berlin, ms("2026-11-22T10:00:00Z"))
                .unwrap()
                .label,
            "2026-10"
        );
        // January's statement is December's of the year before.
        let utc = contract("UTC", 0);
        assert_eq!(
            due_month(&utc, ms("2027-01-01T00:00:00Z")).unwrap().label,
            "2026-12"
        );
    }

    #[test]
    fn the_content_hash_is_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
