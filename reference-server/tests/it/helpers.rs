//! Test databases and a spawned server.

use std::net::SocketAddr;
use std::path::PathBuf;

use reference_server::auth::TokenStore;
use reference_server::config::Redacted;
use reference_server::store::Store;
use reference_server::{Application, Config};
use sqlx::{Connection, Executor, PgConnection};

/// The `whsec_` secret [`TestApp::webhook`] signs with.
pub const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Which database a case runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database on the `DATABASE_URL` server.
    Postgres,
}

/// A database of its own for one test; call [`TestDb::cleanup`] at the end.
pub struct TestDb {
    /// The URL of the fresh database.
    pub url: String,
    /// The directory holding the SQLite file and the server's data.
    pub dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` (after printing why) when the Postgres suite is skipped.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "reference-server-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => Some(Self {
                url: format!("sqlite://{}", dir.join("test.db").display()),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let Some(server) = std::env::var("DATABASE_URL")
                    .ok()
                    .filter(|url| url.starts_with("postgres"))
                else {
                    assert!(
                        std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
                        "REQUIRE_POSTGRES=1 but DATABASE_URL is not a postgres:// URL"
                    );
                    println!("skipped Postgres case: DATABASE_URL not set");
                    return None;
                };
                let name = format!("rs_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&server)
                    .await
                    .expect("DATABASE_URL must point at a reachable PostgreSQL server");
                admin
                    // The C locale, as docs/deployment.md advises: text compares bytewise,
                    // as on SQLite and in memory.
                    .execute(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {name} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
                    )))
                    .await
                    .expect("create test database");
                let base = server
                    .rsplit_once('/')
                    .map_or(server.as_str(), |(base, _)| base);
                Some(Self {
                    url: format!("{base}/{name}"),
                    dir,
                    postgres: Some((server.clone(), name)),
                })
            }
        }
    }

    /// A connected, migrated store on this database.
    pub async fn store(&self) -> Store {
        Store::connect(&self.url)
            .await
            .expect("connect and migrate")
    }

    /// Runs `sql` on this database over a connection of its own (outside any store).
    pub async fn execute(&self, sql: &'static str) {
        execute_on(&self.url, sql).await;
    }

    /// Drops the Postgres database and removes the directory.
    pub async fn cleanup(self) {
        if let Some((server, name)) = self.postgres
            && let Ok(mut admin) = PgConnection::connect(&server).await
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

/// Runs `sql` on the database at `url`, over a connection of its own.
pub async fn execute_on(url: &str, sql: &'static str) {
    if url.starts_with("postgres") {
        let mut connection = PgConnection::connect(url).await.expect("connect");
        connection.execute(sql).await.expect("statement");
    } else {
        let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
        connection.execute(sql).await.expect("statement");
    }
}

/// The number `sql` reads on the database at `url`, over a connection of its own.
pub async fn count_on(url: &str, sql: &'static str) -> i64 {
    if url.starts_with("postgres") {
        let mut connection = PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&mut connection)
            .await
            .expect("count")
    } else {
        let mut connection = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&mut connection)
            .await
            .expect("count")
    }
}

/// A server running on a free port over a test database.
pub struct TestApp {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its store, for assertions.
    pub store: Store,
    /// An HTTP client.
    pub client: reqwest::Client,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl TestApp {
    /// Starts the server on `db` with the given `OPENPHONE_WEBHOOK_SECRETS` value.
    pub async fn spawn(db: &TestDb, secrets: Option<&str>, max_body: Option<usize>) -> Self {
        Self::spawn_with(db, |config| {
            config.webhook_secrets = secrets.map(|secrets| Redacted(secrets.to_owned()));
            if let Some(max_body) = max_body {
                config.max_webhook_body_bytes = max_body;
            }
        })
        .await
    }

    /// Starts the server on `db` with [`STANDARD_SECRET`] and the changes `configure` makes.
    pub async fn spawn_with(db: &TestDb, configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_clock(db, reference_server::ingest::system_clock(), configure).await
    }

    /// [`TestApp::spawn_with`] with the server's clock.
    pub async fn spawn_with_clock(
        db: &TestDb,
        clock: reference_server::ingest::Clock,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), db.dir.clone());
        config.database_url = Some(Redacted(db.url.clone()));
        config.webhook_secrets = Some(Redacted(STANDARD_SECRET.to_owned()));
        // No self-check event in the log unless a test asks for it.
        config.self_check_interval_secs = 0;
        configure(&mut config);
        let app = Application::build_with_clock(&config, clock)
            .await
            .expect("build");
        let address = app.local_addr().unwrap();
        let store = app.store().clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            address,
            store,
            client: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts `body` to the webhook path, signed with [`STANDARD_SECRET`] under `delivery_id`.
    pub async fn webhook(
        &self,
        delivery_id: &str,
        body: &serde_json::Value,
    ) -> reqwest::StatusCode {
        let body = body.to_string();
        let headers = openphone_webhooks::SigningSecret::parse(STANDARD_SECRET)
            .unwrap()
            .sign(
                delivery_id,
                time::OffsetDateTime::now_utc(),
                body.as_bytes(),
            )
            .unwrap();
        let mut request = self
            .client
            .post(self.url("/api/openphone/webhook"))
            .body(body);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.to_str().unwrap());
        }
        request.send().await.unwrap().status()
    }

    /// A new bearer token with `role`.
    pub async fn token(&self, role: reference_server::auth::Role) -> String {
        self.store
            .create_token(role, Some("test"), time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .token
    }

    /// The text of `GET /metrics` with `token` (an operator's).
    pub async fn metrics(&self, token: &str) -> String {
        self.client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET path` with `token`: the status and the JSON body (`null` when not JSON).
    pub async fn get(&self, path: &str, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Polls `check` every 20 ms until it returns `Some`, for at most 15 s.
    pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Appends one incoming message `id` with `text` at `at` to the conversation `key` and resolves
/// its thread as idle: a resolved thread, ready to export.
pub async fn resolved_thread(
    store: &Store,
    key: &str,
    id: &str,
    text: &str,
    at: time::OffsetDateTime,
) -> thread_resolver::ThreadId {
    use thread_resolver::{Entry, EntryKind, Resolution, ThreadStore};
    let entry = Entry {
        id: id.to_owned(),
        kind: EntryKind::Message,
        direction: "incoming".into(),
        from: None,
        text: Some(text.to_owned()),
        at,
    };
    let thread = store.append(key, &entry).await.unwrap().thread;
    store
        .resolve(thread, 1, &Resolution::Idle, at)
        .await
        .unwrap();
    thread
}
