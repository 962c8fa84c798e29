//! The scheduler: each slot runs once across racing replicas, a missed slot runs once after a
//! restart, failures are recorded, runs are listed by the API, and the self-check job works.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use reference_server::auth::Role;
use reference_server::scheduler::{Job, JobRuns, RunEnd, Schedule, Scheduler, Stop};
use reference_server::store::Store;
use reqwest::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};

/// Counts its runs; fails when `fail` is set.
struct Counting {
    name: &'static str,
    runs: Arc<AtomicUsize>,
    fail: bool,
}

impl Job for Counting {
    fn name(&self) -> &str {
        self.name
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(300))
    }

    fn run(&self, _slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.fail {
                Err("the API answered 503".to_owned())
            } else {
                Ok(RunEnd::Done(serde_json::json!({"checked": 3})))
            }
        })
    }
}

/// Works in pages until it has done `pages` of them or is asked to stop; says when it has
/// started, and how it ended.
struct Paging {
    pages: Arc<AtomicUsize>,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    ended: tokio::sync::mpsc::UnboundedSender<RunEnd>,
    schedule: Schedule,
}

/// Daily, twelve hours from now: no new slot falls due while a test runs on the system clock.
fn far_daily() -> Schedule {
    let hour = (OffsetDateTime::now_utc().hour() + 12) % 24;
    Schedule::daily(&format!("{hour:02}:00"), "UTC").unwrap()
}

impl Job for Paging {
    fn name(&self) -> &str {
        "paging"
    }

    fn schedule(&self) -> Schedule {
        self.schedule.clone()
    }

    fn run(&self, _slot: OffsetDateTime, stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let _ = self.started.send(());
            let mut done = 0;
            let end = loop {
                if done >= self.pages.load(Ordering::SeqCst) {
                    break RunEnd::Done(serde_json::json!({ "pages": done }));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                done += 1;
                if stop.requested() {
                    break RunEnd::Stopped(serde_json::json!({ "pages": done }));
                }
            };
            let _ = self.ended.send(end.clone());
            Ok(end)
        })
    }
}

fn scheduler(store: &Store, jobs: Vec<Arc<dyn Job>>, replica: &str) -> Scheduler {
    Scheduler::new(
        store.clone(),
        jobs,
        reference_server::ingest::system_clock(),
        replica.to_owned(),
    )
}

