//! AI artefacts of a call: `call.summary.completed` and `call.transcript.completed`.

use openphone_types::{CallId, ConversationId, PhoneAddress, PhoneNumberId, UserId};
use serde_json::Value;
use time::OffsetDateTime;

use super::raw::{RawContext, RawObject, seconds};
use super::{ProcessingStatus, required};
use crate::Error;

/// An AI summary of a call. v4 payloads type it `callSummary`; it is the same event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallSummary {
    /// The call summarized (summaries have no id of their own).
    pub call_id: CallId,
    /// Whether the summary is ready: legacy `status`, 2026-03-30 `processingStatus`.
    pub status: Option<ProcessingStatus>,
    /// The summary's points; empty unless completed.
    pub summary: Vec<String>,
    /// Suggested next steps; empty unless completed.
    pub next_steps: Vec<String>,
    /// The caller's number (2026-03-30).
    pub from_phone_number: Option<PhoneAddress>,
    /// Whether an AI agent handled the call (2026-03-30).
    pub handled_by_ai_agent: Option<bool>,
    /// Who answered (2026-03-30).
    pub answered_by: Option<UserId>,
    /// Structured results of AI jobs run on the call (2026-03-30).
    pub jobs: Vec<SummaryJob>,
    /// The workspace number (2026-03-30 context).
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation (2026-03-30 context).
    pub conversation_id: Option<ConversationId>,
}

/// One AI job's output in a 2026-03-30 summary.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SummaryJob {
    /// The job's name.
    pub name: Option<String>,
    /// Its icon.
    pub icon: Option<String>,
    /// Named values it extracted, as sent.
    pub fields: Vec<(String, Value)>,
}

/// A transcript of a call. v4 payloads type it `callTranscript`; it is the same event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallTranscript {
    /// The call transcribed.
    pub call_id: CallId,
    /// Whether the transcript is ready.
    pub status: Option<ProcessingStatus>,
    /// When the transcript was created.
    pub created_at: Option<OffsetDateTime>,
    /// The call's length in seconds.
    pub duration: Option<u32>,
    /// What was said, in order.
    pub dialogue: Vec<DialogueLine>,
    /// The workspace number (2026-03-30 context).
    pub phone_number_id: Option<PhoneNumberId>,
    /// The conversation (2026-03-30 context).
    pub conversation_id: Option<ConversationId>,
}

/// One utterance in a transcript.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DialogueLine {
    /// What was said.
    pub content: String,
    /// Seconds from the start of the call.
    pub start: Option<f64>,
    /// Seconds from the start of the call.
    pub end: Option<f64>,
    /// The speaker's number (external speakers).
    pub identifier: Option<PhoneAddress>,
    /// The speaker's user id (workspace speakers).
    pub user_id: Option<UserId>,
}

pub(crate) fn normalize_summary(
    object: RawObject,
    context: RawContext,
    at: &str,
) -> Result<CallSummary, Error> {
    Ok(CallSummary {
        call_id: CallId::new(required(object.call_id, at, "callId")?),
        status: object
            .processing_status
            .or(object.status)
            .as_deref()
            .map(ProcessingStatus::from),
        summary: object.summary.unwrap_or_default(),
        next_steps: object.next_steps.unwrap_or_default(),
        from_phone_number: object.from_phone_number.map(PhoneAddress::from),
        handled_by_ai_agent: object.handled_by_ai_agent,
        answered_by: object.answered_by_user_id.map(UserId::new),
        jobs: object
            .jobs
            .unwrap_or_default()
            .into_iter()
            .map(|job| SummaryJob {
                name: job.name,
                icon: job.icon,
                fields: job
                    .result
                    .map(|result| {
                        result
                            .data
                            .into_iter()
                            .map(|field| (field.name, field.value))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
        phone_number_id: context.phone_number_id.map(PhoneNumberId::new),
        conversation_id: context.conversation_id.map(ConversationId::new),
    })
}

pub(crate) fn normalize_transcript(
    object: RawObject,
    context: RawContext,
    at: &str,
) -> Result<CallTranscript, Error> {
    Ok(CallTranscript {
        call_id: CallId::new(required(object.call_id, at, "callId")?),
        status: object
            .processing_status
            .or(object.status)
            .as_deref()
            .map(ProcessingStatus::from),
        created_at: object.created_at,
        duration: seconds(object.duration),
        dialogue: object
            .dialogue
            .unwrap_or_default()
            .into_iter()
            .map(|line| DialogueLine {
                content: line.content.unwrap_or_default(),
                start: line.start,
                end: line.end,
                identifier: line.identifier.map(PhoneAddress::from),
                user_id: line.user_id.map(UserId::new),
            })
            .collect(),
        phone_number_id: context.phone_number_id.map(PhoneNumberId::new),
        conversation_id: context.conversation_id.map(ConversationId::new),
    })
}
