//! Several `serve` replicas on one PostgreSQL database: every delivery stored once whichever
//! replica gets it (OpenPhone's retries land anywhere), and each media file fetched once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::crash::event;
use crate::helpers::{Backend, TestApp, TestDb};

/// Counts downloads.
struct Counting(Arc<AtomicUsize>);

impl Respond for Counting {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_raw(b"photo".to_vec(), "image/jpeg")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_postgres_database() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let storage = MockServer::start().await;
    let downloads = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .respond_with(Counting(downloads.clone()))
        .mount(&storage)
        .await;
    let host = storage.uri().trim_start_matches("http://").to_owned();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let host = host.clone();
        replicas.push(
            TestApp::spawn_with(&db, move |config| {
                config.media_allowed_hosts = vec![host];
                config.media_http_hosts = vec!["127.0.0.1".to_owned()];
            })
            .await,
        );
    }
    // Each of 200 deliveries goes to all three replicas at once.
    let sends = (0..200).flat_map(|index| {
        let body: serde_json::Value = serde_json::from_str(&event(index)).unwrap();
        replicas
            .iter()
            .map(move |replica| {
                let body = body.clone();
                async move { replica.webhook(&format!("msg_{index}"), &body).await }
            })
            .collect::<Vec<_>>()
    });
    let statuses = join_all(sends).await;
    assert!(statuses.iter().all(|status| *status == StatusCode::OK));
    assert_eq!(replicas[0].store.delivery_count().await.unwrap(), 200);
    for index in [0, 99, 199] {
        let message = replicas[1]
            .store
            .message(&format!("AC{index:05}"))
            .await
            .unwrap();
        assert!(message.is_some(), "message {index} projected");
    }

    // Ten photos, delivered to every replica: each downloaded once.
    for n in 0..10 {
        let body = json!({"id": format!("EVp{n}"), "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T12:00:00Z", "type": "message.received", "data": {"object": {
            "id": format!("ACp{n}"), "object": "message", "from": "+15550001111", "to": ["+15550000001"],
            "direction": "incoming", "text": "photo", "status": "received",
            "media": [{"url": format!("{}/p{n}.jpg", storage.uri()), "type": "image/jpeg"}],
            "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
        for replica in &replicas {
            assert_eq!(
                replica.webhook(&format!("p{n}"), &body).await,
                StatusCode::OK
            );
        }
    }
    TestApp::eventually("every photo stored", || {
        let store = replicas[2].store.clone();
        async move {
            let stats = store.stats().await.unwrap();
            (stats.media_stored == 10).then_some(())
        }
    })
    .await;
    assert_eq!(
        downloads.load(Ordering::SeqCst),
        10,
        "each photo fetched once"
    );
    for replica in replicas {
        replica.stop().await;
    }
    db.cleanup().await;
}
