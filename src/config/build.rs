//! Builds a validated `Config` from TOML text: every table, key and cross-reference checked.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::reader::{Diagnostics, Table, Value, as_string, line_column, type_name};
use super::*;
use crate::probe::{DnsSpec, HttpSpec, ProbeSpec, RecordKind, TcpSpec};
use crate::store::latency_threshold_is_exact;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY: Duration = Duration::from_secs(5);
const DEFAULT_MAX_BODY: u64 = 64 * 1024;
const ID_HINT: &str = "use letters, digits, '.', '_' and '-' only";

/// Parses and validates config `text` read from `file`.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
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
    let mut defaults_value = None;
    let mut contract_values = Vec::new();
    let mut service_values = Vec::new();
    let mut maintenance_values = Vec::new();
    let mut route_values = Vec::new();
    for (key, value) in doc.iter() {
        match key.get_ref().as_ref() {
            "daemon" => daemon_value = Some(value),
            "smtp" => smtp_value = Some(value),
            "defaults" => defaults_value = Some(value),
            "contract" => contract_values = array_of_tables(value, "contract", d),
            "service" => service_values = array_of_tables(value, "service", d),
            "maintenance" => maintenance_values = array_of_tables(value, "maintenance", d),
            "route" => route_values = array_of_tables(value, "route", d),
            other => {
                const KNOWN: [&str; 7] = [
                    "daemon",
                    "smtp",
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
    let daemon = daemon_section(daemon_value, base_dir, d);
    let smtp = smtp_value.and_then(|v| smtp_section(v, base_dir, d));
    let routes = routes_section(&route_values, d);
    // References are checked against every declared id, so that one broken table does not
    // make each reference to it an error too.
    let declared_routes = declared_ids(&route_values);
    let route_ids: HashSet<&str> = declared_routes.iter().map(String::as_str).collect();
    let contracts = contracts_section(&contract_values, &daemon.timezone, &route_ids, d);
    let declared_contracts = declared_ids(&contract_values);
    let contract_ids: HashSet<&str> = declared_contracts.iter().map(String::as_str).collect();
    let defaults = defaults_value.and_then(|v| defaults_section(v, d));
    let services = services_section(
        &service_values,
        &defaults.unwrap_or_default(),
        &contract_ids,
        &route_ids,
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

fn daemon_section(value: Option<Value<'_, '_>>, base_dir: &Path, d: &mut Diagnostics) -> Daemon {
    let utc = TimeZoneName {
        name: "UTC".to_string(),
        zone: jiff::tz::TimeZone::UTC,
    };
    let mut daemon = Daemon {
        database: base_dir.join("slaprobe.db"),
        listen: None,
        timezone: utc,
        retention: Duration::from_secs(35 * 86_400),
        max_in_flight: 256,
        flush_interval: Duration::from_millis(200),
        worker_threads: None,
    };
    let Some(mut t) = value.and_then(|v| Table::new(v, "[daemon]", d)) else {
        return daemon;
    };
    if let Some(db) = t.string("database", d) {
        if db.trim().is_empty() {
            d.error(
                t.get("database").unwrap().span(),
                "`database` is empty: write a file path such as \"slaprobe.db\"",
            );
        } else {
            daemon.database = base_dir.join(db);
        }
    }
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
    if let Some(flush) = t.duration("flush_interval", d) {
        if flush > Duration::from_secs(10) {
            d.error(
                t.get("flush_interval").unwrap().span(),
                "`flush_interval` is above 10s: a kill would lose that much; write e.g. \"200ms\"",
            );
        }
        daemon.flush_interval = flush;
    }
    t.finish(d);
    daemon
}

fn time_zone(v: &DeValue<'_>) -> Result<TimeZoneName, String> {
    let name = as_string(v)?;
    jiff::tz::TimeZone::get(name)
        .map(|zone| TimeZoneName {
            name: name.to_string(),
            zone,
        })
        .map_err(|_| {
            format!(
                "unknown time zone `{name}`: write an IANA name such as \"Europe/Berlin\" or \"UTC\""
            )
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
    let from = t.string("from", d);
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

fn routes_section(values: &[Value<'_, '_>], d: &mut Diagnostics) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    let mut seen = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[route]]", d) else {
            continue;
        };
        let id = required_id(&mut t, &mut seen, d);
        let email = email_list(&mut t, "email", d);
        let escalate_after = t.duration("escalate_after", d);
        let escalate_to = email_list(&mut t, "escalate_to", d);
        let repeat = t.duration("repeat", d);
        let group_window = t.duration("group_window", d);
        if email.is_empty() && !t.has("email") {
            t.missing("email", "write email = [\"oncall@example.com\"]", d);
        }
        if escalate_after.is_some() && escalate_to.is_empty() {
            d.error(
                t.key_span("escalate_after"),
                "`escalate_after` needs `escalate_to`: write escalate_to = [\"lead@example.com\"]",
            );
        }
        t.finish(d);
        if let Some(id) = id {
            routes.push(Route {
                id,
                email,
                escalate_after,
                escalate_to,
                repeat,
                group_window: group_window.unwrap_or(Duration::from_secs(30)),
            });
        }
    }
    routes
}

fn email_list(t: &mut Table<'_, '_>, key: &'static str, d: &mut Diagnostics) -> Vec<String> {
    let Some(list) = t.strings(key, d) else {
        return Vec::new();
    };
    for address in &list {
        let ok = address
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.trim().is_empty() && domain.contains('.'));
        if !ok {
            d.error(
                t.get(key).unwrap().span(),
                format!(
                    "`{key}`: `{address}` is not an e-mail address: write e.g. \"ops@example.com\""
                ),
            );
        }
    }
    list
}

/// Reads `id`, checking its characters and that it is not among `seen` (then adds it there).
fn required_id(
    t: &mut Table<'_, '_>,
    seen: &mut Vec<String>,
    d: &mut Diagnostics,
) -> Option<String> {
    let Some(v) = t.get("id") else {
        t.missing("id", "write id = \"a-unique-name\"", d);
        return None;
    };
    let id = d.parse(v, "id", |v| as_string(v).map(str::to_string))?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        d.error(
            v.span(),
            format!("`id`: `{id}` is not a valid id: {ID_HINT}"),
        );
        return None;
    }
    if seen.contains(&id) {
        d.error(
            v.span(),
            format!(
                "`id`: `{id}` is used twice in {}: ids must be unique",
                t.name
            ),
        );
        return None;
    }
    t.name = format!("{} \"{id}\"", t.name);
    seen.push(id.clone());
    Some(id)
}

fn route_reference(
    t: &mut Table<'_, '_>,
    route_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Option<Alert> {
    let v = t.get("alert")?;
    d.parse(v, "alert", |v| match v {
        DeValue::Boolean(false) => Ok(Alert::Muted),
        DeValue::Boolean(true) => Ok(Alert::Inherit),
        DeValue::String(id) if route_ids.contains(id.as_ref()) => Ok(Alert::Route(id.to_string())),
        DeValue::String(id) => Err(format!(
            "no [[route]] has id `{id}`: define it or write alert = false to mute"
        )),
        other => Err(format!(
            "expected a route id or false, found {}",
            type_name(other)
        )),
    })
}

fn contracts_section(
    values: &[Value<'_, '_>],
    default_tz: &TimeZoneName,
    route_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Vec<Contract> {
    let mut contracts: Vec<Contract> = Vec::new();
    let mut seen = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[contract]]", d) else {
            continue;
        };
        let id = required_id(&mut t, &mut seen, d);
        let client = t.string("client", d);
        if client.is_none() && !t.has("client") {
            t.missing("client", "write client = \"the client's name\"", d);
        }
        let timezone = t.get("timezone").map(|v| d.parse(v, "timezone", time_zone));
        let target = t.percent("target", d);
        if target.is_none() && !t.has("target") {
            t.missing("target", "write target = \"99.9%\"", d);
        }
        let coverage = t.get("coverage").map(|v| d.parse(v, "coverage", coverage));
        let no_data = t.get("no_data").map(|v| {
            d.parse(v, "no_data", |v| match as_string(v)? {
                "exclude" => Ok(NoDataPolicy::Exclude),
                "hold" => Ok(NoDataPolicy::Hold),
                "down" => Ok(NoDataPolicy::Down),
                other => Err(format!(
                    "`{other}` is not a policy: write \"exclude\", \"hold\" or \"down\""
                )),
            })
        });
        let granularity = t.get("granularity").map(|v| {
            d.parse(v, "granularity", |v| match as_string(v)? {
                "second" => Ok(Granularity::Second),
                "minute" => Ok(Granularity::Minute),
                other => Err(format!(
                    "`{other}` is not a granularity: write \"second\" or \"minute\""
                )),
            })
        });
        let monthly_fee = t.money("monthly_fee", d).unwrap_or_default();
        let currency = t.string("currency", d);
        if let Some(c) = &currency
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            d.error(
                t.get("currency").unwrap().span(),
                format!("`currency`: `{c}` is not an ISO 4217 code: write e.g. \"EUR\" or \"USD\""),
            );
        }
        if monthly_fee > Cents(0) && currency.is_none() {
            t.missing(
                "currency",
                "with a `monthly_fee`, write currency = \"EUR\" (or another ISO 4217 code)",
                d,
            );
        }
        let credits = t
            .get("credits")
            .map(|v| credit_tiers(v, d))
            .unwrap_or_default();
        let credit_cap = t.percent("credit_cap", d);
        let credit_min = t.money("credit_min", d);
        let statement_to = email_list(&mut t, "statement_to", d);
        let statements = t.get("statements").map(|v| {
            d.parse(v, "statements", |v| match as_string(v)? {
                "always" => Ok(StatementPolicy::Always),
                "on_breach" => Ok(StatementPolicy::OnBreach),
                "never" => Ok(StatementPolicy::Never),
                other => Err(format!(
                    "`{other}` is not a policy: write \"always\", \"on_breach\" or \"never\""
                )),
            })
        });
        let alert = route_reference(&mut t, route_ids, d);
        t.finish(d);
        let (Some(id), Some(client), Some(target)) = (id, client, target) else {
            continue;
        };
        contracts.push(Contract {
            id,
            client,
            timezone: timezone.flatten().unwrap_or_else(|| default_tz.clone()),
            target,
            coverage: coverage.flatten().unwrap_or(Coverage::Always),
            no_data: no_data.flatten().unwrap_or(NoDataPolicy::Exclude),
            granularity: granularity.flatten().unwrap_or(Granularity::Second),
            monthly_fee,
            currency: currency.unwrap_or_default(),
            credits,
            credit_cap: credit_cap.unwrap_or(Fraction::ONE),
            credit_min: credit_min.unwrap_or_default(),
            statement_to,
            statements: statements.flatten().unwrap_or(StatementPolicy::Always),
            alert: alert.unwrap_or(Alert::Inherit),
        });
    }
    contracts
}

