//! Operations: readiness, Prometheus metrics, group commit, and draining on SIGTERM.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use openphone_webhooks::SigningSecret;
use reference_server::auth::Role;
use reference_server::event_log::{EventLog, MemoryEventLog};
use reference_server::group_commit::Ingestor;
use reference_server::metrics::Metrics;
use reference_server::store::{NewDelivery, Recorded};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::crash::{event, start_server};
use crate::helpers::{Backend, STANDARD_SECRET, TestApp, TestDb};

/// Liveness does not ask the database; readiness does, and tells a pending migration from a
/// database that does not answer.
async fn the_probes_tell_liveness_from_readiness(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    let probe = |path: &'static str| {
        let app = &app;
        async move {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body["status"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    assert_eq!(probe("/healthz").await, (StatusCode::OK, "ok".to_owned()));
    assert_eq!(probe("/readyz").await, (StatusCode::OK, "ready".to_owned()));

    // A migration of this binary that the database has not applied (an older schema).
    db.execute(
        "UPDATE _sqlx_migrations SET success = FALSE \
         WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    assert_eq!(
        probe("/readyz").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations pending".to_owned()
        )
    );
    assert_eq!(probe("/healthz").await, (StatusCode::OK, "ok".to_owned()));

    // The database does not answer (the server's pool is closed under it).
    app.store.close().await;
    assert_eq!(
        probe("/readyz").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable".to_owned()
        )
    );
    assert_eq!(probe("/healthz").await, (StatusCode::OK, "ok".to_owned()));
    app.stop().await;
    db.cleanup().await;
}

