//! The cost of a thread sweep against the number of open threads (PostgreSQL).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p reference-server --bench thread_sweep
//! ```
//!
//! In a fresh database (created on the `DATABASE_URL` server, dropped afterwards): the
//! baseline sweep resolves `--due` (10,000) idle threads when they are the only open threads;
//! then `--open` (1,000,000) open threads are added, of which `--due` are idle, and the same
//! sweep runs again. Each idle thread has 3 entries (its snapshot reads them). The ratio
//! large / baseline shows whether the cost follows the threads resolved or all threads.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use clap::Parser;
use reference_server::store::Store;
use sqlx::{Connection, Executor, PgConnection};
use thread_resolver::Resolver;

#[derive(Debug, Parser)]
struct Args {
    /// Idle threads each sweep resolves.
    #[arg(long, default_value_t = 10_000)]
    due: i64,
    /// Open threads in the large run.
    #[arg(long, default_value_t = 1_000_000)]
    open: i64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const NOW_MS: i64 = 1_796_000_000_000;

/// Inserts `count` open threads from key number `first`, last active `age_ms` before now,
/// with `entries` entries each.
async fn insert(conn: &mut PgConnection, first: i64, count: i64, age_ms: i64, entries: i64) {
    let at = NOW_MS - age_ms;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO threads (thread_key, state, entries, version, opened_ms, last_activity_ms) \
         SELECT 'PN1|+1' || g, 'open', {entries}, {entries}, {at}, {at} FROM generate_series({first}, {}) g",
        first + count - 1
    )))
    .await
    .unwrap();
    if entries > 0 {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO thread_entries (thread_id, entry_id, kind, direction, from_address, text, at_ms) \
             SELECT t.id, t.thread_key || ':' || e, 'message', 'incoming', NULL, 'Is bay 3 free at seven?', {at} \
             FROM threads t CROSS JOIN generate_series(1, {entries}) e \
             WHERE t.state = 'open' AND t.last_activity_ms = {at} AND t.thread_key >= 'PN1|+1{first}' AND t.entries = {entries}"
        )))
        .await
        .unwrap();
    }
    conn.execute("ANALYZE threads").await.unwrap();
    conn.execute("ANALYZE thread_entries").await.unwrap();
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let Ok(server) = std::env::var("DATABASE_URL") else {
        eprintln!("thread_sweep measures PostgreSQL: set DATABASE_URL to a server URL");
        std::process::exit(2);
    };
    let name = format!("rs_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");
    let store = Store::connect(&url).await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let resolver = Resolver::new(store.clone(), time::Duration::minutes(30)).unwrap();
    let now =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(NOW_MS) * 1_000_000).unwrap();
    let hour = 3_600_000;

    insert(&mut conn, 1, args.due, 2 * hour, 3).await;
    let began = Instant::now();
    let baseline_sweep = resolver.sweep(now).await.unwrap();
    let baseline = began.elapsed();
    assert_eq!(baseline_sweep.resolved, args.due as u64);

    let recent = args.open - args.due;
    let began = Instant::now();
    insert(&mut conn, 10_000_000, recent, 60_000, 0).await;
    insert(&mut conn, 20_000_000, args.due, 2 * hour, 3).await;
    println!(
        "  {} open threads inserted in {:.1?}",
        args.open,
        began.elapsed()
    );
    let began = Instant::now();
    let large_sweep = resolver.sweep(now).await.unwrap();
    let large = began.elapsed();
    assert_eq!(large_sweep.resolved, args.due as u64);

    println!(
        "  sweep resolving {} threads: alone {baseline:.2?}, among {} open {large:.2?}: ratio {:.2}x ({:.0} threads/s)",
        args.due,
        args.open,
        large.as_secs_f64() / baseline.as_secs_f64(),
        args.due as f64 / large.as_secs_f64()
    );
    store.close().await;
    drop(conn);
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
