#![doc = include_str!("../README.md")]

mod api;
mod client;
mod error;
mod limiter;
pub mod model;
mod pagination;
mod retry;

pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use error::{ApiError, Error, FieldError};
pub use limiter::RateLimit;
pub use model::message::validate_content;
pub use openphone_types as types;
pub use pagination::{CursorPage, Page};
pub use retry::RetryPolicy;
