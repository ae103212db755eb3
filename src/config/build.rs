//! Builds a validated `Config` from TOML text: the document, `[daemon]`, `[smtp]` and the
//! helpers every table uses; the other tables have a module each.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::contract::contracts_section;
use super::fields::{location_name, time_zone};
use super::maintenance::maintenance_section;
use super::reader::{Diagnostics, Table, Value, as_string, line_column};
use super::route::routes_section;
use super::service::{defaults_section, services_section};
use super::*;

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(error) => Err(ConfigErrors {
            errors: vec![ConfigError {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read the config file: {error}"),
            }],
        }),
    }
}

/// Parses and validates config `text` read from `file`.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    // A large file in pieces, when that reads cleanly; else (and for the errors' positions)
    // whole.
    if let Some(document) = super::pieces::parse(text) {
        let mut d = Diagnostics::default();
        let config = build(&document, file, &mut d);
        drop(document);
        if let (Some(config), true) = (config, d.errors.is_empty()) {
            return Ok(config);
        }
    }
    parse_whole(text, file)
}

/// `parse`, the text read as one document.
pub(super) fn parse_whole(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut d = Diagnostics::default();
    let config = match DeTable::parse(text) {
        Ok(doc) => build(doc.get_ref(), file, &mut d),
        Err(error) => {
            let offset = error.span().map_or(0, |s| s.start);
            d.errors.push((
                offset,
                format!("TOML syntax error: {}", error.message().trim()),
            ));
            None
        }
    };
    if d.errors.is_empty()
        && let Some(config) = config
    {
        return Ok(config);
    }
    d.errors.sort_by_key(|(offset, _)| *offset);
    d.errors.dedup();
    Err(ConfigErrors {
        errors: d
            .errors
            .into_iter()
            .map(|(offset, message)| {
                let (line, column) = line_column(text, offset);
                ConfigError {
                    file: file.to_path_buf(),
                    line,
                    column,
                    message,
                }
            })
            .collect(),
    })
}

fn build(doc: &DeTable<'_>, file: &Path, d: &mut Diagnostics) -> Option<Config> {
    let mut daemon_value = None;
    let mut smtp_value = None;
    let mut provider_value = None;
    let mut defaults_value = None;
    let mut contract_values = Vec::new();
    let mut service_values = Vec::new();
    let mut maintenance_values = Vec::new();
    let mut route_values = Vec::new();
    for (key, value) in doc.iter() {
        match key.get_ref().as_ref() {
            "daemon" => daemon_value = Some(value),
            "smtp" => smtp_value = Some(value),
            "provider" => provider_value = Some(value),
            "defaults" => defaults_value = Some(value),
            "contract" => contract_values = array_of_tables(value, "contract", d),
            "service" => service_values = array_of_tables(value, "service", d),
            "maintenance" => maintenance_values = array_of_tables(value, "maintenance", d),
            "route" => route_values = array_of_tables(value, "route", d),
            other => {
                const KNOWN: [&str; 8] = [
                    "daemon",
                    "smtp",
                    "provider",
                    "defaults",
                    "contract",
                    "service",
                    "maintenance",
                    "route",
                ];
                let hint = KNOWN
                    .iter()
                    .find(|k| strsim::damerau_levenshtein(k, other) <= 2)
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("known tables are: {}", KNOWN.join(", ")));
                d.error(key.span(), format!("unknown table `{other}`: {hint}"));
            }
        }
    }

    let base_dir = file.parent().unwrap_or(Path::new("."));
    let declared_contracts = declared_ids(&contract_values);
    let daemon = daemon_section(daemon_value, base_dir, &declared_contracts, d);
    let smtp = smtp_value.and_then(|v| smtp_section(v, base_dir, d));
    let provider = provider_value.and_then(|v| provider_section(v, d));
    let routes = routes_section(&route_values, d);
    // References are checked against every declared id, so that one broken table does not
    // make each reference to it an error too.
    let declared_routes = declared_ids(&route_values);
    let route_ids: HashSet<&str> = declared_routes.iter().map(String::as_str).collect();
    let contracts = contracts_section(
        &contract_values,
        &daemon.timezone,
        &daemon.locations,
        &route_ids,
        d,
    );
    let contract_ids: HashSet<&str> = declared_contracts.iter().map(String::as_str).collect();
    let defaults = defaults_value.and_then(|v| defaults_section(v, d));
    let services = services_section(
        &service_values,
        &defaults.unwrap_or_default(),
        &contracts,
        &contract_ids,
        &route_ids,
        &daemon.locations,
        d,
    );
    let declared_services = declared_ids(&service_values);
    let service_ids: HashSet<&str> = declared_services.iter().map(String::as_str).collect();
    let maintenance = maintenance_section(
        &maintenance_values,
        &contracts,
        &daemon.timezone,
        &contract_ids,
        &service_ids,
        d,
    );

    Some(Config {
        path: file.to_path_buf(),
        provider,
        daemon,
        smtp,
        contracts,
        services,
        maintenance,
        routes,
    })
}

