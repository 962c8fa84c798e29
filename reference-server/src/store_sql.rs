//! The projection's SQL, written once in PostgreSQL's dialect and translated for SQLite.
//!
//! Every upsert is a join: applying the same changes in any order gives the same row.

use crate::projection::Change;
use crate::store::Arg;

/// SQLite spells numbered parameters `?1` and the two-argument extremes `max`/`min`, and
/// compares text bytewise already (PostgreSQL's `COLLATE "C"`, which it lacks). It holds a
/// delivery's `received_at` as RFC 3339 text, whose fraction of a second varies in length (none
/// on a whole second), so text order is not time order within a second: `received_at >= $n`
/// compares the instants (`julianday`, to the millisecond).
pub(crate) fn sqlite(sql: &str) -> String {
    received_as_instants(sql)
        .replace('$', "?")
        .replace(" COLLATE \"C\"", "")
        .replace("GREATEST(", "max(")
        .replace("LEAST(", "min(")
        .replace("strpos(", "instr(")
        .replace(" FOR UPDATE SKIP LOCKED", "")
}

/// `sql` with each `received_at >= $n` made `julianday(received_at) >= julianday($n)`.
fn received_as_instants(sql: &str) -> std::borrow::Cow<'_, str> {
    const COMPARISON: &str = "received_at >= $";
    if !sql.contains(COMPARISON) {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(at) = rest.find(COMPARISON) {
        out.push_str(&rest[..at]);
        let after = &rest[at + COMPARISON.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&format!(
            "julianday(received_at) >= julianday(${})",
            &after[..digits]
        ));
        rest = &after[digits..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
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

/// Of two nullable conversation keys (`<line>|<participant>,<participant>...`), the one with
/// more participants, else the lesser (NULL only when both are). A group message projected
/// while its line's number was not known keys by its sender alone; projected again once the
/// number is known, it keys by the whole group, and that key wins in any order.
macro_rules! fuller_key {
    ($a:literal, $b:literal) => {
        concat!(
            "CASE WHEN ",
            $b,
            " IS NULL THEN ",
            $a,
            " WHEN ",
            $a,
            " IS NULL THEN ",
            $b,
            " WHEN length(",
            $b,
            ") - length(replace(",
            $b,
            ", ',', '')) > length(",
            $a,
            ") - length(replace(",
            $a,
            ", ',', '')) THEN ",
            $b,
            " WHEN length(",
            $b,
            ") - length(replace(",
            $b,
            ", ',', '')) < length(",
            $a,
            ") - length(replace(",
            $a,
            ", ',', '')) THEN ",
            $a,
            " ELSE LEAST(",
            $a,
            ", ",
            $b,
            ") END"
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
    "last_activity_ms = GREATEST(conversations.last_activity_ms, excluded.last_activity_ms) ",
    // Skip the write (and its index entries) when nothing would change.
    "WHERE excluded.last_activity_ms > conversations.last_activity_ms ",
    "OR (excluded.openphone_id IS NOT NULL AND (conversations.openphone_id IS NULL OR excluded.openphone_id < conversations.openphone_id))"
);

pub(crate) const MESSAGE: &str = concat!(
    "INSERT INTO messages (id, conversation_key, direction, from_address, to_addresses, body, media, status, status_rank, error_code, created_ms) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET ",
    "conversation_key = ",
    fuller_key!("messages.conversation_key", "excluded.conversation_key"),
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

/// A recording's details merge order-independently: the least content type and the longest
/// duration any event gave; a write only when one of them changes.
pub(crate) const RECORDING: &str = concat!(
    "INSERT INTO call_recordings (call_id, url, content_type, duration_s) ",
    "VALUES ($1, $2, $3, $4) ON CONFLICT (call_id, url) DO UPDATE SET ",
    "content_type = ",
    earliest!("call_recordings.content_type", "excluded.content_type"),
    ", duration_s = ",
    latest!("call_recordings.duration_s", "excluded.duration_s"),
    " WHERE (excluded.content_type IS NOT NULL AND (call_recordings.content_type IS NULL ",
    "OR excluded.content_type < call_recordings.content_type)) ",
    "OR (excluded.duration_s IS NOT NULL AND (call_recordings.duration_s IS NULL ",
    "OR excluded.duration_s > call_recordings.duration_s))"
);

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

/// One media job per owner and URL; what events declare of it merges order-independently (the
/// least declared type, the first position); a write only when one of them changes, so a
/// redelivery leaves a job in progress alone.
pub(crate) const MEDIA: &str = concat!(
    "INSERT INTO media (owner_kind, owner_id, url, declared_type, position) ",
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_id, url) DO UPDATE SET ",
    "declared_type = ",
    earliest!("media.declared_type", "excluded.declared_type"),
    ", position = LEAST(media.position, excluded.position)",
    " WHERE (excluded.declared_type IS NOT NULL AND (media.declared_type IS NULL ",
    "OR excluded.declared_type < media.declared_type)) ",
    "OR excluded.position < media.position"
);

pub(crate) const CONSENT: &str = "INSERT INTO consent_ledger (message_id, phone, action, keyword, at_ms) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING";

pub(crate) const REVIEW_FLAG: &str = "INSERT INTO review_flags (message_id, phone, reason, at_ms) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING";

pub(crate) const SUGGESTION: &str = "INSERT INTO contact_suggestions (message_id, phone, kind, value, at_ms) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id, kind, value) DO NOTHING";

pub(crate) const HEALTH_RECEIPT: &str = "INSERT INTO health_check_receipts (token, received_ms) \
    VALUES ($1, $2) ON CONFLICT (token) DO NOTHING";

pub(crate) const REPLY: &str = "INSERT INTO outbox (message_id, kind, to_phone, sender, created_ms) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id, kind) DO NOTHING";

/// One of our numbers, seen sending; an import's phone number list, when there is one, stays.
pub(crate) const OWN_NUMBER: &str = "INSERT INTO workspace_phone_numbers (id, number, updated_ms) \
    VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";

/// A reply (and maybe an opt-out) on the campaign recipients with that number attempted at
/// or before it; the earliest is kept, so the order of arrival does not matter.
pub(crate) const CAMPAIGN_RESPONSE: &str = "UPDATE campaign_recipients SET \
    replied_ms = LEAST(COALESCE(replied_ms, $2), $2), \
    opted_out_ms = CASE WHEN $3 = 1 THEN LEAST(COALESCE(opted_out_ms, $2), $2) ELSE opted_out_ms END \
    WHERE phone = $1 AND state IN ('sent', 'delivered', 'failed', 'ambiguous') AND attempted_ms <= $2 \
    AND (replied_ms IS NULL OR replied_ms > $2 OR ($3 = 1 AND (opted_out_ms IS NULL OR opted_out_ms > $2)))";

/// A delivery report on a campaign message: `delivered` when `$2` is NULL, else `failed`
/// with `$2` as the reason. Delivery wins in any order: a failure never overrides it, and it
/// replaces a carrier failure reported first.
pub(crate) const CAMPAIGN_DELIVERY: &str = "UPDATE campaign_recipients SET \
    state = CASE WHEN $2 IS NULL THEN 'delivered' ELSE 'failed' END, \
    detail = $2, updated_ms = GREATEST(updated_ms, $3) \
    WHERE message_id = $1 AND (state = 'sent' OR ($2 IS NULL AND state IN ('delivered', 'failed')))";

/// One projection upsert: its SQL, the key it conflicts on, and its parameters.
#[derive(Clone)]
pub(crate) struct Upsert {
    pub(crate) sql: &'static str,
    pub(crate) key: String,
    pub(crate) args: Vec<Arg>,
}

fn int(value: impl Into<i64>) -> Arg {
    Arg::Int(Some(value.into()))
}

/// The single upsert a change makes, or `None` for a contact (which also rewrites its phone
/// numbers, see `apply!`).
pub(crate) fn upsert(change: &Change) -> Option<Upsert> {
    let (sql, key, args) = match change.clone() {
        Change::Conversation {
            key,
            phone_number_id,
            participants,
            openphone_id,
            activity_ms,
        } => (
            CONVERSATION,
            key.clone(),
            vec![
                key.into(),
                phone_number_id.into(),
                participants.into(),
                openphone_id.into(),
                activity_ms.into(),
            ],
        ),
        Change::Message {
            id,
            conversation_key,
            direction,
            from,
            to,
            body,
            media,
            status,
            status_rank,
            error_code,
            created_ms,
        } => (
            MESSAGE,
            id.clone(),
            vec![
                id.into(),
                conversation_key.into(),
                direction.into(),
                from.into(),
                to.into(),
                body.into(),
                media.into(),
                status.into(),
                int(status_rank),
                error_code.into(),
                created_ms.into(),
            ],
        ),
        Change::MessageStatus {
            message_id,
            status,
            reported_ms,
        } => (
            MESSAGE_STATUS,
            format!("{message_id}|{status}"),
            vec![message_id.into(), status.into(), reported_ms.into()],
        ),
        Change::Call {
            id,
            conversation_key,
            direction,
            status,
            status_rank,
            outcome,
            outcome_rank,
            created_ms,
            answered_ms,
            completed_ms,
            duration_s,
            voicemail_url,
            has_voicemail,
        } => (
            CALL,
            id.clone(),
            vec![
                id.into(),
                conversation_key.into(),
                direction.into(),
                status.into(),
                int(status_rank),
                outcome.into(),
                int(outcome_rank),
                created_ms.into(),
                answered_ms.into(),
                completed_ms.into(),
                duration_s.into(),
                voicemail_url.into(),
                int(i32::from(has_voicemail)),
            ],
        ),
        Change::Recording {
            call_id,
            url,
            content_type,
            duration_s,
        } => (
            RECORDING,
            format!("{call_id}|{url}"),
            vec![
                call_id.into(),
                url.into(),
                content_type.into(),
                duration_s.into(),
            ],
        ),
        Change::Summary {
            call_id,
            status,
            status_rank,
            summary,
            next_steps,
        } => (
            SUMMARY,
            call_id.clone(),
            vec![
                call_id.into(),
                status.into(),
                int(status_rank),
                summary.into(),
                next_steps.into(),
            ],
        ),
        Change::Transcript {
            call_id,
            status,
            status_rank,
            dialogue,
        } => (
            TRANSCRIPT,
            call_id.clone(),
            vec![
                call_id.into(),
                status.into(),
                int(status_rank),
                dialogue.into(),
            ],
        ),
        Change::Media {
            owner_kind,
            owner_id,
            url,
            declared_type,
            position,
        } => (
            MEDIA,
            format!("{owner_id}|{url}"),
            vec![
                owner_kind.into(),
                owner_id.into(),
                url.into(),
                declared_type.into(),
                int(position),
            ],
        ),
        Change::Consent {
            message_id,
            phone,
            action,
            keyword,
            at_ms,
        } => (
            CONSENT,
            message_id.clone(),
            vec![
                message_id.into(),
                phone.into(),
                action.into(),
                keyword.into(),
                at_ms.into(),
            ],
        ),
        Change::ReviewFlag {
            message_id,
            phone,
            reason,
            at_ms,
        } => (
            REVIEW_FLAG,
            message_id.clone(),
            vec![message_id.into(), phone.into(), reason.into(), at_ms.into()],
        ),
        Change::Reply {
            message_id,
            kind,
            to,
            sender,
            created_ms,
        } => (
            REPLY,
            format!("{message_id}|{kind}"),
            vec![
                message_id.into(),
                kind.into(),
                to.into(),
                sender.into(),
                created_ms.into(),
            ],
        ),
        Change::Suggestion {
            message_id,
            phone,
            kind,
            value,
            at_ms,
        } => (
            SUGGESTION,
            format!("{message_id}|{kind}|{value}"),
            vec![
                message_id.into(),
                phone.into(),
                kind.into(),
                value.into(),
                at_ms.into(),
            ],
        ),
        Change::HealthReceipt { token, received_ms } => (
            HEALTH_RECEIPT,
            token.clone(),
            vec![token.into(), received_ms.into()],
        ),
        Change::CampaignResponse {
            phone,
            at_ms,
            opt_out,
        } => (
            CAMPAIGN_RESPONSE,
            phone.clone(),
            vec![phone.into(), at_ms.into(), int(i32::from(opt_out))],
        ),
        Change::CampaignDelivery {
            message_id,
            failure,
            reported_ms,
        } => (
            CAMPAIGN_DELIVERY,
            message_id.clone(),
            vec![message_id.into(), failure.into(), reported_ms.into()],
        ),
        Change::OwnNumber {
            phone_number_id,
            number,
            seen_ms,
        } => (
            OWN_NUMBER,
            phone_number_id.clone(),
            vec![phone_number_id.into(), number.into(), seen_ms.into()],
        ),
        Change::Contact { .. } => return None,
    };
    // The key as the values are stored (a NUL as U+FFFD): two values that store alike are one
    // row, so they must not share a round of a batch.
    let key = crate::store::storable(key);
    Some(Upsert { sql, key, args })
}

/// The PostgreSQL statement applying one upsert to many rows at once: `VALUES ($1, ...)`
/// becomes `SELECT ... FROM UNNEST($1::text[], ...)`, with the same conflict clause, so the
/// merge is the one each row would get alone. `columns` gives each parameter's array type;
/// parameters are numbered from `first`. With `only_new`, one more text array gives each
/// row's delivery key, and only rows whose delivery the `raw` CTE inserted are applied.
pub(crate) fn unnest(sql: &str, columns: &[&str], first: usize, only_new: bool) -> String {
    if sql.starts_with("UPDATE ") {
        return unnest_update(sql, columns, first, only_new);
    }
    let (start, end) = values_list(sql);
    let mut arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| format!("${}::{column}[]", first + index))
        .collect();
    let names: Vec<String> = (1..=columns.len()).map(|n| format!("u.c{n}")).collect();
    let mut aliases: Vec<String> = (1..=columns.len()).map(|n| format!("c{n}")).collect();
    let filter = if only_new {
        arrays.push(format!("${}::text[]", first + columns.len()));
        aliases.push("dk".to_owned());
        " WHERE u.dk IN (SELECT delivery_key FROM raw)"
    } else {
        ""
    };
    format!(
        "{}SELECT {} FROM UNNEST({}) AS u({}){filter}{}",
        &sql[..start],
        names.join(", "),
        arrays.join(", "),
        aliases.join(", "),
        &sql[end..]
    )
}

/// The SQLite statement applying one upsert of `width` parameters to many rows at once, from
/// a JSON array of rows (each an array of the parameters) bound as `$1`: `VALUES ($1, ...)`
/// becomes `SELECT j.value->>0, ... FROM json_each($1) AS j WHERE true` (the `WHERE` tells
/// SQLite's parser the conflict clause is the upsert's), with the same conflict clause; an
/// `UPDATE ... WHERE ...` joins the rows in a `FROM` clause. In PostgreSQL's dialect, like
/// every statement here: [`sqlite`] translates it. A statement must not touch a row twice:
/// callers give it rows of distinct keys.
pub(crate) fn json_each(sql: &str, width: usize) -> String {
    let column = |n: usize| format!("j.value->>{}", n - 1);
    if sql.starts_with("UPDATE ") {
        let body = parameters_as(sql, width, column);
        let (set, condition) = at_where(&body);
        return format!("{set} FROM json_each($1) AS j WHERE {condition}");
    }
    let (start, end) = values_list(sql);
    let columns: Vec<String> = (1..=width).map(column).collect();
    format!(
        "{}SELECT {} FROM json_each($1) AS j WHERE true{}",
        &sql[..start],
        columns.join(", "),
        &sql[end..]
    )
}

/// [`unnest`] for an `UPDATE ... WHERE ...`: the arrays join in a `FROM` clause before the
/// `WHERE`, and each parameter `$n` becomes the column `u.cn`. A statement must not update a
/// row twice: callers give it rows of distinct keys (see `record_batch_unnested`).
fn unnest_update(sql: &str, columns: &[&str], first: usize, only_new: bool) -> String {
    let body = parameters_as(sql, columns.len(), |n| format!("u.c{n}"));
    let mut arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| format!("${}::{column}[]", first + index))
        .collect();
    let mut aliases: Vec<String> = (1..=columns.len()).map(|n| format!("c{n}")).collect();
    let mut filter = String::new();
    if only_new {
        arrays.push(format!("${}::text[]", first + columns.len()));
        aliases.push("dk".to_owned());
        filter.push_str("u.dk IN (SELECT delivery_key FROM raw) AND ");
    }
    let (set, condition) = at_where(&body);
    format!(
        "{set} FROM UNNEST({}) AS u({}) WHERE {filter}({condition})",
        arrays.join(", "),
        aliases.join(", "),
    )
}

/// Where an insert's `VALUES (...)` list starts and ends (past its `)`).
fn values_list(sql: &str) -> (usize, usize) {
    let start = sql.find("VALUES (").unwrap_or(sql.len());
    let end = sql[start..]
        .find(')')
        .map_or(sql.len(), |end| start + end + 1);
    (start, end)
}

/// `sql` with each parameter `$1..$width` replaced by `column(n)`.
fn parameters_as(sql: &str, width: usize, column: impl Fn(usize) -> String) -> String {
    let mut body = sql.to_owned();
    // Highest first, so `$1` does not rewrite the start of `$12`.
    for n in (1..=width).rev() {
        body = body.replace(&format!("${n}"), &column(n));
    }
    body
}

/// An `UPDATE`'s text before its `WHERE`, and its condition.
fn at_where(body: &str) -> (&str, &str) {
    let at = body.find(" WHERE ").unwrap_or(body.len());
    (&body[..at], body[at..].trim_start_matches(" WHERE "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_store_alike_have_one_key() {
        let media = |url: &str| Change::Media {
            owner_kind: "message",
            owner_id: "AC1".to_owned(),
            url: url.to_owned(),
            declared_type: None,
            position: 0,
        };
        let key = |change: &Change| upsert(change).expect("an upsert").key;
        assert_eq!(
            key(&media("https://files.example/a\0")),
            key(&media("https://files.example/a\u{FFFD}"))
        );
        assert_ne!(
            key(&media("https://files.example/a")),
            key(&media("https://files.example/b"))
        );
    }

    /// Every upsert statement: the projection's record kinds first.
    const UPSERTS: [&str; 16] = [
        CONVERSATION,
        MESSAGE,
        MESSAGE_STATUS,
        CALL,
        RECORDING,
        SUMMARY,
        TRANSCRIPT,
        MEDIA,
        CONSENT,
        REVIEW_FLAG,
        SUGGESTION,
        HEALTH_RECEIPT,
        REPLY,
        OWN_NUMBER,
        CAMPAIGN_RESPONSE,
        CAMPAIGN_DELIVERY,
    ];

    #[test]
    fn unnest_keeps_the_conflict_clause() {
        assert_eq!(
            unnest(MESSAGE_STATUS, &["text", "text", "int8"], 1, false),
            "INSERT INTO message_statuses (message_id, status, reported_ms) \
             SELECT u.c1, u.c2, u.c3 FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS u(c1, c2, c3) \
             ON CONFLICT (message_id, status) DO UPDATE SET \
             reported_ms = LEAST(message_statuses.reported_ms, excluded.reported_ms)"
        );
        assert!(
            unnest(RECORDING, &["text", "text", "text", "int8"], 9, true).contains(
                "UNNEST($9::text[], $10::text[], $11::text[], $12::int8[], $13::text[]) \
                 AS u(c1, c2, c3, c4, dk) WHERE u.dk IN (SELECT delivery_key FROM raw) ON CONFLICT"
            )
        );
        for sql in &UPSERTS[..7] {
            let values = sql.find("VALUES (").unwrap();
            assert!(sql[values..].find(')').unwrap() < sql.find("ON CONFLICT").unwrap() - values);
        }
    }

    /// Every upsert's statement over a JSON array keeps no parameter but the array: its
    /// `VALUES` list is plain `$1..$n` and ends before the conflict clause (an `UPDATE`'s
    /// parameters are all rewritten).
    #[test]
    fn json_each_rewrites_every_upsert_parameter() {
        for sql in UPSERTS {
            let width = (1..=20).filter(|n| sql.contains(&format!("${n}"))).count();
            let text = json_each(sql, width);
            assert!(!text.contains("VALUES"), "{text}");
            assert_eq!(text.matches('$').count(), 1, "{text}");
            assert!(text.contains("json_each($1) AS j WHERE "), "{text}");
            assert!(text.contains(&format!("j.value->>{}", width - 1)), "{text}");
        }
    }

    #[test]
    fn sqlite_compares_received_times_as_instants() {
        assert_eq!(
            sqlite("WHERE id > $1 AND ($2 OR received_at >= $13) AND received_at >= $3 LIMIT 5"),
            "WHERE id > ?1 AND (?2 OR julianday(received_at) >= julianday(?13)) \
             AND julianday(received_at) >= julianday(?3) LIMIT 5"
        );
        assert_eq!(
            sqlite("SELECT received_at FROM t"),
            "SELECT received_at FROM t"
        );
    }

    #[test]
    fn json_each_reads_the_rows_of_an_insert_and_an_update() {
        assert_eq!(
            sqlite(&json_each(
                "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = GREATEST(t.b, excluded.b)",
                2
            )),
            "INSERT INTO t (a, b) SELECT j.value->>0, j.value->>1 FROM json_each(?1) AS j WHERE true \
             ON CONFLICT (a) DO UPDATE SET b = max(t.b, excluded.b)"
        );
        assert_eq!(
            sqlite(&json_each(
                "UPDATE t SET a = $2, b = $12 WHERE k = $1 AND c <= $2",
                12
            )),
            "UPDATE t SET a = j.value->>1, b = j.value->>11 FROM json_each(?1) AS j \
             WHERE k = j.value->>0 AND c <= j.value->>1"
        );
    }

    #[test]
    fn unnest_joins_the_arrays_of_an_update() {
        assert_eq!(
            unnest(
                "UPDATE t SET a = $2, b = $12 WHERE k = $1",
                &[
                    "text", "int8", "int8", "int8", "int8", "int8", "int8", "int8", "int8", "int8",
                    "int8", "int8"
                ],
                5,
                true
            ),
            "UPDATE t SET a = u.c2, b = u.c12 FROM UNNEST($5::text[], $6::int8[], $7::int8[], \
             $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], \
             $14::int8[], $15::int8[], $16::int8[], $17::text[]) \
             AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, dk) \
             WHERE u.dk IN (SELECT delivery_key FROM raw) AND (k = u.c1)"
        );
    }

    #[test]
    fn translates_placeholders_and_extremes_for_sqlite() {
        assert_eq!(
            sqlite("VALUES ($1, $12) SET a = GREATEST(x, y), b = LEAST(x, y)"),
            "VALUES (?1, ?12) SET a = max(x, y), b = min(x, y)"
        );
    }
}
