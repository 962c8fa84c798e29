-- Contacts projected from contact.updated / contact.deleted: the version with the latest
-- updatedAt wins (ties: a deletion, then the larger content), in any arrival order.
CREATE TABLE contacts (
    id                 TEXT PRIMARY KEY,
    first_name         TEXT,
    last_name          TEXT,
    company            TEXT,
    external_id        TEXT,
    deleted            INTEGER NOT NULL DEFAULT 0,
    updated_ms         BIGINT NOT NULL,
    content            TEXT NOT NULL
);

-- The winning version's phone numbers (E.164 when they parse), to find contacts by number.
CREATE TABLE contact_phones (
    contact_id         TEXT NOT NULL,
    phone              TEXT NOT NULL,
    PRIMARY KEY (contact_id, phone)
);
CREATE INDEX contact_phones_phone ON contact_phones (phone);
