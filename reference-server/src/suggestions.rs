//! Contact details found in inbound messages, suggested for approval, never applied on their
//! own.
//!
//! [`extract`] finds, with simple patterns, a name ("my name is Ana Ruiz", "this is Ana"),
//! email addresses, and street addresses ("1420 Oak Street") in a text. Projection records
//! each as a pending suggestion for the sender's number; a person approves (the contact with
//! that number is updated, or created) or rejects it. [`Extractor`] is the seam for a smarter
//! (LLM) extractor later.
//!
//! [`SuggestionStore`] keeps them: [`Store`] in SQL (`contact_suggestions`, written by the
//! projection's `Suggestion` changes in the ingestion transaction), [`MemoryRecords`] in
//! memory (the same changes, through [`crate::records::Records::apply`]); [`conformance::run`]
//! is the suite both pass.

use std::future::Future;

use crate::projection::Change;
use crate::records::{Memory, MemoryRecords};
use crate::store::{Store, StoreError};

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

/// The longest detail suggested, in bytes: an email address is at most 254 characters (RFC
/// 5321), and no name or street address comes near. A longer "word" in a message is no
/// contact detail, and PostgreSQL refuses an index entry over about 2,700 bytes, which would
/// fail the message's whole delivery.
pub const MAX_VALUE_BYTES: usize = 254;

