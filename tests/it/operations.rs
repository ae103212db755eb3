//! Operating the daemon: online backups.

use std::time::Duration;

use slaprobe::runtime::{self, Options};

use crate::support::{Db, TestHttp, Workspace, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_heavy_writes_is_consistent() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    let services: String = (0..30)
        .map(|i| {
            format!(
                "[[service]]\nid = \"s{i}\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"100ms\"\n\
                 timeout = \"80ms\"\n\n",
                http.url("/")
            )
        })
        .collect();
    let running = runtime::start(ws.config(&services), Options::default())
        .await
        .unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "outcomes being written", || {
        (Db::open(&db).outcomes("s0").len() >= 5).then_some(())
    })
    .await;
    let mut copies = Vec::new();
    for n in 0..3 {
        let copy = ws.path(&format!("backup-{n}.db"));
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .arg("backup")
            .arg(&copy)
            .arg("--config")
            .arg(ws.path("probes.toml"))
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("integrity ok"));
        copies.push(copy);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A second backup to an existing file is refused.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .arg("backup")
        .arg(&copies[0])
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    running.stop().await.unwrap();

    let mut previous = 0;
    for copy in &copies {
        let conn = rusqlite::Connection::open(copy).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let outcomes = Db::open(copy).outcomes("s0").len();
        assert!(
            outcomes > previous,
            "later copies hold more: {outcomes} after {previous}"
        );
        previous = outcomes;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(copy).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the copy is private");
        }
    }
}

