//! Storage of the call center's accounts: tenants, users, agent groups,
//! seats and softphone sessions.
//!
//! Owns: the schema and its migrations, password hashing (argon2id) and the
//! session tokens (random, stored only as a SHA-256 digest).
//!
//! Must never: build SQL from strings (every value is a bound parameter),
//! log a password or a token, or hold state outside the database.
//!
//! SQLite is the embedded default. The SQL is kept to what SQLite and
//! PostgreSQL share (`$n` placeholders, plain types) so a PostgreSQL pool can
//! be added beside it.

mod accounts;
mod api_keys;
mod calls;
mod directory;
mod group_routing;
mod music;
mod origins;
mod policy;
mod recording;
mod sessions;
mod sign_in_tokens;
mod sso;
mod trunks;
mod webhooks;

pub use accounts::{
    hash_password, skill_name_ok, verify_password, Seat, User, SKILLS_MAX, SKILL_NAME_MAX,
};
pub use api_keys::{ApiKey, KEY_PREFIX, SCOPES};
pub use calls::{CallFilter, CallListRow, CallOutcome, CallRow, DidRoute, DidRouteSet, Write};
pub use directory::{GroupRow, UserRow};
pub use group_routing::GroupRoutingRow;
pub use policy::Policy;
pub use recording::{RecordingSetting, DEFAULT_RETENTION_DAYS};
pub use sessions::{new_token, token_id, SessionCheck};
pub use sso::TenantSso;
pub use trunks::StoredTrunk;
pub use webhooks::{Delivery, Webhook};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
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

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// How to open another connection to the same file (the writer's own);
    /// `None` for an in-memory store, whose one connection is the pool's.
    file: Option<SqliteConnectOptions>,
}

/// The store's one writer: call records, agent statuses and balances, in
/// the order they were made, on a connection of its own that stays open.
/// A pooled connection costs two more trips to SQLite's thread per batch
/// (sqlx checks it when it is taken and when it is given back).
pub struct Writer {
    store: Store,
    conn: Option<sqlx::SqliteConnection>,
}

impl Writer {
    /// Writes a batch in order (see [`Store::save_all`]); after a failure
    /// the writes go one by one through the pool, and the next batch opens
    /// a fresh connection.
    pub async fn save_all(&mut self, writes: &[Write]) -> Result<()> {
        if self.conn.is_none() {
            if let Some(opts) = &self.store.file {
                self.conn = sqlx::Connection::connect_with(opts).await.ok();
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return self.store.save_all(writes).await;
        };
        match calls::save_batch(conn, writes).await {
            Ok(()) => Ok(()),
            Err(_) => {
                self.conn = None;
                self.store.save_one_by_one(writes).await
            }
        }
    }
}

impl Store {
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
        Ok(Self { pool, file })
    }

    /// The store's writer (one per process): its connection opens with
    /// the first batch.
    pub fn writer(&self) -> Writer {
        Writer {
            store: self.clone(),
            conn: None,
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}
