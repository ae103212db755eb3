//! TCP probes: connect, then optionally send a line and wait for an expected banner; and the
//! fresh TCP connection that every HTTP probe opens too.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Failure, Reason, TcpSpec, truncate};

/// How much of a banner is read while looking for `expect`.
const MAX_BANNER_BYTES: usize = 16 * 1024;

/// Connects to the target (the caller bounds the time) and checks the banner exchange.
pub async fn probe(spec: &TcpSpec) -> Result<(), Failure> {
    let mut stream = connect(&spec.host, spec.port).await?;
    if let Some(send) = &spec.send {
        stream
            .write_all(send.as_bytes())
            .await
            .map_err(|e| Failure::new(Reason::Connect, format!("send failed: {e}")))?;
    }
    let Some(expect) = &spec.expect else {
        return Ok(());
    };
    let mut received = Vec::with_capacity(1024);
    loop {
        if String::from_utf8_lossy(&received).contains(expect.as_str()) {
            return Ok(());
        }
        if received.len() >= MAX_BANNER_BYTES {
            break;
        }
        received.reserve(1024);
        match stream.read_buf(&mut received).await {
            Ok(0) => break,
            Ok(_) => {}
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

/// A fresh connection to `host` (a name, or an IP address without brackets) on `port`: the
/// system resolver for a name (an address is used as it is, without a lookup), then each address
/// in turn. A name that does not resolve fails as `dns`, an unreachable address as `connect`.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::new(Reason::Dns, format!("cannot resolve `{host}`: {e}")))?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(format!("connect to {addr}: {e}")),
        }
    }
    Err(match last_error {
        Some(error) => Failure::new(Reason::Connect, error),
        None => Failure::new(Reason::Dns, format!("`{host}` has no addresses")),
    })
}
