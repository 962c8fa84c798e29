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

/// Tells a running job that the server is stopping, so that it can end at a safe point.
#[derive(Debug, Clone)]
pub struct Stop(Option<watch::Receiver<bool>>);

impl Stop {
    /// A stop that never comes (a run outside a serving scheduler, such as a test's tick).
    pub fn never() -> Self {
        Self(None)
    }

    /// Stops once `receiver` holds `true` (the server's stop signal).
    pub fn on(receiver: watch::Receiver<bool>) -> Self {
        Self(Some(receiver))
    }

    /// Whether the server is stopping.
    pub fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|receiver| *receiver.borrow())
    }
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// It did all its work; the figures to record (JSON).
    Done(serde_json::Value),
    /// It ended early, at a safe point, because the server is stopping; the figures of what
    /// it did. Recorded `stopped`; the slot may run again.
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
    /// `running`, `succeeded`, `stopped` (ended early by a shutdown) or `failed`.
    pub outcome: String,
    /// What the job reported (JSON).
    pub figures: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Where runs are recorded: one per job and slot, which is how a slot runs once across
/// replicas. [`Store`] keeps them in `job_runs` (the slot's key is unique); [`MemoryJobRuns`]
/// in memory; both pass [`conformance::run`].
pub trait JobRuns: Clone + Send + Sync + 'static {
    /// Claims a slot: `true` for exactly one claimant (who then runs it), which records the
    /// run as `running`. A slot whose run was `stopped` may be claimed again (its record is
    /// replaced); a `running`, `succeeded` or `failed` one may not.
    fn claim_slot(
        &self,
        job: &str,
        slot_ms: i64,
        replica: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records how a claimed run ended: `succeeded` or `stopped` with its figures, or `failed`
    /// with why.
    fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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
                "INSERT INTO job_runs (job, slot_ms, replica, started_ms, outcome) VALUES ($1, $2, $3, $4, 'running') \
                 ON CONFLICT (job, slot_ms) DO UPDATE SET replica = excluded.replica, \
                 started_ms = excluded.started_ms, finished_ms = NULL, outcome = 'running', \
                 figures = NULL, error = NULL WHERE job_runs.outcome = 'stopped'",
                &[job.into(), slot_ms.into(), replica.into(), now_ms.into()],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> Result<(), StoreError> {
        let (outcome, figures, error) = recorded(result);
        self.execute(
            "UPDATE job_runs SET finished_ms = $1, outcome = $2, figures = $3, error = $4 WHERE job = $5 AND slot_ms = $6",
            &[
                now_ms.into(),
                outcome.into(),
                figures.into(),
                error.into(),
                job.into(),
                Arg::from(slot_ms),
            ],
        )
        .await?;
        Ok(())
    }

    async fn job_runs(
        &self,
        job: Option<&str>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<JobRun>, StoreError> {
        let (before_ms, before_job) = before.unwrap_or((i64::MAX, String::new()));
        self.fetch_all(
            "SELECT job, slot_ms, replica, started_ms, finished_ms, outcome, figures, error FROM job_runs \
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
                if runs[index].outcome != "stopped" {
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
            });
            true
        }))
    }

    async fn finish_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        result: &Result<RunEnd, String>,
    ) -> Result<(), StoreError> {
        let (outcome, figures, error) = recorded(result);
        self.with(|runs| {
            if let Some(run) = runs
                .iter_mut()
                .find(|run| run.job == job && run.slot_ms == slot_ms)
            {
                run.finished_ms = Some(now_ms);
                outcome.clone_into(&mut run.outcome);
                run.figures = figures;
                run.error = error;
            }
        });
        Ok(())
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
        for slot in [60_000, 120_000] {
            let (a, b) = tokio::join!(
                runs.claim_slot("sync", slot, "replica-a", slot + 5),
                runs.claim_slot("sync", slot, "replica-b", slot + 5)
            );
            assert!(
                a.expect("claim") ^ b.expect("claim"),
                "exactly one claimant"
            );
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
        runs.finish_run(
            "sync",
            60_000,
            61_000,
            &Ok(RunEnd::Done(serde_json::json!({"fetched": 3}))),
        )
        .await
        .expect("finish");
        runs.finish_run("report", 60_000, 61_000, &Err("SMTP refused".to_owned()))
            .await
            .expect("finish");

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
        assert!(all[2].replica.starts_with("replica-"));

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
    }
}

/// Runs jobs in their slots.
pub struct Scheduler {
    store: Store,
    jobs: Vec<Arc<dyn Job>>,
    clock: Clock,
    replica: String,
    /// The last slot each job was checked for, so a tick costs no query until a new slot.
    checked: HashMap<String, i64>,
    alerter: Option<Alerter>,
    /// Handed to every run ([`Scheduler::run`] sets it to the server's stop signal).
    stop: Stop,
}

impl Scheduler {
    /// A scheduler of `jobs` on `store`; `replica` names this process in the runs.
    pub fn new(store: Store, jobs: Vec<Arc<dyn Job>>, clock: Clock, replica: String) -> Self {
        Self {
            store,
            jobs,
            clock,
            replica,
            checked: HashMap::new(),
            alerter: None,
            stop: Stop::never(),
        }
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
        let now_ms = unix_ms(now);
        let slot = job.schedule().due_slot(now_ms);
        if self.checked.get(job.name()) == Some(&slot) || self.stop.requested() {
            return Ok(None);
        }
        let claimed = self
            .store
            .claim_slot(job.name(), slot, &self.replica, now_ms)
            .await?;
        if claimed {
            let slot_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(slot) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            tracing::info!(job = job.name(), slot = %slot_time, "job started");
            let result = job.run(slot_time, self.stop.clone()).await;
            match &result {
                Ok(RunEnd::Done(figures)) => {
                    tracing::info!(job = job.name(), %figures, "job succeeded");
                }
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
            self.store
                .finish_run(job.name(), slot, unix_ms((self.clock)()), &result)
                .await?;
        }
        self.checked.insert(job.name().to_owned(), slot);
        Ok(claimed.then_some(slot))
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
