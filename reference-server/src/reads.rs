//! The management API's reads: the raw log, conversations with their timelines, and counts.
//!
//! Every listing is keyset-paginated on an index: newest first, resuming strictly after the
//! last row of the previous page, so rows written meanwhile neither repeat nor shift pages.
//!
//! [`Reads`] is the port for the reads over the records: the conversation list with search,
//! one conversation, its timeline, the activity feed, read marks, the contact directory, the
//! campaigns' prior-communication check, the reconciliation's possibly failed sends, what a
//! record of some kind is held, and the records' counts. [`Store`] implements it in SQL on
//! SQLite and PostgreSQL, [`MemoryRecords`] over the records it keeps in memory;
//! [`conformance::run`] is the suite both pass. The raw log's listing is
//! [`crate::event_log::EventLog::list`]; [`Store::stats`] adds the log's count to
//! [`Reads::counts`].

use std::cmp::Reverse;
use std::future::Future;

use time::OffsetDateTime;

use crate::contacts::ContactRecord;
use crate::records::{Memory, MemoryRecords};
use crate::store::{Arg, Store, StoreError, StoredDelivery};

/// The conversation reads of the management API and the inbox.
pub trait Reads: Clone + Send + Sync + 'static {
    /// Conversations by latest activity, newest first: at most `limit` after the
    /// `(activity, key)` cursor, showing `campaigns` as asked, matching `search` (a
    /// substring of a participant's number, or of a live contact's name or company when one
    /// of the contact's numbers takes part) when given. Matching ignores the case of ASCII
    /// letters only: other letters match as written, so every backend agrees.
    fn conversations(
        &self,
        search: Option<&str>,
        campaigns: CampaignMessages,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ConversationSummary>, StoreError>> + Send;

    /// One conversation as listed, by key. Its last message is the latest dated one.
    fn conversation_summary(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ConversationSummary>, StoreError>> + Send;

    /// A conversation's messages and calls, newest first (undated ones as time 0): at most
    /// `limit` after the `(created, id)` cursor.
    fn timeline(
        &self,
        key: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<TimelineEntry>, StoreError>> + Send;

    /// Dated messages and calls across conversations, newest first: at most `limit` after the
    /// `(created, id)` cursor, matching `filter`.
    fn activity(
        &self,
        filter: &ActivityFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ActivityEntry>, StoreError>> + Send;

    /// Marks a conversation read through its latest inbound message (a mark never moves
    /// back): `Some(OpenPhone's conversation id, when known)`, or `None` when there is no such
    /// conversation.
    fn mark_read(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Option<String>>, StoreError>> + Send;

    /// Live contacts by id: at most `limit` after `after`, matching `search` (a substring of
    /// a name, company or number; ASCII letters in any case, others as written; `%` and `_`
    /// literal) when given.
    fn contacts(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ContactRecord>, StoreError>> + Send;

    /// A live contact by id.
    fn contact(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContactRecord>, StoreError>> + Send;

    /// Whether a conversation with `phone` (E.164) among its participants holds a message or
    /// call created before `before_ms` (a campaign's prior-communication check).
    fn communicated_before(
        &self,
        phone: &str,
        before_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Outgoing messages created in `[from_ms, until_ms)` that never reached a final status
    /// (delivered, failed, undelivered): possibly failed, since legacy webhooks have no
    /// failure event. At most 100 ids, oldest first (ties by id).
    fn possibly_failed(
        &self,
        from_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Counts of the records (`GET /api/v1/stats` adds the raw log's).
    fn counts(&self) -> impl Future<Output = Result<RecordCounts, StoreError>> + Send;

    /// Whether the records hold `id` of `kind` (the reconciliation's check of what is
    /// missing): a `message`; a `contact` (deleted ones too); a `call` whose status is known;
    /// a call's `summary`, `transcript` or `recording` (with or without its call); any other
    /// kind is a call with a voicemail.
    fn holds(&self, kind: &str, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Counts of the normalized records, for [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordCounts {
    /// Calls.
    pub calls: i64,
    /// Conversations.
    pub conversations: i64,
    /// Media downloads that gave up.
    pub media_failed: i64,
    /// Media downloads still to do.
    pub media_pending: i64,
    /// Media files copied into the blob store.
    pub media_stored: i64,
    /// Messages.
    pub messages: i64,
    /// Numbers whose latest consent entry is an opt-out.
    pub opted_out: i64,
}

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// `<phone number id>|<participants>`.
    pub key: String,
    /// Our number.
    pub phone_number_id: String,
    /// The other participants (JSON array text).
    pub participants: String,
    /// OpenPhone's id, when known.
    pub openphone_id: Option<String>,
    /// Last activity, unix milliseconds.
    pub last_activity_ms: i64,
    /// Inbound messages after the read mark.
    pub unread: i64,
    /// The latest message.
    pub last_message: Option<LastMessage>,
}

/// The latest message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastMessage {
    /// Its id.
    pub id: String,
    /// `incoming` or `outgoing`.
    pub direction: Option<String>,
    /// Its text.
    pub text: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_ms: Option<i64>,
}

/// One entry of a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The campaign that sent the message, for a campaign message.
    pub campaign_id: Option<String>,
    /// `message` or `call`.
    pub kind: String,
    /// The message or call id.
    pub id: String,
    /// Creation time, unix milliseconds (0 when not reported yet).
    pub created_ms: i64,
    /// `incoming` or `outgoing`.
    pub direction: Option<String>,
    /// The current status.
    pub status: Option<String>,
    /// A message's text.
    pub body: Option<String>,
    /// A message's media (JSON array text).
    pub media: Option<String>,
    /// A call's outcome.
    pub outcome: Option<String>,
    /// A call's duration in seconds.
    pub duration_s: Option<i64>,
}

/// One entry of the activity feed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityEntry {
    /// `message` or `call`.
    pub kind: String,
    /// The message or call id.
    pub id: String,
    /// Its conversation.
    pub conversation_key: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_ms: i64,
    /// `incoming` or `outgoing`.
    pub direction: Option<String>,
    /// Current status.
    pub status: Option<String>,
    /// A message's text.
    pub body: Option<String>,
    /// A call's outcome (`missed`, `answered`, ...).
    pub outcome: Option<String>,
    /// A call's duration in seconds.
    pub duration_s: Option<i64>,
    /// Whether a call has a voicemail (1) or not (0).
    pub has_voicemail: i64,
    /// The campaign that sent the message, for a campaign message.
    pub campaign_id: Option<String>,
}

/// Filters of the activity feed.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    /// Only inbound activity (customer responses, incoming calls).
    pub incoming_only: bool,
    /// Only `message`, `call`, `missed` (missed calls) or `voicemail` (calls with one).
    pub kind: Option<String>,
    /// Created at or after, unix milliseconds.
    pub since_ms: Option<i64>,
    /// Created before, unix milliseconds.
    pub until_ms: Option<i64>,
    /// Conversations with this participant (E.164).
    pub phone: Option<String>,
    /// Conversations with one of this contact's numbers.
    pub contact_id: Option<String>,
    /// Which campaign messages to show.
    pub campaigns: CampaignMessages,
}

/// Which outgoing campaign messages a listing shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignMessages {
    /// Hide them (the default): listings show conversations with people, not broadcasts.
    #[default]
    Hide,
    /// Show them with everything else.
    Include,
    /// Show only them: conversations holding campaign messages and nothing else (not one
    /// that holds nothing).
    Only,
}

impl CampaignMessages {
    fn as_str(self) -> &'static str {
        match self {
            CampaignMessages::Hide => "hide",
            CampaignMessages::Include => "include",
            CampaignMessages::Only => "only",
        }
    }
}

/// Counts over the whole store (`GET /api/v1/stats`). Fields are in alphabetical order, the
/// order of the keys in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Calls.
    pub calls: i64,
    /// Conversations.
    pub conversations: i64,
    /// Raw deliveries in the log.
    pub events: i64,
    /// Media downloads that gave up.
    pub media_failed: i64,
    /// Media downloads still to do.
    pub media_pending: i64,
    /// Media files copied into the blob store.
    pub media_stored: i64,
    /// Messages.
    pub messages: i64,
    /// Numbers currently opted out.
    pub opted_out: i64,
}

impl Stats {
    /// The answer of `GET /api/v1/stats`: `events` raw deliveries and the records' counts.
    pub fn new(events: i64, records: RecordCounts) -> Self {
        let RecordCounts {
            calls,
            conversations,
            media_failed,
            media_pending,
            media_stored,
            messages,
            opted_out,
        } = records;
        Self {
            calls,
            conversations,
            events,
            media_failed,
            media_pending,
            media_stored,
            messages,
            opted_out,
        }
    }
}

type ConversationRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const CONVERSATION_COLUMNS: &str = "c.conversation_key, c.phone_number_id, c.participants, c.openphone_id, c.last_activity_ms, \
    (SELECT COUNT(*) FROM messages m WHERE m.conversation_key = c.conversation_key AND m.direction = 'incoming' AND COALESCE(m.created_ms, 0) > c.read_through_ms), \
    l.id, l.direction, l.body, l.created_ms";

/// The latest dated message of `c`, as a lateral-free join both backends plan on the
/// `(conversation_key, created_ms)` index. Undated messages (a status report that came before
/// the message) are left out: the backends would sort them differently (PostgreSQL puts
/// nulls first in descending order, SQLite last).
const LAST_MESSAGE_JOIN: &str = "LEFT JOIN messages l ON l.id = (SELECT m.id FROM messages m \
    WHERE m.conversation_key = c.conversation_key AND m.created_ms IS NOT NULL \
    ORDER BY m.created_ms DESC, m.id DESC LIMIT 1)";

fn summary(row: ConversationRow) -> ConversationSummary {
    ConversationSummary {
        key: row.0,
        phone_number_id: row.1,
        participants: row.2,
        openphone_id: row.3,
        last_activity_ms: row.4,
        unread: row.5,
        last_message: row.6.map(|id| LastMessage {
            id,
            direction: row.7,
            text: row.8,
            created_ms: row.9,
        }),
    }
}

impl Store {
    /// The raw log, newest first: at most `limit` deliveries with ids below `before`, of
    /// `event_type` when given.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn events(
        &self,
        event_type: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            OffsetDateTime,
            OffsetDateTime,
            Vec<u8>,
        );
        let columns = "id, delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body";
        let before = before.unwrap_or(i64::MAX);
        let rows: Vec<Row> = match event_type {
            Some(event_type) => {
                self.fetch_all(
                    &format!("SELECT {columns} FROM webhook_deliveries WHERE event_type = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                    &[event_type.into(), before.into(), limit.max(0).into()],
                )
                .await?
            }
            None => {
                self.fetch_all(
                    &format!("SELECT {columns} FROM webhook_deliveries WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                    &[before.into(), limit.max(0).into()],
                )
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| StoredDelivery {
                id: r.0,
                delivery_key: r.1,
                scheme: r.2,
                event_id: r.3,
                event_type: r.4,
                parse_error: r.5,
                signed_at: r.6,
                received_at: r.7,
                body: r.8,
            })
            .collect())
    }

    /// Conversations by latest activity: at most `limit` after the `(activity, key)` cursor,
    /// matching `search` (a substring of a participant's number, or of a contact's name whose
    /// number takes part; ASCII letters in any case) when given.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn conversations(
        &self,
        search: Option<&str>,
        campaigns: CampaignMessages,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let (after_ms, after_key) = after.unwrap_or((i64::MAX, String::new()));
        let mut sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c {LAST_MESSAGE_JOIN} \
             WHERE (c.last_activity_ms < $1 OR (c.last_activity_ms = $1 AND c.conversation_key < $2 AND $2 <> ''))"
        );
        // A conversation is a campaign's when all it holds is campaign messages.
        let has_other = "(EXISTS (SELECT 1 FROM messages m WHERE m.conversation_key = c.conversation_key \
             AND NOT EXISTS (SELECT 1 FROM campaign_recipients cr WHERE cr.message_id = m.id)) \
             OR EXISTS (SELECT 1 FROM calls k WHERE k.conversation_key = c.conversation_key))";
        match campaigns {
            CampaignMessages::Include => {}
            CampaignMessages::Hide => sql.push_str(&format!(" AND {has_other}")),
            // Campaign messages and nothing else: at least one message, none of them other.
            CampaignMessages::Only => sql.push_str(&format!(
                " AND NOT {has_other} AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_key = c.conversation_key)"
            )),
        }
        let mut args: Vec<Arg> = vec![after_ms.into(), after_key.into(), limit.max(0).into()];
        if let Some(search) = search {
            let pattern = like_pattern(search);
            sql.push_str(
                " AND (lower(c.participants COLLATE \"C\") LIKE $4 ESCAPE '\\' OR EXISTS (SELECT 1 FROM contacts ct \
                 JOIN contact_phones cp ON cp.contact_id = ct.id WHERE ct.deleted = 0 \
                 AND lower((COALESCE(ct.first_name, '') || ' ' || COALESCE(ct.last_name, '') || ' ' || COALESCE(ct.company, '')) COLLATE \"C\") LIKE $4 ESCAPE '\\' \
                 AND strpos(c.participants, '\"' || cp.phone || '\"') > 0))",
            );
            args.push(pattern.into());
        }
        sql.push_str(" ORDER BY c.last_activity_ms DESC, c.conversation_key DESC LIMIT $3");
        let rows: Vec<ConversationRow> = self.fetch_all(&sql, &args).await?;
        Ok(rows.into_iter().map(summary).collect())
    }

    /// One conversation by key.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn conversation(&self, key: &str) -> Result<Option<ConversationSummary>, StoreError> {
        let row: Option<ConversationRow> = self
            .fetch_optional(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations c {LAST_MESSAGE_JOIN} WHERE c.conversation_key = $1"
                ),
                &[key.into()],
            )
            .await?;
        Ok(row.map(summary))
    }

    /// A conversation's messages and calls as one timeline, newest first: at most `limit`
    /// entries after the `(created, id)` cursor.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn timeline(
        &self,
        key: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        type Row = (
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
        );
        let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
        let rows: Vec<Row> = self
            .fetch_all(
                "SELECT kind, id, created_ms, direction, status, body, media, outcome, duration_s, campaign_id FROM ( \
                 SELECT 'message' AS kind, id, COALESCE(created_ms, 0) AS created_ms, direction, status, body, media, \
                 CAST(NULL AS TEXT) AS outcome, CAST(NULL AS BIGINT) AS duration_s, \
                 (SELECT cr.campaign_id FROM campaign_recipients cr WHERE cr.message_id = messages.id LIMIT 1) AS campaign_id \
                 FROM messages WHERE conversation_key = $1 \
                 UNION ALL \
                 SELECT 'call', id, COALESCE(created_ms, 0), direction, status, CAST(NULL AS TEXT), CAST(NULL AS TEXT), outcome, duration_s, \
                 CAST(NULL AS TEXT) FROM calls WHERE conversation_key = $1) t \
                 WHERE t.created_ms < $2 OR (t.created_ms = $2 AND t.id < $3 AND $3 <> '') \
                 ORDER BY t.created_ms DESC, t.id DESC LIMIT $4",
                &[key.into(), after_ms.into(), after_id.into(), limit.max(0).into()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| TimelineEntry {
                kind: r.0,
                id: r.1,
                created_ms: r.2,
                direction: r.3,
                status: r.4,
                body: r.5,
                media: r.6,
                outcome: r.7,
                duration_s: r.8,
                campaign_id: r.9,
            })
            .collect())
    }

    /// Messages and calls across conversations, newest first: at most `limit` after the
    /// `(created, id)` cursor, matching `filter`. Entries not yet dated are left out.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn activity(
        &self,
        filter: &ActivityFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
        let kind = filter.kind.clone().unwrap_or_default();
        self.fetch_all(
            "SELECT kind, id, conversation_key, created_ms, direction, status, body, outcome, duration_s, has_voicemail, campaign_id FROM ( \
             SELECT 'message' AS kind, id, conversation_key, created_ms, direction, status, body, \
             CAST(NULL AS TEXT) AS outcome, CAST(NULL AS BIGINT) AS duration_s, CAST(0 AS BIGINT) AS has_voicemail, \
             (SELECT cr.campaign_id FROM campaign_recipients cr WHERE cr.message_id = messages.id LIMIT 1) AS campaign_id \
             FROM messages WHERE created_ms IS NOT NULL AND $4 IN ('', 'message') \
             UNION ALL \
             SELECT 'call', id, conversation_key, created_ms, direction, status, CAST(NULL AS TEXT), outcome, duration_s, \
             CAST(has_voicemail AS BIGINT), CAST(NULL AS TEXT) FROM calls WHERE created_ms IS NOT NULL AND $4 IN ('', 'call', 'missed', 'voicemail') \
             AND ($4 <> 'missed' OR outcome = 'missed') AND ($4 <> 'voicemail' OR has_voicemail = 1)) t \
             WHERE (t.created_ms < $1 OR (t.created_ms = $1 AND t.id < $2 AND $2 <> '')) \
             AND ($3 = 0 OR t.direction = 'incoming') \
             AND t.created_ms >= $5 AND t.created_ms < $6 \
             AND ($7 = '' OR strpos(replace(COALESCE(t.conversation_key, ''), '|', ',') || ',', ',' || $7 || ',') > 0) \
             AND ($8 = '' OR EXISTS (SELECT 1 FROM contact_phones cp WHERE cp.contact_id = $8 \
                  AND strpos(replace(COALESCE(t.conversation_key, ''), '|', ',') || ',', ',' || cp.phone || ',') > 0)) \
             AND ($10 = 'include' OR ($10 = 'hide' AND t.campaign_id IS NULL) OR ($10 = 'only' AND t.campaign_id IS NOT NULL)) \
             ORDER BY t.created_ms DESC, t.id DESC LIMIT $9",
            &[
                after_ms.into(),
                after_id.into(),
                i64::from(filter.incoming_only).into(),
                kind.into(),
                filter.since_ms.unwrap_or(i64::MIN).into(),
                filter.until_ms.unwrap_or(i64::MAX).into(),
                filter.phone.clone().unwrap_or_default().into(),
                filter.contact_id.clone().unwrap_or_default().into(),
                limit.max(0).into(),
                filter.campaigns.as_str().into(),
            ],
        )
        .await
    }

    /// Counts of everything stored: the raw log's and the records'.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let events = self.delivery_count().await?;
        let counts = Reads::counts(self).await?;
        Ok(Stats::new(events, counts))
    }
}

