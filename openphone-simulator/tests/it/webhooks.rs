//! Signed deliveries in both schemes, verified and parsed by `openphone-webhooks`.

use std::collections::HashMap;
use std::time::Duration;

use openphone_client::model::message::SendMessage;
use openphone_client::model::webhook::{NewWebhook, WebhookKind};
use openphone_client::types::PhoneNumberId;
use openphone_simulator::{InboundCall, InboundMessage, WebhookTarget};
use openphone_webhooks::{
    EventData, EventType, PayloadFormat, Scheme, SigningSecret, WebhookVerifier,
};

use crate::helpers::{
    LEGACY_SECRET, STANDARD_SECRET, client, config, next, raw_receiver, receiver, start,
};

fn targets(url: &str) -> Vec<WebhookTarget> {
    vec![
        WebhookTarget {
            url: url.to_owned(),
            secret: STANDARD_SECRET.to_owned(),
        },
        WebhookTarget {
            url: url.to_owned(),
            secret: LEGACY_SECRET.to_owned(),
        },
    ]
}

#[tokio::test]
async fn a_send_is_followed_by_message_delivered_in_both_schemes() {
    let (url, mut deliveries) = receiver(&[], 0).await;
    let mut config = config(2);
    config.webhook_targets = targets(&url);
    config.delivery.delivered_after = Duration::from_millis(20);
    let simulator = start(config).await;
    let (number_id, _) = simulator.phone_numbers()[0].clone();
    let client = client(&simulator, "sim-key");
    let send = SendMessage::new(
        PhoneNumberId::new(number_id),
        "+15555550123".parse().unwrap(),
        "On our way",
    )
    .unwrap();
    let sent = client.send_message(&send).await.unwrap();
    let received = next(&mut deliveries, 2).await;
    let mut schemes = Vec::new();
    for delivery in &received {
        assert_eq!(delivery.event.event_type, EventType::MessageDelivered);
        let EventData::Message(message) = &delivery.event.data else {
            panic!("a message")
        };
        assert_eq!(message.id.as_str(), sent.id.as_str());
        assert_eq!(message.text.as_deref(), Some("On our way"));
        assert_eq!(message.counterparts()[0].as_str(), "+15555550123");
        schemes.push((delivery.scheme, delivery.event.format));
    }
    schemes.sort_by_key(|(scheme, _)| *scheme == Scheme::Legacy);
    assert_eq!(
        schemes,
        [
            (Scheme::Standard, PayloadFormat::Resource),
            (Scheme::Legacy, PayloadFormat::Object)
        ]
    );
    // The message is delivered in the API too.
    let stored = client.get_message(&sent.id).await.unwrap();
    assert_eq!(stored.status.as_str(), "delivered");
    simulator.stop().await;
}

#[tokio::test]
async fn scripted_inbound_messages_and_calls_deliver_their_events() {
    let (url, mut deliveries) = receiver(&[], 0).await;
    let mut config = config(2);
    config.webhook_targets = vec![WebhookTarget {
        url: url.clone(),
        secret: STANDARD_SECRET.to_owned(),
    }];
    let simulator = start(config).await;
    let (_, our_number) = simulator.phone_numbers()[0].clone();
    simulator
        .inbound_message(InboundMessage {
            from: "+15555550199".into(),
            to: our_number.clone(),
            text: "Photo of the crack".into(),
            media: 1,
        })
        .unwrap();
    let received = next(&mut deliveries, 1).await;
    let EventData::Message(message) = &received[0].event.data else {
        panic!("a message")
    };
    assert_eq!(received[0].event.event_type, EventType::MessageReceived);
    assert_eq!(message.media.len(), 1);
    let photo = reqwest::get(&message.media[0].url).await.unwrap();
    assert_eq!(photo.status(), 200);

    simulator
        .inbound_call(InboundCall {
            from: "+15555550199".into(),
            to: our_number.clone(),
            answered: true,
            voicemail: false,
            duration: 42,
        })
        .unwrap();
    let types: Vec<String> = next(&mut deliveries, 5)
        .await
        .iter()
        .map(|d| d.event.event_type.to_string())
        .collect();
    assert_eq!(
        types,
        [
            "call.ringing",
            "call.completed",
            "call.recording.completed",
            "call.summary.completed",
            "call.transcript.completed"
        ]
    );
    simulator
        .inbound_call(InboundCall {
            from: "+15555550198".into(),
            to: our_number,
            answered: false,
            voicemail: true,
            duration: 0,
        })
        .unwrap();
    let missed = next(&mut deliveries, 3).await;
    let EventData::Call(call) = &missed[1].event.data else {
        panic!("a call")
    };
    assert_eq!(call.outcome, openphone_webhooks::event::CallOutcome::Missed);
    assert_eq!(
        missed[2].event.event_type,
        EventType::CallVoicemailCompleted
    );
    simulator.stop().await;
}

