-- The activity feed reads messages and calls across conversations, newest first.
CREATE INDEX messages_created ON messages (created_ms, id);
CREATE INDEX calls_created ON calls (created_ms, id);
