//! Webhook ingestion over HTTP, on every backend.

use openphone_webhooks::SigningSecret;
use reqwest::StatusCode;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

const LEGACY_SECRET: &str = "R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRETS: &str =
    "R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const MESSAGE: &str = r#"{"id":"EV7","apiVersion":"2026-03-30","createdAt":"2026-04-13T12:00:00Z","type":"message.received","data":{"resource":{"id":"AC7","direction":"incoming","text":"Is bay 2 free?","media":[],"status":"received","createdAt":"2026-04-13T12:00:00Z"},"context":{"orgId":"OR1","senderIdentifier":"+15550001111","recipientIdentifiers":["+15550002222"]},"links":{"quo":null}}}"#;

async fn post_signed(
    app: &TestApp,
    path: &str,
    secret: &str,
    delivery_id: &str,
    body: &str,
) -> (StatusCode, String) {
    let headers = SigningSecret::parse(secret)
        .unwrap()
        .sign(delivery_id, OffsetDateTime::now_utc(), body.as_bytes())
        .unwrap();
    let mut request = app.client.post(app.url(path)).body(body.to_owned());
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.to_str().unwrap());
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn stores_a_verified_delivery_once_and_acknowledges_duplicates(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), None).await;
    let (status, text) = post_signed(
        &app,
        "/api/openphone/webhook",
        STANDARD_SECRET,
        "msg_1",
        MESSAGE,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"stored\""), "{text}");
    // OpenPhone retries the same delivery (same webhook-id), here on the alias path.
    let (status, text) = post_signed(
        &app,
        "/api/openphone/inbound",
        STANDARD_SECRET,
        "msg_1",
        MESSAGE,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"duplicate\""), "{text}");
    assert_eq!(app.store.delivery_count().await.unwrap(), 1);
    let stored = app
        .store
        .delivery("webhook-id:msg_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.body, MESSAGE.as_bytes());
    assert_eq!(stored.event_id.as_deref(), Some("EV7"));
    assert_eq!(stored.event_type.as_deref(), Some("message.received"));
    assert_eq!(stored.scheme, "standard");
    // A legacy delivery of the same event is keyed by its event id.
    let (status, _) = post_signed(&app, "/api/openphone/webhook", LEGACY_SECRET, "", MESSAGE).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.store.delivery("event:EV7").await.unwrap().is_some());
    app.stop().await;
    db.cleanup().await;
}

async fn bad_signatures_get_401_and_write_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), None).await;
    let other = "whsec_dGhpcyBpcyBhIGRpZmZlcmVudCBrZXkgZm9yIHRlc3Rz";
    let (status, _) = post_signed(&app, "/api/openphone/webhook", other, "msg_2", MESSAGE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unsigned = app
        .client
        .post(app.url("/api/openphone/webhook"))
        .body(MESSAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.store.delivery_count().await.unwrap(), 0);
    app.stop().await;
    db.cleanup().await;
}

async fn oversized_bodies_get_413(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), Some(128)).await;
    let (status, _) = post_signed(
        &app,
        "/api/openphone/webhook",
        STANDARD_SECRET,
        "msg_3",
        MESSAGE,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.store.delivery_count().await.unwrap(), 0);
    app.stop().await;
    db.cleanup().await;
}

/// A body sent in chunks, with no length declared, is cut off at the limit too: 413, nothing
/// written.
async fn an_oversized_chunked_body_gets_413(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), Some(128)).await;
    let chunk = "x".repeat(100);
    let mut request = "POST /api/openphone/webhook HTTP/1.1\r\nhost: localhost\r\n\
        content-type: application/json\r\ntransfer-encoding: chunked\r\n\
        connection: close\r\n\r\n"
        .to_owned();
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(app.store.delivery_count().await.unwrap(), 0);
    app.stop().await;
    db.cleanup().await;
}

