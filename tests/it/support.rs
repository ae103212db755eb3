//! Real servers on 127.0.0.1:0 for the tests (HTTP, HTTPS, TCP, DNS), config and database helpers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use slaprobe::config::Config;
use slaprobe::store::{RawOutcome, read};

/// How the test HTTP server answers `/`.
#[derive(Debug, Clone)]
pub enum Mode {
    Healthy,
    Status(u16),
    Slow(Duration),
    Body(&'static str),
    /// Answer the next n requests with 503, then healthy again.
    FailNext(u32),
}

struct HttpState {
    mode: Mutex<Mode>,
    requests: AtomicU64,
}

/// An HTTP server whose behaviour the test switches; it can also close its port.
pub struct TestHttp {
    pub addr: SocketAddr,
    state: Arc<HttpState>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl TestHttp {
    pub async fn start() -> TestHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(HttpState {
            mode: Mutex::new(Mode::Healthy),
            requests: AtomicU64::new(0),
        });
        let server = tokio::spawn(serve_http(listener, state.clone()));
        TestHttp {
            addr,
            state,
            server: Mutex::new(Some(server)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requests to `/` so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Stops listening: connections to the port are refused.
    pub fn close(&self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn reopen(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let server = tokio::spawn(serve_http(listener, self.state.clone()));
        *self.server.lock().unwrap() = Some(server);
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.close();
    }
}

async fn serve_http(listener: TcpListener, state: Arc<HttpState>) {
    let app = Router::new()
        .route("/", get(root).head(root).post(root))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [("location", "/")]) }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [("location", "/loop")]) }),
        )
        .route(
            "/big",
            get(|| async {
                let mut body = "x".repeat(200_000);
                body.push_str("needle");
                body
            }),
        )
        .route(
            "/json",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    "{\"status\":\"ok\"}",
                )
            }),
        )
        .route(
            "/echo-auth",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization") {
                    Some(v) if v == "Bearer sesame" => (StatusCode::OK, "welcome"),
                    _ => (StatusCode::UNAUTHORIZED, "who are you"),
                }
            }),
        )
        .with_state(state);
    let _ = axum::serve(listener, app).await;
}

async fn root(State(state): State<Arc<HttpState>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let mode = {
        let mut mode = state.mode.lock().unwrap();
        let current = mode.clone();
        if let Mode::FailNext(n) = *mode {
            *mode = if n <= 1 {
                Mode::Healthy
            } else {
                Mode::FailNext(n - 1)
            };
        }
        current
    };
    match mode {
        Mode::Healthy => "ok: all systems go".into_response(),
        Mode::Status(code) => (StatusCode::from_u16(code).unwrap(), "error").into_response(),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            "ok: but slow".into_response()
        }
        Mode::Body(body) => body.into_response(),
        Mode::FailNext(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response(),
    }
}

/// An HTTPS server with a self-signed certificate for `localhost`, valid until `not_after`.
pub struct TestHttps {
    pub addr: SocketAddr,
    server: JoinHandle<()>,
}

/// Makes a certificate valid from 2020 until `not_after`, at midnight UTC.
fn set_validity(params: &mut rcgen::CertificateParams, not_after: jiff::civil::Date) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(
        i32::from(not_after.year()),
        not_after.month() as u8,
        not_after.day() as u8,
    );
}

impl TestHttps {
    pub async fn start(not_after: jiff::civil::Date) -> TestHttps {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        set_validity(&mut params, not_after);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestHttps::start_with(
            cert.der().clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .await
    }

    /// Serves `cert` (with its `key`): for certificates a `TestCa` signed.
    pub async fn start_with(
        cert: rustls::pki_types::CertificateDer<'static>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> TestHttps {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TestHttps { addr, server }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }
}

impl Drop for TestHttps {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A certificate authority for tests: trusted by a `slaprobe` process given its PEM in
/// `SSL_CERT_FILE`, it signs server certificates for any names and dates.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "slaprobe test CA");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names`, valid from 2020 until `not_after`.
    pub fn leaf(
        &self,
        names: &[&str],
        not_after: jiff::civil::Date,
    ) -> (
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        set_validity(&mut params, not_after);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            cert.der().clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    }
}

/// A TCP listener that optionally greets each connection with a banner.
pub struct TestTcp {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    server: JoinHandle<()>,
}

impl TestTcp {
    pub async fn start(banner: Option<&'static str>) -> TestTcp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Some(banner) = banner {
                        let _ = stream.write_all(banner.as_bytes()).await;
                    }
                    let mut buf = [0u8; 1024];
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
                });
            }
        });
        TestTcp {
            addr,
            connections,
            server,
        }
    }
}

