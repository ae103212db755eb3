//! Which maintenance windows apply to a service, as intervals of a period.

use std::time::Duration;

use super::calendar::{self, TimeZoneName};
use super::interval::Intervals;

/// `[[maintenance]]`.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub scope: MaintenanceScope,
    pub when: MaintenanceWhen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceScope {
    Services(Vec<String>),
    Contract(String),
}

#[derive(Debug, Clone)]
pub enum MaintenanceWhen {
    /// A single window `[start, end)`.
    Once {
        start: jiff::Timestamp,
        end: jiff::Timestamp,
    },
    /// A window of `duration` at each match of `cron`, read in `timezone`.
    Recurring {
        cron: String,
        duration: Duration,
        timezone: TimeZoneName,
    },
}

/// The union of the windows that apply to a service (named, or its whole contract) within
/// `[from, to)`.
pub fn windows(
    all: &[Maintenance],
    service: &str,
    contract: &str,
    from: i64,
    to: i64,
) -> Intervals {
    let mut result = Intervals::empty();
    for window in all {
        let applies = match &window.scope {
            MaintenanceScope::Services(ids) => ids.iter().any(|id| id == service),
            MaintenanceScope::Contract(id) => id == contract,
        };
        if !applies {
            continue;
        }
        let spans = spans(window, from, to);
        result = result.union(&spans);
    }
    result
}

/// One maintenance entry's windows within `[from, to)`.
pub fn spans(window: &Maintenance, from: i64, to: i64) -> Intervals {
    match &window.when {
        MaintenanceWhen::Once { start, end } => {
            Intervals::single(start.as_millisecond(), end.as_millisecond()).clip(from, to)
        }
        MaintenanceWhen::Recurring {
            cron,
            duration,
            timezone,
        } => match calendar::parse_cron(cron) {
            Ok(cron) => calendar::recurring(&cron, *duration, &timezone.zone, from, to),
            // Validated when the config was read; nothing to add if it somehow is not.
            Err(_) => Intervals::empty(),
        },
    }
}
