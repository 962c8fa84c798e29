//! The activity feed: messages, calls, missed calls and voicemails across conversations.

use reference_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

fn message(id: &str, from: &str, to: &str, direction: &str, minute: u32) -> Value {
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
        "createdAt": format!("2026-04-13T12:{minute:02}:00Z"),
        "type": if direction == "incoming" { "message.received" } else { "message.delivered" },
        "data": {"object": {"id": id, "object": "message", "from": from, "to": [to], "direction": direction,
        "text": format!("text {id}"), "status": if direction == "incoming" { "received" } else { "delivered" },
        "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "phoneNumberId": "PN1"}}})
}

fn call(id: &str, from: &str, minute: u32, answered: bool, voicemail: bool) -> Value {
    let answered_at = answered.then(|| format!("2026-04-13T12:{minute:02}:05Z"));
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v3",
        "createdAt": format!("2026-04-13T12:{minute:02}:40Z"), "type": "call.completed",
        "data": {"object": {"id": id, "object": "call", "from": from, "to": "+15550000001",
        "direction": "incoming", "media": [],
        "voicemail": if voicemail { json!({"url": "https://files.openphone.co/vm.mp3", "type": "audio/mpeg", "duration": 9}) } else { Value::Null },
        "status": "completed", "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "answeredAt": answered_at,
        "completedAt": format!("2026-04-13T12:{minute:02}:30Z"), "duration": if answered { 25 } else { 0 },
        "userId": "US1", "phoneNumberId": "PN1"}}})
}

const OURS: &str = "+15550000001";
const ANA: &str = "+15550001111";
const BEN: &str = "+15550002222";

async fn the_feed_merges_everything_newest_first_with_filters(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let events = [
        message("ACa1", ANA, OURS, "incoming", 1),
        message("ACa2", OURS, ANA, "outgoing", 2),
        call("CAb1", BEN, 3, false, true),
        call("CAb2", BEN, 4, false, false),
        call("CAa3", ANA, 5, true, false),
        message("ACb3", BEN, OURS, "incoming", 6),
    ];
    for (n, event) in events.iter().enumerate() {
        assert_eq!(app.webhook(&format!("a{n}"), event).await, StatusCode::OK);
    }
    let token = app.token(Role::Support).await;
    let feed = |query: &str| {
        let (app, token, query) = (&app, token.clone(), query.to_owned());
        async move {
            let (status, page) = app.get(&format!("/api/v1/activity{query}"), &token).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            let kinds: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        e["kind"].as_str().unwrap(),
                        e["id"].as_str().unwrap()
                    )
                })
                .collect();
            (kinds, page["next_cursor"].clone())
        }
    };
    let (all, _) = feed("").await;
    assert_eq!(
        all,
        [
            "message:ACb3",
            "call:CAa3",
            "missed_call:CAb2",
            "voicemail:CAb1",
            "message:ACa2",
            "message:ACa1"
        ]
    );
    // Pages of two follow the same order.
    let (first, cursor) = feed("?limit=2").await;
    let (second, _) = feed(&format!("?limit=2&cursor={}", cursor.as_str().unwrap())).await;
    assert_eq!([first, second].concat(), all[..4]);
    // Only responses (inbound), by kind, by number, by time.
    let (incoming, _) = feed("?direction=incoming&kind=message").await;
    assert_eq!(incoming, ["message:ACb3", "message:ACa1"]);
    // Every missed call, those that left a voicemail included.
    assert_eq!(
        feed("?kind=missed").await.0,
        ["missed_call:CAb2", "voicemail:CAb1"]
    );
    assert_eq!(feed("?kind=voicemail").await.0, ["voicemail:CAb1"]);
    assert_eq!(
        feed(&format!("?phone=%2B{}", &ANA[1..])).await.0,
        ["call:CAa3", "message:ACa2", "message:ACa1"]
    );
    assert_eq!(
        feed("?since=2026-04-13T12:03:00Z&until=2026-04-13T12:05:00Z")
            .await
            .0,
        ["missed_call:CAb2", "voicemail:CAb1"]
    );
    for bad in [
        "?direction=sideways",
        "?kind=fax",
        "?since=yesterday",
        "?phone=555",
    ] {
        let (status, _) = app.get(&format!("/api/v1/activity{bad}"), &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(the_feed_merges_everything_newest_first_with_filters);
