//! The conformance suite every [`CampaignStore`] must pass: `MemoryStore` runs it in this
//! crate's tests, SQL stores in theirs.
//!
//! Call [`run`] with a fresh, empty store; it panics (with the failing check) on the first
//! divergence.

use openphone_types::E164;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{
    CampaignSpec, CampaignState, CampaignStore, Error, LineType, ListId, MemberStatus, NewContact,
    NewRecipient, Outcome, RecipientState, Schedule, SkipReason, Validation, Variant, Weekday,
};

const T0: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

fn phone(n: u32) -> E164 {
    E164::parse(&format!("+1415555{n:04}")).expect("valid test number")
}

fn contact(n: u32, first_name: &str) -> NewContact {
    NewContact {
        phone: Some(phone(n)),
        first_name: Some(first_name.to_owned()),
        ..NewContact::default()
    }
}

fn spec(list: &ListId, message_b: Option<&str>) -> CampaignSpec {
    CampaignSpec {
        name: "Spring inspection".to_owned(),
        message_a: "Hi {{first_name|there}}".to_owned(),
        message_b: message_b.map(str::to_owned),
        list_id: list.clone(),
        sender: phone(9000),
        schedule: Schedule {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            send_time: "10:00".to_owned(),
            timezone: "America/Chicago".to_owned(),
            per_run: 2,
        },
        opt_out_text: Some("Reply STOP to opt out.".to_owned()),
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run<S: CampaignStore>(store: S) {
    contacts_and_lists(&store).await;
    campaigns_and_transitions(&store).await;
    ledger_claims_and_outcomes(&store).await;
    racing_claims(&store).await;
}

async fn contacts_and_lists<S: CampaignStore>(store: &S) {
    let (ana, created) = store
        .upsert_contact(contact(1, "Ana"), T0)
        .await
        .expect("create");
    assert!(created);
    let (again, created) = store
        .upsert_contact(contact(1, "Someone else"), T0)
        .await
        .expect("upsert");
    assert!(!created, "one contact per number");
    assert_eq!(again.id, ana.id);
    assert_eq!(
        again.first_name.as_deref(),
        Some("Ana"),
        "an upsert keeps the stored contact"
    );
    assert!(matches!(
        store.upsert_contact(NewContact::default(), T0).await,
        Err(Error::Invalid(_))
    ));
    let mut attributes = NewContact {
        phone: Some(phone(2)),
        ..NewContact::default()
    };
    attributes
        .attributes
        .insert("job".into(), "pier repair".into());
    let (ben, _) = store.upsert_contact(attributes, T0).await.expect("create");
    assert_eq!(
        store.contact(&ben.id).await.expect("get").attributes["job"],
        "pier repair"
    );
    assert_eq!(
        store
            .contact_by_phone(&phone(2))
            .await
            .expect("by phone")
            .map(|c| c.id),
        Some(ben.id.clone())
    );
    assert_eq!(
        store.contact_by_phone(&phone(3)).await.expect("by phone"),
        None
    );
    assert!(matches!(
        store.contact(&crate::ContactId("nope".into())).await,
        Err(Error::NotFound(_))
    ));

    let list = store.create_list("Customers", T0).await.expect("list");
    assert!(store.add_member(&list.id, &ana.id, T0).await.expect("add"));
    assert!(store.add_member(&list.id, &ben.id, T0).await.expect("add"));
    assert!(
        !store
            .add_member(&list.id, &ana.id, T0)
            .await
            .expect("add again"),
        "a contact is in a list once"
    );
    assert_eq!(store.list(&list.id).await.expect("list").members, 2);
    let members = store
        .members(&list.id, None, None, 10)
        .await
        .expect("members");
    assert_eq!(
        members.iter().map(|m| m.position).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        members[0].contact.id, ana.id,
        "list order is insertion order"
    );
    assert!(
        members
            .iter()
            .all(|m| m.status == MemberStatus::Unvalidated)
    );
    let page = store
        .members(&list.id, None, Some(0), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].contact.id, ben.id);
    store
        .set_member_status(
            &list.id,
            1,
            MemberStatus::Excluded,
            Some(LineType::Landline),
            Some("landline".into()),
        )
        .await
        .expect("status");
    let excluded = store
        .members(&list.id, Some(MemberStatus::Excluded), None, 10)
        .await
        .expect("filter");
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0].line_type, Some(LineType::Landline));
    assert_eq!(excluded[0].note.as_deref(), Some("landline"));
    assert!(matches!(
        store.list(&ListId("nope".into())).await,
        Err(Error::NotFound(_))
    ));

    assert_eq!(
        store.cached_validation(&phone(1)).await.expect("cache"),
        None
    );
    let validation = Validation {
        valid: true,
        line_type: LineType::Mobile,
        carrier: Some("Carrier".into()),
        source: "numverify".into(),
    };
    store
        .cache_validation(&phone(1), &validation, T0)
        .await
        .expect("cache");
    store
        .cache_validation(&phone(1), &validation, T0)
        .await
        .expect("cache again");
    assert_eq!(
        store.cached_validation(&phone(1)).await.expect("cache"),
        Some(validation)
    );
}