impl Drop for TestTcp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// How the test DNS server answers one (name, type).
#[derive(Debug, Clone)]
pub enum DnsAnswer {
    Records(Vec<hickory_resolver::proto::rr::RData>),
    NxDomain,
    ServFail,
    /// Never answers.
    Silent,
    /// Over UDP: an empty answer with the TC bit; over TCP: these records.
    Truncated(Vec<hickory_resolver::proto::rr::RData>),
}

type Zone = HashMap<(String, hickory_resolver::proto::rr::RecordType), DnsAnswer>;

/// A DNS server on UDP and TCP (same port) serving a test zone.
pub struct TestDns {
    pub addr: SocketAddr,
    pub tcp_queries: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestDns {
    pub async fn start(
        zone: Vec<(&str, hickory_resolver::proto::rr::RecordType, DnsAnswer)>,
    ) -> TestDns {
        let zone: Arc<Zone> = Arc::new(
            zone.into_iter()
                .map(|(name, rtype, answer)| {
                    ((name.trim_end_matches('.').to_lowercase(), rtype), answer)
                })
                .collect(),
        );
        // UDP and TCP on the same port: another test may hold the TCP side, so try again.
        let (udp, tcp, addr) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, tcp, addr);
            }
        };
        let tcp_queries = Arc::new(AtomicU64::new(0));
        let udp_zone = zone.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = dns_reply(&buf[..n], &udp_zone, false) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let tcp_count = tcp_queries.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    return;
                };
                let zone = zone.clone();
                let count = tcp_count.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                        if stream.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        if let Some(reply) = dns_reply(&query, &zone, true) {
                            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            if stream.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        TestDns {
            addr,
            tcp_queries,
            tasks: vec![udp_task, tcp_task],
        }
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn dns_reply(query: &[u8], zone: &Zone, over_tcp: bool) -> Option<Vec<u8>> {
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::Record;
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let name = question
        .name()
        .to_string()
        .trim_end_matches('.')
        .to_lowercase();
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.authoritative = true;
    response.add_query(question.clone());
    let answer = zone.get(&(name.clone(), question.query_type()));
    let records = |rdatas: &Vec<hickory_resolver::proto::rr::RData>| -> Vec<Record> {
        rdatas
            .iter()
            .map(|r| Record::from_rdata(question.name().clone(), 60, r.clone()))
            .collect()
    };
    match answer {
        None => response.metadata.response_code = ResponseCode::NXDomain,
        Some(DnsAnswer::NxDomain) => response.metadata.response_code = ResponseCode::NXDomain,
        Some(DnsAnswer::ServFail) => response.metadata.response_code = ResponseCode::ServFail,
        Some(DnsAnswer::Silent) => return None,
        Some(DnsAnswer::Records(rdatas)) => {
            response.add_answers(records(rdatas));
        }
        Some(DnsAnswer::Truncated(rdatas)) => {
            if over_tcp {
                response.add_answers(records(rdatas));
            } else {
                response.metadata.truncation = true;
            }
        }
    }
    response.to_vec().ok()
}

/// A temporary folder holding a config file and its database.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("slaprobe.db")
    }

    /// Writes `probes.toml` with a contract `c` and the given `[[service]]` text, and parses it.
    pub fn config(&self, services: &str) -> Config {
        let text = format!(
            "[daemon]\ndatabase = \"slaprobe.db\"\nflush_interval = \"20ms\"\n\n\
             [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\n\n{services}"
        );
        self.config_text(&text)
    }

    pub fn config_text(&self, text: &str) -> Config {
        let path = self.path("probes.toml");
        std::fs::write(&path, text).unwrap();
        match slaprobe::config::load(&path) {
            Ok(config) => config,
            Err(errors) => panic!("test config is invalid:\n{errors}\n---\n{text}"),
        }
    }
}

/// A database opened for reading, with the queries the tests need.
pub struct Db {
    conn: rusqlite::Connection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub reason: String,
}

impl Db {
    pub fn open(path: &Path) -> Db {
        Db {
            conn: read::open(path).unwrap(),
        }
    }

