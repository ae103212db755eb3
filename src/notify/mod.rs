//! E-mail: composing messages, the durable outbox in SQLite and delivery over SMTP with lettre.
//!
//! Every message is written to the outbox before any attempt; the delivery task sends what is
//! due, retries transient failures with exponential backoff and keeps permanent rejections
//! visible, so neither an SMTP outage nor a restart loses mail.

pub mod compose;
pub mod delivery;
pub mod outbox;
pub mod smtp;

pub use compose::{Attachment, Composed, Email, compose};
pub use delivery::{DeliveryStats, deliver};
pub use outbox::{Backoff, MailSummary};
pub use smtp::{Mailer, SendError};