#[tokio::test]
async fn duplicates_and_reordering_on_request() {
    let (url, mut deliveries) = receiver(&[], 0).await;
    let mut config = config(2);
    config.webhook_targets = vec![WebhookTarget {
        url,
        secret: STANDARD_SECRET.to_owned(),
    }];
    config.delivery.duplicate_rate = 1.0;
    config.delivery.reorder = true;
    let simulator = start(config).await;
    let (_, our_number) = simulator.phone_numbers()[0].clone();
    simulator
        .inbound_call(InboundCall {
            from: "+15555550197".into(),
            to: our_number,
            answered: true,
            voicemail: false,
            duration: 30,
        })
        .unwrap();
    let received = next(&mut deliveries, 10).await;
    assert_eq!(
        received[0].event.event_type,
        EventType::CallTranscriptCompleted,
        "reversed"
    );
    assert_eq!(received[9].event.event_type, EventType::CallRinging);
    let mut copies: HashMap<String, usize> = HashMap::new();
    for delivery in &received {
        *copies
            .entry(delivery.delivery_id.clone().unwrap())
            .or_default() += 1;
    }
    assert!(copies.values().all(|count| *count == 2), "{copies:?}");
    simulator.stop().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff() {
    let (url, mut deliveries) = receiver(&[], 2).await;
    let mut config = config(2);
    config.webhook_targets = vec![WebhookTarget {
        url,
        secret: STANDARD_SECRET.to_owned(),
    }];
    config.delivery.retry_base = Duration::from_millis(20);
    let simulator = start(config).await;
    let (_, our_number) = simulator.phone_numbers()[0].clone();
    simulator
        .inbound_message(InboundMessage {
            from: "+15555550196".into(),
            to: our_number,
            text: "Anyone there?".into(),
            media: 0,
        })
        .unwrap();
    let received = next(&mut deliveries, 1).await;
    assert_eq!(received[0].event.event_type, EventType::MessageReceived);
    // The receiver has the event before the simulator has counted the 2xx: wait for it.
    let mut stats = simulator.stats();
    for _ in 0..100 {
        if stats.deliveries_succeeded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = simulator.stats();
    }
    assert_eq!(
        (stats.delivery_failures, stats.deliveries_succeeded),
        (2, 1),
        "{stats:?}"
    );
    simulator.stop().await;
}

#[tokio::test]
async fn webhooks_created_through_the_api_get_legacy_deliveries_signed_with_their_key() {
    let simulator = start(config(2)).await;
    let client = client(&simulator, "sim-key");
    let (url, mut raw) = raw_receiver().await;
    let webhook = client
        .create_webhook(&NewWebhook::new(WebhookKind::Messages, url))
        .await
        .unwrap();
    let (_, our_number) = simulator.phone_numbers()[0].clone();
    simulator
        .inbound_message(InboundMessage {
            from: "+15555550195".into(),
            to: our_number,
            text: "Hello".into(),
            media: 0,
        })
        .unwrap();
    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), raw.recv())
        .await
        .unwrap()
        .unwrap();
    let verifier =
        WebhookVerifier::new([SigningSecret::legacy(webhook.key.expose()).unwrap()]).unwrap();
    let verified = verifier.verify(&headers, &body).unwrap();
    assert_eq!(verified.scheme, Scheme::Legacy);
    let event = openphone_webhooks::Event::parse(&body).unwrap();
    assert_eq!(event.api_version.as_deref(), Some("v4"));
    assert_eq!(event.event_type, EventType::MessageReceived);
    // Events the webhook did not ask for are not delivered to it.
    let (_, number) = simulator.phone_numbers()[0].clone();
    simulator
        .inbound_call(InboundCall {
            from: "+15555550195".into(),
            to: number,
            answered: false,
            voicemail: false,
            duration: 0,
        })
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), raw.recv())
            .await
            .is_err()
    );
    simulator.stop().await;
}
