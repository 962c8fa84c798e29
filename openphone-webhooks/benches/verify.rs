//! Verification throughput on a 1 KB body, against the raw HMAC-SHA256 rate measured in the
//! same run.
//!
//! Run: `cargo bench -p openphone-webhooks --bench verify`
//!
//! The workloads are timed round-robin, several rounds each, and each keeps its best round, so
//! a change of clock speed during the run affects them all alike. The baseline is one-shot
//! HMAC-SHA256 (key setup, update, finalize) over the same signed content a legacy delivery
//! needs: the least work any verifier must do. Ratios are rate / baseline rate.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use openphone_webhooks::{Event, SigningSecret, WebhookVerifier};
use sha2::Sha256;
use time::OffsetDateTime;

const ROUNDS: usize = 15;

/// A named piece of work, run `ITERATIONS` times per round.
type Workload<'a> = (&'static str, Box<dyn FnMut() + 'a>);
const ITERATIONS: u32 = 50_000;

fn time_round(work: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        work();
    }
    start.elapsed()
}

/// A valid legacy `message.received` event of exactly 1024 bytes.
fn body_of_1kb() -> Vec<u8> {
    let event = |text: &str| {
        format!(
            r#"{{"id":"EV1","object":"event","apiVersion":"v3","createdAt":"2026-04-13T12:00:00.000Z","type":"message.received","data":{{"object":{{"id":"AC1","object":"message","from":"+15550001111","to":"+15550002222","direction":"incoming","body":"{text}","media":[],"status":"received","createdAt":"2026-04-13T12:00:00.000Z","userId":"US1","phoneNumberId":"PN1","conversationId":"CN1"}}}}}}"#
        )
    };
    let padding = 1024 - event("").len();
    let text: String = "Hi, this is about the crack in the north wall. "
        .chars()
        .cycle()
        .take(padding)
        .collect();
    event(&text).into_bytes()
}

fn main() {
    let body = body_of_1kb();
    assert_eq!(body.len(), 1024);
    let legacy = SigningSecret::parse("R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg=").unwrap();
    let standard = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let now = OffsetDateTime::now_utc();
    // The signature headers plus what a real delivery through a proxy carries.
    let with_usual_headers = |mut headers: http::HeaderMap| {
        for (name, value) in [
            ("host", "crm.example.com"),
            (
                "user-agent",
                "Svix-Webhooks/1.80.0 (sender-abc123; +https://www.svix.com/http-sender/)",
            ),
            ("content-type", "application/json"),
            ("content-length", "1024"),
            ("accept", "*/*"),
            ("accept-encoding", "gzip, deflate"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ] {
            headers.insert(name, http::HeaderValue::from_static(value));
        }
        headers
    };
    let legacy_headers = with_usual_headers(legacy.sign("", now, &body).unwrap());
    let standard_headers = with_usual_headers(
        standard
            .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", now, &body)
            .unwrap(),
    );
    let verifier = WebhookVerifier::new([legacy.clone(), standard]).unwrap();
    let rotation = WebhookVerifier::new([
        SigningSecret::parse("d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXk=").unwrap(),
        legacy,
    ])
    .unwrap();
    let key = b"GfK3j4lXA5ZrRu64ofat50srGzoIHHUX";
    let timestamp = (now.unix_timestamp_nanos() / 1_000_000).to_string();

    let mut workloads: Vec<Workload<'_>> = vec![
        (
            "raw HMAC-SHA256 (baseline)",
            Box::new(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
                mac.update(timestamp.as_bytes());
                mac.update(b".");
                mac.update(black_box(&body));
                black_box(mac.finalize().into_bytes());
            }),
        ),
        (
            "verify legacy openphone-signature",
            Box::new(|| {
                black_box(verifier.verify_at(&legacy_headers, black_box(&body), now)).unwrap();
            }),
        ),
        (
            "verify Standard Webhooks",
            Box::new(|| {
                black_box(verifier.verify_at(&standard_headers, black_box(&body), now)).unwrap();
            }),
        ),
        (
            "verify legacy, match on 2nd of 2 secrets",
            Box::new(|| {
                black_box(rotation.verify_at(&legacy_headers, black_box(&body), now)).unwrap();
            }),
        ),
        (
            "Event::from_value(serde_json tree) (not one)",
            Box::new(|| {
                let tree = serde_json::from_slice(black_box(&body)).unwrap();
                black_box(Event::from_value(tree)).unwrap();
            }),
        ),
        (
            "Event::parse (not a verification)",
            Box::new(|| {
                black_box(Event::parse(black_box(&body))).unwrap();
            }),
        ),
    ];

    let mut best = vec![Duration::MAX; workloads.len()];
    for _ in 0..ROUNDS {
        for (index, (_, work)) in workloads.iter_mut().enumerate() {
            best[index] = best[index].min(time_round(work.as_mut()));
        }
    }
    let rate = |index: usize| f64::from(ITERATIONS) / best[index].as_secs_f64();
    let baseline = rate(0);

    println!("1 KB body; {ROUNDS} interleaved rounds of {ITERATIONS} iterations, best round each");
    println!("{:<44} {:>12} {:>8}", "operation", "ops/s", "ratio");
    for (index, (name, _)) in workloads.iter().enumerate() {
        println!(
            "{name:<44} {:>12.0} {:>8.2}",
            rate(index),
            rate(index) / baseline
        );
    }
}
