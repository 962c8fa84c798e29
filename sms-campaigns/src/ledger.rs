//! The per-recipient send ledger: one row per recipient, frozen at activation, recording what
//! happened to each.

use std::collections::BTreeMap;

use openphone_types::E164;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{CampaignId, ContactId, Variant};

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    /// Waiting for a run.
    Pending,
    /// Taken by a run (under a lease), not attempted yet.
    Claimed,
    /// The send is being attempted (under a lease): if the worker dies here, the outcome is
    /// unknown and is checked with the API before anything else happens.
    Sending,
    /// OpenPhone accepted the message.
    Sent,
    /// The carrier delivered it.
    Delivered,
    /// It failed; the detail says why. Never retried automatically.
    Failed,
    /// It may or may not have gone out; resolved by looking the message up.
    Ambiguous,
    /// Not sent, for the recorded [`SkipReason`].
    Skipped,
}

impl RecipientState {
    /// Every state, in lifecycle order.
    pub const ALL: [RecipientState; 8] = [
        RecipientState::Pending,
        RecipientState::Claimed,
        RecipientState::Sending,
        RecipientState::Sent,
        RecipientState::Delivered,
        RecipientState::Failed,
        RecipientState::Ambiguous,
        RecipientState::Skipped,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Claimed => "claimed",
            RecipientState::Sending => "sending",
            RecipientState::Sent => "sent",
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "failed",
            RecipientState::Ambiguous => "ambiguous",
            RecipientState::Skipped => "skipped",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        RecipientState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the recipient still needs work (pending, claimed, sending or ambiguous).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RecipientState::Pending
                | RecipientState::Claimed
                | RecipientState::Sending
                | RecipientState::Ambiguous
        )
    }
}

/// Why a recipient was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The number had messages or calls with us before the campaign started: a person
    /// should look (the review list).
    PriorCommunication,
    /// The number opted out (checked at send time).
    OptedOut,
    /// The template needed a field the contact lacks and has no fallback.
    MissingField(String),
    /// The message for this recipient, with the business name and opt-out text, came to this
    /// many characters: more than a message may hold
    /// ([`crate::campaign::MAX_MESSAGE_CHARS`]).
    TooLong(usize),
    /// The campaign was cancelled before this recipient's turn.
    Cancelled,
}

impl SkipReason {
    /// The stored form: `prior_communication`, `opted_out`, `missing_field:NAME`,
    /// `too_long:CHARACTERS`, `cancelled`.
    pub fn to_detail(&self) -> String {
        match self {
            SkipReason::PriorCommunication => "prior_communication".to_owned(),
            SkipReason::OptedOut => "opted_out".to_owned(),
            SkipReason::MissingField(field) => format!("missing_field:{field}"),
            SkipReason::TooLong(chars) => format!("too_long:{chars}"),
            SkipReason::Cancelled => "cancelled".to_owned(),
        }
    }

    /// Parses the stored form.
    pub fn from_detail(text: &str) -> Option<Self> {
        Some(match text {
            "prior_communication" => SkipReason::PriorCommunication,
            "opted_out" => SkipReason::OptedOut,
            "cancelled" => SkipReason::Cancelled,
            other => match other.strip_prefix("too_long:") {
                Some(chars) => SkipReason::TooLong(chars.parse().ok()?),
                None => SkipReason::MissingField(other.strip_prefix("missing_field:")?.to_owned()),
            },
        })
    }
}

/// One recipient of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Recipient {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Place in the ledger (the list order at activation), from 0.
    pub position: u64,
    /// The contact.
    pub contact_id: ContactId,
    /// The number, as it was at activation.
    #[cfg_attr(feature = "utoipa", schema(value_type = String))]
    pub phone: E164,
    /// A or B.
    pub variant: Variant,
    /// What happened.
    pub state: RecipientState,
    /// The reason of a skip ([`SkipReason::to_detail`]), of a failure, or of an ambiguity.
    pub detail: Option<String>,
    /// The engine holding the claim.
    pub worker: Option<String>,
    /// When the claim lapses (Unix seconds).
    pub lease_until: Option<i64>,
    /// The slot (Unix seconds) of the run that claimed it.
    pub slot: Option<i64>,
    /// The text sent (recorded before the attempt, to find the message if the outcome is
    /// unknown).
    pub text: Option<String>,
    /// The OpenPhone message id, once known.
    pub message_id: Option<String>,
    /// When the send was attempted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub attempted_at: Option<OffsetDateTime>,
    /// When the recipient first replied after the send.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub replied_at: Option<OffsetDateTime>,
    /// When the recipient opted out after the send.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub opted_out_at: Option<OffsetDateTime>,
    /// When the row last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

