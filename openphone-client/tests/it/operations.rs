//! Every operation: method, path, query encoding, headers and body.

use futures_util::TryStreamExt;
use openphone_client::model::call::ListCalls;
use openphone_client::model::contact::{
    ContactUpdate, CustomFieldInput, LabelledValue, ListContacts, NewContact,
};
use openphone_client::model::conversation::{ListConversations, NumberFilter};
use openphone_client::model::message::{ListMessages, SendMessage};
use openphone_client::model::webhook::{NewWebhook, WebhookKind};
use openphone_client::model::workspace::WorkspaceQuery;
use openphone_client::types::{
    CallId, ContactId, ConversationId, E164, MessageId, MessageStatus, PhoneNumberId, UserId,
    WebhookId,
};
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, unmatched};

fn number(text: &str) -> E164 {
    text.parse().unwrap()
}

pub fn message_json(id: &str) -> Value {
    json!({
        "id": id, "to": ["+15555550123"], "from": "+15555550100", "text": "Hello",
        "phoneNumberId": "PN1", "conversationId": "CN1", "direction": "outgoing",
        "userId": "US1", "status": "queued",
        "createdAt": "2026-04-13T12:00:00Z", "updatedAt": "2026-04-13T12:00:00.123Z"
    })
}

pub fn call_json(id: &str) -> Value {
    json!({
        "answeredAt": null, "answeredBy": null, "initiatedBy": null, "direction": "incoming",
        "status": "completed", "completedAt": "2026-04-13T12:01:00Z", "createdAt": "2026-04-13T12:00:00Z",
        "callRoute": "phone-number", "duration": 0, "forwardedFrom": null, "forwardedTo": null,
        "aiHandled": null, "id": id, "phoneNumberId": "PN1", "participants": ["+15555550123"],
        "updatedAt": null, "userId": "US1"
    })
}

pub fn conversation_json(id: &str) -> Value {
    json!({
        "assignedTo": null, "createdAt": "2026-01-01T00:00:00Z", "deletedAt": null, "id": id,
        "lastActivityAt": "2026-04-13T12:00:00Z", "lastActivityId": "AC1", "mutedUntil": null,
        "name": "Pat", "participants": ["+15555550123"], "phoneNumberId": "PN1",
        "snoozedUntil": null, "updatedAt": "2026-04-13T12:00:00Z"
    })
}

pub fn contact_json(id: &str) -> Value {
    json!({
        "id": id, "externalId": "crm-1", "source": "crm", "sourceUrl": null,
        "defaultFields": {
            "company": "Foundation Fixers", "emails": [{"name": "work", "value": "pat@example.com", "id": "E1"}],
            "firstName": "Pat", "lastName": null,
            "phoneNumbers": [{"name": "mobile", "value": "+15555550123", "id": "P1"}], "role": null
        },
        "customFields": [{"name": "Crack width", "key": "crack", "id": "CF1", "type": "number", "value": 3}],
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z", "createdByUserId": "US1"
    })
}

pub fn webhook_json(id: &str) -> Value {
    json!({
        "id": id, "userId": "US1", "orgId": "OR1", "label": "crm", "status": "enabled",
        "url": "https://crm.example.com/hook", "key": "c2VjcmV0LWtleS1ieXRlcw==",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "deletedAt": null,
        "events": ["message.received", "message.delivered"], "resourceIds": ["*"]
    })
}

#[tokio::test]
async fn send_message_posts_the_documented_body_with_the_raw_key() {
    let server = MockServer::start().await;
    let (client, key) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("authorization", key.as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "content": "Your bay is ready", "from": "PN1", "to": ["+15555550123"],
            "userId": "US1", "setInboxStatus": "done"
        })))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"data": message_json("AC9")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let send = SendMessage::new(
        PhoneNumberId::from("PN1"),
        number("+15555550123"),
        "Your bay is ready",
    )
    .unwrap()
    .user(UserId::from("US1"))
    .mark_done();
    let message = client.send_message(&send).await.unwrap();
    assert_eq!(message.id.as_str(), "AC9");
    assert_eq!(message.status, MessageStatus::Queued);
    let requests = server.received_requests().await.unwrap();
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!auth.starts_with("Bearer"), "{auth}");
}

#[tokio::test]
async fn group_send_and_sender_by_number() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_json(json!({
            "content": "Crew arriving at 9", "from": "+15555550100",
            "to": ["+15555550123", "+15555550124"]
        })))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"data": message_json("AC10")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let send = SendMessage::group(
        number("+15555550100"),
        vec![number("+15555550123"), number("+15555550124")],
        "Crew arriving at 9",
    )
    .unwrap();
    client.send_message(&send).await.unwrap();
}

