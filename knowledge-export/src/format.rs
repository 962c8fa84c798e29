//! The export format: one JSON object per resolved thread (JSON Lines), versioned.
//!
//! ```json
//! {"format":"openphone-thread/1","thread_id":42,"phone_number_id":"PN1",
//!  "participants":["+14155550100"],"started_at":"...","ended_at":"...","resolved_at":"...",
//!  "entries":[{"kind":"message","role":"customer","at":"...","text":"Is bay 3 free?"},
//!             {"kind":"call","role":"staff","at":"...","text":null}]}
//! ```
//!
//! `role` is `customer` for incoming entries and `staff` for outgoing ones. A call entry
//! carries `summary`, `next_steps` and `transcript` when OpenPhone produced them (absent
//! otherwise). Fields are only ever added within a format version; a change of meaning bumps
//! it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thread_resolver::{EntryKind, Snapshot};
use time::OffsetDateTime;

use crate::redact::Redactor;

/// The format version written in every record.
pub const FORMAT: &str = "openphone-thread/1";

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer (incoming).
    Customer,
    /// Our staff (outgoing).
    Staff,
}

/// One entry of an exported thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEntry {
    /// `message`, `call` or `voicemail`.
    pub kind: EntryKind,
    /// Who.
    pub role: Role,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// A message's text (redacted when asked).
    pub text: Option<String>,
    /// A call's AI summary points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Vec<String>>,
    /// A call's suggested next steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<Vec<String>>,
    /// A call's transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<TranscriptLine>>,
}

/// One line of a call transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Who spoke (a number or a user, redacted when asked).
    pub speaker: String,
    /// What they said.
    pub text: String,
}

/// What OpenPhone produced for a call after it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallDetail {
    /// AI summary points.
    pub summary: Vec<String>,
    /// Suggested next steps.
    pub next_steps: Vec<String>,
    /// The transcript.
    pub transcript: Vec<TranscriptLine>,
}

/// One exported thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// [`FORMAT`].
    pub format: String,
    /// The thread's id.
    pub thread_id: i64,
    /// Our number (its phone number id).
    pub phone_number_id: String,
    /// The other participants (redacted when asked).
    pub participants: Vec<String>,
    /// The first entry's time.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The last entry's time.
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// When it was resolved.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Its entries, oldest first.
    pub entries: Vec<ExportEntry>,
}

impl ExportRecord {
    /// The record of `snapshot`, redacted by `redactor` when given.
    pub fn from_snapshot(snapshot: &Snapshot, redactor: Option<&Redactor>) -> Self {
        Self::with_calls(snapshot, redactor, &HashMap::new())
    }

    /// [`ExportRecord::from_snapshot`], with the details of its calls by call id.
    pub fn with_calls(
        snapshot: &Snapshot,
        redactor: Option<&Redactor>,
        calls: &HashMap<String, CallDetail>,
    ) -> Self {
        let thread = &snapshot.thread;
        let (phone_number_id, others) = thread.key.split_once('|').unwrap_or(("", &thread.key));
        let redact = |text: &str| match redactor {
            Some(redactor) => redactor.redact(text),
            None => text.to_owned(),
        };
        ExportRecord {
            format: FORMAT.to_owned(),
            thread_id: thread.id.0,
            phone_number_id: phone_number_id.to_owned(),
            participants: others
                .split(',')
                .filter(|p| !p.is_empty())
                .map(redact)
                .collect(),
            started_at: snapshot.entries.first().map_or(thread.opened_at, |e| e.at),
            ended_at: snapshot
                .entries
                .last()
                .map_or(thread.last_activity_at, |e| e.at),
            resolved_at: thread.resolved_at,
            entries: snapshot
                .entries
                .iter()
                .map(|entry| ExportEntry {
                    kind: entry.kind,
                    role: if entry.direction == "outgoing" {
                        Role::Staff
                    } else {
                        Role::Customer
                    },
                    at: entry.at,
                    text: entry.text.as_deref().map(redact),
                    summary: calls
                        .get(&entry.id)
                        .filter(|d| !d.summary.is_empty())
                        .map(|d| d.summary.iter().map(|s| redact(s)).collect()),
                    next_steps: calls
                        .get(&entry.id)
                        .filter(|d| !d.next_steps.is_empty())
                        .map(|d| d.next_steps.iter().map(|s| redact(s)).collect()),
                    transcript: calls
                        .get(&entry.id)
                        .filter(|d| !d.transcript.is_empty())
                        .map(|d| {
                            d.transcript
                                .iter()
                                .map(|line| TranscriptLine {
                                    speaker: redact(&line.speaker),
                                    text: redact(&line.text),
                                })
                                .collect()
                        }),
                })
                .collect(),
        }
    }

    /// The record as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A rough token estimate of the record in a prompt (4 characters per token).
    pub fn estimated_tokens(&self) -> usize {
        self.to_line().len().div_ceil(4)
    }
}