/// The `id` strings of the tables in `values`, whether or not the rest of each table is valid.
fn declared_ids(values: &[Value<'_, '_>]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| v.get_ref().get("id"))
        .filter_map(|id| id.get_ref().as_str().map(str::to_string))
        .collect()
}

/// The elements of `[[name]]`, or an error when `name` is not an array of tables.
fn array_of_tables<'a, 'i>(
    value: Value<'a, 'i>,
    name: &str,
    d: &mut Diagnostics,
) -> Vec<Value<'a, 'i>> {
    match value.get_ref() {
        DeValue::Array(items) => items.into_iter().collect(),
        _ => {
            d.error(
                value.span(),
                format!("`{name}` must be an array of tables: write [[{name}]] for each entry"),
            );
            Vec::new()
        }
    }
}

fn daemon_section(
    value: Option<Value<'_, '_>>,
    base_dir: &Path,
    contracts: &[String],
    d: &mut Diagnostics,
) -> Daemon {
    let utc = TimeZoneName {
        name: "UTC".to_string(),
        zone: jiff::tz::TimeZone::UTC,
    };
    let mut daemon = Daemon {
        database: Database::Sqlite(base_dir.join("slaprobe.db")),
        listen: None,
        timezone: utc,
        retention: Duration::from_secs(35 * 86_400),
        max_in_flight: 256,
        flush_interval: Duration::from_millis(200),
        worker_threads: None,
        public_contracts: None,
        operator_token_env: None,
        location: "local".to_string(),
        locations: vec!["local".to_string()],
    };
    let Some(mut t) = value.and_then(|v| Table::new(v, "[daemon]", d)) else {
        return daemon;
    };
    database(&mut t, &mut daemon, base_dir, d);
    if let Some(v) = t.get("listen") {
        daemon.listen = d.parse(v, "listen", |v| {
            let text = as_string(v)?;
            text.parse::<SocketAddr>().map_err(|_| {
                format!("`{text}` is not an address: write IP:PORT such as \"127.0.0.1:9184\"")
            })
        });
    }
    if let Some(v) = t.get("timezone")
        && let Some(tz) = d.parse(v, "timezone", time_zone)
    {
        daemon.timezone = tz;
    }
    if let Some(retention) = t.duration("retention", d) {
        if retention < Duration::from_secs(86_400) {
            d.error(
                t.get("retention").unwrap().span(),
                "`retention` is shorter than a day: raw outcomes are needed for at least the last \
                 day; write e.g. \"35d\"",
            );
        }
        daemon.retention = retention;
    }
    if let Some(n) = t.integer("max_in_flight", 1, 100_000, d) {
        daemon.max_in_flight = n as usize;
    }
    if let Some(n) = t.integer("worker_threads", 1, 256, d) {
        daemon.worker_threads = Some(n as usize);
    }
    if let Some(ids) = t.strings("public_contracts", d) {
        for id in &ids {
            if !contracts.contains(id) {
                d.error(
                    t.get("public_contracts").unwrap().span(),
                    format!("`public_contracts`: no [[contract]] has id `{id}`"),
                );
            }
        }
        daemon.public_contracts = Some(ids);
    }
    daemon.operator_token_env = t.string("operator_token_env", d);
    if let Some(flush) = t.duration("flush_interval", d) {
        if flush > Duration::from_secs(10) {
            d.error(
                t.get("flush_interval").unwrap().span(),
                "`flush_interval` is above 10s: a kill would lose that much; write e.g. \"200ms\"",
            );
        }
        daemon.flush_interval = flush;
    }
    locations(&mut t, &mut daemon, d);
    t.finish(d);
    daemon
}

/// `database` and `database_password_env`: a path is this machine's SQLite file (relative to
/// the config's folder), a `postgres://` URL a fleet's PostgreSQL (DESIGN.md §6.3).
fn database(t: &mut Table<'_, '_>, daemon: &mut Daemon, base_dir: &Path, d: &mut Diagnostics) {
    let password_env = t.string("database_password_env", d);
    let Some(db) = t.string("database", d) else {
        if password_env.is_some() {
            d.error(
                t.get("database_password_env").unwrap().span(),
                "`database_password_env` is for a PostgreSQL `database`: set database = \
                 \"postgres://USER@HOST/DB\" or remove it",
            );
        }
        return;
    };
    let span = t.get("database").unwrap().span();
    if db.trim().is_empty() {
        d.error(
            span,
            "`database` is empty: write a file path such as \"slaprobe.db\", or a PostgreSQL URL \
             such as \"postgres://slaprobe@db.example/slaprobe\"",
        );
        return;
    }
    if !is_postgres_url(&db) {
        if password_env.is_some() {
            d.error(
                t.get("database_password_env").unwrap().span(),
                "`database_password_env` is for a PostgreSQL `database`, and this one is an \
                 SQLite file: remove it",
            );
        }
        daemon.database = Database::Sqlite(base_dir.join(db));
        return;
    }
    match db.parse::<postgres::Config>() {
        Err(e) => d.error(
            span,
            format!(
                "`database` is not a PostgreSQL connection URI ({e}): write \
                 postgres://USER@HOST:5432/DB or postgresql:///DB?host=/run/postgresql"
            ),
        ),
        Ok(parsed) if parsed.get_password().is_some() => d.error(
            span,
            "`database` holds a password: a config file is no place for it; remove it from the \
             URL and name the variable that holds it with `database_password_env` (or set \
             PGPASSWORD)",
        ),
        Ok(_) => {
            daemon.database = Database::Postgres(PgTarget {
                url: db,
                password_env,
            })
        }
    }
}

