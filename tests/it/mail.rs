//! The outbox and SMTP delivery against a real SMTP server on 127.0.0.1:0.

use std::sync::Arc;
use std::time::Duration;

use mail_parser::MimeHeaders;
use slaprobe::clock::Clock;
use slaprobe::config::{SecretSource, Smtp};
use slaprobe::notify::{self, Attachment, Backoff, DeliveryStats, Email, Mailer};
use slaprobe::store::outbox::{self, Kind};
use tokio::sync::{Notify, watch};

use crate::smtp_server::{SmtpMode, TestSmtp};
use crate::support::{Workspace, eventually};

fn smtp_config(server: &TestSmtp) -> Smtp {
    Smtp {
        url: server.url(),
        username: None,
        password: None,
        from: "SLA monitor <sla@provider.example>".to_string(),
    }
}

fn alert(subject: &str) -> Email {
    Email {
        subject: subject.to_string(),
        to: vec!["oncall@provider.example".to_string()],
        text: format!("{subject}\n"),
        html: None,
        attachment: None,
    }
}

/// A database with the outbox, and a delivery task over it.
struct Delivery {
    db: slaprobe::store::SharedConnection,
    stats: Arc<DeliveryStats>,
    wake: Arc<Notify>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
    mailer: Arc<Mailer>,
}

impl Delivery {
    fn open(ws: &Workspace, smtp: &Smtp) -> Delivery {
        let conn = slaprobe::store::open_writer_connection(&ws.db()).unwrap();
        Delivery {
            db: Arc::new(std::sync::Mutex::new(conn.into())),
            stats: Arc::new(DeliveryStats::default()),
            wake: Arc::new(Notify::new()),
            stop: None,
            task: None,
            mailer: Arc::new(Mailer::new(smtp).unwrap()),
        }
    }

    fn enqueue(&self, email: &Email) -> i64 {
        let composed = notify::compose(&self.mailer.from, email).unwrap();
        let db = self.db.lock().unwrap();
        let id =
            outbox::enqueue(db.conn(), Clock::system().now_ms(), Kind::Alert, &composed).unwrap();
        self.wake.notify_one();
        id
    }

    fn start(&mut self) {
        let (stop, stop_rx) = watch::channel(false);
        let backoff = Backoff {
            first_ms: 50,
            max_ms: 200,
        };
        self.task = Some(tokio::spawn(notify::deliver(
            self.db.clone(),
            notify::Deliverer::Smtp(self.mailer.clone()),
            Clock::system(),
            self.wake.clone(),
            self.stats.clone(),
            backoff,
            stop_rx,
        )));
        self.stop = Some(stop);
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(true).unwrap();
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    fn states(&self) -> Vec<(String, String, u32)> {
        let db = self.db.lock().unwrap();
        db.conn()
            .query(
                "SELECT subject, state, attempts FROM outbox ORDER BY id",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)? as u32)),
            )
            .unwrap()
    }
}

