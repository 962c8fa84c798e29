//! `POST /api/openphone/webhook`: verify, then durably record the exact bytes before
//! acknowledging.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use axum::Json;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use openphone_webhooks::extract::VerifiedWebhook;
use openphone_webhooks::{Event, EventData, Scheme, WebhookVerifier};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error;
use crate::directory::Directory;
use crate::group_commit::Ingestor;
use crate::health_check::HealthChecks;
use crate::metrics::{Metrics, WebhookOutcome};
use crate::projection::{Change, OwnNumbers};
use crate::store::{NewDelivery, Recorded};

/// Where the time comes from: the system clock in production, a fixed one in tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A time as unix milliseconds, the unit of every time the normalized records keep.
pub fn unix_ms(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant `ms` Unix milliseconds name (the inverse of [`unix_ms`]); `None` out of range.
pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// State of the ingestion routes.
#[derive(Clone)]
pub struct IngestState {
    /// Where deliveries are recorded, in group commits.
    pub ingestor: Ingestor,
    /// The verifier built from the configured secrets.
    pub verifier: WebhookVerifier,
    /// The clock that stamps `received_at`.
    pub clock: Clock,
    /// Development endpoints new deliveries are forwarded to (usually none).
    pub forward: Arc<Vec<crate::forward::ForwardTarget>>,
    /// The database, to read a returning health check's send time.
    pub store: crate::store::Store,
    /// Where health check latencies are observed.
    pub metrics: Metrics,
    /// Our own numbers, to key group conversations.
    pub own_numbers: KnownNumbers,
}

/// Our own numbers as ingestion knows them: learned from outgoing messages, and read from the
/// database when a group message names a line not known (the first time, or after an import).
/// With the API ([`KnownNumbers::with_api`]), a line the database does not know either is
/// looked up in the API's list of the workspace's numbers, which is then saved (so that other
/// replicas and replays know it too, without holding up the request): at most once per
/// [`LIST_NUMBERS_EVERY`], and for at most [`LIST_NUMBERS_TIMEOUT`] of a request. A group message whose line stays unknown keys by its
/// sender alone (see [`crate::projection::OwnNumbers`]).
#[derive(Clone, Default)]
pub struct KnownNumbers {
    known: Arc<std::sync::RwLock<OwnNumbers>>,
    api: Option<Arc<NumberListing>>,
}

/// How often, at most, ingestion asks the API for the workspace's numbers.
pub const LIST_NUMBERS_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a webhook request waits, at most, for the API's list of numbers.
pub const LIST_NUMBERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The API that lists the workspace's numbers, and when it was last asked (unix ms). The lock
/// is held while asking, so that concurrent requests missing the same line ask once.
struct NumberListing {
    client: openphone_client::Client,
    asked_ms: tokio::sync::Mutex<Option<i64>>,
}

impl KnownNumbers {
    /// Numbers known from messages and the database, and looked up through `client` when
    /// neither knows a line.
    pub fn with_api(client: openphone_client::Client) -> Self {
        Self {
            known: Arc::default(),
            api: Some(Arc::new(NumberListing {
                client,
                asked_ms: tokio::sync::Mutex::new(None),
            })),
        }
    }

    fn misses(&self, event: &Event) -> bool {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .misses(event)
    }

    fn extend(&self, numbers: OwnNumbers) {
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(numbers);
    }

    /// The changes `event` makes, with our numbers up to date for it at `now_ms`.
    async fn changes(
        &self,
        store: &crate::store::Store,
        event: &Event,
        now_ms: i64,
    ) -> Vec<Change> {
        let (misses, learns) = {
            let own = self.known.read().unwrap_or_else(PoisonError::into_inner);
            (own.misses(event), own.learns(event))
        };
        if misses {
            match store.own_numbers().await {
                Ok(fresh) => self.extend(fresh),
                Err(error) => {
                    tracing::warn!(%error, "own numbers not read; a group message keys by its sender")
                }
            }
            // The API can tell a line's number only when the event names the line.
            if let Some(api) = &self.api
                && names_a_line(event)
                && self.misses(event)
            {
                self.list(api, store, event, now_ms).await;
            }
        }
        if learns {
            self.known
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .learn(event);
        }
        let own = self.known.read().unwrap_or_else(PoisonError::into_inner);
        crate::projection::changes(event, &own)
    }

    /// Asks the API for the workspace's numbers and saves them, unless it was asked less than
    /// [`LIST_NUMBERS_EVERY`] ago or another request meanwhile learned the line.
    async fn list(
        &self,
        api: &NumberListing,
        store: &crate::store::Store,
        event: &Event,
        now_ms: i64,
    ) {
        let mut asked_ms = api.asked_ms.lock().await;
        let every_ms = i64::try_from(LIST_NUMBERS_EVERY.as_millis()).unwrap_or(i64::MAX);
        if !self.misses(event) || asked_ms.is_some_and(|at| now_ms.saturating_sub(at) < every_ms) {
            return;
        }
        *asked_ms = Some(now_ms);
        let listing = api.client.list_phone_numbers(None);
        let numbers = match tokio::time::timeout(LIST_NUMBERS_TIMEOUT, listing).await {
            Ok(Ok(numbers)) => numbers,
            Ok(Err(error)) => {
                tracing::warn!(%error, "phone numbers not listed; a group message keys by its sender");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "phone numbers not listed in time; a group message keys by its sender"
                );
                return;
            }
        };
        tracing::info!(
            count = numbers.len(),
            "phone numbers listed for a group message"
        );
        let lines: Vec<crate::directory::WorkspaceNumber> = numbers
            .into_iter()
            .map(|number| crate::directory::WorkspaceNumber {
                id: number.id.to_string(),
                number: number.number.to_string(),
                name: Some(number.name),
            })
            .collect();
        self.extend(OwnNumbers::new(
            lines
                .iter()
                .map(|line| (line.id.clone(), line.number.clone())),
        ));
        // Saved for other replicas and replays, without holding up this request.
        let store = store.clone();
        tokio::spawn(async move {
            for line in &lines {
                if let Err(error) = store.save_number(line, now_ms).await {
                    tracing::warn!(%error, "a listed phone number was not saved");
                    return;
                }
            }
        });
    }
}

