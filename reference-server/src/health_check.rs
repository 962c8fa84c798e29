//! End-to-end health checks: a text between two internal numbers, completed by its own
//! webhook.
//!
//! The `health-check` job (hourly by default) sends a message carrying a unique token from
//! one configured number to another and records the check as pending; it does not wait. When
//! the `message.received` webhook carrying the token is ingested, projection records the
//! receipt in the same transaction (no worker waits or polls for it). The `health-check-expiry`
//! job (every minute) fails the checks whose receipt did not come within the timeout and raises
//! an alert. `GET /api/v1/health-checks` lists checks with their end-to-end latency.

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use openphone_client::Client;
use openphone_client::model::message::{SendMessage, Sender};
use openphone_types::{E164, PhoneNumberId};
use serde_json::json;
use time::OffsetDateTime;

use crate::alerts::Alerter;
use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::scheduler::{Job, RunEnd, Schedule, Stop};
use crate::store::{Arg, Store, StoreError};

/// The text of a health check message: `Health check <token>`.
pub const PREFIX: &str = "Health check hc-";

/// The token in an inbound text, if it is a health check message.
pub fn token_in(text: &str) -> Option<String> {
    let start = text.find(PREFIX)? + PREFIX.len() - 3;
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (token.len() > 3).then_some(token)
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct HealthCheck {
    /// Its token.
    pub token: String,
    /// When the message was sent, unix milliseconds.
    pub sent_ms: i64,
    /// The sent message's id.
    pub message_id: Option<String>,
    /// When its webhook was ingested.
    pub received_ms: Option<i64>,
    /// `pending`, `passed` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

const COLUMNS: &str = "h.token, h.sent_ms, h.message_id, r.received_ms, \
    CASE WHEN r.received_ms IS NOT NULL THEN 'passed' ELSE h.status END AS status, h.error";

/// Where health checks are kept: each check sent, and its receipt when its webhook comes
/// back (a projection change). [`Store`] keeps them in `health_checks` and
/// `health_check_receipts`; `records::MemoryRecords` in memory; both pass
/// [`conformance::run`].
pub trait HealthChecks: Clone + Send + Sync + 'static {
    /// Health checks newest first, sent before `before`; at most `limit`. A check with a
    /// receipt has passed.
    fn health_checks(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<HealthCheck>, StoreError>> + Send;

    /// When the check with this token was sent, unix milliseconds.
    fn health_check_sent(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Records a check sent at `now_ms` (`pending`), or that could not be sent (`failed`
    /// with `error`).
    fn start_health_check(
        &self,
        token: &str,
        now_ms: i64,
        message_id: Option<String>,
        error: Option<String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks pending checks sent before `deadline_ms` with no receipt as failed; returns
    /// their tokens.
    fn expire_health_checks(
        &self,
        deadline_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

impl HealthChecks for Store {
    async fn health_checks(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        self.fetch_all(
            &format!(
                "SELECT {COLUMNS} FROM health_checks h LEFT JOIN health_check_receipts r ON r.token = h.token \
                 WHERE h.sent_ms < $1 ORDER BY h.sent_ms DESC LIMIT $2"
            ),
            &[before.unwrap_or(i64::MAX).into(), limit.into()],
        )
        .await
    }

    async fn health_check_sent(&self, token: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = self
            .fetch_optional(
                "SELECT sent_ms FROM health_checks WHERE token = $1",
                &[token.into()],
            )
            .await?;
        Ok(row.map(|(sent,)| sent))
    }

    async fn start_health_check(
        &self,
        token: &str,
        now_ms: i64,
        message_id: Option<String>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let status = if error.is_some() { "failed" } else { "pending" };
        self.execute(
            "INSERT INTO health_checks (token, sent_ms, message_id, status, error) VALUES ($1, $2, $3, $4, $5)",
            &[
                token.into(),
                now_ms.into(),
                message_id.into(),
                status.into(),
                error.into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn expire_health_checks(&self, deadline_ms: i64) -> Result<Vec<String>, StoreError> {
        let expired: Vec<(String,)> = self
            .fetch_all(
                "UPDATE health_checks SET status = 'failed', error = 'its webhook did not arrive in time' \
                 WHERE status = 'pending' AND sent_ms < $1 \
                 AND NOT EXISTS (SELECT 1 FROM health_check_receipts r WHERE r.token = health_checks.token) \
                 RETURNING token",
                &[Arg::from(deadline_ms)],
            )
            .await?;
        Ok(expired.into_iter().map(|(token,)| token).collect())
    }
}

/// The suite every [`HealthChecks`] must pass; receipts come from the projection, so the
/// store must also take [`crate::records::Records`] changes.
pub mod conformance {
    use super::HealthChecks;
    use crate::projection::Change;
    use crate::records::Records;

    /// Runs every case on `store`, which must hold no check.
    pub async fn run<S: HealthChecks + Records>(store: S) {
        assert!(
            store
                .health_checks(None, 10)
                .await
                .expect("list")
                .is_empty()
        );
        store
            .start_health_check("hc-a", 1_000, Some("ACa".into()), None)
            .await
            .expect("start");
        store
            .start_health_check("hc-b", 2_000, None, Some("HTTP 500".into()))
            .await
            .expect("start");
        store
            .start_health_check("hc-c", 3_000, Some("ACc".into()), None)
            .await
            .expect("start");
        assert_eq!(
            store.health_check_sent("hc-a").await.expect("read"),
            Some(1_000)
        );
        assert_eq!(store.health_check_sent("hc-x").await.expect("read"), None);

        // hc-a's webhook comes back (twice); hc-c's does not in time.
        let receipt = Change::HealthReceipt {
            token: "hc-a".to_owned(),
            received_ms: 1_400,
        };
        for _ in 0..2 {
            store
                .apply(std::slice::from_ref(&receipt))
                .await
                .expect("receipt");
        }
        assert_eq!(
            store.expire_health_checks(3_500).await.expect("expire"),
            ["hc-c"]
        );
        assert!(
            store
                .expire_health_checks(3_500)
                .await
                .expect("again")
                .is_empty()
        );

        let checks = store.health_checks(None, 10).await.expect("list");
        let summary: Vec<(&str, &str, Option<i64>)> = checks
            .iter()
            .map(|c| (c.token.as_str(), c.status.as_str(), c.received_ms))
            .collect();
        assert_eq!(
            summary,
            [
                ("hc-c", "failed", None),
                ("hc-b", "failed", None),
                ("hc-a", "passed", Some(1_400))
            ]
        );
        assert_eq!(checks[1].error.as_deref(), Some("HTTP 500"));
        assert!(
            checks[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("did not arrive"))
        );
        assert_eq!(checks[2].message_id.as_deref(), Some("ACa"));
        let older = store.health_checks(Some(3_000), 1).await.expect("page");
        assert_eq!(
            older.iter().map(|c| c.token.as_str()).collect::<Vec<_>>(),
            ["hc-b"]
        );
    }
}

/// Sends a health check message.
pub struct HealthCheckJob {
    /// The API.
    pub client: Client,
    /// The database.
    pub store: Store,
    /// The sender: a phone number id (`PN...`) or E.164 number of the workspace.
    pub from: String,
    /// The recipient: another number of the workspace, E.164.
    pub to: E164,
    /// How often.
    pub every: Duration,
    /// The clock.
    pub clock: Clock,
}

impl Job for HealthCheckJob {
    fn name(&self) -> &str {
        "health-check"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(self.every)
    }

    fn run(&self, _slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let token = format!("hc-{}", uuid::Uuid::new_v4().simple());
            let sender = if self.from.starts_with("PN") {
                Sender::from(PhoneNumberId::from(self.from.as_str()))
            } else {
                Sender::from(E164::parse(&self.from).map_err(|error| error.to_string())?)
            };
            let message =
                SendMessage::new(sender, self.to.clone(), format!("Health check {token}"))
                    .map_err(|error| error.to_string())?;
            let now_ms = unix_ms((self.clock)());
            let sent = self.client.send_message(&message).await;
            let (message_id, error) = match &sent {
                Ok(message) => (Some(message.id.to_string()), None),
                Err(error) => (None, Some(format!("sending failed: {error}"))),
            };
            self.store
                .start_health_check(&token, now_ms, message_id.clone(), error.clone())
                .await
                .map_err(|error| error.to_string())?;
            match error {
                Some(error) => Err(error),
                None => Ok(RunEnd::Done(
                    json!({"token": token, "message_id": message_id}),
                )),
            }
        })
    }
}

/// Fails health checks whose webhook did not arrive in time, and alerts.
pub struct HealthCheckExpiry {
    /// The database.
    pub store: Store,
    /// How long a check may wait for its webhook.
    pub timeout: Duration,
    /// The clock.
    pub clock: Clock,
    /// Where failures are reported.
    pub alerter: Alerter,
}

impl Job for HealthCheckExpiry {
    fn name(&self) -> &str {
        "health-check-expiry"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(60))
    }

    fn run(&self, _slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let timeout = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
            let expired = self
                .store
                .expire_health_checks(unix_ms((self.clock)()) - timeout)
                .await
                .map_err(|error| error.to_string())?;
            if !expired.is_empty() {
                self.alerter
                    .raise(
                        "health_check_failed",
                        "health_check_failed",
                        "Health check messages did not come back through webhooks in time",
                        Some(format!(
                            "Checks without their webhook after {} s: {}. Check OpenPhone's webhook configuration and this server's reachability.",
                            self.timeout.as_secs(),
                            expired.join(", ")
                        )),
                    )
                    .await
                    .map_err(|error| error.to_string())?;
            }
            Ok(RunEnd::Done(json!({"expired": expired})))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_health_check_texts_only() {
        assert_eq!(
            token_in("Health check hc-0123abcd"),
            Some("hc-0123abcd".to_owned())
        );
        assert_eq!(token_in("hello"), None);
        assert_eq!(token_in("Health check hc-"), None);
    }
}
