//! Webhook payloads for what happens in the workspace, in the 2026-03-30 shape and the
//! legacy `/v1/webhooks` (v4) shape.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::workspace::{CallRec, MessageRec, ts};

/// `(event type, 2026-03-30 payload, legacy payload if the legacy API has the event)`.
pub(crate) type Event = (String, Value, Option<Value>);

fn modern(
    event_id: &str,
    event_type: &str,
    at: OffsetDateTime,
    resource: Value,
    context: Value,
) -> Value {
    json!({
        "id": event_id, "apiVersion": "2026-03-30", "createdAt": ts(at), "type": event_type,
        "data": {"resource": resource, "context": context, "links": {"quo": null}},
    })
}

fn legacy(event_id: &str, event_type: &str, at: OffsetDateTime, object: Value) -> Value {
    json!({
        "id": event_id, "object": "event", "apiVersion": "v4", "createdAt": ts(at),
        "type": event_type, "data": {"object": object},
    })
}

/// `message.received` or `message.delivered`.
pub(crate) fn message(
    event_id: &str,
    event_type: &str,
    org_id: &str,
    message: &MessageRec,
    media_base: &str,
    at: OffsetDateTime,
) -> Event {
    let media: Vec<Value> = message
        .media
        .iter()
        .map(|id| json!({"url": format!("{media_base}/media/{id}"), "type": "image/jpeg"}))
        .collect();
    let resource = json!({
        "id": message.id, "direction": message.direction, "text": message.text,
        "media": media, "status": message.status, "createdAt": ts(message.created_at),
    });
    let context = json!({
        "orgId": org_id, "phoneNumberId": message.phone_number_id,
        "conversationId": message.conversation_id, "userId": message.user_id,
        "contacts": {"ids": [], "lookupStatus": "none"},
        "senderIdentifier": message.from, "recipientIdentifiers": message.to,
    });
    let object = json!({
        "id": message.id, "object": "message", "from": message.from, "to": message.to,
        "direction": message.direction, "text": message.text, "status": message.status,
        "createdAt": ts(message.created_at), "userId": message.user_id,
        "phoneNumberId": message.phone_number_id, "conversationId": message.conversation_id,
    });
    (
        event_type.to_owned(),
        modern(event_id, event_type, at, resource, context),
        Some(legacy(event_id, event_type, at, object)),
    )
}

