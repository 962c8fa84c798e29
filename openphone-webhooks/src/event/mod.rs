//! Typed webhook events for every payload generation that reaches one endpoint.
//!
//! OpenPhone sends three shapes to the same receiver:
//! - legacy app webhooks (`apiVersion` `v2`/`v3`): `data.object` with `body`, `to` as a
//!   string, `media[]`, `conversationId`;
//! - legacy API webhooks created through `/v1/webhooks` (`v4`): `data.object` with `text`,
//!   `to` as an array, `contactIds`, calls with `participants`, and summaries and transcripts
//!   typed `callSummary` / `callTranscript`;
//! - 2026-03-30 webhooks: `data.resource`, `data.context` and `data.links`.
//!
//! [`Event::parse`] keys on the shape (`data.object` or `data.resource`), never on
//! `apiVersion`, and normalizes all three into the same types. An event type it does not
//! model becomes [`EventData::Unknown`] with the raw `data`, so a new event type never fails
//! delivery.

mod call;
mod contact;
mod message;
pub(crate) mod raw;
mod summary;
mod task;

use std::fmt;

use openphone_types::{EventId, OrgId};
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

pub use call::{Call, CallMenuSelection, CallOutcome, Recording, Voicemail};
pub use contact::{Contact, ContactField, ContactNote, ContactValue};
pub use message::{Media, Message};
pub use openphone_types::{CallStatus, Direction, LookupStatus, MessageStatus, ProcessingStatus};
pub use summary::{CallSummary, CallTranscript, DialogueLine, SummaryJob};
pub use task::{Task, TaskAction};

use crate::Error;
use raw::{RawContact, RawContext, RawEnvelope, RawObject, Source, from_value};

/// One webhook event, normalized across payload generations.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The event id. Shared by every endpoint subscribed to the event and stable across
    /// retries; for delivery-level deduplication prefer the `webhook-id` header where there
    /// is one ([`Verified::delivery_id`](crate::Verified::delivery_id)).
    pub id: EventId,
    /// What happened.
    pub event_type: EventType,
    /// `apiVersion` as sent (`v2`, `v3`, `v4`, `2026-03-30`), for the record only.
    pub api_version: Option<String>,
    /// When the event happened.
    pub created_at: Option<OffsetDateTime>,
    /// Which payload shape carried it.
    pub format: PayloadFormat,
    /// The workspace (2026-03-30 `context.orgId`).
    pub org_id: Option<OrgId>,
    /// A deep link into the OpenPhone app (2026-03-30 `links.quo`), when given.
    pub link: Option<String>,
    /// The event's business object.
    pub data: EventData,
}

/// The payload shape an event arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// Legacy (app and `/v1/webhooks`): `data.object`.
    Object,
    /// 2026-03-30: `data.resource`, `data.context`, `data.links`.
    Resource,
}

/// The business object an event is about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventData {
    /// `message.*` events.
    Message(Message),
    /// `call.ringing`, `.answered`, `.missed`, `.forwarded`, `.completed`,
    /// `.recording.completed`.
    Call(Call),
    /// `call.menu.selected`.
    CallMenuSelection(CallMenuSelection),
    /// `call.voicemail.completed`.
    Voicemail(Voicemail),
    /// `call.summary.completed` (also typed `callSummary`).
    CallSummary(CallSummary),
    /// `call.transcript.completed` (also typed `callTranscript`).
    CallTranscript(CallTranscript),
    /// `contact.updated`, `contact.deleted`.
    Contact(Contact),
    /// `task.*`.
    Task(Task),
    /// An event type this crate does not model: the envelope's `data`, unchanged.
    Unknown(Value),
}

/// Every event type OpenPhone documents, plus any other, kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `message.received`.
    MessageReceived,
    /// `message.delivered` (carrier confirmation, not a read receipt).
    MessageDelivered,
    /// `message.failed`.
    MessageFailed,
    /// `message.undelivered` (terminal).
    MessageUndelivered,
    /// `call.ringing`.
    CallRinging,
    /// `call.answered`.
    CallAnswered,
    /// `call.missed`.
    CallMissed,
    /// `call.forwarded`.
    CallForwarded,
    /// `call.completed`.
    CallCompleted,
    /// `call.recording.completed`.
    CallRecordingCompleted,
    /// `call.voicemail.completed`.
    CallVoicemailCompleted,
    /// `call.summary.completed` (v4 payloads: `callSummary`).
    CallSummaryCompleted,
    /// `call.transcript.completed` (v4 payloads: `callTranscript`).
    CallTranscriptCompleted,
    /// `call.menu.selected`.
    CallMenuSelected,
    /// `contact.updated` (created or changed).
    ContactUpdated,
    /// `contact.deleted`.
    ContactDeleted,
    /// `task.<action>`.
    Task(TaskAction),
    /// Any other type, as sent.
    Unknown(String),
}