/// The details found in `text` with simple patterns, none longer than [`MAX_VALUE_BYTES`].
pub fn extract(text: &str) -> Vec<(Kind, String)> {
    let mut found: Vec<(Kind, String)> = Vec::new();
    let mut push = |kind: Kind, value: String| {
        if value.len() <= MAX_VALUE_BYTES && !found.iter().any(|(k, v)| *k == kind && *v == value) {
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
    // Whether the word at `index` is `keyword` (lowercase ASCII), in any case; compared in
    // place, not lowercased into a new string per word.
    let is = |index: usize, keyword: &str| {
        words
            .get(index)
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    };
    for index in 0..words.len() {
        let introduces =
            (is(index, "name") && index >= 1 && is(index - 1, "my") && is(index + 1, "is"))
                .then_some(index + 2)
                .or_else(|| {
                    (is(index, "this")
                        && is(index + 1, "is")
                        && (index == 0 || words[index - 1].ends_with(['.', '!', ','])))
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
                let Some(suffix) = words.get(index + length + 1) else {
                    break;
                };
                let suffix = trim_word(suffix);
                if STREET_SUFFIXES
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(suffix))
                {
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

/// A suggested contact detail.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Suggestion {
    /// Its id: suggestions are numbered in the order they were found.
    pub id: i64,
    /// The inbound message it was found in.
    pub message_id: String,
    /// The number that sent it.
    pub phone: String,
    /// `name`, `email` or `address`.
    pub kind: String,
    /// The detail.
    pub value: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Who decided (an API token id), once decided.
    pub decided_by: Option<String>,
    /// When it was decided, unix milliseconds.
    pub decided_ms: Option<i64>,
}

/// Where suggestions are kept. They are added by applying the projection's `Suggestion`
/// changes (one per message, kind and value, however often applied).
pub trait SuggestionStore: Clone + Send + Sync + 'static {
    /// At most `limit` suggestions (none for a limit below 1), newest first, of `status` when
    /// given (an empty status matches none), with ids below `before`.
    fn suggestions(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Suggestion>, StoreError>> + Send;

    /// Records a decision (`approved` or `rejected`) on a pending suggestion: the suggestion
    /// as decided, or `None` when no pending suggestion has this id (a suggestion is decided
    /// once).
    fn decide(
        &self,
        id: i64,
        status: &str,
        by: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Suggestion>, StoreError>> + Send;

    /// Takes back the decision `by` made at `decided_ms` (an approval whose detail could not
    /// be applied): the suggestion is pending again. `false` when it was not decided so
    /// (another decision, or none).
    fn reopen(
        &self,
        id: i64,
        by: &str,
        decided_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl SuggestionStore for Store {
    async fn suggestions(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Suggestion>, StoreError> {
        self.fetch_all(
            "SELECT id, message_id, phone, kind, value, status, decided_by, decided_ms FROM contact_suggestions \
             WHERE ($1 IS NULL OR status = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
            &[
                status.map(str::to_owned).into(),
                before.unwrap_or(i64::MAX).into(),
                limit.max(0).into(),
            ],
        )
        .await
    }

    async fn decide(
        &self,
        id: i64,
        status: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<Suggestion>, StoreError> {
        self.fetch_optional(
            "UPDATE contact_suggestions SET status = $1, decided_by = $2, decided_ms = $3 \
             WHERE id = $4 AND status = 'pending' \
             RETURNING id, message_id, phone, kind, value, status, decided_by, decided_ms",
            &[status.into(), by.into(), now_ms.into(), id.into()],
        )
        .await
    }

    async fn reopen(&self, id: i64, by: &str, decided_ms: i64) -> Result<bool, StoreError> {
        let reopened: Option<(i64,)> = self
            .fetch_optional(
                "UPDATE contact_suggestions SET status = 'pending', decided_by = NULL, decided_ms = NULL \
                 WHERE id = $1 AND status <> 'pending' AND decided_by = $2 AND decided_ms = $3 \
                 RETURNING id",
                &[id.into(), by.into(), decided_ms.into()],
            )
            .await?;
        Ok(reopened.is_some())
    }
}

impl Memory {
    /// Merges a `Suggestion` change: one suggestion per message, kind and value.
    pub(crate) fn suggest(&mut self, change: &Change) {
        let Change::Suggestion {
            message_id,
            phone,
            kind,
            value,
            ..
        } = change
        else {
            return;
        };
        let known = self.suggestions.iter().any(|suggestion| {
            suggestion.message_id == *message_id
                && suggestion.kind == *kind
                && suggestion.value == *value
        });
        if !known {
            let id = i64::try_from(self.suggestions.len()).unwrap_or(i64::MAX) + 1;
            self.suggestions.push(Suggestion {
                id,
                message_id: message_id.clone(),
                phone: phone.clone(),
                kind: (*kind).to_owned(),
                value: value.clone(),
                status: "pending".to_owned(),
                decided_by: None,
                decided_ms: None,
            });
        }
    }
}

impl SuggestionStore for MemoryRecords {
    async fn suggestions(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Suggestion>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .suggestions
                .iter()
                .rev()
                .filter(|suggestion| status.is_none_or(|status| suggestion.status == status))
                .filter(|suggestion| suggestion.id < before.unwrap_or(i64::MAX))
                .take(usize::try_from(limit).unwrap_or(0))
                .cloned()
                .collect()
        }))
    }

    async fn decide(
        &self,
        id: i64,
        status: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<Option<Suggestion>, StoreError> {
        Ok(self.with(|memory| {
            let suggestion = memory
                .suggestions
                .iter_mut()
                .find(|suggestion| suggestion.id == id && suggestion.status == "pending")?;
            suggestion.status = status.to_owned();
            suggestion.decided_by = Some(by.to_owned());
            suggestion.decided_ms = Some(now_ms);
            Some(suggestion.clone())
        }))
    }

    async fn reopen(&self, id: i64, by: &str, decided_ms: i64) -> Result<bool, StoreError> {
        Ok(self.with(|memory| {
            let Some(suggestion) = memory.suggestions.iter_mut().find(|suggestion| {
                suggestion.id == id
                    && suggestion.status != "pending"
                    && suggestion.decided_by.as_deref() == Some(by)
                    && suggestion.decided_ms == Some(decided_ms)
            }) else {
                return false;
            };
            suggestion.status = "pending".to_owned();
            suggestion.decided_by = None;
            suggestion.decided_ms = None;
            true
        }))
    }
}

/// The suite every [`SuggestionStore`] must pass; the crate runs it on memory, SQLite and
/// PostgreSQL.
pub mod conformance {
    use super::SuggestionStore;
    use crate::projection::Change;
    use crate::records::Records;

    fn found(message_id: &str, kind: &'static str, value: &str) -> Change {
        Change::Suggestion {
            message_id: message_id.to_owned(),
            phone: "+15555550101".to_owned(),
            kind,
            value: value.to_owned(),
            at_ms: 1_000,
        }
    }

    fn values<S: AsRef<[super::Suggestion]>>(suggestions: S) -> Vec<String> {
        suggestions
            .as_ref()
            .iter()
            .map(|suggestion| suggestion.value.clone())
            .collect()
    }

    /// Runs every case on `store`, which must hold no suggestions.
    pub async fn run<S: SuggestionStore + Records>(store: S) {
        // Found twice (a redelivery, a replay): kept once.
        let first = [
            found("AC1", "name", "Ana Ruiz"),
            found("AC1", "email", "ana@example.com"),
        ];
        for _ in 0..2 {
            store.apply(&first).await.expect("apply");
        }
        store
            .apply(&[found("AC2", "address", "1420 Oak Street")])
            .await
            .expect("apply");
        let all = store.suggestions(None, None, 10).await.expect("list");
        assert_eq!(
            values(&all),
            ["1420 Oak Street", "ana@example.com", "Ana Ruiz"],
            "newest first"
        );
        assert!(
            all.iter()
                .all(|s| s.status == "pending" && s.decided_by.is_none())
        );
        assert_eq!(all[1].message_id, "AC1");
        assert_eq!(all[1].kind, "email");
        assert_eq!(all[1].phone, "+15555550101");
        assert!(all[0].id > all[1].id && all[1].id > all[2].id);

        // Pages resume below the last id.
        let next = store
            .suggestions(None, Some(all[0].id), 1)
            .await
            .expect("page");
        assert_eq!(values(&next), ["ana@example.com"]);

        // Decided once; a second decision, or an unknown id, finds no pending suggestion.
        let email = all[1].id;
        let decided = store
            .decide(email, "approved", "tok1", 5_000)
            .await
            .expect("decide")
            .expect("pending");
        assert_eq!(decided.status, "approved");
        assert_eq!(decided.decided_by.as_deref(), Some("tok1"));
        assert_eq!(decided.decided_ms, Some(5_000));
        assert!(
            store
                .decide(email, "rejected", "tok2", 6_000)
                .await
                .expect("decide")
                .is_none()
        );
        assert!(
            store
                .decide(999_999, "rejected", "tok2", 6_000)
                .await
                .expect("decide")
                .is_none()
        );

        // A decision is taken back only by who made it, when they made it; then it is
        // pending, and decided again like any other.
        for (by, at) in [("tok2", 5_000), ("tok1", 4_999)] {
            assert!(
                !store.reopen(email, by, at).await.expect("reopen"),
                "{by} {at}"
            );
        }
        assert!(store.reopen(email, "tok1", 5_000).await.expect("reopen"));
        assert!(!store.reopen(email, "tok1", 5_000).await.expect("reopen"));
        let decided = store
            .decide(email, "approved", "tok1", 5_000)
            .await
            .expect("decide")
            .expect("pending again");

        // Finding it again does not make it pending again.
        store.apply(&first).await.expect("apply");
        let pending = store
            .suggestions(Some("pending"), None, 10)
            .await
            .expect("list");
        assert_eq!(values(&pending), ["1420 Oak Street", "Ana Ruiz"]);
        let approved = store
            .suggestions(Some("approved"), None, 10)
            .await
            .expect("list");
        assert_eq!(approved, [decided]);
        // An empty status is a status no suggestion has; a limit below 1 lists nothing.
        for (status, limit) in [(Some(""), 10), (None, 0), (None, -1)] {
            let none = store.suggestions(status, None, limit).await.expect("list");
            assert!(none.is_empty(), "{status:?}, limit {limit}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_suggestions_pass_the_conformance_suite() {
        super::conformance::run(crate::records::MemoryRecords::new()).await;
    }

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

    #[test]
    fn nothing_longer_than_an_email_address_can_be_is_suggested() {
        let local = "a".repeat(MAX_VALUE_BYTES - "@b.co".len());
        let longest = format!("{local}@b.co");
        assert_eq!(extract(&longest), [(Kind::Email, longest.clone())]);
        let word = format!("B{}", "é".repeat(200));
        for text in [
            format!("a{longest}"),
            format!("my name is {word}"),
            format!("12 {word} Street"),
        ] {
            assert!(extract(&text).is_empty(), "{text}");
        }
    }
}
