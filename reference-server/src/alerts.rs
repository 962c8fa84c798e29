//! Alerts: recorded as banners the API lists (`GET /api/v1/alerts`, acknowledged with
//! `POST /api/v1/alerts/{id}/ack`), and sent to the configured channels: email over SMTP and
//! a JSON webhook (Slack-compatible `text`).
//!
//! Alerts are grouped: while an alert of a group is open (not acknowledged), repeats only
//! count; channels hear of it again at most once per repeat interval (default an hour), with
//! the count, so a failing dependency cannot flood anyone. Across replicas the group's open
//! row is unique, and a re-notification is claimed with a compare-and-set.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;

use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::store::{Arg, Store, StoreError};

/// A recorded alert.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AlertRecord {
    /// Its id.
    pub id: i64,
    /// What happened (`media_download_failed`, `job_failed`, ...).
    pub kind: String,
    /// Repeats with the same key while open are one alert.
    pub group_key: String,
    /// One line.
    pub summary: String,
    /// More, for people.
    pub detail: Option<String>,
    /// How many times it was raised while open.
    pub count: i64,
    /// First raised, unix milliseconds.
    pub first_ms: i64,
    /// Last raised.
    pub last_ms: i64,
    /// When channels were last told.
    pub notified_ms: i64,
    /// When it was acknowledged.
    pub acknowledged_ms: Option<i64>,
    /// Which token acknowledged it.
    pub acknowledged_by: Option<String>,
}

const COLUMNS: &str = "id, kind, group_key, summary, detail, count, first_ms, last_ms, notified_ms, acknowledged_ms, acknowledged_by";

