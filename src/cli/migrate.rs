//! `slaprobe migrate --to postgres://…`: moving a single machine's SQLite history into the
//! PostgreSQL database a fleet shares (DESIGN.md §6.3).

use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::store::pg::{self, PgTarget, migrate::MoveError};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database: a libpq URI such as postgres://slaprobe@db.example/slaprobe or
    /// postgresql:///slaprobe?host=/run/postgresql (no password in it).
    #[arg(long)]
    pub to: String,
    /// The variable holding the password (else PGPASSWORD).
    #[arg(long)]
    pub password_env: Option<String>,
    /// The location the history is filed under; default `[daemon] location`.
    #[arg(long)]
    pub location: Option<String>,
}

pub fn migrate(config: &Config, args: &MigrateArgs) -> ExitCode {
    if !pg::is_url(&args.to) {
        eprintln!(
            "`{}` is not a PostgreSQL URI: write postgres://USER@HOST/DB or \
             postgresql:///DB?host=/run/postgresql",
            args.to
        );
        return ExitCode::from(64);
    }
    let location = args.location.as_ref().unwrap_or(&config.daemon.location);
    let target = PgTarget {
        url: args.to.clone(),
        password_env: args.password_env.clone(),
    };
    let Some(database) = config.daemon.database.sqlite() else {
        eprintln!(
            "This config's history is already in PostgreSQL ({}): `slaprobe migrate` copies an \
             SQLite file; run it with the single machine's config",
            config.daemon.database
        );
        return ExitCode::from(64);
    };
    let started = std::time::Instant::now();
    match pg::migrate::move_history(database, &target, location) {
        Ok(copied) => {
            println!(
                "{} → PostgreSQL, location `{location}` ({:.1} s, one transaction):",
                database.display(),
                started.elapsed().as_secs_f64()
            );
            for (table, rows) in &copied.0 {
                println!("  {table:<17} {rows:>10}");
            }
            println!(
                "Next: stop the old daemon before its last outcomes (anything after this copy \
                 began is not in it), set `[daemon] database` to the PostgreSQL URI and \
                 `location = \"{location}\"`."
            );
            ExitCode::SUCCESS
        }
        Err(e @ (MoveError::LocationTaken(_) | MoveError::FleetTaken(_))) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{:#}\nnothing was written", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
