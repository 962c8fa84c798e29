//! The engine, scenario by scenario, on the in-memory store with a fake sender and a manual
//! clock.

mod support;

use futures_util::FutureExt;
use sms_campaigns::{
    CampaignState, CampaignStore, Engine, EngineConfig, MemoryHistory, MemoryStore, RecipientState,
    SkipReason,
};
use support::{Behavior, FakeSender, ManualClock, daily_spec, kept_list, phone};
use time::macros::datetime;

type TestEngine = Engine<MemoryStore, FakeSender, MemoryHistory>;

struct World {
    clock: ManualClock,
    store: MemoryStore,
    sender: FakeSender,
    history: MemoryHistory,
    engine: TestEngine,
}

fn world() -> World {
    let clock = ManualClock::new(datetime!(2026-11-27 09:00 UTC));
    let store = MemoryStore::new();
    let sender = FakeSender::new(&clock);
    let history = MemoryHistory::new();
    let engine = Engine::new(
        store.clone(),
        sender.clone(),
        history.clone(),
        EngineConfig::new("test-worker", "Acme Piers"),
        clock.clock(),
    );
    World {
        clock,
        store,
        sender,
        history,
        engine,
    }
}

impl World {
    /// Moves to the next 10:00 UTC and ticks.
    async fn next_run(&self) -> sms_campaigns::TickReport {
        let now = self.clock.now();
        let mut target = now.replace_time(time::macros::time!(10:00));
        if target <= now {
            target += time::Duration::days(1);
        }
        self.clock.set(target);
        self.engine.tick().await.expect("tick")
    }
}

#[tokio::test]
async fn a_campaign_trickles_in_order_and_completes() {
    let w = world();
    let (list, _) = kept_list(&w.store, 5, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 2, false))
        .await
        .expect("create");
    let summary = w
        .engine
        .activation_summary(&campaign.id)
        .await
        .expect("summary");
    assert_eq!(
        (summary.recipients, summary.to_send, summary.runs_needed),
        (5, 5, 3)
    );
    assert_eq!(summary.first_send_day.as_deref(), Some("2026-11-27"));
    assert_eq!(summary.last_send_day.as_deref(), Some("2026-11-29"));
    w.engine.activate(&campaign.id).await.expect("activate");

    // Nothing before the slot.
    assert!(w.engine.tick().await.expect("tick").runs.is_empty());
    let first = w.next_run().await;
    assert_eq!(first.runs[0].sent, 2);
    // The same slot never runs twice.
    w.clock.advance(time::Duration::minutes(1));
    assert!(w.engine.tick().await.expect("tick").runs.is_empty());
    w.next_run().await;
    let last = w.next_run().await;
    assert_eq!(last.runs[0].sent, 1);
    assert_eq!(last.completed, vec![campaign.id.clone()]);
    let sent = w.sender.sent();
    assert_eq!(
        sent.iter().map(|s| s.to.clone()).collect::<Vec<_>>(),
        (0..5).map(phone).collect::<Vec<_>>(),
        "list order"
    );
    assert_eq!(
        sent[0].text, "A: hi P0 - Acme Piers",
        "the business is named"
    );
    assert_eq!(
        w.store.campaign(&campaign.id).await.expect("get").state,
        CampaignState::Completed
    );
}

#[tokio::test]
async fn stop_mid_campaign_is_honoured_and_prior_contacts_go_to_review() {
    let w = world();
    let (list, _) = kept_list(&w.store, 4, w.clock.now()).await;
    w.history
        .communicated(&phone(1), datetime!(2026-10-01 12:00 UTC));
    let campaign = w
        .engine
        .create(&daily_spec(&list, 10, false))
        .await
        .expect("create");
    let summary = w
        .engine
        .activation_summary(&campaign.id)
        .await
        .expect("summary");
    assert_eq!(summary.skipped_prior_communication, 1);
    w.engine.activate(&campaign.id).await.expect("activate");
    // STOP arrives after activation, before the run.
    w.history.set_opted_out(&phone(2), true);
    // A reply to something else after the campaign started does not put 3 on review.
    w.history
        .communicated(&phone(3), w.clock.now() + time::Duration::minutes(5));
    w.next_run().await;
    let ledger = w
        .store
        .recipients(&campaign.id, None, None, 10)
        .await
        .expect("ledger");
    let states: Vec<_> = ledger.iter().map(|r| (r.state, r.detail.clone())).collect();
    assert_eq!(
        states,
        vec![
            (RecipientState::Sent, None),
            (
                RecipientState::Skipped,
                Some(SkipReason::PriorCommunication.to_detail())
            ),
            (
                RecipientState::Skipped,
                Some(SkipReason::OptedOut.to_detail())
            ),
            (RecipientState::Sent, None),
        ]
    );
    assert_eq!(w.sender.sent().len(), 2);
}

