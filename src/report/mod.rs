//! Reports: the SLA numbers of a service or contract over a period, read from the store and
//! computed by `sla`, rendered as text, JSON (DESIGN.md §3 fields) or CSV.

pub mod monthly;
pub mod statement;
pub mod status;

use serde::Serialize;

use crate::config::{Config, Contract, CreditOn, Service};
use crate::probe::Failure;
use crate::sla::Intervals;
use crate::sla::availability::Granularity;
use crate::sla::availability::{self, Availability, Exclusions};
use crate::sla::credit::{self, ContractCredit, Credit, Terms};
use crate::sla::response::{self, Ack};
use crate::sla::values::{Cents, Fraction};
use crate::sla::{calendar, maintenance};
use crate::store::db::{Conn, DbError};
use crate::store::exclusions::{self, Exclusion, Scope};
use crate::store::history::{self, Subject};
use crate::text::{human_duration, percent, timestamp};

/// `[from, to)` in UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// How a period was asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodSpec {
    /// A calendar month in the contract's time zone.
    Month {
        year: i16,
        month: i8,
    },
    Range {
        from_ms: i64,
        to_ms: i64,
    },
    /// The last `ms` up to now.
    Last {
        ms: i64,
    },
}

/// Why a period asked for cannot be read; each message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`{0}` is not a month: write YYYY-MM, e.g. 2026-10")]
    NotAMonth(String),
    #[error("`{0}` is not a month")]
    MonthOutOfRange(String),
    #[error("{which} `{text}` is not an RFC 3339 instant, e.g. 2026-10-01T00:00:00Z")]
    NotAnInstant { which: &'static str, text: String },
    #[error("`to` must come after `from`")]
    EndBeforeStart,
    #[error("last `{0}` is not a duration such as 24h, 7d or 30d")]
    NotADuration(String),
    #[error("give a month, from and to, or last")]
    NoPeriod,
}

impl PeriodSpec {
    /// Parses `YYYY-MM`.
    pub fn month(text: &str) -> Result<PeriodSpec, PeriodError> {
        let bad = || PeriodError::NotAMonth(text.to_string());
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        Ok(PeriodSpec::Month { year, month })
    }

    /// From the command line's or the API's choices: a month (`YYYY-MM`), a range of RFC 3339
    /// instants, or the last span (`30d`).
    pub fn from_args(
        month: Option<&str>,
        range: Option<(&str, &str)>,
        last: Option<&str>,
    ) -> Result<PeriodSpec, PeriodError> {
        if let Some(month) = month {
            return PeriodSpec::month(month);
        }
        if let Some((from, to)) = range {
            let from_ms = instant(from, "from")?;
            let to_ms = instant(to, "to")?;
            if to_ms <= from_ms {
                return Err(PeriodError::EndBeforeStart);
            }
            return Ok(PeriodSpec::Range { from_ms, to_ms });
        }
        if let Some(last) = last {
            return humantime::parse_duration(last)
                .map(|d| PeriodSpec::Last {
                    ms: d.as_millis() as i64,
                })
                .map_err(|_| PeriodError::NotADuration(last.to_string()));
        }
        Err(PeriodError::NoPeriod)
    }

    /// The period in `contract`'s zone.
    pub fn resolve(&self, contract: &Contract, now_ms: i64) -> Period {
        match *self {
            PeriodSpec::Month { year, month } => {
                let (from_ms, to_ms) = calendar::month(&contract.timezone.zone, year, month)
                    .expect("a validated month");
                Period { from_ms, to_ms }
            }
            PeriodSpec::Range { from_ms, to_ms } => Period { from_ms, to_ms },
            PeriodSpec::Last { ms } => Period {
                from_ms: now_ms - ms,
                to_ms: now_ms,
            },
        }
    }
}

fn instant(text: &str, which: &'static str) -> Result<i64, PeriodError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| PeriodError::NotAnInstant {
            which,
            text: text.to_string(),
        })
}

/// The JSON of DESIGN.md §3: one service's report, or `{"contract": …, "services": […]}`
/// with the contract's total fee and its total credit, capped (§6.1).
pub fn json(contract: Option<&Contract>, reports: &[ServiceReport]) -> serde_json::Value {
    let services: Vec<ReportJson> = reports.iter().map(|r| r.to_json()).collect();
    match contract {
        Some(contract) => {
            let total = contract_credit(contract, reports);
            serde_json::json!({
                "contract": contract.id,
                "services": services,
                "total_fee": total.total_fee.to_string(),
                "credit_total": total.total.to_string(),
                "credit_capped": total.capped,
                "contract_level": contract_level_json(contract, reports),
            })
        }
        None => serde_json::to_value(&services[0]).expect("reports serialize"),
    }
}

/// The contract as one service: down while any of its services is (DESIGN.md §6.1).
pub fn contract_level(reports: &[ServiceReport]) -> availability::ContractLevel {
    let numbers: Vec<&Availability> = reports.iter().map(|r| &r.numbers).collect();
    availability::ContractLevel::of(&numbers)
}

