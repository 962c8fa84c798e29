// The README's guide (the crate's page) includes the `axum` extractors, so its examples
// compile only with that feature; without it the crate says so in one line.
#![cfg_attr(feature = "axum", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "axum"),
    doc = "Verifies OpenPhone's webhook signatures (both schemes) and parses their events into types. The guide, with examples, is `README.md` (and this page when built with the `axum` feature, as on docs.rs)."
)]
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
