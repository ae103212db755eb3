//! HTTP(S) probes: a fresh TCP (and TLS) connection for each probe, one request with
//! `Connection: close` (`http1`), then status, header and body checks, and redirects.
//!
//! No pool, no connection task, no per-probe URL parsing: the probe connects, sends one request,
//! judges the response and drops the connection. A DNS, TCP or TLS failure therefore always
//! shows, never hidden behind a kept-alive connection.

use std::error::Error as StdError;
use std::sync::{Arc, Once};

use base64::Engine;
use reqwest::header::{self, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use url::{Position, Url};

use super::http1::{self, Response, Wanted};
use super::{Failure, HttpSpec, ProberError, Reason, cert, redact_url, tcp, truncate};

/// Redirects followed before the probe fails (`follow_redirects = true`).
const MAX_REDIRECTS: usize = 10;

const USER_AGENT: &str = concat!("slaprobe/", env!("CARGO_PKG_VERSION"));

/// What every HTTP probe shares: the TLS settings, verifying (the system's trust store, through
/// the platform verifier) or not (`tls_verify = false`).
#[derive(Clone)]
pub struct HttpClient {
    verifying: TlsConnector,
    trusting: TlsConnector,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, ProberError> {
        install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let verifier =
            rustls_platform_verifier::Verifier::new(provider.clone()).map_err(ProberError::Tls)?;
        let connector = |verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>| {
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(ProberError::Tls)?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok::<_, ProberError>(TlsConnector::from(Arc::new(config)))
        };
        Ok(HttpClient {
            verifying: connector(Arc::new(verifier))?,
            trusting: connector(Arc::new(AnyCertificate(provider.clone())))?,
        })
    }

    /// Runs the probe; the caller bounds its time (dropping the future closes the connection).
    /// On success, the earliest `notAfter` (ms) of a certificate inside `cert_expiry_warn`
    /// among the connections it made (more than one when it follows redirects), if any.
    pub async fn probe(&self, spec: &HttpSpec, now_ms: i64) -> Result<Option<i64>, Failure> {
        let mut url = std::borrow::Cow::Borrowed(&spec.url);
        let mut method = spec.method.clone();
        let mut expiring: Option<i64> = None;
        let mut redirects = 0;
        loop {
            let request = request(spec, &url, &method);
            let host = url
                .host_str()
                .ok_or_else(|| Failure::new(Reason::Internal, "the URL has no host"))?;
            let port = url.port_or_known_default().unwrap_or(80);
            let mut tcp =
                tcp::connect(host.trim_start_matches('[').trim_end_matches(']'), port).await?;
            let wanted = wanted(spec, &method);
            let response = match url.scheme() {
                "http" => http1::exchange(&mut tcp, &request, wanted).await?,
                "https" => {
                    // Boxed: TLS's state is large, and plain HTTP probes need none of it.
                    let (response, warning) =
                        Box::pin(self.over_tls(spec, host, tcp, &request, wanted, now_ms)).await?;
                    if let Some(at) = warning {
                        expiring = Some(expiring.map_or(at, |earlier| earlier.min(at)));
                    }
                    response
                }
                other => {
                    return Err(Failure::new(
                        Reason::Status,
                        format!("redirected to an unsupported scheme `{other}:`"),
                    ));
                }
            };
            // The connection closes here, before a redirect is followed.
            let Answer::Redirect(status, next) = judge(&response, spec, &url)? else {
                return Ok(expiring);
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(Failure::new(
                    Reason::Status,
                    format!(
                        "more than {MAX_REDIRECTS} redirects (the last a {} to {})",
                        status.as_u16(),
                        redact_url(&next)
                    ),
                ));
            }
            // As browsers do: a 303 becomes a GET, and so does a POST answered by 301 or 302.
            if (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
            {
                method = Method::GET;
            }
            url = std::borrow::Cow::Owned(next);
        }
    }

    /// The exchange over TLS on `tcp`, and the `notAfter` (ms) of the server's certificate if
    /// it expires within `cert_expiry_warn`.
    async fn over_tls(
        &self,
        spec: &HttpSpec,
        host: &str,
        tcp: tokio::net::TcpStream,
        request: &[u8],
        wanted: Wanted<'_>,
        now_ms: i64,
    ) -> Result<(Response, Option<i64>), Failure> {
        let mut tls = self.handshake(spec, host, tcp).await?;
        let mut expiring = None;
        if let Some(warn) = spec.cert_expiry_warn
            && let Some(der) = tls.get_ref().1.peer_certificates().and_then(|c| c.first())
        {
            let now = jiff::Timestamp::from_millisecond(now_ms).unwrap_or_default();
            expiring = cert::check_expiry(der, warn, now)?.map(|at| at.as_millisecond());
        }
        Ok((http1::exchange(&mut tls, request, wanted).await?, expiring))
    }

    async fn handshake(
        &self,
        spec: &HttpSpec,
        host: &str,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Failure> {
        // The handshake takes several flights: do not let Nagle hold the last one back.
        let _ = tcp.set_nodelay(true);
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(name.to_string()).map_err(|e| {
            Failure::new(
                Reason::Tls,
                format!("`{name}` is not a TLS server name: {e}"),
            )
        })?;
        let connector = if spec.tls_verify {
            &self.verifying
        } else {
            &self.trusting
        };
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| match find_in_chain::<rustls::Error>(&e) {
                Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)) => {
                    Failure::new(
                        Reason::Tls,
                        format!("certificate expired: {}", describe(&e)),
                    )
                }
                Some(_) => Failure::new(Reason::Tls, format!("TLS handshake: {}", describe(&e))),
                None => Failure::new(Reason::Connect, format!("TLS handshake: {}", describe(&e))),
            })
    }
}

