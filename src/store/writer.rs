//! The writer thread: the only code that writes outcomes once the daemon runs, and its SQLite
//! backend.
//!
//! It gathers records for `flush_interval`, commits them in one transaction, and between
//! batches rolls completed hours up and deletes raw outcomes past the retention, a little at a
//! time. A failed commit (disk full, database locked, PostgreSQL unreachable) keeps the batch
//! in memory and tries again; past `BUFFER_LIMIT` records the oldest plain outcomes are shed and
//! their stretch is written as no-data, so nothing is dropped silently. The loop is the same for
//! both stores; a `Backend` does the writing (`Sqlite` here, `pg::writer::Postgres`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tracing::{error, info, warn};

use super::chunk::{self, HOUR_MS, RawOutcome};
use super::rollup::HourRollup;
use super::{Command, Record, StoreSettings, StoreStats};
use crate::sla::tracker::Event;
use crate::text::Chain;

/// Hours are rolled up once they ended this long ago (late outcomes have landed by then).
pub(super) const ROLLUP_GRACE_MS: i64 = 5 * 60_000;
/// How often the writer looks for rollup and retention work.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// The writer turns its loop (and proves it is alive) at least this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Raw chunks deleted per maintenance turn, so that retention never stalls writing.
pub(super) const RETENTION_BATCH: i64 = 2_000;
/// Free pages handed back to the file system per maintenance turn (4 MiB of 4 KiB pages).
const RECLAIM_PAGES: i64 = 1_024;
/// Records kept in memory while the database refuses writes (about 100 MB). Past this, the
/// oldest outcomes without events are shed and recorded as no-data once writing works again.
const BUFFER_LIMIT: usize = 500_000;
/// While writes keep failing, the error is logged again every this many attempts (about a
/// minute at the longest backoff).
const LOG_EVERY_ATTEMPTS: u32 = 12;
/// Sent and failed e-mails are kept this long (statements keep their record for ever).
const MAIL_KEPT_MS: i64 = 90 * 86_400_000;
/// `PRAGMA optimize` runs this often (and at shutdown).
const OPTIMIZE_EVERY: Duration = Duration::from_secs(6 * 3600);

/// What the writer loop needs of a store.
pub(super) trait Backend: Send + 'static {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Writes `batch` and the no-data stretches of `shed` outcomes in one transaction.
    /// `retrying`: the previous attempt failed, and may have committed without saying so.
    fn commit(&mut self, batch: &[Record], shed: &[Gap], retrying: bool)
    -> Result<(), Self::Error>;
    /// Rollups, retention and housekeeping, a little at a time; logs its own failures.
    fn maintenance(&mut self, now_ms: i64, retention: Duration);
    /// At shutdown, after the last commit.
    fn close(&mut self);
    /// What a failed write means for an operator.
    fn explain(&self, e: &Self::Error) -> &'static str;
}

pub(super) fn spawn<B: Backend>(
    backend: B,
    receiver: Receiver<Command>,
    stats: Arc<StoreStats>,
    settings: StoreSettings,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("slaprobe-store".to_string())
        .spawn(move || Writer::new(backend, stats, settings).run(receiver))
        .expect("spawning the store writer thread")
}

struct Writer<B> {
    backend: B,
    stats: Arc<StoreStats>,
    settings: StoreSettings,
    next_maintenance: Instant,
    /// Stretches whose outcomes were shed during a write outage, to write as no-data.
    shed: Vec<Gap>,
}

impl<B: Backend> Writer<B> {
    fn new(backend: B, stats: Arc<StoreStats>, settings: StoreSettings) -> Writer<B> {
        Writer {
            backend,
            stats,
            settings,
            next_maintenance: Instant::now(),
            shed: Vec::new(),
        }
    }

