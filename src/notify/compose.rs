//! Builds the RFC 5322 bytes of a message: a plain-text part, optionally an HTML alternative
//! and one attachment (the statement's CSV).

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use crate::store::outbox::Composed;

/// A message to compose, before it has a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub to: Vec<String>,
    pub text: String,
    pub html: Option<String>,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("`{0}` is not an e-mail address")]
    Address(String),
    #[error("the message has no recipient")]
    NoRecipient,
    #[error("cannot build the message")]
    Build(#[from] lettre::error::Error),
    #[error("bad content type `{0}`")]
    ContentType(String),
}

/// Composes `email` from `from` (a mailbox such as `SLA monitor <sla@example.com>`).
pub fn compose(from: &Mailbox, email: &Email) -> Result<Composed, ComposeError> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(email.subject.clone())
        .user_agent(format!("slaprobe/{}", env!("CARGO_PKG_VERSION")));
    let mut recipients = Vec::new();
    for to in &email.to {
        let address: Address = to.parse().map_err(|_| ComposeError::Address(to.clone()))?;
        if !recipients.contains(&address.to_string()) {
            recipients.push(address.to_string());
            builder = builder.to(Mailbox::new(None, address));
        }
    }
    if recipients.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    let message = match (&email.html, &email.attachment) {
        (None, None) => builder.singlepart(SinglePart::plain(email.text.clone()))?,
        (html, attachment) => {
            let body = match html {
                Some(html) => MultiPart::alternative_plain_html(email.text.clone(), html.clone()),
                None => MultiPart::mixed().singlepart(SinglePart::plain(email.text.clone())),
            };
            match attachment {
                None => builder.multipart(body)?,
                Some(a) => {
                    let content_type = ContentType::parse(&a.content_type)
                        .map_err(|_| ComposeError::ContentType(a.content_type.clone()))?;
                    let part = lettre::message::Attachment::new(a.filename.clone())
                        .body(a.body.clone(), content_type);
                    builder.multipart(MultiPart::mixed().multipart(body).singlepart(part))?
                }
            }
        }
    };
    Ok(Composed {
        subject: email.subject.clone(),
        sender: from.email.to_string(),
        recipients,
        bytes: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "SLA monitor <sla@provider.example>".parse().unwrap()
    }

    #[test]
    fn a_plain_alert() {
        let c = compose(
            &from(),
            &Email {
                subject: "[slaprobe] DOWN: api (acme)".into(),
                to: vec![
                    "a@x.example".into(),
                    "a@x.example".into(),
                    "b@x.example".into(),
                ],
                text: "api is down".into(),
                html: None,
                attachment: None,
            },
        )
        .unwrap();
        assert_eq!(c.recipients, ["a@x.example", "b@x.example"]);
        assert_eq!(c.sender, "sla@provider.example");
        let text = String::from_utf8(c.bytes).unwrap();
        assert!(text.contains("Subject: [slaprobe] DOWN: api (acme)"));
        assert!(text.contains("api is down"));
    }

    #[test]
    fn no_recipient_is_an_error() {
        let email = Email {
            subject: "s".into(),
            to: vec![],
            text: "t".into(),
            html: None,
            attachment: None,
        };
        assert!(matches!(
            compose(&from(), &email),
            Err(ComposeError::NoRecipient)
        ));
    }
}
