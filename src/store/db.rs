//! One connection to either backend, for everything but the writer: the same SQL on SQLite and
//! PostgreSQL for the tables a fleet shares (outbox, alert records, statements, exclusions,
//! digests), and the reads reports make, each backend its own way (`store::read` for SQLite,
//! `store::pg::read` for PostgreSQL).
//!
//! SQL here is written once, in the dialect both understand: numbered parameters (`?1`, turned
//! into `$1` for PostgreSQL), `ON CONFLICT … DO …` rather than `INSERT OR …`, `RETURNING id`,
//! `CASE` rather than two-argument `MAX`, and `CAST(… AS BIGINT)` where PostgreSQL would answer a
//! `NUMERIC`.

use std::cell::RefCell;
use std::collections::HashMap;

use super::pg::{self, PgTarget};

/// A failed query on either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    #[error(transparent)]
    Connect(#[from] pg::PgError),
    #[error("the query answered no row")]
    NoRow,
    #[error("{0} does not work on PostgreSQL yet")]
    SqliteOnly(&'static str),
}

/// A parameter of a query: what both backends bind the same way.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}

/// The parameters of a query: `args![a, b]`.
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::store::db::Arg::from($arg)),*][..]
    };
}
pub use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(Some(v)) => ValueRef::Integer(v),
            Arg::Text(Some(v)) => ValueRef::Text(v.as_bytes()),
            Arg::Bytes(Some(v)) => ValueRef::Blob(v),
            Arg::Int(None) | Arg::Text(None) | Arg::Bytes(None) => ValueRef::Null,
        }))
    }
}

impl postgres::types::ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            Arg::Int(v) if *ty == Type::INT4 => v.map(i32::try_from).transpose()?.to_sql(ty, out),
            Arg::Int(v) if *ty == Type::BOOL => v.map(|v| v != 0).to_sql(ty, out),
            Arg::Int(v) => v.to_sql(ty, out),
            Arg::Text(v) => v.to_sql(ty, out),
            Arg::Bytes(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        [
            Type::INT8,
            Type::INT4,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
            Type::BYTEA,
        ]
        .contains(ty)
    }

    postgres::types::to_sql_checked!();
}

/// A value both backends read the same way (`i64`, `String`, `Vec<u8>`, `bool`, and `Option`s
/// of them).
pub trait Column: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}
impl<T> Column for T where T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

/// A result row of either backend.
pub enum Row<'a, 'b> {
    Sqlite(&'a rusqlite::Row<'b>),
    Postgres(&'a postgres::Row),
}

impl Row<'_, '_> {
    pub fn get<T: Column>(&self, index: usize) -> Result<T, DbError> {
        match self {
            Row::Sqlite(r) => Ok(r.get(index)?),
            Row::Postgres(r) => Ok(r.try_get(index)?),
        }
    }
}

/// A PostgreSQL connection with its prepared statements; reconnects after the server went away.
pub struct PgConnection {
    target: PgTarget,
    client: Option<postgres::Client>,
    prepared: HashMap<String, postgres::Statement>,
    /// This daemon's location and the fleet's, for reads that combine them.
    pub location: String,
    pub locations: Vec<String>,
    /// Reads show this one location's own view rather than the verdict (`report --location`).
    pub only: Option<String>,
    /// What a report of many services read at once (`store::history::preload`).
    pub preloaded: Option<pg::read::Preloaded>,
}

impl PgConnection {
    fn client(&mut self) -> Result<&mut postgres::Client, DbError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.prepared.clear();
            self.client = Some(pg::connect_reader(&self.target)?);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }

    fn statement(
        &mut self,
        sql: &str,
    ) -> Result<(postgres::Statement, &mut postgres::Client), DbError> {
        self.client()?;
        let client = self.client.as_mut().expect("connected");
        let statement = match self.prepared.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(&numbered(sql))?;
                self.prepared.insert(sql.to_string(), s.clone());
                s
            }
        };
        Ok((statement, client))
    }

    /// The client with the statements it keeps prepared, for `store::pg::read`.
    pub fn reader(&mut self) -> Result<PgReader<'_>, DbError> {
        self.client()?;
        Ok(PgReader {
            client: self.client.as_mut().expect("connected"),
            prepared: &mut self.prepared,
        })
    }

    /// A second connection to the same database, for reads that split across two.
    pub fn connect_another(&self) -> Result<postgres::Client, DbError> {
        Ok(pg::connect_reader(&self.target)?)
    }

    /// What `store::history::preload` read, beside the reader for what it did not.
    pub fn preloaded_and_reader(
        &mut self,
    ) -> Result<(Option<&pg::read::Preloaded>, PgReader<'_>), DbError> {
        self.client()?;
        let reader = PgReader {
            client: self.client.as_mut().expect("connected"),
            prepared: &mut self.prepared,
        };
        Ok((self.preloaded.as_ref(), reader))
    }
}

/// A PostgreSQL connection's client reading through statements it prepares once and keeps
/// (a report asks the same few questions of every service).
pub struct PgReader<'a> {
    client: &'a mut postgres::Client,
    prepared: &'a mut HashMap<String, postgres::Statement>,
}

