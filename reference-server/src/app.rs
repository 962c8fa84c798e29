//! Building the router and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openphone_webhooks::WebhookVerifier;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Error;
use crate::alerts::Alerter;
use crate::auth::{Caller, Role};
use crate::compliance::{ReplySender, ReplyTexts};
use crate::config::Config;
use crate::group_commit::{Ingestor, Writers};
use crate::health_check::HealthChecks;
use crate::ingest::{
    Clock, IngestState, WebhookObservers, count_webhooks, not_configured, receive, system_clock,
};
use crate::media::{BlobStore, MediaFetcher, MediaPolicy};
use crate::metrics::Metrics;
use crate::scheduler::{Job, Scheduler};
use crate::self_check::SelfCheck;
use crate::store::Store;

/// The webhook paths OpenPhone can be pointed at (both are accepted).
pub const WEBHOOK_PATHS: [&str; 2] = ["/api/openphone/webhook", "/api/openphone/inbound"];

/// What the routes and workers need.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub store: Store,
    /// The verifier of the configured secrets; without it (no secrets configured), webhook
    /// deliveries are refused with 503.
    pub verifier: Option<WebhookVerifier>,
    /// The clock that stamps received times.
    pub clock: Clock,
    /// The process's metrics.
    pub metrics: Metrics,
    /// Where media blobs are stored.
    pub blobs: BlobStore,
    /// What media downloads may fetch.
    pub media_policy: MediaPolicy,
    /// The OpenPhone client for compliance replies; without it replies wait in the outbox.
    pub openphone: Option<openphone_client::Client>,
    /// The compliance reply texts.
    pub reply_texts: ReplyTexts,
    /// The periodic jobs the scheduler runs (once per slot across replicas).
    pub jobs: Vec<Arc<dyn Job>>,
    /// Where alerts go (always recorded for `GET /api/v1/alerts`).
    pub alerter: Alerter,
    /// Development endpoints verified deliveries are forwarded to (usually none).
    pub forward: Vec<crate::forward::ForwardTarget>,
    /// The sender of API sends that name none.
    pub default_sender: Option<String>,
    /// Sends per token per minute.
    pub messages_per_minute: usize,
    /// Campaign settings.
    pub campaigns: crate::campaigns::CampaignSettings,
    /// Thread settings.
    pub threads: crate::threads::ThreadSettings,
    /// Knowledge export settings.
    pub knowledge: crate::knowledge::KnowledgeSettings,
}

impl Services {
    /// Services over `store` with defaults: no verifier, the system clock, blobs under
    /// `data_dir/blobs`, the default media policy, no OpenPhone client.
    pub fn new(store: Store, data_dir: &std::path::Path) -> Self {
        let clock = crate::ingest::system_clock();
        Self {
            alerter: Alerter::new(
                store.clone(),
                Vec::new(),
                std::time::Duration::from_secs(3600),
                20,
                clock.clone(),
            ),
            store,
            verifier: None,
            clock,
            metrics: Metrics::default(),
            blobs: BlobStore::new(data_dir.join("blobs")),
            media_policy: MediaPolicy::default(),
            openphone: None,
            reply_texts: ReplyTexts::default(),
            jobs: Vec::new(),
            forward: Vec::new(),
            default_sender: None,
            messages_per_minute: 30,
            campaigns: crate::campaigns::CampaignSettings::default(),
            threads: crate::threads::ThreadSettings::default(),
            knowledge: crate::knowledge::KnowledgeSettings::default(),
        }
    }
}

/// The background tasks behind a router: the group-commit writer, the media downloader and
/// the compliance reply sender. Drain them after the router stops serving.
pub struct Workers {
    writers: Writers,
    live: crate::live::Live,
    stop: watch::Sender<bool>,
    background: JoinSet<()>,
}

impl Workers {
    /// The live event streams' signal: call [`crate::live::Live::close`] when shutdown
    /// starts, so open streams do not hold up a graceful shutdown.
    pub fn live(&self) -> crate::live::Live {
        self.live.clone()
    }

    /// Waits until every queued delivery is committed and the writer has stopped (it
    /// stops once the router, and with it every [`crate::group_commit::Ingestor`] handle, is dropped), announces the last
    /// commits to other replicas, then stops the media and reply workers after the job each
    /// has in hand.
    pub async fn drain(mut self) {
        self.writers.drained().await;
        self.live.finish().await;
        let _ = self.stop.send(true);
        while self.background.join_next().await.is_some() {}
    }
}