#[tokio::test]
async fn a_statement_arrives_with_text_html_and_the_csv_attached() {
    let server = TestSmtp::start().await;
    let ws = Workspace::new();
    let mut delivery = Delivery::open(&ws, &smtp_config(&server));
    delivery.enqueue(&Email {
        subject: "[slaprobe] Statement October 2026: ACME Corp (acme)".to_string(),
        to: vec![
            "billing@acme.example".to_string(),
            "cfo@acme.example".to_string(),
        ],
        text: "Availability statement\n".to_string(),
        html: Some("<h1>Availability statement</h1>".to_string()),
        attachment: Some(Attachment {
            filename: "acme-2026-10.csv".to_string(),
            content_type: "text/csv; charset=utf-8".to_string(),
            body: b"service,availability\nacme-api,0.999\n".to_vec(),
        }),
    });
    delivery.start();
    let got = server.wait_for(1, Duration::from_secs(10)).await;
    delivery.stop().await;

    let m = &got[0];
    assert_eq!(m.from, "sla@provider.example");
    assert_eq!(m.to, ["billing@acme.example", "cfo@acme.example"]);
    let parsed = m.parsed();
    assert_eq!(
        parsed.subject(),
        Some("[slaprobe] Statement October 2026: ACME Corp (acme)")
    );
    assert_eq!(
        parsed.from().and_then(|f| f.first()).and_then(|a| a.name()),
        Some("SLA monitor")
    );
    assert_eq!(m.text().trim(), "Availability statement");
    assert_eq!(
        parsed.body_html(0).unwrap().trim(),
        "<h1>Availability statement</h1>"
    );
    let attachment = parsed.attachment(0).expect("the CSV is attached");
    assert_eq!(attachment.attachment_name(), Some("acme-2026-10.csv"));
    assert_eq!(
        attachment.contents(),
        b"service,availability\nacme-api,0.999\n"
    );
    assert_eq!(delivery.states()[0].1, "sent");
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_and_loses_none() {
    let server = TestSmtp::start().await;
    server.set(SmtpMode::Unavailable);
    let ws = Workspace::new();
    let mut delivery = Delivery::open(&ws, &smtp_config(&server));
    delivery.start();
    for n in 0..5 {
        delivery.enqueue(&alert(&format!("[slaprobe] DOWN: s{n} (c)")));
    }
    // Several attempts are turned away while the server is down.
    eventually(Duration::from_secs(10), "retries during the outage", || {
        (server.refused() >= 8).then_some(())
    })
    .await;
    assert!(server.received().is_empty());
    assert!(
        delivery
            .states()
            .iter()
            .all(|(_, state, _)| state == "pending")
    );

    server.set(SmtpMode::Accept);
    let got = server.wait_for(5, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    delivery.stop().await;
    let subjects: Vec<String> = server.received().iter().map(|m| m.subject()).collect();
    assert_eq!(got.len(), 5);
    assert_eq!(
        subjects,
        (0..5)
            .map(|n| format!("[slaprobe] DOWN: s{n} (c)"))
            .collect::<Vec<_>>(),
        "every message exactly once, in the order written"
    );
    // Messages to the same recipients wait behind the oldest: only it was retried meanwhile.
    let states = delivery.states();
    assert!(states.iter().all(|(_, state, _)| state == "sent"));
    assert!(states[0].2 >= 8, "the oldest was tried during the outage");
    assert!(states[1..].iter().all(|(_, _, attempts)| *attempts == 1));
}

/// A server that accepts and never answers holds a delivery for the SMTP timeout (30 s), no
/// longer; the message stays pending and goes out, once, when the server answers again.
#[tokio::test]
async fn a_hung_smtp_server_delays_mail_by_the_timeout_and_loses_none() {
    let server = TestSmtp::start().await;
    server.set(SmtpMode::Stall);
    let ws = Workspace::new();
    let mut delivery = Delivery::open(&ws, &smtp_config(&server));
    delivery.start();
    delivery.enqueue(&alert("[slaprobe] DOWN: hung (c)"));
    eventually(
        Duration::from_secs(5),
        "a connection to the hung server",
        || (server.refused() >= 1).then_some(()),
    )
    .await;
    server.set(SmtpMode::Accept);
    let got = server.wait_for(1, Duration::from_secs(45)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    delivery.stop().await;
    assert_eq!(got.len(), 1);
    assert_eq!(server.received().len(), 1, "sent once");
    let states = delivery.states();
    assert_eq!(states[0].1, "sent");
    assert!(states[0].2 >= 2, "the hung attempt counted: {states:?}");
}

#[tokio::test]
async fn a_permanent_rejection_is_kept_as_failed_and_not_retried() {
    let server = TestSmtp::start().await;
    server.set(SmtpMode::Reject);
    let ws = Workspace::new();
    let mut delivery = Delivery::open(&ws, &smtp_config(&server));
    delivery.start();
    delivery.enqueue(&alert("[slaprobe] DOWN: s (c)"));
    eventually(Duration::from_secs(10), "the rejection recorded", || {
        (delivery.states()[0].1 == "failed").then_some(())
    })
    .await;
    let refused = server.refused();
    tokio::time::sleep(Duration::from_millis(500)).await;
    delivery.stop().await;
    assert_eq!(server.refused(), refused, "no retry after a 5xx");
    let summary = outbox::summary(delivery.db.lock().unwrap().conn(), 0).unwrap();
    assert!(summary.pending.is_empty());
    assert_eq!(summary.failed.len(), 1);
    assert!(
        summary.failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("550"),
        "{:?}",
        summary.failed[0]
    );
}

#[tokio::test]
async fn mail_queued_before_a_restart_is_sent_after_it_with_credentials() {
    let server = TestSmtp::start().await;
    let ws = Workspace::new();
    let password = ws.path("smtp-password");
    std::fs::write(&password, "s3cret-Pa55\n").unwrap();
    let smtp = Smtp {
        username: Some("alerts".to_string()),
        password: Some(SecretSource::File(password)),
        ..smtp_config(&server)
    };
    // Queued by a daemon that stopped before delivering.
    let delivery = Delivery::open(&ws, &smtp);
    delivery.enqueue(&alert("[slaprobe] DOWN: s (c)"));
    drop(delivery);

    let mut delivery = Delivery::open(&ws, &smtp);
    delivery.start();
    let got = server.wait_for(1, Duration::from_secs(10)).await;
    delivery.stop().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth.as_deref(), Some("alerts:s3cret-Pa55"));
    assert!(
        !String::from_utf8_lossy(&got[0].data).contains("s3cret"),
        "the password is not in the message"
    );
}

#[tokio::test]
async fn tls_required_never_falls_back_to_plain_text() {
    // The test server offers no STARTTLS: with ?tls=required nothing is sent in clear; the
    // message waits in the outbox with the reason.
    let server = TestSmtp::start().await;
    let ws = Workspace::new();
    let smtp = Smtp {
        url: format!("{}?tls=required", server.url()),
        ..smtp_config(&server)
    };
    let mut delivery = Delivery::open(&ws, &smtp);
    delivery.start();
    delivery.enqueue(&alert("[slaprobe] DOWN: s (c)"));
    eventually(Duration::from_secs(10), "a failed attempt", || {
        (delivery.states()[0].2 >= 1).then_some(())
    })
    .await;
    delivery.stop().await;
    assert!(server.received().is_empty());
    let summary = outbox::summary(delivery.db.lock().unwrap().conn(), 0).unwrap();
    assert_eq!(summary.pending.len(), 1);
    let error = summary.pending[0].last_error.clone().unwrap();
    assert!(error.to_lowercase().contains("tls"), "{error}");
}

#[test]
fn a_missing_password_is_a_clear_start_up_error_without_the_secret() {
    let smtp = Smtp {
        url: "smtp://127.0.0.1:25".to_string(),
        username: Some("alerts".to_string()),
        password: Some(SecretSource::Env(
            "SLAPROBE_TEST_PASSWORD_NOT_SET_ANYWHERE".to_string(),
        )),
        from: "SLA monitor <sla@provider.example>".to_string(),
    };
    let error = Mailer::new(&smtp)
        .err()
        .expect("no password, no mailer")
        .to_string();
    assert_eq!(
        error,
        "[smtp] password_env: the environment variable `SLAPROBE_TEST_PASSWORD_NOT_SET_ANYWHERE` is not set"
    );
    let no_source = Smtp {
        password: None,
        ..smtp
    };
    assert!(
        Mailer::new(&no_source)
            .err()
            .unwrap()
            .to_string()
            .contains("no password_env or password_file")
    );
}
