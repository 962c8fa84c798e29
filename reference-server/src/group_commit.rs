//! Group commit: concurrent webhook requests share transactions.
//!
//! Each request hands its delivery to a queue and waits; one writer task takes what is queued
//! (up to [`MAX_BATCH`]), records it in one transaction, and answers every waiting request
//! once that transaction has committed. Under load a commit (and its disk flush) serves many
//! requests, and the batches grow while the writer is busy; alone, a request is written at
//! once, without waiting for company.
//!
//! One writer, on both backends: SQLite has one writer at a time anyway, and on PostgreSQL a
//! second writer in flight made full ingestion slower on 2 cores (smaller batches, more
//! statements per event; measured with `benches/ingest_load.rs`, see `docs/benchmarks.md`).
//!
//! A batch that fails is retried delivery by delivery, so one bad delivery cannot fail the
//! others; a PostgreSQL deadlock with a batch written at the same time (another replica's,
//! or the import's, which records through the same store; their projections touch the same
//! rows in different orders) is retried. When every [`Ingestor`] handle is dropped the
//! writer finishes what is queued and stops: [`Writers::drained`] waits for that. Dropping
//! [`Writers`] does not stop the writer; it only gives up waiting for it.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::event_log::EventLog;
use crate::metrics::Metrics;
use crate::store::{NewDelivery, Recorded, StoreError};

/// The most deliveries one transaction records.
pub const MAX_BATCH: usize = 128;

/// How many times a batch that deadlocked is tried again.
const DEADLOCK_RETRIES: u32 = 5;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

struct Job {
    delivery: NewDelivery,
    reply: Reply,
}

/// The handle requests record through. Cloning it is cheap.
#[derive(Clone)]
pub struct Ingestor {
    queue: mpsc::Sender<Job>,
}

/// The writer task behind an [`Ingestor`].
pub struct Writers {
    task: JoinHandle<()>,
}

impl Writers {
    /// Waits until the writer has stopped: all [`Ingestor`] handles are gone and the queue is
    /// recorded.
    pub async fn drained(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the group-commit writer stopped abnormally");
        }
    }
}

impl Ingestor {
    /// Starts the writer on `log`.
    pub fn start<L: EventLog>(
        log: L,
        metrics: Metrics,
        live: Option<crate::live::Live>,
    ) -> (Self, Writers) {
        let (queue, receiver) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let task = tokio::spawn(write_batches(log, receiver, metrics, live));
        (Self { queue }, Writers { task })
    }

    /// Records `delivery` and its projection; returns once committed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (or the writer has stopped).
    pub async fn record(&self, delivery: NewDelivery) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Backend(sqlx::Error::PoolClosed);
        self.queue
            .send(Job { delivery, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn write_batches<L: EventLog>(
    log: L,
    mut receiver: mpsc::Receiver<Job>,
    metrics: Metrics,
    live: Option<crate::live::Live>,
) {
    loop {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        let started = Instant::now();
        let (deliveries, mut replies): (Vec<NewDelivery>, Vec<Reply>) = jobs
            .into_iter()
            .map(|job| (job.delivery, job.reply))
            .unzip();
        let outcome = record_with_retries(&log, &deliveries).await;
        metrics.batch_committed(deliveries.len(), started.elapsed());
        let mut any_new = false;
        match outcome {
            Ok(recorded) => {
                for (reply, recorded) in replies.into_iter().zip(recorded) {
                    any_new |= matches!(recorded, Recorded::New(_));
                    let _ = reply.send(Ok(recorded));
                }
            }
            Err(error) if replies.len() == 1 => {
                if let Some(reply) = replies.pop() {
                    let _ = reply.send(Err(error));
                }
            }
            Err(error) => {
                tracing::warn!(%error, size = replies.len(), "batch failed; recording its deliveries one by one");
                for (delivery, reply) in deliveries.iter().zip(replies) {
                    let result = record_with_retries(&log, std::slice::from_ref(delivery))
                        .await
                        .map(|mut recorded| recorded.pop().unwrap_or(Recorded::Duplicate));
                    any_new |= matches!(result, Ok(Recorded::New(_)));
                    let _ = reply.send(result);
                }
            }
        }
        // After the answers: announcing the commit never delays a request.
        if any_new && let Some(live) = &live {
            live.committed();
        }
    }
}

async fn record_with_retries<L: EventLog>(
    log: &L,
    deliveries: &[NewDelivery],
) -> Result<Vec<Recorded>, StoreError> {
    let mut attempt = 0;
    loop {
        match log.append(deliveries).await {
            Err(error) if error.is_transient() && attempt < DEADLOCK_RETRIES => {
                attempt += 1;
                tracing::debug!(%error, attempt, "batch conflicted; retrying");
                tokio::time::sleep(Duration::from_millis(
                    fastrand::u64(1..=10) * u64::from(attempt),
                ))
                .await;
            }
            other => return other,
        }
    }
}
