//! Probes: what to check (`ProbeSpec`), how (one module per kind) and what came out (`Outcome`).
//!
//! A target's failure is data, never an `Err`: every probe ends in `Ok(())` or a classified
//! `Failure` within its timeout.

mod cert;
mod dns;
mod http;
mod http1;
mod tcp;

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::clock::Clock;

pub use dns::RecordKind;
pub use http::HttpClient;
pub(crate) use http::install_crypto_provider;

/// Why a probe failed (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Dns,
    Connect,
    Tls,
    Timeout,
    Status,
    Body,
    Header,
    CertExpiry,
    Answer,
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::Dns,
        Reason::Connect,
        Reason::Tls,
        Reason::Timeout,
        Reason::Status,
        Reason::Body,
        Reason::Header,
        Reason::CertExpiry,
        Reason::Answer,
        Reason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Dns => "dns",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Timeout => "timeout",
            Reason::Status => "status",
            Reason::Body => "body",
            Reason::Header => "header",
            Reason::CertExpiry => "cert_expiry",
            Reason::Answer => "answer",
            Reason::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The stored code: 1..=10 (0 means ok).
    pub fn code(self) -> u8 {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(9) as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed probe: the classified reason and a human-readable detail (secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Failure {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// One probe run: when it started (UTC, ms), how long it took, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub at_ms: i64,
    pub latency: Duration,
    pub failure: Option<Failure>,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What to probe. Equal specs probe the same way (a reload compares them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Dns(DnsSpec),
}

impl ProbeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
        }
    }

    /// The target as it may be shown: URL passwords and header values are never included.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Http(h) => redact_url(&h.url),
            ProbeSpec::Tcp(t) => format!("{}:{}", t.host, t.port),
            ProbeSpec::Dns(d) => format!("{} {} @{}", d.name, d.record, d.server),
        }
    }
}

/// `http = "https://…"` and its assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    pub url: reqwest::Url,
    pub method: reqwest::Method,
    /// Accepted statuses; default `[200..=399]`.
    pub expect_status: Vec<RangeInclusive<u16>>,
    pub body_contains: Option<String>,
    pub body_regex: Option<Pattern>,
    /// Request headers sent with each probe.
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// Response headers that must be present, each containing the given text (may be empty).
    pub expect_headers: Vec<(reqwest::header::HeaderName, String)>,
    pub follow_redirects: bool,
    /// At most this many body bytes are read; the assertions see only these.
    pub max_body_bytes: usize,
    pub tls_verify: bool,
    /// Fail with `cert_expiry` when the certificate expires within this margin.
    pub cert_expiry_warn: Option<Duration>,
}

/// A compiled regular expression, equal to another with the same source text.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl std::ops::Deref for Pattern {
    type Target = regex::Regex;

    fn deref(&self) -> &regex::Regex {
        &self.0
    }
}

/// `tcp = "host:port"` with an optional banner exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    pub host: String,
    pub port: u16,
    pub send: Option<String>,
    pub expect: Option<String>,
}

/// `dns = "name"` asked of `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    pub name: String,
    pub record: RecordKind,
    pub server: SocketAddr,
    /// Each must appear among the answer's records.
    pub expect: Vec<String>,
}

/// Shared, reusable state for running probes (TLS settings; DNS resolvers are per probe).
#[derive(Clone)]
pub struct Prober {
    http: HttpClient,
    /// Reads "now" for certificate expiry.
    clock: Clock,
}

impl Prober {
    pub fn new() -> Result<Prober, ProberError> {
        Prober::with_clock(Clock::system())
    }

    /// A prober that judges certificate expiry by `clock` (the daemon's, steppable in tests).
    pub fn with_clock(clock: Clock) -> Result<Prober, ProberError> {
        Ok(Prober {
            http: HttpClient::new()?,
            clock,
        })
    }

    /// Runs `spec` once within `timeout`, never returning later than the timeout (plus
    /// scheduling slack) and never failing for a target's fault. `at_ms` is the wall-clock start.
    pub async fn run(&self, spec: &ProbeSpec, timeout: Duration, at_ms: i64) -> Outcome {
        self.run_noted(spec, timeout, at_ms).await.0
    }

    /// `run`, and the `notAfter` (ms) of a certificate within `cert_expiry_warn`: a warning to
    /// tell, not a failure.
    pub async fn run_noted(
        &self,
        spec: &ProbeSpec,
        timeout: Duration,
        at_ms: i64,
    ) -> (Outcome, Option<i64>) {
        let started = tokio::time::Instant::now();
        let work = async {
            match spec {
                ProbeSpec::Http(h) => self.http.probe(h, self.clock.now_ms()).await,
                ProbeSpec::Tcp(t) => tcp::probe(t).await.map(|()| None),
                // Boxed: the resolver's state is large; the other probes need none of it.
                ProbeSpec::Dns(d) => Box::pin(dns::probe(d, timeout)).await.map(|()| None),
            }
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                Reason::Timeout,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )),
        };
        let latency = started.elapsed();
        match result {
            Ok(expiring) => (
                Outcome {
                    at_ms,
                    latency,
                    failure: None,
                },
                expiring,
            ),
            Err(failure) => (
                Outcome {
                    at_ms,
                    latency,
                    failure: Some(failure),
                },
                None,
            ),
        }
    }
}

/// A fault of the daemon itself while setting up probing (not a target's failure).
#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    #[error("cannot set up TLS for HTTPS probes")]
    Tls(#[source] rustls::Error),
}

/// `https://user:pass@host/` becomes `https://user:***@host/`.
pub fn redact_url(url: &reqwest::Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        url.to_string()
    }
}

/// Shortens `text` to at most `max` bytes at a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::from_code(0), None);
        assert_eq!(Reason::from_code(11), None);
    }

    #[test]
    fn url_passwords_are_redacted() {
        let url: reqwest::Url = "https://user:secret@example.com/x".parse().unwrap();
        assert_eq!(redact_url(&url), "https://user:***@example.com/x");
        let plain: reqwest::Url = "http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!(redact_url(&plain), "http://127.0.0.1:8080/");
    }
}
