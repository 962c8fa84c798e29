//! Knowledge export in the server: the `knowledge-export` crate over the resolved thread log
//! and the insight store on the database, with the provider chosen by configuration; run by
//! `reference-server export` and, when `KNOWLEDGE_EXPORT_SCHEDULE` says so, by the scheduler.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use knowledge_export::providers::{
    Anthropic, Completion, Gemini, LlmProvider, ModelSettings, OpenAiCompatible,
};
use knowledge_export::sop::SopLibrary;
use knowledge_export::{
    Error as ExportError, ExportOptions, ExportReport, Exporter, ExporterConfig, StopWhen,
};
use time::OffsetDateTime;

use crate::ingest::Clock;
use crate::scheduler::{Job, RunEnd, Schedule, Stop};
use crate::store::Store;

/// The configured model.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    /// Anthropic Messages.
    Anthropic(Anthropic),
    /// OpenAI-compatible chat completions.
    OpenAi(OpenAiCompatible),
    /// Google Gemini.
    Gemini(Gemini),
}

impl LlmProvider for AnyProvider {
    fn name(&self) -> String {
        match self {
            AnyProvider::Anthropic(p) => p.name(),
            AnyProvider::OpenAi(p) => p.name(),
            AnyProvider::Gemini(p) => p.name(),
        }
    }

    async fn complete(&self, request: &Completion) -> Result<String, ExportError> {
        match self {
            AnyProvider::Anthropic(p) => p.complete(request).await,
            AnyProvider::OpenAi(p) => p.complete(request).await,
            AnyProvider::Gemini(p) => p.complete(request).await,
        }
    }
}

/// How often the scheduler exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportSchedule {
    /// Never (`reference-server export` only).
    Off,
    /// Every hour.
    Hourly,
    /// Every day.
    Daily,
}

/// Knowledge export settings (see `docs/knowledge.md`).
#[derive(Debug, Clone)]
pub struct KnowledgeSettings {
    /// The model, when one is configured.
    pub provider: Option<AnyProvider>,
    /// The SOP directory.
    pub sop_dir: Option<PathBuf>,
    /// Where JSON Lines files go, when files are wanted.
    pub export_dir: Option<PathBuf>,
    /// Batching and redaction.
    pub exporter: ExporterConfig,
    /// Scheduled runs.
    pub schedule: ExportSchedule,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            provider: None,
            sop_dir: None,
            export_dir: None,
            exporter: ExporterConfig::default(),
            schedule: ExportSchedule::Off,
        }
    }
}

/// Builds a provider: `anthropic`, `openai` or `gemini`.
///
/// # Errors
/// [`crate::Error::Config`] for an unknown provider or a missing key or model.
pub fn provider(
    name: &str,
    key: Option<&str>,
    base_url: Option<&str>,
    settings: ModelSettings,
) -> Result<AnyProvider, crate::Error> {
    let missing = |var: &str| crate::Error::Config(format!("LLM_PROVIDER={name} needs {var}"));
    let built = match name {
        "anthropic" => Anthropic::new(
            base_url.unwrap_or(knowledge_export::providers::ANTHROPIC_BASE_URL),
            key.ok_or_else(|| missing("ANTHROPIC_API_KEY"))?,
            settings,
        )
        .map(AnyProvider::Anthropic),
        "openai" => OpenAiCompatible::new(
            base_url.unwrap_or(knowledge_export::providers::OPENAI_BASE_URL),
            key,
            settings,
        )
        .map(AnyProvider::OpenAi),
        "gemini" => Gemini::new(
            base_url.unwrap_or(knowledge_export::providers::GEMINI_BASE_URL),
            key.ok_or_else(|| missing("GEMINI_API_KEY"))?,
            settings,
        )
        .map(AnyProvider::Gemini),
        other => {
            return Err(crate::Error::Config(format!(
                "LLM_PROVIDER {other:?} is not anthropic, openai or gemini"
            )));
        }
    };
    built.map_err(|error| crate::Error::Config(format!("LLM_PROVIDER: {error}")))
}

/// Runs one export with `settings` on `store`.
///
/// # Errors
/// The export's error as a string (SOP directory unreadable, no provider for `llm`, storage).
pub async fn run_export(
    store: &Store,
    settings: &KnowledgeSettings,
    options: &ExportOptions,
    now: OffsetDateTime,
) -> Result<ExportReport, String> {
    let sops = match &settings.sop_dir {
        Some(dir) => SopLibrary::load(dir).map_err(|e| e.to_string())?,
        None => SopLibrary::default(),
    };
    let exporter = Exporter::new(settings.provider.clone(), sops, settings.exporter.clone());
    exporter
        .export_with_calls(store, store, store, options, now)
        .await
        .map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            message
        })
}

/// The scheduled export: files when `KNOWLEDGE_EXPORT_DIR` is set, the model when configured.
pub struct KnowledgeJob {
    /// The database.
    pub store: Store,
    /// The settings.
    pub settings: KnowledgeSettings,
    /// The clock.
    pub clock: Clock,
}

impl Job for KnowledgeJob {
    fn name(&self) -> &str {
        "knowledge-export"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(
            match self.settings.schedule {
                ExportSchedule::Daily => 86_400,
                _ => 3_600,
            },
        ))
    }

    fn run(&self, _slot: OffsetDateTime, stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let options = ExportOptions {
                to_dir: self.settings.export_dir.clone(),
                llm: self.settings.provider.is_some(),
                dry_run: false,
                // A model answers in seconds to minutes: a stop ends the run between batches.
                stop: StopWhen::new(move || stop.requested()),
            };
            let report = run_export(&self.store, &self.settings, &options, (self.clock)()).await?;
            let figures = serde_json::to_value(&report).map_err(|e| e.to_string())?;
            Ok(if report.stopped {
                RunEnd::Stopped(figures)
            } else {
                RunEnd::Done(figures)
            })
        })
    }
}