impl EventType {
    /// Reads an event type, accepting the v4 aliases `callSummary` and `callTranscript`.
    pub fn parse(name: &str) -> Self {
        match name {
            "message.received" => Self::MessageReceived,
            "message.delivered" => Self::MessageDelivered,
            "message.failed" => Self::MessageFailed,
            "message.undelivered" => Self::MessageUndelivered,
            "call.ringing" => Self::CallRinging,
            "call.answered" => Self::CallAnswered,
            "call.missed" => Self::CallMissed,
            "call.forwarded" => Self::CallForwarded,
            "call.completed" => Self::CallCompleted,
            "call.recording.completed" => Self::CallRecordingCompleted,
            "call.voicemail.completed" => Self::CallVoicemailCompleted,
            "call.summary.completed" | "callSummary" => Self::CallSummaryCompleted,
            "call.transcript.completed" | "callTranscript" => Self::CallTranscriptCompleted,
            "call.menu.selected" => Self::CallMenuSelected,
            "contact.updated" => Self::ContactUpdated,
            "contact.deleted" => Self::ContactDeleted,
            other => match other.strip_prefix("task.") {
                Some(action) if !action.is_empty() => Self::Task(TaskAction::from(action)),
                _ => Self::Unknown(other.to_owned()),
            },
        }
    }

    fn fixed_name(&self) -> Option<&'static str> {
        Some(match self {
            Self::MessageReceived => "message.received",
            Self::MessageDelivered => "message.delivered",
            Self::MessageFailed => "message.failed",
            Self::MessageUndelivered => "message.undelivered",
            Self::CallRinging => "call.ringing",
            Self::CallAnswered => "call.answered",
            Self::CallMissed => "call.missed",
            Self::CallForwarded => "call.forwarded",
            Self::CallCompleted => "call.completed",
            Self::CallRecordingCompleted => "call.recording.completed",
            Self::CallVoicemailCompleted => "call.voicemail.completed",
            Self::CallSummaryCompleted => "call.summary.completed",
            Self::CallTranscriptCompleted => "call.transcript.completed",
            Self::CallMenuSelected => "call.menu.selected",
            Self::ContactUpdated => "contact.updated",
            Self::ContactDeleted => "contact.deleted",
            Self::Task(_) | Self::Unknown(_) => return None,
        })
    }
}

/// The canonical dotted name (`call.summary.completed`, never `callSummary`).
impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Task(action) => write!(f, "task.{action}"),
            Self::Unknown(name) => f.write_str(name),
            known => f.write_str(known.fixed_name().unwrap_or_default()),
        }
    }
}

/// Returns the value of a field every event of its kind must carry.
pub(crate) fn required(value: Option<String>, at: &str, field: &str) -> Result<String, Error> {
    value
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Error::payload(format!("{at}.{field}"), "missing or empty"))
}

