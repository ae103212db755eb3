//! Benchmark: slaprobe beside its peers in one run, every prober probing the same local nginx
//! with keep-alive off (so every probe is a fresh connection), and the floor: what a fresh
//! connection and a GET cost on this machine with nothing else around them.
//!
//!     cargo bench --bench peers                                # 1,000 services at 10 s, 60 s
//!     cargo bench --bench peers -- --services 1000,10000
//!     cargo bench --bench peers -- --services 10000 --only floor,slaprobe --duration 120s
//!     cargo bench --bench peers -- --services 10000 --only slaprobe --binary OLD,NEW   # A/B
//!     cargo bench --bench peers -- --services 10000 --only slaprobe --worker-threads 2,1
//!
//! The peers are found on this machine and skipped (saying so) when missing: nginx, Prometheus
//! and the blackbox exporter from Debian's packages (`apt-get install nginx prometheus
//! prometheus-blackbox-exporter`), Vigil from crates.io (`cargo install vigil-server --version
//! 1.29.0 --no-default-features --root /opt/vigil`; its page assets are read from the crate's
//! source in cargo's registry, or `VIGIL_ASSETS`). Each prober runs alone in turn: started,
//! warmed up, measured over the same window, stopped.
//!
//! nginx listens on 127.0.0.2–127.0.0.9 (four ports each, so that a thousand new connections a
//! second do not run out of ephemeral ports) and logs `$msec $uri` for every request; service
//! `i` is the path `/s{i}`. A prober's **CPU per probe** is its processes' user + system time
//! over the window divided by the requests nginx logged in that window (what the target saw,
//! not what the prober says it did); **schedule** is |gap − interval| between consecutive
//! requests for one service, from the same log (p99 and max); **peak RSS** is `VmHWM`.
//!
//! The floors run in this process, one thread each, paced at the same rate in bursts on
//! slaprobe's ticks (`Ticks`, the rule the daemon uses): a TCP connect and close; and a fresh
//! connection, a minimal GET, the answer's first read and the close, all of a burst at once on
//! non-blocking sockets in one epoll set (the fewest system calls a fresh-connection HTTP probe
//! can make). Their CPU is the thread's own (`RUSAGE_THREAD`; on loopback the kernel's work for
//! the peer's side of each packet sent is done in the sender's context, for the floors as for
//! every prober). A naive client is shown too: the same GET with a blocking socket, one by one.
//! Nothing is asserted: the figures go in the README.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{cpu_seconds, free_port, status_kib, thread_cpu_ms, wait_for, wall_ms};

const ADDRESSES: u8 = 8;
const PORTS_PER_ADDRESS: usize = 4;

fn main() {
    let args = common::Args::read();
    let interval = humantime::parse_duration(&args.value("--interval").unwrap_or("10s".into()))
        .expect("--interval");
    let duration = humantime::parse_duration(&args.value("--duration").unwrap_or("60s".into()))
        .expect("--duration");
    let counts: Vec<usize> = args
        .value("--services")
        .unwrap_or_else(|| "1000".into())
        .split(',')
        .map(|n| n.parse().expect("--services N[,N…]"))
        .collect();
    let only = args.value("--only");
    let binaries: Vec<PathBuf> = match args.value("--binary") {
        Some(list) => list.split(',').map(PathBuf::from).collect(),
        None => vec![env!("CARGO_BIN_EXE_slaprobe").into()],
    };
    // `[daemon] worker_threads` for each slaprobe run (none: the default, one per core).
    let threads: Vec<Option<usize>> = match args.value("--worker-threads") {
        Some(list) => list
            .split(',')
            .map(|n| Some(n.parse().expect("--worker-threads N[,N…]")))
            .collect(),
        None => vec![None],
    };
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|list| list.split(',').any(|n| n == name))
    };

    let Some(nginx) = Nginx::start() else {
        println!("peers: skipped (nginx not found; apt-get install nginx)");
        return;
    };
    println!(
        "slaprobe beside its peers: {} endpoints of {} (keep-alive off) on 127.0.0.2-127.0.0.{}, \
         {} cores; HTTP every {}, {} measured after a warm-up",
        nginx.addrs.len(),
        nginx.version,
        1 + ADDRESSES,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        humantime::format_duration(interval),
        humantime::format_duration(duration),
    );
    for services in counts {
        let run = Run {
            services,
            interval,
            duration,
            nginx: &nginx,
        };
        let mut rows = Vec::new();
        if wanted("floor") {
            rows.extend(run.floors());
        }
        if wanted("slaprobe") {
            for binary in &binaries {
                for workers in &threads {
                    rows.push(run.slaprobe(binary, binaries.len() > 1, *workers));
                }
            }
        }
        if wanted("vigil") {
            rows.extend(run.vigil());
        }
        if wanted("blackbox") {
            rows.extend(run.blackbox());
        }
        print_table(&run, &rows);
    }
}

