//! Historical import and reconciliation: what the API holds, through the same normalization as
//! webhooks.
//!
//! Each object read from the API becomes a synthetic event in the 2026-03-30 webhook shape
//! (`message.received`/`message.delivered`, `call.completed`, `call.recording.completed`,
//! `call.summary.completed`, `call.transcript.completed`, `call.voicemail.completed`,
//! `contact.updated`), recorded in the raw log under the key `import:<kind>:<id>` and projected
//! like a webhook. An imported message and the webhook of the same message therefore converge
//! to one record, keyed by OpenPhone's id; the log stays the system of record (`replay`
//! rebuilds imported records too); and importing twice stores nothing twice.
//!
//! Three streams run at once behind the client's one rate limiter: workspace messages
//! (2026-03-30 `GET /messages`, which carries media), workspace calls (2026-03-30 `GET /calls`),
//! and contacts. Per call, artefacts are fetched only when the call can have them: recordings,
//! summary and transcript for answered calls that lasted, the voicemail when it has one; up to
//! eight such fetches run concurrently. After each page is committed its cursor is saved in
//! `import_state`, so a killed import continues where it stopped, with no gaps (pages are
//! committed before their cursor) and no duplicates (keys are unique).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use openphone_client::Client;
use openphone_client::model::contact::{Contact, ListContacts};
use openphone_client::model::conversation::{Conversation, ListConversations};
use openphone_client::model::workspace::{WorkspaceCall, WorkspaceMessage, WorkspaceQuery};
use openphone_types::CallId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use crate::directory::Directory;
use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::projection::Change;
use crate::reads::Reads;
use crate::store::{NewDelivery, Recorded, Store, StoreError};

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Only messages and calls created at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only these phone number ids (`PN...`); all when empty.
    pub phone_numbers: Vec<String>,
    /// Checkpoint name: `import` for the historical import; reconciliation uses its own, so
    /// each resumes independently.
    pub checkpoint: String,
    /// Record only objects whose OpenPhone id is not stored yet (reconciliation: existing
    /// records are never modified).
    pub only_missing: bool,
}