async fn three_racing_schedulers_run_each_slot_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let job: Arc<dyn Job> = Arc::new(Counting {
        name: "reconcile",
        runs: runs.clone(),
        fail: false,
    });
    // Three replicas, each with its own connection pool, tick at the same moments.
    let mut replicas = Vec::new();
    for n in 0..3 {
        replicas.push(scheduler(
            &db.store().await,
            vec![job.clone()],
            &format!("replica-{n}"),
        ));
    }
    let start = datetime!(2026-11-22 05:00:00 UTC);
    for minute in 0..60 {
        let now = start + time::Duration::minutes(minute) + time::Duration::seconds(7);
        let ticks = replicas.iter_mut().map(|replica| replica.tick(now));
        for ran in join_all(ticks).await {
            ran.unwrap();
        }
    }
    // 05:00 to 05:59: twelve 5-minute slots, each run once.
    assert_eq!(runs.load(Ordering::SeqCst), 12);
    let store = db.store().await;
    let recorded = store.job_runs(Some("reconcile"), None, 100).await.unwrap();
    assert_eq!(recorded.len(), 12);
    assert!(recorded.iter().all(|run| run.outcome == "succeeded"));
    assert_eq!(recorded[0].figures.as_deref(), Some(r#"{"checked":3}"#));
    db.cleanup().await;
}

async fn a_slot_missed_while_down_runs_once_on_restart(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let job: Arc<dyn Job> = Arc::new(Counting {
        name: "sweep",
        runs: runs.clone(),
        fail: false,
    });
    let mut first = scheduler(&store, vec![job.clone()], "a");
    let ran = first
        .tick(datetime!(2026-11-22 05:01:00 UTC))
        .await
        .unwrap();
    assert_eq!(ran.len(), 1);
    drop(first);
    // Every replica was down for 17 minutes (three slots); on restart the latest runs, once.
    let mut restarted = scheduler(&store, vec![job.clone()], "b");
    let ran = restarted
        .tick(datetime!(2026-11-22 05:18:00 UTC))
        .await
        .unwrap();
    let expected = datetime!(2026-11-22 05:15:00 UTC).unix_timestamp() * 1000;
    assert_eq!(ran, [("sweep".to_owned(), expected)]);
    assert!(
        restarted
            .tick(datetime!(2026-11-22 05:19:00 UTC))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    db.cleanup().await;
}

async fn failed_runs_are_recorded_and_listed_by_the_api(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(&db, |config| config.self_check_interval_secs = 3600).await;
    let job: Arc<dyn Job> = Arc::new(Counting {
        name: "health",
        runs: Arc::new(AtomicUsize::new(0)),
        fail: true,
    });
    let alerter = reference_server::alerts::Alerter::new(
        app.store.clone(),
        Vec::new(),
        Duration::from_secs(3600),
        20,
        reference_server::ingest::system_clock(),
    );
    scheduler(&app.store, vec![job], "x")
        .with_alerter(alerter)
        .tick(OffsetDateTime::now_utc())
        .await
        .unwrap();
    let operator = app.token(Role::Operator).await;
    let (status, page) = app.get("/api/v1/jobs?job=health", &operator).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["outcome"], "failed");
    assert_eq!(page["items"][0]["error"], "the API answered 503");
    assert_eq!(
        page["items"][0]["heartbeat_at"], page["items"][0]["started_at"],
        "a short run's only heartbeat is its claim: {page}"
    );
    let support = app.token(Role::Support).await;
    assert_eq!(
        app.get("/api/v1/jobs", &support).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, alerts) = app.get("/api/v1/alerts?open=true", &support).await;
    assert_eq!(alerts["items"][0]["kind"], "job_failed", "{alerts}");
    assert_eq!(alerts["items"][0]["detail"], "the API answered 503");

    // The server's own self-check ran at start: a signed event posted to itself and stored.
    let run = TestApp::eventually("the self-check run", || {
        let store = app.store.clone();
        async move {
            store
                .job_runs(Some("self-check"), None, 1)
                .await
                .unwrap()
                .into_iter()
                .find(|run| run.outcome != "running")
        }
    })
    .await;
    assert_eq!(run.outcome, "succeeded", "{run:?}");
    assert!(run.figures.unwrap().contains("latency_ms"));
    let (_, events) = app
        .get("/api/v1/events?type=reference-server.self-check", &operator)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    app.stop().await;
    db.cleanup().await;
}

/// A stop reaches a job in progress, which ends at its next page: the scheduler returns, the
/// run is recorded `stopped` with its figures, and the slot runs again (to its end) after a
/// restart.
async fn a_stop_ends_a_job_in_progress_and_its_slot_runs_again(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    // Without a stop, the first run would go on for as good as ever.
    let pages = Arc::new(AtomicUsize::new(usize::MAX));
    let (started, mut job_started) = tokio::sync::mpsc::unbounded_channel();
    let (ended, _) = tokio::sync::mpsc::unbounded_channel();
    let job: Arc<dyn Job> = Arc::new(Paging {
        pages: pages.clone(),
        started,
        ended,
        schedule: far_daily(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(scheduler(&store, vec![job.clone()], "a").run(stopped));
    job_started.recv().await.unwrap();
    stop.send(true).unwrap();
    // Not a timing: without the stop the run never ends, and this fails instead of hanging.
    tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("the scheduler stops while its job is in progress")
        .unwrap();
    let runs = store.job_runs(Some("paging"), None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome, "stopped", "{runs:?}");
    assert!(
        runs[0]
            .figures
            .as_deref()
            .unwrap()
            .starts_with(r#"{"pages":"#)
    );
    assert_eq!(store.last_success("paging").await.unwrap(), None);

    // Restarted within the same slot: the stopped slot runs again, this time to its end.
    pages.store(3, Ordering::SeqCst);
    let slot = runs[0].slot_ms;
    let at = OffsetDateTime::from_unix_timestamp(slot / 1000 + 1).unwrap();
    let ran = scheduler(&store, vec![job], "b").tick(at).await.unwrap();
    assert_eq!(ran, [("paging".to_owned(), slot)]);
    let runs = store.job_runs(Some("paging"), None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (
            runs[0].outcome.as_str(),
            runs[0].replica.as_str(),
            runs[0].figures.as_deref()
        ),
        ("succeeded", "b", Some(r#"{"pages":3}"#))
    );
    assert_eq!(store.last_success("paging").await.unwrap(), Some(slot));
    db.cleanup().await;
}

/// A replica that died mid-run (it claimed the slot, then never beat) does not leave the slot
/// undone: once the lease has passed, another replica marks the run `abandoned` and runs the
/// slot, once; before that, it leaves it alone.
async fn a_run_whose_replica_died_is_abandoned_and_its_slot_runs_again(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let job: Arc<dyn Job> = Arc::new(Counting {
        name: "reconcile",
        runs: runs.clone(),
        fail: false,
    });
    let ms = |at: OffsetDateTime| at.unix_timestamp() * 1000;
    let slot = datetime!(2026-11-22 05:00:00 UTC);
    // The dead replica's claim, 10 s into the slot: its last sign of life.
    let died = datetime!(2026-11-22 05:00:10 UTC);
    assert!(
        store
            .claim_slot("reconcile", ms(slot), "dead", ms(died))
            .await
            .unwrap()
    );
    let mut survivor = scheduler(&store, vec![job], "survivor");
    let tick = |minutes: i64, seconds: i64| {
        died + time::Duration::minutes(minutes) + time::Duration::seconds(seconds)
    };
    // Within the lease (two minutes), and at its very end, the run counts as alive.
    for (minutes, seconds) in [(0, 5), (1, 0), (2, 0)] {
        assert!(
            survivor
                .tick(tick(minutes, seconds))
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let recorded = store.job_runs(Some("reconcile"), None, 10).await.unwrap();
    assert_eq!(
        (recorded[0].replica.as_str(), recorded[0].outcome.as_str()),
        ("dead", "running")
    );
    // Past the lease, at the next check (every 30 s): abandoned, and the slot runs, once.
    let ran = survivor.tick(tick(2, 31)).await.unwrap();
    assert_eq!(ran, [("reconcile".to_owned(), ms(slot))]);
    assert!(survivor.tick(tick(3, 30)).await.unwrap().is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let recorded = store.job_runs(Some("reconcile"), None, 10).await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        (
            recorded[0].replica.as_str(),
            recorded[0].outcome.as_str(),
            recorded[0].started_ms
        ),
        ("survivor", "succeeded", ms(tick(2, 31)))
    );
    assert_eq!(
        store.last_success("reconcile").await.unwrap(),
        Some(ms(slot))
    );

    // Another replica marked a dead replica's run abandoned but did not claim its slot (it
    // failed, or stopped, in between): this one, checking again, claims it.
    let job: Arc<dyn Job> = Arc::new(Counting {
        name: "export",
        runs: runs.clone(),
        fail: false,
    });
    let mut survivor = scheduler(&store, vec![job], "survivor");
    assert!(
        store
            .claim_slot("export", ms(slot), "dead", ms(died))
            .await
            .unwrap()
    );
    assert!(survivor.tick(tick(0, 5)).await.unwrap().is_empty());
    let abandoned = store
        .abandon_stale_runs("export", ms(tick(2, 1)))
        .await
        .unwrap();
    assert_eq!(abandoned.len(), 1);
    let ran = survivor.tick(tick(2, 5)).await.unwrap();
    assert_eq!(ran, [("export".to_owned(), ms(slot))]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    db.cleanup().await;
}

/// Two replicas serve one job whose run outlasts the lease several times: the running one's
/// heartbeats keep the other from taking it, and the slot runs once, to its end.
async fn a_run_that_outlasts_the_lease_is_not_abandoned_while_it_beats(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (started, mut job_started) = tokio::sync::mpsc::unbounded_channel();
    let (ended, mut job_ended) = tokio::sync::mpsc::unbounded_channel();
    // 1,400 pages of at least 5 ms: seven seconds or more, against a three-second lease.
    let job: Arc<dyn Job> = Arc::new(Paging {
        pages: Arc::new(AtomicUsize::new(1400)),
        started,
        ended,
        schedule: far_daily(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let replicas: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            tokio::spawn(
                scheduler(&store, vec![job.clone()], name)
                    .with_lease(Duration::from_secs(3))
                    .run(stopped.clone()),
            )
        })
        .collect();
    job_started.recv().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(120), job_ended.recv())
        .await
        .expect("the run ends")
        .unwrap();
    assert_eq!(end, RunEnd::Done(serde_json::json!({ "pages": 1400 })));
    stop.send(true).unwrap();
    for replica in replicas {
        replica.await.unwrap();
    }
    assert!(
        job_started.try_recv().is_err(),
        "the slot was run a second time"
    );
    let runs = store.job_runs(Some("paging"), None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome, "succeeded", "{runs:?}");
    assert!(
        runs[0].heartbeat_ms > Some(runs[0].started_ms + 3000),
        "heartbeats past the lease: {runs:?}"
    );
    db.cleanup().await;
}

/// A running job's replica beats; when another replica takes the run as abandoned (as it
/// would after this one lost the database for a lease), the job is told to stop, and its end
/// is not recorded over the new run.
async fn a_replica_whose_run_was_taken_stops_its_job(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (started, mut job_started) = tokio::sync::mpsc::unbounded_channel();
    let (ended, mut job_ended) = tokio::sync::mpsc::unbounded_channel();
    // Without the lost run's stop, the job would page for as good as ever.
    let job: Arc<dyn Job> = Arc::new(Paging {
        pages: Arc::new(AtomicUsize::new(usize::MAX)),
        started,
        ended,
        schedule: far_daily(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(
        scheduler(&store, vec![job], "a")
            .with_lease(Duration::from_secs(2))
            .run(stopped),
    );
    job_started.recv().await.unwrap();
    // Its heartbeats (every half second) reach the database.
    let run = TestApp::eventually("a heartbeat after the start", || {
        let store = store.clone();
        async move {
            store
                .job_runs(Some("paging"), None, 1)
                .await
                .unwrap()
                .into_iter()
                .find(|run| run.heartbeat_ms > Some(run.started_ms))
        }
    })
    .await;
    assert_eq!(run.outcome, "running");
    // Another replica takes the run, as if this one had not beaten for the lease.
    let far = run.started_ms + 86_400_000;
    let abandoned = store.abandon_stale_runs("paging", far).await.unwrap();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert!(
        store
            .claim_slot("paging", run.slot_ms, "b", far)
            .await
            .unwrap()
    );
    // Not a timing: without the stop the job never ends, and this fails instead of hanging.
    let end = tokio::time::timeout(Duration::from_secs(60), job_ended.recv())
        .await
        .expect("the job whose run was taken stops")
        .unwrap();
    assert!(matches!(end, RunEnd::Stopped(_)), "{end:?}");
    stop.send(true).unwrap();
    serving.await.unwrap();
    let runs = store.job_runs(Some("paging"), None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (
            runs[0].replica.as_str(),
            runs[0].outcome.as_str(),
            runs[0].started_ms,
            runs[0].finished_ms,
            runs[0].figures.as_deref()
        ),
        ("b", "running", far, None, None),
        "the new run's record is as its claimant left it"
    );
    db.cleanup().await;
}

/// A replica that cannot record its heartbeat (here its connections are closed) tells its job
/// to stop once half the lease has passed, before another replica may take the run: the same
/// slot never runs on two replicas at once.
async fn a_replica_that_cannot_beat_stops_its_job(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (started, mut job_started) = tokio::sync::mpsc::unbounded_channel();
    let (ended, mut job_ended) = tokio::sync::mpsc::unbounded_channel();
    let job: Arc<dyn Job> = Arc::new(Paging {
        pages: Arc::new(AtomicUsize::new(usize::MAX)),
        started,
        ended,
        schedule: far_daily(),
    });
    // The replica's own connections, which it loses while its job runs.
    let own = db.store().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(
        scheduler(&own, vec![job], "a")
            .with_lease(Duration::from_millis(400))
            .run(stopped),
    );
    job_started.recv().await.unwrap();
    own.close().await;
    // Not a timing: without the stop the job never ends, and this fails instead of hanging.
    let end = tokio::time::timeout(Duration::from_secs(60), job_ended.recv())
        .await
        .expect("the job that cannot beat stops")
        .unwrap();
    assert!(matches!(end, RunEnd::Stopped(_)), "{end:?}");
    stop.send(true).unwrap();
    serving.await.unwrap();
    db.cleanup().await;
}

/// The server's own scheduler raises a `job_failed` alert when a job it runs fails (an
/// embedder's job here; the built-in ones run on the same scheduler).
async fn a_failing_job_of_the_server_raises_an_alert(backend: Backend) {
    use reference_server::alerts::AlertStore;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let mut services = reference_server::Services::new(store.clone(), &db.dir);
    services.jobs = vec![Arc::new(Counting {
        name: "crm-sync",
        runs: Arc::new(AtomicUsize::new(0)),
        fail: true,
    })];
    let (router, workers) = reference_server::router(services);
    let alert = TestApp::eventually("the job_failed alert", || {
        let store = store.clone();
        async move {
            store
                .alerts(false, None, 10)
                .await
                .unwrap()
                .into_iter()
                .find(|alert| alert.kind == "job_failed")
        }
    })
    .await;
    assert_eq!(
        (alert.group_key.as_str(), alert.detail.as_deref()),
        ("job_failed:crm-sync", Some("the API answered 503"))
    );
    drop(router);
    workers.drain().await;
    db.cleanup().await;
}

/// Counts its runs, every minute, under the name `threads`.
struct EveryMinute(Arc<AtomicUsize>);

impl Job for EveryMinute {
    fn name(&self) -> &str {
        "threads"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(60))
    }

    fn run(&self, _slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(RunEnd::Done(serde_json::json!({})))
        })
    }
}

/// A second job with a name an earlier one has is left out: on a schedule of its own it would
/// run in slots of the first's name, its runs mixed with the first's.
async fn a_job_named_like_an_earlier_one_is_left_out(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let jobs: Vec<Arc<dyn Job>> = vec![
        Arc::new(Counting {
            name: "threads",
            runs: first.clone(),
            fail: false,
        }),
        Arc::new(EveryMinute(second.clone())),
    ];
    let ran = scheduler(&store, jobs, "a")
        .tick(datetime!(2026-11-22 05:01:00 UTC))
        .await
        .unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (1, 0)
    );
    db.cleanup().await;
}

/// Job runs on this backend pass the suite the memory runs pass.
async fn job_runs_pass_the_conformance_suite(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    reference_server::scheduler::conformance::run(db.store().await).await;
    db.cleanup().await;
}

backend_tests!(
    three_racing_schedulers_run_each_slot_once,
    a_slot_missed_while_down_runs_once_on_restart,
    failed_runs_are_recorded_and_listed_by_the_api,
    job_runs_pass_the_conformance_suite,
    a_stop_ends_a_job_in_progress_and_its_slot_runs_again,
    a_run_whose_replica_died_is_abandoned_and_its_slot_runs_again,
    a_replica_whose_run_was_taken_stops_its_job,
    a_run_that_outlasts_the_lease_is_not_abandoned_while_it_beats,
    a_replica_that_cannot_beat_stops_its_job,
    a_failing_job_of_the_server_raises_an_alert,
    a_job_named_like_an_earlier_one_is_left_out,
);
