//! Historical import and reconciliation against the simulated OpenPhone.

use openphone_client::{Client, RateLimit, RetryPolicy};
use openphone_simulator::{Faults, SeedOptions, Simulator, SimulatorConfig};
use reference_server::alerts::AlertStore;
use reference_server::import::{Checkpoints, ImportOptions, Importer};
use reference_server::scheduler::JobRuns;
use reference_server::store::Store;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

/// A simulator with its own key (the client's rate limiter is per key and process) and no
/// rate limit, so tests are quick; the limiter itself is measured by the import benchmark.
async fn simulator(conversations: usize) -> (Simulator, Client, String) {
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec![key.clone()],
            seed: SeedOptions {
                conversations,
                ..SeedOptions::default()
            },
            rate_limit: None,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = Client::builder(key.clone())
        .base_url(sim.base_url())
        .rate_limit(RateLimit::per_second(1000))
        .build()
        .unwrap();
    (sim, client, key)
}

fn importer(client: &Client, store: &Store) -> Importer {
    Importer::new(
        client.clone(),
        store.clone(),
        reference_server::ingest::system_clock(),
        ImportOptions {
            checkpoint: "import".to_owned(),
            ..ImportOptions::default()
        },
    )
}

async fn count(store: &Store, table: &str) -> i64 {
    let stats = store.stats().await.unwrap();
    match table {
        "messages" => stats.messages,
        "calls" => stats.calls,
        "conversations" => stats.conversations,
        _ => stats.events,
    }
}