/// Counts of one kind of object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindReport {
    /// Read from the API.
    pub checked: u64,
    /// Recorded now.
    pub created: u64,
    /// Already stored (imported before, or delivered by webhook).
    pub already_present: u64,
    /// Ids of the objects recorded now (at most 100 kept).
    pub created_ids: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Per kind (`message`, `call`, `recording`, `summary`, `transcript`, `voicemail`,
    /// `contact`).
    pub kinds: BTreeMap<String, KindReport>,
    /// API requests made.
    pub requests: u64,
    /// Failures, with reasons (the import goes on past a failed artefact).
    pub failures: Vec<String>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl ImportReport {
    /// Achieved requests per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Objects recorded now, over all kinds.
    pub fn created(&self) -> u64 {
        self.kinds.values().map(|kind| kind.created).sum()
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The API failed (after the client's retries).
    #[error("OpenPhone API: {0}")]
    Api(#[from] openphone_client::Error),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Where resumable work keeps its checkpoints (the import's streams, the thread feed): a
/// cursor and whether the work is done, by name. [`Store`] keeps them in `import_state`;
/// [`MemoryCheckpoints`] in memory; both pass [`checkpoint_conformance::run`].
pub trait Checkpoints: Clone + Send + Sync + 'static {
    /// The saved cursor of `name` (`None` when it has not started), and whether it is done.
    fn import_cursor(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<(Option<String>, bool)>, StoreError>> + Send;

    /// Saves the checkpoint `name`, replacing what was saved.
    fn save_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        done: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets every checkpoint named `<prefix>:...`, so the next run starts over.
    fn reset_import(&self, prefix: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl Checkpoints for Store {
    async fn import_cursor(
        &self,
        name: &str,
    ) -> Result<Option<(Option<String>, bool)>, StoreError> {
        let row: Option<(Option<String>, i64)> = self
            .fetch_optional(
                "SELECT cursor, done FROM import_state WHERE name = $1",
                &[name.into()],
            )
            .await?;
        Ok(row.map(|(cursor, done)| (cursor, done != 0)))
    }

    async fn save_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        done: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO import_state (name, cursor, done, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, done = excluded.done, updated_ms = excluded.updated_ms",
            &[
                name.into(),
                cursor.map(str::to_owned).into(),
                i64::from(done).into(),
                now_ms.into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn reset_import(&self, prefix: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM import_state WHERE substr(name, 1, length($1)) = $1",
            &[format!("{prefix}:").into()],
        )
        .await?;
        Ok(())
    }
}

/// Saved checkpoints by name: the cursor and whether the work is done.
type Saved = BTreeMap<String, (Option<String>, bool)>;

/// Checkpoints in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryCheckpoints {
    saved: Arc<std::sync::Mutex<Saved>>,
}

impl MemoryCheckpoints {
    /// None saved.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Saved) -> T) -> T {
        f(&mut self
            .saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Checkpoints for MemoryCheckpoints {
    async fn import_cursor(
        &self,
        name: &str,
    ) -> Result<Option<(Option<String>, bool)>, StoreError> {
        Ok(self.with(|saved| saved.get(name).cloned()))
    }

    async fn save_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        done: bool,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|saved| saved.insert(name.to_owned(), (cursor.map(str::to_owned), done)));
        Ok(())
    }

    async fn reset_import(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = format!("{prefix}:");
        self.with(|saved| saved.retain(|name, _| !name.starts_with(&prefix)));
        Ok(())
    }
}

/// The suite every [`Checkpoints`] must pass.
pub mod checkpoint_conformance {
    use super::Checkpoints;

    /// Runs every case on `checkpoints`, which must hold none.
    pub async fn run<C: Checkpoints>(checkpoints: C) {
        assert_eq!(
            checkpoints
                .import_cursor("import:messages")
                .await
                .expect("read"),
            None
        );
        checkpoints
            .save_cursor("import:messages", Some("page-2"), false, 1)
            .await
            .expect("save");
        checkpoints
            .save_cursor("import:calls", None, true, 2)
            .await
            .expect("save");
        checkpoints
            .save_cursor("import_100%:x", Some("kept"), false, 3)
            .await
            .expect("save");
        checkpoints
            .save_cursor("threads:feed", Some("42"), false, 4)
            .await
            .expect("save");
        assert_eq!(
            checkpoints
                .import_cursor("import:messages")
                .await
                .expect("read"),
            Some((Some("page-2".to_owned()), false))
        );
        checkpoints
            .save_cursor("import:messages", Some("page-3"), true, 5)
            .await
            .expect("replace");
        assert_eq!(
            checkpoints
                .import_cursor("import:messages")
                .await
                .expect("read"),
            Some((Some("page-3".to_owned()), true))
        );
        assert_eq!(
            checkpoints
                .import_cursor("import:calls")
                .await
                .expect("read"),
            Some((None, true))
        );
        // A prefix is literal: `_` and `%` are not wildcards.
        checkpoints.reset_import("impor_").await.expect("reset");
        checkpoints
            .reset_import("import_100%")
            .await
            .expect("reset");
        assert!(
            checkpoints
                .import_cursor("import:calls")
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            checkpoints
                .import_cursor("import_100%:x")
                .await
                .expect("read")
                .is_none()
        );
        checkpoints
            .save_cursor("import_100%:x", Some("kept"), false, 6)
            .await
            .expect("save");
        // Only `import:...` is forgotten.
        checkpoints.reset_import("import").await.expect("reset");
        assert_eq!(
            checkpoints
                .import_cursor("import:messages")
                .await
                .expect("read"),
            None
        );
        assert_eq!(
            checkpoints
                .import_cursor("import:calls")
                .await
                .expect("read"),
            None
        );
        assert!(
            checkpoints
                .import_cursor("import_100%:x")
                .await
                .expect("read")
                .is_some()
        );
        assert_eq!(
            checkpoints
                .import_cursor("threads:feed")
                .await
                .expect("read"),
            Some((Some("42".to_owned()), false))
        );
    }
}

/// Live counts, readable while the import runs (for a progress display).
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests made.
    pub requests: AtomicU64,
    /// Messages read.
    pub messages: AtomicU64,
    /// Calls read.
    pub calls: AtomicU64,
    /// Contacts read.
    pub contacts: AtomicU64,
    /// Objects recorded now.
    pub created: AtomicU64,
    /// Creation time of the first message read, unix milliseconds (0 before any).
    pub messages_from_ms: AtomicI64,
    /// Creation time of the latest message read (messages come oldest first).
    pub messages_at_ms: AtomicI64,
}

impl Progress {
    /// The share of the message history read, from the creation times read so far to now:
    /// the basis of the ETA (messages are the longest stream).
    pub fn fraction(&self, now_ms: i64) -> Option<f64> {
        let from = self.messages_from_ms.load(Ordering::Relaxed);
        let at = self.messages_at_ms.load(Ordering::Relaxed);
        (from > 0 && now_ms > from)
            .then(|| ((at - from) as f64 / (now_ms - from) as f64).clamp(0.0, 1.0))
    }
}

/// Imports from the API into the store.
pub struct Importer {
    client: Client,
    store: Store,
    clock: Clock,
    options: ImportOptions,
    /// Live counts and the share of the history read.
    pub progress: Arc<Progress>,
    report: Mutex<ImportReport>,
}

/// Reads our phone numbers from OpenPhone and records them (id, number, name): the directory,
/// and what tells our number from the others in a group message.
///
/// # Errors
/// [`ImportError`] when the API or the database fails.
pub async fn save_phone_numbers(
    client: &Client,
    store: &Store,
    now_ms: i64,
) -> Result<Vec<openphone_client::model::phone_number::PhoneNumber>, ImportError> {
    let numbers = client.list_phone_numbers(None).await?;
    for number in &numbers {
        let line = crate::directory::WorkspaceNumber {
            id: number.id.to_string(),
            number: number.number.to_string(),
            name: Some(number.name.clone()),
        };
        store.save_number(&line, now_ms).await?;
    }
    Ok(numbers)
}

/// Runs a write again when it deadlocked with a concurrent stream (both touch conversations).
async fn retry_transient<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0u64;
    loop {
        match write().await {
            Err(error) if error.is_transient() && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=20) * attempt)).await;
            }
            other => return other,
        }
    }
}

fn rfc3339(time: Option<OffsetDateTime>) -> Value {
    time.and_then(|time| time.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// The cursor streams of an import.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Messages,
    Calls,
    Contacts,
    Conversations,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Calls => "calls",
            Self::Contacts => "contacts",
            Self::Conversations => "conversations",
        }
    }
}