fn coverage(v: &DeValue<'_>) -> Result<Coverage, String> {
    const HINT: &str = "write \"24x7\" or { days = \"Mon-Fri\", hours = \"09:00-18:00\", \
                        holidays = [\"2026-12-25\"] }";
    let table = match v {
        DeValue::String(s) if s == "24x7" => return Ok(Coverage::Always),
        DeValue::Table(table) => table,
        _ => return Err(format!("not a coverage: {HINT}")),
    };
    let mut days = None;
    let mut hours = None;
    let mut holidays = Vec::new();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "days" => days = Some(parse_days(as_string(value.get_ref())?)?),
            "hours" => hours = Some(parse_hours(as_string(value.get_ref())?)?),
            "holidays" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(format!("`holidays` must be a list of dates: {HINT}"));
                };
                for item in items {
                    holidays.push(parse_date(item.get_ref())?);
                }
            }
            other => return Err(format!("unknown key `{other}`: {HINT}")),
        }
    }
    let (start_minute, end_minute) = hours.ok_or_else(|| format!("`hours` is missing: {HINT}"))?;
    Ok(Coverage::BusinessHours {
        days: days.unwrap_or([true, true, true, true, true, false, false]),
        start_minute,
        end_minute,
        holidays,
    })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const HINT: &str = "write days such as \"Mon-Fri\" or \"Mon,Wed,Fri\"";
    let index = |name: &str| {
        let lower = name.trim().to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| lower.starts_with(n) && lower.len() >= 3)
            .ok_or_else(|| format!("`{}` is not a day: {HINT}", name.trim()))
    };
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    const HINT: &str = "write hours such as \"09:00-18:00\" (24-hour clock, end after start)";
    let minute = |s: &str| -> Result<u32, String> {
        let (h, m) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: {HINT}"))?;
        let h: u32 = h.parse().map_err(|_| format!("`{text}`: {HINT}"))?;
        let m: u32 = m.parse().map_err(|_| format!("`{text}`: {HINT}"))?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(format!("`{text}`: {HINT}"));
        }
        Ok(h * 60 + m)
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}`: {HINT}"))?;
    let (start, end) = (minute(a)?, minute(b)?);
    if end <= start {
        return Err(format!("`{text}`: {HINT}"));
    }
    Ok((start, end))
}

fn parse_date(v: &DeValue<'_>) -> Result<jiff::civil::Date, String> {
    let text = match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        other => {
            return Err(format!(
                "expected a date such as \"2026-12-25\", found {}",
                type_name(other)
            ));
        }
    };
    text.parse::<jiff::civil::Date>()
        .map_err(|_| format!("`{text}` is not a date: write e.g. \"2026-12-25\""))
}

fn credit_tiers(v: Value<'_, '_>, d: &mut Diagnostics) -> Vec<CreditTier> {
    const HINT: &str = "write credits = [ { below = \"99.9%\", credit = \"10%\" }, … ]";
    let tiers = d.parse(v, "credits", |v| {
        let DeValue::Array(items) = v else {
            return Err(format!("expected a list of tiers: {HINT}"));
        };
        let mut tiers = Vec::new();
        for item in items {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(format!("every tier is a table: {HINT}"));
            };
            let (mut below, mut credit) = (None, None);
            for (key, value) in table.iter() {
                match key.get_ref().as_ref() {
                    "below" => below = Some(super::reader::parse_percent(value.get_ref())?),
                    "credit" => credit = Some(super::reader::parse_percent(value.get_ref())?),
                    other => return Err(format!("unknown key `{other}` in a tier: {HINT}")),
                }
            }
            match (below, credit) {
                (Some(below), Some(credit)) => tiers.push(CreditTier { below, credit }),
                _ => return Err(format!("every tier needs `below` and `credit`: {HINT}")),
            }
        }
        tiers.sort_by(|a, b| {
            let lhs = a.below.num() as u128 * b.below.den() as u128;
            let rhs = b.below.num() as u128 * a.below.den() as u128;
            rhs.cmp(&lhs)
        });
        for pair in tiers.windows(2) {
            if pair[0].below == pair[1].below {
                return Err(format!(
                    "two tiers are below {}: each `below` must differ",
                    pair[0].below
                ));
            }
            let lower_credit = pair[1].credit.num() as u128 * pair[0].credit.den() as u128;
            let higher_credit = pair[0].credit.num() as u128 * pair[1].credit.den() as u128;
            if lower_credit < higher_credit {
                return Err(format!(
                    "the tier below {} credits less than the tier below {}: credits must not \
                     shrink as availability falls",
                    pair[1].below, pair[0].below
                ));
            }
        }
        Ok(tiers)
    });
    tiers.unwrap_or_default()
}

/// `[defaults]`: values every service takes unless it sets its own.
#[derive(Default)]
struct Defaults {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    retry_interval: Option<Duration>,
    confirm_down: Option<u32>,
    confirm_up: Option<u32>,
    method: Option<reqwest::Method>,
    expect_status: Option<Vec<std::ops::RangeInclusive<u16>>>,
    body_contains: Option<String>,
    body_regex: Option<regex::Regex>,
    headers: Option<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>>,
    expect_headers: Option<Vec<(reqwest::header::HeaderName, String)>>,
    follow_redirects: Option<bool>,
    max_body_bytes: Option<u64>,
    tls_verify: Option<bool>,
    cert_expiry_warn: Option<Duration>,
    record: Option<RecordKind>,
    server: Option<SocketAddr>,
    latency: Option<LatencySlo>,
}

/// The service keys that `[defaults]` and `[[service]]` share, read from `t`.
fn probe_settings(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Defaults {
    Defaults {
        interval: t.duration("interval", d),
        timeout: t.duration("timeout", d),
        retry_interval: t.duration("retry_interval", d),
        confirm_down: t.integer("confirm_down", 1, 100, d).map(|n| n as u32),
        confirm_up: t.integer("confirm_up", 1, 100, d).map(|n| n as u32),
        method: t.get("method").and_then(|v| d.parse(v, "method", method)),
        expect_status: t.get("expect_status").and_then(|v| d.parse(v, "expect_status", expect_status)),
        body_contains: t.string("body_contains", d),
        body_regex: t.get("body_regex").and_then(|v| {
            d.parse(v, "body_regex", |v| {
                let text = as_string(v)?;
                regex::Regex::new(text).map_err(|e| {
                    format!("not a valid regular expression: {}", e.to_string().replace('\n', " "))
                })
            })
        }),
        headers: t.get("headers").and_then(|v| d.parse(v, "headers", request_headers)),
        expect_headers: t.get("expect_headers").and_then(|v| d.parse(v, "expect_headers", expected_headers)),
        follow_redirects: t.bool("follow_redirects", d),
        max_body_bytes: t.integer("max_body_bytes", 1, 100 * 1024 * 1024, d),
        tls_verify: t.bool("tls_verify", d),
        cert_expiry_warn: t.duration("cert_expiry_warn", d),
        record: t.get("record").and_then(|v| {
            d.parse(v, "record", |v| {
                let text = as_string(v)?;
                RecordKind::parse(text).ok_or_else(|| {
                    format!("`{text}` is not a supported record type: write A, AAAA, CNAME, MX, TXT or NS")
                })
            })
        }),
        server: t.get("server").and_then(|v| d.parse(v, "server", dns_server)),
        latency: t.get("latency").and_then(|v| d.parse(v, "latency", latency_slo)),
    }
}

fn defaults_section(value: Value<'_, '_>, d: &mut Diagnostics) -> Option<Defaults> {
    let mut t = Table::new(value, "[defaults]", d)?;
    let defaults = probe_settings(&mut t, d);
    for key in [
        "send", "expect", "http", "tcp", "dns", "id", "contract", "name",
    ] {
        if t.has(key) {
            d.error(
                t.key_span(key),
                format!("`{key}` cannot be defaulted: set it in each [[service]]"),
            );
            t.get(key);
        }
    }
    t.finish(d);
    Some(defaults)
}

fn method(v: &DeValue<'_>) -> Result<reqwest::Method, String> {
    let text = as_string(v)?;
    match text.to_ascii_uppercase().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH") => {
            Ok(m.parse().expect("a standard method"))
        }
        _ => Err(format!(
            "`{text}` is not a method: write GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH"
        )),
    }
}

fn expect_status(v: &DeValue<'_>) -> Result<Vec<std::ops::RangeInclusive<u16>>, String> {
    const HINT: &str = "write e.g. [\"200-299\", 301] or [\"2xx\"] (codes 100 to 599)";
    let one = |v: &DeValue<'_>| -> Result<std::ops::RangeInclusive<u16>, String> {
        let code = |s: &str| -> Result<u16, String> {
            match s.trim().parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!("`{s}` is not a status: {HINT}")),
            }
        };
        match v {
            DeValue::Integer(i) => code(i.as_str()).map(|c| c..=c),
            DeValue::String(s) => {
                let s = s.trim();
                if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
                    let c = code(&format!("{class}00"))?;
                    return Ok(c..=c + 99);
                }
                match s.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (code(a)?, code(b)?);
                        if a > b {
                            return Err(format!("`{s}` runs backwards: {HINT}"));
                        }
                        Ok(a..=b)
                    }
                    None => code(s).map(|c| c..=c),
                }
            }
            other => Err(format!(
                "expected a status, found {}: {HINT}",
                type_name(other)
            )),
        }
    };
    match v {
        DeValue::Array(items) if items.into_iter().next().is_some() => {
            items.into_iter().map(|i| one(i.get_ref())).collect()
        }
        DeValue::Array(_) => Err(format!("the list is empty: {HINT}")),
        single => one(single).map(|r| vec![r]),
    }
}

fn request_headers(
    v: &DeValue<'_>,
) -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, String> {
    let DeValue::Table(table) = v else {
        return Err("write headers = { \"X-Api-Key\" = \"…\" }".to_string());
    };
    let mut headers = Vec::new();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref().as_ref();
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let value = as_string(value.get_ref())?;
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    Ok(headers)
}

fn expected_headers(v: &DeValue<'_>) -> Result<Vec<(reqwest::header::HeaderName, String)>, String> {
    let DeValue::Table(table) = v else {
        return Err(
            "write expect_headers = { \"Content-Type\" = \"application/json\" } (\"\" to only \
             require the header)"
                .to_string(),
        );
    };
    let mut headers = Vec::new();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref().as_ref();
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        headers.push((name, as_string(value.get_ref())?.to_string()));
    }
    Ok(headers)
}

fn dns_server(v: &DeValue<'_>) -> Result<SocketAddr, String> {
    let text = as_string(v)?;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("`{text}` is not IP[:PORT]: write e.g. \"192.0.2.53\" or \"127.0.0.1:5353\"")
        })
}

fn latency_slo(v: &DeValue<'_>) -> Result<LatencySlo, String> {
    const HINT: &str = "write latency = { threshold = \"300ms\", target = \"95%\" }";
    let DeValue::Table(table) = v else {
        return Err(HINT.to_string());
    };
    let (mut threshold, mut target) = (None, None);
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "threshold" => threshold = Some(super::reader::parse_duration(value.get_ref())?),
            "target" => target = Some(super::reader::parse_percent(value.get_ref())?),
            other => return Err(format!("unknown key `{other}`: {HINT}")),
        }
    }
    let (Some(threshold), Some(target)) = (threshold, target) else {
        return Err(format!("both `threshold` and `target` are needed: {HINT}"));
    };
    if !latency_threshold_is_exact(threshold) {
        return Err(format!(
            "threshold {} cannot be measured exactly from the stored histograms: use whole \
             milliseconds up to 100ms, multiples of 10ms up to 1s, of 100ms up to 10s, or whole \
             seconds up to 60s",
            humantime::format_duration(threshold)
        ));
    }
    Ok(LatencySlo { threshold, target })
}

fn services_section(
    values: &[Value<'_, '_>],
    defaults: &Defaults,
    contract_ids: &HashSet<&str>,
    route_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Vec<Service> {
    let mut services: Vec<Service> = Vec::new();
    let mut seen = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[service]]", d) else {
            continue;
        };
        let id = required_id(&mut t, &mut seen, d);
        let contract = match t.get("contract") {
            None => {
                t.missing(
                    "contract",
                    "write contract = \"<the id of a [[contract]]>\"",
                    d,
                );
                None
            }
            Some(v) => d.parse(v, "contract", |v| {
                let id = as_string(v)?;
                if contract_ids.contains(id) {
                    Ok(id.to_string())
                } else {
                    let mut known: Vec<&str> = contract_ids.iter().copied().collect();
                    known.sort_unstable();
                    Err(format!(
                        "no [[contract]] has id `{id}`: write one of: {}",
                        if known.is_empty() {
                            "(none defined)".to_string()
                        } else {
                            known.join(", ")
                        }
                    ))
                }
            }),
        };
        let name = t.string("name", d);
        let own = probe_settings(&mut t, d);
        let send = t.string("send", d);
        let alert = route_reference(&mut t, route_ids, d);
        let probe = service_probe(&mut t, &own, defaults, send, d);
        let interval = own
            .interval
            .or(defaults.interval)
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = own.timeout.or(defaults.timeout).unwrap_or(DEFAULT_TIMEOUT);
        if timeout >= interval {
            let at = if t.has("timeout") {
                "timeout"
            } else {
                "interval"
            };
            d.error(
                t.key_span(at),
                format!(
                    "timeout ({}) must be shorter than interval ({}): lower `timeout` or raise \
                     `interval`",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            );
        }
        let retry_interval = own
            .retry_interval
            .or(defaults.retry_interval)
            .unwrap_or(DEFAULT_RETRY)
            .min(interval);
        t.finish(d);
        let (Some(id), Some(contract), Some(probe)) = (id, contract, probe) else {
            continue;
        };
        services.push(Service {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            contract,
            probe,
            interval,
            timeout,
            retry_interval,
            confirm_down: own.confirm_down.or(defaults.confirm_down).unwrap_or(2),
            confirm_up: own.confirm_up.or(defaults.confirm_up).unwrap_or(1),
            latency: own.latency.or(defaults.latency),
            alert: alert.unwrap_or(Alert::Inherit),
        });
    }
    services
}

/// The probe of a service: exactly one of `http`, `tcp`, `dns`, with only the keys it uses.
fn service_probe(
    t: &mut Table<'_, '_>,
    own: &Defaults,
    defaults: &Defaults,
    send: Option<String>,
    d: &mut Diagnostics,
) -> Option<ProbeSpec> {
    let kinds: Vec<&'static str> = ["http", "tcp", "dns"]
        .into_iter()
        .filter(|k| t.has(k))
        .collect();
    let http_value = t.get("http");
    let tcp_value = t.get("tcp");
    let dns_value = t.get("dns");
    let expect_value = t.get("expect");
    match kinds.as_slice() {
        [] => {
            t.missing(
                "http",
                "give the target as http = \"https://…\", tcp = \"host:port\" or dns = \"name\"",
                d,
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            d.error(
                t.key_span(second),
                format!(
                    "a service probes one target: keep one of {}",
                    kinds.join(", ")
                ),
            );
            return None;
        }
    }
    let kind = kinds[0];
    let only_for = |key: &str, for_kind: &str, present: bool, d: &mut Diagnostics| {
        if present && kind != for_kind {
            d.error(
                t.key_span(key),
                format!("`{key}` applies to {for_kind} services only; this one is {kind}"),
            );
        }
    };
    for (key, present) in [
        ("method", own.method.is_some()),
        ("expect_status", own.expect_status.is_some()),
        ("body_contains", own.body_contains.is_some()),
        ("body_regex", own.body_regex.is_some()),
        ("headers", own.headers.is_some()),
        ("expect_headers", own.expect_headers.is_some()),
        ("follow_redirects", own.follow_redirects.is_some()),
        ("max_body_bytes", own.max_body_bytes.is_some()),
        ("tls_verify", own.tls_verify.is_some()),
        ("cert_expiry_warn", own.cert_expiry_warn.is_some()),
    ] {
        only_for(key, "http", present, d);
    }
    only_for("send", "tcp", send.is_some(), d);
    only_for("record", "dns", own.record.is_some(), d);
    only_for("server", "dns", own.server.is_some(), d);

    match kind {
        "http" => {
            let value = http_value?;
            let url = d.parse(value, "http", |v| {
                let text = as_string(v)?;
                let url = reqwest::Url::parse(text).map_err(|e| {
                    format!(
                        "`{text}` is not a URL ({e}): write e.g. \"https://api.example.com/health\""
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!(
                        "`{text}` must be an http:// or https:// URL with a host"
                    ));
                }
                Ok(url)
            })?;
            if expect_value.is_some() {
                d.error(
                    t.key_span("expect"),
                    "`expect` applies to tcp and dns services; for HTTP use `body_contains`, \
                     `body_regex` or `expect_status`",
                );
            }
            let cert_expiry_warn = own.cert_expiry_warn.or(defaults.cert_expiry_warn);
            if own.cert_expiry_warn.is_some() && url.scheme() != "https" {
                d.error(
                    t.key_span("cert_expiry_warn"),
                    "`cert_expiry_warn` needs an https:// URL: there is no certificate on http://",
                );
            }
            Some(ProbeSpec::Http(HttpSpec {
                method: own
                    .method
                    .clone()
                    .or_else(|| defaults.method.clone())
                    .unwrap_or(reqwest::Method::GET),
                expect_status: own
                    .expect_status
                    .clone()
                    .or_else(|| defaults.expect_status.clone())
                    .unwrap_or_else(|| vec![200..=399]),
                body_contains: own
                    .body_contains
                    .clone()
                    .or_else(|| defaults.body_contains.clone()),
                body_regex: own
                    .body_regex
                    .clone()
                    .or_else(|| defaults.body_regex.clone()),
                headers: own
                    .headers
                    .clone()
                    .or_else(|| defaults.headers.clone())
                    .unwrap_or_default(),
                expect_headers: own
                    .expect_headers
                    .clone()
                    .or_else(|| defaults.expect_headers.clone())
                    .unwrap_or_default(),
                follow_redirects: own
                    .follow_redirects
                    .or(defaults.follow_redirects)
                    .unwrap_or(false),
                max_body_bytes: own
                    .max_body_bytes
                    .or(defaults.max_body_bytes)
                    .unwrap_or(DEFAULT_MAX_BODY) as usize,
                tls_verify: own.tls_verify.or(defaults.tls_verify).unwrap_or(true),
                cert_expiry_warn: if url.scheme() == "https" {
                    cert_expiry_warn
                } else {
                    None
                },
                url,
            }))
        }
        "tcp" => {
            let value = tcp_value?;
            let (host, port) = d.parse(value, "tcp", |v| {
                let text = as_string(v)?;
                let hint = "write HOST:PORT such as \"db.example.com:5432\" or \"[::1]:22\"";
                let (host, port) = text
                    .rsplit_once(':')
                    .ok_or_else(|| format!("`{text}` has no port: {hint}"))?;
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{text}` has no valid port: {hint}"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(format!("`{text}` has no host: {hint}"));
                }
                Ok((host.to_string(), port))
            })?;
            let expect = expect_value.and_then(|v| {
                d.parse(v, "expect", |v| {
                    as_string(v).map(str::to_string).map_err(|e| {
                        format!("for a tcp service {e}: the text the server must send")
                    })
                })
            });
            Some(ProbeSpec::Tcp(TcpSpec {
                host,
                port,
                send,
                expect,
            }))
        }
        _ => {
            let value = dns_value?;
            let name = d.parse(value, "dns", |v| {
                let text = as_string(v)?;
                if text.is_empty()
                    || text.contains(char::is_whitespace)
                    || text.split('.').any(|label| label.len() > 63)
                {
                    return Err(format!(
                        "`{text}` is not a domain name: write e.g. \"www.example.com\""
                    ));
                }
                Ok(text.to_string())
            })?;
            let server = own.server.or(defaults.server);
            if server.is_none() && !t.has("server") {
                t.missing(
                    "server",
                    "write server = \"IP[:PORT]\" (the name server to ask)",
                    d,
                );
            }
            let expect = expect_value.and_then(|v| {
                d.parse(v, "expect", |v| match v {
                    DeValue::String(s) => Ok(vec![s.to_string()]),
                    DeValue::Array(items) => items
                        .into_iter()
                        .map(|i| as_string(i.get_ref()).map(str::to_string))
                        .collect(),
                    other => Err(format!(
                        "expected a list of answers such as [\"203.0.113.10\"], found {}",
                        type_name(other)
                    )),
                })
            });
            Some(ProbeSpec::Dns(DnsSpec {
                name,
                record: own.record.or(defaults.record).unwrap_or(RecordKind::A),
                server: server?,
                expect: expect.unwrap_or_default(),
            }))
        }
    }
}

