//! `[defaults]` and `[[service]]` tables: the probe of each service and its timing.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use toml::de::DeValue;

use super::fields::{quorum, required_id, route_reference};
use super::reader::{Diagnostics, Table, Value, as_string, type_name};
use super::*;
use crate::probe::{DnsSpec, HttpSpec, ProbeSpec, RecordKind, TcpSpec};
use crate::sla::latency::latency_threshold_is_exact;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY: Duration = Duration::from_secs(5);
const DEFAULT_MAX_BODY: u64 = 64 * 1024;

/// `[defaults]`: values every service takes unless it sets its own.
#[derive(Default)]
pub(super) struct Defaults {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    retry_interval: Option<Duration>,
    confirm_down: Option<u32>,
    confirm_up: Option<u32>,
    method: Option<reqwest::Method>,
    expect_status: Option<Vec<std::ops::RangeInclusive<u16>>>,
    body_contains: Option<String>,
    body_regex: Option<crate::probe::Pattern>,
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
                regex::Regex::new(text).map(crate::probe::Pattern).map_err(|e| {
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

pub(super) fn defaults_section(value: Value<'_, '_>, d: &mut Diagnostics) -> Option<Defaults> {
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

pub(super) fn services_section(
    values: &[Value<'_, '_>],
    defaults: &Defaults,
    contracts: &[Contract],
    contract_ids: &HashSet<&str>,
    route_ids: &HashSet<&str>,
    locations: &[String],
    d: &mut Diagnostics,
) -> Vec<Arc<Service>> {
    let mut services: Vec<Arc<Service>> = Vec::new();
    let mut fees: Vec<FeeBasis> = Vec::new();
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
        let fee = fee_basis(&mut t, contract.as_deref(), contracts, value.span(), d);
        let respond_within = t.duration("respond_within", d);
        let restore_within = t.duration("restore_within", d);
        let quorum = quorum(&mut t, locations, d);
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
        services.push(Arc::new(Service {
            given_name: name,
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
            own_fee: fee.own,
            fee_share: fee.share,
            respond_within,
            restore_within,
            quorum,
        }));
        fees.push(fee);
    }
    assign_fees(&services, &fees, contracts, d);
    services
}

/// What a `[[service]]` says of its fee: its own `monthly_fee`, or its `fee_share` of the
/// contract's (default 1).
struct FeeBasis {
    own: Option<Cents>,
    share: u32,
    /// The table, for an error that is about the service as a whole.
    span: std::ops::Range<usize>,
}

/// Reads `monthly_fee` and `fee_share`; a fee on both the service and its contract, or a
/// share beside an own fee, is an error.
fn fee_basis(
    t: &mut Table<'_, '_>,
    contract: Option<&str>,
    contracts: &[Contract],
    span: std::ops::Range<usize>,
    d: &mut Diagnostics,
) -> FeeBasis {
    let own = t.money("monthly_fee", d);
    let share = t.integer("fee_share", 1, 1_000_000, d);
    if own.is_some() && share.is_some() {
        d.error(
            t.key_span("fee_share"),
            "`fee_share` splits the contract's `monthly_fee`, but this service has its own \
             `monthly_fee`: keep one of them",
        );
    }
    let contract = contract.and_then(|id| contracts.iter().find(|c| c.id == id));
    if let (Some(_), Some(contract)) = (own, contract)
        && (contract.monthly_fee > Cents(0)
            || contract.terms.iter().any(|t| t.monthly_fee.is_some()))
    {
        d.error(
            t.key_span("monthly_fee"),
            format!(
                "contract `{}` has a `monthly_fee` too: give the fee on the contract (split by \
                 `fee_share`) or on each of its services, not both",
                contract.id
            ),
        );
    }
    if let (Some(fee), Some(contract)) = (own, contract)
        && fee > Cents(0)
        && contract.currency.is_empty()
    {
        d.error(
            t.key_span("monthly_fee"),
            format!(
                "with a `monthly_fee`, contract `{}` needs currency = \"EUR\" (or another ISO \
                 4217 code)",
                contract.id
            ),
        );
    }
    FeeBasis {
        own,
        share: share.unwrap_or(1) as u32,
        span,
    }
}

/// Where some services of a contract carry their own fee, every one must (the contract's
/// fee is then split among none of them).
fn assign_fees(
    services: &[Arc<Service>],
    fees: &[FeeBasis],
    contracts: &[Contract],
    d: &mut Diagnostics,
) {
    for contract in contracts {
        let members: Vec<usize> = (0..services.len())
            .filter(|&i| services[i].contract == contract.id)
            .collect();
        if !members.iter().any(|&i| fees[i].own.is_some()) {
            continue;
        }
        for &i in members.iter().filter(|&&i| fees[i].own.is_none()) {
            d.error(
                fees[i].span.clone(),
                format!(
                    "[[service]] \"{}\" has no `monthly_fee`, but other services of contract \
                     `{}` carry their own: give each one its own (0 for none)",
                    services[i].id, contract.id
                ),
            );
        }
    }
}

/// The probe of a service: exactly one of `http`, `tcp`, `dns`, with only the keys it uses.
fn service_probe(
    t: &mut Table<'_, '_>,
    own: &Defaults,
    defaults: &Defaults,
    send: Option<String>,
    d: &mut Diagnostics,
) -> Option<ProbeSpec> {
    // Every kind's key is taken, so that a second one is reported as a second target, not
    // as an unknown key.
    let [http, tcp, dns] = ["http", "tcp", "dns"].map(|key| t.get(key));
    let expect_value = t.get("expect");
    let kind = probe_kind(t, d)?;
    check_keys_fit(t, own, send.is_some(), kind, d);
    let keys = |value| ProbeKeys {
        value,
        expect: expect_value,
        own,
        defaults,
    };
    match kind {
        "http" => http_probe(t, keys(http?), d),
        "tcp" => tcp_probe(tcp?, expect_value, send, d),
        _ => dns_probe(t, keys(dns?), d),
    }
}

/// Which of `http`, `tcp`, `dns` the service names: exactly one.
fn probe_kind(t: &mut Table<'_, '_>, d: &mut Diagnostics) -> Option<&'static str> {
    let kinds: Vec<&'static str> = ["http", "tcp", "dns"]
        .into_iter()
        .filter(|k| t.has(k))
        .collect();
    match kinds.as_slice() {
        [] => {
            t.missing(
                "http",
                "give the target as http = \"https://…\", tcp = \"host:port\" or dns = \"name\"",
                d,
            );
            None
        }
        [kind] => Some(kind),
        [_, second, ..] => {
            d.error(
                t.key_span(second),
                format!(
                    "a service probes one target: keep one of {}",
                    kinds.join(", ")
                ),
            );
            None
        }
    }
}

/// Reports each key that belongs to another kind of probe than `kind`.
fn check_keys_fit(
    t: &Table<'_, '_>,
    own: &Defaults,
    has_send: bool,
    kind: &str,
    d: &mut Diagnostics,
) {
    let mut only_for = |key: &str, for_kind: &str, present: bool| {
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
        only_for(key, "http", present);
    }
    only_for("send", "tcp", has_send);
    only_for("record", "dns", own.record.is_some());
    only_for("server", "dns", own.server.is_some());
}

/// What a kind's reader takes: the target's value, `expect`, and the service's own probe keys
/// beside `[defaults]`.
struct ProbeKeys<'a, 'v, 'i> {
    value: Value<'v, 'i>,
    expect: Option<Value<'v, 'i>>,
    own: &'a Defaults,
    defaults: &'a Defaults,
}

/// `http = "https://…"` with its checks, each key from the service or else `[defaults]`.
fn http_probe(
    t: &Table<'_, '_>,
    keys: ProbeKeys<'_, '_, '_>,
    d: &mut Diagnostics,
) -> Option<ProbeSpec> {
    let (own, defaults) = (keys.own, keys.defaults);
    let url = d.parse(keys.value, "http", |v| {
        let text = as_string(v)?;
        let url = reqwest::Url::parse(text).map_err(|e| {
            format!("`{text}` is not a URL ({e}): write e.g. \"https://api.example.com/health\"")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "`{text}` must be an http:// or https:// URL with a host"
            ));
        }
        Ok(url)
    })?;
    if keys.expect.is_some() {
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

/// `tcp = "host:port"`, with the line to `send` and the banner to `expect`.
fn tcp_probe(
    value: Value<'_, '_>,
    expect_value: Option<Value<'_, '_>>,
    send: Option<String>,
    d: &mut Diagnostics,
) -> Option<ProbeSpec> {
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
            as_string(v)
                .map(str::to_string)
                .map_err(|e| format!("for a tcp service {e}: the text the server must send"))
        })
    });
    Some(ProbeSpec::Tcp(TcpSpec {
        host,
        port,
        send,
        expect,
    }))
}

/// `dns = "name"`, asked of `server`, with the answers to `expect`.
fn dns_probe(
    t: &mut Table<'_, '_>,
    keys: ProbeKeys<'_, '_, '_>,
    d: &mut Diagnostics,
) -> Option<ProbeSpec> {
    let (own, defaults) = (keys.own, keys.defaults);
    let name = d.parse(keys.value, "dns", |v| {
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
    let expect = keys.expect.and_then(|v| {
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
