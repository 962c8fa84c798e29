//! The normalized records as a port: what the projection's changes merge into.
//!
//! [`Records`] applies [`Change`]s (every one a join: any order, and any repetition, gives the
//! same records) and reads the records back by id. [`Store`] implements it on SQLite and
//! PostgreSQL (ingestion applies the same changes inside its group commit); [`MemoryRecords`]
//! implements it in memory, the executable statement of the merge rules. [`conformance::run`]
//! is the one suite every implementation must pass; the crate runs it on all three.
//!
//! The consent ledger and the review flags are records too (the projection writes them from
//! keywords). The changes that feed other stores are applied by [`Store`] too. Of those,
//! [`MemoryRecords`] merges the ones whose stores it implements (media jobs, the outbox,
//! health check receipts, our numbers for [`crate::directory::Directory`], contact
//! suggestions for [`crate::suggestions::SuggestionStore`]). Campaign reports belong to the
//! `sms-campaigns` store: [`MemoryRecords::with_campaigns`] records them there; every
//! `MemoryRecords` also keeps them, in order, for [`MemoryRecords::side_effects`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::compliance::{ConsentEntry, Outbox, QueuedReply};
use crate::health_check::{HealthCheck, HealthChecks};
use crate::media::{Blob, MediaJobs, MediaRecord};
use crate::projection::Change;
use crate::store::{CallRecord, MessageRecord, Store, StoreError};

/// A conversation as projected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    /// Our phone number id.
    pub phone_number_id: String,
    /// The other participants, as a JSON array.
    pub participants: String,
    /// OpenPhone's conversation id, when an event or the import said.
    pub openphone_id: Option<String>,
    /// The latest activity, unix milliseconds.
    pub last_activity_ms: i64,
}

/// The normalized records: conversations, messages with their status history, calls with
/// their recordings, summaries and transcripts, contacts with their numbers, and the consent
/// ledger with the review flags.
pub trait Records: Clone + Send + Sync + 'static {
    /// Merges `changes`, atomically.
    fn apply(&self, changes: &[Change]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The conversation keyed `key`.
    fn conversation(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ConversationRecord>, StoreError>> + Send;

    /// The message `id`, with its status history.
    fn message(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send;

    /// The call `id`, with its artefacts.
    fn call(&self, id: &str)
    -> impl Future<Output = Result<Option<CallRecord>, StoreError>> + Send;

    /// The ids of the live contacts with this number, sorted.
    fn contacts_by_phone(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The number's consent ledger (one entry per keyword message), oldest first.
    fn consent_history(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Vec<ConsentEntry>, StoreError>> + Send;

    /// Whether the number's latest consent entry is an opt-out.
    fn is_opted_out(&self, phone: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The messages flagged for review: `(message id, phone, reason)`, newest first.
    fn review_flags(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String, String)>, StoreError>> + Send;
}

impl Records for Store {
    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.apply_changes(changes).await
    }

    async fn conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let row: Option<(String, String, Option<String>, i64)> = self
            .fetch_optional(
                "SELECT phone_number_id, participants, openphone_id, last_activity_ms \
                 FROM conversations WHERE conversation_key = $1",
                &[key.into()],
            )
            .await?;
        Ok(row.map(
            |(phone_number_id, participants, openphone_id, last_activity_ms)| ConversationRecord {
                phone_number_id,
                participants,
                openphone_id,
                last_activity_ms,
            },
        ))
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        Store::message(self, id).await
    }

    async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        Store::call(self, id).await
    }

    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<String>, StoreError> {
        Store::contacts_by_phone(self, phone).await
    }

    async fn consent_history(&self, phone: &str) -> Result<Vec<ConsentEntry>, StoreError> {
        Store::consent_history(self, phone).await
    }

    async fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        Store::is_opted_out(self, phone).await
    }

    async fn review_flags(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        Store::review_flags(self).await
    }
}

/// The records in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryRecords {
    inner: Arc<Mutex<Memory>>,
    /// Where campaign reports go, when attached.
    pub(crate) campaigns: Option<sms_campaigns::MemoryStore>,
}

#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) conversations: BTreeMap<String, ConversationRecord>,
    pub(crate) messages: BTreeMap<String, StoredMessage>,
    statuses: BTreeMap<(String, String), i64>,
    pub(crate) calls: BTreeMap<String, StoredCall>,
    recordings: BTreeSet<(String, String)>,
    pub(crate) summaries: BTreeMap<String, Ranked<(String, String)>>,
    pub(crate) transcripts: BTreeMap<String, Ranked<String>>,
    pub(crate) contacts: BTreeMap<String, StoredContact>,
    pub(crate) contact_phones: BTreeSet<(String, String)>,
    /// In arrival order, one per message.
    pub(crate) consent: Vec<ConsentEntry>,
    /// By message: phone, reason, time.
    review_flags: BTreeMap<String, (String, String, i64)>,
    /// The outbox of compliance replies, in queue order, with due time and lease.
    outbox: Vec<(QueuedReply, i64, i64)>,
    /// The media jobs, in queue order, with the declared type, due time and lease.
    pub(crate) media: Vec<MediaJob>,
    /// Health checks sent, in order, and the receipts of those that came back.
    health_checks: Vec<HealthCheck>,
    health_receipts: BTreeMap<String, i64>,
    side_effects: Vec<Change>,
    /// By conversation: inbound messages up to this time are read (see [`crate::reads`]).
    pub(crate) read_through: BTreeMap<String, i64>,
    /// By message: the campaign that sent it (see [`crate::reads`]).
    pub(crate) campaign_messages: BTreeMap<String, String>,
    /// Our numbers by id (see [`crate::directory`]).
    pub(crate) numbers: BTreeMap<String, crate::directory::WorkspaceNumber>,
    /// The workspace's users by id (see [`crate::directory`]).
    pub(crate) users: BTreeMap<String, crate::directory::WorkspaceUser>,
    /// Contact suggestions in the order found (see [`crate::suggestions`]).
    pub(crate) suggestions: Vec<crate::suggestions::Suggestion>,
}

