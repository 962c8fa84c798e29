//! The crate's one error type.

use crate::campaign::CampaignState;

/// What went wrong in audiences, campaigns or the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was refused; the message says which field and why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The campaign's state does not allow the requested change.
    #[error("campaign is {from}: it cannot become {to}")]
    Transition {
        /// The state the campaign is in.
        from: CampaignState,
        /// The state that was asked for.
        to: CampaignState,
    },
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A concurrent change won: the record is not in the state the operation expected.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A CSV file could not be read.
    #[error("CSV file could not be read")]
    Csv(#[source] csv::Error),
    /// The phone validation service failed (the number's status is unknown, not invalid).
    #[error("phone validation service failed: {reason}")]
    Validator {
        /// What failed.
        reason: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The storage backend failed.
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A backend failure wrapping `source`.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Backend(source.into())
    }
}
