//! HTTP(S) probes over reqwest: a fresh connection each time, then status, header and body checks.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, Once};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Failure, HttpSpec, ProberError, Reason, cert, truncate};

/// The four clients a fleet needs: TLS verification on/off × redirects followed or not.
///
/// Each keeps no idle connection (`pool_max_idle_per_host(0)`), so every probe opens its own
/// connection and a DNS, TCP or TLS failure cannot hide behind a kept-alive one.
#[derive(Clone)]
pub struct HttpClients {
    clients: Arc<[reqwest::Client; 4]>,
}

impl HttpClients {
    pub fn new() -> Result<HttpClients, ProberError> {
        install_crypto_provider();
        let build = |verify: bool, follow: bool| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .redirect(if follow {
                    reqwest::redirect::Policy::limited(10)
                } else {
                    reqwest::redirect::Policy::none()
                })
                .retry(reqwest::retry::never())
                // A connection lives for one probe: TCP keepalive would only cost syscalls.
                .tcp_keepalive(None)
                .tcp_keepalive_interval(None)
                .tcp_keepalive_retries(None)
                .tls_danger_accept_invalid_certs(!verify)
                .tls_info(true)
                .dns_resolver(SystemResolver)
                .no_proxy()
                .user_agent(concat!("slaprobe/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(ProberError::HttpClient)
        };
        Ok(HttpClients {
            clients: Arc::new([
                build(true, false)?,
                build(true, true)?,
                build(false, false)?,
                build(false, true)?,
            ]),
        })
    }

    fn client(&self, spec: &HttpSpec) -> &reqwest::Client {
        let index = usize::from(!spec.tls_verify) * 2 + usize::from(spec.follow_redirects);
        &self.clients[index]
    }

    /// Runs the probe; the caller bounds its time (dropping the future closes the connection).
    /// On success, the `notAfter` (ms) of a certificate inside `cert_expiry_warn`, if any.
    pub async fn probe(&self, spec: &HttpSpec, now_ms: i64) -> Result<Option<i64>, Failure> {
        let mut request = self
            .client(spec)
            .request(spec.method.clone(), spec.url.clone());
        for (name, value) in &spec.headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(|e| classify(&e))?;

        let mut expiring = None;
        if let Some(warn) = spec.cert_expiry_warn
            && let Some(info) = response.extensions().get::<reqwest::tls::TlsInfo>()
            && let Some(der) = info.peer_certificate()
        {
            let now = jiff::Timestamp::from_millisecond(now_ms).unwrap_or_default();
            expiring = cert::check_expiry(der, warn, now)?.map(|t| t.as_millisecond());
        }

        let status = response.status().as_u16();
        if !spec
            .expect_status
            .iter()
            .any(|range| range.contains(&status))
        {
            return Err(Failure::new(
                Reason::Status,
                format!("status {status}, expected {}", describe_statuses(spec)),
            ));
        }

        for (name, expected) in &spec.expect_headers {
            match response.headers().get(name) {
                None => {
                    return Err(Failure::new(
                        Reason::Header,
                        format!("response has no `{name}` header"),
                    ));
                }
                Some(value) => {
                    let value = String::from_utf8_lossy(value.as_bytes());
                    if !value.contains(expected.as_str()) {
                        return Err(Failure::new(
                            Reason::Header,
                            format!(
                                "`{name}` is `{}`, expected it to contain `{expected}`",
                                truncate(&value, 120)
                            ),
                        ));
                    }
                }
            }
        }

        if spec.body_contains.is_none() && spec.body_regex.is_none() {
            // Nothing to check in the body: do not read it (the connection is dropped).
            return Ok(expiring);
        }
        let mut body = Vec::new();
        while body.len() < spec.max_body_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(classify_body(&e)),
            }
        }
        body.truncate(spec.max_body_bytes);
        let text = String::from_utf8_lossy(&body);
        if let Some(needle) = &spec.body_contains
            && !text.contains(needle.as_str())
        {
            return Err(Failure::new(
                Reason::Body,
                format!(
                    "body does not contain `{}` (first {} bytes read)",
                    truncate(needle, 80),
                    body.len()
                ),
            ));
        }
        if let Some(regex) = &spec.body_regex
            && !regex.is_match(&text)
        {
            return Err(Failure::new(
                Reason::Body,
                format!(
                    "body does not match /{}/ (first {} bytes read)",
                    truncate(regex.as_str(), 80),
                    body.len()
                ),
            ));
        }
        Ok(expiring)
    }
}