#[derive(Debug, Clone)]
pub(crate) struct MediaJob {
    pub(crate) record: MediaRecord,
    declared_type: Option<String>,
    /// Its place in its owner's list.
    position: i64,
    next_attempt_ms: i64,
    lease_until_ms: i64,
}

impl MediaJob {
    /// As read: the server's content type, else the declared one.
    fn read(&self) -> MediaRecord {
        let mut record = self.record.clone();
        record.content_type = record.content_type.or_else(|| self.declared_type.clone());
        record
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub(crate) conversation_key: Option<String>,
    pub(crate) direction: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) body: Option<String>,
    pub(crate) media: String,
    pub(crate) status: Option<String>,
    pub(crate) status_rank: i32,
    pub(crate) error_code: Option<String>,
    pub(crate) created_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredCall {
    pub(crate) conversation_key: Option<String>,
    pub(crate) direction: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) status_rank: i32,
    pub(crate) outcome: Option<String>,
    pub(crate) outcome_rank: i32,
    pub(crate) created_ms: Option<i64>,
    pub(crate) answered_ms: Option<i64>,
    pub(crate) completed_ms: Option<i64>,
    pub(crate) duration_s: Option<i64>,
    pub(crate) voicemail_url: Option<String>,
    pub(crate) has_voicemail: bool,
}

/// An artefact whose content follows its processing status's rank (ties: the greater content).
#[derive(Debug, Clone)]
pub(crate) struct Ranked<T> {
    status: Option<String>,
    rank: i32,
    pub(crate) content: T,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StoredContact {
    pub(crate) updated_ms: i64,
    pub(crate) deleted: bool,
    pub(crate) content: String,
}

/// The least of two values, `None` only when both are.
fn earliest<T: Ord + Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b).clone()),
        _ => a.clone().or_else(|| b.clone()),
    }
}

/// Of two conversation keys, the one with more participants, else the lesser (`None` only
/// when both are): see `fuller_key!` in the SQL stores.
fn fuller_key(a: &Option<String>, b: &Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let participants = |key: &String| key.matches(',').count();
            Some(match participants(a).cmp(&participants(b)) {
                std::cmp::Ordering::Greater => a.clone(),
                std::cmp::Ordering::Less => b.clone(),
                std::cmp::Ordering::Equal => a.min(b).clone(),
            })
        }
        _ => a.clone().or_else(|| b.clone()),
    }
}

/// The greatest of two values, `None` only when both are.
fn latest<T: Ord + Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b).clone()),
        _ => a.clone().or_else(|| b.clone()),
    }
}

/// A JSON array that is empty gives way to one that is not; of two, the least.
fn list(a: &str, b: &str) -> String {
    match (a, b) {
        ("[]", other) | (other, "[]") => other.to_owned(),
        _ => a.min(b).to_owned(),
    }
}

/// The ranked value: a higher rank wins, on equal ranks the greater value, and a stored
/// `None` gives way.
fn ranked(
    stored: &Option<String>,
    rank: i32,
    new: &Option<String>,
    new_rank: i32,
) -> Option<String> {
    let greater = matches!((new, stored), (Some(new), Some(stored)) if new > stored);
    if new_rank > rank || (new_rank == rank && greater) || stored.is_none() {
        new.clone()
    } else {
        stored.clone()
    }
}

