//! The raw event log as a port: the system of record of ingestion.
//!
//! [`EventLog`] is what ingestion needs of storage: append deliveries, deduplicated for ever by
//! key, and read them back. [`Store`] implements it on SQLite and PostgreSQL (appending also
//! applies each new delivery's projection in the same transaction; the normalized records are
//! a read model that `replay` rebuilds from this log). [`MemoryEventLog`] implements it in
//! memory, for tests and for embedding without a database. [`conformance::run`] is the one
//! suite every implementation must pass; the crate runs it on all three.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use crate::store::{HeldConnection, NewDelivery, Recorded, Store, StoreError, StoredDelivery};

/// An append-only log of webhook deliveries, deduplicated by delivery key.
pub trait EventLog: Clone + Send + Sync + 'static {
    /// Appends the deliveries whose key is not stored yet (earlier, or earlier in this
    /// batch), atomically: all of them or none. One outcome per delivery, in order; new rows
    /// get increasing ids.
    fn append(
        &self,
        deliveries: &[NewDelivery],
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;

    /// The delivery stored under `key`.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;

    /// Newest first: at most `limit` deliveries with ids below `before`, of `event_type`
    /// when given.
    fn list(
        &self,
        event_type: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StoredDelivery>, StoreError>> + Send;

    /// How many deliveries are stored.
    fn count(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Oldest first: at most `limit` deliveries (none for a limit below 1) with ids above
    /// `after`, received at or after `since`, of `event_type` when given (the export, live
    /// streams and the thread feed read the log this way).
    fn ascending(
        &self,
        event_type: Option<&str>,
        after: i64,
        since: OffsetDateTime,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StoredDelivery>, StoreError>> + Send;

    /// The id of the newest delivery, 0 when the log is empty.
    fn latest_id(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// How many batches the group commit may append at once: one where appends serialize
    /// anyway (the default).
    fn parallel_batches(&self) -> usize {
        1
    }

    /// What a group-commit writer keeps from one batch to its next (a database connection
    /// kept out of the pool; `()` where nothing is worth keeping).
    type Held: Default + Send + 'static;

    /// [`append`](Self::append), given what the writer `held` since its last batch (which it
    /// may fill or empty); by default, `append`.
    fn append_held(
        &self,
        held: &mut Self::Held,
        deliveries: &[NewDelivery],
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send {
        let _ = held;
        self.append(deliveries)
    }
}

impl EventLog for Store {
    /// Two on PostgreSQL (a second batch is written while the first commits), one on SQLite.
    fn parallel_batches(&self) -> usize {
        match self {
            Store::Sqlite(_) => 1,
            Store::Postgres(_) => 2,
        }
    }

    async fn append(&self, deliveries: &[NewDelivery]) -> Result<Vec<Recorded>, StoreError> {
        self.record_batch(deliveries).await
    }

    /// On PostgreSQL, a [`HeldConnection`] spares the pool's ping per batch.
    type Held = HeldConnection;

    async fn append_held(
        &self,
        held: &mut HeldConnection,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<Recorded>, StoreError> {
        self.record_batch_held(held, deliveries).await
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        self.delivery(key).await
    }

    async fn list(
        &self,
        event_type: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        self.events(event_type, before, limit).await
    }

    async fn count(&self) -> Result<i64, StoreError> {
        self.delivery_count().await
    }

    async fn ascending(
        &self,
        event_type: Option<&str>,
        after: i64,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            delivery_key: String,
            scheme: String,
            event_id: Option<String>,
            event_type: Option<String>,
            parse_error: Option<String>,
            signed_at: OffsetDateTime,
            received_at: OffsetDateTime,
            body: Vec<u8>,
        }
        let rows: Vec<Row> = self
            .fetch_all(
                "SELECT id, delivery_key, scheme, event_id, event_type, parse_error, signed_at, received_at, body \
                 FROM webhook_deliveries WHERE id > $1 AND received_at >= $2 AND ($3 IS NULL OR event_type = $3) \
                 ORDER BY id LIMIT $4",
                &[
                    after.into(),
                    since.into(),
                    event_type.map(str::to_owned).into(),
                    limit.max(0).into(),
                ],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredDelivery {
                id: row.id,
                delivery_key: row.delivery_key,
                scheme: row.scheme,
                event_id: row.event_id,
                event_type: row.event_type,
                parse_error: row.parse_error,
                signed_at: row.signed_at,
                received_at: row.received_at,
                body: row.body,
            })
            .collect())
    }

    async fn latest_id(&self) -> Result<i64, StoreError> {
        let row: Option<(Option<i64>,)> = self
            .fetch_optional("SELECT MAX(id) FROM webhook_deliveries", &[])
            .await?;
        Ok(row.and_then(|(id,)| id).unwrap_or(0))
    }
}

#[derive(Debug, Default)]
struct Memory {
    rows: Vec<StoredDelivery>,
    by_key: HashMap<String, usize>,
}

/// An [`EventLog`] in memory: nothing survives the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryEventLog {
    inner: Arc<Mutex<Memory>>,
}

impl MemoryEventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventLog for MemoryEventLog {
    type Held = ();

    async fn append(&self, deliveries: &[NewDelivery]) -> Result<Vec<Recorded>, StoreError> {
        Ok(self.with(|memory| {
            deliveries
                .iter()
                .map(|delivery| {
                    if memory.by_key.contains_key(&delivery.delivery_key) {
                        return Recorded::Duplicate;
                    }
                    let id = i64::try_from(memory.rows.len()).unwrap_or(i64::MAX) + 1;
                    memory
                        .by_key
                        .insert(delivery.delivery_key.clone(), memory.rows.len());
                    memory.rows.push(StoredDelivery {
                        id,
                        delivery_key: delivery.delivery_key.clone(),
                        scheme: delivery.scheme.to_owned(),
                        event_id: delivery.event_id.clone(),
                        event_type: delivery.event_type.clone(),
                        parse_error: delivery.parse_error.clone(),
                        signed_at: delivery.signed_at,
                        received_at: delivery.received_at,
                        body: delivery.body.clone(),
                    });
                    Recorded::New(id)
                })
                .collect()
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        Ok(self.with(|memory| {
            memory
                .by_key
                .get(key)
                .and_then(|&index| memory.rows.get(index))
                .cloned()
        }))
    }

    async fn list(
        &self,
        event_type: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let limit = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
        Ok(self.with(|memory| {
            memory
                .rows
                .iter()
                .rev()
                .filter(|row| row.id < before)
                .filter(|row| event_type.is_none_or(|kind| row.event_type.as_deref() == Some(kind)))
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn count(&self) -> Result<i64, StoreError> {
        Ok(self.with(|memory| i64::try_from(memory.rows.len()).unwrap_or(i64::MAX)))
    }

    async fn ascending(
        &self,
        event_type: Option<&str>,
        after: i64,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let limit = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
        Ok(self.with(|memory| {
            memory
                .rows
                .iter()
                .filter(|row| row.id > after && row.received_at >= since)
                .filter(|row| event_type.is_none_or(|kind| row.event_type.as_deref() == Some(kind)))
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn latest_id(&self) -> Result<i64, StoreError> {
        Ok(self.with(|memory| memory.rows.last().map_or(0, |row| row.id)))
    }
}

/// The conformance suite of [`EventLog`]: run it against a new, empty log of every
/// implementation. It panics at the first broken expectation.
pub mod conformance {
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::EventLog;
    use crate::store::{NewDelivery, Recorded};

    fn delivery(key: &str, event_type: &str, body: &[u8]) -> NewDelivery {
        NewDelivery {
            delivery_key: key.to_owned(),
            scheme: "standard",
            event_id: Some(format!("EV-{key}")),
            event_type: Some(event_type.to_owned()),
            parse_error: None,
            signed_at: datetime!(2026-04-13 12:00:00.123 UTC),
            received_at: datetime!(2026-04-13 12:00:01.456 UTC),
            body: body.to_vec(),
            changes: Vec::new(),
        }
    }

    fn new_id(outcome: &Recorded) -> i64 {
        match outcome {
            Recorded::New(id) => *id,
            other => panic!("expected a new row, got {other:?}"),
        }
    }

    /// Runs every case on `log`, which must be empty.
    pub async fn run<L: EventLog>(log: L) {
        assert_eq!(
            log.count().await.expect("count"),
            0,
            "the log must start empty"
        );
        assert_eq!(log.latest_id().await.expect("latest"), 0, "empty: 0");
        appends_and_reads_back_exact_bytes(&log).await;
        duplicates_change_nothing(&log).await;
        lists_newest_first_by_type_in_pages(&log).await;
        reads_oldest_first_after_an_id_since_a_time(&log).await;
        concurrent_appends_of_one_key_store_it_once(&log).await;
    }

    async fn reads_oldest_first_after_an_id_since_a_time<L: EventLog>(log: &L) {
        let newest = log.list(None, None, 1).await.expect("list");
        assert_eq!(log.latest_id().await.expect("latest"), newest[0].id);
        // Two more, received a day later.
        let later = datetime!(2026-04-14 09:00 UTC);
        for key in ["late-1", "late-2"] {
            let mut late = delivery(key, "call.ringing", b"{}");
            late.received_at = later;
            log.append(&[late]).await.expect("append");
        }
        let latest = log.latest_id().await.expect("latest");
        assert_eq!(
            log.get("late-2").await.expect("get").expect("stored").id,
            latest
        );
        // Every delivery, oldest first, in pages of 4 resumed after the last id.
        let mut all = Vec::new();
        let mut after = 0;
        for _ in 0..100 {
            let page = log
                .ascending(None, after, OffsetDateTime::UNIX_EPOCH, 4)
                .await
                .expect("ascending");
            let Some(last) = page.last() else { break };
            after = last.id;
            all.extend(page.into_iter().map(|row| (row.id, row.delivery_key)));
        }
        assert_eq!(all.len(), 12);
        assert!(
            all.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "oldest first"
        );
        assert_eq!(all[0].1, "a");
        // Since a time, of a type.
        let since = log
            .ascending(Some("call.ringing"), 0, later, 10)
            .await
            .expect("since");
        let keys: Vec<_> = since.iter().map(|row| row.delivery_key.as_str()).collect();
        assert_eq!(keys, ["late-1", "late-2"]);
        let after_first = log
            .ascending(Some("call.ringing"), since[0].id, later, 10)
            .await
            .expect("after");
        assert_eq!(after_first.len(), 1);
        // Nothing after the newest; an empty type is a type no delivery has; a limit below
        // 1 reads nothing.
        for (event_type, after, limit) in [
            (None, latest, 10),
            (Some(""), 0, 10),
            (None, 0, 0),
            (None, 0, -1),
        ] {
            assert!(
                log.ascending(event_type, after, OffsetDateTime::UNIX_EPOCH, limit)
                    .await
                    .expect("ascending")
                    .is_empty(),
                "{event_type:?} after {after}, limit {limit}"
            );
        }
        // Within one second: a delivery on the whole second is before a cutoff 0.2 s into it,
        // one half a second in is after it (RFC 3339 text drops a zero fraction, so its text
        // order is not time order).
        let whole = datetime!(2026-04-15 09:00:01 UTC);
        for (key, at) in [
            ("on-the-second", whole),
            ("half-past", whole + time::Duration::milliseconds(500)),
        ] {
            let mut delivery = delivery(key, "call.completed", b"{}");
            delivery.received_at = at;
            log.append(&[delivery]).await.expect("append");
        }
        let since = log
            .ascending(
                Some("call.completed"),
                0,
                whole + time::Duration::milliseconds(200),
                10,
            )
            .await
            .expect("since");
        let keys: Vec<_> = since.iter().map(|row| row.delivery_key.as_str()).collect();
        assert_eq!(keys, ["half-past"]);
    }

    async fn appends_and_reads_back_exact_bytes<L: EventLog>(log: &L) {
        // Not UTF-8, not JSON: kept as received.
        let body = b"\xff\x00{\"raw\": true}\r\n".to_vec();
        let mut first = delivery("a", "message.received", &body);
        first.parse_error = Some("not an event".to_owned());
        first.event_id = None;
        let outcomes = log
            .append(&[first.clone(), delivery("b", "call.completed", b"{}")])
            .await
            .expect("append");
        let (a, b) = (new_id(&outcomes[0]), new_id(&outcomes[1]));
        assert!(b > a, "ids increase in arrival order");
        let stored = log.get("a").await.expect("get").expect("stored");
        assert_eq!(stored.id, a);
        assert_eq!(stored.body, body);
        assert_eq!(stored.scheme, "standard");
        assert_eq!(stored.event_id, None);
        assert_eq!(stored.event_type.as_deref(), Some("message.received"));
        assert_eq!(stored.parse_error.as_deref(), Some("not an event"));
        assert_eq!(stored.signed_at, first.signed_at);
        assert_eq!(stored.received_at, first.received_at);
        assert!(log.get("missing").await.expect("get").is_none());
        assert_eq!(log.count().await.expect("count"), 2);
    }

    async fn duplicates_change_nothing<L: EventLog>(log: &L) {
        // Again later, with another body: the first stays.
        let mut again = delivery("a", "message.received", b"other");
        again.received_at = OffsetDateTime::UNIX_EPOCH;
        let outcomes = log.append(&[again]).await.expect("append");
        assert_eq!(outcomes, [Recorded::Duplicate]);
        let stored = log.get("a").await.expect("get").expect("stored");
        assert_ne!(stored.body, b"other");
        // Twice within one batch: the first of the batch wins.
        let outcomes = log
            .append(&[
                delivery("c", "message.delivered", b"first"),
                delivery("c", "message.delivered", b"second"),
            ])
            .await
            .expect("append");
        new_id(&outcomes[0]);
        assert_eq!(outcomes[1], Recorded::Duplicate);
        assert_eq!(
            log.get("c").await.expect("get").expect("stored").body,
            b"first"
        );
        assert_eq!(log.count().await.expect("count"), 3);
    }

    async fn lists_newest_first_by_type_in_pages<L: EventLog>(log: &L) {
        for n in 0..7 {
            let kind = if n % 2 == 0 {
                "call.ringing"
            } else {
                "contact.updated"
            };
            log.append(&[delivery(&format!("page-{n}"), kind, b"{}")])
                .await
                .expect("append");
        }
        let all = log.list(None, None, 100).await.expect("list");
        assert_eq!(all.len(), 10);
        assert!(
            all.windows(2).all(|pair| pair[0].id > pair[1].id),
            "newest first"
        );
        assert_eq!(all[0].delivery_key, "page-6");
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = log
                .list(Some("call.ringing"), before, 3)
                .await
                .expect("list");
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            seen.extend(page.iter().map(|row| row.delivery_key.clone()));
        }
        assert_eq!(seen, ["page-6", "page-4", "page-2", "page-0"]);
        assert!(
            log.list(Some("nothing.like.this"), None, 10)
                .await
                .expect("list")
                .is_empty()
        );
    }

    async fn concurrent_appends_of_one_key_store_it_once<L: EventLog>(log: &L) {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.append(&[delivery("race", "message.received", b"{}")])
                        .await
                        .expect("append")
                })
            })
            .collect();
        let mut new = 0;
        for task in tasks {
            if matches!(task.await.expect("task")[0], Recorded::New(_)) {
                new += 1;
            }
        }
        assert_eq!(new, 1, "exactly one of 16 racing appends stores the key");
        assert!(log.get("race").await.expect("get").is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_log_passes_the_conformance_suite() {
        conformance::run(MemoryEventLog::new()).await;
    }
}
