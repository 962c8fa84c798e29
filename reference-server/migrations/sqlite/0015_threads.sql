-- Conversation threads (the thread-resolver crate's ThreadStore).
CREATE TABLE threads (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_key       TEXT NOT NULL,
    state            TEXT NOT NULL,
    entries          BIGINT NOT NULL DEFAULT 0,
    version          BIGINT NOT NULL DEFAULT 0,
    opened_ms        BIGINT NOT NULL,
    last_activity_ms BIGINT NOT NULL,
    resolved_ms      BIGINT,
    resolution       TEXT,
    reopened_from    BIGINT
);
-- One open thread per conversation.
CREATE UNIQUE INDEX threads_open_key ON threads (thread_key) WHERE state = 'open';
-- The sweep reads open threads by last activity: its cost follows the threads it resolves.
CREATE INDEX threads_idle ON threads (last_activity_ms, id) WHERE state = 'open';
CREATE INDEX threads_activity ON threads (last_activity_ms, id);

CREATE TABLE thread_entries (
    thread_id    BIGINT NOT NULL,
    entry_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    direction    TEXT NOT NULL,
    from_address TEXT,
    text         TEXT,
    at_ms        BIGINT NOT NULL,
    PRIMARY KEY (thread_id, entry_id)
);

-- The thread each entry first joined: appends are idempotent by entry id.
CREATE TABLE thread_entry_seen (
    entry_id   TEXT PRIMARY KEY,
    thread_id  BIGINT NOT NULL
);

-- The append-only resolved log: one frozen snapshot (JSON) per resolution.
CREATE TABLE resolved_threads (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id    BIGINT NOT NULL UNIQUE,
    snapshot     TEXT NOT NULL,
    resolved_ms  BIGINT NOT NULL
);
