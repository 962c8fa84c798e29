//! The export run: resolved threads not yet exported go to a JSON Lines file and, when a
//! provider is configured, to the model in batches sized by an estimated token budget.
//! Threads are marked exported only with their insights, in one step: a crash exports
//! nothing twice and loses nothing.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use thread_resolver::{Snapshot, ThreadStore};
use time::OffsetDateTime;

use crate::format::{CallDetail, ExportRecord};
use crate::providers::LlmProvider;
use crate::redact::Redactor;
use crate::sop::SopLibrary;
use crate::store::{Batch, FailedBatch, InsightStore};
use crate::{Error, insight, prompt};

/// How an exporter works.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// Estimated prompt tokens per batch of threads (default 12,000).
    pub budget_tokens: usize,
    /// SOPs included per batch (default 5).
    pub sops_per_batch: usize,
    /// Redact before anything goes to the model (default on).
    pub redact_for_llm: bool,
    /// Redact the JSON Lines files too (default off: they stay on our disk).
    pub redact_files: bool,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            budget_tokens: 12_000,
            sops_per_batch: 5,
            redact_for_llm: true,
            redact_files: false,
        }
    }
}

/// Asks a run in progress to end early. It is checked before each batch goes to the model: a
/// batch already sent finishes (and is kept), the ones not sent wait for the next run. The
/// default never asks.
#[derive(Clone, Default)]
pub struct StopWhen(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl StopWhen {
    /// Stops once `requested` returns `true` (a server's shutdown signal, say).
    pub fn new(requested: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(requested)))
    }

    /// Whether a stop is requested.
    pub fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|requested| requested())
    }
}

impl std::fmt::Debug for StopWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StopWhen(..)"
        } else {
            "StopWhen(never)"
        })
    }
}

/// What to do in one run.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Write the threads not yet written to a file in this directory.
    pub to_dir: Option<PathBuf>,
    /// Send the threads not yet sent to the model (needs a provider).
    pub llm: bool,
    /// Only say what would happen.
    pub dry_run: bool,
    /// When to end early, between batches sent to the model ([`ExportReport::stopped`]).
    pub stop: StopWhen,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The file written, if any.
    pub file: Option<String>,
    /// Threads written to it.
    pub file_threads: u64,
    /// Batches sent to the model, by their thread ids (planned, when dry).
    pub batches: Vec<Vec<i64>>,
    /// Insights kept.
    pub insights: u64,
    /// Batches that failed (their threads stay unexported).
    pub failed_batches: u64,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether it ended early because a stop was requested ([`ExportOptions::stop`]): the
    /// threads of the batches not sent wait for the next run.
    pub stopped: bool,
}

/// Where the summaries and transcripts of calls come from (they arrive after the call, often
/// after its thread was frozen, so they are read at export time).
pub trait CallDetails: Send + Sync {
    /// The details of those of `call_ids` that have any.
    fn call_details(
        &self,
        call_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, CallDetail>, Error>> + Send;
}

/// No call details (calls are exported without summaries or transcripts).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallDetails;

impl CallDetails for NoCallDetails {
    async fn call_details(&self, _: &[String]) -> Result<HashMap<String, CallDetail>, Error> {
        Ok(HashMap::new())
    }
}

/// Exports resolved threads.
pub struct Exporter<P> {
    provider: Option<P>,
    sops: SopLibrary,
    redactor: Redactor,
    config: ExporterConfig,
}

const FILE_SINK: &str = "file";
const LLM_SINK: &str = "llm";

impl<P: LlmProvider> Exporter<P> {
    /// An exporter to `provider` (none: files only) with the SOP library.
    pub fn new(provider: Option<P>, sops: SopLibrary, config: ExporterConfig) -> Self {
        Exporter {
            provider,
            sops,
            redactor: Redactor::new(),
            config,
        }
    }

    /// Runs an export of the resolved log of `threads` into `store`.
    pub async fn export<T: ThreadStore, S: InsightStore>(
        &self,
        threads: &T,
        store: &S,
        options: &ExportOptions,
        now: OffsetDateTime,
    ) -> Result<ExportReport, Error> {
        self.export_with_calls(threads, store, &NoCallDetails, options, now)
            .await
    }

