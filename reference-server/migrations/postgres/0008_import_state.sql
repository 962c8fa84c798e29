-- Checkpoints of the import and reconciliation streams: the cursor after the last committed page.
CREATE TABLE import_state (
    name        TEXT PRIMARY KEY,
    cursor      TEXT,
    done        BIGINT NOT NULL DEFAULT 0,
    updated_ms  BIGINT NOT NULL
);
