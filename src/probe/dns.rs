//! DNS probes via hickory-resolver, asking the configured server directly (UDP, TCP fallback).

use std::fmt;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;

use super::{DnsSpec, Failure, Reason, truncate};

/// The record types a DNS probe may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

impl RecordKind {
    pub fn parse(text: &str) -> Option<RecordKind> {
        match text.to_ascii_uppercase().as_str() {
            "A" => Some(RecordKind::A),
            "AAAA" => Some(RecordKind::Aaaa),
            "CNAME" => Some(RecordKind::Cname),
            "MX" => Some(RecordKind::Mx),
            "TXT" => Some(RecordKind::Txt),
            "NS" => Some(RecordKind::Ns),
            _ => None,
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Cname => RecordType::CNAME,
            RecordKind::Mx => RecordType::MX,
            RecordKind::Txt => RecordType::TXT,
            RecordKind::Ns => RecordType::NS,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.record_type(), f)
    }
}

/// Asks `spec.server` for `spec.name` and checks that every expected value is in the answer.
///
/// Distinct outcomes: no answer in time → `timeout`; SERVFAIL/REFUSED or an unreachable
/// server → `dns`; NXDOMAIN, an empty answer or a missing expected value → `answer`.
pub async fn probe(spec: &DnsSpec, timeout: Duration) -> Result<(), Failure> {
    let mut server = NameServerConfig::udp_and_tcp(spec.server.ip());
    for connection in &mut server.connections {
        connection.port = spec.server.port();
    }
    let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
    let mut options = ResolverOpts::default();
    // One retry inside the probe's timeout; no cache, so every probe asks the server.
    options.timeout = timeout / 2;
    options.attempts = 1;
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.try_tcp_on_error = true;
    options.ndots = 0;
    let resolver =
        hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| {
                Failure::new(Reason::Internal, format!("cannot build the resolver: {e}"))
            })?;

    let name = if spec.name.ends_with('.') {
        spec.name.clone()
    } else {
        format!("{}.", spec.name)
    };
    let lookup = resolver
        .lookup(name.as_str(), spec.record.record_type())
        .await
        .map_err(|e| classify(&e, spec))?;

    let answers: Vec<String> = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == spec.record.record_type())
        .map(|r| normalize(spec.record, &r.data.to_string()))
        .collect();
    if answers.is_empty() {
        return Err(Failure::new(
            Reason::Answer,
            format!("no {} records for {}", spec.record, spec.name),
        ));
    }
    for expected in &spec.expect {
        let wanted = normalize(spec.record, expected);
        if !answers.contains(&wanted) {
            return Err(Failure::new(
                Reason::Answer,
                format!(
                    "`{expected}` is not in the answer [{}]",
                    truncate(&answers.join(", "), 300)
                ),
            ));
        }
    }
    Ok(())
}

fn classify(error: &NetError, spec: &DnsSpec) -> Failure {
    let server = spec.server;
    match error {
        NetError::Timeout => Failure::new(
            Reason::Timeout,
            format!("no answer from {server} for {} {}", spec.name, spec.record),
        ),
        NetError::Dns(DnsError::NoRecordsFound(no))
            if no.response_code == ResponseCode::NXDomain =>
        {
            Failure::new(
                Reason::Answer,
                format!("NXDOMAIN: {} does not exist (asked {server})", spec.name),
            )
        }
        NetError::Dns(DnsError::NoRecordsFound(no)) => Failure::new(
            Reason::Answer,
            format!(
                "no {} records for {} ({}, asked {server})",
                spec.record,
                spec.name,
                no.response_code.to_str()
            ),
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => Failure::new(
            Reason::Dns,
            format!(
                "{} from {server} for {}",
                code.to_str().to_uppercase(),
                spec.name
            ),
        ),
        NetError::Io(io) => Failure::new(Reason::Connect, format!("{server}: {io}")),
        other => {
            let text = other.to_string();
            if text.contains("timed out") {
                Failure::new(Reason::Timeout, format!("{server}: {text}"))
            } else {
                Failure::new(Reason::Dns, format!("{server}: {}", truncate(&text, 300)))
            }
        }
    }
}

/// A value in the form `expect` is written: names compare without case or trailing dot; TXT
/// text compares exactly (without the quotes).
fn normalize(kind: RecordKind, text: &str) -> String {
    let text = text.trim();
    match kind {
        RecordKind::Txt => text.trim_matches('"').to_string(),
        _ => text.trim_end_matches('.').to_ascii_lowercase(),
    }
}