/// Runs a worker's `round` until `stop` turns true (or its sender is dropped): again at once
/// after a round that handled something, a second later after one that handled nothing or
/// failed (logged as `worker`'s). `stop` is checked before every round, so a backlog (say the
/// photos of a large import) does not hold up a shutdown: the round in hand finishes, no new
/// one starts. A round that panics (a bug meeting one job's data) is logged and the worker goes
/// on with the next, instead of stopping until the process restarts.
pub(crate) async fn poll_until_stopped<F, Fut>(
    mut stop: watch::Receiver<bool>,
    worker: &'static str,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, crate::store::StoreError>>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        use futures_util::FutureExt;
        match std::panic::AssertUnwindSafe(round()).catch_unwind().await {
            Ok(Ok(0)) => {}
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => tracing::error!(%error, worker, "database failed"),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(worker, %reason, "a worker round panicked; going on with the next");
            }
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() {
                return;
            },
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// The server's routes and their workers. Embed the router in another axum app with
/// `Router::merge`; after it stops serving, call [`Workers::drain`].
pub fn router(services: Services) -> (Router, Workers) {
    let Services {
        store,
        verifier,
        clock,
        metrics,
        blobs,
        media_policy,
        openphone,
        reply_texts,
        jobs,
        alerter,
        forward,
        default_sender,
        messages_per_minute,
        campaigns,
        threads,
        knowledge,
    } = services;
    let mut jobs = jobs;
    let resolver =
        thread_resolver::Resolver::new(store.clone(), threads.idle).unwrap_or_else(|_| {
            tracing::warn!("the thread idle time must be positive: using the default 30 minutes");
            thread_resolver::Resolver::new(store.clone(), thread_resolver::DEFAULT_IDLE)
                .expect("the default idle time is positive")
        });
    if knowledge.schedule != crate::knowledge::ExportSchedule::Off {
        jobs.push(Arc::new(crate::knowledge::KnowledgeJob {
            store: store.clone(),
            settings: knowledge.clone(),
            clock: clock.clone(),
        }));
    }
    jobs.push(Arc::new(crate::threads::ThreadJob {
        resolver: resolver.clone(),
        every: threads.sweep_every,
        clock: clock.clone(),
    }));
    let live = crate::live::Live::new(store.clone());
    let (ingestor, writers) = Ingestor::start(store.clone(), metrics.clone(), Some(live.clone()));
    let (stop, stopped) = watch::channel(false);
    let mut background = JoinSet::new();
    background.spawn(
        MediaFetcher {
            store: store.clone(),
            blobs: blobs.clone(),
            policy: media_policy,
            clock: clock.clone(),
            metrics: metrics.clone(),
            alerter: alerter.clone(),
        }
        .run(stopped.clone()),
    );
    // Host and process, and a random part: two processes never share a name (a restarted
    // container keeps its host name and its process id), which is how a job run's heartbeats
    // and end are told apart from another replica's.
    let replica = format!(
        "{}-{}-{:04x}",
        hostname::get()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "local".to_owned()),
        std::process::id(),
        fastrand::u16(..)
    );
    let campaigns = crate::campaigns::Campaigns::new(
        store.clone(),
        openphone.clone(),
        campaigns,
        clock.clone(),
        &replica,
    );
    jobs.push(Arc::new(crate::campaigns::CampaignJob {
        campaigns: campaigns.clone(),
        alerter: alerter.clone(),
    }));
    background.spawn(
        Scheduler::new(store.clone(), jobs, clock.clone(), replica)
            .with_alerter(alerter.clone())
            .run(stopped.clone()),
    );
    let messenger = crate::messaging::Messenger {
        store: store.clone(),
        client: openphone.clone(),
        default_sender,
    };
    let numbers_api = openphone.clone();
    match openphone {
        Some(client) => {
            // Our numbers key group conversations: read them once at start.
            let (numbers_client, numbers_store, now_ms) = (
                client.clone(),
                store.clone(),
                crate::ingest::unix_ms(clock()),
            );
            background.spawn(async move {
                match crate::import::save_phone_numbers(&numbers_client, &numbers_store, now_ms)
                    .await
                {
                    Ok(numbers) => tracing::info!(count = numbers.len(), "phone numbers read"),
                    Err(error) => tracing::warn!(%error, "phone numbers not read; learned from outgoing messages instead"),
                }
            });
            background.spawn(
                ReplySender {
                    store: store.clone(),
                    client,
                    texts: reply_texts,
                    clock: clock.clone(),
                    metrics: metrics.clone(),
                    alerter: alerter.clone(),
                }
                .run(stopped),
            );
        }
        None => tracing::warn!(
            "OPENPHONE_API_KEY is not set: compliance replies (STOP, START, HELP) wait in the outbox until it is"
        ),
    }
    let webhooks = match verifier {
        Some(verifier) => {
            let state = IngestState {
                ingestor,
                verifier,
                clock: clock.clone(),
                forward: Arc::new(forward),
                store: store.clone(),
                metrics: metrics.clone(),
                own_numbers: numbers_api.map_or_else(
                    crate::ingest::KnownNumbers::default,
                    crate::ingest::KnownNumbers::with_api,
                ),
            };
            WEBHOOK_PATHS
                .iter()
                .fold(Router::new(), |router, path| {
                    router.route(path, post(receive))
                })
                .with_state(state)
        }
        None => WEBHOOK_PATHS.iter().fold(Router::new(), |router, path| {
            router.route(path, post(not_configured))
        }),
    }
    .layer(axum::middleware::from_fn_with_state(
        WebhookObservers {
            metrics: metrics.clone(),
            alerter: alerter.clone(),
        },
        count_webhooks,
    ));
    let operations = OperationsState {
        store: store.clone(),
        metrics,
    };
    let router = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(prometheus))
        .with_state(operations)
        .merge(webhooks)
        .merge(crate::api::routes(crate::api::ApiState {
            store,
            blobs,
            clock,
            messenger,
            limiter: crate::messaging::TokenLimiter::new(messages_per_minute),
            live: live.clone(),
            campaigns,
            threads: resolver,
        }));
    (
        router,
        Workers {
            writers,
            live,
            stop,
            background,
        },
    )
}

