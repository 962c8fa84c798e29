//! Calls and their artefacts: recordings, summaries, transcripts, voicemails.

use openphone_types::{
    CallId, CallStatus, Direction, E164, PhoneAddress, PhoneNumberId, ProcessingStatus, UserId,
    VoicemailId,
};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

openphone_types::string_enum! {
    /// State of a call recording.
    RecordingStatus {
        /// Not recorded.
        Absent = "absent",
        /// Ready.
        Completed = "completed",
        /// Deleted.
        Deleted = "deleted",
        /// Failed.
        Failed = "failed",
        /// Recording.
        InProgress = "in-progress",
        /// Paused.
        Paused = "paused",
        /// Being processed.
        Processing = "processing",
        /// Stopped.
        Stopped = "stopped",
        /// Stopping.
        Stopping = "stopping",
    }
}

openphone_types::string_enum! {
    /// State of a voicemail.
    VoicemailStatus {
        /// Ready.
        Completed = "completed",
        /// Being processed.
        InProgress = "in-progress",
    }
}

/// A call (v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Call {
    /// The call id (`AC…`).
    pub id: CallId,
    /// When it was answered; `None` if nobody answered (whatever the status says).
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    /// The user who answered an incoming call.
    pub answered_by: Option<UserId>,
    /// The user who placed an outgoing call.
    pub initiated_by: Option<UserId>,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// The status. `completed` does not mean answered: check `answered_at`.
    pub status: CallStatus,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How it reached the inbox (`phone-number`, `phone-menu`); `None` for outgoing calls.
    pub call_route: Option<String>,
    /// Length in seconds.
    pub duration: u32,
    /// Forwarded from (a number or a user id).
    pub forwarded_from: Option<String>,
    /// Forwarded to (a number or a user id).
    pub forwarded_to: Option<String>,
    /// Set when an AI agent handled the call.
    pub ai_handled: Option<String>,
    /// The workspace number.
    pub phone_number_id: PhoneNumberId,
    /// The participants' numbers.
    pub participants: Vec<PhoneAddress>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// The workspace user.
    pub user_id: UserId,
}

impl Call {
    /// Whether anybody answered: `answeredAt` is set. A call `completed` without an answer is
    /// a missed call.
    pub fn was_answered(&self) -> bool {
        self.answered_at.is_some()
    }
}

/// A recording of a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallRecording {
    /// The recording id.
    pub id: String,
    /// Length in seconds.
    pub duration: Option<u32>,
    /// When it started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// Its state.
    pub status: Option<RecordingStatus>,
    /// MIME type.
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    /// Where to download it. Copy the file: the URL is not documented to last.
    pub url: Option<String>,
}

/// An AI summary of a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallSummary {
    /// The call.
    pub call_id: CallId,
    /// Suggested next steps; `None` unless completed.
    pub next_steps: Option<Vec<String>>,
    /// Whether the summary is ready.
    pub status: ProcessingStatus,
    /// The summary's points; `None` unless completed.
    pub summary: Option<Vec<String>>,
    /// Structured AI job results.
    #[serde(default)]
    pub jobs: Option<Vec<SummaryJob>>,
}

/// One AI job's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SummaryJob {
    /// Its icon.
    pub icon: String,
    /// Its name.
    pub name: String,
    /// What it extracted.
    pub result: SummaryJobResult,
}

/// The values an AI job extracted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SummaryJobResult {
    /// Named values (text, number or boolean).
    pub data: Vec<SummaryJobValue>,
}

/// One named value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SummaryJobValue {
    /// The name.
    pub name: String,
    /// The value: a string, a number or a boolean.
    pub value: Value,
}

/// A transcript of a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallTranscript {
    /// The call.
    pub call_id: CallId,
    /// When the transcript was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// What was said; `None` unless completed.
    pub dialogue: Option<Vec<DialogueLine>>,
    /// The call's length in seconds.
    pub duration: f64,
    /// Whether the transcript is ready.
    pub status: ProcessingStatus,
}

/// One utterance.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DialogueLine {
    /// What was said.
    pub content: String,
    /// Seconds from the start.
    pub start: f64,
    /// Seconds from the start.
    pub end: f64,
    /// The speaker's number (external speakers).
    pub identifier: Option<String>,
    /// The speaker's user id (workspace speakers).
    pub user_id: Option<UserId>,
}

/// The voicemail left on a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallVoicemail {
    /// Length in seconds.
    pub duration: Option<u32>,
    /// The voicemail id (`VM…`).
    pub id: VoicemailId,
    /// The transcript, when ready.
    pub transcript: Option<String>,
    /// Where to download the audio. Copy the file.
    pub recording_url: Option<String>,
    /// Whether processing finished (fields are `None` while in progress).
    pub status: VoicemailStatus,
}

/// Parameters of `GET /v1/calls`: the calls with one participant on one number.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListCalls {
    /// The workspace number.
    pub phone_number_id: PhoneNumberId,
    /// The other participant (v1 allows exactly one).
    pub participant: E164,
    /// Only calls of this user.
    pub user_id: Option<UserId>,
    /// Only calls created after this time.
    pub created_after: Option<OffsetDateTime>,
    /// Only calls created before this time.
    pub created_before: Option<OffsetDateTime>,
    /// Page size, 1 to 100 (default 100).
    pub max_results: u32,
}

impl ListCalls {
    /// The calls between `phone_number_id` and `participant`.
    pub fn new(phone_number_id: PhoneNumberId, participant: E164) -> Self {
        Self {
            phone_number_id,
            participant,
            user_id: None,
            created_after: None,
            created_before: None,
            max_results: 100,
        }
    }

    /// Only calls created after `time`.
    #[must_use]
    pub fn created_after(mut self, time: OffsetDateTime) -> Self {
        self.created_after = Some(time);
        self
    }

    /// Only calls created before `time`.
    #[must_use]
    pub fn created_before(mut self, time: OffsetDateTime) -> Self {
        self.created_before = Some(time);
        self
    }

    /// Sets the page size (1 to 100).
    #[must_use]
    pub fn page_size(mut self, max_results: u32) -> Self {
        self.max_results = max_results;
        self
    }
}