impl Event {
    /// Parses a verified body into an event.
    ///
    /// Call it after [`WebhookVerifier::verify`](crate::WebhookVerifier::verify), on the same
    /// bytes.
    ///
    /// # Errors
    /// [`Error::MalformedPayload`] when the body is not JSON, lacks the envelope fields (`id`,
    /// `type`, `data`), or a known event type's object is missing or has a field of the wrong
    /// type. The error names the JSON path and never quotes the body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        // Straight from the body's text when it can: known types' objects are deserialized
        // where they lie, without a tree built first. Whatever that refuses (an unknown type,
        // which keeps its `data` as a tree; a repeated key, which the tree resolves to its
        // last value; any error) goes through the tree, which reports errors by JSON path.
        // Only a UTF-8 body holding an object goes the short way: the derived envelope would
        // also read an array, and fields nothing reads are skipped unchecked.
        if body.trim_ascii_start().first() == Some(&b'{')
            && let Ok(text) = std::str::from_utf8(body)
            && let Ok(envelope) = serde_json::from_str::<RawEnvelope<Box<RawValue>>>(text)
            && !matches!(
                EventType::parse(&envelope.event_type),
                EventType::Unknown(_)
            )
            && let Ok(event) = Self::from_envelope(envelope, None)
        {
            return Ok(event);
        }
        Self::from_value(raw::parse_json(body)?)
    }

    /// Parses an event from an already parsed JSON value. See [`Event::parse`].
    ///
    /// # Errors
    /// As for [`Event::parse`].
    pub fn from_value(value: Value) -> Result<Self, Error> {
        if !value.is_object() {
            return Err(Error::payload("$", "expected a JSON object"));
        }
        // Only an unknown type keeps the raw `data`; known types are not copied.
        let unknown = value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|name| matches!(EventType::parse(name), EventType::Unknown(_)));
        let data_value = if unknown {
            value.get("data").cloned()
        } else {
            None
        };
        let envelope: RawEnvelope<Value> = from_value(value, "$")?;
        Self::from_envelope(envelope, data_value)
    }

    /// The event an envelope carries; `data_value` is the raw `data` of an unknown type.
    fn from_envelope<S: Source>(
        envelope: RawEnvelope<S>,
        data_value: Option<Value>,
    ) -> Result<Self, Error> {
        let event_type = EventType::parse(&envelope.event_type);
        let format = if envelope.data.resource.is_some() {
            PayloadFormat::Resource
        } else {
            PayloadFormat::Object
        };
        let context: RawContext = match envelope.data.context {
            None => RawContext::default(),
            Some(context) => context.deserialize("$.data.context")?,
        };
        let org_id = context.org_id.clone().map(OrgId::new);
        let link = envelope.data.links.and_then(|links| links.quo);
        let object = match format {
            PayloadFormat::Resource => envelope.data.resource,
            PayloadFormat::Object => envelope.data.object,
        };
        let at = match format {
            PayloadFormat::Resource => "$.data.resource",
            PayloadFormat::Object => "$.data.object",
        };
        let data = match (&event_type, object) {
            (EventType::Unknown(_), _) => EventData::Unknown(data_value.unwrap_or(Value::Null)),
            (_, None) => {
                return Err(Error::payload(
                    "$.data",
                    "missing data.object or data.resource",
                ));
            }
            (event, Some(object)) => typed(event, object, context, format, at)?,
        };
        Ok(Self {
            id: EventId::new(envelope.id),
            event_type,
            api_version: envelope.api_version,
            created_at: envelope.created_at,
            format,
            org_id,
            link,
            data,
        })
    }
}

