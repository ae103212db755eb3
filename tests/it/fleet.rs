//! Several locations sharing one PostgreSQL (DESIGN.md §6.3), through the real binary: each
//! daemon runs `slaprobe run` on a config naming its own `location`, probes every service, and
//! writes what it saw under that location; the fleet's verdict is read from what they wrote.

use std::time::Duration;

use slaprobe::store::pg::{self, PgTarget};

use crate::pg_server::PgServer;
use crate::support::{DaemonProcess, TestTcp, Workspace, closed_port, eventually};

/// The config of one location of a fleet of `fra` and `nyc` on `url`: `up` answers, `down`
/// refuses every connection.
fn fleet_config(url: &str, location: &str, up: &str, down: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"{url}\"\nlocation = \"{location}\"\n\
         locations = [\"fra\", \"nyc\"]\nflush_interval = \"20ms\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\n\n\
         [[service]]\nid = \"up\"\ncontract = \"c\"\ntcp = \"{up}\"\ninterval = \"1s\"\n\
         timeout = \"500ms\"\n\n\
         [[service]]\nid = \"down\"\ncontract = \"c\"\ntcp = \"{down}\"\ninterval = \"1s\"\n\
         timeout = \"500ms\"\nretry_interval = \"200ms\"\n"
    )
}

/// Runs `f` with a client of `target` on a thread of its own (the blocking client cannot run
/// on an async test's threads).
fn with_client<T: Send>(target: &PgTarget, f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| f(&mut pg::connect_only(target).unwrap()))
            .join()
            .unwrap()
    })
}