impl Reads for Store {
    async fn conversations(
        &self,
        search: Option<&str>,
        campaigns: CampaignMessages,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        Store::conversations(self, search, campaigns, after, limit).await
    }

    async fn conversation_summary(
        &self,
        key: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        Store::conversation(self, key).await
    }

    async fn timeline(
        &self,
        key: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        Store::timeline(self, key, after, limit).await
    }

    async fn activity(
        &self,
        filter: &ActivityFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        Store::activity(self, filter, after, limit).await
    }

    async fn mark_read(&self, key: &str) -> Result<Option<Option<String>>, StoreError> {
        Store::mark_read(self, key).await
    }

    async fn contacts(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let pattern = search.map_or_else(String::new, like_pattern);
        self.fetch_all(
            &format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.deleted = 0 AND c.id > $1 AND ($2 = '' OR \
                 lower((COALESCE(c.first_name, '') || ' ' || COALESCE(c.last_name, '') || ' ' || COALESCE(c.company, '')) COLLATE \"C\") LIKE $2 ESCAPE '\\' \
                 OR EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id AND lower(p.phone COLLATE \"C\") LIKE $2 ESCAPE '\\')) \
                 ORDER BY c.id LIMIT $3"
            ),
            &[
                after.unwrap_or_default().into(),
                pattern.into(),
                limit.max(0).into(),
            ],
        )
        .await
    }

    async fn contact(&self, id: &str) -> Result<Option<ContactRecord>, StoreError> {
        self.fetch_optional(
            &format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1 AND c.deleted = 0"),
            &[id.into()],
        )
        .await
    }

    async fn communicated_before(&self, phone: &str, before_ms: i64) -> Result<bool, StoreError> {
        let found: Option<(i64,)> = self
            .fetch_optional(
                "SELECT CAST(1 AS BIGINT) FROM conversations c WHERE strpos(c.participants, $1) > 0 AND (\
                   EXISTS (SELECT 1 FROM messages m WHERE m.conversation_key = c.conversation_key AND m.created_ms < $2) \
                   OR EXISTS (SELECT 1 FROM calls k WHERE k.conversation_key = c.conversation_key AND k.created_ms < $2)) \
                 LIMIT 1",
                &[format!("\"{phone}\"").into(), before_ms.into()],
            )
            .await?;
        Ok(found.is_some())
    }

    async fn possibly_failed(
        &self,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self
            .fetch_all(
                "SELECT id FROM messages WHERE direction = 'outgoing' AND status_rank < 4 \
                 AND created_ms >= $1 AND created_ms < $2 ORDER BY created_ms, id LIMIT 100",
                &[from_ms.into(), until_ms.into()],
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn counts(&self) -> Result<RecordCounts, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .fetch_optional(
                "SELECT (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM calls)",
                &[],
            )
            .await?;
        let (conversations, messages, calls) = row.unwrap_or_default();
        let media: Option<(i64, i64, i64, i64)> = self
            .fetch_optional(
                "SELECT (SELECT COUNT(*) FROM media WHERE status = 'stored'), \
                 (SELECT COUNT(*) FROM media WHERE status = 'failed'), \
                 (SELECT COUNT(*) FROM media WHERE status = 'pending'), \
                 (SELECT COUNT(*) FROM (SELECT phone, MAX(at_ms) AS at_ms FROM consent_ledger GROUP BY phone) latest \
                  WHERE (SELECT action FROM consent_ledger c WHERE c.phone = latest.phone AND c.at_ms = latest.at_ms \
                  ORDER BY c.id DESC LIMIT 1) = 'opt_out')",
                &[],
            )
            .await?;
        let (media_stored, media_failed, media_pending, opted_out) = media.unwrap_or_default();
        Ok(RecordCounts {
            calls,
            conversations,
            media_failed,
            media_pending,
            media_stored,
            messages,
            opted_out,
        })
    }

    async fn holds(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let sql = match kind {
            "message" => "SELECT COUNT(*) FROM messages WHERE id = $1",
            "call" => "SELECT COUNT(*) FROM calls WHERE id = $1 AND status IS NOT NULL",
            "contact" => "SELECT COUNT(*) FROM contacts WHERE id = $1",
            "summary" => "SELECT COUNT(*) FROM call_summaries WHERE call_id = $1",
            "transcript" => "SELECT COUNT(*) FROM call_transcripts WHERE call_id = $1",
            "recording" => "SELECT COUNT(*) FROM call_recordings WHERE call_id = $1",
            _ => "SELECT COUNT(*) FROM calls WHERE id = $1 AND has_voicemail = 1",
        };
        let (count,): (i64,) = self
            .fetch_optional(sql, &[id.into()])
            .await?
            .unwrap_or((0,));
        Ok(count > 0)
    }
}

const CONTACT_COLUMNS: &str = "id, first_name, last_name, company, content, updated_ms";

/// A `LIKE` pattern for a substring: lowercased (ASCII letters only), with `\`, `%` and `_`
/// escaped.
fn like_pattern(search: &str) -> String {
    format!(
        "%{}%",
        search
            .to_ascii_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

impl MemoryRecords {
    /// Records that campaign `campaign_id` sent message `message_id`: what a campaign
    /// recipient row with a message id says in SQL, for the reads' campaign filters.
    pub fn sent_by_campaign(&self, message_id: &str, campaign_id: &str) {
        self.with(|memory| {
            memory
                .campaign_messages
                .insert(message_id.to_owned(), campaign_id.to_owned());
        });
    }
}

/// A contact as read: its names and company from its stored version.
fn contact_record(id: &str, contact: &crate::records::StoredContact) -> ContactRecord {
    let content: serde_json::Value = serde_json::from_str(&contact.content).unwrap_or_default();
    let field = |name: &str| content[name].as_str().map(str::to_owned);
    ContactRecord {
        id: id.to_owned(),
        first_name: field("first_name"),
        last_name: field("last_name"),
        company: field("company"),
        content: contact.content.clone(),
        updated_ms: contact.updated_ms,
    }
}

/// Whether `needle` (ASCII-lowercased) is in the contact's "first last company", as the SQL
/// searches compare it.
fn name_matches(record: &ContactRecord, needle: &str) -> bool {
    let part = |field: &Option<String>| field.as_deref().unwrap_or("").to_owned();
    format!(
        "{} {} {}",
        part(&record.first_name),
        part(&record.last_name),
        part(&record.company)
    )
    .to_ascii_lowercase()
    .contains(needle)
}

/// At most `limit` of `entries`, a page's worth.
fn page<T>(entries: impl Iterator<Item = T>, limit: i64) -> Vec<T> {
    entries.take(usize::try_from(limit).unwrap_or(0)).collect()
}

/// Whether `(at, id)` comes after the cursor in newest-first order.
fn after_cursor(at: i64, id: &str, after: Option<&(i64, String)>) -> bool {
    match after {
        None => true,
        Some((after_at, after_id)) => {
            at < *after_at || (at == *after_at && !after_id.is_empty() && id < after_id.as_str())
        }
    }
}

impl Memory {
    fn summary(&self, key: &str) -> Option<ConversationSummary> {
        let conversation = self.conversations.get(key)?;
        let read_through = self.read_through.get(key).copied().unwrap_or(0);
        let messages = self
            .messages
            .iter()
            .filter(|(_, message)| message.conversation_key.as_deref() == Some(key));
        let unread = messages
            .clone()
            .filter(|(_, message)| {
                message.direction.as_deref() == Some("incoming")
                    && message.created_ms.unwrap_or(0) > read_through
            })
            .count();
        let last = messages
            .filter_map(|(id, message)| Some((message.created_ms?, id, message)))
            .max_by_key(|(created_ms, id, _)| (*created_ms, *id))
            .map(|(_, id, message)| (id, message));
        Some(ConversationSummary {
            key: key.to_owned(),
            phone_number_id: conversation.phone_number_id.clone(),
            participants: conversation.participants.clone(),
            openphone_id: conversation.openphone_id.clone(),
            last_activity_ms: conversation.last_activity_ms,
            unread: i64::try_from(unread).unwrap_or(i64::MAX),
            last_message: last.map(|(id, message)| LastMessage {
                id: id.clone(),
                direction: message.direction.clone(),
                text: message.body.clone(),
                created_ms: message.created_ms,
            }),
        })
    }

    /// The campaign that sent message `id`: one marked with
    /// [`MemoryRecords::sent_by_campaign`], else one in the attached campaign store.
    fn campaign_of(
        &self,
        campaigns: Option<&sms_campaigns::MemoryStore>,
        id: &str,
    ) -> Option<String> {
        self.campaign_messages.get(id).cloned().or_else(|| {
            campaigns
                .and_then(|campaigns| campaigns.campaign_of_message(id))
                .map(|campaign| campaign.0)
        })
    }

    /// Whether the conversation holds anything but campaign messages.
    fn has_other(&self, campaigns: Option<&sms_campaigns::MemoryStore>, key: &str) -> bool {
        self.messages.iter().any(|(id, message)| {
            message.conversation_key.as_deref() == Some(key)
                && self.campaign_of(campaigns, id).is_none()
        }) || self
            .calls
            .values()
            .any(|call| call.conversation_key.as_deref() == Some(key))
    }

    /// Whether a live contact whose name matches `needle` (lowercase) has a number among the
    /// participants.
    fn contact_matches(&self, participants: &str, needle: &str) -> bool {
        self.contacts.iter().any(|(id, contact)| {
            if contact.deleted {
                return false;
            }
            name_matches(&contact_record(id, contact), needle)
                && self.contact_phones.iter().any(|(contact, phone)| {
                    contact == id && participants.contains(&format!("\"{phone}\""))
                })
        })
    }
}

/// Whether `phone` is one of the participants of the conversation `key`
/// (`<phone number id>|<number>,<number>...`): the whole number, not a part of a longer one.
fn has_participant(key: &str, phone: &str) -> bool {
    key.split_once('|')
        .is_some_and(|(_, participants)| participants.split(',').any(|number| number == phone))
}

impl Reads for MemoryRecords {
    async fn conversations(
        &self,
        search: Option<&str>,
        campaigns: CampaignMessages,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let attached = self.campaigns.as_ref();
        Ok(self.with(|memory| {
            let needle = search.map(str::to_ascii_lowercase);
            // Sorted and paged on the cursor's keys; only the page is summarized.
            let mut found: Vec<(i64, &String)> = memory
                .conversations
                .iter()
                .filter(|(key, conversation)| {
                    after_cursor(conversation.last_activity_ms, key, after.as_ref())
                })
                .filter(|(key, _)| match campaigns {
                    CampaignMessages::Include => true,
                    CampaignMessages::Hide => memory.has_other(attached, key),
                    CampaignMessages::Only => {
                        !memory.has_other(attached, key)
                            && memory.messages.values().any(|message| {
                                message.conversation_key.as_deref() == Some(key.as_str())
                            })
                    }
                })
                .filter(|(_, conversation)| {
                    needle.as_deref().is_none_or(|needle| {
                        conversation
                            .participants
                            .to_ascii_lowercase()
                            .contains(needle)
                            || memory.contact_matches(&conversation.participants, needle)
                    })
                })
                .map(|(key, conversation)| (conversation.last_activity_ms, key))
                .collect();
            found.sort_by_key(|found| Reverse(*found));
            page(found.into_iter(), limit)
                .into_iter()
                .filter_map(|(_, key)| memory.summary(key))
                .collect()
        }))
    }

    async fn conversation_summary(
        &self,
        key: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        Ok(self.with(|memory| memory.summary(key)))
    }

    async fn timeline(
        &self,
        key: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let attached = self.campaigns.as_ref();
        Ok(self.with(|memory| {
            let in_conversation = |of: &Option<String>| of.as_deref() == Some(key);
            let messages = memory
                .messages
                .iter()
                .filter(|(_, message)| in_conversation(&message.conversation_key))
                .map(|(id, message)| TimelineEntry {
                    campaign_id: memory.campaign_of(attached, id),
                    kind: "message".to_owned(),
                    id: id.clone(),
                    created_ms: message.created_ms.unwrap_or(0),
                    direction: message.direction.clone(),
                    status: message.status.clone(),
                    body: message.body.clone(),
                    media: Some(message.media.clone()),
                    outcome: None,
                    duration_s: None,
                });
            let calls = memory
                .calls
                .iter()
                .filter(|(_, call)| in_conversation(&call.conversation_key))
                .map(|(id, call)| TimelineEntry {
                    campaign_id: None,
                    kind: "call".to_owned(),
                    id: id.clone(),
                    created_ms: call.created_ms.unwrap_or(0),
                    direction: call.direction.clone(),
                    status: call.status.clone(),
                    body: None,
                    media: None,
                    outcome: call.outcome.clone(),
                    duration_s: call.duration_s,
                });
            let mut entries: Vec<TimelineEntry> = messages
                .chain(calls)
                .filter(|entry| after_cursor(entry.created_ms, &entry.id, after.as_ref()))
                .collect();
            entries.sort_by_key(|entry| Reverse((entry.created_ms, entry.id.clone())));
            page(entries.into_iter(), limit)
        }))
    }

    async fn activity(
        &self,
        filter: &ActivityFilter,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        let attached = self.campaigns.as_ref();
        Ok(self.with(|memory| {
            let kind = filter.kind.as_deref().unwrap_or("");
            let messages = memory
                .messages
                .iter()
                .filter(|_| matches!(kind, "" | "message"))
                .filter_map(|(id, message)| {
                    Some(ActivityEntry {
                        kind: "message".to_owned(),
                        id: id.clone(),
                        conversation_key: message.conversation_key.clone(),
                        created_ms: message.created_ms?,
                        direction: message.direction.clone(),
                        status: message.status.clone(),
                        body: message.body.clone(),
                        outcome: None,
                        duration_s: None,
                        has_voicemail: 0,
                        campaign_id: memory.campaign_of(attached, id),
                    })
                });
            let calls = memory
                .calls
                .iter()
                .filter(|(_, call)| match kind {
                    "" | "call" => true,
                    "missed" => call.outcome.as_deref() == Some("missed"),
                    "voicemail" => call.has_voicemail,
                    _ => false,
                })
                .filter_map(|(id, call)| {
                    Some(ActivityEntry {
                        kind: "call".to_owned(),
                        id: id.clone(),
                        conversation_key: call.conversation_key.clone(),
                        created_ms: call.created_ms?,
                        direction: call.direction.clone(),
                        status: call.status.clone(),
                        body: None,
                        outcome: call.outcome.clone(),
                        duration_s: call.duration_s,
                        has_voicemail: i64::from(call.has_voicemail),
                        campaign_id: None,
                    })
                });
            let phone = filter.phone.as_deref().unwrap_or("");
            let contact = filter.contact_id.as_deref().unwrap_or("");
            let mut entries: Vec<ActivityEntry> = messages
                .chain(calls)
                .filter(|entry| after_cursor(entry.created_ms, &entry.id, after.as_ref()))
                .filter(|entry| {
                    !filter.incoming_only || entry.direction.as_deref() == Some("incoming")
                })
                .filter(|entry| {
                    entry.created_ms >= filter.since_ms.unwrap_or(i64::MIN)
                        && entry.created_ms < filter.until_ms.unwrap_or(i64::MAX)
                })
                .filter(|entry| {
                    let key = entry.conversation_key.as_deref().unwrap_or("");
                    (phone.is_empty() || has_participant(key, phone))
                        && (contact.is_empty()
                            || memory
                                .contact_phones
                                .iter()
                                .any(|(id, number)| id == contact && has_participant(key, number)))
                })
                .filter(|entry| match filter.campaigns {
                    CampaignMessages::Include => true,
                    CampaignMessages::Hide => entry.campaign_id.is_none(),
                    CampaignMessages::Only => entry.campaign_id.is_some(),
                })
                .collect();
            entries.sort_by_key(|entry| Reverse((entry.created_ms, entry.id.clone())));
            page(entries.into_iter(), limit)
        }))
    }

    async fn mark_read(&self, key: &str) -> Result<Option<Option<String>>, StoreError> {
        Ok(self.with(|memory| {
            let openphone_id = memory.conversations.get(key)?.openphone_id.clone();
            let latest = memory
                .messages
                .values()
                .filter(|message| {
                    message.conversation_key.as_deref() == Some(key)
                        && message.direction.as_deref() == Some("incoming")
                })
                .filter_map(|message| message.created_ms)
                .max()
                .unwrap_or(0);
            let mark = memory.read_through.entry(key.to_owned()).or_insert(0);
            *mark = (*mark).max(latest);
            Some(openphone_id)
        }))
    }

    async fn contacts(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let needle = search.map(str::to_ascii_lowercase);
        Ok(self.with(|memory| {
            let found = memory
                .contacts
                .iter()
                .filter(|(id, contact)| {
                    !contact.deleted && after.is_none_or(|after| id.as_str() > after)
                })
                .map(|(id, contact)| contact_record(id, contact))
                .filter(|record| {
                    needle.as_deref().is_none_or(|needle| {
                        name_matches(record, needle)
                            || memory.contact_phones.iter().any(|(id, phone)| {
                                *id == record.id && phone.to_ascii_lowercase().contains(needle)
                            })
                    })
                });
            page(found, limit)
        }))
    }

    async fn contact(&self, id: &str) -> Result<Option<ContactRecord>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .contacts
                .get(id)
                .filter(|contact| !contact.deleted)
                .map(|contact| contact_record(id, contact))
        }))
    }

