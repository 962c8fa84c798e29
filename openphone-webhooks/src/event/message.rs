//! Message events: `message.received`, `.delivered`, `.failed`, `.undelivered`.

use openphone_types::{ContactId, ConversationId, MessageId, PhoneAddress, PhoneNumberId, UserId};
use time::OffsetDateTime;

use super::raw::{RawContext, RawMedia, RawObject};
use super::{Direction, LookupStatus, MessageStatus, PayloadFormat, required};
use crate::Error;

/// A text message, as carried by any payload generation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// The message id (`AC…`).
    pub id: MessageId,
    /// Incoming (from a customer) or outgoing.
    pub direction: Direction,
    /// The sender: legacy `from`, or 2026-03-30 `context.senderIdentifier`.
    pub from: Option<PhoneAddress>,
    /// The recipients: legacy `to` (a string or an array), or 2026-03-30
    /// `context.recipientIdentifiers`. Several recipients mean a group message.
    pub to: Vec<PhoneAddress>,
    /// The text: `body` in legacy app payloads, `text` elsewhere.
    pub text: Option<String>,
    /// Attached files (MMS). Copy them on receipt: the URLs are not documented to last.
    pub media: Vec<Media>,
    /// The message status.
    pub status: Option<MessageStatus>,
    /// The carrier's error code on failed and undelivered messages (e.g. `30007`).
    pub error_code: Option<String>,
    /// When the message was created.
    pub created_at: Option<OffsetDateTime>,
    /// The workspace user who sent it or whose number received it.
    pub user_id: Option<UserId>,
    /// The workspace number it went through.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation it belongs to, when the payload says.
    pub conversation_id: Option<ConversationId>,
    /// Contacts matched to the other party.
    pub contact_ids: Vec<ContactId>,
    /// Whether OpenPhone looked the contacts up (2026-03-30 only).
    pub contact_lookup: Option<LookupStatus>,
}

impl Message {
    /// The customers' side of the message: the sender of an incoming message, the recipients
    /// of an outgoing one.
    pub fn counterparts(&self) -> Vec<&PhoneAddress> {
        match self.direction {
            Direction::Incoming => self.from.iter().collect(),
            _ => self.to.iter().collect(),
        }
    }
}

/// A file attached to a message or a call: an image, a voicemail, a recording.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Media {
    /// Where OpenPhone serves the file.
    pub url: String,
    /// Its MIME type, when given (`image/jpeg`, `audio/mpeg`).
    pub content_type: Option<String>,
    /// Length in seconds, for audio.
    pub duration: Option<u32>,
}

impl Media {
    pub(crate) fn from_raw(raw: RawMedia) -> Option<Self> {
        Some(Self {
            url: raw.url.filter(|url| !url.is_empty())?,
            content_type: raw.content_type,
            duration: super::raw::seconds(raw.duration),
        })
    }

    pub(crate) fn list(raw: Option<Vec<RawMedia>>) -> Vec<Self> {
        raw.unwrap_or_default()
            .into_iter()
            .filter_map(Self::from_raw)
            .collect()
    }
}

pub(crate) fn normalize(
    object: RawObject,
    context: RawContext,
    format: PayloadFormat,
    at: &str,
) -> Result<Message, Error> {
    let id = required(object.id, at, "id")?;
    let (from, to) = match format {
        PayloadFormat::Object => (
            object.from,
            object.to.map(|to| to.into_vec()).unwrap_or_default(),
        ),
        PayloadFormat::Resource => (
            context.sender_identifier,
            context.recipient_identifiers.unwrap_or_default(),
        ),
    };
    let (contact_ids, contact_lookup) = super::raw::contacts(context.contacts, object.contact_ids);
    Ok(Message {
        id: MessageId::new(id),
        direction: object
            .direction
            .as_deref()
            .map_or_else(|| Direction::Unknown(String::new()), Direction::from),
        from: from.map(PhoneAddress::from),
        to: to.into_iter().map(PhoneAddress::from).collect(),
        text: object.text.or(object.body),
        media: Media::list(object.media),
        status: object.status.as_deref().map(MessageStatus::from),
        error_code: object.error_code,
        created_at: object.created_at,
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
    })
}
