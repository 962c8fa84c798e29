//! Events project into normalized records, and every arrival order converges to the same
//! records, on every backend.

use openphone_webhooks::Event;
use reference_server::projection::changes;
use reference_server::records::conformance::{call_events, contact_events};
use reference_server::store::{NewDelivery, Recorded, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

/// Stores an event raw only, as ingestion did before the projection existed.
async fn store_raw(store: &Store, key: &str, payload: &Value, received_at: OffsetDateTime) {
    store
        .record_delivery(&NewDelivery {
            delivery_key: key.to_owned(),
            scheme: "legacy",
            event_id: None,
            event_type: None,
            parse_error: None,
            signed_at: received_at,
            received_at,
            changes: Vec::new(),
            body: payload.to_string().into_bytes(),
        })
        .await
        .unwrap();
}

async fn replay_projects_the_raw_log_idempotently(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let old = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let new = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    for (n, event) in call_events("ACold").iter().enumerate() {
        store_raw(&store, &format!("old{n}"), event, old).await;
    }
    store_raw(&store, "new0", &contact_events("CTnew")[0], new).await;
    store_raw(&store, "junk", &json!("not an event"), new).await;

    let dry = store.replay(None, true, &mut |_| {}).await.unwrap();
    assert_eq!((dry.deliveries, dry.projected, dry.unparsed), (7, 6, 1));
    let calls = dry.tables.iter().find(|t| t.table == "calls").unwrap();
    assert_eq!(
        (calls.before, calls.after, calls.differing),
        (0, 1, Some((1, 0))),
        "the dry run says one call would appear"
    );
    assert!(
        store.call("ACold").await.unwrap().is_none(),
        "and changes nothing"
    );

    let since = store.replay(Some(new), false, &mut |_| {}).await.unwrap();
    assert_eq!(
        (since.deliveries, since.projected),
        (2, 1),
        "only what arrived since"
    );
    assert!(store.call("ACold").await.unwrap().is_none());
    assert_eq!(
        store.contacts_by_phone("+15555550100").await.unwrap(),
        ["CTnew"]
    );

    let full = store.replay(None, false, &mut |_| {}).await.unwrap();
    assert_eq!(
        store
            .call("ACold")
            .await
            .unwrap()
            .unwrap()
            .outcome
            .as_deref(),
        Some("answered")
    );
    let dry = store.replay(None, true, &mut |_| {}).await.unwrap();
    assert!(
        dry.tables.iter().all(|t| t.differing == Some((0, 0))),
        "a dry run after a replay finds no value to change: {dry:?}"
    );
    let again = store.replay(None, false, &mut |_| {}).await.unwrap();
    assert!(
        again.tables.iter().all(|t| t.before == t.after),
        "idempotent: {again:?}"
    );
    assert_eq!(
        full.tables.iter().map(|t| t.after).collect::<Vec<_>>(),
        again.tables.iter().map(|t| t.after).collect::<Vec<_>>()
    );
    db.cleanup().await;
}

/// Runs `work` on a thread with a runtime of its own: a replay's progress callback is not
/// async, and waits on it there while the replay holds this test's runtime.
fn on_a_thread_of_its_own<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
}

