//! TCP probes: connect, then optionally send a line and wait for an expected banner.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Failure, Reason, TcpSpec, truncate};

/// How much of a banner is read while looking for `expect`.
const MAX_BANNER_BYTES: usize = 16 * 1024;

/// Connects to the target (the caller bounds the time) and checks the banner exchange.
pub async fn probe(spec: &TcpSpec) -> Result<(), Failure> {
    let addrs: Vec<_> = tokio::net::lookup_host((spec.host.as_str(), spec.port))
        .await
        .map_err(|e| Failure::new(Reason::Dns, format!("cannot resolve `{}`: {e}", spec.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::new(
            Reason::Dns,
            format!("`{}` has no addresses", spec.host),
        ));
    }
    let mut last_error = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(format!("connect to {addr}: {e}")),
        }
    }
    let Some(mut stream) = stream else {
        return Err(Failure::new(
            Reason::Connect,
            last_error.unwrap_or_else(|| "no address could be reached".to_string()),
        ));
    };
    if let Some(send) = &spec.send {
        stream
            .write_all(send.as_bytes())
            .await
            .map_err(|e| Failure::new(Reason::Connect, format!("send failed: {e}")))?;
    }
    let Some(expect) = &spec.expect else {
        return Ok(());
    };
    let mut received = Vec::new();
    let mut buffer = [0u8; 2048];
    loop {
        if String::from_utf8_lossy(&received).contains(expect.as_str()) {
            return Ok(());
        }
        if received.len() >= MAX_BANNER_BYTES {
            break;
        }
        match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) => {
                return Err(Failure::new(
                    Reason::Connect,
                    format!(
                        "read failed while waiting for `{}`: {e}",
                        truncate(expect, 80)
                    ),
                ));
            }
        }
    }
    Err(Failure::new(
        Reason::Body,
        format!(
            "expected `{}`, received `{}`",
            truncate(expect, 80),
            truncate(String::from_utf8_lossy(&received).trim(), 120)
        ),
    ))
}