/// Two locations of a fleet on one PostgreSQL: both probe both services and write under their
/// own name; the service refusing connections is one open incident at each location and one
/// in the fleet's verdict, seen from both; the answering one has none; `/readyz` is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_locations_write_their_own_view_into_one_postgres() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("fleet");
    let target = PgTarget {
        url: url.clone(),
        password_env: None,
    };
    let tcp = TestTcp::start(None).await;
    let refused = closed_port().await;
    let mut daemons = Vec::new();
    let mut workspaces = Vec::new();
    for location in ["fra", "nyc"] {
        let ws = Workspace::new();
        ws.config_text(&fleet_config(
            &url,
            location,
            &tcp.addr.to_string(),
            &refused.to_string(),
        ));
        daemons.push(DaemonProcess::spawn(&ws, &[]));
        workspaces.push(ws);
    }
    // The crate's prober installs the TLS crypto provider reqwest needs.
    slaprobe::probe::Prober::new().unwrap();
    for daemon in &daemons {
        let base = format!("http://{}", daemon.endpoint().await);
        let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(ready.status().as_u16(), 200);
    }

    // Each location opens its own incident for `down` after its own failures.
    let open_at = |location: &'static str| {
        let target = target.clone();
        move || {
            with_client(&target, |client| {
                let nums = pg::writer::register(client, &["down".to_string()]).unwrap();
                pg::read::open_incident(client, location, nums["down"]).unwrap()
            })
        }
    };
    let fra_open = eventually(Duration::from_secs(30), "fra's incident", open_at("fra")).await;
    let nyc_open = eventually(Duration::from_secs(30), "nyc's incident", open_at("nyc")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The status page shows the verdict: `down` down since the later location's start.
    let page = reqwest::get(format!("http://{}/", daemons[0].endpoint().await))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("class=\"state down\"").count(),
        1,
        "one service down on the page: {page}"
    );
    let mut logs = Vec::new();
    for daemon in daemons {
        let (status, log) = daemon.stop().await;
        assert!(status.success(), "{log}");
        logs.push(log);
    }
    assert!(
        logs[0].contains("location=fra") && logs[1].contains("location=nyc"),
        "{logs:?}"
    );

    let locations = vec!["fra".to_string(), "nyc".to_string()];
    let now = slaprobe::clock::Clock::system().now_ms();
    with_client(&target, |client| {
        let nums = pg::writer::register(client, &["up".to_string(), "down".to_string()]).unwrap();
        for location in &locations {
            for service in ["up", "down"] {
                let outcomes =
                    pg::read::outcomes(client, location, nums[service], 0, i64::MAX).unwrap();
                assert!(
                    outcomes.len() >= 2,
                    "{location} stored {} outcomes of {service}",
                    outcomes.len()
                );
                let failed = outcomes.iter().filter(|o| o.reason.is_some()).count();
                match service {
                    "up" => assert_eq!(failed, 0, "{location}: {outcomes:?}"),
                    _ => assert_eq!(failed, outcomes.len(), "{location}: {outcomes:?}"),
                }
            }
            assert!(
                pg::read::incidents(client, location, nums["up"])
                    .unwrap()
                    .is_empty()
            );
        }
        // Quorum 2 of 2: down from the later of the two locations' incident starts.
        let mut verdict = |service: &str| {
            pg::read::verdict(
                client,
                &locations,
                2,
                nums[service],
                (0, now),
                now,
                (1000, 2500),
            )
            .unwrap()
        };
        let down = verdict("down");
        let start = fra_open.start_ms.max(nyc_open.start_ms);
        assert_eq!(down.timeline.incidents.len(), 1, "{down:?}");
        assert_eq!(down.timeline.incidents[0].0, start);
        assert_eq!(down.seen_by[0].len(), 2, "{down:?}");
        assert!(verdict("up").timeline.incidents.is_empty());
    });

    // The CLI reads the same: the verdict's one open incident, each location's own view, and
    // each location's state beside the verdict's in `status`.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(args)
            .arg("--config")
            .arg(workspaces[0].path("probes.toml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let incidents_in = |json: &str| -> u64 {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["incidents"].as_u64().unwrap()
    };
    let fleet = cli(&[
        "report",
        "--service",
        "down",
        "--last",
        "1h",
        "--format",
        "json",
    ]);
    assert_eq!(incidents_in(&fleet), 1, "{fleet}");
    let fleet: serde_json::Value = serde_json::from_str(&fleet).unwrap();
    let mut confirmed: Vec<&str> = fleet["incident_list"][0]["confirmed_from"]
        .as_array()
        .unwrap_or_else(|| panic!("{fleet}"))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    confirmed.sort_unstable();
    assert_eq!(confirmed, ["fra", "nyc"], "{fleet}");
    // The month's statement (a draft) lists the incident with the locations that confirmed it.
    let month = {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        format!("{:04}-{:02}", now.year(), now.month())
    };
    let statement = cli(&["statement", "--contract", "c", "--month", &month]);
    assert!(statement.contains("confirmed from "), "{statement}");
    for location in ["fra", "nyc"] {
        let own = cli(&[
            "report",
            "--service",
            "down",
            "--last",
            "1h",
            "--location",
            location,
            "--format",
            "json",
        ]);
        assert_eq!(incidents_in(&own), 1, "{location}: {own}");
    }
    let up = cli(&[
        "report",
        "--service",
        "up",
        "--last",
        "1h",
        "--format",
        "json",
    ]);
    assert_eq!(incidents_in(&up), 0, "{up}");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&["status", "--format", "json"])).unwrap();
    let down = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["service"] == "down")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(down["state"], "down", "{down}");
    let locations: Vec<(&str, &str)> = down["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["location"].as_str().unwrap(),
                l["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(locations, [("fra", "down"), ("nyc", "down")], "{down}");
}

/// The config of one location of a fleet of `fra`, `nyc` and `sgp` (quorum 2, the majority)
/// on `url`, alerting by e-mail through `smtp`: one HTTP service, `web`.
fn speaking_config(url: &str, location: &str, smtp: &str, web: &str, listen: bool) -> String {
    let listen = if listen {
        "listen = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    format!(
        "[daemon]\ndatabase = \"{url}\"\nlocation = \"{location}\"\n\
         locations = [\"fra\", \"nyc\", \"sgp\"]\nflush_interval = \"20ms\"\n{listen}\n\
         [smtp]\nurl = \"{smtp}\"\nfrom = \"SLA monitor <sla@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\n\
         group_window = \"100ms\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Client\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
         [[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{web}\"\ninterval = \"500ms\"\n\
         timeout = \"300ms\"\nretry_interval = \"100ms\"\n"
    )
}

/// `/api/v1/daemon`'s (speaking, speaker) of the daemon at `base`.
async fn voice_of(client: &reqwest::Client, base: &str) -> (bool, Option<String>) {
    let response = client
        .get(format!("{base}/api/v1/daemon"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{base}: {e:?}"));
    let text = response.text().await.unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (
        report["speaking"].as_bool().unwrap(),
        report["speaker"].as_str().map(String::from),
    )
}

/// Three locations, one voice: one daemon holds the lock and both name it; a location whose
/// own network is cut off sees the service down and costs nothing (no incident, no e-mail);
/// a real outage is one DOWN; an acknowledgement is told once; when the speaker is killed
/// during the outage, a standby takes over and sends the RECOVERED, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_speaks_with_one_voice() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("voice");
    let smtp = crate::smtp_server::TestSmtp::start().await;
    let web = crate::support::TestHttp::start().await;
    slaprobe::probe::Prober::new().unwrap();
    let client = reqwest::Client::new();
    let spawn = |location: &str, cut_off: bool| {
        let ws = Workspace::new();
        ws.config_text(&speaking_config(
            &url,
            location,
            &smtp.url(),
            &web.url("/"),
            !cut_off,
        ));
        let daemon = if cut_off {
            DaemonProcess::spawn_cut_off(&ws, &[])
        } else {
            DaemonProcess::spawn(&ws, &[])
        };
        (ws, daemon)
    };
    let (fra_ws, mut fra) = spawn("fra", false);
    let (_nyc_ws, mut nyc) = spawn("nyc", false);
    let bases = [
        format!("http://{}", fra.endpoint().await),
        format!("http://{}", nyc.endpoint().await),
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;
    for daemon in [&mut fra, &mut nyc] {
        let exited = daemon.child.try_wait().unwrap();
        let log = daemon.log();
        assert!(exited.is_none() && !log.contains("ERROR"), "{log}");
    }

    // One of the two speaks, and both name it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let speaker = loop {
        let (fra_voice, nyc_voice) = (
            voice_of(&client, &bases[0]).await,
            voice_of(&client, &bases[1]).await,
        );
        if fra_voice.0 != nyc_voice.0 && fra_voice.1.is_some() && fra_voice.1 == nyc_voice.1 {
            let speaker = fra_voice.1.clone().unwrap();
            assert_eq!(
                speaker,
                if fra_voice.0 { "fra" } else { "nyc" },
                "{fra_voice:?} {nyc_voice:?}"
            );
            break speaker;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single speaker: {fra_voice:?} {nyc_voice:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let metrics = reqwest::get(format!("{}/metrics", bases[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let speaking_line = if speaker == "fra" {
        "slaprobe_speaking 1"
    } else {
        "slaprobe_speaking 0"
    };
    assert!(metrics.contains(speaking_line), "{metrics}");

    // sgp's network is cut off: it sees `web` down, alone.
    let (_sgp_ws, sgp) = spawn("sgp", true);
    let target = PgTarget {
        url: url.clone(),
        password_env: None,
    };
    let sgp_open = {
        let target = target.clone();
        move || {
            with_client(&target, |client| {
                let nums = pg::writer::register(client, &["web".to_string()]).unwrap();
                pg::read::open_incident(client, "sgp", nums["web"]).unwrap()
            })
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sgp_open().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sgp opened no incident of its own:\n{}",
            sgp.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        smtp.received().is_empty(),
        "a cut-off location alone alerted: {:?}",
        smtp.received()
            .iter()
            .map(|m| m.subject())
            .collect::<Vec<_>>()
    );

    // A real outage: fra and nyc see it too. One DOWN across the fleet.
    web.set(crate::support::Mode::Status(503));
    let down = smtp.wait_for(1, Duration::from_secs(30)).await;
    assert!(down[0].subject().contains("DOWN"), "{}", down[0].subject());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.received().len(), 1, "one DOWN only");

    // Someone takes it up (from any location's config): the speaker tells those told, once.
    let ack = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args([
            "ack", "web", "--by", "alice", "--note", "looking", "--config",
        ])
        .arg(fra_ws.path("probes.toml"))
        .output()
        .unwrap();
    assert!(
        ack.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ack.stdout),
        String::from_utf8_lossy(&ack.stderr)
    );
    let acked = smtp.wait_for(2, Duration::from_secs(30)).await;
    assert!(
        acked[1].subject().contains("ACKNOWLEDGED"),
        "{}",
        acked[1].subject()
    );

    // Both told messages recorded as sent (a speaker killed between the SMTP server's accepting
    // a message and its recording it would leave it leased to the dead speaker, to be sent
    // again once the lease ends: at least once, never lost).
    let target = PgTarget {
        url: url.clone(),
        password_env: None,
    };
    eventually(
        Duration::from_secs(10),
        "the two messages recorded as sent",
        || {
            with_client(&target, |c| {
                let sent: i64 = c
                    .query_one("SELECT count(*) FROM outbox WHERE state = 'sent'", &[])
                    .unwrap()
                    .get(0);
                (sent == 2).then_some(())
            })
        },
    )
    .await;

    // The speaker is killed during the outage; the standby takes over and, when the service
    // recovers, sends RECOVERED once, within 60 s.
    let (killed, standby, standby_base) = if speaker == "fra" {
        (fra, nyc, &bases[1])
    } else {
        (nyc, fra, &bases[0])
    };
    killed.kill().await;
    let taken_over = tokio::time::Instant::now();
    loop {
        if voice_of(&client, standby_base).await.0 {
            break;
        }
        assert!(
            taken_over.elapsed() < Duration::from_secs(30),
            "no takeover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    web.set(crate::support::Mode::Healthy);
    let recovered = tokio::time::Instant::now();
    let deadline = recovered + Duration::from_secs(60);
    while smtp.received().len() < 3 {
        if tokio::time::Instant::now() > deadline {
            let wanted = |l: &&str| {
                [" INFO ", " WARN ", " ERROR "]
                    .iter()
                    .any(|k| l.contains(k))
            };
            let log = standby.log();
            let tail: Vec<&str> = log.lines().filter(wanted).collect();
            let subjects: Vec<String> = smtp.received().iter().map(|m| m.subject()).collect();
            panic!(
                "no RECOVERED within 60 s of the recovery; mail {subjects:?}; the standby \
                 logged:\n{}",
                tail[tail.len().saturating_sub(60)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "RECOVERED {:.1} s after the recovery",
        recovered.elapsed().as_secs_f64()
    );
    let mail = smtp.received();
    assert!(
        mail[2].subject().contains("RECOVERED"),
        "{}",
        mail[2].subject()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let subjects: Vec<String> = smtp.received().iter().map(|m| m.subject()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");

    let (status, log) = standby.stop().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("Speaking for the fleet"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    sgp.stop().await;
}

/// PostgreSQL stopped for 20 s under a running daemon: probing goes on, `/readyz` says not
/// ready while records wait in memory, and when the server is back every outcome is written,
/// once: no gap in the stored outcomes across the outage, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_postgres_loses_no_outcome_and_writes_none_twice() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("outage");
    let target = PgTarget {
        url: url.clone(),
        password_env: None,
    };
    let tcp = TestTcp::start(None).await;
    let ws = Workspace::new();
    ws.config_text(&format!(
        "[daemon]\ndatabase = \"{url}\"\nlocation = \"fra\"\nflush_interval = \"20ms\"\n\
         listen = \"127.0.0.1:0\"\n\n\
         [[contract]]\nid = \"c\"\nclient = \"Test Client\"\ntarget = \"99.9%\"\n\n\
         [[service]]\nid = \"up\"\ncontract = \"c\"\ntcp = \"{}\"\ninterval = \"500ms\"\n\
         timeout = \"300ms\"\n",
        tcp.addr
    ));
    let daemon = DaemonProcess::spawn(&ws, &[]);
    let base = format!("http://{}", daemon.endpoint().await);
    slaprobe::probe::Prober::new().unwrap();
    let readyz = |base: String| async move {
        reqwest::get(format!("{base}/readyz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(readyz(base.clone()).await, 200);

    tokio::task::block_in_place(|| server.stop());
    let stopped_at = slaprobe::clock::Clock::system().now_ms();
    let mut saw_not_ready = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        saw_not_ready |= readyz(base.clone()).await == 503;
    }
    tokio::task::block_in_place(|| server.start_again());
    let restarted_at = slaprobe::clock::Clock::system().now_ms();
    assert!(
        saw_not_ready,
        "/readyz stayed ready with PostgreSQL stopped"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while readyz(base.clone()).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready 30 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, log) = daemon.stop().await;
    assert!(status.success() && !log.contains("panicked"), "{log}");

    let outcomes = with_client(&target, |client| {
        let nums = pg::writer::register(client, &["up".to_string()]).unwrap();
        pg::read::outcomes(client, "fra", nums["up"], 0, i64::MAX).unwrap()
    });
    let times: Vec<i64> = outcomes.iter().map(|o| o.at_ms).collect();
    let mut distinct = times.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), times.len(), "an outcome written twice");
    let during = times
        .iter()
        .filter(|&&t| stopped_at < t && t < restarted_at)
        .count();
    assert!(
        during >= 30,
        "{during} outcomes from the 20 s outage stored"
    );
    let longest_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest_gap < 1500,
        "a gap of {longest_gap} ms in the stored outcomes"
    );
}

/// A certificate near expiry, seen by every location, is told once by the fleet: by the
/// speaker; a standby taking over after the speaker is killed does not tell it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_tells_of_an_expiring_certificate_once() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("certificates");
    let smtp = crate::smtp_server::TestSmtp::start().await;
    let today = jiff::Zoned::now().date();
    let in_five_days = today.checked_add(jiff::Span::new().days(5)).unwrap();
    let https = crate::support::TestHttps::start(in_five_days).await;
    slaprobe::probe::Prober::new().unwrap();
    let spawn = |location: &str| {
        let ws = Workspace::new();
        ws.config_text(&format!(
            "[daemon]\ndatabase = \"{url}\"\nlocation = \"{location}\"\n\
             locations = [\"fra\", \"nyc\"]\nflush_interval = \"20ms\"\n\n\
             [smtp]\nurl = \"{}\"\nfrom = \"SLA monitor <sla@provider.example>\"\n\n\
             [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\n\
             group_window = \"100ms\"\n\n\
             [[contract]]\nid = \"c\"\nclient = \"Client\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n\
             [[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ntls_verify = false\n\
             cert_expiry_warn = \"14d\"\ninterval = \"300ms\"\ntimeout = \"250ms\"\n",
            smtp.url(),
            https.url()
        ));
        let daemon = DaemonProcess::spawn(&ws, &[]);
        (ws, daemon)
    };
    let (_fra_ws, fra) = spawn("fra");
    let (_nyc_ws, nyc) = spawn("nyc");
    let notice = smtp.wait_for(1, Duration::from_secs(30)).await;
    let subjects = |mail: &[crate::smtp_server::Received]| -> Vec<String> {
        mail.iter().map(|m| m.subject()).collect()
    };
    assert_eq!(subjects(&notice), ["[slaprobe] CERT EXPIRING: web (c)"]);
    // Both locations keep seeing the certificate; the speaker dies and the other takes over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let speaker = |log: &str| log.contains("Speaking for the fleet");
    let (fra_log, nyc_log) = (fra.log(), nyc.log());
    assert!(
        speaker(&fra_log) != speaker(&nyc_log),
        "{fra_log}\n{nyc_log}"
    );
    let standby = if speaker(&fra_log) {
        fra.kill().await;
        nyc
    } else {
        nyc.kill().await;
        fra
    };
    eventually(Duration::from_secs(30), "the standby speaking", || {
        speaker(&standby.log()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        subjects(&smtp.received()),
        ["[slaprobe] CERT EXPIRING: web (c)"]
    );
    let (status, log) = standby.stop().await;
    assert!(status.success() && !log.contains("panicked"), "{log}");
}