/// A replay commits page by page (what it projected is there for everyone after each page),
/// reports progress after each, and its dry run counts rows whose values would change. Run as
/// a user would, through the binary, too.
async fn replay_commits_page_by_page_and_counts_changed_values(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let deliveries = reference_server::store::REPLAY_PAGE + 1;
    for n in 0..deliveries {
        let event = json!({"id": format!("EVpage{n}"), "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T12:00:00Z", "type": "message.received", "data": {"object": {
            "id": format!("ACpage{n}"), "object": "message", "from": "+15550001111",
            "to": ["+15550000001"], "direction": "incoming", "text": format!("photo {n}"),
            "status": "received", "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
        store_raw(&store, &format!("page{n}"), &event, at).await;
    }

    // After each page, another connection counts the messages.
    let url = db.url.clone();
    let mut seen = Vec::new();
    let report = store
        .replay(None, false, &mut |so_far| {
            let url = url.clone();
            let visible = on_a_thread_of_its_own(async move {
                crate::helpers::count_on(&url, "SELECT COUNT(*) FROM messages").await
            })
            .join()
            .unwrap();
            seen.push((so_far.deliveries, visible));
        })
        .await
        .unwrap();
    let page = u64::try_from(reference_server::store::REPLAY_PAGE).unwrap();
    assert_eq!(
        seen,
        [(page, page as i64), (page + 1, page as i64 + 1)],
        "committed after each page"
    );
    assert_eq!(report.projected, page + 1);

    // A value ingestion or an older projection got wrong: the dry run finds that row only.
    db.execute("UPDATE messages SET status = NULL, status_rank = 0 WHERE id = 'ACpage7'")
        .await;
    // Meanwhile another connection writes a message: PostgreSQL's dry run reads one snapshot
    // and does not count it; SQLite's holds the write lock, so the write waits for it.
    let mut outside = None;
    let dry = store
        .replay(None, true, &mut |_| {
            if outside.is_none() {
                let url = url.clone();
                outside = Some(on_a_thread_of_its_own(async move {
                    crate::helpers::execute_on(
                        &url,
                        "INSERT INTO messages (id) VALUES ('ACoutside')",
                    )
                    .await;
                }));
                // Time for the write to commit, where nothing holds it.
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        })
        .await
        .unwrap();
    outside.unwrap().join().unwrap();
    for table in &dry.tables {
        let expected = if table.table == "messages" {
            (1, 1)
        } else {
            (0, 0)
        };
        assert_eq!(table.differing, Some(expected), "{table:?}");
        assert_eq!(table.before, table.after, "{table:?}");
    }
    assert!(store.message("ACoutside").await.unwrap().is_some());
    db.execute("DELETE FROM messages WHERE id = 'ACoutside'")
        .await;
    assert!(
        store
            .message("ACpage7")
            .await
            .unwrap()
            .unwrap()
            .status
            .is_none()
    );

    let replay = |args: &[&str]| crate::cli::run(&db, &[&["replay"], args].concat());
    let (ok, out, stderr) = replay(&["--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(
        out.contains(&format!("dry run over {} raw deliveries", page + 1)),
        "{out}"
    );
    let messages = out
        .lines()
        .find(|line| line.trim_start().starts_with("messages "))
        .unwrap();
    assert_eq!(
        messages.split_whitespace().collect::<Vec<_>>(),
        ["messages", "501", "->", "501", "1", "1"],
        "{out}"
    );
    let (ok, _, stderr) = replay(&["--since", "yesterday"]);
    assert!(!ok);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
    // Every delivery was received at 2027-01-15T08:00:00Z.
    let (ok, out, stderr) = replay(&["--since", "2027-01-15T08:00:01Z"]);
    assert!(ok, "{stderr}");
    assert!(out.contains("replayed 0 raw deliveries"), "{out}");
    assert!(
        store
            .message("ACpage7")
            .await
            .unwrap()
            .unwrap()
            .status
            .is_none()
    );
    let (ok, out, stderr) = replay(&[]);
    assert!(ok, "{stderr}");
    assert!(
        out.contains(&format!("replayed {} raw deliveries", page + 1)),
        "{out}"
    );
    assert_eq!(
        store
            .message("ACpage7")
            .await
            .unwrap()
            .unwrap()
            .status
            .as_deref(),
        Some("received"),
        "the replay set it right"
    );
    db.cleanup().await;
}

/// A recording's details converge whichever event brings them first: a call event listing
/// the recording without type or length, and the recording's own event with both.
async fn a_recording_s_details_converge_in_any_order(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let event = |call: &str, kind: &str, media: Value| {
        let body = json!({"id": format!("EV{call}{kind}"), "object": "event", "apiVersion": "v3",
            "createdAt": "2026-04-13T12:05:00Z", "type": kind, "data": {"object": {"id": call,
            "object": "call", "from": "+15550001111", "to": "+15550000001", "direction": "incoming",
            "media": media, "voicemail": null, "status": "completed",
            "createdAt": "2026-04-13T12:00:00Z", "answeredAt": "2026-04-13T12:00:05Z",
            "completedAt": "2026-04-13T12:00:35Z", "duration": 30, "userId": "US1",
            "phoneNumberId": "PN1"}}});
        changes(
            &Event::parse(body.to_string().as_bytes()).unwrap(),
            &reference_server::projection::OwnNumbers::default(),
        )
    };
    let url = "https://storage.example/rec.mp3";
    for (call, call_first) in [("CArec1", true), ("CArec2", false)] {
        let bare = event(call, "call.completed", json!([{"url": url}]));
        let full = event(
            call,
            "call.recording.completed",
            json!([{"url": url, "type": "audio/mpeg", "duration": 30}]),
        );
        let order = if call_first {
            [bare, full]
        } else {
            [full, bare]
        };
        for changes in order {
            store.apply_changes(&changes).await.unwrap();
        }
    }
    assert_eq!(
        crate::helpers::count_on(
            &db.url,
            "SELECT COUNT(*) FROM call_recordings WHERE content_type = 'audio/mpeg' AND duration_s = 30"
        )
        .await,
        2,
        "both orders keep the type and the length"
    );
    db.cleanup().await;
}

/// Two attachments whose URLs store alike (a NUL is kept as U+FFFD) are one media job, also in
/// a batch: PostgreSQL refuses a statement that updates a row twice.
async fn attachments_that_store_alike_are_one_job_in_a_batch(backend: Backend) {
    use reference_server::media::MediaJobs;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let event = json!({"id": "EVnul", "object": "event", "apiVersion": "v4",
        "createdAt": "2026-04-13T12:00:00Z", "type": "message.received", "data": {"object": {
        "id": "ACnul", "object": "message", "from": "+15550001111", "to": ["+15550000001"],
        "direction": "incoming", "text": "two", "status": "received",
        "media": [{"url": "https://storage.example/a\0", "type": "image/jpeg"},
                  {"url": "https://storage.example/a\u{FFFD}", "type": null}],
        "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
    let outcomes = store
        .record_batch(&[new_delivery("nul", &event)])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Recorded::New(_)));
    let jobs = store.media_of("ACnul").await.unwrap();
    assert_eq!(
        jobs.iter().map(|job| job.url.as_str()).collect::<Vec<_>>(),
        ["https://storage.example/a\u{FFFD}"]
    );
    db.cleanup().await;
}

fn new_delivery(key: &str, payload: &Value) -> NewDelivery {
    let body = payload.to_string().into_bytes();
    let event = Event::parse(&body).unwrap();
    NewDelivery {
        delivery_key: key.to_owned(),
        scheme: "legacy",
        event_id: Some(event.id.to_string()),
        event_type: Some(event.event_type.to_string()),
        parse_error: None,
        signed_at: OffsetDateTime::UNIX_EPOCH,
        received_at: OffsetDateTime::UNIX_EPOCH,
        changes: changes(&event, &Default::default()),
        body,
    }
}

/// One batch (one statement per table on PostgreSQL, with repeated keys in rounds) projects
/// what the same events give one at a time.
async fn a_batch_projects_like_one_delivery_at_a_time(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let one_by_one = db.store().await;
    let other = TestDb::new(backend).await.unwrap();
    let batched = other.store().await;
    let mut events = call_events("ACb");
    events.extend(call_events("ACc"));
    events.extend(contact_events("CTb"));
    let mut deliveries: Vec<NewDelivery> = events
        .iter()
        .enumerate()
        .map(|(n, event)| new_delivery(&format!("k{n}"), event))
        .collect();
    // A redelivery inside the batch, and one of an event stored before.
    deliveries.push(new_delivery("k3", &events[3]));
    for delivery in &deliveries {
        one_by_one.record_delivery(delivery).await.unwrap();
    }
    batched.record_delivery(&deliveries[0]).await.unwrap();
    let outcomes = batched.record_batch(&deliveries).await.unwrap();
    let new = outcomes
        .iter()
        .filter(|o| matches!(o, Recorded::New(_)))
        .count();
    assert_eq!(new, deliveries.len() - 2, "{outcomes:?}");
    assert_eq!(
        batched.delivery_count().await.unwrap(),
        one_by_one.delivery_count().await.unwrap()
    );
    for call in ["ACb", "ACc"] {
        let expected = one_by_one.call(call).await.unwrap().unwrap();
        assert_eq!(batched.call(call).await.unwrap().unwrap(), expected);
        assert_eq!(expected.outcome.as_deref(), Some("answered"));
    }
    for phone in ["+15555550100", "+15555550199"] {
        assert_eq!(
            batched.contacts_by_phone(phone).await.unwrap(),
            one_by_one.contacts_by_phone(phone).await.unwrap()
        );
    }
    let tables =
        |store: Store| async move { store.replay(None, true, &mut |_| {}).await.unwrap().tables };
    assert_eq!(tables(batched).await, tables(one_by_one).await);
    other.cleanup().await;
    db.cleanup().await;
}

/// A campaign whose one recipient, `phone`, was sent `message_id` at 2026-12-01 16:00 UTC.
async fn sent_campaign(store: &Store, phone: &str, message_id: &str) -> sms_campaigns::CampaignId {
    use sms_campaigns::{
        CampaignSpec, CampaignStore, NewContact, NewRecipient, Outcome, Schedule, Weekday,
    };
    let at = time::macros::datetime!(2026-12-01 16:00 UTC);
    let phone = openphone_types::E164::parse(phone).unwrap();
    let (contact, _) = store
        .upsert_contact(
            NewContact {
                phone: Some(phone.clone()),
                ..NewContact::default()
            },
            at,
        )
        .await
        .unwrap();
    let list = store.create_list("Audience", at).await.unwrap();
    store.add_member(&list.id, &contact.id, at).await.unwrap();
    let spec = CampaignSpec {
        name: "Inspection".to_owned(),
        message_a: "Hi".to_owned(),
        message_b: None,
        list_id: list.id,
        sender: openphone_types::E164::parse("+14155559000").unwrap(),
        schedule: Schedule {
            days: vec![Weekday::Tue],
            send_time: "10:00".to_owned(),
            timezone: "America/Chicago".to_owned(),
            per_run: 1,
        },
        opt_out_text: None,
    };
    let campaign = store.create_campaign(&spec, at).await.unwrap();
    let recipients = vec![NewRecipient {
        contact_id: contact.id,
        phone,
    }];
    store
        .activate(&campaign.id, recipients, None, at)
        .await
        .unwrap();
    let lease = at.unix_timestamp() + 600;
    store
        .claim(&campaign.id, 1, 1, "w", lease, at)
        .await
        .unwrap();
    assert!(
        store
            .begin_send(&campaign.id, 0, "w", "Hi", lease, at)
            .await
            .unwrap()
    );
    let sent = Outcome::Sent {
        message_id: message_id.to_owned(),
    };
    assert!(store.finish(&campaign.id, 0, "w", &sent, at).await.unwrap());
    campaign.id
}

/// The delivery report of a campaign message and the recipient's STOP, in one batch (on
/// PostgreSQL, one statement would apply only one of the two updates to the recipient): the
/// report counts the delivery, the reply and the opt-out. A reply sent before the campaign
/// message is not counted, and a redelivered batch changes nothing.
async fn campaign_reports_in_one_batch_all_count(backend: Backend) {
    use sms_campaigns::CampaignStore;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let id = sent_campaign(&store, "+14155550300", "MSGc").await;
    let message = |id: &str, direction: &str, text: &str, status: &str, at: &str| {
        let (from, to) = if direction == "incoming" {
            ("+14155550300", "+14155559000")
        } else {
            ("+14155559000", "+14155550300")
        };
        json!({"id": format!("EV{id}{status}"), "object": "event", "apiVersion": "v4",
            "createdAt": at, "type": if direction == "incoming" { "message.received" } else { "message.delivered" },
            "data": {"object": {"id": id, "object": "message", "from": from, "to": [to],
            "direction": direction, "text": text, "status": status, "createdAt": at,
            "phoneNumberId": "PN1"}}})
    };
    let before = new_delivery(
        "before",
        &message(
            "MSGa",
            "incoming",
            "Hello?",
            "received",
            "2026-11-30T12:00:00Z",
        ),
    );
    store.record_delivery(&before).await.unwrap();
    let deliveries = vec![
        new_delivery(
            "delivered",
            &message(
                "MSGc",
                "outgoing",
                "Hi",
                "delivered",
                "2026-12-01T16:00:05Z",
            ),
        ),
        new_delivery(
            "stop",
            &message(
                "MSGs",
                "incoming",
                " stop ",
                "received",
                "2026-12-01T16:05:00Z",
            ),
        ),
    ];
    let counts = |report: sms_campaigns::Report| {
        let total = report.total;
        (total.sent, total.delivered, total.replied, total.opted_out)
    };
    let outcomes = store.record_batch(&deliveries).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Recorded::New(_))));
    assert_eq!(counts(store.report(&id).await.unwrap()), (1, 1, 1, 1));
    let again = store.record_batch(&deliveries).await.unwrap();
    assert!(again.iter().all(|o| matches!(o, Recorded::Duplicate)));
    assert_eq!(counts(store.report(&id).await.unwrap()), (1, 1, 1, 1));

    // Delivery wins in either order: a late failure does not undo it, and it replaces a
    // failure reported first.
    let report = |id: &str, status: &str, n: u32| {
        let mut event = message(id, "outgoing", "Hi", status, "2026-12-01T16:00:05Z");
        event["id"] = json!(format!("EVr{n}"));
        event["type"] = json!(format!("message.{status}"));
        new_delivery(&format!("report-{n}"), &event)
    };
    store
        .record_delivery(&report("MSGc", "failed", 1))
        .await
        .unwrap();
    assert_eq!(counts(store.report(&id).await.unwrap()), (1, 1, 1, 1));
    let other = sent_campaign(&store, "+14155550301", "MSGd").await;
    store
        .record_delivery(&report("MSGd", "failed", 2))
        .await
        .unwrap();
    assert_eq!(counts(store.report(&other).await.unwrap()), (0, 0, 0, 0));
    store
        .record_delivery(&report("MSGd", "delivered", 3))
        .await
        .unwrap();
    assert_eq!(counts(store.report(&other).await.unwrap()), (1, 1, 0, 0));
    db.cleanup().await;
}

/// The normalized records on this backend pass the suite the memory records pass (see
/// `reference_server::records`): every order of a call's events, message statuses, contacts,
/// conversations.
async fn records_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::records::conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// The conversation reads on this backend (list, search, timeline, activity, read marks)
/// pass the suite the memory records pass (see `reference_server::reads`).
async fn reads_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::reads::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    records_pass_the_conformance_suite,
    reads_pass_the_conformance_suite,
    campaign_reports_in_one_batch_all_count,
    a_batch_projects_like_one_delivery_at_a_time,
    replay_projects_the_raw_log_idempotently,
    replay_commits_page_by_page_and_counts_changed_values,
    a_recording_s_details_converge_in_any_order,
    attachments_that_store_alike_are_one_job_in_a_batch,
    a_message_s_media_keep_the_message_s_order,
);

/// A message's photos are listed in the order the message gives them, also when a batch
/// writes them as a set: PostgreSQL's batch numbers its rows in key order (so that concurrent
/// batches lock them in one order), here by URL, so the list keeps each one's position.
async fn a_message_s_media_keep_the_message_s_order(backend: Backend) {
    use reference_server::media::MediaJobs;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let urls = [
        "https://storage.example/z.jpg",
        "https://storage.example/a.jpg",
        "https://storage.example/m.jpg",
    ];
    let event = json!({"id": "EVph", "object": "event", "apiVersion": "v4",
        "createdAt": "2026-04-13T12:00:00Z", "type": "message.received", "data": {"object": {
        "id": "ACph", "object": "message", "from": "+15550001111", "to": ["+15550000001"],
        "direction": "incoming", "text": "cracks", "status": "received",
        "media": urls.iter().map(|url| json!({"url": url, "type": "image/jpeg"})).collect::<Vec<_>>(),
        "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
    let other = json!({"id": "EVph2", "object": "event", "apiVersion": "v4",
        "createdAt": "2026-04-13T12:00:01Z", "type": "message.received", "data": {"object": {
        "id": "ACpa", "object": "message", "from": "+15550001112", "to": ["+15550000001"],
        "direction": "incoming", "text": "more", "status": "received",
        "media": [{"url": "https://storage.example/0.jpg", "type": "image/jpeg"}],
        "createdAt": "2026-04-13T12:00:01Z", "phoneNumberId": "PN1"}}});
    let outcomes = store
        .record_batch(&[new_delivery("ph", &event), new_delivery("pa", &other)])
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Recorded::New(_))));
    let media = store.media_of("ACph").await.unwrap();
    assert_eq!(
        media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
        urls
    );
    db.cleanup().await;
}
