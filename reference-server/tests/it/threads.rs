//! Threads on the server's database: the store conformance suite, and appends racing
//! resolutions on one database.

use std::collections::HashMap;

use futures_util::future::join_all;
use thread_resolver::{Entry, EntryKind, Resolution, Resolver, ThreadState, ThreadStore};
use time::macros::datetime;

use std::sync::{Arc, Mutex};

use reference_server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

/// The `thread_resolver` store conformance suite, which the memory store also passes.
async fn the_thread_store_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    thread_resolver::conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// Many conversations take messages while sweeps resolve them, concurrently: every message
/// is in exactly the thread it joined, every snapshot holds exactly its thread's entries,
/// one open thread per conversation at most, and no thread resolved as idle took an entry
/// in its last 30 minutes.
async fn appends_racing_sweeps_lose_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let resolver = Resolver::new(store.clone(), time::Duration::minutes(30)).unwrap();
    let start = datetime!(2026-11-27 12:00 UTC);
    let mut joined: HashMap<String, thread_resolver::ThreadId> = HashMap::new();
    for round in 0..6i64 {
        // Each round, 31 minutes after the last: half of the 8 conversations (alternating)
        // get a message while two sweeps at that time run, racing them; the other half take
        // nothing and are certainly resolved.
        let at = start + time::Duration::minutes(31 * round);
        let appends = (0..8).filter(|c| (c + round) % 2 == 0).map(|c| {
            let store = store.clone();
            async move {
                let entry = Entry {
                    id: format!("r{round}c{c}"),
                    kind: EntryKind::Message,
                    direction: "incoming".into(),
                    from: None,
                    text: Some("hi".into()),
                    at,
                };
                let appended = store
                    .append(&format!("PN1|+1415555{c:04}"), &entry)
                    .await
                    .unwrap();
                (entry.id, appended.thread)
            }
        });
        let sweeps = (0..2).map(|_| resolver.sweep(at));
        let (appended, sweeps) = tokio::join!(join_all(appends), join_all(sweeps));
        for sweep in sweeps {
            sweep.unwrap();
        }
        joined.extend(appended);
    }
    let threads = store
        .threads(&Default::default(), None, 10_000)
        .await
        .unwrap();
    let mut open_per_key: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for thread in &threads {
        let entries = store.entries(thread.id).await.unwrap();
        total += entries.len();
        for entry in &entries {
            assert_eq!(
                joined.get(&entry.id),
                Some(&thread.id),
                "{} in the wrong thread",
                entry.id
            );
        }
        match thread.state {
            ThreadState::Open => *open_per_key.entry(thread.key.clone()).or_default() += 1,
            ThreadState::Resolved => {
                let snapshot = store.snapshot(thread.id).await.unwrap().unwrap();
                assert_eq!(snapshot.entries, entries);
                if thread.resolution == Some(Resolution::Idle) {
                    assert!(
                        thread.last_activity_at
                            <= thread.resolved_at.unwrap() - time::Duration::minutes(30)
                    );
                }
            }
        }
    }
    assert_eq!(total, joined.len(), "nothing lost");
    assert!(open_per_key.values().all(|n| *n == 1));
    let resolved = threads
        .iter()
        .filter(|t| t.state == ThreadState::Resolved)
        .count();
    assert!(
        resolved >= 8,
        "the quiet half resolves every round: {resolved}"
    );
    db.cleanup().await;
}

