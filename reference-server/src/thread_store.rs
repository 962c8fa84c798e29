//! [`ThreadStore`] on the server's database (SQLite or PostgreSQL), passing the
//! `thread_resolver::conformance` suite like the memory store.
//!
//! An append is one transaction: it claims the entry id (idempotency), bumps the open
//! thread's version (or opens one; a partial unique index allows one open thread per
//! conversation) and stores the entry. [`ThreadStore::append_all`] does a page of entries in
//! one transaction, in a handful of statements whatever their number: arrays bound with
//! `UNNEST` on PostgreSQL, a JSON array with `json_each` on SQLite. A resolution is one
//! transaction: a conditional update on the version the sweep saw, then the snapshot. On
//! PostgreSQL both lock the thread row, so an append and a resolution of one thread
//! serialize: whichever comes second sees the other's effect.

use std::collections::{BTreeMap, HashMap, HashSet};

use thread_resolver::{
    Appended, Entry, EntryKind, Error, IdleThread, Resolution, Snapshot, Thread, ThreadFilter,
    ThreadId, ThreadState, ThreadStore,
};
use time::OffsetDateTime;

use crate::ingest::unix_ms;
use crate::store::{Arg, Store, StoreError, Tx};

fn backend(error: StoreError) -> Error {
    Error::backend(error)
}

