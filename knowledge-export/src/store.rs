//! The storage port: [`InsightStore`] keeps which threads went where, the insights, their
//! review, and failed batches. [`MemoryInsightStore`] is the in-memory one; SQL stores pass
//! the same [`crate::conformance`] suite.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, Insight, NewInsight, Review};

/// A batch whose insights are ready to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Where it went: `llm` or `file`.
    pub sink: String,
    /// Its threads.
    pub threads: Vec<i64>,
    /// What the model found (none for a file).
    pub insights: Vec<NewInsight>,
    /// `provider/model`, or the file written.
    pub produced_by: String,
    /// The prompt version (empty for a file).
    pub prompt_version: String,
}

/// A batch that failed: its threads stay unexported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct FailedBatch {
    /// Where it was going.
    pub sink: String,
    /// Its threads.
    pub threads: Vec<i64>,
    /// Why it failed.
    pub error: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
}

/// Storage of exports and insights.
pub trait InsightStore: Clone + Send + Sync + 'static {
    /// Which of `threads` were exported to `sink`.
    fn exported(
        &self,
        sink: &str,
        threads: &[i64],
    ) -> impl Future<Output = Result<HashSet<i64>, Error>> + Send;

    /// Keeps a batch's insights (pending review) and marks its threads exported to its sink,
    /// in one step: either both happen or neither. A thread already exported to the sink is
    /// [`Error::Conflict`] (nothing is kept twice).
    fn commit(
        &self,
        batch: &Batch,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Insight>, Error>> + Send;

    /// Records a failed batch.
    fn record_failure(
        &self,
        failure: &FailedBatch,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Failed batches, newest first.
    fn failures(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FailedBatch>, Error>> + Send;

    /// Insights by id, newest first, below `before`, in `review` when given.
    fn insights(
        &self,
        review: Option<Review>,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Insight>, Error>> + Send;

    /// One insight.
    fn insight(&self, id: i64) -> impl Future<Output = Result<Insight, Error>> + Send;

    /// Approves or rejects a pending insight ([`Error::Conflict`] once decided).
    fn decide(
        &self,
        id: i64,
        review: Review,
        by: &str,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Insight, Error>> + Send;
}

/// An in-memory [`InsightStore`]. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryInsightStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    exported: HashSet<(String, i64)>,
    insights: BTreeMap<i64, Insight>,
    failures: Vec<FailedBatch>,
}

impl MemoryInsightStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl InsightStore for MemoryInsightStore {
    async fn exported(&self, sink: &str, threads: &[i64]) -> Result<HashSet<i64>, Error> {
        let inner = self.lock();
        Ok(threads
            .iter()
            .copied()
            .filter(|t| inner.exported.contains(&(sink.to_owned(), *t)))
            .collect())
    }

    async fn commit(&self, batch: &Batch, now: OffsetDateTime) -> Result<Vec<Insight>, Error> {
        let mut inner = self.lock();
        if let Some(t) = batch
            .threads
            .iter()
            .find(|t| inner.exported.contains(&(batch.sink.clone(), **t)))
        {
            return Err(Error::Conflict(format!(
                "thread {t} was already exported to {}",
                batch.sink
            )));
        }
        for t in &batch.threads {
            inner.exported.insert((batch.sink.clone(), *t));
        }
        let mut kept = Vec::new();
        for insight in &batch.insights {
            let id = inner.insights.keys().next_back().map_or(1, |last| last + 1);
            let stored = Insight {
                id,
                insight: insight.clone(),
                produced_by: batch.produced_by.clone(),
                prompt_version: batch.prompt_version.clone(),
                review: Review::Pending,
                decided_by: None,
                note: None,
                created_at: now,
                decided_at: None,
            };
            inner.insights.insert(id, stored.clone());
            kept.push(stored);
        }
        Ok(kept)
    }

    async fn record_failure(&self, failure: &FailedBatch) -> Result<(), Error> {
        self.lock().failures.push(failure.clone());
        Ok(())
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailedBatch>, Error> {
        Ok(self
            .lock()
            .failures
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn insights(
        &self,
        review: Option<Review>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Insight>, Error> {
        Ok(self
            .lock()
            .insights
            .values()
            .rev()
            .filter(|i| before.is_none_or(|b| i.id < b))
            .filter(|i| review.is_none_or(|r| i.review == r))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn insight(&self, id: i64) -> Result<Insight, Error> {
        self.lock()
            .insights
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("insight {id}")))
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
        let mut inner = self.lock();
        let insight = inner
            .insights
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("insight {id}")))?;
        if insight.review != Review::Pending {
            return Err(Error::Conflict(format!(
                "insight {id} was already {}",
                insight.review.as_str()
            )));
        }
        insight.review = review;
        insight.decided_by = Some(by.to_owned());
        insight.note = note.map(str::to_owned);
        insight.decided_at = Some(now);
        Ok(insight.clone())
    }
}