impl MemoryRecords {
    /// Empty records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty records whose campaign reports (replies, opt-outs, delivery reports on the
    /// recipients of campaigns) are recorded in `campaigns`, as [`Store`] records them in its
    /// campaign tables. Without it they are only kept in [`MemoryRecords::side_effects`].
    pub fn with_campaigns(campaigns: sms_campaigns::MemoryStore) -> Self {
        Self {
            campaigns: Some(campaigns),
            ..Self::default()
        }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The changes for stores it does not implement (campaign reports), in the
    /// order they were applied.
    pub fn side_effects(&self) -> Vec<Change> {
        self.with(|memory| memory.side_effects.clone())
    }
}

impl Memory {
    fn merge(&mut self, change: &Change) {
        match change.clone() {
            Change::Conversation {
                key,
                phone_number_id,
                participants,
                openphone_id,
                activity_ms,
            } => {
                let record = self
                    .conversations
                    .entry(key)
                    .or_insert_with(|| ConversationRecord {
                        phone_number_id,
                        participants,
                        openphone_id: openphone_id.clone(),
                        last_activity_ms: activity_ms,
                    });
                record.openphone_id = earliest(&record.openphone_id, &openphone_id);
                record.last_activity_ms = record.last_activity_ms.max(activity_ms);
            }
            Change::Message {
                id,
                conversation_key,
                direction,
                from,
                to,
                body,
                media,
                status,
                status_rank,
                error_code,
                created_ms,
            } => {
                let new = StoredMessage {
                    conversation_key,
                    direction,
                    from,
                    to,
                    body,
                    media,
                    status,
                    status_rank,
                    error_code,
                    created_ms,
                };
                let Some(old) = self.messages.get(&id).cloned() else {
                    self.messages.insert(id, new);
                    return;
                };
                let merged = StoredMessage {
                    conversation_key: fuller_key(&old.conversation_key, &new.conversation_key),
                    direction: earliest(&old.direction, &new.direction),
                    from: earliest(&old.from, &new.from),
                    to: list(&old.to, &new.to),
                    body: earliest(&old.body, &new.body),
                    media: list(&old.media, &new.media),
                    status: ranked(&old.status, old.status_rank, &new.status, new.status_rank),
                    status_rank: old.status_rank.max(new.status_rank),
                    error_code: earliest(&old.error_code, &new.error_code),
                    created_ms: earliest(&old.created_ms, &new.created_ms),
                };
                self.messages.insert(id, merged);
            }
            Change::MessageStatus {
                message_id,
                status,
                reported_ms,
            } => {
                let stored = self
                    .statuses
                    .entry((message_id, status))
                    .or_insert(reported_ms);
                *stored = (*stored).min(reported_ms);
            }
            Change::Call {
                id,
                conversation_key,
                direction,
                status,
                status_rank,
                outcome,
                outcome_rank,
                created_ms,
                answered_ms,
                completed_ms,
                duration_s,
                voicemail_url,
                has_voicemail,
            } => {
                let new = StoredCall {
                    conversation_key,
                    direction,
                    status,
                    status_rank,
                    outcome,
                    outcome_rank,
                    created_ms,
                    answered_ms,
                    completed_ms,
                    duration_s,
                    voicemail_url,
                    has_voicemail,
                };
                let Some(old) = self.calls.get(&id).cloned() else {
                    self.calls.insert(id, new);
                    return;
                };
                let merged = StoredCall {
                    conversation_key: earliest(&old.conversation_key, &new.conversation_key),
                    direction: earliest(&old.direction, &new.direction),
                    status: ranked(&old.status, old.status_rank, &new.status, new.status_rank),
                    status_rank: old.status_rank.max(new.status_rank),
                    outcome: ranked(
                        &old.outcome,
                        old.outcome_rank,
                        &new.outcome,
                        new.outcome_rank,
                    ),
                    outcome_rank: old.outcome_rank.max(new.outcome_rank),
                    created_ms: earliest(&old.created_ms, &new.created_ms),
                    answered_ms: earliest(&old.answered_ms, &new.answered_ms),
                    completed_ms: latest(&old.completed_ms, &new.completed_ms),
                    duration_s: latest(&old.duration_s, &new.duration_s),
                    voicemail_url: earliest(&old.voicemail_url, &new.voicemail_url),
                    has_voicemail: old.has_voicemail || new.has_voicemail,
                };
                self.calls.insert(id, merged);
            }
            Change::Recording { call_id, url, .. } => {
                self.recordings.insert((call_id, url));
            }
            Change::Summary {
                call_id,
                status,
                status_rank,
                summary,
                next_steps,
            } => merge_ranked(
                &mut self.summaries,
                call_id,
                Ranked {
                    status,
                    rank: status_rank,
                    content: (summary, next_steps),
                },
                // Ties go to the greater summary (its next steps follow it).
                |new, old| new.0 > old.0,
            ),
            Change::Transcript {
                call_id,
                status,
                status_rank,
                dialogue,
            } => merge_ranked(
                &mut self.transcripts,
                call_id,
                Ranked {
                    status,
                    rank: status_rank,
                    content: dialogue,
                },
                |new, old| new > old,
            ),
            Change::Contact {
                id,
                deleted,
                updated_ms,
                content,
                phones,
                ..
            } => {
                let version = StoredContact {
                    updated_ms,
                    deleted,
                    content,
                };
                let current = self.contacts.get(&id);
                if current.is_some_and(|current| *current > version) {
                    return;
                }
                if current != Some(&version) {
                    self.contacts.insert(id.clone(), version.clone());
                }
                // The stored version is this one: its numbers are the current ones.
                self.contact_phones.retain(|(contact, _)| *contact != id);
                if !version.deleted {
                    for phone in phones {
                        self.contact_phones.insert((id.clone(), phone));
                    }
                }
            }
            Change::Consent {
                message_id,
                phone,
                action,
                keyword,
                at_ms,
            } => {
                if !self
                    .consent
                    .iter()
                    .any(|entry| entry.message_id == message_id)
                {
                    self.consent.push(ConsentEntry {
                        message_id,
                        phone,
                        action: action.to_owned(),
                        keyword,
                        at_ms,
                    });
                }
            }
            Change::ReviewFlag {
                message_id,
                phone,
                reason,
                at_ms,
            } => {
                self.review_flags
                    .entry(message_id)
                    .or_insert((phone, reason, at_ms));
            }
            Change::Reply {
                message_id,
                kind,
                to,
                sender,
                created_ms,
            } => {
                let queued = self
                    .outbox
                    .iter()
                    .any(|(reply, ..)| reply.message_id == message_id && reply.kind == kind);
                if !queued {
                    let id = i64::try_from(self.outbox.len()).unwrap_or(i64::MAX) + 1;
                    self.outbox.push((
                        QueuedReply {
                            id,
                            message_id,
                            kind: kind.to_owned(),
                            to_phone: to,
                            sender,
                            created_ms,
                            status: "pending".to_owned(),
                            attempts: 0,
                            sent_message_id: None,
                            last_error: None,
                        },
                        0,
                        0,
                    ));
                }
            }
            Change::Media {
                owner_kind,
                owner_id,
                url,
                declared_type,
                position,
            } => {
                let queued = self
                    .media
                    .iter_mut()
                    .find(|job| job.record.owner_id == owner_id && job.record.url == url);
                if let Some(job) = queued {
                    job.declared_type = earliest(&job.declared_type, &declared_type);
                    job.position = job.position.min(position);
                } else {
                    let id = i64::try_from(self.media.len()).unwrap_or(i64::MAX) + 1;
                    self.media.push(MediaJob {
                        record: MediaRecord {
                            id,
                            owner_kind: owner_kind.to_owned(),
                            owner_id,
                            url,
                            status: "pending".to_owned(),
                            attempts: 0,
                            sha256: None,
                            content_type: None,
                            size_bytes: None,
                            last_error: None,
                        },
                        declared_type,
                        position,
                        next_attempt_ms: 0,
                        lease_until_ms: 0,
                    });
                }
            }
            Change::HealthReceipt { token, received_ms } => {
                self.health_receipts.entry(token).or_insert(received_ms);
            }
            own @ Change::OwnNumber { .. } => self.learn_number(&own),
            found @ Change::Suggestion { .. } => self.suggest(&found),
            other => self.side_effects.push(other),
        }
    }
}

/// Merges a ranked artefact: a higher rank wins, equal ranks go to `greater`; the status
/// follows [`ranked`].
fn merge_ranked<T: Clone>(
    map: &mut BTreeMap<String, Ranked<T>>,
    key: String,
    new: Ranked<T>,
    greater: impl Fn(&T, &T) -> bool,
) {
    let Some(old) = map.get(&key).cloned() else {
        map.insert(key, new);
        return;
    };
    let content =
        if new.rank > old.rank || (new.rank == old.rank && greater(&new.content, &old.content)) {
            new.content.clone()
        } else {
            old.content
        };
    map.insert(
        key,
        Ranked {
            status: ranked(&old.status, old.rank, &new.status, new.rank),
            rank: old.rank.max(new.rank),
            content,
        },
    );
}

/// Records a campaign report change in `campaigns` with the rules the SQL store's
/// statements follow: the earliest reply and opt-out are kept; a delivery beats a failure.
async fn report_to(
    campaigns: &sms_campaigns::MemoryStore,
    change: &Change,
) -> Result<(), sms_campaigns::Error> {
    use sms_campaigns::CampaignStore;
    let at = |ms: i64| crate::ingest::from_unix_ms(ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    match change {
        Change::CampaignResponse {
            phone,
            at_ms,
            opt_out,
        } => {
            // A sender that is not a valid number matches no recipient (recipients are E.164).
            let Ok(phone) = openphone_types::E164::parse(phone) else {
                return Ok(());
            };
            campaigns.record_reply(&phone, at(*at_ms)).await?;
            if *opt_out {
                campaigns.record_opt_out(&phone, at(*at_ms)).await?;
            }
        }
        Change::CampaignDelivery {
            message_id,
            failure,
            reported_ms,
        } => {
            campaigns
                .record_delivery(message_id, failure.as_deref(), at(*reported_ms))
                .await?;
        }
        _ => {}
    }
    Ok(())
}

impl Records for MemoryRecords {
    /// Merges `changes`; with campaigns attached, then records the campaign reports there
    /// (two stores: a failure there leaves the records merged, and applying again is safe).
    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.with(|memory| {
            for change in changes {
                memory.merge(change);
            }
        });
        if let Some(campaigns) = &self.campaigns {
            for change in changes {
                report_to(campaigns, change)
                    .await
                    .map_err(StoreError::Campaigns)?;
            }
        }
        Ok(())
    }

    async fn conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        Ok(self.with(|memory| memory.conversations.get(key).cloned()))
    }

    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.with(|memory| {
            let message = memory.messages.get(id)?;
            let history = memory
                .statuses
                .keys()
                .filter(|(message_id, _)| message_id == id)
                .map(|(_, status)| status.clone())
                .collect();
            Some(MessageRecord {
                conversation_key: message.conversation_key.clone(),
                body: message.body.clone(),
                status: message.status.clone(),
                history,
                media: message.media.clone(),
            })
        }))
    }

    async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        Ok(self.with(|memory| {
            let call = memory.calls.get(id)?;
            let summary = memory.summaries.get(id);
            Some(CallRecord {
                conversation_key: call.conversation_key.clone(),
                direction: call.direction.clone(),
                status: call.status.clone(),
                outcome: call.outcome.clone(),
                times_ms: (call.created_ms, call.answered_ms, call.completed_ms),
                duration_s: call.duration_s,
                voicemail: (call.has_voicemail, call.voicemail_url.clone()),
                recordings: memory
                    .recordings
                    .iter()
                    .filter(|(call_id, _)| call_id == id)
                    .map(|(_, url)| url.clone())
                    .collect(),
                summary: summary.map(|s| s.content.0.clone()),
                next_steps: summary.map(|s| s.content.1.clone()),
                transcript: memory.transcripts.get(id).map(|t| t.content.clone()),
            })
        }))
    }

    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .contact_phones
                .iter()
                .filter(|(contact, number)| {
                    number == phone
                        && memory
                            .contacts
                            .get(contact)
                            .is_some_and(|version| !version.deleted)
                })
                .map(|(contact, _)| contact.clone())
                .collect()
        }))
    }

    async fn consent_history(&self, phone: &str) -> Result<Vec<ConsentEntry>, StoreError> {
        Ok(self.with(|memory| {
            let mut entries: Vec<ConsentEntry> = memory
                .consent
                .iter()
                .filter(|entry| entry.phone == phone)
                .cloned()
                .collect();
            // Stable: equal times keep their arrival order, as the row id does.
            entries.sort_by_key(|entry| entry.at_ms);
            entries
        }))
    }

    async fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        let history = self.consent_history(phone).await?;
        Ok(history
            .last()
            .is_some_and(|entry| entry.action == "opt_out"))
    }

    async fn review_flags(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(self.with(|memory| {
            let mut flags: Vec<(i64, &String, &(String, String, i64))> = memory
                .review_flags
                .iter()
                .map(|(message_id, flag)| (flag.2, message_id, flag))
                .collect();
            flags.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            flags
                .into_iter()
                .map(|(_, message_id, (phone, reason, _))| {
                    (message_id.clone(), phone.clone(), reason.clone())
                })
                .collect()
        }))
    }
}