/// Where alerts are kept: one open row per group, repeats counted. [`Store`] keeps them in the
/// `alerts` table (one open row per group enforced by a unique key across replicas);
/// [`MemoryAlerts`] in memory; both pass [`conformance::run`].
pub trait AlertStore: Clone + Send + Sync + 'static {
    /// Records an occurrence of `group_key` at `now_ms`: opens an alert when the group has no
    /// open one, else counts a repeat on the open one (its summary and detail become these).
    /// Returns the alert as it now is.
    fn record_alert(
        &self,
        kind: &str,
        group_key: &str,
        summary: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> impl Future<Output = Result<AlertRecord, StoreError>> + Send;

    /// Claims telling the channels again about alert `id`, last told at `notified_ms`: `true`
    /// for exactly one of the callers that saw that time, which moves it to `now_ms`.
    fn claim_notification(
        &self,
        id: i64,
        notified_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Alerts newest first (by last occurrence, then id), only open ones when `open_only`,
    /// strictly before the `(last_ms, id)` cursor when given; at most `limit`.
    fn alerts(
        &self,
        open_only: bool,
        before: Option<(i64, i64)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AlertRecord>, StoreError>> + Send;

    /// Acknowledges an open alert (the group's next occurrence opens a new one); `false`
    /// when there is no such open alert.
    fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl AlertStore for Store {
    async fn record_alert(
        &self,
        kind: &str,
        group_key: &str,
        summary: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<AlertRecord, StoreError> {
        let record: Option<AlertRecord> = self
            .fetch_optional(
                &format!(
                    "INSERT INTO alerts (kind, group_key, summary, detail, first_ms, last_ms, notified_ms, open_key) \
                     VALUES ($1, $2, $3, $4, $5, $5, $5, $2) ON CONFLICT (open_key) DO UPDATE SET \
                     count = alerts.count + 1, last_ms = excluded.last_ms, summary = excluded.summary, \
                     detail = excluded.detail RETURNING {COLUMNS}"
                ),
                &[
                    kind.into(),
                    group_key.into(),
                    summary.into(),
                    detail.into(),
                    now_ms.into(),
                ],
            )
            .await?;
        record.ok_or(StoreError::Backend(sqlx::Error::RowNotFound))
    }

    async fn claim_notification(
        &self,
        id: i64,
        notified_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .execute(
                "UPDATE alerts SET notified_ms = $1 WHERE id = $2 AND notified_ms = $3",
                &[now_ms.into(), id.into(), notified_ms.into()],
            )
            .await?;
        Ok(claimed == 1)
    }

    async fn alerts(
        &self,
        open_only: bool,
        before: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let (before_ms, before_id) = before.unwrap_or((i64::MAX, i64::MAX));
        self.fetch_all(
            &format!(
                "SELECT {COLUMNS} FROM alerts WHERE ($1 = 0 OR acknowledged_ms IS NULL) \
                 AND (last_ms < $2 OR (last_ms = $2 AND id < $3)) ORDER BY last_ms DESC, id DESC LIMIT $4"
            ),
            &[
                i64::from(open_only).into(),
                before_ms.into(),
                before_id.into(),
                limit.into(),
            ],
        )
        .await
    }

    async fn acknowledge_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE alerts SET acknowledged_ms = $1, acknowledged_by = $2, open_key = NULL \
                 WHERE id = $3 AND open_key IS NOT NULL",
                &[now_ms.into(), by.into(), Arg::from(id)],
            )
            .await?;
        Ok(changed == 1)
    }
}

/// Alerts in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlerts {
    rows: Arc<Mutex<Vec<AlertRecord>>>,
}

impl MemoryAlerts {
    /// No alerts.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<AlertRecord>) -> T) -> T {
        f(&mut self.rows.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl AlertStore for MemoryAlerts {
    async fn record_alert(
        &self,
        kind: &str,
        group_key: &str,
        summary: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<AlertRecord, StoreError> {
        Ok(self.with(|rows| {
            if let Some(open) = rows
                .iter_mut()
                .find(|row| row.group_key == group_key && row.acknowledged_ms.is_none())
            {
                open.count += 1;
                open.last_ms = now_ms;
                open.summary = summary.to_owned();
                open.detail = detail;
                return open.clone();
            }
            let record = AlertRecord {
                id: i64::try_from(rows.len()).unwrap_or(i64::MAX) + 1,
                kind: kind.to_owned(),
                group_key: group_key.to_owned(),
                summary: summary.to_owned(),
                detail,
                count: 1,
                first_ms: now_ms,
                last_ms: now_ms,
                notified_ms: now_ms,
                acknowledged_ms: None,
                acknowledged_by: None,
            };
            rows.push(record.clone());
            record
        }))
    }

    async fn claim_notification(
        &self,
        id: i64,
        notified_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|rows| {
            match rows
                .iter_mut()
                .find(|row| row.id == id && row.notified_ms == notified_ms)
            {
                Some(row) => {
                    row.notified_ms = now_ms;
                    true
                }
                None => false,
            }
        }))
    }

    async fn alerts(
        &self,
        open_only: bool,
        before: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let before = before.unwrap_or((i64::MAX, i64::MAX));
        let mut rows: Vec<AlertRecord> = self.with(|rows| {
            rows.iter()
                .filter(|row| !open_only || row.acknowledged_ms.is_none())
                .filter(|row| (row.last_ms, row.id) < before)
                .cloned()
                .collect()
        });
        rows.sort_by_key(|row| std::cmp::Reverse((row.last_ms, row.id)));
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(rows)
    }

    async fn acknowledge_alert(&self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self.with(|rows| {
            match rows
                .iter_mut()
                .find(|row| row.id == id && row.acknowledged_ms.is_none())
            {
                Some(row) => {
                    row.acknowledged_ms = Some(now_ms);
                    row.acknowledged_by = Some(by.to_owned());
                    true
                }
                None => false,
            }
        }))
    }
}

/// The suite every [`AlertStore`] must pass.
pub mod conformance {
    use super::AlertStore;

    /// Runs every case on `alerts`, which must hold none.
    pub async fn run<A: AlertStore>(alerts: A) {
        assert!(
            alerts
                .alerts(false, None, 10)
                .await
                .expect("list")
                .is_empty()
        );
        let first = alerts
            .record_alert("job_failed", "job:sync", "sync failed", None, 1_000)
            .await
            .expect("open");
        assert_eq!(
            (
                first.count,
                first.first_ms,
                first.last_ms,
                first.notified_ms
            ),
            (1, 1_000, 1_000, 1_000)
        );
        let repeat = alerts
            .record_alert(
                "job_failed",
                "job:sync",
                "sync failed again",
                Some("503".into()),
                2_000,
            )
            .await
            .expect("repeat");
        assert_eq!(repeat.id, first.id, "a repeat counts on the open alert");
        assert_eq!(
            (
                repeat.count,
                repeat.first_ms,
                repeat.last_ms,
                repeat.summary.as_str()
            ),
            (2, 1_000, 2_000, "sync failed again")
        );
        assert_eq!(repeat.detail.as_deref(), Some("503"));
        let other = alerts
            .record_alert(
                "media_download_failed",
                "media:7",
                "media 7 failed",
                None,
                1_500,
            )
            .await
            .expect("another group");
        assert_ne!(other.id, first.id);

        // One claimant per re-notification.
        assert!(
            alerts
                .claim_notification(first.id, 1_000, 3_000)
                .await
                .expect("claim")
        );
        assert!(
            !alerts
                .claim_notification(first.id, 1_000, 3_000)
                .await
                .expect("again")
        );
        assert!(
            alerts
                .claim_notification(first.id, 3_000, 4_000)
                .await
                .expect("next")
        );

        // Newest first by last occurrence, in pages.
        let page = alerts.alerts(false, None, 1).await.expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, first.id);
        assert_eq!(page[0].notified_ms, 4_000);
        let rest = alerts
            .alerts(false, Some((page[0].last_ms, page[0].id)), 10)
            .await
            .expect("rest");
        assert_eq!(rest.iter().map(|a| a.id).collect::<Vec<_>>(), [other.id]);

        // Acknowledged: out of the open list; the group's next occurrence opens a new alert.
        assert!(
            alerts
                .acknowledge_alert(first.id, "tok1", 5_000)
                .await
                .expect("ack")
        );
        assert!(
            !alerts
                .acknowledge_alert(first.id, "tok1", 5_000)
                .await
                .expect("twice")
        );
        assert!(
            !alerts
                .acknowledge_alert(999_999, "tok1", 5_000)
                .await
                .expect("unknown")
        );
        let open = alerts.alerts(true, None, 10).await.expect("open");
        assert_eq!(open.iter().map(|a| a.id).collect::<Vec<_>>(), [other.id]);
        let all = alerts.alerts(false, None, 10).await.expect("all");
        let acked = all.iter().find(|a| a.id == first.id).expect("kept");
        assert_eq!(
            (acked.acknowledged_ms, acked.acknowledged_by.as_deref()),
            (Some(5_000), Some("tok1"))
        );
        let reopened = alerts
            .record_alert("job_failed", "job:sync", "sync failed", None, 6_000)
            .await
            .expect("reopen");
        assert_ne!(reopened.id, first.id);
        assert_eq!(reopened.count, 1);
    }
}