/// A list of `n` kept members, numbers from `first`.
async fn kept_list<S: CampaignStore>(store: &S, first: u32, n: u32) -> (ListId, Vec<NewRecipient>) {
    let list = store.create_list("Audience", T0).await.expect("list");
    let mut recipients = Vec::new();
    for i in 0..n {
        let (contact, _) = store
            .upsert_contact(contact(first + i, "Pat"), T0)
            .await
            .expect("contact");
        store
            .add_member(&list.id, &contact.id, T0)
            .await
            .expect("member");
        recipients.push(NewRecipient {
            contact_id: contact.id,
            phone: contact.phone,
        });
    }
    (list.id, recipients)
}

async fn campaigns_and_transitions<S: CampaignStore>(store: &S) {
    let (list, recipients) = kept_list(store, 100, 3).await;
    let draft = store
        .create_campaign(&spec(&list, None), T0)
        .await
        .expect("create");
    assert_eq!(draft.state, CampaignState::Draft);
    assert_eq!(store.campaign(&draft.id).await.expect("get"), draft);
    let mut changed = spec(&list, Some("B text"));
    changed.name = "Renamed".into();
    let updated = store
        .update_draft(&draft.id, &changed, T0)
        .await
        .expect("update");
    assert_eq!(updated.spec.name, "Renamed");
    assert!(matches!(
        store
            .create_campaign(&spec(&ListId("nope".into()), None), T0)
            .await,
        Err(Error::NotFound(_))
    ));

    let active = store
        .activate(&draft.id, recipients.clone(), Some(5), T0)
        .await
        .expect("activate");
    assert_eq!(
        (
            active.state,
            active.recipients,
            active.last_slot,
            active.started_at
        ),
        (CampaignState::Active, 3, Some(5), Some(T0))
    );
    assert!(matches!(
        store.activate(&draft.id, recipients, None, T0).await,
        Err(Error::Conflict(_))
    ));
    assert!(
        matches!(
            store.update_draft(&draft.id, &changed, T0).await,
            Err(Error::Conflict(_))
        ),
        "only drafts are edited"
    );
    let ledger = store
        .recipients(&draft.id, None, None, 10)
        .await
        .expect("ledger");
    assert_eq!(
        ledger.iter().map(|r| r.variant).collect::<Vec<_>>(),
        vec![Variant::A, Variant::A, Variant::B],
        "first half A"
    );
    assert!(ledger.iter().all(|r| r.state == RecipientState::Pending));

    assert!(matches!(
        store
            .set_state(
                &draft.id,
                CampaignState::Paused,
                CampaignState::Active,
                None,
                None,
                T0
            )
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .set_state(
                &draft.id,
                CampaignState::Active,
                CampaignState::Draft,
                None,
                None,
                T0
            )
            .await,
        Err(Error::Transition { .. })
    ));
    let paused = store
        .set_state(
            &draft.id,
            CampaignState::Active,
            CampaignState::Paused,
            Some("lunch".into()),
            None,
            T0,
        )
        .await
        .expect("pause");
    assert_eq!(
        (
            paused.state,
            paused.state_reason.as_deref(),
            paused.last_slot
        ),
        (CampaignState::Paused, Some("lunch"), Some(5))
    );
    assert_eq!(
        store
            .campaigns(Some(CampaignState::Paused))
            .await
            .expect("by state")
            .len(),
        1
    );
    let cancelled = store
        .set_state(
            &draft.id,
            CampaignState::Paused,
            CampaignState::Cancelled,
            None,
            None,
            T0,
        )
        .await
        .expect("cancel");
    assert_eq!(cancelled.state, CampaignState::Cancelled);
    let ledger = store
        .recipients(&draft.id, None, None, 10)
        .await
        .expect("ledger");
    assert!(
        ledger.iter().all(|r| r.state == RecipientState::Skipped && r.detail.as_deref() == Some("cancelled")),
        "cancelling skips the pending with a reason"
    );
}