async fn unknown_and_unparseable_events_are_kept(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), None).await;
    let unknown = r#"{"id":"EV8","type":"integration.created","data":{"resource":{"id":"IN1"}}}"#;
    let (status, _) = post_signed(
        &app,
        "/api/openphone/webhook",
        STANDARD_SECRET,
        "msg_4",
        unknown,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let stored = app
        .store
        .delivery("webhook-id:msg_4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.event_type.as_deref(), Some("integration.created"));
    assert_eq!(stored.parse_error, None);
    // Authentic but malformed: recorded with the reason, acknowledged.
    let malformed = r#"{"id":"EV9","type":"message.received","data":{"object":{"to":5}}}"#;
    let (status, _) =
        post_signed(&app, "/api/openphone/webhook", LEGACY_SECRET, "", malformed).await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.store.delivery("event:EV9").await.unwrap().unwrap();
    assert!(stored.parse_error.unwrap().contains("$.data.object"));
    // Not even JSON: keyed by its hash.
    let (status, text) = post_signed(
        &app,
        "/api/openphone/webhook",
        LEGACY_SECRET,
        "",
        "not json",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("sha256:"), "{text}");
    assert_eq!(app.store.delivery_count().await.unwrap(), 3);
    app.stop().await;
    db.cleanup().await;
}

async fn without_secrets_deliveries_are_refused_with_503(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, None, None).await;
    let (status, text) = post_signed(
        &app,
        "/api/openphone/webhook",
        STANDARD_SECRET,
        "msg_5",
        MESSAGE,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("OPENPHONE_WEBHOOK_SECRETS"), "{text}");
    assert_eq!(app.store.delivery_count().await.unwrap(), 0);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let body: serde_json::Value = health.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
    app.stop().await;
    db.cleanup().await;
}

/// A NUL character in an event (JSON's `\u0000`), which PostgreSQL cannot store in text: the
/// delivery is still stored, its exact bytes in the raw log, and the records read it as U+FFFD
/// on every backend, as the thread feed does. An escaped backslash before `u0000` is text.
async fn a_nul_in_an_event_is_stored_as_the_replacement_character(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(SECRETS), None).await;
    let message = MESSAGE
        .replace("EV7", "EV70")
        .replace("AC7", "AC70")
        .replace("Is bay 2 free?", r"hold\u0000on \\u0000 kept")
        // A line, so the message has a conversation and joins a thread.
        .replace(
            r#""orgId":"OR1","#,
            r#""orgId":"OR1","phoneNumberId":"PN1","#,
        );
    let (status, text) = post_signed(
        &app,
        "/api/openphone/webhook",
        STANDARD_SECRET,
        "msg_nul_1",
        &message,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let stored = app
        .store
        .delivery("webhook-id:msg_nul_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.body,
        message.as_bytes(),
        "the raw log keeps the bytes"
    );
    let record = app.store.message("AC70").await.unwrap().unwrap();
    assert_eq!(record.body.as_deref(), Some("hold\u{FFFD}on \\u0000 kept"));
    // An unknown type whose id and type hold a NUL: stored raw, acknowledged.
    let unknown = r#"{"id":"EV\u00008","type":"odd\u0000type","data":{}}"#;
    let (status, text) =
        post_signed(&app, "/api/openphone/webhook", LEGACY_SECRET, "", unknown).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let stored = app
        .store
        .delivery("event:EV\u{FFFD}8")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.event_type.as_deref(), Some("odd\u{FFFD}type"));
    // The thread feed (here or the server's own job, whichever comes first) reads the message
    // the same way.
    reference_server::threads::feed(
        &app.store,
        OffsetDateTime::now_utc(),
        &reference_server::scheduler::Stop::never(),
    )
    .await
    .unwrap();
    let threads = thread_resolver::ThreadStore::threads(&app.store, &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(threads.len(), 1, "{threads:?}");
    let entries = thread_resolver::ThreadStore::entries(&app.store, threads[0].id)
        .await
        .unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.text.as_deref())
            .collect::<Vec<_>>(),
        [Some("hold\u{FFFD}on \\u0000 kept")]
    );
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    stores_a_verified_delivery_once_and_acknowledges_duplicates,
    bad_signatures_get_401_and_write_nothing,
    oversized_bodies_get_413,
    an_oversized_chunked_body_gets_413,
    unknown_and_unparseable_events_are_kept,
    a_nul_in_an_event_is_stored_as_the_replacement_character,
    without_secrets_deliveries_are_refused_with_503,
);
