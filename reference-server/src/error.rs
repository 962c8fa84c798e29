//! The server's one error type, and how it becomes an HTTP response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything that can fail in the reference server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or malformed. The message names the variable, never its value.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be reached, migrated or queried.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listener could not be bound, or the server failed while running.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Store failures inside a request answer 503, so OpenPhone retries the delivery later
/// rather than losing it. The cause is logged, not returned.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "request failed");
        let status = match self {
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Config(_) | Self::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, status.canonical_reason().unwrap_or("error")).into_response()
    }
}
