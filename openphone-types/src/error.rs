//! The crate's one error type.

/// An error from parsing or validating a shared type.
///
/// Messages never include the rejected input: phone numbers are personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not an E.164 phone number (`+`, a non-zero digit, then 1 to 14 digits).
    #[error("not an E.164 phone number: {reason}")]
    InvalidE164 {
        /// Which rule the input broke.
        reason: &'static str,
    },
}
