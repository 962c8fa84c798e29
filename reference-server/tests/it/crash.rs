//! Kill -9 in the middle of a load whose sender retries what was not acknowledged (as
//! OpenPhone does); restart; every event is stored exactly once and nothing acknowledged is
//! lost. The real binary runs as a child process.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openphone_webhooks::SigningSecret;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENTS: usize = 300;
const KILL_AFTER: usize = 100;

/// Starts the server binary on `db` and returns it with its base URL.
pub(crate) fn start_server(db: &TestDb) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .env("DATABASE_URL", &db.url)
        .env("DATA_DIR", &db.dir)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("OPENPHONE_WEBHOOK_SECRETS", SECRET)
        .env("RUST_LOG", "error")
        .env("SELF_CHECK_INTERVAL_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a first line");
    // Keep reading what the server prints, as a supervisor would.
    std::thread::spawn(move || for _ in stdout.lines() {});
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, url)
}

pub(crate) fn event(index: usize) -> String {
    format!(
        r#"{{"id":"EV{index}","apiVersion":"2026-03-30","createdAt":"2026-04-13T12:00:00Z","type":"message.received","data":{{"resource":{{"id":"AC{index:05}","direction":"incoming","text":"event {index}","media":[],"status":"received","createdAt":"2026-04-13T12:00:00Z"}},"context":{{"orgId":"OR1","phoneNumberId":"PN1","senderIdentifier":"+1555000{index:04}","recipientIdentifiers":["+15550009999"]}},"links":{{"quo":null}}}}}}"#
    )
}

async fn kill_9_mid_load_then_restart_stores_every_event_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.store().await; // migrate once up front, as a deployment would
    let (mut child, url) = start_server(&db);
    let url = Arc::new(RwLock::new(url));
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let secret = SigningSecret::parse(SECRET).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Eight senders share the events; each retries an event until it is acknowledged.
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (url, acknowledged, acked_count, next, secret, client) = (
                url.clone(),
                acknowledged.clone(),
                acked_count.clone(),
                next.clone(),
                secret.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= EVENTS {
                        return;
                    }
                    let body = event(index);
                    let delivery_id = format!("msg_{index}");
                    loop {
                        let target = format!("{}/api/openphone/webhook", url.read().unwrap());
                        let headers = secret
                            .sign(&delivery_id, OffsetDateTime::now_utc(), body.as_bytes())
                            .unwrap();
                        let sent = client
                            .post(&target)
                            .headers(headers)
                            .body(body.clone())
                            .send()
                            .await;
                        if matches!(&sent, Ok(response) if response.status().is_success()) {
                            acknowledged.lock().unwrap().insert(index);
                            acked_count.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    // Kill -9 once a third is acknowledged, while the rest is in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server stopped acknowledging"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let acked_before_kill = acknowledged.lock().unwrap().clone();
    assert!(acked_before_kill.len() < EVENTS, "the kill came mid-load");
    let (mut restarted, new_url) = start_server(&db);
    *url.write().unwrap() = new_url;
    for sender in senders {
        if tokio::time::timeout(Duration::from_secs(60), sender)
            .await
            .is_err()
        {
            panic!(
                "senders did not finish after the restart; restarted server: {:?}, acknowledged: {}",
                restarted.try_wait(),
                acked_count.load(Ordering::SeqCst)
            );
        }
    }
    restarted.kill().unwrap();
    restarted.wait().unwrap();

    let store = db.store().await;
    assert_eq!(
        store.delivery_count().await.unwrap(),
        EVENTS as i64,
        "each event stored exactly once"
    );
    for index in 0..EVENTS {
        let stored = store
            .delivery(&format!("webhook-id:msg_{index}"))
            .await
            .unwrap();
        assert!(stored.is_some(), "event {index} lost");
        let message = store.message(&format!("AC{index:05}")).await.unwrap();
        assert_eq!(
            message.and_then(|m| m.body).as_deref(),
            Some(format!("event {index}").as_str())
        );
    }
    assert_eq!(acknowledged.lock().unwrap().len(), EVENTS);
    db.cleanup().await;
}

backend_tests!(kill_9_mid_load_then_restart_stores_every_event_once);
