//! Contacts through the management API: list, search, get, create, update; merged with the
//! versions webhooks deliver by update time.

use reference_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn webhook_version(updated: &str, first: &str) -> Value {
    json!({"id": format!("EVct-{updated}"), "apiVersion": "2026-03-30", "createdAt": updated, "type": "contact.updated",
        "data": {"resource": {"id": "CT9", "firstName": first, "lastName": "Ruiz", "company": null, "role": null,
            "location": null, "source": null, "externalId": null, "emails": [],
            "phoneNumbers": [{"value": "+15550007777", "type": "phone-number"}], "customFields": [],
            "createdAt": "2026-04-01T00:00:00Z", "updatedAt": updated},
            "context": {"orgId": "OR1", "userId": "US1", "sharedWithIds": []}, "links": {"quo": null}}})
}

async fn contacts_are_listed_created_updated_and_merged_with_webhooks(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let support = app.token(Role::Support).await;
    let operator = app.token(Role::Operator).await;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;

    let body = json!({"first_name": "Dana", "last_name": "Okafor", "company": "Bâtiment Okafor", "phones": ["+15550006666"], "emails": ["dana@example.com"]});
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/v1/contacts",
        &support,
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = send(&app, post.clone(), "/api/v1/contacts", &operator, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("loc_"));
    assert_eq!(created["phones"], json!(["+15550006666"]));
    for bad in [
        json!({"phones": ["555-0101"]}),
        json!({"first_name": "  "}),
        json!({"first_name": "A", "emails": ["nope"]}),
        json!({"first_name": "A", "nickname": "x"}),
    ] {
        let (status, error) = send(
            &app,
            post.clone(),
            "/api/v1/contacts",
            &operator,
            bad.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
    }

    // A contact from OpenPhone, then edited here: the edit wins over an older redelivery,
    // and a later edit in OpenPhone wins over the edit.
    assert_eq!(
        app.webhook("ct1", &webhook_version("2026-04-02T00:00:00Z", "Luis"))
            .await,
        StatusCode::OK
    );
    let (status, edited) = send(
        &app,
        patch.clone(),
        "/api/v1/contacts/CT9",
        &operator,
        json!({"company": "Ruiz Foundations"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        (edited["first_name"].as_str(), edited["company"].as_str()),
        (Some("Luis"), Some("Ruiz Foundations"))
    );
    assert_eq!(edited["phones"], json!(["+15550007777"]), "phones kept");
    assert_eq!(
        app.webhook("ct2", &webhook_version("2026-04-03T00:00:00Z", "Lu"))
            .await,
        StatusCode::OK
    );
    let (_, now) = app.get("/api/v1/contacts/CT9", &support).await;
    assert_eq!(
        now["company"], "Ruiz Foundations",
        "an older version does not undo the edit"
    );
    assert_eq!(
        app.webhook("ct3", &webhook_version("2099-01-01T00:00:00Z", "Luisa"))
            .await,
        StatusCode::OK
    );
    let (_, later) = app.get("/api/v1/contacts/CT9", &support).await;
    assert_eq!(
        (later["first_name"].as_str(), later["company"].as_str()),
        (Some("Luisa"), None)
    );

    // Listing, search by name and by number, pages.
    let (_, all) = app.get("/api/v1/contacts", &support).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, found) = app.get("/api/v1/contacts?q=okafor", &support).await;
    assert_eq!(found["items"][0]["id"], id.as_str());
    let (_, found) = app.get("/api/v1/contacts?q=7777", &support).await;
    assert_eq!(found["items"][0]["id"], "CT9");
    // ASCII letters in any case; other letters as written, alike on every backend.
    for (q, found_dana) in [
        ("B%C3%A2TIMENT", true),
        ("b%C3%A2timent", true),
        ("B%C3%82TIMENT", false),
    ] {
        let (_, found) = app.get(&format!("/api/v1/contacts?q={q}"), &support).await;
        let ids: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = if found_dana {
            vec![id.as_str()]
        } else {
            vec![]
        };
        assert_eq!(ids, expected, "q={q}");
    }
    let (_, first) = app.get("/api/v1/contacts?limit=1", &support).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/contacts?limit=1&cursor={cursor}"),
            &support,
        )
        .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    assert_eq!(
        app.get("/api/v1/contacts/nope", &support).await.0,
        StatusCode::NOT_FOUND
    );
    // A contact created here names its conversations in search.
    assert_eq!(
        app.store.contacts_by_phone("+15550006666").await.unwrap(),
        std::slice::from_ref(&id)
    );

    // Merging a duplicate: numbers and emails joined, the duplicate deleted.
    let (_, duplicate) = send(
        &app,
        post.clone(),
        "/api/v1/contacts",
        &operator,
        json!({"first_name": "D.", "phones": ["+15550005555"], "emails": ["dana@work.example"]}),
    )
    .await;
    let duplicate_id = duplicate["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{id}/merge");
    let (status, merged) = send(
        &app,
        post.clone(),
        &path,
        &operator,
        json!({"duplicate": duplicate_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["first_name"], "Dana");
    assert_eq!(merged["phones"], json!(["+15550005555", "+15550006666"]));
    assert_eq!(
        merged["emails"],
        json!(["dana@example.com", "dana@work.example"])
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{duplicate_id}"), &support)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.store.contacts_by_phone("+15550005555").await.unwrap(),
        std::slice::from_ref(&id)
    );
    let (status, _) = send(
        &app,
        post.clone(),
        &path,
        &operator,
        json!({"duplicate": id}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not into itself");

    // A NUL in a name, which PostgreSQL cannot store in text: kept as U+FFFD on every backend.
    let (status, odd) = send(
        &app,
        post.clone(),
        "/api/v1/contacts",
        &operator,
        json!({"first_name": "Da\u{0}na", "phones": ["+15550006667"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{odd}");
    let (_, read) = app
        .get(
            &format!("/api/v1/contacts/{}", odd["id"].as_str().unwrap()),
            &support,
        )
        .await;
    assert_eq!(read["first_name"], "Da\u{FFFD}na", "{read}");
    app.stop().await;
    db.cleanup().await;
}

async fn contacts_are_pushed_to_openphone_by_external_id(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = openphone_simulator::Simulator::start(
        openphone_simulator::SimulatorConfig {
            api_keys: vec![key.clone()],
            rate_limit: None,
            ..openphone_simulator::SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let app = TestApp::spawn_with(&db, |config| {
        config.openphone_api_key = Some(reference_server::config::Redacted(key.clone()));
        config.openphone_base_url = sim.base_url();
    })
    .await;
    let operator = app.token(Role::Operator).await;
    let (_, created) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/contacts",
        &operator,
        json!({"first_name": "Mia", "last_name": "Chen", "phones": ["+15550008888"], "emails": ["mia@example.com"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{id}/push");
    let (status, pushed) = send(&app, reqwest::Method::POST, &path, &operator, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{pushed}");
    assert_eq!(pushed["action"], "created");
    let openphone_id = pushed["openphone_id"].as_str().unwrap().to_owned();

    // Edited here and pushed again: found by its external id, updated with whole arrays.
    send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/contacts/{id}"),
        &operator,
        json!({"phones": ["+15550008888", "+15550009999"]}),
    )
    .await;
    let (_, again) = send(&app, reqwest::Method::POST, &path, &operator, json!({})).await;
    assert_eq!(
        (again["action"].as_str(), again["openphone_id"].as_str()),
        (Some("updated"), Some(openphone_id.as_str()))
    );
    let client = openphone_client::Client::builder(key)
        .base_url(sim.base_url())
        .rate_limit(openphone_client::RateLimit::per_second(1000))
        .build()
        .unwrap();
    let remote = client
        .get_contact(&openphone_id.as_str().into())
        .await
        .unwrap();
    assert_eq!(remote.external_id.as_deref(), Some(id.as_str()));
    let phones: Vec<String> = remote
        .default_fields
        .phone_numbers
        .iter()
        .filter_map(|p| p.value.clone())
        .collect();
    assert_eq!(phones, ["+15550008888", "+15550009999"]);

    // OpenPhone's webhook for it (our id as externalId) merges into our record.
    let webhook = json!({"id": "EVpush", "apiVersion": "2026-03-30", "createdAt": "2099-01-01T00:00:00Z", "type": "contact.updated",
        "data": {"resource": {"id": openphone_id, "firstName": "Mia", "lastName": "Chen-Lee", "company": null, "role": null,
            "location": null, "source": "public-api", "externalId": id, "emails": [],
            "phoneNumbers": [{"value": "+15550008888", "type": "phone-number"}], "customFields": [],
            "createdAt": "2026-04-01T00:00:00Z", "updatedAt": "2099-01-01T00:00:00Z"},
            "context": {"orgId": "OR1", "userId": "US1", "sharedWithIds": []}, "links": {"quo": null}}});
    assert_eq!(app.webhook("push1", &webhook).await, StatusCode::OK);
    let (_, mine) = app.get(&format!("/api/v1/contacts/{id}"), &operator).await;
    assert_eq!(mine["last_name"], "Chen-Lee");
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{openphone_id}"), &operator)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
    sim.stop().await;
    db.cleanup().await;
}

async fn details_found_in_messages_wait_for_approval(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let support = app.token(Role::Support).await;
    let operator = app.token(Role::Operator).await;
    let message = json!({"id": "EVsg", "object": "event", "apiVersion": "v4", "createdAt": "2026-11-22T06:00:00Z",
        "type": "message.received", "data": {"object": {"id": "ACsg", "object": "message", "from": "+15550002121",
        "to": ["+15550000001"], "direction": "incoming", "status": "received", "createdAt": "2026-11-22T06:00:00Z",
        "text": "Hi, my name is Ana Ruiz. The house is at 1420 Oak Street, email me at ana@example.com",
        "phoneNumberId": "PN1"}}});
    assert_eq!(app.webhook("sg1", &message).await, StatusCode::OK);
    let (_, pending) = app.get("/api/v1/contact-suggestions", &support).await;
    let items = pending["items"].as_array().unwrap();
    let by_kind = |kind: &str| {
        items.iter().find(|item| item["kind"] == kind).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(items.len(), 3, "{pending}");
    // Nothing is applied before a person decides.
    assert!(
        app.store
            .contacts_by_phone("+15550002121")
            .await
            .unwrap()
            .is_empty()
    );

    let post = reqwest::Method::POST;
    let decide = |id: i64, verb: &str| format!("/api/v1/contact-suggestions/{id}/{verb}");
    let (status, _) = send(
        &app,
        post.clone(),
        &decide(by_kind("name"), "approve"),
        &support,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, approved) = send(
        &app,
        post.clone(),
        &decide(by_kind("name"), "approve"),
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["contact"]["first_name"], "Ana");
    assert_eq!(approved["contact"]["last_name"], "Ruiz");
    assert_eq!(approved["contact"]["phones"], json!(["+15550002121"]));
    let (_, with_email) = send(
        &app,
        post.clone(),
        &decide(by_kind("email"), "approve"),
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(with_email["contact"]["emails"], json!(["ana@example.com"]));
    assert_eq!(
        with_email["contact"]["id"], approved["contact"]["id"],
        "the same contact"
    );
    let (status, rejected) = send(
        &app,
        post.clone(),
        &decide(by_kind("address"), "reject"),
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, rejected["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    let (status, _) = send(
        &app,
        post.clone(),
        &decide(by_kind("name"), "approve"),
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "decided once");
    let (_, still) = app.get("/api/v1/contact-suggestions", &support).await;
    assert!(still["items"].as_array().unwrap().is_empty());
    let (_, all) = app
        .get("/api/v1/contact-suggestions?status=all", &support)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    app.stop().await;
    db.cleanup().await;
}

/// A customer's message holding a "word" far longer than any contact detail (here an email
/// address, a name and a street of a few thousand bytes that do not compress) is stored like
/// any other, without suggestions; a contact with a "phone" that long is stored without it.
/// PostgreSQL refuses index entries that long, which used to fail the whole delivery (503, so
/// OpenPhone retried it until it gave up).
async fn huge_values_fail_no_delivery(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let mut seed = 0x2545_f491_u32;
    let mut noise = |length: usize| -> String {
        (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                char::from_u32(0x4e00 + seed % 0x5000).unwrap()
            })
            .collect()
    };
    let text = format!(
        "my name is B{} at x@{}.com at 12 {} Street",
        noise(1200),
        noise(1200),
        noise(1200)
    );
    let message = json!({"id": "EVbig", "object": "event", "apiVersion": "v4", "createdAt": "2026-11-22T06:00:00Z",
        "type": "message.received", "data": {"object": {"id": "ACbig", "object": "message", "from": "+15550002121",
        "to": ["+15550000001"], "direction": "incoming", "status": "received", "createdAt": "2026-11-22T06:00:00Z",
        "text": text, "phoneNumberId": "PN1"}}});
    assert_eq!(app.webhook("big1", &message).await, StatusCode::OK);
    let support = app.token(Role::Support).await;
    let (_, pending) = app.get("/api/v1/contact-suggestions", &support).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{pending}");
    let (status, _) = app
        .get("/api/v1/conversations?q=%2B15550002121", &support)
        .await;
    assert_eq!(status, StatusCode::OK);
    use reference_server::reads::Reads as _;
    assert_eq!(app.store.counts().await.unwrap().messages, 1);

    let mut contact = webhook_version("2026-11-22T07:00:00Z", "Ana");
    contact["data"]["resource"]["phoneNumbers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"value": noise(1200), "type": "phone-number"}));
    assert_eq!(app.webhook("big2", &contact).await, StatusCode::OK);
    let (status, stored) = app.get("/api/v1/contacts/CT9", &support).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["phones"], json!(["+15550007777"]), "{stored}");
    // An external id that only starts like ours is OpenPhone's contact, not one of ours.
    let mut other = webhook_version("2026-11-22T07:00:00Z", "Bo");
    other["id"] = json!("EVct-other");
    other["data"]["resource"]["id"] = json!("CT10");
    other["data"]["resource"]["externalId"] = json!(format!("loc_{}", noise(1200)));
    assert_eq!(app.webhook("big3", &other).await, StatusCode::OK);
    let (status, stored) = app.get("/api/v1/contacts/CT10", &support).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["first_name"], "Bo", "{stored}");
    app.stop().await;
    db.cleanup().await;
}

/// An approval whose detail cannot be applied (the contact, synced from OpenPhone, holds an
/// email this server would refuse) answers why and leaves the suggestion pending, not used up.
async fn an_approval_that_cannot_be_applied_leaves_the_suggestion_pending(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let operator = app.token(Role::Operator).await;
    let mut contact = webhook_version("2026-11-22T05:00:00Z", "Ana");
    contact["data"]["resource"]["emails"] = json!([{"value": "ana at home", "type": "email"}]);
    assert_eq!(app.webhook("ct1", &contact).await, StatusCode::OK);
    let message = json!({"id": "EVsg2", "object": "event", "apiVersion": "v4", "createdAt": "2026-11-22T06:00:00Z",
        "type": "message.received", "data": {"object": {"id": "ACsg2", "object": "message", "from": "+15550007777",
        "to": ["+15550000001"], "direction": "incoming", "status": "received", "createdAt": "2026-11-22T06:00:00Z",
        "text": "email me at ana@example.com", "phoneNumberId": "PN1"}}});
    assert_eq!(app.webhook("sg2", &message).await, StatusCode::OK);
    let (_, pending) = app.get("/api/v1/contact-suggestions", &operator).await;
    let id = pending["items"][0]["id"].as_i64().unwrap();
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/contact-suggestions/{id}/approve"),
        &operator,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, pending) = app.get("/api/v1/contact-suggestions", &operator).await;
    assert_eq!(pending["items"][0]["id"], id, "{pending}");
    assert_eq!(pending["items"][0]["status"], "pending", "{pending}");
    app.stop().await;
    db.cleanup().await;
}

/// Suggestions on this backend pass the suite the memory records pass.
async fn suggestions_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::suggestions::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    suggestions_pass_the_conformance_suite,
    details_found_in_messages_wait_for_approval,
    huge_values_fail_no_delivery,
    an_approval_that_cannot_be_applied_leaves_the_suggestion_pending,
    contacts_are_listed_created_updated_and_merged_with_webhooks,
    contacts_are_pushed_to_openphone_by_external_id,
);
