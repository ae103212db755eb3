//! The command line: `run`, `check`, `probe`, `status`, `report`, `statement`, `ack`, … (DESIGN.md
//! §3, §6).

pub mod ack;
pub mod exclusions;
pub mod import;
pub mod migrate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::Clock;
use crate::config::{self, Config};
use crate::probe::Prober;
use crate::text::timestamp_to_second;

/// sysexits.h: a usage or config error.
pub const EXIT_USAGE: u8 = 64;
/// sysexits.h: bad input data.
pub const EXIT_DATA: u8 = 65;

#[derive(Debug, Parser)]
#[command(
    name = "slaprobe",
    version,
    about = "Uptime and availability SLA prober",
    long_about = "Probes contracted services (HTTP, TCP, DNS), records every outcome and \
                  incident in SQLite, and reports availability against each contract."
)]
pub struct Cli {
    /// The config file [default: ./probes.toml, else /etc/slaprobe/probes.toml]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text (journald-friendly: no colours or timestamps under systemd) or JSON,
    /// one object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (systemd runs this).
    Run,
    /// Validate the config: exit 0 when valid, else 64 with every error as FILE:LINE:COL.
    Check,
    /// Probe one service now and print the outcome: exit 0 ok, 1 failed.
    Probe {
        /// The service id.
        service: String,
    },
    /// Each service's state, since when, and its last outcome.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The SLA numbers of a service or a contract over a period.
    Report(ReportArgs),
    /// Acknowledge a service's open incident: stops escalation and reminders (exit 1: none open).
    Ack(ack::AckArgs),
    /// Record an agreed exclusion (prints its id), or revoke one with --revoke ID.
    Exclude(exclusions::ExcludeArgs),
    /// List agreed exclusions, revoked ones included.
    Exclusions(exclusions::ExclusionsArgs),
    /// The client statement of a contract for a month.
    Statement {
        #[arg(long)]
        contract: String,
        /// YYYY-MM, in the contract's time zone.
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value_t = StatementFormat::Text)]
        format: StatementFormat,
        /// E-mail it to the contract's `statement_to` now (also when already sent), and record it.
        #[arg(long)]
        send: bool,
        /// Print a fresh computation even when the month's statement was recorded (sent).
        #[arg(long)]
        recompute: bool,
    },
    /// Copy the database consistently to FILE while the daemon runs (a new file).
    Backup {
        /// Where to write the copy; must not exist.
        file: PathBuf,
    },
    /// Copy this SQLite history into a fleet's PostgreSQL (--to postgres://…), all or nothing.
    Migrate(migrate::MigrateArgs),
    /// Backfill a service's outcomes from JSON lines; a bad line imports nothing (exit 65).
    Import {
        /// The service id.
        #[arg(long)]
        service: String,
        /// One JSON object per line: {"ts":…,"ok":…,"latency_ms":…,"reason":…}.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["service", "contract"])))]
#[command(group(clap::ArgGroup::new("when").required(true).args(["month", "from", "last"])))]
pub struct ReportArgs {
    /// One service.
    #[arg(long)]
    pub service: Option<String>,
    /// Every service of a contract.
    #[arg(long)]
    pub contract: Option<String>,
    /// A calendar month in the contract's time zone: YYYY-MM.
    #[arg(long)]
    pub month: Option<String>,
    /// Start (RFC 3339), with --to.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End (RFC 3339, exclusive), with --from.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// The last span up to now: 24h, 7d, 30d, …
    #[arg(long)]
    pub last: Option<String>,
    /// One location's own view instead of the fleet's verdict (one of `[daemon] locations`).
    #[arg(long)]
    pub location: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatementFormat {
    Text,
    Html,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Runs the command; what `main` returns.
pub fn main(cli: Cli) -> ExitCode {
    let path = cli.config.clone().unwrap_or_else(config::default_path);
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error{} in the config",
                path.display(),
                errors.errors.len(),
                if errors.errors.len() == 1 { "" } else { "s" }
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Check => {
            println!(
                "{}: ok ({} contracts, {} services, {} maintenance windows, {} routes)",
                path.display(),
                config.contracts.len(),
                config.services.len(),
                config.maintenance.len(),
                config.routes.len()
            );
            ExitCode::SUCCESS
        }
        Command::Run => run(config, cli.log_format),
        Command::Probe { service } => probe(&config, &service),
        Command::Status { format } => status(&config, format),
        Command::Report(args) => report(&config, &args),
        Command::Ack(args) => ack::ack(&config, &args),
        Command::Exclude(args) => exclusions::exclude(&config, &args),
        Command::Exclusions(args) => exclusions::list(&config, &args),
        Command::Import { service, file } => import(&config, &service, &file),
        Command::Backup { file } => backup(&config, &file),
        Command::Migrate(args) => migrate::migrate(&config, &args),
        Command::Statement {
            contract,
            month,
            send: true,
            ..
        } => send_statement(&config, &contract, &month),
        Command::Statement {
            contract,
            month,
            format,
            send: false,
            recompute,
        } => statement(&config, &contract, &month, format, recompute),
    }
}

fn runtime(worker_threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .thread_name("slaprobe")
        .build()
        .expect("building the tokio runtime")
}

fn run(config: Config, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    crate::runtime::allocator::bound();
    let result = runtime(config.daemon.worker_threads).block_on(crate::runtime::run(
        config,
        crate::runtime::shutdown_signal(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "The daemon failed."
            );
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr. Under systemd (`JOURNAL_STREAM` set) the journal adds timestamps, so text
/// lines carry none; colours only on a terminal. `SLAPROBE_LOG` sets the filter (default info).
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SLAPROBE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr sent to a file on a full disk) is dropped:
        // reporting it with `eprintln!` would panic the thread that logged, the store writer
        // among them.
        .log_internal_errors(false)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            builder.without_time().with_ansi(false).init()
        }
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn probe(config: &Config, id: &str) -> ExitCode {
    let Some(service) = config.service(id) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
        eprintln!(
            "{}: no service `{id}`; known services: {}",
            config.path.display(),
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let outcome = runtime(Some(1)).block_on(async {
        let prober = match Prober::new() {
            Ok(p) => p,
            Err(e) => return Err(e),
        };
        let at_ms = Clock::system().now_ms();
        Ok(prober.run(&service.probe, service.timeout, at_ms).await)
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("cannot probe: {:#}", anyhow::Error::from(e));
            return ExitCode::FAILURE;
        }
    };
    let latency = format!("{:.1} ms", outcome.latency.as_secs_f64() * 1000.0);
    let target = format!("{} {}", service.probe.kind(), service.probe.target());
    match &outcome.failure {
        None => {
            println!("{id}: ok in {latency} ({target})");
            ExitCode::SUCCESS
        }
        Some(failure) => {
            println!("{id}: FAILED {failure} after {latency} ({target})");
            ExitCode::from(1)
        }
    }
}

fn status(config: &Config, format: Format) -> ExitCode {
    let conn = match crate::store::open_reader_db(&config.daemon) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!(
                "{:#}\n(has the daemon run with this config? it creates the database)",
                anyhow::Error::from(e)
            );
            return ExitCode::FAILURE;
        }
    };
    let now_ms = Clock::system().now_ms();
    let mut lines = Vec::new();
    for service in &config.services {
        match crate::report::status::line(conn.conn(), config, service, now_ms) {
            Ok(line) => lines.push(line),
            Err(e) => {
                eprintln!("cannot read the status of {}: {e}", service.id);
                return ExitCode::FAILURE;
            }
        }
    }
    // Mail still to send and permanent failures of the last 30 days.
    let mail = match crate::store::outbox::summary((&conn).into(), now_ms - 30 * 86_400_000) {
        Ok(mail) => mail,
        Err(e) => {
            eprintln!("cannot read the outbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::json!({ "services": lines, "mail": mail })),
        Format::Text => {
            print_status_table(&lines);
            print_mail(&mail);
        }
    }
    ExitCode::SUCCESS
}

fn print_mail(mail: &crate::notify::MailSummary) {
    println!(
        "\nMAIL: {} pending, {} failed in the last 30 days, {} sent (e-mail and channels)",
        mail.pending.len(),
        mail.failed.len(),
        mail.sent
    );
    for (word, list) in [("pending", &mail.pending), ("FAILED", &mail.failed)] {
        for m in list {
            println!(
                "  {word:7}  #{}  {}  {}  to {}  ({} attempt{}{})",
                m.id,
                timestamp_to_second(m.created_ms),
                m.subject,
                m.recipients.join(", "),
                m.attempts,
                if m.attempts == 1 { "" } else { "s" },
                m.last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
}

fn print_status_table(lines: &[crate::report::status::StatusLine]) {
    let width = |f: &dyn Fn(&crate::report::status::StatusLine) -> usize, title: &str| {
        lines.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let w_service = width(&|l| l.service.len(), "SERVICE");
    let w_contract = width(&|l| l.contract.len(), "CONTRACT");
    println!(
        "{:w_service$}  {:w_contract$}  {:8}  {:20}  {:>9}  {:>14}  LAST OUTCOME",
        "SERVICE", "CONTRACT", "STATE", "SINCE", "MONTH", "BUDGET LEFT"
    );
    for l in lines {
        let acked = l.acknowledged.as_ref().map_or(String::new(), |a| {
            format!(
                "; acknowledged{} at {}",
                a.by.as_deref()
                    .map_or(String::new(), |b| format!(" by {b}")),
                a.at
            )
        });
        let last = match &l.last {
            None => "never probed".to_string(),
            Some(o) if o.ok => format!("ok in {:.1} ms at {}", o.latency_ms, o.at),
            Some(o) => format!(
                "{} ({}) at {}",
                o.reason.as_deref().unwrap_or("failed"),
                o.detail.as_deref().unwrap_or(""),
                o.at
            ),
        };
        let (month, budget) = match &l.month {
            Some(m) => (
                m.availability
                    .map_or("n/a".to_string(), |a| format!("{:.3}%", a * 100.0)),
                if m.budget_s > 0.0 {
                    format!(
                        "{} ({:.0}%)",
                        crate::text::human_duration((m.budget_remaining_s * 1000.0) as i64),
                        100.0 * m.budget_remaining_s / m.budget_s
                    )
                } else {
                    "-".to_string()
                },
            ),
            None => ("n/a".to_string(), "-".to_string()),
        };
        println!(
            "{:w_service$}  {:w_contract$}  {:8}  {:20}  {month:>9}  {budget:>14}  {last}{acked}",
            l.service,
            l.contract,
            l.state,
            l.since.as_deref().unwrap_or("-"),
        );
    }
}

fn usage_error(message: String) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(EXIT_USAGE)
}

fn report(config: &Config, args: &ReportArgs) -> ExitCode {
    use crate::report::{self, PeriodSpec};
    let services: Vec<&config::Service> = match (&args.service, &args.contract) {
        (Some(id), _) => match config.service(id) {
            Some(s) => vec![s],
            None => return usage_error(format!("{}: no service `{id}`", config.path.display())),
        },
        (None, Some(id)) => {
            if config.contract(id).is_none() {
                return usage_error(format!("{}: no contract `{id}`", config.path.display()));
            }
            config
                .services
                .iter()
                .filter(|s| &s.contract == id)
                .map(|s| &**s)
                .collect()
        }
        (None, None) => unreachable!("clap requires --service or --contract"),
    };
    let fleet = config.daemon.database.sqlite().is_none();
    if let Some(location) = &args.location
        && fleet
        && !config.daemon.locations.contains(location)
    {
        return usage_error(format!(
            "{}: no location `{location}`: the fleet's locations are {}",
            config.path.display(),
            config.daemon.locations.join(", ")
        ));
    }
    if let Some(location) = &args.location
        && !fleet
        && location != &config.daemon.location
    {
        return usage_error(format!(
            "{}: no location `{location}`: this database holds the history of `{}` only \
             (an SQLite file is one location's; a fleet shares PostgreSQL)",
            config.path.display(),
            config.daemon.location
        ));
    }
    let spec = PeriodSpec::from_args(
        args.month.as_deref(),
        args.from.as_deref().zip(args.to.as_deref()),
        args.last.as_deref(),
    );
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => return usage_error(e.to_string()),
    };
    let reports = match compute_reports(config, &services, &spec, args.location.as_deref()) {
        Ok(reports) => reports,
        Err(code) => return code,
    };
    let output = match args.format {
        ReportFormat::Text => report::to_text(&reports),
        ReportFormat::Csv => report::to_csv(&reports),
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report::json(
                args.contract.as_deref().and_then(|id| config.contract(id)),
                &reports
            ))
            .expect("reports serialize")
        ),
    };
    print!("{output}");
    ExitCode::SUCCESS
}

fn import(config: &Config, id: &str, file: &std::path::Path) -> ExitCode {
    let Some(service) = config.service(id) else {
        return usage_error(format!("{}: no service `{id}`", config.path.display()));
    };
    let Some(database) = config.daemon.database.sqlite() else {
        return usage_error(
            "`slaprobe import` writes into an SQLite history and this config's database is \
             PostgreSQL: import into the single machine's SQLite file, then move it with \
             `slaprobe migrate --to URL`"
                .to_string(),
        );
    };
    match crate::cli::import::import(database, service, file, config.daemon.retention) {
        Ok(s) => {
            println!(
                "{id}: imported {} outcomes ({} incidents opened, {} closed, {} blips, {} \
                 no-data stretches)",
                s.outcomes, s.incidents_opened, s.incidents_closed, s.blips, s.no_data
            );
            ExitCode::SUCCESS
        }
        Err(
            e @ (crate::cli::import::ImportError::BadLines(_)
            | crate::cli::import::ImportError::Empty(_)),
        ) => {
            eprintln!("{e}");
            eprintln!("nothing was imported");
            ExitCode::from(EXIT_DATA)
        }
        Err(e) => {
            eprintln!("{:#}", anyhow::Error::from(e));
            eprintln!("nothing was imported");
            ExitCode::FAILURE
        }
    }
}

fn statement(
    config: &Config,
    id: &str,
    month: &str,
    format: StatementFormat,
    recompute: bool,
) -> ExitCode {
    let Some(contract) = config.contract(id) else {
        return usage_error(format!("{}: no contract `{id}`", config.path.display()));
    };
    let month_span = match crate::report::monthly::Month::of(contract, month) {
        Ok(span) => span,
        Err(e) => return usage_error(e.to_string()),
    };
    let conn = match crate::store::open_reader_db(&config.daemon) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("{:#}", anyhow::Error::from(e));
            return ExitCode::FAILURE;
        }
    };
    let now_ms = Clock::system().now_ms();
    let st =
        match crate::report::monthly::render(conn.conn(), config, contract, &month_span, now_ms) {
            Ok(st) => st,
            Err(e) => {
                eprintln!("cannot compute the statement of {id}: {e}");
                return ExitCode::FAILURE;
            }
        };
    let name = match format {
        StatementFormat::Text => "text",
        StatementFormat::Html => "html",
        StatementFormat::Json => "json",
        StatementFormat::Csv => "csv",
    };
    // A recorded (sent) statement is printed as it was recorded; a fresh computation that
    // differs is only mentioned, unless asked for.
    let shown = match crate::report::monthly::shown(conn.conn(), &st, name, recompute) {
        Ok(shown) => shown,
        Err(e) => {
            eprintln!("cannot read the statement record: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (true, Some(at_ms)) = (shown.recomputed_differs, shown.recorded_ms) {
        eprintln!(
            "note: this is the statement recorded at {}; a fresh computation differs (a late \
             import, an exclusion or a config change): --recompute prints it",
            timestamp_to_second(at_ms)
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(&shown.bytes);
    ExitCode::SUCCESS
}

fn backup(config: &Config, file: &Path) -> ExitCode {
    let database = match &config.daemon.database {
        config::Database::Sqlite(path) => path,
        config::Database::Postgres(target) => {
            eprintln!(
                "The history is in PostgreSQL ({}): back it up with PostgreSQL's own tools, e.g.\n  \
                 pg_dump --format=custom --file={} '{}'\n(`slaprobe backup` copies an SQLite file)",
                target.url,
                file.display(),
                target.url
            );
            return ExitCode::from(64);
        }
    };
    let started = std::time::Instant::now();
    match crate::store::backup(database, file) {
        Ok(bytes) => {
            println!(
                "{} → {} ({:.1} MB, integrity ok, {:.1} s)",
                database.display(),
                file.display(),
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}

/// `statement --send`: records and queues the statement, then delivers it at once (a running
/// daemon retries it if the server does not take it now).
fn send_statement(config: &Config, id: &str, label: &str) -> ExitCode {
    use crate::notify::delivery;
    use crate::report::monthly::{self, Month, Queued};
    use crate::store::SharedConnection;
    let Some(contract) = config.contract(id) else {
        return usage_error(format!("{}: no contract `{id}`", config.path.display()));
    };
    let Some(smtp) = &config.smtp else {
        return usage_error(format!(
            "{}: `statement --send` needs an [smtp] table",
            config.path.display()
        ));
    };
    if contract.statement_to.is_empty() {
        return usage_error(format!(
            "{}: contract `{id}` has no `statement_to`",
            config.path.display()
        ));
    }
    let month = match Month::of(contract, label) {
        Ok(month) => month,
        Err(e) => return usage_error(e.to_string()),
    };
    let now = Clock::system().now_ms();
    if month.to_ms > now {
        return usage_error(format!(
            "{label} has not closed yet in {}: only a closed month's statement can be sent",
            contract.timezone.name
        ));
    }
    let result = runtime(Some(1)).block_on(async {
        let mailer = crate::notify::Mailer::new(smtp)?;
        let conn = crate::store::open_db(&config.daemon)?;
        let queued = monthly::queue(&conn, config, contract, &month, &mailer.from, now, true)?;
        let Queued::Queued {
            id: message,
            sha256,
        } = queued
        else {
            anyhow::bail!("nothing was queued: {queued:?}");
        };
        let claimed = crate::store::outbox::claim_id(conn.conn(), message, now)?;
        let db: SharedConnection = std::sync::Arc::new(std::sync::Mutex::new(conn));
        let Some(claimed) = claimed else {
            return Ok((message, sha256, None));
        };
        let result = mailer
            .send(&claimed.sender, &claimed.recipients, &claimed.message)
            .await;
        let error = result.as_ref().err().map(|e| e.message.clone());
        let stats = delivery::DeliveryStats::default();
        delivery::record(
            &db,
            &crate::clock::Clock::system(),
            &stats,
            Default::default(),
            claimed,
            result,
        )
        .await;
        Ok((message, sha256, Some(error)))
    });
    match result {
        Ok((message, sha256, delivered)) => {
            println!(
                "statement {id} {label} recorded (sha256 {sha256}) and queued as message #{message}"
            );
            match delivered {
                Some(None) => {
                    println!("sent to {}", contract.statement_to.join(", "));
                    ExitCode::SUCCESS
                }
                Some(Some(error)) => {
                    eprintln!(
                        "not delivered yet: {error}; it stays in the outbox and the daemon retries it"
                    );
                    ExitCode::FAILURE
                }
                None => {
                    println!("the running daemon is delivering it");
                    ExitCode::SUCCESS
                }
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The reports of `services` for the period `spec` (resolved in each service's contract zone;
/// on a fleet's PostgreSQL the verdict, or `location`'s own view), or the exit code after printing why they cannot be computed.
fn compute_reports(
    config: &Config,
    services: &[&config::Service],
    spec: &crate::report::PeriodSpec,
    location: Option<&str>,
) -> Result<Vec<crate::report::ServiceReport>, ExitCode> {
    let mut conn = crate::store::open_reader_db(&config.daemon).map_err(|e| {
        eprintln!("{:#}", anyhow::Error::from(e));
        ExitCode::FAILURE
    })?;
    if let Some(location) = location {
        conn.narrow_to(location);
    }
    let now_ms = Clock::system().now_ms();
    let period_of = |service: &config::Service| spec.resolve(config.contract_of(service), now_ms);
    crate::report::service_reports(conn.conn(), config, services, period_of, now_ms).map_err(
        |(id, e)| {
            eprintln!("cannot compute the report of {id}: {e}");
            ExitCode::FAILURE
        },
    )
}
