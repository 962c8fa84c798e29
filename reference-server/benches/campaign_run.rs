//! The cost of one campaign run against the size of its ledger.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p reference-server --bench campaign_run
//! cargo bench -p reference-server --bench campaign_run -- --sqlite
//! ```
//!
//! Two campaigns in one fresh database (a new PostgreSQL database on the `DATABASE_URL`
//! server, dropped afterwards, or a temporary SQLite file): the baseline with 1,000
//! recipients and the large one with 100,000 (`--large`). Each run claims `--per-run` (100)
//! recipients and sends each through the whole engine path (opt-out and history checks,
//! rendering, the `sending` record, the outcome) to a sender that answers at once, so what
//! is measured is the database work. Runs alternate between the two campaigns; the median of
//! `--runs` runs of each is printed with the ratio large / baseline.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use openphone_types::E164;
use reference_server::campaigns::DbHistory;
use reference_server::store::Store;
use sms_campaigns::{
    CampaignSpec, CampaignStore, Engine, EngineConfig, Error, NewContact, NewRecipient,
    OutgoingText, Schedule, SendResult, Sender, Weekday,
};
use sqlx::{Connection, Executor, PgConnection};
use time::OffsetDateTime;

#[derive(Debug, Parser)]
struct Args {
    /// Recipients of the baseline campaign.
    #[arg(long, default_value_t = 1_000)]
    baseline: u32,
    /// Recipients of the large campaign.
    #[arg(long, default_value_t = 100_000)]
    large: u32,
    /// Sends per run.
    #[arg(long, default_value_t = 100)]
    per_run: u32,
    /// Runs of each campaign.
    #[arg(long, default_value_t = 7)]
    runs: u32,
    /// Use SQLite even when `DATABASE_URL` is set.
    #[arg(long)]
    sqlite: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Answers every send at once.
struct Instant200;

impl Sender for Instant200 {
    async fn send(&self, message: &OutgoingText) -> SendResult {
        SendResult::Sent {
            message_id: format!("AC{}", message.to.as_str()),
        }
    }

    async fn find(&self, _: &OutgoingText, _: OffsetDateTime) -> Result<Option<String>, Error> {
        Ok(None)
    }
}

fn number(n: u32) -> E164 {
    // Distinct valid-looking numbers: +1 212 2xx xxxx.
    E164::parse(&format!("+1212{:07}", 2_000_000 + n)).unwrap()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("campaign-run-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (url, cleanup) = match std::env::var("DATABASE_URL") {
        Ok(server) if server.starts_with("postgres") && !args.sqlite => {
            let name = format!("rs_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&server).await.unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some((server.clone(), name)))
        }
        _ => (format!("sqlite://{}", dir.join("bench.db").display()), None),
    };
    let store = Store::connect(&url).await.unwrap();
    println!(
        "backend: {}; {} sends per run, {} runs each",
        store.backend(),
        args.per_run,
        args.runs
    );

    let start = time::macros::datetime!(2026-11-30 09:00 UTC);
    let now = Arc::new(Mutex::new(start));
    let clock_now = now.clone();
    let engine = Engine::new(
        store.clone(),
        Instant200,
        DbHistory::new(store.clone()),
        EngineConfig::new("bench", "Acme"),
        Arc::new(move || *clock_now.lock().unwrap()),
    );
    // The contacts a run renders: the ledgers cycle through them (rendering reads one
    // contact per recipient; the numbers in the ledger are all distinct).
    let mut contacts = Vec::new();
    for i in 0..args.per_run {
        let (contact, _) = store
            .upsert_contact(
                NewContact {
                    phone: Some(number(10_000_000 - 1 - i)),
                    first_name: Some(format!("P{i}")),
                    ..NewContact::default()
                },
                start,
            )
            .await
            .unwrap();
        contacts.push(contact.id);
    }
    let mut campaigns = Vec::new();
    for (label, size, offset) in [
        ("baseline", args.baseline, 0),
        ("large", args.large, args.baseline),
    ] {
        let list = store.create_list(label, start).await.unwrap();
        let spec = CampaignSpec {
            name: label.to_owned(),
            message_a: "Hi {{first_name}}, your inspection is due".to_owned(),
            message_b: Some("{{first_name}}: book your inspection".to_owned()),
            list_id: list.id,
            sender: number(9_999_999),
            schedule: Schedule {
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ],
                send_time: "10:00".to_owned(),
                timezone: "UTC".to_owned(),
                per_run: args.per_run,
            },
            opt_out_text: None,
        };
        let campaign = engine.create(&spec).await.unwrap();
        let recipients: Vec<NewRecipient> = (0..size)
            .map(|i| NewRecipient {
                contact_id: contacts[(i % args.per_run) as usize].clone(),
                phone: number(offset + i),
            })
            .collect();
        let began = Instant::now();
        store
            .activate(&campaign.id, recipients, None, start)
            .await
            .unwrap();
        println!(
            "  {label}: {size} recipients frozen into the ledger in {:.2?}",
            began.elapsed()
        );
        campaigns.push((label, campaign.id));
    }
    let mut timings: Vec<Vec<Duration>> = vec![Vec::new(), Vec::new()];
    for run in 0..args.runs {
        let slot = (start + time::Duration::days(i64::from(run))).unix_timestamp() + 3600;
        *now.lock().unwrap() = OffsetDateTime::from_unix_timestamp(slot).unwrap();
        for (index, (_, id)) in campaigns.iter().enumerate() {
            let campaign = store.campaign(id).await.unwrap();
            let began = Instant::now();
            let report = engine.run(&campaign, slot).await.unwrap();
            timings[index].push(began.elapsed());
            assert_eq!(report.sent, u64::from(args.per_run), "{report:?}");
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let baseline = median(&mut timings[0]);
    let large = median(&mut timings[1]);
    println!(
        "  run of {} sends: baseline ({} recipients) {baseline:.2?}, large ({} recipients) {large:.2?}: ratio {:.2}x",
        args.per_run,
        args.baseline,
        args.large,
        large.as_secs_f64() / baseline.as_secs_f64()
    );
    store.close().await;
    if let Some((server, name)) = cleanup {
        let mut admin = PgConnection::connect(&server).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}