/// One prober's figures over the window.
struct Row {
    name: String,
    /// Requests the target logged in the window (for the TCP floor: connections made).
    probes: u64,
    cpu_ms: f64,
    /// Peak RSS of each process, KiB (none for the floor, which runs in this process).
    rss_kib: Vec<u64>,
    /// p99 and max of |gap − interval|, ms (none for the floor).
    schedule_ms: Option<(f64, f64)>,
}

impl Row {
    fn cpu_per_probe(&self) -> f64 {
        self.cpu_ms / self.probes.max(1) as f64
    }
}

fn print_table(run: &Run, rows: &[Row]) {
    let expected = run.services as f64 * run.duration.as_secs_f64() / run.interval.as_secs_f64();
    println!();
    println!(
        "{} services, {} probes due in the window ({:.0}/s):",
        run.services,
        expected as u64,
        expected / run.duration.as_secs_f64()
    );
    println!(
        "  {:<64} {:>9} {:>13} {:>10} {:>16} {:>22}",
        "prober", "probes", "CPU-ms/probe", "/slaprobe", "peak RSS MiB", "schedule p99/max ms"
    );
    let ours = rows
        .iter()
        .find(|r| r.name.starts_with("slaprobe"))
        .map(Row::cpu_per_probe);
    for row in rows {
        let ratio = ours.map_or("".to_string(), |o| {
            format!("{:.2}x", row.cpu_per_probe() / o)
        });
        let rss = if row.rss_kib.is_empty() {
            "-".to_string()
        } else {
            row.rss_kib
                .iter()
                .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let schedule = row
            .schedule_ms
            .map_or("-".to_string(), |(p99, max)| format!("{p99:.1} / {max:.1}"));
        println!(
            "  {:<64} {:>9} {:>13.3} {:>10} {:>16} {:>22}",
            row.name,
            row.probes,
            row.cpu_per_probe(),
            ratio,
            rss,
            schedule
        );
    }
}

/// The target: nginx in a temporary prefix, answering `200 ok` to everything.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    version: String,
}

