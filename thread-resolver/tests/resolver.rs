//! The resolver: idle sweeps, manual resolution and reopening.

use thread_resolver::{
    Entry, EntryKind, Error, MemoryThreadStore, Resolution, Resolver, ThreadState, ThreadStore,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-27 18:00 UTC);

fn message(id: &str, minutes: i64) -> Entry {
    Entry {
        id: id.into(),
        kind: EntryKind::Message,
        direction: "incoming".into(),
        from: None,
        text: Some("hi".into()),
        at: T0 + Duration::minutes(minutes),
    }
}

#[tokio::test]
async fn a_sweep_resolves_only_threads_idle_past_the_limit_whoever_spoke_last() {
    let store = MemoryThreadStore::new();
    let resolver = Resolver::new(store.clone(), Duration::minutes(30)).unwrap();
    let mut threads = Vec::new();
    for i in 0..1_200 {
        // 1,000 threads last active at minute 0 (older), 200 at minute 20.
        let minutes = if i < 1_000 { 0 } else { 20 };
        threads.push(
            store
                .append(
                    &format!("PN1|+1415555{i:04}"),
                    &message(&format!("m{i}"), minutes),
                )
                .await
                .unwrap()
                .thread,
        );
    }
    let sweep = resolver.sweep(T0 + Duration::minutes(45)).await.unwrap();
    assert_eq!(
        (sweep.resolved, sweep.raced),
        (1_000, 0),
        "across several batches"
    );
    assert_eq!(
        store.thread(threads[0]).await.unwrap().0.state,
        ThreadState::Resolved
    );
    assert_eq!(
        store.thread(threads[1_100]).await.unwrap().0.state,
        ThreadState::Open
    );
    assert_eq!(
        resolver
            .sweep(T0 + Duration::minutes(45))
            .await
            .unwrap()
            .resolved,
        0
    );
    assert_eq!(
        resolver
            .sweep(T0 + Duration::minutes(51))
            .await
            .unwrap()
            .resolved,
        200
    );
}

#[tokio::test]
async fn people_resolve_now_and_reopen() {
    let store = MemoryThreadStore::new();
    let resolver = Resolver::new(store.clone(), Duration::minutes(30)).unwrap();
    let key = "PN1|+14155550100";
    let thread = store.append(key, &message("m1", 0)).await.unwrap().thread;
    let resolved = resolver
        .resolve_now(thread, "ana", T0 + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(resolved.resolution, Some(Resolution::Manual("ana".into())));
    assert!(matches!(
        resolver.resolve_now(thread, "ana", T0).await,
        Err(Error::Conflict(_))
    ));
    let reopened = resolver
        .reopen(thread, T0 + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        (reopened.state, reopened.reopened_from, reopened.entries),
        (ThreadState::Open, Some(thread), 1)
    );
    // The reopened thread idles from its reopening.
    assert_eq!(
        resolver
            .sweep(T0 + Duration::minutes(31))
            .await
            .unwrap()
            .resolved,
        0
    );
    assert_eq!(
        resolver
            .sweep(T0 + Duration::minutes(33))
            .await
            .unwrap()
            .resolved,
        1
    );
    assert!(matches!(
        Resolver::new(store, Duration::ZERO),
        Err(Error::Invalid(_))
    ));
}
