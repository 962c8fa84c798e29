//! The management API's reads: the raw log, conversations with their timelines, and counts.
//!
//! Every listing is keyset-paginated on an index: newest first, resuming strictly after the
//! last row of the previous page, so rows written meanwhile neither repeat nor shift pages.

use time::OffsetDateTime;

use crate::store::{Arg, Store, StoreError, StoredDelivery};

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
    /// Show only them.
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

/// The latest message of `c`, as a lateral-free join both backends plan on the
/// `(conversation_key, created_ms)` index.
const LAST_MESSAGE_JOIN: &str = "LEFT JOIN messages l ON l.id = (SELECT m.id FROM messages m \
    WHERE m.conversation_key = c.conversation_key ORDER BY m.created_ms DESC, m.id DESC LIMIT 1)";

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
                    &[event_type.into(), before.into(), limit.into()],
                )
                .await?
            }
            None => {
                self.fetch_all(
                    &format!("SELECT {columns} FROM webhook_deliveries WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                    &[before.into(), limit.into()],
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
    /// number takes part) when given.
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
            CampaignMessages::Only => sql.push_str(&format!(" AND NOT {has_other}")),
        }
        let mut args: Vec<Arg> = vec![after_ms.into(), after_key.into(), limit.into()];
        if let Some(search) = search {
            let pattern = format!(
                "%{}%",
                search
                    .to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            sql.push_str(
                " AND (lower(c.participants) LIKE $4 ESCAPE '\\' OR EXISTS (SELECT 1 FROM contacts ct \
                 JOIN contact_phones cp ON cp.contact_id = ct.id WHERE ct.deleted = 0 \
                 AND lower(COALESCE(ct.first_name, '') || ' ' || COALESCE(ct.last_name, '') || ' ' || COALESCE(ct.company, '')) LIKE $4 ESCAPE '\\' \
                 AND strpos(c.participants, cp.phone) > 0))",
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
                &[key.into(), after_ms.into(), after_id.into(), limit.into()],
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
             AND ($7 = '' OR strpos(COALESCE(t.conversation_key, ''), $7) > 0) \
             AND ($8 = '' OR EXISTS (SELECT 1 FROM contact_phones cp WHERE cp.contact_id = $8 \
                  AND strpos(COALESCE(t.conversation_key, ''), cp.phone) > 0)) \
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
                limit.into(),
                filter.campaigns.as_str().into(),
            ],
        )
        .await
    }

    /// Counts of everything stored.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the read fails.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let row: Option<(i64, i64, i64, i64)> = self
            .fetch_optional(
                "SELECT (SELECT COUNT(*) FROM webhook_deliveries), (SELECT COUNT(*) FROM conversations), \
                 (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM calls)",
                &[],
            )
            .await?;
        let (events, conversations, messages, calls) = row.unwrap_or_default();
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
        Ok(Stats {
            events,
            conversations,
            messages,
            calls,
            media_stored,
            media_failed,
            media_pending,
            opted_out,
        })
    }
}
