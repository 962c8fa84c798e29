//! Live updates: `GET /api/v1/stream`, server-sent events of what ingestion commits.
//!
//! The raw log is the source: each event is one committed delivery, with its row id as the SSE
//! id, so a client that reconnects with `Last-Event-ID` resumes exactly after what it saw. A
//! commit only wakes the streams: the group-commit writer bumps a local signal, and on
//! PostgreSQL also has `NOTIFY openphone_activity` sent, which every replica `LISTEN`s to and
//! turns into the same local signal. Announcements are coalesced: at most one `NOTIFY` every
//! [`ANNOUNCE_EVERY`], however many batches commit meanwhile (each `NOTIFY` is a transaction
//! PostgreSQL flushes to disk). Streams then read the log. Transactions may commit out of
//! id order (the two batches a writer may have in flight on PostgreSQL, the writers of several
//! replicas, and imports), so a stream re-reads a window of recent ids and skips those it sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::directory::Directory;
use crate::event_log::EventLog;
use crate::projection::Change;
use crate::store::{Store, StoreError, StoredDelivery};

/// The channel commits are announced on (PostgreSQL).
pub const CHANNEL: &str = "openphone_activity";

/// How many recent ids a stream re-reads, for commits that land out of id order: a batch may
/// commit after a later one of the same writer (two in flight on PostgreSQL), another
/// replica's, or the import's, each up to 128 deliveries (more ids when retried one by one),
/// so the window is generous.
const WINDOW: i64 = 1024;

/// The least time between two `NOTIFY`s of one replica: other replicas' streams may learn of
/// a commit about this much later (plus a `NOTIFY`'s round trip) than this replica's own
/// streams.
pub const ANNOUNCE_EVERY: Duration = Duration::from_millis(50);

/// What the announcing task is told.
enum Announce {
    /// A batch committed.
    Commit,
    /// The server is stopping: announce what is pending, then stop.
    Finish,
}

/// The task that sends `NOTIFY` (PostgreSQL).
#[derive(Clone)]
struct Announcer {
    /// Holds at most one message, so commits announced while one is pending coalesce.
    wakes: mpsc::Sender<Announce>,
    /// The task, until [`Live::finish`] awaits it.
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// The commit signal streams wait on.
#[derive(Clone)]
pub struct Live {
    signal: watch::Sender<u64>,
    closed: watch::Sender<bool>,
    /// The task that sends `NOTIFY`, on PostgreSQL.
    announce: Option<Announcer>,
}

impl Live {
    /// A signal for `store`; on PostgreSQL, also listens for other replicas' commits.
    pub fn new(store: Store) -> Self {
        let (signal, _) = watch::channel(0);
        let (closed, _) = watch::channel(false);
        let announce = match &store {
            Store::Postgres(pool) => {
                let (pool, listened) = (pool.clone(), signal.clone());
                tokio::spawn(listen(pool.clone(), listened));
                let (wakes, received) = mpsc::channel(1);
                let task = tokio::spawn(announce_commits(pool, received));
                Some(Announcer {
                    wakes,
                    task: Arc::new(Mutex::new(Some(task))),
                })
            }
            Store::Sqlite(_) => None,
        };
        Self {
            signal,
            closed,
            announce,
        }
    }

    /// Announces a commit: wakes this process's streams at once, and other replicas' on
    /// PostgreSQL (the `NOTIFY` is sent in the background, off the caller's path, within
    /// about [`ANNOUNCE_EVERY`]).
    pub fn committed(&self) {
        self.signal.send_modify(|count| *count += 1);
        if let Some(announce) = &self.announce {
            // Full: a wake-up is already pending, and it announces this commit too.
            let _ = announce.wakes.try_send(Announce::Commit);
        }
    }

    /// Sends the `NOTIFY` still pending, if any, and stops announcing (for a shutdown, once
    /// the writer has committed its last batch and before the pool closes). Waits at most
    /// five seconds.
    pub async fn finish(&self) {
        let Some(announce) = &self.announce else {
            return;
        };
        let task = announce
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let finished = async {
                let _ = announce.wakes.send(Announce::Finish).await;
                let _ = task.await;
            };
            if tokio::time::timeout(Duration::from_secs(5), finished)
                .await
                .is_err()
            {
                tracing::warn!("the last commits were not announced to other replicas in time");
            }
        }
    }

