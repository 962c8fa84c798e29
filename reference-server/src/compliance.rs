//! Compliance keywords: STOP and friends opt a number out, START opts it back in, HELP gets
//! a help text; each gets one reply, sent by a durable outbox.
//!
//! Projection (in the webhook's transaction) appends the keyword to the consent ledger and
//! queues the reply, both keyed by the inbound message id, so a redelivered or replayed event
//! changes nothing. [`ReplySender`] sends what is queued through the OpenPhone client.

use std::future::Future;
use std::time::Duration;

use openphone_client::Client;
use openphone_client::model::message::{SendMessage, Sender};
use openphone_types::{E164, PhoneNumberId};
use tokio::sync::watch;

use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::metrics::Metrics;
use crate::store::{Arg, Store, StoreError};

/// Keywords that opt a number out.
pub const OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
/// Keywords that opt a number back in.
pub const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
/// Keywords that ask for help.
pub const HELP: [&str; 2] = ["HELP", "INFO"];

/// What a compliance keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop messaging this number.
    OptOut,
    /// Messaging this number may resume.
    OptIn,
    /// Send the help text.
    Help,
}

impl Action {
    /// `opt_out`, `opt_in` or `help`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptOut => "opt_out",
            Self::OptIn => "opt_in",
            Self::Help => "help",
        }
    }

    /// The consent ledger's action, for opt-outs and opt-ins.
    pub fn consent(self) -> Option<&'static str> {
        match self {
            Self::OptOut | Self::OptIn => Some(self.as_str()),
            Self::Help => None,
        }
    }
}

/// How an inbound text relates to the keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyword {
    /// The whole message is a keyword (the keyword, upper-cased).
    Exact(Action, String),
    /// A longer message contains an opt-out keyword as a word: for a person to review.
    Mentions(String),
    /// Neither.
    None,
}

/// Classifies an inbound text. The whole message must be the keyword, ignoring case; for an
/// opt-out, also anything around it that is not a letter or a digit: whitespace, punctuation,
/// quotes, emoji ("Stop.", "STOP!", "Stop…", "\"STOP\"", "STOP 🙏" opt out: a missed opt-out
/// is the costly mistake); for the others only whitespace and a final `.` or `!`. The text is read as a person sees it: compatibility forms as their plain letters
/// (Unicode NFKC: full-width "ＳＴＯＰ" is "STOP") and invisible format characters (zero-width
/// spaces, a byte order mark) left out. A longer message containing an opt-out keyword as a
/// word is only flagged.
pub fn classify(text: &str) -> Keyword {
    let seen = as_seen(text);
    // Opting out is read generously; opting in or asking for help strictly (surrounding
    // whitespace and a final `.` or `!` only): "Yes 👍" or "yes?" answers a question, it does
    // not resubscribe a number that opted out.
    let loose = seen.trim_matches(|c: char| !c.is_alphanumeric());
    let strict = seen.trim().trim_end_matches(['.', '!']).trim();
    for (action, keywords, word) in [
        (Action::OptOut, &OPT_OUT[..], loose),
        (Action::OptIn, &OPT_IN[..], strict),
        (Action::Help, &HELP[..], strict),
    ] {
        if let Some(keyword) = keyword_in(word, keywords) {
            return Keyword::Exact(action, keyword.to_owned());
        }
    }
    seen.split(|c: char| !c.is_alphanumeric())
        .find_map(|word| keyword_in(word, &OPT_OUT))
        .map_or(Keyword::None, |keyword| {
            Keyword::Mentions(keyword.to_owned())
        })
}

/// `text` as a person reads it: NFKC-normalized, without format characters. ASCII text (nearly
/// every message) is already that, and is borrowed.
fn as_seen(text: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text);
    }
    // Zero-width spaces and joiners, directional marks and isolates, word joiner and
    // invisible operators, byte order mark, soft hyphen: Unicode's format characters that
    // phones insert.
    let invisible = |c: &char| !matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    std::borrow::Cow::Owned(text.nfkc().filter(invisible).collect())
}

