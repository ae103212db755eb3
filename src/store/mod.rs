//! The SQLite store: one writer thread fed by a channel, batched transactions, WAL readers.
//!
//! `Store::open` migrates the schema, registers the configured services and returns what each
//! service's state machine needs to resume; after that only the writer thread writes. Readers
//! (the CLI, reports) open their own connections with `read::open`.

pub mod acks;
pub mod alerts;
mod chunk;
pub mod db;
pub mod exclusions;
pub mod history;
pub mod outbox;
pub mod pg;
pub mod read;
mod rollup;
mod schema;
pub mod statements;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use chunk::{HOUR_MS, RawOutcome, hour_of};
pub use rollup::{Histogram, HourRollup};

use crate::clock::{Clock, Heartbeat};
use crate::probe::Outcome;
use crate::sla::tracker::{Event, Resume};

/// A service's number in the database (stable across restarts and renames of nothing else).
pub type ServiceNum = i64;

/// What the store writes for one probe: the outcome and what the state machine concluded.
#[derive(Debug, Clone)]
pub struct Record {
    pub service: ServiceNum,
    pub outcome: Outcome,
    pub events: Vec<Event>,
    /// The first outcome ever recorded for this service.
    pub first: bool,
}

/// How the writer behaves.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Commit at least this often.
    pub flush_interval: Duration,
    /// Raw outcomes older than this are deleted (after they were rolled up).
    pub retention: Duration,
    /// The wall clock that decides which hours are complete and which outcomes are old.
    pub clock: Clock,
}

/// Counters the writer keeps, read by metrics and the benchmark.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Records sent but not yet committed.
    pub queued: AtomicU64,
    pub committed_records: AtomicU64,
    pub commits: AtomicU64,
    pub last_commit_us: AtomicU64,
    pub max_commit_us: AtomicU64,
    pub write_errors: AtomicU64,
    /// Outcomes dropped because the database refused writes for too long (recorded as no-data).
    pub shed_records: AtomicU64,
    /// The latest commit failed (the database refuses writes or is unreachable): records wait
    /// in memory until one succeeds. `/readyz` says so.
    pub refusing: std::sync::atomic::AtomicBool,
    /// The writer's last loop turn (monotonic): the watchdog and `/healthz` check that it moves.
    pub heartbeat: Heartbeat,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the database file {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate the database {path}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: schema::MigrationError,
    },
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] pg::PgError),
    #[error("PostgreSQL error")]
    PostgresQuery(#[from] postgres::Error),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error(
        "the history overlaps what is stored: service `{service}` already has outcomes up to \
         {last_stored}; import only outcomes after that"
    )]
    Overlap {
        service: String,
        last_stored: String,
    },
}

enum Command {
    Record(Box<Record>),
    /// Commit everything sent before, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Commit everything sent before, answer and stop.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// The handle probes write through. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    sender: std::sync::mpsc::Sender<Command>,
    stats: Arc<StoreStats>,
}

/// What `Store::open` hands back besides the store.
pub struct Opened {
    pub store: Store,
    pub writer: std::thread::JoinHandle<()>,
    /// Each configured service's number and resume state, by id.
    pub services: HashMap<String, (ServiceNum, Resume)>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, registers `service_ids`
    /// and starts the writer thread. `recent` is how many latest outcomes to load per service.
    pub fn open(
        path: &Path,
        service_ids: &[String],
        recent: usize,
        settings: StoreSettings,
    ) -> Result<Opened, StoreError> {
        let mut conn = open_writer_connection(path)?;
        let services = register_on(&mut conn, service_ids, recent)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let stats = Arc::new(StoreStats::default());
        let writer = writer::spawn(writer::Sqlite::new(conn), receiver, stats.clone(), settings);
        Ok(Opened {
            store: Store { sender, stats },
            writer,
            services,
        })
    }

    /// Opens the fleet's PostgreSQL store as `location`: connects, migrates, registers
    /// `service_ids` (numbers a fleet shares), loads each service's resume state from what this
    /// location wrote, and starts the writer thread, which reconnects by itself after an
    /// outage and meanwhile keeps records in memory as for SQLite.
    pub fn open_postgres(
        target: &pg::PgTarget,
        location: &str,
        service_ids: &[String],
        recent: usize,
        settings: StoreSettings,
    ) -> Result<Opened, StoreError> {
        let mut client = pg::connect(target)?;
        let services = register_postgres(&mut client, location, service_ids, recent)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let stats = Arc::new(StoreStats::default());
        let backend = pg::writer::Postgres::new(target.clone(), location.to_string(), Some(client));
        let writer = writer::spawn(backend, receiver, stats.clone(), settings);
        Ok(Opened {
            store: Store { sender, stats },
            writer,
            services,
        })
    }

