//! slaprobe: an uptime and availability SLA prober.
//!
//! The binary (`main.rs`) only parses the command line and calls `cli::main`. The daemon is
//! `daemon::run`; see ARCHITECTURE.md for the map of the modules below.

pub mod alert;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod endpoint;
pub mod exposition;
pub mod import;
pub mod mail;
pub mod metrics;
pub mod monthly;
pub mod probe;
pub mod reload;
pub mod report;
pub mod schedule;
pub mod scheduler;
pub mod sla;
pub mod statement;
pub mod status;
pub mod status_page;
pub mod store;
pub mod systemd;
pub mod tracker;

pub use daemon::run;
