//! Moving up (DESIGN.md §6.3): an SQLite history copied into PostgreSQL under the old daemon's
//! location — outcomes, failures, incidents with their acknowledgements, blips, no-data,
//! rollups, the outbox, what alerting told, statements with their recorded bytes, exclusions
//! and digests — in one PostgreSQL transaction (all or nothing) from one SQLite read
//! transaction (a consistent snapshot).

use std::collections::HashMap;
use std::path::Path;

use postgres::Transaction;
use postgres::types::ToSql;
use rusqlite::Connection;

use super::{PgTarget, writer};
use crate::store::chunk;
use crate::store::{ServiceNum, StoreError, read};

/// Rows sent per statement.
const BATCH: usize = 2_000;

/// What was copied, table by table, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied(pub Vec<(&'static str, u64)>);

impl Copied {
    pub fn of(&self, table: &str) -> u64 {
        self.0
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(
        "the PostgreSQL database already holds history of location `{0}`: move into a \
         database without it (a new one, or another location's), nothing was written"
    )]
    LocationTaken(String),
    #[error(
        "the PostgreSQL database already holds {0} (a fleet's statements, outbox or \
         exclusions): move the first location's history into an empty database, nothing was \
         written"
    )]
    FleetTaken(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for MoveError {
    fn from(e: rusqlite::Error) -> MoveError {
        MoveError::Store(StoreError::Sqlite(e))
    }
}

impl From<postgres::Error> for MoveError {
    fn from(e: postgres::Error) -> MoveError {
        MoveError::Store(StoreError::PostgresQuery(e))
    }
}

/// Copies the SQLite database at `sqlite` into `target` as `location`. Refuses, writing
/// nothing, when the target already has this location's history, or (the fleet's own tables)
/// statements, messages or exclusions.
pub fn move_history(sqlite: &Path, target: &PgTarget, location: &str) -> Result<Copied, MoveError> {
    let mut conn = read::open(sqlite)?;
    let snapshot = conn.transaction()?;
    let mut client = super::connect(target).map_err(StoreError::from)?;
    let mut tx = client.transaction()?;
    refuse_if_taken(&mut tx, location)?;
    let mut copied = Copied::default();

    // Services: the fleet's numbers, by id.
    let services: Vec<(ServiceNum, String, Option<i64>)> =
        rows(&snapshot, "SELECT num, id, first_ms FROM service", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let ids: Vec<String> = services.iter().map(|(_, id, _)| id.clone()).collect();
    let fleet = writer::register_in(&mut tx, &ids)?;
    let num: HashMap<ServiceNum, ServiceNum> = services
        .iter()
        .map(|(old, id, _)| (*old, fleet[id]))
        .collect();
    let firsts: Vec<(i64, i64)> = services
        .iter()
        .filter_map(|(old, _, first)| first.map(|f| (num[old], f)))
        .collect();
    copied.0.push(("service", services.len() as u64));
    let n = insert(
        &mut tx,
        "INSERT INTO service_location (service, location, first_ms)
         SELECT s, $1, f FROM unnest($2::bigint[], $3::bigint[]) AS t (s, f)",
        location,
        &firsts,
        |b| vec![Box::new(col(b, |r| r.0)), Box::new(col(b, |r| r.1))],
    )?;
    copied.0.push(("service_location", n));

    let map = |old: i64| num.get(&old).copied().unwrap_or(old);
    let chunks: Vec<(i64, i64, i64, i64, Vec<u8>)> = rows(
        &snapshot,
        "SELECT service, hour, n, data FROM outcome_chunk",
        |r| {
            let (hour, data): (i64, Vec<u8>) = (r.get(1)?, r.get(3)?);
            let last = chunk::decode(hour, &data)
                .last()
                .map_or(hour * chunk::HOUR_MS, |o| o.at_ms);
            Ok((map(r.get(0)?), hour, r.get(2)?, last, data))
        },
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO outcome_chunk (service, location, hour, n, last_ms, data)
         SELECT s, $1, h, n, l, d
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])
             AS t (s, h, n, l, d)",
        location,
        &chunks,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2)),
                Box::new(col(b, |r| r.3)),
                Box::new(col(b, |r| r.4.clone())),
            ]
        },
    )?;
    copied.0.push(("outcome_chunk", n));

    let failures: Vec<(i64, i64, String, String)> = rows(
        &snapshot,
        "SELECT service, at_ms, reason, detail FROM failure",
        |r| Ok((map(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO failure (service, location, at_ms, reason, detail)
         SELECT s, $1, a, r, d FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[])
             AS t (s, a, r, d)",
        location,
        &failures,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2.clone())),
                Box::new(col(b, |r| r.3.clone())),
            ]
        },
    )?;
    copied.0.push(("failure", n));

    type IncidentRow = (
        i64,
        i64,
        Option<i64>,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let incidents: Vec<IncidentRow> = rows(
        &snapshot,
        "SELECT service, start_ms, end_ms, reason, detail, ack_ms, ack_by, ack_note FROM incident",
        |r| {
            Ok((
                map(r.get(0)?),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO incident (service, location, start_ms, end_ms, reason, detail, ack_ms, ack_by, ack_note)
         SELECT s, $1, a, e, r, d, k, b, o
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                     $7::bigint[], $8::text[], $9::text[]) AS t (s, a, e, r, d, k, b, o)",
        location,
        &incidents,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2)),
                Box::new(col(b, |r| r.3.clone())),
                Box::new(col(b, |r| r.4.clone())),
                Box::new(col(b, |r| r.5)),
                Box::new(col(b, |r| r.6.clone())),
                Box::new(col(b, |r| r.7.clone())),
            ]
        },
    )?;
    copied.0.push(("incident", n));

    let blips: Vec<(i64, i64, i64, i64, String)> = rows(
        &snapshot,
        "SELECT service, start_ms, end_ms, failures, reason FROM blip",
        |r| Ok((map(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO blip (service, location, start_ms, end_ms, failures, reason)
         SELECT s, $1, a, e, f, r
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
             AS t (s, a, e, f, r)",
        location,
        &blips,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2)),
                Box::new(col(b, |r| r.3)),
                Box::new(col(b, |r| r.4.clone())),
            ]
        },
    )?;
    copied.0.push(("blip", n));

    let gaps: Vec<(i64, i64, i64)> = rows(
        &snapshot,
        "SELECT service, start_ms, end_ms FROM no_data",
        |r| Ok((map(r.get(0)?), r.get(1)?, r.get(2)?)),
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO no_data (service, location, start_ms, end_ms)
         SELECT s, $1, a, e FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS t (s, a, e)",
        location,
        &gaps,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2)),
            ]
        },
    )?;
    copied.0.push(("no_data", n));

    type RollupRow = (i64, i64, i64, i64, Vec<u8>, i64, i64);
    let rollups: Vec<RollupRow> = rows(
        &snapshot,
        "SELECT service, hour, probes, failures, latency, minutes_unprobed, minutes_all_failed
         FROM rollup_hour",
        |r| {
            Ok((
                map(r.get(0)?),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )?;
    let n = insert(
        &mut tx,
        "INSERT INTO rollup_hour
             (service, location, hour, probes, failures, latency, minutes_unprobed, minutes_all_failed)
         SELECT s, $1, h, p, f, l, u, a
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[],
                     $7::bigint[], $8::bigint[]) AS t (s, h, p, f, l, u, a)",
        location,
        &rollups,
        |b| {
            vec![
                Box::new(col(b, |r| r.0)),
                Box::new(col(b, |r| r.1)),
                Box::new(col(b, |r| r.2)),
                Box::new(col(b, |r| r.3)),
                Box::new(col(b, |r| r.4.clone())),
                Box::new(col(b, |r| r.5)),
                Box::new(col(b, |r| r.6)),
            ]
        },
    )?;
    copied.0.push(("rollup_hour", n));

    let pending: Vec<(i64, i64)> =
        rows(&snapshot, "SELECT service, hour FROM rollup_pending", |r| {
            Ok((map(r.get(0)?), r.get(1)?))
        })?;
    let n = insert(
        &mut tx,
        "INSERT INTO rollup_pending (service, location, hour)
         SELECT s, $1, h FROM unnest($2::bigint[], $3::bigint[]) AS t (s, h)",
        location,
        &pending,
        |b| vec![Box::new(col(b, |r| r.0)), Box::new(col(b, |r| r.1))],
    )?;
    copied.0.push(("rollup_pending", n));

    let meta: Vec<(String, i64)> = rows(&snapshot, "SELECT key, value FROM meta", |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    for (key, value) in &meta {
        tx.execute(
            "INSERT INTO meta (location, key, value) VALUES ($1, $2, $3)",
            &[&location, key, value],
        )?;
    }
    copied.0.push(("meta", meta.len() as u64));

    copy_fleet_tables(&snapshot, &mut tx, &mut copied)?;
    tx.commit()?;
    // Fresh statistics for the planner: autovacuum would get to a copied history only later,
    // and until then reports over it may scan whole tables.
    client.batch_execute("ANALYZE")?;
    Ok(copied)
}

/// The fleet's own tables: the outbox (new ids, statements follow them), what alerting told,
/// statements and their bytes, exclusions, digests.
fn copy_fleet_tables(
    snapshot: &rusqlite::Transaction<'_>,
    tx: &mut Transaction<'_>,
    copied: &mut Copied,
) -> Result<(), MoveError> {
    let mut outbox_ids: HashMap<i64, i64> = HashMap::new();
    let mut statement = snapshot.prepare(
        "SELECT id, created_ms, kind, subject, sender, recipients, message, state, attempts,
                next_try_ms, leased_until, last_error, done_ms, channel
         FROM outbox ORDER BY id",
    )?;
    let mut found = statement.query([])?;
    while let Some(r) = found.next()? {
        let old: i64 = r.get(0)?;
        let values: (
            i64,
            String,
            String,
            String,
            String,
            Vec<u8>,
            String,
            i64,
            i64,
            i64,
        ) = (
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
        );
        let (last_error, done_ms, channel): (Option<String>, Option<i64>, String) =
            (r.get(11)?, r.get(12)?, r.get(13)?);
        let new: i64 = tx
            .query_one(
                "INSERT INTO outbox (created_ms, kind, subject, sender, recipients, message,
                     state, attempts, next_try_ms, leased_until, last_error, done_ms, channel)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                &[
                    &values.0,
                    &values.1,
                    &values.2,
                    &values.3,
                    &values.4,
                    &values.5,
                    &values.6,
                    &values.7,
                    &values.8,
                    &values.9,
                    &last_error,
                    &done_ms,
                    &channel,
                ],
            )?
            .get(0);
        outbox_ids.insert(old, new);
    }
    copied.0.push(("outbox", outbox_ids.len() as u64));

    /// Service, start, (DOWN, escalated, reminded), steps, (ack told, response and restore
    /// overdue).
    type ToldRow = (String, i64, [Option<i64>; 3], i64, [Option<i64>; 3]);
    let told: Vec<ToldRow> = rows(
        snapshot,
        "SELECT service, start_ms, down_sent_ms, escalated_ms, reminded_ms, escalation_steps,
                ack_told_ms, response_overdue_ms, restore_overdue_ms
         FROM alert_incident",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                [r.get(2)?, r.get(3)?, r.get(4)?],
                r.get(5)?,
                [r.get(6)?, r.get(7)?, r.get(8)?],
            ))
        },
    )?;
    for (service, start, sent, steps, later) in &told {
        tx.execute(
            "INSERT INTO alert_incident (service, start_ms, down_sent_ms, escalated_ms,
                 reminded_ms, escalation_steps, ack_told_ms, response_overdue_ms,
                 restore_overdue_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                service, start, &sent[0], &sent[1], &sent[2], steps, &later[0], &later[1],
                &later[2],
            ],
        )?;
    }
    copied.0.push(("alert_incident", told.len() as u64));

    let flags: Vec<(String, String, i64)> = rows(
        snapshot,
        "SELECT service, flag, since_ms FROM alert_flag",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (service, flag, since) in &flags {
        tx.execute(
            "INSERT INTO alert_flag (service, flag, since_ms) VALUES ($1, $2, $3)",
            &[service, flag, since],
        )?;
    }
    copied.0.push(("alert_flag", flags.len() as u64));

    let statements: Vec<(String, String, String, Option<i64>, i64, i64)> = rows(
        snapshot,
        "SELECT contract, month, sha256, outbox, sends, at_ms FROM statement",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )?;
    for (contract, month, sha, outbox, sends, at) in &statements {
        let outbox = outbox.and_then(|id| outbox_ids.get(&id).copied());
        tx.execute(
            "INSERT INTO statement (contract, month, sha256, outbox, sends, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[contract, month, sha, &outbox, sends, at],
        )?;
    }
    copied.0.push(("statement", statements.len() as u64));

    let copies: Vec<(String, String, String, Vec<u8>, i64)> = rows(
        snapshot,
        "SELECT contract, month, format, bytes, at_ms FROM statement_copy",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    for (contract, month, format, bytes, at) in &copies {
        tx.execute(
            "INSERT INTO statement_copy (contract, month, format, bytes, at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[contract, month, format, bytes, at],
        )?;
    }
    copied.0.push(("statement_copy", copies.len() as u64));

    type ExclusionRow = (
        Option<String>,
        Option<String>,
        i64,
        i64,
        String,
        Option<String>,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let exclusions: Vec<ExclusionRow> = rows(
        snapshot,
        "SELECT service, contract, start_ms, end_ms, reason, by, at_ms, revoked_ms,
                revoke_reason, revoked_by
         FROM exclusion ORDER BY id",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        },
    )?;
    for e in &exclusions {
        tx.execute(
            "INSERT INTO exclusion (service, contract, start_ms, end_ms, reason, by, at_ms,
                 revoked_ms, revoke_reason, revoked_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&e.0, &e.1, &e.2, &e.3, &e.4, &e.5, &e.6, &e.7, &e.8, &e.9],
        )?;
    }
    copied.0.push(("exclusion", exclusions.len() as u64));

    let digests: Vec<(String, String, i64)> =
        rows(snapshot, "SELECT route, day, at_ms FROM digest_sent", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    for (route, day, at) in &digests {
        tx.execute(
            "INSERT INTO digest_sent (route, day, at_ms) VALUES ($1, $2, $3)",
            &[route, day, at],
        )?;
    }
    copied.0.push(("digest_sent", digests.len() as u64));
    Ok(())
}

fn refuse_if_taken(tx: &mut Transaction<'_>, location: &str) -> Result<(), MoveError> {
    let taken: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM outcome_chunk WHERE location = $1)
                 OR EXISTS (SELECT 1 FROM rollup_hour WHERE location = $1)
                 OR EXISTS (SELECT 1 FROM incident WHERE location = $1)",
            &[&location],
        )?
        .get(0);
    if taken {
        return Err(MoveError::LocationTaken(location.to_string()));
    }
    for (table, what) in [
        ("statement", "statement records"),
        ("outbox", "messages"),
        ("exclusion", "exclusions"),
    ] {
        let any: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?
            .get(0);
        if any {
            return Err(MoveError::FleetTaken(what));
        }
    }
    Ok(())
}

/// Every row of an SQLite query.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map([], f)?.collect()
}

/// One column of a batch, as the array a `unnest($n::type[])` takes.
fn col<R, T>(batch: &[R], f: impl Fn(&R) -> T) -> Vec<T> {
    batch.iter().map(f).collect()
}

/// Runs `sql` (`$1` the location, `$2`… one array per column) on `rows` in batches; returns how
/// many rows it inserted.
fn insert<R>(
    tx: &mut Transaction<'_>,
    sql: &str,
    location: &str,
    rows: &[R],
    columns: impl Fn(&[R]) -> Vec<Box<dyn ToSql + Sync>>,
) -> Result<u64, postgres::Error> {
    let statement = tx.prepare(sql)?;
    let mut inserted = 0;
    for batch in rows.chunks(BATCH) {
        let arrays = columns(batch);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&location];
        params.extend(arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)));
        inserted += tx.execute(&statement, &params)?;
    }
    Ok(inserted)
}
