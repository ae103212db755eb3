//! Each probe kind against real local servers: every failure classified, none an `Err`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::rr::rdata::{A, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use slaprobe::probe::{Outcome, Prober, Reason};

use crate::support::{
    DnsAnswer, Mode, TestDns, TestHttp, TestHttps, TestTcp, Workspace, closed_port,
};

async fn probe_once(service_toml: &str) -> Outcome {
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ninterval = \"10s\"\ntimeout = \"1s\"\n{service_toml}"
    ));
    let service = config.service("s").unwrap();
    Prober::new()
        .unwrap()
        .run(&service.probe, service.timeout, 0)
        .await
}

fn reason(outcome: &Outcome) -> Option<Reason> {
    outcome.failure.as_ref().map(|f| f.reason)
}

#[tokio::test]
async fn http_healthy_and_each_failure_mode() {
    let http = TestHttp::start().await;
    let service = format!("http = \"{}\"\nbody_contains = \"ok\"", http.url("/"));

    let healthy = probe_once(&service).await;
    assert!(healthy.is_ok(), "{healthy:?}");
    assert!(healthy.latency < Duration::from_secs(1));

    http.set(Mode::Status(503));
    let outcome = probe_once(&service).await;
    assert_eq!(reason(&outcome), Some(Reason::Status), "{outcome:?}");
    assert!(outcome.failure.unwrap().detail.contains("503"));

    http.set(Mode::Body("maintenance page"));
    assert_eq!(reason(&probe_once(&service).await), Some(Reason::Body));

    http.set(Mode::Slow(Duration::from_secs(3)));
    let slow = probe_once(&service).await;
    assert_eq!(reason(&slow), Some(Reason::Timeout), "{slow:?}");
    assert!(
        slow.latency < Duration::from_millis(1500),
        "{:?}",
        slow.latency
    );

    http.set(Mode::Healthy);
    http.close();
    let closed = probe_once(&service).await;
    assert_eq!(reason(&closed), Some(Reason::Connect), "{closed:?}");

    http.reopen().await;
    assert!(probe_once(&service).await.is_ok());
}

#[tokio::test]
async fn http_status_lists_ranges_and_regex() {
    let http = TestHttp::start().await;
    http.set(Mode::Status(404));
    let accept_404 = format!(
        "http = \"{}\"\nexpect_status = [\"200-299\", 404]",
        http.url("/")
    );
    assert!(probe_once(&accept_404).await.is_ok());
    let only_2xx = format!("http = \"{}\"\nexpect_status = [\"2xx\"]", http.url("/"));
    assert_eq!(reason(&probe_once(&only_2xx).await), Some(Reason::Status));

    http.set(Mode::Healthy);
    let regex = format!(
        "http = \"{}\"\nbody_regex = \"^ok: (all|some) systems\"",
        http.url("/")
    );
    assert!(probe_once(&regex).await.is_ok());
    let bad_regex = format!("http = \"{}\"\nbody_regex = \"^down\"", http.url("/"));
    assert_eq!(reason(&probe_once(&bad_regex).await), Some(Reason::Body));
}

#[tokio::test]
async fn http_redirects_are_not_followed_unless_asked() {
    let http = TestHttp::start().await;
    let url = http.url("/redirect");
    // Not followed: the 302 itself is judged (default accepts 200-399).
    assert!(probe_once(&format!("http = \"{url}\"")).await.is_ok());
    let strict = format!("http = \"{url}\"\nexpect_status = [200]");
    assert_eq!(reason(&probe_once(&strict).await), Some(Reason::Status));
    let followed = format!(
        "http = \"{url}\"\nexpect_status = [200]\nfollow_redirects = true\nbody_contains = \"all systems\""
    );
    assert!(probe_once(&followed).await.is_ok());
    let looping = format!("http = \"{}\"\nfollow_redirects = true", http.url("/loop"));
    let outcome = probe_once(&looping).await;
    assert_eq!(reason(&outcome), Some(Reason::Status), "{outcome:?}");
}

