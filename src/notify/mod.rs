//! Notification: composing messages for the durable outbox (`store::outbox`) and delivering
//! them over SMTP with lettre, and to webhooks, Slack and Telegram over HTTP with reqwest.
//!
//! Every message is written to the outbox before any attempt; the delivery task sends what is
//! due, retries transient failures with exponential backoff and keeps permanent rejections
//! visible, so neither an SMTP outage nor a restart loses mail.

pub mod backoff;
pub mod channels;
pub mod compose;
pub mod delivery;
pub mod smtp;

pub use crate::store::outbox::{Composed, MailSummary};
pub use backoff::Backoff;
pub use channels::HttpChannels;
pub use compose::{Attachment, Email, compose};
pub use delivery::{Deliverer, DeliveryStats, MailOut, deliver};
pub use smtp::{Mailer, SendError};
