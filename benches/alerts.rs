//! Benchmark: alert latency, from the failing probe that confirms an incident to the DOWN
//! message accepted by a local SMTP server (or received by a local webhook), with 1,000
//! services running.
//!
//!     cargo bench --bench alerts
//!     cargo bench --bench alerts -- --services 1000 --outages 40 --group-window 0s
//!     cargo bench --bench alerts -- --channel webhook               # one failing at a time
//!     cargo bench --bench alerts -- --channel webhook --together    # all 1,000 fail at once
//!
//! In this process: an HTTP target on 127.0.0.2 that answers 200 "ok", or 503 for the services
//! the benchmark has switched to failing (it notes when it served each failure), and an SMTP
//! server on 127.0.0.1 that notes when each message's DATA ended (accepted). The daemon is the
//! real `slaprobe run` in a child process (interval 10 s, retry 1 s, confirm_down 2): the
//! second failure served to a service is the probe that confirms its incident. Outages are
//! started one at a time, a second and a half apart. Nothing is asserted: the figures go in the
//! README.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
struct Shared {
    failing: HashSet<usize>,
    /// Per failing service: when each 503 was served.
    failures_served: HashMap<usize, Vec<Instant>>,
    /// Subject, body lines, and when the SMTP server accepted the message.
    accepted: Vec<(String, HashSet<String>, Instant)>,
    /// Per message: from the SMTP connection's accept to the end of its data.
    conversations: Vec<Duration>,
    /// Webhook posts: the event, the services named, when the body was read.
    hooks: Vec<(String, HashSet<String>, Instant)>,
}

