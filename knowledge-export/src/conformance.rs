//! The conformance suite every [`InsightStore`] must pass. Call [`run`] with an empty store.

use time::OffsetDateTime;
use time::macros::datetime;

use crate::store::{Batch, FailedBatch, InsightStore};
use crate::{Confidence, Error, NewInsight, Review};

const T0: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

fn insight(summary: &str, threads: Vec<i64>) -> NewInsight {
    NewInsight {
        source: "Can kids play?".into(),
        summary: summary.into(),
        action: "Add an age policy".into(),
        category: "bookings".into(),
        sop_target: Some("bookings/policy.md".into()),
        confidence: Confidence::High,
        thread_ids: threads,
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run<S: InsightStore>(store: S) {
    assert!(
        store
            .exported("llm", &[1, 2])
            .await
            .expect("exported")
            .is_empty()
    );
    let batch = Batch {
        sink: "llm".into(),
        threads: vec![1, 2],
        insights: vec![
            insight("Age policy", vec![1]),
            insight("Gift cards", vec![1, 2]),
        ],
        produced_by: "anthropic/model".into(),
        prompt_version: "sop-insights/1".into(),
    };
    let kept = store.commit(&batch, T0).await.expect("commit");
    assert_eq!(kept.len(), 2);
    assert!(kept[1].id > kept[0].id);
    assert_eq!(kept[0].review, Review::Pending);
    assert_eq!(
        store
            .exported("llm", &[1, 2, 3])
            .await
            .expect("exported")
            .len(),
        2
    );
    assert!(
        store
            .exported("file", &[1])
            .await
            .expect("other sink")
            .is_empty(),
        "sinks are separate"
    );
    assert!(
        matches!(store.commit(&batch, T0).await, Err(Error::Conflict(_))),
        "never twice"
    );
    assert_eq!(
        store.insights(None, None, 10).await.expect("all").len(),
        2,
        "the refused commit kept nothing"
    );

    let file = Batch {
        sink: "file".into(),
        threads: vec![1, 2, 3],
        insights: vec![],
        produced_by: "/tmp/x.jsonl".into(),
        prompt_version: String::new(),
    };
    assert!(store.commit(&file, T0).await.expect("file").is_empty());

    let listed = store
        .insights(Some(Review::Pending), None, 10)
        .await
        .expect("pending");
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![kept[1].id, kept[0].id],
        "newest first"
    );
    assert_eq!(
        store
            .insights(None, Some(kept[1].id), 10)
            .await
            .expect("page")
            .len(),
        1
    );
    let approved = store
        .decide(kept[0].id, Review::Approved, "ana", Some("good"), T0)
        .await
        .expect("approve");
    assert_eq!(
        (
            approved.review,
            approved.decided_by.as_deref(),
            approved.note.as_deref(),
            approved.decided_at
        ),
        (Review::Approved, Some("ana"), Some("good"), Some(T0))
    );
    assert!(matches!(
        store
            .decide(kept[0].id, Review::Rejected, "ben", None, T0)
            .await,
        Err(Error::Conflict(_))
    ));
    store
        .decide(kept[1].id, Review::Rejected, "ben", Some("known"), T0)
        .await
        .expect("reject");
    assert_eq!(
        store
            .insights(Some(Review::Approved), None, 10)
            .await
            .expect("approved")
            .len(),
        1
    );
    assert_eq!(
        store
            .insight(kept[1].id)
            .await
            .expect("get")
            .insight
            .thread_ids,
        vec![1, 2]
    );
    assert!(matches!(
        store.insight(9_999).await,
        Err(Error::NotFound(_))
    ));

    store
        .record_failure(&FailedBatch {
            sink: "llm".into(),
            threads: vec![4],
            error: "429".into(),
            at: T0,
        })
        .await
        .expect("failure");
    let failures = store.failures(10).await.expect("failures");
    assert_eq!((failures.len(), failures[0].threads.clone()), (1, vec![4]));
    assert!(
        store
            .exported("llm", &[4])
            .await
            .expect("exported")
            .is_empty(),
        "a failed batch stays unexported"
    );
}
