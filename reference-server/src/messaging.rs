//! Sending from the server: `POST /api/v1/messages`, the audit log, and marking
//! conversations read.
//!
//! A send is recorded as `sending` under the caller's `Idempotency-Key` before anything goes
//! out; the key is unique per token, so a retried or concurrent request with the same key
//! gets the recorded send back instead of texting twice. The outcome (`sent` with OpenPhone's
//! message id, `failed` with the reason, or `ambiguous` when it may have gone out) updates
//! the record; later `message.delivered` and failure webhooks update the message itself.
//! Opted-out numbers are refused. Each token is rate-limited. Every send is audited.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openphone_client::Client;
use openphone_client::model::message::{SendMessage, Sender};
use openphone_types::{E164, PhoneNumberId};

use crate::store::{Arg, Store, StoreError};

/// A send as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct OutgoingMessage {
    /// Our id.
    pub id: i64,
    /// The caller's token.
    pub token_id: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// The recipient.
    pub to_phone: String,
    /// Our sending number (phone number id or E.164).
    pub sender: String,
    /// The text.
    pub text: String,
    /// `sending`, `sent`, `failed` or `ambiguous`.
    pub status: String,
    /// OpenPhone's message id, once sent.
    pub message_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was requested, unix milliseconds.
    pub created_ms: i64,
}

const COLUMNS: &str =
    "id, token_id, idempotency_key, to_phone, sender, text, status, message_id, error, created_ms";

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AuditEntry {
    /// Its id.
    pub id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// Which token.
    pub token_id: String,
    /// What (`message.send`, ...).
    pub action: String,
    /// To whom or what.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// More.
    pub detail: Option<String>,
}