    fn run(mut self, receiver: Receiver<Command>) {
        let mut batch: Vec<Record> = Vec::new();
        let mut waiters = Vec::new();
        let mut closing = None;
        let mut failures = 0u32;
        loop {
            self.beat();
            // Wait for the first record (or until maintenance is due), then gather for up to
            // `flush_interval`.
            if batch.is_empty() {
                let wait = self
                    .next_maintenance
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(10), HEARTBEAT_EVERY);
                match receiver.recv_timeout(wait) {
                    Ok(command) => self.take(command, &mut batch, &mut waiters, &mut closing),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // Let a batch gather by sleeping rather than waiting on the channel: senders then
            // never have to wake this thread, which at a thousand probes a second is most of
            // what the store would cost. A flush or close does not wait.
            if closing.is_none() && waiters.is_empty() && !batch.is_empty() {
                std::thread::sleep(self.settings.flush_interval);
            }
            // Everything sent so far, so that a flush or close includes what came before it.
            while let Ok(command) = receiver.try_recv() {
                self.take(command, &mut batch, &mut waiters, &mut closing);
            }

            if batch.len() > BUFFER_LIMIT {
                let before = batch.len();
                let gaps = shed(&mut batch, BUFFER_LIMIT * 9 / 10);
                let shed_count = (before - batch.len()) as u64;
                self.stats.queued.fetch_sub(shed_count, Ordering::Relaxed);
                self.stats
                    .shed_records
                    .fetch_add(shed_count, Ordering::Relaxed);
                error!(
                    records = shed_count,
                    services = gaps.len(),
                    "The database has refused writes for too long: shed the oldest outcomes \
                     kept in memory; their stretch will be recorded as no-data."
                );
                self.shed.extend(gaps);
            }
            if !batch.is_empty() || (!self.shed.is_empty() && failures == 0) {
                match self.commit(&batch, failures > 0) {
                    Ok(()) => {
                        self.stats
                            .queued
                            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
                        if failures > 0 {
                            info!(
                                records = batch.len(),
                                attempts = failures + 1,
                                "The database takes writes again: wrote every record kept \
                                 meanwhile."
                            );
                        }
                        batch.clear();
                        failures = 0;
                        self.stats.refusing.store(false, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failures += 1;
                        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                        self.stats.refusing.store(true, Ordering::Relaxed);
                        if failures == 1 || failures.is_multiple_of(LOG_EVERY_ATTEMPTS) {
                            error!(
                                error = %Chain(&e),
                                records = batch.len(),
                                attempt = failures,
                                "{} Probing goes on; records are kept in memory and written \
                                 when it works again.",
                                self.backend.explain(&e)
                            );
                        }
                        if closing.is_some() && failures >= 5 {
                            error!(
                                records = batch.len(),
                                "Giving up at shutdown: these records are lost."
                            );
                            batch.clear();
                        } else {
                            std::thread::sleep(Duration::from_millis(
                                (100u64 << failures.min(6)).min(5_000),
                            ));
                            continue;
                        }
                    }
                }
            }
            for waiter in waiters.drain(..) {
                let _ = waiter.send(());
            }
            if let Some(done) = closing.take() {
                self.backend.close();
                let _ = done.send(());
                return;
            }
            if Instant::now() >= self.next_maintenance {
                self.backend
                    .maintenance(self.settings.clock.now_ms(), self.settings.retention);
                self.beat();
                self.next_maintenance = Instant::now() + MAINTENANCE_EVERY;
            }
        }
        // Every sender is gone without a close: commit what is left.
        if !batch.is_empty()
            && let Err(e) = self.commit(&batch, failures > 0)
        {
            error!(error = %Chain(&e), records = batch.len(), "Lost records at exit.");
        }
    }

    fn take(
        &self,
        command: Command,
        batch: &mut Vec<Record>,
        waiters: &mut Vec<tokio::sync::oneshot::Sender<()>>,
        closing: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        match command {
            Command::Record(record) => batch.push(*record),
            Command::Flush(waiter) => waiters.push(waiter),
            Command::Close(done) => *closing = Some(done),
        }
    }

    fn beat(&self) {
        self.stats.heartbeat.beat();
    }

    fn commit(&mut self, batch: &[Record], retrying: bool) -> Result<(), B::Error> {
        let started = Instant::now();
        self.backend.commit(batch, &self.shed, retrying)?;
        self.shed.clear();
        let took = started.elapsed().as_micros() as u64;
        self.stats
            .committed_records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats.last_commit_us.store(took, Ordering::Relaxed);
        self.stats.max_commit_us.fetch_max(took, Ordering::Relaxed);
        Ok(())
    }
}

/// The SQLite file of a single machine: the writer's connection and its bookkeeping.
pub(super) struct Sqlite {
    conn: Connection,
    next_optimize: Instant,
    /// The rollup watermark: an outcome for an earlier hour marks that hour for a new rollup.
    rolled_until: Option<i64>,
}

impl Sqlite {
    pub(super) fn new(conn: Connection) -> Sqlite {
        let rolled_until = rolled_until(&conn).unwrap_or(None);
        Sqlite {
            conn,
            next_optimize: Instant::now() + OPTIMIZE_EVERY,
            rolled_until,
        }
    }
}

impl Backend for Sqlite {
    type Error = rusqlite::Error;

    fn commit(&mut self, batch: &[Record], shed: &[Gap], _retrying: bool) -> rusqlite::Result<()> {
        // A failed SQLite commit wrote nothing: a retry needs no care.
        let tx = self.conn.transaction()?;
        write_records(&tx, batch, self.rolled_until)?;
        for gap in shed {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO no_data (service, start_ms, end_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![gap.service, gap.start_ms, gap.end_ms])?;
        }
        tx.commit()
    }

    fn maintenance(&mut self, now_ms: i64, retention: Duration) {
        match roll_up(&mut self.conn, now_ms) {
            Ok(0) => {}
            Ok(hours) => info!(hours, "Rolled up completed hours."),
            Err(e) => warn!(error = %Chain(&e), "Rollup failed; will retry."),
        }
        self.rolled_until = rolled_until(&self.conn).unwrap_or(self.rolled_until);
        match enforce_retention(&mut self.conn, now_ms, retention) {
            Ok(0) => {}
            Ok(deleted) => info!(chunks = deleted, "Deleted raw outcomes past the retention."),
            Err(e) => warn!(error = %Chain(&e), "Retention failed; will retry."),
        }
        if let Err(e) = prune_mail(&self.conn, now_ms) {
            warn!(error = %Chain(&e), "Pruning old mail failed; will retry.");
        }
        if let Err(e) = reclaim(&self.conn, Some(RECLAIM_PAGES)) {
            warn!(error = %Chain(&e), "Reclaiming free pages failed; will retry.");
        }
        if Instant::now() >= self.next_optimize {
            if let Err(e) = self.conn.execute_batch("PRAGMA optimize;") {
                warn!(error = %Chain(&e), "PRAGMA optimize failed.");
            }
            self.next_optimize = Instant::now() + OPTIMIZE_EVERY;
        }
    }

    fn close(&mut self) {
        if let Err(e) = self
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA optimize;")
        {
            warn!(error = %Chain(&e), "Checkpoint at shutdown failed; the WAL will be replayed on start.");
        }
    }

    fn explain(&self, e: &rusqlite::Error) -> &'static str {
        write_failure(e)
    }
}

/// What a failed write means for an operator.
fn write_failure(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "The disk holding the database is full.",
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "The database is locked by another process."
        }
        Some(rusqlite::ErrorCode::ReadOnly) => "The database is read-only.",
        Some(rusqlite::ErrorCode::SystemIoFailure) => {
            "Writing the database failed (I/O error: disk full or failing?)."
        }
        _ => "Cannot write to the database.",
    }
}

