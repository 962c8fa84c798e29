//! The self-check job: the server signs a test event with its own secret, posts it to its own
//! webhook endpoint, and checks that it was stored, so a broken secret, route or database
//! shows up as a failed run (and an error log) before OpenPhone's deliveries fail.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use openphone_webhooks::SigningSecret;
use serde_json::json;
use time::OffsetDateTime;

use crate::ingest::Clock;
use crate::scheduler::{Job, RunEnd, Schedule, Stop};
use crate::store::Store;

/// The event type of self-check deliveries (kept in the raw log; projected into nothing).
pub const EVENT_TYPE: &str = "reference-server.self-check";

/// Posts a signed test event to this server and checks it was stored.
pub struct SelfCheck {
    /// The webhook URL of this server.
    pub url: String,
    /// A secret the server verifies with.
    pub secret: SigningSecret,
    /// The database.
    pub store: Store,
    /// How often.
    pub every: Duration,
    /// The clock that stamps the signature.
    pub clock: Clock,
}

impl Job for SelfCheck {
    fn name(&self) -> &str {
        "self-check"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(self.every)
    }

    fn run(&self, slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let id = format!("self-check-{}", slot.unix_timestamp());
            let body = json!({"id": id, "type": EVENT_TYPE, "apiVersion": "2026-03-30",
                "createdAt": slot.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "data": {"resource": {}}})
            .to_string();
            let headers = self
                .secret
                .sign(&id, (self.clock)(), body.as_bytes())
                .map_err(|error| format!("signing failed: {error}"))?;
            let started = Instant::now();
            let response = reqwest::Client::new()
                .post(&self.url)
                .headers(headers)
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|error| format!("posting to {} failed: {error}", self.url))?;
            let latency = started.elapsed();
            if !response.status().is_success() {
                return Err(format!(
                    "the webhook endpoint answered {}",
                    response.status()
                ));
            }
            let key = format!("webhook-id:{id}");
            let stored = self
                .store
                .delivery(&key)
                .await
                .map_err(|error| format!("reading it back failed: {error}"))?;
            if stored.is_none() {
                return Err("acknowledged but not stored".to_owned());
            }
            Ok(RunEnd::Done(
                json!({"latency_ms": latency.as_secs_f64() * 1000.0, "delivery_key": key}),
            ))
        })
    }
}
