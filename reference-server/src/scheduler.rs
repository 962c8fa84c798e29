//! Periodic jobs that run once per slot across replicas.
//!
//! A [`Job`] has a [`Schedule`]: every fixed interval, or daily at a local time in an IANA
//! timezone. Time is cut into slots (`12:00`, `12:05`, ... or one per local day), and a slot
//! runs on the replica that first inserts its `(job, slot)` row into `job_runs`, a primary
//! key, so with any number of replicas on one database each slot runs exactly once. When a
//! replica starts, the latest slot that is due runs if no replica ran it (a slot missed while
//! every replica was down runs once); older missed slots are not replayed. Runs record start,
//! end, outcome and the figures the job returns; `GET /api/v1/jobs` lists them.
//!
//! When the server stops, a job in progress is told through its [`Stop`]: a job that works in
//! steps (the thread feed, page by page) ends after the step in progress and reports
//! [`RunEnd::Stopped`]; its run is recorded `stopped`, and the slot may be claimed and run
//! again (on restart, when it is still the latest due slot). A job that does not look at its
//! [`Stop`] runs to its end.
//!
//! While a job runs, its replica records a heartbeat in its run every quarter of the lease
//! ([`Scheduler::with_lease`], two minutes by default). A run that has not beaten for a lease
//! (its replica died, or lost the database) is marked `abandoned` by the next replica that
//! checks the job, and its slot may be claimed again: a daily reconciliation whose replica
//! crashed runs again within minutes rather than waiting a day. A replica that cannot record
//! its heartbeat for half the lease, or finds its run taken, tells the job
//! through its [`Stop`], and does not record the run's end over a new one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::alerts::Alerter;
use crate::ingest::Clock;
use crate::ingest::unix_ms;
use crate::store::{Arg, Store, StoreError};

/// When a job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every interval, in slots aligned on the Unix epoch (every 5 minutes: at :00, :05, ...).
    Every(Duration),
    /// Once a day at a local time in a timezone (DST-aware: a time skipped by a spring-forward
    /// runs at the first instant after the gap; a repeated time runs at its first occurrence).
    Daily {
        /// Hour, 0 to 23.
        hour: i8,
        /// Minute, 0 to 59.
        minute: i8,
        /// The IANA timezone.
        timezone: jiff::tz::TimeZone,
    },
}

/// Why a schedule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule: {0}")]
pub struct ScheduleError(String);

impl Schedule {
    /// Daily at `HH:MM` in the IANA timezone `timezone` (such as `America/Chicago`).
    ///
    /// # Errors
    /// [`ScheduleError`] for a malformed time or an unknown timezone.
    pub fn daily(at: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let (hour, minute) = at
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
            .ok_or_else(|| ScheduleError(format!("{at:?} is not a time HH:MM")))?;
        let timezone = jiff::tz::TimeZone::get(timezone)
            .map_err(|_| ScheduleError(format!("{timezone:?} is not an IANA timezone")))?;
        Ok(Self::Daily {
            hour,
            minute,
            timezone,
        })
    }

    /// The start of the latest slot at or before `now` (unix milliseconds).
    pub fn due_slot(&self, now_ms: i64) -> i64 {
        match self {
            Self::Every(interval) => {
                let step = i64::try_from(interval.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1);
                now_ms.div_euclid(step) * step
            }
            Self::Daily {
                hour,
                minute,
                timezone,
            } => {
                let Ok(now) = jiff::Timestamp::from_millisecond(now_ms) else {
                    return 0;
                };
                let today = now.to_zoned(timezone.clone()).date();
                let slot_on = |date: jiff::civil::Date| {
                    date.at(*hour, *minute, 0, 0)
                        .to_zoned(timezone.clone())
                        .map(|zoned| zoned.timestamp().as_millisecond())
                        .ok()
                };
                match slot_on(today) {
                    Some(slot) if slot <= now_ms => slot,
                    _ => today.yesterday().ok().and_then(slot_on).unwrap_or_default(),
                }
            }
        }
    }
}

/// Tells a running job to end at a safe point: the server is stopping, or another replica took
/// the run as abandoned.
#[derive(Debug, Clone)]
pub struct Stop(Vec<watch::Receiver<bool>>);

impl Stop {
    /// A stop that never comes (a run outside a serving scheduler, such as a test's tick).
    pub fn never() -> Self {
        Self(Vec::new())
    }

    /// Stops once `receiver` holds `true` (the server's stop signal).
    pub fn on(receiver: watch::Receiver<bool>) -> Self {
        Self(vec![receiver])
    }

    /// This stop, and also once `receiver` holds `true`.
    fn or(mut self, receiver: watch::Receiver<bool>) -> Self {
        self.0.push(receiver);
        self
    }