/// The `contract_level` block of a contract report or statement; under `credit_on =
/// "contract"` with the tier credit decided on it.
pub fn contract_level_json(contract: &Contract, reports: &[ServiceReport]) -> serde_json::Value {
    let c = contract_level(reports);
    let (availability, mttr_ms, mtbf_ms) = c.availability_mttr_mtbf();
    let mut block = serde_json::json!({
        "measured_s": seconds(c.measured_ms),
        "downtime_s": seconds(c.downtime_ms),
        "uptime_s": seconds(c.uptime_ms),
        "availability": availability,
        "incidents": c.incidents.len(),
        "mttr_s": mttr_ms.map(seconds),
        "mtbf_s": mtbf_ms.map(seconds),
    });
    let total_fee = Cents(reports.iter().map(|r| r.fee.0).sum());
    let start = reports.first().map_or(0, |r| r.numbers.from_ms);
    if let Some(tier) = contract_tier_credit(&contract.in_force(start), reports, total_fee) {
        block["credit_percent"] = serde_json::json!(tier.percent.as_f64() * 100.0);
        block["tier_credit_amount"] = serde_json::json!(tier.amount.to_string());
    }
    block
}

/// A contract's total credit over its services' reports: the exact sum of what each issues,
/// never above `credit_cap` × the total fee.
pub fn contract_credit(contract: &Contract, reports: &[ServiceReport]) -> ContractCredit {
    let mut issued: Vec<_> = reports.iter().map(|r| r.credit.issued).collect();
    let total_fee = Cents(reports.iter().map(|r| r.fee.0).sum());
    let start = reports.first().map_or(0, |r| r.numbers.from_ms);
    let terms = contract.in_force(start);
    if let Some(tier) = contract_tier_credit(&terms, reports, total_fee) {
        issued.push(tier.issued);
    }
    credit::contract_total(&issued, terms.credit_cap, total_fee)
}

/// Under `credit_on = "contract"`: the tier credit decided on the contract-level availability,
/// as a share of the total fee.
fn contract_tier_credit(
    terms: &Contract,
    reports: &[ServiceReport],
    total_fee: Cents,
) -> Option<Credit> {
    if terms.credit_on != CreditOn::Contract {
        return None;
    }
    let whole = contract_level(reports);
    let rules = Terms {
        tiers: &terms.credits,
        cap: terms.credit_cap,
        fee: total_fee,
        min: terms.credit_min,
        target: terms.target,
        downtime: None,
    };
    Some(credit::credit(rules, whole.uptime_ms, whole.measured_ms))
}

/// One service's numbers for a period.
#[derive(Debug, Clone)]
pub struct ServiceReport {
    pub service: String,
    /// The service's display name (its id when none is set).
    pub name: String,
    pub contract: String,
    pub numbers: Availability,
    pub target: Fraction,
    pub latency: Option<LatencyResult>,
    pub credit: Credit,
    /// The service's monthly fee, which its credit is a share of.
    pub fee: Cents,
    /// The `from` of the `[[contract.terms]]` in force at the period's start; `None`: the
    /// base contract.
    pub terms_from: Option<String>,
    pub currency: String,
    /// The first failure of each incident in `numbers.incidents` (same order), when recorded.
    pub causes: Vec<Option<Failure>>,
    /// On a fleet's PostgreSQL, the locations that saw each incident in `numbers.incidents`
    /// (same order), in the order their own outage began; empty lists on SQLite.
    pub confirmed_from: Vec<Vec<String>>,
    /// How each incident in `numbers.incidents` (same order) was responded to; `None` for a
    /// stretch with no recorded incident (no data counted as down).
    pub responses: Vec<Option<IncidentResponse>>,
    /// The response figures over the recorded incidents that started in the period.
    pub response: response::Summary,
    pub targets: response::Targets,
}

/// A recorded incident's acknowledgement, judged against the response targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentResponse {
    /// The recorded incident's own start (before the period, for one carried over).
    pub start_ms: i64,
    pub ack: Option<Ack>,
    pub judged: response::Judged,
    /// Whether it started in the period: only those count in the figures and the credit.
    pub counted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyResult {
    pub threshold_ms: u32,
    pub target: Fraction,
    pub good: u64,
    pub total: u64,
}

impl LatencyResult {
    pub fn met(&self) -> Option<bool> {
        (self.total > 0).then(|| !self.target.is_above_ratio(self.good, self.total))
    }
}

impl ServiceReport {
    /// Whether the availability reached the target, decided exactly; `None` if nothing was
    /// measured.
    pub fn met(&self) -> Option<bool> {
        let n = &self.numbers;
        (n.measured_ms > 0).then(|| {
            !self
                .target
                .is_above_ratio(n.uptime_ms as u64, n.measured_ms as u64)
        })
    }
}

/// What a period's numbers were computed from.
struct Computed<'a> {
    subject: Option<Subject<'a>>,
    timeline: availability::Timeline,
    /// Parallel to `timeline.incidents`: the locations that saw each (none on SQLite).
    seen_by: Vec<Vec<String>>,
    exclusions: Exclusions,
    numbers: Availability,
}

