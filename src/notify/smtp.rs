//! The SMTP transport (lettre): `smtp://` with STARTTLS when offered (`?tls=required` to insist),
//! `smtps://` (TLS from the start), authentication with a password read from a file or the
//! environment at start. The password never reaches a log line or an error message.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SecretSource, Smtp};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends composed messages to the configured server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    /// The server, for logs: `smtp://host:port` without credentials.
    pub server: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("[smtp] password_env: the environment variable `{0}` is not set")]
    EnvMissing(String),
    #[error("[smtp] password_file: cannot read {path}")]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[smtp] username is set but no password_env or password_file")]
    NoPassword,
    #[error("[smtp] url: {0}")]
    Url(String),
    #[error("[smtp] TLS set-up failed")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// A 5xx answer: retrying will not help.
    pub permanent: bool,
    pub message: String,
    /// How long the receiver asked to wait (`Retry-After`), in milliseconds.
    pub retry_after_ms: Option<i64>,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> Result<Mailer, MailerError> {
        let url = reqwest::Url::parse(&smtp.url).map_err(|e| MailerError::Url(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| MailerError::Url("no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        let required = url
            .query_pairs()
            .any(|(k, v)| k == "tls" && v == "required");
        let tls_params = || TlsParameters::new(host.clone()).map_err(MailerError::Tls);
        let (tls, default_port) = match url.scheme() {
            "smtps" => (Tls::Wrapper(tls_params()?), 465),
            _ if required => (Tls::Required(tls_params()?), 587),
            _ => (Tls::Opportunistic(tls_params()?), 25),
        };
        let port = url.port().unwrap_or(default_port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        match (&smtp.username, &smtp.password) {
            (Some(user), Some(source)) => {
                builder = builder.credentials(Credentials::new(user.clone(), read_secret(source)?));
            }
            (Some(_), None) => return Err(MailerError::NoPassword),
            (None, _) => {}
        }
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| MailerError::Url(format!("from: {e}")))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{}://{}:{port}", url.scheme(), host),
        })
    }

    /// Sends `bytes` from `sender` to `recipients`; Ok once the server accepted the message.
    pub async fn send(
        &self,
        sender: &str,
        recipients: &[String],
        bytes: &[u8],
    ) -> Result<(), SendError> {
        let invalid = |what: &str| SendError {
            permanent: true,
            message: format!("invalid address `{what}`"),
            retry_after_ms: None,
        };
        let from: Address = sender.parse().map_err(|_| invalid(sender))?;
        let to = recipients
            .iter()
            .map(|r| r.parse::<Address>().map_err(|_| invalid(r)))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to).map_err(|e| SendError {
            permanent: true,
            message: e.to_string(),
            retry_after_ms: None,
        })?;
        // lettre's own timeout covers connecting only: a server that accepts and then stays
        // silent would hold the delivery for ever. (If it hangs after taking the message, the
        // retry sends it twice: SMTP cannot tell.)
        match tokio::time::timeout(SMTP_TIMEOUT, self.transport.send_raw(&envelope, bytes)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SendError {
                permanent: e.is_permanent(),
                message: describe(&e),
                retry_after_ms: None,
            }),
            Err(_) => Err(SendError {
                permanent: false,
                message: format!(
                    "the SMTP server did not finish the conversation within {}",
                    humantime::format_duration(SMTP_TIMEOUT)
                ),
                retry_after_ms: None,
            }),
        }
    }
}

/// The error and its causes on one line (lettre's own messages carry no credentials).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn read_secret(source: &SecretSource) -> Result<String, MailerError> {
    match source {
        SecretSource::Env(name) => {
            std::env::var(name).map_err(|_| MailerError::EnvMissing(name.clone()))
        }
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|source| MailerError::File {
                path: path.clone(),
                source,
            }),
    }
}
