//! The API client against the simulated OpenPhone, in one process: list with pagination,
//! send a message, receive its signed `message.delivered` webhook, and see a send whose
//! outcome is unknown reported as such.
//!
//! ```sh
//! cargo run -p examples --example client-against-simulator
//! ```

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use futures_util::TryStreamExt;
use openphone_client::model::conversation::ListConversations;
use openphone_client::model::message::{ListMessages, SendMessage};
use openphone_client::types::{E164, PhoneNumberId};
use openphone_client::{Client, RateLimit};
use openphone_simulator::{Faults, SeedOptions, Simulator, SimulatorConfig, WebhookTarget};
use openphone_webhooks::extract::WebhookEvent;
use openphone_webhooks::{SigningSecret, WebhookVerifier};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A webhook receiver, verifying deliveries with the secret the simulator signs with.
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let receiver = Router::new()
        .route(
            "/hook",
            post(move |WebhookEvent { event, .. }: WebhookEvent| {
                let events = events.clone();
                async move {
                    let _ = events.send(event);
                    StatusCode::OK
                }
            }),
        )
        .with_state(WebhookVerifier::new([SigningSecret::parse(SECRET)?])?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let simulator = Simulator::start(
        SimulatorConfig {
            seed: SeedOptions {
                conversations: 120,
                ..SeedOptions::default()
            },
            webhook_targets: vec![WebhookTarget {
                url: hook,
                secret: SECRET.to_owned(),
            }],
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let client = Client::builder(simulator.api_key())
        .base_url(simulator.base_url())
        .rate_limit(RateLimit::per_second(10))
        .build()?;

    // Every conversation, following page tokens, within the simulator's 10 requests/second.
    let conversations: Vec<_> = client
        .list_conversations(ListConversations::all())
        .try_collect()
        .await?;
    println!("{} conversations", conversations.len());
    let first = &conversations[0];
    let participants: Vec<E164> = first
        .participants
        .iter()
        .filter_map(|p| p.as_e164().cloned())
        .collect();
    let messages: Vec<_> = client
        .list_messages(ListMessages::new(
            first.phone_number_id.clone(),
            participants.clone(),
        ))
        .try_collect()
        .await?;
    println!("{} messages with {:?}", messages.len(), participants);

    // Send, and wait for the signed delivery receipt.
    let from = PhoneNumberId::new(simulator.phone_numbers()[0].0.clone());
    let send = SendMessage::new(
        from.clone(),
        "+15555550123".parse()?,
        "Your bay is ready at 6pm.",
    )?;
    let sent = client.send_message(&send).await?;
    println!("sent {} ({})", sent.id, sent.status);
    let event = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await?
        .ok_or("receiver closed")?;
    println!("webhook: {} {}", event.event_type, event.id);

    // A send the API accepts but answers too late: the client cannot know if it went out.
    simulator.set_faults(Faults {
        next_send_timeouts: 1,
        send_timeout_delay: Duration::from_secs(3),
        ..Faults::default()
    });
    let impatient = Client::builder(simulator.api_key())
        .base_url(simulator.base_url())
        .timeout(Duration::from_millis(500))
        .build()?;
    match impatient.send_message(&send).await {
        Err(error) if error.is_ambiguous() => println!("ambiguous, not retried: {error}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("the simulator accepted {} send(s)", simulator.sent().len());
    simulator.stop().await;
    Ok(())
}