    /// Runs an export, with the summaries and transcripts `calls` has for the calls.
    pub async fn export_with_calls<T: ThreadStore, S: InsightStore, C: CallDetails>(
        &self,
        threads: &T,
        store: &S,
        calls: &C,
        options: &ExportOptions,
        now: OffsetDateTime,
    ) -> Result<ExportReport, Error> {
        let mut report = ExportReport {
            dry_run: options.dry_run,
            ..ExportReport::default()
        };
        if options.llm && self.provider.is_none() {
            return Err(Error::Invalid("no LLM provider is configured".into()));
        }
        if let Some(dir) = &options.to_dir {
            let pending = pending(threads, store, FILE_SINK).await?;
            report.file_threads = pending.len() as u64;
            if !pending.is_empty() && !options.dry_run {
                let redactor = self.config.redact_files.then_some(&self.redactor);
                let details = details_of(calls, &pending).await?;
                let records: Vec<ExportRecord> = pending
                    .iter()
                    .map(|s| ExportRecord::with_calls(s, redactor, &details))
                    .collect();
                let path = write_lines(dir, &records, now)?;
                store
                    .commit(
                        &Batch {
                            sink: FILE_SINK.into(),
                            threads: records.iter().map(|r| r.thread_id).collect(),
                            insights: Vec::new(),
                            produced_by: path.clone(),
                            prompt_version: String::new(),
                        },
                        now,
                    )
                    .await?;
                report.file = Some(path);
            }
        }
        if options.llm {
            let pending = pending(threads, store, LLM_SINK).await?;
            let redactor = self.config.redact_for_llm.then_some(&self.redactor);
            let details = details_of(calls, &pending).await?;
            let records: Vec<ExportRecord> = pending
                .iter()
                .map(|s| ExportRecord::with_calls(s, redactor, &details))
                .collect();
            for batch in batches(&records, self.config.budget_tokens) {
                if !options.dry_run && options.stop.requested() {
                    report.stopped = true;
                    break;
                }
                report
                    .batches
                    .push(batch.iter().map(|r| r.thread_id).collect());
                if options.dry_run {
                    continue;
                }
                match self.send(&batch).await {
                    Ok((insights, produced_by)) => {
                        let kept = store
                            .commit(
                                &Batch {
                                    sink: LLM_SINK.into(),
                                    threads: batch.iter().map(|r| r.thread_id).collect(),
                                    insights,
                                    produced_by,
                                    prompt_version: prompt::PROMPT_VERSION.into(),
                                },
                                now,
                            )
                            .await?;
                        report.insights += kept.len() as u64;
                    }
                    Err(error) => {
                        tracing::error!(%error, threads = batch.len(), "export batch failed");
                        report.failed_batches += 1;
                        store
                            .record_failure(&FailedBatch {
                                sink: LLM_SINK.into(),
                                threads: batch.iter().map(|r| r.thread_id).collect(),
                                error: error.to_string(),
                                at: now,
                            })
                            .await?;
                        // A provider that refuses (rate limit, auth, outage) refuses the next
                        // batch too: stop here; the threads wait for the next run.
                        if !matches!(error, Error::Output(_)) {
                            break;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Sends one batch; invalid output is retried once with the parse error fed back.
    async fn send(
        &self,
        batch: &[&ExportRecord],
    ) -> Result<(Vec<insight::NewInsight>, String), Error> {
        let provider = self
            .provider
            .as_ref()
            .ok_or_else(|| Error::Invalid("no LLM provider".into()))?;
        let ids: Vec<i64> = batch.iter().map(|r| r.thread_id).collect();
        let text: String = batch
            .iter()
            .flat_map(|r| r.entries.iter().filter_map(|e| e.text.clone()))
            .collect::<Vec<_>>()
            .join(" ");
        let sops = self.sops.relevant(&text, self.config.sops_per_batch);
        let records: Vec<ExportRecord> = batch.iter().map(|r| (*r).clone()).collect();
        let request = prompt::build(&records, &sops);
        let answer = provider.complete(&request).await?;
        match insight::parse(&answer, &ids) {
            Ok(insights) => Ok((insights, provider.name())),
            Err(first) => {
                tracing::warn!(error = %first, "invalid model output; asking again once");
                let again = provider
                    .complete(&prompt::retry(&request, &answer, &first.to_string()))
                    .await?;
                insight::parse(&again, &ids).map(|insights| (insights, provider.name()))
            }
        }
    }
}

async fn details_of<C: CallDetails>(
    calls: &C,
    snapshots: &[Snapshot],
) -> Result<HashMap<String, CallDetail>, Error> {
    let ids: Vec<String> = snapshots
        .iter()
        .flat_map(|s| s.entries.iter())
        .filter(|e| e.kind == thread_resolver::EntryKind::Call)
        .map(|e| e.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    calls.call_details(&ids).await
}

/// Resolved threads not yet exported to `sink`, in resolution order.
async fn pending<T: ThreadStore, S: InsightStore>(
    threads: &T,
    store: &S,
    sink: &str,
) -> Result<Vec<Snapshot>, Error> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = threads
            .resolved_log(after, 500)
            .await
            .map_err(Error::backend)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        let ids: Vec<i64> = page.iter().map(|(_, s)| s.thread.id.0).collect();
        let done = store.exported(sink, &ids).await?;
        out.extend(
            page.into_iter()
                .map(|(_, s)| s)
                .filter(|s| !done.contains(&s.thread.id.0)),
        );
    }
    Ok(out)
}

/// Groups records in order into batches whose estimated tokens stay within `budget` (a
/// record larger than the budget goes alone).
pub fn batches(records: &[ExportRecord], budget: usize) -> Vec<Vec<&ExportRecord>> {
    let mut out: Vec<Vec<&ExportRecord>> = Vec::new();
    let mut used = 0;
    for record in records {
        let tokens = record.estimated_tokens();
        match out.last_mut() {
            Some(batch) if used + tokens <= budget => {
                batch.push(record);
                used += tokens;
            }
            _ => {
                out.push(vec![record]);
                used = tokens;
            }
        }
    }
    out
}

fn write_lines(dir: &Path, records: &[ExportRecord], now: OffsetDateTime) -> Result<String, Error> {
    let io = |path: &Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = format!("threads-{}.jsonl", now.unix_timestamp());
    let path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    let mut file = std::fs::File::create(&partial).map_err(|e| io(&partial, e))?;
    for record in records {
        writeln!(file, "{}", record.to_line()).map_err(|e| io(&partial, e))?;
    }
    file.sync_all().map_err(|e| io(&partial, e))?;
    std::fs::rename(&partial, &path).map_err(|e| io(&path, e))?;
    Ok(path.display().to_string())
}
