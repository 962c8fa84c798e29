//! Durable storage on SQLite (the embedded default) or PostgreSQL, with embedded migrations.
//!
//! Both backends run the same operations with hand-written SQL per backend, and the same test
//! suite (`tests/it/store.rs`) runs against each.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use time::OffsetDateTime;

use crate::projection::Change;
use crate::store_sql as sql;

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
    /// The campaign store refused a campaign report (in-memory records with campaigns
    /// attached, [`crate::records::MemoryRecords::with_campaigns`]).
    #[error("campaign store error")]
    Campaigns(#[source] sms_campaigns::Error),
}

impl StoreError {
    /// Whether a unique constraint refused a write (PostgreSQL `23505`, SQLite `2067`): a
    /// concurrent writer took the key first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Backend(sqlx::Error::Database(error))
            if matches!(error.code().as_deref(), Some("23505" | "2067" | "1555")))
    }

    /// Whether the database refused the values written, so that the same write can never
    /// succeed: a PostgreSQL data exception (class `22`), program limit (class `54`, such as an
    /// index entry over about 2,700 bytes) or integrity violation other than a unique one
    /// (class `23`); SQLite's too big, mismatch, and check, not-null and foreign-key
    /// constraint errors (sqlx reports SQLite's extended codes).
    /// Not a failure to reach the database, which may pass.
    pub fn refuses_values(&self) -> bool {
        if self.is_unique_violation() {
            return false;
        }
        let Self::Backend(sqlx::Error::Database(error)) = self else {
            return false;
        };
        let Some(code) = error.code() else {
            return false;
        };
        // PostgreSQL's SQLSTATE codes have five characters; SQLite's are numbers below 10,000.
        if code.len() == 5 {
            ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class))
        } else {
            matches!(code.as_ref(), "18" | "20" | "275" | "787" | "1299")
        }
    }

    /// Whether trying the same transaction again may succeed: a PostgreSQL deadlock or
    /// serialization failure, or a busy SQLite database.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend(sqlx::Error::Database(error)) => matches!(
                error.code().as_deref(),
                Some("40P01" | "40001" | "5" | "517")
            ),
            _ => false,
        }
    }
}

/// How long a pooled connection may sit idle and still be used without a check.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// `options` with a liveness check (a ping) only for a connection idle for
/// [`PING_WHEN_IDLE_FOR`] or longer, as HikariCP does. A connection that has just answered
/// goes straight back to work instead of costing a round trip per use; one that has sat idle
/// (a database restarted, a connection dropped by the network) is checked and replaced.
fn checked_when_idle<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// A PostgreSQL connection the group-commit writer keeps between its batches, outside the
/// pool: a sqlx pool pings every connection it takes back, which cost a round trip per batch.
/// Opened through the pool on first use (then detached from it), checked with a ping when
/// it has sat idle for a second or longer (and replaced when the check fails or times out),
/// dropped after a failure other than an error the database reported for a statement. A
/// connection replacing a lost one is opened anew, not taken from the pool, whose idle
/// connections the same restart or network failure may have broken. Holds nothing on
/// SQLite. Each writer holds up to two, on top of the pool's connections.
#[derive(Debug, Default)]
pub struct HeldConnection {
    /// The connection and when it last answered.
    connection: Option<(sqlx::PgConnection, Instant)>,
    /// Whether the last connection was lost (dropped after a failure or a failed check).
    lost: bool,
}

impl HeldConnection {
    /// The held connection, checked when it sat idle, or a new one.
    async fn take(&mut self, pool: &PgPool) -> Result<sqlx::PgConnection, StoreError> {
        use sqlx::Connection as _;
        let timeout = pool.options().get_acquire_timeout();
        if let Some((mut connection, answered)) = self.connection.take() {
            if answered.elapsed() < PING_WHEN_IDLE_FOR {
                return Ok(connection);
            }
            match tokio::time::timeout(timeout, connection.ping()).await {
                Ok(Ok(())) => return Ok(connection),
                Ok(Err(error)) => tracing::debug!(%error, "held connection dropped; reconnecting"),
                Err(_) => tracing::debug!("held connection did not answer; reconnecting"),
            }
            self.lost = true;
        }
        if self.lost {
            let options = pool.connect_options();
            let connecting = sqlx::PgConnection::connect_with(&options);
            let connection = tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            self.lost = false;
            return Ok(connection);
        }
        // Opened through the pool, for its timeout and its retries while the database
        // restarts; detached, it no longer counts against the pool's size.
        Ok(pool.acquire().await?.detach())
    }

    /// Keeps `connection` for the next batch after `outcome`, unless the failure may have
    /// broken it: an error the database reported for a statement (a deadlock, a constraint)
    /// leaves the connection usable (sqlx rolls back what the failed transaction began); one
    /// that ended the session (severity `FATAL` or `PANIC`: terminated, shutting down) and any
    /// other failure (input/output, protocol, timeout) do not.
    fn keep_after<T>(&mut self, connection: sqlx::PgConnection, outcome: &Result<T, StoreError>) {
        let usable = match outcome {
            Ok(_) => true,
            Err(StoreError::Backend(sqlx::Error::Database(error))) => error
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|error| matches!(error.severity(), sqlx::postgres::PgSeverity::Error)),
            Err(_) => false,
        };
        if usable {
            self.connection = Some((connection, Instant::now()));
        } else {
            self.lost = true;
        }
    }

    /// Whether a connection is held for the next batch.
    pub fn holds(&self) -> bool {
        self.connection.is_some()
    }
}

/// The database behind the server.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file (WAL mode).
    Sqlite(SqlitePool),
    /// A PostgreSQL database, which several replicas may share.
    Postgres(PgPool),
}

