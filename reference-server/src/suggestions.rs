//! Contact details found in inbound messages, suggested for approval, never applied on their
//! own.
//!
//! [`extract`] finds, with simple patterns, a name ("my name is Ana Ruiz", "this is Ana"),
//! email addresses, and street addresses ("1420 Oak Street") in a text. Projection records
//! each as a pending suggestion for the sender's number; a person approves (the contact with
//! that number is updated, or created) or rejects it. [`Extractor`] is the seam for a smarter
//! (LLM) extractor later.

/// What kind of detail a suggestion holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A person's name.
    Name,
    /// An email address.
    Email,
    /// A street address.
    Address,
}

impl Kind {
    /// `name`, `email` or `address`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Address => "address",
        }
    }
}

/// Finds contact details in a text.
pub trait Extractor: Send + Sync {
    /// The details found, each once.
    fn extract(&self, text: &str) -> Vec<(Kind, String)>;
}

/// The pattern-based extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Patterns;

impl Extractor for Patterns {
    fn extract(&self, text: &str) -> Vec<(Kind, String)> {
        extract(text)
    }
}

const STREET_SUFFIXES: [&str; 16] = [
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "lane",
    "ln",
    "court",
    "ct",
    "way",
    "place",
];

fn trim_word(word: &str) -> &str {
    word.trim_matches(|c: char| {
        !c.is_alphanumeric() && c != '@' && c != '.' && c != '-' && c != '_' && c != '\''
    })
    .trim_end_matches('.')
}

/// The details found in `text` with simple patterns.
pub fn extract(text: &str) -> Vec<(Kind, String)> {
    let mut found: Vec<(Kind, String)> = Vec::new();
    let mut push = |kind: Kind, value: String| {
        if !found.iter().any(|(k, v)| *k == kind && *v == value) {
            found.push((kind, value));
        }
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    for word in &words {
        let word = trim_word(word);
        if let Some((local, domain)) = word.split_once('@')
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
        {
            push(Kind::Email, word.to_lowercase());
        }
    }
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    for (index, _) in words.iter().enumerate() {
        let introduces = (lower[index] == "name"
            && index >= 1
            && lower[index - 1] == "my"
            && lower.get(index + 1).is_some_and(|w| w == "is"))
        .then_some(index + 2)
        .or_else(|| {
            (lower[index] == "this"
                && lower.get(index + 1).is_some_and(|w| w == "is")
                && (index == 0 || lower[index - 1].ends_with(['.', '!', ','])))
            .then_some(index + 2)
        });
        if let Some(start) = introduces {
            let mut name: Vec<&str> = Vec::new();
            for raw in words.iter().skip(start).take(3) {
                let word = trim_word(raw);
                let capitalized = word.chars().next().is_some_and(char::is_uppercase)
                    && word
                        .chars()
                        .all(|c| c.is_alphabetic() || c == '-' || c == '\'');
                if !capitalized {
                    break;
                }
                name.push(word);
                // A name ends with its sentence or clause.
                if raw.ends_with(['.', ',', '!', '?', ';']) {
                    break;
                }
            }
            if !name.is_empty() {
                push(Kind::Name, name.join(" "));
            }
        }
        // A house number, one to three words, a street suffix.
        if words[index].chars().all(|c| c.is_ascii_digit()) && words[index].len() <= 6 {
            for length in 1..=3 {
                let Some(suffix) = lower.get(index + length + 1) else {
                    break;
                };
                if STREET_SUFFIXES.contains(&trim_word(suffix)) {
                    let address: Vec<&str> = words[index..=index + length + 1]
                        .iter()
                        .map(|w| trim_word(w))
                        .collect();
                    push(Kind::Address, address.join(" "));
                    break;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_emails_and_addresses_are_found() {
        let found = extract(
            "Hi, my name is Ana Ruiz. The house is at 1420 Oak Street, email me at Ana.Ruiz@Example.com!",
        );
        assert_eq!(
            found,
            [
                (Kind::Email, "ana.ruiz@example.com".to_owned()),
                (Kind::Name, "Ana Ruiz".to_owned()),
                (Kind::Address, "1420 Oak Street".to_owned()),
            ]
        );
        assert_eq!(
            extract("This is Ben. Crack in the basement at 77 North Maple Ave"),
            [
                (Kind::Name, "Ben".to_owned()),
                (Kind::Address, "77 North Maple Ave".to_owned())
            ]
        );
        assert!(extract("is bay 2 free at 6pm? this is urgent").is_empty());
        assert!(extract("reply to @ or foo@bar").is_empty());
    }
}