fn describe_statuses(spec: &HttpSpec) -> String {
    let parts: Vec<String> = spec
        .expect_status
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}-{}", r.start(), r.end())
            }
        })
        .collect();
    parts.join(", ")
}

/// rustls needs one process-wide crypto provider; ring keeps the build free of C++ and cmake.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Name resolution through the system resolver (getaddrinfo: /etc/hosts, nsswitch), with its
/// failures marked so that they classify as `dns`.
struct SystemResolver;

/// A failed name lookup, told apart from connection failures when classifying.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{name}`: {message}")]
pub(crate) struct ResolveFailed {
    pub name: String,
    pub message: String,
}

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let looked_up = tokio::net::lookup_host((host.clone(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            match looked_up {
                Ok(addrs) => {
                    if addrs.is_empty() {
                        return Err(Box::new(ResolveFailed {
                            name: host,
                            message: "no addresses".to_string(),
                        })
                            as Box<dyn StdError + Send + Sync>);
                    }
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
                Err(e) => Err(Box::new(ResolveFailed {
                    name: host,
                    message: e.to_string(),
                }) as Box<dyn StdError + Send + Sync>),
            }
        })
    }
}

/// Turns a reqwest error from sending a request into a classified failure.
pub(crate) fn classify(error: &reqwest::Error) -> Failure {
    let detail = describe_chain(error);
    if error.is_timeout() {
        return Failure::new(Reason::Timeout, detail);
    }
    if error.is_redirect() {
        return Failure::new(Reason::Status, detail);
    }
    if find_in_chain::<ResolveFailed>(error).is_some() {
        return Failure::new(Reason::Dns, detail);
    }
    if let Some(tls) = find_in_chain::<rustls::Error>(error) {
        if let rustls::Error::InvalidCertificate(rustls::CertificateError::Expired) = tls {
            return Failure::new(Reason::Tls, format!("certificate expired: {detail}"));
        }
        return Failure::new(Reason::Tls, detail);
    }
    if let Some(http) = find_in_chain::<hyper::Error>(error)
        && http.is_parse()
    {
        // The connection worked; what came back is not a valid HTTP response head.
        return Failure::new(Reason::Header, format!("invalid response head: {detail}"));
    }
    if error.is_body() || error.is_decode() {
        return Failure::new(Reason::Body, detail);
    }
    Failure::new(Reason::Connect, detail)
}

/// A failure while reading the body: a timeout, or a broken body.
fn classify_body(error: &reqwest::Error) -> Failure {
    let failure = classify(error);
    match failure.reason {
        Reason::Timeout => failure,
        _ => Failure::new(Reason::Body, failure.detail),
    }
}

/// Finds an error of type `T` in the chain, looking inside `io::Error` wrappers too (whose
/// `source()` skips the wrapped error itself).
fn find_in_chain<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&'a (dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(found) = inner.downcast_ref::<T>() {
                return Some(found);
            }
            if let Some(found) = find_in_chain::<T>(inner) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused",
/// without repeating a message that its source already says, and without the URL (which may
/// hold a password).
fn describe_chain(error: &reqwest::Error) -> String {
    let mut top = error.to_string();
    if let Some(url) = error.url() {
        top = top.replace(&format!(" for url ({url})"), "");
        top = top.replace(url.as_str(), "<url>");
    }
    let mut parts: Vec<String> = vec![top];
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    truncate(&parts.join(": "), 400)
}