/// Whether `event` is a message that names the line it went through.
fn names_a_line(event: &Event) -> bool {
    matches!(&event.data, EventData::Message(message) if message.phone_number_id.is_some())
}

/// What the handler tells the metrics layer about a delivery it answered.
#[derive(Debug, Clone)]
struct Answered {
    outcome: WebhookOutcome,
    event_type: Option<String>,
}

/// Counts every webhook request (by outcome and event type) and its latency, including the
/// ones the verifier refused before the handler ran.
pub async fn count_webhooks(
    State(observers): State<WebhookObservers>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let (outcome, event_type) = match response.extensions().get::<Answered>() {
        Some(answered) => (answered.outcome, answered.event_type.as_deref()),
        None => (
            match response.status() {
                StatusCode::UNAUTHORIZED => WebhookOutcome::Unauthorized,
                StatusCode::PAYLOAD_TOO_LARGE => WebhookOutcome::TooLarge,
                status if status.is_client_error() => WebhookOutcome::BadRequest,
                _ => WebhookOutcome::Unavailable,
            },
            None,
        ),
    };
    observers
        .metrics
        .webhook(outcome, event_type, started.elapsed());
    if outcome == WebhookOutcome::Unauthorized {
        observers.alerter.verification_failed().await;
    }
    if outcome == WebhookOutcome::StoredRawOnly
        && let Err(error) = observers
            .alerter
            .raise(
                "projection_failed",
                "projection_failed",
                "the database refused the records of a webhook delivery; its raw event is kept \
                 without them (see its parse_error in GET /api/v1/events, then run \
                 `reference-server replay` once fixed)",
                Some(format!("type {}", event_type.unwrap_or("unknown"))),
            )
            .await
    {
        tracing::error!(%error, "the projection_failed alert could not be recorded");
    }
    response
}