#[tokio::test]
async fn get_and_list_messages_encode_plus_and_repeat_array_keys() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": message_json("AC1")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("phoneNumberId", "PN1"))
        .and(query_param("maxResults", "2"))
        .and(query_param("createdAfter", "2026-01-01T00:00:00Z"))
        .and(wiremock::matchers::query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [message_json("AC1"), message_json("AC2")], "totalItems": 1, "nextPageToken": "t2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("pageToken", "t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [message_json("AC3")], "totalItems": 1, "nextPageToken": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    assert_eq!(
        client
            .get_message(&MessageId::from("AC1"))
            .await
            .unwrap()
            .id
            .as_str(),
        "AC1"
    );
    let params = ListMessages::new(
        PhoneNumberId::from("PN1"),
        vec![number("+15555550123"), number("+15555550124")],
    )
    .created_after(datetime!(2026-01-01 00:00 UTC))
    .page_size(2);
    // totalItems says 1; the stream follows tokens and reads all 3.
    let ids: Vec<String> = client
        .list_messages(params)
        .map_ok(|message| message.id.into_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["AC1", "AC2", "AC3"]);
    let requests = server.received_requests().await.unwrap();
    let query = requests[1].url.query().unwrap().to_owned();
    assert!(
        query.contains("participants=%2B15555550123&participants=%2B15555550124"),
        "{query}"
    );
    assert!(!query.contains("participants=+"), "{query}");
}

#[tokio::test]
async fn calls_and_their_artefacts() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/calls"))
        .and(query_param("phoneNumberId", "PN1"))
        .and(query_param("participants", "+15555550123"))
        .and(query_param("maxResults", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [call_json("AC5")], "totalItems": 1, "nextPageToken": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/calls/AC5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": call_json("AC5")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/call-recordings/AC5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"duration": 60, "id": "RE1", "startTime": "2026-04-13T12:00:00Z", "status": "completed",
             "type": "audio/mpeg", "url": "https://files.example/rec.mp3"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/call-summaries/AC5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "callId": "AC5", "nextSteps": ["Send quote"], "status": "completed", "summary": ["Asked for a quote"],
            "jobs": [{"icon": "x", "name": "Lead", "result": {"data": [{"name": "budget", "value": 5000}]}}]
        }})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/call-transcripts/AC5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "callId": "AC5", "createdAt": "2026-04-13T12:02:00Z", "duration": 60.5, "status": "completed",
            "dialogue": [{"content": "Hi", "start": 0.5, "end": 1.0, "identifier": "+15555550123", "userId": null}]
        }})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/call-voicemails/AC5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "duration": null, "id": "VM1", "transcript": null, "recordingUrl": null, "status": "in-progress"
        }})))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let calls: Vec<_> = client
        .list_calls(ListCalls::new(
            PhoneNumberId::from("PN1"),
            number("+15555550123"),
        ))
        .try_collect()
        .await
        .unwrap();
    assert!(
        !calls[0].was_answered(),
        "completed with no answeredAt is missed"
    );
    let id = CallId::from("AC5");
    client.get_call(&id).await.unwrap();
    assert_eq!(client.call_recordings(&id).await.unwrap()[0].id, "RE1");
    assert_eq!(
        client.call_summary(&id).await.unwrap().jobs.unwrap()[0]
            .result
            .data[0]
            .name,
        "budget"
    );
    assert_eq!(
        client
            .call_transcript(&id)
            .await
            .unwrap()
            .dialogue
            .unwrap()
            .len(),
        1
    );
    assert_eq!(client.call_voicemail(&id).await.unwrap().id.as_str(), "VM1");
}

