-- Alerts, grouped: one open row per group key, counting repeats until acknowledged.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    group_key        TEXT NOT NULL,
    summary          TEXT NOT NULL,
    detail           TEXT,
    count            BIGINT NOT NULL DEFAULT 1,
    first_ms         BIGINT NOT NULL,
    last_ms          BIGINT NOT NULL,
    notified_ms      BIGINT NOT NULL,
    acknowledged_ms  BIGINT,
    acknowledged_by  TEXT,
    open_key         TEXT UNIQUE
);
CREATE INDEX alerts_last ON alerts (last_ms, id);