/// One synthetic event and what it stands for.
struct Synthetic {
    kind: &'static str,
    id: String,
    event: Value,
}

impl Synthetic {
    fn new(kind: &'static str, id: &str, event_type: &str, at: Value, data: Value) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            event: json!({"id": format!("import-{kind}-{id}"), "apiVersion": "2026-03-30",
                "createdAt": at, "type": event_type, "data": data}),
        }
    }
}

fn message_event(message: &WorkspaceMessage) -> Synthetic {
    let incoming = message
        .direction
        .as_ref()
        .map(ToString::to_string)
        .as_deref()
        == Some("incoming");
    let event_type = if incoming {
        "message.received"
    } else {
        "message.delivered"
    };
    let media: Vec<Value> = message
        .media
        .iter()
        .map(|media| json!({"url": media.url, "type": media.content_type}))
        .collect();
    Synthetic::new(
        "message",
        message.id.as_str(),
        event_type,
        rfc3339(message.updated_at.or(message.created_at)),
        json!({
            "resource": {"id": message.id.as_str(), "direction": message.direction.as_ref().map(ToString::to_string),
                "text": message.text, "media": media, "status": message.status.as_ref().map(ToString::to_string),
                "createdAt": rfc3339(message.created_at)},
            "context": {"phoneNumberId": message.phone_number_id.as_ref().map(|id| id.as_str()),
                "conversationId": message.conversation_id.as_ref().map(|id| id.as_str()),
                "userId": message.user_id.as_ref().map(|id| id.as_str()),
                "senderIdentifier": message.from.as_ref().map(|from| from.as_str()),
                "recipientIdentifiers": message.to.iter().map(|to| to.as_str()).collect::<Vec<_>>()},
        }),
    )
}