impl Memory {
    /// See [`crate::reads::Reads::holds`].
    pub(crate) fn holds(&self, kind: &str, id: &str) -> bool {
        match kind {
            "message" => self.messages.contains_key(id),
            "call" => self.calls.get(id).is_some_and(|call| call.status.is_some()),
            "contact" => self.contacts.contains_key(id),
            "summary" => self.summaries.contains_key(id),
            "transcript" => self.transcripts.contains_key(id),
            "recording" => self.recordings.iter().any(|(call, _)| call == id),
            _ => self.calls.get(id).is_some_and(|call| call.has_voicemail),
        }
    }
}

impl knowledge_export::CallDetails for MemoryRecords {
    async fn call_details(
        &self,
        call_ids: &[String],
    ) -> Result<
        std::collections::HashMap<String, knowledge_export::format::CallDetail>,
        knowledge_export::Error,
    > {
        Ok(self.with(|memory| {
            call_ids
                .iter()
                .filter_map(|id| {
                    let summary = memory.summaries.get(id).map(|ranked| &ranked.content);
                    let detail = crate::insight_store::call_detail(
                        summary.map(|(summary, _)| summary.as_str()),
                        summary.map(|(_, next_steps)| next_steps.as_str()),
                        memory
                            .transcripts
                            .get(id)
                            .map(|ranked| ranked.content.as_str()),
                    )?;
                    Some((id.clone(), detail))
                })
                .collect()
        }))
    }
}