/// A service's stretch without stored outcomes, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gap {
    pub(super) service: super::ServiceNum,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
}

/// Drops the oldest records until `batch` holds at most `keep`, sparing records with events,
/// first outcomes and each service's latest record; returns each run of dropped outcomes as a
/// gap that ends at the service's next kept outcome.
fn shed(batch: &mut Vec<Record>, keep: usize) -> Vec<Gap> {
    use std::collections::HashMap;
    let mut latest: HashMap<super::ServiceNum, usize> = HashMap::new();
    for (i, record) in batch.iter().enumerate() {
        latest.insert(record.service, i);
    }
    let mut excess = batch.len().saturating_sub(keep);
    let mut open: HashMap<super::ServiceNum, i64> = HashMap::new();
    let mut gaps = Vec::new();
    let mut index = 0;
    batch.retain(|record| {
        let i = index;
        index += 1;
        let droppable = excess > 0
            && record.events.is_empty()
            && !record.first
            && latest.get(&record.service) != Some(&i);
        if droppable {
            excess -= 1;
            open.entry(record.service).or_insert(record.outcome.at_ms);
            return false;
        }
        if let Some(start_ms) = open.remove(&record.service) {
            gaps.push(Gap {
                service: record.service,
                start_ms,
                end_ms: record.outcome.at_ms,
            });
        }
        true
    });
    gaps
}

