//! Live updates over server-sent events: what is committed reaches streams at once, on every
//! replica, and a reconnect resumes after the last event received.

use std::time::{Duration, Instant};

use reference_server::auth::{Role, TokenStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

fn inbound(id: &str, minute: u32) -> Value {
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
        "createdAt": format!("2026-11-22T06:{minute:02}:00Z"), "type": "message.received",
        "data": {"object": {"id": id, "object": "message", "from": "+15550001111", "to": ["+15550000001"],
        "direction": "incoming", "text": format!("live {id}"), "status": "received",
        "createdAt": format!("2026-11-22T06:{minute:02}:00Z"), "phoneNumberId": "PN1"}}})
}

/// An SSE client: parsed events as `(id, event, data)`.
struct Client {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    async fn connect(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.client.get(app.url("/api/v1/stream")).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), within 10 s.
    async fn next(&mut self) -> (String, String, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if !data.is_empty() {
                    return (id, event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn committed_messages_reach_streams_and_reconnects_resume(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let token = app.token(Role::Support).await;
    let mut stream = Client::connect(&app, &token, None).await;

    assert_eq!(app.webhook("l1", &inbound("ACl1", 1)).await, StatusCode::OK);
    let committed = Instant::now();
    let (first_id, event, data) = stream.next().await;
    println!(
        "live: first event {:?} after the commit",
        committed.elapsed()
    );
    assert_eq!(event, "message.received");
    assert_eq!(data["messages"][0]["id"], "ACl1");
    assert_eq!(data["messages"][0]["text"], "live ACl1");
    let conversation = data["messages"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data["unread"][&conversation], 1);

    for (n, id) in ["ACl2", "ACl3"].iter().enumerate() {
        assert_eq!(
            app.webhook(&format!("l{}", n + 2), &inbound(id, 2 + n as u32))
                .await,
            StatusCode::OK
        );
    }
    let (_, _, second) = stream.next().await;
    let (_, _, third) = stream.next().await;
    assert_eq!(second["messages"][0]["id"], "ACl2");
    assert_eq!(third["messages"][0]["id"], "ACl3");
    assert_eq!(third["unread"][&conversation], 3);
    drop(stream);

    // Reconnecting after the first event replays the two that followed, then goes live.
    let mut resumed = Client::connect(&app, &token, Some(&first_id)).await;
    assert_eq!(resumed.next().await.2["messages"][0]["id"], "ACl2");
    assert_eq!(resumed.next().await.2["messages"][0]["id"], "ACl3");
    assert_eq!(app.webhook("l4", &inbound("ACl4", 5)).await, StatusCode::OK);
    assert_eq!(resumed.next().await.2["messages"][0]["id"], "ACl4");

    // Another replica on the same PostgreSQL database streams what this one commits.
    if matches!(backend, Backend::Postgres) {
        let other = TestApp::spawn_with(&db, |_| {}).await;
        let mut remote = Client::connect(&other, &token, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await; // its LISTEN is in place
        assert_eq!(app.webhook("l5", &inbound("ACl5", 6)).await, StatusCode::OK);
        let committed = Instant::now();
        assert_eq!(remote.next().await.2["messages"][0]["id"], "ACl5");
        println!(
            "live: other replica's event {:?} after the commit",
            committed.elapsed()
        );
        drop(remote);
        other.stop().await;
    }
    drop(resumed);
    app.stop().await;
    db.cleanup().await;
}

/// A stream opened with a token ends soon after the token is revoked: revocation is not only
/// for the next request.
async fn a_revoked_token_s_stream_ends(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let token = app.token(Role::Support).await;
    let mut stream = Client::connect(&app, &token, None).await;
    assert_eq!(app.webhook("v1", &inbound("ACv1", 1)).await, StatusCode::OK);
    stream.next().await;
    let id = token.split('_').nth(1).unwrap();
    assert!(
        app.store
            .revoke_token(id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.response.chunk().await.unwrap() {
            drop(chunk);
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream is still open 20 s after the revocation"
    );
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    a_revoked_token_s_stream_ends,
    committed_messages_reach_streams_and_reconnects_resume
);

/// Commits announced to other replicas coalesce: a burst of commits sends one or two
/// `NOTIFY`s, not one each, and a commit after the burst is still announced (PostgreSQL).
#[tokio::test]
async fn announcements_to_other_replicas_coalesce() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    let mut listener = listen(&db).await;
    let live = reference_server::live::Live::new(store.clone());

    for _ in 0..200 {
        live.committed();
    }
    let burst = notifications_until_quiet(&mut listener).await;
    assert!(
        (1..=2).contains(&burst),
        "200 commits at once sent {burst} NOTIFYs"
    );

    live.committed();
    let after = notifications_until_quiet(&mut listener).await;
    assert_eq!(after, 1, "a later commit is announced once");
    store.close().await;
    db.cleanup().await;
}

/// A commit left pending while the announcer waits between two `NOTIFY`s is still announced
/// when the server stops: [`Live::finish`] sends it before the pool closes (PostgreSQL).
#[tokio::test]
async fn a_pending_announcement_is_sent_before_shutdown() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    let mut listener = listen(&db).await;
    let live = reference_server::live::Live::new(store.clone());

    live.committed();
    next_notification(&mut listener, Duration::from_secs(10))
        .await
        .expect("the first commit is announced");
    // The announcer now waits before its next NOTIFY: this commit stays pending.
    live.committed();
    live.finish().await;
    store.close().await;
    assert!(
        next_notification(&mut listener, Duration::from_secs(10))
            .await
            .is_some(),
        "the pending commit was announced before the pool closed"
    );
    live.committed(); // after finishing: nothing to announce to, and no panic
    db.cleanup().await;
}

/// A listener on the live channel of `db`.
async fn listen(db: &TestDb) -> sqlx::postgres::PgListener {
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener
        .listen(reference_server::live::CHANNEL)
        .await
        .unwrap();
    listener
}

/// The next notification within `within`, if any.
async fn next_notification(
    listener: &mut sqlx::postgres::PgListener,
    within: Duration,
) -> Option<sqlx::postgres::PgNotification> {
    tokio::time::timeout(within, listener.recv())
        .await
        .ok()
        .map(|received| received.unwrap())
}

/// How many notifications arrive: waits up to 10 s for the first, then counts until none has
/// come for half a second (ten times the least time between two).
async fn notifications_until_quiet(listener: &mut sqlx::postgres::PgListener) -> usize {
    if next_notification(listener, Duration::from_secs(10))
        .await
        .is_none()
    {
        return 0;
    }
    let mut count = 1;
    while next_notification(listener, reference_server::live::ANNOUNCE_EVERY * 10)
        .await
        .is_some()
    {
        count += 1;
    }
    count
}