impl Outbox for MemoryRecords {
    async fn replies_for(&self, message_id: &str) -> Result<Vec<QueuedReply>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .outbox
                .iter()
                .filter(|(reply, ..)| reply.message_id == message_id)
                .map(|(reply, ..)| reply.clone())
                .collect()
        }))
    }

    async fn claim_replies(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<QueuedReply>, StoreError> {
        Ok(self.with(|memory| {
            let mut due: Vec<usize> = (0..memory.outbox.len())
                .filter(|&index| {
                    let (reply, next_attempt_ms, lease_until_ms) = &memory.outbox[index];
                    reply.status == "pending"
                        && *next_attempt_ms <= now_ms
                        && *lease_until_ms <= now_ms
                })
                .collect();
            due.sort_by_key(|&index| (memory.outbox[index].1, memory.outbox[index].0.id));
            due.truncate(usize::try_from(limit).unwrap_or(0));
            due.into_iter()
                .map(|index| {
                    memory.outbox[index].2 = now_ms + lease_ms;
                    memory.outbox[index].0.clone()
                })
                .collect()
        }))
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
        Ok(self.with(|memory| {
            let Some((reply, next, lease)) = memory.outbox.iter_mut().find(|(reply, _, lease)| {
                reply.id == id && reply.status == "pending" && *lease == held_until_ms
            }) else {
                return false;
            };
            reply.status = status.to_owned();
            reply.attempts += 1;
            reply.sent_message_id = sent_message_id;
            reply.last_error = error;
            *next = next_attempt_ms;
            *lease = 0;
            true
        }))
    }
}

impl MemoryRecords {
    fn with_job<T>(&self, id: i64, f: impl FnOnce(&mut MediaJob) -> T) -> Option<T> {
        self.with(|memory| {
            memory
                .media
                .iter_mut()
                .find(|job| job.record.id == id)
                .map(f)
        })
    }
}

impl MediaJobs for MemoryRecords {
    async fn media(&self, id: i64) -> Result<Option<MediaRecord>, StoreError> {
        Ok(self.with_job(id, |job| job.read()))
    }

    async fn media_of(&self, owner_id: &str) -> Result<Vec<MediaRecord>, StoreError> {
        Ok(self.with(|memory| {
            let mut jobs: Vec<&MediaJob> = memory
                .media
                .iter()
                .filter(|job| job.record.owner_id == owner_id)
                .collect();
            jobs.sort_by_key(|job| (job.position, job.record.id));
            jobs.into_iter().map(MediaJob::read).collect()
        }))
    }

    async fn media_list(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MediaRecord>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        Ok(self.with(|memory| {
            memory
                .media
                .iter()
                .rev()
                .filter(|job| job.record.id < before)
                .filter(|job| status.is_none_or(|status| job.record.status == status))
                .take(usize::try_from(limit).unwrap_or(0))
                .map(MediaJob::read)
                .collect()
        }))
    }

    async fn claim_media(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<MediaRecord>, StoreError> {
        Ok(self.with(|memory| {
            let mut due: Vec<&mut MediaJob> = memory
                .media
                .iter_mut()
                .filter(|job| {
                    job.record.status == "pending"
                        && job.next_attempt_ms <= now_ms
                        && job.lease_until_ms <= now_ms
                })
                .collect();
            due.sort_by_key(|job| (job.next_attempt_ms, job.record.id));
            due.into_iter()
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|job| {
                    job.lease_until_ms = now_ms + lease_ms;
                    job.read()
                })
                .collect()
        }))
    }

    async fn media_stored(
        &self,
        id: i64,
        held_until_ms: i64,
        blob: &Blob,
        content_type: Option<String>,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .with_job(id, |job| {
                if job.record.status != "pending" || job.lease_until_ms != held_until_ms {
                    return false;
                }
                job.record.status = "stored".to_owned();
                job.record.attempts += 1;
                job.record.sha256 = Some(blob.sha256.clone());
                job.record.size_bytes = Some(blob.size);
                job.record.content_type = content_type;
                job.record.last_error = None;
                job.lease_until_ms = 0;
                true
            })
            .unwrap_or(false))
    }

    async fn media_attempt_failed(
        &self,
        id: i64,
        held_until_ms: i64,
        status: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .with_job(id, |job| {
                if job.record.status != "pending" || job.lease_until_ms != held_until_ms {
                    return false;
                }
                job.record.status = status.to_owned();
                job.record.attempts += 1;
                job.record.last_error = Some(error.to_owned());
                job.next_attempt_ms = next_attempt_ms;
                job.lease_until_ms = 0;
                true
            })
            .unwrap_or(false))
    }

    async fn retry_failed_media(&self, id: Option<i64>, now_ms: i64) -> Result<u64, StoreError> {
        Ok(self.with(|memory| {
            let mut retried = 0;
            for job in memory.media.iter_mut().filter(|job| {
                job.record.status == "failed" && id.is_none_or(|id| job.record.id == id)
            }) {
                job.record.status = "pending".to_owned();
                job.record.attempts = 0;
                job.next_attempt_ms = now_ms;
                job.lease_until_ms = 0;
                retried += 1;
            }
            retried
        }))
    }
}

impl HealthChecks for MemoryRecords {
    async fn health_checks(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HealthCheck>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        Ok(self.with(|memory| {
            let mut checks: Vec<HealthCheck> = memory
                .health_checks
                .iter()
                .filter(|check| check.sent_ms < before)
                .map(|check| {
                    let mut check = check.clone();
                    check.received_ms = memory.health_receipts.get(&check.token).copied();
                    if check.received_ms.is_some() {
                        check.status = "passed".to_owned();
                    }
                    check
                })
                .collect();
            checks.sort_by_key(|check| std::cmp::Reverse(check.sent_ms));
            checks.truncate(usize::try_from(limit).unwrap_or(0));
            checks
        }))
    }