    async fn communicated_before(&self, phone: &str, before_ms: i64) -> Result<bool, StoreError> {
        let quoted = format!("\"{phone}\"");
        Ok(self.with(|memory| {
            let before = |of: &Option<String>, created: Option<i64>, key: &str| {
                of.as_deref() == Some(key) && created.is_some_and(|at| at < before_ms)
            };
            memory
                .conversations
                .iter()
                .filter(|(_, conversation)| conversation.participants.contains(&quoted))
                .any(|(key, _)| {
                    memory
                        .messages
                        .values()
                        .any(|message| before(&message.conversation_key, message.created_ms, key))
                        || memory
                            .calls
                            .values()
                            .any(|call| before(&call.conversation_key, call.created_ms, key))
                })
        }))
    }

    async fn possibly_failed(
        &self,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|memory| {
            let mut found: Vec<(i64, &String)> = memory
                .messages
                .iter()
                .filter(|(_, message)| {
                    message.direction.as_deref() == Some("outgoing") && message.status_rank < 4
                })
                .filter_map(|(id, message)| Some((message.created_ms?, id)))
                .filter(|(created, _)| (from_ms..until_ms).contains(created))
                .collect();
            found.sort();
            page(found.into_iter().map(|(_, id)| id.clone()), 100)
        }))
    }

    async fn counts(&self) -> Result<RecordCounts, StoreError> {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(self.with(|memory| {
            let media = |status: &str| {
                count(
                    memory
                        .media
                        .iter()
                        .filter(|job| job.record.status == status)
                        .count(),
                )
            };
            // Each number's latest entry by time (equal times: the later arrival).
            let mut latest: std::collections::BTreeMap<&str, (i64, &str)> =
                std::collections::BTreeMap::new();
            for entry in &memory.consent {
                let slot = latest
                    .entry(entry.phone.as_str())
                    .or_insert((entry.at_ms, entry.action.as_str()));
                if entry.at_ms >= slot.0 {
                    *slot = (entry.at_ms, entry.action.as_str());
                }
            }
            RecordCounts {
                calls: count(memory.calls.len()),
                conversations: count(memory.conversations.len()),
                media_failed: media("failed"),
                media_pending: media("pending"),
                media_stored: media("stored"),
                messages: count(memory.messages.len()),
                opted_out: count(
                    latest
                        .values()
                        .filter(|(_, action)| *action == "opt_out")
                        .count(),
                ),
            }
        }))
    }

    async fn holds(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|memory| memory.holds(kind, id)))
    }
}

