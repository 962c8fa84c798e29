//! The server's one error type, and how it becomes an HTTP response.

use axum::Json;
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
    /// The configured database could not be opened at start: `setting` (`DATABASE_URL`, or
    /// `DATA_DIR` for the default SQLite file) names where it came from, `url` is the URL
    /// with any password hidden.
    #[error("{setting}: cannot open the database at {url}")]
    Open {
        /// The variable the URL came from.
        setting: &'static str,
        /// The URL, its password replaced by `***`.
        url: String,
        /// Why it could not be opened.
        #[source]
        source: crate::store::StoreError,
    },
    /// The listener could not be bound, or the server failed while running.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The blob store (local files or an object store) failed to read a stored file.
    #[error("blob store")]
    Blobs(#[source] std::io::Error),
    /// An operational command could not finish; the message says why.
    #[error("{0}")]
    Command(String),
    /// An import or reconciliation stopped.
    #[error("import stopped (rerun to continue): {0}")]
    Import(#[from] crate::import::ImportError),
    /// The request carries no live bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token's role is below the one the endpoint requires.
    #[error("this endpoint requires the {0} role")]
    Forbidden(crate::auth::Role),
    /// Too many requests from this token; retry after the duration.
    #[error("too many requests: retry in {} s", .0.as_secs().max(1))]
    RateLimited(std::time::Duration),
    /// The request conflicts with the state of things; the message says how.
    #[error("{0}")]
    Conflict(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A parameter of the request is invalid; the message says which and why.
    #[error("{0}")]
    BadRequest(String),
    /// The request's body is over its limit; the message says which.
    #[error("{0}")]
    TooLarge(String),
    /// A `Range` asked for bytes a file of this size does not hold.
    #[error("range not satisfiable: the file has {0} bytes")]
    RangeNotSatisfiable(u64),
    /// An audience or campaign operation failed (see [`sms_campaigns::Error`]).
    #[error(transparent)]
    Campaign(#[from] sms_campaigns::Error),
    /// A thread operation failed (see [`thread_resolver::Error`]).
    #[error(transparent)]
    Thread(#[from] thread_resolver::Error),
    /// An insight operation failed (see [`knowledge_export::Error`]).
    #[error(transparent)]
    Knowledge(#[from] knowledge_export::Error),
}

/// The messages of `error` and of its sources, each once: a message that already ends with
/// its source's (thiserror's `{0}`) does not repeat it, and one that leaves it out (reqwest's
/// "error following redirect", whose reason is its source) is followed by it.
pub fn causes(error: &dyn std::error::Error) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !messages.last().is_some_and(|last| last.ends_with(&text)) {
            messages.push(text);
        }
        source = cause.source();
    }
    messages
}

/// The body of every error answer of the server: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "limit must be between 1 and 200"}))]
pub struct ErrorBody {
    /// What went wrong, for people: it names the parameter or the missing thing. Server-side
    /// failures say only `Service Unavailable` or `Internal Server Error` (the cause is logged).
    pub error: String,
}

/// Every error response is an [`ErrorBody`]. Store failures answer 503, so OpenPhone
/// retries a delivery later rather than losing it; their cause is logged, not returned.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::Store(_)
            | Self::Blobs(_)
            | Self::Open { .. }
            | Self::Config(_)
            | Self::Io(_)
            | Self::Import(_)
            | Self::Command(_) => {
                tracing::error!(error = %crate::causes(&self).join(": "), "request failed");
                let status = match self {
                    Self::Store(_) | Self::Blobs(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (
                    status,
                    status.canonical_reason().unwrap_or("error").to_owned(),
                )
            }
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, self.to_string()),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, self.to_string()),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            Self::Conflict(_) => (StatusCode::CONFLICT, self.to_string()),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, self.to_string()),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string()),
            Self::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, self.to_string()),
            Self::Knowledge(error) => {
                use knowledge_export::Error as E;
                match error {
                    E::Invalid(_) => (StatusCode::BAD_REQUEST, error.to_string()),
                    E::NotFound(_) => (StatusCode::NOT_FOUND, error.to_string()),
                    E::Conflict(_) => (StatusCode::CONFLICT, error.to_string()),
                    _ => {
                        tracing::error!(error = %self, "request failed");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Service Unavailable".to_owned(),
                        )
                    }
                }
            }
            Self::Thread(error) => {
                use thread_resolver::Error as E;
                match error {
                    E::Invalid(_) => (StatusCode::BAD_REQUEST, error.to_string()),
                    E::NotFound(_) => (StatusCode::NOT_FOUND, error.to_string()),
                    E::Conflict(_) => (StatusCode::CONFLICT, error.to_string()),
                    _ => {
                        tracing::error!(error = %self, "request failed");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Service Unavailable".to_owned(),
                        )
                    }
                }
            }
            Self::Campaign(error) => {
                use sms_campaigns::Error as E;
                let status = match error {
                    E::Invalid(_) | E::Csv(_) => StatusCode::BAD_REQUEST,
                    E::Transition { .. } | E::Conflict(_) => StatusCode::CONFLICT,
                    E::NotFound(_) => StatusCode::NOT_FOUND,
                    E::Validator { .. } => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    tracing::error!(error = %self, "request failed");
                    (status, "Service Unavailable".to_owned())
                } else {
                    let mut message = error.to_string();
                    let mut source = std::error::Error::source(error);
                    while let Some(cause) = source {
                        message.push_str(": ");
                        message.push_str(&cause.to_string());
                        source = cause.source();
                    }
                    (status, message)
                }
            }
        };
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        if let Self::RateLimited(wait) = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