/// Hands free pages back to the file system (`None`: all of them); the database was created
/// with `auto_vacuum = INCREMENTAL`. Returns the pages freed.
pub(super) fn reclaim(conn: &Connection, pages: Option<i64>) -> rusqlite::Result<i64> {
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    if free == 0 {
        return Ok(0);
    }
    let n = pages.map_or(free, |p| p.min(free));
    // incremental_vacuum returns no rows; stepping it through a query runs it to the end.
    let mut statement = conn.prepare(&format!("PRAGMA incremental_vacuum({n})"))?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(n)
}

/// Deletes sent and failed e-mails older than `MAIL_KEPT_MS`.
pub(super) fn prune_mail(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM outbox WHERE state IN ('sent', 'failed') AND done_ms < ?1",
        [now_ms - MAIL_KEPT_MS],
    )
}

/// Deletes up to `RETENTION_BATCH` raw chunks (and their failure details) that are older than
/// the retention and already rolled up. Returns how many chunks it deleted.
pub(super) fn enforce_retention(
    conn: &mut Connection,
    now_ms: i64,
    retention: Duration,
) -> rusqlite::Result<usize> {
    let keep_from_hour = chunk::hour_of(now_ms - retention.as_millis() as i64);
    let rolled_until = rolled_until(conn)?.unwrap_or(i64::MIN);
    let cutoff = keep_from_hour.min(rolled_until);
    let cutoff_ms = cutoff.saturating_mul(HOUR_MS);
    let tx = conn.transaction()?;
    let deleted = tx.execute(
        "DELETE FROM outcome_chunk WHERE rowid IN
             (SELECT rowid FROM outcome_chunk AS c WHERE hour < ?1 AND NOT EXISTS
                 (SELECT 1 FROM rollup_pending AS p WHERE p.service = c.service AND p.hour = c.hour)
              LIMIT ?2)",
        params![cutoff, RETENTION_BATCH],
    )?;
    tx.execute(
        "DELETE FROM failure WHERE (service, at_ms) IN
             (SELECT service, at_ms FROM failure WHERE at_ms < ?1 LIMIT ?2)",
        params![cutoff_ms, RETENTION_BATCH * 10],
    )?;
    tx.commit()?;
    if deleted > 0 {
        conn.execute_batch("PRAGMA incremental_vacuum(1000);").ok();
    }
    Ok(deleted)
}

