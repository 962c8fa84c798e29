//! A simulator and a webhook receiver per test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use openphone_client::{Client, RateLimit, RetryPolicy};
use openphone_simulator::{SeedOptions, Simulator, SimulatorConfig};
use openphone_webhooks::extract::WebhookEvent;
use openphone_webhooks::{Event, Scheme, SigningSecret, WebhookVerifier};
use tokio::sync::mpsc;

pub const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const LEGACY_SECRET: &str = "R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=";

/// A small seeded workspace, no rate limit unless asked.
pub fn config(conversations: usize) -> SimulatorConfig {
    SimulatorConfig {
        seed: SeedOptions {
            conversations,
            ..SeedOptions::default()
        },
        rate_limit: None,
        ..SimulatorConfig::default()
    }
}

pub async fn start(config: SimulatorConfig) -> Simulator {
    Simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A client for the simulator with fast retries.
pub fn client(simulator: &Simulator, key: &str) -> Client {
    Client::builder(key)
        .base_url(simulator.base_url())
        .rate_limit(RateLimit::per_second(1000))
        .retry(RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(2),
        })
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// One verified delivery.
#[derive(Debug)]
pub struct Received {
    pub event: Event,
    pub scheme: Scheme,
    pub delivery_id: Option<String>,
}

#[derive(Clone)]
struct ReceiverState {
    verifier: WebhookVerifier,
    sender: mpsc::UnboundedSender<Received>,
    failures_left: Arc<AtomicU32>,
}

impl axum::extract::FromRef<ReceiverState> for WebhookVerifier {
    fn from_ref(state: &ReceiverState) -> Self {
        state.verifier.clone()
    }
}

/// A webhook receiver that verifies every delivery with both test secrets (plus `extra`) and
/// answers 500 to the first `fail_first` deliveries.
pub async fn receiver(
    extra: &[String],
    fail_first: u32,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let mut secrets = vec![
        SigningSecret::parse(STANDARD_SECRET).unwrap(),
        SigningSecret::parse(LEGACY_SECRET).unwrap(),
    ];
    secrets.extend(
        extra
            .iter()
            .map(|secret| SigningSecret::legacy(secret).unwrap()),
    );
    let (sender, receiver) = mpsc::unbounded_channel();
    let state = ReceiverState {
        verifier: WebhookVerifier::new(secrets).unwrap(),
        sender,
        failures_left: Arc::new(AtomicU32::new(fail_first)),
    };
    async fn receive(State(state): State<ReceiverState>, webhook: WebhookEvent) -> StatusCode {
        if state
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
        {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let _ = state.sender.send(Received {
            event: webhook.event,
            scheme: webhook.verified.scheme,
            delivery_id: webhook.verified.delivery_id,
        });
        StatusCode::OK
    }
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, receiver)
}

/// The next `count` deliveries, failing after 10 s.
pub async fn next(receiver: &mut mpsc::UnboundedReceiver<Received>, count: usize) -> Vec<Received> {
    let mut received = Vec::new();
    for _ in 0..count {
        let item = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("a delivery within 10 s")
            .expect("receiver open");
        received.push(item);
    }
    received
}

/// A receiver that keeps each request's headers and body as they came, unverified.
pub async fn raw_receiver() -> (
    String,
    mpsc::UnboundedReceiver<(axum::http::HeaderMap, bytes::Bytes)>,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/raw",
        post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/raw", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, receiver)
}
