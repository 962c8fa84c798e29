//! Threads, their entries and the frozen snapshots of resolved threads.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A thread's id, assigned by the store (increasing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ThreadId(pub i64);

impl std::fmt::Display for ThreadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "thread {}", self.0)
    }
}

/// What a thread is keyed by: one of our numbers and the set of other participants, as the
/// caller spells it (the reference server uses its conversation key,
/// `<phone number id>|<sorted participants>`).
pub type ThreadKey = String;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A text message.
    Message,
    /// A call.
    Call,
    /// A voicemail left on a call.
    Voicemail,
}

impl EntryKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Message => "message",
            EntryKind::Call => "call",
            EntryKind::Voicemail => "voicemail",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "message" => EntryKind::Message,
            "call" => EntryKind::Call,
            "voicemail" => EntryKind::Voicemail,
            _ => return None,
        })
    }
}

/// One message, call or voicemail of a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Entry {
    /// The message or call id (an entry joins threads once: appending it again changes
    /// nothing).
    pub id: String,
    /// What it is.
    pub kind: EntryKind,
    /// `incoming` (the customer) or `outgoing` (us).
    pub direction: String,
    /// Who sent it or placed the call (a number, or our user), when known.
    pub from: Option<String>,
    /// The text of a message.
    pub text: Option<String>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
}

/// Whether a thread is still collecting entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThreadState {
    /// Collecting entries.
    Open,
    /// Frozen into the resolved log.
    Resolved,
}

impl ThreadState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Open => "open",
            ThreadState::Resolved => "resolved",
        }
    }
}

/// Why a thread was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "by", content = "who")]
pub enum Resolution {
    /// Idle longer than the resolver's limit.
    Idle,
    /// A person resolved it (the name or token id).
    Manual(String),
}

/// A thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Thread {
    /// The id.
    pub id: ThreadId,
    /// Our number and the other participants.
    pub key: ThreadKey,
    /// Open or resolved.
    pub state: ThreadState,
    /// Entries in it.
    pub entries: u64,
    /// When its first entry happened (or when it was reopened).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub opened_at: OffsetDateTime,
    /// When its latest entry happened.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub last_activity_at: OffsetDateTime,
    /// When it was resolved.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub resolved_at: Option<OffsetDateTime>,
    /// Why it was resolved.
    pub resolution: Option<Resolution>,
    /// The resolved thread it was reopened from.
    pub reopened_from: Option<ThreadId>,
}

/// A resolved thread as frozen in the append-only resolved log: never updated afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// The thread.
    pub thread: Thread,
    /// Its entries at resolution, oldest first.
    pub entries: Vec<Entry>,
}

/// Which threads a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    /// Only open or only resolved threads.
    pub state: Option<ThreadState>,
    /// Only threads whose key contains this text (a number).
    pub key_contains: Option<String>,
    /// Only threads active at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only threads active before this time.
    pub until: Option<OffsetDateTime>,
}