fn maintenance_section(
    values: &[Value<'_, '_>],
    contracts: &[Contract],
    default_tz: &TimeZoneName,
    contract_ids: &HashSet<&str>,
    service_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Vec<Maintenance> {
    let mut windows = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[maintenance]]", d) else {
            continue;
        };
        let services = t.strings("services", d);
        let contract = t.string("contract", d);
        let start = t.instant("start", d);
        let end = t.instant("end", d);
        let duration = t.duration("duration", d);
        let cron = t.get("cron").and_then(|v| {
            d.parse(v, "cron", |v| {
                let text = as_string(v)?;
                croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Disallowed)
                    .year(croner::parser::Year::Disallowed)
                    .build()
                    .parse(text)
                    .map(|_| text.to_string())
                    .map_err(|e| {
                        format!(
                            "`{text}` is not a cron expression ({e}): write 5 fields, minute hour \
                             day-of-month month day-of-week, e.g. \"0 3 * * SUN\""
                        )
                    })
            })
        });
        let timezone = t
            .get("timezone")
            .and_then(|v| d.parse(v, "timezone", time_zone));

        let scope = match (services, contract) {
            (Some(_), Some(_)) => {
                d.error(
                    t.key_span("contract"),
                    "a window applies to `services` or to a `contract`, not both: keep one",
                );
                None
            }
            (Some(list), None) => {
                let unknown: Vec<&String> = list
                    .iter()
                    .filter(|s| !service_ids.contains(s.as_str()))
                    .collect();
                if list.is_empty() {
                    d.error(
                        t.key_span("services"),
                        "`services` is empty: name at least one service",
                    );
                    None
                } else if let Some(first) = unknown.first() {
                    d.error(
                        t.get("services").unwrap().span(),
                        format!("`services`: no [[service]] has id `{first}`"),
                    );
                    None
                } else {
                    Some(MaintenanceScope::Services(list))
                }
            }
            (None, Some(id)) => {
                if contract_ids.contains(id.as_str()) {
                    Some(MaintenanceScope::Contract(id))
                } else {
                    d.error(
                        t.get("contract").unwrap().span(),
                        format!("`contract`: no [[contract]] has id `{id}`"),
                    );
                    None
                }
            }
            (None, None) => {
                if !t.has("services") && !t.has("contract") {
                    t.missing(
                        "services",
                        "write services = [\"service-id\"] or contract = \"contract-id\"",
                        d,
                    );
                }
                None
            }
        };

        let when = match (start, cron) {
            (Some(_), Some(_)) => {
                d.error(
                    t.key_span("cron"),
                    "a window is one-off (`start`) or recurring (`cron`), not both: keep one",
                );
                None
            }
            (Some(start), None) => {
                if t.has("timezone") {
                    d.error(
                        t.key_span("timezone"),
                        "`timezone` applies to recurring (`cron`) windows; `start` carries its own offset",
                    );
                }
                let end = match (end, duration) {
                    (Some(_), Some(_)) => {
                        d.error(t.key_span("duration"), "give `end` or `duration`, not both");
                        None
                    }
                    (Some(end), None) => Some(end),
                    (None, Some(duration)) => jiff::SignedDuration::try_from(duration)
                        .ok()
                        .and_then(|span| start.checked_add(span).ok()),
                    (None, None) => {
                        if !t.has("end") && !t.has("duration") {
                            t.missing(
                                "duration",
                                "write duration = \"2h\" or end = \"<instant>\"",
                                d,
                            );
                        }
                        None
                    }
                };
                match end {
                    Some(end) if end <= start => {
                        d.error(t.key_span("end"), "`end` must come after `start`");
                        None
                    }
                    Some(end) => Some(MaintenanceWhen::Once { start, end }),
                    None => None,
                }
            }
            (None, Some(cron)) => {
                if t.has("end") {
                    d.error(
                        t.key_span("end"),
                        "a recurring window has a `duration`, not an `end`",
                    );
                }
                if duration.is_none() && !t.has("duration") {
                    t.missing("duration", "write duration = \"30m\"", d);
                }
                let zone = timezone.or_else(|| match &scope {
                    Some(MaintenanceScope::Contract(id)) => contracts
                        .iter()
                        .find(|c| &c.id == id)
                        .map(|c| c.timezone.clone()),
                    _ => None,
                });
                duration.map(|duration| MaintenanceWhen::Recurring {
                    cron,
                    duration,
                    timezone: zone.unwrap_or_else(|| default_tz.clone()),
                })
            }
            (None, None) => {
                if !t.has("start") && !t.has("cron") {
                    t.missing(
                        "start",
                        "write start = \"<instant>\" or cron = \"0 3 * * SUN\"",
                        d,
                    );
                }
                None
            }
        };
        t.finish(d);
        if let (Some(scope), Some(when)) = (scope, when) {
            windows.push(Maintenance { scope, when });
        }
    }
    windows
}
