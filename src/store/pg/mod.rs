//! The PostgreSQL store of a fleet (DESIGN.md §6.3): connecting (a libpq URI, a Unix socket or
//! TCP with rustls) and the schema. The blocking `postgres` client is used from the store's own
//! threads and `spawn_blocking`, as SQLite is.

pub mod migrate;
pub mod read;
pub mod schema;
pub mod speaker;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use postgres::Client;
use postgres::config::{Host, SslMode};

pub use crate::config::PgTarget;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("`{url}` is not a PostgreSQL connection URI: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to PostgreSQL at {at}")]
    Connect {
        at: String,
        #[source]
        source: postgres::Error,
    },
    #[error("cannot prepare TLS for PostgreSQL: {0}")]
    Tls(String),
    #[error("cannot bring the PostgreSQL schema up to date")]
    Migrate(#[from] schema::MigrationError),
}

pub use crate::config::is_postgres_url as is_url;

/// Parses the URI as libpq would, then fills in what libpq takes from the environment: the
/// password (`password_env`, else `PGPASSWORD`) and the user (`PGUSER`, else the login name).
pub fn config_of(target: &PgTarget) -> Result<postgres::Config, PgError> {
    let mut config = postgres::Config::from_str(&target.url).map_err(|e| PgError::Url {
        url: target.url.clone(),
        reason: e.to_string(),
    })?;
    if config.get_password().is_none() {
        let var = target.password_env.as_deref().unwrap_or("PGPASSWORD");
        if let Ok(password) = std::env::var(var) {
            config.password(password);
        }
    }
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "slaprobe".to_string());
        config.user(&user);
    }
    if config.get_hosts().is_empty() {
        config.host(&std::env::var("PGHOST").unwrap_or_else(|_| "/run/postgresql".to_string()));
    }
    if config.get_dbname().is_none()
        && let Ok(db) = std::env::var("PGDATABASE")
    {
        config.dbname(&db);
    }
    config.application_name("slaprobe");
    Ok(config)
}

/// Opens a connection (TLS as `sslmode` says: `prefer` by default, `require` insists; a Unix
/// socket never uses TLS) and brings the schema up to date.
pub fn connect(target: &PgTarget) -> Result<Client, PgError> {
    let mut client = connect_only(target)?;
    schema::migrate(&mut client)?;
    Ok(client)
}

/// Opens a connection without touching the schema (readers of a database a daemon migrated).
pub fn connect_only(target: &PgTarget) -> Result<Client, PgError> {
    let mut config = config_of(target)?;
    config.application_name("slaprobe");
    connect_with(config)
}

/// Opens a connection for the reads of reports, status and alerting (`store::db`), which
/// keep their statements prepared: each is planned once for the session (a generic plan) rather
/// than on every execution, which for the verdict's few-branched queries cost more than running
/// them (the speaker asks them of every service seen down, every 2 s).
pub fn connect_reader(target: &PgTarget) -> Result<Client, PgError> {
    let mut config = config_of(target)?;
    config.application_name("slaprobe");
    let options = match config.get_options() {
        Some(given) => format!("{given} -c plan_cache_mode=force_generic_plan"),
        None => "-c plan_cache_mode=force_generic_plan".to_string(),
    };
    config.options(&options);
    connect_with(config)
}

/// Opens the session that holds (or asks for) the fleet's speaker lock, named
/// `application_name`. Over TCP both ends give up on a silent peer within about 11 s (client
/// and server keepalives, a user timeout on unacknowledged data): a speaker cut off from
/// PostgreSQL stops speaking, and the server releases its lock for a standby, well inside the
/// 30 s takeover (without them the server would hold a dead session's lock for the system's
/// keepalive time, two hours by default). Over a Unix socket a session ends with its process.
pub fn connect_lock_session(target: &PgTarget, application_name: &str) -> Result<Client, PgError> {
    let mut config = config_of(target)?;
    config
        .application_name(application_name)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(6));
    let server = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 \
                  -c tcp_keepalives_count=3 -c tcp_user_timeout=6000";
    let options = match config.get_options() {
        Some(given) => format!("{given} {server}"),
        None => server.to_string(),
    };
    config.options(&options);
    connect_with(config)
}

fn connect_with(config: postgres::Config) -> Result<Client, PgError> {
    let at = describe(&config);
    let result = if config.get_ssl_mode() == SslMode::Disable {
        config.connect(postgres::NoTls)
    } else {
        config.connect(tls()?)
    };
    result.map_err(|source| PgError::Connect { at, source })
}

/// "host:port/db" or "socket dir/db", for messages (never the password).
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config
            .get_dbname()
            .unwrap_or(config.get_user().unwrap_or("?"))
    )
}

/// rustls with the system's root certificates (and ring, as everywhere else).
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