/// A verified webhook delivery to record. Its text fields must not hold a NUL character,
/// which PostgreSQL refuses: read events with [`crate::ingest::parse_event`], which sees to
/// that.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// What deduplicates the delivery: its `webhook-id`, else its event id, else a body hash.
    pub delivery_key: String,
    /// `legacy`, `standard` or `import` (rows of the historical import).
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
    /// The normalized records the event changes, applied in the same transaction.
    pub changes: Vec<Change>,
}

impl NewDelivery {
    /// This delivery without its records, its `parse_error` saying why: what is kept when the
    /// database refuses the records' values ([`StoreError::refuses_values`]), so that the
    /// event itself is never lost. `reference-server replay` projects it once a fix allows.
    pub fn raw_only(&self, why: &StoreError) -> Self {
        Self {
            parse_error: Some(format!("not projected: {}", crate::causes(why).join(": "))),
            changes: Vec::new(),
            ..self.clone()
        }
    }
}

/// The outcome of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time, with this row id.
    New(i64),
    /// Stored for the first time, with this row id, but without its records: the database
    /// refused their values (see [`NewDelivery::raw_only`]).
    RawOnly(i64),
    /// Already stored: nothing changed.
    Duplicate,
}

impl Recorded {
    /// The outcome of recording a [`NewDelivery::raw_only`] copy: a new row is
    /// [`Recorded::RawOnly`].
    pub fn raw_only(self) -> Self {
        match self {
            Self::New(id) => Self::RawOnly(id),
            other => other,
        }
    }
}

/// A call as projected from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Its conversation key.
    pub conversation_key: Option<String>,
    /// `incoming` or `outgoing`.
    pub direction: Option<String>,
    /// The highest-ranked status reported.
    pub status: Option<String>,
    /// `missed`, `answered`, `ai-handled`, `forwarded`, `failed` or `in-progress`.
    pub outcome: Option<String>,
    /// Creation, answer and end times, unix milliseconds.
    pub times_ms: (Option<i64>, Option<i64>, Option<i64>),
    /// Length in seconds.
    pub duration_s: Option<i64>,
    /// Whether a voicemail was left, and where OpenPhone serves it.
    pub voicemail: (bool, Option<String>),
    /// Recording URLs, sorted.
    pub recordings: Vec<String>,
    /// The summary's points (JSON), when there is one.
    pub summary: Option<String>,
    /// The summary's next steps (JSON), when there is one.
    pub next_steps: Option<String>,
    /// The transcript's dialogue (JSON), when there is one.
    pub transcript: Option<String>,
}

/// A message as projected from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Its conversation key.
    pub conversation_key: Option<String>,
    /// Text.
    pub body: Option<String>,
    /// The current status: the highest-ranked reported.
    pub status: Option<String>,
    /// Every status reported, by name, sorted.
    pub history: Vec<String>,
    /// Media (JSON array).
    pub media: String,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayReport {
    /// Raw deliveries read.
    pub deliveries: u64,
    /// Of those, events projected.
    pub projected: u64,
    /// Of those, bodies that do not parse as events (kept raw, not projected).
    pub unparsed: u64,
    /// Of those, events whose records the database refused ([`StoreError::refuses_values`]):
    /// their row ids and why. Each is left unprojected and the replay goes on.
    pub refused: Vec<(i64, String)>,
    /// Each normalized table's rows before and after (and, for a dry run, how many differ).
    pub tables: Vec<TableReport>,
}

/// One normalized table in a [`ReplayReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table's name.
    pub table: &'static str,
    /// Its rows before the replay.
    pub before: i64,
    /// Its rows after it. On a server that keeps receiving webhooks during a replay (not a
    /// dry run), this includes the rows ingestion wrote meanwhile.
    pub after: i64,
    /// Dry run only: rows after that were not there before, or not with these values (new or
    /// changed rows), and rows before that are not there after, or not with those values
    /// (removed or changed rows). A replay that changes no value reports `(0, 0)`.
    pub differing: Option<(i64, i64)>,
}

/// How many raw deliveries a replay projects per transaction.
pub const REPLAY_PAGE: i64 = 500;

/// The normalized tables a replay rebuilds.
const PROJECTED_TABLES: [&str; 13] = [
    "conversations",
    "messages",
    "message_statuses",
    "calls",
    "call_recordings",
    "call_summaries",
    "call_transcripts",
    "contacts",
    "contact_phones",
    "media",
    "consent_ledger",
    "review_flags",
    "outbox",
];

/// A stored delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDelivery {
    /// Row id, increasing in arrival order.
    pub id: i64,
    /// The deduplication key.
    pub delivery_key: String,
    /// `legacy`, `standard` or `import` (rows of the historical import).
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

/// Binds `args` in order to a query of either backend.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(value) => query.bind(value.clone()),
                Arg::Int(value) => query.bind(*value),
                Arg::Time(value) => query.bind(*value),
            };
        }
        query
    }};
}

