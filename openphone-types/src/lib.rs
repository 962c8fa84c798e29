#![doc = include_str!("../README.md")]

mod error;
mod ids;
mod phone;

pub use error::Error;
pub use ids::{
    ActivityId, CallId, ContactId, ConversationId, EventId, MessageId, OrgId, PhoneNumberId,
    TaskId, UserId, VoicemailId,
};
pub use phone::{E164, PhoneAddress};
