//! How close the historical import runs to the API's rate limit, against the simulator.
//!
//! ```sh
//! cargo bench -p reference-server --bench import_rate -- --conversations 7000 --rate 100
//! ```
//!
//! The simulator enforces `--rate` requests per second per key (answering 429 beyond) and
//! the client is configured with the same limit, as a deployment would be with OpenPhone's
//! 10/s. The import runs into a fresh SQLite database; it prints requests made, requests per
//! conversation, the achieved rate and its ratio to the limit, and the 429s the simulator
//! answered.

#![allow(clippy::unwrap_used, missing_docs)]

use clap::Parser;
use openphone_client::{Client, RateLimit};
use openphone_simulator::{SeedOptions, Simulator, SimulatorConfig};
use reference_server::import::{ImportOptions, Importer};
use reference_server::store::Store;

#[derive(Debug, Parser)]
struct Args {
    /// Conversations in the simulated workspace.
    #[arg(long, default_value_t = 7000)]
    conversations: usize,
    /// The rate limit, requests per second (OpenPhone's is 10).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sim = Simulator::start(
        SimulatorConfig {
            api_keys: vec!["bench-key".to_owned()],
            seed: SeedOptions {
                conversations: args.conversations,
                ..SeedOptions::default()
            },
            rate_limit: Some((args.rate, std::time::Duration::from_secs(1))),
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (conversations, messages, calls) = sim.counts();
    let client = Client::builder("bench-key")
        .base_url(sim.base_url())
        .rate_limit(RateLimit::per_second(args.rate))
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("import-rate-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.join("bench.db").display()))
        .await
        .unwrap();
    let importer = Importer::new(
        client,
        store.clone(),
        reference_server::ingest::system_clock(),
        ImportOptions {
            checkpoint: "import".to_owned(),
            ..ImportOptions::default()
        },
    );
    let report = importer.run().await.unwrap();
    let stats = sim.stats();
    println!(
        "import_rate: {conversations} conversations, {messages} messages, {calls} calls; limit {} requests/s",
        args.rate
    );
    println!(
        "  requests {} ({:.2} per conversation), {:.1} s, achieved {:.2} requests/s = {:.3}x the limit",
        report.requests,
        report.requests as f64 / conversations as f64,
        report.seconds,
        report.rate(),
        report.rate() / f64::from(args.rate)
    );
    println!(
        "  simulator saw {} requests, {} answered 429; recorded {} objects, {} failures",
        stats.requests,
        stats.rate_limited,
        report.created(),
        report.failures.len()
    );
    for (kind, counts) in &report.kinds {
        println!(
            "  {kind:<12} {:>8} read {:>8} recorded",
            counts.checked, counts.created
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
    sim.stop().await;
}
