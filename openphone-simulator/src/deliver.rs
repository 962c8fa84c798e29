//! Signed webhook deliveries, with duplicates, reordering and retries with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openphone_webhooks::{Scheme, SigningSecret};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::config::DeliveryOptions;
use crate::rng::Rng;

/// A receiver of deliveries.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: String,
    pub secret: SigningSecret,
    /// For webhooks created through `/v1/webhooks`: the events they asked for.
    pub events: Option<Vec<String>>,
}

/// One event for one target.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub target: Target,
    pub delivery_id: String,
    pub body: Vec<u8>,
    pub attempt: u32,
}

/// Counters of delivery outcomes.
#[derive(Debug, Default)]
pub(crate) struct DeliveryStats {
    pub attempted: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub abandoned: AtomicU64,
}

/// Queues deliveries and sends them from a background task.
#[derive(Debug, Clone)]
pub(crate) struct Deliverer {
    queue: mpsc::UnboundedSender<Vec<Delivery>>,
    pub stats: Arc<DeliveryStats>,
}

impl Deliverer {
    pub(crate) fn start(options: DeliveryOptions, seed: u64) -> Self {
        let (queue, mut receiver) = mpsc::unbounded_channel::<Vec<Delivery>>();
        let stats = Arc::new(DeliveryStats::default());
        let deliverer = Self {
            queue: queue.clone(),
            stats: stats.clone(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let options = Arc::new(options);
        tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ 0xD311_7E41);
            while let Some(mut batch) = receiver.recv().await {
                if options.reorder {
                    batch.reverse();
                }
                let copies: Vec<usize> = batch
                    .iter()
                    .map(|_| {
                        if rng.chance(options.duplicate_rate) {
                            2
                        } else {
                            1
                        }
                    })
                    .collect();
                // One task per activity: a slow receiver delays only its own events, and the
                // events of one activity keep their order.
                let (http, options, stats, queue) =
                    (http.clone(), options.clone(), stats.clone(), queue.clone());
                tokio::spawn(async move {
                    for (delivery, copies) in batch.iter().zip(copies) {
                        for _ in 0..copies {
                            send(&http, delivery, &options, &stats, &queue).await;
                        }
                    }
                });
            }
        });
        deliverer
    }

    /// Queues the deliveries of one activity, in order (or reversed, when reordering).
    pub(crate) fn enqueue(&self, batch: Vec<Delivery>) {
        if !batch.is_empty() {
            let _ = self.queue.send(batch);
        }
    }
}

async fn send(
    http: &reqwest::Client,
    delivery: &Delivery,
    options: &DeliveryOptions,
    stats: &DeliveryStats,
    queue: &mpsc::UnboundedSender<Vec<Delivery>>,
) {
    stats.attempted.fetch_add(1, Ordering::Relaxed);
    // Signed at send time, as OpenPhone does for each attempt.
    let headers = match delivery.target.secret.sign(
        &delivery.delivery_id,
        OffsetDateTime::now_utc(),
        &delivery.body,
    ) {
        Ok(headers) => headers,
        Err(error) => {
            tracing::error!(%error, "cannot sign delivery");
            return;
        }
    };
    let result = http
        .post(&delivery.target.url)
        .headers(headers)
        .header("content-type", "application/json")
        .body(delivery.body.clone())
        .send()
        .await;
    let ok = matches!(&result, Ok(response) if response.status().is_success());
    if ok {
        stats.succeeded.fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
    if delivery.attempt + 1 >= options.max_attempts {
        stats.abandoned.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = %delivery.target.url, "webhook delivery abandoned after retries");
        return;
    }
    let delay = options
        .retry_base
        .saturating_mul(2u32.saturating_pow(delivery.attempt));
    let mut retry = delivery.clone();
    retry.attempt += 1;
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = queue.send(vec![retry]);
    });
}

/// Builds the deliveries of `events` (`(type, 2026 payload, legacy payload)`) for every
/// target that wants them.
pub(crate) fn for_targets(
    targets: &[Target],
    events: &[(String, Value, Option<Value>)],
    next_id: &mut dyn FnMut() -> String,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for (event_type, modern, legacy) in events {
        for target in targets {
            if let Some(wanted) = &target.events
                && !wanted.iter().any(|event| event == event_type)
            {
                continue;
            }
            let payload = match target.secret.scheme() {
                Scheme::Standard => modern,
                Scheme::Legacy => match legacy {
                    Some(legacy) => legacy,
                    None => continue,
                },
            };
            deliveries.push(Delivery {
                target: target.clone(),
                delivery_id: format!("msg_{}", next_id()),
                body: payload.to_string().into_bytes(),
                attempt: 0,
            });
        }
    }
    deliveries
}
