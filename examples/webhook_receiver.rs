//! A complete OpenPhone webhook receiver: verifies deliveries of both signature schemes and
//! prints what each event says.
//!
//! ```sh
//! OPENPHONE_WEBHOOK_SECRETS=whsec_...,<legacy base64 secret> \
//!     cargo run -p examples --example webhook-receiver
//! ```
//!
//! It listens on `LISTEN_ADDR` (default `127.0.0.1:3000`) at `POST /webhooks/openphone`. Point
//! an OpenPhone webhook there through a tunnel, or send it signed requests from a test.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use openphone_webhooks::event::CallOutcome;
use openphone_webhooks::extract::WebhookEvent;
use openphone_webhooks::{EventData, SigningSecret, WebhookVerifier};

async fn receive(
    WebhookEvent {
        event, verified, ..
    }: WebhookEvent,
) -> StatusCode {
    let delivery = verified.delivery_id.as_deref().unwrap_or("legacy");
    match &event.data {
        EventData::Message(message) => println!(
            "[{delivery}] {} {} from {}: {} character(s), {} attachment(s)",
            event.event_type,
            message.id,
            message
                .from
                .as_ref()
                .and_then(|from| from.as_e164())
                .map_or_else(|| "unknown".to_owned(), |number| number.masked()),
            message
                .text
                .as_deref()
                .map_or(0, |text| text.chars().count()),
            message.media.len(),
        ),
        EventData::Call(call) => {
            let outcome = match call.outcome {
                CallOutcome::Missed => "missed",
                CallOutcome::Answered => "answered",
                CallOutcome::InProgress => "in progress",
                _ => "other",
            };
            println!("[{delivery}] {} {} ({outcome})", event.event_type, call.id);
        }
        EventData::CallSummary(summary) => println!(
            "[{delivery}] summary of {}: {} point(s), {} next step(s)",
            summary.call_id,
            summary.summary.len(),
            summary.next_steps.len()
        ),
        EventData::Unknown(_) => {
            println!("[{delivery}] {} (not modelled, kept raw)", event.event_type)
        }
        _ => println!("[{delivery}] {} {}", event.event_type, event.id),
    }
    // Acknowledge quickly; do heavy work elsewhere. OpenPhone retries any non-2xx answer.
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secrets = std::env::var("OPENPHONE_WEBHOOK_SECRETS")
        .map_err(|_| "set OPENPHONE_WEBHOOK_SECRETS to your signing secret(s), comma-separated")?;
    let verifier = WebhookVerifier::new(
        secrets
            .split(',')
            .map(SigningSecret::parse)
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    let app = Router::new()
        .route("/webhooks/openphone", post(receive))
        .with_state(verifier);
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "listening on http://{}/webhooks/openphone",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
