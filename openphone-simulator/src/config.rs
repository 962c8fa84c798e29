//! How a simulator is set up.

use std::time::Duration;

use crate::workspace::SeedOptions;

/// Everything about a simulator run.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// API keys accepted in `Authorization` (raw, no `Bearer`). Default `["sim-key"]`.
    pub api_keys: Vec<String>,
    /// The seeded workspace.
    pub seed: SeedOptions,
    /// Requests allowed per key per window, answered 429 beyond (default 10 per second, as
    /// OpenPhone); `None` turns limiting off.
    pub rate_limit: Option<(u32, Duration)>,
    /// Faults to inject.
    pub faults: Faults,
    /// Where to deliver signed webhooks, besides webhooks created through `/v1/webhooks`.
    pub webhook_targets: Vec<WebhookTarget>,
    /// How deliveries behave.
    pub delivery: DeliveryOptions,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            api_keys: vec!["sim-key".to_owned()],
            seed: SeedOptions::default(),
            rate_limit: Some((10, Duration::from_secs(1))),
            faults: Faults::default(),
            webhook_targets: Vec::new(),
            delivery: DeliveryOptions::default(),
        }
    }
}

/// Faults the simulator injects into API responses.
///
/// Rates are probabilities drawn from a seeded generator, so a run is repeatable; the `next_*`
/// counters affect exactly the next requests, for tests.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API response.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Share of API requests answered 500.
    pub server_error_rate: f64,
    /// Share of successful responses whose body is cut short (malformed JSON).
    pub malformed_rate: f64,
    /// Share of sends that are accepted (the message exists, webhooks follow) but answered
    /// only after `send_timeout_delay`, so the client times out.
    pub send_timeout_rate: f64,
    /// How long an accepted-then-timed-out send waits before answering.
    #[serde(with = "millis")]
    pub send_timeout_delay: Duration,
    /// The next this-many API requests get 500.
    pub next_server_errors: u32,
    /// The next this-many sends are accepted and then time out.
    pub next_send_timeouts: u32,
}

/// A webhook receiver and the secret its deliveries are signed with: a `whsec_` secret gets
/// Standard Webhooks deliveries of 2026-03-30 payloads, a base64 secret gets legacy
/// `openphone-signature` deliveries of v4 payloads.
#[derive(Clone)]
pub struct WebhookTarget {
    /// The receiver's URL.
    pub url: String,
    /// The signing secret.
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// How webhooks are delivered.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct DeliveryOptions {
    /// How long after a send `message.delivered` follows.
    #[serde(with = "millis")]
    pub delivered_after: Duration,
    /// Share of deliveries sent twice (same delivery and event id).
    pub duplicate_rate: f64,
    /// Deliver the events of one activity in reverse order (e.g. the recording before the
    /// call completed), as OpenPhone may.
    pub reorder: bool,
    /// Attempts per delivery, the first included; a non-2xx answer or no answer is retried.
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles it.
    #[serde(with = "millis")]
    pub retry_base: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            delivered_after: Duration::from_millis(200),
            duplicate_rate: 0.0,
            reorder: false,
            max_attempts: 5,
            retry_base: Duration::from_millis(500),
        }
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(
            <u64 as serde::Deserialize>::deserialize(deserializer)?,
        ))
    }
}
