//! Sending from the server, the audit log, and read marks, against the simulated OpenPhone.

use futures_util::future::join_all;
use openphone_simulator::{Simulator, SimulatorConfig};
use reference_server::auth::Role;
use reference_server::config::Redacted;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

const CUSTOMER: &str = "+15550003333";

async fn simulator() -> (Simulator, String) {
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec![key.clone()],
            rate_limit: None,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (sim, key)
}

async fn post(app: &TestApp, token: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/messages"))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let mut body: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(retry_after) = retry_after {
        body["retry_after"] = json!(retry_after);
    }
    (status, body)
}

fn inbound(id: &str, text: &str) -> Value {
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
        "createdAt": "2026-11-22T06:00:00Z", "type": "message.received", "data": {"object": {
        "id": id, "object": "message", "from": CUSTOMER, "to": ["+15550000001"], "direction": "incoming",
        "text": text, "status": "received", "createdAt": format!("2026-11-22T06:00:{:02}Z", id.len()),
        "phoneNumberId": "PN1"}}})
}

async fn sends_once_per_key_audits_and_refuses_opted_out_numbers(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (sim, key) = simulator().await;
    let sender = sim.phone_numbers()[0].0.clone();
    let app = TestApp::spawn_with(&db, |config| {
        config.openphone_api_key = Some(Redacted(key.clone()));
        config.openphone_base_url = sim.base_url();
        config.default_sender = Some(sender.clone());
        config.messages_per_minute = 3;
    })
    .await;
    let support = app.token(Role::Support).await;
    let body = json!({"to": CUSTOMER, "text": "Your inspection is confirmed for Tuesday 9am."});

    // Eight concurrent requests with one key: one send.
    let results =
        join_all((0..8).map(|_| post(&app, &support, Some("booking-42"), body.clone()))).await;
    assert_eq!(sim.sent().len(), 1, "sent once");
    let created: Vec<&(StatusCode, Value)> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let id = created[0].1["id"].as_i64().unwrap();
    assert!(
        results
            .iter()
            .all(|(status, body)| status.is_success() && body["id"] == id)
    );
    assert_eq!(created[0].1["status"], "sent");
    let message_id = created[0].1["message_id"].as_str().unwrap().to_owned();
    assert_eq!(sim.sent(), std::slice::from_ref(&message_id));

    // Its delivery webhook moves it on.
    let delivered = json!({"id": "EVdel", "object": "event", "apiVersion": "v4", "createdAt": "2026-11-22T06:01:00Z",
        "type": "message.delivered", "data": {"object": {"id": message_id, "object": "message",
        "from": sim.phone_numbers()[0].1, "to": [CUSTOMER], "direction": "outgoing", "text": "Your inspection is confirmed for Tuesday 9am.",
        "status": "delivered", "createdAt": "2026-11-22T06:00:30Z", "phoneNumberId": sender}}});
    assert_eq!(app.webhook("del1", &delivered).await, StatusCode::OK);
    let (status, record) = app.get(&format!("/api/v1/messages/{id}"), &support).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["delivery_status"], "delivered", "{record}");

    // Bad requests.
    assert_eq!(
        post(&app, &support, None, body.clone()).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, error) = post(
        &app,
        &support,
        Some("k-bad"),
        json!({"to": "555-0101", "text": "hi"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("E.164"),
        "{error}"
    );
    let (status, _) = post(
        &app,
        &support,
        Some("k-blank"),
        json!({"to": CUSTOMER, "text": "   "}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // STOP: refused, audited, nothing sent.
    assert_eq!(
        app.webhook("stop1", &inbound("ACstop1", "STOP")).await,
        StatusCode::OK
    );
    let (status, error) = post(&app, &support, Some("after-stop"), body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(error["error"].as_str().unwrap().contains("opted out"));
    assert_eq!(sim.sent().len(), 1);

    // The token's limit (3 a minute): the third new key is refused with Retry-After.
    let other = json!({"to": "+15550004444", "text": "Reminder: inspection tomorrow."});
    assert_eq!(
        post(&app, &support, Some("r1"), other.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, limited) = post(&app, &support, Some("r2"), other.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{limited}");
    assert!(
        limited["retry_after"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // A retry of a key already used is answered from the record, not counted.
    assert_eq!(
        post(&app, &support, Some("r1"), other).await.0,
        StatusCode::OK
    );

    // The audit log is for admins.
    assert_eq!(
        app.get("/api/v1/audit", &support).await.0,
        StatusCode::FORBIDDEN
    );
    let admin = app.token(Role::Admin).await;
    let (_, audit) = app.get("/api/v1/audit", &admin).await;
    let outcomes: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("+15550004444", "refused"),
            ("+15550004444", "sent"),
            (CUSTOMER, "refused"),
            (CUSTOMER, "sent")
        ]
    );
    assert_eq!(audit["items"][0]["detail"], "rate limited", "{audit}");
    app.stop().await;
    sim.stop().await;
    db.cleanup().await;
}

async fn reading_a_conversation_resets_its_unread_count(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let token = app.token(Role::Support).await;
    for (n, id) in ["ACr1", "ACr22"].iter().enumerate() {
        assert_eq!(
            app.webhook(&format!("r{n}"), &inbound(id, "Any news?"))
                .await,
            StatusCode::OK
        );
    }
    let (_, list) = app.get("/api/v1/conversations", &token).await;
    assert_eq!(list["items"][0]["unread_count"], 2);
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/read")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["unread_count"], 0);
    assert_eq!(
        app.webhook("r3", &inbound("ACr333", "Hello?")).await,
        StatusCode::OK
    );
    let (_, list) = app.get("/api/v1/conversations", &token).await;
    assert_eq!(list["items"][0]["unread_count"], 1);
    // Marking read in OpenPhone needs the API key and OpenPhone's conversation id.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/read")))
        .bearer_auth(&token)
        .json(&json!({"openphone": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // ... and a refusal changes nothing here either.
    let (_, list) = app.get("/api/v1/conversations", &token).await;
    assert_eq!(list["items"][0]["unread_count"], 1, "{list}");
    let unknown = app
        .client
        .post(app.url("/api/v1/conversations/bm9uZQ/read"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    app.stop().await;
    db.cleanup().await;
}

/// Sends and the audit log on this backend pass the suite the memory log passes.
async fn the_send_log_passes_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::messaging::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    sends_once_per_key_audits_and_refuses_opted_out_numbers,
    reading_a_conversation_resets_its_unread_count,
    the_send_log_passes_the_conformance_suite,
);