impl Nginx {
    fn start() -> Option<Nginx> {
        let binary = find("nginx", &["/usr/sbin/nginx"])?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let mut addrs = Vec::new();
        for a in 0..ADDRESSES {
            let ip = Ipv4Addr::new(127, 0, 0, 2 + a);
            // Ports free on that address now; nginx binds them a moment later.
            let held: Vec<TcpListener> = (0..PORTS_PER_ADDRESS)
                .map(|_| TcpListener::bind((ip, 0)).unwrap())
                .collect();
            addrs.extend(held.iter().map(|l| l.local_addr().unwrap()));
        }
        let status = free_port();
        let d = dir.path().display();
        let listen: String = addrs
            .iter()
            .map(|a| format!("        listen {a};\n"))
            .collect();
        let conf = format!(
            "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 16384; }}\n\
             http {{\n    access_log off;\n    keepalive_timeout 0;\n    default_type text/plain;\n\
             \x20   client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
             \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n\
             \x20   scgi_temp_path {d}/tmp/scgi;\n    log_format probe '$msec $uri';\n\
             \x20   server {{\n{listen}        access_log {d}/access.log probe buffer=256k flush=1s;\n\
             \x20       location / {{ return 200 \"ok\\n\"; }}\n    }}\n\
             \x20   server {{\n        listen 127.0.0.1:{status};\n        location / {{ stub_status; }}\n    }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let version = Command::new(&binary)
            .arg("-v")
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .replace("nginx version: ", "")
            })
            .unwrap_or_else(|| "nginx".into());
        let child = Command::new(&binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for(&format!("http://127.0.0.1:{status}/"));
        Some(Nginx {
            child,
            dir,
            addrs,
            version,
        })
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// How long the log is now: a prober's requests are logged after this.
    fn mark(&self) -> u64 {
        std::fs::metadata(self.log()).map_or(0, |m| m.len())
    }

    /// The requests logged after `mark`: (time in ms since the epoch, service number; `None`
    /// for a path that is no service's). Waits for the log's buffer to be flushed first.
    fn requests_since(&self, mark: u64) -> Vec<(f64, Option<usize>)> {
        std::thread::sleep(Duration::from_millis(1_500));
        let mut text = String::new();
        let mut file = std::fs::File::open(self.log()).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(mark)).unwrap();
        file.read_to_string(&mut text).unwrap();
        text.lines()
            .filter_map(|line| {
                let (msec, uri) = line.split_once(' ')?;
                let at = msec.parse::<f64>().ok()? * 1000.0;
                Some((at, uri.strip_prefix("/s").and_then(|n| n.parse().ok())))
            })
            .collect()
    }

    fn url(&self, service: usize) -> String {
        format!(
            "http://{}/s{service}",
            self.addrs[service % self.addrs.len()]
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One prober's turn: how many services, how often, for how long.
struct Run<'a> {
    services: usize,
    interval: Duration,
    duration: Duration,
    nginx: &'a Nginx,
}

impl Run<'_> {
    fn rate(&self) -> f64 {
        self.services as f64 / self.interval.as_secs_f64()
    }

    /// The floors: a TCP connect and close, and a GET on a fresh connection made event-driven
    /// (both in bursts on slaprobe's ticks), and the GET made the naive way, with a blocking
    /// socket, one by one.
    fn floors(&self) -> Vec<Row> {
        let ticks =
            slaprobe::runtime::schedule::Ticks::new(tokio::time::Instant::now(), self.rate());
        let one_by_one = Duration::from_secs_f64(1.0 / self.rate());
        let burst = (self.rate() * ticks.length().as_secs_f64()).round();
        let bursts = format!(
            "bursts of {burst:.0} every {} ms",
            ticks.length().as_millis()
        );
        [
            (
                Floor::Tcp,
                ticks.length(),
                format!("floor: TCP connect and close; {bursts}"),
            ),
            (
                Floor::Events,
                ticks.length(),
                format!("floor: connect, GET, read, close; epoll, {bursts}"),
            ),
            (
                Floor::Blocking,
                one_by_one,
                "naive: the same, blocking, one by one".to_string(),
            ),
        ]
        .into_iter()
        .map(|(kind, every, name)| {
            let mark = self.nginx.mark();
            let started = wall_ms() as f64;
            let (made, cpu_ms) = floor(kind, &self.nginx.addrs, self.rate(), every, self.duration);
            let seen = self
                .nginx
                .requests_since(mark)
                .iter()
                .filter(|(at, _)| *at >= started)
                .count() as u64;
            if kind != Floor::Tcp && seen != made {
                println!("  ({name}: made {made} requests, nginx logged {seen})");
            }
            Row {
                name,
                probes: made,
                cpu_ms,
                rss_kib: Vec::new(),
                schedule_ms: None,
            }
        })
        .collect()
    }

    /// Measures `pids` over the window after `warm_up`, from `mark` in nginx's log.
    fn measure(&self, name: String, pids: &[u32], mark: u64, warm_up: Duration) -> Row {
        std::thread::sleep(warm_up);
        let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
        let (cpu0, from) = (cpu(pids), wall_ms() as f64);
        std::thread::sleep(self.duration);
        let (cpu1, to) = (cpu(pids), wall_ms() as f64);
        let rss_kib = pids.iter().map(|p| status_kib(*p, "VmHWM:")).collect();
        let requests = self.nginx.requests_since(mark);
        let probes = requests
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .count() as u64;
        Row {
            name,
            probes,
            cpu_ms: (cpu1 - cpu0) * 1000.0,
            rss_kib,
            schedule_ms: Some(schedule(&requests, self.interval, from..to)),
        }
    }

    /// slaprobe's `binary` (named by its path when `named`: an A/B run), with `workers` worker
    /// threads if given.
    fn slaprobe(&self, binary: &Path, named: bool, workers: Option<usize>) -> Row {
        let dir = tempfile::tempdir().unwrap();
        let listen = free_port();
        let workers_line = workers.map_or(String::new(), |n| format!("worker_threads = {n}\n"));
        let mut text = format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:{listen}\"\n{workers_line}\n\
             [defaults]\ninterval = \"{}\"\ntimeout = \"5s\"\n\n\
             [[contract]]\nid = \"bench\"\nclient = \"Bench\"\ntarget = \"99.9%\"\n\n",
            dir.path().join("slaprobe.db").display(),
            humantime::format_duration(self.interval)
        );
        for i in 0..self.services {
            text.push_str(&format!(
                "[[service]]\nid = \"s{i}\"\ncontract = \"bench\"\nhttp = \"{}\"\n",
                self.nginx.url(i)
            ));
        }
        let config = dir.path().join("probes.toml");
        std::fs::write(&config, text).unwrap();
        let mark = self.nginx.mark();
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(&config)
            .env("SLAPROBE_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for(&format!("http://127.0.0.1:{listen}/healthz"));
        let mut version = if named {
            format!("slaprobe {}", binary.display())
        } else {
            concat!("slaprobe ", env!("CARGO_PKG_VERSION"), " (this build)").to_string()
        };
        if let Some(n) = workers {
            version.push_str(&format!(
                ", {n} worker thread{}",
                if n == 1 { "" } else { "s" }
            ));
        }
        let row = self.measure(
            version,
            &[child.id()],
            mark,
            self.interval + Duration::from_secs(2),
        );
        common::process::stop(&mut child);
        row
    }

    fn vigil(&self) -> Option<Row> {
        let (Some(binary), Some(assets)) =
            (find("vigil", &["/opt/vigil/bin/vigil"]), vigil_assets())
        else {
            println!(
                "  (Vigil skipped: not found; cargo install vigil-server --version 1.29.0 \
                 --no-default-features --root /opt/vigil)"
            );
            return None;
        };
        // `poll_retry_wait = 0`: Vigil sleeps that long before every attempt, the first too (its
        // default of 500 ms holds each of its threads to two probes a second).
        let dir = tempfile::tempdir().unwrap();
        let listen = free_port();
        let site = "\"http://127.0.0.1/\"";
        let mut text = format!(
            "[server]\nlog_level = \"error\"\ninet = \"127.0.0.1:{listen}\"\nworkers = 1\n\
             mcp_server = false\nmanager_token = \"bench\"\nreporter_token = \"bench\"\n\n\
             [assets]\npath = \"{}\"\n\n\
             [branding]\npage_title = \"bench\"\npage_url = {site}\ncompany_name = \"bench\"\n\
             icon_color = \"#000000\"\nicon_url = {site}\nlogo_color = \"#000000\"\n\
             logo_url = {site}\nwebsite_url = {site}\nsupport_url = {site}\n\n\
             [metrics]\npoll_interval = {}\npoll_delay_dead = 5\npoll_retry_wait = 0\n\n\
             [probe]\n\n[[probe.service]]\nid = \"bench\"\nlabel = \"bench\"\n\n",
            assets.display(),
            self.interval.as_secs()
        );
        for i in 0..self.services {
            text.push_str(&format!(
                "[[probe.service.node]]\nid = \"n{i}\"\nlabel = \"n{i}\"\nmode = \"poll\"\n\
                 http_method = \"GET\"\nreplicas = [\"{}\"]\n\n",
                self.nginx.url(i)
            ));
        }
        let config = dir.path().join("config.cfg");
        std::fs::write(&config, text).unwrap();
        let version = Command::new(&binary)
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "vigil".into());
        let mark = self.nginx.mark();
        let mut child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for(&format!("http://127.0.0.1:{listen}/"));
        let row = self.measure(
            format!("{version} (Rust; drifts, stores nothing)"),
            &[child.id()],
            mark,
            self.interval + Duration::from_secs(2),
        );
        kill(&mut child);
        Some(row)
    }

    fn blackbox(&self) -> Option<Row> {
        let (Some(exporter), Some(prometheus)) = (
            find("prometheus-blackbox-exporter", &[]),
            find("prometheus", &[]),
        ) else {
            println!(
                "  (blackbox_exporter + Prometheus skipped: not found; apt-get install \
                 prometheus prometheus-blackbox-exporter)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (exporter_port, prometheus_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("blackbox.yml"),
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
             method: GET\n      preferred_ip_protocol: ip4\n",
        )
        .unwrap();
        let targets: String = (0..self.services)
            .map(|i| format!("          - {}\n", self.nginx.url(i)))
            .collect();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: {}s\n  scrape_timeout: 5s\n\
                 scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    \
                 params:\n      module: [http_2xx]\n    static_configs:\n      - targets:\n\
                 {targets}    relabel_configs:\n      - source_labels: [__address__]\n        \
                 target_label: __param_target\n      - source_labels: [__param_target]\n        \
                 target_label: instance\n      - target_label: __address__\n        \
                 replacement: 127.0.0.1:{exporter_port}\n",
                self.interval.as_secs()
            ),
        )
        .unwrap();
        let version = |binary: &Path| {
            Command::new(binary)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| {
                    let text = String::from_utf8_lossy(&o.stdout).to_string()
                        + &String::from_utf8_lossy(&o.stderr);
                    text.lines()
                        .next()
                        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                })
                .unwrap_or_default()
        };
        let name = format!("{} + {}", version(&exporter), version(&prometheus));
        let mark = self.nginx.mark();
        let mut children = vec![
            Command::new(&exporter)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("blackbox.yml").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
                .arg("--log.level=error")
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
            Command::new(&prometheus)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
                .arg("--log.level=error")
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        ];
        wait_for(&format!("http://127.0.0.1:{exporter_port}/"));
        wait_for(&format!("http://127.0.0.1:{prometheus_port}/-/ready"));
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let row = self.measure(
            name,
            &pids,
            mark,
            self.interval * 2 + Duration::from_secs(2),
        );
        for child in &mut children {
            kill(child);
        }
        Some(row)
    }
}

/// p99 and max of |gap − interval| (ms) between consecutive requests for one service, for the
/// gaps that end inside `window`.
fn schedule(
    requests: &[(f64, Option<usize>)],
    interval: Duration,
    window: std::ops::Range<f64>,
) -> (f64, f64) {
    let mut by_service: HashMap<usize, Vec<f64>> = HashMap::new();
    for (at, service) in requests {
        if let Some(s) = service {
            by_service.entry(*s).or_default().push(*at);
        }
    }
    let interval_ms = interval.as_secs_f64() * 1000.0;
    let mut off: Vec<f64> = Vec::new();
    for times in by_service.values_mut() {
        times.sort_by(f64::total_cmp);
        for pair in times.windows(2) {
            if window.contains(&pair[1]) {
                off.push((pair[1] - pair[0] - interval_ms).abs());
            }
        }
    }
    if off.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    off.sort_by(f64::total_cmp);
    let p99 = off[((off.len() - 1) as f64 * 0.99) as usize];
    (p99, off[off.len() - 1])
}

/// How a floor makes its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Floor {
    /// Connect (blocking) and close.
    Tcp,
    /// Connect, send a minimal GET, read the answer, close: all of a burst at once on
    /// non-blocking sockets in one epoll set, closed after the answer's first read (as a probe
    /// that checks no body does).
    Events,
    /// The same with a blocking socket, the whole answer read to the close.
    Blocking,
}

const FLOOR_REQUEST: &[u8] = b"GET /floor HTTP/1.1\r\nhost: floor\r\nconnection: close\r\n\r\n";

/// The floor: `rate` fresh connections a second to `addrs` in turn, made in bursts every
/// `every` (one by one when `every` is a probe's share of a second), for `duration`, from one
/// thread of this process. Returns the connections made and the thread's CPU time (ms).
fn floor(
    kind: Floor,
    addrs: &[SocketAddr],
    rate: f64,
    every: Duration,
    duration: Duration,
) -> (u64, f64) {
    let addrs = addrs.to_vec();
    std::thread::spawn(move || {
        // SAFETY: a new epoll set, closed below.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epoll >= 0, "epoll_create1");
        let cpu_before = thread_cpu_ms();
        let started = Instant::now();
        let mut next = started;
        let mut owed = 0.0;
        let mut made = 0u64;
        let mut answer = [0u8; 1024];
        while started.elapsed() < duration {
            owed += rate * every.as_secs_f64();
            let burst = owed as usize;
            owed -= burst as f64;
            let targets: Vec<SocketAddr> = (0..burst)
                .map(|i| addrs[(made as usize + i) % addrs.len()])
                .collect();
            match kind {
                Floor::Events => events_burst(epoll, &targets),
                Floor::Tcp | Floor::Blocking => {
                    for addr in &targets {
                        let mut stream = TcpStream::connect(addr).unwrap();
                        if kind == Floor::Blocking {
                            stream.write_all(FLOOR_REQUEST).unwrap();
                            while stream.read(&mut answer).unwrap_or(0) > 0 {}
                        }
                    }
                }
            }
            made += burst as u64;
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let cpu_ms = thread_cpu_ms() - cpu_before;
        // SAFETY: closes the set made above.
        unsafe { libc::close(epoll) };
        (made, cpu_ms)
    })
    .join()
    .unwrap()
}

/// One burst of the event-driven floor: a non-blocking socket per target, connected at once and
/// watched edge-triggered for both directions; the request goes out when the socket is writable,
/// and the socket is closed after the first read that returns the answer (or fails).
fn events_burst(epoll: i32, targets: &[SocketAddr]) {
    let mut sent: HashMap<i32, bool> = HashMap::new();
    for addr in targets {
        let SocketAddr::V4(v4) = addr else {
            panic!("the floor connects to IPv4 loopback");
        };
        // SAFETY: plain socket calls on a socket this function owns; the address struct is
        // fully initialised.
        unsafe {
            let fd = libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            assert!(fd >= 0, "socket");
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            libc::connect(
                fd,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32,
                u64: fd as u64,
            };
            libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event);
            sent.insert(fd, false);
        }
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut answer = [0u8; 1024];
    while !sent.is_empty() {
        // SAFETY: `events` has room for 64 entries.
        let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 64, 5_000) };
        assert!(ready > 0, "the floor's answers stopped coming");
        for event in &events[..ready as usize] {
            let fd = event.u64 as i32;
            let flags = event.events;
            let Some(was_sent) = sent.get_mut(&fd) else {
                continue;
            };
            // SAFETY: `fd` is one of ours, open until closed here (once).
            unsafe {
                if !*was_sent && flags & libc::EPOLLOUT as u32 != 0 {
                    libc::write(fd, FLOOR_REQUEST.as_ptr().cast(), FLOOR_REQUEST.len());
                    *was_sent = true;
                }
                if *was_sent
                    && flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
                {
                    let n = libc::read(fd, answer.as_mut_ptr().cast(), answer.len());
                    let again = n < 0
                        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
                    if !again {
                        libc::close(fd);
                        sent.remove(&fd);
                    }
                }
            }
        }
    }
}

/// `name` on the `PATH`, or the first of `also` that exists.
fn find(name: &str, also: &[&str]) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .chain(also.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Vigil's page assets: `VIGIL_ASSETS`, or the crate's source in cargo's registry.
fn vigil_assets() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VIGIL_ASSETS") {
        return Some(dir.into());
    }
    let home = PathBuf::from(std::env::var_os("CARGO_HOME").unwrap_or_else(|| {
        Path::new(&std::env::var_os("HOME").unwrap_or_default())
            .join(".cargo")
            .into()
    }));
    let registry = std::fs::read_dir(home.join("registry/src")).ok()?;
    registry
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|krate| {
            krate
                .file_name()
                .to_string_lossy()
                .starts_with("vigil-server-")
        })
        .map(|krate| krate.path().join("res/assets"))
        .find(|p| p.is_dir())
}

/// Stops a peer (SIGTERM; it need not exit cleanly).
fn kill(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