/// The suite every [`Reads`] implementation must pass; the crate runs it on memory, SQLite
/// and PostgreSQL.
pub mod conformance {
    use std::future::Future;

    use openphone_webhooks::Event;
    use serde_json::{Value, json};

    use super::{ActivityFilter, CampaignMessages, Reads};
    use crate::projection::{Change, OwnNumbers, changes};
    use crate::records::{MemoryRecords, Records};
    use crate::store::Store;

    /// What the suite needs besides the reads: records to read, and campaign messages.
    pub trait Fixture: Reads + Records + knowledge_export::CallDetails {
        /// Records that campaign `campaign_id` sent message `message_id`.
        fn sent_by_campaign(
            &self,
            message_id: &str,
            campaign_id: &str,
        ) -> impl Future<Output = ()> + Send;
    }

    impl Fixture for MemoryRecords {
        async fn sent_by_campaign(&self, message_id: &str, campaign_id: &str) {
            MemoryRecords::sent_by_campaign(self, message_id, campaign_id);
        }
    }

    impl Fixture for Store {
        /// A recipient row as the campaign engine leaves it once the message is sent.
        async fn sent_by_campaign(&self, message_id: &str, campaign_id: &str) {
            self.execute(
                "INSERT INTO campaign_recipients (campaign_id, position, contact_id, phone, variant, state, message_id, updated_ms) \
                 VALUES ($1, (SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1), 'ct', '', 'A', 'sent', $2, 0)",
                &[campaign_id.into(), message_id.into()],
            )
            .await
            .expect("recipient row");
        }
    }

