//! An axum extractor that reads a webhook request's body under a size limit and verifies it
//! before the handler runs.
//!
//! The verifier comes from the router's state (`WebhookVerifier: FromRef<S>`), so secrets are
//! configured once at startup. Rejections answer:
//! - `401 Unauthorized`: missing, malformed, unknown, stale or non-matching signature;
//! - `413 Payload Too Large`: the body exceeds [`WebhookVerifier::max_body_size`];
//! - `400 Bad Request`: the body could not be read, or (for [`WebhookEvent`]) is not an event.
//!
//! Each rejection is logged at `warn` with its reason, never with the payload or headers.
//!
//! ```no_run
//! use axum::{Router, http::StatusCode, routing::post};
//! use openphone_webhooks::extract::WebhookEvent;
//! use openphone_webhooks::{SigningSecret, WebhookVerifier};
//!
//! async fn receive(WebhookEvent { event, .. }: WebhookEvent) -> StatusCode {
//!     println!("{} {}", event.event_type, event.id);
//!     StatusCode::OK
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = WebhookVerifier::new([SigningSecret::parse(&std::env::var("SECRET")?)?])?;
//! let app: Router = Router::new()
//!     .route("/webhooks/openphone", post(receive))
//!     .with_state(verifier);
//! # Ok(()) }
//! ```

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{Error, Event, Verified, WebhookVerifier};

/// A request whose body was read under the size limit and whose signature verified.
///
/// Use it to store the exact bytes before parsing them, as a durable receiver should.
#[derive(Debug, Clone)]
pub struct VerifiedWebhook {
    /// The raw body, exactly as signed.
    pub body: Bytes,
    /// What the verification established (scheme, delivery id, signing time).
    pub verified: Verified,
}

/// A verified request parsed into an [`Event`].
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The parsed event.
    pub event: Event,
    /// What the verification established.
    pub verified: Verified,
    /// The raw body, exactly as signed.
    pub body: Bytes,
}

/// Why a webhook request was rejected. Converts into the response described in the
/// [module docs](self).
#[derive(Debug)]
pub struct WebhookRejection {
    status: StatusCode,
    error: Option<Error>,
}

impl WebhookRejection {
    /// The HTTP status the rejection answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The verification or parsing error, if the rejection came from one (not from a failed
    /// body read).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    fn from_error(error: Error) -> Self {
        let status = if error.is_authentication() {
            StatusCode::UNAUTHORIZED
        } else if matches!(error, Error::BodyTooLarge { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            status,
            error: Some(error),
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let reason = match &self.error {
            Some(error) => error.to_string(),
            None => "the request body could not be read".to_owned(),
        };
        tracing::warn!(status = self.status.as_u16(), %reason, "rejected webhook delivery");
        (self.status, reason).into_response()
    }
}

impl<S> FromRequest<S> for VerifiedWebhook
where
    WebhookVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = WebhookVerifier::from_ref(state);
        let limit = verifier.max_body_size();
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(WebhookRejection::from_error(Error::BodyTooLarge { limit }));
        }
        let body = read_limited(body, limit).await?;
        let verified = verifier
            .verify(&parts.headers, &body)
            .map_err(WebhookRejection::from_error)?;
        Ok(Self { body, verified })
    }
}

impl<S> FromRequest<S> for WebhookEvent
where
    WebhookVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let VerifiedWebhook { body, verified } =
            VerifiedWebhook::from_request(request, state).await?;
        let event = Event::parse(&body).map_err(WebhookRejection::from_error)?;
        Ok(Self {
            event,
            verified,
            body,
        })
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, WebhookRejection> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(WebhookRejection::from_error(Error::BodyTooLarge { limit }))
        }
        Err(_) => Err(WebhookRejection {
            status: StatusCode::BAD_REQUEST,
            error: None,
        }),
    }
}