fn time_of(ms: i64) -> OffsetDateTime {
    crate::ingest::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const THREAD_COLUMNS: &str = "id, thread_key, state, entries, version, opened_ms, last_activity_ms, resolved_ms, resolution, reopened_from";

#[derive(sqlx::FromRow)]
struct ThreadRow {
    id: i64,
    thread_key: String,
    state: String,
    entries: i64,
    version: i64,
    opened_ms: i64,
    last_activity_ms: i64,
    resolved_ms: Option<i64>,
    resolution: Option<String>,
    reopened_from: Option<i64>,
}

impl ThreadRow {
    fn into_thread(self) -> Result<(Thread, i64), Error> {
        Ok((
            Thread {
                id: ThreadId(self.id),
                key: self.thread_key,
                state: if self.state == "resolved" {
                    ThreadState::Resolved
                } else {
                    ThreadState::Open
                },
                entries: u64::try_from(self.entries).unwrap_or(0),
                opened_at: time_of(self.opened_ms),
                last_activity_at: time_of(self.last_activity_ms),
                resolved_at: self.resolved_ms.map(time_of),
                resolution: self
                    .resolution
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(Error::backend)?,
                reopened_from: self.reopened_from.map(ThreadId),
            },
            self.version,
        ))
    }
}

const ENTRY_COLUMNS: &str = "entry_id, kind, direction, from_address, text, at_ms";

#[derive(sqlx::FromRow)]
struct EntryRow {
    entry_id: String,
    kind: String,
    direction: String,
    from_address: Option<String>,
    text: Option<String>,
    at_ms: i64,
}

impl EntryRow {
    fn into_entry(self) -> Entry {
        Entry {
            id: self.entry_id,
            kind: EntryKind::parse(&self.kind).unwrap_or(EntryKind::Message),
            direction: self.direction,
            from: self.from_address,
            text: self.text,
            at: time_of(self.at_ms),
        }
    }
}

fn entry_args(thread: i64, entry: &Entry) -> Vec<Arg> {
    vec![
        thread.into(),
        entry.id.as_str().into(),
        entry.kind.as_str().into(),
        entry.direction.as_str().into(),
        entry.from.clone().into(),
        entry.text.clone().into(),
        unix_ms(entry.at).into(),
    ]
}

const INSERT_ENTRY: &str = "INSERT INTO thread_entries (thread_id, entry_id, kind, direction, from_address, text, at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (thread_id, entry_id) DO NOTHING";

impl Store {
    /// Appends `entries` in one transaction ([`append_page`]).
    async fn try_append_all(
        &self,
        entries: &[(String, Entry)],
    ) -> Result<Vec<Appended>, StoreError> {
        let mut tx = self.begin().await?;
        let appended = match &mut tx {
            Tx::Sqlite(tx) => append_page(&mut PageSteps::Sqlite(tx), entries).await?,
            Tx::Postgres(tx) => append_page(&mut PageSteps::Postgres(tx), entries).await?,
        };
        tx.commit().await?;
        Ok(appended)
    }

    async fn thread_entries(&self, id: ThreadId) -> Result<Vec<Entry>, StoreError> {
        let rows: Vec<EntryRow> = self
            .fetch_all(
                &format!("SELECT {ENTRY_COLUMNS} FROM thread_entries WHERE thread_id = $1 ORDER BY at_ms, entry_id"),
                &[id.0.into()],
            )
            .await?;
        Ok(rows.into_iter().map(EntryRow::into_entry).collect())
    }
}

/// A conversation's new entries in a page: how many, the earliest and the latest (unix ms).
type Group = (i64, i64, i64);

/// The statements of a page append ([`append_page`]), within a transaction on either backend:
/// PostgreSQL binds arrays (`UNNEST`), SQLite one JSON array a statement (`json_each`).
enum PageSteps<'a> {
    Sqlite(&'a mut sqlx::SqliteConnection),
    Postgres(&'a mut sqlx::PgConnection),
}

/// `rows` as one JSON array, for SQLite's `json_each`.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(rows)
        .map_err(|error| StoreError::Backend(sqlx::Error::Encode(error.into())))
}

impl PageSteps<'_> {
    /// Claims the entry ids (sorted) no append has claimed; returns those it claimed.
    async fn claim(&mut self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let claimed: Vec<String> = match self {
            Self::Postgres(connection) => {
                sqlx::query_scalar(
                    "INSERT INTO thread_entry_seen (entry_id, thread_id) SELECT id, 0 FROM UNNEST($1::text[]) AS u(id) \
                     ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id",
                )
                .bind(ids)
                .fetch_all(&mut **connection)
                .await?
            }
            Self::Sqlite(connection) => {
                sqlx::query_scalar(
                    "INSERT INTO thread_entry_seen (entry_id, thread_id) SELECT value, 0 FROM json_each(?1) WHERE true \
                     ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id",
                )
                .bind(json_rows(ids)?)
                .fetch_all(&mut **connection)
                .await?
            }
        };
        Ok(claimed.into_iter().collect())
    }

    /// The threads that entries claimed by earlier appends joined.
    async fn joined(&mut self, ids: &[&str]) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(match self {
            Self::Postgres(connection) => {
                sqlx::query_as(
                    "SELECT entry_id, thread_id FROM thread_entry_seen WHERE entry_id = ANY($1::text[])",
                )
                .bind(ids)
                .fetch_all(&mut **connection)
                .await?
            }
            Self::Sqlite(connection) => {
                sqlx::query_as(
                    "SELECT entry_id, thread_id FROM thread_entry_seen WHERE entry_id IN (SELECT value FROM json_each(?1))",
                )
                .bind(json_rows(ids)?)
                .fetch_all(&mut **connection)
                .await?
            }
        })
    }

    /// Bumps each conversation's open thread by its group (one by one, each entry bumps the
    /// count and the version and widens the times), or opens one with the group; returns each
    /// conversation's thread and whether it was opened.
    async fn bump_or_open(
        &mut self,
        groups: &BTreeMap<&str, Group>,
    ) -> Result<HashMap<String, (i64, bool)>, StoreError> {
        let keys: Vec<&str> = groups.keys().copied().collect();
        let rows: Vec<(String, i64, bool)> = match self {
            Self::Postgres(connection) => {
                sqlx::query_as(
                    "WITH u AS (SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]) \
                       AS u(thread_key, n, first_ms, last_ms)), \
                     bumped AS (UPDATE threads t SET entries = t.entries + u.n, version = t.version + u.n, \
                       last_activity_ms = GREATEST(t.last_activity_ms, u.last_ms), \
                       opened_ms = LEAST(t.opened_ms, u.first_ms) \
                       FROM u WHERE t.thread_key = u.thread_key AND t.state = 'open' RETURNING t.thread_key, t.id), \
                     opened AS (INSERT INTO threads (thread_key, state, entries, version, opened_ms, last_activity_ms) \
                       SELECT u.thread_key, 'open', u.n, u.n, u.first_ms, u.last_ms FROM u \
                       WHERE u.thread_key NOT IN (SELECT thread_key FROM bumped) ORDER BY u.thread_key \
                       RETURNING thread_key, id) \
                     SELECT thread_key, id, false FROM bumped UNION ALL SELECT thread_key, id, true FROM opened",
                )
                .bind(&keys)
                .bind(groups.values().map(|group| group.0).collect::<Vec<_>>())
                .bind(groups.values().map(|group| group.1).collect::<Vec<_>>())
                .bind(groups.values().map(|group| group.2).collect::<Vec<_>>())
                .fetch_all(&mut **connection)
                .await?
            }
            Self::Sqlite(connection) => {
                let rows: Vec<(&str, i64, i64, i64)> = groups
                    .iter()
                    .map(|(key, group)| (*key, group.0, group.1, group.2))
                    .collect();
                let bumped: Vec<(String, i64)> = sqlx::query_as(
                    "UPDATE threads SET entries = threads.entries + u.n, version = threads.version + u.n, \
                     last_activity_ms = MAX(threads.last_activity_ms, u.last_ms), \
                     opened_ms = MIN(threads.opened_ms, u.first_ms) \
                     FROM (SELECT value ->> 0 AS thread_key, value ->> 1 AS n, value ->> 2 AS first_ms, \
                       value ->> 3 AS last_ms FROM json_each(?1)) AS u \
                     WHERE threads.thread_key = u.thread_key AND threads.state = 'open' \
                     RETURNING threads.thread_key, threads.id",
                )
                .bind(json_rows(&rows)?)
                .fetch_all(&mut **connection)
                .await?;
                let bumped_keys: HashSet<&str> =
                    bumped.iter().map(|(key, _)| key.as_str()).collect();
                let unopened: Vec<&(&str, i64, i64, i64)> = rows
                    .iter()
                    .filter(|row| !bumped_keys.contains(row.0))
                    .collect();
                let mut all: Vec<(String, i64, bool)> = bumped
                    .into_iter()
                    .map(|(key, id)| (key, id, false))
                    .collect();
                if !unopened.is_empty() {
                    let opened: Vec<(String, i64)> = sqlx::query_as(
                        "INSERT INTO threads (thread_key, state, entries, version, opened_ms, last_activity_ms) \
                         SELECT value ->> 0, 'open', value ->> 1, value ->> 1, value ->> 2, value ->> 3 \
                         FROM json_each(?1) WHERE true RETURNING thread_key, id",
                    )
                    .bind(json_rows(&unopened)?)
                    .fetch_all(&mut **connection)
                    .await?;
                    all.extend(opened.into_iter().map(|(key, id)| (key, id, true)));
                }
                all
            }
        };
        Ok(rows
            .into_iter()
            .map(|(key, id, opened)| (key, (id, opened)))
            .collect())
    }

    /// Stores the new entries in their threads and records the thread each joined.
    async fn store(&mut self, new: &[(i64, &Entry)]) -> Result<(), StoreError> {
        match self {
            Self::Postgres(connection) => {
                sqlx::query(
                    "WITH stored AS (INSERT INTO thread_entries (thread_id, entry_id, kind, direction, from_address, text, at_ms) \
                       SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[]) \
                       ON CONFLICT (thread_id, entry_id) DO NOTHING) \
                     UPDATE thread_entry_seen s SET thread_id = u.thread_id \
                     FROM UNNEST($1::int8[], $2::text[]) AS u(thread_id, entry_id) WHERE s.entry_id = u.entry_id",
                )
                .bind(new.iter().map(|(thread, _)| *thread).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| e.id.as_str()).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| e.kind.as_str()).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| e.direction.as_str()).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| e.from.as_deref()).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| e.text.as_deref()).collect::<Vec<_>>())
                .bind(new.iter().map(|(_, e)| unix_ms(e.at)).collect::<Vec<_>>())
                .execute(&mut **connection)
                .await?;
            }
            Self::Sqlite(connection) => {
                let rows = json_rows(
                    &new.iter()
                        .map(|(thread, e)| {
                            (
                                *thread,
                                e.id.as_str(),
                                e.kind.as_str(),
                                e.direction.as_str(),
                                e.from.as_deref(),
                                e.text.as_deref(),
                                unix_ms(e.at),
                            )
                        })
                        .collect::<Vec<_>>(),
                )?;
                sqlx::query(
                    "INSERT INTO thread_entries (thread_id, entry_id, kind, direction, from_address, text, at_ms) \
                     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 \
                     FROM json_each(?1) WHERE true ON CONFLICT (thread_id, entry_id) DO NOTHING",
                )
                .bind(&rows)
                .execute(&mut **connection)
                .await?;
                let joined = json_rows(
                    &new.iter()
                        .map(|(thread, e)| (*thread, e.id.as_str()))
                        .collect::<Vec<_>>(),
                )?;
                sqlx::query(
                    "UPDATE thread_entry_seen SET thread_id = u.thread_id \
                     FROM (SELECT value ->> 0 AS thread_id, value ->> 1 AS entry_id FROM json_each(?1)) AS u \
                     WHERE thread_entry_seen.entry_id = u.entry_id",
                )
                .bind(&joined)
                .execute(&mut **connection)
                .await?;
            }
        }
        Ok(())
    }
}

