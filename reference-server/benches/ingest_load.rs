//! Load generator for webhook ingestion, with its baseline measured in the same run.
//!
//! ```sh
//! cargo bench -p reference-server --bench ingest_load -- --concurrency 32 --events 20000 --rate 1000
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p reference-server --bench ingest_load
//! ```
//!
//! It starts the server in this process on a fresh database (a new PostgreSQL database on the
//! `DATABASE_URL` server, dropped afterwards, or a temporary SQLite file). Then, `--rounds`
//! times, each round on new events:
//!
//! 1. baseline: `--concurrency` tasks insert the same raw payloads, one row per autocommitted
//!    `INSERT`, into a new plain table of the same database, each task on a connection of
//!    its own held for the whole run (one round trip per insert: no pool checks);
//! 2. full ingestion (closed loop): `--concurrency` senders post signed events as fast as the
//!    server answers (HTTP, signature check, parse, dedupe, projection, commit). The events
//!    are signed and serialized before the clock starts, as OpenPhone signs them on its own
//!    machines, and each sender is a keep-alive connection that writes a request's bytes and
//!    reads the answer's (as `wrk` does): the sender stands for OpenPhone but shares these
//!    cores with the server, so it should take as little of them as it can;
//! 3. without HTTP: the same ingestion (parse, projection, group commit) through the server's
//!    `Ingestor`, at `--concurrency`, to show what the database part costs against the
//!    baseline apart from HTTP and signatures (which share the same cores).
//!
//! 4. HTTP alone: the same closed loop against a bare axum server, served as the server is
//!    (`axum::serve`, `TCP_NODELAY`), that answers each request with a short 200 and does
//!    nothing else: the floor that HTTP on this machine (both ends, loopback TCP) puts under
//!    full ingestion's CPU per event.
//!
//! Each round prints its rates and ratios, and the summary gives the median ratios: on a
//! shared machine the baseline alone has moved by half (10,100 to 15,400 events/s) within
//! one run, so a ratio is only taken between phases run back to back. Then an open loop posts events at `--rate`
//! per second for `--seconds` (through a pooled `reqwest` client, as many requests in flight
//! as it takes), each latency measured from its scheduled send time (so a stall counts against
//! every request it delays). Last, the thread feed (the `threads` job's first half) reads
//! everything the run stored into conversation threads; its rate is given against the full
//! ingestion rate.

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

// The allocator the `reference-server` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Rounds of baseline, full ingestion and ingestion without HTTP, one after the other;
    /// the ratios reported are the medians of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
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

