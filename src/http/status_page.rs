//! The status page at `/`: each public contract's services with their current state, a 90-day
//! availability bar, open incidents and upcoming maintenance. Server-rendered HTML without
//! script; every value is escaped. The daily bars are recomputed in the background: today's
//! every five minutes, all 90 days every hour.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use html_escape::encode_safe as esc;
use tokio::sync::watch;

use crate::config::{Config, Contract, LiveConfig, Service};
use crate::http::exposition::Exposition;
use crate::http::service_series::ServiceLabels;
use crate::report::{self, DayBar};
use crate::sla::maintenance::MaintenanceScope;
use crate::store::db::{Conn, DbError};
use crate::store::history;
use crate::text::Chain;
use crate::text::human_duration;

/// Days shown per bar.
pub const DAYS: i32 = 90;
/// Maintenance shown ahead.
const AHEAD_MS: i64 = 7 * 86_400_000;
/// Today's bars are recomputed this often.
const REFRESH: Duration = Duration::from_secs(300);
/// All the days of every bar are recomputed this often (and at start, after a reload and when a
/// day ends): an agreed exclusion recorded for a past day shows within the hour. Recomputing 90
/// days of every service every five minutes cost about what probing did.
const FULL_REFRESH: Duration = Duration::from_secs(3600);
const FIRST_REFRESH: Duration = Duration::from_secs(2);

pub struct StatusPage {
    config: LiveConfig,
    exposition: Arc<Exposition>,
    /// Per service: the last `DAYS` days as of the latest refresh, in runs of alike days.
    bars: RwLock<HashMap<String, Bar>>,
}

/// A service's bar: consecutive days of the same kind are one run (a healthy service's 90 days
/// are one element, not 90). Today is kept on its own, so that it can be recomputed alone.
#[derive(Debug, Clone, Default)]
struct Bar {
    /// The days before today.
    past: Vec<Run>,
    past_measured_ms: i64,
    past_downtime_ms: i64,
    /// Today so far.
    today: Option<DayBar>,
}

#[derive(Debug, Clone, PartialEq)]
struct Run {
    class: &'static str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
    days: u32,
    /// The lowest daily availability in the run.
    lowest: Option<f64>,
    downtime_ms: i64,
}

impl Bar {
    /// The bar of `days`, today last.
    fn of(days: &[DayBar]) -> Bar {
        let mut bar = Bar::default();
        let Some((today, past)) = days.split_last() else {
            return bar;
        };
        for day in past {
            bar.past_measured_ms += day.measured_ms;
            bar.past_downtime_ms += day.downtime_ms;
            add_day(&mut bar.past, day);
        }
        // Kept for an hour by every service shown: no room to spare (most bars are one run).
        bar.past.shrink_to_fit();
        bar.today = Some(today.clone());
        bar
    }

    /// The runs shown: the past days' runs, and today added to the last of them when alike.
    /// (The runs before the last are borrowed; the last one or two are made here.)
    fn runs(&self) -> (&[Run], Vec<Run>) {
        let (head, mut tail) = match self.past.split_last() {
            Some((last, head)) => (head, vec![last.clone()]),
            None => (&[][..], Vec::new()),
        };
        if let Some(today) = &self.today {
            add_day(&mut tail, today);
        }
        (head, tail)
    }

    /// Measured and down time over all the days shown.
    fn totals(&self) -> (i64, i64) {
        let today = self
            .today
            .as_ref()
            .map_or((0, 0), |d| (d.measured_ms, d.downtime_ms));
        (
            self.past_measured_ms + today.0,
            self.past_downtime_ms + today.1,
        )
    }
}

/// Adds `day` to `runs`: to the last run when of the same kind, else as a run of its own. Days
/// below target stay single: each shows its own figure.
fn add_day(runs: &mut Vec<Run>, day: &DayBar) {
    let class = match day.met {
        Some(true) => "d-ok",
        Some(false) => "d-miss",
        None => "d-none",
    };
    match runs.last_mut() {
        Some(run) if run.class == class && class != "d-miss" => {
            run.last = day.date;
            run.days += 1;
            run.lowest = match (run.lowest, day.availability) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            run.downtime_ms += day.downtime_ms;
        }
        _ => runs.push(Run {
            class,
            first: day.date,
            last: day.date,
            days: 1,
            lowest: day.availability,
            downtime_ms: day.downtime_ms,
        }),
    }
}

