//! Rate limits and injected faults, seen through the client.

use std::time::Duration;

use futures_util::TryStreamExt;
use openphone_client::model::message::SendMessage;
use openphone_client::model::workspace::WorkspaceQuery;
use openphone_client::types::PhoneNumberId;
use openphone_client::{Client, Error, RateLimit, RetryPolicy};
use openphone_simulator::Faults;

use crate::helpers::{client, config, start};

#[tokio::test]
async fn the_per_key_limit_answers_429_and_the_client_recovers() {
    let mut config = config(60);
    config.rate_limit = Some((10, Duration::from_secs(1)));
    let simulator = start(config).await;
    // A client that believes it may go faster than the simulator allows.
    let client = client(&simulator, "sim-key");
    let mut query = WorkspaceQuery::default();
    query.limit = Some(10);
    let messages: Vec<_> = client
        .workspace_messages(query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(messages.len(), simulator.counts().1);
    let stats = simulator.stats();
    assert!(stats.rate_limited > 0, "{stats:?}");
    simulator.stop().await;
}

#[tokio::test]
async fn a_client_under_the_limit_is_never_refused() {
    let mut config = config(60);
    config.rate_limit = Some((10, Duration::from_secs(1)));
    config.api_keys = vec!["polite-key".into()];
    let simulator = start(config).await;
    // One under the server's 10 per second: enough slack for scheduling delays on a loaded
    // CI machine, which can exceed the limiter's 25 ms guard band.
    let polite = Client::builder("polite-key")
        .base_url(simulator.base_url())
        .rate_limit(RateLimit::per_second(9))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let mut query = WorkspaceQuery::default();
    query.limit = Some(5);
    let messages: Vec<_> = polite
        .workspace_messages(query)
        .try_collect()
        .await
        .unwrap();
    assert!(messages.len() > 50, "enough pages to cross several windows");
    assert_eq!(simulator.stats().rate_limited, 0);
    simulator.stop().await;
}

#[tokio::test]
async fn injected_server_errors_are_retried_for_reads() {
    let simulator = start(config(5)).await;
    let client = client(&simulator, "sim-key");
    simulator.set_faults(Faults {
        next_server_errors: 2,
        ..Faults::default()
    });
    assert_eq!(client.list_phone_numbers(None).await.unwrap().len(), 2);
    assert_eq!(simulator.stats().server_errors, 2);
    simulator.stop().await;
}

#[tokio::test]
async fn a_send_accepted_then_timed_out_is_ambiguous_and_really_sent() {
    let simulator = start(config(2)).await;
    let (number_id, _) = simulator.phone_numbers()[0].clone();
    let client = Client::builder("sim-key")
        .base_url(simulator.base_url())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    simulator.set_faults(Faults {
        next_send_timeouts: 1,
        send_timeout_delay: Duration::from_secs(3),
        ..Faults::default()
    });
    let send = SendMessage::new(
        PhoneNumberId::new(number_id),
        "+15555550123".parse().unwrap(),
        "hello",
    )
    .unwrap();
    let error = client.send_message(&send).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert_eq!(
        simulator.sent().len(),
        1,
        "the message went out although the client timed out"
    );
    assert_eq!(
        simulator.stats().sends,
        1,
        "and the client did not send it twice"
    );
    simulator.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let simulator = start(config(2)).await;
    let client = client(&simulator, "sim-key");
    simulator.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let error = client.list_phone_numbers(None).await.unwrap_err();
    assert!(
        matches!(error, Error::Decode { status: 200, .. }),
        "{error:?}"
    );
    simulator.stop().await;
}

#[tokio::test]
async fn latency_is_added() {
    let simulator = start(config(2)).await;
    let client = client(&simulator, "sim-key");
    simulator.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    });
    // Shorter than the latency: the read times out (and is retried, then reported).
    let impatient = Client::builder("sim-key")
        .base_url(simulator.base_url())
        .timeout(Duration::from_millis(100))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    assert!(matches!(
        impatient.list_phone_numbers(None).await,
        Err(Error::Timeout)
    ));
    assert!(client.list_phone_numbers(None).await.is_ok());
    simulator.stop().await;
}