/// Applies projection changes on a connection of either backend, one statement each;
/// `$dialect` turns the PostgreSQL text into the backend's.
macro_rules! apply {
    ($conn:expr, $changes:expr, $dialect:expr) => {
        for change in $changes {
            if let Some(upsert) = sql::upsert(change) {
                bind_all!(
                    sqlx::query(AssertSqlSafe($dialect(upsert.sql))),
                    &upsert.args
                )
                .execute(&mut *$conn)
                .await?;
                continue;
            }
            match change {
                Change::Contact {
                    id,
                    first_name,
                    last_name,
                    company,
                    external_id,
                    deleted,
                    updated_ms,
                    content,
                    phones,
                } => {
                    let deleted = i32::from(*deleted);
                    // Text from the API or a user: no NUL reaches PostgreSQL (see `text`).
                    let id = text(id);
                    sqlx::query(AssertSqlSafe($dialect(sql::CONTACT)))
                        .bind(&id)
                        .bind(first_name.as_deref().map(text))
                        .bind(last_name.as_deref().map(text))
                        .bind(company.as_deref().map(text))
                        .bind(external_id.as_deref().map(text))
                        .bind(deleted)
                        .bind(updated_ms)
                        .bind(text(content))
                        .execute(&mut *$conn)
                        .await?;
                    let current: i64 =
                        sqlx::query_scalar(AssertSqlSafe($dialect(sql::CONTACT_IS_CURRENT)))
                            .bind(&id)
                            .bind(updated_ms)
                            .bind(deleted)
                            .bind(text(content))
                            .fetch_one(&mut *$conn)
                            .await?;
                    if current > 0 {
                        sqlx::query(AssertSqlSafe($dialect(sql::CONTACT_PHONES_CLEAR)))
                            .bind(&id)
                            .execute(&mut *$conn)
                            .await?;
                        if deleted == 0 {
                            for phone in phones {
                                sqlx::query(AssertSqlSafe($dialect(sql::CONTACT_PHONE)))
                                    .bind(&id)
                                    .bind(text(phone))
                                    .execute(&mut *$conn)
                                    .await?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    };
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
            let pool = checked_when_idle(SqlitePoolOptions::new())
                .max_connections(4)
                .connect_with(options)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Self::Sqlite(pool)
        } else {
            let pool = checked_when_idle(PgPoolOptions::new())
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

    /// Applies normalized changes that come with no raw event (what an import reads that no
    /// webhook carries, such as OpenPhone's conversation list), in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails; nothing is applied then.
    pub async fn apply_changes(&self, changes: &[Change]) -> Result<(), StoreError> {
        macro_rules! run {
            ($pool:expr, $dialect:expr) => {{
                let mut tx = $pool.begin().await?;
                apply!(&mut *tx, changes, $dialect);
                tx.commit().await?;
            }};
        }
        match self {
            Self::Sqlite(pool) => run!(pool, sql::sqlite),
            Self::Postgres(pool) => run!(pool, str::to_owned),
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_connections(&self) -> (u32, usize) {
        match self {
            Self::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Self::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    /// Whether every migration embedded in this binary is applied.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database does not answer.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let migrator = match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let applied: Vec<(i64,)> = self
            .fetch_all(
                "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
                &[],
            )
            .await?;
        Ok(migrator.iter().all(|migration| {
            applied
                .iter()
                .any(|(version,)| *version == migration.version)
        }))
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

    /// Appends a delivery to the log unless one with the same key is already there, with its
    /// projection. The row is committed when this returns.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails; nothing is recorded then.
    pub async fn record_delivery(&self, delivery: &NewDelivery) -> Result<Recorded, StoreError> {
        let mut recorded = self.record_batch(std::slice::from_ref(delivery)).await?;
        Ok(recorded.pop().unwrap_or(Recorded::Duplicate))
    }

    /// Records several deliveries in one transaction (a group commit): each is appended unless
    /// its key is already stored (earlier, or earlier in this batch), with its projection.
    /// Returns one outcome per delivery, in order. Keys are written in sorted order, so
    /// concurrent batches on PostgreSQL wait on each other instead of deadlocking on the log.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails; nothing of the batch is recorded then.
    pub async fn record_batch(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<Recorded>, StoreError> {
        let pool = match self {
            Self::Sqlite(pool) => pool,
            // On PostgreSQL every statement is a round trip: a batch is written in one
            // statement when it can be (arrays unnested), not one per row.
            Self::Postgres(pool) => {
                return record_batch_unnested(&mut *pool.acquire().await?, deliveries).await;
            }
        };
        // On SQLite every statement is a hop to the connection's thread: the raw rows are one
        // statement over a JSON array (bodies in hex, times as sqlx writes them, RFC 3339),
        // each delivery key once, in key order.
        const INSERT: &str = "INSERT INTO webhook_deliveries \
            (delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body) \
            SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, \
            j.value->>6, unhex(j.value->>7) FROM json_each(?1) AS j WHERE true \
            ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key";
        let first = first_of_each_key(deliveries);
        let time = |at: OffsetDateTime| {
            at.format(&time::format_description::well_known::Rfc3339)
                .map_err(|error| StoreError::Backend(sqlx::Error::Encode(Box::new(error))))
        };
        let mut rows = Vec::with_capacity(first.len());
        for &index in first.values() {
            let delivery = &deliveries[index];
            rows.push(serde_json::json!([
                delivery.delivery_key,
                delivery.scheme,
                delivery.event_id,
                delivery.event_type,
                delivery.parse_error,
                time(delivery.signed_at)?,
                time(delivery.received_at)?,
                crate::ingest::hex(&delivery.body),
            ]));
        }
        let mut recorded = vec![Recorded::Duplicate; deliveries.len()];
        // The raw rows and their projections commit together, or not at all.
        let mut tx = pool.begin().await?;
        let inserted: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(INSERT))
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(&mut *tx)
            .await?;
        for (id, key) in inserted {
            if let Some(&index) = first.get(key.as_str()) {
                recorded[index] = Recorded::New(id);
            }
        }
        // The projections of the deliveries just inserted, after every raw row: each kind of
        // upsert as one statement a round over a JSON array of its rows (every statement is a
        // hop to the connection's thread), with the same conflict clauses as row by row;
        // merges are order-independent, so this gives what one row at a time gives.
        let Grouped {
            groups,
            contacts,
            later,
        } = Grouped::of(
            deliveries
                .iter()
                .zip(&recorded)
                .filter(|(_, outcome)| matches!(outcome, Recorded::New(_)))
                .map(|(delivery, _)| delivery),
            false,
        );
        for (sql_text, rounds) in groups.iter().chain(later.iter().map(|(s, r)| (s, r))) {
            for round in rounds {
                match json_rows(round) {
                    Some(rows) => {
                        let width = round[0].1.args.len();
                        sqlx::query(AssertSqlSafe(sql::sqlite(&sql::json_each(sql_text, width))))
                            .bind(rows)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // A timestamp parameter: bound as such, row by row.
                    None => {
                        for (_, upsert) in round {
                            bind_all!(
                                sqlx::query(AssertSqlSafe(sql::sqlite(upsert.sql))),
                                &upsert.args
                            )
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
            }
        }
        let contacts: Vec<&Change> = contacts.into_iter().map(|(_, change)| change).collect();
        apply!(&mut *tx, contacts, sql::sqlite);
        tx.commit().await?;
        Ok(recorded)
    }

    /// [`record_batch`](Self::record_batch) on the connection `held` keeps between the
    /// group-commit writer's batches (PostgreSQL; the pool on SQLite).
    ///
    /// # Errors
    /// As [`record_batch`](Self::record_batch), and [`StoreError::Backend`] when no
    /// connection can be opened.
    pub async fn record_batch_held(
        &self,
        held: &mut HeldConnection,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<Recorded>, StoreError> {
        let Self::Postgres(pool) = self else {
            return self.record_batch(deliveries).await;
        };
        let mut connection = held.take(pool).await?;
        let recorded = record_batch_unnested(&mut connection, deliveries).await;
        held.keep_after(connection, &recorded);
        recorded
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

    /// A projected call with its artefacts.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        const CALL: &str = "SELECT conversation_key, direction, status, outcome, created_ms, answered_ms, \
            completed_ms, duration_s, voicemail_url, has_voicemail FROM calls WHERE id = $1";
        const RECORDINGS: &str = "SELECT url FROM call_recordings WHERE call_id = $1 ORDER BY url";
        const SUMMARY: &str = "SELECT summary, next_steps FROM call_summaries WHERE call_id = $1";
        const TRANSCRIPT: &str = "SELECT dialogue FROM call_transcripts WHERE call_id = $1";
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            i32,
        );
        macro_rules! read {
            ($pool:expr, $dialect:expr) => {{
                let row: Option<Row> = sqlx::query_as(AssertSqlSafe($dialect(CALL)))
                    .bind(id)
                    .fetch_optional($pool)
                    .await?;
                let recordings: Vec<String> =
                    sqlx::query_scalar(AssertSqlSafe($dialect(RECORDINGS)))
                        .bind(id)
                        .fetch_all($pool)
                        .await?;
                let summary: Option<(Option<String>, Option<String>)> =
                    sqlx::query_as(AssertSqlSafe($dialect(SUMMARY)))
                        .bind(id)
                        .fetch_optional($pool)
                        .await?;
                let transcript: Option<String> =
                    sqlx::query_scalar(AssertSqlSafe($dialect(TRANSCRIPT)))
                        .bind(id)
                        .fetch_optional($pool)
                        .await?;
                (row, recordings, summary, transcript)
            }};
        }
        let (row, recordings, summary, transcript) = match self {
            Self::Sqlite(pool) => read!(pool, sql::sqlite),
            Self::Postgres(pool) => read!(pool, str::to_owned),
        };
        Ok(row.map(|r| CallRecord {
            conversation_key: r.0,
            direction: r.1,
            status: r.2,
            outcome: r.3,
            times_ms: (r.4, r.5, r.6),
            duration_s: r.7,
            voicemail: (r.9 != 0, r.8),
            recordings,
            summary: summary.as_ref().and_then(|s| s.0.clone()),
            next_steps: summary.and_then(|s| s.1),
            transcript,
        }))
    }

    /// A projected message with its status history.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        const MESSAGE: &str =
            "SELECT conversation_key, body, status, media FROM messages WHERE id = $1";
        const HISTORY: &str =
            "SELECT status FROM message_statuses WHERE message_id = $1 ORDER BY status";
        type Row = (Option<String>, Option<String>, Option<String>, String);
        macro_rules! read {
            ($pool:expr, $dialect:expr) => {{
                let row: Option<Row> = sqlx::query_as(AssertSqlSafe($dialect(MESSAGE)))
                    .bind(id)
                    .fetch_optional($pool)
                    .await?;
                let history: Vec<String> = sqlx::query_scalar(AssertSqlSafe($dialect(HISTORY)))
                    .bind(id)
                    .fetch_all($pool)
                    .await?;
                (row, history)
            }};
        }
        let (row, history) = match self {
            Self::Sqlite(pool) => read!(pool, sql::sqlite),
            Self::Postgres(pool) => read!(pool, str::to_owned),
        };
        Ok(row.map(|r| MessageRecord {
            conversation_key: r.0,
            body: r.1,
            status: r.2,
            history,
            media: r.3,
        }))
    }

    /// The ids of the live contacts with this phone number, sorted.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT contact_phones.contact_id FROM contact_phones \
            JOIN contacts ON contacts.id = contact_phones.contact_id \
            WHERE contact_phones.phone = $1 AND contacts.deleted = 0 ORDER BY contact_phones.contact_id";
        Ok(match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql::sqlite(SQL)))
                    .bind(phone)
                    .fetch_all(pool)
                    .await?
            }
            Self::Postgres(pool) => sqlx::query_scalar(SQL).bind(phone).fetch_all(pool).await?,
        })
    }

    /// Re-projects the raw log (from `since`, by received time, in arrival order) into the
    /// normalized records. Projection merges are joins, so a replay is idempotent and
    /// converges with what ingestion already wrote (and writes meanwhile).
    ///
    /// Each page of [`REPLAY_PAGE`] deliveries is a transaction of its own, so a replay of a
    /// long log never holds the database for long (on SQLite, the server's writes wait only
    /// for a page); a replay that stops part way is resumed by running it again.
    ///
    /// With `dry_run` the whole replay is one transaction, rolled back: the report says what
    /// would change, rows that would change their values included. That transaction holds
    /// what it wrote until the end: the server's writes to the same rows (on SQLite, all its
    /// writes) wait for it. On PostgreSQL it reads one snapshot (repeatable read), so the
    /// server's writes meanwhile are not counted; if the server changes a row the dry run
    /// writes too, the dry run fails with a serialization error, and can be run again.
    ///
    /// `progress` is called after each page with the counts so far.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a read or write fails. Pages committed before it stay (a
    /// dry run changes nothing).
    pub async fn replay(
        &self,
        since: Option<OffsetDateTime>,
        dry_run: bool,
        progress: &mut (dyn FnMut(&ReplayReport) + Send),
    ) -> Result<ReplayReport, StoreError> {
        const PAGE: &str = "SELECT id, body FROM webhook_deliveries \
            WHERE id > $1 AND ($2 OR received_at >= $3) ORDER BY id LIMIT $4";
        let since_or_epoch = since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut report = ReplayReport::default();
        let mut own = crate::directory::Directory::own_numbers(self).await?;
        macro_rules! count_tables {
            ($conn:expr) => {{
                let mut counts = Vec::with_capacity(PROJECTED_TABLES.len());
                for table in PROJECTED_TABLES {
                    let count: i64 =
                        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                            .fetch_one(&mut *$conn)
                            .await?;
                    counts.push(count);
                }
                counts
            }};
        }
        // Projects one page from `last_id` on `conn`; returns whether there was one.
        macro_rules! page {
            ($conn:expr, $dialect:expr, $last_id:expr) => {{
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe($dialect(PAGE)))
                    .bind($last_id)
                    .bind(since.is_none())
                    .bind(since_or_epoch)
                    .bind(REPLAY_PAGE)
                    .fetch_all(&mut *$conn)
                    .await?;
                if let Some((id, _)) = rows.last() {
                    $last_id = *id;
                }
                report.deliveries += rows.len() as u64;
                // The page behind a savepoint: when the database refuses the records of one
                // of its deliveries, the page is done again with a savepoint per delivery, so
                // that only that one is left out (two statements a page, not a delivery).
                sqlx::query("SAVEPOINT replay_page")
                    .execute(&mut *$conn)
                    .await?;
                let mut careful = false;
                loop {
                    let (mut projected, mut unparsed, mut refused) = (0u64, 0u64, Vec::new());
                    let done: Result<(), StoreError> = async {
                        for (id, body) in &rows {
                            let Ok(event) = crate::ingest::parse_event(body) else {
                                unparsed += 1;
                                continue;
                            };
                            own.learn(&event);
                            let changes = crate::projection::changes(&event, &own);
                            if careful {
                                sqlx::query("SAVEPOINT replay_delivery")
                                    .execute(&mut *$conn)
                                    .await?;
                            }
                            let applied: Result<(), StoreError> = async {
                                apply!(&mut *$conn, &changes, $dialect);
                                Ok(())
                            }
                            .await;
                            match applied {
                                Ok(()) => projected += 1,
                                Err(error) if careful && error.refuses_values() => {
                                    sqlx::query("ROLLBACK TO SAVEPOINT replay_delivery")
                                        .execute(&mut *$conn)
                                        .await?;
                                    refused.push((*id, crate::causes(&error).join(": ")));
                                }
                                Err(error) => return Err(error),
                            }
                            if careful {
                                sqlx::query("RELEASE SAVEPOINT replay_delivery")
                                    .execute(&mut *$conn)
                                    .await?;
                            }
                        }
                        Ok(())
                    }
                    .await;
                    match done {
                        Ok(()) => {
                            sqlx::query("RELEASE SAVEPOINT replay_page")
                                .execute(&mut *$conn)
                                .await?;
                            report.projected += projected;
                            report.unparsed += unparsed;
                            report.refused.extend(refused);
                            break;
                        }
                        Err(error) if !careful && error.refuses_values() => {
                            sqlx::query("ROLLBACK TO SAVEPOINT replay_page")
                                .execute(&mut *$conn)
                                .await?;
                            careful = true;
                        }
                        Err(error) => return Err(error),
                    }
                }
                !rows.is_empty()
            }};
        }
        macro_rules! replay {
            ($pool:expr, $dialect:expr, $begin_dry:literal, $begin_page:literal) => {{
                let mut last_id = 0i64;
                if dry_run {
                    let mut tx = $pool.begin_with($begin_dry).await?;
                    let before = count_tables!(tx);
                    for table in PROJECTED_TABLES {
                        sqlx::query(AssertSqlSafe(format!(
                            "CREATE TEMPORARY TABLE replay_before_{table} AS SELECT * FROM {table}"
                        )))
                        .execute(&mut *tx)
                        .await?;
                    }
                    while page!(tx, $dialect, last_id) {
                        progress(&report);
                    }
                    let after = count_tables!(tx);
                    for ((table, before), after) in PROJECTED_TABLES.into_iter().zip(before).zip(after) {
                        let differing = |from: &str, to: &str| {
                            format!("SELECT COUNT(*) FROM (SELECT * FROM {from} EXCEPT SELECT * FROM {to}) AS differing")
                        };
                        let new_or_changed: i64 = sqlx::query_scalar(AssertSqlSafe(differing(
                            table,
                            &format!("replay_before_{table}"),
                        )))
                        .fetch_one(&mut *tx)
                        .await?;
                        let removed_or_changed: i64 = sqlx::query_scalar(AssertSqlSafe(differing(
                            &format!("replay_before_{table}"),
                            table,
                        )))
                        .fetch_one(&mut *tx)
                        .await?;
                        report.tables.push(TableReport {
                            table,
                            before,
                            after,
                            differing: Some((new_or_changed, removed_or_changed)),
                        });
                    }
                    // The temporary tables were made in the transaction: they go with it.
                    tx.rollback().await?;
                } else {
                    let before = count_tables!(&mut *$pool.acquire().await?);
                    loop {
                        let mut tx = $pool.begin_with($begin_page).await?;
                        let more = page!(tx, $dialect, last_id);
                        tx.commit().await?;
                        if !more {
                            break;
                        }
                        progress(&report);
                    }
                    let after = count_tables!(&mut *$pool.acquire().await?);
                    for ((table, before), after) in PROJECTED_TABLES.into_iter().zip(before).zip(after) {
                        report.tables.push(TableReport {
                            table,
                            before,
                            after,
                            differing: None,
                        });
                    }
                }
            }};
        }
        // SQLite: each transaction takes the write lock at once, so that a write of the
        // server between its first read and its first write cannot fail it (a deferred
        // transaction's snapshot is then stale, which SQLite does not wait out). PostgreSQL:
        // the dry run reads one snapshot, so that the server's writes meanwhile are not
        // counted as the replay's; a row the server changes that the dry run would write
        // then stops it with a serialization error (run it again, or when quieter).
        match self {
            Self::Sqlite(pool) => replay!(pool, sql::sqlite, "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"),
            Self::Postgres(pool) => replay!(
                pool,
                str::to_owned,
                "BEGIN ISOLATION LEVEL REPEATABLE READ",
                "BEGIN"
            ),
        }
        Ok(report)
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

/// Binds one array per parameter of the round's upserts (`&[(&str, Upsert)]`).
macro_rules! bind_columns {
    ($query:expr, $round:expr) => {{
        let round = $round;
        let mut query = $query;
        let width = round.first().map_or(0, |(_, upsert)| upsert.args.len());
        for position in 0..width {
            let values = round.iter().map(|(_, upsert)| &upsert.args[position]);
            query = match round[0].1.args[position] {
                Arg::Int(_) => query.bind(
                    values
                        .map(|arg| match arg {
                            Arg::Int(value) => *value,
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Arg::Time(_) => query.bind(
                    values
                        .map(|arg| match arg {
                            Arg::Time(value) => Some(*value),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Arg::Text(_) => query.bind(
                    values
                        .map(|arg| match arg {
                            Arg::Text(value) => value.as_deref(),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
            };
        }
        query
    }};
}

/// A statement's upserts in rounds, each round free of repeated keys, each upsert with the
/// key of its delivery.
type Rounds<'a> = Vec<Vec<(&'a str, sql::Upsert)>>;

/// The parameters of `round`'s upserts as one JSON array of rows, for SQLite's `json_each`
/// ([`sql::json_each`]); `None` when one is a timestamp (which JSON would not carry as sqlx
/// binds it).
fn json_rows(round: &[(&str, sql::Upsert)]) -> Option<String> {
    let mut rows = Vec::with_capacity(round.len());
    for (_, upsert) in round {
        let mut row = Vec::with_capacity(upsert.args.len());
        for arg in &upsert.args {
            row.push(match arg {
                Arg::Text(value) => value.as_deref().map_or(serde_json::Value::Null, Into::into),
                Arg::Int(value) => value.map_or(serde_json::Value::Null, Into::into),
                Arg::Time(_) => return None,
            });
        }
        rows.push(serde_json::Value::Array(row));
    }
    Some(serde_json::Value::Array(rows).to_string())
}

/// The index of the first delivery of each key in `deliveries`, by key.
fn first_of_each_key(deliveries: &[NewDelivery]) -> BTreeMap<&str, usize> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        first.entry(delivery.delivery_key.as_str()).or_insert(index);
    }
    first
}

/// A batch's upserts by statement and round (each with the key of its delivery), its contact
/// changes, and the statements that must run after the others.
struct Grouped<'a> {
    groups: BTreeMap<&'static str, Rounds<'a>>,
    contacts: Vec<(&'a str, &'a Change)>,
    later: Vec<(&'static str, Rounds<'a>)>,
}

impl<'a> Grouped<'a> {
    /// The changes of `deliveries` (each recorded once, in arrival order) grouped. With
    /// `by_key`, each round is in key order (PostgreSQL: concurrent batches then lock rows in
    /// one order, and wait rather than deadlock); otherwise in arrival order (SQLite, one
    /// writer: rows numbered by the database, such as a message's media, keep the event's
    /// order).
    fn of(deliveries: impl Iterator<Item = &'a NewDelivery>, by_key: bool) -> Self {
        let mut groups: BTreeMap<&'static str, Rounds> = BTreeMap::new();
        let mut contacts: Vec<(&str, &Change)> = Vec::new();
        for delivery in deliveries {
            for change in &delivery.changes {
                let Some(upsert) = sql::upsert(change) else {
                    contacts.push((&delivery.delivery_key, change));
                    continue;
                };
                let rounds = groups.entry(upsert.sql).or_default();
                // An insert that does nothing on conflict needs no round for a repeated key: the
                // first of the batch (or the row already stored) is what any order gives.
                if upsert.sql.ends_with("DO NOTHING")
                    && rounds
                        .iter()
                        .any(|round| round.iter().any(|(_, other)| other.key == upsert.key))
                {
                    continue;
                }
                match rounds
                    .iter_mut()
                    .find(|round| !round.iter().any(|(_, other)| other.key == upsert.key))
                {
                    Some(round) => round.push((&delivery.delivery_key, upsert)),
                    None => rounds.push(vec![(&delivery.delivery_key, upsert)]),
                }
            }
        }
        if by_key {
            for rounds in groups.values_mut() {
                for round in rounds.iter_mut() {
                    round.sort_by(|a, b| a.1.key.cmp(&b.1.key));
                }
            }
        }
        // A reply and a delivery report may update the same campaign recipient; in one statement
        // PostgreSQL would apply only one of the two, so the reports then run after it.
        let mut later: Vec<(&'static str, Rounds)> = Vec::new();
        if groups.contains_key(sql::CAMPAIGN_RESPONSE)
            && let Some(rounds) = groups.remove(sql::CAMPAIGN_DELIVERY)
        {
            later.push((sql::CAMPAIGN_DELIVERY, rounds));
        }
        Grouped {
            groups,
            contacts,
            later,
        }
    }
}

/// [`Store::record_batch`] on PostgreSQL in as few round trips as possible. One statement
/// inserts the raw rows (`INSERT ... SELECT FROM UNNEST(...)`) and, in data-modifying CTEs,
/// applies each kind of upsert to the rows of the deliveries it inserted, with the same
/// conflict clauses as row by row; alone, it runs in autocommit (one round trip for the
/// batch). One statement must not touch a row twice, so a key repeated in the batch goes to a
/// later round, run after it in one transaction (as are contacts); merges are
/// order-independent, so rounds give what one row at a time gives.
async fn record_batch_unnested(
    connection: &mut sqlx::PgConnection,
    deliveries: &[NewDelivery],
) -> Result<Vec<Recorded>, StoreError> {
    // In key order, so concurrent batches wait, not deadlock.
    let first = first_of_each_key(deliveries);
    let rows: Vec<&NewDelivery> = first.values().map(|&index| &deliveries[index]).collect();
    let Grouped {
        groups,
        contacts,
        later,
    } = Grouped::of(
        deliveries
            .iter()
            .enumerate()
            .filter(|(index, delivery)| first.get(delivery.delivery_key.as_str()) == Some(index))
            .map(|(_, delivery)| delivery),
        true,
    );

    let statement = batch_statement(
        groups
            .iter()
            .map(|(sql_text, rounds)| (*sql_text, column_types(&rounds[0])))
            .collect(),
    );
    // Values are encoded as they are bound: borrowed, not copied.
    let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(statement))
        .bind(
            rows.iter()
                .map(|d| d.delivery_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|d| d.scheme).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|d| d.event_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|d| d.event_type.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|d| d.parse_error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|d| d.signed_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|d| d.received_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|d| d.body.as_slice()).collect::<Vec<_>>());
    for rounds in groups.values() {
        query = bind_columns!(query, &rounds[0]);
        query = query.bind(rounds[0].iter().map(|(key, _)| *key).collect::<Vec<_>>());
    }

    let single =
        contacts.is_empty() && later.is_empty() && groups.values().all(|rounds| rounds.len() == 1);
    let inserted: Vec<(i64, String)> = if single {
        query.fetch_all(&mut *connection).await?
    } else {
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        let inserted = query.fetch_all(&mut *tx).await?;
        let new: std::collections::HashSet<&str> =
            inserted.iter().map(|(_, key)| key.as_str()).collect();
        let mut remaining: Vec<(&str, &Vec<(&str, sql::Upsert)>)> = Vec::new();
        for (sql_text, rounds) in &groups {
            remaining.extend(rounds.iter().skip(1).map(|round| (*sql_text, round)));
        }
        for (sql_text, rounds) in &later {
            remaining.extend(rounds.iter().map(|round| (*sql_text, round)));
        }
        for (sql_text, round) in remaining {
            let round: Vec<(&str, sql::Upsert)> = round
                .iter()
                .filter(|(key, _)| new.contains(key))
                .map(|(key, upsert)| (*key, upsert.clone()))
                .collect();
            if round.is_empty() {
                continue;
            }
            let columns = column_types(&round);
            let text = sql::unnest(sql_text, &columns, 1, false);
            bind_columns!(sqlx::query(AssertSqlSafe(text)), &round)
                .execute(&mut *tx)
                .await?;
        }
        let contacts: Vec<Change> = contacts
            .iter()
            .filter(|(key, _)| new.contains(key))
            .map(|(_, change)| (*change).clone())
            .collect();
        apply!(&mut *tx, &contacts, str::to_owned);
        tx.commit().await?;
        inserted
    };
    let mut recorded = vec![Recorded::Duplicate; deliveries.len()];
    for (id, key) in inserted {
        if let Some(&index) = first.get(key.as_str()) {
            recorded[index] = Recorded::New(id);
        }
    }
    Ok(recorded)
}

/// The statement recording a batch of raw rows with the upserts `groups` (each one's SQL and
/// column types, in order) as data-modifying CTEs. Built once per combination and kept: a
/// batch's combination is one of the few sets of record kinds events touch, and building the
/// text on every batch cost a few percent of ingestion's CPU. Past [`KEPT_STATEMENTS`]
/// combinations, a statement is built each time.
fn batch_statement(groups: BatchShape) -> Arc<str> {
    static BUILT: LazyLock<Mutex<HashMap<BatchShape, Arc<str>>>> = LazyLock::new(Mutex::default);
    let built = || BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(statement) = built().get(&groups) {
        return statement.clone();
    }
    let mut statement = "WITH raw AS (INSERT INTO webhook_deliveries \
        (delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body) \
        SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
        $6::timestamptz[], $7::timestamptz[], $8::bytea[]) \
        ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key)"
        .to_owned();
    let mut next_parameter = 9;
    for (n, (sql_text, columns)) in groups.iter().enumerate() {
        statement.push_str(&format!(
            ", u{n} AS ({})",
            sql::unnest(sql_text, columns, next_parameter, true)
        ));
        next_parameter += columns.len() + 1;
    }
    statement.push_str(" SELECT id, delivery_key FROM raw");
    let statement: Arc<str> = statement.into();
    let mut built = built();
    if built.len() < KEPT_STATEMENTS {
        built.insert(groups, statement.clone());
    }
    statement
}

/// A batch's upserts: each one's SQL and column types, in order.
type BatchShape = Vec<(&'static str, Vec<&'static str>)>;

/// How many batch statements [`batch_statement`] keeps.
const KEPT_STATEMENTS: usize = 256;

/// The PostgreSQL array type of each parameter of an upsert.
fn column_types(round: &[(&str, sql::Upsert)]) -> Vec<&'static str> {
    round[0]
        .1
        .args
        .iter()
        .map(|arg| match arg {
            Arg::Int(_) => "int8",
            Arg::Time(_) => "timestamptz",
            Arg::Text(_) => "text",
        })
        .collect()
}

/// One statement of [`Store::execute_all`].
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    /// PostgreSQL text (translated for SQLite).
    pub(crate) sql: String,
    /// Its parameters.
    pub(crate) args: Vec<Arg>,
    /// Whether affecting no row aborts the transaction.
    pub(crate) required: bool,
}

impl Statement {
    /// A statement that may affect no row.
    pub(crate) fn new(sql: impl Into<String>, args: Vec<Arg>) -> Self {
        Statement {
            sql: sql.into(),
            args,
            required: false,
        }
    }

    /// A compare-and-set: affecting no row aborts the transaction.
    pub(crate) fn required(sql: impl Into<String>, args: Vec<Arg>) -> Self {
        Statement {
            sql: sql.into(),
            args,
            required: true,
        }
    }
}

/// A bind parameter of the generic query helpers.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// Text (or NULL).
    Text(Option<String>),
    /// An integer (or NULL).
    Int(Option<i64>),
    /// A timestamp.
    Time(OffsetDateTime),
}

/// `value` as both backends store it: each NUL character (which PostgreSQL cannot hold in
/// text) becomes U+FFFD.
pub(crate) fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        std::borrow::Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// [`text`], owned (no copy when there is nothing to replace).
pub(crate) fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Self::Text(Some(storable(text.to_owned())))
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Self::Text(Some(storable(text)))
    }
}

impl From<Option<String>> for Arg {
    fn from(text: Option<String>) -> Self {
        Self::Text(text.map(storable))
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<OffsetDateTime> for Arg {
    fn from(value: OffsetDateTime) -> Self {
        Self::Time(value)
    }
}

/// Rows decodable on both backends.
pub(crate) trait AnyRow:
    Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>
{
}

impl<T> AnyRow for T where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>
{
}

impl Store {
    /// Runs a query written in PostgreSQL's dialect (translated for SQLite) and decodes every
    /// row.
    pub(crate) async fn fetch_all<T: AnyRow>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Self::Sqlite(pool) => {
                bind_all!(
                    sqlx::query_as::<_, T>(AssertSqlSafe(sql::sqlite(sql))),
                    args
                )
                .fetch_all(pool)
                .await?
            }
            Self::Postgres(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned())), args)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// [`Store::fetch_all`] for at most one row.
    pub(crate) async fn fetch_optional<T: AnyRow>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, StoreError> {
        Ok(match self {
            Self::Sqlite(pool) => {
                bind_all!(
                    sqlx::query_as::<_, T>(AssertSqlSafe(sql::sqlite(sql))),
                    args
                )
                .fetch_optional(pool)
                .await?
            }
            Self::Postgres(pool) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned())), args)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }

    /// Runs `statements` in one transaction, in order. A statement marked `required` that
    /// affects no row rolls everything back and answers `None` (a lost compare-and-set);
    /// otherwise answers the rows each statement affected.
    pub(crate) async fn execute_all(
        &self,
        statements: &[Statement],
    ) -> Result<Option<Vec<u64>>, StoreError> {
        macro_rules! run {
            ($pool:expr, $dialect:expr) => {{
                let mut tx = $pool.begin().await?;
                let mut affected = Vec::with_capacity(statements.len());
                for statement in statements {
                    let rows = bind_all!(
                        sqlx::query(AssertSqlSafe($dialect(&statement.sql))),
                        &statement.args
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if statement.required && rows == 0 {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    affected.push(rows);
                }
                tx.commit().await?;
                Ok(Some(affected))
            }};
        }
        match self {
            Self::Sqlite(pool) => run!(pool, sql::sqlite),
            Self::Postgres(pool) => run!(pool, str::to_owned),
        }
    }

    /// Runs a statement; returns the rows it affected.
    pub(crate) async fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(match self {
            Self::Sqlite(pool) => bind_all!(sqlx::query(AssertSqlSafe(sql::sqlite(sql))), args)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args)
                .execute(pool)
                .await?
                .rows_affected(),
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

/// A transaction on either backend, for read-modify-write steps the generic helpers cannot
/// express in one statement. Statements are written in PostgreSQL's dialect. Dropped without
/// [`Tx::commit`], it rolls back.
pub(crate) enum Tx {
    /// On SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// On PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Store {
    /// Begins a transaction. On SQLite, start it with a write so the connection takes the
    /// write lock at once (a read first could fail to upgrade under concurrency).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

impl Tx {
    /// Runs a statement; returns the rows it affected.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql::sqlite(sql))), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Self::Postgres(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query and decodes at most one row.
    pub(crate) async fn fetch_optional<T: AnyRow>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => {
                bind_all!(
                    sqlx::query_as::<_, T>(AssertSqlSafe(sql::sqlite(sql))),
                    args
                )
                .fetch_optional(&mut **tx)
                .await?
            }
            Self::Postgres(tx) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned())), args)
                    .fetch_optional(&mut **tx)
                    .await?
            }
        })
    }

    /// Runs a query and decodes every row.
    pub(crate) async fn fetch_all<T: AnyRow>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => {
                bind_all!(
                    sqlx::query_as::<_, T>(AssertSqlSafe(sql::sqlite(sql))),
                    args
                )
                .fetch_all(&mut **tx)
                .await?
            }
            Self::Postgres(tx) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned())), args)
                    .fetch_all(&mut **tx)
                    .await?
            }
        })
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_arguments_hold_no_nul() {
        let text = |arg: Arg| match arg {
            Arg::Text(text) => text,
            _ => unreachable!("text"),
        };
        assert_eq!(text(Arg::from("a\0b")).as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(
            text(Arg::from(Some("\0".to_owned()))).as_deref(),
            Some("\u{FFFD}")
        );
        assert_eq!(
            text(Arg::from("plain".to_owned())).as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |migrator: &Migrator| {
            migrator
                .iter()
                .map(|migration| (migration.version, migration.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert!(versions(&SQLITE_MIGRATIONS).len() >= 3);
    }
}
