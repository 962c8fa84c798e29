-- Where each media row stands in its owner's list: a message's attachments in the message's
-- order, a call's recordings in the call's (see the PostgreSQL migration of the same number).
ALTER TABLE media ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
-- Rows stored before this column: a message's attachments take their place in the message.
UPDATE media SET position = COALESCE((
    SELECT MIN(CAST(attachment.key AS INTEGER))
    FROM messages, json_each(messages.media) AS attachment
    WHERE messages.id = media.owner_id
      AND json_extract(attachment.value, '$.url') = media.url
), 0)
WHERE owner_kind = 'message';
