-- One row per job and slot: the primary key makes each slot run on one replica only.
CREATE TABLE job_runs (
    job          TEXT NOT NULL,
    slot_ms      BIGINT NOT NULL,
    replica      TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    finished_ms  BIGINT,
    outcome      TEXT NOT NULL,
    figures      TEXT,
    error        TEXT,
    PRIMARY KEY (job, slot_ms)
);
CREATE INDEX job_runs_started ON job_runs (started_ms, job);