/// The §2 numbers of `service` for `period` as of `now_ms`, per the contract's granularity.
fn compute<'a>(
    conn: Conn<'_>,
    config: &Config,
    service: &'a Service,
    period: Period,
    now_ms: i64,
) -> Result<Computed<'a>, DbError> {
    let contract = config.contract_of(service).in_force(period.from_ms);
    let (from, to) = (period.from_ms, period.to_ms);
    let subject = history::subject(conn, config, service)?;
    let (timeline, seen_by) = match &subject {
        Some(s) => {
            let verdict = history::verdict(conn, s, from, to, now_ms)?;
            (verdict.timeline, verdict.seen_by)
        }
        None => (
            availability::Timeline {
                interval_ms: service.interval.as_millis() as i64,
                max_gap_ms: service.max_gap().as_millis() as i64,
                ..Default::default()
            },
            Vec::new(),
        ),
    };
    let exclusions = Exclusions {
        covered: calendar::covered(&contract.coverage, &contract.timezone.zone, from, to),
        maintenance: maintenance::windows(
            &config.maintenance,
            &service.id,
            &service.contract,
            from,
            to,
        ),
        agreed: Intervals::from_spans(exclusions::active_spans(
            conn,
            &service.id,
            &service.contract,
            from,
            to,
        )?),
        no_data_policy: contract.no_data,
    };
    let numbers = match (contract.granularity, &subject) {
        (Granularity::Minute, Some(s)) => {
            let down = history::down_minutes(conn, s, from, to.min(now_ms))?;
            availability::compute_minutes(&timeline, &exclusions, &down, from, to, now_ms)
        }
        _ => availability::compute(&timeline, &exclusions, from, to, now_ms),
    };
    Ok(Computed {
        subject,
        timeline,
        seen_by,
        exclusions,
        numbers,
    })
}

/// Only the availability numbers of `service` for `period` (no latency, no causes): what the
/// alerting needs for burn rates.
pub fn availability(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    period: Period,
    now_ms: i64,
) -> Result<Availability, DbError> {
    Ok(compute(conn, config, service, period, now_ms)?.numbers)
}

/// The month so far (in the contract's zone) and its error budget: the budget is
/// (1 − target) × the month's covered time outside maintenance.
#[derive(Debug, Clone)]
pub struct MonthBudget {
    pub month: String,
    pub numbers: Availability,
    pub budget: crate::sla::budget::Budget,
}

pub fn month_budget(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    now_ms: i64,
) -> Result<MonthBudget, DbError> {
    let contract = config.contract_of(service).in_force(now_ms);
    let tz = &contract.timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let month = this_month(config, service, now_ms);
    let (from, to) = (month.from_ms, month.to_ms);
    let numbers = availability(conn, config, service, month, now_ms)?;
    let window = calendar::covered(&contract.coverage, tz, from, to)
        .subtract(&maintenance::windows(
            &config.maintenance,
            &service.id,
            &service.contract,
            from,
            to,
        ))
        .total();
    Ok(MonthBudget {
        month: format!("{:04}-{:02}", today.year(), today.month()),
        budget: crate::sla::budget::budget(contract.target, window, numbers.downtime_ms),
        numbers,
    })
}

/// The month of `now_ms` in the zone of `service`'s contract.
fn this_month(config: &Config, service: &Service, now_ms: i64) -> Period {
    let tz = &config.contract_of(service).in_force(now_ms).timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let (from_ms, to_ms) = calendar::month(tz, today.year(), today.month()).expect("a real month");
    Period { from_ms, to_ms }
}

/// `month_budget` of each of `services`, in the order given; services sharing a month have
/// their history read at once (`history::preload`).
pub fn month_budgets(
    conn: Conn<'_>,
    config: &Config,
    services: &[&Service],
    now_ms: i64,
) -> Result<Vec<MonthBudget>, DbError> {
    let months: Vec<Period> = services
        .iter()
        .map(|s| this_month(config, s, now_ms))
        .collect();
    let mut budgets: Vec<Option<MonthBudget>> = vec![None; services.len()];
    for (month, indices) in alike(&months) {
        for same in indices.chunks(history::PRELOAD_AT_MOST) {
            let group: Vec<&Service> = same.iter().map(|&i| services[i]).collect();
            let span = (month.from_ms, month.to_ms);
            let _read_at_once = history::preload(conn, &group, span, history::Latency::Skipped)?;
            for &i in same {
                budgets[i] = Some(month_budget(conn, config, services[i], now_ms)?);
            }
        }
    }
    Ok(budgets.into_iter().flatten().collect())
}

/// The distinct periods of `periods`, each with the indices that have it, in first-seen order.
pub fn alike(periods: &[Period]) -> Vec<(Period, Vec<usize>)> {
    let mut groups: Vec<(Period, Vec<usize>)> = Vec::new();
    for (i, period) in periods.iter().enumerate() {
        match groups.iter_mut().find(|(p, _)| p == period) {
            Some((_, same)) => same.push(i),
            None => groups.push((*period, vec![i])),
        }
    }
    groups
}

