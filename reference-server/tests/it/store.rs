//! The store's contract, on every backend.

use reference_server::store::{HeldConnection, NewDelivery, Recorded, StoreError};
use sqlx::Connection;
use time::macros::datetime;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

fn delivery(key: &str, body: &[u8]) -> NewDelivery {
    NewDelivery {
        delivery_key: key.to_owned(),
        scheme: "standard",
        event_id: Some("EV1".to_owned()),
        event_type: Some("message.received".to_owned()),
        parse_error: None,
        signed_at: datetime!(2026-04-13 12:00:00.123 UTC),
        received_at: datetime!(2026-04-13 12:00:01.456 UTC),
        body: body.to_vec(),
        changes: Vec::new(),
    }
}

async fn records_a_delivery_once_and_keeps_its_exact_bytes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    // Bytes that are not UTF-8 and not JSON survive unchanged.
    let body = b"{\"a\":1}\xff\x00 trailing";
    let first = store
        .record_delivery(&delivery("webhook-id:msg_1", body))
        .await
        .unwrap();
    assert!(matches!(first, Recorded::New(_)), "{first:?}");
    let again = store
        .record_delivery(&delivery("webhook-id:msg_1", b"different"))
        .await
        .unwrap();
    assert_eq!(again, Recorded::Duplicate);
    let stored = store
        .delivery("webhook-id:msg_1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.body, body);
    assert_eq!(stored.event_type.as_deref(), Some("message.received"));
    assert_eq!(stored.signed_at, datetime!(2026-04-13 12:00:00.123 UTC));
    assert_eq!(stored.received_at, datetime!(2026-04-13 12:00:01.456 UTC));
    assert_eq!(store.delivery_count().await.unwrap(), 1);
    assert!(store.delivery("webhook-id:other").await.unwrap().is_none());
    db.cleanup().await;
}

async fn concurrent_duplicates_record_exactly_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_delivery(&delivery("event:EV-race", b"{}"))
                    .await
            })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        if matches!(task.await.unwrap().unwrap(), Recorded::New(_)) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(store.delivery_count().await.unwrap(), 1);
    db.cleanup().await;
}

async fn migrations_are_idempotent_across_restarts(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    store
        .record_delivery(&delivery("event:EV-keep", b"{}"))
        .await
        .unwrap();
    drop(store);
    let reopened = db.store().await;
    assert_eq!(reopened.delivery_count().await.unwrap(), 1);
    reopened.ping().await.unwrap();
    db.cleanup().await;
}

/// The [`EventLog`](reference_server::event_log::EventLog) conformance suite, which the
/// memory log also passes (unit test in `event_log.rs`).
async fn the_event_log_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::event_log::conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// A batch keeps each raw row as it came: bytes that are not UTF-8 (or none), times to the
/// microsecond, every field; a key repeated in the batch is stored once, for its first.
async fn a_batch_keeps_its_raw_rows_exactly(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = datetime!(2026-12-05 16:17:24.123456 UTC);
    let mut first = delivery("webhook-id:first", &[0, 0x9f, 0xff, b'{', b'"', b'\\']);
    first.scheme = "legacy";
    first.event_id = None;
    first.event_type = Some("message.received".to_owned());
    first.parse_error = Some("line 1: \"not\" an event".to_owned());
    first.signed_at = at;
    first.received_at = at + time::Duration::milliseconds(1500);
    let empty = delivery("webhook-id:empty", b"");
    let mut again = first.clone();
    again.body = b"another body".to_vec();
    let outcomes = store
        .record_batch(&[first.clone(), empty.clone(), again])
        .await
        .unwrap();
    assert!(
        matches!(
            outcomes[..],
            [Recorded::New(_), Recorded::New(_), Recorded::Duplicate]
        ),
        "{outcomes:?}"
    );
    let stored = store.delivery("webhook-id:first").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.scheme.as_str(),
            stored.event_id.as_deref(),
            stored.event_type.as_deref(),
            stored.parse_error.as_deref(),
            stored.signed_at,
            stored.received_at,
            stored.body.as_slice()
        ),
        (
            "legacy",
            None,
            Some("message.received"),
            first.parse_error.as_deref(),
            first.signed_at,
            first.received_at,
            first.body.as_slice()
        )
    );
    let stored = store.delivery("webhook-id:empty").await.unwrap().unwrap();
    assert_eq!(stored.body, b"");
    assert_eq!(stored.received_at, empty.received_at);
    db.cleanup().await;
}

backend_tests!(
    a_batch_keeps_its_raw_rows_exactly,
    the_event_log_conformance_suite_passes,
    records_a_delivery_once_and_keeps_its_exact_bytes,
    concurrent_duplicates_record_exactly_once,
    migrations_are_idempotent_across_restarts,
);