    /// Queues a record for the next batch. Never blocks.
    pub fn record(&self, record: Record) -> Result<(), StoreError> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.sender
            .send(Command::Record(Box::new(record)))
            .map_err(|_| StoreError::WriterGone)
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.sender
            .send(Command::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    /// Commits everything queued and stops the writer thread.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.sender
            .send(Command::Close(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    pub fn stats(&self) -> &Arc<StoreStats> {
        &self.stats
    }
}

/// The connection shared by the alerting, statement and delivery tasks (either backend).
pub type SharedConnection = Arc<Mutex<db::Db>>;

/// Runs `f` on the connection off the async threads.
pub async fn with_db<T: Send + 'static, E: Send + 'static>(
    db: &SharedConnection,
    f: impl FnOnce(&db::Db) -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&conn)
    })
    .await
    .expect("database work does not panic")
}

/// Registers services a reload added, beside the running writer, and returns each one's number
/// and resume state as `Store::open` does.
pub fn register(
    daemon: &crate::config::Daemon,
    service_ids: &[String],
    recent: usize,
) -> Result<HashMap<String, (ServiceNum, Resume)>, StoreError> {
    match &daemon.database {
        crate::config::Database::Sqlite(path) => {
            let mut conn = open_writer_connection(path)?;
            register_on(&mut conn, service_ids, recent)
        }
        crate::config::Database::Postgres(target) => {
            let mut client = pg::connect(target)?;
            register_postgres(&mut client, &daemon.location, service_ids, recent)
        }
    }
}

/// Registers services in the fleet's numbering and reads what `location` wrote of each.
fn register_postgres(
    client: &mut postgres::Client,
    location: &str,
    service_ids: &[String],
    recent: usize,
) -> Result<HashMap<String, (ServiceNum, Resume)>, StoreError> {
    let nums = pg::writer::register(client, service_ids)?;
    let mut services = HashMap::with_capacity(nums.len());
    for (id, num) in nums {
        let resume = pg::read::resume(client, location, num, recent)?;
        services.insert(id, (num, resume));
    }
    Ok(services)
}

fn register_on(
    conn: &mut Connection,
    service_ids: &[String],
    recent: usize,
) -> Result<HashMap<String, (ServiceNum, Resume)>, StoreError> {
    let mut services = HashMap::new();
    let tx = conn.transaction()?;
    for id in service_ids {
        tx.execute("INSERT OR IGNORE INTO service (id) VALUES (?1)", [id])?;
        let num: ServiceNum =
            tx.query_row("SELECT num FROM service WHERE id = ?1", [id], |r| r.get(0))?;
        let resume = read::resume(&tx, num, recent)?;
        services.insert(id.clone(), (num, resume));
    }
    tx.commit()?;
    Ok(services)
}

/// Rolls up every completed hour in the database at `path`. The daemon's writer does this on
/// its own; this is for tools (the benchmark, maintenance) working on a stopped daemon's file.
pub fn roll_up(path: &Path, now_ms: i64) -> Result<usize, StoreError> {
    let mut conn = open_writer_connection(path)?;
    Ok(writer::roll_up(&mut conn, now_ms)?)
}

/// Rolls up completed hours, deletes every raw outcome past `retention` and old mail, and
/// hands the freed pages back to the file system (as the writer does a little at a time).
/// Returns (hours rolled up, chunks deleted).
pub fn maintain(
    path: &Path,
    now_ms: i64,
    retention: Duration,
) -> Result<(usize, usize), StoreError> {
    let mut conn = open_writer_connection(path)?;
    let rolled = writer::roll_up(&mut conn, now_ms)?;
    let mut deleted = 0;
    loop {
        let n = writer::enforce_retention(&mut conn, now_ms, retention)?;
        if n == 0 {
            break;
        }
        deleted += n;
    }
    writer::prune_mail(&conn, now_ms)?;
    writer::reclaim(&conn, None)?;
    Ok((rolled, deleted))
}

/// What a backfill of `service_id` continues from: the state to resume and the latest stored
/// outcome's time. Creates and migrates the database if needed.
pub fn history_state(
    path: &Path,
    service_id: &str,
    recent: usize,
) -> Result<(Resume, Option<i64>), StoreError> {
    let conn = open_writer_connection(path)?;
    match read::service_num(&conn, service_id)? {
        None => Ok((Resume::default(), None)),
        Some(num) => {
            let resume = read::resume(&conn, num, recent)?;
            let last = read::latest_stored_ms(&conn, num)?;
            Ok((resume, last))
        }
    }
}

