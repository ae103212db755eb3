//! Hostile targets: local servers that hang, trickle, flood, lie or reset. Each probe must end
//! in a classified failure within its timeout, with bounded memory, without holding up others.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slaprobe::probe::{Outcome, Prober, Reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::support::{Db, TestHttp, Workspace, eventually};

const TIMEOUT: Duration = Duration::from_secs(1);

/// A TCP server on 127.0.0.1:0 that treats each connection with `behave`.
async fn serve<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behave = Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    addr
}

/// Reads what the client sends until the end of the request head (or 64 KiB).
async fn read_head(stream: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 65_536 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Accepts, reads the request, then never answers.
async fn silent(mut stream: TcpStream) {
    read_head(&mut stream).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// Answers one byte every 100 ms, for ever.
async fn trickle(mut stream: TcpStream) {
    read_head(&mut stream).await;
    for byte in b"HTTP/1.1 200 OK\r\nx-slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'))
    {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A chunked body that never ends.
async fn endless(mut stream: TcpStream) {
    read_head(&mut stream).await;
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n";
    if stream.write_all(head).await.is_err() {
        return;
    }
    let mut chunk = b"1000\r\n".to_vec();
    chunk.extend(std::iter::repeat_n(b'x', 0x1000));
    chunk.extend_from_slice(b"\r\n");
    while stream.write_all(&chunk).await.is_ok() {}
}

/// A 100 MB body, as fast as the client takes it.
async fn hundred_megabytes(mut stream: TcpStream) {
    read_head(&mut stream).await;
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 100_000_000);
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let block = vec![b'z'; 65_536];
    let mut sent = 0;
    while sent < 100_000_000 {
        let n = block.len().min(100_000_000 - sent);
        if stream.write_all(&block[..n]).await.is_err() {
            return;
        }
        sent += n;
    }
}

/// A response head of 2 MB: one enormous header.
async fn huge_header(mut stream: TcpStream) {
    read_head(&mut stream).await;
    let mut head = b"HTTP/1.1 200 OK\r\nx-huge: ".to_vec();
    head.extend(std::iter::repeat_n(b'h', 2_000_000));
    head.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\nok");
    let _ = stream.write_all(&head).await;
}

/// Not HTTP at all.
async fn malformed(mut stream: TcpStream) {
    read_head(&mut stream).await;
    let _ = stream
        .write_all(b"HTTP/1.1 two hundred\r\n\x00\x01: \xff\r\n\r\n")
        .await;
}

/// A header line without a colon, then a body.
async fn broken_header(mut stream: TcpStream) {
    read_head(&mut stream).await;
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\nok")
        .await;
}

/// Accepts and resets the connection at once (SO_LINGER 0).
async fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Accepts the TCP connection of a TLS client and never says a word.
async fn tls_stall(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
}

async fn probe(service_toml: &str) -> Outcome {
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ninterval = \"10s\"\ntimeout = \"{}\"\n{service_toml}",
        humantime::format_duration(TIMEOUT)
    ));
    let service = config.service("s").unwrap();
    Prober::new()
        .unwrap()
        .run(&service.probe, service.timeout, 0)
        .await
}

/// Runs the probe and checks it failed for `expected` within the timeout (plus scheduling slack).
async fn fails_with(service_toml: &str, expected: Reason) -> Outcome {
    let started = Instant::now();
    let outcome = probe(service_toml).await;
    let took = started.elapsed();
    let reason = outcome.failure.as_ref().map(|f| f.reason);
    assert_eq!(reason, Some(expected), "{service_toml}: {outcome:?}");
    assert!(
        took < TIMEOUT + Duration::from_millis(500),
        "{service_toml}: took {took:?}"
    );
    assert!(
        !outcome.failure.as_ref().unwrap().detail.is_empty(),
        "a failure says what happened"
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_servers_end_in_classified_failures() {
    let url = |addr: SocketAddr| format!("http = \"http://{addr}/\"");
    let with_body = |addr: SocketAddr| format!("{}\nbody_contains = \"needle\"", url(addr));

    fails_with(&url(serve(silent).await), Reason::Timeout).await;
    fails_with(&url(serve(trickle).await), Reason::Timeout).await;

    // An endless or 100 MB body is read only up to `max_body_bytes`, and only when the body is
    // checked at all.
    let endless = serve(endless).await;
    let outcome = fails_with(&with_body(endless), Reason::Body).await;
    assert!(
        outcome
            .failure
            .unwrap()
            .detail
            .contains("first 65536 bytes"),
        "read up to the default cap"
    );
    assert!(probe(&url(endless)).await.is_ok(), "headers alone are fine");
    let big = serve(hundred_megabytes).await;
    fails_with(&with_body(big), Reason::Body).await;

    let huge = fails_with(&url(serve(huge_header).await), Reason::Header).await;
    assert!(
        huge.failure.unwrap().detail.contains("too large"),
        "says why"
    );
    fails_with(&url(serve(malformed).await), Reason::Header).await;
    fails_with(&url(serve(broken_header).await), Reason::Header).await;
    fails_with(&url(serve(reset).await), Reason::Connect).await;

    let stall = serve(tls_stall).await;
    let tls = format!("http = \"https://localhost:{}/\"", stall.port());
    fails_with(&tls, Reason::Timeout).await;

    // A redirect loop, followed: ten hops, then a failure.
    let http = TestHttp::start().await;
    let looping = format!("http = \"{}\"\nfollow_redirects = true", http.url("/loop"));
    fails_with(&looping, Reason::Status).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tcp_servers_end_in_classified_failures() {
    let resetting = serve(reset).await;
    let expect = |addr: SocketAddr| format!("tcp = \"{addr}\"\nexpect = \"SSH-2.0\"");
    fails_with(&expect(resetting), Reason::Connect).await;
    fails_with(&expect(serve(silent).await), Reason::Timeout).await;
    let flood = serve(|mut stream: TcpStream| async move {
        let block = vec![b'f'; 65_536];
        while stream.write_all(&block).await.is_ok() {}
    })
    .await;
    let outcome = fails_with(&expect(flood), Reason::Body).await;
    assert!(
        outcome.failure.unwrap().detail.len() < 400,
        "the detail is bounded"
    );
}

/// A UDP DNS server that answers every query with `reply(query)`.
async fn dns_server(reply: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(answer) = reply(&buf[..n]) {
                let _ = socket.send_to(&answer, from).await;
            }
        }
    });
    addr
}

/// A DNS failure that is the server's fault: `dns` or `timeout`, never `internal` or `ok`.
fn dns_failure(outcome: Outcome) {
    let reason = outcome.failure.as_ref().map(|f| f.reason);
    assert!(
        matches!(reason, Some(Reason::Dns) | Some(Reason::Timeout)),
        "{outcome:?}"
    );
    assert!(
        outcome.latency < TIMEOUT + Duration::from_millis(500),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_servers_end_in_classified_failures() {
    let query = |server: SocketAddr| format!("dns = \"www.test.example\"\nserver = \"{server}\"");

    // Random bytes, with and without the query's id.
    let garbage = dns_server(|_| Some(b"\x13\x37garbage that is not DNS".to_vec())).await;
    dns_failure(probe(&query(garbage)).await);
    let echoed_id = dns_server(|q| {
        let mut answer = q[..2].to_vec();
        answer.extend_from_slice(b"\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00\xff\xff\xff");
        Some(answer)
    })
    .await;
    dns_failure(probe(&query(echoed_id)).await);
    // The query echoed back with its answer count set but no answer in it.
    let short = dns_server(|q| {
        let mut answer = q.to_vec();
        answer[2] |= 0x80;
        answer[7] = 3;
        Some(answer)
    })
    .await;
    dns_failure(probe(&query(short)).await);
    // Truncated over UDP, and nobody on TCP.
    let truncated = dns_server(|q| {
        let mut answer = q.to_vec();
        answer[2] |= 0x82;
        Some(answer)
    })
    .await;
    dns_failure(probe(&query(truncated)).await);
    // Never answers.
    let silent = dns_server(|_| None).await;
    fails_with(&query(silent), Reason::Timeout).await;
}

/// Every hostile server at once in a running daemon beside a healthy service: the healthy one
/// is probed on its grid throughout, and every hostile one records classified failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_never_stall_other_probes() {
    let healthy = TestHttp::start().await;
    let ws = Workspace::new();
    let mut services = format!(
        "[[service]]\nid = \"healthy\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\n\
         timeout = \"150ms\"\n\n",
        healthy.url("/")
    );
    let hostile = [
        ("silent", serve(silent).await),
        ("trickle", serve(trickle).await),
        ("endless", serve(endless).await),
        ("big", serve(hundred_megabytes).await),
        ("huge", serve(huge_header).await),
        ("reset", serve(reset).await),
    ];
    for (id, addr) in &hostile {
        services.push_str(&format!(
            "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"http://{addr}/\"\n\
             body_contains = \"needle\"\ninterval = \"1s\"\ntimeout = \"900ms\"\nretry_interval = \"200ms\"\n\n"
        ));
    }
    let running =
        slaprobe::runtime::start(ws.config(&services), slaprobe::runtime::Options::default())
            .await
            .unwrap();
    let db = ws.db();
    eventually(
        Duration::from_secs(20),
        "three failures from each hostile target",
        || {
            let db = Db::open(&db);
            hostile
                .iter()
                .all(|(id, _)| db.outcomes(id).iter().filter(|o| !o.is_ok()).count() >= 3)
                .then_some(())
        },
    )
    .await;
    running.stop().await.unwrap();

    let db = Db::open(&db);
    let at: Vec<i64> = db.outcomes("healthy").iter().map(|o| o.at_ms).collect();
    assert!(at.len() >= 10, "{} outcomes", at.len());
    let longest = at.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest < 800,
        "the healthy service's longest gap: {longest} ms (a stall behind a hostile probe is 900 ms or more)"
    );
    assert!(db.outcomes("healthy").iter().all(|o| o.is_ok()));
    for (id, _) in &hostile {
        assert!(db.outcomes(id).iter().all(|o| !o.is_ok()), "{id}");
    }
    assert!(db.no_data("healthy").is_empty());
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `slaprobe probe` against a 100 MB body and an endless one: the process's peak memory stays
/// far below the body's size (the body is read up to `max_body_bytes`, 64 KiB by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_body_costs_bounded_memory() {
    let big = serve(hundred_megabytes).await;
    let endless = serve(endless).await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"big\"\ncontract = \"c\"\nhttp = \"http://{big}/\"\nbody_contains = \"needle\"\n\n\
         [[service]]\nid = \"endless\"\ncontract = \"c\"\nhttp = \"http://{endless}/\"\nbody_regex = \"needle$\"\n"
    ));
    for id in ["big", "endless"] {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["probe", id, "--config"])
            .arg(ws.path("probes.toml"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut peak = 0;
        let waiting = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
        while !waiting.is_finished() {
            peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let out = waiting.await.unwrap();
        assert_eq!(out.status.code(), Some(1), "{id}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("body"), "{id}: {text}");
        eprintln!("{id}: peak RSS {peak} KiB");
        assert!(peak > 0, "{id}: memory was read");
        assert!(peak < 48 * 1024, "{id}: peak RSS {peak} KiB");
    }
}

/// Runs `slaprobe probe s` on `service_toml` trusting only `ca` (SSL_CERT_FILE); returns its
/// exit code and output.
async fn probe_trusting(ca: &crate::support::TestCa, service_toml: &str) -> (i32, String) {
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ninterval = \"10s\"\ntimeout = \"2s\"\n{service_toml}"
    ));
    let ca_file = ws.path("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["probe", "s", "--config"])
        .arg(ws.path("probes.toml"))
        .env("SSL_CERT_FILE", &ca_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_expired_self_signed_or_for_another_name_fail_as_tls() {
    use crate::support::{TestCa, TestHttps};
    let ca = TestCa::new();
    let today = jiff::Zoned::now().date();
    let next_year = today.checked_add(jiff::Span::new().days(365)).unwrap();
    let url = |https: &TestHttps| format!("http = \"{}\"", https.url());

    // The control: a certificate from the trusted CA for the name probed is fine.
    let (cert, key) = ca.leaf(&["localhost"], next_year);
    let good = TestHttps::start_with(cert, key).await;
    let (code, out) = probe_trusting(&ca, &url(&good)).await;
    assert_eq!(code, 0, "{out}");

    // For another name.
    let (cert, key) = ca.leaf(&["other.example"], next_year);
    let wrong_name = TestHttps::start_with(cert, key).await;
    let (code, out) = probe_trusting(&ca, &url(&wrong_name)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tls") && out.contains("not valid for name"),
        "{out}"
    );

    // Expired (yesterday).
    let yesterday = today.checked_sub(jiff::Span::new().days(1)).unwrap();
    let (cert, key) = ca.leaf(&["localhost"], yesterday);
    let expired = TestHttps::start_with(cert, key).await;
    let (code, out) = probe_trusting(&ca, &url(&expired)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tls") && out.contains("expired"), "{out}");

    // Self-signed, not from the trusted CA.
    let self_signed = TestHttps::start(next_year).await;
    let (code, out) = probe_trusting(&ca, &url(&self_signed)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tls") && out.contains("UnknownIssuer"),
        "{out}"
    );
}