#[tokio::test]
async fn http_body_is_read_only_up_to_the_cap() {
    let http = TestHttp::start().await;
    let url = http.url("/big");
    let capped = format!("http = \"{url}\"\nbody_contains = \"needle\"\nmax_body_bytes = 1000");
    let outcome = probe_once(&capped).await;
    assert_eq!(reason(&outcome), Some(Reason::Body));
    assert!(outcome.failure.unwrap().detail.contains("first 1000 bytes"));
    let whole = format!("http = \"{url}\"\nbody_contains = \"needle\"\nmax_body_bytes = 300000");
    assert!(probe_once(&whole).await.is_ok());
}

#[tokio::test]
async fn http_headers_sent_and_required() {
    let http = TestHttp::start().await;
    let with_auth = format!(
        "http = \"{}\"\nheaders = {{ \"Authorization\" = \"Bearer sesame\" }}\nexpect_status = [200]",
        http.url("/echo-auth")
    );
    assert!(probe_once(&with_auth).await.is_ok());
    let without = format!(
        "http = \"{}\"\nexpect_status = [200]",
        http.url("/echo-auth")
    );
    assert_eq!(reason(&probe_once(&without).await), Some(Reason::Status));

    let json = http.url("/json");
    let ok = format!(
        "http = \"{json}\"\nexpect_headers = {{ \"Content-Type\" = \"application/json\" }}"
    );
    assert!(probe_once(&ok).await.is_ok());
    let missing = format!("http = \"{json}\"\nexpect_headers = {{ \"X-Version\" = \"\" }}");
    assert_eq!(reason(&probe_once(&missing).await), Some(Reason::Header));
    let wrong =
        format!("http = \"{json}\"\nexpect_headers = {{ \"Content-Type\" = \"text/html\" }}");
    assert_eq!(reason(&probe_once(&wrong).await), Some(Reason::Header));
}

#[tokio::test]
async fn http_opens_a_fresh_connection_per_probe() {
    // A TCP listener that counts connections and speaks just enough HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                // Serve requests on the same connection for as long as the client keeps it.
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\nhttp = \"http://{addr}/\"\ntimeout = \"1s\""
    ));
    let service = config.service("s").unwrap();
    let prober = Prober::new().unwrap();
    for _ in 0..3 {
        assert!(prober.run(&service.probe, service.timeout, 0).await.is_ok());
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn https_verification_and_certificate_expiry() {
    let today = jiff::Zoned::now().date();
    let far = TestHttps::start(today.checked_add(jiff::Span::new().days(400)).unwrap()).await;
    // Self-signed: verification fails as `tls`.
    let verified = probe_once(&format!("http = \"{}\"", far.url())).await;
    assert_eq!(reason(&verified), Some(Reason::Tls), "{verified:?}");
    // Without verification it is fine, and far from expiry.
    let unverified = format!(
        "http = \"{}\"\ntls_verify = false\ncert_expiry_warn = \"14d\"",
        far.url()
    );
    let outcome = probe_once(&unverified).await;
    assert!(outcome.is_ok(), "{outcome:?}");

    let soon = TestHttps::start(today.checked_add(jiff::Span::new().days(5)).unwrap()).await;
    let warned = format!(
        "http = \"{}\"\ntls_verify = false\ncert_expiry_warn = \"14d\"",
        soon.url()
    );
    // Near expiry is a warning (told by a CERT EXPIRING notice), not downtime: the probe is ok,
    // and the prober notes the certificate's notAfter.
    let outcome = probe_once(&warned).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\n{warned}\ntimeout = \"2s\""
    ));
    let service = config.service("s").unwrap();
    let (outcome, expiring) = Prober::new()
        .unwrap()
        .run_noted(&service.probe, service.timeout, 0)
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let in_days = (expiring.expect("a certificate near expiry")
        - jiff::Timestamp::now().as_millisecond())
        / 86_400_000;
    assert!((4..=5).contains(&in_days), "{in_days}");
    let not_warned = format!(
        "http = \"{}\"\ntls_verify = false\ncert_expiry_warn = \"2d\"",
        soon.url()
    );
    assert!(probe_once(&not_warned).await.is_ok());
}

