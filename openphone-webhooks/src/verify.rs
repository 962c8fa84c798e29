//! Verifying a delivery's signature over its raw bytes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue};
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

/// The most signatures one header may carry. Each costs an HMAC over the body per secret, so
/// an unbounded list would let anyone burn CPU without a valid signature. Rotation needs two.
pub const MAX_SIGNATURES: usize = 8;

// Pre-parsed header names: comparing two `HeaderName`s is a plain byte comparison.
static LEGACY_SIGNATURE: HeaderName = HeaderName::from_static(LEGACY_SIGNATURE_HEADER);
static WEBHOOK_ID: HeaderName = HeaderName::from_static(WEBHOOK_ID_HEADER);
static WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static(WEBHOOK_TIMESTAMP_HEADER);
static WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static(WEBHOOK_SIGNATURE_HEADER);

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
        let found = SignatureHeaders::find(headers);
        match (found.signature.is_present(), found.legacy.is_present()) {
            (true, true) => Err(Error::ConflictingSchemes),
            (true, false) => self.verify_standard(&found, body, now),
            (false, true) => {
                let header = found.legacy.value(LEGACY_SIGNATURE_HEADER)?;
                self.verify_legacy(header, body, now)
            }
            (false, false) => Err(Error::MissingSignature),
        }
    }

    /// The secrets of one scheme; fails closed when there are none.
    fn secrets_for(
        &self,
        scheme: Scheme,
    ) -> Result<impl Iterator<Item = &SigningSecret> + Clone, Error> {
        let secrets = self
            .secrets
            .iter()
            .filter(move |secret| secret.scheme() == scheme);
        if secrets.clone().next().is_none() {
            return Err(Error::NoSecretForScheme(scheme));
        }
        Ok(secrets)
    }

    fn verify_legacy(
        &self,
        header: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        let secrets = self.secrets_for(Scheme::Legacy)?;
        // "Future versions may include multiple signatures separated by commas."
        let mut first_error = None;
        for (index, candidate) in split_ascii(header, b',').map(str::trim).enumerate() {
            if index == MAX_SIGNATURES {
                return Err(Error::MalformedHeader {
                    header: LEGACY_SIGNATURE_HEADER,
                    reason: "too many signatures",
                });
            }
            let outcome = parse_legacy_candidate(candidate).and_then(|(timestamp, signature)| {
                let signed_at = self.check_timestamp(LEGACY_SIGNATURE_HEADER, timestamp, now)?;
                // A signature that cannot be a digest never matches: no HMAC is spent on it.
                let signature = signature.ok_or(Error::SignatureMismatch)?;
                let matched = secrets.clone().any(|secret| {
                    digest_matches(&secret.mac(&[timestamp.as_bytes(), b".", body]), &signature)
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
        found: &SignatureHeaders<'_>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Verified, Error> {
        let id = found.id.value(WEBHOOK_ID_HEADER)?;
        let timestamp = found.timestamp.value(WEBHOOK_TIMESTAMP_HEADER)?;
        let signatures = found.signature.value(WEBHOOK_SIGNATURE_HEADER)?;
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
        // `version,signature` entries separated by spaces; only `v1` is defined.
        let entries = || split_ascii(signatures, b' ').filter(|entry| !entry.is_empty());
        let mut saw_v1 = false;
        for (index, entry) in entries().enumerate() {
            if index == MAX_SIGNATURES {
                return Err(Error::MalformedHeader {
                    header: WEBHOOK_SIGNATURE_HEADER,
                    reason: "too many signatures",
                });
            }
            match entry.split_once(',') {
                Some(("v1", _)) => saw_v1 = true,
                Some(_) => {}
                None => {
                    return Err(Error::MalformedHeader {
                        header: WEBHOOK_SIGNATURE_HEADER,
                        reason: "an entry is not of the form version,signature",
                    });
                }
            }
        }
        if !saw_v1 {
            return Err(Error::UnsupportedVersion);
        }
        // Each secret's digest is computed once and checked against every v1 entry.
        for secret in secrets {
            let digest = secret.mac(&[id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
            let matched = entries()
                .filter_map(|entry| entry.strip_prefix("v1,"))
                .filter_map(decode_signature)
                .any(|signature| digest_matches(&digest, &signature));
            if matched {
                return Ok(Verified {
                    scheme: Scheme::Standard,
                    delivery_id: Some(id.to_owned()),
                    signed_at,
                });
            }
        }
        Err(Error::SignatureMismatch)
    }

    /// Parses a unix timestamp (seconds, or milliseconds when it has 12 digits or more) and
    /// checks it against the tolerance in both directions, in integer milliseconds.
    fn check_timestamp(
        &self,
        header: &'static str,
        text: &str,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, Error> {
        let malformed = || Error::MalformedHeader {
            header,
            reason: "the timestamp is not a unix time",
        };
        // At most 16 digits: milliseconds until the year 318857, and no overflow below.
        if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let value: i64 = text.parse().map_err(|_| malformed())?;
        let signed_ms = if text.len() >= MILLISECOND_DIGITS {
            value
        } else {
            value * 1000
        };
        // Integer milliseconds throughout: no 128-bit division on the hot path.
        let now_ms = now
            .unix_timestamp()
            .saturating_mul(1000)
            .saturating_add(i64::from(now.millisecond()));
        let tolerance_ms = i64::try_from(self.tolerance.as_millis()).unwrap_or(i64::MAX);
        if signed_ms < now_ms.saturating_sub(tolerance_ms) {
            return Err(Error::TimestampTooOld);
        }
        if signed_ms > now_ms.saturating_add(tolerance_ms) {
            return Err(Error::TimestampInFuture);
        }
        let signed_at = OffsetDateTime::from_unix_timestamp(signed_ms.div_euclid(1000))
            .map_err(|_| malformed())?;
        Ok(signed_at + time::Duration::milliseconds(signed_ms.rem_euclid(1000)))
    }
}

/// The signature headers of a request, found in one pass over its headers.
///
/// One pass comparing names (which almost always differ in length) costs less than a hashed
/// lookup per header, and counts repeats on the way.
#[derive(Default)]
struct SignatureHeaders<'h> {
    legacy: Occurrence<'h>,
    id: Occurrence<'h>,
    timestamp: Occurrence<'h>,
    signature: Occurrence<'h>,
}

/// How often a header appeared, and its value when it appeared once.
#[derive(Default)]
enum Occurrence<'h> {
    #[default]
    Missing,
    Once(&'h HeaderValue),
    Repeated,
}

impl<'h> SignatureHeaders<'h> {
    fn find(headers: &'h HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let slot = if *name == LEGACY_SIGNATURE {
                &mut found.legacy
            } else if *name == WEBHOOK_ID {
                &mut found.id
            } else if *name == WEBHOOK_TIMESTAMP {
                &mut found.timestamp
            } else if *name == WEBHOOK_SIGNATURE {
                &mut found.signature
            } else {
                continue;
            };
            *slot = match slot {
                Occurrence::Missing => Occurrence::Once(value),
                _ => Occurrence::Repeated,
            };
        }
        found
    }
}

impl<'h> Occurrence<'h> {
    fn is_present(&self) -> bool {
        !matches!(self, Self::Missing)
    }

    /// The value of a header that must appear exactly once, as text.
    fn value(&self, name: &'static str) -> Result<&'h str, Error> {
        match self {
            Self::Missing => Err(Error::MissingHeader(name)),
            Self::Repeated => Err(Error::DuplicateHeader(name)),
            Self::Once(value) => value.to_str().map_err(|_| Error::MalformedHeader {
                header: name,
                reason: "not visible ASCII",
            }),
        }
    }
}

/// Splits one legacy candidate `hmac;1;<timestamp>;<base64>` into timestamp and signature.
fn parse_legacy_candidate(candidate: &str) -> Result<(&str, Option<Signature>), Error> {
    let mut fields = split_ascii(candidate, b';');
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
    Ok((timestamp, decode_signature(signature)))
}

/// Splits on an ASCII separator by scanning bytes. Signature headers are a few dozen bytes:
/// a plain byte loop costs a fraction of `str::split`'s searcher set-up or UTF-8 decoding,
/// and an ASCII separator always falls on a character boundary.
fn split_ascii(text: &str, separator: u8) -> impl Iterator<Item = &str> + Clone {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|byte| byte == separator) {
            Some(index) => {
                rest = Some(&current[index + 1..]);
                Some(&current[..index])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// A decoded signature. One byte longer than a digest, so that a value which could never be
/// a digest (an undecodable one) has a representation that never matches.
type Signature = [u8; DIGEST_LEN + 1];

/// Decodes a base64 signature onto the stack; `None` unless it is exactly one digest long.
fn decode_signature(text: &str) -> Option<Signature> {
    // 32 bytes encode to 44 base64 characters; anything else cannot be a digest.
    if text.len() != 44 {
        return None;
    }
    let mut buffer = [0u8; 36];
    let written = BASE64.decode_slice(text, &mut buffer).ok()?;
    if written != DIGEST_LEN {
        return None;
    }
    let mut signature = [0u8; DIGEST_LEN + 1];
    signature[..DIGEST_LEN].copy_from_slice(&buffer[..DIGEST_LEN]);
    signature[DIGEST_LEN] = 1;
    Some(signature)
}

/// Constant-time comparison with a length guard: only a decoded, digest-long signature
/// (marked by its last byte) can match, so empty, short or undecodable ones never do.
///
/// The bytes' differences are folded with OR before one constant-time test of the result,
/// so the time taken does not depend on where the first difference is.
fn digest_matches(expected: &[u8; DIGEST_LEN], given: &Signature) -> bool {
    let difference = expected
        .iter()
        .zip(&given[..DIGEST_LEN])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    given[DIGEST_LEN] == 1 && bool::from(difference.ct_eq(&0))
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
        assert_eq!(
            verifier
                .check_timestamp(LEGACY_SIGNATURE_HEADER, "1639710054", now)
                .unwrap(),
            now
        );
        assert_eq!(
            verifier
                .check_timestamp(LEGACY_SIGNATURE_HEADER, "1639710054089", now)
                .unwrap(),
            OffsetDateTime::from_unix_timestamp_nanos(1_639_710_054_089_000_000).unwrap()
        );
    }

    #[test]
    fn tolerance_is_inclusive_at_the_edge_in_both_directions() {
        let verifier = WebhookVerifier::new([SigningSecret::legacy("a2V5").unwrap()])
            .unwrap()
            .with_tolerance(Duration::from_secs(10));
        let now = at(1_000_000_000);
        assert!(
            verifier
                .check_timestamp(LEGACY_SIGNATURE_HEADER, "999999990", now)
                .is_ok()
        );
        assert!(
            verifier
                .check_timestamp(LEGACY_SIGNATURE_HEADER, "1000000010", now)
                .is_ok()
        );
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
    fn split_ascii_matches_str_split() {
        for text in ["", ",", "a", "a,b", ",a,,b,", "hmac;1;2;x=", "é,ü"] {
            let ours: Vec<_> = split_ascii(text, b',').collect();
            let std: Vec<_> = text.split(',').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn digest_comparison_guards_length() {
        use base64::Engine;
        let digest = [7u8; DIGEST_LEN];
        let encoded = BASE64.encode(digest);
        let decoded = decode_signature(&encoded).unwrap();
        assert!(digest_matches(&digest, &decoded));
        // Undecodable, empty, short and long signatures never match, even against zeros.
        assert!(!digest_matches(&[0; DIGEST_LEN], &[0; DIGEST_LEN + 1]));
        assert_eq!(decode_signature(""), None);
        assert_eq!(
            decode_signature(&BASE64.encode([7u8; DIGEST_LEN - 1])),
            None
        );
        assert_eq!(
            decode_signature(&BASE64.encode([7u8; DIGEST_LEN + 1])),
            None
        );
        assert_eq!(decode_signature(&encoded[..43]), None);
    }
}