fn typed<S: Source>(
    event: &EventType,
    object: S,
    context: RawContext,
    format: PayloadFormat,
    at: &str,
) -> Result<EventData, Error> {
    let raw = |object: S| object.deserialize::<RawObject>(at);
    Ok(match event {
        EventType::MessageReceived
        | EventType::MessageDelivered
        | EventType::MessageFailed
        | EventType::MessageUndelivered => {
            EventData::Message(message::normalize(raw(object)?, context, format, at)?)
        }
        EventType::CallRinging
        | EventType::CallAnswered
        | EventType::CallMissed
        | EventType::CallForwarded
        | EventType::CallCompleted
        | EventType::CallRecordingCompleted => {
            EventData::Call(call::normalize(event, raw(object)?, context, format, at)?)
        }
        EventType::CallMenuSelected => {
            EventData::CallMenuSelection(call::normalize_menu(raw(object)?, context, at)?)
        }
        EventType::CallVoicemailCompleted => {
            EventData::Voicemail(call::normalize_voicemail(raw(object)?, context, at)?)
        }
        EventType::CallSummaryCompleted => {
            EventData::CallSummary(summary::normalize_summary(raw(object)?, context, at)?)
        }
        EventType::CallTranscriptCompleted => {
            EventData::CallTranscript(summary::normalize_transcript(raw(object)?, context, at)?)
        }
        EventType::Task(_) => EventData::Task(task::normalize(raw(object)?, context, at)?),
        EventType::ContactUpdated | EventType::ContactDeleted => {
            let contact: RawContact = object.deserialize(at)?;
            EventData::Contact(contact::normalize(contact, context, at)?)
        }
        EventType::Unknown(_) => EventData::Unknown(object.deserialize(at)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture, as (path, bytes).
    fn fixtures() -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut found = Vec::new();
        for generation in std::fs::read_dir(root).unwrap() {
            let generation = generation.unwrap().path();
            if !generation.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&generation).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|ext| ext == "json") {
                    let bytes = std::fs::read(&path).unwrap();
                    found.push((path, bytes));
                }
            }
        }
        found
    }

    #[test]
    fn reading_objects_in_place_gives_what_the_tree_gives() {
        let fixtures = fixtures();
        assert!(fixtures.len() > 40, "fixtures not found");
        let mut in_place = 0;
        for (path, bytes) in &fixtures {
            let tree = Event::from_value(serde_json::from_slice(bytes).unwrap());
            let envelope: RawEnvelope<Box<RawValue>> = serde_json::from_slice(bytes).unwrap();
            if matches!(
                EventType::parse(&envelope.event_type),
                EventType::Unknown(_)
            ) {
                continue;
            }
            let direct = Event::from_envelope(envelope, None);
            assert_eq!(
                format!("{direct:?}"),
                format!("{tree:?}"),
                "{}",
                path.display()
            );
            assert_eq!(Event::parse(bytes).ok(), tree.ok(), "{}", path.display());
            in_place += 1;
        }
        assert!(in_place > 40, "only {in_place} fixtures read in place");
    }

    #[test]
    fn repeated_keys_resolve_and_bad_bodies_fail_as_in_the_tree() {
        let repeated = br#"{"id":"EV1","type":"message.received","data":{"object":{"id":"AC1","direction":"incoming","from":"+15550001111","to":"+15550002222","text":"first","text":"last"}}}"#;
        let Ok(event) = Event::parse(repeated) else {
            panic!("a repeated key is not an error")
        };
        let EventData::Message(message) = event.data else {
            panic!("not a message")
        };
        assert_eq!(message.text.as_deref(), Some("last"));

        let wrong = br#"{"id":"EV1","type":"message.received","data":{"object":{"id":"AC1","direction":"incoming","media":"not a list"}}}"#;
        let error = Event::parse(wrong).unwrap_err().to_string();
        assert!(error.contains("$.data.object.media"), "{error}");
        // Refused as the tree refuses them: an array in place of the object, and bytes that
        // are not UTF-8 in a field no event reads.
        let array = br#"["EV1","message.received",null,null,{"object":{"id":"AC1","direction":"incoming"}}]"#;
        let error = Event::parse(array).unwrap_err().to_string();
        assert!(error.contains("expected a JSON object"), "{error}");
        let not_utf8 = b"{\"id\":\"EV1\",\"type\":\"message.received\",\"extra\":\"\xff\",\"data\":{\"object\":{\"id\":\"AC1\",\"direction\":\"incoming\"}}}";
        assert!(serde_json::from_slice::<Value>(not_utf8).is_err());
        let error = Event::parse(not_utf8).unwrap_err().to_string();
        assert!(error.contains("not valid JSON"), "{error}");
        let unknown = br#"{"id":"EV1","type":"brand.new","data":{"object":{"a":1}}}"#;
        let event = Event::parse(unknown).unwrap();
        assert_eq!(
            event.data,
            EventData::Unknown(serde_json::json!({"object": {"a": 1}}))
        );
    }

    #[test]
    fn event_type_names_round_trip_and_accept_aliases() {
        for name in [
            "message.received",
            "call.summary.completed",
            "task.duedate.updated",
            "task.brand-new",
            "integration.created",
        ] {
            assert_eq!(EventType::parse(name).to_string(), name);
        }
        assert_eq!(
            EventType::parse("callSummary"),
            EventType::CallSummaryCompleted
        );
        assert_eq!(
            EventType::parse("callTranscript").to_string(),
            "call.transcript.completed"
        );
        assert_eq!(
            EventType::parse("task.duedate.removed"),
            EventType::Task(TaskAction::DueDateRemoved)
        );
        assert_eq!(
            EventType::parse("task."),
            EventType::Unknown("task.".into())
        );
    }
}