    const LINE: &str = "+15555550100";
    const ROBIN: &str = "+15555550101";
    const SAM: &str = "+15555550102";
    const BROADCAST: &str = "+15555550103";

    /// Unix milliseconds of 2026-04-13 at `hh:mm` UTC.
    fn at(hh_mm: &str) -> i64 {
        let time = time::OffsetDateTime::parse(
            &format!("2026-04-13T{hh_mm}:00Z"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("a time");
        crate::ingest::unix_ms(time)
    }

    async fn apply<R: Records>(records: &R, event: Value) {
        let event = Event::parse(event.to_string().as_bytes()).expect("a valid event");
        records
            .apply(&changes(&event, &OwnNumbers::default()))
            .await
            .expect("apply");
    }

    /// A message on line PN1, in the legacy shape.
    fn message(id: &str, incoming: bool, other: &str, text: &str, hh_mm: &str) -> Value {
        let (from, to) = if incoming {
            (other, LINE)
        } else {
            (LINE, other)
        };
        json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
            "createdAt": format!("2026-04-13T{hh_mm}:00Z"),
            "type": if incoming { "message.received" } else { "message.delivered" },
            "data": {"object": {"id": id, "object": "message", "from": from, "to": [to],
                "direction": if incoming { "incoming" } else { "outgoing" }, "text": text,
                "status": if incoming { "received" } else { "delivered" },
                "createdAt": format!("2026-04-13T{hh_mm}:00Z"), "userId": "US1", "phoneNumberId": "PN1"}}})
    }

