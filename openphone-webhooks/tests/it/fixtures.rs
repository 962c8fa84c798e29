//! Every documented event type, in every payload generation, parses into the right type.

use std::path::{Path, PathBuf};

use openphone_webhooks::event::{
    CallOutcome, CallStatus, Direction, LookupStatus, MessageStatus, ProcessingStatus, TaskAction,
};
use openphone_webhooks::{Event, EventData, EventType, PayloadFormat};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(relative: &str) -> Event {
    let bytes = std::fs::read(fixture_dir().join(relative)).expect("fixture exists");
    Event::parse(&bytes).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The event type a fixture is named after (`<type>.json` or `<type>~<variant>.json`).
fn named_type(path: &Path) -> String {
    let stem = path.file_name().unwrap().to_str().unwrap();
    let stem = stem.strip_suffix(".json").unwrap();
    stem.split('~').next().unwrap().to_owned()
}

#[test]
fn every_fixture_parses_into_the_type_it_is_named_after() {
    let mut seen = 0;
    for generation in ["legacy-app", "legacy-api", "v2026-03-30"] {
        let mut entries: Vec<_> = std::fs::read_dir(fixture_dir().join(generation))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path).unwrap();
            let event =
                Event::parse(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(
                event.event_type.to_string(),
                named_type(&path),
                "{}",
                path.display()
            );
            let expected_format = if generation == "v2026-03-30" {
                PayloadFormat::Resource
            } else {
                PayloadFormat::Object
            };
            assert_eq!(event.format, expected_format, "{}", path.display());
            let family_matches = matches!(
                (&event.event_type, &event.data),
                (
                    EventType::MessageReceived
                        | EventType::MessageDelivered
                        | EventType::MessageFailed
                        | EventType::MessageUndelivered,
                    EventData::Message(_),
                ) | (
                    EventType::CallRinging
                        | EventType::CallAnswered
                        | EventType::CallMissed
                        | EventType::CallForwarded
                        | EventType::CallCompleted
                        | EventType::CallRecordingCompleted,
                    EventData::Call(_),
                ) | (EventType::CallMenuSelected, EventData::CallMenuSelection(_))
                    | (EventType::CallVoicemailCompleted, EventData::Voicemail(_))
                    | (EventType::CallSummaryCompleted, EventData::CallSummary(_))
                    | (
                        EventType::CallTranscriptCompleted,
                        EventData::CallTranscript(_)
                    )
                    | (
                        EventType::ContactUpdated | EventType::ContactDeleted,
                        EventData::Contact(_)
                    )
                    | (EventType::Task(_), EventData::Task(_))
                    | (EventType::Unknown(_), EventData::Unknown(_))
            );
            assert!(family_matches, "{}: {:?}", path.display(), event.data);
            seen += 1;
        }
    }
    assert_eq!(seen, 47, "a fixture was added or lost");
}

#[test]
fn every_documented_event_type_has_a_2026_fixture() {
    let documented = [
        "message.received",
        "message.delivered",
        "message.failed",
        "message.undelivered",
        "call.ringing",
        "call.answered",
        "call.missed",
        "call.forwarded",
        "call.completed",
        "call.recording.completed",
        "call.voicemail.completed",
        "call.summary.completed",
        "call.transcript.completed",
        "call.menu.selected",
        "contact.updated",
        "contact.deleted",
        "task.created",
        "task.updated",
        "task.deleted",
        "task.completed",
        "task.reopened",
        "task.assigned",
        "task.unassigned",
        "task.overdue",
        "task.linked",
        "task.unlinked",
        "task.duedate.updated",
        "task.duedate.removed",
    ];
    for name in documented {
        let path = fixture_dir().join(format!("v2026-03-30/{name}.json"));
        assert!(path.exists(), "no fixture for {name}");
        assert!(
            !matches!(EventType::parse(name), EventType::Unknown(_)),
            "{name} is modelled"
        );
    }
}

