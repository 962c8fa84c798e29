//! The management API over HTTP: bearer tokens and roles, the raw log, conversations with
//! their timelines, calls and counts, on every backend.

use reference_server::auth::{Role, TokenStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, STANDARD_SECRET, TestApp, TestDb};

/// A legacy (v4) message event on our number PN1.
fn message(n: u32, from: &str, to: &str, direction: &str, text: &str, minute: u32) -> Value {
    json!({"id": format!("EVm{n}"), "object": "event", "apiVersion": "v4",
        "createdAt": format!("2026-04-13T12:{minute:02}:00Z"),
        "type": if direction == "incoming" { "message.received" } else { "message.delivered" },
        "data": {"object": {"id": format!("AC{n}"), "object": "message", "from": from, "to": [to],
        "direction": direction, "text": text, "status": if direction == "incoming" { "received" } else { "delivered" },
        "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "userId": "US1", "phoneNumberId": "PN1",
        "conversationId": "CN1"}}})
}

fn call(id: &str, from: &str, minute: u32) -> Value {
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v3",
        "createdAt": format!("2026-04-13T12:{minute:02}:30Z"), "type": "call.completed",
        "data": {"object": {"id": id, "object": "call", "from": from, "to": "+15550000001",
        "direction": "incoming", "media": [], "voicemail": null, "status": "completed",
        "createdAt": format!("2026-04-13T12:{minute:02}:00Z"), "answeredAt": format!("2026-04-13T12:{minute:02}:05Z"),
        "completedAt": format!("2026-04-13T12:{minute:02}:30Z"), "duration": 25,
        "userId": "US1", "phoneNumberId": "PN1", "conversationId": "CN1"}}})
}

const OURS: &str = "+15550000001";
const ALICE: &str = "+15550001111";
const BOB: &str = "+15550002222";

/// Two conversations (Alice: two inbound, one reply, one call; Bob: one inbound later) and a
/// contact named Alice.
async fn seed(app: &TestApp) {
    let events = [
        message(1, ALICE, OURS, "incoming", "Is bay 2 free?", 0),
        message(2, OURS, ALICE, "outgoing", "Yes, from 6pm", 1),
        message(3, ALICE, OURS, "incoming", "Great, booking it", 2),
        message(4, ALICE, OURS, "incoming", "Thanks!", 3),
        call("CAL1", ALICE, 4),
        message(5, BOB, OURS, "incoming", "Do you sell gift cards?", 10),
        json!({"id": "EVc1", "object": "event", "apiVersion": "v3", "createdAt": "2026-04-13T11:00:00Z",
            "type": "contact.updated", "data": {"object": {"id": "CT1", "object": "contact",
            "firstName": "Alice", "lastName": "Nguyen", "company": null, "role": null,
            "phoneNumbers": [{"name": "mobile", "value": ALICE}], "emails": [],
            "createdAt": "2026-04-13T11:00:00Z", "updatedAt": "2026-04-13T11:00:00Z"}}}),
    ];
    for (n, event) in events.iter().enumerate() {
        assert_eq!(
            app.webhook(&format!("msg_{n}"), event).await,
            StatusCode::OK
        );
    }
}

