//! Storage of the call center's accounts: tenants, users, agent groups,
//! seats and softphone sessions.
//!
//! Owns: the schema and its migrations, password hashing (argon2id) and the
//! session tokens (random, stored only as a SHA-256 digest).
//!
//! Must never: build SQL from strings (every value is a bound parameter),
//! log a password or a token, or hold state outside the database.
//!
//! SQLite is the embedded default; PostgreSQL (`postgres://` URLs) serves
//! several nodes. The SQL is kept to what both share (`$n` placeholders,
//! integers for flags, `ON CONFLICT`), so each query is written once and
//! compiled for each backend ([`on_db!`]); the schema has a migration folder
//! per backend, file for file the same.

/// Runs `$body` with `$pool` bound to the store's pool, compiled once per
/// backend, so one text of a query serves both. With `, $be` the body may
/// also name `$be::f` for the backend's copy of a [`per_backend!`] item
/// of the calling module.
macro_rules! on_db {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $be:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => {
                use self::sqlite as $be;
                $body
            }
            $crate::Db::Postgres($pool) => {
                use self::pg as $be;
                $body
            }
        }
    };
}

/// Writes its items twice, in modules `sqlite` and `pg`, where `Db` is
/// that backend: for helpers generic over an executor.
macro_rules! per_backend {
    ($($item:item)*) => {
        pub(crate) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            pub(crate) type Db = sqlx::Sqlite;
            $($item)*
        }
        pub(crate) mod pg {
            #[allow(unused_imports)]
            use super::*;
            pub(crate) type Db = sqlx::Postgres;
            $($item)*
        }
    };
}

mod accounts;
mod api_keys;
mod calls;
mod directory;
#[cfg(test)]
mod every_query;
mod group_routing;
mod music;
mod nodes;
mod origins;
mod policy;
mod recording;
mod sessions;
mod sign_in_tokens;
mod sso;
pub mod testing;
mod trunks;
mod webhooks;

pub use accounts::{
    hash_password, skill_name_ok, verify_password, Seat, User, SKILLS_MAX, SKILL_NAME_MAX,
};
pub use api_keys::{ApiKey, KEY_PREFIX, SCOPES};
pub use calls::{CallFilter, CallListRow, CallOutcome, CallRow, DidRoute, DidRouteSet, Write};
pub use directory::{GroupRow, UserRow};
pub use group_routing::GroupRoutingRow;
pub use nodes::Owner;
pub use policy::Policy;
pub use recording::{RecordingSetting, DEFAULT_RETENTION_DAYS};
pub use sessions::{new_token, token_id, SessionCheck};
pub use sso::TenantSso;
pub use trunks::StoredTrunk;
pub use webhooks::{Delivery, Webhook};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A password could not be hashed (never the user's fault).
    #[error("password hashing failed")]
    Hash,
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The data would break a rule of the schema (a duplicate email, say).
    #[error("conflict: {0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The values every query reads back: what both backends decode.
pub(crate) trait Col:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}
impl<T> Col for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A column index (name or position) for both backends' rows.
pub(crate) trait Index:
    sqlx::ColumnIndex<sqlx::sqlite::SqliteRow> + sqlx::ColumnIndex<sqlx::postgres::PgRow>
{
}
impl<I> Index for I where
    I: sqlx::ColumnIndex<sqlx::sqlite::SqliteRow> + sqlx::ColumnIndex<sqlx::postgres::PgRow>
{
}

/// A row of either backend, read the same way (used instead of
/// `sqlx::Row`, so that a row mapper is written once).
pub(crate) trait Get {
    fn try_get<T: Col, I: Index>(&self, index: I) -> std::result::Result<T, sqlx::Error>;
}