#[test]
fn legacy_app_message_uses_body_string_to_and_media() {
    let event = load("legacy-app/message.received.json");
    assert_eq!(event.id.as_str(), "EVc67ec998b35c41d388af50799aeeba3e");
    assert_eq!(event.api_version.as_deref(), Some("v2"));
    let EventData::Message(message) = event.data else {
        panic!("a message")
    };
    assert_eq!(message.text.as_deref(), Some("af"));
    assert_eq!(message.direction, Direction::Incoming);
    assert_eq!(message.status, Some(MessageStatus::Received));
    assert_eq!(message.from.as_ref().unwrap().as_str(), "+18005550100");
    assert_eq!(message.to.len(), 1);
    assert_eq!(message.to[0].as_str(), "+18885550101");
    assert_eq!(message.counterparts()[0].as_str(), "+18005550100");
    assert_eq!(message.media.len(), 1);
    assert_eq!(message.media[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        message.conversation_id.as_ref().unwrap().as_str(),
        "CN78ba0373683c48fd8fd96bc836c51f79"
    );
}

#[test]
fn legacy_api_message_uses_text_array_to_and_contact_ids() {
    let event = load("legacy-api/message.received.json");
    let EventData::Message(message) = event.data else {
        panic!("a message")
    };
    assert_eq!(message.text.as_deref(), Some("Hello, world!"));
    assert_eq!(message.to[0].as_str(), "+15555555555");
    assert_eq!(message.contact_ids[0].as_str(), "6824dfb69aee85c132b7dg65");
    assert_eq!(message.contact_lookup, None);
    // `to` as a string is accepted too.
    let EventData::Message(delivered) = load("legacy-api/message.delivered.json").data else {
        panic!("a message")
    };
    assert_eq!(delivered.direction, Direction::Outgoing);
    assert_eq!(delivered.counterparts()[0].as_str(), "+19876543210");
}

#[test]
fn v2026_message_takes_addresses_and_ids_from_context() {
    let event = load("v2026-03-30/message.received.json");
    assert_eq!(event.org_id.as_ref().unwrap().as_str(), "OR123");
    assert!(event.link.is_some());
    let EventData::Message(message) = event.data else {
        panic!("a message")
    };
    assert_eq!(message.from.as_ref().unwrap().as_str(), "+15550001111");
    assert_eq!(message.to[0].as_str(), "+15550002222");
    assert_eq!(message.phone_number_id.as_ref().unwrap().as_str(), "PN123");
    assert_eq!(message.conversation_id.as_ref().unwrap().as_str(), "CN123");
    assert_eq!(message.contact_lookup, Some(LookupStatus::Matched));
    assert_eq!(message.media[0].url, "https://files.quo.com/m/1.png");

    let EventData::Message(failed) = load("v2026-03-30/message.failed.json").data else {
        panic!("a message")
    };
    assert_eq!(failed.status, Some(MessageStatus::Failed));
    assert_eq!(failed.error_code.as_deref(), Some("30006"));
    assert!(failed.media.is_empty());
}

#[test]
fn completed_call_without_answer_is_missed_in_every_generation() {
    let EventData::Call(call) = load("legacy-app/call.completed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.status, Some(CallStatus::Completed));
    assert_eq!(call.answered_at, None);
    assert_eq!(call.outcome, CallOutcome::Missed);
    let voicemail = call.voicemail.expect("voicemail rides on call.completed");
    assert_eq!(voicemail.duration, Some(7));
    assert_eq!(call.external[0].as_str(), "+18005550100");
    assert_eq!(call.workspace[0].as_str(), "+18885550101");

    let EventData::Call(call) = load("legacy-app/call.completed~missed-real-v3.json").data else {
        panic!("a call")
    };
    assert_eq!(call.outcome, CallOutcome::Missed);
    assert_eq!(call.duration, Some(0));
    assert_eq!(call.voicemail.unwrap().content_type, None);

    let EventData::Call(call) = load("v2026-03-30/call.missed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.outcome, CallOutcome::Missed);
}

#[test]
fn answered_and_ai_handled_calls() {
    let EventData::Call(call) = load("legacy-app/call.completed~ai-handled.json").data else {
        panic!("a call")
    };
    assert_eq!(call.outcome, CallOutcome::AiHandled);
    assert_eq!(call.answered_by.as_ref().unwrap().as_str(), "SYUa1b2c3d4");
    // Offset timestamps are accepted.
    assert_eq!(call.completed_at.unwrap().unix_timestamp(), 1_764_047_652);

    let EventData::Call(call) = load("legacy-api/call.completed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.outcome, CallOutcome::Answered);
    assert_eq!(call.duration, Some(55));
    assert_eq!(call.external[0].as_str(), "+15555555555");

    let EventData::Call(call) = load("v2026-03-30/call.completed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.status, Some(CallStatus::Answered));
    assert_eq!(call.outcome, CallOutcome::Answered);
    assert_eq!(call.has_voicemail, Some(false));
    assert_eq!(call.external[0].as_str(), "+15550000002");
    assert_eq!(call.workspace[0].as_str(), "+15550000001");
    assert_eq!(call.participants_resolved, Some(true));
    assert_eq!(call.phone_number_type.as_deref(), Some("shared"));

    let EventData::Call(ringing) = load("v2026-03-30/call.ringing.json").data else {
        panic!("a call")
    };
    assert_eq!(ringing.outcome, CallOutcome::InProgress);
    let EventData::Call(forwarded) = load("v2026-03-30/call.forwarded.json").data else {
        panic!("a call")
    };
    assert_eq!(forwarded.outcome, CallOutcome::Forwarded);
    assert_eq!(forwarded.forwarded_to.as_deref(), Some("+15550009999"));
}

#[test]
fn recordings_from_legacy_media_and_2026_recordings() {
    let EventData::Call(call) = load("legacy-app/call.recording.completed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.recordings.len(), 1);
    assert_eq!(call.recordings[0].duration, Some(215));
    let EventData::Call(call) = load("v2026-03-30/call.recording.completed.json").data else {
        panic!("a call")
    };
    assert_eq!(call.recordings[0].id.as_deref(), Some("RE123"));
    assert!(call.recordings[0].start_time.is_some());
}

#[test]
fn summaries_and_transcripts_including_v4_aliases() {
    let event = load("legacy-api/call.summary.completed.json");
    assert_eq!(event.event_type, EventType::CallSummaryCompleted);
    let EventData::CallSummary(summary) = event.data else {
        panic!("a summary")
    };
    assert_eq!(
        summary.call_id.as_str(),
        "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
    );
    assert_eq!(summary.status, Some(ProcessingStatus::Completed));
    assert_eq!(summary.next_steps, vec!["Schedule an inspection."]);

    let EventData::CallSummary(summary) = load("v2026-03-30/call.summary.completed.json").data
    else {
        panic!("a summary")
    };
    assert_eq!(summary.jobs[0].fields.len(), 2);
    assert_eq!(summary.answered_by.as_ref().unwrap().as_str(), "US123");

    let event = load("legacy-api/call.transcript.completed.json");
    assert_eq!(event.event_type.to_string(), "call.transcript.completed");
    let EventData::CallTranscript(transcript) = event.data else {
        panic!("a transcript")
    };
    assert_eq!(transcript.dialogue[0].start, Some(5.123456));
    let EventData::CallTranscript(transcript) =
        load("v2026-03-30/call.transcript.completed.json").data
    else {
        panic!("a transcript")
    };
    assert_eq!(transcript.dialogue.len(), 2);
    assert!(transcript.dialogue[0].user_id.is_none());
    assert_eq!(
        transcript.dialogue[1].user_id.as_ref().unwrap().as_str(),
        "US123"
    );
}

#[test]
fn voicemail_and_menu_selection() {
    let EventData::Voicemail(voicemail) = load("v2026-03-30/call.voicemail.completed.json").data
    else {
        panic!("a voicemail")
    };
    assert_eq!(voicemail.voicemail_id.as_ref().unwrap().as_str(), "VM123");
    assert_eq!(
        voicemail.call_id.as_ref().unwrap().as_str(),
        "AC-call-missed"
    );
    assert_eq!(voicemail.duration, Some(18));
    assert!(voicemail.transcript.is_some());
    let EventData::CallMenuSelection(menu) = load("v2026-03-30/call.menu.selected.json").data
    else {
        panic!("a menu selection")
    };
    assert_eq!(menu.selection.as_deref(), Some("1"));
    assert_eq!(menu.status_reason.as_deref(), Some("phone-menu-dial"));
}

#[test]
fn contacts_in_every_shape() {
    let EventData::Contact(contact) = load("legacy-app/contact.updated.json").data else {
        panic!("a contact")
    };
    assert_eq!(contact.phone_numbers[0].value, "+18005550100");
    assert_eq!(contact.emails[0].value, "pat@example.com");
    assert_eq!(contact.fields[0].name, "Address");
    assert_eq!(contact.shared_with.len(), 3);

    let EventData::Contact(contact) = load("legacy-app/contact.deleted.json").data else {
        panic!("a contact")
    };
    assert_eq!(contact.phone_numbers[0].label.as_deref(), Some("Mobile"));
    assert_eq!(contact.emails[0].value, "sam@example.com");
    assert_eq!(contact.fields[0].name, "Tier");
    assert_eq!(contact.notes[0].text, "Prefers texts");

    let event = load("v2026-03-30/contact.updated.json");
    assert_eq!(event.link, None);
    let EventData::Contact(contact) = event.data else {
        panic!("a contact")
    };
    assert_eq!(contact.external_id.as_deref(), Some("crm-42"));
    assert_eq!(contact.fields.len(), 2);
    assert_eq!(contact.fields[0].key.as_deref(), Some("crack_width"));
    assert_eq!(contact.shared_with, vec!["US123"]);
}

#[test]
fn tasks() {
    let event = load("v2026-03-30/task.updated.json");
    assert_eq!(event.event_type, EventType::Task(TaskAction::Updated));
    let EventData::Task(task) = event.data else {
        panic!("a task")
    };
    assert_eq!(
        task.updated_fields,
        vec![(
            "title".to_owned(),
            Some("Call back about piers (urgent)".to_owned())
        )]
    );
    assert_eq!(task.actor_id.as_ref().unwrap().as_str(), "US123");
    let EventData::Task(task) = load("v2026-03-30/task.duedate.updated.json").data else {
        panic!("a task")
    };
    assert_eq!(task.due_date.as_deref(), Some("2026-04-20T17:00:00.000Z"));
    let EventData::Task(task) = load("v2026-03-30/task.assigned.json").data else {
        panic!("a task")
    };
    assert_eq!(task.assigned_to.as_ref().unwrap().as_str(), "US456");
}

#[test]
fn unknown_types_keep_their_raw_data() {
    let event = load("v2026-03-30/integration.created.json");
    assert_eq!(
        event.event_type,
        EventType::Unknown("integration.created".into())
    );
    let EventData::Unknown(data) = event.data else {
        panic!("unknown")
    };
    assert_eq!(data["resource"]["kind"], "hubspot");
}

#[test]
fn malformed_known_events_name_the_path() {
    let body = br#"{"id":"EV1","type":"message.received","data":{"object":{"id":"AC1","to":42}}}"#;
    let error = Event::parse(body).unwrap_err().to_string();
    assert!(error.contains("$.data.object.to"), "{error}");
    assert!(!error.contains("42"), "{error}");
    let body = br#"{"id":"EV1","type":"call.completed","data":{}}"#;
    assert!(Event::parse(body).is_err());
    let body = br#"{"id":"EV1","type":"call.completed","data":{"object":{"status":"completed"}}}"#;
    let error = Event::parse(body).unwrap_err().to_string();
    assert!(error.contains("$.data.object.id"), "{error}");
    assert!(Event::parse(b"[1,2]").is_err());
    assert!(Event::parse(b"").is_err());
}

#[test]
fn timestamps_accept_z_offsets_and_optional_fractions() {
    let cases = [
        ("2022-01-23T16:55:52Z", 1_642_956_952, 0),
        ("2022-01-23T16:55:52.557Z", 1_642_956_952, 557_000_000),
        ("2022-01-23T16:55:52.420123Z", 1_642_956_952, 420_123_000),
        ("2025-11-25T05:14:12+00:00", 1_764_047_652, 0),
        ("2025-11-25T00:14:12.5-05:00", 1_764_047_652, 500_000_000),
    ];
    for (text, seconds, nanos) in cases {
        let body = format!(
            r#"{{"id":"EV1","type":"call.completed","createdAt":"{text}","data":{{"object":{{"id":"AC1","status":"completed","answeredAt":"{text}"}}}}}}"#
        );
        let event = Event::parse(body.as_bytes()).unwrap_or_else(|error| panic!("{text}: {error}"));
        let created = event.created_at.unwrap();
        assert_eq!(created.unix_timestamp(), seconds, "{text}");
        assert_eq!(created.nanosecond(), nanos, "{text}");
        let EventData::Call(call) = event.data else {
            panic!("a call")
        };
        assert_eq!(call.answered_at, Some(created));
        assert_eq!(
            call.outcome,
            openphone_webhooks::event::CallOutcome::Answered
        );
    }
    // (A space instead of `T` is accepted: RFC 3339 section 5.6 allows it.)
    for bad in ["2022-01-23T16:55:52", "2022-01-23", "yesterday"] {
        let body =
            format!(r#"{{"id":"EV1","type":"message.received","createdAt":"{bad}","data":{{}}}}"#);
        let error = Event::parse(body.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("$.createdAt"), "{bad}: {error}");
    }
}
