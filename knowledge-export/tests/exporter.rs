//! The export flow on memory stores with a scripted model.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use knowledge_export::providers::{Completion, LlmProvider};
use knowledge_export::sop::{Sop, SopLibrary};
use knowledge_export::{
    Error, ExportOptions, Exporter, ExporterConfig, InsightStore, MemoryInsightStore, StopWhen,
};
use thread_resolver::{Entry, EntryKind, MemoryThreadStore, Resolution, ThreadStore};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-11-27 18:00 UTC);

#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<String, Error>>>>,
    requests: Arc<Mutex<Vec<Completion>>>,
}

impl LlmProvider for Scripted {
    fn name(&self) -> String {
        "scripted/1".into()
    }
    async fn complete(&self, request: &Completion) -> Result<String, Error> {
        self.requests.lock().unwrap().push(request.clone());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(r#"{"insights": []}"#.into()))
    }
}

async fn resolved_threads(n: i64, text: &str) -> MemoryThreadStore {
    let threads = MemoryThreadStore::new();
    for i in 0..n {
        let entry = Entry {
            id: format!("m{i}"),
            kind: EntryKind::Message,
            direction: "incoming".into(),
            from: None,
            text: Some(text.into()),
            at: AT,
        };
        let thread = threads
            .append(&format!("PN1|+1415555{i:04}"), &entry)
            .await
            .unwrap()
            .thread;
        threads
            .resolve(thread, 1, &Resolution::Idle, AT)
            .await
            .unwrap();
    }
    threads
}

fn insight(thread: i64) -> String {
    format!(
        r#"{{"insights": [{{"source": "s", "summary": "new {thread}", "action": "a", "category": "c", "sop_target": null, "confidence": "low", "thread_ids": [{thread}]}}]}}"#
    )
}

#[tokio::test]
async fn invalid_output_is_asked_again_once_with_the_error_then_the_batch_fails() {
    let threads = resolved_threads(2, "Do you rent clubs?").await;
    let store = MemoryInsightStore::new();
    let model = Scripted::default();
    {
        let mut answers = model.answers.lock().unwrap();
        // Batch 1 (thread 1): invalid, then valid.
        answers.push_back(Ok("Sure! Here are insights.".into()));
        answers.push_back(Ok(insight(1)));
        // Batch 2 (thread 2): invalid twice.
        answers.push_back(Ok(insight(99)));
        answers.push_back(Ok("still wrong".into()));
    }
    let config = ExporterConfig {
        budget_tokens: 1,
        ..ExporterConfig::default()
    };
    let sops = SopLibrary::new(vec![Sop {
        category: "rentals".into(),
        path: "rentals/clubs.md".into(),
        title: "Club rental".into(),
        text: "Clubs rent for $10 per bay hour.".into(),
    }]);
    let exporter = Exporter::new(Some(model.clone()), sops, config);
    let options = ExportOptions {
        llm: true,
        ..ExportOptions::default()
    };
    let report = exporter
        .export(&threads, &store, &options, AT)
        .await
        .unwrap();
    assert_eq!(
        (report.batches.len(), report.insights, report.failed_batches),
        (2, 1, 1)
    );
    let requests = model.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4);
    assert!(
        requests[1].user.contains("It is invalid"),
        "the error is fed back"
    );
    assert!(
        requests[0].user.contains("rentals/clubs.md"),
        "the relevant SOP is in the prompt"
    );
    assert!(store.exported("llm", &[1, 2]).await.unwrap().contains(&1));
    assert!(
        !store.exported("llm", &[2]).await.unwrap().contains(&2),
        "a failed batch stays unexported"
    );
    assert_eq!(store.failures(10).await.unwrap()[0].threads, vec![2]);
    // The next run retries only thread 2.
    let again = exporter
        .export(&threads, &store, &options, AT)
        .await
        .unwrap();
    assert_eq!(again.batches, vec![vec![2]]);
}

#[tokio::test]
async fn a_stop_ends_the_run_between_batches_and_the_rest_waits_for_the_next() {
    let threads = resolved_threads(3, "Do you rent clubs?").await;
    let store = MemoryInsightStore::new();
    let model = Scripted::default();
    model.answers.lock().unwrap().push_back(Ok(insight(1)));
    let config = ExporterConfig {
        budget_tokens: 1,
        ..ExporterConfig::default()
    };
    let exporter = Exporter::new(Some(model.clone()), SopLibrary::default(), config);
    // Asked to stop once the first batch has gone to the model.
    let sent = model.requests.clone();
    let options = ExportOptions {
        llm: true,
        stop: StopWhen::new(move || !sent.lock().unwrap().is_empty()),
        ..ExportOptions::default()
    };
    let report = exporter
        .export(&threads, &store, &options, AT)
        .await
        .unwrap();
    assert_eq!(
        (report.batches, report.insights, report.stopped),
        (vec![vec![1]], 1, true)
    );
    assert_eq!(model.requests.lock().unwrap().len(), 1);
    assert_eq!(store.exported("llm", &[1, 2, 3]).await.unwrap().len(), 1);
    // The next run, not stopped, sends the other two.
    let again = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                llm: true,
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.batches, again.stopped),
        (vec![vec![2], vec![3]], false)
    );
}

