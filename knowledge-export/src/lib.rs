#![doc = include_str!("../README.md")]

pub mod conformance;
mod error;
mod exporter;
pub mod format;
mod insight;
pub mod prompt;
pub mod providers;
mod redact;
pub mod sop;
mod store;

pub use error::Error;
pub use exporter::{
    CallDetails, ExportOptions, ExportReport, Exporter, ExporterConfig, NoCallDetails, StopWhen,
    batches,
};
pub use insight::{Confidence, Insight, NewInsight, Review, parse};
pub use redact::Redactor;
pub use store::{Batch, FailedBatch, InsightStore, MemoryInsightStore};
