-- Contact details found in inbound messages, waiting for a person's decision.
CREATE TABLE contact_suggestions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL,
    phone        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    decided_by   TEXT,
    decided_ms   BIGINT,
    UNIQUE (message_id, kind, value)
);
CREATE INDEX contact_suggestions_status ON contact_suggestions (status, id);
