#![doc = include_str!("../README.md")]

pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod campaign_api;
pub mod campaign_store;
pub mod campaigns;
pub mod compliance;
pub mod config;
pub mod contacts;
mod error;
pub mod event_log;
pub mod forward;
pub mod group_commit;
pub mod health_check;
pub mod import;
pub mod ingest;
pub mod live;
pub mod media;
pub mod messaging;
pub mod metrics;
pub mod openapi;
pub mod projection;
pub mod reads;
pub mod reconcile;
pub mod scheduler;
pub mod self_check;
pub mod store;
mod store_sql;
pub mod suggestions;
pub mod thread_api;
pub mod thread_store;
pub mod threads;

pub use app::{Application, Services, Workers, router};
pub use config::Config;
pub use error::{Error, ErrorBody};
