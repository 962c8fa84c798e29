-- End-to-end health checks: a text between two internal numbers, and the receipt its own
-- webhook records when ingested.
CREATE TABLE health_checks (
    token        TEXT PRIMARY KEY,
    sent_ms      BIGINT NOT NULL,
    message_id   TEXT,
    status       TEXT NOT NULL,
    error        TEXT
);
CREATE INDEX health_checks_sent ON health_checks (sent_ms);

CREATE TABLE health_check_receipts (
    token        TEXT PRIMARY KEY,
    received_ms  BIGINT NOT NULL
);