/// A recipient to put in a ledger at activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    /// The contact.
    pub contact_id: ContactId,
    /// The number.
    pub phone: E164,
}

/// The outcome a run records for a recipient it claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// OpenPhone accepted it.
    Sent {
        /// The message id.
        message_id: String,
    },
    /// It failed for sure.
    Failed {
        /// Why.
        reason: String,
    },
    /// It may have gone out.
    Ambiguous {
        /// Why the outcome is unknown.
        reason: String,
    },
    /// Not sent, for this reason.
    Skipped(SkipReason),
    /// The send was attempted but certainly did not go out (the request never left): back
    /// to pending, with the reason as detail.
    Deferred {
        /// Why.
        reason: String,
    },
    /// Back to pending: the run stopped (pause) before its turn, or an ambiguous send was
    /// found not to have gone out.
    Released,
}

/// A campaign's counts, overall and by variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Report {
    /// Counts over every recipient.
    pub total: Counts,
    /// Counts by variant (`A`, `B`).
    pub by_variant: BTreeMap<String, Counts>,
    /// Skips by reason: the stored detail (`missing_field:NAME` per field), `too_long` for
    /// every length.
    pub skipped_by_reason: BTreeMap<String, u64>,
}

/// Recipient counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Counts {
    /// Recipients.
    pub recipients: u64,
    /// Not attempted yet (pending or claimed).
    pub pending: u64,
    /// Accepted by OpenPhone (including those delivered since).
    pub sent: u64,
    /// Delivered.
    pub delivered: u64,
    /// Failed.
    pub failed: u64,
    /// Outcome unknown (sending or ambiguous).
    pub ambiguous: u64,
    /// Skipped.
    pub skipped: u64,
    /// Replied after the send.
    pub replied: u64,
    /// Opted out after the send.
    pub opted_out: u64,
}

impl Report {
    /// Adds `recipient` to the counts.
    pub fn add(&mut self, recipient: &Recipient) {
        let skip_reason = (recipient.state == RecipientState::Skipped)
            .then(|| recipient.detail.as_deref().unwrap_or_default());
        self.add_group(&Group {
            variant: recipient.variant,
            state: recipient.state,
            skip_reason,
            recipients: 1,
            replied: u64::from(recipient.replied_at.is_some()),
            opted_out: u64::from(recipient.opted_out_at.is_some()),
        });
    }

    /// Adds a group of recipients sharing variant, state and skip reason (what a SQL
    /// `GROUP BY` gives).
    pub fn add_group(&mut self, group: &Group<'_>) {
        self.total.add(group);
        self.by_variant
            .entry(group.variant.as_str().to_owned())
            .or_default()
            .add(group);
        if let Some(reason) = group.skip_reason {
            // Too long by however many characters: one reason.
            let reason = match SkipReason::from_detail(reason) {
                Some(SkipReason::TooLong(_)) => "too_long",
                _ => reason,
            };
            *self.skipped_by_reason.entry(reason.to_owned()).or_default() += group.recipients;
        }
    }
}

/// Recipients sharing variant, state and skip reason, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// Their variant.
    pub variant: Variant,
    /// Their state.
    pub state: RecipientState,
    /// The skip reason, for skipped recipients.
    pub skip_reason: Option<&'a str>,
    /// How many.
    pub recipients: u64,
    /// How many replied after the send.
    pub replied: u64,
    /// How many opted out after the send.
    pub opted_out: u64,
}

impl Counts {
    fn add(&mut self, group: &Group<'_>) {
        let n = group.recipients;
        self.recipients += n;
        match group.state {
            RecipientState::Pending | RecipientState::Claimed => self.pending += n,
            RecipientState::Sent => self.sent += n,
            RecipientState::Delivered => {
                self.sent += n;
                self.delivered += n;
            }
            RecipientState::Failed => self.failed += n,
            RecipientState::Sending | RecipientState::Ambiguous => self.ambiguous += n,
            RecipientState::Skipped => self.skipped += n,
        }
        self.replied += group.replied;
        self.opted_out += group.opted_out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_round_trip() {
        for reason in [
            SkipReason::PriorCommunication,
            SkipReason::OptedOut,
            SkipReason::Cancelled,
            SkipReason::MissingField("first_name".into()),
        ] {
            assert_eq!(SkipReason::from_detail(&reason.to_detail()), Some(reason));
        }
        assert_eq!(SkipReason::from_detail("nonsense"), None);
        for state in RecipientState::ALL {
            assert_eq!(RecipientState::parse(state.as_str()), Some(state));
        }
    }
}