#[tokio::test]
async fn pause_stops_after_the_message_in_flight_and_resume_skips_nobody() {
    let w = world();
    let (list, _) = kept_list(&w.store, 6, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 4, false))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    // Pause from the sender while the second message is in flight.
    let store = w.store.clone();
    let id = campaign.id.clone();
    let mut calls = 0;
    *w.sender.hook.lock().expect("hook") = Some(Box::new(move |_| {
        calls += 1;
        if calls == 2 {
            store
                .set_state(
                    &id,
                    CampaignState::Active,
                    CampaignState::Paused,
                    None,
                    None,
                    time::OffsetDateTime::UNIX_EPOCH,
                )
                .now_or_never()
                .expect("memory store is immediate")
                .expect("pause");
        }
    }));
    let run = w.next_run().await.runs.remove(0);
    assert_eq!((run.sent, run.released), (2, 2));
    *w.sender.hook.lock().expect("hook") = None;
    // Paused: the next slot does nothing.
    assert!(w.next_run().await.runs.is_empty());
    w.engine.resume(&campaign.id).await.expect("resume");
    // Resumed after today's slot: the next run is tomorrow's.
    assert!(w.engine.tick().await.expect("tick").runs.is_empty());
    w.next_run().await;
    let to: Vec<_> = w.sender.sent().into_iter().map(|s| s.to).collect();
    assert_eq!(
        to,
        (0..6).map(phone).collect::<Vec<_>>(),
        "nobody skipped, nobody twice"
    );
}

#[tokio::test]
async fn an_unknown_outcome_is_looked_up_never_resent_blindly() {
    let w = world();
    let (list, _) = kept_list(&w.store, 3, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 3, false))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    w.sender.then(Behavior::Ambiguous(true));
    w.sender.then(Behavior::Ambiguous(false));
    let run = w.next_run().await.runs.remove(0);
    assert_eq!((run.sent, run.ambiguous), (1, 2));
    // Not settled yet: nothing is resolved.
    assert_eq!(w.engine.tick().await.expect("tick").resolved, 0);
    w.clock.advance(time::Duration::minutes(3));
    assert_eq!(w.engine.tick().await.expect("tick").resolved, 2);
    let ledger = w
        .store
        .recipients(&campaign.id, None, None, 10)
        .await
        .expect("ledger");
    assert_eq!(
        ledger[0].state,
        RecipientState::Sent,
        "found: recorded as sent"
    );
    assert_eq!(ledger[0].message_id.as_deref(), Some("AC1"));
    assert_eq!(
        ledger[1].state,
        RecipientState::Pending,
        "not found: goes again"
    );
    w.next_run().await;
    let to: Vec<_> = w.sender.sent().into_iter().map(|s| s.to).collect();
    assert_eq!(to, vec![phone(0), phone(2), phone(1)]);
}

#[tokio::test]
async fn a_worker_that_dies_mid_send_is_recovered_after_its_lease() {
    let w = world();
    let (list, _) = kept_list(&w.store, 3, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 3, false))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    w.sender.then(Behavior::Send);
    w.sender.then(Behavior::Crash(true));
    w.clock.set(datetime!(2026-11-27 10:00 UTC));
    assert!(
        w.engine.tick().now_or_never().is_none(),
        "the worker dies in the second send"
    );
    let ledger = w
        .store
        .recipients(&campaign.id, None, None, 10)
        .await
        .expect("ledger");
    assert_eq!(
        ledger.iter().map(|r| r.state).collect::<Vec<_>>(),
        vec![
            RecipientState::Sent,
            RecipientState::Sending,
            RecipientState::Claimed
        ]
    );
    w.clock.advance(time::Duration::minutes(11));
    let tick = w.engine.tick().await.expect("tick");
    assert_eq!((tick.recovered, tick.resolved), (2, 1));
    let ledger = w
        .store
        .recipients(&campaign.id, None, None, 10)
        .await
        .expect("ledger");
    assert_eq!(
        ledger.iter().map(|r| r.state).collect::<Vec<_>>(),
        vec![
            RecipientState::Sent,
            RecipientState::Sent,
            RecipientState::Pending
        ]
    );
    w.next_run().await;
    assert_eq!(w.sender.sent().len(), 3);
}

