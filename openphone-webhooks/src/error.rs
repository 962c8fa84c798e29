//! The crate's one error type.

use crate::Scheme;

/// Everything that can go wrong when configuring a verifier, verifying a delivery or parsing
/// an event.
///
/// No variant carries a secret, a header value or any part of the body, so an error can be
/// logged or returned to the sender as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A signing secret could not be used: empty, not base64, or an empty key.
    #[error("invalid signing secret: {reason}")]
    InvalidSecret {
        /// Which rule the secret broke.
        reason: &'static str,
    },
    /// A verifier was built without any secret.
    #[error("no signing secret configured")]
    NoSecrets,
    /// The request carries signature headers of a scheme for which no secret is configured.
    #[error("no signing secret configured for the {0} scheme")]
    NoSecretForScheme(Scheme),
    /// The request has neither an `openphone-signature` nor a `webhook-signature` header.
    #[error("missing signature: no openphone-signature or webhook-signature header")]
    MissingSignature,
    /// The request carries both signature headers (`openphone-signature` and
    /// `webhook-signature`), which OpenPhone never sends.
    #[error("both openphone-signature and webhook-signature headers are present")]
    ConflictingSchemes,
    /// A required header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header that must appear once appears several times.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// A header is present but malformed.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signature names a scheme other than `hmac` (legacy).
    #[error("unsupported signature scheme")]
    UnsupportedScheme,
    /// The signature names a version this crate does not know (`1` legacy, `v1` standard).
    #[error("unsupported signature version")]
    UnsupportedVersion,
    /// The signature timestamp is older than the tolerance allows.
    #[error("signature timestamp is too old")]
    TimestampTooOld,
    /// The signature timestamp is further in the future than the tolerance allows.
    #[error("signature timestamp is in the future")]
    TimestampInFuture,
    /// No signature in the header matches the body under any configured secret.
    #[error("no signature matches")]
    SignatureMismatch,
    /// The body is larger than the configured limit.
    #[error("body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not a webhook event: not JSON, or JSON of the wrong shape. The location and
    /// category of the problem are given; the body's contents are not.
    #[error("malformed event payload: {reason} (at {path})")]
    MalformedPayload {
        /// A JSON path to the offending value, `$` for the whole document.
        path: String,
        /// What is wrong there, without quoting the value.
        reason: String,
    },
}

impl Error {
    /// Whether the error means the request is not authentic (missing, bad or stale signature),
    /// as opposed to a configuration or payload problem. Receivers answer these with 401.
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            Self::NoSecretForScheme(_)
                | Self::MissingSignature
                | Self::ConflictingSchemes
                | Self::MissingHeader(_)
                | Self::DuplicateHeader(_)
                | Self::MalformedHeader { .. }
                | Self::UnsupportedScheme
                | Self::UnsupportedVersion
                | Self::TimestampTooOld
                | Self::TimestampInFuture
                | Self::SignatureMismatch
        )
    }

    pub(crate) fn payload(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::MalformedPayload {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
