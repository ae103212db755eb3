//! The writer's PostgreSQL backend: one location's outcomes and events, a batch per
//! transaction, a few multi-row statements per batch (`UNNEST` of arrays).
//!
//! A write can fail after PostgreSQL committed it (the connection dropped before the answer
//! came). The retry of such a batch then finds each service's latest stored outcome for the
//! hour and skips what is already there, with its events: a retry never writes a row twice.
//! Events are keyed by service, location and start, so writing one again is a no-op anyway.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use postgres::{Client, Transaction};
use tracing::{info, warn};

use super::{PgError, PgTarget};
use crate::sla::tracker::Event;
use crate::store::chunk::{self, RawOutcome};
use crate::store::rollup::HourRollup;
use crate::store::writer::{ALL_MINUTES, Backend, Gap, RETENTION_BATCH, ROLLUP_GRACE_MS};
use crate::store::{Record, ServiceNum};
use crate::text::Chain;

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum PgWriteError {
    #[error(transparent)]
    Connect(#[from] PgError),
    #[error("PostgreSQL refused the batch")]
    Write(#[from] postgres::Error),
}

/// One location's writer: reconnects by itself when the server went away.
pub struct Postgres {
    target: PgTarget,
    location: String,
    client: Option<Client>,
    /// The rollup watermark of this location: outcomes for earlier hours mark their hour.
    rolled_until: Option<i64>,
}

impl Postgres {
    /// A writer for `location`; connects at the first commit (so a daemon starts, and probes,
    /// while the database is still unreachable).
    pub fn new(target: PgTarget, location: String, mut client: Option<Client>) -> Postgres {
        let rolled_until = client
            .as_mut()
            .and_then(|c| rolled_until(c, &location).ok().flatten());
        Postgres {
            target,
            location,
            client,
            rolled_until,
        }
    }

    /// Writes one batch in one transaction (what the writer thread does each turn; also the
    /// migration's way in). `retrying`: an earlier attempt at (part of) it failed and may have
    /// committed all the same; what is already stored is then skipped.
    pub fn commit_batch(&mut self, batch: &[Record], retrying: bool) -> Result<(), PgWriteError> {
        Backend::commit(self, batch, &[], retrying)
    }

    fn client(&mut self) -> Result<&mut Client, PgWriteError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = super::connect(&self.target)?;
            self.rolled_until = rolled_until(&mut client, &self.location)?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn try_commit(
        &mut self,
        batch: &[Record],
        shed: &[Gap],
        retrying: bool,
    ) -> Result<(), PgWriteError> {
        let location = self.location.clone();
        let rolled_until = self.rolled_until;
        let client = self.client()?;
        let mut tx = client.transaction()?;
        let fresh;
        let batch = if retrying {
            fresh = not_yet_stored(&mut tx, &location, batch)?;
            &fresh[..]
        } else {
            batch
        };
        write_records(&mut tx, &location, batch, rolled_until)?;
        for gap in shed {
            tx.execute(
                "INSERT INTO no_data (service, location, start_ms, end_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&gap.service, &location, &gap.start_ms, &gap.end_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Backend for Postgres {
    type Error = PgWriteError;

    fn commit(
        &mut self,
        batch: &[Record],
        shed: &[Gap],
        retrying: bool,
    ) -> Result<(), PgWriteError> {
        let result = self.try_commit(batch, shed, retrying);
        if result.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        result
    }

    fn maintenance(&mut self, now_ms: i64, retention: Duration) {
        match self.maintain(now_ms, retention) {
            Ok((0, 0)) => {}
            Ok((hours, chunks)) => info!(
                hours,
                chunks, "Rolled up hours; deleted raw outcomes past the retention."
            ),
            Err(e) => warn!(error = %Chain(&e), "Rollup or retention failed; will retry."),
        }
    }

    fn close(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close();
            info!("Closed the PostgreSQL connection.");
        }
    }

    fn explain(&self, e: &PgWriteError) -> &'static str {
        match e {
            PgWriteError::Connect(_) => "PostgreSQL is unreachable.",
            PgWriteError::Write(e) if e.is_closed() => "The connection to PostgreSQL dropped.",
            PgWriteError::Write(_) => "PostgreSQL refused the write.",
        }
    }
}

impl Postgres {
    /// This location's rollups of completed hours (and of hours that got outcomes after their
    /// rollup), then up to `RETENTION_BATCH` raw chunks past `retention` deleted (rolled-up
    /// hours only). Returns (hours rolled up, chunks deleted).
    pub fn maintain(
        &mut self,
        now_ms: i64,
        retention: Duration,
    ) -> Result<(usize, u64), PgWriteError> {
        let location = self.location.clone();
        let client = self.client()?;
        let hours = roll_up(client, &location, now_ms)?;
        let until = rolled_until(client, &location)?;
        let keep_from = chunk::hour_of(now_ms - retention.as_millis() as i64);
        let cutoff = keep_from.min(until.unwrap_or(i64::MIN));
        let deleted = client.execute(
            "DELETE FROM outcome_chunk WHERE ctid IN
                 (SELECT c.ctid FROM outcome_chunk AS c
                  WHERE c.location = $1 AND c.hour < $2 AND NOT EXISTS
                      (SELECT 1 FROM rollup_pending AS p
                       WHERE p.service = c.service AND p.location = c.location AND p.hour = c.hour)
                  LIMIT $3)",
            &[&location, &cutoff, &RETENTION_BATCH],
        )?;
        client.execute(
            "DELETE FROM failure WHERE location = $1 AND at_ms < $2",
            &[&location, &cutoff.saturating_mul(chunk::HOUR_MS)],
        )?;
        self.rolled_until = until;
        Ok((hours, deleted))
    }
}

/// Rolls up every hour of `location` that ended more than the grace before `now_ms` and is not
/// rolled up yet, one transaction per hour, then the hours marked pending.
fn roll_up(client: &mut Client, location: &str, now_ms: i64) -> Result<usize, postgres::Error> {
    let last_complete = chunk::hour_of(now_ms - ROLLUP_GRACE_MS) - 1;
    let start = match rolled_until(client, location)? {
        Some(hour) => hour,
        None => client
            .query_one(
                "SELECT min(hour) FROM outcome_chunk WHERE location = $1",
                &[&location],
            )?
            .get::<_, Option<i64>>(0)
            .unwrap_or(last_complete + 1),
    };
    let mut rolled = 0;
    for hour in start..=last_complete {
        let mut tx = client.transaction()?;
        let rows = tx.query(
            "SELECT service, data FROM outcome_chunk WHERE location = $1 AND hour = $2",
            &[&location, &hour],
        )?;
        for row in rows {
            write_rollup(&mut tx, location, row.get(0), hour, row.get(1))?;
        }
        set_rolled_until(&mut tx, location, hour + 1)?;
        tx.commit()?;
        rolled += 1;
    }
    if rolled == 0 && rolled_until(client, location)?.is_none() {
        let mut tx = client.transaction()?;
        set_rolled_until(&mut tx, location, start)?;
        tx.commit()?;
    }
    let mut tx = client.transaction()?;
    let pending = tx.query(
        "DELETE FROM rollup_pending WHERE location = $1 AND hour <= $2 RETURNING service, hour",
        &[&location, &last_complete],
    )?;
    for row in &pending {
        let (service, hour): (i64, i64) = (row.get(0), row.get(1));
        if let Some(chunk) = tx.query_opt(
            "SELECT data FROM outcome_chunk WHERE service = $1 AND location = $2 AND hour = $3",
            &[&service, &location, &hour],
        )? {
            write_rollup(&mut tx, location, service, hour, chunk.get(0))?;
        }
    }
    tx.commit()?;
    Ok(rolled + pending.len())
}

fn set_rolled_until(
    tx: &mut Transaction<'_>,
    location: &str,
    hour: i64,
) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO meta (location, key, value) VALUES ($1, 'rolled_until_hour', $2)
         ON CONFLICT (location, key) DO UPDATE SET value = excluded.value",
        &[&location, &hour],
    )?;
    Ok(())
}

fn write_rollup(
    tx: &mut Transaction<'_>,
    location: &str,
    service: i64,
    hour: i64,
    data: &[u8],
) -> Result<(), postgres::Error> {
    let rollup = HourRollup::from_outcomes(hour * chunk::HOUR_MS, &chunk::decode(hour, data));
    tx.execute(
        "INSERT INTO rollup_hour (service, location, hour, probes, failures, latency,
             minutes_unprobed, minutes_all_failed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (service, location, hour) DO UPDATE
         SET probes = excluded.probes, failures = excluded.failures, latency = excluded.latency,
             minutes_unprobed = excluded.minutes_unprobed,
             minutes_all_failed = excluded.minutes_all_failed",
        &[
            &service,
            &location,
            &hour,
            &i64::from(rollup.probes),
            &i64::from(rollup.failures),
            &rollup.latency.encode(),
            &((!rollup.minutes_probed & ALL_MINUTES) as i64),
            &(rollup.minutes_all_failed as i64),
        ],
    )?;
    Ok(())
}

/// Registers `service_ids` (a fleet shares the numbers) and returns each one's number.
pub fn register(
    client: &mut Client,
    service_ids: &[String],
) -> Result<HashMap<String, ServiceNum>, postgres::Error> {
    let mut tx = client.transaction()?;
    let nums = register_in(&mut tx, service_ids)?;
    tx.commit()?;
    Ok(nums)
}

/// `register` inside a transaction of the caller's.
pub(crate) fn register_in(
    tx: &mut Transaction<'_>,
    service_ids: &[String],
) -> Result<HashMap<String, ServiceNum>, postgres::Error> {
    tx.execute(
        "INSERT INTO service (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING",
        &[&service_ids],
    )?;
    let rows = tx.query(
        "SELECT id, num FROM service WHERE id = ANY($1)",
        &[&service_ids],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The first hour this location has not rolled up, if any rollup ran.
fn rolled_until(client: &mut Client, location: &str) -> Result<Option<i64>, postgres::Error> {
    let row = client.query_opt(
        "SELECT value FROM meta WHERE location = $1 AND key = 'rolled_until_hour'",
        &[&location],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// The records of `batch` newer than what is stored for their service and hour.
fn not_yet_stored(
    tx: &mut Transaction<'_>,
    location: &str,
    batch: &[Record],
) -> Result<Vec<Record>, postgres::Error> {
    let services: Vec<i64> = batch.iter().map(|r| r.service).collect();
    let hours: Vec<i64> = batch
        .iter()
        .map(|r| chunk::hour_of(r.outcome.at_ms))
        .collect();
    let stored: HashMap<(i64, i64), i64> = tx
        .query(
            "SELECT service, hour, last_ms FROM outcome_chunk
             WHERE location = $1 AND service = ANY($2) AND hour = ANY($3)",
            &[&location, &services, &hours],
        )?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    Ok(batch
        .iter()
        .filter(|r| {
            let key = (r.service, chunk::hour_of(r.outcome.at_ms));
            stored.get(&key).is_none_or(|&last| r.outcome.at_ms > last)
        })
        .cloned()
        .collect())
}

/// One chunk's new outcomes within a batch.
#[derive(Default)]
struct Appended {
    n: i64,
    last_ms: i64,
    data: Vec<u8>,
}

/// Writes `records` (outcomes and their events) in `tx`: the outcomes of each service and hour
/// appended to its chunk in one statement for the whole batch, failures in another.
pub(crate) fn write_records(
    tx: &mut Transaction<'_>,
    location: &str,
    records: &[Record],
    rolled_until: Option<i64>,
) -> Result<(), postgres::Error> {
    let mut chunks: BTreeMap<(i64, i64), Appended> = BTreeMap::new();
    let (mut f_service, mut f_at, mut f_reason, mut f_detail) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut first_service, mut first_at) = (Vec::new(), Vec::new());
    for record in records {
        let o = &record.outcome;
        let hour = chunk::hour_of(o.at_ms);
        let raw = RawOutcome {
            at_ms: o.at_ms,
            latency_us: o.latency.as_micros().min(u128::from(u32::MAX)) as u32,
            reason: o.failure.as_ref().map(|f| f.reason),
        };
        let appended = chunks.entry((record.service, hour)).or_default();
        chunk::encode(&raw, &mut appended.data);
        appended.n += 1;
        appended.last_ms = appended.last_ms.max(o.at_ms);
        if let Some(f) = &o.failure {
            f_service.push(record.service);
            f_at.push(o.at_ms);
            f_reason.push(f.reason.as_str());
            f_detail.push(f.detail.as_str());
        }
        if record.first {
            first_service.push(record.service);
            first_at.push(o.at_ms);
        }
    }

    let (mut c_service, mut c_hour, mut c_n, mut c_last, mut c_data) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((service, hour), appended) in chunks {
        c_service.push(service);
        c_hour.push(hour);
        c_n.push(appended.n);
        c_last.push(appended.last_ms);
        c_data.push(appended.data);
    }
    tx.execute(
        "INSERT INTO outcome_chunk (service, location, hour, n, last_ms, data)
         SELECT s, $1, h, n, l, d
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])
             AS t (s, h, n, l, d)
         ON CONFLICT (service, location, hour) DO UPDATE
         SET n = outcome_chunk.n + excluded.n,
             last_ms = greatest(outcome_chunk.last_ms, excluded.last_ms),
             data = outcome_chunk.data || excluded.data",
        &[&location, &c_service, &c_hour, &c_n, &c_last, &c_data],
    )?;
    if let Some(until) = rolled_until {
        let late: Vec<usize> = (0..c_hour.len()).filter(|&i| c_hour[i] < until).collect();
        if !late.is_empty() {
            let services: Vec<i64> = late.iter().map(|&i| c_service[i]).collect();
            let hours: Vec<i64> = late.iter().map(|&i| c_hour[i]).collect();
            tx.execute(
                "INSERT INTO rollup_pending (service, location, hour)
                 SELECT s, $1, h FROM unnest($2::bigint[], $3::bigint[]) AS t (s, h)
                 ON CONFLICT DO NOTHING",
                &[&location, &services, &hours],
            )?;
        }
    }
    if !f_service.is_empty() {
        tx.execute(
            "INSERT INTO failure (service, location, at_ms, reason, detail)
             SELECT s, $1, a, r, d FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[])
                 AS t (s, a, r, d)
             ON CONFLICT (service, location, at_ms) DO UPDATE
             SET reason = excluded.reason, detail = excluded.detail",
            &[&location, &f_service, &f_at, &f_reason, &f_detail],
        )?;
    }
    if !first_service.is_empty() {
        tx.execute(
            "INSERT INTO service_location (service, location, first_ms)
             SELECT s, $1, f FROM unnest($2::bigint[], $3::bigint[]) AS t (s, f)
             ON CONFLICT DO NOTHING",
            &[&location, &first_service, &first_at],
        )?;
    }
    for record in records.iter().filter(|r| !r.events.is_empty()) {
        write_events(tx, location, record)?;
    }
    Ok(())
}

fn write_events(
    tx: &mut Transaction<'_>,
    location: &str,
    record: &Record,
) -> Result<(), postgres::Error> {
    let service = record.service;
    for event in &record.events {
        match event {
            Event::IncidentOpened {
                start_ms,
                first_failure,
            } => {
                tx.execute(
                    "INSERT INTO incident (service, location, start_ms, end_ms, reason, detail)
                     VALUES ($1, $2, $3, NULL, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &service,
                        &location,
                        start_ms,
                        &first_failure.reason.as_str(),
                        &first_failure.detail,
                    ],
                )?;
            }
            Event::IncidentClosed { end_ms, .. } => {
                tx.execute(
                    "UPDATE incident SET end_ms = $3
                     WHERE service = $1 AND location = $2 AND end_ms IS NULL",
                    &[&service, &location, end_ms],
                )?;
            }
            Event::Blip {
                start_ms,
                end_ms,
                failures,
                reason,
            } => {
                tx.execute(
                    "INSERT INTO blip (service, location, start_ms, end_ms, failures, reason)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &service,
                        &location,
                        start_ms,
                        end_ms,
                        &i64::from(*failures),
                        &reason.as_str(),
                    ],
                )?;
            }
            Event::NoData { start_ms, end_ms } => {
                tx.execute(
                    "INSERT INTO no_data (service, location, start_ms, end_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&service, &location, start_ms, end_ms],
                )?;
            }
        }
    }
    Ok(())
}
