//! The projection's SQL, written once in PostgreSQL's dialect and translated for SQLite.
//!
//! Every upsert is a join: applying the same changes in any order gives the same row.

/// SQLite spells numbered parameters `?1` and the two-argument extremes `max`/`min`.
pub(crate) fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
        .replace("GREATEST(", "max(")
        .replace("LEAST(", "min(")
        .replace("strpos(", "instr(")
}

/// The earliest of two nullable values (NULL only when both are).
macro_rules! earliest {
    ($a:literal, $b:literal) => {
        concat!(
            "LEAST(COALESCE(",
            $a,
            ", ",
            $b,
            "), COALESCE(",
            $b,
            ", ",
            $a,
            "))"
        )
    };
}

/// The latest of two nullable values.
macro_rules! latest {
    ($a:literal, $b:literal) => {
        concat!(
            "GREATEST(COALESCE(",
            $a,
            ", ",
            $b,
            "), COALESCE(",
            $b,
            ", ",
            $a,
            "))"
        )
    };
}

/// The ranked value: the higher rank wins; on equal ranks the greater text, so that the
/// result does not depend on order.
macro_rules! ranked {
    ($table:literal, $value:literal, $rank:literal) => {
        concat!(
            "CASE WHEN excluded.",
            $rank,
            " > ",
            $table,
            ".",
            $rank,
            " OR (excluded.",
            $rank,
            " = ",
            $table,
            ".",
            $rank,
            " AND excluded.",
            $value,
            " > ",
            $table,
            ".",
            $value,
            ") OR ",
            $table,
            ".",
            $value,
            " IS NULL THEN excluded.",
            $value,
            " ELSE ",
            $table,
            ".",
            $value,
            " END"
        )
    };
}

pub(crate) const CONVERSATION: &str = concat!(
    "INSERT INTO conversations (conversation_key, phone_number_id, participants, openphone_id, last_activity_ms) ",
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_key) DO UPDATE SET ",
    "openphone_id = ",
    earliest!("conversations.openphone_id", "excluded.openphone_id"),
    ", ",
    "last_activity_ms = GREATEST(conversations.last_activity_ms, excluded.last_activity_ms)"
);

pub(crate) const MESSAGE: &str = concat!(
    "INSERT INTO messages (id, conversation_key, direction, from_address, to_addresses, body, media, status, status_rank, error_code, created_ms) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET ",
    "conversation_key = ",
    earliest!("messages.conversation_key", "excluded.conversation_key"),
    ", ",
    "direction = ",
    earliest!("messages.direction", "excluded.direction"),
    ", ",
    "from_address = ",
    earliest!("messages.from_address", "excluded.from_address"),
    ", ",
    "to_addresses = CASE WHEN messages.to_addresses = '[]' THEN excluded.to_addresses WHEN excluded.to_addresses = '[]' THEN messages.to_addresses ELSE ",
    earliest!("messages.to_addresses", "excluded.to_addresses"),
    " END, ",
    "body = ",
    earliest!("messages.body", "excluded.body"),
    ", ",
    "media = CASE WHEN messages.media = '[]' THEN excluded.media WHEN excluded.media = '[]' THEN messages.media ELSE ",
    earliest!("messages.media", "excluded.media"),
    " END, ",
    "status = ",
    ranked!("messages", "status", "status_rank"),
    ", ",
    "status_rank = GREATEST(messages.status_rank, excluded.status_rank), ",
    "error_code = ",
    earliest!("messages.error_code", "excluded.error_code"),
    ", ",
    "created_ms = ",
    earliest!("messages.created_ms", "excluded.created_ms")
);

pub(crate) const MESSAGE_STATUS: &str = "INSERT INTO message_statuses (message_id, status, reported_ms) \
    VALUES ($1, $2, $3) ON CONFLICT (message_id, status) DO UPDATE SET \
    reported_ms = LEAST(message_statuses.reported_ms, excluded.reported_ms)";

