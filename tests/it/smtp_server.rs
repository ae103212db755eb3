//! A small SMTP server on 127.0.0.1:0 for the tests: it speaks enough ESMTP for lettre
//! (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps what it accepted, and can
//! be switched to refuse service (421) or reject mail (550).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    Accept,
    /// 421 at the greeting: a transient failure (the server is "down").
    Unavailable,
    /// 550 to every RCPT: a permanent rejection.
    Reject,
    /// Accepts the connection and never says a word (a hung server).
    Stall,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// `user:password` if the client authenticated.
    pub auth: Option<String>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("an RFC 5322 message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

struct State {
    mode: SmtpMode,
    received: Vec<Received>,
    /// Connections that were turned away or had mail rejected.
    refused: u64,
}

pub struct TestSmtp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestSmtp {
    pub async fn start() -> TestSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            mode: SmtpMode::Accept,
            received: Vec::new(),
            refused: 0,
        }));
        let server = tokio::spawn(serve(listener, state.clone()));
        TestSmtp {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn set(&self, mode: SmtpMode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn refused(&self) -> u64 {
        self.state.lock().unwrap().refused
    }

    /// Waits until at least `n` messages arrived (or panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        crate::support::eventually(limit, &format!("{n} messages at the SMTP server"), || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = session(stream, state).await;
        });
    }
}

async fn session(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mode = state.lock().unwrap().mode;
    if mode == SmtpMode::Stall {
        state.lock().unwrap().refused += 1;
        tokio::time::sleep(Duration::from_secs(120)).await;
        return Ok(());
    }
    if mode == SmtpMode::Unavailable {
        state.lock().unwrap().refused += 1;
        write
            .write_all(b"421 test.local Service not available, try later\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = command.split_whitespace().nth(2).unwrap_or_default();
            auth = decode_plain(encoded);
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command);
            to.clear();
            "250 2.1.0 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            if state.lock().unwrap().mode == SmtpMode::Reject {
                state.lock().unwrap().refused += 1;
                "550 5.1.1 Mailbox unavailable\r\n".into()
            } else {
                to.push(address(&command));
                "250 2.1.5 OK\r\n".into()
            }
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.extend_from_slice(unstuffed.as_bytes());
            }
            state.lock().unwrap().received.push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
                auth: auth.clone(),
            });
            "250 2.0.0 OK queued\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK\r\n".into()
        } else {
            "502 5.5.2 Command not implemented\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command[start..end].to_string()
}

/// `\0user\0password` in base64 → `user:password`.
fn decode_plain(encoded: &str) -> Option<String> {
    let bytes = base64_decode(encoded)?;
    let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
    match parts.as_slice() {
        [_, user, password] => Some(format!(
            "{}:{}",
            String::from_utf8_lossy(user),
            String::from_utf8_lossy(password)
        )),
        _ => None,
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}