/// A channel alerts are sent to.
pub trait AlertSink: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &str;

    /// Sends one alert.
    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), String>>;
}

fn text(alert: &AlertRecord) -> String {
    if alert.count > 1 {
        format!(
            "[openphone] {} ({} times since it was first raised)",
            alert.summary, alert.count
        )
    } else {
        format!("[openphone] {}", alert.summary)
    }
}

/// Posts `{"text": "...", "alert": {...}}` to a URL (a Slack incoming webhook, or anything
/// that takes JSON).
pub struct WebhookSink {
    url: String,
    http: reqwest::Client,
}

impl WebhookSink {
    /// A sink posting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let response = self
                .http
                .post(&self.url)
                .json(&json!({"text": text(alert), "alert": alert}))
                .send()
                .await
                // Without the URL: the webhook's URL is its secret.
                .map_err(|error| format!("posting failed: {}", error.without_url()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("answered {}", response.status()))
            }
        })
    }
}

/// Sends an email per alert over SMTP.
pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSink {
    /// A sink for the SMTP server at `url` (`smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:password@host:465`), from `from` to every address of `to`.
    ///
    /// # Errors
    /// Why the URL or an address is unusable.
    pub fn new(url: &str, from: &str, to: &[String]) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("invalid SMTP URL: {error}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|error| format!("invalid sender {from:?}: {error}"))?;
        let to = to
            .iter()
            .map(|address| {
                address
                    .trim()
                    .parse()
                    .map_err(|error| format!("invalid recipient {address:?}: {error}"))
            })
            .collect::<Result<Vec<Mailbox>, String>>()?;
        if to.is_empty() {
            return Err("no recipients".to_owned());
        }
        Ok(Self {
            transport,
            from,
            to,
        })
    }
}

impl AlertSink for EmailSink {
    fn name(&self) -> &str {
        "email"
    }

    fn send<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut builder = lettre::Message::builder()
                .from(self.from.clone())
                .subject(text(alert));
            for to in &self.to {
                builder = builder.to(to.clone());
            }
            let body = format!(
                "{}\n\n{}\n\nKind: {}\nOccurrences: {}\nAcknowledge it with POST /api/v1/alerts/{}/ack\n",
                alert.summary,
                alert.detail.as_deref().unwrap_or(""),
                alert.kind,
                alert.count,
                alert.id
            );
            let message = builder
                .body(body)
                .map_err(|error| format!("building the email failed: {error}"))?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| format!("SMTP failed: {error}"))
        })
    }
}

/// Raises alerts: records them, groups repeats, tells the channels.
#[derive(Clone)]
pub struct Alerter<S = Store> {
    store: S,
    sinks: Arc<Vec<Arc<dyn AlertSink>>>,
    repeat: Duration,
    clock: Clock,
    verification: Arc<Mutex<VecDeque<Instant>>>,
    verification_threshold: usize,
}