pub(crate) const CALL: &str = concat!(
    "INSERT INTO calls (id, conversation_key, direction, status, status_rank, outcome, outcome_rank, created_ms, answered_ms, completed_ms, duration_s, voicemail_url, has_voicemail) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO UPDATE SET ",
    "conversation_key = ",
    earliest!("calls.conversation_key", "excluded.conversation_key"),
    ", ",
    "direction = ",
    earliest!("calls.direction", "excluded.direction"),
    ", ",
    "status = ",
    ranked!("calls", "status", "status_rank"),
    ", ",
    "status_rank = GREATEST(calls.status_rank, excluded.status_rank), ",
    "outcome = ",
    ranked!("calls", "outcome", "outcome_rank"),
    ", ",
    "outcome_rank = GREATEST(calls.outcome_rank, excluded.outcome_rank), ",
    "created_ms = ",
    earliest!("calls.created_ms", "excluded.created_ms"),
    ", ",
    "answered_ms = ",
    earliest!("calls.answered_ms", "excluded.answered_ms"),
    ", ",
    "completed_ms = ",
    latest!("calls.completed_ms", "excluded.completed_ms"),
    ", ",
    "duration_s = ",
    latest!("calls.duration_s", "excluded.duration_s"),
    ", ",
    "voicemail_url = ",
    earliest!("calls.voicemail_url", "excluded.voicemail_url"),
    ", ",
    "has_voicemail = GREATEST(calls.has_voicemail, excluded.has_voicemail)"
);

pub(crate) const RECORDING: &str = "INSERT INTO call_recordings (call_id, url, content_type, duration_s) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (call_id, url) DO NOTHING";

pub(crate) const SUMMARY: &str = concat!(
    "INSERT INTO call_summaries (call_id, status, status_rank, summary, next_steps) VALUES ($1, $2, $3, $4, $5) ",
    "ON CONFLICT (call_id) DO UPDATE SET ",
    "summary = CASE WHEN excluded.status_rank > call_summaries.status_rank OR (excluded.status_rank = call_summaries.status_rank AND excluded.summary > call_summaries.summary) THEN excluded.summary ELSE call_summaries.summary END, ",
    "next_steps = CASE WHEN excluded.status_rank > call_summaries.status_rank OR (excluded.status_rank = call_summaries.status_rank AND excluded.summary > call_summaries.summary) THEN excluded.next_steps ELSE call_summaries.next_steps END, ",
    "status = ",
    ranked!("call_summaries", "status", "status_rank"),
    ", ",
    "status_rank = GREATEST(call_summaries.status_rank, excluded.status_rank)"
);

pub(crate) const TRANSCRIPT: &str = concat!(
    "INSERT INTO call_transcripts (call_id, status, status_rank, dialogue) VALUES ($1, $2, $3, $4) ",
    "ON CONFLICT (call_id) DO UPDATE SET ",
    "dialogue = CASE WHEN excluded.status_rank > call_transcripts.status_rank OR (excluded.status_rank = call_transcripts.status_rank AND excluded.dialogue > call_transcripts.dialogue) THEN excluded.dialogue ELSE call_transcripts.dialogue END, ",
    "status = ",
    ranked!("call_transcripts", "status", "status_rank"),
    ", ",
    "status_rank = GREATEST(call_transcripts.status_rank, excluded.status_rank)"
);

/// Whether the incoming contact version beats the stored one: later, or as late and a
/// deletion, or as late, as deleted, and larger content.
macro_rules! newer_contact {
    () => {
        "(excluded.updated_ms > contacts.updated_ms OR (excluded.updated_ms = contacts.updated_ms AND \
         (excluded.deleted > contacts.deleted OR (excluded.deleted = contacts.deleted AND excluded.content > contacts.content))))"
    };
}

pub(crate) const CONTACT: &str = concat!(
    "INSERT INTO contacts (id, first_name, last_name, company, external_id, deleted, updated_ms, content) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET ",
    "first_name = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.first_name ELSE contacts.first_name END, ",
    "last_name = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.last_name ELSE contacts.last_name END, ",
    "company = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.company ELSE contacts.company END, ",
    "external_id = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.external_id ELSE contacts.external_id END, ",
    "deleted = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.deleted ELSE contacts.deleted END, ",
    "content = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.content ELSE contacts.content END, ",
    "updated_ms = CASE WHEN ",
    newer_contact!(),
    " THEN excluded.updated_ms ELSE contacts.updated_ms END"
);

/// Whether the stored version is the one just written (then its phones are the current ones).
pub(crate) const CONTACT_IS_CURRENT: &str = "SELECT COUNT(*) FROM contacts WHERE id = $1 AND updated_ms = $2 AND deleted = $3 AND content = $4";

pub(crate) const CONTACT_PHONES_CLEAR: &str = "DELETE FROM contact_phones WHERE contact_id = $1";

pub(crate) const CONTACT_PHONE: &str = "INSERT INTO contact_phones (contact_id, phone) VALUES ($1, $2) ON CONFLICT (contact_id, phone) DO NOTHING";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_placeholders_and_extremes_for_sqlite() {
        assert_eq!(
            sqlite("VALUES ($1, $12) SET a = GREATEST(x, y), b = LEAST(x, y)"),
            "VALUES (?1, ?12) SET a = max(x, y), b = min(x, y)"
        );
    }
}
