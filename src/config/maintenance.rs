//! `[[maintenance]]` tables: one-off and recurring windows for services or whole contracts.

use std::collections::HashSet;

use super::fields::time_zone;
use super::reader::{Diagnostics, Table, Value, as_string};
use super::*;
use crate::sla::maintenance::{MaintenanceScope, MaintenanceWhen};

pub(super) fn maintenance_section(
    values: &[Value<'_, '_>],
    contracts: &[Contract],
    default_tz: &TimeZoneName,
    contract_ids: &HashSet<&str>,
    service_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Vec<Maintenance> {
    let mut windows = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[maintenance]]", d) else {
            continue;
        };
        let services = t.strings("services", d);
        let contract = t.string("contract", d);
        let start = t.instant("start", d);
        let end = t.instant("end", d);
        let duration = t.duration("duration", d);
        let cron = t.get("cron").and_then(|v| {
            d.parse(v, "cron", |v| {
                let text = as_string(v)?;
                crate::sla::calendar::parse_cron(text)
                    .map(|_| text.to_string())
                    .map_err(|e| {
                        format!(
                            "`{text}` is not a cron expression ({e}): write 5 fields, minute hour \
                             day-of-month month day-of-week, e.g. \"0 3 * * SUN\""
                        )
                    })
            })
        });
        let timezone = t
            .get("timezone")
            .and_then(|v| d.parse(v, "timezone", time_zone));

        let scope = match (services, contract) {
            (Some(_), Some(_)) => {
                d.error(
                    t.key_span("contract"),
                    "a window applies to `services` or to a `contract`, not both: keep one",
                );
                None
            }
            (Some(list), None) => {
                let unknown: Vec<&String> = list
                    .iter()
                    .filter(|s| !service_ids.contains(s.as_str()))
                    .collect();
                if list.is_empty() {
                    d.error(
                        t.key_span("services"),
                        "`services` is empty: name at least one service",
                    );
                    None
                } else if let Some(first) = unknown.first() {
                    d.error(
                        t.get("services").unwrap().span(),
                        format!("`services`: no [[service]] has id `{first}`"),
                    );
                    None
                } else {
                    Some(MaintenanceScope::Services(list))
                }
            }
            (None, Some(id)) => {
                if contract_ids.contains(id.as_str()) {
                    Some(MaintenanceScope::Contract(id))
                } else {
                    d.error(
                        t.get("contract").unwrap().span(),
                        format!("`contract`: no [[contract]] has id `{id}`"),
                    );
                    None
                }
            }
            (None, None) => {
                if !t.has("services") && !t.has("contract") {
                    t.missing(
                        "services",
                        "write services = [\"service-id\"] or contract = \"contract-id\"",
                        d,
                    );
                }
                None
            }
        };

        let when = match (start, cron) {
            (Some(_), Some(_)) => {
                d.error(
                    t.key_span("cron"),
                    "a window is one-off (`start`) or recurring (`cron`), not both: keep one",
                );
                None
            }
            (Some(start), None) => {
                if t.has("timezone") {
                    d.error(
                        t.key_span("timezone"),
                        "`timezone` applies to recurring (`cron`) windows; `start` carries its own offset",
                    );
                }
                let end = match (end, duration) {
                    (Some(_), Some(_)) => {
                        d.error(t.key_span("duration"), "give `end` or `duration`, not both");
                        None
                    }
                    (Some(end), None) => Some(end),
                    (None, Some(duration)) => jiff::SignedDuration::try_from(duration)
                        .ok()
                        .and_then(|span| start.checked_add(span).ok()),
                    (None, None) => {
                        if !t.has("end") && !t.has("duration") {
                            t.missing(
                                "duration",
                                "write duration = \"2h\" or end = \"<instant>\"",
                                d,
                            );
                        }
                        None
                    }
                };
                match end {
                    Some(end) if end <= start => {
                        d.error(t.key_span("end"), "`end` must come after `start`");
                        None
                    }
                    Some(end) => Some(MaintenanceWhen::Once { start, end }),
                    None => None,
                }
            }
            (None, Some(cron)) => {
                if t.has("end") {
                    d.error(
                        t.key_span("end"),
                        "a recurring window has a `duration`, not an `end`",
                    );
                }
                if duration.is_none() && !t.has("duration") {
                    t.missing("duration", "write duration = \"30m\"", d);
                }
                let zone = timezone.or_else(|| match &scope {
                    Some(MaintenanceScope::Contract(id)) => contracts
                        .iter()
                        .find(|c| &c.id == id)
                        .map(|c| c.timezone.clone()),
                    _ => None,
                });
                duration.map(|duration| MaintenanceWhen::Recurring {
                    cron,
                    duration,
                    timezone: zone.unwrap_or_else(|| default_tz.clone()),
                })
            }
            (None, None) => {
                if !t.has("start") && !t.has("cron") {
                    t.missing(
                        "start",
                        "write start = \"<instant>\" or cron = \"0 3 * * SUN\"",
                        d,
                    );
                }
                None
            }
        };
        t.finish(d);
        if let (Some(scope), Some(when)) = (scope, when) {
            windows.push(Maintenance { scope, when });
        }
    }
    windows
}
