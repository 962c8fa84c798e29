//! Call events: ringing, answered, missed, forwarded, completed, recording completed, menu
//! selected, and voicemail completed.

use openphone_types::{
    ActivityId, CallId, ContactId, ConversationId, PhoneAddress, PhoneNumberId, UserId, VoicemailId,
};
use time::OffsetDateTime;

use super::message::Media;
use super::raw::{RawContext, RawObject, seconds};
use super::{CallStatus, Direction, EventType, LookupStatus, PayloadFormat, required};
use crate::Error;

/// A phone call, as carried by any payload generation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Call {
    /// The call id (`AC…`).
    pub id: CallId,
    /// Incoming or outgoing; absent from some 2026-03-30 lifecycle events.
    pub direction: Option<Direction>,
    /// The status as sent. Do not read "answered" from it: use [`Call::outcome`].
    pub status: Option<CallStatus>,
    /// What happened to the call, derived from the event, the status and `answeredAt`.
    pub outcome: CallOutcome,
    /// The customers' numbers: legacy `from`/`to` by direction, v4 `participants`, or
    /// 2026-03-30 `context.participants.external`.
    pub external: Vec<PhoneAddress>,
    /// The workspace's numbers on the call, where the payload gives them.
    pub workspace: Vec<PhoneAddress>,
    /// Whether the 2026-03-30 participant lists are reliable (`resolution: available`).
    /// `None` in legacy payloads.
    pub participants_resolved: Option<bool>,
    /// When the call was created.
    pub created_at: Option<OffsetDateTime>,
    /// When it was answered; `None` for a call nobody answered.
    pub answered_at: Option<OffsetDateTime>,
    /// When it ended.
    pub completed_at: Option<OffsetDateTime>,
    /// When the record last changed.
    pub updated_at: Option<OffsetDateTime>,
    /// Length in seconds.
    pub duration: Option<u32>,
    /// Who answered (a user `US…`, or an AI agent `SYU…`).
    pub answered_by: Option<UserId>,
    /// Who placed an outgoing call.
    pub initiated_by: Option<UserId>,
    /// The workspace user the call belongs to.
    pub user_id: Option<UserId>,
    /// The workspace number.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation, when the payload says.
    pub conversation_id: Option<ConversationId>,
    /// Contacts matched to the other party.
    pub contact_ids: Vec<ContactId>,
    /// Whether OpenPhone looked the contacts up (2026-03-30 only).
    pub contact_lookup: Option<LookupStatus>,
    /// The voicemail left on this call (legacy app `call.completed`).
    pub voicemail: Option<Media>,
    /// Whether a voicemail was left (2026-03-30 `call.completed`).
    pub has_voicemail: Option<bool>,
    /// Recordings (legacy `media[]` or 2026-03-30 `recordings[]` of
    /// `call.recording.completed`). Copy them: the URLs are not documented to last.
    pub recordings: Vec<Recording>,
    /// Where a forwarded call came from (a number or a user id).
    pub forwarded_from: Option<String>,
    /// Where it was forwarded to.
    pub forwarded_to: Option<String>,
    /// How the call reached the inbox (`phone-number`, `phone-menu`).
    pub call_route: Option<String>,
    /// `shared`, `private` or `external` (2026-03-30).
    pub phone_number_type: Option<String>,
}

/// What happened to a call, independent of how the payload spells its status.
///
/// Legacy payloads report missed calls as `status: completed` with `answeredAt: null`; this
/// enum reports them as [`CallOutcome::Missed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// Still ringing or connected.
    InProgress,
    /// Answered by a person.
    Answered,
    /// Nobody answered (including calls that went to voicemail).
    Missed,
    /// Forwarded elsewhere.
    Forwarded,
    /// Handled by an AI agent.
    AiHandled,
    /// Failed to connect.
    Failed,
    /// The payload does not say.
    Unknown,
}

/// A recording of a call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Recording {
    /// The recording id, when given.
    pub id: Option<String>,
    /// Where OpenPhone serves the file.
    pub url: String,
    /// Its MIME type.
    pub content_type: Option<String>,
    /// Length in seconds.
    pub duration: Option<u32>,
    /// When the recording started.
    pub start_time: Option<OffsetDateTime>,
}

/// An IVR (phone menu) decision on an incoming call: `call.menu.selected`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallMenuSelection {
    /// The call id.
    pub call_id: CallId,
    /// The digit pressed, as text (`"1"`); `None` on timeout or fall-through.
    pub selection: Option<String>,
    /// The name of the selected option.
    pub selection_name: Option<String>,
    /// How the menu ended (`phone-menu-dial`, `phone-menu-voicemail`, ...).
    pub status_reason: Option<String>,
    /// When the call was created.
    pub created_at: Option<OffsetDateTime>,
    /// When the record last changed.
    pub updated_at: Option<OffsetDateTime>,
    /// The workspace number.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation.
    pub conversation_id: Option<ConversationId>,
    /// The customers' numbers.
    pub external: Vec<PhoneAddress>,
}

