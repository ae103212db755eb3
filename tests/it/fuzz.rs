//! Fuzzing with proptest (cargo-fuzz needs a nightly toolchain): the config parser, the import
//! parser and DNS answer handling take arbitrary and mutated input and must answer with an
//! error that points into the input, never a panic or a hang. `PROPTEST_CASES=100000 cargo
//! test --test it fuzz` runs a longer campaign than CI's default.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use slaprobe::probe::{Prober, Reason};

/// `default` cases, or `PROPTEST_CASES` for a longer run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const EXAMPLE: &str = include_str!("../../probes.example.toml");

/// A few byte edits (delete, insert, replace) at random places of `base`.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let len = base.len();
    proptest::collection::vec((0..len, any::<u8>(), 0..3u8), 1..8).prop_map(move |edits| {
        let mut bytes = base.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, byte),
                _ if !bytes.is_empty() => bytes[at] = byte,
                _ => bytes.push(byte),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Text that looks like TOML: keys, tables, values and punctuation in any order.
fn tomlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("[daemon]\n".to_string()),
        Just("[[service]]\n".to_string()),
        Just("[[contract]]\n".to_string()),
        Just("[[maintenance]]\n".to_string()),
        Just("[smtp]\n".to_string()),
        Just("id = ".to_string()),
        Just("http = ".to_string()),
        Just("interval = ".to_string()),
        Just("target = ".to_string()),
        Just("coverage = ".to_string()),
        Just("\"30s\"\n".to_string()),
        Just("\"99.9%\"\n".to_string()),
        Just("\"mon-fri 09:00-17:00\"\n".to_string()),
        Just("\"Europe/Berlin\"\n".to_string()),
        Just("[1, 2]\n".to_string()),
        Just("{ a = 1 }\n".to_string()),
        Just("\"\"\"\n".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

fn check_config_errors(text: &str) {
    let path = Path::new("fuzz.toml");
    if let Err(errors) = slaprobe::config::parse(text, path) {
        assert!(!errors.errors.is_empty());
        let lines = text.split('\n').count();
        for e in &errors.errors {
            assert_eq!(e.file, path);
            assert!(
                (1..=lines + 1).contains(&e.line) && e.column >= 1,
                "{e} points outside a {lines}-line text"
            );
            assert!(!e.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn config_parser_takes_any_text(text in "\\PC{0,400}") {
        check_config_errors(&text);
    }

    #[test]
    fn config_parser_takes_tomlish_text(text in tomlish()) {
        check_config_errors(&text);
    }

    #[test]
    fn config_parser_takes_a_mutated_example(text in mutated(EXAMPLE)) {
        check_config_errors(&text);
    }
}

const HISTORY: &str = "{\"ts\":\"2026-10-01T00:00:00Z\",\"ok\":true,\"latency_ms\":12}\n\
{\"ts\":\"2026-10-01T00:00:30Z\",\"ok\":false,\"reason\":\"status\",\"detail\":\"503\"}\n\
{\"ts\":\"2026-10-01T00:01:00Z\",\"ok\":true,\"latency_ms\":9.5}\n";

fn check_import_errors(text: &str) {
    match slaprobe::cli::import::parse(text, "h.jsonl") {
        Ok(outcomes) => {
            // What parses is ordered, as the importer promises.
            assert!(outcomes.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        }
        Err(slaprobe::cli::import::ImportError::BadLines(lines)) => {
            let count = text.lines().count().max(1);
            assert!(!lines.is_empty());
            for line in lines {
                let number: usize = line
                    .strip_prefix("h.jsonl:")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("`{line}` names no line"));
                assert!((1..=count).contains(&number), "`{line}` of {count} lines");
            }
        }
        Err(slaprobe::cli::import::ImportError::Empty(_)) => {}
        Err(other) => panic!("unexpected error: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn import_parser_takes_any_text(text in "\\PC{0,300}") {
        check_import_errors(&text);
    }

    #[test]
    fn import_parser_takes_mutated_history(text in mutated(HISTORY)) {
        check_import_errors(&text);
    }
}

/// A DNS server answering each query with what `reply` builds from it.
struct FuzzDns {
    addr: SocketAddr,
    reply: Arc<Mutex<Vec<u8>>>,
    /// Whether to copy the query's id into the first two bytes of the reply.
    echo_id: Arc<Mutex<bool>>,
}

async fn fuzz_dns() -> FuzzDns {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let reply = Arc::new(Mutex::new(Vec::new()));
    let echo_id = Arc::new(Mutex::new(false));
    let (r, e) = (reply.clone(), echo_id.clone());
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut answer = r.lock().unwrap().clone();
            if *e.lock().unwrap() && answer.len() >= 2 && n >= 2 {
                answer[..2].copy_from_slice(&buf[..2]);
            }
            let _ = socket.send_to(&answer, from).await;
        }
    });
    FuzzDns {
        addr,
        reply,
        echo_id,
    }
}

/// A well-formed answer to an A query for `www.test.example` (id 0, one A record).
fn valid_answer() -> Vec<u8> {
    let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    for label in ["www", "test", "example"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    m
}

#[test]
fn dns_probe_takes_any_answer() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, prober) = runtime.block_on(async { (fuzz_dns().await, Prober::new().unwrap()) });
    let ws = crate::support::Workspace::new();
    let config = ws.config(&format!(
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ninterval = \"10s\"\ntimeout = \"300ms\"\n\
         dns = \"www.test.example\"\nserver = \"{}\"\n",
        server.addr
    ));
    let service = config.service("s").unwrap().clone();
    // The valid answer works: the harness itself is sound.
    *server.reply.lock().unwrap() = valid_answer();
    *server.echo_id.lock().unwrap() = true;
    let outcome = runtime.block_on(prober.run(&service.probe, service.timeout, 0));
    assert!(outcome.is_ok(), "{outcome:?}");

    let answers = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        mutated_bytes(valid_answer()),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(96),
        ..ProptestConfig::default()
    });
    runner
        .run(&(answers, any::<bool>()), |(answer, echo)| {
            *server.reply.lock().unwrap() = answer;
            *server.echo_id.lock().unwrap() = echo;
            let started = std::time::Instant::now();
            let outcome = runtime.block_on(prober.run(&service.probe, service.timeout, 0));
            let reason = outcome.failure.as_ref().map(|f| f.reason);
            // A broken answer is `dns` (or `timeout` if dropped); a well-formed one without the
            // records asked for is `answer`; never `internal` or a panic.
            prop_assert!(
                matches!(
                    reason,
                    None | Some(Reason::Dns) | Some(Reason::Timeout) | Some(Reason::Answer)
                ),
                "{outcome:?}"
            );
            if let Some(failure) = &outcome.failure {
                prop_assert!(!failure.detail.is_empty());
            }
            prop_assert!(started.elapsed() < Duration::from_millis(1_300));
            Ok(())
        })
        .unwrap();
}

fn mutated_bytes(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    proptest::collection::vec((0..len, any::<u8>(), any::<bool>()), 1..6).prop_map(move |edits| {
        let mut bytes = base.clone();
        for (at, byte, replace) in edits {
            if replace {
                let last = bytes.len() - 1;
                bytes[at.min(last)] = byte;
            } else {
                bytes.truncate(at.max(12));
            }
        }
        bytes
    })
}