/// Appends a backfill of one service in a single transaction (all or nothing): registers the
/// service, checks that every record is newer than anything stored, writes outcomes and
/// events, then rolls up completed hours and applies `retention` as the daemon would (raw
/// outcomes older than it are rolled up and not kept), so the file is what steady operation
/// leaves. `records`' service numbers are set here.
pub fn append_history(
    path: &Path,
    service_id: &str,
    mut records: Vec<Record>,
    now_ms: i64,
    retention: Duration,
) -> Result<usize, StoreError> {
    let mut conn = open_writer_connection(path)?;
    let rolled_until = writer::rolled_until(&conn)?;
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO service (id) VALUES (?1)",
        [service_id],
    )?;
    let num: ServiceNum =
        tx.query_row("SELECT num FROM service WHERE id = ?1", [service_id], |r| {
            r.get(0)
        })?;
    let last = read::latest_stored_ms(&tx, num)?;
    if let (Some(last), Some(first)) = (last, records.first())
        && first.outcome.at_ms <= last
    {
        return Err(StoreError::Overlap {
            service: service_id.to_string(),
            last_stored: crate::text::timestamp(last),
        });
    }
    for record in &mut records {
        record.service = num;
    }
    writer::write_records(&tx, &records, rolled_until)?;
    tx.commit()?;
    writer::roll_up(&mut conn, now_ms)?;
    let mut expired = 0;
    loop {
        let n = writer::enforce_retention(&mut conn, now_ms, retention)?;
        if n == 0 {
            break;
        }
        expired += n;
    }
    if expired > 0 {
        writer::reclaim(&conn, None)?;
    }
    Ok(records.len())
}

/// Writes a consistent copy of the database at `path` to `target` (which must not exist) with
/// `VACUUM INTO`: one read transaction, so the daemon keeps writing meanwhile; the copy is
/// compacted, created with mode 0600, and checked with `PRAGMA integrity_check`. Returns its
/// size in bytes.
pub fn backup(path: &Path, target: &Path) -> Result<u64, BackupError> {
    if target.exists() {
        return Err(BackupError::Exists(target.to_path_buf()));
    }
    let conn = read::open(path)?;
    create_private_file(target).map_err(|source| StoreError::Create {
        path: target.to_path_buf(),
        source,
    })?;
    let copied = conn
        .execute("VACUUM INTO ?1", [target.to_string_lossy()])
        .map_err(StoreError::from);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(target);
        return Err(e.into());
    }
    let check: String = read::open(target)?
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(StoreError::from)?;
    if check != "ok" {
        return Err(BackupError::Integrity(check));
    }
    Ok(std::fs::metadata(target).map(|m| m.len()).unwrap_or(0))
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: back up to a new file")]
    Exists(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the copy fails its integrity check: {0}")]
    Integrity(String),
}

/// The SQLite file of `database`, for `what`, which reads SQLite only (an error naming it on
/// PostgreSQL).
pub fn sqlite_file<'a>(
    database: &'a crate::config::Database,
    what: &'static str,
) -> Result<&'a Path, StoreError> {
    database
        .sqlite()
        .ok_or(StoreError::Db(db::DbError::SqliteOnly(what)))
}

/// A connection for the tables a fleet shares (outbox, statements, exclusions, alert records)
/// on either backend: the SQLite file opened for writing (created and migrated if absent), or
/// the fleet's PostgreSQL as `location` (its schema as the daemons migrated it).
pub fn open_db(daemon: &crate::config::Daemon) -> Result<db::Db, StoreError> {
    Ok(match &daemon.database {
        crate::config::Database::Sqlite(path) => db::Db::from(open_writer_connection(path)?),
        crate::config::Database::Postgres(target) => {
            db::Db::postgres(target, &daemon.location, &daemon.locations)?
        }
    })
}

/// A connection for reading either backend: the SQLite file read-only (it must exist), or the
/// fleet's PostgreSQL.
pub fn open_reader_db(daemon: &crate::config::Daemon) -> Result<db::Db, StoreError> {
    Ok(match &daemon.database {
        crate::config::Database::Sqlite(path) => db::Db::from(read::open(path)?),
        crate::config::Database::Postgres(target) => {
            db::Db::postgres(target, &daemon.location, &daemon.locations)?
        }
    })
}

/// Opens the database for writing: created with mode 0600 if absent, WAL, migrated.
pub fn open_writer_connection(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        create_private_file(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Cached statements keep their plan whatever is bound (see `read::open`).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // Incremental auto-vacuum lets retention give space back to the file system. It must be
    // chosen before anything is written (WAL mode writes the header); a database made without
    // it is converted once, with a VACUUM.
    let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if auto_vacuum != 2 {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
        if pages > 0 {
            tracing::info!(path = %path.display(), pages, "Converting the database to incremental auto-vacuum (once).");
            conn.execute_batch("VACUUM;")?;
        }
    }
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA wal_autocheckpoint = 4000;",
    )?;
    schema::migrate(&mut conn).map_err(|source| StoreError::Migrate {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