impl StatusPage {
    pub fn new(config: LiveConfig, exposition: Arc<Exposition>) -> StatusPage {
        StatusPage {
            config,
            exposition,
            bars: RwLock::new(HashMap::new()),
        }
    }

    fn public(config: &Config) -> impl Iterator<Item = &Contract> {
        let public = config.daemon.public_contracts.as_ref();
        config
            .contracts
            .iter()
            .filter(move |c| public.is_none_or(|ids| ids.contains(&c.id)))
    }

    /// Recomputes the bars of every public service: all their days when `full`, else today's
    /// (and all the days of a service whose today has become yesterday, or that has no bar).
    pub fn refresh_bars(&self, conn: Conn<'_>, now_ms: i64, full: bool) -> Result<(), DbError> {
        let config = self.config.current();
        let public: Vec<&str> = Self::public(&config).map(|c| c.id.as_str()).collect();
        let services: Vec<&Service> = config
            .services
            .iter()
            .filter(|s| public.contains(&s.contract.as_str()))
            .map(|s| &**s)
            .collect();
        if full {
            Self::each_days(conn, &config, &services, DAYS, now_ms, |id, days| {
                self.set_bar(id, Bar::of(&days));
            })?;
            // The bars of services no longer shown go.
            let shown: std::collections::HashSet<&str> =
                services.iter().map(|s| s.id.as_str()).collect();
            let mut bars = self.bars.write().unwrap_or_else(|p| p.into_inner());
            bars.retain(|id, _| shown.contains(id.as_str()));
            return Ok(());
        }
        let mut stale = std::collections::HashSet::new();
        Self::each_days(conn, &config, &services, 1, now_ms, |id, mut days| {
            let today = days.pop();
            let mut bars = self.bars.write().unwrap_or_else(|p| p.into_inner());
            match bars.get_mut(id) {
                Some(bar)
                    if bar.today.as_ref().map(|d| &d.date) == today.as_ref().map(|d| &d.date) =>
                {
                    bar.today = today;
                }
                _ => {
                    stale.insert(id);
                }
            }
        })?;
        if !stale.is_empty() {
            let services: Vec<&Service> = services
                .into_iter()
                .filter(|s| stale.contains(s.id.as_str()))
                .collect();
            Self::each_days(conn, &config, &services, DAYS, now_ms, |id, days| {
                self.set_bar(id, Bar::of(&days));
            })?;
        }
        Ok(())
    }

    /// Puts `bar` in place of `id`'s bar, as soon as it is made: a hundred thousand services'
    /// new bars gathered before they replace the old took tens of megabytes.
    fn set_bar(&self, id: &str, bar: Bar) {
        let mut bars = self.bars.write().unwrap_or_else(|p| p.into_inner());
        match bars.get_mut(id) {
            Some(old) => *old = bar,
            None => {
                bars.insert(id.to_string(), bar);
            }
        }
    }

