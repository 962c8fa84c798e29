//! Conversation threads in the server: the `thread-resolver` crate on the database
//! ([`crate::thread_store`]), fed from the raw event log and swept by the scheduler.
//!
//! [`ThreadJob`] runs every `THREAD_SWEEP_MINUTES` (5): it first feeds every message, call
//! and voicemail committed since its checkpoint into its conversation's open thread, then
//! resolves the threads idle for `THREAD_IDLE_MINUTES` (30). Feeding reads the append-only log
//! by id and re-reads the last [`FEED_OVERLAP`] deliveries each time (appends are idempotent),
//! so a delivery committed late with a lower id (concurrent group commits) is not skipped.
//! The feed goes a page of up to 1,000 deliveries at a time; when the server stops, it ends
//! after the page in progress (the run is recorded `stopped`, the sweep waits for the next
//! run).
//! History brought in by `reference-server import` is not in the log and is not threaded.

use futures_util::future::BoxFuture;
use thread_resolver::{Entry, EntryKind, Resolver, ThreadStore};
use time::OffsetDateTime;

use crate::directory::Directory;
use crate::import::Checkpoints;
use crate::ingest::{Clock, unix_ms};
use crate::projection::Change;
use crate::scheduler::{Job, RunEnd, Schedule, Stop};
use crate::store::Store;

/// How many deliveries before the checkpoint each feed reads again.
pub const FEED_OVERLAP: i64 = 5_000;
const FEED_CHECKPOINT: &str = "threads.feed";
const FEED_BATCH: i64 = 1_000;

/// The thread entries a delivery's projection changes hold, with their conversation key.
pub fn entries_of(changes: &[Change]) -> Vec<(String, Entry)> {
    let mut entries = Vec::new();
    for change in changes {
        match change {
            Change::Message {
                id,
                conversation_key: Some(key),
                direction,
                from,
                body,
                created_ms: Some(at),
                ..
            } => {
                if let Some(at) = crate::ingest::from_unix_ms(*at) {
                    entries.push((
                        key.clone(),
                        Entry {
                            id: id.clone(),
                            kind: EntryKind::Message,
                            direction: direction.clone().unwrap_or_else(|| "incoming".to_owned()),
                            from: from.clone(),
                            text: body.clone(),
                            at,
                        },
                    ));
                }
            }
            Change::Call {
                id,
                conversation_key: Some(key),
                direction,
                created_ms: Some(at),
                has_voicemail,
                completed_ms,
                ..
            } => {
                let Some(at) = crate::ingest::from_unix_ms(*at) else {
                    continue;
                };
                let direction = direction.clone().unwrap_or_else(|| "incoming".to_owned());
                entries.push((
                    key.clone(),
                    Entry {
                        id: id.clone(),
                        kind: EntryKind::Call,
                        direction: direction.clone(),
                        from: None,
                        text: None,
                        at,
                    },
                ));
                if *has_voicemail {
                    entries.push((
                        key.clone(),
                        Entry {
                            id: format!("{id}:voicemail"),
                            kind: EntryKind::Voicemail,
                            direction,
                            from: None,
                            text: None,
                            at: completed_ms
                                .and_then(crate::ingest::from_unix_ms)
                                .unwrap_or(at),
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    entries
}

/// What a feed did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Entries appended (an entry already in its thread is not counted).
    pub appended: u64,
    /// Whether it ended early because the server is stopping. The pages it committed are
    /// checkpointed; the next feed goes on from there.
    pub stopped: bool,
}

/// Feeds the log into threads from the checkpoint, a page of up to 1,000 deliveries at a time,
/// each page appended in one transaction and then checkpointed. When `stop` is requested it
/// ends after the page in progress.
pub async fn feed(store: &Store, now: OffsetDateTime, stop: &Stop) -> Result<Fed, String> {
    let checkpoint = store
        .import_cursor(FEED_CHECKPOINT)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|(cursor, _)| cursor)
        .and_then(|cursor| cursor.parse::<i64>().ok())
        .unwrap_or(0);
    let mut after = (checkpoint - FEED_OVERLAP).max(0);
    let mut appended = 0;
    let mut own = store.own_numbers().await.map_err(|e| e.to_string())?;
    loop {
        let rows = crate::event_log::EventLog::ascending(
            store,
            None,
            after,
            OffsetDateTime::UNIX_EPOCH,
            FEED_BATCH,
        )
        .await
        .map_err(|e| e.to_string())?;
        let Some(last) = rows.last().map(|row| row.id) else {
            break;
        };
        // One append of the whole page: one transaction, not one per message.
        let mut entries = Vec::new();
        for row in &rows {
            let Ok(event) = crate::ingest::parse_event(&row.body) else {
                continue;
            };
            own.learn(&event);
            entries.extend(entries_of(&crate::projection::changes(&event, &own)));
        }
        appended += store
            .append_all(&entries)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter(|outcome| outcome.new)
            .count() as u64;
        after = last;
        if after > checkpoint {
            store
                .save_cursor(
                    FEED_CHECKPOINT,
                    Some(&after.to_string()),
                    false,
                    unix_ms(now),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        if (rows.len() as i64) < FEED_BATCH {
            break;
        }
        if stop.requested() {
            return Ok(Fed {
                appended,
                stopped: true,
            });
        }
    }
    Ok(Fed {
        appended,
        stopped: false,
    })
}

/// Thread settings (see `docs/configuration.md`).
#[derive(Debug, Clone, Copy)]
pub struct ThreadSettings {
    /// Idle time before a thread resolves.
    pub idle: time::Duration,
    /// Time between sweeps.
    pub sweep_every: std::time::Duration,
}

impl Default for ThreadSettings {
    fn default() -> Self {
        ThreadSettings {
            idle: thread_resolver::DEFAULT_IDLE,
            sweep_every: std::time::Duration::from_secs(300),
        }
    }
}

/// The scheduler's thread job: feed, then sweep.
pub struct ThreadJob {
    /// The resolver (over the database).
    pub resolver: Resolver<Store>,
    /// How often.
    pub every: std::time::Duration,
    /// The clock.
    pub clock: Clock,
}

impl Job for ThreadJob {
    fn name(&self) -> &str {
        "threads"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(self.every)
    }

    fn run(&self, _slot: OffsetDateTime, stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let now = (self.clock)();
            let fed = feed(self.resolver.store(), now, &stop).await?;
            if fed.stopped || stop.requested() {
                // The sweep waits for the next run, after the rest of the feed.
                return Ok(RunEnd::Stopped(
                    serde_json::json!({"entries_fed": fed.appended}),
                ));
            }
            let sweep = self.resolver.sweep(now).await.map_err(|e| e.to_string())?;
            Ok(RunEnd::Done(
                serde_json::json!({"entries_fed": fed.appended, "resolved": sweep.resolved, "raced": sweep.raced}),
            ))
        })
    }
}