/// A voicemail: `call.voicemail.completed` (2026-03-30).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Voicemail {
    /// The voicemail's activity id.
    pub id: ActivityId,
    /// The voicemail id (`VM…`).
    pub voicemail_id: Option<VoicemailId>,
    /// The call it was left on.
    pub call_id: Option<CallId>,
    /// Direction of the call.
    pub direction: Option<Direction>,
    /// Length in seconds.
    pub duration: Option<u32>,
    /// The caller.
    pub from: Option<PhoneAddress>,
    /// The number called.
    pub to: Option<PhoneAddress>,
    /// The transcript; `None` while processing or when unavailable.
    pub transcript: Option<String>,
    /// Where OpenPhone serves the audio. Copy it on receipt.
    pub recording_url: Option<String>,
    /// When the voicemail was created.
    pub created_at: Option<OffsetDateTime>,
    /// When it last changed.
    pub updated_at: Option<OffsetDateTime>,
    /// The workspace user.
    pub user_id: Option<UserId>,
    /// The workspace number.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation.
    pub conversation_id: Option<ConversationId>,
    /// Contacts matched to the caller.
    pub contact_ids: Vec<ContactId>,
}

fn addresses(items: Vec<String>) -> Vec<PhoneAddress> {
    items.into_iter().map(PhoneAddress::from).collect()
}

fn outcome(
    event: &EventType,
    status: Option<&CallStatus>,
    answered_at: Option<OffsetDateTime>,
    ai_handled: bool,
) -> CallOutcome {
    match event {
        EventType::CallRinging => return CallOutcome::InProgress,
        EventType::CallMissed => return CallOutcome::Missed,
        EventType::CallForwarded => return CallOutcome::Forwarded,
        EventType::CallAnswered => return CallOutcome::Answered,
        _ => {}
    }
    if ai_handled || status == Some(&CallStatus::AiHandled) {
        return CallOutcome::AiHandled;
    }
    match status {
        Some(CallStatus::Forwarded) => return CallOutcome::Forwarded,
        Some(CallStatus::Failed) => return CallOutcome::Failed,
        Some(
            CallStatus::Queued
            | CallStatus::Initiated
            | CallStatus::Ringing
            | CallStatus::InProgress,
        ) => return CallOutcome::InProgress,
        _ => {}
    }
    if answered_at.is_some() {
        return CallOutcome::Answered;
    }
    match status {
        Some(
            CallStatus::Completed
            | CallStatus::Unanswered
            | CallStatus::Missed
            | CallStatus::NoAnswer
            | CallStatus::Busy
            | CallStatus::Canceled
            | CallStatus::Abandoned,
        ) => CallOutcome::Missed,
        Some(CallStatus::Answered) => CallOutcome::Answered,
        _ => CallOutcome::Unknown,
    }
}

