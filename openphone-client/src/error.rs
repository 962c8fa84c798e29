//! The crate's one error type.

use std::time::Duration;

use serde::Deserialize;

/// Everything a call to the OpenPhone API can fail with.
///
/// The API key never appears in an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error (4xx other than 401 and 429, or a 5xx that was not
    /// retried or kept failing).
    #[error("OpenPhone API error {}: {}", .0.status, .0.title.as_deref().or(.0.message.as_deref()).unwrap_or("no message"))]
    Api(Box<ApiError>),
    /// The API answered 429 and retries were exhausted.
    #[error("rate limited by OpenPhone (after {attempts} attempt(s))")]
    RateLimited {
        /// How long the API asked to wait, when it said.
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
    },
    /// The API key was refused (401).
    #[error("unauthorized: {}", .message.as_deref().unwrap_or("the API key was refused"))]
    Unauthorized {
        /// The API's message.
        message: Option<String>,
    },
    /// The request timed out (for an idempotent request, after its retries).
    #[error("request timed out")]
    Timeout,
    /// The request could not be completed: connection refused, reset, TLS failure.
    #[error("transport error")]
    Transport(#[source] reqwest::Error),
    /// A non-idempotent request (sending a message, creating a resource) may or may not have
    /// taken effect: it timed out, or failed with a server error, after it was sent. It is
    /// never retried automatically; check before trying again (e.g. list the conversation's
    /// messages) to avoid a duplicate.
    #[error("outcome unknown: {reason}; the request may have taken effect")]
    Ambiguous {
        /// What happened.
        reason: String,
        /// The underlying failure.
        #[source]
        source: Box<Error>,
    },
    /// A success response did not have the documented shape.
    #[error("unexpected response body (HTTP {status}) at {path}: {reason}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// The JSON path of the problem.
        path: String,
        /// What was wrong.
        reason: String,
        /// The body received.
        body: String,
    },
    /// The request was refused before sending: it breaks a documented rule.
    #[error("invalid request: {field}: {reason}")]
    Validation {
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// The client could not be built (bad base URL, TLS set-up).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the request may have taken effect although it failed.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::Decode { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::Unauthorized { .. } => Some(401),
            Self::Ambiguous { source, .. } => source.status(),
            _ => None,
        }
    }

    /// OpenPhone's error code (e.g. `0206400`), when the API answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Self::Api(api) => api.code.as_deref(),
            Self::Ambiguous { source, .. } => source.api_code(),
            _ => None,
        }
    }

    pub(crate) fn validation(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Validation {
            field,
            reason: reason.into(),
        }
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// OpenPhone's error code, e.g. `0206400` (A2P registration not approved).
    pub code: Option<String>,
    /// A short title, e.g. `A2P Registration Not Approved`.
    pub title: Option<String>,
    /// The message.
    pub message: Option<String>,
    /// Field-level problems, when the API lists them.
    pub errors: Vec<FieldError>,
    /// OpenPhone's trace id, for support requests.
    pub trace: Option<String>,
    /// The raw body, when it was not one of the documented error envelopes.
    pub body: Option<String>,
}

/// One field-level problem reported by the API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct FieldError {
    /// The field's path (`path`), or its key (`key`, custom-field errors).
    #[serde(alias = "key", default)]
    pub path: Option<String>,
    /// What is wrong (`message`, or `reason` for custom-field errors).
    #[serde(alias = "reason", default)]
    pub message: Option<String>,
}

/// The documented error envelopes: the flat v1 body `{message, code, status, title, ...}`, the
/// 2026-03-30 body `{title, message, docs, ...}`, and the gateway's `{error: {message, key}}`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    trace: Option<String>,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    error: Option<GatewayError>,
}

#[derive(Deserialize)]
struct GatewayError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    trace: Option<String>,
}

/// Reads an error response into [`Error::Api`] (or [`Error::Unauthorized`] for 401).
pub(crate) fn from_response(status: u16, body: &str) -> Error {
    let parsed = serde_json::from_str::<Envelope>(body)
        .ok()
        .filter(|envelope| {
            envelope.message.is_some() || envelope.title.is_some() || envelope.error.is_some()
        });
    let (code, title, message, errors, trace, raw) = match parsed {
        Some(Envelope {
            error: Some(gateway),
            ..
        }) => (
            None,
            gateway.key,
            gateway.message,
            Vec::new(),
            gateway.trace,
            None,
        ),
        Some(envelope) => (
            envelope.code.map(|code| match code {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            }),
            envelope.title,
            envelope.message,
            envelope.errors,
            envelope.trace,
            None,
        ),
        None => (None, None, None, Vec::new(), None, Some(body.to_owned())),
    };
    if status == 401 {
        return Error::Unauthorized {
            message: message.or(title),
        };
    }
    Error::Api(Box::new(ApiError {
        status,
        code,
        title,
        message,
        errors,
        trace,
        body: raw,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_envelope() {
        let v1 = r#"{"message":"The organization is not approved for A2P","code":"0206400","status":400,"docs":"https://quo.com/docs","title":"A2P Registration Not Approved","trace":"t1","errors":[{"path":"/to/0","message":"bad","value":"x","schema":{"type":"string"}}]}"#;
        let Error::Api(api) = from_response(400, v1) else {
            panic!("api error")
        };
        assert_eq!(api.code.as_deref(), Some("0206400"));
        assert_eq!(api.title.as_deref(), Some("A2P Registration Not Approved"));
        assert_eq!(api.errors[0].path.as_deref(), Some("/to/0"));
        assert_eq!(api.trace.as_deref(), Some("t1"));
        assert_eq!(api.body, None);

        let custom = r#"{"message":"Invalid","code":"0801400","status":400,"title":"Invalid Custom Field Item","errors":[{"key":"lead","reason":"unknown key"}]}"#;
        let Error::Api(api) = from_response(400, custom) else {
            panic!()
        };
        assert_eq!(api.errors[0].path.as_deref(), Some("lead"));
        assert_eq!(api.errors[0].message.as_deref(), Some("unknown key"));

        let gateway = r#"{"error":{"message":"Missing authorization header","key":"Unauthorized","trace":"abc"}}"#;
        let Error::Unauthorized { message } = from_response(401, gateway) else {
            panic!()
        };
        assert_eq!(message.as_deref(), Some("Missing authorization header"));

        let Error::Api(api) = from_response(502, "<html>Bad gateway</html>") else {
            panic!()
        };
        assert_eq!(
            (api.status, api.body.as_deref()),
            (502, Some("<html>Bad gateway</html>"))
        );

        let v2026 = r#"{"title":"Unprocessable","message":"limit must be <= 50","docs":"https://quo.com/docs"}"#;
        let error = from_response(422, v2026);
        assert_eq!(error.to_string(), "OpenPhone API error 422: Unprocessable");
    }
}
