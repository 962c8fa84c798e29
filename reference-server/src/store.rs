//! Durable storage on SQLite (the embedded default) or PostgreSQL, with embedded migrations.
//!
//! Both backends run the same operations with hand-written SQL per backend, and the same test
//! suite (`tests/it/store.rs`) runs against each.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use time::OffsetDateTime;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A storage failure, by meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not a usable `sqlite:` or `postgres:` URL.
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database failed or could not be reached.
    #[error("database backend error")]
    Backend(#[from] sqlx::Error),
}

/// The database behind the server.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file (WAL mode).
    Sqlite(SqlitePool),
    /// A PostgreSQL database, which several replicas may share.
    Postgres(PgPool),
}

/// A verified webhook delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// What deduplicates the delivery: its `webhook-id`, else its event id, else a body hash.
    pub delivery_key: String,
    /// `legacy` or `standard`.
    pub scheme: &'static str,
    /// The event id, when the body could be read as an event.
    pub event_id: Option<String>,
    /// The event type, when known.
    pub event_type: Option<String>,
    /// Why the body could not be parsed as an event, when it could not.
    pub parse_error: Option<String>,
    /// When OpenPhone signed it.
    pub signed_at: OffsetDateTime,
    /// When this server received it.
    pub received_at: OffsetDateTime,
    /// The exact bytes received.
    pub body: Vec<u8>,
}

/// The outcome of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time, with this row id.
    New(i64),
    /// Already stored: nothing changed.
    Duplicate,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDelivery {
    /// Row id, increasing in arrival order.
    pub id: i64,
    /// The deduplication key.
    pub delivery_key: String,
    /// `legacy` or `standard`.
    pub scheme: String,
    /// The event id.
    pub event_id: Option<String>,
    /// The event type.
    pub event_type: Option<String>,
    /// The parse failure, if any.
    pub parse_error: Option<String>,
    /// When OpenPhone signed it.
    pub signed_at: OffsetDateTime,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// The exact bytes received.
    pub body: Vec<u8>,
}

impl Store {
    /// Connects to `url` and applies the embedded migrations. A SQLite file is created if
    /// missing.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`], [`StoreError::Backend`] when the database cannot be reached,
    /// [`StoreError::Migration`] when migrating fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::InvalidUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Self::Sqlite(pool)
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Self::Postgres(pool)
        };
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Self::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Appends a delivery to the log unless one with the same key is already there. The row
    /// is committed when this returns.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails; nothing is recorded then.
    pub async fn record_delivery(&self, delivery: &NewDelivery) -> Result<Recorded, StoreError> {
        const SQLITE: &str = "INSERT INTO webhook_deliveries \
            (delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
            ON CONFLICT (delivery_key) DO NOTHING RETURNING id";
        const POSTGRES: &str = "INSERT INTO webhook_deliveries \
            (delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
            ON CONFLICT (delivery_key) DO NOTHING RETURNING id";
        let id: Option<i64> = match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar(SQLITE)
                    .bind(&delivery.delivery_key)
                    .bind(delivery.scheme)
                    .bind(&delivery.event_id)
                    .bind(&delivery.event_type)
                    .bind(&delivery.parse_error)
                    .bind(delivery.signed_at)
                    .bind(delivery.received_at)
                    .bind(&delivery.body)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar(POSTGRES)
                    .bind(&delivery.delivery_key)
                    .bind(delivery.scheme)
                    .bind(&delivery.event_id)
                    .bind(&delivery.event_type)
                    .bind(&delivery.parse_error)
                    .bind(delivery.signed_at)
                    .bind(delivery.received_at)
                    .bind(&delivery.body)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(id.map_or(Recorded::Duplicate, Recorded::New))
    }

    /// The stored delivery with this key, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn delivery(&self, delivery_key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        let delivery = match self {
            Self::Sqlite(pool) => sqlx::query(
                "SELECT id, delivery_key, scheme, event_id, event_type, parse_error, \
                 signed_at, received_at, body FROM webhook_deliveries WHERE delivery_key = ?",
            )
            .bind(delivery_key)
            .fetch_optional(pool)
            .await?
            .map(|row| stored(&row))
            .transpose()?,
            Self::Postgres(pool) => sqlx::query(
                "SELECT id, delivery_key, scheme, event_id, event_type, parse_error, \
                 signed_at, received_at, body FROM webhook_deliveries WHERE delivery_key = $1",
            )
            .bind(delivery_key)
            .fetch_optional(pool)
            .await?
            .map(|row| stored(&row))
            .transpose()?,
        };
        Ok(delivery)
    }

    /// How many deliveries are stored.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn delivery_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM webhook_deliveries";
        Ok(match self {
            Self::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
        })
    }
}

fn stored<R>(row: &R) -> Result<StoredDelivery, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> OffsetDateTime: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredDelivery {
        id: row.try_get("id")?,
        delivery_key: row.try_get("delivery_key")?,
        scheme: row.try_get("scheme")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        parse_error: row.try_get("parse_error")?,
        signed_at: row.try_get("signed_at")?,
        received_at: row.try_get("received_at")?,
        body: row.try_get("body")?,
    })
}