#[tokio::test]
async fn a_run_with_too_many_failures_pauses_the_campaign() {
    let w = world();
    let (list, _) = kept_list(&w.store, 8, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 4, false))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    for behavior in [
        Behavior::Fail,
        Behavior::Send,
        Behavior::Fail,
        Behavior::Fail,
    ] {
        w.sender.then(behavior);
    }
    let run = w.next_run().await.runs.remove(0);
    assert!(
        run.auto_paused
            .as_deref()
            .is_some_and(|r| r.contains("3 of 4")),
        "{run:?}"
    );
    let stored = w.store.campaign(&campaign.id).await.expect("get");
    assert_eq!(stored.state, CampaignState::Paused);
    assert!(stored.state_reason.is_some());
    let report = w.store.report(&campaign.id).await.expect("report");
    assert_eq!(
        (report.total.failed, report.total.sent, report.total.pending),
        (3, 1, 4)
    );
}

#[tokio::test]
async fn ab_halves_are_stable_and_reported_by_variant() {
    let w = world();
    let (list, _) = kept_list(&w.store, 5, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 2, true))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    w.next_run().await;
    w.engine.pause(&campaign.id, None).await.expect("pause");
    w.next_run().await;
    w.engine.resume(&campaign.id).await.expect("resume");
    for _ in 0..3 {
        w.next_run().await;
    }
    let texts: Vec<String> = w.sender.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts.len(), 5);
    assert!(texts[..3].iter().all(|t| t.starts_with("A:")), "{texts:?}");
    assert!(texts[3..].iter().all(|t| t.starts_with("B:")), "{texts:?}");
    let report = w.store.report(&campaign.id).await.expect("report");
    assert_eq!(
        (report.by_variant["A"].sent, report.by_variant["B"].sent),
        (3, 2)
    );
}

#[tokio::test]
async fn activation_needs_a_validated_audience() {
    let w = world();
    let list = w
        .store
        .create_list("Raw", w.clock.now())
        .await
        .expect("list");
    let (contact, _) = w
        .store
        .upsert_contact(
            sms_campaigns::NewContact {
                phone: Some(phone(1)),
                ..Default::default()
            },
            w.clock.now(),
        )
        .await
        .expect("contact");
    w.store
        .add_member(&list.id, &contact.id, w.clock.now())
        .await
        .expect("member");
    let campaign = w
        .engine
        .create(&daily_spec(&list.id, 2, false))
        .await
        .expect("create");
    let error = w
        .engine
        .activate(&campaign.id)
        .await
        .expect_err("unvalidated");
    assert!(error.to_string().contains("not validated"), "{error}");
    // Preview names the missing field instead of sending a hole.
    let preview = w
        .engine
        .preview(&campaign.spec, &contact.id)
        .await
        .expect("preview");
    assert_eq!(preview[0].missing_field.as_deref(), Some("first_name"));
    // Bad input is refused with the field named.
    let mut bad = campaign.spec.clone();
    bad.message_a = " ".into();
    assert!(
        w.engine
            .create(&bad)
            .await
            .expect_err("blank")
            .to_string()
            .contains("message_a")
    );
    // Invalid transitions are refused.
    w.engine.cancel(&campaign.id).await.expect("cancel");
    assert!(matches!(
        w.engine.resume(&campaign.id).await,
        Err(sms_campaigns::Error::Transition { .. })
    ));
}