/// Writes `records` (outcomes and their events) in `tx`. Outcomes for hours before
/// `rolled_until` mark their hour for a new rollup.
pub(super) fn write_records(
    tx: &rusqlite::Transaction<'_>,
    records: &[Record],
    rolled_until: Option<i64>,
) -> rusqlite::Result<()> {
    let mut append = tx.prepare_cached(
        "INSERT INTO outcome_chunk (service, hour, n, data) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (service, hour) DO UPDATE
         SET n = n + 1, data = CAST(data || excluded.data AS BLOB)",
    )?;
    let mut failure = tx.prepare_cached(
        "INSERT OR REPLACE INTO failure (service, at_ms, reason, detail) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut pending =
        tx.prepare_cached("INSERT OR IGNORE INTO rollup_pending (service, hour) VALUES (?1, ?2)")?;
    let mut first_seen =
        tx.prepare_cached("UPDATE service SET first_ms = ?2 WHERE num = ?1 AND first_ms IS NULL")?;
    let mut encoded = Vec::with_capacity(16);
    for record in records {
        let o = &record.outcome;
        let raw = RawOutcome {
            at_ms: o.at_ms,
            latency_us: o.latency.as_micros().min(u128::from(u32::MAX)) as u32,
            reason: o.failure.as_ref().map(|f| f.reason),
        };
        encoded.clear();
        chunk::encode(&raw, &mut encoded);
        let hour = chunk::hour_of(o.at_ms);
        append.execute(params![record.service, hour, encoded])?;
        if rolled_until.is_some_and(|until| hour < until) {
            pending.execute(params![record.service, hour])?;
        }
        if let Some(f) = &o.failure {
            failure.execute(params![
                record.service,
                o.at_ms,
                f.reason.as_str(),
                f.detail
            ])?;
        }
        if record.first {
            first_seen.execute(params![record.service, o.at_ms])?;
        }
        write_events(tx, record)?;
    }
    Ok(())
}

fn write_events(tx: &rusqlite::Transaction<'_>, record: &Record) -> rusqlite::Result<()> {
    for event in &record.events {
        match event {
            Event::IncidentOpened {
                start_ms,
                first_failure,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO incident (service, start_ms, end_ms, reason, detail)
                     VALUES (?1, ?2, NULL, ?3, ?4)",
                )?
                .execute(params![
                    record.service,
                    start_ms,
                    first_failure.reason.as_str(),
                    first_failure.detail
                ])?;
            }
            Event::IncidentClosed { end_ms, .. } => {
                tx.prepare_cached(
                    "UPDATE incident SET end_ms = ?2 WHERE service = ?1 AND end_ms IS NULL",
                )?
                .execute(params![record.service, end_ms])?;
            }
            Event::Blip {
                start_ms,
                end_ms,
                failures,
                reason,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO blip (service, start_ms, end_ms, failures, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    record.service,
                    start_ms,
                    end_ms,
                    failures,
                    reason.as_str()
                ])?;
            }
            Event::NoData { start_ms, end_ms } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO no_data (service, start_ms, end_ms) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![record.service, start_ms, end_ms])?;
            }
        }
    }
    Ok(())
}