    fn num(&self, service: &str) -> i64 {
        read::service_num(&self.conn, service)
            .unwrap()
            .unwrap_or_else(|| panic!("service {service} is not in the database"))
    }

    pub fn outcomes(&self, service: &str) -> Vec<RawOutcome> {
        read::latest_outcomes(&self.conn, self.num(service), usize::MAX).unwrap()
    }

    pub fn incidents(&self, service: &str) -> Vec<IncidentRow> {
        let mut s = self
            .conn
            .prepare("SELECT start_ms, end_ms, reason FROM incident WHERE service = ?1 ORDER BY start_ms")
            .unwrap();
        s.query_map([self.num(service)], |r| {
            Ok(IncidentRow {
                start_ms: r.get(0)?,
                end_ms: r.get(1)?,
                reason: r.get(2)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// (start_ms, end_ms, failures)
    pub fn blips(&self, service: &str) -> Vec<(i64, i64, u32)> {
        let mut s = self
            .conn
            .prepare(
                "SELECT start_ms, end_ms, failures FROM blip WHERE service = ?1 ORDER BY start_ms",
            )
            .unwrap();
        s.query_map([self.num(service)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// (start_ms, end_ms)
    pub fn no_data(&self, service: &str) -> Vec<(i64, i64)> {
        let mut s = self
            .conn
            .prepare("SELECT start_ms, end_ms FROM no_data WHERE service = ?1 ORDER BY start_ms")
            .unwrap();
        s.query_map([self.num(service)], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// The body of a GET that must succeed.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `limit` with `what`.
pub async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `slaprobe run` on a workspace's config as a child process (debug logging), its stderr
/// gathered line by line.
pub struct DaemonProcess {
    pub child: tokio::process::Child,
    log: Arc<Mutex<String>>,
    reader: JoinHandle<()>,
}

impl DaemonProcess {
    /// Starts the real binary with `env` set.
    pub fn spawn(ws: &Workspace, env: &[(&str, &str)]) -> DaemonProcess {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"));
        command
            .args(["run", "--config"])
            .arg(ws.path("probes.toml"));
        DaemonProcess::spawn_command(command, env)
    }

    /// Starts the real binary in a network namespace of its own with only loopback, up: a
    /// location whose network is cut off (nothing on the host's 127.0.0.1 answers it; Unix
    /// sockets, such as PostgreSQL's, still work).
    pub fn spawn_cut_off(ws: &Workspace, env: &[(&str, &str)]) -> DaemonProcess {
        let mut command = tokio::process::Command::new("unshare");
        command
            .args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" run --config \"$1\"",
                env!("CARGO_BIN_EXE_slaprobe"),
            ])
            .arg(ws.path("probes.toml"));
        DaemonProcess::spawn_command(command, env)
    }

    fn spawn_command(mut command: tokio::process::Command, env: &[(&str, &str)]) -> DaemonProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = command
            .env("SLAPROBE_LOG", "debug")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let reader = {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        DaemonProcess { child, log, reader }
    }

    /// `host:port` of the HTTP endpoint, from its start-up log line.
    pub async fn endpoint(&self) -> String {
        eventually(Duration::from_secs(10), "the endpoint address", || {
            let log = self.log.lock().unwrap();
            let line = log
                .lines()
                .find(|l| l.contains("HTTP endpoint listening"))?;
            let bound = line.split("bound=").nth(1)?;
            Some(bound.split_whitespace().next()?.to_string())
        })
        .await
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills it with SIGKILL (no chance to close anything).
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
        let _ = self.reader.await;
    }

    /// Stops it with SIGTERM; its exit status and everything it logged.
    pub async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = self.child.wait().await.unwrap();
        self.reader.await.unwrap();
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

/// One line of a `slaprobe import` file: an outcome at `at_ms`, ok or a failed connect, 5 ms.
pub fn history_line(at_ms: i64, ok: bool) -> String {
    let ts = jiff::Timestamp::from_millisecond(at_ms).unwrap();
    if ok {
        format!("{{\"ts\":\"{ts}\",\"ok\":true,\"latency_ms\":5}}\n")
    } else {
        format!("{{\"ts\":\"{ts}\",\"ok\":false,\"latency_ms\":5,\"reason\":\"connect\"}}\n")
    }
}
