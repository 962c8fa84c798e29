//! Integration tests of the reference server: each case runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL cases read `DATABASE_URL` (a server URL; each test creates and drops its own
//! database). Without it they print a skip line, unless `REQUIRE_POSTGRES=1`, which turns the
//! skip into a failure (CI sets it).

// Test cases unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod activity;
mod alerts;
mod api;
mod campaigns;
mod cli;
mod compliance;
mod contacts;
mod crash;
mod dev_tools;
mod faults;
mod health_check;
mod helpers;
mod import;
mod ingest;
mod live;
mod media;
mod messaging;
mod openapi;
mod operations;
mod projection;
mod replicas;
mod scheduler;
mod store;
mod threads;

/// Stamps one `#[tokio::test]` per backend for each listed case `async fn(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}