async fn readiness_and_metrics(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");

    let message = json!({"id": "EVx", "object": "event", "apiVersion": "v4", "createdAt": "2026-04-13T12:00:00Z",
        "type": "message.received", "data": {"object": {"id": "ACx", "object": "message", "from": "+15550001111",
        "to": ["+15550000001"], "direction": "incoming", "text": "hi", "status": "received",
        "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
    assert_eq!(app.webhook("m1", &message).await, StatusCode::OK);
    assert_eq!(app.webhook("m1", &message).await, StatusCode::OK);
    let refused = app
        .client
        .post(app.url("/api/openphone/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let support = app.token(Role::Support).await;
    assert_eq!(app.get("/metrics", &support).await.0, StatusCode::FORBIDDEN);
    let operator = app.token(Role::Operator).await;
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for line in [
        "webhooks_total{outcome=\"stored\",type=\"message.received\"} 1",
        "webhooks_total{outcome=\"duplicate\",type=\"message.received\"} 1",
        "webhooks_total{outcome=\"unauthorized\",type=\"unknown\"} 1",
        "webhook_ingest_seconds_count 3",
        "ingest_batch_size_count 2",
        "# TYPE db_pool_connections gauge",
        "media_failed 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    app.stop().await;
    db.cleanup().await;
}

fn delivery(index: usize) -> NewDelivery {
    let body = event(index).into_bytes();
    let parsed = openphone_webhooks::Event::parse(&body).unwrap();
    NewDelivery {
        // Every tenth is a duplicate of the one before.
        delivery_key: format!("webhook-id:msg_{}", index - index % 10 / 9),
        scheme: "standard",
        event_id: Some(parsed.id.to_string()),
        event_type: Some(parsed.event_type.to_string()),
        parse_error: None,
        signed_at: OffsetDateTime::UNIX_EPOCH,
        received_at: OffsetDateTime::UNIX_EPOCH,
        changes: reference_server::projection::changes(&parsed, &Default::default()),
        body,
    }
}

async fn concurrent_deliveries_share_commits(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    share_commits(db.store().await).await;
    db.cleanup().await;
}

#[tokio::test]
async fn concurrent_deliveries_share_commits_in_memory() {
    share_commits(MemoryEventLog::new()).await;
}

async fn share_commits<L: EventLog>(store: L) {
    let metrics = Metrics::default();
    let (ingestor, writers) = Ingestor::start(store.clone(), metrics.clone(), None);
    // All 100 are queued before a writer runs (one test thread): they share commits.
    let outcomes = join_all((0..100).map(|index| ingestor.record(delivery(index)))).await;
    let new = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Recorded::New(_))))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Recorded::Duplicate)))
        .count();
    assert_eq!((new, duplicates), (90, 10));
    assert_eq!(store.count().await.unwrap(), 90);
    let text = metrics.render(&[]);
    let batches: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("ingest_batch_size_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(batches <= 2, "100 queued deliveries took {batches} commits");
    drop(ingestor);
    tokio::time::timeout(Duration::from_secs(10), writers.drained())
        .await
        .expect("writers stop once every handle is gone");
}

async fn sigterm_drains_in_flight_requests_and_exits_zero(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.store().await;
    let (mut child, url) = start_server(&db);
    let secret = SigningSecret::parse(STANDARD_SECRET).unwrap();
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    // Eight senders post without pause until the server stops answering.
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (client, secret, url, acknowledged) = (
                client.clone(),
                secret.clone(),
                url.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                for index in (sender..100_000).step_by(8) {
                    let body = event(index);
                    let headers = secret
                        .sign(
                            &format!("msg_{index}"),
                            OffsetDateTime::now_utc(),
                            body.as_bytes(),
                        )
                        .unwrap();
                    let sent = client
                        .post(format!("{url}/api/openphone/webhook"))
                        .headers(headers)
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            acknowledged.lock().unwrap().insert(index);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exited.success(), "exit status after SIGTERM: {exited:?}");
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(30), sender)
            .await
            .unwrap()
            .unwrap();
    }
    let store = db.store().await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    for index in &acknowledged {
        assert!(
            store
                .delivery(&format!("webhook-id:msg_{index}"))
                .await
                .unwrap()
                .is_some(),
            "acknowledged event {index} lost"
        );
    }
    assert_eq!(
        store.delivery_count().await.unwrap(),
        acknowledged.len() as i64,
        "nothing is stored that was not acknowledged, once the drain finished"
    );
    store.close().await;
    db.cleanup().await;
}

backend_tests!(
    the_probes_tell_liveness_from_readiness,
    readiness_and_metrics,
    concurrent_deliveries_share_commits,
    sigterm_drains_in_flight_requests_and_exits_zero,
);

/// With no configuration but a free port, the binary serves on a SQLite file under `./data`,
/// says where it listens, and stops on `SIGTERM` with exit status 0.
#[tokio::test]
async fn with_no_configuration_it_serves_on_sqlite_under_data() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!(
        "reference-server-bare-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reference-server"));
    for (variable, _) in std::env::vars() {
        if variable != "PATH" {
            command.env_remove(variable);
        }
    }
    /// The server, killed if the test fails before it stops.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Running(
        command
            .current_dir(&dir)
            // The one setting: a free port rather than 8080, which something else may hold.
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    // Logs (the warning that no signing secret is set) come first, on standard output too.
    let mut banner = String::new();
    while !banner.starts_with("reference-server listening") {
        banner.clear();
        assert!(stdout.read_line(&mut banner).unwrap() > 0, "no banner");
    }
    std::thread::spawn(move || for _ in stdout.lines() {});
    assert!(
        banner.starts_with("reference-server listening on http://127.0.0.1:")
            && banner.contains("(database: sqlite)"),
        "{banner}"
    );
    let url = banner.split_whitespace().nth(3).unwrap().to_owned();
    let health: serde_json::Value = reqwest::get(format!("{url}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok", "database": "sqlite"}));
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(dir.join("data").join("openphone.db").is_file());

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = TestApp::eventually("the exit after SIGTERM", || {
        let exited = child.0.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(exited.success(), "exit status after SIGTERM: {exited:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
