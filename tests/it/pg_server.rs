//! A throwaway PostgreSQL cluster for the tests: Debian's server binaries, `initdb` in a
//! temporary directory, `pg_ctl` listening on a Unix socket in that directory only (no TCP, no
//! system service), stopped and removed when dropped. As root the server runs as the
//! `postgres` user the package creates (PostgreSQL refuses to run as root).
//!
//! `PgServer::start()` is `None`, with a message, when no PostgreSQL is installed, unless
//! SLAPROBE_REQUIRE_POSTGRES is set (as in CI): then it panics.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `Some("postgres")` when the tests run as root.
    run_as: Option<&'static str>,
}

/// The directory holding `initdb` and `pg_ctl`: Debian's /usr/lib/postgresql/N/bin (highest N).
fn server_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl PgServer {
    pub fn start() -> Option<PgServer> {
        let Some(bin) = server_binaries() else {
            assert!(
                std::env::var_os("SLAPROBE_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required (SLAPROBE_REQUIRE_POSTGRES) but not installed"
            );
            eprintln!("skipped: no PostgreSQL server installed (apt-get install postgresql)");
            return None;
        };
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("slaprobe-pg")
            .tempdir()
            .unwrap();
        if root {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let server = PgServer { dir, bin, run_as };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "slaprobe",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_again();
        Some(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The socket's directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A libpq URI for database `db` over the Unix socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql:///{db}?host={}&user=slaprobe",
            self.socket_dir().display()
        )
    }

    /// Creates an empty database and returns its URI. (On a thread of its own: the blocking
    /// client cannot run on an async test's threads.)
    pub fn database(&self, name: &str) -> String {
        let admin_url = self.url("postgres");
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .unwrap();
            })
            .join()
            .unwrap()
        });
        self.url(name)
    }

    /// Stops the server (fast shutdown: connections are cut), as an outage of the store.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the (stopped) server again on the same socket.
    pub fn start_again(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c max_connections=200",
            self.socket_dir().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = match self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&program)
                .args(args)
                .output(),
            None => Command::new(&program).args(args).output(),
        };
    }
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user: is Debian's postgresql package installed?");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}
