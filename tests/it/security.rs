//! Security: planted secrets reach no output, the database files are private, the endpoint is
//! read-only and shows only what the config exposes, HTML escapes what it shows.

use std::time::Duration;

use crate::smtp_server::TestSmtp;
use crate::support::{DaemonProcess, Mode, TestHttp, Workspace};

const SMTP_SECRET: &str = "Smtp-Pl4nted-Secret";
const URL_SECRET: &str = "Url-Pl4nted-Secret";
const HEADER_SECRET: &str = "Header-Pl4nted-Secret";

/// Each secret as it could leak: plain, and base64 inside a Basic or SMTP AUTH exchange.
fn leaks(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in [SMTP_SECRET, URL_SECRET, HEADER_SECRET] {
        if text.contains(secret) {
            found.push(secret.to_string());
        }
    }
    for encoded in [
        base64(&format!("alerts:{SMTP_SECRET}")),
        base64(&format!("\0alerts\0{SMTP_SECRET}")),
        base64(SMTP_SECRET),
        base64(&format!("prober:{URL_SECRET}")),
    ] {
        if text.contains(&encoded) {
            found.push(format!("base64 {encoded}"));
        }
    }
    found
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            out.push('=');
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_examples() {
    assert_eq!(base64("foob"), "Zm9vYg==");
    assert_eq!(base64("fooba"), "Zm9vYmE=");
    assert_eq!(base64("foobar"), "Zm9vYmFy");
}

/// A daemon with an SMTP password, a URL with a password and an Authorization header, all its
/// services failing so that errors, incidents and alert mail are produced; then every output the
/// daemon and the CLI give is searched for the secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_output() {
    let smtp = TestSmtp::start().await;
    let down = TestHttp::start().await;
    down.set(Mode::Status(503));
    let ws = Workspace::new();
    let host = down.addr;
    let config = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nflush_interval = \"20ms\"\n\n\
         [smtp]\nurl = \"{smtp}\"\nusername = \"alerts\"\npassword_env = \"SLAPROBE_TEST_SMTP_PASSWORD\"\n\
         from = \"SLA monitor <sla@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\ngroup_window = \"100ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Client\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
         [[service]]\nid = \"userinfo\"\ncontract = \"c\"\nhttp = \"http://prober:{URL_SECRET}@{host}/\"\n\
         interval = \"300ms\"\ntimeout = \"200ms\"\nretry_interval = \"100ms\"\n\n\
         [[service]]\nid = \"bearer\"\ncontract = \"c\"\nhttp = \"http://{host}/echo-auth\"\n\
         headers = {{ Authorization = \"Bearer {HEADER_SECRET}\" }}\nexpect_status = [200]\n\
         interval = \"300ms\"\ntimeout = \"200ms\"\nretry_interval = \"100ms\"\n",
        smtp = smtp.url()
    );
    ws.config_text(&config);

    let daemon = DaemonProcess::spawn(&ws, &[("SLAPROBE_TEST_SMTP_PASSWORD", SMTP_SECRET)]);
    let endpoint = daemon.endpoint().await;

    // Both services go down and the on-call mail (with the failures' details) goes out.
    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert!(
        mail.iter()
            .all(|m| m.auth.as_deref() == Some(&format!("alerts:{SMTP_SECRET}"))),
        "the mail was sent with the password"
    );
    // The database and its WAL and shared-memory files are private to the daemon's user.
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["slaprobe.db", "slaprobe.db-wal", "slaprobe.db-shm"] {
            let mode = std::fs::metadata(ws.path(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
        }
    }
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    // Building a prober installs the process's TLS crypto provider, which reqwest needs.
    slaprobe::probe::Prober::new().unwrap();
    let client = reqwest::Client::new();
    let mut outputs: Vec<(String, String)> = Vec::new();
    for path in [
        "/".to_string(),
        "/healthz".to_string(),
        "/readyz".to_string(),
        "/metrics".to_string(),
        "/api/v1/daemon".to_string(),
        "/api/v1/services".to_string(),
        "/api/v1/services/userinfo".to_string(),
        "/api/v1/services/bearer".to_string(),
        format!("/api/v1/report?contract=c&month={month}"),
        format!("/api/v1/contracts/c/statements/{month}?format=html"),
        format!("/api/v1/contracts/c/statements/{month}?format=json"),
        format!("/api/v1/contracts/c/statements/{month}?format=csv"),
    ] {
        let response = client
            .get(format!("http://{endpoint}{path}"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {response:?}");
        outputs.push((path, response.text().await.unwrap()));
    }
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(args)
            .arg("--config")
            .arg(ws.path("probes.toml"))
            .env("SLAPROBE_LOG", "debug")
            .env("SLAPROBE_TEST_SMTP_PASSWORD", SMTP_SECRET)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for args in [
        vec!["check"],
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["probe", "userinfo"],
        vec!["probe", "bearer"],
        vec!["report", "--contract", "c", "--month", &month],
        vec![
            "report",
            "--contract",
            "c",
            "--month",
            &month,
            "--format",
            "json",
        ],
        vec!["statement", "--contract", "c", "--month", &month],
        vec![
            "statement",
            "--contract",
            "c",
            "--month",
            &month,
            "--format",
            "html",
        ],
        vec![
            "statement",
            "--contract",
            "c",
            "--month",
            &month,
            "--format",
            "csv",
        ],
    ] {
        outputs.push((format!("slaprobe {}", args.join(" ")), cli(&args)));
    }
    let probed = &outputs
        .iter()
        .find(|(p, _)| p == "slaprobe probe bearer")
        .unwrap()
        .1;
    assert!(probed.contains("401"), "the probe failed: {probed}");

    let (status, log) = daemon.stop().await;
    assert!(status.success());
    assert!(log.contains("Store open."), "{log}");
    outputs.push(("the daemon's log".to_string(), log));
    for message in smtp.received() {
        outputs.push((
            format!("mail {:?}", message.subject()),
            String::from_utf8_lossy(&message.data).into_owned(),
        ));
    }
    for file in ["slaprobe.db", "slaprobe.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.path(file)) {
            outputs.push((
                file.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }

    let shown = outputs.iter().any(|(what, text)| {
        what.starts_with("mail") && text.contains(&format!("http://prober:***@{host}/"))
    });
    assert!(shown, "the alert names the target, its password masked");

    let leaked: Vec<String> = outputs
        .iter()
        .filter_map(|(what, text)| {
            let found = leaks(text);
            (!found.is_empty()).then(|| format!("{what}: {found:?}"))
        })
        .collect();
    assert!(leaked.is_empty(), "secrets leaked:\n{}", leaked.join("\n"));
}

/// The endpoint answers reads only; the status page lists only `public_contracts` and escapes
/// every value, including text a hostile target chose (a TCP banner quoted in the failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_read_only_public_only_and_escaped() {
    // A target that answers with markup and hangs up: its banner is quoted in the failure.
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_addr = evil.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = evil.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream
                .write_all(b"<script>alert('banner')</script>\r\n")
                .await;
        }
    });
    let up = TestHttp::start().await;
    let ws = Workspace::new();
    let text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nflush_interval = \"20ms\"\n\
         public_contracts = [\"open\"]\n\n\
         [[contract]]\nid = \"open\"\nclient = \"<b>Bold</b> & \\\"Co\\\"\"\ntarget = \"99.9%\"\n\n\
         [[contract]]\nid = \"hidden\"\nclient = \"Hidden Client\"\ntarget = \"99.9%\"\n\n\
         [[service]]\nid = \"banner\"\nname = \"<img src=x onerror=alert(1)>\"\ncontract = \"open\"\n\
         tcp = \"{}\"\nexpect = \"SSH-2.0\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nretry_interval = \"50ms\"\n\n\
         [[service]]\nid = \"internal-db\"\ncontract = \"hidden\"\nhttp = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n",
        evil_addr,
        up.url("/")
    );
    let running =
        slaprobe::runtime::start(ws.config_text(&text), slaprobe::runtime::Options::default())
            .await
            .unwrap();
    let base = format!("http://{}", running.endpoint_addr().unwrap());
    // Building a prober installs the process's TLS crypto provider, which reqwest needs.
    slaprobe::probe::Prober::new().unwrap();
    let client = reqwest::Client::new();
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let statement_url = format!("{base}/api/v1/contracts/open/statements/{month}?format=html");
    let mut statement = String::new();
    for _ in 0..100 {
        statement = client
            .get(&statement_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if statement.contains("alert(&#x27;banner&#x27;)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        statement.contains("&lt;script&gt;alert(&#x27;banner&#x27;)&lt;&#x2F;script&gt;"),
        "the banner's failure is in the statement, escaped: {statement}"
    );
    assert!(!statement.contains("<script"), "{statement}");
    assert!(!statement.contains("<img"), "{statement}");
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(
        page.contains("&lt;b&gt;Bold&lt;&#x2F;b&gt; &amp; &quot;Co&quot;"),
        "{page}"
    );
    assert!(
        !page.contains("Hidden Client"),
        "a contract not public: {page}"
    );
    assert!(
        !page.contains("internal-db"),
        "its services neither: {page}"
    );

    for (method, path) in [
        (reqwest::Method::POST, "/"),
        (reqwest::Method::PUT, "/metrics"),
        (reqwest::Method::DELETE, "/api/v1/services/banner"),
        (reqwest::Method::PATCH, "/api/v1/services"),
        (
            reqwest::Method::POST,
            "/api/v1/report?contract=open&last=1d",
        ),
    ] {
        let response = client
            .request(method.clone(), format!("{base}{path}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    for path in [
        "/admin",
        "/api/v1/config",
        "/../probes.toml",
        "/slaprobe.db",
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    running.stop().await.unwrap();
}

/// The unit's exposure score from `systemd-analyze security --offline=true` stays under 2.0
/// (0 is best, 10 worst). Skipped without systemd-analyze unless SLAPROBE_REQUIRE_SYSTEMD_ANALYZE
/// is set (as in CI, which installs it).
#[test]
fn the_systemd_unit_exposure_score_is_under_two() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/slaprobe.service");
    let output = match std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", unit])
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            assert!(
                std::env::var_os("SLAPROBE_REQUIRE_SYSTEMD_ANALYZE").is_none(),
                "systemd-analyze is required but cannot run: {e}"
            );
            eprintln!("skipped: no systemd-analyze ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for slaprobe.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in:\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(score < 2.0, "exposure {score}:\n{text}");
}
