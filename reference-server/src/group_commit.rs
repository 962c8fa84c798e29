//! Group commit: concurrent webhook requests share transactions.
//!
//! Each request hands its delivery to a queue and waits; one writer task takes what is queued
//! (up to [`MAX_BATCH`]), records it in one transaction, and answers every waiting request
//! once that transaction has committed. Under load a commit (and its disk flush) serves many
//! requests, and the batches grow while the writer is busy; alone, a request is written at
//! once, without waiting for company.
//!
//! One writer task forms the batches. On SQLite (one writer at a time anyway) and in memory
//! it writes one batch at a time. On PostgreSQL ([`EventLog::parallel_batches`]) it may write
//! a second batch while the first commits, but only once 16 deliveries have queued: the
//! database's second core works while the first batch waits for its flush, and batches stay
//! large. Taking whatever is queued for a second transaction made batches small
//! and ingestion slower; waiting for 16 made it faster (`benches/ingest_load.rs`,
//! `docs/benchmarks.md`).
//!
//! On PostgreSQL each batch in flight runs on a connection the writer keeps between batches,
//! outside the pool ([`EventLog::Held`]): a sqlx pool pings every connection it takes back,
//! which cost a round trip per batch.
//!
//! A batch that fails is retried delivery by delivery, so one bad delivery cannot fail the
//! others; a PostgreSQL deadlock with a batch written at the same time (this writer's other
//! batch, another replica's, or the import's, which records through the same store; keys are
//! written in sorted order, which makes it rare) is retried. When every [`Ingestor`] handle is dropped the
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
    let parallel = log.parallel_batches().max(1);
    let mut in_flight = tokio::task::JoinSet::new();
    // What finished batches held (PostgreSQL: their connections), for the next ones.
    let mut spare: Vec<L::Held> = Vec::with_capacity(parallel);
    let mut queued: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    loop {
        // A batch starts at once when none is being written; another one alongside only once
        // enough has queued to be worth a transaction of its own.
        let start = match in_flight.len() {
            0 => !queued.is_empty(),
            n => n < parallel && queued.len() >= OVERLAP_MIN,
        };
        if start {
            // Whatever else has arrived goes in too (the loop may have woken for a commit).
            while queued.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => queued.push(job),
                    Err(_) => break,
                }
            }
            let jobs = std::mem::replace(&mut queued, Vec::with_capacity(MAX_BATCH));
            let held = spare.pop().unwrap_or_default();
            in_flight.spawn(commit(
                log.clone(),
                held,
                jobs,
                metrics.clone(),
                live.clone(),
            ));
            continue;
        }
        if !open && in_flight.is_empty() {
            return;
        }
        let room = MAX_BATCH - queued.len();
        tokio::select! {
            // Cancel-safe: what it received stays in `queued`.
            received = receiver.recv_many(&mut queued, room), if open && room > 0 => {
                if received == 0 {
                    open = false;
                }
            }
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                match joined {
                    Ok(held) => spare.push(held),
                    // A batch whose task panicked has dropped its replies: its requests get
                    // 503.
                    Err(error) => {
                        tracing::error!(%error, "a group-commit batch stopped abnormally");
                    }
                }
            }
        }
    }
}

/// The least a batch written alongside another holds. Smaller overlapping batches cost more
/// statements per event than they gain (`docs/benchmarks.md`: 4, 8, 12, 16 and 24 compared).
const OVERLAP_MIN: usize = 16;

/// Writes one batch through what `held` holds and answers its requests; returns `held` for
/// the next batch.
async fn commit<L: EventLog>(
    log: L,
    mut held: L::Held,
    jobs: Vec<Job>,
    metrics: Metrics,
    live: Option<crate::live::Live>,
) -> L::Held {
    let started = Instant::now();
    let (deliveries, mut replies): (Vec<NewDelivery>, Vec<Reply>) = jobs
        .into_iter()
        .map(|job| (job.delivery, job.reply))
        .unzip();
    let outcome = record_with_retries(&log, &mut held, &deliveries).await;
    metrics.batch_committed(deliveries.len(), started.elapsed());
    let mut any_new = false;
    match outcome {
        Ok(recorded) => {
            for (reply, recorded) in replies.into_iter().zip(recorded) {
                any_new |= matches!(recorded, Recorded::New(_) | Recorded::RawOnly(_));
                let _ = reply.send(Ok(recorded));
            }
        }
        Err(error) if replies.len() == 1 => {
            if let (Some(reply), Some(delivery)) = (replies.pop(), deliveries.first()) {
                let result = keep_raw_if_refused(&log, &mut held, delivery, error).await;
                any_new |= matches!(result, Ok(Recorded::RawOnly(_)));
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = replies.len(), "batch failed; recording its deliveries one by one");
            for (delivery, reply) in deliveries.iter().zip(replies) {
                let result = match record_one(&log, &mut held, delivery).await {
                    Err(error) => keep_raw_if_refused(&log, &mut held, delivery, error).await,
                    recorded => recorded,
                };
                any_new |= matches!(result, Ok(Recorded::New(_) | Recorded::RawOnly(_)));
                let _ = reply.send(result);
            }
        }
    }
    // After the answers: announcing the commit never delays a request.
    if any_new && let Some(live) = &live {
        live.committed();
    }
    held
}

async fn record_one<L: EventLog>(
    log: &L,
    held: &mut L::Held,
    delivery: &NewDelivery,
) -> Result<Recorded, StoreError> {
    record_with_retries(log, held, std::slice::from_ref(delivery))
        .await
        .map(|mut recorded| recorded.pop().unwrap_or(Recorded::Duplicate))
}

