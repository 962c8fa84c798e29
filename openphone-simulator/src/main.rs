//! `openphone-simulator`: run a simulated OpenPhone API from the command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use openphone_simulator::{
    DeliveryOptions, Faults, SeedOptions, Simulator, SimulatorConfig, WebhookTarget,
};
use tracing_subscriber::EnvFilter;

/// A simulated OpenPhone (Quo) API: seeded workspace, real pagination, per-key rate limit,
/// fault injection and signed webhook deliveries. See docs/simulator.md.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SIMULATOR_ADDR", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// API keys to accept, comma-separated.
    #[arg(
        long,
        env = "SIMULATOR_API_KEYS",
        default_value = "sim-key",
        value_delimiter = ','
    )]
    api_keys: Vec<String>,
    /// Seed of the generated workspace.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Conversations to generate.
    #[arg(long, default_value_t = 50)]
    conversations: usize,
    /// Most messages per conversation.
    #[arg(long, default_value_t = 8)]
    max_messages: u32,
    /// Most calls per conversation.
    #[arg(long, default_value_t = 2)]
    max_calls: u32,
    /// Requests per second allowed per key (0: unlimited).
    #[arg(long, default_value_t = 10)]
    rate_limit: u32,
    /// Deliver webhooks to URL=SECRET (a whsec_ secret: Standard Webhooks, 2026-03-30
    /// payloads; a base64 secret: legacy signature, v4 payloads). Repeatable.
    #[arg(long = "webhook", value_name = "URL=SECRET")]
    webhooks: Vec<String>,
    /// Deliver a share (0 to 1) of webhooks twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Deliver the events of one activity in reverse order.
    #[arg(long)]
    reorder: bool,
    /// Added latency per API response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0 to 1) of API requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let mut webhook_targets = Vec::new();
    for spec in &cli.webhooks {
        let Some((url, secret)) = spec.split_once('=') else {
            eprintln!("error: --webhook takes URL=SECRET");
            return std::process::ExitCode::FAILURE;
        };
        webhook_targets.push(WebhookTarget {
            url: url.to_owned(),
            secret: secret.to_owned(),
        });
    }
    let config = SimulatorConfig {
        api_keys: cli.api_keys,
        seed: SeedOptions {
            seed: cli.seed,
            conversations: cli.conversations,
            messages_per_conversation: (1, cli.max_messages.max(1)),
            calls_per_conversation: (0, cli.max_calls),
            ..SeedOptions::default()
        },
        rate_limit: (cli.rate_limit > 0).then_some((cli.rate_limit, Duration::from_secs(1))),
        faults: Faults {
            latency: Duration::from_millis(cli.latency_ms),
            server_error_rate: cli.error_rate,
            ..Faults::default()
        },
        webhook_targets,
        delivery: DeliveryOptions {
            duplicate_rate: cli.duplicate_rate,
            reorder: cli.reorder,
            ..DeliveryOptions::default()
        },
    };
    let simulator = match Simulator::start(config, cli.listen).await {
        Ok(simulator) => simulator,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (conversations, messages, calls) = simulator.counts();
    println!(
        "openphone-simulator at {} (key {}): {conversations} conversations, {messages} messages, {calls} calls",
        simulator.base_url(),
        simulator.api_key()
    );
    for (id, number) in simulator.phone_numbers() {
        println!("  number {number} ({id})");
    }
    println!(
        "  script traffic: POST {}/_sim/inbound/message {{\"from\",\"to\",\"text\"}}",
        simulator.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    simulator.stop().await;
    std::process::ExitCode::SUCCESS
}