#[tokio::test]
async fn a_refusing_provider_stops_the_run_and_nothing_is_marked() {
    let threads = resolved_threads(3, "hi").await;
    let store = MemoryInsightStore::new();
    let model = Scripted::default();
    model
        .answers
        .lock()
        .unwrap()
        .push_back(Err(Error::RateLimited {
            provider: "scripted",
            retry_after: None,
        }));
    let exporter = Exporter::new(
        Some(model.clone()),
        SopLibrary::default(),
        ExporterConfig {
            budget_tokens: 1,
            ..ExporterConfig::default()
        },
    );
    let report = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                llm: true,
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    assert_eq!(
        (report.failed_batches, model.requests.lock().unwrap().len()),
        (1, 1),
        "stopped after the refusal"
    );
    assert!(store.exported("llm", &[1, 2, 3]).await.unwrap().is_empty());
}

#[tokio::test]
async fn files_batches_and_dry_runs() {
    let threads = resolved_threads(
        5,
        "Can I book bay 2 for a birthday party of 12 people on Saturday?",
    )
    .await;
    let store = MemoryInsightStore::new();
    let dir = std::env::temp_dir().join(format!("ke-{}", std::process::id()));
    let exporter: Exporter<Scripted> =
        Exporter::new(None, SopLibrary::default(), ExporterConfig::default());
    let dry = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                to_dir: Some(dir.clone()),
                dry_run: true,
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    assert_eq!((dry.file_threads, dry.file.is_none()), (5, true));
    assert!(
        store.exported("file", &[1]).await.unwrap().is_empty(),
        "a dry run marks nothing"
    );
    let report = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                to_dir: Some(dir.clone()),
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    let lines = std::fs::read_to_string(report.file.unwrap()).unwrap();
    assert_eq!(lines.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            first["format"].as_str(),
            first["entries"][0]["role"].as_str()
        ),
        (Some("openphone-thread/1"), Some("customer"))
    );
    let again = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                to_dir: Some(dir.clone()),
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    assert_eq!((again.file_threads, again.file), (0, None), "written once");
    assert!(matches!(
        exporter
            .export(
                &threads,
                &store,
                &ExportOptions {
                    llm: true,
                    ..ExportOptions::default()
                },
                AT
            )
            .await,
        Err(Error::Invalid(_))
    ));
    let _ = std::fs::remove_dir_all(dir);

    // Batches follow the token budget.
    let model = Scripted::default();
    let exporter = Exporter::new(
        Some(model),
        SopLibrary::default(),
        ExporterConfig {
            budget_tokens: 300,
            ..ExporterConfig::default()
        },
    );
    let plan = exporter
        .export(
            &threads,
            &store,
            &ExportOptions {
                llm: true,
                dry_run: true,
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    assert!(
        plan.batches.len() > 1 && plan.batches.len() < 5,
        "{:?}",
        plan.batches
    );
    assert_eq!(plan.batches.concat(), vec![1, 2, 3, 4, 5]);
}

/// Call summaries and transcripts, read at export time.
struct Calls;

impl knowledge_export::CallDetails for Calls {
    async fn call_details(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, knowledge_export::format::CallDetail>, Error>
    {
        Ok(ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    knowledge_export::format::CallDetail {
                        summary: vec![
                            "Caller wants a league slot; call back at 415-555-0100".into(),
                        ],
                        next_steps: vec!["Send the league form".into()],
                        transcript: vec![knowledge_export::format::TranscriptLine {
                            speaker: "+14155550100".into(),
                            text: "Any league nights?".into(),
                        }],
                    },
                )
            })
            .collect())
    }
}

#[tokio::test]
async fn calls_carry_their_summaries_and_transcripts_redacted() {
    let threads = MemoryThreadStore::new();
    let call = Entry {
        id: "AC-call".into(),
        kind: EntryKind::Call,
        direction: "incoming".into(),
        from: None,
        text: None,
        at: AT,
    };
    let thread = threads
        .append("PN1|+14155550100", &call)
        .await
        .unwrap()
        .thread;
    threads
        .resolve(thread, 1, &Resolution::Idle, AT)
        .await
        .unwrap();
    let model = Scripted::default();
    let exporter = Exporter::new(
        Some(model.clone()),
        SopLibrary::default(),
        ExporterConfig::default(),
    );
    let store = MemoryInsightStore::new();
    exporter
        .export_with_calls(
            &threads,
            &store,
            &Calls,
            &ExportOptions {
                llm: true,
                ..ExportOptions::default()
            },
            AT,
        )
        .await
        .unwrap();
    let prompt = model.requests.lock().unwrap()[0].user.clone();
    assert!(
        prompt.contains("\"summary\":[\"Caller wants a league slot; call back at [phone]\"]"),
        "{prompt}"
    );
    assert!(prompt.contains("\"next_steps\":[\"Send the league form\"]"));
    assert!(
        prompt
            .contains("\"transcript\":[{\"speaker\":\"[phone]\",\"text\":\"Any league nights?\"}]"),
        "{prompt}"
    );
}
