//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! A handful of counters and histograms kept in memory per process (each replica is scraped
//! on its own); gauges of the database pool and the media queue are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Upper bounds (seconds) of the health check latency histogram.
const HEALTH_BUCKETS: [f64; 8] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Upper bounds of the batch size histogram.
const SIZE_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let join = |extra: &str| {
            if labels.is_empty() {
                format!("{{{extra}}}")
            } else {
                format!("{{{labels},{extra}}}")
            }
        };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{} {count}",
                join(&format!("le=\"{bound}\""))
            );
        }
        let _ = writeln!(out, "{name}_bucket{} {}", join("le=\"+Inf\""), self.count);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// `(name, labels)` to value.
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The process's metrics. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

/// What became of a webhook delivery, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Recorded for the first time.
    Stored,
    /// Recorded for the first time without its records, which the database refused (kept
    /// raw; see [`crate::store::Recorded::RawOnly`]).
    StoredRawOnly,
    /// Already recorded.
    Duplicate,
    /// Refused: bad or missing signature (401).
    Unauthorized,
    /// Refused: body over the limit (413).
    TooLarge,
    /// Refused: unreadable request (400).
    BadRequest,
    /// Not recorded: database failure or no secret configured (503).
    Unavailable,
}

impl WebhookOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::StoredRawOnly => "stored_raw_only",
            Self::Duplicate => "duplicate",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner)
    }

    fn add(&self, name: &'static str, labels: String, value: u64) {
        self.with(|inner| *inner.counters.entry((name, labels)).or_default() += value);
    }

    fn observe(&self, name: &'static str, bounds: &'static [f64], value: f64) {
        self.with(|inner| {
            inner
                .histograms
                .entry((name, String::new()))
                .or_insert_with(|| Histogram::new(bounds))
                .observe(value);
        });
    }

    /// Counts a webhook request by outcome and event type, and its latency.
    pub fn webhook(&self, outcome: WebhookOutcome, event_type: Option<&str>, latency: Duration) {
        self.add(
            "webhooks_total",
            format!(
                "outcome=\"{}\",type=\"{}\"",
                outcome.as_str(),
                label(event_type.unwrap_or("unknown"))
            ),
            1,
        );
        self.observe(
            "webhook_ingest_seconds",
            &LATENCY_BUCKETS,
            latency.as_secs_f64(),
        );
    }

    /// Records a committed (or failed) group-commit batch.
    pub fn batch_committed(&self, size: usize, took: Duration) {
        self.observe("ingest_batch_size", &SIZE_BUCKETS, size as f64);
        self.observe("ingest_batch_seconds", &LATENCY_BUCKETS, took.as_secs_f64());
    }

    /// Observes the end-to-end latency of a health check (send to webhook committed).
    pub fn health_check_latency(&self, latency: Duration) {
        self.observe(
            "health_check_latency_seconds",
            &HEALTH_BUCKETS,
            latency.as_secs_f64(),
        );
    }

    /// Counts a media download attempt by outcome (`stored`, `retry`, `failed`).
    pub fn media_download(&self, outcome: &'static str) {
        self.add("media_downloads_total", format!("outcome=\"{outcome}\""), 1);
    }

    /// Counts an outgoing compliance reply by outcome (`sent`, `retry`, `failed`).
    pub fn compliance_reply(&self, outcome: &'static str) {
        self.add(
            "compliance_replies_total",
            format!("outcome=\"{outcome}\""),
            1,
        );
    }

    /// The text exposition of every metric, followed by the `gauges` given as
    /// `(name, help, value)`.
    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut out = String::new();
        self.with(|inner| {
            let mut last = "";
            for ((name, labels), value) in &inner.counters {
                if *name != last {
                    let _ = writeln!(out, "# TYPE {name} counter");
                    last = name;
                }
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
            let mut last = "";
            for ((name, labels), histogram) in &inner.histograms {
                if *name != last {
                    let _ = writeln!(out, "# TYPE {name} histogram");
                    last = name;
                }
                histogram.render(&mut out, name, labels);
            }
        });
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        metrics.webhook(
            WebhookOutcome::Stored,
            Some("message.received"),
            Duration::from_millis(3),
        );
        metrics.webhook(WebhookOutcome::Unauthorized, None, Duration::from_millis(1));
        metrics.batch_committed(5, Duration::from_millis(2));
        let text = metrics.render(&[("db_pool_connections", "Open connections.", 3)]);
        assert!(text.contains("webhooks_total{outcome=\"stored\",type=\"message.received\"} 1"));
        assert!(text.contains("webhooks_total{outcome=\"unauthorized\",type=\"unknown\"} 1"));
        assert!(text.contains("webhook_ingest_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("webhook_ingest_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("webhook_ingest_seconds_count 2"));
        assert!(text.contains("ingest_batch_size_bucket{le=\"4\"} 0"));
        assert!(text.contains("ingest_batch_size_bucket{le=\"8\"} 1"));
        assert!(text.contains("# TYPE db_pool_connections gauge\ndb_pool_connections 3"));
        assert_eq!(text.matches("# TYPE webhooks_total counter").count(), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