/// The events of a call that ended: ringing, completed, and its artefacts.
pub(crate) fn call(
    ids: &mut dyn FnMut(&str) -> String,
    org_id: &str,
    our_number: &str,
    call: &CallRec,
    media_base: &str,
) -> Vec<Event> {
    let answered_at = call.created_at + Duration::seconds(5);
    let completed_at = call.created_at + Duration::seconds(5 + i64::from(call.duration));
    let context = json!({
        "orgId": org_id, "phoneNumberId": call.phone_number_id, "conversationId": call.conversation_id,
        "phoneNumberType": "shared", "userId": call.user_id,
        "contacts": {"ids": [], "lookupStatus": "none"},
        "participants": {"workspace": [our_number], "external": [call.participant], "resolution": "available"},
    });
    let object = |status: &str, media: Value| {
        json!({
            "id": call.id, "object": "call", "direction": call.direction, "status": status,
            "answeredAt": call.answered.then(|| ts(answered_at)), "answeredBy": call.answered.then(|| call.user_id.clone()),
            "initiatedBy": null, "completedAt": (status == "completed").then(|| ts(completed_at)),
            "createdAt": ts(call.created_at), "duration": if status == "completed" { call.duration } else { 0 },
            "forwardedFrom": null, "forwardedTo": null, "phoneNumberId": call.phone_number_id,
            "participants": [call.participant], "updatedAt": ts(completed_at), "userId": call.user_id,
            "media": media,
        })
    };
    let mut events = Vec::new();
    let id = ids("EV");
    events.push((
        "call.ringing".to_owned(),
        modern(&id, "call.ringing", call.created_at, json!({"id": call.id, "direction": call.direction, "createdAt": ts(call.created_at), "updatedAt": ts(call.created_at)}), context.clone()),
        Some(legacy(&id, "call.ringing", call.created_at, object("ringing", json!([])))),
    ));
    let id = ids("EV");
    let status = if call.answered {
        "answered"
    } else {
        "unanswered"
    };
    events.push((
        "call.completed".to_owned(),
        modern(&id, "call.completed", completed_at, json!({
            "id": call.id, "direction": call.direction, "status": status, "createdAt": ts(call.created_at),
            "answeredAt": call.answered.then(|| ts(answered_at)), "completedAt": ts(completed_at),
            "updatedAt": ts(completed_at), "duration": call.duration, "hasVoicemail": call.voicemail,
        }), context.clone()),
        Some(legacy(&id, "call.completed", completed_at, object("completed", json!([])))),
    ));
    if call.answered {
        let recording_url = format!("{media_base}/media/{}-recording", call.id);
        let id = ids("EV");
        events.push((
            "call.recording.completed".to_owned(),
            modern(&id, "call.recording.completed", completed_at, json!({
                "id": call.id, "direction": call.direction, "createdAt": ts(call.created_at),
                "answeredAt": ts(answered_at), "completedAt": ts(completed_at), "updatedAt": ts(completed_at),
                "duration": call.duration,
                "recordings": [{"id": ids("RE"), "duration": call.duration, "startTime": ts(answered_at), "type": "audio/mpeg", "url": recording_url}],
            }), context.clone()),
            Some(legacy(&id, "call.recording.completed", completed_at, object("completed", json!([{"url": recording_url, "type": "audio/mpeg", "duration": call.duration}])))),
        ));
        let id = ids("EV");
        let summary = json!([
            "The customer asked about availability.",
            "A booking was agreed."
        ]);
        let next_steps = json!(["Send a confirmation text."]);
        events.push((
            "call.summary.completed".to_owned(),
            modern(&id, "call.summary.completed", completed_at, json!({
                "callId": call.id, "processingStatus": "completed", "summary": summary, "nextSteps": next_steps,
                "fromPhoneNumber": call.participant, "handledByAiAgent": false, "answeredByUserId": call.user_id, "jobs": [],
            }), context.clone()),
            Some(legacy(&id, "callSummary", completed_at, json!({
                "callId": call.id, "object": "callSummary", "status": "completed", "summary": summary, "nextSteps": next_steps,
            }))),
        ));
        let id = ids("EV");
        let dialogue = json!([
            {"content": "Hello, how can I help?", "start": 0.4, "end": 2.1, "identifier": our_number, "userId": call.user_id},
            {"content": "I would like to book for Friday.", "start": 2.5, "end": 4.9, "identifier": call.participant, "userId": null},
        ]);
        events.push((
            "call.transcript.completed".to_owned(),
            modern(
                &id,
                "call.transcript.completed",
                completed_at,
                json!({
                    "callId": call.id, "createdAt": ts(completed_at), "duration": call.duration,
                    "processingStatus": "completed", "dialogue": dialogue,
                }),
                context.clone(),
            ),
            Some(legacy(
                &id,
                "callTranscript",
                completed_at,
                json!({
                    "callId": call.id, "object": "callTranscript", "createdAt": ts(completed_at),
                    "dialogue": dialogue, "duration": call.duration, "status": "completed",
                }),
            )),
        ));
    }
    if call.voicemail {
        let id = ids("EV");
        events.push((
            "call.voicemail.completed".to_owned(),
            modern(&id, "call.voicemail.completed", completed_at, json!({
                "id": ids("AC"), "voicemailId": ids("VM"), "callId": call.id, "direction": call.direction,
                "duration": 15, "from": call.participant, "to": our_number,
                "transcript": "Hi, please call me back about the crack in my wall.",
                "recordingUrl": format!("{media_base}/media/{}-voicemail", call.id),
                "createdAt": ts(completed_at), "updatedAt": ts(completed_at),
            }), context),
            None,
        ));
    }
    events
}