/// How many OpenPhone conversation ids the conversation records carry.
async fn with_openphone_id(store: &Store) -> i64 {
    let sql = "SELECT COUNT(DISTINCT openphone_id) FROM conversations";
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn an_interrupted_import_resumes_without_gaps_or_duplicates(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (sim, client, key) = simulator(120).await;
    let (conversations, messages, calls) = sim.counts();
    assert!(messages > 100, "more than one page of messages: {messages}");

    // The API fails for good part-way through (more 5xx than the client retries).
    sim.set_faults(Faults {
        server_error_rate: 0.2,
        ..Faults::default()
    });
    let impatient = Client::builder(key)
        .base_url(sim.base_url())
        .rate_limit(RateLimit::per_second(1000))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let first = importer(&impatient, &store).run().await;
    assert!(
        first.is_err(),
        "the import stops when the API keeps failing"
    );
    let partial = count(&store, "messages").await;

    // Rerun when the API is healthy: it continues from the checkpoints.
    sim.set_faults(Faults::default());
    let report = importer(&client, &store).run().await.unwrap();
    assert_eq!(count(&store, "messages").await, messages as i64);
    assert_eq!(count(&store, "calls").await, calls as i64);
    // Every OpenPhone conversation has its record (group ones keyed by all participants);
    // inbound group messages are keyed by their sender (the known gap in
    // docs/operations.md), so there can be more keys than OpenPhone conversations.
    assert!(count(&store, "conversations").await >= conversations as i64);
    assert_eq!(with_openphone_id(&store).await, conversations as i64);
    assert_eq!(report.kinds["conversation"].checked as usize, conversations);
    assert_eq!(report.kinds["phone_number"].checked, 2);
    assert_eq!(report.kinds["user"].checked, 3);
    let created = report.kinds["message"].created;
    assert_eq!(
        created as i64,
        messages as i64 - partial,
        "no message recorded twice"
    );
    assert!(
        report.kinds.contains_key("summary"),
        "{:?}",
        report.kinds.keys()
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // Again from scratch: everything is already there.
    store.reset_import("import").await.unwrap();
    let events = count(&store, "events").await;
    let again = importer(&client, &store).run().await.unwrap();
    assert_eq!(again.created(), 0, "{:?}", again.kinds);
    assert_eq!(again.kinds["message"].already_present as usize, messages);
    assert_eq!(count(&store, "events").await, events);
    sim.stop().await;
    db.cleanup().await;
}

async fn reconciliation_backfills_only_what_webhooks_missed(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (sim, client, _) = simulator(10).await;
    importer(&client, &store).run().await.unwrap();
    let before = count(&store, "messages").await;
    // A webhook outage: two texts arrive that no webhook delivered.
    let (pn, _) = sim.phone_numbers()[0].clone();
    let mut missed = Vec::new();
    for text in ["Is the crack getting worse?", "Photos attached"] {
        missed.push(
            sim.inbound_message(openphone_simulator::InboundMessage {
                from: "+15557770001".to_owned(),
                to: pn.clone(),
                text: text.to_owned(),
                media: 0,
            })
            .unwrap(),
        );
    }
    let since = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let report = reference_server::reconcile::reconcile(
        &client,
        &store,
        reference_server::ingest::system_clock(),
        since,
        "reconcile-test",
    )
    .await
    .unwrap();
    let messages = &report.kinds["message"];
    assert_eq!(messages.created, 2, "{report:?}");
    let mut backfilled = messages.created_ids.clone();
    backfilled.sort();
    missed.sort();
    assert_eq!(backfilled, missed);
    assert_eq!(count(&store, "messages").await, before + 2);
    // Nothing more the second time.
    let again = reference_server::reconcile::reconcile(
        &client,
        &store,
        reference_server::ingest::system_clock(),
        since,
        "reconcile-test",
    )
    .await
    .unwrap();
    assert_eq!(again.created(), 0);
    assert_eq!(again.kinds["message"].already_present, 2);
    sim.stop().await;
    db.cleanup().await;
}

/// The scheduled job itself: its run reports what was missing and raises the alert.
async fn the_reconciliation_job_reports_and_alerts(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (sim, client, _) = simulator(5).await;
    importer(&client, &store).run().await.unwrap();
    let (pn, _) = sim.phone_numbers()[0].clone();
    let missed = sim
        .inbound_message(openphone_simulator::InboundMessage {
            from: "+15557770002".to_owned(),
            to: pn,
            text: "Did you get my photos?".to_owned(),
            media: 0,
        })
        .unwrap();
    let clock = reference_server::ingest::system_clock();
    let alerter = reference_server::alerts::Alerter::new(
        store.clone(),
        Vec::new(),
        std::time::Duration::from_secs(3600),
        20,
        clock.clone(),
    );
    let job: std::sync::Arc<dyn reference_server::scheduler::Job> =
        std::sync::Arc::new(reference_server::reconcile::Reconciliation {
            client: client.clone(),
            store: store.clone(),
            clock: clock.clone(),
            schedule: reference_server::scheduler::Schedule::daily("02:00", "America/Chicago")
                .unwrap(),
            overlap: std::time::Duration::from_secs(7200),
            pending_after: std::time::Duration::from_secs(3600),
            alerter,
        });
    let ran =
        reference_server::scheduler::Scheduler::new(store.clone(), vec![job], clock, "r".into())
            .tick(OffsetDateTime::now_utc())
            .await
            .unwrap();
    assert_eq!(ran.len(), 1);
    let run = store
        .job_runs(Some("reconcile"), None, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(run.outcome, "succeeded", "{run:?}");
    let figures: serde_json::Value = serde_json::from_str(&run.figures.unwrap()).unwrap();
    assert_eq!(figures["kinds"]["message"]["missing"], 1, "{figures}");
    assert_eq!(
        figures["kinds"]["message"]["ids"],
        serde_json::json!([missed])
    );
    let alerts = store.alerts(true, None, 10).await.unwrap();
    assert_eq!(alerts[0].kind, "reconciliation_discrepancy", "{alerts:?}");
    sim.stop().await;
    db.cleanup().await;
}

/// Checkpoints on this backend pass the suite the memory checkpoints pass.
async fn checkpoints_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::import::checkpoint_conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// The workspace directory (our numbers, users) on this backend passes the suite the memory
/// records pass.
async fn the_directory_passes_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::directory::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    the_directory_passes_the_conformance_suite,
    the_reconciliation_job_reports_and_alerts,
    an_interrupted_import_resumes_without_gaps_or_duplicates,
    reconciliation_backfills_only_what_webhooks_missed,
    checkpoints_pass_the_conformance_suite,
);
