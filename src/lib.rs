//! slaprobe: an uptime and availability SLA prober.
//!
//! The binary (`main.rs`) only parses the command line and calls `cli::main`. The daemon is
//! `runtime::run`; ARCHITECTURE.md maps the layers below, lowest first.

pub mod clock;
pub mod text;

pub mod alert;
pub mod cli;
pub mod config;
pub mod http;
pub mod notify;
pub mod probe;
pub mod report;
pub mod runtime;
pub mod sla;
pub mod store;

pub use runtime::run;
