//! Messages: `POST /v1/messages`, `GET /v1/messages`, `GET /v1/messages/{id}`.

use openphone_types::{
    ConversationId, Direction, E164, MessageId, MessageStatus, PhoneAddress, PhoneNumberId, UserId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// A text message (v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Message {
    /// The message id (`AC…`).
    pub id: MessageId,
    /// The recipients.
    pub to: Vec<PhoneAddress>,
    /// The sender: usually an E.164 number, sometimes a short code or another identifier.
    pub from: PhoneAddress,
    /// The text.
    pub text: String,
    /// The workspace number it went through.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation (absent from responses of older API revisions).
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// The user who sent it (documented as absent for incoming messages).
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The status.
    pub status: MessageStatus,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The sender of a message: a workspace number by id or by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A workspace phone number id (`PN…`).
    PhoneNumberId(PhoneNumberId),
    /// A workspace phone number.
    Number(E164),
}

impl From<PhoneNumberId> for Sender {
    fn from(id: PhoneNumberId) -> Self {
        Self::PhoneNumberId(id)
    }
}

impl From<E164> for Sender {
    fn from(number: E164) -> Self {
        Self::Number(number)
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::PhoneNumberId(id) => serializer.serialize_str(id.as_str()),
            Self::Number(number) => serializer.serialize_str(number.as_str()),
        }
    }
}

/// The longest text OpenPhone accepts, in characters.
pub const MAX_CONTENT_CHARS: usize = 1600;

/// The most recipients of one (group) message.
pub const MAX_RECIPIENTS: usize = 10;

/// A message to send. Build it with [`SendMessage::new`] (one recipient) or
/// [`SendMessage::group`] (one group thread with several recipients: not a bulk send).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    content: String,
    from: Sender,
    to: Vec<E164>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_inbox_status: Option<&'static str>,
}

impl SendMessage {
    /// A message to one recipient.
    ///
    /// # Errors
    /// [`Error::Validation`] when the content is empty, blank or longer than 1,600 characters.
    pub fn new(
        from: impl Into<Sender>,
        to: E164,
        content: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::build(from.into(), vec![to], content.into())
    }

    /// One message to a group thread that every recipient sees. OpenPhone creates a single
    /// group conversation; to text several people separately, send one message each.
    ///
    /// # Errors
    /// [`Error::Validation`] as for [`SendMessage::new`], and when there are fewer than 2 or
    /// more than 10 recipients, or a recipient is repeated.
    pub fn group(
        from: impl Into<Sender>,
        to: Vec<E164>,
        content: impl Into<String>,
    ) -> Result<Self, Error> {
        if to.len() < 2 {
            return Err(Error::validation(
                "to",
                "a group message needs at least 2 recipients; use SendMessage::new for one",
            ));
        }
        if to.len() > MAX_RECIPIENTS {
            return Err(Error::validation(
                "to",
                "a group message has at most 10 recipients",
            ));
        }
        let mut unique = to.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != to.len() {
            return Err(Error::validation("to", "a recipient is repeated"));
        }
        Self::build(from.into(), to, content.into())
    }

    fn build(from: Sender, to: Vec<E164>, content: String) -> Result<Self, Error> {
        validate_content(&content)?;
        Ok(Self {
            content,
            from,
            to,
            user_id: None,
            set_inbox_status: None,
        })
    }

    /// Sends as this user (who must be a member of the sending number).
    #[must_use]
    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Marks the conversation done in the inbox after sending (`setInboxStatus: done`).
    #[must_use]
    pub fn mark_done(mut self) -> Self {
        self.set_inbox_status = Some("done");
        self
    }

    /// The text to send.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// The recipients.
    pub fn recipients(&self) -> &[E164] {
        &self.to
    }
}

/// Checks message content against OpenPhone's rules: 1 to 1,600 characters, not blank.
///
/// # Errors
/// [`Error::Validation`] naming the rule broken.
pub fn validate_content(content: &str) -> Result<(), Error> {
    if content.trim().is_empty() {
        return Err(Error::validation("content", "must not be empty or blank"));
    }
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(Error::validation(
            "content",
            format!("{chars} characters; at most {MAX_CONTENT_CHARS} are allowed"),
        ));
    }
    Ok(())
}

/// Parameters of `GET /v1/messages`: the messages of one conversation, oldest first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListMessages {
    /// The workspace number.
    pub phone_number_id: PhoneNumberId,
    /// The other participants: one for a one-to-one conversation, up to 10 for a group.
    pub participants: Vec<E164>,
    /// Only messages of this user.
    pub user_id: Option<UserId>,
    /// Only messages created after this time.
    pub created_after: Option<OffsetDateTime>,
    /// Only messages created before this time.
    pub created_before: Option<OffsetDateTime>,
    /// Page size, 1 to 100 (default 100).
    pub max_results: u32,
}

impl ListMessages {
    /// The messages between `phone_number_id` and `participants`.
    pub fn new(phone_number_id: PhoneNumberId, participants: Vec<E164>) -> Self {
        Self {
            phone_number_id,
            participants,
            user_id: None,
            created_after: None,
            created_before: None,
            max_results: 100,
        }
    }

    /// Only messages created after `time`.
    #[must_use]
    pub fn created_after(mut self, time: OffsetDateTime) -> Self {
        self.created_after = Some(time);
        self
    }

    /// Only messages created before `time`.
    #[must_use]
    pub fn created_before(mut self, time: OffsetDateTime) -> Self {
        self.created_before = Some(time);
        self
    }

    /// Only messages of `user_id`.
    #[must_use]
    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Sets the page size (1 to 100).
    #[must_use]
    pub fn page_size(mut self, max_results: u32) -> Self {
        self.max_results = max_results;
        self
    }
}
