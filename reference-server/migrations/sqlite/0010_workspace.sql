-- The workspace's phone numbers and users, as the API lists them (import).
CREATE TABLE workspace_phone_numbers (
    id          TEXT PRIMARY KEY,
    number      TEXT NOT NULL,
    name        TEXT,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE workspace_users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    first_name  TEXT,
    last_name   TEXT,
    role        TEXT,
    updated_ms  BIGINT NOT NULL
);