    /// Whether the job should end at its next safe point.
    pub fn requested(&self) -> bool {
        self.0.iter().any(|receiver| *receiver.borrow())
    }
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// It did all its work; the figures to record (JSON).
    Done(serde_json::Value),
    /// It ended early, at a safe point, because its [`Stop`] was requested; the figures of
    /// what it did. Recorded `stopped`; the slot may run again.
    Stopped(serde_json::Value),
}

/// A periodic job.
pub trait Job: Send + Sync + 'static {
    /// Its unique name (the key of its runs).
    fn name(&self) -> &str;

    /// When it runs.
    fn schedule(&self) -> Schedule;

    /// Runs the slot starting at `slot`: how it ended (with figures to record), or why it
    /// failed. A job that works in steps checks `stop` between them and returns
    /// [`RunEnd::Stopped`] when it is requested; one that does not check it runs to its end,
    /// which delays the server's shutdown by as long.
    fn run(&self, slot: OffsetDateTime, stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>>;
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRun {
    /// The job's name.
    pub job: String,
    /// The slot's start, unix milliseconds.
    pub slot_ms: i64,
    /// Which replica ran it.
    pub replica: String,
    /// When it started, unix milliseconds.
    pub started_ms: i64,
    /// When it ended.
    pub finished_ms: Option<i64>,
    /// `running`, `succeeded`, `stopped` (ended early by a shutdown), `failed`, or
    /// `abandoned` (its replica stopped beating while it ran; `finished_ms` is its last
    /// heartbeat).
    pub outcome: String,
    /// What the job reported (JSON).
    pub figures: Option<String>,
    /// Why it failed, or was abandoned.
    pub error: Option<String>,
    /// When its replica last reported it alive (its start, until the first heartbeat).
    pub heartbeat_ms: Option<i64>,
}

/// Where runs are recorded: one per job and slot, which is how a slot runs once across
/// replicas. [`Store`] keeps them in `job_runs` (the slot's key is unique); [`MemoryJobRuns`]
/// in memory; both pass [`conformance::run`].
pub trait JobRuns: Clone + Send + Sync + 'static {
    /// Claims a slot: `true` for exactly one claimant (who then runs it), which records the
    /// run as `running`, with `now_ms` as its first heartbeat. A slot whose run was `stopped`
    /// or `abandoned` may be claimed again (its record is replaced); a `running`, `succeeded`
    /// or `failed` one may not.
    fn claim_slot(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records how `replica`'s run ended: `succeeded` or `stopped` with its figures, or
    /// `failed` with why. A run taken as `abandoned` that no replica claimed again is still
    /// `replica`'s, and its end is recorded. `false`, and nothing changed, when the slot's run
    /// is another replica's (or already ended).
    fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that `replica`'s run of the slot is alive at `now_ms`. `false`, and nothing
    /// changed, when the slot's run is no longer `replica`'s running one.
    fn beat(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records as `abandoned` every `running` run of `job` whose latest heartbeat is before
    /// `stale_before_ms` (its replica died, or lost the database), ended at that heartbeat, and
    /// returns them as recorded. When replicas race, each such run is returned to one.
    fn abandon_stale_runs(
        &self,
        job: &str,
        stale_before_ms: i64,
    ) -> impl Future<Output = Result<Vec<JobRun>, StoreError>> + Send;

    /// Runs newest first (by start, then job name), of `job` when given, strictly before the
    /// `(started_ms, job)` cursor when given; at most `limit`.
    fn job_runs(
        &self,
        job: Option<&str>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<JobRun>, StoreError>> + Send;

    /// The slot of the latest successful run of `job` (a later failed, stopped or running
    /// one does not count), unix milliseconds.
    fn last_success(
        &self,
        job: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

impl JobRuns for Store {
    async fn claim_slot(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .execute(
                "INSERT INTO job_runs (job, slot_ms, replica, started_ms, heartbeat_ms, outcome) \
                 VALUES ($1, $2, $3, $4, $4, 'running') \
                 ON CONFLICT (job, slot_ms) DO UPDATE SET replica = excluded.replica, \
                 started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, \
                 finished_ms = NULL, outcome = 'running', figures = NULL, error = NULL \
                 WHERE job_runs.outcome IN ('stopped', 'abandoned')",
                &[job.into(), slot_ms.into(), replica.into(), now_ms.into()],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> Result<bool, StoreError> {
        let (outcome, figures, error) = recorded(result);
        let updated = self
            .execute(
                "UPDATE job_runs SET finished_ms = $1, outcome = $2, figures = $3, error = $4 \
                 WHERE job = $5 AND slot_ms = $6 AND replica = $7 \
                 AND outcome IN ('running', 'abandoned')",
                &[
                    now_ms.into(),
                    outcome.into(),
                    figures.into(),
                    error.into(),
                    job.into(),
                    Arg::from(slot_ms),
                    replica.into(),
                ],
            )
            .await?;
        Ok(updated == 1)
    }

    async fn beat(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let updated = self
            .execute(
                "UPDATE job_runs SET heartbeat_ms = $1 \
                 WHERE job = $2 AND slot_ms = $3 AND replica = $4 AND outcome = 'running'",
                &[
                    now_ms.into(),
                    job.into(),
                    Arg::from(slot_ms),
                    replica.into(),
                ],
            )
            .await?;
        Ok(updated == 1)
    }

    async fn abandon_stale_runs(
        &self,
        job: &str,
        stale_before_ms: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        self.fetch_all(
            "UPDATE job_runs SET outcome = 'abandoned', \
             finished_ms = COALESCE(heartbeat_ms, started_ms), error = $1 \
             WHERE job = $2 AND outcome = 'running' AND COALESCE(heartbeat_ms, started_ms) < $3 \
             RETURNING job, slot_ms, replica, started_ms, finished_ms, outcome, figures, error, heartbeat_ms",
            &[
                ABANDONED.into(),
                job.into(),
                Arg::from(stale_before_ms),
            ],
        )
        .await
    }

    async fn job_runs(
        &self,
        job: Option<&str>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        let (before_ms, before_job) = before.unwrap_or((i64::MAX, String::new()));
        self.fetch_all(
            "SELECT job, slot_ms, replica, started_ms, finished_ms, outcome, figures, error, heartbeat_ms \
             FROM job_runs \
             WHERE ($1 = '' OR job = $1) AND (started_ms < $2 OR (started_ms = $2 AND job < $3 AND $3 <> '')) \
             ORDER BY started_ms DESC, job DESC LIMIT $4",
            &[
                job.unwrap_or_default().into(),
                before_ms.into(),
                before_job.into(),
                limit.into(),
            ],
        )
        .await
    }

    async fn last_success(&self, job: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = self
            .fetch_optional(
                "SELECT slot_ms FROM job_runs WHERE job = $1 AND outcome = 'succeeded' ORDER BY slot_ms DESC LIMIT 1",
                &[job.into()],
            )
            .await?;
        Ok(row.map(|(slot,)| slot))
    }
}

/// The error an abandoned run is recorded with.
const ABANDONED: &str = "its replica stopped sending heartbeats while it ran (it died, or lost the database); the slot may run again";

/// The outcome, figures and error a run's end is recorded with.
fn recorded(result: &Result<RunEnd, String>) -> (&'static str, Option<String>, Option<String>) {
    match result {
        Ok(RunEnd::Done(figures)) => ("succeeded", Some(figures.to_string()), None),
        Ok(RunEnd::Stopped(figures)) => ("stopped", Some(figures.to_string()), None),
        Err(error) => ("failed", None, Some(error.clone())),
    }
}

/// Runs in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryJobRuns {
    runs: Arc<std::sync::Mutex<Vec<JobRun>>>,
}

impl MemoryJobRuns {
    /// No runs.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<JobRun>) -> T) -> T {
        f(&mut self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl JobRuns for MemoryJobRuns {
    async fn claim_slot(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|runs| {
            if let Some(index) = runs
                .iter()
                .position(|run| run.job == job && run.slot_ms == slot_ms)
            {
                if !matches!(runs[index].outcome.as_str(), "stopped" | "abandoned") {
                    return false;
                }
                runs.remove(index);
            }
            runs.push(JobRun {
                job: job.to_owned(),
                slot_ms,
                replica: replica.to_owned(),
                started_ms: now_ms,
                finished_ms: None,
                outcome: "running".to_owned(),
                figures: None,
                error: None,
                heartbeat_ms: Some(now_ms),
            });
            true
        }))
    }

    async fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> Result<bool, StoreError> {
        let (outcome, figures, error) = recorded(result);
        Ok(self.with(|runs| {
            let Some(run) = runs.iter_mut().find(|run| {
                run.job == job
                    && run.slot_ms == slot_ms
                    && run.replica == replica
                    && matches!(run.outcome.as_str(), "running" | "abandoned")
            }) else {
                return false;
            };
            run.finished_ms = Some(now_ms);
            outcome.clone_into(&mut run.outcome);
            run.figures = figures;
            run.error = error;
            true
        }))
    }

    async fn beat(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|runs| {
            let Some(run) = runs.iter_mut().find(|run| {
                run.job == job
                    && run.slot_ms == slot_ms
                    && run.replica == replica
                    && run.outcome == "running"
            }) else {
                return false;
            };
            run.heartbeat_ms = Some(now_ms);
            true
        }))
    }

    async fn abandon_stale_runs(
        &self,
        job: &str,
        stale_before_ms: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        Ok(self.with(|runs| {
            let mut abandoned = Vec::new();
            for run in runs.iter_mut() {
                let last = run.heartbeat_ms.unwrap_or(run.started_ms);
                if run.job == job && run.outcome == "running" && last < stale_before_ms {
                    "abandoned".clone_into(&mut run.outcome);
                    run.finished_ms = Some(last);
                    run.error = Some(ABANDONED.to_owned());
                    abandoned.push(run.clone());
                }
            }
            abandoned
        }))
    }

    async fn job_runs(
        &self,
        job: Option<&str>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        let mut runs: Vec<JobRun> = self.with(|runs| {
            runs.iter()
                .filter(|run| job.is_none_or(|job| run.job == job))
                .filter(|run| match &before {
                    None => true,
                    Some((ms, name)) => {
                        run.started_ms < *ms
                            || (run.started_ms == *ms && !name.is_empty() && run.job < *name)
                    }
                })
                .cloned()
                .collect()
        });
        runs.sort_by(|a, b| (b.started_ms, &b.job).cmp(&(a.started_ms, &a.job)));
        runs.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(runs)
    }

    async fn last_success(&self, job: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.with(|runs| {
            runs.iter()
                .filter(|run| run.job == job && run.outcome == "succeeded")
                .map(|run| run.slot_ms)
                .max()
        }))
    }
}

/// The suite every [`JobRuns`] must pass.
pub mod conformance {
    use super::{JobRuns, RunEnd};

    /// Runs every case on `runs`, which must hold none.
    pub async fn run<R: JobRuns>(runs: R) {
        // Two replicas race for each slot: one wins.
        let mut winners = Vec::new();
        for slot in [60_000, 120_000] {
            let (a, b) = tokio::join!(
                runs.claim_slot("sync", slot, "replica-a", slot + 5),
                runs.claim_slot("sync", slot, "replica-b", slot + 5)
            );
            let a = a.expect("claim");
            assert!(a ^ b.expect("claim"), "exactly one claimant");
            winners.push(if a { "replica-a" } else { "replica-b" });
        }
        assert!(
            !runs
                .claim_slot("sync", 60_000, "replica-c", 999_999)
                .await
                .expect("claim")
        );
        assert!(
            runs.claim_slot("report", 60_000, "replica-a", 60_010)
                .await
                .expect("claim")
        );
        let loser = if winners[0] == "replica-a" {
            "replica-b"
        } else {
            "replica-a"
        };
        assert!(
            !runs
                .finish_run("sync", 60_000, loser, 60_900, &Err("not mine".to_owned()))
                .await
                .expect("finish"),
            "only the claimant records the end"
        );
        assert!(
            runs.finish_run(
                "sync",
                60_000,
                winners[0],
                61_000,
                &Ok(RunEnd::Done(serde_json::json!({"fetched": 3}))),
            )
            .await
            .expect("finish")
        );
        assert!(
            runs.finish_run(
                "report",
                60_000,
                "replica-a",
                61_000,
                &Err("SMTP refused".to_owned())
            )
            .await
            .expect("finish")
        );

        let all = runs.job_runs(None, None, 10).await.expect("list");
        let order: Vec<(&str, i64)> = all.iter().map(|r| (r.job.as_str(), r.slot_ms)).collect();
        assert_eq!(
            order,
            [("sync", 120_000), ("report", 60_000), ("sync", 60_000)]
        );
        assert_eq!(
            (all[0].outcome.as_str(), all[0].finished_ms),
            ("running", None)
        );
        assert_eq!(all[1].outcome, "failed");
        assert_eq!(all[1].error.as_deref(), Some("SMTP refused"));
        assert_eq!(all[2].outcome, "succeeded");
        assert_eq!(all[2].figures.as_deref(), Some(r#"{"fetched":3}"#));
        assert_eq!(all[2].finished_ms, Some(61_000));
        assert_eq!(all[2].replica, winners[0]);
        assert_eq!(
            all[0].heartbeat_ms,
            Some(120_005),
            "the claim is the first heartbeat"
        );

        let syncs = runs.job_runs(Some("sync"), None, 10).await.expect("list");
        assert_eq!(syncs.len(), 2);
        let page = runs.job_runs(None, None, 2).await.expect("page");
        let cursor = (page[1].started_ms, page[1].job.clone());
        let rest = runs.job_runs(None, Some(cursor), 10).await.expect("rest");
        assert_eq!(
            rest.iter()
                .map(|r| (r.job.as_str(), r.slot_ms))
                .collect::<Vec<_>>(),
            [("sync", 60_000)]
        );

        // The latest success: sync's first slot (its second is still running), none for the
        // report (it failed) or an unknown job; a later success moves it on.
        assert_eq!(runs.last_success("sync").await.expect("last"), Some(60_000));
        assert_eq!(runs.last_success("report").await.expect("last"), None);
        assert_eq!(runs.last_success("nothing").await.expect("last"), None);
        runs.finish_run(
            "sync",
            120_000,
            winners[1],
            121_000,
            &Ok(RunEnd::Done(serde_json::json!({}))),
        )
        .await
        .expect("finish");
        assert_eq!(
            runs.last_success("sync").await.expect("last"),
            Some(120_000)
        );

        // A run stopped by a shutdown is recorded with its figures, is not a success, and its
        // slot can be claimed again (once): the new run replaces its record.
        assert!(
            runs.claim_slot("feed", 60_000, "replica-a", 60_001)
                .await
                .expect("claim")
        );
        runs.finish_run(
            "feed",
            60_000,
            "replica-a",
            60_500,
            &Ok(RunEnd::Stopped(serde_json::json!({"pages": 2}))),
        )
        .await
        .expect("finish");
        let stopped = runs.job_runs(Some("feed"), None, 10).await.expect("list");
        assert_eq!(stopped.len(), 1);
        assert_eq!(
            (
                stopped[0].outcome.as_str(),
                stopped[0].figures.as_deref(),
                stopped[0].finished_ms
            ),
            ("stopped", Some(r#"{"pages":2}"#), Some(60_500))
        );
        assert_eq!(runs.last_success("feed").await.expect("last"), None);
        let (a, b) = tokio::join!(
            runs.claim_slot("feed", 60_000, "replica-b", 70_000),
            runs.claim_slot("feed", 60_000, "replica-c", 70_000)
        );
        assert!(
            a.expect("claim") ^ b.expect("claim"),
            "exactly one claimant of a stopped slot"
        );
        let again = runs.job_runs(Some("feed"), None, 10).await.expect("list");
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(
            (
                again[0].outcome.as_str(),
                again[0].started_ms,
                again[0].finished_ms,
                again[0].figures.as_deref()
            ),
            ("running", 70_000, None, None)
        );
        assert_ne!(again[0].replica, "replica-a");
        assert!(
            !runs
                .claim_slot("feed", 60_000, "replica-d", 80_000)
                .await
                .expect("claim"),
            "a running slot is not claimed again"
        );
        let feeder = again[0].replica.clone();

        // Heartbeats: only the running claimant's count.
        assert!(
            runs.beat("feed", 60_000, &feeder, 90_000)
                .await
                .expect("beat")
        );
        assert!(
            !runs
                .beat("feed", 60_000, "replica-d", 95_000)
                .await
                .expect("beat"),
            "another replica's heartbeat"
        );
        assert!(
            !runs
                .beat("sync", 120_000, winners[1], 125_000)
                .await
                .expect("beat"),
            "a finished run's heartbeat"
        );
        // A second running run of the job, beating later.
        assert!(
            runs.claim_slot("feed", 120_000, "replica-e", 120_001)
                .await
                .expect("claim")
        );

        // Runs that stopped beating before the cutoff are abandoned, once, ended at their last
        // heartbeat; a run beating since, and finished runs, are left alone.
        assert!(
            runs.abandon_stale_runs("feed", 90_000)
                .await
                .expect("abandon")
                .is_empty(),
            "a heartbeat at the cutoff is not stale"
        );
        let (a, b) = tokio::join!(
            runs.abandon_stale_runs("feed", 100_000),
            runs.abandon_stale_runs("feed", 100_000)
        );
        let (a, b) = (a.expect("abandon"), b.expect("abandon"));
        let abandoned = if a.is_empty() { b.clone() } else { a.clone() };
        assert_eq!(
            a.len() + b.len(),
            1,
            "each stale run to one caller: {a:?} {b:?}"
        );
        assert_eq!(
            (
                abandoned[0].job.as_str(),
                abandoned[0].slot_ms,
                abandoned[0].replica.as_str(),
                abandoned[0].outcome.as_str(),
                abandoned[0].finished_ms,
                abandoned[0].heartbeat_ms,
            ),
            (
                "feed",
                60_000,
                feeder.as_str(),
                "abandoned",
                Some(90_000),
                Some(90_000)
            )
        );
        assert!(abandoned[0].error.is_some());
        assert!(
            runs.abandon_stale_runs("sync", 1_000_000)
                .await
                .expect("abandon")
                .is_empty(),
            "finished runs are not abandoned"
        );
        let listed = runs.job_runs(Some("feed"), None, 10).await.expect("list");
        assert_eq!(
            listed
                .iter()
                .map(|run| (run.slot_ms, run.outcome.as_str()))
                .collect::<Vec<_>>(),
            [(120_000, "running"), (60_000, "abandoned")]
        );
        assert_eq!(listed[1], abandoned[0]);

        // The replica whose run was abandoned cannot beat for it.
        assert!(
            !runs
                .beat("feed", 60_000, &feeder, 100_500)
                .await
                .expect("beat")
        );
        // An abandoned slot is claimed again by exactly one replica, which then owns it.
        let (a, b) = tokio::join!(
            runs.claim_slot("feed", 60_000, "replica-f", 101_000),
            runs.claim_slot("feed", 60_000, "replica-g", 101_000)
        );
        let a = a.expect("claim");
        assert!(
            a ^ b.expect("claim"),
            "exactly one claimant of an abandoned slot"
        );
        let owner = if a { "replica-f" } else { "replica-g" };
        let retaken = runs.job_runs(Some("feed"), None, 10).await.expect("list");
        let retaken = retaken
            .iter()
            .find(|run| run.slot_ms == 60_000)
            .expect("run");
        assert_eq!(
            (
                retaken.replica.as_str(),
                retaken.outcome.as_str(),
                retaken.started_ms,
                retaken.heartbeat_ms,
                retaken.finished_ms,
                retaken.error.as_deref()
            ),
            (owner, "running", 101_000, Some(101_000), None, None)
        );
        assert!(
            !runs
                .finish_run(
                    "feed",
                    60_000,
                    &feeder,
                    101_500,
                    &Ok(RunEnd::Done(serde_json::json!({})))
                )
                .await
                .expect("finish"),
            "the replica whose run was taken cannot record its end over the new run"
        );
        assert!(
            runs.finish_run(
                "feed",
                60_000,
                owner,
                102_000,
                &Ok(RunEnd::Done(serde_json::json!({})))
            )
            .await
            .expect("finish")
        );

        // A run abandoned but not claimed again (its slot no longer due) that its replica
        // then finishes after all is recorded as it ended, and not claimed again.
        assert!(
            runs.claim_slot("late", 60_000, "replica-a", 60_000)
                .await
                .expect("claim")
        );
        let abandoned = runs
            .abandon_stale_runs("late", 500_000)
            .await
            .expect("abandon");
        assert_eq!(abandoned.len(), 1);
        assert!(
            runs.finish_run(
                "late",
                60_000,
                "replica-a",
                600_000,
                &Ok(RunEnd::Done(serde_json::json!({"late": true})))
            )
            .await
            .expect("finish")
        );
        let late = runs.job_runs(Some("late"), None, 10).await.expect("list");
        assert_eq!(
            (
                late[0].outcome.as_str(),
                late[0].finished_ms,
                late[0].figures.as_deref(),
                late[0].error.as_deref()
            ),
            ("succeeded", Some(600_000), Some(r#"{"late":true}"#), None)
        );
        assert!(
            !runs
                .claim_slot("late", 60_000, "replica-b", 700_000)
                .await
                .expect("claim")
        );
    }
}

/// Runs jobs in their slots.
pub struct Scheduler {
    store: Store,
    jobs: Vec<Arc<dyn Job>>,
    clock: Clock,
    replica: String,
    /// The last slot each job was checked for, and when to check it again (unix
    /// milliseconds): a slot another replica holds is checked again every heartbeat, in case
    /// its run is abandoned; otherwise a tick costs no query until a new slot.
    checked: HashMap<String, (i64, i64)>,
    alerter: Option<Alerter>,
    /// Handed to every run ([`Scheduler::run`] sets it to the server's stop signal).
    stop: Stop,
    /// How long a run may go without a heartbeat before it counts as abandoned.
    lease: Duration,
}

/// How long a run may go without a heartbeat before another replica takes it as abandoned,
/// unless [`Scheduler::with_lease`] says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// How many times recording a run's end is tried again (a second apart) when it fails.
const FINISH_RETRIES: u32 = 2;

impl Scheduler {
    /// A scheduler of `jobs` on `store`; `replica` names this process in the runs.
    ///
    /// A job's name keys its runs: a job whose name an earlier one has (an embedder's job
    /// named like a built-in one) is left out, with an error in the log, rather than sharing
    /// its slots.
    pub fn new(store: Store, jobs: Vec<Arc<dyn Job>>, clock: Clock, replica: String) -> Self {
        let mut names = std::collections::HashSet::new();
        let jobs = jobs
            .into_iter()
            .filter(|job| {
                let unique = names.insert(job.name().to_owned());
                if !unique {
                    tracing::error!(
                        job = job.name(),
                        "a second scheduled job with this name is left out: job names must be unique"
                    );
                }
                unique
            })
            .collect();
        Self {
            store,
            jobs,
            clock,
            replica,
            checked: HashMap::new(),
            alerter: None,
            stop: Stop::never(),
            lease: DEFAULT_LEASE,
        }
    }

    /// Sets how long a run may go without a heartbeat before another replica takes it as
    /// abandoned ([`DEFAULT_LEASE`], two minutes, unless set). A running job's replica beats
    /// every quarter of it. Every replica of one database should use the same lease.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(4), Duration::from_secs(86_400));
        self
    }

    /// How often a running job's replica records its heartbeat.
    fn heartbeat_every(&self) -> Duration {
        self.lease / 4
    }

    /// Raises an alert (grouped per job) when a run fails.
    pub fn with_alerter(mut self, alerter: Alerter) -> Self {
        self.alerter = Some(alerter);
        self
    }

    /// Claims and runs every job whose due slot at `now` no replica has run; returns the
    /// `(job, slot)` pairs this call ran, after they finished.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a claim cannot be written. A failing job is recorded as
    /// `failed`, not returned as an error.
    pub async fn tick(&mut self, now: OffsetDateTime) -> Result<Vec<(String, i64)>, StoreError> {
        let mut ran = Vec::new();
        for job in self.jobs.clone() {
            if let Some(slot) = self.tick_job(job.as_ref(), now).await? {
                ran.push((job.name().to_owned(), slot));
            }
        }
        Ok(ran)
    }

    async fn tick_job(
        &mut self,
        job: &dyn Job,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        let checked_at = tokio::time::Instant::now();
        let now_ms = unix_ms(now);
        let slot = job.schedule().due_slot(now_ms);
        if let Some(&(checked, recheck_ms)) = self.checked.get(job.name())
            && checked == slot
            && now_ms < recheck_ms
        {
            return Ok(None);
        }
        if self.stop.requested() {
            return Ok(None);
        }
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let beat_ms = i64::try_from(self.heartbeat_every().as_millis()).unwrap_or(i64::MAX);
        let abandoned = self
            .store
            .abandon_stale_runs(job.name(), now_ms.saturating_sub(lease_ms))
            .await?;
        for run in &abandoned {
            tracing::warn!(
                job = run.job,
                slot_ms = run.slot_ms,
                replica = run.replica,
                last_heartbeat_ms = run.heartbeat_ms,
                "a run was abandoned: its replica sent no heartbeat for the lease; its slot may run again"
            );
        }
        // Whoever abandoned the slot's run (this replica or another), the claim decides.
        let claimed = self
            .store
            .claim_slot(job.name(), slot, &self.replica, now_ms)
            .await?;
        let lost = if claimed {
            self.run_claimed(job, slot, checked_at).await?
        } else {
            false
        };
        // A slot another replica holds (or held: its run may have ended) is checked again a
        // heartbeat later, in case its run is abandoned; so is a slot this replica's run lost
        // (stopped for it, the slot may run again). A slot this replica ran is done.
        let recheck_ms = if claimed && !lost {
            i64::MAX
        } else {
            now_ms.saturating_add(beat_ms)
        };
        self.checked
            .insert(job.name().to_owned(), (slot, recheck_ms));
        Ok(claimed.then_some(slot))
    }

    /// Runs `job`'s claimed `slot` (claimed at `claimed_at`, its first heartbeat) with its
    /// heartbeat, then records how it ended (first: a run left `running` without heartbeats
    /// would be abandoned and run again) and reports it. Returns whether the run was told to
    /// stop because its heartbeat was lost.
    async fn run_claimed(
        &self,
        job: &dyn Job,
        slot: i64,
        claimed_at: tokio::time::Instant,
    ) -> Result<bool, StoreError> {
        let slot_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(slot) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        tracing::info!(job = job.name(), slot = %slot_time, "job started");
        let (lost, lost_signal) = watch::channel(false);
        let heart = Heartbeat(tokio::spawn(heartbeat(
            self.store.clone(),
            job.name().to_owned(),
            slot,
            self.replica.clone(),
            self.clock.clone(),
            self.lease,
            claimed_at,
            lost,
        )));
        let result = job
            .run(slot_time, self.stop.clone().or(lost_signal.clone()))
            .await;
        drop(heart);
        let finished_ms = unix_ms((self.clock)());
        let mut attempt = 0;
        let recorded = loop {
            match self
                .store
                .finish_run(job.name(), slot, &self.replica, finished_ms, &result)
                .await
            {
                Ok(recorded) => break recorded,
                Err(error) if attempt < FINISH_RETRIES => {
                    attempt += 1;
                    tracing::warn!(%error, job = job.name(), attempt, "a run's end was not recorded; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(error),
            }
        };
        if !recorded {
            tracing::error!(
                job = job.name(),
                slot = %slot_time,
                "the run's end was not recorded: another replica took the run as abandoned"
            );
        }
        match &result {
            Ok(RunEnd::Done(figures)) => {
                tracing::info!(job = job.name(), %figures, "job succeeded");
            }
            Ok(RunEnd::Stopped(figures)) if *lost_signal.borrow() => tracing::warn!(
                job = job.name(),
                %figures,
                "job stopped early: its run was taken, or its heartbeat could not be recorded"
            ),
            Ok(RunEnd::Stopped(figures)) => tracing::info!(
                job = job.name(),
                %figures,
                "job stopped early for the shutdown; its slot may run again"
            ),
            Err(error) => {
                tracing::error!(job = job.name(), %error, "job failed");
                if let Some(alerter) = &self.alerter {
                    alerter
                        .raise(
                            "job_failed",
                            &format!("job_failed:{}", job.name()),
                            &format!("Scheduled job {} failed", job.name()),
                            Some(error.clone()),
                        )
                        .await?;
                }
            }
        }
        let lost = *lost_signal.borrow();
        Ok(lost)
    }

    /// Runs each job in its own task, checking for a new slot every second, until `stop`
    /// turns true. A job in progress is told through its [`Stop`] and ends at its next safe
    /// point (or at its end, if it does not look). A long job never delays another.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for job in &self.jobs {
            let mut single = Self::new(
                self.store.clone(),
                vec![job.clone()],
                self.clock.clone(),
                self.replica.clone(),
            );
            single.alerter = self.alerter.clone();
            single.lease = self.lease;
            single.stop = Stop::on(stop.clone());
            let mut stop = stop.clone();
            tasks.spawn(async move {
                loop {
                    if *stop.borrow_and_update() {
                        return;
                    }
                    let now = (single.clock)();
                    if let Err(error) = single.tick(now).await {
                        tracing::error!(%error, "scheduler: database failed");
                    }
                    tokio::select! {
                        changed = stop.changed() => if changed.is_err() {
                            return;
                        },
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// The heartbeat task of a run in progress; dropping it stops the heartbeat.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Records `replica`'s run of `job` in `slot_ms` as alive every quarter of `lease`, until
/// dropped (`claimed_at`: when its first heartbeat, the claim, was taken). Says so on `lost`,
/// for the job to stop, when the run is no longer this replica's (another took it as
/// abandoned), or once half the lease has passed since the last heartbeat recorded (the
/// second beat that fails, or the first that gets no answer within a quarter of the lease):
/// a quarter of the lease or more before another replica may take the run.
#[allow(clippy::too_many_arguments)]
async fn heartbeat(
    store: Store,
    job: String,
    slot_ms: i64,
    replica: String,
    clock: Clock,
    lease: Duration,
    claimed_at: tokio::time::Instant,
    lost: watch::Sender<bool>,
) {
    let every = lease / 4;
    // When the latest heartbeat recorded was taken (not when it was answered).
    let mut last_recorded = claimed_at;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = tokio::time::Instant::now();
        let beat =
            tokio::time::timeout(every, store.beat(&job, slot_ms, &replica, unix_ms(clock())));
        let error = match beat.await {
            Ok(Ok(true)) => {
                last_recorded = sent;
                continue;
            }
            Ok(Ok(false)) => {
                tracing::error!(
                    job,
                    slot_ms,
                    "another replica took this run as abandoned: the job is told to stop"
                );
                lost.send_replace(true);
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {every:?}"),
        };
        tracing::warn!(error, job, "a job heartbeat was not recorded");
        if last_recorded.elapsed() >= lease / 2 && !*lost.borrow() {
            tracing::error!(
                job,
                slot_ms,
                "no heartbeat recorded for half the lease: the job is told to stop before another replica may take its run"
            );
            lost.send_replace(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_job_runs_pass_the_conformance_suite() {
        conformance::run(MemoryJobRuns::new()).await;
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn interval_slots_align_on_the_epoch() {
        let every = Schedule::Every(Duration::from_secs(300));
        assert_eq!(
            every.due_slot(ms("2026-11-22T05:07:59Z")),
            ms("2026-11-22T05:05:00Z")
        );
        assert_eq!(
            every.due_slot(ms("2026-11-22T05:10:00Z")),
            ms("2026-11-22T05:10:00Z")
        );
    }

    #[test]
    fn daily_slots_follow_the_timezone_and_its_daylight_saving() {
        let daily = Schedule::daily("02:00", "America/Chicago").unwrap();
        // 07:59 UTC on 22 November is 01:59 in Chicago (CST): yesterday's 02:00 is due.
        assert_eq!(
            daily.due_slot(ms("2026-11-22T07:59:00Z")),
            ms("2026-11-21T08:00:00Z")
        );
        assert_eq!(
            daily.due_slot(ms("2026-11-22T08:00:00Z")),
            ms("2026-11-22T08:00:00Z")
        );
        // Summer (CDT, UTC-5).
        assert_eq!(
            daily.due_slot(ms("2026-07-01T12:00:00Z")),
            ms("2026-07-01T07:00:00Z")
        );
        // 8 March 2026: 02:00 does not exist in Chicago; the slot is the instant after the gap.
        assert_eq!(
            daily.due_slot(ms("2026-03-08T09:00:00Z")),
            ms("2026-03-08T08:00:00Z")
        );
        assert!(Schedule::daily("25:00", "UTC").is_err());
        assert!(Schedule::daily("02:00", "Mars/Olympus").is_err());
    }
}
