-- Append-only log of every verified webhook delivery, exactly as received.
CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `webhook-id` when the delivery has one, else the event id, else a body hash.
    delivery_key  TEXT NOT NULL UNIQUE,
    scheme        TEXT NOT NULL,
    event_id      TEXT,
    event_type    TEXT,
    parse_error   TEXT,
    signed_at     TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    body          BLOB NOT NULL
);

CREATE INDEX webhook_deliveries_event_type ON webhook_deliveries (event_type, received_at);
