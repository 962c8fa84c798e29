//! Phone numbers: validated E.164, and the looser addresses OpenPhone sends.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A phone number in E.164 form: `+`, a digit from 1 to 9, then 1 to 14 more digits.
///
/// This is the format OpenPhone requires wherever it takes a number. Parsing checks the format
/// only; whether the number is assigned, or mobile, is a question for a validator.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct E164(String);

impl E164 {
    /// Parses and validates an E.164 number. Surrounding whitespace is not accepted.
    ///
    /// # Errors
    /// [`Error::InvalidE164`] when the text is not `+` followed by 2 to 15 digits with no leading
    /// zero.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let digits = text.strip_prefix('+').ok_or(Error::InvalidE164 {
            reason: "must start with '+'",
        })?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidE164 {
                reason: "only digits may follow '+'",
            });
        }
        if !(2..=15).contains(&digits.len()) {
            return Err(Error::InvalidE164 {
                reason: "must have 2 to 15 digits",
            });
        }
        if digits.starts_with('0') {
            return Err(Error::InvalidE164 {
                reason: "the country code cannot start with 0",
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The number as text, with its leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last four digits masked, for logs: `+1******0123`.
    pub fn masked(&self) -> String {
        let keep = 4.min(self.0.len() - 1);
        let hidden = self.0.len() - 1 - keep;
        format!("+{}{}", "*".repeat(hidden), &self.0[1 + hidden..])
    }
}

/// Debug shows the masked number, so structs holding numbers can be logged.
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for E164 {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for E164 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for E164 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where OpenPhone puts a phone number, it sometimes puts something else: short codes,
/// `Anonymous`, `Restricted`, internal identifiers. A `PhoneAddress` keeps either.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhoneAddress {
    /// A valid E.164 number.
    E164(E164),
    /// Anything else, exactly as given.
    Other(String),
}

impl PhoneAddress {
    /// The E.164 number, if this address is one.
    pub fn as_e164(&self) -> Option<&E164> {
        match self {
            Self::E164(number) => Some(number),
            Self::Other(_) => None,
        }
    }

    /// The address as text, as OpenPhone sent it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::E164(number) => number.as_str(),
            Self::Other(text) => text,
        }
    }
}

impl From<&str> for PhoneAddress {
    fn from(text: &str) -> Self {
        match E164::parse(text) {
            Ok(number) => Self::E164(number),
            Err(_) => Self::Other(text.to_owned()),
        }
    }
}

impl From<String> for PhoneAddress {
    fn from(text: String) -> Self {
        match E164::parse(&text) {
            Ok(number) => Self::E164(number),
            Err(_) => Self::Other(text),
        }
    }
}

impl From<E164> for PhoneAddress {
    fn from(number: E164) -> Self {
        Self::E164(number)
    }
}

impl fmt::Display for PhoneAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for PhoneAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for PhoneAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(String::deserialize(deserializer)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_numbers() {
        for ok in ["+15555550123", "+442071838750", "+12", "+123456789012345"] {
            assert_eq!(E164::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_invalid_numbers_with_a_reason_and_without_echoing() {
        for bad in [
            "",
            "+",
            "15555550123",
            "+1",
            "+0123456",
            "+1234567890123456",
            "+1 555 555",
            " +15555550123",
            "+1555555012a",
        ] {
            let err = E164::parse(bad).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("not an E.164 phone number"), "{shown}");
            if bad.len() > 3 {
                assert!(!shown.contains(bad.trim()), "error echoes input: {shown}");
            }
        }
    }

    #[test]
    fn debug_masks_the_number() {
        let number = E164::parse("+15555550123").unwrap();
        assert_eq!(format!("{number:?}"), "E164(+*******0123)");
        assert_eq!(E164::parse("+12").unwrap().masked(), "+12");
    }

    #[test]
    fn addresses_keep_non_numbers() {
        assert!(matches!(
            PhoneAddress::from("Anonymous"),
            PhoneAddress::Other(_)
        ));
        let address: PhoneAddress = serde_json::from_str("\"+15555550123\"").unwrap();
        assert!(address.as_e164().is_some());
        assert_eq!(serde_json::to_string(&address).unwrap(), "\"+15555550123\"");
    }

    proptest! {
        #[test]
        fn every_valid_shape_round_trips(first in 1u8..=9, rest in "[0-9]{1,14}") {
            let text = format!("+{first}{rest}");
            let number = E164::parse(&text).unwrap();
            prop_assert_eq!(number.as_str(), text.as_str());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".*") {
            let _ = E164::parse(&text);
        }
    }
}
