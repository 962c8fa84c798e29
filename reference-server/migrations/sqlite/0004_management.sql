-- Bearer tokens of the management API, stored as SHA-256 hashes of the token.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    name          TEXT,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);

-- Inbound messages after this time are unread.
ALTER TABLE conversations ADD COLUMN read_through_ms BIGINT NOT NULL DEFAULT 0;

-- Listings: the raw log newest first (all, or of one type); conversations by activity.
CREATE INDEX webhook_deliveries_type_id ON webhook_deliveries (event_type, id);
CREATE INDEX conversations_activity_key ON conversations (last_activity_ms, conversation_key);

-- Superseded by the two above (and unused by any query); fewer indexes, cheaper ingestion.
DROP INDEX webhook_deliveries_event_type;
DROP INDEX conversations_last_activity;
