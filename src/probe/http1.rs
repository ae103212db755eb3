//! One HTTP/1.1 exchange on a fresh connection: the request written at once, the response head
//! parsed with httparse (the parser hyper uses), and as much of the body as the probe asks for,
//! read by its framing (RFC 9112 §6.3: none, chunked, a length, or up to the close).
//!
//! A probe sends one request and closes the connection after the answer: hyper's connection
//! machinery (a dispatcher, its channels, its buffers) cost about a seventh of the daemon's CPU
//! for that, and none of it is needed.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Failure, Reason, truncate};

/// A response head (informational heads included) longer than this is refused.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// As is one with more headers than this.
const MAX_HEADERS: usize = 100;
/// The buffer's first size: a typical head in one read, and small enough for the allocator's
/// per-thread cache (the buffer grows when a head or a body needs more).
const FIRST_READ_BYTES: usize = 1024;

/// What the probe wants of the response.
pub(super) struct Wanted<'a> {
    /// Keep the headers of these names (lowercase).
    pub keep: Vec<&'a str>,
    /// Read the body, up to this many bytes; `None`: do not read it at all.
    pub body_up_to: Option<usize>,
    /// The request was a `HEAD`: the response has no body whatever its headers say.
    pub head_request: bool,
}

/// The final response (informational `1xx` heads are skipped).
#[derive(Debug)]
pub(super) struct Response {
    pub status: u16,
    /// The headers kept, names in lowercase, in the order received.
    kept: Vec<(String, Vec<u8>)>,
    /// The body's first bytes, up to the cap asked for (empty when it was not asked for).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a kept header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.kept
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Writes `request` (a complete head, `Connection: close`) and reads the answer. A connection
/// that fails or closes before the head is complete is `connect`; a head that is not HTTP is
/// `header`; a body cut short or badly framed is `body`.
pub(super) async fn exchange<T>(
    io: &mut T,
    request: &[u8],
    wanted: Wanted<'_>,
) -> Result<Response, Failure>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(request)
        .await
        .map_err(|e| Failure::new(Reason::Connect, format!("sending the request: {e}")))?;
    io.flush()
        .await
        .map_err(|e| Failure::new(Reason::Connect, format!("sending the request: {e}")))?;

    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_READ_BYTES);
    let (status, kept, framing) = loop {
        if !buf.is_empty() {
            match parse_head(&buf, &wanted)? {
                Head::Partial if buf.len() >= MAX_HEAD_BYTES => {
                    return Err(invalid_head(format!(
                        "too large (over {} KiB)",
                        MAX_HEAD_BYTES / 1024
                    )));
                }
                Head::Partial => {}
                Head::Informational(len) => {
                    buf.drain(..len);
                    continue;
                }
                Head::Final {
                    len,
                    status,
                    kept,
                    framing,
                } => {
                    buf.drain(..len);
                    break (status, kept, framing);
                }
            }
        }
        if read_more(io, &mut buf)
            .await
            .map_err(|e| Failure::new(Reason::Connect, format!("reading the response: {e}")))?
            == 0
        {
            let what = if buf.is_empty() {
                "the connection closed before a response"
            } else {
                "the connection closed before the response head was complete"
            };
            return Err(Failure::new(Reason::Connect, what));
        }
    };

    let body = match wanted.body_up_to {
        Some(cap) => read_body(io, buf, framing, cap).await?,
        None => Vec::new(),
    };
    Ok(Response { status, kept, body })
}

enum Head {
    Partial,
    /// A `1xx` head of this many bytes, to skip.
    Informational(usize),
    Final {
        len: usize,
        status: u16,
        kept: Vec<(String, Vec<u8>)>,
        framing: Framing,
    },
}

fn invalid_head(detail: impl std::fmt::Display) -> Failure {
    Failure::new(Reason::Header, format!("invalid response head: {detail}"))
}

fn parse_head(buf: &[u8], wanted: &Wanted<'_>) -> Result<Head, Failure> {
    // Left uninitialised: the parser writes the headers it finds (3 KiB fewer bytes to clear
    // on every probe).
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Head::Partial),
        Err(e) => {
            let start = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
            return Err(invalid_head(format!(
                "{e} (it began `{}`)",
                truncate(start.trim(), 40)
            )));
        }
    };
    let status = response.code.unwrap_or(0);
    // 101 ends HTTP on the connection: it is final (and fails the status check unless asked).
    if (100..200).contains(&status) && status != 101 {
        return Ok(Head::Informational(len));
    }
    let mut kept = Vec::new();
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked, or the body runs to the close.
            let last = header
                .value
                .split(|b| *b == b',')
                .map(|c| c.trim_ascii())
                .rfind(|c| !c.is_empty());
            chunked = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            for value in header.value.split(|b| *b == b',') {
                let parsed = std::str::from_utf8(value.trim_ascii())
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok());
                match (parsed, length) {
                    (Some(n), None) => length = Some(n),
                    (Some(n), Some(before)) if n == before => {}
                    _ => {
                        return Err(invalid_head(format!(
                            "content-length `{}`",
                            truncate(&String::from_utf8_lossy(header.value), 40)
                        )));
                    }
                }
            }
        }
        if let Some(name) = wanted
            .keep
            .iter()
            .find(|k| header.name.eq_ignore_ascii_case(k))
        {
            kept.push((name.to_string(), header.value.to_vec()));
        }
    }
    let framing = if wanted.head_request || status == 204 || status == 304 {
        Framing::None
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    Ok(Head::Final {
        len,
        status,
        kept,
        framing,
    })
}

