//! Alerts: recorded as banners the API lists (`GET /api/v1/alerts`, acknowledged with
//! `POST /api/v1/alerts/{id}/ack`), and sent to the configured channels: email over SMTP and
//! a JSON webhook (Slack-compatible `text`).
//!
//! Alerts are grouped: while an alert of a group is open (not acknowledged), repeats only
//! count; channels hear of it again at most once per repeat interval (default an hour), with
//! the count, so a failing dependency cannot flood anyone. Across replicas the group's open
//! row is unique, and a re-notification is claimed with a compare-and-set.

use std::collections::VecDeque;
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

impl Store {
    /// Alerts newest first (by last occurrence), only open ones when `open_only`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn alerts(
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

    /// Acknowledges an open alert; `false` when there is no such open alert.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails.
    pub async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
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
                .map_err(|error| format!("posting failed: {error}"))?;
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
pub struct Alerter {
    store: Store,
    sinks: Arc<Vec<Arc<dyn AlertSink>>>,
    repeat: Duration,
    clock: Clock,
    verification: Arc<Mutex<VecDeque<Instant>>>,
    verification_threshold: usize,
}

/// The window over which webhook verification failures are counted.
pub const VERIFICATION_WINDOW: Duration = Duration::from_secs(300);

impl Alerter {
    /// An alerter recording in `store` and sending to `sinks`, telling channels again about
    /// an open alert at most every `repeat`; `verification_threshold` verification failures
    /// within five minutes raise an alert.
    pub fn new(
        store: Store,
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
        let record: Option<AlertRecord> = self
            .store
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
        let Some(mut record) = record else {
            return Ok(());
        };
        let repeat_ms = i64::try_from(self.repeat.as_millis()).unwrap_or(i64::MAX);
        let notify = if record.count == 1 {
            true
        } else if now_ms - record.notified_ms >= repeat_ms {
            // One replica wins the re-notification.
            let claimed = self
                .store
                .execute(
                    "UPDATE alerts SET notified_ms = $1 WHERE id = $2 AND notified_ms = $3",
                    &[now_ms.into(), record.id.into(), record.notified_ms.into()],
                )
                .await?;
            record.notified_ms = now_ms;
            claimed == 1
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