/// Appends `entries` in order, within one transaction, with what appending them one by one
/// would give: each entry id joins a thread once (a repeat, in the page or from an earlier
/// append, changes nothing and reports the thread it joined); each conversation's new entries
/// join its open thread, or open one (the first of them in page order is the one that
/// opened it). A handful of statements whatever the page's size ([`PageSteps`]). Ids are
/// claimed in sorted order; on PostgreSQL two pages appended at once to the same
/// conversations may still deadlock (the order an update locks thread rows in follows its
/// plan), and [`ThreadStore::append_all`] runs the one PostgreSQL fails again.
async fn append_page(
    steps: &mut PageSteps<'_>,
    entries: &[(String, Entry)],
) -> Result<Vec<Appended>, StoreError> {
    // The first occurrence of each entry id: a repeat within the page changes nothing.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (index, (_, entry)) in entries.iter().enumerate() {
        first.entry(entry.id.as_str()).or_insert(index);
    }
    let mut ids: Vec<&str> = first.keys().copied().collect();
    ids.sort_unstable();
    let claimed = steps.claim(&ids).await?;
    // The thread each entry joined: those claimed by an earlier append from the table, the
    // new ones once appended.
    let mut thread_of: HashMap<String, i64> = HashMap::new();
    let earlier: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !claimed.contains(*id))
        .collect();
    if !earlier.is_empty() {
        thread_of.extend(steps.joined(&earlier).await?);
    }
    let is_new = |index: usize, entry: &Entry| {
        first.get(entry.id.as_str()) == Some(&index) && claimed.contains(&entry.id)
    };
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for (index, (key, entry)) in entries.iter().enumerate() {
        if is_new(index, entry) {
            let at = unix_ms(entry.at);
            let group = groups.entry(key.as_str()).or_insert((0, at, at));
            *group = (group.0 + 1, group.1.min(at), group.2.max(at));
        }
    }
    let threads = if groups.is_empty() {
        HashMap::new()
    } else {
        steps.bump_or_open(&groups).await?
    };
    let thread_of_key = |key: &str| {
        threads
            .get(key)
            .copied()
            .ok_or(StoreError::Backend(sqlx::Error::RowNotFound))
    };
    let new: Vec<(i64, &Entry)> = entries
        .iter()
        .enumerate()
        .filter(|(index, (_, entry))| is_new(*index, entry))
        .map(|(_, (key, entry))| Ok((thread_of_key(key)?.0, entry)))
        .collect::<Result<_, StoreError>>()?;
    if !new.is_empty() {
        steps.store(&new).await?;
    }
    // The outcomes in order: the first new entry of an opened thread is the one that opened it.
    let mut flagged: HashSet<&str> = HashSet::new();
    let mut appended = Vec::with_capacity(entries.len());
    for (index, (key, entry)) in entries.iter().enumerate() {
        if is_new(index, entry) {
            let (thread, opened) = thread_of_key(key)?;
            thread_of.insert(entry.id.clone(), thread);
            appended.push(Appended {
                thread: ThreadId(thread),
                new: true,
                opened: opened && flagged.insert(key.as_str()),
            });
        } else {
            appended.push(Appended {
                thread: ThreadId(thread_of.get(&entry.id).copied().unwrap_or(0)),
                new: false,
                opened: false,
            });
        }
    }
    Ok(appended)
}

