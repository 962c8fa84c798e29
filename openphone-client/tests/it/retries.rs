//! Retries, rate limits, ambiguity and decoding, counted in requests received.

use std::time::Duration;

use openphone_client::model::message::SendMessage;
use openphone_client::types::{MessageId, PhoneNumberId};
use openphone_client::{Client, Error, RateLimit, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::operations::message_json;
use crate::{client, unique_key, unmatched};

fn send() -> SendMessage {
    SendMessage::new(
        PhoneNumberId::from("PN1"),
        "+15555550123".parse().unwrap(),
        "hello",
    )
    .unwrap()
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_even_for_a_send() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"data": message_json("AC1")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    client.send_message(&send()).await.unwrap();
    assert_eq!(hits(&server).await, 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": message_json("AC1")})),
        )
        .mount(&server)
        .await;
    client.get_message(&MessageId::from("AC1")).await.unwrap();
    assert_eq!(hits(&server).await, 2);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_until_the_limit() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "message": "An unknown error occurred", "code": "0201500", "status": 500
        })))
        .expect(4)
        .mount(&server)
        .await;
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status(), error.api_code()),
        (Some(500), Some("0201500")),
        "{error:?}"
    );
    assert!(!error.is_ambiguous());
}

#[tokio::test]
async fn a_server_error_after_a_send_is_ambiguous_and_never_retried() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .expect(1)
        .mount(&server)
        .await;
    let error = client.send_message(&send()).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert_eq!(error.status(), Some(500));
    assert!(
        error.to_string().contains("may have taken effect"),
        "{error}"
    );
}

#[tokio::test]
async fn a_timeout_after_a_send_is_ambiguous_and_a_read_timeout_is_retried() {
    let server = MockServer::start().await;
    let client = Client::builder(unique_key())
        .base_url(server.uri())
        .rate_limit(RateLimit::per_second(1000))
        .retry(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
        })
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(3)
        .mount(&server)
        .await;
    let error = client.send_message(&send()).await.unwrap_err();
    match &error {
        Error::Ambiguous { source, .. } => {
            assert!(matches!(**source, Error::Timeout), "{source:?}")
        }
        other => panic!("expected ambiguous, got {other:?}"),
    }
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout), "{error:?}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "message": "The organization is not approved for A2P", "code": "0206400", "status": 400,
            "docs": "https://quo.com/docs", "title": "A2P Registration Not Approved"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let error = client.send_message(&send()).await.unwrap_err();
    assert!(
        matches!(&error, Error::Api(api) if api.status == 400),
        "{error:?}"
    );
    assert_eq!(error.api_code(), Some("0206400"));
    assert!(!error.is_ambiguous());
}

#[tokio::test]
async fn unauthorized_uses_the_gateway_envelope() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Missing authorization header", "key": "Unauthorized", "trace": "x"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Unauthorized { message: Some(m) } if m == "Missing authorization header"),
        "{error:?}"
    );
}

#[tokio::test]
async fn rate_limit_answers_give_up_after_the_retries() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .expect(4)
        .mount(&server)
        .await;
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { attempts: 4, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn refused_connections_are_retried_and_never_ambiguous() {
    // A port with nothing listening: bind, note the port, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::builder(unique_key())
        .base_url(format!("http://{address}"))
        .retry(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
        .build()
        .unwrap();
    let error = client.send_message(&send()).await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn unexpected_bodies_name_the_json_path() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    let mut body = message_json("AC1");
    body["createdAt"] = json!(12);
    Mock::given(method("GET"))
        .and(path("/v1/messages/AC1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": body})))
        .expect(1)
        .mount(&server)
        .await;
    unmatched(&server).await;
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    match error {
        Error::Decode {
            status, path, body, ..
        } => {
            assert_eq!(status, 200);
            assert_eq!(path, "data.createdAt");
            assert!(body.contains("\"createdAt\":12"));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_api_key_never_shows() {
    let client = Client::builder("sk-very-secret")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    assert!(!format!("{client:?}").contains("very-secret"));
    assert!(matches!(Client::new(""), Err(Error::Config(_))));
    assert!(matches!(
        Client::builder("k").base_url("ftp://x").build(),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn an_unreadable_success_after_a_send_is_ambiguous() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(202).set_body_string("{\"data\": {\"id\""))
        .expect(1)
        .mount(&server)
        .await;
    let error = client.send_message(&send()).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    match error {
        Error::Ambiguous { source, .. } => {
            assert!(matches!(*source, Error::Decode { status: 202, .. }))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_keys_never_reach_a_decode_error() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"data":[{"id":"WH1","key":"super-secret-key","status":"enabled"}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = client.list_webhooks(None).await.unwrap_err();
    let shown = format!("{error:?} {error}");
    assert!(matches!(error, Error::Decode { .. }), "{shown}");
    assert!(!shown.contains("super-secret-key"), "{shown}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_is_reported_not_hammered() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let error = client
        .get_message(&MessageId::from("AC1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { retry_after: Some(wait), attempts: 1 } if wait == Duration::from_secs(3600)),
        "{error:?}"
    );
}

#[tokio::test]
async fn base_urls_must_parse_with_a_host() {
    for bad in ["http://", "https://:80", "not a url", "ftp://example.com"] {
        assert!(
            matches!(
                Client::builder("k").base_url(bad).build(),
                Err(Error::Config(_))
            ),
            "{bad}"
        );
    }
}