impl Get for sqlx::sqlite::SqliteRow {
    fn try_get<T: Col, I: Index>(&self, index: I) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

impl Get for sqlx::postgres::PgRow {
    fn try_get<T: Col, I: Index>(&self, index: I) -> std::result::Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

/// The backend and its pool.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// How to open another connection to the same SQLite file (the
    /// writer's own); `None` for an in-memory store, whose one connection
    /// is the pool's, and for PostgreSQL, whose writer keeps one of the
    /// pool's.
    file: Option<SqliteConnectOptions>,
    /// This node's name, written into the records of the calls it
    /// carries ("local" unless set).
    node: std::sync::Arc<str>,
}

/// The writer's own connection.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// The store's one writer: call records, agent statuses and balances, in
/// the order they were made, on a connection of its own that stays open.
/// A pooled connection costs two more trips to SQLite's thread per batch
/// (sqlx checks it when it is taken and when it is given back).
pub struct Writer {
    store: Store,
    conn: Option<Conn>,
}

impl Writer {
    /// Writes a batch in order (see [`Store::save_all`]); after a failure
    /// the writes go one by one through the pool, and the next batch opens
    /// a fresh connection.
    pub async fn save_all(&mut self, writes: &[Write]) -> Result<()> {
        if self.conn.is_none() {
            self.conn = match (&self.store.db, &self.store.file) {
                (Db::Sqlite(_), Some(opts)) => sqlx::Connection::connect_with(opts)
                    .await
                    .ok()
                    .map(Conn::Sqlite),
                (Db::Sqlite(_), None) => None,
                (Db::Postgres(pool), _) => pool.acquire().await.ok().map(Conn::Postgres),
            };
        }
        let Some(conn) = self.conn.as_mut() else {
            return self.store.save_all(writes).await;
        };
        let batch = match conn {
            Conn::Sqlite(c) => calls::sqlite::save_batch(c, &self.store.node, writes).await,
            Conn::Postgres(c) => calls::pg::save_batch(c, &self.store.node, writes).await,
        };
        match batch {
            Ok(()) => Ok(()),
            Err(_) => {
                self.conn = None;
                self.store.save_one_by_one(writes).await
            }
        }
    }
}

impl Store {
    /// The PostgreSQL database at `url` when there is one, else SQLite in
    /// `data_dir`.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        match url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open_dir(data_dir).await,
        }
    }

    /// Opens (creating if needed) `seatline.db` in `data_dir` and migrates it.
    pub async fn open_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        let opts = SqliteConnectOptions::new()
            .filename(data_dir.join("seatline.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With the write-ahead log, NORMAL syncs at checkpoints, not at
            // every commit: a crash of the process loses nothing; only a
            // power cut or an OS crash can lose the last commits. FULL cost
            // an fsync per call record (9 % of the CPU of a call set-up).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // The database is a file in this process: a query fails as
            // clearly as a ping would, and a ping costs a trip to
            // SQLite's thread on every checkout.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        Self::migrated(pool, Some(opts)).await
    }

    /// A private in-memory database, for tests.
    pub async fn open_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: each in-memory connection would be its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        Self::migrated(pool, None).await
    }

    async fn migrated(pool: SqlitePool, file: Option<SqliteConnectOptions>) -> Result<Self> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            db: Db::Sqlite(pool),
            file,
            node: "local".into(),
        })
    }

    /// Opens a PostgreSQL database (`postgres://user:password@host/db`)
    /// and migrates it. Several processes may do so at once: sqlx takes
    /// an advisory lock for the migration.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        Self::open_postgres_with(opts).await
    }

    /// [`Store::open_postgres`] with options already made (a schema to
    /// use, say).
    pub async fn open_postgres_with(opts: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // Lists come sorted by their text (numbers, group numbers): in
        // byte order, as SQLite sorts, only under the C collation.
        let collation: String = sqlx::query_scalar(
            "SELECT datcollate::text FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&pool)
        .await?;
        if collation != "C" && collation != "POSIX" && !collation.starts_with("C.") {
            tracing::warn!(
                %collation,
                "the database does not sort text in byte order; create it with \
                 LC_COLLATE 'C' (createdb --locale=C --template=template0) for \
                 lists in the same order as SQLite's"
            );
        }
        Ok(Self {
            db: Db::Postgres(pool),
            file: None,
            node: "local".into(),
        })
    }

    /// The same store, for the node named `name`: the calls it saves are
    /// marked as carried by that node.
    pub fn with_node(mut self, name: &str) -> Self {
        self.node = name.into();
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Which backend this is: "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// The store's writer (one per process): its connection opens with
    /// the first batch.
    pub fn writer(&self) -> Writer {
        Writer {
            store: self.clone(),
            conn: None,
        }
    }

    /// The first column of the first row of a test's own query.
    #[cfg(test)]
    pub(crate) async fn first<T: Col>(&self, sql: &str) -> T {
        on_db!(self, |pool| sqlx::query(sql)
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap())
    }
}