#[tokio::test]
async fn conversations_list_and_marks() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/conversations"))
        .and(query_param("updatedAfter", "2026-04-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [conversation_json("CN1")], "totalItems": 9, "nextPageToken": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    for action in ["mark-as-read", "mark-as-done", "mark-as-open"] {
        Mock::given(method("POST"))
            .and(path(format!("/v1/conversations/CN1/{action}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(conversation_json("CN1")))
            .expect(1)
            .mount(&server)
            .await;
    }
    unmatched(&server).await;
    let params = ListConversations::all()
        .number(NumberFilter::Id(PhoneNumberId::from("PN1")))
        .number(NumberFilter::Number(number("+15555550100")))
        .updated_after(datetime!(2026-04-01 00:00 UTC));
    let conversations: Vec<_> = client
        .list_conversations(params)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    let query = server.received_requests().await.unwrap()[0]
        .url
        .query()
        .unwrap()
        .to_owned();
    assert!(
        query.contains("phoneNumbers=PN1&phoneNumbers=%2B15555550100"),
        "{query}"
    );
    let id = ConversationId::from("CN1");
    client.mark_conversation_read(&id).await.unwrap();
    client.mark_conversation_done(&id).await.unwrap();
    client.mark_conversation_open(&id).await.unwrap();
}

#[tokio::test]
async fn contacts_crud_and_custom_fields() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/contacts"))
        .and(body_json(json!({
            "defaultFields": {"company": null, "emails": [], "firstName": "Pat", "lastName": null,
                              "phoneNumbers": [{"name": "mobile", "value": "+15555550123"}], "role": null},
            "customFields": [{"key": "crack", "value": 3}],
            "externalId": "crm-1"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": contact_json("c1")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/contacts/c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": contact_json("c1")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/contacts/c1"))
        .and(body_json(json!({"externalId": "crm-2"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": contact_json("c1")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/contacts/c1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/contacts"))
        .and(query_param("maxResults", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [contact_json("c1")], "totalItems": 1, "nextPageToken": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/contact-custom-fields"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"name": "Crack width", "key": "crack", "type": "number"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let mut new = NewContact::named("Pat");
    new.default_fields
        .phone_numbers
        .push(LabelledValue::new("mobile", "+15555550123"));
    new.custom_fields.push(CustomFieldInput::new("crack", 3));
    new.external_id = Some("crm-1".to_owned());
    let created = client.create_contact(&new).await.unwrap();
    assert_eq!(created.custom_fields[0].value, json!(3));
    let id = ContactId::from("c1");
    client.get_contact(&id).await.unwrap();
    let mut update = ContactUpdate::default();
    update.external_id = Some("crm-2".to_owned());
    client.update_contact(&id, &update).await.unwrap();
    client.delete_contact(&id).await.unwrap();
    let contacts: Vec<_> = client
        .list_contacts(
            ListContacts::all()
                .external_id("crm-1")
                .external_id("crm 2"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(contacts.len(), 1);
    let query = server.received_requests().await.unwrap()[4]
        .url
        .query()
        .unwrap()
        .to_owned();
    assert!(
        query.contains("externalIds=crm-1&externalIds=crm+2")
            || query.contains("externalIds=crm%202"),
        "{query}"
    );
    assert_eq!(
        client.contact_custom_fields().await.unwrap()[0].key,
        "crack"
    );
}

#[tokio::test]
async fn phone_numbers_and_users() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    let number_json = json!({
        "id": "PN1", "groupId": "1234", "portRequestId": null, "formattedNumber": "(555) 555-0100",
        "forward": null, "name": "Front desk", "number": "+15555550100", "portingStatus": null, "symbol": null,
        "users": [{"email": "a@example.com", "firstName": "A", "lastName": null, "id": "US1", "role": "owner", "groupId": "GR1"}],
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "restrictions": {"calling": {"CA": "unrestricted", "Intl": "restricted", "US": "unrestricted"},
                         "messaging": {"CA": "unrestricted", "Intl": "restricted", "US": "unrestricted"}}
    });
    let user_json = json!({
        "id": "US1", "email": "a@example.com", "firstName": "A", "lastName": null, "pictureUrl": null,
        "role": "admin", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    });
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers"))
        .and(query_param("userId", "US1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [number_json.clone()]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers/PN1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": number_json})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users"))
        .and(query_param("maxResults", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [user_json.clone()], "totalItems": 1, "nextPageToken": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users/US1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": user_json})))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let numbers = client
        .list_phone_numbers(Some(&UserId::from("US1")))
        .await
        .unwrap();
    assert_eq!(numbers[0].users[0].group_id.as_str(), "GR1");
    client
        .get_phone_number(&PhoneNumberId::from("PN1"))
        .await
        .unwrap();
    let users: Vec<_> = client.list_users().try_collect().await.unwrap();
    assert_eq!(users.len(), 1);
    client.get_user(&UserId::from("US1")).await.unwrap();
}

#[tokio::test]
async fn webhooks_list_get_create_delete() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [webhook_json("WH1")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks/WH1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": webhook_json("WH1")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    for (kind, route, events) in [
        (
            WebhookKind::Messages,
            "/v1/webhooks/messages",
            json!(["message.received", "message.delivered"]),
        ),
        (
            WebhookKind::Calls,
            "/v1/webhooks/calls",
            json!(["call.completed", "call.ringing", "call.recording.completed"]),
        ),
        (
            WebhookKind::CallSummaries,
            "/v1/webhooks/call-summaries",
            json!(["call.summary.completed"]),
        ),
        (
            WebhookKind::CallTranscripts,
            "/v1/webhooks/call-transcripts",
            json!(["call.transcript.completed"]),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(route))
            .and(body_json(
                json!({"url": "https://crm.example.com/hook", "events": events, "label": "crm"}),
            ))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"data": webhook_json("WH2")})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let _ = kind;
    }
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/WH1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let listed = client.list_webhooks(None).await.unwrap();
    assert_eq!(listed[0].key.expose(), "c2VjcmV0LWtleS1ieXRlcw==");
    assert!(
        !format!("{listed:?}").contains("c2VjcmV0"),
        "the key is redacted in Debug"
    );
    client.get_webhook(&WebhookId::from("WH1")).await.unwrap();
    for kind in [
        WebhookKind::Messages,
        WebhookKind::Calls,
        WebhookKind::CallSummaries,
        WebhookKind::CallTranscripts,
    ] {
        let new = NewWebhook::new(kind, "https://crm.example.com/hook").label("crm");
        client.create_webhook(&new).await.unwrap();
    }
    client
        .delete_webhook(&WebhookId::from("WH1"))
        .await
        .unwrap();
    // An event of another kind is refused before sending.
    let mut wrong = NewWebhook::new(WebhookKind::Messages, "https://x.example");
    wrong.events.push("call.completed".into());
    assert!(matches!(
        client.create_webhook(&wrong).await,
        Err(openphone_client::Error::Validation {
            field: "events",
            ..
        })
    ));
}

#[tokio::test]
async fn workspace_reads_send_the_version_header_and_follow_cursors() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/messages"))
        .and(header("quo-api-version", "2026-03-30"))
        .and(query_param("limit", "50"))
        .and(query_param("createdAt[gt]", "2026-01-01T00:00:00Z"))
        .and(wiremock::matchers::query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "AC1", "direction": "incoming", "text": "photo", "status": "received",
                      "media": [{"url": "https://files.example/1.jpg", "type": "image/jpeg"}],
                      "createdAt": "2026-02-01T00:00:00Z"}],
            "nextCursor": "c2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/messages"))
        .and(query_param("after", "c2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "nextCursor": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/calls"))
        .and(header("quo-api-version", "2026-03-30"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "AC2", "direction": "incoming", "status": "unanswered", "hasVoicemail": true, "duration": null}],
            "nextCursor": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let mut query = WorkspaceQuery::default();
    query.created_after = Some(datetime!(2026-01-01 00:00 UTC));
    let messages: Vec<_> = client
        .workspace_messages(query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        messages[0].media[0].content_type.as_deref(),
        Some("image/jpeg")
    );
    let calls: Vec<_> = client
        .workspace_calls(WorkspaceQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(calls[0].has_voicemail, Some(true));
}

#[tokio::test]
async fn validation_refuses_bad_input_before_sending() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    unmatched(&server).await;
    let from = PhoneNumberId::from("PN1");
    for content in ["", "   \n\t", &"x".repeat(1601)] {
        let error = SendMessage::new(from.clone(), number("+15555550123"), content).unwrap_err();
        assert!(
            matches!(
                error,
                openphone_client::Error::Validation {
                    field: "content",
                    ..
                }
            ),
            "{error}"
        );
    }
    assert!(SendMessage::new(from.clone(), number("+15555550123"), "é".repeat(1600)).is_ok());
    assert!(SendMessage::group(from.clone(), vec![number("+15555550123")], "hi").is_err());
    assert!(SendMessage::group(from.clone(), vec![number("+15555550123"); 2], "hi").is_err());
    let eleven: Vec<E164> = (0..11)
        .map(|i| number(&format!("+1555555012{i}")))
        .collect();
    assert!(SendMessage::group(from.clone(), eleven, "hi").is_err());
    let too_many = ListMessages::new(from.clone(), vec![]);
    assert!(client.list_messages_page(&too_many, None).await.is_err());
    let page_too_big = ListMessages::new(from, vec![number("+15555550123")]).page_size(101);
    assert!(
        client
            .list_messages_page(&page_too_big, None)
            .await
            .is_err()
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn a_token_cycle_ends_the_listing() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    let page = |token: Option<&str>, next: &str, id: &str| {
        let mut mock = Mock::given(method("GET")).and(path("/v1/users"));
        mock = match token {
            Some(token) => mock.and(query_param("pageToken", token)),
            None => mock.and(wiremock::matchers::query_param_is_missing("pageToken")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": id, "email": "a@example.com", "firstName": null, "lastName": null, "pictureUrl": null,
                      "role": "member", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}],
            "totalItems": 1, "nextPageToken": next
        })))
        .expect(1)
    };
    page(None, "a", "US1").mount(&server).await;
    page(Some("a"), "b", "US2").mount(&server).await;
    page(Some("b"), "a", "US3").mount(&server).await;
    unmatched(&server).await;
    let users: Vec<_> = client.list_users().try_collect().await.unwrap();
    assert_eq!(
        users.len(),
        3,
        "three pages, then the repeated token stops the stream"
    );
}
