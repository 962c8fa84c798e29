-- A running job's replica records a heartbeat; a run that stops beating (its replica died or
-- lost the database) is marked `abandoned` by another replica, and its slot may run again.
ALTER TABLE job_runs ADD COLUMN heartbeat_ms BIGINT;
-- The running runs of a job, looked up at each check for a new slot.
CREATE INDEX job_runs_running ON job_runs (job) WHERE outcome = 'running';
