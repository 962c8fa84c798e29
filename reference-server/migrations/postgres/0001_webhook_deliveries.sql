-- Append-only log of every verified webhook delivery, exactly as received.
CREATE TABLE webhook_deliveries (
    id            BIGSERIAL PRIMARY KEY,
    -- `webhook-id` when the delivery has one, else the event id, else a body hash.
    delivery_key  TEXT NOT NULL UNIQUE,
    scheme        TEXT NOT NULL,
    event_id      TEXT,
    event_type    TEXT,
    parse_error   TEXT,
    signed_at     TIMESTAMPTZ NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL,
    body          BYTEA NOT NULL
);

CREATE INDEX webhook_deliveries_event_type ON webhook_deliveries (event_type, received_at);
