//! Workspace-wide reads of the dated 2026-03-30 API (`Quo-Api-Version: 2026-03-30`):
//! `GET /messages` (which, unlike v1, carries `media[]`) and `GET /calls`.
//!
//! The 2026-03-30 OpenAPI document was not available to this crate; these types follow
//! OpenPhone's documentation of the same resources (the 2026-03-30 webhook payloads and
//! reference pages). Fields beyond the id are optional and unknown fields are ignored, so a
//! shape that differs in detail still reads.

use openphone_types::{
    CallId, CallStatus, ConversationId, Direction, MessageId, MessageStatus, PhoneAddress,
    PhoneNumberId, UserId,
};
use serde::Deserialize;
use time::OffsetDateTime;

/// A message from the workspace-wide read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkspaceMessage {
    /// The message id.
    pub id: MessageId,
    /// Incoming or outgoing.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// Attachments (always present in this API; empty when none).
    #[serde(default)]
    pub media: Vec<WorkspaceMedia>,
    /// Status (adds `failed` to the v1 values).
    #[serde(default)]
    pub status: Option<MessageStatus>,
    /// The sender.
    #[serde(default)]
    pub from: Option<PhoneAddress>,
    /// The recipients.
    #[serde(default)]
    pub to: Vec<PhoneAddress>,
    /// The workspace number.
    #[serde(default)]
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation.
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// The user.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// An attachment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct WorkspaceMedia {
    /// Where to download it. Copy the file.
    pub url: String,
    /// MIME type, when known.
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
}

/// A call from the workspace-wide read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkspaceCall {
    /// The call id.
    pub id: CallId,
    /// Incoming or outgoing.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Status (`answered`, `unanswered`, `forwarded`, ...).
    #[serde(default)]
    pub status: Option<CallStatus>,
    /// When it was answered.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// Length in seconds.
    #[serde(default)]
    pub duration: Option<u32>,
    /// Whether a voicemail was left.
    #[serde(default)]
    pub has_voicemail: Option<bool>,
    /// The workspace number.
    #[serde(default)]
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation.
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// The user.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The participants.
    #[serde(default)]
    pub participants: Vec<PhoneAddress>,
}

/// Parameters of the workspace-wide reads: a creation-time window and the page size.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct WorkspaceQuery {
    /// Only items created after (`createdAt[gt]`).
    pub created_after: Option<OffsetDateTime>,
    /// Only items created before (`createdAt[lt]`).
    pub created_before: Option<OffsetDateTime>,
    /// Page size, 1 to 50 (default 50 here).
    pub limit: Option<u32>,
}
