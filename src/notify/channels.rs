//! The HTTP channels (DESIGN.md §6.2): webhooks (JSON signed with HMAC-SHA256 of the body in
//! `X-Slaprobe-Signature: sha256=HEX`), Slack incoming webhooks and the Telegram Bot API, sent
//! with reqwest. Secrets (the webhook key, the Slack URL, the bot token) are read from the
//! environment when a message is sent and never reach a log line, an error or the database.
//!
//! An answer is classified as e-mail's are: 2xx delivered; 408, 429 and 5xx (and no answer at
//! all) retried, after `Retry-After` when the receiver gives one; any other 4xx a permanent
//! failure.

use std::time::Duration;

use ring::hmac;

use super::smtp::SendError;
use crate::config::Channel;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER_MS: i64 = 3_600_000;

/// The header carrying a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Slaprobe-Signature";

/// Sends channel messages.
pub struct HttpChannels {
    client: reqwest::Client,
}

impl HttpChannels {
    pub fn new() -> Result<HttpChannels, reqwest::Error> {
        crate::probe::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect would carry the body (and its signature) somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .user_agent(concat!("slaprobe/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpChannels { client })
    }

    /// Sends `body` to the channel stored as `destination` (see `destination`); `now_ms` reads
    /// a `Retry-After` given as a date.
    pub async fn send(&self, destination: &str, body: &[u8], now_ms: i64) -> Result<(), SendError> {
        let channel: Channel = serde_json::from_str(destination).map_err(|e| SendError {
            permanent: true,
            message: format!("unreadable channel in the outbox: {e}"),
            retry_after_ms: None,
        })?;
        let request = match &channel {
            Channel::Webhook { url, secret_env } => {
                let secret = secret(secret_env)?;
                self.client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header(SIGNATURE_HEADER, signature(secret.as_bytes(), body))
            }
            Channel::Slack { url_env } => self
                .client
                .post(secret(url_env)?)
                .header("Content-Type", "application/json"),
            Channel::Telegram { token_env, api, .. } => {
                let token = secret(token_env)?;
                self.client
                    .post(format!("{api}/bot{token}/sendMessage"))
                    .header("Content-Type", "application/json")
            }
        };
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| SendError {
                permanent: false,
                message: format!("{}: {}", channel.describe(), request_error(e)),
                retry_after_ms: None,
            })?;
        let status = response.status();
        let retry_after = retry_after_ms(response.headers(), now_ms);
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let retry_after = retry_after.or_else(|| telegram_retry_after(&text));
        let transient = matches!(status.as_u16(), 408 | 429) || status.is_server_error();
        Err(SendError {
            permanent: !transient,
            message: format!(
                "{}: HTTP {}{}",
                channel.describe(),
                status,
                answer_excerpt(&text)
            ),
            retry_after_ms: retry_after,
        })
    }
}

/// How a channel is stored in the outbox: its JSON, which names secrets but holds none.
pub fn destination(channel: &Channel) -> String {
    serde_json::to_string(channel).expect("a channel serializes")
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` under `key`, as the webhook header carries it.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A secret from the environment; its absence is a permanent failure naming the variable.
fn secret(name: &str) -> Result<String, SendError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(SendError {
            permanent: true,
            message: format!("the environment variable `{name}` is not set"),
            retry_after_ms: None,
        }),
    }
}

/// A request failure without its URL (a Slack URL or a bot token is a secret).
fn request_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer within 10s"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({cause})")
    }
}

/// `Retry-After` as seconds or an HTTP date, in milliseconds from now, capped.
fn retry_after_ms(headers: &reqwest::header::HeaderMap, now_ms: i64) -> Option<i64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let ms = match value.parse::<u64>() {
        Ok(seconds) => seconds.saturating_mul(1000).min(i64::MAX as u64) as i64,
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
            (at.as_millisecond() - now_ms).max(0)
        }
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

/// Telegram puts its wait in the body: `{"ok":false,"parameters":{"retry_after":N}}`.
fn telegram_retry_after(text: &str) -> Option<i64> {
    let answer: serde_json::Value = serde_json::from_str(text).ok()?;
    let seconds = answer.get("parameters")?.get("retry_after")?.as_u64()?;
    Some((seconds.saturating_mul(1000) as i64).min(MAX_RETRY_AFTER_MS))
}

/// The start of the receiver's answer, for `status` (Telegram's `description` when present).
fn answer_excerpt(text: &str) -> String {
    let described = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("description")?.as_str().map(str::to_string));
    let text = described.unwrap_or_else(|| text.trim().to_string());
    if text.is_empty() {
        return String::new();
    }
    let excerpt: String = text.chars().take(200).collect();
    let excerpt = excerpt.replace(['\n', '\r'], " ");
    format!(": {excerpt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_is_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after_ms(&headers, 0), Some(3_000));
        headers.insert("retry-after", "86400".parse().unwrap());
        assert_eq!(retry_after_ms(&headers, 0), Some(MAX_RETRY_AFTER_MS));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after_ms(&headers, 0), None);
        assert_eq!(
            telegram_retry_after(r#"{"ok":false,"error_code":429,"parameters":{"retry_after":7}}"#),
            Some(7_000)
        );
    }

    #[test]
    fn a_stored_destination_holds_no_secret() {
        let channel = Channel::Slack {
            url_env: "SLACK_URL".into(),
        };
        let stored = destination(&channel);
        assert_eq!(stored, r#"{"slack":{"url_env":"SLACK_URL"}}"#);
        assert_eq!(serde_json::from_str::<Channel>(&stored).unwrap(), channel);
    }
}
