//! Which maintenance windows apply to a service, as intervals of a period.

use super::calendar;
use super::interval::Intervals;
use crate::config::{Maintenance, MaintenanceScope, MaintenanceWhen, Service};

/// The union of the windows that apply to `service` (named, or its whole contract) within
/// `[from, to)`.
pub fn windows(all: &[Maintenance], service: &Service, from: i64, to: i64) -> Intervals {
    let mut result = Intervals::empty();
    for window in all {
        let applies = match &window.scope {
            MaintenanceScope::Services(ids) => ids.contains(&service.id),
            MaintenanceScope::Contract(id) => *id == service.contract,
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
