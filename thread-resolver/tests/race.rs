//! Appends racing the sweep, as random interleavings on the memory store: the sweep reads
//! the idle threads, entries arrive, then the sweep resolves what it read. After every step:
//! every entry is in the thread it joined and nowhere else, a resolved thread's snapshot
//! holds exactly its entries and never changes, and a conversation has at most one open
//! thread, and a thread resolved as idle took no entry in its last 30 minutes.

use std::collections::{BTreeMap, HashMap};

use futures_util::FutureExt;
use proptest::prelude::*;
use thread_resolver::{
    Entry, EntryKind, IdleThread, MemoryThreadStore, Resolution, Snapshot, ThreadId, ThreadState,
    ThreadStore,
};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone)]
enum Op {
    /// A message in conversation `n`.
    Append(u8),
    /// The clock moves on.
    Advance(i64),
    /// The sweep reads the threads idle for 30 minutes.
    ReadIdle,
    /// The sweep resolves what it read last.
    ResolveRead,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3).prop_map(Op::Append),
        2 => (1i64..50).prop_map(Op::Advance),
        1 => Just(Op::ReadIdle),
        1 => Just(Op::ResolveRead),
    ]
}

fn now<T>(future: impl std::future::Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("the memory store answers at once")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn entries_are_never_lost_or_frozen_into_the_wrong_thread(ops in proptest::collection::vec(op(), 1..80)) {
        let store = MemoryThreadStore::new();
        let mut clock: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);
        let mut read: Vec<IdleThread> = Vec::new();
        let mut joined: BTreeMap<String, ThreadId> = BTreeMap::new();
        let mut frozen: HashMap<ThreadId, Snapshot> = HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            match op {
                Op::Append(conversation) => {
                    let entry = Entry {
                        id: format!("m{n}"),
                        kind: EntryKind::Message,
                        direction: "incoming".into(),
                        from: None,
                        text: Some("hi".into()),
                        at: clock,
                    };
                    let appended = now(store.append(&format!("PN1|c{conversation}"), &entry)).unwrap();
                    joined.insert(entry.id, appended.thread);
                }
                Op::Advance(minutes) => clock += time::Duration::minutes(*minutes),
                Op::ReadIdle => read = now(store.idle(clock - time::Duration::minutes(30), 100)).unwrap(),
                Op::ResolveRead => {
                    for thread in read.drain(..) {
                        now(store.resolve(thread.id, thread.version, &Resolution::Idle, clock)).unwrap();
                    }
                }
            }
            // Every entry is in the thread it joined.
            let mut open_per_key: HashMap<String, usize> = HashMap::new();
            let threads = now(store.threads(&Default::default(), None, 10_000)).unwrap();
            for thread in &threads {
                let entries = now(store.entries(thread.id)).unwrap();
                for entry in &entries {
                    prop_assert_eq!(joined.get(&entry.id), Some(&thread.id), "entry {} in the wrong thread", entry.id);
                }
                prop_assert_eq!(entries.len() as u64, thread.entries);
                if thread.state == ThreadState::Open {
                    *open_per_key.entry(thread.key.clone()).or_default() += 1;
                } else {
                    // Resolved as idle means idle: no entry joined within 30 minutes of it.
                    if thread.resolution == Some(Resolution::Idle) {
                        let resolved_at = thread.resolved_at.expect("resolution time");
                        prop_assert!(thread.last_activity_at <= resolved_at - time::Duration::minutes(30), "thread {} resolved while active", thread.id);
                    }
                    let snapshot = now(store.snapshot(thread.id)).unwrap().expect("resolved threads are frozen");
                    prop_assert_eq!(&snapshot.entries, &entries, "the snapshot holds exactly its entries");
                    let first = frozen.entry(thread.id).or_insert_with(|| snapshot.clone());
                    prop_assert_eq!(&*first, &snapshot, "snapshots never change");
                }
            }
            let in_threads: usize = threads.iter().map(|t| t.entries as usize).sum();
            prop_assert_eq!(in_threads, joined.len(), "no entry lost");
            prop_assert!(open_per_key.values().all(|n| *n == 1));
        }
    }
}
