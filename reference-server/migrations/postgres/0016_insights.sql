-- Knowledge export (the knowledge-export crate's InsightStore).
-- Which resolved threads went to which sink (`llm`, `file`): marked only with their insights.
CREATE TABLE thread_exports (
    sink         TEXT NOT NULL,
    thread_id    BIGINT NOT NULL,
    exported_ms  BIGINT NOT NULL,
    produced_by  TEXT NOT NULL,
    PRIMARY KEY (sink, thread_id)
);

CREATE TABLE insights (
    id             BIGSERIAL PRIMARY KEY,
    source         TEXT NOT NULL,
    summary        TEXT NOT NULL,
    action         TEXT NOT NULL,
    category       TEXT NOT NULL,
    sop_target     TEXT,
    confidence     TEXT NOT NULL,
    thread_ids     TEXT NOT NULL,
    produced_by    TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    review         TEXT NOT NULL,
    decided_by     TEXT,
    note           TEXT,
    created_ms     BIGINT NOT NULL,
    decided_ms     BIGINT
);
CREATE INDEX insights_review ON insights (review, id);

CREATE TABLE export_failures (
    id        BIGSERIAL PRIMARY KEY,
    sink      TEXT NOT NULL,
    threads   TEXT NOT NULL,
    error     TEXT NOT NULL,
    at_ms     BIGINT NOT NULL
);
