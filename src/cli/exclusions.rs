//! `slaprobe exclude` and `slaprobe exclusions`: agreed exclusions (a client-caused outage,
//! force majeure, a settled dispute) recorded, revoked and listed as audited acts in the
//! database, never in the config (DESIGN.md §6.1).

use std::process::ExitCode;

use clap::Args;

use super::{Format, usage_error};
use crate::clock::Clock;
use crate::config::Config;
use crate::report::{self, PeriodSpec};
use crate::sla::calendar;
use crate::store::exclusions::{self, Exclusion, NewExclusion, Revoked, Scope};
use crate::text::Chain;

#[derive(Debug, Args)]
pub struct ExcludeArgs {
    /// The service the exclusion covers.
    #[arg(long, conflicts_with_all = ["contract", "revoke"])]
    pub service: Option<String>,
    /// Every service of this contract.
    #[arg(long, conflicts_with = "revoke")]
    pub contract: Option<String>,
    /// Start, RFC 3339.
    #[arg(long, requires = "to", conflicts_with = "revoke")]
    pub from: Option<String>,
    /// End, RFC 3339.
    #[arg(long, requires = "from", conflicts_with = "revoke")]
    pub to: Option<String>,
    /// Why: shown in statements (required, also to revoke).
    #[arg(long)]
    pub reason: String,
    /// Who agreed or recorded it.
    #[arg(long)]
    pub by: Option<String>,
    /// Revoke the exclusion with this id instead (both acts stay listed).
    #[arg(long, value_name = "ID")]
    pub revoke: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ExclusionsArgs {
    /// Only those of this contract (and its services).
    #[arg(long)]
    pub contract: Option<String>,
    /// Only those overlapping this month (YYYY-MM, in the contract's zone; UTC without
    /// --contract).
    #[arg(long)]
    pub month: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn exclude(config: &Config, args: &ExcludeArgs) -> ExitCode {
    if args.reason.trim().is_empty() {
        return usage_error("--reason must say why (it is shown in statements)".into());
    }
    let conn = match crate::store::open_db(&config.daemon) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("{}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let now = Clock::system().now_ms();
    if let Some(id) = args.revoke {
        return match exclusions::revoke(conn.conn(), id, &args.reason, args.by.as_deref(), now) {
            Ok(Revoked::Done) => {
                println!("revoked exclusion {id}");
                ExitCode::SUCCESS
            }
            Ok(Revoked::NoSuchExclusion) => usage_error(format!("no exclusion has id {id}")),
            Ok(Revoked::AlreadyRevoked) => {
                usage_error(format!("exclusion {id} is revoked already"))
            }
            Err(e) => {
                eprintln!("{}", Chain(&e));
                ExitCode::FAILURE
            }
        };
    }
    let scope = match (&args.service, &args.contract) {
        (Some(id), None) if config.service(id).is_some() => Scope::Service(id.clone()),
        (None, Some(id)) if config.contract(id).is_some() => Scope::Contract(id.clone()),
        (Some(id), None) => {
            return usage_error(format!("{}: no service `{id}`", config.path.display()));
        }
        (None, Some(id)) => {
            return usage_error(format!("{}: no contract `{id}`", config.path.display()));
        }
        _ => return usage_error("give --service ID or --contract ID, with --from and --to".into()),
    };
    let (Some(from), Some(to)) = (&args.from, &args.to) else {
        return usage_error("give --from and --to (RFC 3339 instants)".into());
    };
    let (start_ms, end_ms) = match PeriodSpec::from_args(None, Some((from, to)), None) {
        Ok(PeriodSpec::Range { from_ms, to_ms }) => (from_ms, to_ms),
        Ok(_) => unreachable!("a range was given"),
        Err(e) => return usage_error(e.to_string()),
    };
    let new = NewExclusion {
        scope: &scope,
        start_ms,
        end_ms,
        reason: &args.reason,
        by: args.by.as_deref(),
    };
    match exclusions::add(conn.conn(), &new, now) {
        Ok(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

pub fn list(config: &Config, args: &ExclusionsArgs) -> ExitCode {
    let contract = match &args.contract {
        Some(id) => match config.contract(id) {
            Some(c) => Some(c),
            None => return usage_error(format!("{}: no contract `{id}`", config.path.display())),
        },
        None => None,
    };
    let (from_ms, to_ms) = match &args.month {
        None => (i64::MIN, i64::MAX),
        Some(month) => {
            let Ok(PeriodSpec::Month { year, month }) = PeriodSpec::month(month) else {
                return usage_error(format!(
                    "`{month}` is not a month: write YYYY-MM, e.g. 2026-10"
                ));
            };
            let zone = contract.map_or(jiff::tz::TimeZone::UTC, |c| c.timezone.zone.clone());
            match calendar::month(&zone, year, month) {
                Some(span) => span,
                None => return usage_error(format!("{year:04}-{month:02} is not a month")),
            }
        }
    };
    let found = crate::store::open_reader_db(&config.daemon)
        .map_err(anyhow::Error::from)
        .and_then(|conn| Ok(exclusions::list(conn.conn(), from_ms, to_ms)?));
    let mut found: Vec<Exclusion> = match found {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(contract) = contract {
        found.retain(|e| report::covers_contract(config, e, &contract.id));
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&found).expect("exclusions serialize")
        ),
        Format::Text => {
            if found.is_empty() {
                println!("no exclusions");
            }
            for e in &found {
                println!("{}", report::describe_exclusion(e));
            }
        }
    }
    ExitCode::SUCCESS
}