/// The last `days` whole days up to today's end, in the zone of `service`'s contract (what
/// `daily` reads).
pub fn daily_span(config: &Config, service: &Service, days: i32, now_ms: i64) -> Period {
    let tz = &config.contract_of(service).timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let day_start = |d: jiff::civil::Date| calendar::local_to_ms(tz, d.at(0, 0, 0, 0));
    let first = today.saturating_sub(jiff::Span::new().days(days - 1));
    Period {
        from_ms: day_start(first),
        to_ms: day_start(today.tomorrow().unwrap_or(today)),
    }
}

/// One day's availability, for the status page's bars.
#[derive(Debug, Clone, PartialEq)]
pub struct DayBar {
    /// The day in the contract's zone.
    pub date: jiff::civil::Date,
    /// `None`: nothing measured that day.
    pub availability: Option<f64>,
    pub met: Option<bool>,
    pub measured_ms: i64,
    pub downtime_ms: i64,
}

/// The availability of each of the last `days` days (today last) in the contract's zone.
pub fn daily(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    days: i32,
    now_ms: i64,
) -> Result<Vec<DayBar>, DbError> {
    let contract = config.contract_of(service);
    let tz = &contract.timezone.zone;
    let today = calendar::local_date(tz, now_ms);
    let day_start = |d: jiff::civil::Date| calendar::local_to_ms(tz, d.at(0, 0, 0, 0));
    let first = today.saturating_sub(jiff::Span::new().days(days - 1));
    // One read of the whole span, then each day in memory (second granularity); minute
    // granularity needs each day's down minutes from the store.
    let span = daily_span(config, service, days, now_ms);
    let whole = compute(conn, config, service, span, now_ms)?;
    let mut bars = Vec::with_capacity(days as usize);
    let mut date = first;
    while date <= today {
        let (start, end) = (day_start(date), day_start(date.tomorrow().unwrap_or(date)));
        let numbers = match contract.granularity {
            Granularity::Second => {
                let exclusions = Exclusions {
                    covered: whole.exclusions.covered.clip(start, end),
                    maintenance: whole.exclusions.maintenance.clip(start, end),
                    agreed: whole.exclusions.agreed.clip(start, end),
                    no_data_policy: whole.exclusions.no_data_policy,
                };
                availability::compute(&whole.timeline, &exclusions, start, end, now_ms)
            }
            Granularity::Minute => availability(
                conn,
                config,
                service,
                Period {
                    from_ms: start,
                    to_ms: end,
                },
                now_ms,
            )?,
        };
        let met = (numbers.measured_ms > 0).then(|| {
            !contract
                .target
                .is_above_ratio(numbers.uptime_ms as u64, numbers.measured_ms as u64)
        });
        bars.push(DayBar {
            date,
            availability: numbers.availability(),
            met,
            measured_ms: numbers.measured_ms,
            downtime_ms: numbers.downtime_ms,
        });
        date = match date.tomorrow() {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    Ok(bars)
}

/// Computes the reports of `services`, each for its period (`period_of`, e.g. a month in its
/// contract's zone) as of `now_ms`, in the order given. Services sharing a period have their
/// history read at once (`history::preload`).
pub fn service_reports(
    conn: Conn<'_>,
    config: &Config,
    services: &[&Service],
    period_of: impl Fn(&Service) -> Period,
    now_ms: i64,
) -> Result<Vec<ServiceReport>, (String, DbError)> {
    let periods: Vec<Period> = services.iter().map(|s| period_of(s)).collect();
    let mut reports: Vec<Option<ServiceReport>> = vec![None; services.len()];
    for (period, indices) in alike(&periods) {
        for same in indices.chunks(history::PRELOAD_AT_MOST) {
            let group: Vec<&Service> = same.iter().map(|&i| services[i]).collect();
            let span = (period.from_ms, period.to_ms);
            let _read_at_once = history::preload(conn, &group, span, history::Latency::Counted)
                .map_err(|e| (group[0].id.clone(), e))?;
            for &i in same {
                let report = service_report(conn, config, services[i], period, now_ms)
                    .map_err(|e| (services[i].id.clone(), e))?;
                reports[i] = Some(report);
            }
        }
    }
    Ok(reports.into_iter().flatten().collect())
}

/// Computes the report of `service` for `period` as of `now_ms`.
pub fn service_report(
    conn: Conn<'_>,
    config: &Config,
    service: &Service,
    period: Period,
    now_ms: i64,
) -> Result<ServiceReport, DbError> {
    let base = config.contract_of(service);
    let terms_from = base.terms_at(period.from_ms).map(|t| t.from.clone());
    let contract = base.in_force(period.from_ms);
    let fee = config.fee_of(service, &contract);
    let Computed {
        subject,
        timeline,
        seen_by,
        exclusions,
        numbers,
    } = compute(conn, config, service, period, now_ms)?;
    // Each incident counted is (part of) one of the verdict's: the locations that saw that one.
    let confirmed_from = numbers
        .incidents
        .iter()
        .map(|i| {
            timeline
                .incidents
                .iter()
                .zip(&seen_by)
                .find(|((s, e), _)| *s <= i.start_ms && e.is_none_or(|e| i.start_ms < e))
                .map(|(_, seen)| seen.clone())
                .unwrap_or_default()
        })
        .collect();
    let targets = config.targets_of(service, &contract);
    let responses = match &subject {
        Some(s) => responses(conn, s, &numbers, targets, period, now_ms)?,
        None => vec![None; numbers.incidents.len()],
    };
    // Under minute granularity a run of down minutes takes the cause of the recorded incident
    // it falls in (kept for ever), else its first failure (kept as long as raw outcomes).
    let causes = match (contract.granularity, &subject) {
        (Granularity::Minute, Some(s)) => numbers
            .incidents
            .iter()
            .zip(&responses)
            .map(|(i, recorded)| match recorded {
                Some(r) => history::incident_cause(conn, s, r.start_ms),
                None => history::first_failure_in(conn, s, i.start_ms, i.end_ms.unwrap_or(now_ms)),
            })
            .collect::<Result<_, _>>()?,
        (Granularity::Second, Some(s)) => numbers
            .incidents
            .iter()
            .map(|i| history::incident_cause(conn, s, i.start_ms))
            .collect::<Result<_, _>>()?,
        (_, None) => vec![None; numbers.incidents.len()],
    };
    let latency = match (service.latency, &subject) {
        (Some(slo), Some(s)) => {
            let measured = measured_time(&numbers, &timeline, &exclusions, now_ms);
            let threshold_ms = slo.threshold.as_millis() as u32;
            let (good, total) = history::latency_counts(conn, s, &measured, threshold_ms)?;
            Some(LatencyResult {
                threshold_ms,
                target: slo.target,
                good,
                total,
            })
        }
        (Some(slo), None) => Some(LatencyResult {
            threshold_ms: slo.threshold.as_millis() as u32,
            target: slo.target,
            good: 0,
            total: 0,
        }),
        (None, _) => None,
    };
    // Under `credit_on = "contract"` the tier credit is the contract's (see `contract_credit`);
    // a service keeps its downtime credit.
    let tiers: &[credit::CreditTier] = match contract.credit_on {
        CreditOn::Service => &contract.credits,
        CreditOn::Contract => &[],
    };
    let summary = response_summary(&responses);
    let credit = credit::credit(
        Terms {
            tiers,
            cap: contract.credit_cap,
            fee,
            min: contract.credit_min,
            target: contract.target,
            downtime: contract.downtime_credit,
        },
        numbers.uptime_ms,
        numbers.measured_ms,
    );
    let credit = match contract.breach_credit {
        Some(rule) => credit::with_breaches(
            credit,
            summary.breach_credit(fee, rule),
            contract.credit_min,
        ),
        None => credit,
    };
    Ok(ServiceReport {
        service: service.id.clone(),
        name: service.name().to_string(),
        contract: contract.id.clone(),
        numbers,
        target: contract.target,
        latency,
        credit,
        fee,
        terms_from,
        currency: contract.currency.clone(),
        causes,
        confirmed_from,
        responses,
        response: summary,
        targets,
    })
}

/// Each incident of `numbers` matched to the recorded incident it belongs to (under minute
/// granularity a run of down minutes inside it), with its acknowledgement, judged as of
/// `now_ms` against `targets`.
fn responses(
    conn: Conn<'_>,
    subject: &Subject<'_>,
    numbers: &Availability,
    targets: response::Targets,
    period: Period,
    now_ms: i64,
) -> Result<Vec<Option<IncidentResponse>>, DbError> {
    let Some(first) = numbers.incidents.first() else {
        return Ok(Vec::new());
    };
    let recorded = history::recorded_incidents(
        conn,
        subject,
        first.start_ms,
        numbers.to_ms.max(first.start_ms + 1),
        now_ms,
    )?;
    Ok(numbers
        .incidents
        .iter()
        .map(|i| {
            let end = i.end_ms.unwrap_or(now_ms);
            let r = recorded.iter().find(|r| {
                r.start_ms < end.max(i.start_ms + 1) && r.end_ms.is_none_or(|e| e > i.start_ms)
            })?;
            let judged = response::judge(r.response(), targets, now_ms);
            Some(IncidentResponse {
                start_ms: r.start_ms,
                ack: r.ack.clone(),
                judged,
                counted: period.from_ms <= r.start_ms && r.start_ms < period.to_ms,
            })
        })
        .collect())
}

/// The figures over the counted incidents, each recorded incident once.
fn response_summary(responses: &[Option<IncidentResponse>]) -> response::Summary {
    let mut seen = Vec::new();
    let counted = responses.iter().flatten().filter(|r| {
        let first = r.counted && !seen.contains(&r.start_ms);
        seen.push(r.start_ms);
        first
    });
    let judged: Vec<response::Judged> = counted.map(|r| r.judged).collect();
    response::Summary::of(&judged)
}

/// The measured time as intervals (what `compute` measured), for the latency SLO.
fn measured_time(
    numbers: &Availability,
    timeline: &availability::Timeline,
    exclusions: &Exclusions,
    now_ms: i64,
) -> crate::sla::Intervals {
    availability::measured(timeline, exclusions, numbers.from_ms, numbers.to_ms, now_ms)
}

/// A report in the JSON form of DESIGN.md §3 (seconds as numbers, fractions 0..1).
#[derive(Debug, Serialize)]
pub struct ReportJson {
    pub service: String,
    pub contract: String,
    pub from: String,
    pub to: String,
    pub partial: bool,
    pub period_s: f64,
    pub excluded_s: f64,
    pub out_of_coverage_s: f64,
    pub maintenance_s: f64,
    /// Agreed exclusions inside coverage and outside maintenance.
    pub exclusion_s: f64,
    pub no_data_s: f64,
    pub measured_s: f64,
    pub downtime_s: f64,
    pub uptime_s: f64,
    pub availability: Option<f64>,
    pub target: f64,
    pub met: Option<bool>,
    pub incidents: usize,
    pub mttr_s: Option<f64>,
    pub mtbf_s: Option<f64>,
    pub blips: usize,
    pub latency: Option<LatencyJson>,
    pub credit_percent: f64,
    pub credit_amount: String,
    /// The tier's part and the downtime credit's part of `credit_amount`, each rounded.
    pub tier_credit_amount: String,
    pub downtime_credit_amount: String,
    pub fee: String,
    pub terms_from: Option<String>,
    pub currency: String,
    /// Incident response (DESIGN.md §6.2), over the incidents that started in the period.
    pub acknowledged: usize,
    pub mtta_s: Option<f64>,
    pub response_breaches: u32,
    pub restore_breaches: u32,
    pub max_restore_s: Option<f64>,
    pub breach_credit_amount: String,
    /// Each incident that counts, with its downtime in the period.
    pub incident_list: Vec<IncidentJson>,
}

#[derive(Debug, Serialize)]
pub struct LatencyJson {
    pub threshold_ms: u32,
    pub target: f64,
    pub good: u64,
    pub total: u64,
    pub ratio: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct IncidentJson {
    pub start: String,
    pub end: Option<String>,
    pub downtime_s: f64,
    /// The first failure's reason and detail (`null` for a no-data stretch under `down`).
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    /// Start → acknowledgement, and start → end, of the recorded incident.
    pub ack_s: Option<f64>,
    pub restore_s: Option<f64>,
    pub response_breach: bool,
    pub restore_breach: bool,
    /// The locations of a fleet that saw it (absent on a single machine).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub confirmed_from: Vec<String>,
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl ServiceReport {
    pub fn to_json(&self) -> ReportJson {
        let n = &self.numbers;
        ReportJson {
            service: self.service.clone(),
            contract: self.contract.clone(),
            from: timestamp(n.from_ms),
            to: timestamp(n.to_ms),
            partial: n.partial,
            period_s: seconds(n.period_ms),
            excluded_s: seconds(n.excluded_ms),
            out_of_coverage_s: seconds(n.out_of_coverage_ms),
            maintenance_s: seconds(n.maintenance_ms),
            exclusion_s: seconds(n.exclusion_ms),
            no_data_s: seconds(n.no_data_ms),
            measured_s: seconds(n.measured_ms),
            downtime_s: seconds(n.downtime_ms),
            uptime_s: seconds(n.uptime_ms),
            availability: n.availability(),
            target: self.target.as_f64(),
            met: self.met(),
            incidents: n.incidents.len(),
            mttr_s: n.mttr_ms().map(seconds),
            mtbf_s: n.mtbf_ms().map(seconds),
            blips: n.blips,
            latency: self.latency.map(|l| LatencyJson {
                threshold_ms: l.threshold_ms,
                target: l.target.as_f64(),
                good: l.good,
                total: l.total,
                ratio: (l.total > 0).then(|| l.good as f64 / l.total as f64),
                met: l.met(),
            }),
            credit_percent: self.credit.percent.as_f64() * 100.0,
            credit_amount: self.credit.amount.to_string(),
            tier_credit_amount: self.credit.tier.round_half_up().to_string(),
            downtime_credit_amount: self.credit.downtime.round_half_up().to_string(),
            fee: self.fee.to_string(),
            terms_from: self.terms_from.clone(),
            currency: self.currency.clone(),
            acknowledged: self.response.acknowledged,
            mtta_s: self.response.mtta_ms.map(seconds),
            response_breaches: self.response.response_breaches,
            restore_breaches: self.response.restore_breaches,
            max_restore_s: self.response.max_restore_ms.map(seconds),
            breach_credit_amount: self.credit.breach.round_half_up().to_string(),
            incident_list: n
                .incidents
                .iter()
                .zip(&self.causes)
                .zip(&self.responses)
                .zip(&self.confirmed_from)
                .map(|(((i, cause), r), seen)| {
                    let ack = r.as_ref().and_then(|r| r.ack.as_ref());
                    let judged = r.as_ref().map(|r| r.judged);
                    IncidentJson {
                        start: timestamp(i.start_ms),
                        end: i.end_ms.map(timestamp),
                        downtime_s: seconds(i.downtime_ms),
                        reason: cause.as_ref().map(|c| c.reason.to_string()),
                        detail: cause.as_ref().map(|c| c.detail.clone()),
                        acknowledged_at: ack.map(|a| timestamp(a.at_ms)),
                        acknowledged_by: ack.and_then(|a| a.by.clone()),
                        ack_s: judged.and_then(|j| j.ack_ms).map(seconds),
                        restore_s: judged.and_then(|j| j.restore_ms).map(seconds),
                        response_breach: judged.is_some_and(|j| j.response_breach),
                        restore_breach: judged.is_some_and(|j| j.restore_breach),
                        confirmed_from: seen.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// The CSV header and one row per report (the scalar JSON fields).
pub fn to_csv(reports: &[ServiceReport]) -> String {
    let mut out = String::from(
        "service,contract,from,to,partial,period_s,excluded_s,out_of_coverage_s,maintenance_s,\
         no_data_s,measured_s,downtime_s,uptime_s,availability,target,met,incidents,mttr_s,\
         mtbf_s,blips,latency_good,latency_total,credit_percent,credit_amount,currency,\
         acknowledged,mtta_s,response_breaches,restore_breaches,max_restore_s,\
         breach_credit_amount\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in reports {
        let j = r.to_json();
        let fields = [
            csv_field(&j.service),
            csv_field(&j.contract),
            j.from,
            j.to,
            j.partial.to_string(),
            j.period_s.to_string(),
            j.excluded_s.to_string(),
            j.out_of_coverage_s.to_string(),
            j.maintenance_s.to_string(),
            j.no_data_s.to_string(),
            j.measured_s.to_string(),
            j.downtime_s.to_string(),
            j.uptime_s.to_string(),
            opt(j.availability.map(|a| a.to_string())),
            j.target.to_string(),
            opt(j.met.map(|m| m.to_string())),
            j.incidents.to_string(),
            opt(j.mttr_s.map(|v| v.to_string())),
            opt(j.mtbf_s.map(|v| v.to_string())),
            j.blips.to_string(),
            opt(j.latency.as_ref().map(|l| l.good.to_string())),
            opt(j.latency.as_ref().map(|l| l.total.to_string())),
            j.credit_percent.to_string(),
            j.credit_amount,
            csv_field(&j.currency),
            j.acknowledged.to_string(),
            opt(j.mtta_s.map(|v| v.to_string())),
            j.response_breaches.to_string(),
            j.restore_breaches.to_string(),
            opt(j.max_restore_s.map(|v| v.to_string())),
            j.breach_credit_amount,
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The text form: one block per service.
pub fn to_text(reports: &[ServiceReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let n = &r.numbers;
        let availability = match n.measured_ms {
            0 => "n/a (nothing measured)".to_string(),
            measured => percent(n.uptime_ms.max(0) as u64, measured as u64),
        };
        let met = match r.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        let mean = |v: Option<i64>| v.map_or("no failures".to_string(), human_duration);
        out.push_str(&format!(
            "{} ({}) {} – {}{}\n",
            r.service,
            r.contract,
            timestamp(n.from_ms),
            timestamp(n.to_ms),
            if n.partial {
                " (partial: up to now)"
            } else {
                ""
            }
        ));
        let expected = n.period_ms - n.out_of_coverage_ms - n.maintenance_ms - n.exclusion_ms;
        let coverage = if expected > 0 {
            100.0 * (1.0 - n.no_data_ms as f64 / expected as f64)
        } else {
            0.0
        };
        let lines = [
            (
                "availability",
                format!("{availability}  target {}  {met}", r.target),
            ),
            ("downtime", human_duration(n.downtime_ms)),
            ("measured", human_duration(n.measured_ms)),
            ("out of coverage", human_duration(n.out_of_coverage_ms)),
            ("maintenance", human_duration(n.maintenance_ms)),
            ("excluded by agreement", human_duration(n.exclusion_ms)),
            (
                "no data",
                format!(
                    "{} (monitoring coverage {coverage:.2}%)",
                    human_duration(n.no_data_ms)
                ),
            ),
            ("incidents", n.incidents.len().to_string()),
            ("MTTR", mean(n.mttr_ms())),
            ("MTBF", mean(n.mtbf_ms())),
            ("blips", n.blips.to_string()),
        ];
        let mut lines = lines.to_vec();
        lines.extend(response_figures(
            r,
            [
                "acknowledged",
                "MTTA",
                "response breaches",
                "restore breaches",
                "longest restore",
            ],
        ));
        for (label, value) in lines {
            out.push_str(&format!("  {label:<16} {value}\n"));
        }
        if let Some(l) = r.latency {
            let ratio = percent(l.good, l.total);
            out.push_str(&format!(
                "  {:<16} {ratio} of {} probes under {} ms (target {}) {}\n",
                "latency",
                l.total,
                l.threshold_ms,
                l.target,
                match l.met() {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "n/a",
                }
            ));
        }
        if !r.currency.is_empty() || r.credit.amount.0 > 0 {
            out.push_str(&format!(
                "  {:<16} {} = {} {}\n",
                "credit", r.credit.percent, r.credit.amount, r.currency
            ));
        }
        for (index, i) in n.incidents.iter().enumerate() {
            let response = incident_response(r, index);
            out.push_str(&format!(
                "    incident {} – {}: {}{}\n",
                timestamp(i.start_ms),
                i.end_ms.map_or("(ongoing)".to_string(), timestamp),
                human_duration(i.downtime_ms),
                if response.is_empty() {
                    String::new()
                } else {
                    format!("; {response}")
                }
            ));
        }
        out.push('\n');
    }
    out
}

/// The response figures of a report or statement, under `labels` (acknowledged, MTTA, response
/// breaches, restore breaches, longest restore): shown when the contract sets a target or an
/// incident was acknowledged.
pub fn response_figures(
    r: &ServiceReport,
    labels: [&'static str; 5],
) -> Vec<(&'static str, String)> {
    let s = &r.response;
    if r.targets == response::Targets::default() && s.acknowledged == 0 {
        return Vec::new();
    }
    let target = |breaches: u32, limit: Option<i64>| match limit {
        Some(l) => format!("{breaches} (target: within {})", human_duration(l)),
        None => breaches.to_string(),
    };
    let counted = {
        let mut starts: Vec<i64> = r
            .responses
            .iter()
            .flatten()
            .filter(|i| i.counted)
            .map(|i| i.start_ms)
            .collect();
        starts.dedup();
        starts.len()
    };
    let [acknowledged, mtta, responses, restores, longest] = labels;
    vec![
        (acknowledged, format!("{} of {counted}", s.acknowledged)),
        (mtta, s.mtta_ms.map_or("n/a".to_string(), human_duration)),
        (
            responses,
            target(s.response_breaches, r.targets.respond_within_ms),
        ),
        (
            restores,
            target(s.restore_breaches, r.targets.restore_within_ms),
        ),
        (
            longest,
            s.max_restore_ms.map_or("n/a".to_string(), human_duration),
        ),
    ]
}

/// How incident `index` of `r` was responded to: "acknowledged by jo after 4 m; restored in
/// 30 m; RESPONSE BREACH" (empty when there is nothing to say).
pub fn incident_response(r: &ServiceReport, index: usize) -> String {
    let Some(Some(i)) = r.responses.get(index) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let (Some(ack), Some(after)) = (&i.ack, i.judged.ack_ms) {
        let by = ack
            .by
            .as_deref()
            .map_or(String::new(), |b| format!(" by {b}"));
        parts.push(format!("acknowledged{by} after {}", human_duration(after)));
    } else if r.targets.respond_within_ms.is_some() {
        parts.push("not acknowledged".to_string());
    }
    if let Some(restore) = i.judged.restore_ms
        && r.targets != response::Targets::default()
    {
        parts.push(format!("restored in {}", human_duration(restore)));
    }
    if i.judged.response_breach {
        parts.push("RESPONSE BREACH".to_string());
    }
    if i.judged.restore_breach {
        parts.push("RESTORE BREACH".to_string());
    }
    parts.join("; ")
}

/// The agreed exclusions of `contract` (its own and its services') overlapping
/// `[from_ms, to_ms)`, revoked ones included, oldest first: what a statement lists.
pub fn agreed_exclusions(
    conn: Conn<'_>,
    config: &Config,
    contract: &Contract,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Exclusion>, DbError> {
    let mut found = exclusions::list(conn, from_ms, to_ms)?;
    found.retain(|e| covers_contract(config, e, &contract.id));
    Ok(found)
}

/// Whether `e` covers the contract `id` or one of its services.
pub fn covers_contract(config: &Config, e: &Exclusion, id: &str) -> bool {
    match &e.scope {
        Scope::Contract(c) => c == id,
        Scope::Service(s) => config.service(s).is_some_and(|s| s.contract == id),
    }
}

/// "#3  2026-10-10T10:00:00Z – 2026-10-10T12:00:00Z  service api  client firewall change
/// (by Jo, recorded …)", then the revocation if any.
pub fn describe_exclusion(e: &Exclusion) -> String {
    let scope = match &e.scope {
        Scope::Service(s) => format!("service {s}"),
        Scope::Contract(c) => format!("contract {c}"),
    };
    let by =
        e.by.as_deref()
            .map_or(String::new(), |b| format!(" by {b}"));
    let mut line = format!(
        "#{}  {} – {}  {scope}  {}  (recorded{by} {})",
        e.id,
        crate::text::timestamp_to_second(e.start_ms),
        crate::text::timestamp_to_second(e.end_ms),
        e.reason,
        crate::text::timestamp_to_second(e.at_ms)
    );
    if let Some(r) = &e.revoked {
        let by =
            r.by.as_deref()
                .map_or(String::new(), |b| format!(" by {b}"));
        line.push_str(&format!(
            "\n    REVOKED{by} {}: {}",
            crate::text::timestamp_to_second(r.at_ms),
            r.reason
        ));
    }
    line
}