/// How one exchange ended: judged, or a redirect to follow.
enum Answer {
    Judged,
    Redirect(StatusCode, Url),
}

/// The request for `url`: its path and query, the configured headers, and `Host`,
/// `User-Agent`, `Accept` and `Connection: close` where the config does not set them (and
/// `Content-Length: 0` for a method that has a body). On a redirect to another origin the
/// configured credentials (and the URL's) are not sent on.
fn request(spec: &HttpSpec, url: &Url, method: &Method) -> Vec<u8> {
    let same_origin = url.scheme() == spec.url.scheme()
        && url.host_str() == spec.url.host_str()
        && url.port_or_known_default() == spec.url.port_or_known_default();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(url[Position::BeforePath..Position::AfterQuery].as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut sent: Vec<&HeaderName> = Vec::new();
    for (name, value) in &spec.headers {
        if same_origin || !is_credential(name) {
            header_line(&mut head, name.as_str(), value.as_bytes());
            sent.push(name);
        }
    }
    let has = |name: &HeaderName| sent.contains(&name);
    if !has(&header::AUTHORIZATION)
        && let Some(basic) = basic_auth(url)
    {
        header_line(&mut head, "authorization", basic.as_bytes());
    }
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let defaults: [(HeaderName, &[u8]); 4] = [
        (header::HOST, authority.as_bytes()),
        (header::USER_AGENT, USER_AGENT.as_bytes()),
        (header::ACCEPT, b"*/*"),
        (header::CONNECTION, b"close"),
    ];
    for (name, value) in defaults {
        if !has(&name) {
            header_line(&mut head, name.as_str(), value);
        }
    }
    // As hyper does: a method with a body says its (empty) length, or some servers answer 411.
    if [Method::POST, Method::PUT, Method::PATCH].contains(method) && !has(&header::CONTENT_LENGTH)
    {
        header_line(&mut head, "content-length", b"0");
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn header_line(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// What a probe of `spec` reads of the response: the headers it checks (and `Location` when it
/// follows redirects), and the body only when it checks the body.
fn wanted<'a>(spec: &'a HttpSpec, method: &Method) -> Wanted<'a> {
    let location = spec.follow_redirects.then_some("location");
    Wanted {
        keep: (spec.expect_headers.iter().map(|(name, _)| name.as_str()))
            .chain(location)
            .collect(),
        body_up_to: (spec.body_contains.is_some() || spec.body_regex.is_some())
            .then_some(spec.max_body_bytes),
        head_request: *method == Method::HEAD,
    }
}

/// Headers that carry credentials, not sent on to another origin.
fn is_credential(name: &HeaderName) -> bool {
    [
        header::AUTHORIZATION,
        header::COOKIE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
}

/// `Authorization: Basic …` from the URL's `user:password@`, if it has any.
fn basic_auth(url: &Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Checks status, headers and (if asked) the body; a redirect to follow is handed back.
fn judge(response: &Response, spec: &HttpSpec, url: &Url) -> Result<Answer, Failure> {
    let status = StatusCode::from_u16(response.status).map_err(|_| {
        Failure::new(
            Reason::Header,
            format!("invalid status {}", response.status),
        )
    })?;
    if spec.follow_redirects
        && matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
        && let Some(location) = response.header("location")
    {
        let next = std::str::from_utf8(location)
            .ok()
            .and_then(|location| url.join(location.trim()).ok())
            .ok_or_else(|| {
                Failure::new(
                    Reason::Status,
                    format!(
                        "status {}: cannot follow the redirect to `{}`",
                        status.as_u16(),
                        truncate(&String::from_utf8_lossy(location), 120)
                    ),
                )
            })?;
        return Ok(Answer::Redirect(status, next));
    }

    let code = status.as_u16();
    if !spec.expect_status.iter().any(|range| range.contains(&code)) {
        return Err(Failure::new(
            Reason::Status,
            format!("status {code}, expected {}", describe_statuses(spec)),
        ));
    }
    check_headers(response, spec)?;
    if spec.body_contains.is_some() || spec.body_regex.is_some() {
        check_body(&response.body, spec)?;
    }
    Ok(Answer::Judged)
}

fn check_headers(response: &Response, spec: &HttpSpec) -> Result<(), Failure> {
    for (name, expected) in &spec.expect_headers {
        let Some(value) = response.header(name.as_str()) else {
            return Err(Failure::new(
                Reason::Header,
                format!("response has no `{name}` header"),
            ));
        };
        let value = String::from_utf8_lossy(value);
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
    Ok(())
}

fn check_body(body: &[u8], spec: &HttpSpec) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(body);
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
    Ok(())
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

/// `tls_verify = false`: any certificate is accepted, but the handshake's signatures are still
/// checked against it (the connection is encrypted to whoever holds its key).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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

/// "connection closed before message completed: Connection reset by peer (os error 104)":
/// the error and its sources, without repeating a message that its source already says.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
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