    /// Ends every stream (the server is shutting down: open streams must not hold it up).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

/// Sends one `NOTIFY` per wake-up, then waits [`ANNOUNCE_EVERY`]; commits meanwhile leave one
/// wake-up pending. Stops when told to finish (after the wake-up before it) or when every
/// [`Live`] is gone.
async fn announce_commits(pool: sqlx::PgPool, mut wakes: mpsc::Receiver<Announce>) {
    while let Some(Announce::Commit) = wakes.recv().await {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "commit not announced to other replicas");
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}

async fn listen(pool: sqlx::PgPool, signal: watch::Sender<u64>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "LISTEN failed");
                } else {
                    while listener.recv().await.is_ok() {
                        signal.send_modify(|count| *count += 1);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot listen for other replicas' commits"),
        }
        if signal.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A message a delivery touched, in a [`LiveUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LiveMessage {
    /// Its conversation's id.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// OpenPhone's message id.
    pub id: String,
    /// The status this delivery reported.
    #[schema(required = true)]
    pub status: Option<String>,
    /// Its text.
    #[schema(required = true)]
    pub text: Option<String>,
}

/// A call a delivery touched, in a [`LiveUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LiveCall {
    /// Its conversation's id.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// OpenPhone's call id.
    pub id: String,
    /// Its outcome (`missed`, `answered`, ...), when known.
    #[schema(required = true)]
    pub outcome: Option<String>,
    /// The status this delivery reported.
    #[schema(required = true)]
    pub status: Option<String>,
}

/// The `data` of an event of `GET /api/v1/stream`: what one committed delivery changed, for
/// clients. Fields are in alphabetical order, the order of the keys in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LiveUpdate {
    /// The calls it touched.
    pub calls: Vec<LiveCall>,
    /// The delivery's id in the raw log (also the event's SSE `id`).
    pub delivery_id: i64,
    /// The messages it touched.
    pub messages: Vec<LiveMessage>,
    /// The event type (also the event's SSE `event`).
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub event_type: Option<String>,
    /// The unread counts of the conversations touched, by conversation id.
    pub unread: BTreeMap<String, i64>,
}

/// What a delivery changed, for clients: messages, calls, and the unread counts of the
/// conversations touched.
async fn payload(
    store: &Store,
    own: &crate::projection::OwnNumbers,
    delivery: &StoredDelivery,
) -> LiveUpdate {
    let changes = crate::ingest::parse_event(&delivery.body)
        .map(|event| crate::projection::changes(&event, own))
        .unwrap_or_default();
    let mut messages = Vec::new();
    let mut calls = Vec::new();
    let mut conversations = BTreeSet::new();
    for change in &changes {
        match change {
            Change::Message {
                id,
                conversation_key,
                direction,
                status,
                body,
                ..
            } => {
                conversations.extend(conversation_key.clone());
                messages.push(LiveMessage {
                    conversation_id: conversation_key.as_deref().map(crate::api::conversation_id),
                    direction: direction.clone(),
                    id: id.clone(),
                    status: status.clone(),
                    text: body.clone(),
                });
            }
            Change::Call {
                id,
                conversation_key,
                outcome,
                status,
                ..
            } => {
                conversations.extend(conversation_key.clone());
                calls.push(LiveCall {
                    conversation_id: conversation_key.as_deref().map(crate::api::conversation_id),
                    id: id.clone(),
                    outcome: outcome.clone(),
                    status: status.clone(),
                });
            }
            _ => {}
        }
    }
    let mut unread = BTreeMap::new();
    for key in conversations {
        if let Ok(Some(conversation)) = store.conversation(&key).await {
            unread.insert(crate::api::conversation_id(&key), conversation.unread);
        }
    }
    LiveUpdate {
        calls,
        delivery_id: delivery.id,
        messages,
        event_type: delivery.event_type.clone(),
        unread,
    }
}

struct Cursor {
    store: Store,
    /// The token the stream was opened with, checked again while it runs.
    token_id: String,
    checked: tokio::time::Instant,
    signal: watch::Receiver<u64>,
    closed: watch::Receiver<bool>,
    last: i64,
    sent: BTreeSet<i64>,
    pending: VecDeque<SseEvent>,
}

impl Cursor {
    /// Whether the stream's token is still live (not revoked).
    async fn token_live(&self) -> Result<bool, StoreError> {
        let live: Option<(String,)> = self
            .store
            .fetch_optional(
                "SELECT id FROM api_tokens WHERE id = $1 AND revoked_at IS NULL",
                &[self.token_id.as_str().into()],
            )
            .await?;
        Ok(live.is_some())
    }

    /// Reads what was committed after what this stream sent.
    async fn fill(&mut self) -> Result<(), StoreError> {
        let floor = (self.last - WINDOW).max(0);
        let rows = EventLog::ascending(
            &self.store,
            None,
            floor,
            time::OffsetDateTime::UNIX_EPOCH,
            500,
        )
        .await?;
        // Our numbers, read once for the rows (they key group conversations).
        let own = if rows.is_empty() {
            crate::projection::OwnNumbers::default()
        } else {
            self.store.own_numbers().await.unwrap_or_default()
        };
        for row in rows {
            if row.id <= floor || self.sent.contains(&row.id) {
                continue;
            }
            let data = payload(&self.store, &own, &row).await;
            self.pending.push_back(
                SseEvent::default()
                    .id(row.id.to_string())
                    .event(
                        row.event_type
                            .clone()
                            .unwrap_or_else(|| "unknown".to_owned()),
                    )
                    .data(serde_json::to_string(&data).unwrap_or_default()),
            );
            self.sent.insert(row.id);
            self.last = self.last.max(row.id);
        }
        let keep_from = (self.last - WINDOW).max(0);
        self.sent = self.sent.split_off(&keep_from);
        Ok(())
    }
}

/// How often, at least, an open stream checks that its token is still live: a revoked token's
/// stream ends within about twice this of the revocation.
pub const TOKEN_CHECK_EVERY: Duration = Duration::from_secs(5);

/// The event stream of one client, opened with the token `token_id`, starting after delivery
/// `after`. It ends when the server stops, or once the token is revoked.
pub fn stream(
    live: &Live,
    store: Store,
    token_id: String,
    after: i64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let cursor = Cursor {
        store,
        token_id,
        checked: tokio::time::Instant::now(),
        signal: live.subscribe(),
        closed: live.closed.subscribe(),
        last: after,
        // Everything at or below `after` counts as sent.
        sent: ((after - WINDOW).max(0)..=after).collect(),
        pending: VecDeque::new(),
    };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if *cursor.closed.borrow() {
                return None;
            }
            if cursor.checked.elapsed() >= TOKEN_CHECK_EVERY {
                cursor.checked = tokio::time::Instant::now();
                match cursor.token_live().await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(error) => {
                        tracing::warn!(%error, "live stream: its token could not be checked")
                    }
                }
            }
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(event), cursor));
            }
            if let Err(error) = cursor.fill().await {
                tracing::warn!(%error, "live stream: reading the log failed");
            }
            if !cursor.pending.is_empty() {
                continue;
            }
            // Wait for a commit or the end; re-read every few seconds in any case.
            tokio::select! {
                changed = cursor.signal.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = cursor.closed.changed() => return None,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_serialize_with_sorted_keys() {
        let update = LiveUpdate {
            calls: vec![LiveCall {
                conversation_id: Some("c".into()),
                id: "CA1".into(),
                outcome: Some("missed".into()),
                status: None,
            }],
            delivery_id: 3,
            messages: vec![LiveMessage {
                conversation_id: None,
                direction: Some("incoming".into()),
                id: "AC1".into(),
                status: Some("received".into()),
                text: Some("hi".into()),
            }],
            event_type: Some("message.received".into()),
            unread: BTreeMap::from([("c".to_owned(), 2), ("b".to_owned(), 0)]),
        };
        crate::api::tests::assert_sorted(&update);
    }
}
