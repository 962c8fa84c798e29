//! Ingestion and reconciliation against the simulated OpenPhone under faults: duplicate and
//! reordered webhooks, a webhook outage, then a reconciliation through 429 storms and 5xx.

use std::time::Duration;

use openphone_client::{Client, RateLimit};
use openphone_simulator::{
    DeliveryOptions, Faults, InboundCall, InboundMessage, SeedOptions, Simulator, SimulatorConfig,
    WebhookTarget,
};
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, STANDARD_SECRET, TestApp, TestDb};

async fn a_webhook_outage_is_repaired_by_reconciliation_through_429s_and_5xx(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |_| {}).await;
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec![key.clone()],
            seed: SeedOptions {
                conversations: 5,
                ..SeedOptions::default()
            },
            // A tight limit: the client below is configured for ten times more (a 429 storm).
            rate_limit: Some((5, Duration::from_secs(1))),
            webhook_targets: vec![WebhookTarget {
                url: app.url("/api/openphone/webhook"),
                secret: STANDARD_SECRET.to_owned(),
            }],
            delivery: DeliveryOptions {
                delivered_after: Duration::from_millis(5),
                duplicate_rate: 0.5,
                reorder: true,
                max_attempts: 2,
                retry_base: Duration::from_millis(20),
            },
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let ours = sim.phone_numbers()[0].1.clone();
    let text = |n: usize| InboundMessage {
        from: format!("+1555888{n:04}"),
        to: ours.clone(),
        text: format!("Is my foundation repair scheduled? #{n}"),
        media: 0,
    };
    // Duplicated and reordered deliveries converge to one record each.
    let mut delivered = Vec::new();
    for n in 0..8 {
        delivered.push(sim.inbound_message(text(n)).unwrap());
    }
    let call = sim
        .inbound_call(InboundCall {
            from: "+15558889999".to_owned(),
            to: ours.clone(),
            answered: false,
            voicemail: true,
            duration: 0,
        })
        .unwrap();
    for id in &delivered {
        TestApp::eventually("a delivered message", || {
            let store = app.store.clone();
            async move { store.message(id).await.unwrap() }
        })
        .await;
    }
    let missed_call = TestApp::eventually("the missed call with its voicemail", || {
        let store = app.store.clone();
        let call = call.clone();
        async move {
            store
                .call(&call)
                .await
                .unwrap()
                .filter(|c| c.outcome.as_deref() == Some("missed") && c.voicemail.0)
        }
    })
    .await;
    assert_eq!(missed_call.direction.as_deref(), Some("incoming"));
    assert_eq!(app.store.stats().await.unwrap().messages, 8);

    // The outage: the server is down while three more texts arrive; OpenPhone gives up.
    app.stop().await;
    let mut missed = Vec::new();
    for n in 8..11 {
        missed.push(sim.inbound_message(text(n)).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = TestApp::spawn_with(&db, |_| {}).await;
    assert_eq!(app.store.stats().await.unwrap().messages, 8);

    // Reconciliation through a 429 storm and 10% of 5xx answers.
    sim.set_faults(Faults {
        server_error_rate: 0.1,
        ..Faults::default()
    });
    let client = Client::builder(key)
        .base_url(sim.base_url())
        .rate_limit(RateLimit::per_second(50))
        .build()
        .unwrap();
    let report = reference_server::reconcile::reconcile(
        &client,
        &app.store,
        reference_server::ingest::system_clock(),
        OffsetDateTime::now_utc() - time::Duration::hours(1),
        "reconcile-faults",
    )
    .await
    .unwrap();
    let stats = sim.stats();
    assert!(stats.rate_limited > 0, "the storm happened: {stats:?}");
    assert!(stats.server_errors > 0, "5xx happened: {stats:?}");
    let messages = &report.kinds["message"];
    let mut backfilled = messages.created_ids.clone();
    backfilled.sort();
    missed.sort();
    assert_eq!(
        backfilled, missed,
        "exactly the missed texts are backfilled"
    );
    assert_eq!(messages.already_present, 8);
    assert_eq!(report.kinds["call"].created, 0, "the call was delivered");
    assert_eq!(app.store.stats().await.unwrap().messages, 11);
    app.stop().await;
    sim.stop().await;
    db.cleanup().await;
}

backend_tests!(a_webhook_outage_is_repaired_by_reconciliation_through_429s_and_5xx);
