//! The simulated API through the real client: pagination, resources, auth.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use openphone_client::model::contact::{ContactUpdate, ListContacts, NewContact};
use openphone_client::model::conversation::ListConversations;
use openphone_client::model::message::ListMessages;
use openphone_client::model::webhook::{NewWebhook, WebhookKind};
use openphone_client::model::workspace::WorkspaceQuery;
use openphone_client::types::{E164, PhoneNumberId};
use openphone_client::{Client, Error};

use crate::helpers::{client, config, start};

#[tokio::test]
async fn pagination_returns_every_record_exactly_once() {
    let simulator = start(config(53)).await;
    let client = client(&simulator, "sim-key");
    let mut params = ListConversations::all();
    params.max_results = Some(7);
    let conversations: Vec<_> = client
        .list_conversations(params)
        .try_collect()
        .await
        .unwrap();
    let ids: HashSet<_> = conversations.iter().map(|c| c.id.clone()).collect();
    assert_eq!((conversations.len(), ids.len()), (53, 53));
    // Most recent activity first.
    assert!(
        conversations
            .windows(2)
            .all(|w| w[0].last_activity_at >= w[1].last_activity_at)
    );

    // Every message of every conversation, through v1, equals the workspace-wide read.
    let mut v1_messages = 0;
    for conversation in &conversations {
        let participants: Vec<E164> = conversation
            .participants
            .iter()
            .map(|p| p.as_e164().unwrap().clone())
            .collect();
        let params =
            ListMessages::new(conversation.phone_number_id.clone(), participants).page_size(3);
        let messages: Vec<_> = client.list_messages(params).try_collect().await.unwrap();
        assert!(
            messages
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at)
        );
        v1_messages += messages.len();
    }
    let mut query = WorkspaceQuery::default();
    query.limit = Some(9);
    let workspace: Vec<_> = client
        .workspace_messages(query)
        .try_collect()
        .await
        .unwrap();
    let (_, total_messages, total_calls) = simulator.counts();
    assert_eq!(v1_messages, total_messages);
    assert_eq!(workspace.len(), total_messages);
    assert!(
        workspace.iter().any(|m| !m.media.is_empty()),
        "some seeded messages carry media"
    );
    let calls: Vec<_> = client
        .workspace_calls(WorkspaceQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(calls.len(), total_calls);
    simulator.stop().await;
}

#[tokio::test]
async fn media_urls_are_served() {
    let simulator = start(config(30)).await;
    let client = client(&simulator, "sim-key");
    let messages: Vec<_> = client
        .workspace_messages(WorkspaceQuery::default())
        .try_collect()
        .await
        .unwrap();
    let url = &messages.iter().find(|m| !m.media.is_empty()).unwrap().media[0].url;
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xFF\xD8\xFF", "a JPEG");
    simulator.stop().await;
}

#[tokio::test]
async fn numbers_users_calls_and_artefacts() {
    let simulator = start(config(20)).await;
    let client = client(&simulator, "sim-key");
    let numbers = client.list_phone_numbers(None).await.unwrap();
    assert_eq!(numbers.len(), 2);
    client.get_phone_number(&numbers[0].id).await.unwrap();
    let users: Vec<_> = client.list_users().try_collect().await.unwrap();
    assert_eq!(users.len(), 3);
    client.get_user(&users[0].id).await.unwrap();
    let calls: Vec<_> = client
        .workspace_calls(WorkspaceQuery::default())
        .try_collect()
        .await
        .unwrap();
    let answered = calls.iter().find(|c| c.answered_at.is_some()).unwrap();
    let call = client.get_call(&answered.id).await.unwrap();
    assert!(call.was_answered());
    assert_eq!(client.call_recordings(&call.id).await.unwrap().len(), 1);
    assert!(
        client
            .call_summary(&call.id)
            .await
            .unwrap()
            .summary
            .is_some()
    );
    assert!(
        client
            .call_transcript(&call.id)
            .await
            .unwrap()
            .dialogue
            .is_some()
    );
    let missed = calls.iter().find(|c| c.answered_at.is_none()).unwrap();
    assert!(!client.get_call(&missed.id).await.unwrap().was_answered());
    assert_eq!(
        client.call_summary(&missed.id).await.unwrap_err().status(),
        Some(404)
    );
    simulator.stop().await;
}

#[tokio::test]
async fn contacts_and_webhooks_keep_state() {
    let simulator = start(config(5)).await;
    let client = client(&simulator, "sim-key");
    let mut contact = NewContact::named("Pat");
    contact.external_id = Some("crm-7".into());
    let created = client.create_contact(&contact).await.unwrap();
    let duplicate = client.create_contact(&contact).await.unwrap_err();
    assert_eq!(duplicate.api_code(), Some("0800409"));
    let mut update = ContactUpdate::default();
    update.source = Some("crm".into());
    assert_eq!(
        client
            .update_contact(&created.id, &update)
            .await
            .unwrap()
            .source
            .as_deref(),
        Some("crm")
    );
    let found: Vec<_> = client
        .list_contacts(ListContacts::all().external_id("crm-7"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    client.delete_contact(&created.id).await.unwrap();
    assert_eq!(
        client.get_contact(&created.id).await.unwrap_err().status(),
        Some(404)
    );

    let webhook = client
        .create_webhook(&NewWebhook::new(
            WebhookKind::Messages,
            "http://127.0.0.1:9/hook",
        ))
        .await
        .unwrap();
    assert!(!webhook.key.expose().is_empty());
    assert_eq!(client.list_webhooks(None).await.unwrap().len(), 1);
    client.delete_webhook(&webhook.id).await.unwrap();
    assert!(client.list_webhooks(None).await.unwrap().is_empty());
    simulator.stop().await;
}

#[tokio::test]
async fn wrong_keys_and_missing_versions_are_refused() {
    let simulator = start(config(3)).await;
    let wrong = Client::builder("not-the-key")
        .base_url(simulator.base_url())
        .build()
        .unwrap();
    assert!(matches!(
        wrong.list_phone_numbers(None).await,
        Err(Error::Unauthorized { .. })
    ));
    let bearer = reqwest::Client::new()
        .get(format!("{}/v1/phone-numbers", simulator.base_url()))
        .header("authorization", "Bearer sim-key")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    let unversioned = reqwest::Client::new()
        .get(format!("{}/messages", simulator.base_url()))
        .header("authorization", "sim-key")
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.status(), 400);
    let client = client(&simulator, "sim-key");
    let bad = ListMessages::new(
        PhoneNumberId::from("PN-none"),
        vec!["+15555550123".parse().unwrap()],
    );
    let empty: Vec<_> = client.list_messages(bad).try_collect().await.unwrap();
    assert!(empty.is_empty());
    simulator.stop().await;
}
