//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Growth follows change, not time: incidents, blips and no-data stretches are intervals; raw
//! outcomes are hourly blobs kept for the retention period; hourly rollups are kept for ever.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`. Never edit a shipped entry:
/// add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE service (
        num       INTEGER PRIMARY KEY,
        id        TEXT NOT NULL UNIQUE,
        first_ms  INTEGER               -- first outcome ever recorded
    );

    -- Raw outcomes, one row per service and hour (see store::chunk for the encoding).
    CREATE TABLE outcome_chunk (
        service  INTEGER NOT NULL,
        hour     INTEGER NOT NULL,      -- Unix time / 3600
        n        INTEGER NOT NULL,
        data     BLOB NOT NULL,
        PRIMARY KEY (service, hour)
    );
    CREATE INDEX outcome_chunk_by_hour ON outcome_chunk (hour);

    -- The reason and detail of each failed outcome (kept as long as the raw outcomes).
    CREATE TABLE failure (
        service  INTEGER NOT NULL,
        at_ms    INTEGER NOT NULL,
        reason   TEXT NOT NULL,
        detail   TEXT NOT NULL,
        PRIMARY KEY (service, at_ms)
    ) WITHOUT ROWID;

    CREATE TABLE incident (
        id        INTEGER PRIMARY KEY,
        service   INTEGER NOT NULL,
        start_ms  INTEGER NOT NULL,     -- the first failure of the confirming streak
        end_ms    INTEGER,              -- the first success of the recovering streak; NULL: open
        reason    TEXT NOT NULL,        -- of the first failure
        detail    TEXT NOT NULL
    );
    CREATE INDEX incident_by_service ON incident (service, start_ms);
    CREATE UNIQUE INDEX incident_open ON incident (service) WHERE end_ms IS NULL;

    CREATE TABLE blip (
        service   INTEGER NOT NULL,
        start_ms  INTEGER NOT NULL,
        end_ms    INTEGER NOT NULL,
        failures  INTEGER NOT NULL,
        reason    TEXT NOT NULL,
        PRIMARY KEY (service, start_ms)
    ) WITHOUT ROWID;

    CREATE TABLE no_data (
        service   INTEGER NOT NULL,
        start_ms  INTEGER NOT NULL,
        end_ms    INTEGER NOT NULL,
        PRIMARY KEY (service, start_ms)
    ) WITHOUT ROWID;

    CREATE TABLE rollup_hour (
        service             INTEGER NOT NULL,
        hour                INTEGER NOT NULL,
        probes              INTEGER NOT NULL,
        failures            INTEGER NOT NULL,
        latency             BLOB NOT NULL,     -- store::rollup::Histogram, successful probes
        minutes_probed      INTEGER NOT NULL,  -- bit m: a probe started in minute m
        minutes_all_failed  INTEGER NOT NULL,  -- bit m: every probe in minute m failed
        PRIMARY KEY (service, hour)
    ) WITHOUT ROWID;

    -- (service, hour) pairs that got outcomes after their hour was rolled up (late or imported
    -- data): the next rollup recomputes them.
    CREATE TABLE rollup_pending (
        service  INTEGER NOT NULL,
        hour     INTEGER NOT NULL,
        PRIMARY KEY (service, hour)
    ) WITHOUT ROWID;

    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 2: alerting and delivery.
    "
    -- Every e-mail to send, written before any attempt (see mail::outbox). `message` is the
    -- complete RFC 5322 text, so a retry sends the same bytes (same Message-ID).
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY,
        created_ms    INTEGER NOT NULL,
        kind          TEXT NOT NULL,      -- alert | statement
        subject       TEXT NOT NULL,
        sender        TEXT NOT NULL,      -- envelope MAIL FROM
        recipients    TEXT NOT NULL,      -- envelope RCPT TO, one address per line
        message       BLOB NOT NULL,
        state         TEXT NOT NULL,      -- pending | sent | failed
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try_ms   INTEGER NOT NULL,
        leased_until  INTEGER NOT NULL DEFAULT 0,  -- claimed by a sender until then (ms)
        last_error    TEXT,
        done_ms       INTEGER             -- when it was accepted (sent) or given up (failed)
    );
    CREATE INDEX outbox_pending ON outbox (next_try_ms) WHERE state = 'pending';

    -- What on-call was told about each incident, so a restart neither repeats nor forgets.
    CREATE TABLE alert_incident (
        service        TEXT NOT NULL,
        start_ms       INTEGER NOT NULL,
        down_sent_ms   INTEGER,           -- DOWN queued (NULL: not yet, e.g. in maintenance)
        escalated_ms   INTEGER,
        reminded_ms    INTEGER,           -- the latest STILL DOWN
        PRIMARY KEY (service, start_ms)
    ) WITHOUT ROWID;

    -- Budget notices in force (burn-rate rules firing, SLA at risk for a month): one notice
    -- per flag until it clears.
    CREATE TABLE alert_flag (
        service   TEXT NOT NULL,
        flag      TEXT NOT NULL,
        since_ms  INTEGER NOT NULL,
        PRIMARY KEY (service, flag)
    ) WITHOUT ROWID;

    -- Client statements sent: one row per contract and month; `sha256` of the statement text.
    CREATE TABLE statement (
        contract  TEXT NOT NULL,
        month     TEXT NOT NULL,          -- YYYY-MM in the contract's zone
        sha256    TEXT NOT NULL,
        outbox    INTEGER,                -- the message (NULL: nothing to send under the policy)
        sends     INTEGER NOT NULL DEFAULT 1,
        at_ms     INTEGER NOT NULL,
        PRIMARY KEY (contract, month)
    ) WITHOUT ROWID;
    ",
    // 3: a recorded statement's bytes, per format, as sent (DESIGN.md §6.1).
    "
    CREATE TABLE statement_copy (
        contract  TEXT NOT NULL,
        month     TEXT NOT NULL,
        format    TEXT NOT NULL,          -- text | html | json | csv
        bytes     BLOB NOT NULL,
        at_ms     INTEGER NOT NULL,       -- when it was recorded
        PRIMARY KEY (contract, month, format)
    ) WITHOUT ROWID;
    ",
    // 4: agreed exclusions, an audited act (DESIGN.md §6.1): never deleted, revoked in place.
    "
    CREATE TABLE exclusion (
        id             INTEGER PRIMARY KEY,
        service        TEXT,              -- one of service and contract is set
        contract       TEXT,
        start_ms       INTEGER NOT NULL,
        end_ms         INTEGER NOT NULL,
        reason         TEXT NOT NULL,
        by             TEXT,
        at_ms          INTEGER NOT NULL,
        revoked_ms     INTEGER,
        revoke_reason  TEXT,
        revoked_by     TEXT
    );
    CREATE INDEX exclusion_span ON exclusion (end_ms);
    ",
    // 5: incident response and channels (DESIGN.md §6.2).
    "
    -- Who acknowledged an incident, when and why (slaprobe ack, the API).
    ALTER TABLE incident ADD COLUMN ack_ms INTEGER;
    ALTER TABLE incident ADD COLUMN ack_by TEXT;
    ALTER TABLE incident ADD COLUMN ack_note TEXT;

    -- The escalation chain: how many steps were sent; ACKNOWLEDGED and the OVERDUE notices.
    ALTER TABLE alert_incident ADD COLUMN escalation_steps INTEGER NOT NULL DEFAULT 0;
    UPDATE alert_incident SET escalation_steps = 1 WHERE escalated_ms IS NOT NULL;
    ALTER TABLE alert_incident ADD COLUMN ack_told_ms INTEGER;
    ALTER TABLE alert_incident ADD COLUMN response_overdue_ms INTEGER;
    ALTER TABLE alert_incident ADD COLUMN restore_overdue_ms INTEGER;

    -- Messages to channels beside e-mail: `recipients` names the channel (no secrets) and
    -- `message` is the body. Messages to one destination go out in order.
    ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
    CREATE INDEX outbox_destination ON outbox (channel, recipients, id) WHERE state = 'pending';

    -- Daily digests sent: one per route and local day.
    CREATE TABLE digest_sent (
        route  TEXT NOT NULL,
        day    TEXT NOT NULL,             -- YYYY-MM-DD in [daemon] timezone, the day summarised
        at_ms  INTEGER NOT NULL,
        PRIMARY KEY (route, day)
    ) WITHOUT ROWID;
    ",
    // 6: a smaller rollup row. The minutes without a probe instead of those with one: nearly
    // always none, which SQLite stores in no bytes at all (the mask of 60 minutes took 8).
    "
    ALTER TABLE rollup_hour RENAME COLUMN minutes_probed TO minutes_unprobed;
    UPDATE rollup_hour SET minutes_unprobed = (~minutes_unprobed) & 1152921504606846975;
    ",
];

/// The schema version this build writes.
pub const VERSION: usize = MIGRATIONS.len();

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than this slaprobe knows ({VERSION}): \
         upgrade slaprobe or restore a backup"
    )]
    TooNew { found: usize },
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
}

/// Brings the schema up to `VERSION`, each step in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrationError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let found = found.max(0) as usize;
    if found > VERSION {
        return Err(MigrationError::TooNew { found });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, VERSION);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION as i64 + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::TooNew { .. })
        ));
    }
}