/// Where sends through the API and the audit log are kept. A send is recorded under the
/// caller's idempotency key (unique per token) before it goes out. [`Store`] keeps them in
/// `outgoing_messages` and `audit_log`; [`MemorySendLog`] in memory; both pass
/// [`conformance::run`].
pub trait SendLog: Clone + Send + Sync + 'static {
    /// Records a send about to happen (`sending`); `None` when the token already used this
    /// key (the existing record is then returned by [`SendLog::outgoing_by_key`]).
    fn begin_send(
        &self,
        token_id: &str,
        key: &str,
        to: &str,
        sender: &str,
        text: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<OutgoingMessage>, StoreError>> + Send;

    /// The send a token made under an idempotency key.
    fn outgoing_by_key(
        &self,
        token_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<OutgoingMessage>, StoreError>> + Send;

    /// One send by our id.
    fn outgoing(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<OutgoingMessage>, StoreError>> + Send;

    /// Records how a send ended: `sent` with OpenPhone's message id, `failed` or `ambiguous`
    /// with the error.
    fn finish_send(
        &self,
        id: i64,
        status: &str,
        message_id: Option<String>,
        error: Option<String>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends to the audit log.
    fn audit(
        &self,
        token_id: &str,
        action: &str,
        target: Option<&str>,
        outcome: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The audit log newest first, below id `before`; at most `limit`.
    fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}

impl SendLog for Store {
    async fn begin_send(
        &self,
        token_id: &str,
        key: &str,
        to: &str,
        sender: &str,
        text: &str,
        now_ms: i64,
    ) -> Result<Option<OutgoingMessage>, StoreError> {
        self.fetch_optional(
            &format!(
                "INSERT INTO outgoing_messages (token_id, idempotency_key, to_phone, sender, text, status, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, 'sending', $6, $6) ON CONFLICT (token_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[
                token_id.into(),
                key.into(),
                to.into(),
                sender.into(),
                text.into(),
                now_ms.into(),
            ],
        )
        .await
    }

    async fn outgoing_by_key(
        &self,
        token_id: &str,
        key: &str,
    ) -> Result<Option<OutgoingMessage>, StoreError> {
        self.fetch_optional(
            &format!("SELECT {COLUMNS} FROM outgoing_messages WHERE token_id = $1 AND idempotency_key = $2"),
            &[token_id.into(), key.into()],
        )
        .await
    }

    async fn outgoing(&self, id: i64) -> Result<Option<OutgoingMessage>, StoreError> {
        self.fetch_optional(
            &format!("SELECT {COLUMNS} FROM outgoing_messages WHERE id = $1"),
            &[Arg::from(id)],
        )
        .await
    }

    async fn finish_send(
        &self,
        id: i64,
        status: &str,
        message_id: Option<String>,
        error: Option<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE outgoing_messages SET status = $1, message_id = $2, error = $3, updated_ms = $4 WHERE id = $5",
            &[
                status.into(),
                message_id.into(),
                error.into(),
                now_ms.into(),
                Arg::from(id),
            ],
        )
        .await?;
        Ok(())
    }

    async fn audit(
        &self,
        token_id: &str,
        action: &str,
        target: Option<&str>,
        outcome: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit_log (at_ms, token_id, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                now_ms.into(),
                token_id.into(),
                action.into(),
                target.map(str::to_owned).into(),
                outcome.into(),
                detail.into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.fetch_all(
            "SELECT id, at_ms, token_id, action, target, outcome, detail FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[before.unwrap_or(i64::MAX).into(), limit.into()],
        )
        .await
    }
}

/// Sends and the audit log in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySendLog {
    inner: Arc<Mutex<(Vec<OutgoingMessage>, Vec<AuditEntry>)>>,
}

impl MemorySendLog {
    /// Nothing sent.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut (Vec<OutgoingMessage>, Vec<AuditEntry>)) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The next id of `len` rows, from 1.
fn next_id(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX) + 1
}

impl SendLog for MemorySendLog {
    async fn begin_send(
        &self,
        token_id: &str,
        key: &str,
        to: &str,
        sender: &str,
        text: &str,
        now_ms: i64,
    ) -> Result<Option<OutgoingMessage>, StoreError> {
        Ok(self.with(|(sends, _)| {
            if sends
                .iter()
                .any(|send| send.token_id == token_id && send.idempotency_key == key)
            {
                return None;
            }
            let send = OutgoingMessage {
                id: next_id(sends.len()),
                token_id: token_id.to_owned(),
                idempotency_key: key.to_owned(),
                to_phone: to.to_owned(),
                sender: sender.to_owned(),
                text: text.to_owned(),
                status: "sending".to_owned(),
                message_id: None,
                error: None,
                created_ms: now_ms,
            };
            sends.push(send.clone());
            Some(send)
        }))
    }

    async fn outgoing_by_key(
        &self,
        token_id: &str,
        key: &str,
    ) -> Result<Option<OutgoingMessage>, StoreError> {
        Ok(self.with(|(sends, _)| {
            sends
                .iter()
                .find(|send| send.token_id == token_id && send.idempotency_key == key)
                .cloned()
        }))
    }

    async fn outgoing(&self, id: i64) -> Result<Option<OutgoingMessage>, StoreError> {
        Ok(self.with(|(sends, _)| sends.iter().find(|send| send.id == id).cloned()))
    }

    async fn finish_send(
        &self,
        id: i64,
        status: &str,
        message_id: Option<String>,
        error: Option<String>,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|(sends, _)| {
            if let Some(send) = sends.iter_mut().find(|send| send.id == id) {
                send.status = status.to_owned();
                send.message_id = message_id;
                send.error = error;
            }
        });
        Ok(())
    }

    async fn audit(
        &self,
        token_id: &str,
        action: &str,
        target: Option<&str>,
        outcome: &str,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|(_, log)| {
            log.push(AuditEntry {
                id: next_id(log.len()),
                at_ms: now_ms,
                token_id: token_id.to_owned(),
                action: action.to_owned(),
                target: target.map(str::to_owned),
                outcome: outcome.to_owned(),
                detail,
            });
        });
        Ok(())
    }

    async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        Ok(self.with(|(_, log)| {
            log.iter()
                .rev()
                .filter(|entry| entry.id < before)
                .take(usize::try_from(limit).unwrap_or(0))
                .cloned()
                .collect()
        }))
    }
}

/// The suite every [`SendLog`] must pass.
pub mod conformance {
    use super::SendLog;

