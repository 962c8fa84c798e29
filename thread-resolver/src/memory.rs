//! [`MemoryThreadStore`]: the in-memory [`ThreadStore`], for tests and embedding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use crate::store::{Appended, IdleThread, ThreadStore};
use crate::{Entry, Error, Resolution, Snapshot, Thread, ThreadFilter, ThreadId, ThreadState};

/// An in-memory [`ThreadStore`]. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryThreadStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i64,
    threads: BTreeMap<ThreadId, (Thread, i64)>,
    entries: HashMap<ThreadId, Vec<Entry>>,
    open_by_key: HashMap<String, ThreadId>,
    /// Open threads by last activity: what the sweep reads.
    idle_index: BTreeSet<(OffsetDateTime, ThreadId)>,
    /// The thread each entry first joined.
    seen: HashMap<String, ThreadId>,
    log: Vec<Snapshot>,
    logged: HashMap<ThreadId, usize>,
}

impl MemoryThreadStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    entries
}

impl Inner {
    fn open(&mut self, key: &str, at: OffsetDateTime, reopened_from: Option<ThreadId>) -> ThreadId {
        self.next_id += 1;
        let id = ThreadId(self.next_id);
        let thread = Thread {
            id,
            key: key.to_owned(),
            state: ThreadState::Open,
            entries: 0,
            opened_at: at,
            last_activity_at: at,
            resolved_at: None,
            resolution: None,
            reopened_from,
        };
        self.threads.insert(id, (thread, 0));
        self.entries.insert(id, Vec::new());
        self.open_by_key.insert(key.to_owned(), id);
        self.idle_index.insert((at, id));
        id
    }

    fn add(&mut self, id: ThreadId, entry: &Entry) {
        let (thread, version) = self.threads.get_mut(&id).expect("open thread exists");
        self.idle_index.remove(&(thread.last_activity_at, id));
        thread.entries += 1;
        thread.last_activity_at = thread.last_activity_at.max(entry.at);
        thread.opened_at = thread.opened_at.min(entry.at);
        *version += 1;
        self.idle_index.insert((thread.last_activity_at, id));
        self.entries.entry(id).or_default().push(entry.clone());
    }
}

impl ThreadStore for MemoryThreadStore {
    async fn append(&self, key: &str, entry: &Entry) -> Result<Appended, Error> {
        let mut inner = self.lock();
        if let Some(thread) = inner.seen.get(&entry.id) {
            return Ok(Appended {
                thread: *thread,
                new: false,
                opened: false,
            });
        }
        let (id, opened) = match inner.open_by_key.get(key) {
            Some(id) => (*id, false),
            None => (inner.open(key, entry.at, None), true),
        };
        inner.add(id, entry);
        inner.seen.insert(entry.id.clone(), id);
        Ok(Appended {
            thread: id,
            new: true,
            opened,
        })
    }

    async fn idle(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<IdleThread>, Error> {
        let inner = self.lock();
        Ok(inner
            .idle_index
            .iter()
            .take_while(|(at, _)| *at < cutoff)
            .take(limit)
            .map(|(at, id)| IdleThread {
                id: *id,
                version: inner.threads[id].1,
                last_activity_at: *at,
            })
            .collect())
    }

    async fn resolve(
        &self,
        id: ThreadId,
        version: i64,
        resolution: &Resolution,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        let Some((thread, current)) = inner.threads.get_mut(&id) else {
            return Err(Error::NotFound(id.to_string()));
        };
        if thread.state != ThreadState::Open || *current != version {
            return Ok(false);
        }
        thread.state = ThreadState::Resolved;
        thread.resolved_at = Some(now);
        thread.resolution = Some(resolution.clone());
        let thread = thread.clone();
        inner.idle_index.remove(&(thread.last_activity_at, id));
        inner.open_by_key.remove(&thread.key);
        let entries = sorted(inner.entries.get(&id).cloned().unwrap_or_default());
        let position = inner.log.len();
        inner.log.push(Snapshot { thread, entries });
        inner.logged.insert(id, position);
        Ok(true)
    }

    async fn thread(&self, id: ThreadId) -> Result<(Thread, i64), Error> {
        self.lock()
            .threads
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    async fn entries(&self, id: ThreadId) -> Result<Vec<Entry>, Error> {
        let inner = self.lock();
        let entries = inner
            .entries
            .get(&id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        Ok(sorted(entries.clone()))
    }

    async fn snapshot(&self, id: ThreadId) -> Result<Option<Snapshot>, Error> {
        let inner = self.lock();
        if !inner.threads.contains_key(&id) {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(inner
            .logged
            .get(&id)
            .map(|position| inner.log[*position].clone()))
    }

    async fn threads(
        &self,
        filter: &ThreadFilter,
        before: Option<ThreadId>,
        limit: usize,
    ) -> Result<Vec<Thread>, Error> {
        let inner = self.lock();
        Ok(inner
            .threads
            .values()
            .rev()
            .map(|(thread, _)| thread)
            .filter(|t| before.is_none_or(|before| t.id < before))
            .filter(|t| filter.state.is_none_or(|state| t.state == state))
            .filter(|t| {
                filter
                    .key_contains
                    .as_deref()
                    .is_none_or(|part| t.key.contains(part))
            })
            .filter(|t| filter.since.is_none_or(|since| t.last_activity_at >= since))
            .filter(|t| filter.until.is_none_or(|until| t.last_activity_at < until))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn reopen(&self, id: ThreadId, now: OffsetDateTime) -> Result<Thread, Error> {
        let mut inner = self.lock();
        let (thread, _) = inner
            .threads
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        if thread.state != ThreadState::Resolved {
            return Err(Error::Conflict(format!(
                "{id} is open: only resolved threads reopen"
            )));
        }
        if let Some(open) = inner.open_by_key.get(&thread.key) {
            return Err(Error::Conflict(format!(
                "{open} of the same conversation is open: resolve it first"
            )));
        }
        let new = inner.open(&thread.key, now, Some(id));
        for entry in sorted(inner.entries.get(&id).cloned().unwrap_or_default()) {
            inner.add(new, &entry);
        }
        // Reopened now: idle from now, not from the old entries.
        let (reopened, _) = inner.threads.get_mut(&new).expect("just opened");
        let old_activity = reopened.last_activity_at;
        reopened.last_activity_at = now.max(old_activity);
        reopened.opened_at = now;
        let reopened = reopened.clone();
        inner.idle_index.remove(&(old_activity, new));
        inner.idle_index.insert((reopened.last_activity_at, new));
        Ok(reopened)
    }

    async fn resolved_log(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Snapshot)>, Error> {
        let inner = self.lock();
        let start = after.map_or(0, |after| usize::try_from(after + 1).unwrap_or(0));
        Ok(inner
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(position, snapshot)| (position as i64, snapshot.clone()))
            .collect())
    }
}
