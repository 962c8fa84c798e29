//! Group commit: concurrent webhook requests share transactions.
//!
//! Each request hands its delivery to a queue and waits; a few writer tasks each take what is
//! queued (up to [`MAX_BATCH`]), record it in one transaction, and answer every waiting
//! request once that transaction has committed. Under load a commit (and its disk flush)
//! serves many requests; alone, a request is written at once, without waiting for company.
//!
//! A batch that fails is retried delivery by delivery, so one bad delivery cannot fail the
//! others; a PostgreSQL deadlock between concurrent batches (their projections touching the
//! same rows in different orders) is retried. When every [`Ingestor`] handle is dropped the
//! writers finish what is queued and stop: [`Writers::drained`] waits for that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinSet;

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

/// The writer tasks behind an [`Ingestor`].
pub struct Writers {
    tasks: JoinSet<()>,
}

impl Writers {
    /// Waits until every writer has stopped: all [`Ingestor`] handles are gone and the queue
    /// is recorded.
    pub async fn drained(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Ingestor {
    /// Starts the writers on `log`: as many as [`EventLog::writers`] suggests (one on
    /// SQLite, two on PostgreSQL).
    pub fn start<L: EventLog>(
        log: L,
        metrics: Metrics,
        live: Option<crate::live::Live>,
    ) -> (Self, Writers) {
        let writers = log.writers().max(1);
        let (queue, receiver) = mpsc::channel::<Job>(MAX_BATCH * writers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut tasks = JoinSet::new();
        for _ in 0..writers {
            tasks.spawn(write_batches(
                log.clone(),
                Arc::clone(&receiver),
                metrics.clone(),
                live.clone(),
            ));
        }
        (Self { queue }, Writers { tasks })
    }

    /// Records `delivery` and its projection; returns once committed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails (or the writers are gone).
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
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
    metrics: Metrics,
    live: Option<crate::live::Live>,
) {
    loop {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                return;
            }
        }
        let started = Instant::now();
        let deliveries: Vec<NewDelivery> = jobs.iter().map(|job| job.delivery.clone()).collect();
        let outcome = record_with_retries(&log, &deliveries).await;
        metrics.batch_committed(jobs.len(), started.elapsed());
        let mut any_new = false;
        match outcome {
            Ok(recorded) => {
                for (job, recorded) in jobs.into_iter().zip(recorded) {
                    any_new |= matches!(recorded, Recorded::New(_));
                    let _ = job.reply.send(Ok(recorded));
                }
            }
            Err(error) if jobs.len() == 1 => {
                if let Some(job) = jobs.pop() {
                    let _ = job.reply.send(Err(error));
                }
            }
            Err(error) => {
                tracing::warn!(%error, size = jobs.len(), "batch failed; recording its deliveries one by one");
                for job in jobs {
                    let result = record_with_retries(&log, std::slice::from_ref(&job.delivery))
                        .await
                        .map(|mut recorded| recorded.pop().unwrap_or(Recorded::Duplicate));
                    any_new |= matches!(result, Ok(Recorded::New(_)));
                    let _ = job.reply.send(result);
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