/// What watches webhook requests: metrics, and the alerter (verification failures).
#[derive(Clone)]
pub struct WebhookObservers {
    /// Counts requests.
    pub metrics: Metrics,
    /// Raises an alert when verification keeps failing.
    pub alerter: crate::alerts::Alerter,
}

impl FromRef<IngestState> for WebhookVerifier {
    fn from_ref(state: &IngestState) -> Self {
        state.verifier.clone()
    }
}

/// The acknowledgement body.
#[derive(Debug, Serialize)]
pub struct Ack {
    /// `stored` for a new delivery, `duplicate` for one already recorded.
    pub status: &'static str,
    /// The deduplication key the delivery was recorded under.
    pub delivery_key: String,
}

/// Records a verified delivery and answers 200 once it is committed. A delivery already
/// recorded (same `webhook-id`, or same event id for legacy deliveries) answers 200 and
/// changes nothing. A body that does not parse as an event is still recorded, with the
/// reason, and acknowledged: it was authentic, and nothing authentic is dropped.
///
/// # Errors
/// [`Error::Store`] (answered with 503, so OpenPhone retries) when the write fails.
pub async fn receive(
    State(state): State<IngestState>,
    VerifiedWebhook { body, verified }: VerifiedWebhook,
) -> Result<Response, Error> {
    let mut health = None;
    let (event_id, event_type, parse_error, changes) = match parse_event(&body) {
        Ok(event) => {
            let mut changes = state
                .own_numbers
                .changes(&state.store, &event, unix_ms((state.clock)()))
                .await;
            if let Some(token) = health_check_token(&event) {
                let received_ms = unix_ms((state.clock)());
                health = Some((token.clone(), received_ms));
                changes.push(Change::HealthReceipt { token, received_ms });
            }
            (
                Some(event.id.to_string()),
                Some(event.event_type.to_string()),
                None,
                changes,
            )
        }
        Err(error) => {
            let (event_id, event_type) = envelope_fields(&body);
            (event_id, event_type, Some(error.to_string()), Vec::new())
        }
    };
    let delivery_key = match (&verified.delivery_id, &event_id) {
        (Some(delivery_id), _) => format!("webhook-id:{delivery_id}"),
        (None, Some(event_id)) => format!("event:{event_id}"),
        (None, None) => format!("sha256:{}", hex(&Sha256::digest(&body))),
    };
    let delivery = NewDelivery {
        delivery_key: delivery_key.clone(),
        scheme: match verified.scheme {
            Scheme::Legacy => "legacy",
            Scheme::Standard => "standard",
        },
        event_id,
        event_type,
        parse_error,
        signed_at: verified.signed_at,
        received_at: (state.clock)(),
        body: body.to_vec(),
        changes,
    };
    let event_type = delivery.event_type.clone();
    let parse_error = delivery.parse_error.clone();
    let forwarded = (!state.forward.is_empty()).then(|| delivery.body.clone());
    let recorded = state.ingestor.record(delivery).await?;
    let status = match recorded {
        Recorded::New(id) | Recorded::RawOnly(id) => {
            if let Some((token, received_ms)) = &health {
                observe_health_check(&state, token, *received_ms).await;
            }
            if let Some(body) = &forwarded {
                crate::forward::forward(&state.forward, &delivery_key, body, (state.clock)());
            }
            tracing::info!(
                id,
                event_type = event_type.as_deref().unwrap_or("?"),
                %delivery_key,
                parse_error = parse_error.as_deref(),
                "webhook delivery stored"
            );
            "stored"
        }
        Recorded::Duplicate => {
            tracing::info!(%delivery_key, "duplicate webhook delivery acknowledged");
            "duplicate"
        }
    };
    let outcome = match recorded {
        Recorded::New(_) => WebhookOutcome::Stored,
        Recorded::RawOnly(_) => WebhookOutcome::StoredRawOnly,
        Recorded::Duplicate => WebhookOutcome::Duplicate,
    };
    let mut response = Json(Ack {
        status,
        delivery_key,
    })
    .into_response();
    response.extensions_mut().insert(Answered {
        outcome,
        event_type,
    });
    Ok(response)
}