    /// A contact version (2026-03-30 shape).
    fn contact(id: &str, first: &str, company: Option<&str>, phone: &str, deleted: bool) -> Value {
        let updated = if deleted {
            "2026-04-02T00:00:00Z"
        } else {
            "2026-04-01T00:00:00Z"
        };
        json!({"id": format!("EV{id}{deleted}"), "apiVersion": "2026-03-30", "createdAt": updated,
            "type": if deleted { "contact.deleted" } else { "contact.updated" },
            "data": {"resource": {"id": id, "firstName": first, "lastName": "Diaz", "company": company,
                "role": null, "location": null, "source": null, "externalId": null, "emails": [],
                "phoneNumbers": [{"value": phone, "type": "phone-number"}], "customFields": [],
                "createdAt": "2026-04-01T00:00:00Z", "updatedAt": updated},
                "context": {"orgId": "OR1", "userId": "US1", "sharedWithIds": []}, "links": {"quo": null}}})
    }

    fn ids<T>(entries: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
        entries.iter().map(|entry| id(entry).to_owned()).collect()
    }

    /// Runs every case on `store`, which must hold no records.
    pub async fn run<R: Fixture>(store: R) {
        let robin = format!("PN1|{ROBIN}");
        let sam = format!("PN1|{SAM}");
        let broadcast = format!("PN1|{BROADCAST}");
        // Robin: two inbound messages around our reply. Sam: one inbound message at the same
        // time as Robin's last (ties break on key and id), and a deleted contact. The broadcast number: one campaign message and nothing else.
        apply(
            &store,
            message("AC1", true, ROBIN, "Is bay 3 free at 6?", "10:00"),
        )
        .await;
        apply(
            &store,
            message("AC2", false, ROBIN, "Yes, booked for you", "10:05"),
        )
        .await;
        apply(&store, message("AC3", true, ROBIN, "Thanks!", "10:10")).await;
        apply(
            &store,
            message("AC4", true, SAM, "100% sure_thing", "10:10"),
        )
        .await;
        apply(
            &store,
            message("AC5", false, BROADCAST, "Spring league starts", "11:00"),
        )
        .await;
        store.sent_by_campaign("AC5", "CA1").await;
        apply(
            &store,
            contact("CTrobin", "Robin", Some("Acme Bâtiment"), ROBIN, false),
        )
        .await;
        apply(&store, contact("CTsam", "Sam", None, SAM, false)).await;
        apply(&store, contact("CTsam", "Sam", None, SAM, true)).await;

        // A message known only from a status report (no creation time yet): in the timeline
        // as time 0, never the last message, never in the feed, never unread.
        store
            .apply(&[Change::Message {
                id: "AC0".to_owned(),
                conversation_key: Some(robin.clone()),
                direction: Some("incoming".to_owned()),
                from: Some(ROBIN.to_owned()),
                to: json!([LINE]).to_string(),
                body: None,
                media: "[]".to_owned(),
                status: Some("received".to_owned()),
                status_rank: 1,
                error_code: None,
                created_ms: None,
            }])
            .await
            .expect("apply");

        // The list hides campaign-only conversations by default, newest first.
        let list = store
            .conversations(None, CampaignMessages::Hide, None, 10)
            .await
            .expect("list");
        assert_eq!(ids(&list, |c| &c.key), [sam.clone(), robin.clone()]);
        let first = &list[1];
        assert_eq!(first.phone_number_id, "PN1");
        assert_eq!(first.last_activity_ms, at("10:10"));
        assert_eq!(first.unread, 2, "two inbound messages, none read");
        let last = first.last_message.as_ref().expect("a last message");
        assert_eq!(
            (
                last.id.as_str(),
                last.direction.as_deref(),
                last.text.as_deref()
            ),
            ("AC3", Some("incoming"), Some("Thanks!"))
        );
        assert_eq!(last.created_ms, Some(at("10:10")));
        assert_eq!(
            store
                .conversation_summary(&robin)
                .await
                .expect("read")
                .as_ref(),
            Some(first)
        );
        assert!(
            store
                .conversation_summary("PN1|+1999")
                .await
                .expect("read")
                .is_none()
        );
        let only = store
            .conversations(None, CampaignMessages::Only, None, 10)
            .await
            .expect("list");
        assert_eq!(ids(&only, |c| &c.key), [broadcast.as_str()]);

        // Pages: one at a time, resuming after the last, until none are left.
        let mut pages = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let page = store
                .conversations(None, CampaignMessages::Include, after.clone(), 1)
                .await
                .expect("page");
            let Some(summary) = page.first() else { break };
            assert_eq!(page.len(), 1);
            after = Some((summary.last_activity_ms, summary.key.clone()));
            pages.push(summary.key.clone());
        }
        assert_eq!(pages, [broadcast.clone(), sam.clone(), robin.clone()]);

        // Search: a number's digits, a contact's name or company in any ASCII case (other
        // letters match only as written, alike on every backend); a deleted contact's name
        // finds nothing; `%` and `_` are plain characters.
        for (search, expected) in [
            ("0101", vec![robin.clone()]),
            ("robin", vec![robin.clone()]),
            ("ACME", vec![robin.clone()]),
            ("BâTIMENT", vec![robin.clone()]),
            ("bâtiment", vec![robin.clone()]),
            ("BÂTIMENT", vec![]),
            ("sam", vec![]),
            ("%", vec![]),
            ("_", vec![]),
            ("+1555555010", vec![sam.clone(), robin.clone()]),
        ] {
            let found = store
                .conversations(Some(search), CampaignMessages::Hide, None, 10)
                .await
                .expect("search");
            assert_eq!(ids(&found, |c| &c.key), expected, "search {search:?}");
        }

