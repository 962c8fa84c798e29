//! The conformance suite every [`ThreadStore`] must pass: the memory store runs it in this
//! crate's tests, SQL stores in theirs. Call [`run`] with an empty store; it panics on the
//! first divergence.

use time::OffsetDateTime;
use time::macros::datetime;

use crate::{
    Entry, EntryKind, Error, Resolution, ThreadFilter, ThreadId, ThreadState, ThreadStore,
};

const T0: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

fn entry(id: &str, minutes: i64) -> Entry {
    Entry {
        id: id.to_owned(),
        kind: EntryKind::Message,
        direction: "incoming".to_owned(),
        from: Some("+14155550100".to_owned()),
        text: Some(format!("text of {id}")),
        at: T0 + time::Duration::minutes(minutes),
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run<S: ThreadStore>(store: S) {
    let key = "PN1|+14155550100";
    let first = store.append(key, &entry("m1", 0)).await.expect("append");
    assert!(first.new && first.opened);
    let again = store
        .append(key, &entry("m1", 0))
        .await
        .expect("append again");
    assert_eq!(
        (again.thread, again.new),
        (first.thread, false),
        "appends are idempotent"
    );
    let second = store.append(key, &entry("m2", 5)).await.expect("append");
    assert_eq!((second.thread, second.opened), (first.thread, false));
    // A late entry (earlier time) joins without moving the last activity back.
    store.append(key, &entry("m0", -3)).await.expect("late");
    let (thread, version) = store.thread(first.thread).await.expect("thread");
    assert_eq!(
        (thread.entries, thread.last_activity_at, thread.opened_at),
        (
            3,
            T0 + time::Duration::minutes(5),
            T0 - time::Duration::minutes(3)
        )
    );
    assert_eq!(version, 3);
    let ids: Vec<String> = store
        .entries(first.thread)
        .await
        .expect("entries")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["m0", "m1", "m2"], "entries oldest first");
    let other = store
        .append("PN1|+14155550199", &entry("o1", 20))
        .await
        .expect("other");
    assert_ne!(
        other.thread, first.thread,
        "another conversation, another thread"
    );

    // The sweep sees only threads idle before the cutoff, least recent first.
    let idle = store
        .idle(T0 + time::Duration::minutes(10), 10)
        .await
        .expect("idle");
    assert_eq!(
        idle.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![first.thread]
    );
    let idle_all = store
        .idle(T0 + time::Duration::hours(1), 10)
        .await
        .expect("idle");
    assert_eq!(
        idle_all.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![first.thread, other.thread]
    );
    assert_eq!(
        store
            .idle(T0 + time::Duration::hours(1), 1)
            .await
            .expect("limit")
            .len(),
        1
    );

    // An entry between the sweep's read and its resolution keeps the thread open.
    let seen = idle[0];
    store
        .append(key, &entry("m3", 6))
        .await
        .expect("append during sweep");
    let resolved_at = T0 + time::Duration::hours(1);
    assert!(
        !store
            .resolve(seen.id, seen.version, &Resolution::Idle, resolved_at)
            .await
            .expect("stale")
    );
    assert_eq!(
        store.thread(first.thread).await.expect("thread").0.state,
        ThreadState::Open
    );
    let (_, version) = store.thread(first.thread).await.expect("thread");
    assert!(
        store
            .resolve(first.thread, version, &Resolution::Idle, resolved_at)
            .await
            .expect("resolve")
    );
    assert!(
        !store
            .resolve(first.thread, version, &Resolution::Idle, resolved_at)
            .await
            .expect("twice")
    );
    let (resolved, _) = store.thread(first.thread).await.expect("thread");
    assert_eq!(
        (resolved.state, resolved.resolved_at, resolved.resolution),
        (
            ThreadState::Resolved,
            Some(resolved_at),
            Some(Resolution::Idle)
        )
    );
    let snapshot = store
        .snapshot(first.thread)
        .await
        .expect("snapshot")
        .expect("frozen");
    assert_eq!(
        snapshot
            .entries
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3"]
    );
    assert_eq!(snapshot.thread.state, ThreadState::Resolved);
    assert_eq!(store.snapshot(other.thread).await.expect("open"), None);
    assert!(
        store
            .idle(T0 + time::Duration::hours(2), 10)
            .await
            .expect("idle")
            .iter()
            .all(|t| t.id != first.thread)
    );

    // After the resolution, a message opens a new thread; a redelivered old one does not.
    assert_eq!(
        store
            .append(key, &entry("m2", 5))
            .await
            .expect("redelivered")
            .thread,
        first.thread
    );
    let next = store.append(key, &entry("m4", 90)).await.expect("after");
    assert!(next.opened && next.thread > first.thread);
    let frozen = store
        .snapshot(first.thread)
        .await
        .expect("snapshot")
        .expect("frozen");
    assert_eq!(frozen, snapshot, "the snapshot never changes");

    // Reopening needs the conversation's newer thread resolved first.
    assert!(matches!(
        store
            .reopen(first.thread, T0 + time::Duration::hours(2))
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(
        matches!(store.reopen(next.thread, T0).await, Err(Error::Conflict(_))),
        "open threads do not reopen"
    );
    let (_, version) = store.thread(next.thread).await.expect("thread");
    assert!(
        store
            .resolve(
                next.thread,
                version,
                &Resolution::Manual("ana".into()),
                T0 + time::Duration::hours(2)
            )
            .await
            .expect("manual")
    );
    let reopened_at = T0 + time::Duration::hours(3);
    let reopened = store
        .reopen(first.thread, reopened_at)
        .await
        .expect("reopen");
    assert_eq!(
        (
            reopened.state,
            reopened.reopened_from,
            reopened.entries,
            reopened.last_activity_at
        ),
        (ThreadState::Open, Some(first.thread), 4, reopened_at)
    );
    assert_eq!(store.entries(reopened.id).await.expect("entries").len(), 4);
    assert_eq!(
        store
            .snapshot(first.thread)
            .await
            .expect("snapshot")
            .expect("frozen"),
        snapshot,
        "kept as it was"
    );
    assert_eq!(
        store
            .append(key, &entry("m5", 200))
            .await
            .expect("joins")
            .thread,
        reopened.id
    );

    // The resolved log, in resolution order.
    let log = store.resolved_log(None, 10).await.expect("log");
    assert_eq!(
        log.iter().map(|(_, s)| s.thread.id).collect::<Vec<_>>(),
        vec![first.thread, next.thread]
    );
    let rest = store.resolved_log(Some(log[0].0), 10).await.expect("after");
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].1.thread.resolution,
        Some(Resolution::Manual("ana".into()))
    );

    // Listings.
    let open = store
        .threads(
            &ThreadFilter {
                state: Some(ThreadState::Open),
                ..ThreadFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("open");
    assert_eq!(
        open.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![reopened.id, other.thread]
    );
    let by_number = store
        .threads(
            &ThreadFilter {
                key_contains: Some("+14155550199".into()),
                ..ThreadFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("number");
    assert_eq!(by_number.len(), 1);
    let page = store
        .threads(&ThreadFilter::default(), None, 2)
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    let next_page = store
        .threads(&ThreadFilter::default(), Some(page[1].id), 10)
        .await
        .expect("next");
    assert_eq!(page.len() + next_page.len(), 4);
    let dated = store
        .threads(
            &ThreadFilter {
                since: Some(T0 + time::Duration::minutes(15)),
                until: Some(T0 + time::Duration::minutes(30)),
                ..ThreadFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("dated");
    assert_eq!(
        dated.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![other.thread]
    );
    assert!(matches!(
        store.thread(ThreadId(999_999)).await,
        Err(Error::NotFound(_))
    ));

    // Appending many at once gives what one by one gives: a new thread (opened by its first
    // entry, joined by an earlier one), an entry joining a thread, an entry repeated within
    // the batch and one already stored changing nothing.
    let batch_key = "PN9|+14155550001";
    let before = store
        .append(batch_key, &entry("b0", 0))
        .await
        .expect("append");
    let batch = [
        (batch_key.to_owned(), entry("b1", 1)),
        ("PN9|+14155550002".to_owned(), entry("c1", 2)),
        (batch_key.to_owned(), entry("b1", 1)),
        (batch_key.to_owned(), entry("b0", 0)),
        (batch_key.to_owned(), entry("b2", 3)),
        ("PN9|+14155550002".to_owned(), entry("c0", 1)),
    ];
    let outcomes = store.append_all(&batch).await.expect("append all");
    let seen: Vec<(bool, bool)> = outcomes.iter().map(|a| (a.new, a.opened)).collect();
    assert_eq!(
        seen,
        [
            (true, false),
            (true, true),
            (false, false),
            (false, false),
            (true, false),
            (true, false)
        ]
    );
    for (index, thread) in [0, 2, 3, 4].map(|index| (index, outcomes[index].thread)) {
        assert_eq!(thread, before.thread, "outcome {index}");
    }
    assert_ne!(outcomes[1].thread, before.thread);
    assert_eq!(outcomes[5].thread, outcomes[1].thread);
    let (thread, version) = store.thread(before.thread).await.expect("thread");
    assert_eq!(
        (thread.entries, version, thread.last_activity_at),
        (3, 3, T0 + time::Duration::minutes(3))
    );
    let (opened, version) = store.thread(outcomes[1].thread).await.expect("thread");
    assert_eq!(
        (
            opened.entries,
            version,
            opened.opened_at,
            opened.last_activity_at
        ),
        (
            2,
            2,
            T0 + time::Duration::minutes(1),
            T0 + time::Duration::minutes(2)
        )
    );
    assert_eq!(
        store
            .entries(outcomes[1].thread)
            .await
            .expect("entries")
            .iter()
            .map(|entry| entry.id.as_str())
            .collect::<Vec<_>>(),
        ["c0", "c1"]
    );
    assert!(
        store
            .append_all(&[])
            .await
            .expect("nothing to append")
            .is_empty()
    );

    // Entries come back as they went in, whatever their text holds.
    let odd = [
        Entry {
            id: "call-1".to_owned(),
            kind: EntryKind::Call,
            direction: "outgoing".to_owned(),
            from: None,
            text: None,
            at: T0 + time::Duration::minutes(5),
        },
        Entry {
            id: "vm-1".to_owned(),
            kind: EntryKind::Voicemail,
            direction: "incoming".to_owned(),
            from: Some("+14155550123".to_owned()),
            text: Some(
                "Quote \" backslash \\ new\nline\ttab, émoji 🏌️, \\u0000 as text".to_owned(),
            ),
            at: T0 + time::Duration::minutes(6),
        },
    ];
    let key = "PN9|+14155550077";
    let outcomes = store
        .append_all(&odd.clone().map(|entry| (key.to_owned(), entry)))
        .await
        .expect("append all");
    assert_eq!(
        store.entries(outcomes[0].thread).await.expect("entries"),
        odd.to_vec()
    );
}