impl ThreadStore for Store {
    async fn append(&self, key: &str, entry: &Entry) -> Result<Appended, Error> {
        let entries = [(key.to_owned(), entry.clone())];
        let mut appended = self.append_all(&entries).await?;
        appended
            .pop()
            .ok_or_else(|| backend(sqlx::Error::RowNotFound.into()))
    }

    async fn append_all(&self, entries: &[(String, Entry)]) -> Result<Vec<Appended>, Error> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts = 0;
        loop {
            match self.try_append_all(entries).await {
                Ok(appended) => return Ok(appended),
                // Another append opened the conversation's thread at the same time: join it.
                Err(error)
                    if (error.is_unique_violation() || error.is_transient()) && attempts < 10 =>
                {
                    attempts += 1
                }
                Err(error) => return Err(backend(error)),
            }
        }
    }

    async fn idle(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<IdleThread>, Error> {
        let rows: Vec<(i64, i64, i64)> = self
            .fetch_all(
                "SELECT id, version, last_activity_ms FROM threads \
                 WHERE state = 'open' AND last_activity_ms < $1 ORDER BY last_activity_ms, id LIMIT $2",
                &[unix_ms(cutoff).into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(id, version, at)| IdleThread {
                id: ThreadId(id),
                version,
                last_activity_at: time_of(at),
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
        let resolution_json = serde_json::to_string(resolution).map_err(Error::backend)?;
        let result: Result<bool, StoreError> = async {
            let mut tx = self.begin().await?;
            let row: Option<ThreadRow> = tx
                .fetch_optional(
                    &format!(
                        "UPDATE threads SET state = 'resolved', resolved_ms = $3, resolution = $4 \
                         WHERE id = $1 AND state = 'open' AND version = $2 RETURNING {THREAD_COLUMNS}"
                    ),
                    &[id.0.into(), version.into(), unix_ms(now).into(), resolution_json.into()],
                )
                .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let entries: Vec<EntryRow> = tx
                .fetch_all(
                    &format!("SELECT {ENTRY_COLUMNS} FROM thread_entries WHERE thread_id = $1 ORDER BY at_ms, entry_id"),
                    &[id.0.into()],
                )
                .await?;
            let (thread, _) = row
                .into_thread()
                .map_err(|error| StoreError::Backend(sqlx::Error::Decode(error.into())))?;
            let snapshot = Snapshot {
                thread,
                entries: entries.into_iter().map(EntryRow::into_entry).collect(),
            };
            let text = serde_json::to_string(&snapshot)
                .map_err(|error| StoreError::Backend(sqlx::Error::Decode(error.into())))?;
            tx.execute(
                "INSERT INTO resolved_threads (thread_id, snapshot, resolved_ms) VALUES ($1, $2, $3)",
                &[id.0.into(), text.into(), unix_ms(now).into()],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await;
        let resolved = result.map_err(backend)?;
        if !resolved {
            self.thread(id).await?;
        }
        Ok(resolved)
    }

    async fn thread(&self, id: ThreadId) -> Result<(Thread, i64), Error> {
        let row: Option<ThreadRow> = self
            .fetch_optional(
                &format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1"),
                &[id.0.into()],
            )
            .await
            .map_err(backend)?;
        row.ok_or_else(|| Error::NotFound(id.to_string()))?
            .into_thread()
    }

    async fn entries(&self, id: ThreadId) -> Result<Vec<Entry>, Error> {
        self.thread(id).await?;
        self.thread_entries(id).await.map_err(backend)
    }

    async fn snapshot(&self, id: ThreadId) -> Result<Option<Snapshot>, Error> {
        self.thread(id).await?;
        let row: Option<(String,)> = self
            .fetch_optional(
                "SELECT snapshot FROM resolved_threads WHERE thread_id = $1",
                &[id.0.into()],
            )
            .await
            .map_err(backend)?;
        row.map(|(text,)| serde_json::from_str(&text).map_err(Error::backend))
            .transpose()
    }

    async fn threads(
        &self,
        filter: &ThreadFilter,
        before: Option<ThreadId>,
        limit: usize,
    ) -> Result<Vec<Thread>, Error> {
        let mut sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id < $1");
        let mut args: Vec<Arg> = vec![
            before.map_or(i64::MAX, |b| b.0).into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        if let Some(state) = filter.state {
            args.push(state.as_str().into());
            sql.push_str(&format!(" AND state = ${}", args.len()));
        }
        if let Some(part) = &filter.key_contains {
            args.push(part.as_str().into());
            sql.push_str(&format!(" AND strpos(thread_key, ${}) > 0", args.len()));
        }
        if let Some(since) = filter.since {
            args.push(unix_ms(since).into());
            sql.push_str(&format!(" AND last_activity_ms >= ${}", args.len()));
        }
        if let Some(until) = filter.until {
            args.push(unix_ms(until).into());
            sql.push_str(&format!(" AND last_activity_ms < ${}", args.len()));
        }
        sql.push_str(" ORDER BY id DESC LIMIT $2");
        let rows: Vec<ThreadRow> = self.fetch_all(&sql, &args).await.map_err(backend)?;
        rows.into_iter()
            .map(|row| row.into_thread().map(|(thread, _)| thread))
            .collect()
    }

    async fn reopen(&self, id: ThreadId, now: OffsetDateTime) -> Result<Thread, Error> {
        let (thread, _) = self.thread(id).await?;
        if thread.state != ThreadState::Resolved {
            return Err(Error::Conflict(format!(
                "{id} is open: only resolved threads reopen"
            )));
        }
        let entries = self.thread_entries(id).await.map_err(backend)?;
        let result: Result<i64, StoreError> = async {
            let mut tx = self.begin().await?;
            let now_ms = unix_ms(now);
            let activity = entries.iter().map(|e| unix_ms(e.at)).max().unwrap_or(now_ms).max(now_ms);
            let (new,): (i64,) = tx
                .fetch_optional(
                    "INSERT INTO threads (thread_key, state, entries, version, opened_ms, last_activity_ms, reopened_from) \
                     VALUES ($1, 'open', $2, $2, $3, $4, $5) RETURNING id",
                    &[
                        thread.key.as_str().into(),
                        i64::try_from(entries.len()).unwrap_or(i64::MAX).into(),
                        now_ms.into(),
                        activity.into(),
                        id.0.into(),
                    ],
                )
                .await?
                .ok_or(StoreError::Backend(sqlx::Error::RowNotFound))?;
            for entry in &entries {
                tx.execute(INSERT_ENTRY, &entry_args(new, entry)).await?;
            }
            tx.commit().await?;
            Ok(new)
        }
        .await;
        match result {
            Ok(new) => Ok(self.thread(ThreadId(new)).await?.0),
            Err(error) if error.is_unique_violation() => Err(Error::Conflict(format!(
                "another thread of the same conversation is open: resolve it first ({id} stays resolved)"
            ))),
            Err(error) => Err(backend(error)),
        }
    }

    async fn resolved_log(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Snapshot)>, Error> {
        let rows: Vec<(i64, String)> = self
            .fetch_all(
                "SELECT position, snapshot FROM resolved_threads WHERE position > $1 ORDER BY position LIMIT $2",
                &[after.unwrap_or(i64::MIN).into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
            )
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|(position, text)| {
                Ok((
                    position,
                    serde_json::from_str(&text).map_err(Error::backend)?,
                ))
            })
            .collect()
    }
}