/// `location` and `locations`: where this daemon probes from and which locations the fleet
/// expects (DESIGN.md §6.3). SQLite, a file of one machine, holds one location's history.
fn locations(t: &mut Table<'_, '_>, daemon: &mut Daemon, d: &mut Diagnostics) {
    if let Some(v) = t.get("location")
        && let Some(name) = d.parse(v, "location", |v| {
            let name = as_string(v)?;
            location_name(name).map(|()| name.to_string())
        })
    {
        daemon.location = name;
    }
    daemon.locations = vec![daemon.location.clone()];
    let Some(v) = t.get("locations") else {
        return;
    };
    let Some(names) = t.strings("locations", d) else {
        return;
    };
    let span = v.span();
    let mut seen = Vec::new();
    for name in &names {
        if let Err(e) = location_name(name) {
            d.error(span.clone(), format!("`locations`: {e}"));
            return;
        }
        if seen.contains(&name) {
            d.error(
                span.clone(),
                format!("`locations` names `{name}` twice: list each once"),
            );
            return;
        }
        seen.push(name);
    }
    if names.is_empty() {
        d.error(
            span,
            "`locations` is empty: list every location, this one included",
        );
        return;
    }
    if !names.contains(&daemon.location) {
        d.error(
            span,
            format!(
                "`locations` does not include this daemon's `location = \"{}\"`: add it, or set \
                 `location` to one of {}",
                daemon.location,
                names.join(", ")
            ),
        );
        return;
    }
    if names.len() > 1 && daemon.database.sqlite().is_some() {
        d.error(
            span,
            format!(
                "{} locations cannot share an SQLite file (it holds one location's history): keep \
                 `locations = [\"{}\"]`, or give the fleet a shared PostgreSQL `database`",
                names.len(),
                daemon.location
            ),
        );
        return;
    }
    daemon.locations = names;
}

/// `[provider]`: who issues the statements (shown on every one).
fn provider_section(value: Value<'_, '_>, d: &mut Diagnostics) -> Option<Provider> {
    let mut t = Table::new(value, "[provider]", d)?;
    let name = t.string("name", d);
    if name.is_none() && !t.has("name") {
        t.missing("name", "write name = \"the provider's legal name\"", d);
    }
    let address = t.string("address", d);
    let contact = t.string("contact", d);
    t.finish(d);
    Some(Provider {
        name: name?,
        address,
        contact,
    })
}

fn smtp_section(value: Value<'_, '_>, base_dir: &Path, d: &mut Diagnostics) -> Option<Smtp> {
    let mut t = Table::new(value, "[smtp]", d)?;
    let url = match t.get("url") {
        Some(v) => d.parse(v, "url", |v| {
            let text = as_string(v)?;
            let parsed = reqwest::Url::parse(text).map_err(|e| {
                format!("`{text}` is not a URL ({e}): write e.g. \"smtp://127.0.0.1:25\"")
            })?;
            if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                return Err(format!(
                    "`{text}` must be smtp://HOST[:PORT] or smtps://HOST[:PORT]"
                ));
            }
            if parsed.password().is_some() {
                return Err(
                    "do not put the password in the URL: use `password_env` or `password_file`"
                        .to_string(),
                );
            }
            Ok(text.to_string())
        }),
        None => {
            t.missing("url", "write url = \"smtp://HOST:25\"", d);
            None
        }
    };
    let username = t.string("username", d);
    let password_env = t.string("password_env", d);
    let password_file = t.string("password_file", d);
    if t.has("password") {
        d.error(
            t.key_span("password"),
            "a password never goes in the config: set `password_env` (an environment variable's \
             name) or `password_file` (a file holding it)",
        );
        t.get("password");
    }
    let password = match (password_env, password_file) {
        (Some(_), Some(_)) => {
            d.error(
                t.key_span("password_file"),
                "`password_env` and `password_file` are both set: keep one",
            );
            None
        }
        (Some(env), None) => Some(SecretSource::Env(env)),
        (None, Some(file)) => Some(SecretSource::File(base_dir.join(file))),
        (None, None) => None,
    };
    let from = t.get("from").and_then(|v| {
        d.parse(v, "from", |v| {
            let text = as_string(v)?;
            text.parse::<lettre::message::Mailbox>()
                .map(|_| text.to_string())
                .map_err(|e| {
                    format!(
                        "`{text}` is not a sender ({e}): write e.g. \"SLA monitor <sla@example.com>\""
                    )
                })
        })
    });
    if from.is_none() && !t.has("from") {
        t.missing("from", "write from = \"SLA monitor <sla@example.com>\"", d);
    }
    t.finish(d);
    Some(Smtp {
        url: url?,
        username,
        password,
        from: from?,
    })
}
