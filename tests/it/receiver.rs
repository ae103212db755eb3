//! A webhook receiver on 127.0.0.1:0 that records every request and answers as scripted: the
//! stand-in for a webhook consumer, Slack's incoming webhooks and the Telegram Bot API.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    /// 429 with `Retry-After: N` (seconds).
    TooMany(u64),
}

/// One request as it arrived, with what it was answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub answer: Answer,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

#[derive(Default)]
struct State {
    /// Answers for the next requests, then `usual`.
    script: Mutex<VecDeque<Answer>>,
    usual: Mutex<Option<Answer>>,
    requests: Mutex<Vec<Request>>,
}

pub struct TestReceiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestReceiver {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with `answers`, in order, then as usual.
    pub fn script(&self, answers: &[Answer]) {
        self.state.script.lock().unwrap().extend(answers);
    }

    /// How requests are answered once the script is used up (default: 200).
    pub fn usually(&self, answer: Answer) {
        *self.state.usual.lock().unwrap() = Some(answer);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests answered 200 (delivered).
    pub fn delivered(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.answer == Answer::Ok)
            .collect()
    }

    /// Waits until `n` requests were delivered to paths starting with `prefix`.
    pub async fn wait_for(&self, prefix: &str, n: usize, limit: Duration) -> Vec<Request> {
        let deadline = Instant::now() + limit;
        loop {
            let got: Vec<Request> = self
                .delivered()
                .into_iter()
                .filter(|r| r.path.starts_with(prefix))
                .collect();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} of {n} requests to {prefix} within {limit:?}; all: {:?}",
                    got.len(),
                    self.requests()
                        .iter()
                        .map(|r| (&r.path, r.answer))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or(*state.usual.lock().unwrap())
        .unwrap_or(Answer::Ok);
    state.requests.lock().unwrap().push(Request {
        at: Instant::now(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        answer,
    });
    match answer {
        Answer::Ok => (StatusCode::OK, "{\"ok\":true}").into_response(),
        Answer::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            "{\"ok\":false,\"description\":\"scripted failure\"}",
        )
            .into_response(),
        Answer::TooMany(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            "{\"ok\":false}",
        )
            .into_response(),
    }
}