/// Single-row autocommitted inserts of `bodies` (events `first..`) at `concurrency` into a new
/// table `table`; returns events per second.
async fn baseline(
    url: &str,
    table: &str,
    first: usize,
    bodies: Arc<Vec<String>>,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    macro_rules! run {
        ($pool:expr, $insert:expr) => {{
            let pool = $pool;
            let create = if url.starts_with("sqlite") {
                format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)")
            } else {
                format!("CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, delivery_key TEXT NOT NULL UNIQUE, body BYTEA NOT NULL)")
            };
            sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&pool)
            .await
            .unwrap();
            // Each task holds a connection of its own for the whole run, opened before the
            // clock starts: one round trip per insert (a pool pings each connection it takes
            // back).
            let mut connections = Vec::with_capacity(concurrency);
            for _ in 0..concurrency {
                connections.push(pool.acquire().await.unwrap());
            }
            let next = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let tasks: Vec<_> = connections
                .into_iter()
                .map(|mut connection| {
                    let (next, bodies, insert) = (next.clone(), bodies.clone(), $insert.clone());
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = bodies.get(index) else { return latencies };
                            let sent = Instant::now();
                            sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                                .bind(format!("webhook-id:msg_{}", first + index))
                                .bind(body.as_bytes())
                                .execute(&mut *connection)
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
            format!(
                "INSERT INTO {table} (delivery_key, body) VALUES (?1, ?2) ON CONFLICT (delivery_key) DO NOTHING"
            )
        )
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect(url)
            .await
            .unwrap();
        run!(
            pool,
            format!(
                "INSERT INTO {table} (delivery_key, body) VALUES ($1, $2) ON CONFLICT (delivery_key) DO NOTHING"
            )
        )
    }
}

/// A delivery as OpenPhone sends it: signed on its side, so signing is not the server's cost.
struct Request {
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Request {
    /// Event `index`, signed now under the delivery id `msg_{index}`.
    fn signed(secret: &SigningSecret, index: usize) -> Self {
        let body = event(index);
        let headers = secret
            .sign(
                &format!("msg_{index}"),
                OffsetDateTime::now_utc(),
                body.as_bytes(),
            )
            .unwrap();
        Self {
            headers,
            body: body.into(),
        }
    }

    /// The request as it goes on the wire, to `path` on `host`.
    fn wire(&self, path: &str, host: &str) -> Vec<u8> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n",
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

async fn post(client: &reqwest::Client, url: &reqwest::Url, request: &Request) -> bool {
    client
        .post(url.clone())
        .headers(request.headers.clone())
        .body(request.body.clone())
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// `events` new events parsed, projected and recorded through an [`Ingestor`] on `store` by
/// `concurrency` tasks: ingestion less HTTP and signature checks.
async fn without_http(
    store: &reference_server::store::Store,
    first: usize,
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
                    let event = reference_server::ingest::parse_event(body.as_bytes()).unwrap();
                    let delivery = NewDelivery {
                        delivery_key: format!("webhook-id:store_{}", first + index),
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

/// `requests` posted by `concurrency` senders as fast as the server answers, each sender a
/// keep-alive connection that writes the request's bytes, serialized before the clock starts,
/// and reads the answer's head and `content-length` bytes of body (as `wrk` does).
async fn closed_loop(
    url: &reqwest::Url,
    requests: Arc<Vec<Request>>,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let wire: Arc<Vec<Vec<u8>>> = Arc::new(
        requests
            .iter()
            .map(|request| request.wire(url.path(), &address))
            .collect(),
    );
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        connections.push(stream);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = connections
        .into_iter()
        .map(|mut stream| {
            let (wire, next) = (wire.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut buffer = vec![0_u8; 4096];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = wire.get(index) else {
                        return latencies;
                    };
                    let sent = Instant::now();
                    stream.write_all(request).await.unwrap();
                    let mut filled = 0;
                    loop {
                        if filled == buffer.len() {
                            buffer.resize(buffer.len() * 2, 0);
                        }
                        let read = stream.read(&mut buffer[filled..]).await.unwrap();
                        assert!(read > 0, "request {index}: connection closed");
                        filled += read;
                        if let Some(length) = answer_length(&buffer[..filled], index) {
                            assert_eq!(filled, length, "request {index}: a pipelined answer");
                            break;
                        }
                    }
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for sender in senders {
        latencies.extend(sender.await.unwrap());
    }
    (
        requests.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    )
}

/// A bare HTTP server on a random port of 127.0.0.1, served as the reference server is: it
/// reads each webhook request's body and answers 200 with a short JSON body. Returns its
/// webhook URL.
async fn bare_server() -> reqwest::Url {
    use axum::routing::post;
    let router = axum::Router::new().route(
        "/api/openphone/webhook",
        post(|body: bytes::Bytes| async move {
            axum::Json(serde_json::json!({ "status": "stored", "bytes": body.len() }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        stream.set_nodelay(true).unwrap();
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/api/openphone/webhook")
        .parse()
        .unwrap()
}

/// The length of the HTTP answer at the start of `bytes` once it is all there (head and
/// `content-length` bytes of body); panics unless it is a 2xx.
fn answer_length(bytes: &[u8], index: usize) -> Option<usize> {
    let head_end = bytes.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..head_end]).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 2"),
        "request {index} failed: {head}"
    );
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("an answer with content-length");
    (bytes.len() >= head_end + length).then_some(head_end + length)
}

/// CPU time a process has used (user and system), and that of its children it has reaped
/// (PostgreSQL's postmaster reaps the backends that end), from its `/proc/<pid>/stat` (ticks
/// of 10 ms), with its command name.
fn cpu_of(stat: &str) -> Option<(&str, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let command = head.split_once('(')?.1;
    // Fields after the command's closing parenthesis: utime, stime, cutime and cstime are
    // the 12th to the 15th.
    let ticks = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|field| field.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 on the platforms this runs on.
    Some((command, Duration::from_millis(ticks * 10)))
}

/// CPU time this process has used, or `None` where `/proc` cannot be read.
fn process_cpu() -> Option<Duration> {
    Some(cpu_of(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1)
}

/// CPU time the machine's `postgres` processes have used, those that ended included (through
/// the postmaster's reaped children), or `None` where `/proc` cannot be read.
fn database_cpu() -> Option<Duration> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some(("postgres", cpu)) = cpu_of(&stat)
        {
            total = Some(total.unwrap_or(Duration::ZERO) + cpu);
        }
    }
    // None seen: the database runs elsewhere.
    total
}

/// CPU readings at the start of a phase: this process, the database.
struct Cpu(Option<Duration>, Option<Duration>);

impl Cpu {
    fn now() -> Self {
        Self(process_cpu(), database_cpu())
    }

    /// Microseconds of CPU per event since `self`: this process's, the database's.
    fn per_event(&self, events: usize) -> (Option<f64>, Option<f64>) {
        let per_event = |now: Option<Duration>, before: Option<Duration>| {
            Some(now?.checked_sub(before?)?.as_secs_f64() * 1e6 / events as f64)
        };
        (
            per_event(process_cpu(), self.0),
            per_event(database_cpu(), self.1),
        )
    }
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(args.rounds > 0, "--rounds must be at least 1");
    let db = database(&args).await;
    let backend = if db.cleanup.is_some() {
        "postgres"
    } else {
        "sqlite"
    };

    // The server, in this process.
    let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), db.dir.clone());
    config.database_url = Some(Redacted(db.url.clone()));
    config.webhook_secrets = Some(Redacted(SECRET.to_owned()));
    config.self_check_interval_secs = 0;
    // The thread feed re-reads the log every 5 minutes on the clock: crossing such a mark, a
    // run would measure it in whichever phase it landed.
    config.thread_sweep_minutes = 24 * 60;
    let app = Application::build(&config).await.unwrap();
    let url: reqwest::Url = format!("http://{}/api/openphone/webhook", app.local_addr().unwrap())
        .parse()
        .unwrap();
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
    let bare = bare_server().await;

    println!(
        "ingest_load on {backend}: {} rounds of {} events, concurrency {}",
        args.rounds, args.events, args.concurrency
    );
    println!("  round   baseline   full ingestion   ratio   without HTTP   ratio   (events/s)");
    let (mut full_ratios, mut store_ratios, mut full_rates) = (Vec::new(), Vec::new(), Vec::new());
    // CPU per event in each phase (baseline, full ingestion, without HTTP): this process's
    // (the baseline's client; the server and the sender; the server's ingestion) and the
    // database's.
    let mut cpu: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    // HTTP alone: events per second, and this process's CPU per event.
    let (mut bare_rates, mut bare_cpu) = (Vec::new(), Vec::new());
    let mut database: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut all = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        // Each round writes new events: ids past every earlier round's.
        let first = round * args.events * 3;
        // 1. Baseline: single-row inserts of the same payloads into a new plain table.
        let bodies: Arc<Vec<String>> = Arc::new((first..first + args.events).map(event).collect());
        let before = Cpu::now();
        let (baseline_rate, baseline_latencies) = baseline(
            &db.url,
            &format!("bench_baseline_{round}"),
            first,
            bodies,
            args.concurrency,
        )
        .await;
        let (process, db_cpu) = before.per_event(args.events);
        cpu[0].extend(process);
        database[0].extend(db_cpu);
        // 2. Full ingestion. Signed before the clock starts: OpenPhone signs on its own
        //    machines, and the sender shares these cores with the server.
        let requests: Arc<Vec<Request>> = Arc::new(
            (first + args.events..first + 2 * args.events)
                .map(|index| Request::signed(&secret, index))
                .collect(),
        );
        let before = Cpu::now();
        let (full_rate, full_latencies) = closed_loop(&url, requests, args.concurrency).await;
        let (process, db_cpu) = before.per_event(args.events);
        cpu[1].extend(process);
        database[1].extend(db_cpu);
        // 3. The same ingestion without HTTP: parse, project and group-commit new events
        //    through an `Ingestor` on the server's store, at the same concurrency.
        let before = Cpu::now();
        let (store_rate, store_latencies) = without_http(
            &store,
            first + 2 * args.events,
            args.events,
            args.concurrency,
        )
        .await;
        let (process, db_cpu) = before.per_event(args.events);
        cpu[2].extend(process);
        database[2].extend(db_cpu);
        // 4. HTTP alone, on requests like full ingestion's.
        let requests: Arc<Vec<Request>> = Arc::new(
            (first..first + args.events)
                .map(|index| Request::signed(&secret, index))
                .collect(),
        );
        let before = Cpu::now();
        let (bare_rate, _) = closed_loop(&bare, requests, args.concurrency).await;
        bare_cpu.extend(before.per_event(args.events).0);
        bare_rates.push(bare_rate);
        println!(
            "  {:>5}   {baseline_rate:>8.0}   {full_rate:>14.0}   {:>4.2}x   {store_rate:>12.0}   {:>4.2}x",
            round + 1,
            full_rate / baseline_rate,
            store_rate / baseline_rate
        );
        full_ratios.push(full_rate / baseline_rate);
        full_rates.push(full_rate);
        store_ratios.push(store_rate / baseline_rate);
        all[0].extend(baseline_latencies);
        all[1].extend(full_latencies);
        all[2].extend(store_latencies);
    }
    assert_eq!(
        store.delivery_count().await.unwrap(),
        (2 * args.rounds * args.events) as i64
    );
    let [baseline_latencies, full_latencies, store_latencies] = all;
    println!(
        "  median ratio, full ingestion / baseline: {:.2}x",
        median(full_ratios)
    );
    println!(
        "  median ratio, without HTTP / baseline:   {:.2}x",
        median(store_ratios)
    );
    if cpu.iter().all(|phase| !phase.is_empty()) {
        let [client, server, store_only] = cpu.map(median);
        println!(
            "  this process's CPU per event (median): baseline's client {client:.1} µs, server and sender {server:.1} µs, ingestion without HTTP {store_only:.1} µs"
        );
    }
    println!(
        "  HTTP alone (a bare server answering 200, the same sender): {:.0} events/s (median){}",
        median(bare_rates),
        if bare_cpu.is_empty() {
            String::new()
        } else {
            format!(", this process's CPU per event {:.1} µs", median(bare_cpu))
        }
    );
    if db.cleanup.is_some() && database.iter().all(|phase| !phase.is_empty()) {
        let [baseline, full, store_only] = database.map(median);
        println!(
            "  PostgreSQL's CPU per event (median, its processes on this machine): baseline {baseline:.1} µs, full ingestion {full:.1} µs, without HTTP {store_only:.1} µs"
        );
    }
    println!(
        "  latency, baseline (single-row inserts): {}",
        percentiles(baseline_latencies)
    );
    println!(
        "  latency, full ingestion (closed loop):  {}",
        percentiles(full_latencies)
    );
    println!(
        "  latency, ingestion without HTTP:        {}",
        percentiles(store_latencies)
    );

    // 4. Open loop at a fixed rate, new events.
    let total = usize::try_from(args.rate * args.seconds).unwrap();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let first = args.rounds * args.events * 3;
    let open_started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        let scheduled = open_started + interval * u32::try_from(n).unwrap();
        tokio::time::sleep_until(scheduled).await;
        let index = first + n;
        let request = Request::signed(&secret, index);
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            assert!(
                post(&client, &url, &request).await,
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
        (2 * args.rounds * args.events + total) as i64
    );
    println!(
        "  open loop at {} events/s for {} s: achieved {open_rate:.0} events/s, {}",
        args.rate,
        args.seconds,
        percentiles(open_latencies)
    );

    // 5. The threads job's feed over everything this run stored, against the full ingestion
    //    rate: a feed slower than ingestion falls behind under sustained load.
    let stored = 2 * args.rounds * args.events + total;
    let feed_started = Instant::now();
    let fed = reference_server::threads::feed(
        &store,
        OffsetDateTime::now_utc(),
        &reference_server::scheduler::Stop::never(),
    )
    .await
    .unwrap();
    let feed_rate = stored as f64 / feed_started.elapsed().as_secs_f64();
    assert_eq!(fed.appended, stored as u64);
    println!(
        "  thread feed of the {stored} deliveries stored: {feed_rate:.0} deliveries/s, {:.2}x the median full ingestion rate",
        feed_rate / median(full_rates)
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();

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
