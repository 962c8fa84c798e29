//! Load generator for webhook ingestion, with its baseline measured in the same run.
//!
//! ```sh
//! cargo bench -p reference-server --bench ingest_load -- --concurrency 32 --events 20000 --rate 1000
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p reference-server --bench ingest_load
//! ```
//!
//! It starts the server in this process on a fresh database (a new PostgreSQL database on the
//! `DATABASE_URL` server, dropped afterwards, or a temporary SQLite file), then:
//!
//! 1. baseline: `--concurrency` tasks insert the same raw payloads, one row per autocommitted
//!    `INSERT`, into a plain table of the same database, over a pool of as many connections;
//! 2. closed loop: `--concurrency` senders post the signed events as fast as the server
//!    answers (full ingestion: HTTP, signature check, parse, dedupe, projection, commit);
//! 3. open loop: events posted at `--rate` per second for `--seconds`, each latency measured
//!    from its scheduled send time (so a stall counts against every request it delays).
//!
//! 4. without HTTP: the same ingestion (parse, projection, group commit) of new events through
//!    the server's `Ingestor`, at `--concurrency`, to show what the database part costs
//!    against the baseline apart from HTTP and signatures (which share the same cores).
//!
//! It prints throughput, latency percentiles, and the ratios to the baseline.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use openphone_webhooks::SigningSecret;
use reference_server::config::Redacted;
use reference_server::{Application, Config};
use sqlx::{Connection, Executor, PgConnection};
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Parser)]
struct Args {
    /// Requests in flight at once (closed loop and baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events in the closed loop and the baseline.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events per second in the open loop.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Length of the open loop, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Use SQLite even when `DATABASE_URL` is set.
    #[arg(long)]
    sqlite: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A message event; `index` picks one of 1,000 conversations.
fn event(index: usize) -> String {
    let sender = index % 1000;
    // One event per millisecond of a day, so conversations keep moving.
    let at = time::macros::datetime!(2026-04-13 00:00 UTC)
        + time::Duration::milliseconds(i64::try_from(index).unwrap());
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"{{"id":"EV{index}","apiVersion":"2026-03-30","createdAt":"{at}","type":"message.received","data":{{"resource":{{"id":"AC{index:07}","direction":"incoming","text":"Hi, is bay {sender} free at 6pm tonight? We are four people and would like to book for two hours.","media":[],"status":"received","createdAt":"{at}"}},"context":{{"orgId":"OR1","phoneNumberId":"PN1","senderIdentifier":"+1555100{sender:04}","recipientIdentifiers":["+15550009999"]}},"links":{{"quo":null}}}}}}"#
    )
}

struct Database {
    url: String,
    cleanup: Option<(String, String)>,
    dir: std::path::PathBuf,
}

async fn database(args: &Args) -> Database {
    let dir = std::env::temp_dir().join(format!("ingest-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    match std::env::var("DATABASE_URL") {
        Ok(server) if server.starts_with("postgres") && !args.sqlite => {
            let name = format!("rs_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&server).await.unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            Database {
                url: format!("{base}/{name}"),
                cleanup: Some((server.clone(), name)),
                dir,
            }
        }
        _ => Database {
            url: format!("sqlite://{}", dir.join("bench.db").display()),
            cleanup: None,
            dir,
        },
    }
}

/// Latency percentiles in milliseconds.
fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}

/// Single-row autocommitted inserts of `bodies` at `concurrency`; returns events per second.
async fn baseline(url: &str, bodies: Arc<Vec<String>>, concurrency: usize) -> (f64, Vec<Duration>) {
    macro_rules! run {
        ($pool:expr, $insert:expr) => {{
            let pool = $pool;
            let create = if url.starts_with("sqlite") {
                "CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)"
            } else {
                "CREATE TABLE bench_baseline (id BIGSERIAL PRIMARY KEY, delivery_key TEXT NOT NULL UNIQUE, body BYTEA NOT NULL)"
            };
            sqlx::query(create)
            .execute(&pool)
            .await
            .unwrap();
            let next = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (pool, next, bodies) = (pool.clone(), next.clone(), bodies.clone());
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = bodies.get(index) else { return latencies };
                            let sent = Instant::now();
                            sqlx::query($insert)
                                .bind(format!("webhook-id:msg_{index}"))
                                .bind(body.as_bytes())
                                .execute(&pool)
                                .await
                                .unwrap();
                            latencies.push(sent.elapsed());
                        }
                    })
                })
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let rate = bodies.len() as f64 / started.elapsed().as_secs_f64();
            pool.close().await;
            (rate, latencies)
        }};
    }
    let connections = u32::try_from(concurrency).unwrap_or(u32::MAX);
    if url.starts_with("sqlite") {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(
                options
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        run!(
            pool,
            "INSERT INTO bench_baseline (delivery_key, body) VALUES (?1, ?2) ON CONFLICT (delivery_key) DO NOTHING"
        )
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect(url)
            .await
            .unwrap();
        run!(
            pool,
            "INSERT INTO bench_baseline (delivery_key, body) VALUES ($1, $2) ON CONFLICT (delivery_key) DO NOTHING"
        )
    }
}

