-- Normalized records projected from webhook events. Times are unix milliseconds, so merges
-- (earliest, latest) compare the same way on both backends.

-- One-to-one and group conversations, keyed by our number and the sorted set of the other
-- participants: "<phone number id>|<+1...>,<+1...>".
CREATE TABLE conversations (
    conversation_key   TEXT PRIMARY KEY,
    phone_number_id    TEXT NOT NULL,
    participants       TEXT NOT NULL,
    openphone_id       TEXT,
    last_activity_ms   BIGINT NOT NULL
);
CREATE INDEX conversations_last_activity ON conversations (last_activity_ms);

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    conversation_key   TEXT,
    direction          TEXT,
    from_address       TEXT,
    to_addresses       TEXT,
    body               TEXT,
    media              TEXT NOT NULL DEFAULT '[]',
    status             TEXT,
    status_rank        INTEGER NOT NULL DEFAULT 0,
    error_code         TEXT,
    created_ms         BIGINT
);
CREATE INDEX messages_conversation ON messages (conversation_key, created_ms);

-- Every status a message was reported in, once each.
CREATE TABLE message_statuses (
    message_id         TEXT NOT NULL,
    status             TEXT NOT NULL,
    reported_ms        BIGINT NOT NULL,
    PRIMARY KEY (message_id, status)
);

CREATE TABLE calls (
    id                 TEXT PRIMARY KEY,
    conversation_key   TEXT,
    direction          TEXT,
    status             TEXT,
    status_rank        INTEGER NOT NULL DEFAULT 0,
    outcome            TEXT,
    outcome_rank       INTEGER NOT NULL DEFAULT 0,
    created_ms         BIGINT,
    answered_ms        BIGINT,
    completed_ms       BIGINT,
    duration_s         BIGINT,
    voicemail_url      TEXT,
    has_voicemail      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_conversation ON calls (conversation_key, created_ms);

CREATE TABLE call_recordings (
    call_id            TEXT NOT NULL,
    url                TEXT NOT NULL,
    content_type       TEXT,
    duration_s         BIGINT,
    PRIMARY KEY (call_id, url)
);

CREATE TABLE call_summaries (
    call_id            TEXT PRIMARY KEY,
    status             TEXT,
    status_rank        INTEGER NOT NULL DEFAULT 0,
    summary            TEXT,
    next_steps         TEXT
);

CREATE TABLE call_transcripts (
    call_id            TEXT PRIMARY KEY,
    status             TEXT,
    status_rank        INTEGER NOT NULL DEFAULT 0,
    dialogue           TEXT
);