/// What becomes of a delivery that failed alone with `error`. When the database refused the
/// values of its records ([`StoreError::refuses_values`]: a projection it cannot store, which
/// no retry by OpenPhone would change), its raw event is recorded without them, so that it is
/// kept and acknowledged rather than refused until OpenPhone gives up; `replay` projects it
/// once a fix allows. Any other failure stands (the database may be back for the retry).
async fn keep_raw_if_refused<L: EventLog>(
    log: &L,
    held: &mut L::Held,
    delivery: &NewDelivery,
    error: StoreError,
) -> Result<Recorded, StoreError> {
    if !error.refuses_values() || delivery.changes.is_empty() {
        return Err(error);
    }
    tracing::error!(
        delivery_key = %delivery.delivery_key,
        event_type = delivery.event_type.as_deref().unwrap_or("?"),
        error = %crate::causes(&error).join(": "),
        "the database refused this delivery's records; keeping its raw event without them \
         (`reference-server replay` projects it once fixed)"
    );
    Ok(record_one(log, held, &delivery.raw_only(&error))
        .await?
        .raw_only())
}

async fn record_with_retries<L: EventLog>(
    log: &L,
    held: &mut L::Held,
    deliveries: &[NewDelivery],
) -> Result<Vec<Recorded>, StoreError> {
    let mut attempt = 0;
    loop {
        match log.append_held(held, deliveries).await {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use time::OffsetDateTime;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::event_log::MemoryEventLog;
    use crate::store::StoredDelivery;

    /// A log whose appends wait for a permit, allowing two batches at once, and that records
    /// the batches and how many were in flight.
    #[derive(Clone)]
    struct Gated {
        log: MemoryEventLog,
        gate: Arc<Semaphore>,
        in_flight: Arc<AtomicUsize>,
        batches: Arc<std::sync::Mutex<Vec<usize>>>,
    }

    impl EventLog for Gated {
        type Held = ();

        fn parallel_batches(&self) -> usize {
            2
        }

        async fn append(&self, deliveries: &[NewDelivery]) -> Result<Vec<Recorded>, StoreError> {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            self.batches.lock().unwrap().push(deliveries.len());
            self.gate.acquire().await.expect("gate").forget();
            let recorded = self.log.append(deliveries).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            recorded
        }

        async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
            self.log.get(key).await
        }

        async fn list(
            &self,
            event_type: Option<&str>,
            before: Option<i64>,
            limit: i64,
        ) -> Result<Vec<StoredDelivery>, StoreError> {
            self.log.list(event_type, before, limit).await
        }

        async fn count(&self) -> Result<i64, StoreError> {
            self.log.count().await
        }

        async fn ascending(
            &self,
            event_type: Option<&str>,
            after: i64,
            since: OffsetDateTime,
            limit: i64,
        ) -> Result<Vec<StoredDelivery>, StoreError> {
            self.log.ascending(event_type, after, since, limit).await
        }

        async fn latest_id(&self) -> Result<i64, StoreError> {
            self.log.latest_id().await
        }
    }

    fn delivery(index: usize) -> NewDelivery {
        NewDelivery {
            delivery_key: format!("webhook-id:msg_{index}"),
            scheme: "standard",
            event_id: Some(format!("EV{index}")),
            event_type: Some("message.received".to_owned()),
            parse_error: None,
            signed_at: OffsetDateTime::UNIX_EPOCH,
            received_at: OffsetDateTime::UNIX_EPOCH,
            body: b"{}".to_vec(),
            changes: Vec::new(),
        }
    }

    /// Yields until `done` holds (bounded).
    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn a_second_batch_waits_for_enough_deliveries_and_never_a_third() {
        let log = Gated {
            log: MemoryEventLog::new(),
            gate: Arc::new(Semaphore::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            batches: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        let (ingestor, writers) = Ingestor::start(log.clone(), Metrics::default(), None);
        let send = |range: std::ops::Range<usize>| {
            range
                .map(|index| {
                    let ingestor = ingestor.clone();
                    tokio::spawn(async move { ingestor.record(delivery(index)).await })
                })
                .collect::<Vec<_>>()
        };
        let in_flight = || log.in_flight.load(Ordering::SeqCst);
        let batches = || log.batches.lock().unwrap().clone();

        // Alone, a delivery is written at once.
        let mut answers = send(0..1);
        until("the first batch", || in_flight() == 1).await;
        // Fifteen queued behind it are not worth a second transaction...
        answers.extend(send(1..16));
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        assert_eq!((in_flight(), batches()), (1, vec![1]));
        // ...sixteen are.
        answers.extend(send(16..17));
        until("the second batch", || in_flight() == 2).await;
        assert_eq!(batches(), [1, 16]);
        // Never a third: twenty more wait for one of the two to finish.
        answers.extend(send(17..37));
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        assert_eq!(in_flight(), 2);

        // Every handle gone while two batches wait: the writer still finishes them, and the
        // twenty queued, before it stops.
        drop(ingestor);
        let drained = tokio::spawn(writers.drained());
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        assert!(!drained.is_finished(), "batches are still being written");
        log.gate.add_permits(3);
        for answer in answers {
            assert!(matches!(answer.await.expect("task"), Ok(Recorded::New(_))));
        }
        assert_eq!(batches(), [1, 16, 20]);
        assert_eq!(log.count().await.expect("count"), 37);
        tokio::time::timeout(std::time::Duration::from_secs(10), drained)
            .await
            .expect("the writer stops once every handle is gone")
            .expect("drained");
    }
}
