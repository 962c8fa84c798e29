//! Properties: signing then verifying always passes; any single-byte change fails; parsing
//! arbitrary input never panics.

use http::HeaderValue;
use openphone_webhooks::{Event, SigningSecret, WebhookVerifier};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{LEGACY_SECRET, STANDARD_SECRET, at_seconds};

const NOW: i64 = 1_700_000_000;

fn secrets() -> [SigningSecret; 2] {
    [
        SigningSecret::parse(LEGACY_SECRET).unwrap(),
        SigningSecret::parse(STANDARD_SECRET).unwrap(),
    ]
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(secrets()).unwrap()
}

/// Replaces the byte at `index` (modulo the length) by a different byte.
fn flip(bytes: &mut [u8], index: usize, delta: u8) {
    let index = index % bytes.len();
    bytes[index] = bytes[index].wrapping_add(delta.max(1));
}

/// The header carrying the signature and the one carrying the timestamp, per scheme.
fn signed(scheme_index: usize, body: &[u8]) -> http::HeaderMap {
    secrets()[scheme_index]
        .sign("msg_property", at_seconds(NOW), body)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signed_bodies_always_verify(scheme in 0usize..2, body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let map = signed(scheme, &body);
        prop_assert!(verifier().verify_at(&map, &body, at_seconds(NOW)).is_ok());
    }

    #[test]
    fn any_single_byte_change_to_the_body_fails(
        scheme in 0usize..2,
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        index in any::<usize>(),
        delta in 1u8..=255,
    ) {
        let map = signed(scheme, &body);
        let mut changed = body.clone();
        flip(&mut changed, index, delta);
        prop_assert!(verifier().verify_at(&map, &changed, at_seconds(NOW)).is_err());
    }

    #[test]
    fn any_single_byte_change_to_the_signature_or_timestamp_fails(
        scheme in 0usize..2,
        body in proptest::collection::vec(any::<u8>(), 0..256),
        index in any::<usize>(),
        delta in 1u8..=255,
        target in 0usize..2,
    ) {
        let mut map = signed(scheme, &body);
        // Legacy carries timestamp and signature in one header; Standard in two.
        let name = match (scheme, target) {
            (0, _) => "openphone-signature",
            (_, 0) => "webhook-timestamp",
            _ => "webhook-signature",
        };
        let mut bytes = map[name].as_bytes().to_vec();
        flip(&mut bytes, index, delta);
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            map.insert(name, value);
            prop_assert!(verifier().verify_at(&map, &body, at_seconds(NOW)).is_err());
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Event::parse(&body);
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(value in json_value()) {
        let _ = Event::from_value(value);
    }

    #[test]
    fn parsing_arbitrary_payloads_of_known_types_never_panics(
        event_type in prop_oneof![
            Just("message.received"), Just("message.failed"), Just("call.completed"),
            Just("call.ringing"), Just("call.recording.completed"), Just("callSummary"),
            Just("call.transcript.completed"), Just("call.voicemail.completed"),
            Just("call.menu.selected"), Just("contact.updated"), Just("task.updated"),
            Just("something.else"),
        ],
        key in prop_oneof![Just("object"), Just("resource")],
        object in json_object(),
        context in json_value(),
    ) {
        let event = json!({
            "id": "EV1",
            "type": event_type,
            "data": { key: object, "context": context },
        });
        let _ = Event::from_value(event);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9+:.\\-]{0,24}".prop_map(Value::String),
        Just(json!("2022-01-23T16:55:52.557Z")),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Objects whose keys are the field names the parser looks at, so typed paths are exercised.
fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(field_name(), json_value(), 0..12)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id"),
        Just("callId"),
        Just("from"),
        Just("to"),
        Just("text"),
        Just("body"),
        Just("media"),
        Just("status"),
        Just("direction"),
        Just("createdAt"),
        Just("answeredAt"),
        Just("duration"),
        Just("participants"),
        Just("voicemail"),
        Just("recordings"),
        Just("dialogue"),
        Just("summary"),
        Just("jobs"),
        Just("fields"),
        Just("emails"),
        Just("phoneNumbers"),
        Just("customFields"),
        Just("updatedFields"),
        Just("aiHandled"),
        Just("contacts"),
        Just("notes"),
        Just("other"),
    ]
    .prop_map(str::to_owned)
}
