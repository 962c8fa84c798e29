//! Threads on the server's database: the store conformance suite, and appends racing
//! resolutions on one database.

use std::collections::HashMap;

use futures_util::future::join_all;
use thread_resolver::{Entry, EntryKind, Resolution, Resolver, ThreadState, ThreadStore};
use time::macros::datetime;

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

/// The `thread_resolver` store conformance suite, which the memory store also passes.
async fn the_thread_store_conformance_suite_passes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    thread_resolver::conformance::run(db.store().await).await;
    db.cleanup().await;
}

/// Many conversations take messages while sweeps resolve them, concurrently: every message
/// is in exactly the thread it joined, every snapshot holds exactly its thread's entries,
/// one open thread per conversation at most, and no thread resolved as idle took an entry
/// in its last 30 minutes.
async fn appends_racing_sweeps_lose_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let resolver = Resolver::new(store.clone(), time::Duration::minutes(30)).unwrap();
    let start = datetime!(2026-11-27 12:00 UTC);
    let mut joined: HashMap<String, thread_resolver::ThreadId> = HashMap::new();
    for round in 0..6i64 {
        // Each round: 8 conversations get a message, dated 31 minutes after the last round,
        // while two sweeps at that time run; half the conversations get one more message
        // during the sweep.
        let at = start + time::Duration::minutes(31 * round);
        let appends = (0..8).map(|c| {
            let store = store.clone();
            async move {
                let entry = Entry {
                    id: format!("r{round}c{c}"),
                    kind: EntryKind::Message,
                    direction: "incoming".into(),
                    from: None,
                    text: Some("hi".into()),
                    at,
                };
                let appended = store
                    .append(&format!("PN1|+1415555{c:04}"), &entry)
                    .await
                    .unwrap();
                (entry.id, appended.thread)
            }
        });
        let sweeps = (0..2).map(|_| resolver.sweep(at));
        let (appended, sweeps) = tokio::join!(join_all(appends), join_all(sweeps));
        for sweep in sweeps {
            sweep.unwrap();
        }
        joined.extend(appended);
    }
    let threads = store
        .threads(&Default::default(), None, 10_000)
        .await
        .unwrap();
    let mut open_per_key: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for thread in &threads {
        let entries = store.entries(thread.id).await.unwrap();
        total += entries.len();
        for entry in &entries {
            assert_eq!(
                joined.get(&entry.id),
                Some(&thread.id),
                "{} in the wrong thread",
                entry.id
            );
        }
        match thread.state {
            ThreadState::Open => *open_per_key.entry(thread.key.clone()).or_default() += 1,
            ThreadState::Resolved => {
                let snapshot = store.snapshot(thread.id).await.unwrap().unwrap();
                assert_eq!(snapshot.entries, entries);
                if thread.resolution == Some(Resolution::Idle) {
                    assert!(
                        thread.last_activity_at
                            <= thread.resolved_at.unwrap() - time::Duration::minutes(30)
                    );
                }
            }
        }
    }
    assert_eq!(total, joined.len(), "nothing lost");
    assert!(open_per_key.values().all(|n| *n == 1));
    assert!(
        threads.iter().any(|t| t.state == ThreadState::Resolved),
        "sweeps resolved some"
    );
    db.cleanup().await;
}

backend_tests!(
    the_thread_store_conformance_suite_passes,
    appends_racing_sweeps_lose_nothing,
);
