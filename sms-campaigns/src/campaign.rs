//! Campaigns: what to send, to whom, when, and the states a campaign moves through.

use std::fmt;

use openphone_types::E164;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, ListId, Schedule, Template};

/// A campaign's id, assigned by the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CampaignId(pub String);

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Being written; can be edited.
    Draft,
    /// Sending at its scheduled runs.
    Active,
    /// Stopped after the message in flight; resumes at the next scheduled run.
    Paused,
    /// Every recipient has an outcome.
    Completed,
    /// Stopped for good; pending recipients are never sent.
    Cancelled,
}

impl CampaignState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Active => "active",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "draft" => CampaignState::Draft,
            "active" => CampaignState::Active,
            "paused" => CampaignState::Paused,
            "completed" => CampaignState::Completed,
            "cancelled" => CampaignState::Cancelled,
            _ => return None,
        })
    }

    /// Whether a campaign may go from `self` to `to`: draft to active or cancelled; active
    /// to paused, completed or cancelled; paused to active or cancelled.
    pub fn can_become(self, to: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, to),
            (Draft, Active | Cancelled)
                | (Active, Paused | Completed | Cancelled)
                | (Paused, Active | Cancelled)
        )
    }

    /// `Ok` when the transition is allowed, else [`Error::Transition`].
    pub fn check(self, to: CampaignState) -> Result<(), Error> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(Error::Transition { from: self, to })
        }
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a campaign sends: everything but its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CampaignSpec {
    /// A name for people.
    pub name: String,
    /// Message A, a [`Template`].
    pub message_a: String,
    /// Message B for an A/B test: the second half of the recipients get it.
    pub message_b: Option<String>,
    /// The audience.
    pub list_id: ListId,
    /// The number it sends from (one of the workspace's numbers).
    #[cfg_attr(feature = "utoipa", schema(value_type = String))]
    pub sender: E164,
    /// When it sends.
    pub schedule: Schedule,
    /// Opt-out wording appended to every message, such as `Reply STOP to opt out.`.
    pub opt_out_text: Option<String>,
}

/// The longest template accepted (OpenPhone's limit is 1,600 characters per message).
pub const MAX_MESSAGE_CHARS: usize = 1_600;

impl CampaignSpec {
    /// Checks every field; the error names the first bad one.
    pub fn check(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::Invalid("name must not be blank".into()));
        }
        for (field, text) in [
            ("message_a", Some(&self.message_a)),
            ("message_b", self.message_b.as_ref()),
        ] {
            let Some(text) = text else { continue };
            if text.trim().is_empty() {
                return Err(Error::Invalid(format!("{field} must not be blank")));
            }
            if text.chars().count() > MAX_MESSAGE_CHARS {
                return Err(Error::Invalid(format!(
                    "{field} is longer than {MAX_MESSAGE_CHARS} characters"
                )));
            }
            Template::parse(text).map_err(|error| Error::Invalid(format!("{field}: {error}")))?;
        }
        self.schedule.plan()?;
        Ok(())
    }

    /// The template for `variant`.
    pub fn template(&self, variant: Variant) -> Result<Template, Error> {
        match (variant, &self.message_b) {
            (Variant::B, Some(text)) => Template::parse(text),
            _ => Template::parse(&self.message_a),
        }
    }
}

/// A/B variant of a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum Variant {
    /// Message A.
    A,
    /// Message B.
    B,
}

impl Variant {
    /// The variant of the recipient at `position` of `total`: the first half (rounded up)
    /// gets A and the rest B, when there is a message B; everyone gets A otherwise.
    pub fn for_position(position: u64, total: u64, ab: bool) -> Variant {
        if ab && position >= total.div_ceil(2) {
            Variant::B
        } else {
            Variant::A
        }
    }

    /// `"A"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::A => "A",
            Variant::B => "B",
        }
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Campaign {
    /// The id.
    pub id: CampaignId,
    /// What it sends.
    #[serde(flatten)]
    pub spec: CampaignSpec,
    /// Its state.
    pub state: CampaignState,
    /// Why it was paused, when the engine paused it (failure rate) or a person said.
    pub state_reason: Option<String>,
    /// Recipients in its ledger (0 until activated).
    pub recipients: u64,
    /// The last slot (Unix seconds) a run claimed; runs happen only at later slots.
    pub last_slot: Option<i64>,
    /// When it was first activated: communication before this instant puts a recipient on
    /// the review list.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignState::*;

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        let all = [Draft, Active, Paused, Completed, Cancelled];
        let allowed: Vec<(CampaignState, CampaignState)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Draft, Active),
                (Draft, Cancelled),
                (Active, Paused),
                (Active, Completed),
                (Active, Cancelled),
                (Paused, Active),
                (Paused, Cancelled),
            ]
        );
        assert!(matches!(
            Completed.check(Active),
            Err(Error::Transition { .. })
        ));
        for state in all {
            assert_eq!(CampaignState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn the_first_half_gets_a() {
        let variants: Vec<Variant> = (0..5).map(|p| Variant::for_position(p, 5, true)).collect();
        assert_eq!(
            variants,
            vec![Variant::A, Variant::A, Variant::A, Variant::B, Variant::B]
        );
        assert!((0..5).all(|p| Variant::for_position(p, 5, false) == Variant::A));
    }
}
