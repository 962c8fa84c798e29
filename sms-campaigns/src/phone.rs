//! Phone numbers as people type them, normalized to E.164.

use std::str::FromStr;

use openphone_types::E164;

use crate::Error;

/// A default region for numbers written without a country code (an ISO 3166 code such as
/// `US`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// The United States (and the NANP): the default.
    pub const US: Region = Region(phonenumber::country::Id::US);

    /// Parses a two-letter region code, case ignored.
    pub fn parse(code: &str) -> Result<Self, Error> {
        phonenumber::country::Id::from_str(&code.trim().to_ascii_uppercase())
            .map(Region)
            .map_err(|_| Error::Invalid(format!("unknown region code {code:?}")))
    }
}

impl Default for Region {
    fn default() -> Self {
        Region::US
    }
}

/// Normalizes `text` (`(415) 555-0134`, `+44 20 7946 0958`, `415.555.0134`) to E.164, using
/// `region` when it has no country code. Refuses what is not a possible, valid number.
pub fn normalize(text: &str, region: Region) -> Result<E164, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("no phone number".to_owned());
    }
    // Quoted in reasons, at most 40 characters of it.
    let shown = match trimmed.char_indices().nth(40) {
        Some((end, _)) => format!("{:?}...", &trimmed[..end]),
        None => format!("{trimmed:?}"),
    };
    let parsed = phonenumber::parse(Some(region.0), trimmed)
        .map_err(|error| format!("{shown} is not a phone number ({error})"))?;
    if !parsed.is_valid() {
        return Err(format!("{shown} is not a valid phone number"));
    }
    let formatted = parsed.format().mode(phonenumber::Mode::E164).to_string();
    E164::parse(&formatted).map_err(|error| error.to_string())
}

/// The line type the numbering plan gives `number`, when the plan tells (it does not for the
/// NANP, where mobile and landline ranges are shared).
pub(crate) fn planned_line_type(number: &E164) -> crate::LineType {
    use crate::LineType;
    let Ok(parsed) = phonenumber::parse(None, number.as_str()) else {
        return LineType::Unknown;
    };
    match parsed.number_type(&phonenumber::metadata::DATABASE) {
        phonenumber::Type::Mobile => LineType::Mobile,
        phonenumber::Type::FixedLine => LineType::Landline,
        phonenumber::Type::TollFree => LineType::TollFree,
        phonenumber::Type::Voip => LineType::Voip,
        _ => LineType::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_spellings_normalize() {
        for text in [
            "(415) 555-2671",
            "415.555.2671",
            "+1 415 555 2671",
            "14155552671",
        ] {
            assert_eq!(
                normalize(text, Region::US).expect(text).as_str(),
                "+14155552671"
            );
        }
        assert_eq!(
            normalize("020 7946 0958", Region::parse("gb").expect("gb"))
                .expect("uk")
                .as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(normalize("", Region::US).is_err());
        assert!(normalize("call me", Region::US).is_err());
        assert!(normalize("555-01", Region::US).is_err());
        assert!(Region::parse("XX").is_err());
    }
}