    /// Runs every case on `log`, which must hold nothing.
    pub async fn run<L: SendLog>(log: L) {
        // Two concurrent requests with one key: one records the send.
        let (a, b) = tokio::join!(
            log.begin_send(
                "tok1",
                "key-1",
                "+15555550100",
                "PN1",
                "Bay 2 is yours",
                1_000
            ),
            log.begin_send(
                "tok1",
                "key-1",
                "+15555550100",
                "PN1",
                "Bay 2 is yours",
                1_000
            )
        );
        let (a, b) = (a.expect("begin"), b.expect("begin"));
        assert!(a.is_some() ^ b.is_some(), "exactly one records the send");
        let first = a.or(b).expect("recorded");
        assert_eq!(
            (
                first.status.as_str(),
                first.to_phone.as_str(),
                first.created_ms
            ),
            ("sending", "+15555550100", 1_000)
        );
        // The same key under another token is another send.
        let other = log
            .begin_send("tok2", "key-1", "+15555550101", "PN1", "Hi", 1_100)
            .await
            .expect("begin")
            .expect("another token");
        assert_ne!(other.id, first.id);

        log.finish_send(first.id, "sent", Some("ACsent".into()), None, 1_200)
            .await
            .expect("finish");
        log.finish_send(other.id, "ambiguous", None, Some("timeout".into()), 1_300)
            .await
            .expect("finish");
        let by_key = log
            .outgoing_by_key("tok1", "key-1")
            .await
            .expect("read")
            .expect("found");
        assert_eq!(
            (
                by_key.id,
                by_key.status.as_str(),
                by_key.message_id.as_deref()
            ),
            (first.id, "sent", Some("ACsent"))
        );
        let ambiguous = log.outgoing(other.id).await.expect("read").expect("found");
        assert_eq!(
            (ambiguous.status.as_str(), ambiguous.error.as_deref()),
            ("ambiguous", Some("timeout"))
        );
        assert!(
            log.outgoing_by_key("tok3", "key-1")
                .await
                .expect("read")
                .is_none()
        );
        assert!(log.outgoing(-1).await.expect("read").is_none());

        for n in 0..3 {
            log.audit(
                "tok1",
                "message.send",
                Some("+15555550100"),
                "sent",
                None,
                2_000 + n,
            )
            .await
            .expect("audit");
        }
        log.audit(
            "tok2",
            "contact.merge",
            None,
            "refused",
            Some("why".into()),
            3_000,
        )
        .await
        .expect("audit");
        let newest = log.audit_log(None, 2).await.expect("read");
        assert_eq!(
            newest.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["contact.merge", "message.send"]
        );
        assert_eq!(newest[0].detail.as_deref(), Some("why"));
        assert_eq!(newest[0].target, None);
        let rest = log.audit_log(Some(newest[1].id), 10).await.expect("read");
        assert_eq!(rest.len(), 2);
        assert!(
            rest.iter()
                .all(|e| e.id < newest[1].id && e.token_id == "tok1")
        );
    }
}

impl Store {
    /// Marks a conversation read through its latest inbound message: `Some(OpenPhone's
    /// conversation id, when known)`, or `None` when there is no such conversation.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails.
    pub async fn mark_read(&self, key: &str) -> Result<Option<Option<String>>, StoreError> {
        let row: Option<(Option<String>,)> = self
            .fetch_optional(
                "UPDATE conversations SET read_through_ms = GREATEST(read_through_ms, COALESCE((SELECT MAX(m.created_ms) \
                 FROM messages m WHERE m.conversation_key = conversations.conversation_key AND m.direction = 'incoming'), 0)) \
                 WHERE conversation_key = $1 RETURNING openphone_id",
                &[key.into()],
            )
            .await?;
        Ok(row.map(|(id,)| id))
    }
}

/// Why a send was refused before anything went out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendRefused {
    /// A field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The recipient opted out (STOP).
    #[error("{0} opted out of messages")]
    OptedOut(String),
    /// No sender given and none configured.
    #[error("no sender: pass `from` or configure DEFAULT_SENDER")]
    NoSender,
    /// No OpenPhone API key is configured.
    #[error("sending needs OPENPHONE_API_KEY")]
    NotConfigured,
}