/// Observes the end-to-end latency of a health check whose webhook was just committed.
async fn observe_health_check(state: &IngestState, token: &str, received_ms: i64) {
    match state.store.health_check_sent(token).await {
        Ok(Some(sent_ms)) => {
            let latency = u64::try_from(received_ms - sent_ms).unwrap_or(0);
            state
                .metrics
                .health_check_latency(std::time::Duration::from_millis(latency));
        }
        Ok(None) => tracing::warn!(token, "a health check message arrived for an unknown check"),
        Err(error) => tracing::warn!(%error, "health check latency not observed"),
    }
}

/// The token of a health check message coming back as `message.received`.
fn health_check_token(event: &Event) -> Option<String> {
    match &event.data {
        openphone_webhooks::EventData::Message(message)
            if message.direction == openphone_webhooks::types::Direction::Incoming =>
        {
            message
                .text
                .as_deref()
                .and_then(crate::health_check::token_in)
        }
        _ => None,
    }
}

/// Answers every delivery with 503 while no signing secret is configured, so OpenPhone keeps
/// retrying (for about a day) instead of the events being accepted unverified or dropped.
pub async fn not_configured() -> Response {
    tracing::warn!("webhook delivery refused: OPENPHONE_WEBHOOK_SECRETS is not set");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "webhook signing secrets are not configured (OPENPHONE_WEBHOOK_SECRETS)",
    )
        .into_response()
}

/// Parses a delivery's body as an event for the normalized records, each JSON escape of a NUL
/// character (`\u0000`) read as U+FFFD: PostgreSQL cannot store a NUL in text (the delivery
/// could never be recorded, and OpenPhone would retry it in vain), and every backend keeps
/// the same records. The raw log keeps the exact bytes.
///
/// # Errors
/// What [`Event::parse`] returns for a body that is not an event.
pub fn parse_event(body: &[u8]) -> Result<Event, openphone_webhooks::Error> {
    Event::parse(&without_nul(body))
}

/// `body` (JSON) with each escape of a NUL (`\u0000`) turned into that of U+FFFD. JSON can
/// carry a NUL only escaped, and a backslash only in a string, where it starts an escape: an
/// escaped backslash followed by `u0000` is text, and stays.
fn without_nul(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NUL: &[u8] = b"u0000";
    // Where each escape starts, in order (most bodies have none: a memchr says so).
    let escapes = || {
        let mut index = 0;
        std::iter::from_fn(move || {
            let at = index + body.get(index..)?.iter().position(|&byte| byte == b'\\')?;
            index = at + 2;
            Some(at)
        })
    };
    if !body.contains(&b'\\') || !escapes().any(|at| body[at + 1..].starts_with(NUL)) {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut copied = 0;
    for at in escapes().filter(|&at| body[at + 1..].starts_with(NUL)) {
        out.extend_from_slice(&body[copied..at]);
        out.extend_from_slice(b"\\ufffd");
        copied = at + 1 + NUL.len();
    }
    out.extend_from_slice(&body[copied..]);
    std::borrow::Cow::Owned(out)
}

/// `id` and `type` read leniently from a body that did not parse as an event.
fn envelope_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&without_nul(body)) else {
        return (None, None);
    };
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    (text("id"), text("type"))
}

/// `bytes` in lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::without_nul;

    #[test]
    fn only_escapes_of_a_nul_are_replaced() {
        let same =
            |body: &[u8]| matches!(without_nul(body), std::borrow::Cow::Borrowed(b) if b == body);
        assert!(same(br#"{"text":"plain"}"#));
        assert!(same(
            br#"{"text":"quote \" and \u00e9 and \\u0000 as text"}"#
        ));
        assert_eq!(
            &*without_nul(br#"{"a":"\u0000","b":"x\\\u0000y","c":"\u0000"}"#),
            br#"{"a":"\ufffd","b":"x\\\ufffdy","c":"\ufffd"}"#
        );
        // A body cut after its backslash is left as it is (and fails to parse).
        assert!(same(br#"{"a":"\"#));
    }
}