        // The timeline: newest first, resumable; a campaign message names its campaign.
        let timeline = store.timeline(&robin, None, 10).await.expect("timeline");
        assert_eq!(ids(&timeline, |e| &e.id), ["AC3", "AC2", "AC1", "AC0"]);
        assert_eq!(timeline[3].created_ms, 0);
        assert!(
            timeline
                .iter()
                .all(|e| e.kind == "message" && e.campaign_id.is_none())
        );
        assert_eq!(timeline[1].direction.as_deref(), Some("outgoing"));
        assert_eq!(timeline[1].status.as_deref(), Some("delivered"));
        assert_eq!(timeline[1].body.as_deref(), Some("Yes, booked for you"));
        assert_eq!(timeline[1].created_ms, at("10:05"));
        let rest = store
            .timeline(&robin, Some((at("10:05"), "AC2".to_owned())), 10)
            .await
            .expect("timeline");
        assert_eq!(ids(&rest, |e| &e.id), ["AC1", "AC0"]);
        let sent = store
            .timeline(&broadcast, None, 10)
            .await
            .expect("timeline");
        assert_eq!(sent[0].campaign_id.as_deref(), Some("CA1"));

        // The activity feed and its filters.
        let feed = |filter: ActivityFilter| {
            let store = store.clone();
            async move {
                let entries = store.activity(&filter, None, 10).await.expect("activity");
                ids(&entries, |e| &e.id)
            }
        };
        assert_eq!(
            feed(ActivityFilter::default()).await,
            ["AC4", "AC3", "AC2", "AC1"]
        );
        let incoming = ActivityFilter {
            incoming_only: true,
            ..ActivityFilter::default()
        };
        assert_eq!(feed(incoming).await, ["AC4", "AC3", "AC1"]);
        let window = ActivityFilter {
            since_ms: Some(at("10:00")),
            until_ms: Some(at("10:10")),
            ..ActivityFilter::default()
        };
        assert_eq!(feed(window).await, ["AC2", "AC1"]);
        let by_phone = ActivityFilter {
            phone: Some(SAM.to_owned()),
            ..ActivityFilter::default()
        };
        assert_eq!(feed(by_phone).await, ["AC4"]);
        let by_contact = ActivityFilter {
            contact_id: Some("CTrobin".to_owned()),
            ..ActivityFilter::default()
        };
        assert_eq!(feed(by_contact).await, ["AC3", "AC2", "AC1"]);
        let campaigns = ActivityFilter {
            campaigns: CampaignMessages::Only,
            ..ActivityFilter::default()
        };
        assert_eq!(feed(campaigns).await, ["AC5"]);
        let calls = ActivityFilter {
            kind: Some("call".to_owned()),
            ..ActivityFilter::default()
        };
        assert!(feed(calls).await.is_empty());
        let first_two = store
            .activity(&ActivityFilter::default(), None, 2)
            .await
            .expect("activity");
        let next = store
            .activity(
                &ActivityFilter::default(),
                Some((first_two[1].created_ms, first_two[1].id.clone())),
                2,
            )
            .await
            .expect("activity");
        assert_eq!(ids(&next, |e| &e.id), ["AC2", "AC1"]);

        // Calls join the timeline and the feed; missed and voicemail narrow to their calls.
        for event in crate::records::conformance::call_events("CAcall") {
            apply(&store, event).await;
        }
        let caller = "PN1|+18005550100";
        let call_line = store.timeline(caller, None, 10).await.expect("timeline");
        assert_eq!(ids(&call_line, |e| &e.id), ["CAcall"]);
        assert_eq!(call_line[0].kind, "call");
        assert_eq!(call_line[0].duration_s, Some(55));
        assert_eq!(call_line[0].outcome.as_deref(), Some("answered"));
        let calls = ActivityFilter {
            kind: Some("call".to_owned()),
            ..ActivityFilter::default()
        };
        assert_eq!(feed(calls).await, ["CAcall"]);
        let missed = ActivityFilter {
            kind: Some("missed".to_owned()),
            ..ActivityFilter::default()
        };
        assert!(feed(missed).await.is_empty());

        // Read marks: everything inbound so far is read; a later message is unread again.
        assert_eq!(store.mark_read(&robin).await.expect("mark"), Some(None));
        assert_eq!(store.mark_read(&robin).await.expect("mark"), Some(None));
        assert_eq!(store.mark_read("PN1|+1999").await.expect("mark"), None);
        let read = store.conversation_summary(&robin).await.expect("read");
        assert_eq!(read.map(|c| c.unread), Some(0));
        apply(
            &store,
            message("AC6", true, ROBIN, "One more thing", "10:20"),
        )
        .await;
        let unread = store.conversation_summary(&robin).await.expect("read");
        assert_eq!(unread.map(|c| c.unread), Some(1));

        // A read mark never moves back: AC6 read at 10:20, then re-dated 09:00 (the earliest
        // time wins), so the latest inbound is now 10:10; marking again keeps 10:20, and a
        // message dated 10:15 is read already.
        assert_eq!(store.mark_read(&robin).await.expect("mark"), Some(None));
        apply(
            &store,
            message("AC6", true, ROBIN, "One more thing", "09:00"),
        )
        .await;
        assert_eq!(store.mark_read(&robin).await.expect("mark"), Some(None));
        apply(&store, message("AC7", true, ROBIN, "Also", "10:15")).await;
        let read = store.conversation_summary(&robin).await.expect("read");
        assert_eq!(read.map(|c| c.unread), Some(0));

        // A missed call with a voicemail, on the broadcast number: the missed and voicemail
        // filters find it alone, and the conversation is no longer campaign messages only.
        store
            .apply(&[Change::Call {
                id: "CAmissed".to_owned(),
                conversation_key: Some(broadcast.clone()),
                direction: Some("incoming".to_owned()),
                status: Some("completed".to_owned()),
                status_rank: 3,
                outcome: Some("missed".to_owned()),
                outcome_rank: 1,
                created_ms: Some(at("12:00")),
                answered_ms: None,
                completed_ms: Some(at("12:01")),
                duration_s: Some(0),
                voicemail_url: Some("https://storage.openphone.co/vm.mp3".to_owned()),
                has_voicemail: true,
            }])
            .await
            .expect("missed call");
        for kind in ["missed", "voicemail"] {
            let filter = ActivityFilter {
                kind: Some(kind.to_owned()),
                ..ActivityFilter::default()
            };
            assert_eq!(feed(filter).await, ["CAmissed"], "kind {kind}");
        }
        let voicemail = store
            .activity(
                &ActivityFilter {
                    kind: Some("voicemail".to_owned()),
                    ..ActivityFilter::default()
                },
                None,
                10,
            )
            .await
            .expect("voicemail");
        assert_eq!(
            (voicemail[0].outcome.as_deref(), voicemail[0].has_voicemail),
            (Some("missed"), 1)
        );
        let only = store
            .conversations(None, CampaignMessages::Only, None, 10)
            .await
            .expect("campaign-only conversations");
        assert!(only.is_empty(), "a call is more than campaign messages");
        let shown = store
            .conversations(None, CampaignMessages::Hide, None, 10)
            .await
            .expect("conversations");
        assert!(shown.iter().any(|summary| summary.key == broadcast));

