//! Integration tests of `openphone-client` against wiremock, and the contract test over the
//! published OpenAPI document.

// Test cases unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod contract;
mod operations;
mod retries;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use openphone_client::{Client, RateLimit, RetryPolicy};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A key of its own per test: limiters are shared per key across the process.
pub fn unique_key() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("test-key-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A client for `server` with fast retries and a limit that does not slow tests down.
pub fn client(server: &MockServer) -> (Client, String) {
    let key = unique_key();
    let client = Client::builder(key.clone())
        .base_url(server.uri())
        .rate_limit(RateLimit::per_second(1000))
        .retry(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(2),
        })
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (client, key)
}

/// Mounted last: a request no expectation matched gets a readable 500 instead of a 404.
pub async fn unmatched(server: &MockServer) {
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(500).set_body_string("unmatched request: no mock for it"),
        )
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}