    /// Hands `each` the last `days` days of each of `services` in turn (one service's days at a
    /// time: a hundred thousand services' 90 days held at once would be most of a gigabyte),
    /// their history read at once for services whose days are the same (a contract's zone),
    /// `PRELOAD_AT_MOST` at a time.
    fn each_days<'s>(
        conn: Conn<'_>,
        config: &Config,
        services: &[&'s Service],
        days: i32,
        now_ms: i64,
        mut each: impl FnMut(&'s str, Vec<DayBar>),
    ) -> Result<(), DbError> {
        let spans: Vec<report::Period> = services
            .iter()
            .map(|s| report::daily_span(config, s, days, now_ms))
            .collect();
        for (span, indices) in report::alike(&spans) {
            for same in indices.chunks(history::PRELOAD_AT_MOST) {
                let group: Vec<&Service> = same.iter().map(|&i| services[i]).collect();
                let span = (span.from_ms, span.to_ms);
                let _read_at_once =
                    history::preload(conn, &group, span, history::Latency::Skipped)?;
                for &i in same {
                    let service = services[i];
                    each(
                        &service.id,
                        report::daily(conn, config, service, days, now_ms)?,
                    );
                }
            }
        }
        Ok(())
    }

    /// The page. `conn` gives the causes of open incidents.
    pub fn render(&self, conn: Option<Conn<'_>>, now_ms: i64) -> String {
        let bars = self.bars.read().unwrap_or_else(|p| p.into_inner());
        let mut h = String::with_capacity(64 * 1024);
        h.push_str(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Service status</title>\n<style>\n\
             body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\n\
             table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:middle}\n\
             .state{font-weight:bold;white-space:nowrap}.up{color:#060}.down{color:#a00}.unknown{color:#666}\n\
             .bar{display:flex;height:1.6em;min-width:30em}.bar span{border-right:1px solid #fff}\n\
             .d-ok{background:#3a3}.d-miss{background:#e90}.d-none{background:#ccc}\n\
             .legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:-.1em}\n\
             .note{color:#555}\n</style>\n</head>\n<body>\n<h1>Service status</h1>\n",
        );
        let _ = writeln!(
            h,
            "<p class=\"note\">As of {}. Each bar covers the last {DAYS} days, oldest first, day by day in \
             the contract's time zone (hover for dates and figures).<span class=\"legend\"><span class=\"d-ok\"></span>target \
             met<span class=\"d-miss\"></span>below target<span class=\"d-none\"></span>not \
             measured</span></p>",
            esc(&minute(now_ms, &jiff::tz::TimeZone::UTC, "UTC"))
        );
        let config = self.config.current();
        let fleet = conn.and_then(|c| fleet_down(c, &config, now_ms));
        let store = Store {
            conn,
            fleet: fleet.as_ref(),
        };
        for contract in Self::public(&config) {
            self.contract_section(&mut h, &config, contract, &bars, &store, now_ms);
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    fn contract_section(
        &self,
        h: &mut String,
        config: &Config,
        contract: &Contract,
        bars: &HashMap<String, Bar>,
        store: &Store<'_>,
        now_ms: i64,
    ) {
        let (conn, fleet) = (store.conn, store.fleet);
        let zone = (&contract.timezone.zone, contract.timezone.name.as_str());
        let _ = writeln!(
            h,
            "<section>\n<h2>{}</h2>\n<table>\n<tr><th>Service</th><th>State</th><th>Last {DAYS} days</th>\
             <th>{DAYS}-day availability</th></tr>",
            esc(&contract.client)
        );
        let services: Vec<_> = config
            .services
            .iter()
            .filter(|s| s.contract == contract.id)
            .collect();
        let mut open = Vec::new();
        for service in &services {
            let labels = ServiceLabels::new(&service.id, &contract.id);
            let (mut up, mut since_s) = self.exposition.state(&labels).unwrap_or((-1, 0));
            // A fleet's page shows the verdict, not what this one location sees.
            if let Some(down) = fleet {
                (up, since_s) = match down.get(&service.id) {
                    Some(start_ms) => (0, start_ms / 1000),
                    None if up >= 0 => (1, 0),
                    None => (up, 0),
                };
            }
            let (class, word) = match up {
                1 => ("up", "Up"),
                0 => ("down", "Down"),
                _ => ("unknown", "Unknown"),
            };
            if since_s > 0 {
                open.push((service, since_s * 1000));
            }
            let empty = Bar::default();
            let service_bar = bars.get(&service.id).unwrap_or(&empty);
            let mut bar = String::new();
            let (runs, last) = service_bar.runs();
            for run in runs.iter().chain(&last) {
                let dates = if run.days == 1 {
                    run.first.to_string()
                } else {
                    format!("{} to {}", run.first, run.last)
                };
                let value = match (run.class, run.lowest) {
                    ("d-miss", Some(a)) => format!(
                        "{:.3}%, down {}",
                        a * 100.0,
                        human_duration(run.downtime_ms)
                    ),
                    ("d-ok", Some(a)) if run.days == 1 => format!("{:.3}%", a * 100.0),
                    ("d-ok", Some(a)) => format!("target met every day (lowest {:.3}%)", a * 100.0),
                    _ => "not measured".to_string(),
                };
                let _ = write!(
                    bar,
                    "<span class=\"{}\" style=\"flex:{}\" title=\"{}: {}\"></span>",
                    run.class,
                    run.days,
                    esc(&dates),
                    esc(&value)
                );
            }
            let (measured, down) = service_bar.totals();
            let overall = if measured > 0 {
                format!("{:.3}%", (measured - down) as f64 / measured as f64 * 100.0)
            } else {
                "n/a".to_string()
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"state {class}\">{word}</td><td><div class=\"bar\" \
                 role=\"img\" aria-label=\"daily availability, last {DAYS} days\">{bar}</div></td>\
                 <td>{overall}</td></tr>",
                esc(service.name())
            );
        }
        h.push_str("</table>\n<h3>Open incidents</h3>\n");
        if open.is_empty() {
            h.push_str("<p class=\"note\">None.</p>\n");
        } else {
            h.push_str("<ul>\n");
            for (service, start_ms) in open {
                let cause = conn
                    .and_then(|c| {
                        let subject = history::subject(c, config, service).ok()??;
                        history::service_status(c, &subject, now_ms)
                            .ok()?
                            .open_incident
                    })
                    .map(|incident| format!(" ({})", incident.first_failure.reason))
                    .unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<li>{} — down since {}{} ({} so far)</li>",
                    esc(service.name()),
                    esc(&minute(start_ms, zone.0, zone.1)),
                    esc(&cause),
                    esc(&human_duration(now_ms - start_ms))
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<h3>Upcoming maintenance (next 7 days)</h3>\n");
        let mut windows = Vec::new();
        for m in &config.maintenance {
            let who = match &m.scope {
                MaintenanceScope::Contract(id) if *id == contract.id => "all services".to_string(),
                MaintenanceScope::Services(ids) => {
                    let names: Vec<&str> = services
                        .iter()
                        .filter(|s| ids.contains(&s.id))
                        .map(|s| s.name())
                        .collect();
                    if names.is_empty() {
                        continue;
                    }
                    names.join(", ")
                }
                MaintenanceScope::Contract(_) => continue,
            };
            for &(start, end) in
                crate::sla::maintenance::spans(m, now_ms, now_ms + AHEAD_MS).spans()
            {
                windows.push((start, end, who.clone()));
            }
        }
        windows.sort();
        if windows.is_empty() {
            h.push_str("<p class=\"note\">None scheduled.</p>\n");
        } else {
            h.push_str("<ul>\n");
            for (start, end, who) in windows {
                let _ = writeln!(
                    h,
                    "<li>{} to {}: {}</li>",
                    esc(&minute(start, zone.0, zone.1)),
                    esc(&minute(end, zone.0, zone.1)),
                    esc(&who)
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</section>\n");
    }
}

/// `2026-11-22 10:05 CET`.
fn minute(ms: i64, zone: &jiff::tz::TimeZone, name: &str) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) if name == "UTC" => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Recomputes the bars shortly after start and after a reload (all days), then today's every
/// five minutes and all days every hour, until `stop`.
pub async fn refresh(
    page: Arc<StatusPage>,
    clock: crate::clock::Clock,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = FIRST_REFRESH;
    let mut reloads = page.config.clone();
    let mut last_full: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            true = reloads.changed() => {
                wait = FIRST_REFRESH;
                last_full = None;
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait = REFRESH;
        let full = last_full.is_none_or(|at| at.elapsed() >= FULL_REFRESH);
        let started = tokio::time::Instant::now();
        let page = page.clone();
        let now = clock.now_ms();
        let result =
            tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
                let db = crate::store::open_reader_db(&page.config.current().daemon)?;
                Ok(page.refresh_bars(db.conn(), now, full)?)
            })
            .await;
        match result {
            Ok(Err(e)) => {
                tracing::warn!(error = %Chain(&e), "Cannot refresh the status page's bars.");
            }
            Ok(Ok(())) if full => last_full = Some(started),
            _ => {}
        }
    }
}

/// What the page reads from the store besides the bars: the causes of open incidents, and on
/// a fleet's PostgreSQL which services the verdict has down.
struct Store<'a> {
    conn: Option<Conn<'a>>,
    fleet: Option<&'a HashMap<String, i64>>,
}

/// On a fleet's PostgreSQL: each service the verdict has down now, with the incident's start
/// (ms). `None` on SQLite, or when the store cannot say (the page then shows this daemon's own
/// view).
fn fleet_down(conn: Conn<'_>, config: &Config, now_ms: i64) -> Option<HashMap<String, i64>> {
    if !conn.is_postgres() {
        return None;
    }
    let seen = history::open_by_location(conn, config, now_ms).ok()?;
    let mut down = HashMap::new();
    for service in &config.services {
        let Some(open) = seen.get(&service.id) else {
            continue;
        };
        if open.len() >= config.quorum_of(service)
            && let Ok(Some(incident)) =
                history::verdict_incident(conn, config, service, open, now_ms)
        {
            down.insert(service.id.clone(), incident.start_ms);
        }
    }
    Some(down)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, met: Option<bool>, availability: Option<f64>, down_ms: i64) -> DayBar {
        DayBar {
            date: date.parse().unwrap(),
            availability,
            met,
            measured_ms: if met.is_some() { 86_400_000 } else { 0 },
            downtime_ms: down_ms,
        }
    }

    /// (class, first, last, days) of each run shown.
    fn shown(bar: &Bar) -> Vec<(&'static str, String, String, u32)> {
        let (runs, last) = bar.runs();
        runs.iter()
            .chain(&last)
            .map(|r| (r.class, r.first.to_string(), r.last.to_string(), r.days))
            .collect()
    }

    #[test]
    fn today_joins_the_last_run_when_alike_and_stands_alone_otherwise() {
        let past = [
            day("2026-10-01", Some(true), Some(0.9995), 43_000),
            day("2026-10-02", Some(true), Some(1.0), 0),
            day("2026-10-03", Some(false), Some(0.99), 864_000),
            day("2026-10-04", Some(true), Some(1.0), 0),
        ];
        let run = |class, first: &str, last: &str, days| {
            (class, first.to_string(), last.to_string(), days)
        };
        // Today alike: one run from 10-04 to today, its lowest figure today's.
        let mut days = past.to_vec();
        days.push(day("2026-10-05", Some(true), Some(0.9999), 8_640));
        let bar = Bar::of(&days);
        assert_eq!(
            shown(&bar),
            [
                run("d-ok", "2026-10-01", "2026-10-02", 2),
                run("d-miss", "2026-10-03", "2026-10-03", 1),
                run("d-ok", "2026-10-04", "2026-10-05", 2),
            ]
        );
        assert_eq!(bar.runs().1[0].lowest, Some(0.9999));
        assert_eq!(bar.totals(), (5 * 86_400_000, 43_000 + 864_000 + 8_640));
        // Today below target, or not measured: a run of its own.
        for (met, class) in [(Some(false), "d-miss"), (None, "d-none")] {
            let mut days = past.to_vec();
            days.push(day("2026-10-05", met, met.map(|_| 0.5), 0));
            let shown = shown(&Bar::of(&days));
            assert_eq!(shown.len(), 4);
            assert_eq!(shown[3], run(class, "2026-10-05", "2026-10-05", 1));
        }
        // Today alone (a service added today), and no day at all.
        let bar = Bar::of(&[day("2026-10-05", Some(true), Some(1.0), 0)]);
        assert_eq!(shown(&bar), [run("d-ok", "2026-10-05", "2026-10-05", 1)]);
        assert!(shown(&Bar::of(&[])).is_empty());
        assert_eq!(Bar::of(&[]).totals(), (0, 0));
    }
}