/// State of the operational routes.
#[derive(Clone)]
struct OperationsState {
    store: Store,
    metrics: Metrics,
}

impl FromRef<OperationsState> for Store {
    fn from_ref(state: &OperationsState) -> Self {
        state.store.clone()
    }
}

/// `GET /healthz`: the process is alive (it answers). The database is not asked: a liveness
/// probe that failed with it would have an orchestrator restart every replica during a
/// database outage, which a restart does not cure; `/readyz` tells that instead.
async fn health(State(state): State<OperationsState>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "database": state.store.backend()}))
}

/// `GET /readyz`: the database answers and every embedded migration is applied.
async fn ready(State(state): State<OperationsState>) -> (StatusCode, Json<serde_json::Value>) {
    let store = &state.store;
    match store.migrations_applied().await {
        Ok(true) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": store.backend()})),
        ),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "migrations pending", "database": store.backend()})),
        ),
        Err(error) => {
            tracing::error!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database unavailable", "database": store.backend()})),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format (operator and admin tokens).
async fn prometheus(
    caller: Caller,
    State(state): State<OperationsState>,
) -> Result<Response, Error> {
    caller.require(Role::Operator)?;
    let (size, idle) = state.store.pool_connections();
    let mut gauges = vec![
        (
            "db_pool_connections",
            "Connections open in the database pool.",
            i64::from(size),
        ),
        (
            "db_pool_idle_connections",
            "Idle connections in the database pool.",
            i64::try_from(idle).unwrap_or(i64::MAX),
        ),
    ];
    let stats = state.store.stats().await?;
    gauges.push((
        "media_pending",
        "Media downloads waiting or retrying.",
        stats.media_pending,
    ));
    gauges.push((
        "media_failed",
        "Media downloads that gave up.",
        stats.media_failed,
    ));
    let checks = state.store.health_checks(None, 1).await?;
    if let Some(check) = checks.first() {
        gauges.push((
            "health_check_passed",
            "Whether the latest end-to-end health check passed (1), failed (0) or waits (-1).",
            match check.status.as_str() {
                "passed" => 1,
                "failed" => 0,
                _ => -1,
            },
        ));
        if let Some(received) = check.received_ms {
            gauges.push((
                "health_check_latency_ms",
                "End-to-end latency of the latest passed health check: send to webhook ingested.",
                received - check.sent_ms,
            ));
        }
    }
    let body = state.metrics.render(&gauges);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    workers: Workers,
    store: Store,
}

impl Application {
    /// Connects and migrates the database and binds the listener (port 0 picks a free port).
    ///
    /// # Errors
    /// [`Error::Config`], [`Error::Store`] or [`Error::Io`] when a setting is unusable, the
    /// database cannot be reached or migrated, or the address cannot be bound.
    pub async fn build(config: &Config) -> Result<Self, Error> {
        Self::build_with_clock(config, system_clock()).await
    }

    /// [`Application::build`] with the clock that stamps received times.
    ///
    /// # Errors
    /// As for [`Application::build`].
    pub async fn build_with_clock(config: &Config, clock: Clock) -> Result<Self, Error> {
        // Settings first, so a configuration mistake is reported before any connection.
        let secrets = config.webhook_secrets()?;
        let signing_secret = secrets
            .as_ref()
            .and_then(|secrets| secrets.first().cloned());
        config.database_url()?;
        let media_policy = config.media_policy()?;
        let openphone = config.openphone_client()?;
        let reply_texts = config.reply_texts()?;
        let blobs = config.blob_store()?;
        let alert_sinks = config.alert_sinks()?;
        let reconcile_schedule = config.reconcile_schedule()?;
        let forward = config.forward_targets()?;
        let campaign_settings = config.campaign_settings()?;
        let verifier = match secrets {
            Some(secrets) => Some(
                WebhookVerifier::new(secrets)
                    .map_err(|error| Error::Config(format!("OPENPHONE_WEBHOOK_SECRETS: {error}")))?
                    .with_max_body_size(config.max_webhook_body_bytes),
            ),
            None => {
                tracing::warn!(
                    "OPENPHONE_WEBHOOK_SECRETS is not set: webhook deliveries will be refused with 503"
                );
                None
            }
        };
        let store = config.open_store().await?;
        let listener = TcpListener::bind(config.listen_addr).await?;
        let mut jobs: Vec<Arc<dyn Job>> = Vec::new();
        if let Some(secret) = signing_secret
            && config.self_check_interval_secs > 0
        {
            let address = listener.local_addr()?;
            jobs.push(Arc::new(SelfCheck {
                url: format!("http://{address}{}", WEBHOOK_PATHS[0]),
                secret,
                store: store.clone(),
                every: std::time::Duration::from_secs(config.self_check_interval_secs),
                clock: clock.clone(),
            }));
        }
        let alerter = Alerter::new(
            store.clone(),
            alert_sinks,
            std::time::Duration::from_secs(config.alert_repeat_minutes.max(1) * 60),
            config.alert_verification_failures,
            clock.clone(),
        );
        match (
            &config.health_check_from,
            &config.health_check_to,
            &openphone,
        ) {
            (Some(from), Some(to), Some(client)) => {
                let to = openphone_types::E164::parse(to).map_err(|_| {
                    Error::Config("HEALTH_CHECK_TO must be an E.164 number".to_owned())
                })?;
                jobs.push(Arc::new(crate::health_check::HealthCheckJob {
                    client: client.clone(),
                    store: store.clone(),
                    from: from.clone(),
                    to,
                    every: std::time::Duration::from_secs(
                        config.health_check_interval_secs.max(60),
                    ),
                    clock: clock.clone(),
                }));
                jobs.push(Arc::new(crate::health_check::HealthCheckExpiry {
                    store: store.clone(),
                    timeout: std::time::Duration::from_secs(config.health_check_timeout_secs),
                    clock: clock.clone(),
                    alerter: alerter.clone(),
                }));
            }
            (None, None, _) => {}
            _ => {
                return Err(Error::Config(
                    "health checks need HEALTH_CHECK_FROM, HEALTH_CHECK_TO and OPENPHONE_API_KEY"
                        .to_owned(),
                ));
            }
        }
        if let Some(client) = &openphone {
            jobs.push(Arc::new(crate::reconcile::Reconciliation {
                client: client.clone(),
                store: store.clone(),
                clock: clock.clone(),
                schedule: reconcile_schedule,
                overlap: std::time::Duration::from_secs(config.reconcile_overlap_hours * 3600),
                pending_after: std::time::Duration::from_secs(config.pending_delivery_minutes * 60),
                alerter: alerter.clone(),
            }));
        }
        let (router, workers) = router(Services {
            verifier,
            clock: clock.clone(),
            media_policy,
            openphone,
            reply_texts,
            blobs,
            jobs,
            alerter,
            forward,
            default_sender: config.default_sender.clone(),
            messages_per_minute: config.messages_per_minute,
            campaigns: campaign_settings,
            threads: config.thread_settings()?,
            knowledge: config.knowledge_settings(None)?,
            ..Services::new(store.clone(), &config.data_dir)
        });
        Ok(Self {
            listener,
            router,
            workers,
            store,
        })
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// [`Error::Io`] if the socket cannot report it.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// The store the server writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` completes; then stops accepting connections, finishes the
    /// requests in flight, commits what is queued, and returns.
    ///
    /// # Errors
    /// [`Error::Io`] when serving fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let live = self.workers.live.clone();
        // Answers go out at once (no Nagle delay on small writes to a keep-alive connection).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                live.close();
            })
            .await;
        self.workers.drain().await;
        tracing::info!("drained: every acknowledged delivery is committed");
        self.store.close().await;
        Ok(served?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::watch;

    /// A round that panics does not end the worker: the next round runs.
    #[tokio::test]
    async fn a_panicking_round_does_not_stop_the_worker() {
        let (stop, stopped) = watch::channel(false);
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let stop = Arc::new(stop);
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            super::poll_until_stopped(stopped, "test", move || {
                let (counted, stop) = (counted.clone(), stop.clone());
                async move {
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("a bug meeting one job's data");
                    }
                    let _ = stop.send(true);
                    Ok(0)
                }
            }),
        )
        .await
        .expect("the worker stops when told");
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }
}
