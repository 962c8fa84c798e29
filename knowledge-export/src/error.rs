//! The crate's one error type.

use std::time::Duration;

/// What went wrong exporting threads or keeping insights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was refused; the message says why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The record is not in a state that allows the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The provider refused for its rate limit (HTTP 429, or Anthropic's 529 overload).
    #[error("{provider} is rate limited{}", .retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The provider.
        provider: &'static str,
        /// How long it asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The provider answered an error.
    #[error("{provider} answered HTTP {status}: {message}")]
    Provider {
        /// The provider.
        provider: &'static str,
        /// The HTTP status.
        status: u16,
        /// Its error message.
        message: String,
    },
    /// The provider could not be reached or its answer not read.
    #[error("{provider} request failed")]
    Transport {
        /// The provider.
        provider: &'static str,
        /// The failure.
        #[source]
        source: reqwest::Error,
    },
    /// The model's output is not valid insights JSON; the message says where.
    #[error("the model's output is not valid: {0}")]
    Output(String),
    /// Reading the SOP directory or writing an export file failed.
    #[error("file access failed: {path}")]
    Io {
        /// The path.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
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
