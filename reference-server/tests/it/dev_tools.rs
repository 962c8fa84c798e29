//! Development tools: forwarding verified events, exporting the log, replaying an export.

use std::process::Command;

use openphone_webhooks::{Event, SigningSecret, WebhookVerifier};
use reference_server::config::Redacted;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

const DEV_SECRET: &str = "whsec_ZGV2ZWxvcG1lbnQtc2VjcmV0LWZvci10ZXN0cw==";

fn message(n: u32) -> serde_json::Value {
    json!({"id": format!("EVd{n}"), "object": "event", "apiVersion": "v4", "createdAt": "2026-04-13T12:00:00Z",
        "type": "message.received", "data": {"object": {"id": format!("ACd{n}"), "object": "message",
        "from": "+15550001111", "to": ["+15550000001"], "direction": "incoming", "text": format!("hello {n}"),
        "status": "received", "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}})
}

/// Runs `events replay` off the test's runtime thread, so the in-process target can answer.
async fn replay(file: &std::path::Path, to: &str, secret: &str) -> std::process::Output {
    let (file, to, secret) = (file.to_owned(), to.to_owned(), secret.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .args(["events", "replay"])
            .arg(file)
            .args(["--to", &to])
            .env("REPLAY_SECRET", secret)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn events_are_forwarded_exported_and_replayed(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let laptop = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&laptop)
        .await;
    let app = TestApp::spawn_with(&db, |config| {
        config.forward_webhooks = Some(Redacted(format!("{}/hook={DEV_SECRET}", laptop.uri())));
        config.forward_allowed_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    for n in 0..3 {
        assert_eq!(
            app.webhook(&format!("d{n}"), &message(n)).await,
            StatusCode::OK
        );
    }
    // A redelivery is not forwarded again.
    assert_eq!(app.webhook("d0", &message(0)).await, StatusCode::OK);
    let received = TestApp::eventually("three forwarded events", || {
        let laptop = &laptop;
        async move {
            let requests = laptop.received_requests().await.unwrap();
            (requests.len() >= 3).then_some(requests)
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(laptop.received_requests().await.unwrap().len(), 3);
    // Each verifies with the development secret and is the exact event.
    let verifier = WebhookVerifier::new([SigningSecret::parse(DEV_SECRET).unwrap()]).unwrap();
    for request in &received {
        let verified = verifier.verify(&request.headers, &request.body).unwrap();
        assert!(verified.delivery_id.unwrap().starts_with('d'));
        Event::parse(&request.body).unwrap();
    }

    // Export the log, then replay it into a second server.
    let file = db.dir.join("events.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .args(["events", "export", "--out", file.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("exported 3 events"));
    let other = TestDb::new(Backend::Sqlite).await.unwrap();
    let target = TestApp::spawn_with(&other, |config| {
        config.webhook_secrets = Some(Redacted(DEV_SECRET.to_owned()));
    })
    .await;
    let output = replay(&file, &target.url("/api/openphone/webhook"), DEV_SECRET).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("3 accepted, 0 failed"));
    assert_eq!(target.store.delivery_count().await.unwrap(), 3);
    let replayed = target.store.message("ACd2").await.unwrap().unwrap();
    assert_eq!(replayed.body.as_deref(), Some("hello 2"));
    // The wrong secret: every event refused, and the command says so.
    let output = replay(
        &file,
        &target.url("/api/openphone/webhook"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
    target.stop().await;
    other.cleanup().await;
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    events_are_forwarded_exported_and_replayed,
    forwarding_follows_no_redirect,
);

/// A forwarding target that redirects is not followed: the host allowlist was checked for the
/// target, and a 307 would send the signed event on to wherever it points.
async fn forwarding_follows_no_redirect(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (laptop, elsewhere) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/stolen", elsewhere.uri()).as_str()),
        )
        .mount(&laptop)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    let app = TestApp::spawn_with(&db, |config| {
        config.forward_webhooks = Some(Redacted(format!("{}/hook={DEV_SECRET}", laptop.uri())));
        config.forward_allowed_hosts = vec!["127.0.0.1".to_owned()];
    })
    .await;
    assert_eq!(app.webhook("r0", &message(0)).await, StatusCode::OK);
    TestApp::eventually("the forwarded event", || {
        let laptop = &laptop;
        async move { (!laptop.received_requests().await.unwrap().is_empty()).then_some(()) }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
    app.stop().await;
    db.cleanup().await;
}