/// Starts the real binary: `slaprobe run ARGS --config WS/probes.toml`, stderr captured.
fn spawn_daemon(ws: &Workspace, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(ws.path("probes.toml"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` (e.g. "-HUP") to `child`.
async fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// Runs `slaprobe run` for a moment with `args`, stops it with SIGTERM, returns its stderr.
async fn run_briefly(ws: &Workspace, args: &[&str]) -> String {
    let child = spawn_daemon(ws, args);
    tokio::time::sleep(Duration::from_millis(800)).await;
    signal(&child, "-TERM").await;
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn logs_are_plain_text_or_json_lines() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\n",
        http.url("/")
    ));
    let text = run_briefly(&ws, &[]).await;
    assert!(text.contains("Store open."), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );

    let json = run_briefly(&ws, &["--log-format", "json"]).await;
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 3, "{json}");
    let open = lines
        .iter()
        .find(|l| l["message"] == "Store open.")
        .expect("the store line");
    assert_eq!(open["level"], "INFO");
    assert_eq!(open["services"], 1);
    assert!(open["timestamp"].is_string());
}

#[tokio::test]
async fn sighup_applies_a_valid_config_and_keeps_running_on_a_broken_one() {
    let http = TestHttp::start().await;
    let other = TestHttp::start().await;
    let ws = Workspace::new();
    let web = format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n",
        http.url("/")
    );
    ws.config(&web);
    let child = spawn_daemon(&ws, &[]);
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Broken: reported with its position, the running config stays.
    let good = std::fs::read_to_string(ws.path("probes.toml")).unwrap();
    std::fs::write(ws.path("probes.toml"), "[daemon]\nlisten = \"nowhere\"\n").unwrap();
    let before = http.requests();
    signal(&child, "-HUP").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(http.requests() > before, "still probing after the SIGHUP");
    assert_eq!(other.requests(), 0);

    // Valid: a service added, and a restart-only setting changed (kept, with a warning).
    let added = format!(
        "{}\n[[service]]\nid = \"api\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n",
        good.replace("flush_interval = \"20ms\"", "flush_interval = \"50ms\""),
        other.url("/")
    );
    std::fs::write(ws.path("probes.toml"), added).unwrap();
    let before = http.requests();
    signal(&child, "-HUP").await;
    eventually(Duration::from_secs(10), "the added service probed", || {
        (other.requests() >= 2).then_some(())
    })
    .await;
    assert!(http.requests() > before, "the first service goes on");
    signal(&child, "-TERM").await;
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("probes.toml:2:10"),
        "the error with its position: {log}"
    );
    assert!(log.contains("still running the previous config"), "{log}");
    assert!(
        log.contains("Config reloaded. added=1 removed=0 changed=0 unchanged=1"),
        "{log}"
    );
    assert!(
        log.contains("applies only at a restart") && log.contains("flush_interval"),
        "{log}"
    );
    let db = Db::open(&ws.db());
    assert!(db.outcomes("api").len() >= 2);
}

/// A config with the HTTP endpoint on 127.0.0.1:0 and two fast services of contract `c`:
/// `web` probing `up_url` and `api` probing `down_url`.
fn endpoint_config(client: &str, up_url: &str, down_url: &str) -> String {
    let service = |id: &str, url: &str| {
        format!(
            "[[service]]\nid = \"{id}\"\ncontract = \"c\"\nhttp = \"{url}\"\ninterval = \"300ms\"\n\
             timeout = \"200ms\"\nretry_interval = \"100ms\"\n\n"
        )
    };
    format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nflush_interval = \"20ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"{client}\"\ntarget = \"99.9%\"\n\n{}{}",
        service("web", up_url),
        service("api", down_url)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_with_per_service_series() {
    let up = TestHttp::start().await;
    let down = TestHttp::start().await;
    down.set(crate::support::Mode::Status(503));
    let ws = Workspace::new();
    let text = endpoint_config("C", &up.url("/"), &down.url("/"));
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    let url = format!("http://{}/metrics", running.endpoint_addr().unwrap());
    let client = reqwest::Client::new();
    // Wait for the month-to-date refresh (2 s after start) and an incident.
    let mut page = String::new();
    for _ in 0..100 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        page = response.text().await.unwrap();
        if page.contains("slaprobe_availability_month_ratio{service=\"api\"")
            && page.contains("slaprobe_up{service=\"api\",contract=\"c\"} 0")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await.unwrap();

    let scrape = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{page}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(
        value("slaprobe_up", &[("service", "web"), ("contract", "c")]),
        1.0
    );
    assert_eq!(value("slaprobe_up", &[("service", "api")]), 0.0);
    assert!(
        value(
            "slaprobe_probes_total",
            &[("service", "web"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        value(
            "slaprobe_probes_total",
            &[
                ("service", "api"),
                ("result", "failed"),
                ("reason", "status")
            ]
        ) >= 2.0
    );
    assert_eq!(
        value(
            "slaprobe_incident_open_since_seconds",
            &[("service", "web")]
        ),
        0.0
    );
    let since = value(
        "slaprobe_incident_open_since_seconds",
        &[("service", "api")],
    );
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!(since > now - 60.0 && since <= now, "{since}");
    assert_eq!(
        value("slaprobe_availability_month_ratio", &[("service", "web")]),
        1.0
    );
    assert!(value("slaprobe_availability_month_ratio", &[("service", "api")]) < 1.0);
    assert!(
        value(
            "slaprobe_error_budget_remaining_ratio",
            &[("service", "api")]
        ) < 1.0
    );
    assert_eq!(value("slaprobe_outbox_pending", &[]), 0.0);
    assert!(value("slaprobe_store_queue_depth", &[]) >= 0.0);
    assert!(
        page.contains(
            "slaprobe_probe_duration_seconds_bucket{le=\"0.005\",service=\"web\",contract=\"c\"}"
        ) || page.contains(
            "slaprobe_probe_duration_seconds_bucket{service=\"web\",contract=\"c\",le=\"0.005\"}"
        ),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_with_the_cli_numbers() {
    let up = TestHttp::start().await;
    let down = TestHttp::start().await;
    down.set(crate::support::Mode::Status(503));
    let ws = Workspace::new();
    let text = endpoint_config("Client <C>", &up.url("/"), &down.url("/"));
    let from = jiff::Timestamp::now();
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    let db = ws.db();
    eventually(Duration::from_secs(10), "the incident", || {
        (!Db::open(&db).incidents("api").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let to = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let base = format!("http://{}", running.endpoint_addr().unwrap());
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.unwrap() }
    };

    let services: serde_json::Value = get("/api/v1/services".into())
        .await
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let state = |id: &str| {
        services["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("web"), "up");
    assert_eq!(state("api"), "down");

    let one: serde_json::Value = get("/api/v1/services/api".into())
        .await
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(one["status"]["state"], "down");
    assert!(one["recent_outcomes"].as_array().unwrap().len() >= 2);
    assert_eq!(one["recent_outcomes"][0]["reason"], "status");
    assert_eq!(one["last_90_days"]["incidents"], 1);
    let missing = get("/api/v1/services/nope".into()).await;
    assert_eq!(missing.status(), 404);
    let error: serde_json::Value = missing.text().await.unwrap().parse().unwrap();
    assert_eq!(error["error"], "no service `nope`");

    // A closed period: the API and the CLI give the same JSON.
    let query = format!("contract=c&from={from}&to={to}");
    let api: serde_json::Value = get(format!("/api/v1/report?{query}"))
        .await
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let bad = get("/api/v1/report?contract=c&last=soon".into()).await;
    assert_eq!(bad.status(), 400);
    let statement = get(format!(
        "/api/v1/contracts/c/statements/{}?format=html",
        from.strftime("%Y-%m")
    ))
    .await;
    assert_eq!(statement.status(), 200);
    assert_eq!(
        statement.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = statement.text().await.unwrap();
    assert!(html.contains("Client &lt;C&gt;"), "escaped");
    let csv = get(format!(
        "/api/v1/contracts/c/statements/{}?format=csv",
        from.strftime("%Y-%m")
    ))
    .await;
    assert!(csv.text().await.unwrap().contains("TOTAL"));
    assert_eq!(
        get("/api/v1/contracts/c/statements/2026-13".into())
            .await
            .status(),
        400
    );
    running.stop().await.unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args([
            "report",
            "--contract",
            "c",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .args(["--format", "json", "--config"])
        .arg(ws.path("probes.toml"))
        .output()
        .await
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(api, cli);
    assert_eq!(api["services"][1]["incidents"], 1, "{api}");
}

/// The status page in headless Chromium (Debian's `chromium`, which .ci/run installs). Skipped
/// when no Chromium is installed, unless SLAPROBE_REQUIRE_CHROMIUM is set (as in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_chromium() {
    use std::fmt::Write as _;
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok()
    });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("SLAPROBE_REQUIRE_CHROMIUM").is_none(),
            "Chromium is required (SLAPROBE_REQUIRE_CHROMIUM) but not installed"
        );
        eprintln!("skipped: no chromium installed (apt-get install chromium)");
        return;
    };
    let up = TestHttp::start().await;
    let down = TestHttp::start().await;
    down.set(crate::support::Mode::Status(503));
    let ws = Workspace::new();
    let maintenance_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\nflush_interval = \"20ms\"\n\
         public_contracts = [\"acme\"]\n\n\
         [[contract]]\nid = \"acme\"\nclient = \"ACME <Corp>\"\ntarget = \"99.9%\"\ntimezone = \"Europe/Berlin\"\n\n\
         [[contract]]\nid = \"hidden\"\nclient = \"Hidden Client\"\ntarget = \"99.9%\"\n\n\
         [[service]]\nid = \"web\"\nname = \"Web <shop>\"\ncontract = \"acme\"\nhttp = \"{}\"\ninterval = \"60s\"\ntimeout = \"2s\"\n\n\
         [[service]]\nid = \"www\"\ncontract = \"acme\"\nhttp = \"{}\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\n\n\
         [[service]]\nid = \"api\"\nname = \"Public API\"\ncontract = \"acme\"\nhttp = \"{}\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\nretry_interval = \"100ms\"\n\n\
         [[service]]\nid = \"secret\"\ncontract = \"hidden\"\nhttp = \"{}\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\n\n\
         [[maintenance]]\nservices = [\"web\"]\nstart = \"{maintenance_at}\"\nduration = \"2h\"\n",
        up.url("/"),
        up.url("/"),
        down.url("/"),
        up.url("/")
    );
    let config = ws.config_text(&text);
    // Five days of history for `web` (probed every minute), with a 3-hour outage three days ago.
    let now = jiff::Timestamp::now().as_millisecond();
    // The outage from 10:00 to 13:00 Berlin time three days ago, inside one local day.
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let outage = jiff::Timestamp::now()
        .to_zoned(berlin.clone())
        .date()
        .checked_sub(jiff::Span::new().days(3))
        .unwrap()
        .at(10, 0, 0, 0)
        .to_zoned(berlin)
        .unwrap()
        .timestamp()
        .as_millisecond();
    let start = now - 5 * 86_400_000;
    let mut lines = String::new();
    let mut t = start;
    while t < now - 60_000 {
        let ts = jiff::Timestamp::from_millisecond(t).unwrap();
        let failed = (outage..outage + 3 * 3_600_000).contains(&t);
        let line = if failed {
            format!(r#"{{"ts":"{ts}","ok":false,"latency_ms":5,"reason":"connect"}}"#)
        } else {
            format!(r#"{{"ts":"{ts}","ok":true,"latency_ms":5}}"#)
        };
        writeln!(lines, "{line}").unwrap();
        t += 60_000;
    }
    std::fs::write(ws.path("web.jsonl"), lines).unwrap();
    slaprobe::cli::import::import(
        config.daemon.database.sqlite().unwrap(),
        config.service("web").unwrap(),
        &ws.path("web.jsonl"),
        config.daemon.retention,
    )
    .unwrap();

    let running = runtime::start(config, Options::default()).await.unwrap();
    let url = format!("http://{}/", running.endpoint_addr().unwrap());
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(15),
        "bars and the incident on the page",
        || {
            let page = std::thread::scope(|_| {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current()
                        .block_on(async { client.get(&url).send().await.ok()?.text().await.ok() })
                })
            })?;
            (page.contains("<span class=\"d-miss\" style=") && page.contains("state down"))
                .then_some(())
        },
    )
    .await;

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let screenshot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let headless = |extra: Vec<String>| {
        let mut c = tokio::process::Command::new(chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(extra)
        .arg(&url);
        c
    };
    let shot = headless(vec![
        format!("--screenshot={}", screenshot.display()),
        "--window-size=1280,900".into(),
    ])
    .output()
    .await
    .unwrap();
    assert!(shot.status.success(), "{shot:?}");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a real picture"
    );
    let dom = headless(vec!["--dump-dom".into()]).output().await.unwrap();
    running.stop().await.unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    eprintln!("screenshot: {}", screenshot.display());

    assert!(dom.contains("<h2>ACME &lt;Corp&gt;</h2>"), "{dom}");
    assert!(dom.contains("Web &lt;shop&gt;"), "names escaped");
    assert!(!dom.contains("Hidden Client"), "only public contracts");
    assert!(dom.contains("<td>www</td><td class=\"state up\">Up</td>"));
    // Below target: web's outage day and the API today, each on its own.
    assert_eq!(
        dom.matches("<span class=\"d-miss\" style=\"flex:1\"")
            .count(),
        2
    );
    assert!(dom.contains("<td class=\"state down\">Down</td>"));
    // Three public services, each bar 90 days wide, alike days merged into runs.
    let widths: Vec<u32> = dom
        .split("style=\"flex:")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(widths.iter().sum::<u32>(), 3 * 90, "{dom}");
    // www: 89 days not measured, then today met: two runs.
    assert!(dom.contains("style=\"flex:89\""), "{dom}");
    // web: a run of met days, the outage day on its own, then met again.
    let outage_day = jiff::Timestamp::from_millisecond(outage)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .date()
        .to_string();
    assert!(
        dom.contains(&format!(
            "class=\"d-miss\" style=\"flex:1\" title=\"{outage_day}: 87.500%, down 3 h 00 m 00 s\""
        )),
        "web's outage day: 3 h down of 24 measured, 21/24 = 87.5%: {dom}"
    );
    assert!(dom.contains("Public API — down since"), "the open incident");
    assert!(dom.contains("(status)"), "with its cause");
    assert!(
        dom.contains(": Web &lt;shop&gt;</li>"),
        "the upcoming maintenance"
    );
}
