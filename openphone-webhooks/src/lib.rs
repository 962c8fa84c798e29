#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod event;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
mod secret;
mod verify;

pub use error::Error;
pub use event::{Event, EventData, EventType, PayloadFormat};
pub use openphone_types as types;
pub use secret::{
    LEGACY_SIGNATURE_HEADER, Scheme, SigningSecret, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
};
pub use verify::{
    DEFAULT_MAX_BODY_SIZE, DEFAULT_TOLERANCE, MAX_SIGNATURES, Verified, WebhookVerifier,
};