/// Terminates every client connection to `db`; returns how many it terminated.
async fn terminate_connections(db: &TestDb) -> usize {
    let name = db.url.rsplit_once('/').unwrap().1;
    let mut admin = sqlx::PgConnection::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    // A connection that closed meanwhile is not terminated (false), and not counted.
    terminated.into_iter().filter(|done| *done).count()
}

/// The connection the group-commit writer keeps between batches (outside the pool) is
/// checked when it has sat idle, and replaced when the database dropped it: the next webhook
/// is stored (PostgreSQL: every backend of the database is terminated between two webhooks).
#[tokio::test]
async fn a_webhook_after_the_writers_connection_was_dropped_is_stored() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let app = crate::helpers::TestApp::spawn_with(&db, |_| {}).await;
    let event = |id: &str| {
        serde_json::json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
            "createdAt": "2026-11-22T06:00:00Z", "type": "message.received",
            "data": {"object": {"id": id, "object": "message", "from": "+15550001111",
            "to": ["+15550000001"], "direction": "incoming", "text": "hello", "status": "received",
            "createdAt": "2026-11-22T06:00:00Z", "phoneNumberId": "PN1"}}})
    };
    assert_eq!(
        app.webhook("msg_1", &event("AC1")).await,
        reqwest::StatusCode::OK
    );
    // The pool's connections, the listener's and the writer's own.
    assert!(terminate_connections(&db).await >= 2);
    // Past the time a connection may sit idle unchecked.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        app.webhook("msg_2", &event("AC2")).await,
        reqwest::StatusCode::OK,
        "a dropped connection is replaced, not used"
    );
    assert_eq!(app.store.delivery_count().await.unwrap(), 2);
    app.stop().await;
    db.cleanup().await;
}

/// The writer's connection is kept after an error the database reported for a statement,
/// and replaced after the database ended its session (PostgreSQL).
#[tokio::test]
async fn the_writers_connection_is_kept_after_a_statement_error_only() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    let mut held = HeldConnection::default();
    assert!(!held.holds());
    let recorded = store
        .record_batch_held(&mut held, &[delivery("webhook-id:msg_1", b"{}")])
        .await
        .unwrap();
    assert!(matches!(recorded[..], [Recorded::New(_)]), "{recorded:?}");
    assert!(held.holds());

    // PostgreSQL refuses a NUL in text: an error of the statement, the session goes on.
    let mut refused = delivery("webhook-id:msg_2", b"{}");
    refused.event_type = Some("message\0received".to_owned());
    let error = store
        .record_batch_held(&mut held, &[refused])
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Backend(sqlx::Error::Database(_))),
        "{error:?}"
    );
    assert!(held.holds(), "kept after a statement's error");
    let recorded = store
        .record_batch_held(&mut held, &[delivery("webhook-id:msg_3", b"{}")])
        .await
        .unwrap();
    assert!(matches!(recorded[..], [Recorded::New(_)]), "{recorded:?}");

    // The database ends the session (within the second a connection is used unchecked).
    assert!(terminate_connections(&db).await >= 1);
    let failed = store
        .record_batch_held(&mut held, &[delivery("webhook-id:msg_4", b"{}")])
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(!held.holds(), "dropped after the session ended");
    let recorded = store
        .record_batch_held(&mut held, &[delivery("webhook-id:msg_4", b"{}")])
        .await
        .expect("a new connection");
    assert!(matches!(recorded[..], [Recorded::New(_)]), "{recorded:?}");
    assert!(held.holds());
    store.close().await;
    db.cleanup().await;
}

/// A pooled connection the database dropped while it sat idle is checked and replaced before
/// use, so the next write succeeds (PostgreSQL: its backends are terminated under the pool).
#[tokio::test]
async fn a_connection_dropped_while_idle_is_replaced_before_use() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    store
        .record_delivery(&delivery("webhook-id:msg_1", b"{}"))
        .await
        .unwrap();
    // The write's connection is back in the pool, idle.
    crate::helpers::TestApp::eventually("the connection back in the pool", || async {
        (store.pool_connections().1 >= 1).then_some(())
    })
    .await;
    assert!(
        terminate_connections(&db).await >= 1,
        "no pooled connection to drop"
    );
    // Past the time a connection may sit idle unchecked.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let recorded = store
        .record_delivery(&delivery("webhook-id:msg_2", b"{}"))
        .await
        .expect("a dropped connection is replaced, not used");
    assert!(matches!(recorded, Recorded::New(_)), "{recorded:?}");
    store.close().await;
    db.cleanup().await;
}