    async fn health_check_sent(&self, token: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .health_checks
                .iter()
                .find(|check| check.token == token)
                .map(|check| check.sent_ms)
        }))
    }

    async fn start_health_check(
        &self,
        token: &str,
        now_ms: i64,
        message_id: Option<String>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.with(|memory| {
            memory.health_checks.push(HealthCheck {
                token: token.to_owned(),
                sent_ms: now_ms,
                message_id,
                received_ms: None,
                status: if error.is_some() { "failed" } else { "pending" }.to_owned(),
                error,
            });
        });
        Ok(())
    }

    async fn expire_health_checks(&self, deadline_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|memory| {
            let receipts = &memory.health_receipts;
            memory
                .health_checks
                .iter_mut()
                .filter(|check| {
                    check.status == "pending"
                        && check.sent_ms < deadline_ms
                        && !receipts.contains_key(&check.token)
                })
                .map(|check| {
                    check.status = "failed".to_owned();
                    check.error = Some("its webhook did not arrive in time".to_owned());
                    check.token.clone()
                })
                .collect()
        }))
    }
}

/// The suite every [`Records`] implementation must pass.
pub mod conformance {
    use openphone_webhooks::Event;
    use serde_json::{Value, json};

    use super::Records;
    use crate::projection::{OwnNumbers, changes};

    /// Applies `event`'s changes, twice (a redelivery must change nothing).
    async fn apply<R: Records>(records: &R, event: &Value) {
        let event = Event::parse(event.to_string().as_bytes()).expect("a valid event");
        let changes = changes(&event, &OwnNumbers::default());
        for _ in 0..2 {
            records.apply(&changes).await.expect("apply");
        }
    }

    /// Runs every case on `records`, which must be empty.
    pub async fn run<R: Records>(records: R) {
        every_order_of_a_calls_events_converges(&records).await;
        a_missed_call_with_its_voicemail_in_either_order(&records).await;
        message_status_never_regresses_and_keeps_its_history(&records).await;
        contacts_converge_and_are_found_by_number(&records).await;
        conversations_keep_the_latest_activity_and_first_id(&records).await;
        keywords_keep_a_consent_ledger_and_flags(&records).await;
        a_group_message_keys_by_the_group_once_its_line_is_known(&records).await;
    }

