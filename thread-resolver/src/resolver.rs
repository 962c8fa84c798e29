//! The sweep that resolves idle threads, and the manual overrides.

use time::{Duration, OffsetDateTime};

use crate::store::ThreadStore;
use crate::{Error, Resolution, Thread, ThreadId};

/// Resolves threads idle longer than `idle` (30 minutes by default), whoever spoke last.
#[derive(Debug, Clone)]
pub struct Resolver<S> {
    store: S,
    idle: Duration,
    batch: usize,
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sweep {
    /// Threads resolved.
    pub resolved: u64,
    /// Threads that took an entry while the sweep ran (left open).
    pub raced: u64,
}

/// The default idle time before a thread resolves.
pub const DEFAULT_IDLE: Duration = Duration::minutes(30);

impl<S: ThreadStore> Resolver<S> {
    /// A resolver over `store` resolving threads idle longer than `idle`.
    pub fn new(store: S, idle: Duration) -> Result<Self, Error> {
        if idle <= Duration::ZERO {
            return Err(Error::Invalid("the idle time must be positive".into()));
        }
        Ok(Resolver {
            store,
            idle,
            batch: 500,
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Resolves every thread whose last activity is older than `now - idle`. Each thread is
    /// resolved only at the version the sweep saw: one that took an entry meanwhile stays
    /// open. Work grows with the threads resolved.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<Sweep, Error> {
        let cutoff = now - self.idle;
        let mut sweep = Sweep::default();
        loop {
            let due = self.store.idle(cutoff, self.batch).await?;
            let mut progressed = false;
            for thread in &due {
                if self
                    .store
                    .resolve(thread.id, thread.version, &Resolution::Idle, now)
                    .await?
                {
                    sweep.resolved += 1;
                    progressed = true;
                } else {
                    sweep.raced += 1;
                }
            }
            if due.len() < self.batch || !progressed {
                break;
            }
        }
        if sweep.resolved > 0 {
            tracing::info!(
                resolved = sweep.resolved,
                raced = sweep.raced,
                "threads resolved"
            );
        }
        Ok(sweep)
    }

    /// Resolves thread `id` now (a person's decision), whatever its idle time.
    pub async fn resolve_now(
        &self,
        id: ThreadId,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Thread, Error> {
        loop {
            let (thread, version) = self.store.thread(id).await?;
            if thread.state != crate::ThreadState::Open {
                return Err(Error::Conflict(format!("{id} is already resolved")));
            }
            if self
                .store
                .resolve(id, version, &Resolution::Manual(by.to_owned()), now)
                .await?
            {
                return Ok(self.store.thread(id).await?.0);
            }
        }
    }

    /// Reopens resolved thread `id` as a new open thread with its entries.
    pub async fn reopen(&self, id: ThreadId, now: OffsetDateTime) -> Result<Thread, Error> {
        self.store.reopen(id, now).await
    }
}
