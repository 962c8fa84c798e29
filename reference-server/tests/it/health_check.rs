//! End-to-end health checks: completed by their own webhook, failed and alerted when it does
//! not come.

use std::sync::Arc;
use std::time::Duration;

use openphone_client::{Client, RateLimit};
use openphone_simulator::{Simulator, SimulatorConfig};
use reference_server::alerts::Alerter;
use reference_server::auth::Role;
use reference_server::config::Redacted;
use reference_server::health_check::HealthChecks;
use reference_server::health_check::{HealthCheckExpiry, HealthCheckJob};
use reference_server::scheduler::{Job, RunEnd, Stop};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

async fn a_health_check_passes_when_its_webhook_arrives_and_fails_when_not(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec![key.clone()],
            rate_limit: None,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let numbers = sim.phone_numbers();
    let (from_id, from_number) = numbers[0].clone();
    let to_number = numbers[1].1.clone();
    let app = TestApp::spawn_with(&db, |config| {
        config.openphone_api_key = Some(Redacted(key.clone()));
        config.openphone_base_url = sim.base_url();
        config.health_check_from = Some(from_id.clone());
        config.health_check_to = Some(to_number.clone());
    })
    .await;
    // The first slot runs at start: a text is sent, and the check waits for its webhook.
    let pending = TestApp::eventually("the first health check", || {
        let store = app.store.clone();
        async move {
            store
                .health_checks(None, 10)
                .await
                .unwrap()
                .into_iter()
                .next()
        }
    })
    .await;
    assert_eq!(pending.status, "pending");
    let message_id = pending.message_id.clone().unwrap();
    assert!(sim.sent().contains(&message_id));

    // OpenPhone delivers the text to the other number: its webhook completes the check.
    let received = json!({"id": "EVhc", "object": "event", "apiVersion": "v4",
        "createdAt": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap(),
        "type": "message.received", "data": {"object": {"id": "AChc", "object": "message",
        "from": from_number, "to": [to_number], "direction": "incoming",
        "text": format!("Health check {}", pending.token), "status": "received",
        "createdAt": "2026-11-22T06:00:00Z", "phoneNumberId": numbers[1].0}}});
    assert_eq!(app.webhook("hc1", &received).await, StatusCode::OK);
    let operator = app.token(Role::Operator).await;
    let (status, page) = app.get("/api/v1/health-checks", &operator).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["status"], "passed", "{page}");
    assert!(page["items"][0]["latency_ms"].as_i64().unwrap() >= 0);
    let metrics = app.metrics(&operator).await;
    assert!(metrics.contains("health_check_passed 1"), "{metrics}");
    assert!(metrics.contains("health_check_latency_ms "), "{metrics}");
    assert!(
        metrics.contains("health_check_latency_seconds_count 1"),
        "{metrics}"
    );

    // A second check whose webhook never comes: failed after the timeout, and alerted.
    let client = Client::builder(key.clone())
        .base_url(sim.base_url())
        .rate_limit(RateLimit::per_second(1000))
        .build()
        .unwrap();
    let job = HealthCheckJob {
        client,
        store: app.store.clone(),
        from: from_id.clone(),
        to: openphone_client::types::E164::parse(&to_number).unwrap(),
        every: Duration::from_secs(3600),
        clock: reference_server::ingest::system_clock(),
    };
    job.run(OffsetDateTime::now_utc(), Stop::never())
        .await
        .unwrap();
    let later: reference_server::ingest::Clock =
        Arc::new(|| OffsetDateTime::now_utc() + time::Duration::minutes(3));
    let expiry = HealthCheckExpiry {
        store: app.store.clone(),
        timeout: Duration::from_secs(120),
        clock: later.clone(),
        alerter: Alerter::new(
            app.store.clone(),
            Vec::new(),
            Duration::from_secs(3600),
            20,
            later,
        ),
    };
    let RunEnd::Done(figures) = expiry
        .run(OffsetDateTime::now_utc(), Stop::never())
        .await
        .unwrap()
    else {
        panic!("the expiry ran to its end");
    };
    assert_eq!(figures["expired"].as_array().unwrap().len(), 1, "{figures}");
    let (_, page) = app.get("/api/v1/health-checks", &operator).await;
    assert_eq!(page["items"][0]["status"], "failed", "{page}");
    assert_eq!(
        page["items"][1]["status"], "passed",
        "the passed one stays passed"
    );
    let (_, alerts) = app.get("/api/v1/alerts?open=true", &operator).await;
    assert_eq!(
        alerts["items"][0]["kind"], "health_check_failed",
        "{alerts}"
    );
    app.stop().await;
    sim.stop().await;
    db.cleanup().await;
}

/// Health checks on this backend pass the suite the memory checks pass.
async fn health_checks_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::health_check::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    a_health_check_passes_when_its_webhook_arrives_and_fails_when_not,
    health_checks_pass_the_conformance_suite,
);