/// The first hour not yet rolled up, if any rollup ran.
pub(super) fn rolled_until(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    match conn.query_row(
        "SELECT value FROM meta WHERE key = 'rolled_until_hour'",
        [],
        |r| r.get(0),
    ) {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Rolls up every hour that ended more than `ROLLUP_GRACE_MS` before `now_ms` and is not rolled
/// up yet, one hour per transaction. Returns how many hours were rolled up.
pub(super) fn roll_up(conn: &mut Connection, now_ms: i64) -> rusqlite::Result<usize> {
    let last_complete = chunk::hour_of(now_ms - ROLLUP_GRACE_MS) - 1;
    let start = match rolled_until(conn)? {
        Some(hour) => hour,
        None => {
            let oldest: Option<i64> =
                conn.query_row("SELECT min(hour) FROM outcome_chunk", [], |r| r.get(0))?;
            oldest.unwrap_or(last_complete + 1)
        }
    };
    let mut rolled = 0;
    for hour in start..=last_complete {
        let tx = conn.transaction()?;
        {
            // One chunk at a time: an hour of 10,000 services at 10 s is 25 MB of chunks,
            // which collected first would be the daemon's peak memory once an hour.
            let mut chunks =
                tx.prepare_cached("SELECT service, data FROM outcome_chunk WHERE hour = ?1")?;
            let mut rows = chunks.query([hour])?;
            while let Some(row) = rows.next()? {
                let service: i64 = row.get(0)?;
                let outcomes = chunk::decode(hour, row.get_ref(1)?.as_blob()?);
                let rollup = HourRollup::from_outcomes(hour * HOUR_MS, &outcomes);
                write_rollup(&tx, service, hour, &rollup)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('rolled_until_hour', ?1)",
            [hour + 1],
        )?;
        tx.commit()?;
        rolled += 1;
    }
    if rolled == 0 && rolled_until(conn)?.is_none() {
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('rolled_until_hour', ?1)",
            [start],
        )?;
    }
    // Hours that received outcomes after they were rolled up.
    let tx = conn.transaction()?;
    let pending: Vec<(i64, i64)> = tx
        .prepare("SELECT service, hour FROM rollup_pending WHERE hour <= ?1")?
        .query_map([last_complete], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (service, hour) in &pending {
        let data: Option<Vec<u8>> = tx
            .query_row(
                "SELECT data FROM outcome_chunk WHERE service = ?1 AND hour = ?2",
                params![service, hour],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(data) = data {
            let rollup = HourRollup::from_outcomes(hour * HOUR_MS, &chunk::decode(*hour, &data));
            write_rollup(&tx, *service, *hour, &rollup)?;
        }
        tx.execute(
            "DELETE FROM rollup_pending WHERE service = ?1 AND hour = ?2",
            params![service, hour],
        )?;
    }
    tx.commit()?;
    Ok(rolled + pending.len())
}

/// Bits 0–59: every minute of an hour.
pub(super) const ALL_MINUTES: u64 = (1 << 60) - 1;

fn write_rollup(
    tx: &rusqlite::Transaction<'_>,
    service: i64,
    hour: i64,
    rollup: &HourRollup,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO rollup_hour
             (service, hour, probes, failures, latency, minutes_unprobed, minutes_all_failed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        service,
        hour,
        rollup.probes,
        rollup.failures,
        rollup.latency.encode(),
        (!rollup.minutes_probed & ALL_MINUTES) as i64,
        rollup.minutes_all_failed as i64
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;

    fn record(service: i64, at_ms: i64) -> Record {
        Record {
            service,
            outcome: Outcome {
                at_ms,
                latency: Duration::from_millis(1),
                failure: None,
            },
            events: Vec::new(),
            first: false,
        }
    }

    fn gap(service: i64, start_ms: i64, end_ms: i64) -> Gap {
        Gap {
            service,
            start_ms,
            end_ms,
        }
    }

    #[test]
    fn shedding_drops_the_oldest_plain_outcomes_and_returns_their_gaps() {
        // Two services interleaved, 10 records each 1 s apart; keep 12.
        let mut batch: Vec<Record> = (0..10)
            .flat_map(|i| [record(1, i * 1000), record(2, i * 1000 + 500)])
            .collect();
        let gaps = shed(&mut batch, 12);
        assert_eq!(batch.len(), 12);
        // The 8 oldest went: 4 of each service, each run ending at the next kept outcome.
        assert_eq!(gaps, vec![gap(1, 0, 4000), gap(2, 500, 4500)]);
        assert_eq!(batch[0].outcome.at_ms, 4000);
    }

    #[test]
    fn shedding_spares_events_first_outcomes_and_each_latest_record() {
        let mut opened = record(1, 2000);
        opened.events.push(Event::NoData {
            start_ms: 0,
            end_ms: 1,
        });
        let mut first = record(2, 0);
        first.first = true;
        let mut batch = vec![
            first,
            record(1, 0),
            record(1, 1000),
            opened,
            record(1, 3000),
            record(1, 4000),
            record(2, 1000),
        ];
        let gaps = shed(&mut batch, 0);
        let left: Vec<(i64, i64)> = batch.iter().map(|r| (r.service, r.outcome.at_ms)).collect();
        // Service 2's only other record is its latest; service 1 keeps the event and its latest.
        assert_eq!(left, vec![(2, 0), (1, 2000), (1, 4000), (2, 1000)]);
        assert_eq!(gaps, vec![gap(1, 0, 2000), gap(1, 3000, 4000)]);
    }

    #[test]
    fn shedding_under_the_limit_changes_nothing() {
        let mut batch = vec![record(1, 0), record(1, 1000)];
        assert!(shed(&mut batch, 5).is_empty());
        assert_eq!(batch.len(), 2);
    }
}