        // The contact directory: live contacts by id, searched like conversations.
        let listed = store.contacts(None, None, 10).await.expect("contacts");
        assert_eq!(ids(&listed, |c| &c.id), ["CTrobin"]);
        assert_eq!(
            (
                listed[0].first_name.as_deref(),
                listed[0].last_name.as_deref(),
                listed[0].company.as_deref()
            ),
            (Some("Robin"), Some("Diaz"), Some("Acme Bâtiment"))
        );
        for (search, expected) in [
            ("robin diaz", vec!["CTrobin"]),
            ("BâTIMENT", vec!["CTrobin"]),
            ("BÂTIMENT", vec![]),
            ("0101", vec!["CTrobin"]),
            ("sam", vec![]),
            ("%", vec![]),
        ] {
            let found = store
                .contacts(Some(search), None, 10)
                .await
                .expect("search");
            assert_eq!(ids(&found, |c| &c.id), expected, "contacts {search:?}");
        }
        assert!(
            store
                .contacts(None, Some("CTrobin"), 10)
                .await
                .expect("after")
                .is_empty()
        );
        for limit in [0, -1] {
            assert!(
                store
                    .contacts(None, None, limit)
                    .await
                    .expect("none")
                    .is_empty()
            );
            assert!(
                store
                    .conversations(None, CampaignMessages::Include, None, limit)
                    .await
                    .expect("none")
                    .is_empty()
            );
            assert!(
                store
                    .timeline(&robin, None, limit)
                    .await
                    .expect("none")
                    .is_empty()
            );
            assert!(
                store
                    .activity(&ActivityFilter::default(), None, limit)
                    .await
                    .expect("none")
                    .is_empty()
            );
        }
        assert_eq!(
            store.contact("CTrobin").await.expect("contact"),
            Some(listed[0].clone())
        );
        assert_eq!(store.contact("CTsam").await.expect("deleted"), None);
        assert_eq!(store.contact("CTnobody").await.expect("unknown"), None);

        // Prior communication: a dated message or call before the time, with the number
        // itself among the participants (not a number it is the prefix of).
        for (phone, before, expected) in [
            // AC6, re-dated 09:00 above, is Robin's earliest.
            (ROBIN, at("09:00"), false),
            (ROBIN, at("09:01"), true),
            (SAM, at("10:11"), true),
            ("+1555555010", at("23:59"), false),
            ("+18005550100", at("00:00"), true),
            ("+19995550000", at("23:59"), false),
        ] {
            assert_eq!(
                store
                    .communicated_before(phone, before)
                    .await
                    .expect("history"),
                expected,
                "{phone} before {before}"
            );
        }

        // Possibly failed: outgoing messages still without a final status, in a window.
        let mut pending = message("AC8", false, SAM, "Still sending?", "13:00");
        pending["data"]["object"]["status"] = json!("sent");
        apply(&store, pending).await;
        let mut queued = message("AC9", false, SAM, "Queued", "13:30");
        queued["data"]["object"]["status"] = json!("queued");
        apply(&store, queued).await;
        assert_eq!(
            store
                .possibly_failed(at("00:00"), at("23:59"))
                .await
                .expect("possibly failed"),
            ["AC8", "AC9"]
        );
        assert_eq!(
            store
                .possibly_failed(at("13:00"), at("13:30"))
                .await
                .expect("window"),
            ["AC8"]
        );

        // Call details for the knowledge export: the call with a summary and a transcript.
        let details = store
            .call_details(&[
                "CAcall".to_owned(),
                "CAmissed".to_owned(),
                "CAnone".to_owned(),
            ])
            .await
            .expect("call details");
        assert_eq!(details.len(), 1, "only calls with something to say");
        let detail = &details["CAcall"];
        assert_eq!(detail.summary, ["Booked bay 2"]);
        assert_eq!(detail.next_steps, ["Confirm by text"]);
        assert_eq!(detail.transcript.len(), 1);
        assert_eq!(detail.transcript[0].text, "Hi");

        // What the records hold, by kind (a summary without its call too; a deleted contact).
        store
            .apply(&[Change::Summary {
                call_id: "CAorphan".to_owned(),
                status: Some("completed".to_owned()),
                status_rank: 2,
                summary: json!(["Left early"]).to_string(),
                next_steps: "[]".to_owned(),
            }])
            .await
            .expect("summary");
        for (kind, id, expected) in [
            ("message", "AC1", true),
            ("message", "ACnone", false),
            ("call", "CAcall", true),
            ("call", "CAorphan", false),
            ("summary", "CAcall", true),
            ("summary", "CAorphan", true),
            ("summary", "CAmissed", false),
            ("transcript", "CAcall", true),
            ("transcript", "CAmissed", false),
            ("recording", "CAcall", true),
            ("recording", "CAmissed", false),
            ("voicemail", "CAmissed", true),
            ("voicemail", "CAcall", false),
            ("contact", "CTrobin", true),
            ("contact", "CTsam", true),
            ("contact", "CTnobody", false),
        ] {
            assert_eq!(
                store.holds(kind, id).await.expect("holds"),
                expected,
                "{kind} {id}"
            );
        }

        // Counts: a STOP makes one opted-out number, a START after it none again.
        apply(&store, message("AC10", true, BROADCAST, "STOP", "14:00")).await;
        let counts = store.counts().await.expect("counts");
        assert_eq!(
            counts,
            super::RecordCounts {
                calls: 2,
                conversations: 4,
                media_failed: 0,
                media_pending: 1,
                media_stored: 0,
                messages: 11,
                opted_out: 1,
            }
        );
        apply(&store, message("AC11", true, BROADCAST, "START", "14:05")).await;
        assert_eq!(store.counts().await.expect("counts").opted_out, 0);

        // A conversation holding nothing (one a group message keyed before a replay moved it
        // to its group, or one imported without its messages) is no campaign's: listed with
        // everything, not among the campaigns' nor the people's.
        let empty = format!("PN1|{LINE}9");
        store
            .apply(&[Change::Conversation {
                key: empty.clone(),
                phone_number_id: "PN1".to_owned(),
                participants: json!([format!("{LINE}9")]).to_string(),
                openphone_id: None,
                activity_ms: at("15:00"),
            }])
            .await
            .expect("apply");
        for (campaigns, listed) in [
            (CampaignMessages::Include, true),
            (CampaignMessages::Only, false),
            (CampaignMessages::Hide, false),
        ] {
            let page = store
                .conversations(None, campaigns, None, 10)
                .await
                .expect("list");
            assert_eq!(
                page.iter().any(|summary| summary.key == empty),
                listed,
                "{campaigns:?}"
            );
        }

        // A stranger whose number starts with Robin's (numbers of different lengths share
        // prefixes in some countries) is not Robin: not found by Robin's name, nor in the
        // feed of Robin's number or contact.
        let stranger = format!("{ROBIN}9");
        apply(
            &store,
            message("AC12", true, &stranger, "Wrong number?", "16:00"),
        )
        .await;
        let found = store
            .conversations(Some("robin"), CampaignMessages::Include, None, 10)
            .await
            .expect("search");
        assert_eq!(ids(&found, |c| &c.key), [robin.as_str()]);
        let by_number = store
            .conversations(Some(&stranger), CampaignMessages::Include, None, 10)
            .await
            .expect("search");
        assert_eq!(ids(&by_number, |c| &c.key), [format!("PN1|{stranger}")]);
        for filter in [
            ActivityFilter {
                phone: Some(ROBIN.to_owned()),
                ..ActivityFilter::default()
            },
            ActivityFilter {
                contact_id: Some("CTrobin".to_owned()),
                ..ActivityFilter::default()
            },
        ] {
            let entries = store.activity(&filter, None, 50).await.expect("activity");
            assert!(entries.iter().any(|e| e.id == "AC1"), "{filter:?}");
            assert!(!entries.iter().any(|e| e.id == "AC12"), "{filter:?}");
        }
        let mut only_stranger = ActivityFilter {
            phone: Some(stranger.clone()),
            ..ActivityFilter::default()
        };
        let entries = store
            .activity(&only_stranger, None, 10)
            .await
            .expect("activity");
        assert_eq!(ids(&entries, |e| &e.id), ["AC12"]);
        only_stranger.phone = Some(ROBIN[..ROBIN.len() - 1].to_owned());
        let entries = store
            .activity(&only_stranger, None, 10)
            .await
            .expect("activity");
        assert!(entries.is_empty(), "a part of a number is no participant");
    }
}

#[cfg(test)]
mod tests {
    use crate::records::MemoryRecords;

    #[tokio::test]
    async fn memory_reads_pass_the_conformance_suite() {
        super::conformance::run(MemoryRecords::new()).await;
    }
}
