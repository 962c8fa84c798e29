//! The crate's one error type.

/// What went wrong with threads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was refused; the message says why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The named thread does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thread is not in a state that allows the operation (the message says why).
    #[error("conflict: {0}")]
    Conflict(String),
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
