//! Webhooks managed through `/v1/webhooks` (the legacy `openphone-signature` kind).

use std::fmt;

use openphone_types::{OrgId, UserId, WebhookId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

openphone_types::string_enum! {
    /// Whether a webhook delivers.
    WebhookStatus {
        /// Delivering.
        Enabled = "enabled",
        /// Paused.
        Disabled = "disabled",
    }
}

/// A webhook's signing key. `Debug` never shows it; [`SigningKey::expose`] does.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SigningKey(String);

impl SigningKey {
    /// The key, to configure a verifier with (`openphone_webhooks::SigningSecret::legacy`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// A v1 webhook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Webhook {
    /// The webhook id (`WH…`).
    pub id: WebhookId,
    /// Its owner.
    pub user_id: UserId,
    /// The workspace.
    pub org_id: OrgId,
    /// Label.
    pub label: Option<String>,
    /// Enabled or disabled.
    pub status: WebhookStatus,
    /// Where deliveries go.
    pub url: String,
    /// The signing key.
    pub key: SigningKey,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it was deleted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// The events it delivers.
    pub events: Vec<String>,
    /// The phone number ids it covers, or `["*"]` for all.
    pub resource_ids: Vec<String>,
}

/// The four kinds of v1 webhook, each with its own endpoint and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// `message.received`, `message.delivered`.
    Messages,
    /// `call.completed`, `call.ringing`, `call.recording.completed`.
    Calls,
    /// `call.summary.completed`.
    CallSummaries,
    /// `call.transcript.completed`.
    CallTranscripts,
}

impl WebhookKind {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Messages => "/v1/webhooks/messages",
            Self::Calls => "/v1/webhooks/calls",
            Self::CallSummaries => "/v1/webhooks/call-summaries",
            Self::CallTranscripts => "/v1/webhooks/call-transcripts",
        }
    }

    /// The events this kind can deliver.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Self::Messages => &["message.received", "message.delivered"],
            Self::Calls => &["call.completed", "call.ringing", "call.recording.completed"],
            Self::CallSummaries => &["call.summary.completed"],
            Self::CallTranscripts => &["call.transcript.completed"],
        }
    }
}

/// A webhook to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewWebhook {
    /// Which kind (endpoint) it is.
    #[serde(skip)]
    pub kind: WebhookKind,
    /// Where deliveries go.
    pub url: String,
    /// The events, all of this kind.
    pub events: Vec<String>,
    /// Phone number ids to cover; absent for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_ids: Option<Vec<String>>,
    /// The owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Initial status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<WebhookStatus>,
}

impl NewWebhook {
    /// A webhook of `kind` delivering every event of its kind to `url`, for all numbers.
    pub fn new(kind: WebhookKind, url: impl Into<String>) -> Self {
        Self {
            kind,
            url: url.into(),
            events: kind
                .events()
                .iter()
                .map(|event| (*event).to_owned())
                .collect(),
            resource_ids: None,
            user_id: None,
            label: None,
            status: None,
        }
    }

    /// Sets the label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}