/// The keyword of `keywords` (upper-case ASCII) that `word` is, ignoring case. Every inbound
/// message passes here word by word, so an ASCII word (nearly all) is compared in place; any
/// other is upper-cased by Unicode's rules first, as a carrier would read it ("ſtop" is
/// "STOP").
fn keyword_in(word: &str, keywords: &[&'static str]) -> Option<&'static str> {
    if word.is_ascii() {
        keywords
            .iter()
            .copied()
            .find(|keyword| word.eq_ignore_ascii_case(keyword))
    } else {
        let upper = word.to_uppercase();
        keywords.iter().copied().find(|keyword| upper == *keyword)
    }
}

/// The texts of the replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTexts {
    /// Confirms an opt-out.
    pub opt_out: String,
    /// Confirms an opt-in.
    pub opt_in: String,
    /// Answers HELP and INFO.
    pub help: String,
}

impl Default for ReplyTexts {
    fn default() -> Self {
        Self {
            opt_out: "You have been unsubscribed and will receive no more messages from us. Reply START to resubscribe.".to_owned(),
            opt_in: "You have been resubscribed. Reply STOP to unsubscribe.".to_owned(),
            help: "Reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply.".to_owned(),
        }
    }
}

impl ReplyTexts {
    fn for_kind(&self, kind: &str) -> &str {
        match kind {
            "opt_out" => &self.opt_out,
            "opt_in" => &self.opt_in,
            _ => &self.help,
        }
    }
}

/// A consent ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentEntry {
    /// The inbound message that carried the keyword.
    pub message_id: String,
    /// The number.
    pub phone: String,
    /// `opt_out` or `opt_in`.
    pub action: String,
    /// The keyword.
    pub keyword: String,
    /// When it was sent, unix milliseconds.
    pub at_ms: i64,
}

/// A queued reply.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedReply {
    /// Row id.
    pub id: i64,
    /// The inbound message it answers.
    pub message_id: String,
    /// `opt_out`, `opt_in` or `help`.
    pub kind: String,
    /// The number to answer.
    pub to_phone: String,
    /// Our number (phone number id or E.164).
    pub sender: String,
    /// When the inbound message was sent.
    pub created_ms: i64,
    /// `pending`, `sent`, `failed`, `ambiguous` or `stale`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The sent message's id.
    pub sent_message_id: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

const REPLY_COLUMNS: &str = "id, message_id, kind, to_phone, sender, created_ms, status, CAST(attempts AS BIGINT) AS attempts, sent_message_id, last_error";

impl Store {
    /// The number's consent ledger, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn consent_history(&self, phone: &str) -> Result<Vec<ConsentEntry>, StoreError> {
        self.fetch_all(
            "SELECT message_id, phone, action, keyword, at_ms FROM consent_ledger WHERE phone = $1 ORDER BY at_ms, id",
            &[phone.into()],
        )
        .await
    }

    /// Whether the number's latest consent entry is an opt-out.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        let latest: Option<(String,)> = self
            .fetch_optional(
                "SELECT action FROM consent_ledger WHERE phone = $1 ORDER BY at_ms DESC, id DESC LIMIT 1",
                &[phone.into()],
            )
            .await?;
        Ok(latest.is_some_and(|(action,)| action == "opt_out"))
    }

    /// The messages flagged for review (they mention an opt-out keyword): `(message id,
    /// phone, reason)`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn review_flags(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.fetch_all(
            "SELECT message_id, phone, reason FROM review_flags ORDER BY at_ms DESC, message_id",
            &[],
        )
        .await
    }
}