/// The window over which webhook verification failures are counted.
pub const VERIFICATION_WINDOW: Duration = Duration::from_secs(300);

impl<S: AlertStore> Alerter<S> {
    /// An alerter recording in `store` and sending to `sinks`, telling channels again about
    /// an open alert at most every `repeat`; `verification_threshold` verification failures
    /// within five minutes raise an alert.
    pub fn new(
        store: S,
        sinks: Vec<Arc<dyn AlertSink>>,
        repeat: Duration,
        verification_threshold: usize,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            sinks: Arc::new(sinks),
            repeat,
            clock,
            verification: Arc::new(Mutex::new(VecDeque::new())),
            verification_threshold: verification_threshold.max(1),
        }
    }

    /// Raises an alert of `kind`, grouped under `group_key`. Logged at error level always;
    /// channels are told when the group opens and then at most once per repeat interval
    /// (in the background: the caller does not wait for them).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when it cannot be recorded.
    pub async fn raise(
        &self,
        kind: &str,
        group_key: &str,
        summary: &str,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        tracing::error!(
            alert = kind,
            group = group_key,
            detail = detail.as_deref(),
            "{summary}"
        );
        let now_ms = unix_ms((self.clock)());
        let mut record = self
            .store
            .record_alert(kind, group_key, summary, detail, now_ms)
            .await?;
        let repeat_ms = i64::try_from(self.repeat.as_millis()).unwrap_or(i64::MAX);
        let notify = if record.count == 1 {
            true
        } else if now_ms - record.notified_ms >= repeat_ms {
            // One replica wins the re-notification.
            let claimed = self
                .store
                .claim_notification(record.id, record.notified_ms, now_ms)
                .await?;
            record.notified_ms = now_ms;
            claimed
        } else {
            false
        };
        if notify && !self.sinks.is_empty() {
            let sinks = Arc::clone(&self.sinks);
            tokio::spawn(async move {
                for sink in sinks.iter() {
                    if let Err(error) = sink.send(&record).await {
                        tracing::error!(sink = sink.name(), %error, "alert could not be sent");
                    }
                }
            });
        }
        Ok(())
    }

    /// Counts a webhook verification failure; raises an alert when the threshold is reached
    /// within five minutes.
    pub async fn verification_failed(&self) {
        let reached = {
            let mut window = self
                .verification
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            window.push_back(now);
            while window
                .front()
                .is_some_and(|first| now.duration_since(*first) > VERIFICATION_WINDOW)
            {
                window.pop_front();
            }
            let reached = window.len() >= self.verification_threshold;
            if reached {
                window.clear();
            }
            reached
        };
        if reached {
            let summary = format!(
                "{} webhook deliveries failed signature verification within 5 minutes",
                self.verification_threshold
            );
            if let Err(error) = self
                .raise(
                    "webhook_verification_failures",
                    "webhook_verification_failures",
                    &summary,
                    Some("Check OPENPHONE_WEBHOOK_SECRETS against the webhook's signing secret in OpenPhone (a rotated secret?), or look for forged traffic.".to_owned()),
                )
                .await
            {
                tracing::error!(%error, "alert could not be recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_alerts_pass_the_conformance_suite() {
        conformance::run(MemoryAlerts::new()).await;
    }

    /// A webhook sink that cannot post says why without its URL, which is its secret.
    #[tokio::test]
    async fn a_failed_post_never_shows_the_webhook_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let sink = WebhookSink::new(format!("http://127.0.0.1:{port}/services/T0/B0/s3cr3t"));
        let alert = AlertRecord {
            id: 1,
            kind: "job_failed".to_owned(),
            group_key: "job:x".to_owned(),
            summary: "x failed".to_owned(),
            detail: None,
            count: 1,
            first_ms: 0,
            last_ms: 0,
            notified_ms: 0,
            acknowledged_ms: None,
            acknowledged_by: None,
        };
        let error = sink.send(&alert).await.expect_err("nothing listens");
        assert!(error.starts_with("posting failed"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[tokio::test]
    async fn the_alerter_groups_repeats_on_any_store() {
        let alerts = MemoryAlerts::new();
        let clock: Clock = Arc::new(|| time::macros::datetime!(2026-04-13 12:00 UTC));
        let alerter = Alerter::new(
            alerts.clone(),
            Vec::new(),
            Duration::from_secs(3600),
            3,
            clock,
        );
        for _ in 0..3 {
            alerter
                .raise("job_failed", "job:x", "x failed", None)
                .await
                .unwrap_or_default();
        }
        let open = alerts.alerts(true, None, 10).await.unwrap_or_default();
        assert_eq!(open.iter().map(|a| a.count).collect::<Vec<_>>(), [3]);
    }
}