impl pg::read::Reader for PgReader<'_> {
    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let statement = match self.prepared.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.client.prepare(sql)?;
                self.prepared.insert(sql.to_string(), s.clone());
                s
            }
        };
        self.client.query(&statement, params)
    }
}

impl Drop for PgConnection {
    /// Closing a blocking client blocks on a runtime of its own, which a thread of the async
    /// runtime may not do (tasks holding a connection end there): such a close moves to a
    /// thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let closing = std::thread::Builder::new()
                .name("slaprobe-pg-close".into())
                .spawn(move || drop(client));
            if let Err(e) = closing {
                tracing::warn!(error = %e, "Cannot close a PostgreSQL connection cleanly.");
            }
        }
    }
}

/// `?N` → `$N`: SQLite's numbered parameters in PostgreSQL's spelling.
fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The store's connection for readers and the fleet's shared tables.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgConnection>>),
}

impl From<rusqlite::Connection> for Db {
    fn from(conn: rusqlite::Connection) -> Self {
        Db::Sqlite(conn)
    }
}

impl Db {
    /// Connects to a fleet's PostgreSQL (schema left as the daemons migrated it).
    pub fn postgres(
        target: &PgTarget,
        location: &str,
        locations: &[String],
    ) -> Result<Db, DbError> {
        let client = pg::connect_reader(target)?;
        Ok(Db::Postgres(Box::new(RefCell::new(PgConnection {
            target: target.clone(),
            client: Some(client),
            prepared: HashMap::new(),
            location: location.to_string(),
            locations: locations.to_vec(),
            only: None,
            preloaded: None,
        }))))
    }

    /// Reads from here on show `location`'s own view, not the fleet's verdict (PostgreSQL; an
    /// SQLite file holds one location's view anyway).
    pub fn narrow_to(&mut self, location: &str) {
        if let Db::Postgres(pg) = self {
            pg.get_mut().only = Some(location.to_string());
        }
    }

    /// A handle to run queries with.
    pub fn conn(&self) -> Conn<'_> {
        match self {
            Db::Sqlite(conn) => Conn::Sqlite(conn),
            Db::Postgres(pg) => Conn::Postgres(pg),
        }
    }

    /// The SQLite connection, for what only SQLite has (backup, the file's own reads).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(conn) => Some(conn),
            Db::Postgres(_) => None,
        }
    }

    /// The SQLite connection for `what`, or an error naming it on PostgreSQL.
    pub fn sqlite_for(&self, what: &'static str) -> Result<&rusqlite::Connection, DbError> {
        self.sqlite().ok_or(DbError::SqliteOnly(what))
    }
}

/// A borrowed connection to either backend: what the shared tables' functions take. An SQLite
/// connection (or transaction) someone already holds becomes one with `Conn::from(&conn)`.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a RefCell<PgConnection>),
}

impl<'a> From<&'a rusqlite::Connection> for Conn<'a> {
    fn from(conn: &'a rusqlite::Connection) -> Self {
        Conn::Sqlite(conn)
    }
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Self {
        db.conn()
    }
}

impl<'a> Conn<'a> {
    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(self, sql: &str, args: &[Arg<'_>]) -> Result<usize, DbError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))?),
            Conn::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let (statement, client) = pg.statement(sql)?;
                Ok(client.execute(&statement, &pg_args(args))? as usize)
            }
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query<T>(
        self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Conn::Postgres(pg) => {
                let rows = {
                    let mut pg = pg.borrow_mut();
                    let (statement, client) = pg.statement(sql)?;
                    client.query(&statement, &pg_args(args))?
                };
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnMut(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        Ok(self.query(sql, args, f)?.into_iter().next())
    }

    /// The first row of a query that always answers one (`COUNT`, `RETURNING`).
    pub fn query_one<T>(
        self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnMut(&Row<'_, '_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, args, f)?.ok_or(DbError::NoRow)
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled back otherwise. On
    /// SQLite the transaction is immediate (it takes the write lock at once), so two processes
    /// deciding the same thing take turns.
    pub fn transaction<T, E: From<DbError>>(
        self,
        f: impl FnOnce(Conn<'a>) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self {
            Conn::Sqlite(_) => "BEGIN IMMEDIATE",
            Conn::Postgres(_) => "BEGIN",
        };
        self.batch(begin)?;
        let mut guard = Rollback {
            conn: self,
            armed: true,
        };
        let value = f(self)?;
        guard.armed = false;
        if let Err(e) = self.batch("COMMIT") {
            let _ = self.batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(value)
    }

    fn batch(self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(pg) => Ok(pg.borrow_mut().client()?.batch_execute(sql)?),
        }
    }

    /// Whether this is PostgreSQL (the few statements whose spelling differs ask).
    pub fn is_postgres(self) -> bool {
        matches!(self, Conn::Postgres(_))
    }
}

/// Rolls an unfinished transaction back if `f` returned an error or panicked.
struct Rollback<'a> {
    conn: Conn<'a>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}