fn main() {
    let args = common::Args::read();
    let value = |name: &str| args.value(name);
    let services: usize = value("--services").map_or(1_000, |v| v.parse().unwrap());
    let outages: usize = value("--outages").map_or(40, |v| v.parse().unwrap());
    let group_window = value("--group-window").unwrap_or_else(|| "0s".to_string());
    let webhook = value("--channel").is_some_and(|c| c == "webhook");
    let together = args.flag("--together");
    let outages = if together { services } else { outages };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (http, smtp, hook) = rt.block_on(async {
        let http = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), 0))
            .await
            .unwrap();
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (http, smtp, hook)
    });
    let (http_addr, smtp_addr) = (http.local_addr().unwrap(), smtp.local_addr().unwrap());
    let hook_addr = hook.local_addr().unwrap();
    rt.spawn(serve_http(http, shared.clone()));
    rt.spawn(serve_smtp(smtp, shared.clone()));
    rt.spawn(serve_webhook(hook, shared.clone()));
    let channel = if webhook {
        format!(
            "webhook = [ {{ url = \"http://{hook_addr}/hook\", secret_env = \"BENCH_HOOK_SECRET\" }} ]\n"
        )
    } else {
        String::new()
    };

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probes.toml");
    let mut text = format!(
        "[daemon]\ndatabase = \"slaprobe.db\"\nmax_in_flight = 1024\n\n\
         [smtp]\nurl = \"smtp://{smtp_addr}\"\nfrom = \"bench <bench@provider.example>\"\n\n\
         [[route]]\nid = \"oncall\"\nemail = [\"oncall@provider.example\"]\ngroup_window = \"{group_window}\"\n{channel}\n\
         [defaults]\ninterval = \"10s\"\ntimeout = \"2s\"\nretry_interval = \"1s\"\nconfirm_down = 2\n\n\
         [[contract]]\nid = \"bench\"\nclient = \"Bench\"\ntarget = \"99.9%\"\nalert = \"oncall\"\n\n"
    );
    for i in 0..services {
        text.push_str(&format!(
            "[[service]]\nid = \"svc-{i}\"\ncontract = \"bench\"\nhttp = \"http://{http_addr}/{i}\"\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slaprobe"))
        .args(["run", "--config"])
        .arg(&config)
        .env("SLAPROBE_LOG", "warn")
        .env("BENCH_HOOK_SECRET", "bench-secret")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    println!(
        "slaprobe alert benchmark: {services} HTTP services @10s, {outages} outages {}, \
         group_window = {group_window}, measured at {}",
        if together {
            "together"
        } else {
            "one at a time"
        },
        if webhook {
            "the webhook"
        } else {
            "the SMTP server"
        }
    );
    // Warm-up: every service has probed at least once.
    std::thread::sleep(Duration::from_secs(12));

    let victims: Vec<usize> = if together {
        (0..services).collect()
    } else {
        (0..outages).map(|k| (k * 997 + 13) % services).collect()
    };
    if together {
        shared
            .lock()
            .unwrap()
            .failing
            .extend(victims.iter().copied());
    } else {
        for &v in &victims {
            shared.lock().unwrap().failing.insert(v);
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    // Every outage confirmed (within an interval plus the retry) and mailed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let latencies = loop {
        let s = shared.lock().unwrap();
        let got: Vec<f64> = victims
            .iter()
            .filter_map(|v| {
                let confirmed = *s.failures_served.get(v)?.get(1)?;
                // The DOWN message that names it (alone, or in a group).
                let name = format!("svc-{v}");
                let at = if webhook {
                    s.hooks
                        .iter()
                        .find(|(event, names, _)| event == "down" && names.contains(&name))?
                        .2
                } else {
                    s.accepted
                        .iter()
                        .find(|(subject, lines, _)| {
                            subject.starts_with("[slaprobe] DOWN:") && lines.contains(&name)
                        })?
                        .2
                };
                Some(at.saturating_duration_since(confirmed).as_secs_f64() * 1000.0)
            })
            .collect();
        if got.len() == victims.len() || Instant::now() > deadline {
            break got;
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let pct =
        |p: f64| sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1];
    let mut conversations: Vec<f64> = shared
        .lock()
        .unwrap()
        .conversations
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    conversations.sort_by(f64::total_cmp);
    let down_messages = if webhook {
        let s = shared.lock().unwrap();
        s.hooks.iter().filter(|(e, _, _)| e == "down").count()
    } else {
        let s = shared.lock().unwrap();
        s.accepted
            .iter()
            .filter(|(s, _, _)| s.starts_with("[slaprobe] DOWN:"))
            .count()
    };
    println!(
        "confirming probe -> DOWN {}: {} of {} outages measured; \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} DOWN messages in all)",
        if webhook {
            "received by the webhook"
        } else {
            "accepted by SMTP"
        },
        sorted.len(),
        victims.len(),
        pct(0.50),
        pct(0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
        down_messages
    );
    if !conversations.is_empty() && !webhook {
        println!(
            "of which the SMTP conversation (connection accepted -> data ended): p50 {:.1} ms",
            conversations[conversations.len() / 2]
        );
    }
}

async fn serve_http(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut seen = 0;
            loop {
                match stream.read(&mut buf[seen..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen += n,
                }
                if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") || seen == buf.len() {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..seen]);
            let id: Option<usize> = head
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.trim_start_matches('/').parse().ok());
            let failing = id.is_some_and(|id| shared.lock().unwrap().failing.contains(&id));
            let response: &[u8] = if failing {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            };
            let _ = stream.write_all(response).await;
            if failing && let Some(id) = id {
                shared
                    .lock()
                    .unwrap()
                    .failures_served
                    .entry(id)
                    .or_default()
                    .push(Instant::now());
            }
        });
    }
}

/// A webhook receiver: reads each POST's body (Content-Length), notes its event and the
/// services it names, answers 200 and closes.
async fn serve_webhook(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body_start = loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < body_start + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let received = Instant::now();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let Ok(body) =
                serde_json::from_slice::<serde_json::Value>(&buf[body_start..body_start + length])
            else {
                return;
            };
            let event = body["event"].as_str().unwrap_or_default().to_string();
            let names = body["services"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|s| s["service"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            shared.lock().unwrap().hooks.push((event, names, received));
        });
    }
}

async fn serve_smtp(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let connected = Instant::now();
        let shared = shared.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let _ = write.write_all(b"220 bench ESMTP\r\n").await;
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let upper = line.trim_end().to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    b"250-bench\r\n250 8BITMIME\r\n"
                } else if upper == "DATA" {
                    let _ = write.write_all(b"354 go ahead\r\n").await;
                    let mut subject = String::new();
                    let mut body = HashSet::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        if let Some(s) = line.strip_prefix("Subject: ") {
                            subject = s.trim_end().to_string();
                        }
                        body.insert(line.trim_end().to_string());
                    }
                    shared
                        .lock()
                        .unwrap()
                        .accepted
                        .push((subject, body, Instant::now()));
                    shared
                        .lock()
                        .unwrap()
                        .conversations
                        .push(connected.elapsed());
                    b"250 queued\r\n"
                } else if upper == "QUIT" {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 ok\r\n"
                };
                let _ = write.write_all(reply).await;
            }
        });
    }
}