pub(crate) fn normalize(
    event: &EventType,
    object: RawObject,
    context: RawContext,
    format: PayloadFormat,
    at: &str,
) -> Result<Call, Error> {
    let id = required(object.id, at, "id")?;
    let direction = object.direction.as_deref().map(Direction::from);
    let status = object.status.as_deref().map(CallStatus::from);
    let ai_handled = object
        .ai_handled
        .as_ref()
        .is_some_and(|value| !value.is_null() && value != &serde_json::Value::Bool(false));
    let (external, workspace, participants_resolved) = match (format, context.participants) {
        (PayloadFormat::Resource, Some(participants)) => (
            addresses(participants.external),
            addresses(participants.workspace),
            participants
                .resolution
                .as_deref()
                .map(|resolution| resolution == "available"),
        ),
        (PayloadFormat::Resource, None) => (Vec::new(), Vec::new(), None),
        (PayloadFormat::Object, _) => {
            if let Some(participants) = object.participants {
                (addresses(participants), Vec::new(), None)
            } else {
                // Legacy app payloads: `from` and `to`, oriented by direction.
                let from: Vec<String> = object.from.into_iter().collect();
                let to = object.to.map(|to| to.into_vec()).unwrap_or_default();
                if direction == Some(Direction::Outgoing) {
                    (addresses(to), addresses(from), None)
                } else {
                    (addresses(from), addresses(to), None)
                }
            }
        }
    };
    let mut recordings: Vec<Recording> = object
        .recordings
        .unwrap_or_default()
        .into_iter()
        .filter_map(|raw| {
            Some(Recording {
                id: raw.id,
                url: raw.url.filter(|url| !url.is_empty())?,
                content_type: raw.content_type,
                duration: seconds(raw.duration),
                start_time: raw.start_time,
            })
        })
        .collect();
    recordings.extend(
        Media::list(object.media)
            .into_iter()
            .map(|media| Recording {
                id: None,
                url: media.url,
                content_type: media.content_type,
                duration: media.duration,
                start_time: None,
            }),
    );
    let (contact_ids, contact_lookup) = super::raw::contacts(context.contacts, object.contact_ids);
    Ok(Call {
        id: CallId::new(id),
        outcome: outcome(event, status.as_ref(), object.answered_at, ai_handled),
        direction,
        status,
        external,
        workspace,
        participants_resolved,
        created_at: object.created_at,
        answered_at: object.answered_at,
        completed_at: object.completed_at,
        updated_at: object.updated_at,
        duration: seconds(object.duration),
        answered_by: object
            .answered_by_user_id
            .or(object.answered_by)
            .map(UserId::new),
        initiated_by: object.initiated_by.map(UserId::new),
        user_id: context.user_id.or(object.user_id).map(UserId::new),
        phone_number_id: context
            .phone_number_id
            .or(object.phone_number_id)
            .map(PhoneNumberId::new),
        conversation_id: context
            .conversation_id
            .or(object.conversation_id)
            .map(ConversationId::new),
        contact_ids,
        contact_lookup,
        voicemail: object.voicemail.and_then(Media::from_raw),
        has_voicemail: object.has_voicemail,
        recordings,
        forwarded_from: object.forwarded_from,
        forwarded_to: object.forwarded_to,
        call_route: object.call_route,
        phone_number_type: context.phone_number_type,
    })
}

pub(crate) fn normalize_menu(
    object: RawObject,
    context: RawContext,
    at: &str,
) -> Result<CallMenuSelection, Error> {
    Ok(CallMenuSelection {
        call_id: CallId::new(required(object.id, at, "id")?),
        selection: object.phone_menu_selection,
        selection_name: object.phone_menu_selection_name,
        status_reason: object.status_reason,
        created_at: object.created_at,
        updated_at: object.updated_at,
        phone_number_id: context.phone_number_id.map(PhoneNumberId::new),
        conversation_id: context.conversation_id.map(ConversationId::new),
        external: context
            .participants
            .map(|participants| addresses(participants.external))
            .unwrap_or_default(),
    })
}

pub(crate) fn normalize_voicemail(
    object: RawObject,
    context: RawContext,
    at: &str,
) -> Result<Voicemail, Error> {
    Ok(Voicemail {
        id: ActivityId::new(required(object.id, at, "id")?),
        voicemail_id: object.voicemail_id.map(VoicemailId::new),
        call_id: object.call_id.map(CallId::new),
        direction: object.direction.as_deref().map(Direction::from),
        duration: seconds(object.duration),
        from: object.from.map(PhoneAddress::from),
        to: object
            .to
            .and_then(|to| to.into_vec().into_iter().next())
            .map(PhoneAddress::from),
        transcript: object.transcript,
        recording_url: object.recording_url,
        created_at: object.created_at,
        updated_at: object.updated_at,
        user_id: context.user_id.map(UserId::new),
        phone_number_id: context.phone_number_id.map(PhoneNumberId::new),
        conversation_id: context.conversation_id.map(ConversationId::new),
        contact_ids: context
            .contacts
            .map(|contacts| contacts.ids.into_iter().map(ContactId::new).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn completed_without_answer_is_missed() {
        let completed = Some(CallStatus::Completed);
        assert_eq!(
            outcome(&EventType::CallCompleted, completed.as_ref(), None, false),
            CallOutcome::Missed
        );
        assert_eq!(
            outcome(
                &EventType::CallCompleted,
                completed.as_ref(),
                Some(datetime!(2025-11-25 05:14:12 UTC)),
                false
            ),
            CallOutcome::Answered
        );
        assert_eq!(
            outcome(&EventType::CallCompleted, completed.as_ref(), None, true),
            CallOutcome::AiHandled
        );
        assert_eq!(
            outcome(&EventType::CallRinging, None, None, false),
            CallOutcome::InProgress
        );
        let forwarded = Some(CallStatus::Forwarded);
        assert_eq!(
            outcome(&EventType::CallCompleted, forwarded.as_ref(), None, false),
            CallOutcome::Forwarded
        );
        assert_eq!(
            outcome(&EventType::CallCompleted, None, None, false),
            CallOutcome::Unknown
        );
    }
}
