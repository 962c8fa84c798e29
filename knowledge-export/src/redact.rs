//! Redaction before anything leaves the system: phone numbers, email addresses, card-like
//! numbers and street addresses become placeholders.

use regex::Regex;

/// Replaces personal data in text with `[phone]`, `[email]`, `[card]`, `[address]`.
#[derive(Debug, Clone)]
pub struct Redactor {
    email: Regex,
    card: Regex,
    phone: Regex,
    address: Regex,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    /// The redactor with the built-in patterns.
    pub fn new() -> Self {
        #[allow(clippy::unwrap_used)] // constant patterns, covered by the tests
        Redactor {
            email: Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap(),
            // 13 to 19 digits, with optional spaces or dashes between groups.
            card: Regex::new(r"\b(?:\d[ -]?){12,18}\d\b").unwrap(),
            // +1 (415) 555-0100, 415.555.0100, +44 20 7946 0958, 4155550100.
            phone: Regex::new(r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}\b").unwrap(),
            // A house number, a street name and a street type.
            address: Regex::new(
                r"(?i)\b\d{1,6}\s+(?:[A-Za-z0-9.'-]+\s+){1,4}(?:st|street|ave|avenue|rd|road|blvd|boulevard|dr|drive|ln|lane|ct|court|way|pl|place|pkwy|parkway|hwy|highway|cir|circle|ter|terrace)\b\.?",
            )
            .unwrap(),
        }
    }

    /// `text` with every match replaced. Card-like numbers are replaced only when they pass
    /// the Luhn check (order numbers stay); phone-like digits that are not cards become
    /// `[phone]`.
    pub fn redact(&self, text: &str) -> String {
        let text = self.email.replace_all(text, "[email]");
        let text = self.card.replace_all(&text, |caps: &regex::Captures<'_>| {
            let digits: String = caps[0].chars().filter(char::is_ascii_digit).collect();
            if luhn(&digits) {
                "[card]".to_owned()
            } else {
                caps[0].to_owned()
            }
        });
        let text = self.address.replace_all(&text, "[address]");
        self.phone.replace_all(&text, "[phone]").into_owned()
    }
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut d = c.to_digit(10).unwrap_or(0);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    digits.len() >= 13 && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_becomes_placeholders() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("Call me at (415) 555-0100 or +1 415 555 0101"),
            "Call me at [phone] or [phone]"
        );
        assert_eq!(
            r.redact("mail ana.lopez+golf@example.co.uk now"),
            "mail [email] now"
        );
        assert_eq!(
            r.redact("card 4111 1111 1111 1111 thanks"),
            "card [card] thanks"
        );
        assert_eq!(
            r.redact("I live at 1234 N Main Street, Austin"),
            "I live at [address], Austin"
        );
        assert_eq!(
            r.redact("bay 3 at 7pm for 4 people"),
            "bay 3 at 7pm for 4 people"
        );
    }

    #[test]
    fn non_luhn_long_numbers_are_not_cards() {
        let r = Redactor::new();
        assert!(!r.redact("order 1234567890123456").contains("[card]"));
    }
}