#[tokio::test]
async fn a_deferred_send_goes_back_to_pending_and_a_run_sending_nothing_pauses() {
    let w = world();
    let (list, _) = kept_list(&w.store, 4, w.clock.now()).await;
    let campaign = w
        .engine
        .create(&daily_spec(&list, 4, false))
        .await
        .expect("create");
    w.engine.activate(&campaign.id).await.expect("activate");
    w.sender.then(Behavior::Send);
    w.sender.then(Behavior::Defer);
    let run = w.next_run().await.runs.remove(0);
    assert_eq!(
        (
            run.sent,
            run.deferred,
            run.released,
            run.auto_paused.is_some()
        ),
        (1, 1, 2, false)
    );
    w.sender.then(Behavior::Defer);
    let run = w.next_run().await.runs.remove(0);
    assert_eq!((run.sent, run.deferred), (0, 1));
    assert!(
        run.auto_paused
            .as_deref()
            .is_some_and(|r| r.contains("nothing could be sent")),
        "{run:?}"
    );
    w.engine.resume(&campaign.id).await.expect("resume");
    w.next_run().await;
    let to: Vec<_> = w.sender.sent().into_iter().map(|s| s.to).collect();
    assert_eq!(
        to,
        (0..4).map(phone).collect::<Vec<_>>(),
        "in order, once each"
    );
}

#[tokio::test]
async fn messages_longer_than_a_message_holds_are_refused_or_skipped() {
    let w = world();
    let (list, _) = kept_list(&w.store, 3, w.clock.now()).await;
    // A spec whose text, signed, cannot fit whatever the fields hold: refused up front.
    let mut spec = daily_spec(&list, 10, false);
    spec.opt_out_text = Some(format!(
        "Reply STOP to opt out.{}",
        " ".repeat(10) + &"x".repeat(1590)
    ));
    let refused = w.engine.create(&spec).await.expect_err("too long");
    assert!(refused.to_string().contains("at least"), "{refused}");
    // One contact's field makes its message too long: that recipient alone is skipped, said
    // so in the summary and the ledger, and never sent.
    let at = w.clock.now();
    let list = w
        .store
        .create_list("Long names", at)
        .await
        .expect("list")
        .id;
    for i in 0..3u32 {
        let name = if i == 1 {
            "P".repeat(1590)
        } else {
            format!("P{i}")
        };
        let (contact, _) = w
            .store
            .upsert_contact(
                sms_campaigns::NewContact {
                    phone: Some(phone(10 + i)),
                    first_name: Some(name),
                    ..sms_campaigns::NewContact::default()
                },
                at,
            )
            .await
            .expect("contact");
        w.store
            .add_member(&list, &contact.id, at)
            .await
            .expect("member");
        w.store
            .set_member_status(
                &list,
                u64::from(i),
                sms_campaigns::MemberStatus::Kept,
                None,
                None,
            )
            .await
            .expect("kept");
    }
    let campaign = w
        .engine
        .create(&daily_spec(&list, 10, false))
        .await
        .expect("create");
    let summary = w
        .engine
        .activation_summary(&campaign.id)
        .await
        .expect("summary");
    assert_eq!((summary.skipped_too_long, summary.to_send), (1, 2));
    w.engine.activate(&campaign.id).await.expect("activate");
    w.next_run().await;
    let ledger = w
        .store
        .recipients(&campaign.id, None, None, 10)
        .await
        .expect("ledger");
    let states: Vec<_> = ledger.iter().map(|r| (r.state, r.detail.clone())).collect();
    // "A: hi " (6), the name (1,590), " - Acme Piers" (13).
    let too_long = SkipReason::TooLong(1_609);
    assert_eq!(
        states,
        vec![
            (RecipientState::Sent, None),
            (RecipientState::Skipped, Some(too_long.to_detail())),
            (RecipientState::Sent, None),
        ]
    );
    assert_eq!(
        SkipReason::from_detail(&too_long.to_detail()),
        Some(too_long)
    );
    assert_eq!(w.sender.sent().len(), 2);
    let report = w.store.report(&campaign.id).await.expect("report");
    assert_eq!(
        report.skipped_by_reason.get("too_long"),
        Some(&1),
        "{report:?}"
    );
    // The preview says so for that contact.
    let rendered = w
        .engine
        .preview(&campaign.spec, &ledger[1].contact_id)
        .await
        .expect("preview");
    assert!(rendered[0].too_long, "{rendered:?}");
}