/// Reads more into `buf`; `Ok(0)` at the end of the stream. A TLS peer that closes without
/// `close_notify` ends the stream too (many servers do, and the body is judged as received).
async fn read_more<T: AsyncRead + Unpin>(io: &mut T, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < FIRST_READ_BYTES / 4 {
        buf.reserve(FIRST_READ_BYTES);
    }
    match io.read_buf(buf).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

fn cut_short(detail: impl std::fmt::Display) -> Failure {
    Failure::new(Reason::Body, format!("reading the body: {detail}"))
}

/// The body's first `cap` bytes, from what is already in `pending` and then the connection.
async fn read_body<T: AsyncRead + Unpin>(
    io: &mut T,
    mut pending: Vec<u8>,
    framing: Framing,
    cap: usize,
) -> Result<Vec<u8>, Failure> {
    let more = |e: std::io::Error| cut_short(e);
    match framing {
        Framing::None => Ok(Vec::new()),
        Framing::Length(length) => {
            let want = usize::try_from(length).unwrap_or(usize::MAX).min(cap);
            while pending.len() < want {
                if read_more(io, &mut pending).await.map_err(more)? == 0 {
                    return Err(cut_short(format!(
                        "the connection closed after {} of {length} bytes",
                        pending.len()
                    )));
                }
            }
            pending.truncate(want);
            Ok(pending)
        }
        Framing::UntilClose => {
            while pending.len() < cap {
                if read_more(io, &mut pending).await.map_err(more)? == 0 {
                    break;
                }
            }
            pending.truncate(cap);
            Ok(pending)
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let (skip, size) = loop {
                    match httparse::parse_chunk_size(&pending) {
                        Ok(httparse::Status::Complete(found)) => break found,
                        Ok(httparse::Status::Partial) if pending.len() < MAX_HEAD_BYTES => {}
                        _ => return Err(cut_short("invalid chunk size line")),
                    }
                    if read_more(io, &mut pending).await.map_err(more)? == 0 {
                        return Err(cut_short("the connection closed inside a chunked body"));
                    }
                };
                pending.drain(..skip);
                if size == 0 {
                    // The last chunk; trailers are not read.
                    return Ok(body);
                }
                let mut left = size;
                while left > 0 {
                    if pending.is_empty() && read_more(io, &mut pending).await.map_err(more)? == 0 {
                        return Err(cut_short("the connection closed inside a chunk"));
                    }
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(pending.len());
                    let room = cap - body.len();
                    body.extend_from_slice(&pending[..take.min(room)]);
                    pending.drain(..take);
                    left -= take as u64;
                    if body.len() >= cap {
                        return Ok(body);
                    }
                }
                while pending.len() < 2 {
                    if read_more(io, &mut pending).await.map_err(more)? == 0 {
                        return Err(cut_short("the connection closed inside a chunked body"));
                    }
                }
                if &pending[..2] != b"\r\n" {
                    return Err(cut_short("a chunk does not end where its size says"));
                }
                pending.drain(..2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 sends `answer` (in writes of `piece` bytes, to exercise partial
    /// reads) to one exchange; returns the exchange's result.
    async fn answer(answer: &[u8], piece: usize, wanted: Wanted<'_>) -> Result<Response, Failure> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = answer.to_vec();
        let serving = tokio::spawn(async move {
            let (mut server, _) = listener.accept().await.unwrap();
            server.set_nodelay(true).unwrap();
            let mut request = [0u8; 64];
            let _ = server.read(&mut request).await;
            for part in answer.chunks(piece.max(1)) {
                if server.write_all(part).await.is_err() {
                    return;
                }
                if piece < answer.len() {
                    tokio::time::sleep(std::time::Duration::from_micros(50)).await;
                }
            }
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let result = exchange(&mut client, b"GET / HTTP/1.1\r\n\r\n", wanted).await;
        drop(client);
        let _ = serving.await;
        result
    }

    fn body_up_to(cap: usize) -> Wanted<'static> {
        Wanted {
            keep: vec!["location", "x-version"],
            body_up_to: Some(cap),
            head_request: false,
        }
    }

    #[tokio::test]
    async fn bodies_by_each_framing_in_any_pieces() {
        // (answer, cap, expected body) — each also served one byte at a time.
        let cases: [(&[u8], usize, &[u8]); 9] = [
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", 100, b"hello"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 3, b"hel"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello", 100, b"hello"),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nRust\r\n6;x=y\r\n probe\r\n0\r\n\r\n",
                100,
                b"Rust probe",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nRust\r\n0\r\n\r\n",
                2,
                b"Ru",
            ),
            // Transfer-Encoding wins over Content-Length.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                100,
                b"ok",
            ),
            // No length: up to the close.
            (b"HTTP/1.1 200 OK\r\n\r\nto the end", 100, b"to the end"),
            (b"HTTP/1.0 200 OK\r\n\r\nto the end", 5, b"to th"),
            // No body for a 204, whatever the headers say.
            (b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n", 100, b""),
        ];
        for (text, cap, expected) in cases {
            for piece in [usize::MAX, 1, 7] {
                let response = answer(text, piece, body_up_to(cap)).await.unwrap();
                assert_eq!(
                    response.body,
                    expected,
                    "{} in pieces of {piece}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[tokio::test]
    async fn informational_heads_are_skipped_and_headers_kept_on_request() {
        let text = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\
                     HTTP/1.1 302 Found\r\nLocation: /next\r\nX-Version: 7\r\nServer: x\r\ncontent-length: 0\r\n\r\n";
        for piece in [usize::MAX, 1] {
            let response = answer(text, piece, body_up_to(10)).await.unwrap();
            assert_eq!(response.status, 302);
            assert_eq!(response.header("location"), Some(&b"/next"[..]));
            assert_eq!(response.header("X-Version"), Some(&b"7"[..]));
            assert_eq!(response.header("server"), None, "not asked to keep");
            assert_eq!(response.header("link"), None, "the 103's header");
        }
    }

    #[tokio::test]
    async fn a_head_request_reads_no_body_and_no_body_is_read_unless_asked() {
        let text = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
        let head = Wanted {
            keep: Vec::new(),
            body_up_to: Some(100),
            head_request: true,
        };
        assert!(
            answer(text, usize::MAX, head)
                .await
                .unwrap()
                .body
                .is_empty()
        );
        let not_asked = Wanted {
            keep: Vec::new(),
            body_up_to: None,
            head_request: false,
        };
        let response = answer(text, usize::MAX, not_asked).await.unwrap();
        assert_eq!(response.status, 200);
        assert!(response.body.is_empty());
    }

    #[tokio::test]
    async fn each_failure_is_classified() {
        // (answer, reason, words the detail holds)
        let cases: [(&[u8], Reason, &str); 8] = [
            (b"", Reason::Connect, "closed before a response"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-le",
                Reason::Connect,
                "head was complete",
            ),
            (
                b"SSH-2.0-OpenSSH_9.6\r\n",
                Reason::Header,
                "invalid response head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: five\r\n\r\n",
                Reason::Header,
                "content-length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello",
                Reason::Header,
                "content-length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello",
                Reason::Body,
                "after 5 of 10 bytes",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                Reason::Body,
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nRust!!\r\n0\r\n\r\n",
                Reason::Body,
                "does not end",
            ),
        ];
        for (text, reason, words) in cases {
            let failure = answer(text, usize::MAX, body_up_to(100)).await.unwrap_err();
            assert_eq!(
                failure.reason,
                reason,
                "{}: {failure}",
                String::from_utf8_lossy(text)
            );
            assert!(failure.detail.contains(words), "{failure}");
        }
        // A head that never ends, and one with too many headers.
        let mut endless = b"HTTP/1.1 200 OK\r\nx-padding: ".to_vec();
        endless.extend(b"0123456789".repeat(7_000));
        let failure = answer(&endless, usize::MAX, body_up_to(100))
            .await
            .unwrap_err();
        assert_eq!(failure.reason, Reason::Header, "{failure}");
        assert!(
            failure.detail.contains("too large (over 64 KiB)"),
            "{failure}"
        );
        let mut crowded = b"HTTP/1.1 200 OK\r\n".to_vec();
        crowded.extend(b"x-a: b\r\n".repeat(MAX_HEADERS + 1));
        crowded.extend(b"\r\n");
        let failure = answer(&crowded, usize::MAX, body_up_to(100))
            .await
            .unwrap_err();
        assert_eq!(failure.reason, Reason::Header, "{failure}");
    }
}
