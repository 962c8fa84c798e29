-- Audiences and trickle campaigns (the sms-campaigns crate's CampaignStore).

-- Campaign audience contacts: one per number.
CREATE TABLE audience_contacts (
    id           TEXT PRIMARY KEY,
    phone        TEXT NOT NULL UNIQUE,
    first_name   TEXT,
    last_name    TEXT,
    email        TEXT,
    address      TEXT,
    company      TEXT,
    attributes   TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);

CREATE TABLE audience_lists (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);

-- List members in list order; status is the validation outcome.
CREATE TABLE audience_members (
    list_id      TEXT NOT NULL,
    position     BIGINT NOT NULL,
    contact_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    line_type    TEXT,
    note         TEXT,
    added_ms     BIGINT NOT NULL,
    PRIMARY KEY (list_id, position),
    UNIQUE (list_id, contact_id)
);
CREATE INDEX audience_members_status ON audience_members (list_id, status, position);

-- Phone validation results, cached per number.
CREATE TABLE phone_validations (
    phone        TEXT PRIMARY KEY,
    valid        INTEGER NOT NULL,
    line_type    TEXT NOT NULL,
    carrier      TEXT,
    source       TEXT NOT NULL,
    checked_ms   BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY,
    spec         TEXT NOT NULL,
    list_id      TEXT NOT NULL,
    state        TEXT NOT NULL,
    state_reason TEXT,
    recipients   BIGINT NOT NULL DEFAULT 0,
    last_slot    BIGINT,
    started_ms   BIGINT,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);
CREATE INDEX campaigns_state ON campaigns (state, created_ms);

-- The per-recipient send ledger, frozen at activation.
CREATE TABLE campaign_recipients (
    campaign_id  TEXT NOT NULL,
    position     BIGINT NOT NULL,
    contact_id   TEXT NOT NULL,
    phone        TEXT NOT NULL,
    variant      TEXT NOT NULL,
    state        TEXT NOT NULL,
    detail       TEXT,
    worker       TEXT,
    lease_until  BIGINT,
    slot         BIGINT,
    text         TEXT,
    message_id   TEXT,
    attempted_ms BIGINT,
    replied_ms   BIGINT,
    opted_out_ms BIGINT,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, position)
);
-- Claims take the next pending by position; reports and completion filter by state.
CREATE INDEX campaign_recipients_state ON campaign_recipients (campaign_id, state, position);
CREATE INDEX campaign_recipients_message ON campaign_recipients (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX campaign_recipients_phone ON campaign_recipients (phone);
CREATE INDEX campaign_recipients_leased ON campaign_recipients (state, lease_until);