#[tokio::test]
async fn http_unknown_host_is_a_dns_failure() {
    // A 64-character label is not a valid DNS name: the system resolver fails it without sending
    // a query (no traffic leaves the machine), the way an unknown name fails.
    let host = format!("{}.invalid", "a".repeat(64));
    let outcome = probe_once(&format!("http = \"http://{host}:9/\"")).await;
    assert_eq!(reason(&outcome), Some(Reason::Dns), "{outcome:?}");
}

#[tokio::test]
async fn tcp_connect_refused_and_banner() {
    let tcp = TestTcp::start(Some("SSH-2.0-OpenSSH_9.6\r\n")).await;
    assert!(probe_once(&format!("tcp = \"{}\"", tcp.addr)).await.is_ok());
    let banner = format!("tcp = \"{}\"\nexpect = \"SSH-2.0\"", tcp.addr);
    assert!(probe_once(&banner).await.is_ok());
    let wrong = format!("tcp = \"{}\"\nexpect = \"220 smtp\"", tcp.addr);
    let outcome = probe_once(&wrong).await;
    assert!(
        matches!(reason(&outcome), Some(Reason::Body) | Some(Reason::Timeout)),
        "{outcome:?}"
    );
    // Each probe was a connection of its own.
    assert_eq!(tcp.connections.load(std::sync::atomic::Ordering::SeqCst), 3);
    let closed = closed_port().await;
    let outcome = probe_once(&format!("tcp = \"{closed}\"")).await;
    assert_eq!(reason(&outcome), Some(Reason::Connect), "{outcome:?}");
}

#[tokio::test]
async fn tcp_send_then_expect() {
    // An echo server: what we send comes back.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let service = format!("tcp = \"{addr}\"\nsend = \"PING\\r\\n\"\nexpect = \"PING\"");
    assert!(probe_once(&service).await.is_ok());
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(A::new(ip[0], ip[1], ip[2], ip[3]))
}