/// Pages of appends (`append_all`) race each other and sweeps: pages share conversations and
/// entry ids, in different orders, while sweeps resolve the threads of the round before.
/// Each entry is new in exactly one page and stored in exactly the thread every page was told
/// it joined; each thread's count and version are its stored entries; a last sweep freezes
/// every thread with exactly its entries.
async fn pages_of_appends_racing_each_other_and_sweeps_lose_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let resolver = Resolver::new(store.clone(), time::Duration::minutes(30)).unwrap();
    let start = datetime!(2026-11-27 12:00 UTC);
    let mut told: HashMap<String, Vec<(thread_resolver::ThreadId, bool)>> = HashMap::new();
    for round in 0..3i64 {
        // 33 minutes after the last round's latest entry (at 79 s): its threads are idle.
        let at = start + time::Duration::minutes(33 * round);
        // Four pages of 40 entries over 8 conversations; entry n is in pages n % 4 and
        // (n + 1) % 4; odd pages go in reverse order.
        let pages = (0..4usize).map(|page| {
            let store = store.clone();
            let mut entries: Vec<(String, Entry)> = (0..80usize)
                .filter(|n| n % 4 == page || (n + 1) % 4 == page)
                .map(|n| {
                    (
                        format!("PN1|+1415555{:04}", n % 8),
                        Entry {
                            id: format!("r{round}e{n}"),
                            kind: EntryKind::Message,
                            direction: "incoming".into(),
                            from: None,
                            text: Some("hi".into()),
                            at: at + time::Duration::seconds(i64::try_from(n).unwrap()),
                        },
                    )
                })
                .collect();
            if page % 2 == 1 {
                entries.reverse();
            }
            async move {
                let outcomes = store.append_all(&entries).await.unwrap();
                entries
                    .into_iter()
                    .zip(outcomes)
                    .map(|((_, entry), outcome)| (entry.id, (outcome.thread, outcome.new)))
                    .collect::<Vec<_>>()
            }
        });
        let sweeps = (0..2).map(|_| resolver.sweep(at));
        let (pages, sweeps) = tokio::join!(join_all(pages), join_all(sweeps));
        for sweep in sweeps {
            sweep.unwrap();
        }
        for (id, outcome) in pages.into_iter().flatten() {
            told.entry(id).or_default().push(outcome);
        }
    }
    // Last, every thread is idle: a sweep resolves them all.
    resolver
        .sweep(start + time::Duration::minutes(33 * 3))
        .await
        .unwrap();
    assert_eq!(told.len(), 3 * 80);
    for (id, outcomes) in &told {
        assert_eq!(outcomes.len(), 2, "{id} is in two pages");
        assert_eq!(
            outcomes.iter().filter(|(_, new)| *new).count(),
            1,
            "{id} is new in exactly one page: {outcomes:?}"
        );
        assert_eq!(outcomes[0].0, outcomes[1].0, "{id}: one thread");
    }
    let threads = store
        .threads(&Default::default(), None, 10_000)
        .await
        .unwrap();
    let mut threads_per_key: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for thread in &threads {
        let entries = store.entries(thread.id).await.unwrap();
        total += entries.len();
        for entry in &entries {
            assert_eq!(
                told[&entry.id][0].0, thread.id,
                "{} in the wrong thread",
                entry.id
            );
        }
        let (stored, version) = store.thread(thread.id).await.unwrap();
        assert_eq!(
            stored.entries,
            entries.len() as u64,
            "thread {:?}",
            thread.id
        );
        assert_eq!(version, entries.len() as i64, "thread {:?}", thread.id);
        assert_eq!(thread.state, ThreadState::Resolved);
        let snapshot = store.snapshot(thread.id).await.unwrap().unwrap();
        assert_eq!(snapshot.entries, entries);
        *threads_per_key.entry(thread.key.clone()).or_default() += 1;
    }
    assert_eq!(total, told.len(), "nothing lost");
    // One to three threads a conversation: one a round, fewer where a page joined the thread
    // before the racing sweep could resolve it.
    assert_eq!(threads_per_key.len(), 8);
    assert!(threads_per_key.values().all(|n| (1..=3).contains(n)));
    db.cleanup().await;
}