/// A conversation as OpenPhone lists it: keyed like the projection keys it (our number and
/// the sorted other participants), with OpenPhone's id and last activity. Group conversations
/// get their full participant set here.
fn conversation_change(conversation: &Conversation) -> Option<Change> {
    let mut participants: Vec<&str> = conversation
        .participants
        .iter()
        .map(|p| p.as_str())
        .collect();
    if participants.is_empty() {
        return None;
    }
    participants.sort_unstable();
    participants.dedup();
    Some(Change::Conversation {
        key: format!(
            "{}|{}",
            conversation.phone_number_id.as_str(),
            participants.join(",")
        ),
        phone_number_id: conversation.phone_number_id.as_str().to_owned(),
        participants: json!(participants).to_string(),
        openphone_id: Some(conversation.id.as_str().to_owned()),
        activity_ms: conversation
            .last_activity_at
            .or(conversation.created_at)
            .map_or(0, unix_ms),
    })
}

fn call_context(call: &WorkspaceCall, ours: &[String]) -> Value {
    let external: Vec<&str> = call
        .participants
        .iter()
        .map(|p| p.as_str())
        .filter(|p| !ours.iter().any(|number| number == p))
        .collect();
    json!({"phoneNumberId": call.phone_number_id.as_ref().map(|id| id.as_str()),
        "conversationId": call.conversation_id.as_ref().map(|id| id.as_str()),
        "userId": call.user_id.as_ref().map(|id| id.as_str()),
        "participants": {"workspace": [], "external": external, "resolution": "available"}})
}

fn call_event(call: &WorkspaceCall, ours: &[String]) -> Synthetic {
    Synthetic::new(
        "call",
        call.id.as_str(),
        "call.completed",
        rfc3339(call.updated_at.or(call.completed_at).or(call.created_at)),
        json!({
            "resource": {"id": call.id.as_str(), "direction": call.direction.as_ref().map(ToString::to_string),
                "status": call.status.as_ref().map(ToString::to_string), "createdAt": rfc3339(call.created_at),
                "answeredAt": rfc3339(call.answered_at), "completedAt": rfc3339(call.completed_at),
                "duration": call.duration, "hasVoicemail": call.has_voicemail},
            "context": call_context(call, ours),
        }),
    )
}

fn contact_event(contact: &Contact) -> Synthetic {
    let fields = &contact.default_fields;
    let labelled = |values: &[openphone_client::model::contact::LabelledValue]| -> Vec<Value> {
        values
            .iter()
            .filter_map(|value| {
                value
                    .value
                    .as_ref()
                    .map(|v| json!({"value": v, "type": value.name}))
            })
            .collect()
    };
    Synthetic::new(
        "contact",
        contact.id.as_str(),
        "contact.updated",
        rfc3339(Some(contact.updated_at)),
        json!({
            "resource": {"id": contact.id.as_str(), "firstName": fields.first_name, "lastName": fields.last_name,
                "company": fields.company, "role": null, "location": null, "source": contact.source,
                "externalId": contact.external_id, "emails": labelled(&fields.emails),
                "phoneNumbers": labelled(&fields.phone_numbers), "customFields": [],
                "createdAt": rfc3339(Some(contact.created_at)), "updatedAt": rfc3339(Some(contact.updated_at))},
            "context": {},
        }),
    )
}

impl Importer {
    /// An importer reading through `client` into `store`.
    pub fn new(client: Client, store: Store, clock: Clock, options: ImportOptions) -> Self {
        Self {
            client,
            store,
            clock,
            options,
            progress: Arc::new(Progress::default()),
            report: Mutex::new(ImportReport::default()),
        }
    }

    fn now_ms(&self) -> i64 {
        unix_ms((self.clock)())
    }