async fn tokens_and_roles_guard_every_endpoint(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    let paths = [
        "/api/v1/events",
        "/api/v1/conversations",
        "/api/v1/conversations/eA",
        "/api/v1/calls/CA1",
        "/api/v1/stats",
    ];
    for path in paths {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = app.get(path, "rs_nope_nope").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
    let support = app.token(Role::Support).await;
    let operator = app.token(Role::Operator).await;
    assert_eq!(
        app.get("/api/v1/conversations", &support).await.0,
        StatusCode::OK
    );
    let (status, body) = app.get("/api/v1/events", &support).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "this endpoint requires the operator role");
    assert_eq!(
        app.get("/api/v1/stats", &support).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("/api/v1/events", &operator).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/stats", &operator).await.0, StatusCode::OK);
    // The scheme's name in any case; another scheme is no token.
    for (header, status) in [
        (format!("bearer {operator}"), StatusCode::OK),
        (format!("BEARER  {operator}"), StatusCode::OK),
        (format!("Basic {operator}"), StatusCode::UNAUTHORIZED),
        (operator.clone(), StatusCode::UNAUTHORIZED),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/stats"))
            .header("authorization", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{header}");
    }

    // Revoked tokens stop working at once; the hash, not the token, is stored.
    let tokens = app.store.tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    let operator_id = operator.split('_').nth(1).unwrap();
    assert!(
        app.store
            .revoke_token(operator_id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    assert_eq!(
        app.get("/api/v1/events", &operator).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !app.store
            .revoke_token(operator_id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    app.stop().await;
    db.cleanup().await;
}

async fn the_raw_log_pages_newest_first_and_filters_by_type(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    seed(&app).await;
    let token = app.token(Role::Admin).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_i64().unwrap());
            assert!(item["body"].is_object(), "{item}");
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert!(seen.windows(2).all(|pair| pair[0] > pair[1]), "{seen:?}");

    let (_, page) = app
        .get("/api/v1/events?type=message.received", &token)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|item| item["type"] == "message.received"));
    assert_eq!(items[0]["body"]["data"]["object"]["id"], "AC5");

    // Every refusal is the JSON error shape and names what is wrong.
    let (_, first) = app.get("/api/v1/events?limit=3", &token).await;
    let events_cursor = first["next_cursor"].as_str().unwrap().to_owned();
    for (bad, says) in [
        ("/api/v1/events?limit=0", "limit must be between 1 and 200"),
        (
            "/api/v1/events?limit=201",
            "limit must be between 1 and 200",
        ),
        (
            "/api/v1/events?cursor=!!",
            "cursor is not one this API returned",
        ),
        (
            "/api/v1/events?limit=x",
            "query parameter limit: invalid digit",
        ),
        (
            "/api/v1/events?type=a%00b",
            "query parameter type holds a NUL",
        ),
        ("/api/v1/calls/CAL%001", "the path holds a NUL"),
        ("/api/v1/media/abc", "Cannot parse"),
        (
            "/api/v1/conversations?campaign=maybe",
            "query parameter campaign: unknown variant",
        ),
        (
            &format!("/api/v1/conversations?q={}", "%25".repeat(201)),
            "q must be at most 200",
        ),
        (
            &format!("/api/v1/conversations?cursor={events_cursor}"),
            "cursor is one another listing returned",
        ),
    ] {
        let (status, body) = app.get(bad, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{bad}: {body}");
    }
    // A parameter given empty is one not given (`cursor=${next ?? ""}`).
    let (status, page) = app.get("/api/v1/events?cursor=&limit=&type=", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 7, "{page}");
    let (status, page) = app
        .get("/api/v1/conversations?q=&campaign=&cursor=&limit=", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    app.stop().await;
    db.cleanup().await;
}

async fn conversations_list_search_and_show_one_timeline(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    seed(&app).await;
    let token = app.token(Role::Support).await;

    let (status, page) = app.get("/api/v1/conversations", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(items[0]["participants"], json!([BOB]));
    assert_eq!(items[0]["unread_count"], 1);
    assert_eq!(items[1]["participants"], json!([ALICE]));
    assert_eq!(items[1]["unread_count"], 3);
    assert_eq!(items[1]["last_message"]["text"], "Thanks!");
    assert_eq!(items[1]["last_message"]["direction"], "incoming");
    assert!(page["next_cursor"].is_null());

    // Pages of one.
    let (_, first) = app.get("/api/v1/conversations?limit=1", &token).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/conversations?limit=1&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(second["items"][0]["participants"], json!([ALICE]));

    // Search by number and by contact name.
    for (q, expected) in [("2222", BOB), ("alice", ALICE), ("NGUYEN", ALICE)] {
        let (_, page) = app
            .get(&format!("/api/v1/conversations?q={q}"), &token)
            .await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{q}: {page}");
        assert_eq!(items[0]["participants"], json!([expected]), "{q}");
    }
    let (_, page) = app.get("/api/v1/conversations?q=%25", &token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "% is literal");
    let (_, page) = app.get("/api/v1/conversations?q=a=", &token).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "a search for a=: {page}"
    );
    let (status, page) = app
        .get(
            &format!("/api/v1/conversations?q={}", "%25".repeat(200)),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the longest search: {page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 0);

    // One conversation: its messages and its call, newest first, in pages.
    let id = items_id(&app, &token, ALICE).await;
    let (status, detail) = app
        .get(&format!("/api/v1/conversations/{id}?limit=3"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let kinds: Vec<(&str, &str)> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("call", "CAL1"), ("message", "AC4"), ("message", "AC3")]
    );
    assert_eq!(detail["timeline"][0]["outcome"], "answered");
    assert_eq!(detail["timeline"][1]["text"], "Thanks!");
    let cursor = detail["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            &format!("/api/v1/conversations/{id}?limit=3&cursor={cursor}"),
            &token,
        )
        .await;
    let ids: Vec<&str> = rest["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["AC2", "AC1"]);
    assert!(rest["next_cursor"].is_null());
    // That cursor is this conversation's: another's timeline refuses it.
    let bob = items_id(&app, &token, BOB).await;
    let (status, body) = app
        .get(
            &format!("/api/v1/conversations/{bob}?cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A search over 200 characters is refused, for contacts too; a bare flag is no value.
    for bad in [
        format!("/api/v1/contacts?q={}", "a".repeat(201)),
        "/api/v1/alerts?open".to_owned(),
    ] {
        let (status, body) = app.get(&bad, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    // A malformed optional body is refused in the JSON error shape too.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/read")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    let (status, _) = app.get("/api/v1/conversations/bm9uZQ", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The call with its details.
    let (status, call) = app.get("/api/v1/calls/CAL1", &token).await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["duration_seconds"], 25);
    assert_eq!(call["conversation_id"], id.as_str());
    assert_eq!(
        app.get("/api/v1/calls/CAnone", &token).await.0,
        StatusCode::NOT_FOUND
    );

    // Counts.
    let admin = app.token(Role::Admin).await;
    let (_, stats) = app.get("/api/v1/stats", &admin).await;
    assert_eq!(stats["events"], 7);
    assert_eq!(stats["conversations"], 2);
    assert_eq!(stats["messages"], 5);
    assert_eq!(stats["calls"], 1);
    app.stop().await;
    db.cleanup().await;
}

/// A group message keys one conversation by the participants other than us, whichever of
/// them sent it: our number (learned from the outgoing message) is told from the others among
/// an incoming message's recipients. A one-to-one message stays in its own conversation.
async fn group_messages_share_one_conversation(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    let group = |n: u32, from: &str, to: &[&str], direction: &str, minute: u32| {
        let mut event = message(n, from, OURS, direction, "Group text", minute);
        event["data"]["object"]["to"] = json!(to);
        event
    };
    let events = [
        group(1, OURS, &[BOB, ALICE], "outgoing", 0),
        group(2, ALICE, &[OURS, BOB], "incoming", 1),
        group(3, BOB, &[ALICE, OURS], "incoming", 2),
        message(4, ALICE, OURS, "incoming", "Just me", 3),
    ];
    for (n, event) in events.iter().enumerate() {
        assert_eq!(
            app.webhook(&format!("msg_{n}"), event).await,
            StatusCode::OK
        );
    }
    let token = app.token(Role::Support).await;
    let (_, page) = app.get("/api/v1/conversations", &token).await;
    let items = page["items"].as_array().unwrap();
    let participants: Vec<&Value> = items.iter().map(|item| &item["participants"]).collect();
    assert_eq!(
        participants,
        [&json!([ALICE]), &json!([ALICE, BOB])],
        "{page}"
    );
    let group_id = items[1]["id"].as_str().unwrap();
    let (_, timeline) = app
        .get(&format!("/api/v1/conversations/{group_id}"), &token)
        .await;
    let ids: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["AC3", "AC2", "AC1"], "{timeline}");
    app.stop().await;
    db.cleanup().await;
}

/// The id of the conversation with `participant`.
async fn items_id(app: &TestApp, token: &str, participant: &str) -> String {
    let (_, page) = app.get("/api/v1/conversations", token).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["participants"] == json!([participant]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A group message to a line neither a message nor the database has shown (the start-up
/// listing failed) asks the API's list of numbers, once: the message keys by the others, not
/// by its sender alone. A line still not listed does not ask again within ten minutes.
async fn a_group_message_to_a_line_not_known_asks_the_api(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let api = MockServer::start().await;
    // Refused at first: the start-up listing and the reconciliation's (which a fresh database
    // runs at once) both fail.
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not now"})))
        .mount(&api)
        .await;
    let app = TestApp::spawn_with(&db, |config| {
        config.openphone_api_key = Some(reference_server::config::Redacted("key".to_owned()));
        config.openphone_base_url = api.uri();
    })
    .await;
    let listings = || async {
        api.received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|request| request.url.path() == "/v1/phone-numbers")
            .count()
    };
    TestApp::eventually("the start-up and reconciliation listings", || async {
        (listings().await >= 2).then_some(())
    })
    .await;
    // Then the API lists our line.
    api.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": "PN1", "groupId": "1234", "portRequestId": null, "formattedNumber": null,
            "forward": null, "name": "Front desk", "number": OURS, "portingStatus": null,
            "symbol": null, "users": [], "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "restrictions": {"calling": {"CA": "unrestricted", "Intl": "restricted", "US": "unrestricted"},
                             "messaging": {"CA": "unrestricted", "Intl": "restricted", "US": "unrestricted"}}}]})))
        .mount(&api)
        .await;

    let mut group = message(2, ALICE, OURS, "incoming", "Group text", 1);
    group["data"]["object"]["to"] = json!([OURS, BOB]);
    assert_eq!(app.webhook("group", &group).await, StatusCode::OK);
    assert_eq!(listings().await, 1, "asked once");
    // Another line (PN2), not in the list: not asked again so soon.
    let mut other = message(3, BOB, "+15550009999", "incoming", "Other line", 2);
    other["data"]["object"]["to"] = json!(["+15550009999", ALICE]);
    other["data"]["object"]["phoneNumberId"] = json!("PN2");
    assert_eq!(app.webhook("other", &other).await, StatusCode::OK);
    assert_eq!(listings().await, 1, "not asked again");

    let token = app.token(Role::Support).await;
    let (_, page) = app.get("/api/v1/conversations", &token).await;
    let mut participants: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["participants"])
        .collect();
    participants.sort_by_key(|p| p.to_string());
    assert_eq!(
        participants,
        [&json!([ALICE, BOB]), &json!([BOB])],
        "the group by its others; the other line's by its sender: {page}"
    );
    app.stop().await;
    db.cleanup().await;
}

/// Events posted out of order read back whole over HTTP: an answered call's five events in
/// reverse (transcript and summary before the call), a missed call's voicemail before the
/// call, and a late `sent` after `delivered`, which does not take its place.
async fn events_out_of_order_read_back_whole(backend: Backend) {
    use reference_server::records::conformance::call_events;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn(&db, Some(STANDARD_SECRET), None).await;
    let mut events: Vec<Value> = call_events("CAhttp").into_iter().rev().collect();
    events.push(json!({"id": "EVvm", "apiVersion": "2026-03-30", "createdAt": "2026-04-13T12:11:30Z",
        "type": "call.voicemail.completed", "data": {"resource": {"id": "ACvm", "voicemailId": "VM1",
        "callId": "CAmissed", "direction": "incoming", "duration": 12, "from": "+15550000002",
        "to": OURS, "transcript": null, "recordingUrl": "https://files.example/vm.mp3",
        "createdAt": "2026-04-13T12:11:30Z", "updatedAt": "2026-04-13T12:11:30Z"},
        "context": {"orgId": "OR1"}}}));
    events.push(
        json!({"id": "EVmissed", "apiVersion": "2026-03-30", "createdAt": "2026-04-13T12:11:00Z",
        "type": "call.completed", "data": {"resource": {"id": "CAmissed", "direction": "incoming",
        "status": "unanswered", "createdAt": "2026-04-13T12:10:00Z", "answeredAt": null,
        "completedAt": "2026-04-13T12:10:30Z", "duration": null, "hasVoicemail": true},
        "context": {"orgId": "OR1", "phoneNumberId": "PN1", "participants": {"workspace": [OURS],
        "external": ["+15550000002"], "resolution": "available"}}}}),
    );
    let delivered = message(9, OURS, ALICE, "outgoing", "See you at 6", 5);
    let mut sent = delivered.clone();
    sent["id"] = json!("EVm9sent");
    sent["type"] = json!("message.sent");
    sent["data"]["object"]["status"] = json!("sent");
    events.extend([delivered, sent]);
    for (n, event) in events.iter().enumerate() {
        assert_eq!(
            app.webhook(&format!("order_{n}"), event).await,
            StatusCode::OK,
            "{event}"
        );
    }
    let token = app.token(Role::Support).await;

    let (status, call) = app.get("/api/v1/calls/CAhttp", &token).await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["duration_seconds"], 55);
    assert_eq!(call["answered_at"], "2022-01-24T19:22:04Z");
    assert_eq!(
        call["recordings"],
        json!([{"url": "https://storage.example/rec.mp3"}])
    );
    assert_eq!(call["summary"], json!(["Booked bay 2"]));
    assert_eq!(call["next_steps"], json!(["Confirm by text"]));
    assert_eq!(call["transcript"][0]["content"], "Hi", "{call}");
    assert_eq!(call["media"][0]["kind"], "recording", "{call}");
    assert!(call["voicemail"].is_null());

    let (status, missed) = app.get("/api/v1/calls/CAmissed", &token).await;
    assert_eq!(status, StatusCode::OK, "{missed}");
    assert_eq!(missed["outcome"], "missed");
    assert_eq!(
        missed["voicemail"]["url"], "https://files.example/vm.mp3",
        "{missed}"
    );
    assert_eq!(missed["media"][0]["kind"], "voicemail", "{missed}");

    let (_, page) = app.get("/api/v1/conversations?q=1111", &token).await;
    let id = page["items"][0]["id"].as_str().unwrap();
    let (_, conversation) = app
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await;
    let message = conversation["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == "AC9")
        .unwrap();
    assert_eq!(message["status"], "delivered", "{conversation}");
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    events_out_of_order_read_back_whole,
    a_group_message_to_a_line_not_known_asks_the_api,
    tokens_and_roles_guard_every_endpoint,
    the_raw_log_pages_newest_first_and_filters_by_type,
    conversations_list_search_and_show_one_timeline,
    group_messages_share_one_conversation,
);

/// API tokens on this backend pass the suite the memory tokens pass.
async fn tokens_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::auth::conformance::run(db.store().await).await;
    db.cleanup().await;
}

mod token_store {
    use super::tokens_pass_the_conformance_suite;
    crate::backend_tests!(tokens_pass_the_conformance_suite);
}
