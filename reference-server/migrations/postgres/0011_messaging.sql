-- Messages sent through POST /api/v1/messages: recorded before sending, keyed by the
-- caller's idempotency key, so a retried request never sends twice.
CREATE TABLE outgoing_messages (
    id               BIGSERIAL PRIMARY KEY,
    token_id         TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    to_phone         TEXT NOT NULL,
    sender           TEXT NOT NULL,
    text             TEXT NOT NULL,
    status           TEXT NOT NULL,
    message_id       TEXT,
    error            TEXT,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    UNIQUE (token_id, idempotency_key)
);
CREATE INDEX outgoing_messages_message ON outgoing_messages (message_id);

-- Who did what through the management API, and how it ended.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    token_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    detail     TEXT
);