    fn request(&self) {
        self.progress.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn wanted(&self, phone_number_id: Option<&str>) -> bool {
        self.options.phone_numbers.is_empty()
            || phone_number_id
                .is_some_and(|id| self.options.phone_numbers.iter().any(|pn| pn == id))
    }

    /// Runs the import (or resumes it) to the end.
    ///
    /// # Errors
    /// [`ImportError`] when the API or the database fails beyond retries; what was committed
    /// stays, and a rerun continues from the last saved cursor.
    pub async fn run(&self) -> Result<ImportReport, ImportError> {
        let started = Instant::now();
        self.request();
        let numbers = if self.options.only_missing {
            self.client.list_phone_numbers(None).await?
        } else {
            save_phone_numbers(&self.client, &self.store, self.now_ms()).await?
        };
        self.count("phone_number", numbers.len() as u64).await;
        let ours: Vec<String> = numbers
            .iter()
            .map(|number| number.number.as_str().to_owned())
            .collect();
        // Reconciliation only inserts what is missing: it leaves the directory and the
        // conversation list (merges, not inserts) to the import.
        let full = !self.options.only_missing;
        let (directory, messages, calls, contacts, conversations) = tokio::join!(
            async { if full { self.directory().await } else { Ok(()) } },
            self.stream(Stream::Messages, &ours),
            self.stream(Stream::Calls, &ours),
            self.stream(Stream::Contacts, &ours),
            async {
                if full {
                    self.stream(Stream::Conversations, &ours).await
                } else {
                    Ok(())
                }
            }
        );
        directory?;
        messages?;
        calls?;
        contacts?;
        conversations?;
        let mut report = self.report.lock().await.clone();
        report.requests = self.progress.requests.load(Ordering::Relaxed);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Counts objects upserted outside the raw log (phone numbers, users, conversations):
    /// they are read and merged, so they count as checked only.
    async fn count(&self, kind: &str, checked: u64) {
        let mut report = self.report.lock().await;
        report.kinds.entry(kind.to_owned()).or_default().checked += checked;
    }

    /// The workspace's users (a handful: not checkpointed).
    async fn directory(&self) -> Result<(), ImportError> {
        let mut token: Option<String> = None;
        let mut count = 0;
        loop {
            self.request();
            let page = self.client.list_users_page(50, token.as_deref()).await?;
            for user in &page.data {
                let member = crate::directory::WorkspaceUser {
                    id: user.id.to_string(),
                    email: user.email.clone(),
                    first_name: user.first_name.clone(),
                    last_name: user.last_name.clone(),
                    role: Some(user.role.to_string()),
                };
                self.store.save_user(&member, self.now_ms()).await?;
                count += 1;
            }
            match page.next_page_token {
                Some(next) if Some(&next) != token.as_ref() && !page.data.is_empty() => {
                    token = Some(next);
                }
                _ => break,
            }
        }
        self.count("user", count).await;
        Ok(())
    }

    /// Records synthetic events in one transaction; counts them.
    async fn record(&self, items: Vec<Synthetic>) -> Result<(), StoreError> {
        let mut deliveries = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        let now = (self.clock)();
        // The phone numbers this import recorded first, and every sender seen since.
        let mut own = self.store.own_numbers().await?;
        for item in items {
            if self.options.only_missing && self.store.holds(item.kind, &item.id).await? {
                kept.push((item.kind, item.id, false));
                continue;
            }
            let body = item.event.to_string().into_bytes();
            let Ok(event) = crate::ingest::parse_event(&body) else {
                self.report.lock().await.failures.push(format!(
                    "{} {}: could not be normalized",
                    item.kind, item.id
                ));
                continue;
            };
            deliveries.push(NewDelivery {
                delivery_key: format!("import:{}:{}", item.kind, crate::store::text(&item.id)),
                scheme: "import",
                event_id: Some(event.id.to_string()),
                event_type: Some(event.event_type.to_string()),
                parse_error: None,
                signed_at: now,
                received_at: now,
                changes: {
                    own.learn(&event);
                    crate::projection::changes(&event, &own)
                },
                body,
            });
            kept.push((item.kind, item.id, true));
        }
        let outcomes = match retry_transient(|| self.store.record_batch(&deliveries)).await {
            // One item's records refused: the others are recorded whole, and its raw event
            // without them (as ingestion does; `replay` projects it once fixed).
            Err(error) if error.refuses_values() => {
                let mut outcomes = Vec::with_capacity(deliveries.len());
                for delivery in &deliveries {
                    let one = std::slice::from_ref(delivery);
                    let outcome = match retry_transient(|| self.store.record_batch(one)).await {
                        Err(error) if error.refuses_values() => {
                            let raw = [delivery.raw_only(&error)];
                            let kept = retry_transient(|| self.store.record_batch(&raw))
                                .await?
                                .into_iter()
                                .map(Recorded::raw_only)
                                .collect();
                            self.report.lock().await.failures.push(format!(
                                "{}: kept raw, {}",
                                delivery.delivery_key,
                                raw[0].parse_error.as_deref().unwrap_or_default()
                            ));
                            kept
                        }
                        other => other?,
                    };
                    outcomes.extend(outcome);
                }
                outcomes
            }
            other => other?,
        };
        let mut outcomes = outcomes.into_iter();
        let mut report = self.report.lock().await;
        for (kind, id, recorded) in kept {
            let entry = report.kinds.entry(kind.to_owned()).or_default();
            entry.checked += 1;
            // A record kept raw is among the failures, not the records created.
            let new = recorded && matches!(outcomes.next(), Some(Recorded::New(_)));
            if new {
                entry.created += 1;
                if entry.created_ids.len() < 100 {
                    entry.created_ids.push(id);
                }
                self.progress.created.fetch_add(1, Ordering::Relaxed);
            } else {
                entry.already_present += 1;
            }
        }
        Ok(())
    }

    /// Follows one cursor stream from its checkpoint to its end.
    async fn stream(&self, which: Stream, ours: &[String]) -> Result<(), ImportError> {
        let key = format!("{}:{}", self.options.checkpoint, which.name());
        let mut cursor = match self.store.import_cursor(&key).await? {
            Some((_, true)) => return Ok(()),
            Some((cursor, false)) => cursor,
            None => None,
        };
        loop {
            let (items, next) = self.page(which, cursor.as_deref(), ours).await?;
            self.record(items).await?;
            let done = next.is_none() || next == cursor;
            self.store
                .save_cursor(&key, next.as_deref(), done, self.now_ms())
                .await?;
            if done {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn query(&self) -> WorkspaceQuery {
        let mut query = WorkspaceQuery::default();
        query.created_after = self.options.since;
        query.limit = Some(50);
        query
    }

    /// One page of a stream: its events and the next cursor.
    async fn page(
        &self,
        which: Stream,
        cursor: Option<&str>,
        ours: &[String],
    ) -> Result<(Vec<Synthetic>, Option<String>), ImportError> {
        self.request();
        match which {
            Stream::Messages => {
                let page = self
                    .client
                    .workspace_messages_page(&self.query(), cursor)
                    .await?;
                self.progress
                    .messages
                    .fetch_add(page.data.len() as u64, Ordering::Relaxed);
                let times = page.data.iter().filter_map(|m| m.created_at);
                if let Some(last) = times.clone().max() {
                    let first = self.options.since.or_else(|| times.min()).unwrap_or(last);
                    let _ = self.progress.messages_from_ms.compare_exchange(
                        0,
                        unix_ms(first),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    self.progress
                        .messages_at_ms
                        .fetch_max(unix_ms(last), Ordering::Relaxed);
                }
                let items = page
                    .data
                    .iter()
                    .filter(|m| self.wanted(m.phone_number_id.as_ref().map(|id| id.as_str())))
                    .map(message_event)
                    .collect();
                Ok((items, page.next_cursor))
            }
            Stream::Conversations => {
                let page = self
                    .client
                    .list_conversations_page(&ListConversations::all(), cursor)
                    .await?;
                let changes: Vec<Change> = page
                    .data
                    .iter()
                    .filter(|c| self.wanted(Some(c.phone_number_id.as_str())))
                    .filter_map(conversation_change)
                    .collect();
                let count = changes.len() as u64;
                retry_transient(|| self.store.apply_changes(&changes)).await?;
                self.count("conversation", count).await;
                Ok((Vec::new(), page.next_page_token))
            }
            Stream::Contacts => {
                let page = self
                    .client
                    .list_contacts_page(&ListContacts::all(), cursor)
                    .await?;
                self.progress
                    .contacts
                    .fetch_add(page.data.len() as u64, Ordering::Relaxed);
                Ok((
                    page.data.iter().map(contact_event).collect(),
                    page.next_page_token,
                ))
            }
            Stream::Calls => {
                let page = self
                    .client
                    .workspace_calls_page(&self.query(), cursor)
                    .await?;
                self.progress
                    .calls
                    .fetch_add(page.data.len() as u64, Ordering::Relaxed);
                let calls: Vec<&WorkspaceCall> = page
                    .data
                    .iter()
                    .filter(|c| self.wanted(c.phone_number_id.as_ref().map(|id| id.as_str())))
                    .collect();
                let mut items: Vec<Synthetic> =
                    calls.iter().map(|call| call_event(call, ours)).collect();
                let mut fetches = Vec::with_capacity(calls.len());
                for call in &calls {
                    fetches.push(self.artefacts(call, ours));
                }
                let mut artefacts = futures_util::stream::iter(fetches).buffer_unordered(8);
                while let Some(artefact) = artefacts.next().await {
                    items.extend(artefact?);
                }
                Ok((items, page.next_cursor))
            }
        }
    }

    /// The artefacts a call can have, fetched only then: recordings, summary and transcript
    /// of an answered call that lasted; its voicemail when it has one. A missing artefact
    /// (404) is skipped; another failure is reported and the import goes on.
    async fn artefacts(
        &self,
        call: &WorkspaceCall,
        ours: &[String],
    ) -> Result<Vec<Synthetic>, ImportError> {
        let id = CallId::from(call.id.as_str());
        let context = call_context(call, ours);
        let answered = call.answered_at.is_some() && call.duration.unwrap_or(0) > 0;
        let mut items = Vec::new();
        let at = rfc3339(call.completed_at.or(call.created_at));
        if answered {
            self.request();
            match self.client.call_recordings(&id).await {
                Ok(recordings) if !recordings.is_empty() => {
                    let recordings: Vec<Value> = recordings
                        .iter()
                        .filter_map(|r| r.url.as_ref().map(|url| json!({"id": r.id, "url": url, "type": r.content_type, "duration": r.duration})))
                        .collect();
                    items.push(Synthetic::new("recording", call.id.as_str(), "call.recording.completed", at.clone(), json!({
                        "resource": {"id": call.id.as_str(), "direction": call.direction.as_ref().map(ToString::to_string),
                            "createdAt": rfc3339(call.created_at), "answeredAt": rfc3339(call.answered_at),
                            "completedAt": rfc3339(call.completed_at), "duration": call.duration, "recordings": recordings},
                        "context": context.clone()})));
                }
                Ok(_) => {}
                Err(error) => self.artefact_failed("recordings", call, &error).await,
            }
            self.request();
            match self.client.call_summary(&id).await {
                Ok(summary) => items.push(Synthetic::new("summary", call.id.as_str(), "call.summary.completed", at.clone(), json!({
                    "resource": {"callId": call.id.as_str(), "processingStatus": summary.status.to_string(),
                        "summary": summary.summary.unwrap_or_default(), "nextSteps": summary.next_steps.unwrap_or_default()},
                    "context": context.clone()}))),
                Err(error) => self.artefact_failed("summary", call, &error).await,
            }
            self.request();
            match self.client.call_transcript(&id).await {
                Ok(transcript) => {
                    let dialogue: Vec<Value> = transcript
                        .dialogue
                        .unwrap_or_default()
                        .iter()
                        .map(|line| json!({"content": line.content, "start": line.start, "end": line.end,
                            "identifier": line.identifier, "userId": line.user_id.as_ref().map(|id| id.as_str())}))
                        .collect();
                    items.push(Synthetic::new("transcript", call.id.as_str(), "call.transcript.completed", at.clone(), json!({
                        "resource": {"callId": call.id.as_str(), "createdAt": rfc3339(Some(transcript.created_at)),
                            "duration": transcript.duration, "processingStatus": transcript.status.to_string(), "dialogue": dialogue},
                        "context": context.clone()})));
                }
                Err(error) => self.artefact_failed("transcript", call, &error).await,
            }
        }
        if call.has_voicemail == Some(true) {
            self.request();
            match self.client.call_voicemail(&id).await {
                Ok(voicemail) => items.push(Synthetic::new("voicemail", call.id.as_str(), "call.voicemail.completed", at, json!({
                    "resource": {"id": format!("{}-vm", call.id.as_str()), "voicemailId": voicemail.id.as_str(), "callId": call.id.as_str(),
                        "direction": call.direction.as_ref().map(ToString::to_string), "duration": voicemail.duration,
                        "transcript": voicemail.transcript, "recordingUrl": voicemail.recording_url,
                        "createdAt": rfc3339(call.completed_at.or(call.created_at)), "updatedAt": rfc3339(call.completed_at.or(call.created_at))},
                    "context": context}))),
                Err(error) => self.artefact_failed("voicemail", call, &error).await,
            }
        }
        Ok(items)
    }

    async fn artefact_failed(
        &self,
        what: &str,
        call: &WorkspaceCall,
        error: &openphone_client::Error,
    ) {
        if error.status() == Some(404) {
            return;
        }
        tracing::warn!(call = call.id.as_str(), what, %error, "artefact not imported");
        self.report
            .lock()
            .await
            .failures
            .push(format!("{what} of call {}: {error}", call.id.as_str()));
    }
}

/// A text progress bar `width` characters wide.
fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

/// Prints progress while `importer` runs: a line rewritten in place on a terminal, a log line
/// every `every` otherwise, with counts, the request rate and an ETA from the share of the
/// message history read (messages come oldest first; the API reports no totals). Stops when
/// `done` resolves.
pub async fn show_progress(
    progress: Arc<Progress>,
    terminal: bool,
    every: Duration,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    let started = Instant::now();
    let mut done = done;
    loop {
        let line = {
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            let requests = progress.requests.load(Ordering::Relaxed);
            let eta = progress
                .fraction(unix_ms(OffsetDateTime::now_utc()))
                .filter(|fraction| *fraction > 0.01)
                .map_or_else(
                    || "ETA estimating".to_owned(),
                    |fraction| {
                        let left = seconds * (1.0 - fraction) / fraction;
                        format!(
                            "[{}] {:.0}%, ETA {:.0}s",
                            bar(fraction, 20),
                            fraction * 100.0,
                            left
                        )
                    },
                );
            format!(
                "messages {} | calls {} | contacts {} | recorded {} | requests {} ({:.1}/s) | {:.0}s | {eta}",
                progress.messages.load(Ordering::Relaxed),
                progress.calls.load(Ordering::Relaxed),
                progress.contacts.load(Ordering::Relaxed),
                progress.created.load(Ordering::Relaxed),
                requests,
                requests as f64 / seconds,
                seconds
            )
        };
        if terminal {
            eprint!("\r{line}   ");
        } else {
            tracing::info!("import progress: {line}");
        }
        tokio::select! {
            _ = &mut done => {
                if terminal {
                    eprintln!();
                }
                return;
            }
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_checkpoints_pass_the_conformance_suite() {
        checkpoint_conformance::run(MemoryCheckpoints::new()).await;
    }

    #[test]
    fn the_bar_fills_with_the_fraction() {
        assert_eq!(bar(0.0, 4), "....");
        assert_eq!(bar(0.5, 4), "##..");
        assert_eq!(bar(1.2, 4), "####");
    }

    #[test]
    fn progress_fraction_follows_the_message_times_read() {
        let progress = Progress::default();
        assert_eq!(progress.fraction(10_000), None);
        progress.messages_from_ms.store(1_000, Ordering::Relaxed);
        progress.messages_at_ms.store(4_000, Ordering::Relaxed);
        assert_eq!(progress.fraction(7_000), Some(0.5));
        progress.messages_at_ms.store(9_000, Ordering::Relaxed);
        assert_eq!(progress.fraction(7_000), Some(1.0));
    }
}
