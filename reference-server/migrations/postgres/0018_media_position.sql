-- Where each media row stands in its owner's list: a message's attachments in the message's
-- order, a call's recordings in the call's. A batch inserts media rows in key order (so that
-- concurrent batches lock them in one order), so their ids do not give that order.
ALTER TABLE media ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
-- Rows stored before this column: a message's attachments take their place in the message.
UPDATE media SET position = found.position
FROM (
    SELECT media.id, MIN(attachment.ordinality) - 1 AS position
    FROM media
    JOIN messages ON messages.id = media.owner_id,
    jsonb_array_elements(messages.media::jsonb) WITH ORDINALITY AS attachment(item, ordinality)
    WHERE media.owner_kind = 'message' AND attachment.item->>'url' = media.url
    GROUP BY media.id
) AS found
WHERE media.id = found.id;