    /// A group message projected while its line's number was not known keys by its sender
    /// alone; projected again with the number known (a replay), it keys by the whole group,
    /// in either order, also when the sender's key sorts first (it is a prefix of the
    /// group's).
    async fn a_group_message_keys_by_the_group_once_its_line_is_known<R: Records>(records: &R) {
        let ours = OwnNumbers::new([("PN7".to_owned(), "+15557770000".to_owned())]);
        for (n, line_known_first) in [false, true].into_iter().enumerate() {
            let id = format!("ACgroupkey{n}");
            let event = json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
                "createdAt": "2026-04-13T12:00:00Z", "type": "message.received", "data": {"object": {
                "id": id, "object": "message", "from": "+15557770001",
                "to": ["+15557770000", "+15557770002"], "direction": "incoming", "text": "Group",
                "status": "received", "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN7"}}});
            let event = Event::parse(event.to_string().as_bytes()).expect("a valid event");
            let unknown = changes(&event, &OwnNumbers::default());
            let known = changes(&event, &ours);
            let order = if line_known_first {
                [&known, &unknown]
            } else {
                [&unknown, &known]
            };
            for changes in order {
                records.apply(changes).await.expect("apply");
            }
            let message = records
                .message(&id)
                .await
                .expect("read")
                .expect("projected");
            assert_eq!(
                message.conversation_key.as_deref(),
                Some("PN7|+15557770001,+15557770002"),
                "the line known first: {line_known_first}"
            );
        }
    }

    /// The five events of an answered call (legacy app shape), for call `id`.
    pub fn call_events(id: &str) -> Vec<Value> {
        let call = |status: &str, answered: Value, completed: Value, media: Value| {
            json!({"id": id, "object": "call", "from": "+18005550100", "to": "+18885550101",
                   "direction": "incoming", "media": media, "voicemail": null, "status": status,
                   "createdAt": "2022-01-24T19:21:59.545Z", "answeredAt": answered, "completedAt": completed,
                   "duration": if status == "ringing" { 0 } else { 55 },
                   "userId": "US1", "phoneNumberId": "PN1", "conversationId": "CN1"})
        };
        let envelope = |n: usize, kind: &str, object: Value| {
            json!({"id": format!("EV{id}-{n}"), "object": "event", "apiVersion": "v3",
                   "createdAt": "2022-01-24T19:23:00.000Z", "type": kind, "data": {"object": object}})
        };
        let answered = json!("2022-01-24T19:22:04.000Z");
        vec![
            envelope(
                0,
                "call.ringing",
                call("ringing", Value::Null, Value::Null, json!([])),
            ),
            envelope(
                1,
                "call.completed",
                call(
                    "completed",
                    answered.clone(),
                    json!("2022-01-24T19:22:59.000Z"),
                    json!([]),
                ),
            ),
            envelope(
                2,
                "call.recording.completed",
                call(
                    "completed",
                    answered,
                    json!("2022-01-24T19:22:59+00:00"),
                    json!([{"url": "https://storage.example/rec.mp3", "type": "audio/mpeg", "duration": 55}]),
                ),
            ),
            envelope(
                3,
                "call.summary.completed",
                json!({"callId": id, "object": "callSummary", "status": "completed",
                "summary": ["Booked bay 2"], "nextSteps": ["Confirm by text"]}),
            ),
            envelope(
                4,
                "call.transcript.completed",
                json!({"callId": id, "object": "callTranscript",
                "createdAt": "2022-01-24T19:23:00.000Z", "duration": 55, "status": "completed",
                "dialogue": [{"content": "Hi", "start": 0.5, "end": 1.0, "identifier": "+18005550100", "userId": null}]}),
            ),
        ]
    }

    /// Every order of `n` items.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut all = Vec::new();
        for rest in permutations(n - 1) {
            for position in 0..=rest.len() {
                let mut order = rest.clone();
                order.insert(position, n - 1);
                all.push(order);
            }
        }
        all
    }

    async fn every_order_of_a_calls_events_converges<R: Records>(records: &R) {
        let orders = permutations(5);
        assert_eq!(orders.len(), 120);
        let mut calls = Vec::new();
        for (index, order) in orders.iter().enumerate() {
            let id = format!("AC{index:04}");
            let events = call_events(&id);
            for &n in order {
                apply(records, &events[n]).await;
            }
            calls.push(records.call(&id).await.expect("read").expect("projected"));
        }
        let first = &calls[0];
        assert!(calls.iter().all(|call| call == first), "orders disagree");
        assert_eq!(first.status.as_deref(), Some("completed"));
        assert_eq!(first.outcome.as_deref(), Some("answered"));
        assert_eq!(first.duration_s, Some(55));
        assert_eq!(first.conversation_key.as_deref(), Some("PN1|+18005550100"));
        assert_eq!(first.recordings, ["https://storage.example/rec.mp3"]);
        assert_eq!(first.summary.as_deref(), Some(r#"["Booked bay 2"]"#));
        assert_eq!(first.next_steps.as_deref(), Some(r#"["Confirm by text"]"#));
        assert!(
            first
                .transcript
                .as_deref()
                .is_some_and(|dialogue| dialogue.contains("\"content\":\"Hi\""))
        );
        assert!(first.times_ms.1.is_some() && first.times_ms.2.is_some());
    }

    async fn a_missed_call_with_its_voicemail_in_either_order<R: Records>(records: &R) {
        let completed = |id: &str| {
            json!({"id": format!("EV{id}c"), "apiVersion": "2026-03-30", "createdAt": "2026-04-13T12:11:00Z",
            "type": "call.completed", "data": {"resource": {"id": id, "direction": "incoming", "status": "unanswered",
            "createdAt": "2026-04-13T12:10:00Z", "answeredAt": null, "completedAt": "2026-04-13T12:10:30Z", "duration": null,
            "hasVoicemail": true}, "context": {"orgId": "OR1", "phoneNumberId": "PN1",
            "participants": {"workspace": ["+15550000001"], "external": ["+15550000002"], "resolution": "available"}}}})
        };
        let voicemail = |id: &str| {
            json!({"id": format!("EV{id}v"), "apiVersion": "2026-03-30", "createdAt": "2026-04-13T12:11:30Z",
            "type": "call.voicemail.completed", "data": {"resource": {"id": "ACvm", "voicemailId": "VM1", "callId": id,
            "direction": "incoming", "duration": 12, "from": "+15550000002", "to": "+15550000001", "transcript": null,
            "recordingUrl": "https://files.example/vm.mp3", "createdAt": "2026-04-13T12:11:30Z", "updatedAt": "2026-04-13T12:11:30Z"},
            "context": {"orgId": "OR1"}}})
        };
        apply(records, &completed("ACma")).await;
        apply(records, &voicemail("ACma")).await;
        apply(records, &voicemail("ACmb")).await;
        apply(records, &completed("ACmb")).await;
        let a = records.call("ACma").await.expect("read").expect("a");
        let b = records.call("ACmb").await.expect("read").expect("b");
        assert_eq!(a, b);
        assert_eq!(a.outcome.as_deref(), Some("missed"));
        assert_eq!(
            a.voicemail,
            (true, Some("https://files.example/vm.mp3".to_owned()))
        );
    }

    async fn message_status_never_regresses_and_keeps_its_history<R: Records>(records: &R) {
        let event = |n: u32, id: &str, kind: &str, status: &str| {
            json!({"id": format!("EV{id}{n}"), "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T12:00:00Z", "type": kind, "data": {"object": {"id": id, "object": "message",
            "from": "+15555550100", "to": ["+15555550123"], "direction": "outgoing", "text": "See you at 6", "status": status,
            "createdAt": "2026-04-13T11:59:00Z", "userId": "US1", "phoneNumberId": "PN1"}}})
        };
        // Delivered, then a late "failed" report; and the reverse order.
        apply(records, &event(1, "ACx", "message.delivered", "delivered")).await;
        apply(records, &event(2, "ACx", "message.failed", "failed")).await;
        apply(records, &event(2, "ACy", "message.failed", "failed")).await;
        apply(records, &event(1, "ACy", "message.delivered", "delivered")).await;
        let x = records.message("ACx").await.expect("read").expect("x");
        let y = records.message("ACy").await.expect("read").expect("y");
        assert_eq!(x.status.as_deref(), Some("delivered"));
        assert_eq!(x.history, ["delivered", "failed"]);
        assert_eq!(x.body.as_deref(), Some("See you at 6"));
        assert_eq!(
            (&x.status, &x.history, &x.body),
            (&y.status, &y.history, &y.body)
        );
        assert_eq!(y.conversation_key.as_deref(), Some("PN1|+15555550123"));
        assert!(records.message("ACnone").await.expect("read").is_none());
    }

    /// A contact's life in the 2026-03-30 shape: created, renamed with a new number, deleted.
    pub fn contact_events(id: &str) -> Vec<Value> {
        let version = |n: usize, kind: &str, updated: &str, name: &str, phone: &str| {
            json!({"id": format!("EV{id}-{n}"), "apiVersion": "2026-03-30", "createdAt": updated, "type": kind,
                "data": {"resource": {"id": id, "firstName": name, "lastName": null, "company": null, "role": null,
                    "location": null, "source": null, "externalId": "crm-1", "emails": [],
                    "phoneNumbers": [{"value": phone, "type": "phone-number"}], "customFields": [],
                    "createdAt": "2026-04-01T00:00:00Z", "updatedAt": updated},
                    "context": {"orgId": "OR1", "userId": "US1", "sharedWithIds": []}, "links": {"quo": null}}})
        };
        vec![
            version(
                0,
                "contact.updated",
                "2026-04-01T00:00:00Z",
                "Pat",
                "+1 (555) 555-0100",
            ),
            version(
                1,
                "contact.updated",
                "2026-04-02T00:00:00Z",
                "Patricia",
                "+15555550199",
            ),
            version(
                2,
                "contact.deleted",
                "2026-04-03T00:00:00Z",
                "Patricia",
                "+15555550199",
            ),
        ]
    }

    async fn contacts_converge_and_are_found_by_number<R: Records>(records: &R) {
        let by_phone = |phone: &'static str| async move {
            records.contacts_by_phone(phone).await.expect("read")
        };
        // Without the deletion: every order ends on the latest version and its number.
        for (index, order) in permutations(2).iter().enumerate() {
            let id = format!("live{index}");
            let events = contact_events(&id);
            for &n in order {
                apply(records, &events[n]).await;
            }
        }
        assert_eq!(by_phone("+15555550199").await, ["live0", "live1"]);
        assert!(
            by_phone("+15555550100").await.is_empty(),
            "the old number left"
        );
        // With the deletion, in every order (an old update after the deletion changes nothing).
        for (index, order) in permutations(3).iter().enumerate() {
            let id = format!("gone{index}");
            let events = contact_events(&id);
            for &n in order {
                apply(records, &events[n]).await;
            }
        }
        assert_eq!(
            by_phone("+15555550199").await,
            ["live0", "live1"],
            "deleted contacts are not found"
        );
        // A number entered with punctuation is found by its E.164 form.
        apply(records, &contact_events("fmt")[0]).await;
        assert_eq!(by_phone("+15555550100").await, ["fmt"]);
    }

    async fn conversations_keep_the_latest_activity_and_first_id<R: Records>(records: &R) {
        let message = |n: u32, minute: u32, conversation: Option<&str>| {
            json!({"id": format!("EVcv{n}"), "object": "event", "apiVersion": "v4",
            "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "type": "message.received",
            "data": {"object": {"id": format!("ACcv{n}"), "object": "message", "from": "+15555550777",
            "to": ["+15555550001"], "direction": "incoming", "text": "Hello", "status": "received",
            "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "phoneNumberId": "PN7",
            "conversationId": conversation}}})
        };
        apply(records, &message(1, 30, None)).await;
        apply(records, &message(2, 10, Some("CN9"))).await;
        apply(records, &message(3, 20, Some("CN2"))).await;
        let conversation = records
            .conversation("PN7|+15555550777")
            .await
            .expect("read")
            .expect("projected");
        assert_eq!(conversation.phone_number_id, "PN7");
        assert_eq!(conversation.participants, r#"["+15555550777"]"#);
        assert_eq!(conversation.openphone_id.as_deref(), Some("CN2"));
        assert_eq!(
            crate::ingest::from_unix_ms(conversation.last_activity_ms),
            Some(time::macros::datetime!(2026-04-13 12:30 UTC))
        );
        assert!(
            records
                .conversation("PN7|nobody")
                .await
                .expect("read")
                .is_none()
        );
    }

    async fn keywords_keep_a_consent_ledger_and_flags<R: Records>(records: &R) {
        let inbound = |n: u32, minute: u32, text: &str| {
            json!({"id": format!("EVk{n}"), "object": "event", "apiVersion": "v4",
            "createdAt": format!("2026-04-13T13:{minute:02}:00Z"), "type": "message.received",
            "data": {"object": {"id": format!("ACk{n}"), "object": "message", "from": "+15555550888",
            "to": ["+15555550001"], "direction": "incoming", "text": text, "status": "received",
            "createdAt": format!("2026-04-13T13:{minute:02}:00Z"), "phoneNumberId": "PN1"}}})
        };
        // START (13:05) arrives before the STOP it follows (13:00).
        apply(records, &inbound(2, 5, "start")).await;
        apply(records, &inbound(1, 0, " STOP ")).await;
        let history = records.consent_history("+15555550888").await.expect("read");
        let entries: Vec<(&str, &str, &str)> = history
            .iter()
            .map(|e| (e.message_id.as_str(), e.action.as_str(), e.keyword.as_str()))
            .collect();
        assert_eq!(
            entries,
            [("ACk1", "opt_out", "STOP"), ("ACk2", "opt_in", "START")]
        );
        assert!(!records.is_opted_out("+15555550888").await.expect("read"));
        apply(records, &inbound(3, 10, "Stop!")).await;
        assert!(records.is_opted_out("+15555550888").await.expect("read"));
        assert!(!records.is_opted_out("+15555550999").await.expect("read"));
        // A longer message that mentions a keyword is flagged, not an opt-out.
        apply(records, &inbound(4, 20, "Please stop calling after 6pm")).await;
        apply(records, &inbound(5, 15, "Can we end early?")).await;
        let flags = records.review_flags().await.expect("read");
        let flagged: Vec<&str> = flags.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(flagged, ["ACk4", "ACk5"], "newest first");
        assert!(flags[0].2.contains("STOP"), "{flags:?}");
        assert_eq!(
            records
                .consent_history("+15555550888")
                .await
                .expect("read")
                .len(),
            3
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_records_pass_the_conformance_suite() {
        conformance::run(MemoryRecords::new()).await;
    }

    #[tokio::test]
    async fn the_memory_outbox_passes_the_conformance_suite() {
        crate::compliance::outbox_conformance::run(MemoryRecords::new()).await;
    }

    #[tokio::test]
    async fn the_memory_media_jobs_pass_the_conformance_suite() {
        crate::media::conformance::run(MemoryRecords::new()).await;
    }

    #[tokio::test]
    async fn the_memory_health_checks_pass_the_conformance_suite() {
        crate::health_check::conformance::run(MemoryRecords::new()).await;
    }

    #[tokio::test]
    async fn side_effects_are_kept_for_their_stores() {
        let records = MemoryRecords::new();
        let receipt = Change::CampaignResponse {
            phone: "+15555550100".to_owned(),
            at_ms: 1,
            opt_out: false,
        };
        records
            .apply(std::slice::from_ref(&receipt))
            .await
            .unwrap_or_default();
        assert_eq!(records.side_effects(), [receipt]);
    }
}
