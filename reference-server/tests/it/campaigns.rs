//! Campaigns on the server's database: the store conformance suite, three engines racing on
//! one database, and the audience and campaign API end to end against the simulated
//! OpenPhone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use openphone_simulator::{DeliveryOptions, Simulator, SimulatorConfig};
use openphone_types::E164;
use reference_server::auth::Role;
use reference_server::campaigns::DbHistory;
use reference_server::config::Redacted;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sms_campaigns::{
    CampaignSpec, CampaignStore, Engine, EngineConfig, Error, MemberStatus, NewContact,
    OutgoingText, Schedule, SendResult, Sender, Weekday,
};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

/// The `sms_campaigns` store conformance suite, which the memory store also passes.
async fn the_campaign_store_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    sms_campaigns::conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// Campaign reports recorded by this backend's ingestion statements pass the suite the
/// memory records (with an `sms-campaigns` memory store attached) pass.
async fn campaign_reports_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    reference_server::campaigns::report_conformance::run(store.clone(), store).await;
    db.cleanup().await;
}

/// Records every send; sends to one number twice are the failure this test looks for.
#[derive(Clone, Default)]
struct CountingSender {
    sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl Sender for CountingSender {
    async fn send(&self, message: &OutgoingText) -> SendResult {
        // Let the other engines interleave with this one.
        tokio::task::yield_now().await;
        let mut sent = self.sent.lock().unwrap();
        sent.push((message.to.as_str().to_owned(), message.text.clone()));
        SendResult::Sent {
            message_id: format!("AC{}", sent.len()),
        }
    }

    async fn find(&self, _: &OutgoingText, _: OffsetDateTime) -> Result<Option<String>, Error> {
        Ok(None)
    }
}

fn number(n: u32) -> E164 {
    E164::parse(&format!("+1415555{n:04}")).unwrap()
}

/// Three engines (as on three replicas) tick the same campaign at the same instants: every
/// recipient is sent exactly once, never more than `per_run` per slot.
async fn three_engines_racing_never_double_send(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let start = datetime!(2026-11-30 09:00 UTC);
    let list = store.create_list("Race", start).await.unwrap();
    for i in 0..30 {
        let (contact, _) = store
            .upsert_contact(
                NewContact {
                    phone: Some(number(i)),
                    first_name: Some(format!("R{i}")),
                    ..NewContact::default()
                },
                start,
            )
            .await
            .unwrap();
        store
            .add_member(&list.id, &contact.id, start)
            .await
            .unwrap();
        store
            .set_member_status(&list.id, u64::from(i), MemberStatus::Kept, None, None)
            .await
            .unwrap();
    }
    let now = Arc::new(Mutex::new(start));
    let sender = CountingSender::default();
    let engines: Vec<_> = (0..3)
        .map(|n| {
            let now = now.clone();
            Engine::new(
                store.clone(),
                sender.clone(),
                DbHistory::new(store.clone()),
                EngineConfig::new(format!("replica-{n}"), "Acme"),
                Arc::new(move || *now.lock().unwrap()),
            )
        })
        .collect();
    let spec = CampaignSpec {
        name: "Race".into(),
        message_a: "Hi {{first_name}}".into(),
        message_b: Some("Hello {{first_name}}".into()),
        list_id: list.id.clone(),
        sender: number(9999),
        schedule: Schedule {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            send_time: "10:00".into(),
            timezone: "UTC".into(),
            per_run: 7,
        },
        opt_out_text: None,
    };
    let campaign = engines[0].create(&spec).await.unwrap();
    engines[0].activate(&campaign.id).await.unwrap();
    let mut per_slot = Vec::new();
    for day in 0..6 {
        *now.lock().unwrap() = datetime!(2026-11-30 10:00:05 UTC) + time::Duration::days(day);
        let before = sender.sent.lock().unwrap().len();
        let reports = join_all(engines.iter().map(|engine| engine.tick())).await;
        for report in reports {
            report.unwrap();
        }
        per_slot.push(sender.sent.lock().unwrap().len() - before);
    }
    assert_eq!(
        per_slot,
        vec![7, 7, 7, 7, 2, 0],
        "at most per_run per slot, in order"
    );
    let sent = sender.sent.lock().unwrap().clone();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (to, _) in &sent {
        *counts.entry(to.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 30, "everyone sent");
    assert!(counts.values().all(|n| *n == 1), "nobody twice: {counts:?}");
    let b = sent
        .iter()
        .filter(|(_, text)| text.starts_with("Hello"))
        .count();
    assert_eq!(b, 15, "second half B");
    let stored = store.campaign(&campaign.id).await.unwrap();
    assert_eq!(stored.state, sms_campaigns::CampaignState::Completed);
    db.cleanup().await;
}

async fn simulator() -> (Simulator, String) {
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec![key.clone()],
            rate_limit: None,
            // Sent messages are delivered at once, so the reconciliation always reads them
            // back delivered.
            delivery: DeliveryOptions {
                delivered_after: std::time::Duration::ZERO,
                ..DeliveryOptions::default()
            },
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (sim, key)
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn upload(app: &TestApp, path: &str, token: &str, csv: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An inbound text to our line `to` (its phone number id and number).
fn inbound(id: &str, from: &str, to: &(String, String), text: &str, at: &str) -> Value {
    let (line_id, number) = to;
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
        "createdAt": at, "type": "message.received", "data": {"object": {
        "id": id, "object": "message", "from": from, "to": [number], "direction": "incoming",
        "text": text, "status": "received", "createdAt": at, "phoneNumberId": line_id}}})
}

/// The whole flow through the API: a list from a CSV file (preview, import, validation), a
/// campaign (preview, confirmation, activation), runs at the scheduled local time that skip
/// an earlier customer and a STOP received after activation, replies counted in the report.
async fn a_campaign_runs_end_to_end_through_the_api(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (sim, key) = simulator().await;
    let line = sim.phone_numbers()[0].clone();
    let our_number = line.1.clone();
    // Monday 2026-11-30, 09:30 in Chicago.
    let now = Arc::new(Mutex::new(datetime!(2026-11-30 15:30 UTC)));
    let clock_now = now.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || *clock_now.lock().unwrap());
    // The simulator on the same clock: what it records (the sent messages the daily
    // reconciliation reads back with `createdAfter`) is dated as the server sees time.
    let sim_now = now.clone();
    sim.set_clock(move || *sim_now.lock().unwrap());
    let app = TestApp::spawn_with_clock(&db, clock, |config| {
        config.openphone_api_key = Some(Redacted(key.clone()));
        config.openphone_base_url = sim.base_url();
        config.campaign_sender_name = Some("Acme Piers".to_owned());
        config.campaign_max_upload_bytes = 4096;
    })
    .await;
    let operator = app.token(Role::Operator).await;
    let support = app.token(Role::Support).await;

    // An audience from a CSV file.
    let (status, list) = call(
        &app,
        "POST",
        "/api/v1/lists",
        &operator,
        Some(json!({"name": "Spring"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    let list_id = list["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/lists",
        &support,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csv = "First Name,Mobile,Job Type\n\
               Ana,(415) 555-0100,pier\n\
               Ben,(415) 555-0101,slab\n\
               Cy,(415) 555-0102,pier\n\
               Di,(415) 555-0103,\n\
               Ed,(415) 555-0104,wall\n\
               Bad,12,\n\
               Ana again,415.555.0100,\n";
    let (status, preview) = upload(
        &app,
        &format!("/api/v1/lists/{list_id}/import/preview"),
        &operator,
        csv,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["columns"][1]["column"]["field"], "phone");
    assert_eq!(preview["rows"].as_array().unwrap().len(), 7);
    let (_, members) = app
        .get(&format!("/api/v1/lists/{list_id}/members"), &support)
        .await;
    assert!(
        members["items"].as_array().unwrap().is_empty(),
        "a preview writes nothing"
    );
    let (status, summary) = upload(
        &app,
        &format!("/api/v1/lists/{list_id}/import"),
        &operator,
        csv,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        (
            summary["rows"].as_u64(),
            summary["created"].as_u64(),
            summary["duplicates_in_file"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some(7), Some(5), Some(1), Some(1))
    );
    assert_eq!(summary["rejections"][0]["line"], 7);
    let (status, bad) = upload(
        &app,
        &format!("/api/v1/lists/{list_id}/import?mapping=nope"),
        &operator,
        csv,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    // Bodies over their limits: 413, in the JSON error shape.
    let (status, large) = upload(
        &app,
        &format!("/api/v1/lists/{list_id}/import"),
        &operator,
        &format!("First Name,Mobile\n{}", "Ana,(415) 555-0100\n".repeat(300)),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{large}");
    assert!(
        large["error"].as_str().unwrap().contains("4096 bytes"),
        "{large}"
    );
    let (status, large) = call(
        &app,
        "POST",
        "/api/v1/lists",
        &operator,
        Some(json!({"name": "x".repeat(3 * 1024 * 1024)})),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{large}");
    assert!(large["error"].is_string(), "{large}");

    // A campaign cannot start on an unvalidated list.
    let spec = json!({
        "name": "Spring inspection",
        "message_a": "Hi {{first_name|there}}, time for your {{job_type|foundation}} check?",
        "message_b": "{{first_name|Hello}}: book your {{job_type|foundation}} check this week?",
        "list_id": list_id,
        "sender": our_number,
        "schedule": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "send_time": "10:00", "timezone": "America/Chicago", "per_run": 2},
        "opt_out_text": "Reply STOP to opt out."
    });
    let (status, campaign) = call(
        &app,
        "POST",
        "/api/v1/campaigns",
        &operator,
        Some(spec.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    let (status, refused) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/activate"),
        &operator,
        Some(json!({"confirm_recipients": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("not validated"));
    let (status, validation) = call(
        &app,
        "POST",
        &format!("/api/v1/lists/{list_id}/validate"),
        &operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{validation}");
    assert_eq!(
        (
            validation["validated"].as_u64(),
            validation["unknown"].as_u64()
        ),
        (Some(5), Some(5))
    );

    // Invalid specs are refused naming the field; drafts can be edited.
    let mut bad_spec = spec.clone();
    bad_spec["schedule"]["timezone"] = json!("Mars/Base");
    let (status, error) = call(
        &app,
        "PUT",
        &format!("/api/v1/campaigns/{id}"),
        &operator,
        Some(bad_spec),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("timezone"),
        "{error}"
    );

    // Preview for one contact.
    let (_, members) = app
        .get(
            &format!("/api/v1/lists/{list_id}/members?limit=2"),
            &support,
        )
        .await;
    let ana = members["items"][0]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(members["next_cursor"].is_string());
    let (status, rendered) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/preview"),
        &support,
        Some(json!({"contact_id": ana})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(
        rendered[0]["text"],
        "Hi Ana, time for your pier check? - Acme Piers Reply STOP to opt out."
    );
    assert_eq!(rendered[0]["segments"]["segments"], 1);
    assert_eq!(rendered[1]["variant"], "B");

    // Ben talked with us before; the summary says he will go to review.
    let before = inbound(
        "ACold",
        "+14155550101",
        &line,
        "Is Tuesday ok?",
        "2026-10-01T12:00:00Z",
    );
    assert_eq!(app.webhook("d-old", &before).await, StatusCode::OK);
    let (status, activation) = app
        .get(&format!("/api/v1/campaigns/{id}/activation"), &support)
        .await;
    assert_eq!(status, StatusCode::OK, "{activation}");
    assert_eq!(
        (
            activation["recipients"].as_u64(),
            activation["skipped_prior_communication"].as_u64(),
            activation["to_send"].as_u64(),
            activation["runs_needed"].as_u64()
        ),
        (Some(5), Some(1), Some(4), Some(2))
    );
    assert_eq!(activation["first_send_day"], "2026-11-30");
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/activate"),
        &operator,
        Some(json!({"confirm_recipients": 4})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an unconfirmed count is refused"
    );
    let (status, activated) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/activate"),
        &operator,
        Some(json!({"confirm_recipients": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    assert_eq!(activated["campaign"]["state"], "active");
    let (status, _) = call(
        &app,
        "PUT",
        &format!("/api/v1/campaigns/{id}"),
        &operator,
        Some(spec.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "only drafts are edited");

    // Cy texts STOP after activation, before the runs.
    let stop = inbound(
        "ACstop",
        "+14155550102",
        &line,
        "STOP",
        "2026-11-30T15:40:00Z",
    );
    assert_eq!(app.webhook("d-stop", &stop).await, StatusCode::OK);
    TestApp::eventually("Cy's opt-out confirmation", || async {
        (sim.sent().len() == 1).then_some(())
    })
    .await;

    // 10:00 in Chicago: the first run sends Ana and puts Ben on review.
    *now.lock().unwrap() = datetime!(2026-11-30 16:00:30 UTC);
    let ledger = TestApp::eventually("the first run", || async {
        let (_, page) = app
            .get(&format!("/api/v1/campaigns/{id}/recipients"), &support)
            .await;
        (page["items"][1]["state"] == "skipped").then_some(page)
    })
    .await;
    assert_eq!(ledger["items"][0]["state"], "sent", "{ledger}");
    assert_eq!(ledger["items"][2]["state"], "pending");
    let (_, review) = app
        .get(&format!("/api/v1/campaigns/{id}/review"), &support)
        .await;
    assert_eq!(review["items"].as_array().unwrap().len(), 1);
    assert_eq!(review["items"][0]["phone"], "+14155550101");

    // Ana replies; the report counts it.
    let reply = inbound(
        "ACreply",
        "+14155550100",
        &line,
        "Yes please",
        "2026-11-30T16:05:00Z",
    );
    assert_eq!(app.webhook("d-reply", &reply).await, StatusCode::OK);

    // Paused over the next slot: nothing is sent; resumed, the runs go on.
    let (status, paused) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/pause"),
        &operator,
        None,
    )
    .await;
    assert_eq!(
        (status, paused["state"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/pause"),
        &operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    *now.lock().unwrap() = datetime!(2026-12-01 16:00:30 UTC);
    // Tuesday's 10:00 slot has run (and finished) while the campaign was paused.
    TestApp::eventually("Tuesday's campaign run", || async {
        let (_, runs) = app.get("/api/v1/jobs?job=campaigns", &operator).await;
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["slot"] == "2026-12-01T16:00:00Z" && run["outcome"] == "succeeded")
            .then_some(())
    })
    .await;
    assert_eq!(sim.sent().len(), 2, "paused: nothing sent");
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/resume"),
        &operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Wednesday: Cy (STOP) is skipped, Di sent; Thursday: Ed sent, and the campaign is done.
    *now.lock().unwrap() = datetime!(2026-12-02 16:00:30 UTC);
    TestApp::eventually("Wednesday's run", || async {
        (sim.sent().len() == 3).then_some(())
    })
    .await;
    *now.lock().unwrap() = datetime!(2026-12-03 16:00:30 UTC);
    TestApp::eventually("Thursday's run", || async {
        let (_, stored) = app.get(&format!("/api/v1/campaigns/{id}"), &support).await;
        (stored["state"] == "completed").then_some(())
    })
    .await;
    let (_, stored) = app.get(&format!("/api/v1/campaigns/{id}"), &support).await;
    assert_eq!(stored["state"], "completed", "{stored}");
    let (_, report) = app
        .get(&format!("/api/v1/campaigns/{id}/report"), &support)
        .await;
    let total = &report["total"];
    assert_eq!(
        (
            total["sent"].as_u64(),
            total["skipped"].as_u64(),
            total["replied"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(report["skipped_by_reason"]["opted_out"], 1);
    assert_eq!(report["skipped_by_reason"]["prior_communication"], 1);
    assert_eq!(
        sim.sent().len(),
        4,
        "Cy's confirmation, then Ana, Di and Ed once each"
    );

    // Delivery reports of two campaign messages arrive: the report counts the delivery, and
    // listings hide campaign messages unless asked.
    let (_, ledger) = app
        .get(&format!("/api/v1/campaigns/{id}/recipients"), &support)
        .await;
    for (position, phone) in [(0, "+14155550100"), (4, "+14155550104")] {
        let entry = &ledger["items"][position];
        let message_id = entry["message_id"].as_str().unwrap();
        let delivered = json!({"id": format!("EVd{position}"), "object": "event", "apiVersion": "v4",
            "createdAt": "2026-12-03T16:10:00Z", "type": "message.delivered", "data": {"object": {
            "id": message_id, "object": "message", "from": our_number, "to": [phone], "direction": "outgoing",
            "text": entry["text"], "status": "delivered", "createdAt": "2026-11-30T16:00:30Z", "phoneNumberId": line.0}}});
        assert_eq!(
            app.webhook(&format!("d-delivered-{position}"), &delivered)
                .await,
            StatusCode::OK
        );
    }
    // The campaign messages: Ana's and Ed's from their delivery reports, and Di's (no
    // webhook) once Thursday's 02:00 reconciliation has read it back from the API. All three
    // name the campaign.
    let only = TestApp::eventually("the reconciliation reads Di's message back", || async {
        let (_, only) = app.get("/api/v1/activity?campaign=only", &support).await;
        let items = only["items"].as_array().unwrap().clone();
        (items.len() == 3).then_some(items)
    })
    .await;
    assert!(
        only.iter().all(|i| i["campaign_id"] == id.as_str()),
        "{only:?}"
    );
    let texts: Vec<&str> = only.iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert!(
        texts.iter().any(|text| text.starts_with("Di:")),
        "{texts:?}"
    );
    // Delivered: Ana's and Ed's by their reports, Di's as the reconciliation read it back.
    let (_, report) = app
        .get(&format!("/api/v1/campaigns/{id}/report"), &support)
        .await;
    assert_eq!(report["total"]["delivered"], 3, "{report}");
    // Cy's confirmation is read back by Tuesday's reconciliation.
    let hidden = TestApp::eventually("Cy's confirmation is read back", || async {
        let (_, hidden) = app.get("/api/v1/activity", &support).await;
        let items = hidden["items"].as_array().unwrap().clone();
        (items.len() == 4).then_some(items)
    })
    .await;
    let kinds: Vec<(&str, &str)> = hidden
        .iter()
        .map(|i| {
            (
                i["direction"].as_str().unwrap(),
                i["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds.len(),
        4,
        "the three inbound texts and Cy's confirmation (read back too), no campaign message: {kinds:?}"
    );
    assert!(hidden.iter().all(|i| i["campaign_id"].is_null()));
    let (_, all) = app.get("/api/v1/activity?campaign=include", &support).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
    let (status, _) = app
        .get("/api/v1/activity?campaign=sometimes", &support)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Di's and Ed's conversations hold only the campaign message; Ana's has her reply too.
    let participants = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["participants"].to_string())
            .collect()
    };
    let (_, default) = app.get("/api/v1/conversations", &support).await;
    let (_, with_campaigns) = app
        .get("/api/v1/conversations?campaign=include", &support)
        .await;
    let (_, campaign_only) = app
        .get("/api/v1/conversations?campaign=only", &support)
        .await;
    assert!(
        participants(&default)
            .iter()
            .any(|p| p.contains("+14155550100"))
    );
    assert!(
        !participants(&default)
            .iter()
            .any(|p| p.contains("+14155550104")),
        "{default}"
    );
    assert!(
        participants(&with_campaigns)
            .iter()
            .any(|p| p.contains("+14155550104"))
    );
    assert_eq!(
        participants(&campaign_only).len(),
        2,
        "Di's and Ed's: {campaign_only}"
    );
    let ana_conversation = default["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["participants"].to_string().contains("+14155550100"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, timeline) = app
        .get(
            &format!("/api/v1/conversations/{ana_conversation}"),
            &support,
        )
        .await;
    let entries = timeline["timeline"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["campaign_id"] == id.as_str() && e["direction"] == "outgoing"),
        "{timeline}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["id"] == "ACreply" && e["campaign_id"].is_null()),
        "the reply is in the timeline"
    );
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/cancel"),
        &operator,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed campaign cannot be cancelled"
    );
    app.stop().await;
    db.cleanup().await;
}

/// Without an API key nothing can go out: the run puts its recipient back, pauses the
/// campaign with the reason, and raises an alert; nobody is lost.
async fn a_run_that_cannot_send_pauses_the_campaign_and_alerts(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let now = Arc::new(Mutex::new(datetime!(2026-11-30 09:30 UTC)));
    let clock_now = now.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || *clock_now.lock().unwrap());
    let app = TestApp::spawn_with_clock(&db, clock, |config| {
        config.campaign_sender_name = Some("Acme Piers".to_owned());
    })
    .await;
    let start = datetime!(2026-11-30 09:30 UTC);
    let list = app.store.create_list("Few", start).await.unwrap();
    for i in 0..3 {
        let (contact, _) = app
            .store
            .upsert_contact(
                NewContact {
                    phone: Some(number(i)),
                    ..NewContact::default()
                },
                start,
            )
            .await
            .unwrap();
        app.store
            .add_member(&list.id, &contact.id, start)
            .await
            .unwrap();
        app.store
            .set_member_status(&list.id, u64::from(i), MemberStatus::Kept, None, None)
            .await
            .unwrap();
    }
    let operator = app.token(Role::Operator).await;
    let spec = json!({"name": "No key", "message_a": "Hello", "list_id": list.id.0, "sender": "+14155559999",
        "schedule": {"days": ["mon"], "send_time": "10:00", "timezone": "UTC", "per_run": 3}});
    let (status, campaign) = call(&app, "POST", "/api/v1/campaigns", &operator, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/campaigns/{id}/activate"),
        &operator,
        Some(json!({"confirm_recipients": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    *now.lock().unwrap() = datetime!(2026-11-30 10:00:30 UTC);
    let alert = TestApp::eventually("the campaign alert", || async {
        let (_, alerts) = app.get("/api/v1/alerts?open=true", &operator).await;
        alerts["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|a| a["kind"] == "campaign_paused")
                .cloned()
        })
    })
    .await;
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("OPENPHONE_API_KEY"),
        "{alert}"
    );
    let (_, stored) = app.get(&format!("/api/v1/campaigns/{id}"), &operator).await;
    assert_eq!(stored["state"], "paused");
    assert!(
        stored["state_reason"]
            .as_str()
            .unwrap()
            .contains("nothing could be sent"),
        "{stored}"
    );
    let (_, ledger) = app
        .get(
            &format!("/api/v1/campaigns/{id}/recipients?state=pending"),
            &operator,
        )
        .await;
    assert_eq!(
        ledger["items"].as_array().unwrap().len(),
        3,
        "everyone still pending: {ledger}"
    );
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    the_campaign_store_conformance_suite_passes,
    campaign_reports_pass_the_conformance_suite,
    a_run_that_cannot_send_pauses_the_campaign_and_alerts,
    three_engines_racing_never_double_send,
    a_campaign_runs_end_to_end_through_the_api,
);
