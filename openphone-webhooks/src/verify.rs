//! Verifying a delivery's signature over its raw bytes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::secret::{
    LEGACY_SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
use crate::{Error, Scheme, SigningSecret};

/// How far a signature timestamp may be from now, in either direction, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The largest body accepted by default (1 MiB). OpenPhone events are a few kilobytes.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// A timestamp with this many digits or more is in milliseconds (legacy samples use 13).
const MILLISECOND_DIGITS: usize = 12;

/// Length of an HMAC-SHA256 digest.
const DIGEST_LEN: usize = 32;

/// Verifies OpenPhone webhook deliveries against one or more signing secrets.
///
/// Build it once at startup and share it: cloning is cheap. It picks the scheme from the
/// headers present (`webhook-signature` means Standard Webhooks, `openphone-signature` means
/// legacy) and tries every secret of that scheme, so secrets can be rotated by configuring
/// the old and the new one together. Timestamps are checked in both directions against a
/// tolerance (5 minutes by default).
///
/// ```
/// use openphone_webhooks::{SigningSecret, WebhookVerifier};
/// use time::OffsetDateTime;
///
/// let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let verifier = WebhookVerifier::new([secret.clone()])?;
///
/// let body = br#"{"test": 2432232314}"#;
/// let now = OffsetDateTime::now_utc();
/// let headers = secret.sign("msg_1", now, body)?;
/// let verified = verifier.verify_at(&headers, body, now)?;
/// assert_eq!(verified.delivery_id.as_deref(), Some("msg_1"));
/// # Ok::<(), openphone_webhooks::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secrets: Arc<[SigningSecret]>,
    tolerance: Duration,
    max_body_size: usize,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scheme the delivery was signed with.
    pub scheme: Scheme,
    /// The delivery id (`webhook-id`), stable across retries of one delivery. Only the
    /// Standard Webhooks scheme has one; for legacy deliveries, deduplicate on the event id.
    pub delivery_id: Option<String>,
    /// When OpenPhone signed the delivery, from the matching signature's timestamp.
    pub signed_at: OffsetDateTime,
}

