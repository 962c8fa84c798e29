//! Integration tests of `openphone-webhooks`: one binary, one module per concern.

// Test cases unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod extractor;
mod fixtures;
mod negative;
mod properties;
mod vectors;

use http::{HeaderMap, HeaderName, HeaderValue};
use openphone_webhooks::{SigningSecret, WebhookVerifier};
use time::OffsetDateTime;

/// The sample signing key of OpenPhone's legacy docs (base64 of `GfK3j4lXA5ZrRu64ofat50srGzoIHHUX`).
pub const LEGACY_SECRET: &str = "R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=";
/// The Standard Webhooks published test secret.
pub const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A time from unix seconds.
pub fn at_seconds(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("valid unix time")
}

/// A time from unix milliseconds.
pub fn at_millis(millis: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).expect("valid unix time")
}

/// A header map from name/value pairs, keeping repeated names.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

/// A verifier for the given secret strings.
pub fn verifier(secrets: &[&str]) -> WebhookVerifier {
    WebhookVerifier::new(
        secrets
            .iter()
            .map(|secret| SigningSecret::parse(secret).expect("valid secret")),
    )
    .expect("at least one secret")
}