async fn ledger_claims_and_outcomes<S: CampaignStore>(store: &S) {
    let (list, recipients) = kept_list(store, 200, 5).await;
    let campaign = store
        .create_campaign(&spec(&list, None), T0)
        .await
        .expect("create");
    let id = campaign.id.clone();
    store
        .activate(&id, recipients, None, T0)
        .await
        .expect("activate");
    let lease = T0.unix_timestamp() + 600;

    let first = store
        .claim(&id, 1000, 2, "w1", lease, T0)
        .await
        .expect("claim");
    assert_eq!(
        first.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(
        first
            .iter()
            .all(|r| r.state == RecipientState::Claimed && r.worker.as_deref() == Some("w1"))
    );
    assert!(
        store
            .claim(&id, 1000, 2, "w2", lease, T0)
            .await
            .expect("same slot")
            .is_empty(),
        "a slot runs once"
    );
    assert!(
        store
            .claim(&id, 999, 2, "w2", lease, T0)
            .await
            .expect("older slot")
            .is_empty()
    );
    assert_eq!(
        store.campaign(&id).await.expect("get").last_slot,
        Some(1000)
    );

    // Position 0: sent, then delivered; a late failure does not regress it.
    assert!(
        !store
            .begin_send(&id, 0, "w2", "x", lease, T0)
            .await
            .expect("not holder")
    );
    assert!(
        store
            .begin_send(&id, 0, "w1", "Hi Pat", lease, T0)
            .await
            .expect("begin")
    );
    assert!(
        !store
            .finish(&id, 0, "w1", &Outcome::Released, T0)
            .await
            .expect("no release once sending")
    );
    assert!(
        store
            .finish(
                &id,
                0,
                "w1",
                &Outcome::Sent {
                    message_id: "MSG0".into()
                },
                T0
            )
            .await
            .expect("sent")
    );
    assert!(
        store
            .record_delivery("MSG0", None, T0)
            .await
            .expect("delivered")
    );
    assert!(
        !store
            .record_delivery("MSG0", Some("carrier"), T0)
            .await
            .expect("late failure")
    );
    assert!(
        !store
            .record_delivery("unknown", None, T0)
            .await
            .expect("unknown message")
    );
    let row = &store.recipients(&id, None, None, 1).await.expect("row")[0];
    assert_eq!(
        (row.state, row.text.as_deref(), row.message_id.as_deref()),
        (RecipientState::Delivered, Some("Hi Pat"), Some("MSG0"))
    );

    // Position 1: skipped with its reason.
    assert!(
        store
            .finish(&id, 1, "w1", &Outcome::Skipped(SkipReason::OptedOut), T0)
            .await
            .expect("skip")
    );
    assert!(
        !store
            .finish(&id, 1, "w1", &Outcome::Skipped(SkipReason::OptedOut), T0)
            .await
            .expect("twice")
    );

    // Next slot: positions 2 and 3. 2 goes sending and its worker dies; 3 is claimed only.
    let second = store
        .claim(&id, 2000, 2, "w1", lease, T0)
        .await
        .expect("claim");
    assert_eq!(
        second.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(
        store
            .begin_send(&id, 2, "w1", "Hi Pat", lease, T0)
            .await
            .expect("begin")
    );
    assert_eq!(
        store.recover_expired(T0).await.expect("nothing lapsed yet"),
        0
    );
    let later = T0 + time::Duration::minutes(11);
    assert_eq!(store.recover_expired(later).await.expect("recover"), 2);
    let rows = store.recipients(&id, None, Some(1), 2).await.expect("rows");
    assert_eq!(
        (rows[0].state, rows[1].state),
        (RecipientState::Ambiguous, RecipientState::Pending)
    );
    assert!(
        !store
            .finish(
                &id,
                2,
                "w1",
                &Outcome::Sent {
                    message_id: "late".into()
                },
                later
            )
            .await
            .expect("lapsed")
    );
    assert_eq!(
        store
            .recipients(&id, Some(RecipientState::Ambiguous), None, 10)
            .await
            .expect("ambiguous")
            .len(),
        1
    );
    assert!(
        store
            .resolve(&id, 2, &Outcome::Released, later)
            .await
            .expect("resolve")
    );
    assert!(
        !store
            .resolve(&id, 2, &Outcome::Released, later)
            .await
            .expect("not ambiguous now")
    );

    // A send that certainly did not go out goes back to pending, keeping the reason.
    let deferred = store
        .claim(&id, 2500, 1, "w1", lease, later)
        .await
        .expect("claim");
    assert_eq!(deferred[0].position, 2);
    assert!(
        store
            .begin_send(&id, 2, "w1", "Hi", lease, later)
            .await
            .expect("begin")
    );
    let outcome = Outcome::Deferred {
        reason: "rate limited".into(),
    };
    assert!(
        store
            .finish(&id, 2, "w1", &outcome, later)
            .await
            .expect("defer")
    );
    let row = &store.recipients(&id, None, Some(1), 1).await.expect("row")[0];
    assert_eq!(
        (
            row.state,
            row.detail.as_deref(),
            row.text.as_deref(),
            row.attempted_at
        ),
        (RecipientState::Pending, Some("rate limited"), None, None)
    );

    // Paused: nothing is claimed, and a claimed recipient cannot begin.
    let third = store
        .claim(&id, 3000, 1, "w1", lease + 3600, later)
        .await
        .expect("claim");
    assert_eq!(third[0].position, 2, "a released recipient keeps its place");
    store
        .set_state(
            &id,
            CampaignState::Active,
            CampaignState::Paused,
            None,
            None,
            later,
        )
        .await
        .expect("pause");
    assert!(
        !store
            .begin_send(&id, 2, "w1", "Hi", lease + 3600, later)
            .await
            .expect("paused")
    );
    assert!(
        store
            .finish(&id, 2, "w1", &Outcome::Released, later)
            .await
            .expect("release")
    );
    assert!(
        store
            .claim(&id, 4000, 5, "w1", lease, later)
            .await
            .expect("paused claim")
            .is_empty()
    );
    assert!(
        !store
            .complete_if_done(&id, later)
            .await
            .expect("not active")
    );
    store
        .set_state(
            &id,
            CampaignState::Paused,
            CampaignState::Active,
            None,
            Some(4000),
            later,
        )
        .await
        .expect("resume");

    // Finish everyone; replies and opt-outs after the send are counted.
    let rest = store
        .claim(&id, 5000, 10, "w1", lease + 7200, later)
        .await
        .expect("claim");
    assert_eq!(
        rest.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(!store.complete_if_done(&id, later).await.expect("open"));
    for recipient in &rest {
        assert!(
            store
                .begin_send(&id, recipient.position, "w1", "Hi", lease + 7200, later)
                .await
                .expect("begin")
        );
        let outcome = if recipient.position == 4 {
            Outcome::Failed {
                reason: "400 invalid number".into(),
            }
        } else {
            Outcome::Sent {
                message_id: format!("MSG{}", recipient.position),
            }
        };
        assert!(
            store
                .finish(&id, recipient.position, "w1", &outcome, later)
                .await
                .expect("finish")
        );
    }
    let reply_at = later + time::Duration::minutes(5);
    assert_eq!(
        store
            .record_reply(&phone(202), reply_at)
            .await
            .expect("reply"),
        1
    );
    assert_eq!(
        store
            .record_reply(&phone(202), reply_at)
            .await
            .expect("reply again"),
        0
    );
    // Reports out of order: an earlier reply arriving second is kept, a later one is not.
    assert_eq!(
        store
            .record_reply(&phone(202), reply_at - time::Duration::minutes(1))
            .await
            .expect("earlier reply"),
        1
    );
    assert_eq!(
        store
            .record_reply(&phone(202), reply_at + time::Duration::minutes(1))
            .await
            .expect("later reply"),
        0
    );
    let replied = store
        .recipients(&id, None, Some(1), 1)
        .await
        .expect("recipient 2");
    assert_eq!(
        replied[0].replied_at,
        Some(reply_at - time::Duration::minutes(1))
    );
    assert_eq!(
        store
            .record_reply(&phone(201), reply_at)
            .await
            .expect("skipped one"),
        0,
        "never sent: not a reply"
    );
    assert_eq!(
        store
            .record_opt_out(&phone(203), reply_at)
            .await
            .expect("stop"),
        1
    );
    assert_eq!(
        store
            .record_reply(&phone(200), T0 - time::Duration::days(1))
            .await
            .expect("before"),
        0
    );
    assert!(store.complete_if_done(&id, later).await.expect("complete"));
    assert_eq!(
        store.campaign(&id).await.expect("get").state,
        CampaignState::Completed
    );

    // Delivery wins in either order: it replaces a carrier failure reported first.
    assert!(
        store
            .record_delivery("MSG3", Some("carrier reported failed"), later)
            .await
            .expect("failure")
    );
    let earlier = later - time::Duration::minutes(1);
    assert!(
        store
            .record_delivery("MSG3", None, earlier)
            .await
            .expect("delivered after the failure")
    );
    let row = store
        .recipients(&id, Some(RecipientState::Delivered), None, 10)
        .await
        .expect("delivered rows")
        .into_iter()
        .find(|row| row.message_id.as_deref() == Some("MSG3"))
        .expect("MSG3 delivered");
    assert_eq!(
        row.updated_at, later,
        "a report dated before the last change does not move the row's time back"
    );
    let report = store.report(&id).await.expect("report");
    let total = &report.total;
    assert_eq!(
        (
            total.recipients,
            total.pending,
            total.sent,
            total.delivered,
            total.failed,
            total.skipped,
            total.replied,
            total.opted_out
        ),
        (5, 0, 3, 2, 1, 1, 1, 1)
    );
    assert_eq!(report.by_variant["A"].recipients, 5);
    assert_eq!(report.skipped_by_reason["opted_out"], 1);
}

async fn racing_claims<S: CampaignStore>(store: &S) {
    let (list, recipients) = kept_list(store, 300, 40).await;
    let campaign = store
        .create_campaign(&spec(&list, None), T0)
        .await
        .expect("create");
    store
        .activate(&campaign.id, recipients, None, T0)
        .await
        .expect("activate");
    let lease = T0.unix_timestamp() + 600;
    let mut claimed = Vec::new();
    for slot in 1..=4 {
        let claims = (0..3).map(|w| {
            let store = store.clone();
            let id = campaign.id.clone();
            async move {
                store
                    .claim(&id, slot, 10, &format!("w{w}"), lease, T0)
                    .await
            }
        });
        let results = futures_join_all(claims).await;
        let winners: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("claim"))
            .filter(|batch| !batch.is_empty())
            .collect();
        assert_eq!(winners.len(), 1, "one engine wins slot {slot}");
        claimed.extend(winners[0].iter().map(|r| r.position));
    }
    claimed.sort_unstable();
    assert_eq!(
        claimed,
        (0..40).collect::<Vec<u64>>(),
        "every recipient claimed once"
    );
}

/// Joins futures concurrently on the current task (no runtime dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}