impl WebhookVerifier {
    /// A verifier that accepts deliveries signed with any of `secrets`.
    ///
    /// # Errors
    /// [`Error::NoSecrets`] when `secrets` is empty.
    pub fn new(secrets: impl IntoIterator<Item = SigningSecret>) -> Result<Self, Error> {
        let secrets: Arc<[SigningSecret]> = secrets.into_iter().collect();
        if secrets.is_empty() {
            return Err(Error::NoSecrets);
        }
        Ok(Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        })
    }

    /// Sets how far a signature timestamp may be from now, in either direction.
    ///
    /// Raise it when deliveries are queued before verification; do not set it to zero.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Sets the largest body, in bytes, that [`verify`](Self::verify) and the axum extractor
    /// accept (1 MiB by default).
    #[must_use]
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The timestamp tolerance in force.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The body size limit in force, in bytes.
    pub fn max_body_size(&self) -> usize {
        self.max_body_size
    }

    /// Verifies a delivery against the current time. See [`verify_at`](Self::verify_at).
    ///
    /// # Errors
    /// As for [`verify_at`](Self::verify_at).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Error> {
        self.verify_at(headers, body, OffsetDateTime::now_utc())
    }

    /// Verifies a delivery's raw body and headers as of `now`: the form for replaying stored
    /// deliveries and for tests.
    ///
    /// Verify the exact bytes received, before any JSON parsing: re-serialized JSON does not
    /// match the signature.
    ///
    /// # Errors
    /// - [`Error::BodyTooLarge`] when the body exceeds the limit;
    /// - [`Error::MissingSignature`], [`Error::ConflictingSchemes`],
    ///   [`Error::MissingHeader`], [`Error::DuplicateHeader`], [`Error::MalformedHeader`]
    ///   for absent or unreadable headers;
    /// - [`Error::NoSecretForScheme`] when no configured secret uses the delivery's scheme;
    /// - [`Error::UnsupportedScheme`], [`Error::UnsupportedVersion`] for signatures of an
    ///   unknown kind;
    /// - [`Error::TimestampTooOld`], [`Error::TimestampInFuture`] outside the tolerance;
    /// - [`Error::SignatureMismatch`] when no signature matches under any secret.
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        if body.len() > self.max_body_size {
            return Err(Error::BodyTooLarge {
                limit: self.max_body_size,
            });
        }
        let standard = headers.contains_key(WEBHOOK_SIGNATURE_HEADER);
        let legacy = headers.contains_key(LEGACY_SIGNATURE_HEADER);
        match (standard, legacy) {
            (true, true) => Err(Error::ConflictingSchemes),
            (true, false) => self.verify_standard(headers, body, now),
            (false, true) => self.verify_legacy(headers, body, now),
            (false, false) => Err(Error::MissingSignature),
        }
    }

    fn secrets_for(&self, scheme: Scheme) -> Result<Vec<&SigningSecret>, Error> {
        let secrets: Vec<_> = self
            .secrets
            .iter()
            .filter(|secret| secret.scheme() == scheme)
            .collect();
        if secrets.is_empty() {
            return Err(Error::NoSecretForScheme(scheme));
        }
        Ok(secrets)
    }

    fn verify_legacy(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        let header = single_header(headers, LEGACY_SIGNATURE_HEADER)?;
        let secrets = self.secrets_for(Scheme::Legacy)?;
        // "Future versions may include multiple signatures separated by commas."
        let mut first_error = None;
        for candidate in header.split(',').map(str::trim) {
            let outcome = parse_legacy_candidate(candidate).and_then(|(timestamp, signature)| {
                let signed_at = self.check_timestamp(LEGACY_SIGNATURE_HEADER, timestamp, now)?;
                let matched = secrets.iter().any(|secret| {
                    digest_matches(
                        &secret.mac(&[timestamp.as_bytes(), b".", body]),
                        signature.as_ref(),
                    )
                });
                if matched {
                    Ok(signed_at)
                } else {
                    Err(Error::SignatureMismatch)
                }
            });
            match outcome {
                Ok(signed_at) => {
                    return Ok(Verified {
                        scheme: Scheme::Legacy,
                        delivery_id: None,
                        signed_at,
                    });
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or(Error::SignatureMismatch))
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        let id = single_header(headers, WEBHOOK_ID_HEADER)?;
        let timestamp = single_header(headers, WEBHOOK_TIMESTAMP_HEADER)?;
        let signatures = single_header(headers, WEBHOOK_SIGNATURE_HEADER)?;
        if id.is_empty() {
            return Err(Error::MalformedHeader {
                header: WEBHOOK_ID_HEADER,
                reason: "empty",
            });
        }
        if timestamp.len() >= MILLISECOND_DIGITS {
            // Standard Webhooks timestamps are seconds; a millisecond value is a sender bug.
            return Err(Error::MalformedHeader {
                header: WEBHOOK_TIMESTAMP_HEADER,
                reason: "not a unix timestamp in seconds",
            });
        }
        let secrets = self.secrets_for(Scheme::Standard)?;
        let signed_at = self.check_timestamp(WEBHOOK_TIMESTAMP_HEADER, timestamp, now)?;
        let expected: Vec<[u8; DIGEST_LEN]> = secrets
            .iter()
            .map(|secret| {
                secret.mac(&[id.as_bytes(), b".", timestamp.as_bytes(), b".", body])
            })
            .collect();
        let mut saw_v1 = false;
        for entry in signatures.split(' ').filter(|entry| !entry.is_empty()) {
            let Some((version, signature)) = entry.split_once(',') else {
                return Err(Error::MalformedHeader {
                    header: WEBHOOK_SIGNATURE_HEADER,
                    reason: "an entry is not of the form version,signature",
                });
            };
            if version != "v1" {
                continue;
            }
            saw_v1 = true;
            let Some(signature) = decode_signature(signature) else {
                continue;
            };
            if expected
                .iter()
                .any(|digest| digest_matches(digest, &signature))
            {
                return Ok(Verified {
                    scheme: Scheme::Standard,
                    delivery_id: Some(id.to_owned()),
                    signed_at,
                });
            }
        }
        if saw_v1 {
            Err(Error::SignatureMismatch)
        } else {
            Err(Error::UnsupportedVersion)
        }
    }

    /// Parses a unix timestamp (seconds, or milliseconds when it has 12 digits or more) and
    /// checks it against the tolerance in both directions.
    fn check_timestamp(
        &self,
        header: &'static str,
        text: &str,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, Error> {
        let malformed = Error::MalformedHeader {
            header,
            reason: "the timestamp is not a unix time",
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 16 {
            return Err(malformed);
        }
        let value: i128 = text.parse().map_err(|_| Error::MalformedHeader {
            header,
            reason: "the timestamp is not a unix time",
        })?;
        let nanos = if text.len() >= MILLISECOND_DIGITS {
            value * 1_000_000
        } else {
            value * 1_000_000_000
        };
        let signed_at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| malformed)?;
        let tolerance = time::Duration::try_from(self.tolerance).unwrap_or(time::Duration::MAX);
        if signed_at < now - tolerance {
            return Err(Error::TimestampTooOld);
        }
        if signed_at > now + tolerance {
            return Err(Error::TimestampInFuture);
        }
        Ok(signed_at)
    }
}

/// The one value of a header that must appear exactly once, as text.
fn single_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Error> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(Error::MissingHeader(name))?;
    if values.next().is_some() {
        return Err(Error::DuplicateHeader(name));
    }
    value.to_str().map_err(|_| Error::MalformedHeader {
        header: name,
        reason: "not visible ASCII",
    })
}

/// Splits one legacy candidate `hmac;1;<timestamp>;<base64>` into timestamp and signature.
fn parse_legacy_candidate(candidate: &str) -> Result<(&str, Vec<u8>), Error> {
    let mut fields = candidate.split(';');
    let (Some(scheme), Some(version), Some(timestamp), Some(signature), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Error::MalformedHeader {
            header: LEGACY_SIGNATURE_HEADER,
            reason: "expected four fields: scheme;version;timestamp;signature",
        });
    };
    if scheme != "hmac" {
        return Err(Error::UnsupportedScheme);
    }
    if version != "1" {
        return Err(Error::UnsupportedVersion);
    }
    // An undecodable signature cannot match; it is reported as a mismatch, like a wrong one.
    let signature = decode_signature(signature).unwrap_or_default();
    Ok((timestamp, signature))
}