/// A feed asked to stop ends after the page in progress (1,000 deliveries), checkpointed;
/// the next feed goes on from there and appends the rest.
async fn a_stopping_feed_ends_after_its_page_and_the_next_goes_on(backend: Backend) {
    use reference_server::scheduler::Stop;
    use reference_server::store::NewDelivery;
    use reference_server::threads::{Fed, feed};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = datetime!(2026-04-13 12:00 UTC);
    let deliveries: Vec<NewDelivery> = (0..1_500)
        .map(|n| {
            let sent = (at + time::Duration::seconds(n))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            NewDelivery {
                delivery_key: format!("webhook-id:feed-{n}"),
                scheme: "standard",
                event_id: Some(format!("EVAC{n:05}")),
                event_type: Some("message.received".to_owned()),
                parse_error: None,
                signed_at: at,
                received_at: at,
                body: message(&format!("AC{n:05}"), "incoming", &sent)
                    .to_string()
                    .into_bytes(),
                changes: Vec::new(),
            }
        })
        .collect();
    for page in deliveries.chunks(500) {
        store.record_batch(page).await.unwrap();
    }
    let now = at + time::Duration::hours(1);
    let (_stop, stopping) = tokio::sync::watch::channel(true);
    assert_eq!(
        feed(&store, now, &Stop::on(stopping)).await.unwrap(),
        Fed {
            appended: 1_000,
            stopped: true
        }
    );
    assert_eq!(
        feed(&store, now, &Stop::never()).await.unwrap(),
        Fed {
            appended: 500,
            stopped: false
        }
    );
    assert_eq!(
        feed(&store, now, &Stop::never()).await.unwrap(),
        Fed {
            appended: 0,
            stopped: false
        }
    );
    db.cleanup().await;
}

fn message(id: &str, direction: &str, at: &str) -> Value {
    let (from, to) = if direction == "incoming" {
        ("+14155550100", "+14155550001")
    } else {
        ("+14155550001", "+14155550100")
    };
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4",
        "createdAt": at, "type": if direction == "incoming" { "message.received" } else { "message.delivered" },
        "data": {"object": {"id": id, "object": "message", "from": from, "to": [to], "direction": direction,
        "text": format!("text {id}"), "status": if direction == "incoming" { "received" } else { "delivered" },
        "createdAt": at, "phoneNumberId": "PN1"}}})
}

/// Webhooks become thread entries, the scheduled sweep resolves the idle thread and freezes
/// it, the next message opens a new thread; staff resolve and reopen through the API.
async fn threads_follow_webhooks_through_the_server(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let now = Arc::new(Mutex::new(datetime!(2026-11-30 15:00 UTC)));
    let clock_now = now.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || *clock_now.lock().unwrap());
    let app = TestApp::spawn_with_clock(&db, clock, |_| {}).await;
    let support = app.token(Role::Support).await;
    assert_eq!(
        app.webhook("w1", &message("AC1", "incoming", "2026-11-30T15:01:00Z"))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.webhook("w2", &message("AC2", "outgoing", "2026-11-30T15:03:00Z"))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.webhook(
            "w2-again",
            &message("AC2", "outgoing", "2026-11-30T15:03:00Z")
        )
        .await,
        StatusCode::OK
    );
    *now.lock().unwrap() = datetime!(2026-11-30 15:06 UTC);
    let open = TestApp::eventually("the thread", || async {
        let (_, page) = app.get("/api/v1/threads?state=open", &support).await;
        (page["items"].as_array().is_some_and(|i| i.len() == 1) && page["items"][0]["entries"] == 2)
            .then_some(page)
    })
    .await;
    let id = open["items"][0]["id"].as_i64().unwrap();
    let (_, by_number) = app
        .get("/api/v1/threads?number=%2B14155550100", &support)
        .await;
    assert_eq!(by_number["items"].as_array().unwrap().len(), 1);
    let (_, other_number) = app
        .get("/api/v1/threads?number=%2B14155559999", &support)
        .await;
    assert!(other_number["items"].as_array().unwrap().is_empty());

    // 30 idle minutes later, the sweep freezes it.
    *now.lock().unwrap() = datetime!(2026-11-30 15:36 UTC);
    let detail = TestApp::eventually("the resolution", || async {
        let (_, detail) = app.get(&format!("/api/v1/threads/{id}"), &support).await;
        (detail["thread"]["state"] == "resolved").then_some(detail)
    })
    .await;
    assert_eq!(
        detail["snapshot"]["entries"].as_array().unwrap().len(),
        2,
        "{detail}"
    );
    assert_eq!(detail["thread"]["resolution"]["by"], "idle");

    // The next message opens a new thread; staff resolve it now.
    assert_eq!(
        app.webhook("w3", &message("AC3", "incoming", "2026-11-30T15:40:00Z"))
            .await,
        StatusCode::OK
    );
    *now.lock().unwrap() = datetime!(2026-11-30 15:41 UTC);
    let second = TestApp::eventually("the second thread", || async {
        let (_, page) = app.get("/api/v1/threads?state=open", &support).await;
        page["items"][0]["id"]
            .as_i64()
            .filter(|second| *second != id)
    })
    .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/threads/{second}/resolve")))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let resolved: Value = response.json().await.unwrap();
    assert_eq!(resolved["resolution"]["by"], "manual");
    let again = app
        .client
        .post(app.url(&format!("/api/v1/threads/{second}/resolve")))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    // Reopen the first: a new open thread with its two entries; its snapshot is kept.
    let reopened = app
        .client
        .post(app.url(&format!("/api/v1/threads/{id}/reopen")))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(reopened.status(), StatusCode::OK);
    let reopened: Value = reopened.json().await.unwrap();
    assert_eq!(
        (
            reopened["entries"].as_i64(),
            reopened["reopened_from"].as_i64()
        ),
        (Some(2), Some(id))
    );
    let (_, first) = app.get(&format!("/api/v1/threads/{id}"), &support).await;
    assert_eq!(first["snapshot"], detail["snapshot"]);
    let (status, _) = app.get("/api/v1/threads/99999", &support).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/threads?since=yesterday", &support).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
    db.cleanup().await;
}

