//! The axum extractors, driven through `Router::oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use openphone_webhooks::extract::{VerifiedWebhook, WebhookEvent};
use openphone_webhooks::{SigningSecret, WebhookVerifier};
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::{LEGACY_SECRET, STANDARD_SECRET};

const BODY: &str = r#"{"id":"EV1","apiVersion":"2026-03-30","createdAt":"2026-04-13T12:00:00Z","type":"message.received","data":{"resource":{"id":"AC1","direction":"incoming","text":"hi","media":[],"status":"received","createdAt":"2026-04-13T12:00:00Z"},"context":{"orgId":"OR1","senderIdentifier":"+15550001111","recipientIdentifiers":["+15550002222"]},"links":{"quo":null}}}"#;

fn app(verifier: WebhookVerifier) -> Router {
    async fn event(
        WebhookEvent {
            event, verified, ..
        }: WebhookEvent,
    ) -> String {
        format!(
            "{} {}",
            event.event_type,
            verified.delivery_id.unwrap_or_default()
        )
    }
    async fn raw(VerifiedWebhook { body, .. }: VerifiedWebhook) -> String {
        body.len().to_string()
    }
    Router::new()
        .route("/event", post(event))
        .route("/raw", post(raw))
        .with_state(verifier)
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new([
        SigningSecret::parse(STANDARD_SECRET).unwrap(),
        SigningSecret::parse(LEGACY_SECRET).unwrap(),
    ])
    .unwrap()
}

fn signed_request(path: &str, secret: &str, at: OffsetDateTime, body: &str) -> Request<Body> {
    let headers = SigningSecret::parse(secret)
        .unwrap()
        .sign("msg_abc", at, body.as_bytes())
        .unwrap();
    let mut request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    request.headers_mut().extend(headers);
    request
}

async fn send(app: Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn accepts_both_schemes() {
    let now = OffsetDateTime::now_utc();
    let (status, text) = send(
        app(verifier()),
        signed_request("/event", STANDARD_SECRET, now, BODY),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, "message.received msg_abc");
    let (status, text) = send(
        app(verifier()),
        signed_request("/event", LEGACY_SECRET, now, BODY),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, "message.received ");
    let (status, text) = send(
        app(verifier()),
        signed_request("/raw", LEGACY_SECRET, now, BODY),
    )
    .await;
    assert_eq!((status, text), (StatusCode::OK, BODY.len().to_string()));
}

#[tokio::test]
async fn bad_missing_or_stale_signatures_get_401() {
    let now = OffsetDateTime::now_utc();
    let mut tampered = signed_request("/event", STANDARD_SECRET, now, BODY);
    *tampered.body_mut() = Body::from(BODY.replace("hi", "ho"));
    let (status, text) = send(app(verifier()), tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(text, "no signature matches");

    let unsigned = Request::post("/event").body(Body::from(BODY)).unwrap();
    assert_eq!(
        send(app(verifier()), unsigned).await.0,
        StatusCode::UNAUTHORIZED
    );

    let stale = signed_request(
        "/raw",
        STANDARD_SECRET,
        now - time::Duration::minutes(6),
        BODY,
    );
    let (status, text) = send(app(verifier()), stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(text, "signature timestamp is too old");

    let future = signed_request(
        "/raw",
        LEGACY_SECRET,
        now + time::Duration::minutes(6),
        BODY,
    );
    assert_eq!(
        send(app(verifier()), future).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_whether_declared_or_streamed() {
    let now = OffsetDateTime::now_utc();
    let small = verifier().with_max_body_size(64);
    let request = signed_request("/raw", STANDARD_SECRET, now, BODY);
    assert_eq!(
        send(app(small.clone()), request).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // No content-length: the limit still applies while reading.
    let mut request = signed_request("/raw", STANDARD_SECRET, now, BODY);
    let chunks = BODY
        .as_bytes()
        .chunks(16)
        .map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(chunk)))
        .collect::<Vec<_>>();
    *request.body_mut() = Body::from_stream(futures_stream(chunks));
    request.headers_mut().remove("content-length");
    assert_eq!(
        send(app(small), request).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn malformed_payloads_get_400_after_verification() {
    let now = OffsetDateTime::now_utc();
    let body = r#"{"id":"EV1","type":"message.received","data":{"object":{"to":5}}}"#;
    let (status, text) = send(
        app(verifier()),
        signed_request("/event", STANDARD_SECRET, now, body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("malformed event payload"), "{text}");
    // The raw extractor does not parse: the same body is accepted for storage.
    let (status, _) = send(
        app(verifier()),
        signed_request("/raw", STANDARD_SECRET, now, body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// A stream over ready chunks, without pulling in a stream crate.
fn futures_stream(
    chunks: Vec<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    struct Chunks(std::vec::IntoIter<Result<bytes::Bytes, std::io::Error>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Chunks(chunks.into_iter())
}
