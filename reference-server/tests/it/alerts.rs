//! Alerts: grouped banners in the API, a JSON webhook and email over SMTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reference_server::alerts::{AlertSink, Alerter, EmailSink};
use reference_server::auth::Role;
use reference_server::config::Redacted;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

async fn unsigned_post(app: &TestApp) -> StatusCode {
    app.client
        .post(app.url("/api/openphone/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
}

async fn verification_failures_raise_one_grouped_alert(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&slack)
        .await;
    let app = TestApp::spawn_with(&db, |config| {
        config.alert_webhook_url = Some(Redacted(format!("{}/hooks/alerts", slack.uri())));
        config.alert_verification_failures = 3;
    })
    .await;
    // Seven forged deliveries: the threshold of 3 is reached twice, one alert counts both.
    for _ in 0..7 {
        assert_eq!(unsigned_post(&app).await, StatusCode::UNAUTHORIZED);
    }
    let support = app.token(Role::Support).await;
    let (status, page) = app.get("/api/v1/alerts?open=true", &support).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["kind"], "webhook_verification_failures");
    assert_eq!(items[0]["count"], 2);
    let posted = TestApp::eventually("the webhook notification", || {
        let slack = &slack;
        async move {
            let requests = slack.received_requests().await.unwrap();
            (!requests.is_empty()).then_some(requests)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        slack.received_requests().await.unwrap().len(),
        1,
        "grouped, not flooded"
    );
    let body: Value = serde_json::from_slice(&posted[0].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("failed signature verification"),
        "{body}"
    );

    // Acknowledging closes it (operators only); the next occurrence opens a new one.
    let id = items[0]["id"].as_i64().unwrap();
    let ack = |token: String| {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/alerts/{id}/ack")),
        );
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(ack(support.clone()).await, StatusCode::FORBIDDEN);
    let operator = app.token(Role::Operator).await;
    assert_eq!(ack(operator.clone()).await, StatusCode::OK);
    assert_eq!(ack(operator.clone()).await, StatusCode::NOT_FOUND);
    let (_, open) = app.get("/api/v1/alerts?open=true", &support).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    for _ in 0..3 {
        unsigned_post(&app).await;
    }
    let (_, open) = app.get("/api/v1/alerts?open=true", &support).await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    assert_ne!(open["items"][0]["id"].as_i64().unwrap(), id);
    TestApp::eventually("the second notification", || {
        let slack = &slack;
        async move { (slack.received_requests().await.unwrap().len() == 2).then_some(()) }
    })
    .await;
    let (_, all) = app.get("/api/v1/alerts", &support).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    app.stop().await;
    db.cleanup().await;
}

/// A minimal SMTP server: accepts one message and hands over what DATA carried.
async fn smtp_server() -> (u16, Arc<Mutex<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(String::new()));
    let store = received.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 OK queued\r\n").await.unwrap();
                } else {
                    let mut data = store.lock().unwrap();
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250 test\r\n"
            } else if command.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if command.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                return;
            } else {
                b"250 OK\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
    });
    (port, received)
}

async fn alerts_are_emailed_over_smtp(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (port, received) = smtp_server().await;
    let email: Arc<dyn AlertSink> = Arc::new(
        EmailSink::new(
            &format!("smtp://127.0.0.1:{port}"),
            "Alerts <alerts@example.com>",
            &["ops@example.com".to_owned()],
        )
        .unwrap(),
    );
    let alerter = Alerter::new(
        store.clone(),
        vec![email],
        Duration::from_secs(3600),
        20,
        reference_server::ingest::system_clock(),
    );
    alerter
        .raise(
            "media_download_failed",
            "media_download_failed",
            "Media downloads are failing",
            Some("HTTP 404".to_owned()),
        )
        .await
        .unwrap();
    let data = TestApp::eventually("the email", || {
        let received = received.clone();
        async move {
            let data = received.lock().unwrap().clone();
            data.contains("HTTP 404").then_some(data)
        }
    })
    .await;
    assert!(
        data.contains("Subject: [openphone] Media downloads are failing"),
        "{data}"
    );
    assert!(data.contains("To: ops@example.com"), "{data}");
    assert!(EmailSink::new("smtp://x", "not an address", &["a@b.c".to_owned()]).is_err());
    assert!(EmailSink::new("smtp://x", "a@b.c", &[]).is_err());
    store.close().await;
    db.cleanup().await;
}

/// Alerts on this backend pass the suite the memory alerts pass.
async fn alerts_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::alerts::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    verification_failures_raise_one_grouped_alert,
    alerts_are_emailed_over_smtp,
    alerts_pass_the_conformance_suite,
);