backend_tests!(
    a_stopping_feed_ends_after_its_page_and_the_next_goes_on,
    pages_of_appends_racing_each_other_and_sweeps_lose_nothing,
    the_thread_store_conformance_suite_passes,
    appends_racing_sweeps_lose_nothing,
    threads_follow_webhooks_through_the_server,
);

/// The `knowledge_export` store conformance suite, which the memory store also passes.
async fn the_insight_store_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    knowledge_export::conformance::run(db.store().await).await;
    db.cleanup().await;
}

mod insights {
    use super::the_insight_store_conformance_suite_passes;
    crate::backend_tests!(the_insight_store_conformance_suite_passes);
}

/// The whole knowledge flow: webhooks, the idle sweep, an export to a (wiremocked)
/// Anthropic model with redaction and the relevant SOP, insights kept with their threads
/// marked, review through the API, and the patch of an approved insight.
async fn ingest_resolve_export_review(backend: Backend) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": "```json\n{\"insights\": [{\"source\": \"Do you host kids' birthday parties?\", \"summary\": \"No SOP covers birthday parties\", \"action\": \"Write the party booking steps and prices\", \"category\": \"bookings\", \"sop_target\": \"bookings/booking.md\", \"confidence\": \"high\", \"thread_ids\": [1]}]}\n```"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 100, "output_tokens": 50}})))
        .expect(1)
        .mount(&model)
        .await;
    let sops = db.dir.join("sops");
    std::fs::create_dir_all(sops.join("bookings")).unwrap();
    std::fs::write(
        sops.join("bookings/booking.md"),
        "# Booking a bay\nBays are booked by the hour; parties of up to 6.",
    )
    .unwrap();
    std::fs::write(
        sops.join("refunds.md"),
        "# Refunds\nCancellations 24 hours ahead are refunded.",
    )
    .unwrap();

    let now = Arc::new(Mutex::new(datetime!(2026-11-30 15:00 UTC)));
    let clock_now = now.clone();
    let clock: reference_server::ingest::Clock = Arc::new(move || *clock_now.lock().unwrap());
    let app = TestApp::spawn_with_clock(&db, clock, |_| {}).await;
    let operator = app.token(Role::Operator).await;
    let mut party = message("AC1", "incoming", "2026-11-30T15:01:00Z");
    party["data"]["object"]["text"] =
        json!("Do you host kids' birthday parties? Call me at 415-555-0100");
    assert_eq!(app.webhook("w1", &party).await, StatusCode::OK);
    *now.lock().unwrap() = datetime!(2026-11-30 15:06 UTC);
    TestApp::eventually("the thread", || async {
        let (_, page) = app.get("/api/v1/threads", &operator).await;
        page["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
            .then_some(())
    })
    .await;
    *now.lock().unwrap() = datetime!(2026-11-30 15:40 UTC);
    TestApp::eventually("the resolution", || async {
        let (_, page) = app.get("/api/v1/threads?state=resolved", &operator).await;
        page["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
            .then_some(())
    })
    .await;

    let mut config = reference_server::config::Config::with_defaults(
        "127.0.0.1:0".parse().unwrap(),
        db.dir.clone(),
    );
    config.knowledge_sop_dir = Some(sops);
    config.llm_model = Some("claude-test".into());
    config.llm_base_url = Some(model.uri());
    config.anthropic_api_key = Some(reference_server::config::Redacted("sk-ant-test".into()));
    assert!(config.knowledge_settings(Some("anthropic")).is_ok());
    config.anthropic_api_key = None;
    assert!(
        config
            .knowledge_settings(Some("anthropic"))
            .unwrap_err()
            .to_string()
            .contains("ANTHROPIC_API_KEY")
    );
    config.anthropic_api_key = Some(reference_server::config::Redacted("sk-ant-test".into()));
    let settings = config.knowledge_settings(Some("anthropic")).unwrap();
    let options = knowledge_export::ExportOptions {
        llm: true,
        to_dir: Some(db.dir.join("exports")),
        ..knowledge_export::ExportOptions::default()
    };
    let report = reference_server::knowledge::run_export(
        &app.store,
        &settings,
        &options,
        datetime!(2026-11-30 16:00 UTC),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.insights, report.file_threads, report.failed_batches),
        (1, 1, 0),
        "{report:?}"
    );
    let sent = &model.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    let prompt = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        prompt.contains("[phone]") && !prompt.contains("415-555-0100"),
        "redacted: {prompt}"
    );
    assert!(
        prompt.contains("bookings/booking.md"),
        "the relevant SOP is in the prompt"
    );
    let again = reference_server::knowledge::run_export(
        &app.store,
        &settings,
        &options,
        datetime!(2026-11-30 17:00 UTC),
    )
    .await
    .unwrap();
    assert!(
        again.batches.is_empty() && again.file_threads == 0,
        "exported once"
    );

    let (_, pending) = app.get("/api/v1/insights?review=pending", &operator).await;
    let id = pending["items"][0]["id"].as_i64().unwrap();
    assert_eq!(pending["items"][0]["produced_by"], "anthropic/claude-test");
    let (status, _) = app
        .get(&format!("/api/v1/insights/{id}/patch"), &operator)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only approved insights become patches"
    );
    let support = app.token(Role::Support).await;
    let refused = app
        .client
        .post(app.url(&format!("/api/v1/insights/{id}/approve")))
        .bearer_auth(&support)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let approved = app
        .client
        .post(app.url(&format!("/api/v1/insights/{id}/approve")))
        .bearer_auth(&operator)
        .json(&json!({"note": "yes, write it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);
    let again = app
        .client
        .post(app.url(&format!("/api/v1/insights/{id}/reject")))
        .bearer_auth(&operator)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let patch = app
        .client
        .get(app.url(&format!("/api/v1/insights/{id}/patch")))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::OK);
    let text = patch.text().await.unwrap();
    assert!(
        text.contains("+++ b/bookings/booking.md")
            && text.contains("+## No SOP covers birthday parties"),
        "{text}"
    );
    let (status, failures) = app.get("/api/v1/export-failures", &operator).await;
    assert_eq!(
        (status, failures.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    app.stop().await;
    db.cleanup().await;
}

mod knowledge_flow {
    use super::ingest_resolve_export_review;
    crate::backend_tests!(ingest_resolve_export_review);
}

/// Call summaries and transcripts projected from webhooks are what the export reads.
async fn call_details_come_from_the_projected_records(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    store
        .apply_changes(&[
            reference_server::projection::Change::Summary {
                call_id: "ACcall".into(),
                status: Some("completed".into()),
                status_rank: 2,
                summary: json!(["Wants a league slot"]).to_string(),
                next_steps: json!(["Send the form"]).to_string(),
            },
            reference_server::projection::Change::Transcript {
                call_id: "ACcall".into(),
                status: Some("completed".into()),
                status_rank: 2,
                dialogue: json!([{"speaker": "+14155550100", "user_id": null, "content": "Any league nights?", "start": 0.0, "end": 1.0}]).to_string(),
            },
        ])
        .await
        .unwrap();
    let details = knowledge_export::CallDetails::call_details(
        &store,
        &["ACcall".to_owned(), "ACnone".to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(details.len(), 1);
    let call = &details["ACcall"];
    assert_eq!(
        (call.summary.clone(), call.next_steps.clone()),
        (
            vec!["Wants a league slot".to_owned()],
            vec!["Send the form".to_owned()]
        )
    );
    assert_eq!(call.transcript[0].text, "Any league nights?");
    db.cleanup().await;
}

mod call_details {
    use super::call_details_come_from_the_projected_records;
    crate::backend_tests!(call_details_come_from_the_projected_records);
}

/// The scheduled export, told that the server is stopping before it sends anything, ends at
/// once: its run is `stopped`, no batch reaches the model, the thread waits for the next run.
async fn a_stopping_server_stops_the_scheduled_export(backend: Backend) {
    use reference_server::scheduler::{Job, RunEnd, Stop};
    use wiremock::MockServer;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = datetime!(2026-11-30 15:00 UTC);
    crate::helpers::resolved_thread(&store, "PN1|+14155550100", "AC1", "Open on Sunday?", at).await;
    // A model that must not be called (a request would fail the test at its end).
    let model = MockServer::start().await;
    let mut config =
        reference_server::Config::with_defaults("127.0.0.1:0".parse().unwrap(), db.dir.clone());
    config.llm_model = Some("claude-test".into());
    config.llm_base_url = Some(model.uri());
    config.anthropic_api_key = Some(reference_server::config::Redacted("sk-ant-test".into()));
    let job = reference_server::knowledge::KnowledgeJob {
        store: store.clone(),
        settings: config.knowledge_settings(Some("anthropic")).unwrap(),
        clock: reference_server::ingest::system_clock(),
    };
    let (_stop, stopping) = tokio::sync::watch::channel(true);
    let ended = job.run(at, Stop::on(stopping)).await.unwrap();
    let RunEnd::Stopped(figures) = ended else {
        panic!("stopped: {ended:?}");
    };
    assert_eq!(figures["stopped"], true, "{figures}");
    assert_eq!(figures["batches"], serde_json::json!([]), "{figures}");
    assert!(model.received_requests().await.unwrap().is_empty());
    db.cleanup().await;
}

mod stopping_export {
    use super::a_stopping_server_stops_the_scheduled_export;
    crate::backend_tests!(a_stopping_server_stops_the_scheduled_export);
}

/// With `KNOWLEDGE_EXPORT_SCHEDULE=hourly` and an export directory, the scheduler writes the
/// resolved threads to a JSON Lines file by itself.
async fn the_scheduler_exports_resolved_threads(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // A resolved thread before the server starts: the job's first slot runs at start.
    let store = db.store().await;
    let at = datetime!(2026-11-30 15:00 UTC);
    crate::helpers::resolved_thread(&store, "PN1|+14155550100", "AC1", "Open on Sunday?", at).await;
    let exports = db.dir.join("scheduled-exports");
    let dir = exports.clone();
    let app = TestApp::spawn_with(&db, move |config| {
        config.knowledge_export_schedule = "hourly".to_owned();
        config.knowledge_export_dir = Some(dir);
    })
    .await;
    let files = TestApp::eventually("the scheduled export", || async {
        let files: Vec<_> = std::fs::read_dir(&exports)
            .ok()?
            .filter_map(|f| f.ok().map(|f| f.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        (!files.is_empty()).then_some(files)
    })
    .await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("Open on Sunday?")
    );
    let operator = app.token(Role::Operator).await;
    let (_, jobs) = app.get("/api/v1/jobs", &operator).await;
    assert!(
        jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job"] == "knowledge-export"),
        "{jobs}"
    );
    app.stop().await;
    db.cleanup().await;
}

mod scheduled_export {
    use super::the_scheduler_exports_resolved_threads;
    crate::backend_tests!(the_scheduler_exports_resolved_threads);
}
