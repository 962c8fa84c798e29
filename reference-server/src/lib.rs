#![doc = include_str!("../README.md")]

pub mod app;
pub mod config;
mod error;
pub mod ingest;
pub mod store;

pub use app::{Application, router};
pub use config::Config;
pub use error::Error;