impl SendRefused {
    /// The reason as the audit log records it (`opted out` for an opt-out).
    pub fn reason(&self) -> String {
        match self {
            Self::OptedOut(_) => "opted out".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Per-token sliding-window rate limits, counting each idempotency key once (retries of a
/// send, even concurrent ones, do not use up the budget).
#[derive(Debug, Clone)]
pub struct TokenLimiter {
    per_minute: usize,
    windows: Arc<Mutex<HashMap<String, Window>>>,
}

/// A token's recent sends: when, and under which idempotency key.
type Window = VecDeque<(Instant, String)>;

impl TokenLimiter {
    /// `per_minute` sends per token per minute.
    pub fn new(per_minute: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            windows: Arc::default(),
        }
    }

    /// Takes one send for `token` under `key`; `Err(wait)` when over the limit.
    ///
    /// # Errors
    /// How long until the next send is allowed.
    pub fn take(&self, token: &str, key: &str) -> Result<(), Duration> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.entry(token.to_owned()).or_default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        while window
            .front()
            .is_some_and(|(first, _)| now.duration_since(*first) >= minute)
        {
            window.pop_front();
        }
        if window.iter().any(|(_, seen)| seen == key) {
            return Ok(());
        }
        if window.len() >= self.per_minute {
            let oldest = window.front().map_or(now, |(at, _)| *at);
            return Err(minute.saturating_sub(now.duration_since(oldest)));
        }
        window.push_back((now, key.to_owned()));
        Ok(())
    }
}

/// Sends messages for the API.
#[derive(Clone)]
pub struct Messenger {
    /// The database.
    pub store: Store,
    /// The API (none: sending is refused).
    pub client: Option<Client>,
    /// The sender used when a request names none.
    pub default_sender: Option<String>,
}

/// A send request, validated.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// The recipient.
    pub to: E164,
    /// The text.
    pub text: String,
    /// Our sending number, when not the default.
    pub from: Option<String>,
}

impl Messenger {
    /// Sends once per `(token, key)`: returns the record (new or the earlier one) and
    /// whether this call created it. A refusal is audited, with its reason.
    ///
    /// # Errors
    /// `Ok(Err(SendRefused))` when refused before sending; `Err` when the database fails.
    pub async fn send(
        &self,
        token_id: &str,
        key: &str,
        request: SendRequest,
        now_ms: i64,
    ) -> Result<Result<(OutgoingMessage, bool), SendRefused>, StoreError> {
        let to = request.to.as_str().to_owned();
        let outcome = self.attempt(token_id, key, request, now_ms).await?;
        if let Err(refused) = &outcome {
            self.store
                .audit(
                    token_id,
                    "message.send",
                    Some(&to),
                    "refused",
                    Some(refused.reason()),
                    now_ms,
                )
                .await?;
        }
        Ok(outcome)
    }

    async fn attempt(
        &self,
        token_id: &str,
        key: &str,
        request: SendRequest,
        now_ms: i64,
    ) -> Result<Result<(OutgoingMessage, bool), SendRefused>, StoreError> {
        if let Some(existing) = self.store.outgoing_by_key(token_id, key).await? {
            return Ok(Ok((existing, false)));
        }
        let Some(client) = &self.client else {
            return Ok(Err(SendRefused::NotConfigured));
        };
        let Some(sender) = request.from.clone().or_else(|| self.default_sender.clone()) else {
            return Ok(Err(SendRefused::NoSender));
        };
        let to = request.to.as_str().to_owned();
        if self.store.is_opted_out(&to).await? {
            return Ok(Err(SendRefused::OptedOut(to)));
        }
        let sender_value = if sender.starts_with("PN") {
            Sender::from(PhoneNumberId::from(sender.as_str()))
        } else {
            match E164::parse(&sender) {
                Ok(number) => Sender::from(number),
                Err(_) => {
                    return Ok(Err(SendRefused::Invalid(
                        "from must be a phone number id (PN...) or an E.164 number".to_owned(),
                    )));
                }
            }
        };
        let message = match SendMessage::new(sender_value, request.to.clone(), request.text.clone())
        {
            Ok(message) => message,
            Err(error) => return Ok(Err(SendRefused::Invalid(error.to_string()))),
        };
        let Some(record) = self
            .store
            .begin_send(token_id, key, &to, &sender, &request.text, now_ms)
            .await?
        else {
            // A concurrent request with the same key won the insert.
            let existing = self.store.outgoing_by_key(token_id, key).await?;
            return Ok(existing
                .map(|existing| (existing, false))
                .ok_or(SendRefused::Invalid(
                    "the idempotency key is in use".to_owned(),
                )));
        };
        let (status, message_id, error) = match client.send_message(&message).await {
            Ok(sent) => ("sent", Some(sent.id.to_string()), None),
            Err(error) if error.is_ambiguous() => ("ambiguous", None, Some(error.to_string())),
            Err(error) => ("failed", None, Some(error.to_string())),
        };
        self.store
            .finish_send(record.id, status, message_id.clone(), error.clone(), now_ms)
            .await?;
        self.store
            .audit(
                token_id,
                "message.send",
                Some(&to),
                status,
                error.clone().or(message_id.clone()),
                now_ms,
            )
            .await?;
        let record = self.store.outgoing(record.id).await?.unwrap_or(record);
        Ok(Ok((record, true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_send_log_passes_the_conformance_suite() {
        conformance::run(MemorySendLog::new()).await;
    }

    #[test]
    fn tokens_are_limited_separately() {
        let limiter = TokenLimiter::new(2);
        assert!(limiter.take("a", "k1").is_ok());
        assert!(
            limiter.take("a", "k1").is_ok(),
            "a retried key is not counted again"
        );
        assert!(limiter.take("a", "k2").is_ok());
        let wait = limiter.take("a", "k3").unwrap_err();
        assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60));
        assert!(limiter.take("b", "k3").is_ok());
    }
}
