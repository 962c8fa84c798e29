//! Daily reconciliation: ask the API for everything since the last successful run (with
//! overlap), insert what webhooks did not deliver (never modifying existing records), flag
//! outgoing messages that never got a delivery status, and alert on discrepancies.

use std::time::Duration;

use futures_util::future::BoxFuture;
use openphone_client::Client;
use serde_json::json;
use time::OffsetDateTime;

use crate::alerts::Alerter;
use crate::import::{Checkpoints, ImportError, ImportOptions, ImportReport, Importer};
use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::scheduler::{Job, JobRuns, RunEnd, Schedule, Stop};
use crate::store::Store;

/// Name of the reconciliation job (and of its runs).
pub const JOB: &str = "reconcile";

/// Reads everything created since `since` and records only what is missing. `checkpoint`
/// names the run's cursors (reset first: a reconciliation covers its window in full).
///
/// # Errors
/// [`ImportError`] when the API or the database fails beyond retries.
pub async fn reconcile(
    client: &Client,
    store: &Store,
    clock: Clock,
    since: OffsetDateTime,
    checkpoint: &str,
) -> Result<ImportReport, ImportError> {
    store.reset_import(checkpoint).await?;
    Importer::new(
        client.clone(),
        store.clone(),
        clock,
        ImportOptions {
            since: Some(since),
            phone_numbers: Vec::new(),
            checkpoint: checkpoint.to_owned(),
            only_missing: true,
        },
    )
    .run()
    .await
}

/// The scheduled reconciliation.
pub struct Reconciliation {
    /// The API.
    pub client: Client,
    /// The database.
    pub store: Store,
    /// The clock.
    pub clock: Clock,
    /// When it runs (default daily at 02:00 in the configured timezone).
    pub schedule: Schedule,
    /// How far before the last successful run it looks again.
    pub overlap: Duration,
    /// How long an outgoing message may stay without a final status.
    pub pending_after: Duration,
    /// Where discrepancies are reported.
    pub alerter: Alerter,
}

impl Job for Reconciliation {
    fn name(&self) -> &str {
        JOB
    }

    fn schedule(&self) -> Schedule {
        self.schedule.clone()
    }

    fn run(&self, slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let overlap = i64::try_from(self.overlap.as_millis()).unwrap_or(0);
            let last = self
                .store
                .last_success(JOB)
                .await
                .map_err(|error| error.to_string())?;
            let since_ms = last.map_or(unix_ms(slot) - 48 * 3_600_000, |last| last - overlap);
            let since = OffsetDateTime::from_unix_timestamp_nanos(i128::from(since_ms) * 1_000_000)
                .map_err(|error| error.to_string())?;
            let report = reconcile(
                &self.client,
                &self.store,
                self.clock.clone(),
                since,
                &format!("reconcile-{}", unix_ms(slot)),
            )
            .await
            .map_err(|error| error.to_string())?;
            let pending_ms = i64::try_from(self.pending_after.as_millis()).unwrap_or(0);
            let possibly_failed = crate::reads::Reads::possibly_failed(
                &self.store,
                since_ms,
                unix_ms((self.clock)()) - pending_ms,
            )
            .await
            .map_err(|error| error.to_string())?;
            let kinds: serde_json::Map<String, serde_json::Value> = report
                .kinds
                .iter()
                .map(|(kind, counts)| {
                    (
                        kind.clone(),
                        json!({"checked": counts.checked, "missing": counts.created,
                            "backfilled": counts.created, "ids": counts.created_ids}),
                    )
                })
                .collect();
            let missing = report.created();
            if missing > 0 || !possibly_failed.is_empty() || !report.failures.is_empty() {
                self.alerter
                    .raise(
                        "reconciliation_discrepancy",
                        "reconciliation_discrepancy",
                        &format!(
                            "Reconciliation found {missing} records webhooks missed and {} outgoing messages without a delivery status",
                            possibly_failed.len()
                        ),
                        Some(format!(
                            "Backfilled: {}. Possibly failed: {}. Failures: {}. See GET /api/v1/jobs?job=reconcile",
                            kinds
                                .iter()
                                .map(|(kind, value)| format!("{kind} {}", value["missing"]))
                                .collect::<Vec<_>>()
                                .join(", "),
                            possibly_failed.join(", "),
                            report.failures.join("; ")
                        )),
                    )
                    .await
                    .map_err(|error| error.to_string())?;
            }
            Ok(RunEnd::Done(json!({
                "since": since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "requests": report.requests,
                "kinds": kinds,
                "possibly_failed": possibly_failed,
                "failures": report.failures,
            })))
        })
    }
}