/// Decodes a base64 signature; `None` unless it is exactly one digest long.
fn decode_signature(text: &str) -> Option<Vec<u8>> {
    // 32 bytes encode to 44 base64 characters; anything else cannot be a digest.
    if text.len() != 44 {
        return None;
    }
    BASE64
        .decode(text)
        .ok()
        .filter(|bytes| bytes.len() == DIGEST_LEN)
}

/// Constant-time comparison with a length guard: an empty or short signature never matches.
fn digest_matches(expected: &[u8; DIGEST_LEN], given: &[u8]) -> bool {
    given.len() == DIGEST_LEN && bool::from(expected.as_slice().ct_eq(given))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    #[test]
    fn timestamps_in_seconds_and_milliseconds() {
        let verifier = WebhookVerifier::new([SigningSecret::legacy("a2V5").unwrap()]).unwrap();
        let now = at(1_639_710_054);
        assert_eq!(verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "1639710054", now).unwrap(), now);
        assert_eq!(
            verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "1639710054089", now).unwrap(),
            OffsetDateTime::from_unix_timestamp_nanos(1_639_710_054_089_000_000).unwrap()
        );
    }

    #[test]
    fn tolerance_is_inclusive_at_the_edge_in_both_directions() {
        let verifier = WebhookVerifier::new([SigningSecret::legacy("a2V5").unwrap()])
            .unwrap()
            .with_tolerance(Duration::from_secs(10));
        let now = at(1_000_000_000);
        assert!(verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "999999990", now).is_ok());
        assert!(verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "1000000010", now).is_ok());
        assert!(matches!(
            verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "999999989", now),
            Err(Error::TimestampTooOld)
        ));
        assert!(matches!(
            verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, "1000000011", now),
            Err(Error::TimestampInFuture)
        ));
    }

    #[test]
    fn malformed_timestamps() {
        let verifier = WebhookVerifier::new([SigningSecret::legacy("a2V5").unwrap()]).unwrap();
        for bad in ["", "-5", "12a", "1e9", "99999999999999999999", " 123"] {
            assert!(
                matches!(
                    verifier.check_timestamp(LEGACY_SIGNATURE_HEADER, bad, at(0)),
                    Err(Error::MalformedHeader { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn digest_comparison_guards_length() {
        let digest = [7u8; DIGEST_LEN];
        assert!(digest_matches(&digest, &[7u8; DIGEST_LEN]));
        assert!(!digest_matches(&digest, &[]));
        assert!(!digest_matches(&digest, &[7u8; DIGEST_LEN - 1]));
        assert!(!digest_matches(&digest, &[7u8; DIGEST_LEN + 1]));
        assert_eq!(decode_signature(""), None);
    }
}
