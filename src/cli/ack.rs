//! `slaprobe ack SERVICE [--by NAME] [--note TEXT]`: on-call takes up a service's open
//! incident (DESIGN.md §6.2). The running daemon sees it within a second: no further
//! escalation step or STILL DOWN reminder, and ACKNOWLEDGED to those already told.

use std::process::ExitCode;

use clap::Args;

use super::usage_error;
use crate::clock::Clock;
use crate::config::Config;
use crate::sla::response::Ack;
use crate::store::acks::AckOutcome;
use crate::store::history;
use crate::text::{Chain, human_duration, timestamp_to_second};

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The service whose open incident is taken up.
    pub service: String,
    /// Who takes it up [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    /// What is being done, for the record and the ACKNOWLEDGED notice.
    #[arg(long)]
    pub note: Option<String>,
}

/// Exit 0 when acknowledged (now or before), 1 when the service has no open incident, 64 for
/// an unknown service or a bad name or note.
pub fn ack(config: &Config, args: &AckArgs) -> ExitCode {
    if config.service(&args.service).is_none() {
        return usage_error(format!("no service has id `{}`", args.service));
    }
    let now = Clock::system().now_ms();
    let by = args.by.clone().or_else(|| std::env::var("USER").ok());
    let ack = match Ack::new(now, by.as_deref(), args.note.as_deref()) {
        Ok(ack) => ack,
        Err(e) => return usage_error(e),
    };
    let outcome = crate::store::open_db(&config.daemon)
        .map_err(|e| Chain(&e).to_string())
        .and_then(|db| {
            history::acknowledge(db.conn(), config, &args.service, &ack)
                .map_err(|e| Chain(&e).to_string())
        });
    let service = &args.service;
    match outcome {
        Ok(AckOutcome::Acknowledged { start_ms }) => {
            println!(
                "acknowledged: {service} down since {} ({} ago) is taken up{}; no further \
                 escalation or reminders",
                timestamp_to_second(start_ms),
                human_duration(now - start_ms),
                ack.by.map_or(String::new(), |b| format!(" by {b}"))
            );
            ExitCode::SUCCESS
        }
        Ok(AckOutcome::Already { start_ms, ack }) => {
            println!(
                "already acknowledged: {service} down since {} was taken up{} at {}",
                timestamp_to_second(start_ms),
                ack.by.map_or(String::new(), |b| format!(" by {b}")),
                timestamp_to_second(ack.at_ms)
            );
            ExitCode::SUCCESS
        }
        Ok(AckOutcome::NoOpenIncident) => {
            eprintln!("{service} has no open incident: nothing to acknowledge");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
