-- Media to copy into the blob store: one job per (message or call, URL).
CREATE TABLE media (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind       TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    url              TEXT NOT NULL,
    declared_type    TEXT,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL DEFAULT 0,
    lease_until_ms   BIGINT NOT NULL DEFAULT 0,
    sha256           TEXT,
    content_type     TEXT,
    size_bytes       BIGINT,
    stored_ms        BIGINT,
    last_error       TEXT,
    UNIQUE (owner_id, url)
);
CREATE INDEX media_due ON media (status, next_attempt_ms);

-- Append-only consent ledger: every opt-out and opt-in keyword received.
CREATE TABLE consent_ledger (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT NOT NULL UNIQUE,
    phone            TEXT NOT NULL,
    action           TEXT NOT NULL,
    keyword          TEXT NOT NULL,
    at_ms            BIGINT NOT NULL
);
CREATE INDEX consent_ledger_phone ON consent_ledger (phone, at_ms);

-- Inbound messages that mention an opt-out keyword without being one.
CREATE TABLE review_flags (
    message_id       TEXT PRIMARY KEY,
    phone            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    at_ms            BIGINT NOT NULL
);

-- Compliance replies to send, once per inbound message and kind.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    to_phone         TEXT NOT NULL,
    sender           TEXT NOT NULL,
    created_ms       BIGINT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL DEFAULT 0,
    lease_until_ms   BIGINT NOT NULL DEFAULT 0,
    sent_message_id  TEXT,
    last_error       TEXT,
    UNIQUE (message_id, kind)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