#[tokio::test]
async fn dns_answers_and_each_failure_mode() {
    let dns = TestDns::start(vec![
        (
            "www.test.example",
            RecordType::A,
            DnsAnswer::Records(vec![a([203, 0, 113, 10]), a([203, 0, 113, 11])]),
        ),
        ("gone.test.example", RecordType::A, DnsAnswer::NxDomain),
        ("broken.test.example", RecordType::A, DnsAnswer::ServFail),
        ("slow.test.example", RecordType::A, DnsAnswer::Silent),
        (
            "test.example",
            RecordType::MX,
            DnsAnswer::Records(vec![RData::MX(MX::new(
                10,
                Name::from_ascii("mail.test.example.").unwrap(),
            ))]),
        ),
        (
            "test.example",
            RecordType::TXT,
            DnsAnswer::Records(vec![RData::TXT(TXT::new(vec!["v=spf1 -all".to_string()]))]),
        ),
        (
            "big.test.example",
            RecordType::A,
            DnsAnswer::Truncated(vec![a([198, 51, 100, 7])]),
        ),
    ])
    .await;
    let server = dns.addr;
    let probe =
        |name: &str, extra: &str| format!("dns = \"{name}\"\nserver = \"{server}\"\n{extra}");

    let ok = probe_once(&probe("www.test.example", "expect = [\"203.0.113.10\"]")).await;
    assert!(ok.is_ok(), "{ok:?}");
    let mismatch = probe_once(&probe("www.test.example", "expect = [\"192.0.2.1\"]")).await;
    assert_eq!(reason(&mismatch), Some(Reason::Answer), "{mismatch:?}");

    let nx = probe_once(&probe("gone.test.example", "")).await;
    assert_eq!(reason(&nx), Some(Reason::Answer), "{nx:?}");
    assert!(
        nx.failure.as_ref().unwrap().detail.contains("NXDOMAIN"),
        "{nx:?}"
    );

    let servfail = probe_once(&probe("broken.test.example", "")).await;
    assert_eq!(reason(&servfail), Some(Reason::Dns), "{servfail:?}");

    let silent = probe_once(&probe("slow.test.example", "")).await;
    assert_eq!(reason(&silent), Some(Reason::Timeout), "{silent:?}");

    let mx = probe_once(&probe(
        "test.example",
        "record = \"MX\"\nexpect = [\"10 mail.test.example\"]",
    ))
    .await;
    assert!(mx.is_ok(), "{mx:?}");
    let txt = probe_once(&probe(
        "test.example",
        "record = \"TXT\"\nexpect = [\"v=spf1 -all\"]",
    ))
    .await;
    assert!(txt.is_ok(), "{txt:?}");

    // A truncated UDP answer is retried over TCP.
    let big = probe_once(&probe("big.test.example", "expect = [\"198.51.100.7\"]")).await;
    assert!(big.is_ok(), "{big:?}");
    assert!(dns.tcp_queries.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn dns_server_that_is_not_there() {
    let closed = closed_port().await;
    let outcome = probe_once(&format!(
        "dns = \"www.test.example\"\nserver = \"{closed}\""
    ))
    .await;
    assert!(
        matches!(
            reason(&outcome),
            Some(Reason::Connect | Reason::Timeout | Reason::Dns)
        ),
        "{outcome:?}"
    );
}

/// A server that keeps each request head it reads and answers `/hop` with a redirect to
/// `location` and anything else with 200.
async fn recording_server(
    location: Option<String>,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let answer = match &location {
                Some(to) if head.starts_with("GET /hop ") => {
                    format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                }
                _ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string(),
            };
            kept.lock().unwrap().push(head);
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr, heads)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn http_requests_say_who_asks_and_close_and_keep_credentials_at_home() {
    // Elsewhere: a redirect target on another origin (another port).
    let (elsewhere, elsewhere_heads) = recording_server(None).await;
    let (addr, heads) = recording_server(Some(format!("http://{elsewhere}/landing"))).await;

    // The URL's credentials become Basic authentication; the request names its host, the
    // prober and that the connection closes after it.
    let outcome = probe_once(&format!(
        "http = \"http://probe%40ops:s%3Acret@{addr}/status?full=1\"\nexpect_status = [200]"
    ))
    .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let head = heads.lock().unwrap().last().unwrap().clone();
    assert!(
        head.starts_with("GET /status?full=1 HTTP/1.1\r\n"),
        "{head}"
    );
    assert_eq!(
        header(&head, "host"),
        Some(addr.to_string().as_str()),
        "{head}"
    );
    // base64("probe@ops:s:cret")
    assert_eq!(
        header(&head, "authorization"),
        Some("Basic cHJvYmVAb3BzOnM6Y3JldA=="),
        "{head}"
    );
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert!(
        header(&head, "user-agent")
            .unwrap()
            .starts_with("slaprobe/"),
        "{head}"
    );

    // Followed to another origin: the configured credentials stay behind, other headers go.
    let outcome = probe_once(&format!(
        "http = \"http://{addr}/hop\"\nfollow_redirects = true\nexpect_status = [200]\n\
         headers = {{ \"Authorization\" = \"Bearer sesame\", \"X-Tenant\" = \"acme\" }}"
    ))
    .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let first = heads.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        header(&first, "authorization"),
        Some("Bearer sesame"),
        "{first}"
    );
    let landed = elsewhere_heads.lock().unwrap().last().unwrap().clone();
    assert!(landed.starts_with("GET /landing HTTP/1.1\r\n"), "{landed}");
    assert_eq!(header(&landed, "authorization"), None, "{landed}");
    assert_eq!(header(&landed, "x-tenant"), Some("acme"), "{landed}");
    assert_eq!(
        header(&landed, "host"),
        Some(elsewhere.to_string().as_str()),
        "{landed}"
    );
}
