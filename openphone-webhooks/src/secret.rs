//! Signing secrets and the two signature schemes.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::Error;

type HmacSha256 = Hmac<Sha256>;

/// Header of the legacy scheme.
pub const LEGACY_SIGNATURE_HEADER: &str = "openphone-signature";
/// Delivery id header of the Standard Webhooks scheme.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Timestamp header (unix seconds) of the Standard Webhooks scheme.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Signature header of the Standard Webhooks scheme.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The two ways OpenPhone signs webhook deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `openphone-signature: hmac;1;<timestamp ms>;<base64 HMAC-SHA256>` over
    /// `"<timestamp>.<body>"`, keyed with the base64-decoded signing secret. Used by webhooks
    /// created in the app and through `/v1/webhooks`.
    Legacy,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature`
    /// (`v1,<base64>` entries) over `"<id>.<timestamp>.<body>"`, keyed with the base64 after
    /// `whsec_`. Used by webhooks of the 2026-03-30 API.
    Standard,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Legacy => "legacy openphone-signature",
            Self::Standard => "Standard Webhooks",
        })
    }
}

/// A webhook signing secret, tied to the scheme it signs with.
///
/// The key is decoded and an HMAC state keyed with it is prepared once, so verifying does not
/// repeat that work. `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningSecret {
    scheme: Scheme,
    keyed: HmacSha256,
}

impl SigningSecret {
    /// A legacy secret: the base64 signing secret shown in the OpenPhone app ("Reveal signing
    /// secret") or returned as `key` by `/v1/webhooks`.
    ///
    /// # Errors
    /// [`Error::InvalidSecret`] when the text is empty, not standard base64, or decodes to
    /// nothing.
    pub fn legacy(base64_secret: &str) -> Result<Self, Error> {
        Self::decode(Scheme::Legacy, base64_secret)
    }

    /// A Standard Webhooks secret, `whsec_` followed by base64, as returned once by
    /// `POST /webhooks` or `/rotate`. The prefix is optional.
    ///
    /// # Errors
    /// [`Error::InvalidSecret`] when the text after the prefix is empty, not base64, or decodes
    /// to nothing.
    pub fn standard(secret: &str) -> Result<Self, Error> {
        Self::decode(
            Scheme::Standard,
            secret.strip_prefix("whsec_").unwrap_or(secret),
        )
    }

    /// Reads a secret as configured: `whsec_…` is a Standard Webhooks secret, anything else a
    /// legacy base64 secret. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`Error::InvalidSecret`] as for [`SigningSecret::legacy`] and
    /// [`SigningSecret::standard`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.starts_with("whsec_") {
            Self::standard(text)
        } else {
            Self::legacy(text)
        }
    }

    /// A secret from raw key bytes.
    ///
    /// # Errors
    /// [`Error::InvalidSecret`] when `key` is empty.
    pub fn from_bytes(scheme: Scheme, key: &[u8]) -> Result<Self, Error> {
        if key.is_empty() {
            return Err(Error::InvalidSecret {
                reason: "the key is empty",
            });
        }
        let keyed = HmacSha256::new_from_slice(key).map_err(|_| Error::InvalidSecret {
            reason: "the key cannot key HMAC-SHA256",
        })?;
        Ok(Self { scheme, keyed })
    }

    fn decode(scheme: Scheme, base64_key: &str) -> Result<Self, Error> {
        if base64_key.is_empty() {
            return Err(Error::InvalidSecret {
                reason: "the secret is empty",
            });
        }
        let key = BASE64
            .decode(base64_key)
            .map_err(|_| Error::InvalidSecret {
                reason: "the secret is not valid base64",
            })?;
        Self::from_bytes(scheme, &key)
    }

    /// The scheme this secret signs with.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// HMAC-SHA256 over the parts, concatenated, without copying the body.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Signs a body the way OpenPhone does, for tests and simulators, and returns the headers
    /// to send with it.
    ///
    /// - Legacy: `openphone-signature: hmac;1;<at in milliseconds>;<signature>`;
    ///   `delivery_id` is not part of this scheme and is ignored.
    /// - Standard: `webhook-id: <delivery_id>`, `webhook-timestamp: <at in seconds>` and
    ///   `webhook-signature: v1,<signature>`.
    ///
    /// # Errors
    /// [`Error::MalformedHeader`] when `delivery_id` cannot be a header value (Standard only).
    pub fn sign(
        &self,
        delivery_id: &str,
        at: OffsetDateTime,
        body: &[u8],
    ) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        match self.scheme {
            Scheme::Legacy => {
                let millis = (at.unix_timestamp_nanos() / 1_000_000).to_string();
                let signature = BASE64.encode(self.mac(&[millis.as_bytes(), b".", body]));
                headers.insert(
                    LEGACY_SIGNATURE_HEADER,
                    header_value(&format!("hmac;1;{millis};{signature}")),
                );
            }
            Scheme::Standard => {
                let id =
                    HeaderValue::from_str(delivery_id).map_err(|_| Error::MalformedHeader {
                        header: WEBHOOK_ID_HEADER,
                        reason: "not a valid header value",
                    })?;
                let seconds = at.unix_timestamp().to_string();
                let signature = BASE64.encode(self.mac(&[
                    delivery_id.as_bytes(),
                    b".",
                    seconds.as_bytes(),
                    b".",
                    body,
                ]));
                headers.insert(WEBHOOK_ID_HEADER, id);
                headers.insert(WEBHOOK_TIMESTAMP_HEADER, header_value(&seconds));
                headers.insert(
                    WEBHOOK_SIGNATURE_HEADER,
                    header_value(&format!("v1,{signature}")),
                );
            }
        }
        Ok(headers)
    }
}

/// Digits, base64 and separators are always valid header text.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("digits, base64 and separators are valid header text")
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningSecret")
            .field("scheme", &self.scheme)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl FromStr for SigningSecret {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_picks_the_scheme_from_the_prefix() {
        let legacy = SigningSecret::parse("R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=").unwrap();
        assert_eq!(legacy.scheme(), Scheme::Legacy);
        let standard = SigningSecret::parse(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        assert_eq!(standard.scheme(), Scheme::Standard);
    }

    #[test]
    fn bad_secrets_are_rejected_without_echo() {
        for bad in ["", "whsec_", "not base64!!", "whsec_%%%%"] {
            let err = SigningSecret::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidSecret { .. }),
                "{bad:?}: {err:?}"
            );
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
            }
        }
        assert!(SigningSecret::from_bytes(Scheme::Legacy, b"").is_err());
    }

    #[test]
    fn debug_redacts_the_key() {
        let secret = SigningSecret::standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let shown = format!("{secret:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }
}
