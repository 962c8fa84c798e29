//! Phone validation: a [`PhoneValidator`] trait, the [`NumVerify`] HTTP client and an
//! [`OfflineValidator`] that checks the format only.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use openphone_types::E164;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The kind of line behind a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// A mobile phone: can receive SMS.
    Mobile,
    /// A fixed line.
    Landline,
    /// Voice over IP.
    Voip,
    /// A toll-free number.
    TollFree,
    /// Premium rate, satellite, paging and other special services.
    Special,
    /// The validator does not know.
    Unknown,
}

impl LineType {
    /// The stored name (`mobile`, `landline`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LineType::Mobile => "mobile",
            LineType::Landline => "landline",
            LineType::Voip => "voip",
            LineType::TollFree => "toll_free",
            LineType::Special => "special",
            LineType::Unknown => "unknown",
        }
    }

    /// Parses a stored name; anything unrecognized is [`LineType::Unknown`].
    pub fn parse(text: &str) -> LineType {
        match text {
            "mobile" => LineType::Mobile,
            "landline" => LineType::Landline,
            "voip" => LineType::Voip,
            "toll_free" => LineType::TollFree,
            "special" => LineType::Special,
            _ => LineType::Unknown,
        }
    }
}

/// What a validator said of a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Validation {
    /// The number exists in the numbering plan (and, for a live lookup, in service).
    pub valid: bool,
    /// The line type, when known.
    pub line_type: LineType,
    /// The carrier, when known.
    pub carrier: Option<String>,
    /// Which validator answered (`numverify`, `offline`).
    pub source: String,
}

impl Validation {
    /// Whether a campaign may text the number: valid, and a mobile or of unknown line type.
    pub fn keeps(&self) -> bool {
        self.valid && matches!(self.line_type, LineType::Mobile | LineType::Unknown)
    }
}

/// Checks phone numbers. Results are cached per number by the caller
/// ([`crate::CampaignStore::cached_validation`]).
pub trait PhoneValidator: Send + Sync {
    /// Validates `phone`. An error means the answer is unknown (service down, quota), not
    /// that the number is invalid.
    fn validate(&self, phone: &E164) -> impl Future<Output = Result<Validation, Error>> + Send;
}

/// Format-only validation, no network: the number parsed as valid when it was normalized, and
/// the line type is what the numbering plan tells (nothing for US and Canadian numbers).
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineValidator;

impl PhoneValidator for OfflineValidator {
    async fn validate(&self, phone: &E164) -> Result<Validation, Error> {
        Ok(Validation {
            valid: crate::phone::normalize(phone.as_str(), crate::Region::US).is_ok(),
            line_type: crate::phone::planned_line_type(phone),
            carrier: None,
            source: "offline".to_owned(),
        })
    }
}

/// The NumVerify (apilayer) number validation API: `GET {base}/validate?access_key=..&number=..`.
#[derive(Clone)]
pub struct NumVerify {
    http: reqwest::Client,
    base_url: String,
    access_key: String,
}

impl fmt::Debug for NumVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NumVerify")
            .field("base_url", &self.base_url)
            .field("access_key", &"[redacted]")
            .finish()
    }
}

/// NumVerify's documented endpoint (its free plan serves plain http only; paid plans https).
pub const NUMVERIFY_BASE_URL: &str = "https://apilayer.net/api";

impl NumVerify {
    /// A client with `access_key`, against `base_url` (normally [`NUMVERIFY_BASE_URL`]),
    /// with a 10-second timeout per lookup.
    pub fn new(base_url: impl Into<String>, access_key: impl Into<String>) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| Error::Validator {
                reason: "could not build the HTTP client".to_owned(),
                source: Some(Box::new(error)),
            })?;
        Ok(NumVerify {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            access_key: access_key.into(),
        })
    }
}

#[derive(Deserialize)]
struct NumVerifyAnswer {
    valid: Option<bool>,
    line_type: Option<String>,
    carrier: Option<String>,
    success: Option<bool>,
    error: Option<NumVerifyError>,
}

#[derive(Deserialize)]
struct NumVerifyError {
    code: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    info: Option<String>,
}

impl PhoneValidator for NumVerify {
    async fn validate(&self, phone: &E164) -> Result<Validation, Error> {
        let failed = |reason: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            Error::Validator { reason, source }
        };
        let number = phone.as_str().trim_start_matches('+');
        let response = self
            .http
            .get(format!("{}/validate", self.base_url))
            .query(&[("access_key", self.access_key.as_str()), ("number", number)])
            .send()
            .await
            .map_err(|error| {
                failed(
                    "NumVerify could not be reached".into(),
                    Some(Box::new(error.without_url())),
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("NumVerify answered HTTP {status}"), None));
        }
        let answer: NumVerifyAnswer = response.json().await.map_err(|error| {
            failed(
                "NumVerify's answer was not understood".into(),
                Some(Box::new(error.without_url())),
            )
        })?;
        if answer.success == Some(false) || answer.error.is_some() {
            let error = answer.error.unwrap_or(NumVerifyError {
                code: None,
                kind: None,
                info: None,
            });
            return Err(failed(
                format!(
                    "NumVerify error {} ({}): {}",
                    error.code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
                    error.kind.as_deref().unwrap_or("unknown"),
                    error.info.as_deref().unwrap_or("no detail")
                ),
                None,
            ));
        }
        let valid = answer
            .valid
            .ok_or_else(|| failed("NumVerify's answer has no `valid` field".into(), None))?;
        let line_type = match answer.line_type.as_deref() {
            Some("mobile") => LineType::Mobile,
            Some("landline") => LineType::Landline,
            Some("toll_free") => LineType::TollFree,
            Some("voip") => LineType::Voip,
            Some("special_services" | "premium_rate" | "satellite" | "paging") => LineType::Special,
            _ => LineType::Unknown,
        };
        Ok(Validation {
            valid,
            line_type,
            carrier: answer.carrier.filter(|c| !c.is_empty()),
            source: "numverify".to_owned(),
        })
    }
}
