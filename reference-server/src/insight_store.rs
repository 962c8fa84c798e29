//! [`InsightStore`] on the server's database (SQLite or PostgreSQL), passing the
//! `knowledge_export::conformance` suite like the memory store. A batch's insights and its
//! threads' export marks are written in one transaction.

use std::collections::HashSet;

use knowledge_export::{
    Batch, Confidence, Error, FailedBatch, Insight, InsightStore, NewInsight, Review,
};
use time::OffsetDateTime;

use crate::ingest::unix_ms;
use crate::store::{Arg, Store, StoreError};

fn backend(error: StoreError) -> Error {
    Error::backend(error)
}

fn time_of(ms: i64) -> OffsetDateTime {
    crate::ingest::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const INSIGHT_COLUMNS: &str = "id, source, summary, action, category, sop_target, confidence, thread_ids, produced_by, prompt_version, review, decided_by, note, created_ms, decided_ms";

#[derive(sqlx::FromRow)]
struct InsightRow {
    id: i64,
    source: String,
    summary: String,
    action: String,
    category: String,
    sop_target: Option<String>,
    confidence: String,
    thread_ids: String,
    produced_by: String,
    prompt_version: String,
    review: String,
    decided_by: Option<String>,
    note: Option<String>,
    created_ms: i64,
    decided_ms: Option<i64>,
}

impl InsightRow {
    fn into_insight(self) -> Result<Insight, Error> {
        Ok(Insight {
            id: self.id,
            insight: NewInsight {
                source: self.source,
                summary: self.summary,
                action: self.action,
                category: self.category,
                sop_target: self.sop_target,
                confidence: match self.confidence.as_str() {
                    "high" => Confidence::High,
                    "medium" => Confidence::Medium,
                    _ => Confidence::Low,
                },
                thread_ids: serde_json::from_str(&self.thread_ids).map_err(Error::backend)?,
            },
            produced_by: self.produced_by,
            prompt_version: self.prompt_version,
            review: Review::parse(&self.review).unwrap_or(Review::Pending),
            decided_by: self.decided_by,
            note: self.note,
            created_at: time_of(self.created_ms),
            decided_at: self.decided_ms.map(time_of),
        })
    }
}

fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

impl InsightStore for Store {
    async fn exported(&self, sink: &str, threads: &[i64]) -> Result<HashSet<i64>, Error> {
        let mut done = HashSet::new();
        for chunk in threads.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let rows: Vec<(i64,)> = self
                .fetch_all(&format!("SELECT thread_id FROM thread_exports WHERE sink = $1 AND thread_id IN ({list})"), &[sink.into()])
                .await
                .map_err(backend)?;
            done.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(done)
    }

    async fn commit(&self, batch: &Batch, now: OffsetDateTime) -> Result<Vec<Insight>, Error> {
        let result: Result<Option<Vec<InsightRow>>, StoreError> = async {
            let mut tx = self.begin().await?;
            for thread in &batch.threads {
                let marked = tx
                    .execute(
                        "INSERT INTO thread_exports (sink, thread_id, exported_ms, produced_by) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (sink, thread_id) DO NOTHING",
                        &[batch.sink.as_str().into(), (*thread).into(), unix_ms(now).into(), batch.produced_by.as_str().into()],
                    )
                    .await?;
                if marked == 0 {
                    return Ok(None);
                }
            }
            let mut kept = Vec::new();
            for insight in &batch.insights {
                let args: Vec<Arg> = vec![
                    insight.source.as_str().into(),
                    insight.summary.as_str().into(),
                    insight.action.as_str().into(),
                    insight.category.as_str().into(),
                    insight.sop_target.clone().into(),
                    confidence(insight.confidence).into(),
                    serde_json::to_string(&insight.thread_ids).unwrap_or_default().into(),
                    batch.produced_by.as_str().into(),
                    batch.prompt_version.as_str().into(),
                    unix_ms(now).into(),
                ];
                let row: Option<InsightRow> = tx
                    .fetch_optional(
                        &format!(
                            "INSERT INTO insights (source, summary, action, category, sop_target, confidence, thread_ids, \
                             produced_by, prompt_version, review, created_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10) RETURNING {INSIGHT_COLUMNS}"
                        ),
                        &args,
                    )
                    .await?;
                kept.extend(row);
            }
            tx.commit().await?;
            Ok(Some(kept))
        }
        .await;
        match result.map_err(backend)? {
            Some(rows) => rows.into_iter().map(InsightRow::into_insight).collect(),
            None => Err(Error::Conflict(format!(
                "a thread of the batch was already exported to {}",
                batch.sink
            ))),
        }
    }

    async fn record_failure(&self, failure: &FailedBatch) -> Result<(), Error> {
        self.execute(
            "INSERT INTO export_failures (sink, threads, error, at_ms) VALUES ($1, $2, $3, $4)",
            &[
                failure.sink.as_str().into(),
                serde_json::to_string(&failure.threads)
                    .unwrap_or_default()
                    .into(),
                failure.error.as_str().into(),
                unix_ms(failure.at).into(),
            ],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailedBatch>, Error> {
        let rows: Vec<(String, String, String, i64)> = self
            .fetch_all(
                "SELECT sink, threads, error, at_ms FROM export_failures ORDER BY id DESC LIMIT $1",
                &[i64::try_from(limit).unwrap_or(i64::MAX).into()],
            )
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|(sink, threads, error, at)| {
                Ok(FailedBatch {
                    sink,
                    threads: serde_json::from_str(&threads).map_err(Error::backend)?,
                    error,
                    at: time_of(at),
                })
            })
            .collect()
    }

    async fn insights(
        &self,
        review: Option<Review>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Insight>, Error> {
        let mut args: Vec<Arg> = vec![
            before.unwrap_or(i64::MAX).into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        let filter = match review {
            Some(review) => {
                args.push(review.as_str().into());
                " AND review = $3"
            }
            None => "",
        };
        let rows: Vec<InsightRow> = self
            .fetch_all(&format!("SELECT {INSIGHT_COLUMNS} FROM insights WHERE id < $1{filter} ORDER BY id DESC LIMIT $2"), &args)
            .await
            .map_err(backend)?;
        rows.into_iter().map(InsightRow::into_insight).collect()
    }

    async fn insight(&self, id: i64) -> Result<Insight, Error> {
        let row: Option<InsightRow> = self
            .fetch_optional(
                &format!("SELECT {INSIGHT_COLUMNS} FROM insights WHERE id = $1"),
                &[id.into()],
            )
            .await
            .map_err(backend)?;
        row.ok_or_else(|| Error::NotFound(format!("insight {id}")))?
            .into_insight()
    }

    async fn decide(
        &self,
        id: i64,
        review: Review,
        by: &str,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Insight, Error> {
        if review == Review::Pending {
            return Err(Error::Invalid("a decision is approved or rejected".into()));
        }
        let rows = self
            .execute(
                "UPDATE insights SET review = $2, decided_by = $3, note = $4, decided_ms = $5 WHERE id = $1 AND review = 'pending'",
                &[id.into(), review.as_str().into(), by.into(), note.map(str::to_owned).into(), unix_ms(now).into()],
            )
            .await
            .map_err(backend)?;
        let insight = self.insight(id).await?;
        if rows == 0 {
            return Err(Error::Conflict(format!(
                "insight {id} was already {}",
                insight.review.as_str()
            )));
        }
        Ok(insight)
    }
}

impl knowledge_export::CallDetails for Store {
    async fn call_details(
        &self,
        call_ids: &[String],
    ) -> Result<std::collections::HashMap<String, knowledge_export::format::CallDetail>, Error>
    {
        let mut details = std::collections::HashMap::new();
        for id in call_ids {
            let summary: Option<(Option<String>, Option<String>)> = self
                .fetch_optional(
                    "SELECT summary, next_steps FROM call_summaries WHERE call_id = $1",
                    &[id.as_str().into()],
                )
                .await
                .map_err(backend)?;
            let dialogue: Option<(Option<String>,)> = self
                .fetch_optional(
                    "SELECT dialogue FROM call_transcripts WHERE call_id = $1",
                    &[id.as_str().into()],
                )
                .await
                .map_err(backend)?;
            let (summary, next_steps) = summary.unwrap_or_default();
            if let Some(detail) = call_detail(
                summary.as_deref(),
                next_steps.as_deref(),
                dialogue.and_then(|(d,)| d).as_deref(),
            ) {
                details.insert(id.clone(), detail);
            }
        }
        Ok(details)
    }
}

/// A call's detail for the knowledge export from its stored summary and next steps (JSON
/// lists of strings) and transcript (a JSON dialogue); `None` when all are empty.
pub(crate) fn call_detail(
    summary: Option<&str>,
    next_steps: Option<&str>,
    dialogue: Option<&str>,
) -> Option<knowledge_export::format::CallDetail> {
    use knowledge_export::format::{CallDetail, TranscriptLine};
    let strings = |text: Option<&str>| -> Vec<String> {
        text.and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
            .unwrap_or_default()
    };
    let (summary, next_steps) = (strings(summary), strings(next_steps));
    let transcript: Vec<TranscriptLine> = dialogue
        .and_then(|d| serde_json::from_str::<Vec<serde_json::Value>>(d).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|line| {
            Some(TranscriptLine {
                speaker: line["speaker"].as_str().unwrap_or("?").to_owned(),
                text: line["content"].as_str()?.to_owned(),
            })
        })
        .collect();
    (!(summary.is_empty() && next_steps.is_empty() && transcript.is_empty())).then_some(
        CallDetail {
            summary,
            next_steps,
            transcript,
        },
    )
}
