//! The storage port: [`ThreadStore`] holds threads, their entries and the resolved log.
//!
//! Appending and resolving race by design (messages arrive while the sweep runs); the store
//! settles it with a version per thread: every append bumps it, and a resolution applies
//! only to the version the resolver saw. A message appended in between keeps the thread
//! open; it is never lost, and never frozen into a thread it did not join.

use std::future::Future;

use time::OffsetDateTime;

use crate::{Entry, Error, Resolution, Snapshot, Thread, ThreadFilter, ThreadId};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The thread holding the entry.
    pub thread: ThreadId,
    /// `false` when the entry was already in a thread (nothing changed).
    pub new: bool,
    /// Whether this append opened the thread.
    pub opened: bool,
}

/// An open thread idle long enough to resolve, as the sweep saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleThread {
    /// The thread.
    pub id: ThreadId,
    /// Its version when seen (bumped by every append).
    pub version: i64,
    /// Its last activity.
    pub last_activity_at: OffsetDateTime,
}

/// Storage of threads. Errors are [`Error::NotFound`], [`Error::Conflict`] or
/// [`Error::Backend`].
pub trait ThreadStore: Clone + Send + Sync + 'static {
    /// Appends `entry` to the open thread of `key`, opening one when none is open (so an
    /// entry after a resolution starts a new thread). Idempotent by entry id: an entry
    /// already in any thread changes nothing.
    fn append(
        &self,
        key: &str,
        entry: &Entry,
    ) -> impl Future<Output = Result<Appended, Error>> + Send;

    /// [`append`](Self::append) for each `(key, entry)` in order, one outcome each. A store
    /// that can writes them all at once (the SQL stores: one transaction, so a feed of many
    /// entries pays one commit, and on an error none is applied); by default, one by one.
    fn append_all(
        &self,
        entries: &[(String, Entry)],
    ) -> impl Future<Output = Result<Vec<Appended>, Error>> + Send {
        async move {
            let mut appended = Vec::with_capacity(entries.len());
            for (key, entry) in entries {
                appended.push(self.append(key, entry).await?);
            }
            Ok(appended)
        }
    }

    /// Open threads whose last activity is before `cutoff`, least recently active first, at
    /// most `limit`. Its cost grows with the threads returned, not with all open threads.
    fn idle(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<IdleThread>, Error>> + Send;

    /// Resolves thread `id` if it is open and still at `version` (compare-and-set), freezing
    /// its snapshot into the resolved log in the same step. `false` when it changed or is no
    /// longer open.
    fn resolve(
        &self,
        id: ThreadId,
        version: i64,
        resolution: &Resolution,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The thread with `id`, and its version.
    fn thread(&self, id: ThreadId) -> impl Future<Output = Result<(Thread, i64), Error>> + Send;

    /// A thread's entries, oldest first (by time, then id).
    fn entries(&self, id: ThreadId) -> impl Future<Output = Result<Vec<Entry>, Error>> + Send;

    /// The frozen snapshot of a resolved thread, if it was resolved.
    fn snapshot(
        &self,
        id: ThreadId,
    ) -> impl Future<Output = Result<Option<Snapshot>, Error>> + Send;

    /// Threads matching `filter`, newest id first, with ids below `before`, at most `limit`.
    fn threads(
        &self,
        filter: &ThreadFilter,
        before: Option<ThreadId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Thread>, Error>> + Send;

    /// Starts a new open thread from a resolved one's entries (the snapshot stays as it
    /// was). [`Error::Conflict`] when `id` is not resolved, or another thread of its key is
    /// open.
    fn reopen(
        &self,
        id: ThreadId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Thread, Error>> + Send;

    /// The resolved log in resolution order: `(position, snapshot)` after position `after`,
    /// at most `limit`. Positions increase with each resolution.
    fn resolved_log(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(i64, Snapshot)>, Error>> + Send;
}
