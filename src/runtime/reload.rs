//! Live reload: what a new config changes against the running one — services added, removed,
//! changed or unchanged — and which settings take effect only at a restart. Pure: configs in,
//! a plan out; `daemon` carries it out.

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::{Config, Service};

/// What a reload does.
#[derive(Debug)]
pub struct Plan {
    /// The config to run from now on: the new one, with the running value of every setting
    /// in `at_restart`.
    pub config: Config,
    /// Services to start, in config order.
    pub added: Vec<Arc<Service>>,
    /// Ids of services to stop.
    pub removed: Vec<String>,
    /// Services whose settings changed: their tasks take the new ones, keeping their state.
    pub changed: Vec<Arc<Service>>,
    pub unchanged: usize,
    /// Settings that changed in the file but apply only at a restart (`[daemon] listen`, …).
    pub at_restart: Vec<&'static str>,
}

impl Plan {
    /// Whether anything about the services changed.
    pub fn touches_services(&self) -> bool {
        !(self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty())
    }
}

/// Compares `new` with the `running` config.
pub fn plan(running: &Config, mut new: Config) -> Plan {
    let mut at_restart = Vec::new();
    {
        let (old, now) = (&running.daemon, &mut new.daemon);
        let mut keep = |key: &'static str, differs: bool| {
            if differs {
                at_restart.push(key);
            }
        };
        keep("[daemon] database", old.database != now.database);
        keep("[daemon] listen", old.listen != now.listen);
        keep("[daemon] location", old.location != now.location);
        keep(
            "[daemon] max_in_flight",
            old.max_in_flight != now.max_in_flight,
        );
        keep(
            "[daemon] flush_interval",
            old.flush_interval != now.flush_interval,
        );
        keep("[daemon] retention", old.retention != now.retention);
        keep(
            "[daemon] worker_threads",
            old.worker_threads != now.worker_threads,
        );
        now.database = old.database.clone();
        now.listen = old.listen;
        if now.location != old.location {
            // The list was checked against the new location; the running one keeps its own.
            now.location = old.location.clone();
            now.locations = old.locations.clone();
        }
        now.max_in_flight = old.max_in_flight;
        now.flush_interval = old.flush_interval;
        now.retention = old.retention;
        now.worker_threads = old.worker_threads;
    }
    if running.smtp != new.smtp {
        at_restart.push("[smtp]");
        new.smtp = running.smtp.clone();
    }

    let kept: HashSet<&str> = new.services.iter().map(|s| s.id.as_str()).collect();
    let removed = running
        .services
        .iter()
        .filter(|s| !kept.contains(s.id.as_str()))
        .map(|s| s.id.clone())
        .collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut unchanged = 0;
    for service in &new.services {
        match running.service(&service.id) {
            None => added.push(service.clone()),
            Some(old) if old != service.as_ref() => changed.push(service.clone()),
            Some(_) => unchanged += 1,
        }
    }
    Plan {
        config: new,
        added,
        removed,
        changed,
        unchanged,
        at_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(daemon: &str, services: &[(&str, &str)]) -> Config {
        let mut text = format!(
            "[daemon]\n{daemon}\n[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n"
        );
        for (id, extra) in services {
            text.push_str(&format!(
                "[[service]]\nid = \"{id}\"\ncontract = \"c\"\ntcp = \"127.0.0.1:9\"\n{extra}\n"
            ));
        }
        crate::config::parse(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn services_are_sorted_into_added_removed_changed_and_unchanged() {
        let running = config(
            "",
            &[("a", ""), ("b", ""), ("c", "interval = \"30s\""), ("d", "")],
        );
        let new = config(
            "",
            &[
                ("a", ""),
                ("c", "interval = \"20s\""),
                ("d", "confirm_down = 3"),
                ("e", ""),
            ],
        );
        let plan = plan(&running, new);
        let ids = |services: &[Arc<Service>]| -> Vec<String> {
            services.iter().map(|s| s.id.clone()).collect()
        };
        assert_eq!(ids(&plan.added), ["e"]);
        assert_eq!(plan.removed, ["b"]);
        assert_eq!(ids(&plan.changed), ["c", "d"]);
        assert_eq!(plan.unchanged, 1);
        assert!(plan.at_restart.is_empty());
        assert!(plan.touches_services());
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let running = config(
            "",
            &[("a", "send = \"PING\"\nexpect = \"PONG\""), ("b", "")],
        );
        let plan = plan(&running, running.clone());
        assert!(!plan.touches_services());
        assert_eq!(plan.unchanged, 2);
    }

    #[test]
    fn a_changed_header_value_or_pattern_is_a_change() {
        let http = |extra: &str| -> Config {
            let text = format!(
                "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n\
                 [[service]]\nid = \"a\"\ncontract = \"c\"\nhttp = \"http://127.0.0.1:1/\"\n{extra}\n"
            );
            crate::config::parse(&text, Path::new("t.toml")).unwrap()
        };
        let secret_a = http("headers = { Authorization = \"Bearer one\" }");
        let secret_b = http("headers = { Authorization = \"Bearer two\" }");
        assert_eq!(plan(&secret_a, secret_b).changed.len(), 1);
        let regex_a = http("body_regex = \"ok\"");
        let regex_b = http("body_regex = \"ok|fine\"");
        assert_eq!(plan(&regex_a, regex_b).changed.len(), 1);
        assert_eq!(plan(&regex_a, regex_a.clone()).changed.len(), 0);
    }

    #[test]
    fn settings_that_need_a_restart_keep_their_running_value() {
        let running = config(
            "listen = \"127.0.0.1:9184\"\nmax_in_flight = 100\npublic_contracts = []",
            &[("a", "")],
        );
        let new = config(
            "listen = \"127.0.0.1:9999\"\nmax_in_flight = 10\ndatabase = \"other.db\"",
            &[("a", "")],
        );
        let plan = plan(&running, new);
        assert_eq!(
            plan.at_restart,
            [
                "[daemon] database",
                "[daemon] listen",
                "[daemon] max_in_flight"
            ]
        );
        assert_eq!(plan.config.daemon.listen, running.daemon.listen);
        assert_eq!(plan.config.daemon.max_in_flight, 100);
        assert_eq!(plan.config.daemon.database, running.daemon.database);
        // Reloadable [daemon] settings take the new value.
        assert_eq!(plan.config.daemon.public_contracts, None);
    }
}
