//! Conversations.

use openphone_types::{ActivityId, ConversationId, E164, PhoneAddress, PhoneNumberId, UserId};
use serde::Deserialize;
use time::OffsetDateTime;

/// A conversation (v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Conversation {
    /// The assigned user or AI agent.
    pub assigned_to: Option<UserId>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was deleted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// The conversation id (`CN…`).
    pub id: ConversationId,
    /// Time of the last message or call.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity_at: Option<OffsetDateTime>,
    /// The last message or call.
    pub last_activity_id: Option<ActivityId>,
    /// Muted until.
    #[serde(with = "time::serde::rfc3339::option")]
    pub muted_until: Option<OffsetDateTime>,
    /// Display name.
    pub name: Option<String>,
    /// The other participants.
    pub participants: Vec<PhoneAddress>,
    /// The workspace number.
    pub phone_number_id: PhoneNumberId,
    /// Snoozed until.
    #[serde(with = "time::serde::rfc3339::option")]
    pub snoozed_until: Option<OffsetDateTime>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// Which workspace numbers to list conversations of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberFilter {
    /// By phone number id.
    Id(PhoneNumberId),
    /// By number.
    Number(E164),
}

impl std::fmt::Display for NumberFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => f.write_str(id.as_str()),
            Self::Number(number) => f.write_str(number.as_str()),
        }
    }
}

/// Parameters of `GET /v1/conversations` (most recent first).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ListConversations {
    /// Only conversations on these numbers (up to 100).
    pub phone_numbers: Vec<NumberFilter>,
    /// Only conversations of this user.
    pub user_id: Option<UserId>,
    /// Created after.
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    pub created_before: Option<OffsetDateTime>,
    /// Updated after (the importer's and reconciler's cursor).
    pub updated_after: Option<OffsetDateTime>,
    /// Updated before.
    pub updated_before: Option<OffsetDateTime>,
    /// Leave out inactive conversations.
    pub exclude_inactive: Option<bool>,
    /// Page size, 1 to 100 (default 100 here).
    pub max_results: Option<u32>,
}

impl ListConversations {
    /// Every conversation of the workspace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only conversations on this number.
    #[must_use]
    pub fn number(mut self, number: NumberFilter) -> Self {
        self.phone_numbers.push(number);
        self
    }

    /// Only conversations updated after `time`.
    #[must_use]
    pub fn updated_after(mut self, time: OffsetDateTime) -> Self {
        self.updated_after = Some(time);
        self
    }
}
