//! Compliance keywords end to end: STOP, START and HELP against the simulated OpenPhone.

use openphone_client::Client;
use openphone_simulator::{Simulator, SimulatorConfig};
use reference_server::alerts::AlertStore;
use reference_server::auth::Role;
use reference_server::compliance::Outbox;
use reference_server::config::Redacted;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

const CUSTOMER: &str = "+15550001111";

/// An inbound legacy (v4) message from [`CUSTOMER`] to our number `pn`, sent `age` ago.
fn inbound(id: &str, pn: &str, ours: &str, text: &str, age: time::Duration) -> Value {
    let at = (OffsetDateTime::now_utc() - age).format(&Rfc3339).unwrap();
    json!({"id": format!("EV{id}"), "object": "event", "apiVersion": "v4", "createdAt": at,
        "type": "message.received", "data": {"object": {"id": id, "object": "message",
        "from": CUSTOMER, "to": [ours], "direction": "incoming", "text": text, "status": "received",
        "createdAt": at, "userId": null, "phoneNumberId": pn}}})
}

async fn keywords_opt_out_opt_in_help_and_flag(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let sim = Simulator::start(SimulatorConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (pn, ours) = sim.phone_numbers()[0].clone();
    let app = TestApp::spawn_with(&db, |config| {
        config.openphone_api_key = Some(Redacted(sim.api_key().to_owned()));
        config.openphone_base_url = sim.base_url();
        config.reply_help = Some("Golf club: call 555-0100 for help.".to_owned());
    })
    .await;
    let client = Client::builder(sim.api_key())
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let now = time::Duration::ZERO;
    let sent_text = |message_id: &'static str| {
        let (store, client) = (app.store.clone(), client.clone());
        async move {
            TestApp::eventually(message_id, || {
                let store = store.clone();
                async move {
                    let replies = store.replies_for(message_id).await.unwrap();
                    replies
                        .first()
                        .filter(|reply| reply.status != "pending")
                        .cloned()
                }
            })
            .await;
            let replies = store.replies_for(message_id).await.unwrap();
            assert_eq!(replies.len(), 1, "one reply per keyword message");
            assert_eq!(replies[0].status, "sent", "{replies:?}");
            let id = replies[0].sent_message_id.clone().unwrap();
            let message = client.get_message(&id.as_str().into()).await.unwrap();
            assert_eq!(message.to[0].as_str(), CUSTOMER);
            message.text
        }
    };

    // STOP (any case, surrounding space): ledger, opted out, one confirmation.
    let stop = inbound("ACstop", &pn, &ours, "  Stop ", now);
    assert_eq!(app.webhook("d1", &stop).await, StatusCode::OK);
    let text = sent_text("ACstop").await;
    assert!(text.contains("unsubscribed"), "{text}");
    assert!(app.store.is_opted_out(CUSTOMER).await.unwrap());
    let admin = app.token(Role::Admin).await;
    let (_, stats) = app.get("/api/v1/stats", &admin).await;
    assert_eq!(stats["opted_out"], 1, "{stats}");
    // The same message delivered again (another delivery id): nothing more.
    assert_eq!(app.webhook("d1-again", &stop).await, StatusCode::OK);

    // START opts back in, with a confirmation.
    let start = inbound("ACstart", &pn, &ours, "START", now);
    assert_eq!(app.webhook("d2", &start).await, StatusCode::OK);
    assert!(sent_text("ACstart").await.contains("resubscribed"));
    assert!(!app.store.is_opted_out(CUSTOMER).await.unwrap());

    // HELP gets the configured help text, and no ledger entry.
    let help = inbound("AChelp", &pn, &ours, "help", now);
    assert_eq!(app.webhook("d3", &help).await, StatusCode::OK);
    assert_eq!(
        sent_text("AChelp").await,
        "Golf club: call 555-0100 for help."
    );

    // A longer message mentioning STOP is flagged, not obeyed, not answered.
    let longer = inbound("AClong", &pn, &ours, "Please stop by at 6, thanks", now);
    assert_eq!(app.webhook("d4", &longer).await, StatusCode::OK);
    let flags = app.store.review_flags().await.unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].0, "AClong");
    assert!(app.store.replies_for("AClong").await.unwrap().is_empty());

    // A STOP from three days ago (an import, a replay) updates the ledger but texts nobody.
    let old = inbound("ACold", &pn, &ours, "STOP", time::Duration::days(3));
    assert_eq!(app.webhook("d5", &old).await, StatusCode::OK);
    let stale = TestApp::eventually("the stale reply", || {
        let store = app.store.clone();
        async move {
            store
                .replies_for("ACold")
                .await
                .unwrap()
                .into_iter()
                .find(|reply| reply.status != "pending")
        }
    })
    .await;
    assert_eq!(stale.status, "stale");
    assert!(stale.sent_message_id.is_none());

    let history = app.store.consent_history(CUSTOMER).await.unwrap();
    let actions: Vec<(&str, &str)> = history
        .iter()
        .map(|entry| (entry.message_id.as_str(), entry.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ACold", "opt_out"),
            ("ACstop", "opt_out"),
            ("ACstart", "opt_in")
        ]
    );
    // A STOP typed before the START above but delivered after it: the ledger keeps the
    // START (by message time), and the STOP's confirmation, which would now be false, is not
    // sent. A "Yes!" from a number that never opted out is no resubscription to confirm.
    let late_stop = inbound("AClate", &pn, &ours, "STOP", time::Duration::minutes(10));
    assert_eq!(app.webhook("d6", &late_stop).await, StatusCode::OK);
    let mut yes = inbound("ACyes", &pn, &ours, "Yes!", now);
    yes["data"]["object"]["from"] = json!("+15550002222");
    assert_eq!(app.webhook("d7", &yes).await, StatusCode::OK);
    for message_id in ["AClate", "ACyes"] {
        let reply = TestApp::eventually(message_id, || {
            let store = app.store.clone();
            async move {
                store
                    .replies_for(message_id)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|reply| reply.status != "pending")
            }
        })
        .await;
        assert_eq!(reply.status, "skipped", "{reply:?}");
        assert!(reply.sent_message_id.is_none());
    }
    assert!(!app.store.is_opted_out(CUSTOMER).await.unwrap());
    // A STOP from a number no text can go to (a short code): recorded, its confirmation
    // failed, and a person alerted.
    let mut short = inbound("ACshort", &pn, &ours, "STOP", now);
    short["data"]["object"]["from"] = json!("12345");
    assert_eq!(app.webhook("d8", &short).await, StatusCode::OK);
    let alerts = TestApp::eventually("the alert", || async {
        let alerts = app.store.alerts(true, None, 10).await.ok()?;
        alerts
            .into_iter()
            .find(|alert| alert.kind == "compliance_reply_failed")
    })
    .await;
    assert!(
        alerts
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("ACshort"),
        "{alerts:?}"
    );
    assert_eq!(
        app.store.replies_for("ACshort").await.unwrap()[0].status,
        "failed"
    );
    // Three replies were sent in all (STOP, START, HELP).
    assert_eq!(sim.sent().len(), 3);
    let (_, stats) = app.get("/api/v1/stats", &admin).await;
    assert_eq!(stats["opted_out"], 1, "the short code alone: {stats}");
    app.stop().await;
    sim.stop().await;
    db.cleanup().await;
}

/// The outbox on this backend passes the suite the memory outbox passes.
async fn the_outbox_passes_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::compliance::outbox_conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    keywords_opt_out_opt_in_help_and_flag,
    the_outbox_passes_the_conformance_suite,
);
