//! The binary: exit codes and output of `check` and `probe`.

use std::process::Command;

use crate::support::{Mode, TestHttp, Workspace};

fn slaprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaprobe"))
}

#[test]
fn check_exits_64_with_every_error() {
    let ws = Workspace::new();
    let path = ws.path("probes.toml");
    std::fs::write(
        &path,
        "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9\"\n[[service]]\nid = \"s\"\n\
         contract = \"c\"\ntcp = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out = slaprobe()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:", path.display());
    assert!(
        stderr.contains(&format!("{prefix}4:10: `target`")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{prefix}8:7: `tcp`")), "{stderr}");
}

#[test]
fn check_accepts_the_example() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.example.toml");
    let out = slaprobe()
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test]
async fn probe_exits_0_when_ok_and_1_when_failed() {
    let http = TestHttp::start().await;
    let ws = Workspace::new();
    ws.config(&format!(
        "[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\ntimeout = \"2s\"\n",
        http.url("/")
    ));
    let path = ws.path("probes.toml");
    let run = |path: std::path::PathBuf| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["probe", "web", "--config"])
            .arg(path)
            .output()
            .await
            .unwrap()
    };
    let out = run(path.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("web: ok in"));

    http.set(Mode::Status(500));
    let out = run(path.clone()).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED status: status 500"), "{stdout}");

    let out = slaprobe()
        .args(["probe", "nope", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}
