#![doc = include_str!("../README.md")]

pub mod audience;
mod campaign;
pub mod conformance;
mod contact;
mod engine;
mod error;
mod ledger;
mod memory;
mod phone;
mod ports;
mod schedule;
mod store;
pub mod template;
mod validation;

pub use campaign::{Campaign, CampaignId, CampaignSpec, CampaignState, MAX_MESSAGE_CHARS, Variant};
pub use contact::{Contact, ContactId, ContactList, ListId, Member, MemberStatus, NewContact};
pub use engine::{ActivationSummary, Clock, Engine, EngineConfig, Rendered, RunReport, TickReport};
pub use error::Error;
pub use ledger::{
    Counts, Group, NewRecipient, Outcome, Recipient, RecipientState, Report, SkipReason,
};
pub use memory::MemoryStore;
pub use phone::{Region, normalize};
pub use ports::{History, MemoryHistory, OutgoingText, SendResult, Sender};
pub use schedule::{MAX_PER_RUN, Plan, Schedule, Weekday};
pub use store::CampaignStore;
pub use template::{Template, field_key};
pub use validation::{
    LineType, NUMVERIFY_BASE_URL, NumVerify, OfflineValidator, PhoneValidator, Validation,
};
