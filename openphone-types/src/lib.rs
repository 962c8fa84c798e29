#![doc = include_str!("../README.md")]

mod error;
mod ids;
mod kinds;
mod phone;

pub use error::Error;
pub use ids::{
    ActivityId, CallId, ContactId, ConversationId, EventId, GroupId, MessageId, OrgId,
    PhoneNumberId, TaskId, UserId, VoicemailId, WebhookId,
};
pub use kinds::{CallStatus, Direction, LookupStatus, MessageStatus, ProcessingStatus};
pub use phone::{E164, PhoneAddress};

#[doc(hidden)]
pub mod __private {
    pub use serde;
}
