//! Building the router and running the server.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use openphone_webhooks::WebhookVerifier;
use serde_json::json;
use tokio::net::TcpListener;

use crate::Error;
use crate::config::Config;
use crate::ingest::{Clock, IngestState, not_configured, receive, system_clock};
use crate::store::Store;

/// The webhook paths OpenPhone can be pointed at (both are accepted).
pub const WEBHOOK_PATHS: [&str; 2] = ["/api/openphone/webhook", "/api/openphone/inbound"];

/// The server's routes over `store`. Without a verifier (no secrets configured), webhook
/// deliveries are refused with 503. Embed it in another axum app with `Router::merge` or
/// `Router::nest`.
pub fn router(store: Store, verifier: Option<WebhookVerifier>, clock: Clock) -> Router {
    let webhooks = match verifier {
        Some(verifier) => {
            let state = IngestState {
                store: store.clone(),
                verifier,
                clock,
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
    };
    Router::new()
        .route("/healthz", get(health))
        .with_state(store.clone())
        .merge(webhooks)
        .merge(crate::api::routes(crate::api::ApiState { store }))
}

async fn health(State(store): State<Store>) -> (StatusCode, Json<serde_json::Value>) {
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": store.backend()})),
        ),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": store.backend()})),
            )
        }
    }
}

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
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
        let database_url = config.database_url()?;
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
        let store = Store::connect(&database_url).await?;
        let listener = TcpListener::bind(config.listen_addr).await?;
        Ok(Self {
            listener,
            router: router(store.clone(), verifier, clock),
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

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    ///
    /// # Errors
    /// [`Error::Io`] when serving fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