/// The outbox of compliance replies, a leased queue: the projection queues one reply per
/// keyword message and kind; senders claim due replies for a lease and record each outcome.
/// [`Store`] keeps it in the `outbox` table (claims skip rows other replicas hold);
/// `records::MemoryRecords` in memory; both pass [`outbox_conformance::run`].
pub trait Outbox: Clone + Send + Sync + 'static {
    /// The replies queued for an inbound message, in queue order.
    fn replies_for(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<Vec<QueuedReply>, StoreError>> + Send;

    /// Claims up to `limit` pending replies due at `now_ms` and not leased, oldest due first,
    /// for `lease_ms`: no other claim gets them meanwhile.
    fn claim_replies(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<QueuedReply>, StoreError>> + Send;

    /// Records an attempt's outcome: the new `status` (`pending` again to retry at
    /// `next_attempt_ms`), the sent message's id or the error; counts the attempt and ends the
    /// lease. Only while the claim that took it still holds it (`held_until_ms`, the lease its
    /// claim set): `false`, and nothing written, when its lease passed and another claim took
    /// it, whose outcome is the one to keep.
    fn finish_reply(
        &self,
        id: i64,
        held_until_ms: i64,
        status: &str,
        next_attempt_ms: i64,
        sent_message_id: Option<String>,
        error: Option<String>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl Outbox for Store {
    async fn replies_for(&self, message_id: &str) -> Result<Vec<QueuedReply>, StoreError> {
        self.fetch_all(
            &format!("SELECT {REPLY_COLUMNS} FROM outbox WHERE message_id = $1 ORDER BY id"),
            &[message_id.into()],
        )
        .await
    }

    async fn claim_replies(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<QueuedReply>, StoreError> {
        self.fetch_all(
            &format!(
                "UPDATE outbox SET lease_until_ms = $1 + $2 WHERE id IN (SELECT id FROM outbox \
                 WHERE status = 'pending' AND next_attempt_ms <= $1 AND lease_until_ms <= $1 \
                 ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {REPLY_COLUMNS}"
            ),
            &[now_ms.into(), lease_ms.into(), limit.into()],
        )
        .await
    }

    async fn finish_reply(
        &self,
        id: i64,
        held_until_ms: i64,
        status: &str,
        next_attempt_ms: i64,
        sent_message_id: Option<String>,
        error: Option<String>,
    ) -> Result<bool, StoreError> {
        let finished: Option<(i64,)> = self
            .fetch_optional(
                "UPDATE outbox SET status = $1, attempts = attempts + 1, next_attempt_ms = $2, lease_until_ms = 0, \
                 sent_message_id = $3, last_error = $4 WHERE id = $5 AND status = 'pending' AND lease_until_ms = $6 \
                 RETURNING id",
                &[
                    status.into(),
                    next_attempt_ms.into(),
                    sent_message_id.into(),
                    error.into(),
                    Arg::from(id),
                    held_until_ms.into(),
                ],
            )
            .await?;
        Ok(finished.is_some())
    }
}

/// The suite every [`Outbox`] must pass; the replies come from the projection of keyword
/// messages, so the store must also take [`crate::records::Records`] changes.
pub mod outbox_conformance {
    use openphone_webhooks::Event;
    use serde_json::json;

    use super::Outbox;
    use crate::projection::{OwnNumbers, changes};
    use crate::records::Records;

    /// Runs every case on `store`, whose outbox must be empty.
    pub async fn run<S: Outbox + Records>(store: S) {
        let stop = |n: u32, text: &str| {
            let body = json!({"id": format!("EVo{n}"), "object": "event", "apiVersion": "v4",
                "createdAt": "2026-04-13T14:00:00Z", "type": "message.received",
                "data": {"object": {"id": format!("ACo{n}"), "object": "message", "from": "+15555550444",
                "to": ["+15555550001"], "direction": "incoming", "text": text, "status": "received",
                "createdAt": format!("2026-04-13T14:0{n}:00Z"), "phoneNumberId": "PN1"}}});
            changes(
                &Event::parse(body.to_string().as_bytes()).expect("event"),
                &OwnNumbers::default(),
            )
        };
        // Queued once per message and kind, however often the event is applied.
        for _ in 0..2 {
            store.apply(&stop(1, "STOP")).await.expect("apply");
        }
        store.apply(&stop(2, "help")).await.expect("apply");
        let queued = store.replies_for("ACo1").await.expect("read");
        assert_eq!(queued.len(), 1);
        let reply = &queued[0];
        assert_eq!(
            (
                reply.kind.as_str(),
                reply.to_phone.as_str(),
                reply.sender.as_str()
            ),
            ("opt_out", "+15555550444", "PN1")
        );
        assert_eq!((reply.status.as_str(), reply.attempts), ("pending", 0));

        // A claim holds its replies for the lease; the oldest due comes first.
        let now = 1_800_000_000_000;
        let claimed = store.claim_replies(now, 60_000, 1).await.expect("claim");
        assert_eq!(
            claimed
                .iter()
                .map(|r| r.message_id.as_str())
                .collect::<Vec<_>>(),
            ["ACo1"]
        );
        let second = store.claim_replies(now, 60_000, 10).await.expect("claim");
        assert_eq!(
            second
                .iter()
                .map(|r| r.message_id.as_str())
                .collect::<Vec<_>>(),
            ["ACo2"]
        );
        assert!(
            store
                .claim_replies(now + 1, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );

        // A retry waits for its time; a sent reply is never claimed again.
        let held = now + 60_000;
        assert!(
            store
                .finish_reply(
                    claimed[0].id,
                    held,
                    "pending",
                    now + 30_000,
                    None,
                    Some("503".into()),
                )
                .await
                .expect("retry")
        );
        assert!(
            store
                .finish_reply(second[0].id, held, "sent", 0, Some("ACsent".into()), None)
                .await
                .expect("sent")
        );
        assert!(
            store
                .claim_replies(now + 29_999, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let again = store
            .claim_replies(now + 30_000, 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].message_id.as_str(), again[0].attempts),
            ("ACo1", 1)
        );
        assert_eq!(again[0].last_error.as_deref(), Some("503"));
        // Past the lease, an unfinished claim is due again.
        let expired = store
            .claim_replies(now + 90_001, 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            expired.iter().map(|r| r.id).collect::<Vec<_>>(),
            [again[0].id]
        );
        // The claim whose lease passed finishes nothing: the one that took it over does.
        let (late, current) = (now + 30_000 + 60_000, now + 90_001 + 60_000);
        assert!(
            !store
                .finish_reply(again[0].id, late, "failed", 0, None, Some("late".into()))
                .await
                .expect("late finish")
        );
        let still = store.replies_for("ACo1").await.expect("read");
        assert_eq!(
            (still[0].status.as_str(), still[0].attempts),
            ("pending", 1)
        );
        assert!(
            store
                .finish_reply(again[0].id, current, "pending", now + 200_000, None, None)
                .await
                .expect("finish")
        );
        // A finished reply is finished once.
        assert!(
            !store
                .finish_reply(second[0].id, held, "failed", 0, None, None)
                .await
                .expect("again")
        );
        let sent = store.replies_for("ACo2").await.expect("read");
        assert_eq!(
            (
                sent[0].status.as_str(),
                sent[0].attempts,
                sent[0].sent_message_id.as_deref()
            ),
            ("sent", 1, Some("ACsent"))
        );
    }
}

/// Replies to keywords older than this are not sent (an import or a replay of old events
/// must not text people about what they wrote months ago); they are marked `stale`.
pub const REPLY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How long a claimed reply is held for its send: longer than the client's retries of a
/// rate-limited or failing send take.
pub const REPLY_LEASE: Duration = Duration::from_secs(600);

/// Attempts before a reply is marked `failed`.
pub const REPLY_MAX_ATTEMPTS: i64 = 6;

/// Sends queued compliance replies.
pub struct ReplySender {
    /// The database.
    pub store: Store,
    /// The OpenPhone client (`OPENPHONE_API_KEY`).
    pub client: Client,
    /// The texts.
    pub texts: ReplyTexts,
    /// The clock.
    pub clock: Clock,
    /// Metrics.
    pub metrics: Metrics,
    /// Where failures are reported.
    pub alerter: crate::alerts::Alerter,
}

impl ReplySender {
    /// Sends due replies until `stop` turns true: again at once while some were due, else a
    /// second later. `stop` is checked before each round: the replies in hand are sent, no
    /// new ones start.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        crate::app::poll_until_stopped(stop, "compliance replies", || self.send_due()).await;
    }

    /// Sends the replies that are due now; returns how many it handled.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the outbox cannot be read or updated.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = (self.clock)();
        let now_ms = unix_ms(now);
        // One at a time, under a lease longer than any send takes (the client's retries of a
        // 429 included): a reply claimed with others could wait past its lease behind them,
        // and another replica would send it too.
        let lease_ms = i64::try_from(REPLY_LEASE.as_millis()).unwrap_or(i64::MAX);
        let due = self.store.claim_replies(now_ms, lease_ms, 1).await?;
        for reply in &due {
            self.send(reply, now_ms, now_ms + lease_ms).await?;
        }
        Ok(due.len())
    }

    /// Why a confirmation would mislead, when it would: the number's consent as the ledger
    /// has it now (by message time, whatever order the keywords arrived in) is no longer what
    /// the keyword set (a STOP sent before a START, delivered after it), or a YES came from a
    /// number that had not opted out (a "yes" to a question, not a resubscription).
    async fn needless(&self, reply: &QueuedReply) -> Result<Option<String>, StoreError> {
        if reply.kind == Action::Help.as_str() {
            return Ok(None);
        }
        let history = self.store.consent_history(&reply.to_phone).await?;
        let Some(at) = history
            .iter()
            .position(|entry| entry.message_id == reply.message_id)
        else {
            return Ok(None);
        };
        let (entry, latest) = (&history[at], &history[history.len() - 1]);
        if latest.action != entry.action {
            return Ok(Some(format!(
                "a later keyword ({}) set the number's consent to {}",
                latest.keyword, latest.action
            )));
        }
        if entry.keyword == "YES"
            && history[..at]
                .last()
                .is_none_or(|before| before.action != Action::OptOut.as_str())
        {
            return Ok(Some(
                "YES from a number that had not opted out: no resubscription to confirm".to_owned(),
            ));
        }
        Ok(None)
    }

    /// Raises the `compliance_reply_failed` alert for `reply`: a confirmation a person must see
    /// to (not sent, or not known to be).
    async fn alert(&self, reply: &QueuedReply, what: &str) -> Result<(), StoreError> {
        self.alerter
            .raise(
                "compliance_reply_failed",
                "compliance_reply_failed",
                "Compliance replies (STOP/START/HELP confirmations) are failing",
                Some(format!(
                    "{} reply to message {} ({}): {what}",
                    reply.kind, reply.message_id, reply.to_phone
                )),
            )
            .await
    }

    async fn send(&self, reply: &QueuedReply, now_ms: i64, held: i64) -> Result<(), StoreError> {
        // Whether the outcome was recorded: `false` when the lease passed during the attempt
        // and another claim took the reply over (its outcome, and any alert, are that claim's).
        let finish = |status: &'static str, sent: Option<String>, error: Option<String>| async move {
            let held = self
                .store
                .finish_reply(reply.id, held, status, 0, sent, error)
                .await?;
            if !held {
                tracing::warn!(message_id = %reply.message_id, "compliance reply: its lease passed during the attempt; the claim that took it over records the outcome");
            }
            Ok::<bool, StoreError>(held)
        };
        let age_ms = now_ms.saturating_sub(reply.created_ms);
        if age_ms > i64::try_from(REPLY_MAX_AGE.as_millis()).unwrap_or(i64::MAX) {
            tracing::info!(message_id = %reply.message_id, kind = %reply.kind, "compliance reply not sent: the keyword is older than a day");
            self.metrics.compliance_reply("stale");
            return finish("stale", None, None).await.map(drop);
        }
        if let Some(reason) = self.needless(reply).await? {
            tracing::info!(message_id = %reply.message_id, kind = %reply.kind, %reason, "compliance reply not sent");
            self.metrics.compliance_reply("skipped");
            return finish("skipped", None, Some(reason)).await.map(drop);
        }
        let message = E164::parse(&reply.to_phone)
            .map_err(|error| error.to_string())
            .and_then(|to| {
                let sender = if reply.sender.starts_with("PN") {
                    Sender::from(PhoneNumberId::from(reply.sender.as_str()))
                } else {
                    Sender::from(E164::parse(&reply.sender).map_err(|error| error.to_string())?)
                };
                SendMessage::new(sender, to, self.texts.for_kind(&reply.kind))
                    .map_err(|error| error.to_string())
            });
        let message = match message {
            Ok(message) => message,
            Err(reason) => {
                tracing::error!(message_id = %reply.message_id, %reason, "compliance reply cannot be sent");
                self.metrics.compliance_reply("failed");
                if !finish("failed", None, Some(reason.clone())).await? {
                    return Ok(());
                }
                return self
                    .alert(reply, &format!("cannot be sent: {reason}"))
                    .await;
            }
        };
        match self.client.send_message(&message).await {
            Ok(sent) => {
                tracing::info!(message_id = %reply.message_id, kind = %reply.kind, "compliance reply sent");
                self.metrics.compliance_reply("sent");
                finish("sent", Some(sent.id.to_string()), None)
                    .await
                    .map(drop)
            }
            Err(error) if error.is_ambiguous() => {
                // It may have been sent: never risk texting twice.
                tracing::error!(message_id = %reply.message_id, %error, "compliance reply outcome unknown; not retried");
                self.metrics.compliance_reply("ambiguous");
                if !finish("ambiguous", None, Some(error.to_string())).await? {
                    return Ok(());
                }
                self.alert(
                    reply,
                    &format!("outcome unknown, not retried (check in OpenPhone whether it went out): {error}"),
                )
                .await
            }
            Err(error) => {
                let permanent = error
                    .status()
                    .is_some_and(|status| (400..500).contains(&status) && status != 429);
                if permanent || reply.attempts + 1 >= REPLY_MAX_ATTEMPTS {
                    self.metrics.compliance_reply("failed");
                    // Recorded first: an alert that cannot be raised must not leave the reply
                    // leased, to be tried again without counting.
                    if !finish("failed", None, Some(error.to_string())).await? {
                        return Ok(());
                    }
                    self.alert(reply, &error.to_string()).await
                } else {
                    let backoff = 30_000i64 << reply.attempts.clamp(0, 10);
                    tracing::warn!(message_id = %reply.message_id, %error, "compliance reply will be retried");
                    self.metrics.compliance_reply("retry");
                    self.store
                        .finish_reply(
                            reply.id,
                            held,
                            "pending",
                            now_ms + backoff,
                            None,
                            Some(error.to_string()),
                        )
                        .await
                        .map(drop)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keywords_ignore_case_whitespace_and_trailing_punctuation() {
        for text in [
            "STOP",
            " stop ",
            "Stop.",
            "stop!",
            "\tUnsubscribe\n",
            "optout",
        ] {
            assert!(
                matches!(classify(text), Keyword::Exact(Action::OptOut, _)),
                "{text:?}"
            );
        }
        assert_eq!(
            classify("start"),
            Keyword::Exact(Action::OptIn, "START".into())
        );
        assert_eq!(
            classify("Unstop"),
            Keyword::Exact(Action::OptIn, "UNSTOP".into())
        );
        assert_eq!(classify("yes"), Keyword::Exact(Action::OptIn, "YES".into()));
        // As phones type them: an ellipsis character, a question mark, quotes, an emoji,
        // invisible characters, full-width letters, non-breaking spaces.
        for text in [
            "Stop\u{2026}",
            "STOP?",
            "STOP,",
            "\"STOP\"",
            "\u{201C}Stop\u{201D}",
            "STOP \u{1F64F}",
            "STOP\u{200B}",
            "\u{FEFF}STOP",
            "\u{FF33}\u{FF34}\u{FF2F}\u{FF30}",
            "\u{00A0}stop\u{3000}",
            "- STOP -",
        ] {
            assert_eq!(
                classify(text),
                Keyword::Exact(Action::OptOut, "STOP".into()),
                "{text:?}"
            );
        }
        assert_eq!(
            classify("info"),
            Keyword::Exact(Action::Help, "INFO".into())
        );
    }

    #[test]
    fn longer_messages_are_flagged_not_obeyed() {
        assert_eq!(
            classify("Please stop texting me"),
            Keyword::Mentions("STOP".into())
        );
        assert_eq!(
            classify("I want to cancel my booking"),
            Keyword::Mentions("CANCEL".into())
        );
        assert_eq!(classify("stopping by at 6"), Keyword::None);
        // Non-ASCII letters that upper-case to a keyword's still count.
        assert_eq!(
            classify("ſtop"),
            Keyword::Exact(Action::OptOut, "STOP".into())
        );
        assert_eq!(classify("I said quıt"), Keyword::Mentions("QUIT".into()));
        assert_eq!(classify("Stopp, danke"), Keyword::None);
        assert_eq!(classify("Yes please, 6pm works"), Keyword::None);
        assert_eq!(classify("STOP STOP"), Keyword::Mentions("STOP".into()));
        assert_eq!(
            classify("please \u{FF33}\u{FF34}\u{FF2F}\u{FF30} now"),
            Keyword::Mentions("STOP".into())
        );
        assert_eq!(classify("S.T.O.P"), Keyword::None);
        // Opting in is read strictly: an answer to a question is not a resubscription.
        for text in ["Yes \u{1F44D}", "yes?", "\"Start\"", "help?"] {
            assert_eq!(classify(text), Keyword::None, "{text:?}");
        }
        for (text, keyword) in [("Yes!", "YES"), (" start. ", "START")] {
            assert_eq!(
                classify(text),
                Keyword::Exact(Action::OptIn, keyword.into()),
                "{text:?}"
            );
        }
    }
}