struct Request {
    delivery_id: String,
    body: String,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &SigningSecret,
    request: &Request,
) -> bool {
    let headers = secret
        .sign(
            &request.delivery_id,
            OffsetDateTime::now_utc(),
            request.body.as_bytes(),
        )
        .unwrap();
    client
        .post(url)
        .headers(headers)
        .body(request.body.clone())
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// `events` new events parsed, projected and recorded through an [`Ingestor`] on `store` by
/// `concurrency` tasks: ingestion less HTTP and signature checks.
async fn without_http(
    store: &reference_server::store::Store,
    events: usize,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    use reference_server::group_commit::Ingestor;
    use reference_server::store::NewDelivery;
    let (ingestor, writers) = Ingestor::start(
        store.clone(),
        reference_server::metrics::Metrics::default(),
        None,
    );
    // Ids past the closed and open loops' events.
    let first = 10_000_000;
    let bodies: Arc<Vec<String>> = Arc::new((first..first + events).map(event).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (ingestor, next, bodies) = (ingestor.clone(), next.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else {
                        return latencies;
                    };
                    let sent = Instant::now();
                    let event = openphone_webhooks::Event::parse(body.as_bytes()).unwrap();
                    let delivery = NewDelivery {
                        delivery_key: format!("webhook-id:store_{index}"),
                        scheme: "standard",
                        event_id: Some(event.id.to_string()),
                        event_type: Some(event.event_type.to_string()),
                        parse_error: None,
                        signed_at: OffsetDateTime::now_utc(),
                        received_at: OffsetDateTime::now_utc(),
                        changes: reference_server::projection::changes(&event, &Default::default()),
                        body: body.as_bytes().to_vec(),
                    };
                    let recorded = ingestor.record(delivery).await.unwrap();
                    assert!(matches!(
                        recorded,
                        reference_server::store::Recorded::New(_)
                    ));
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    drop(ingestor);
    writers.drained().await;
    (rate, latencies)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = database(&args).await;
    let backend = if db.cleanup.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let bodies: Arc<Vec<String>> = Arc::new((0..args.events).map(event).collect());

    // 1. Baseline.
    let (baseline_rate, baseline_latencies) =
        baseline(&db.url, bodies.clone(), args.concurrency).await;

    // 2. The server, in this process.
    let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), db.dir.clone());
    config.database_url = Some(Redacted(db.url.clone()));
    config.webhook_secrets = Some(Redacted(SECRET.to_owned()));
    config.self_check_interval_secs = 0;
    let app = Application::build(&config).await.unwrap();
    let url = format!("http://{}/api/openphone/webhook", app.local_addr().unwrap());
    let store = app.store().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()
        .unwrap();
    let secret = SigningSecret::parse(SECRET).unwrap();
    let requests: Arc<Vec<Request>> = Arc::new(
        bodies
            .iter()
            .enumerate()
            .map(|(index, body)| Request {
                delivery_id: format!("msg_{index}"),
                body: body.clone(),
            })
            .collect(),
    );

    // Closed loop.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, secret, requests, next) = (
                client.clone(),
                url.clone(),
                secret.clone(),
                requests.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(index) else {
                        return latencies;
                    };
                    let sent = Instant::now();
                    assert!(
                        post(&client, &url, &secret, request).await,
                        "request {index} failed"
                    );
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut closed_latencies = Vec::new();
    for sender in senders {
        closed_latencies.extend(sender.await.unwrap());
    }
    let closed_rate = args.events as f64 / started.elapsed().as_secs_f64();
    assert_eq!(store.delivery_count().await.unwrap(), args.events as i64);

    // Open loop at a fixed rate, new events.
    let total = usize::try_from(args.rate * args.seconds).unwrap();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let open_started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        let scheduled = open_started + interval * u32::try_from(n).unwrap();
        tokio::time::sleep_until(scheduled).await;
        let index = args.events + n;
        let request = Request {
            delivery_id: format!("msg_{index}"),
            body: event(index),
        };
        let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            assert!(
                post(&client, &url, &secret, &request).await,
                "request {index} failed"
            );
            scheduled.elapsed()
        }));
    }
    let mut open_latencies = Vec::with_capacity(total);
    for task in tasks {
        open_latencies.push(task.await.unwrap());
    }
    let open_rate = total as f64 / open_started.elapsed().as_secs_f64();
    assert_eq!(
        store.delivery_count().await.unwrap(),
        (args.events + total) as i64
    );
    // 4. The same ingestion without HTTP: parse, project and group-commit new events through
    //    an `Ingestor` on the server's store, at the same concurrency.
    let (store_rate, store_latencies) = without_http(&store, args.events, args.concurrency).await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    println!(
        "ingest_load on {backend}: {} events, concurrency {}",
        args.events, args.concurrency
    );
    println!(
        "  baseline (single-row inserts):  {baseline_rate:>8.0} events/s  {}",
        percentiles(baseline_latencies)
    );
    println!(
        "  full ingestion (closed loop):   {closed_rate:>8.0} events/s  {}",
        percentiles(closed_latencies)
    );
    println!(
        "  ratio ingestion / baseline:     {:>8.2}x",
        closed_rate / baseline_rate
    );
    println!(
        "  ingestion without HTTP:         {store_rate:>8.0} events/s  {}",
        percentiles(store_latencies)
    );
    println!(
        "  ratio without HTTP / baseline:  {:>8.2}x",
        store_rate / baseline_rate
    );
    println!(
        "  open loop at {} events/s for {} s: achieved {open_rate:.0} events/s, {}",
        args.rate,
        args.seconds,
        percentiles(open_latencies)
    );

    if let Some((server, name)) = db.cleanup {
        let mut admin = PgConnection::connect(&server).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(db.dir);
}
