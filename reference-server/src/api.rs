//! The management API under `/api/v1`: every route needs a bearer token (see [`crate::auth`]).
//!
//! Listings answer `{"items": [...], "next_cursor": "..."}`; pass `cursor` back to get the next
//! page, until `next_cursor` is `null`. `limit` is 1 to 200 (default 50).

use axum::extract::{FromRef, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;
use crate::auth::{Caller, Role};
use crate::ingest::unix_ms;
use crate::media::{BlobStore, MediaRecord};
use crate::messaging::{Messenger, OutgoingMessage, SendRefused, SendRequest, TokenLimiter};
use crate::reads::{ActivityFilter, ConversationSummary, TimelineEntry};
use crate::store::{Store, StoredDelivery};

/// State of the management routes.
#[derive(Clone)]
pub struct ApiState {
    /// The database.
    pub store: Store,
    /// The media blobs.
    pub blobs: BlobStore,
    /// The clock (acknowledgement times).
    pub clock: crate::ingest::Clock,
    /// Sends messages.
    pub messenger: Messenger,
    /// Per-token send limits.
    pub limiter: TokenLimiter,
    /// The commit signal of live streams.
    pub live: crate::live::Live,
}

impl FromRef<ApiState> for Store {
    fn from_ref(state: &ApiState) -> Self {
        state.store.clone()
    }
}

/// The `/api/v1` routes.
pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/events", get(events))
        .route("/api/v1/conversations", get(conversations))
        .route("/api/v1/conversations/{id}", get(conversation))
        .route("/api/v1/calls/{id}", get(call))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/messages", post(send_message))
        .route("/api/v1/messages/{id}", get(sent_message))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/activity", get(activity))
        .route("/api/v1/stream", get(live_stream))
        .route(
            "/api/v1/contacts",
            get(crate::contacts::list).post(crate::contacts::create),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(crate::contacts::get).patch(crate::contacts::update),
        )
        .route("/api/v1/contacts/{id}/merge", post(crate::contacts::merge))
        .route("/api/v1/contacts/{id}/push", post(crate::contacts::push))
        .route(
            "/api/v1/contact-suggestions",
            get(crate::contacts::suggestions),
        )
        .route(
            "/api/v1/contact-suggestions/{id}/approve",
            post(crate::contacts::approve),
        )
        .route(
            "/api/v1/contact-suggestions/{id}/reject",
            post(crate::contacts::reject),
        )
        .route("/api/v1/conversations/{id}/read", post(mark_read))
        .route("/api/v1/health-checks", get(health_checks))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/media", get(media_list))
        .route("/api/v1/media/{id}", get(media_bytes))
        .with_state(state)
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Paging parameters shared by the listings.
#[derive(Debug, Deserialize)]
pub struct Paging {
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size, 1 to 200.
    pub limit: Option<i64>,
}

impl Paging {
    pub(crate) fn limit(&self) -> Result<i64, Error> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// The `(number, text)` position the cursor holds.
    pub(crate) fn position(&self) -> Result<Option<(i64, String)>, Error> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let invalid = || Error::BadRequest("cursor is not one this API returned".to_owned());
        let text = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let (number, rest) = text.split_once('|').ok_or_else(invalid)?;
        Ok(Some((
            number.parse().map_err(|_| invalid())?,
            rest.to_owned(),
        )))
    }
}

pub(crate) fn cursor(number: i64, text: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{number}|{text}"))
}

/// A page of items, with the cursor of the next page when there may be one.
pub(crate) fn page(items: Vec<Value>, limit: i64, next: impl FnOnce() -> String) -> Json<Value> {
    let next_cursor = (items.len() as i64 >= limit).then(next);
    Json(json!({ "items": items, "next_cursor": next_cursor }))
}

/// The public id of a conversation: its key, base64url-encoded (keys hold `|` and `+`).
pub fn conversation_id(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn conversation_key(id: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

fn from_ms(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(rfc3339)
}

fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
pub struct EventFilter {
    /// Only events of this type (`message.received`...).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
}

fn event_json(delivery: StoredDelivery) -> Value {
    let body = serde_json::from_slice::<Value>(&delivery.body).ok();
    json!({
        "id": delivery.id,
        "delivery_key": delivery.delivery_key,
        "scheme": delivery.scheme,
        "event_id": delivery.event_id,
        "type": delivery.event_type,
        "parse_error": delivery.parse_error,
        "signed_at": rfc3339(delivery.signed_at),
        "received_at": rfc3339(delivery.received_at),
        "body_base64": body.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(&delivery.body)),
        "body": body,
    })
}

/// `GET /api/v1/events`: the raw log, newest first (operator and admin).
async fn events(
    caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(filter): Query<EventFilter>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let before = paging.position()?.map(|(id, _)| id);
    let rows = state
        .store
        .events(filter.event_type.as_deref(), before, limit)
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows.into_iter().map(event_json).collect();
    Ok(page(items, limit, || cursor(last.unwrap_or_default(), "")))
}

fn conversation_json(conversation: &ConversationSummary) -> Value {
    json!({
        "id": conversation_id(&conversation.key),
        "phone_number_id": conversation.phone_number_id,
        "participants": json_text(&conversation.participants),
        "openphone_id": conversation.openphone_id,
        "last_activity_at": from_ms(conversation.last_activity_ms),
        "unread_count": conversation.unread,
        "last_message": conversation.last_message.as_ref().map(|last| json!({
            "id": last.id,
            "direction": last.direction,
            "text": last.text,
            "created_at": last.created_ms.and_then(from_ms),
        })),
    })
}

/// Search of `GET /api/v1/conversations`.
#[derive(Debug, Deserialize)]
pub struct ConversationSearch {
    /// A part of a participant's number, or of a contact's name or company.
    pub q: Option<String>,
}

/// `GET /api/v1/conversations`: by latest activity, with the last message and unread count.
async fn conversations(
    _caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(search): Query<ConversationSearch>,
) -> Result<Json<Value>, Error> {
    let limit = paging.limit()?;
    let search = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let rows = state
        .store
        .conversations(search, paging.position()?, limit)
        .await?;
    let last = rows
        .last()
        .map(|row| (row.last_activity_ms, row.key.clone()));
    let items = rows.iter().map(conversation_json).collect();
    Ok(page(items, limit, || {
        let (ms, key) = last.unwrap_or_default();
        cursor(ms, &key)
    }))
}

fn entry_json(entry: &TimelineEntry) -> Value {
    let mut value = json!({
        "kind": entry.kind,
        "id": entry.id,
        "created_at": (entry.created_ms > 0).then(|| from_ms(entry.created_ms)).flatten(),
        "direction": entry.direction,
        "status": entry.status,
    });
    if entry.kind == "message" {
        value["text"] = json!(entry.body);
        value["media"] = entry.media.as_deref().map_or(json!([]), json_text);
    } else {
        value["outcome"] = json!(entry.outcome);
        value["duration_seconds"] = json!(entry.duration_s);
    }
    value
}

/// `GET /api/v1/conversations/{id}`: the conversation and a page of its timeline (messages
/// and calls, newest first).
async fn conversation(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, Error> {
    let limit = paging.limit()?;
    let key = conversation_key(&id).ok_or(Error::NotFound("conversation"))?;
    let summary = state
        .store
        .conversation(&key)
        .await?
        .ok_or(Error::NotFound("conversation"))?;
    let entries = state
        .store
        .timeline(&key, paging.position()?, limit)
        .await?;
    let next_cursor = (entries.len() as i64 >= limit)
        .then(|| entries.last().map(|e| cursor(e.created_ms, &e.id)))
        .flatten();
    let mut value = conversation_json(&summary);
    let mut timeline = Vec::with_capacity(entries.len());
    for entry in &entries {
        let mut item = entry_json(entry);
        if entry.kind == "call" || entry.media.as_deref().is_some_and(|media| media != "[]") {
            let stored = state.store.media_of(&entry.id).await?;
            item["stored_media"] = stored.iter().map(media_json).collect();
        }
        timeline.push(item);
    }
    value["timeline"] = Value::Array(timeline);
    value["next_cursor"] = json!(next_cursor);
    Ok(Json(value))
}

/// `GET /api/v1/calls/{id}`: a call with its recordings, voicemail, transcript and summary.
async fn call(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let call = state
        .store
        .call(&id)
        .await?
        .ok_or(Error::NotFound("call"))?;
    let (created, answered, completed) = call.times_ms;
    Ok(Json(json!({
        "id": id,
        "conversation_id": call.conversation_key.as_deref().map(conversation_id),
        "direction": call.direction,
        "status": call.status,
        "outcome": call.outcome,
        "created_at": created.and_then(from_ms),
        "answered_at": answered.and_then(from_ms),
        "completed_at": completed.and_then(from_ms),
        "duration_seconds": call.duration_s,
        "voicemail": call.voicemail.0.then(|| json!({ "url": call.voicemail.1 })),
        "recordings": call.recordings.iter().map(|url| json!({ "url": url })).collect::<Vec<_>>(),
        "summary": call.summary.as_deref().map(json_text),
        "next_steps": call.next_steps.as_deref().map(json_text),
        "transcript": call.transcript.as_deref().map(json_text),
        "media": state.store.media_of(&id).await?.iter().map(media_json).collect::<Vec<_>>(),
    })))
}

fn media_json(media: &MediaRecord) -> Value {
    json!({
        "id": media.id,
        "kind": media.owner_kind,
        "owner_id": media.owner_id,
        "url": media.url,
        "status": media.status,
        "attempts": media.attempts,
        "content_type": media.content_type,
        "size_bytes": media.size_bytes,
        "sha256": media.sha256,
        "last_error": media.last_error,
        "href": (media.status == "stored").then(|| format!("/api/v1/media/{}", media.id)),
    })
}

/// Filter of `GET /api/v1/media`.
#[derive(Debug, Deserialize)]
pub struct MediaFilter {
    /// `pending`, `stored` or `failed`.
    pub status: Option<String>,
}

/// `GET /api/v1/media`: media jobs newest first, by status (operator and admin): failed
/// downloads are found here.
async fn media_list(
    caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(filter): Query<MediaFilter>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    if let Some(status) = &filter.status
        && !["pending", "stored", "failed"].contains(&status.as_str())
    {
        return Err(Error::BadRequest(
            "status must be pending, stored or failed".to_owned(),
        ));
    }
    let rows = state
        .store
        .media_list(
            filter.status.as_deref(),
            paging.position()?.map(|(id, _)| id),
            limit,
        )
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows.iter().map(media_json).collect();
    Ok(page(items, limit, || cursor(last.unwrap_or_default(), "")))
}

/// `GET /api/v1/media/{id}`: the stored bytes, with their content type.
async fn media_bytes(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let media = state
        .store
        .media(id)
        .await?
        .ok_or(Error::NotFound("media"))?;
    let Some(sha256) = media.sha256.filter(|_| media.status == "stored") else {
        return Err(Error::NotFound(
            "stored copy of this media (see its status)",
        ));
    };
    let bytes = state.blobs.read(&sha256).await.map_err(|error| {
        tracing::error!(id, %error, "stored media is missing from the blob store");
        Error::NotFound("stored copy of this media")
    })?;
    let content_type = media
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, format!("\"{sha256}\"")),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn now_ms(state: &ApiState) -> i64 {
    unix_ms((state.clock)())
}

/// Where `GET /api/v1/stream` starts.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Start after this delivery id (as `Last-Event-ID` does); default: only what comes next.
    pub after: Option<i64>,
}

/// `GET /api/v1/stream`: server-sent events of every committed delivery (its messages, calls
/// and the unread counts of the conversations touched), from any replica. Reconnecting with
/// `Last-Event-ID` resumes after the last event received.
async fn live_stream(
    _caller: Caller,
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Response, Error> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| Error::BadRequest("Last-Event-ID must be an event id".to_owned()))
        })
        .transpose()?;
    let after = match last_event_id.or(query.after) {
        Some(after) => after,
        None => state.store.latest_delivery_id().await?,
    };
    let events = crate::live::stream(&state.live, state.store.clone(), after);
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// Filters of `GET /api/v1/activity`.
#[derive(Debug, Deserialize)]
pub struct ActivityQuery {
    /// `incoming`: only customer responses and incoming calls.
    pub direction: Option<String>,
    /// `message`, `call`, `missed` or `voicemail`.
    pub kind: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    /// Created before (RFC 3339).
    pub until: Option<String>,
    /// Conversations with this participant (E.164).
    pub phone: Option<String>,
    /// Conversations with one of this contact's numbers.
    pub contact: Option<String>,
}

fn parse_ms(name: &str, text: &str) -> Result<i64, Error> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(unix_ms)
        .map_err(|_| Error::BadRequest(format!("{name} must be an RFC 3339 time")))
}

/// `GET /api/v1/activity`: messages, calls, missed calls and voicemails across
/// conversations, newest first, with filters.
async fn activity(
    _caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(query): Query<ActivityQuery>,
) -> Result<Json<Value>, Error> {
    let limit = paging.limit()?;
    let incoming_only = match query.direction.as_deref() {
        None | Some("") => false,
        Some("incoming") => true,
        Some(_) => {
            return Err(Error::BadRequest(
                "direction may only be incoming".to_owned(),
            ));
        }
    };
    if let Some(kind) = &query.kind
        && !["message", "call", "missed", "voicemail"].contains(&kind.as_str())
    {
        return Err(Error::BadRequest(
            "kind must be message, call, missed or voicemail".to_owned(),
        ));
    }
    let phone = match &query.phone {
        Some(phone) => Some(
            openphone_types::E164::parse(phone)
                .map_err(|_| Error::BadRequest("phone must be an E.164 number".to_owned()))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let filter = ActivityFilter {
        incoming_only,
        kind: query.kind,
        since_ms: query
            .since
            .as_deref()
            .map(|t| parse_ms("since", t))
            .transpose()?,
        until_ms: query
            .until
            .as_deref()
            .map(|t| parse_ms("until", t))
            .transpose()?,
        phone,
        contact_id: query.contact,
    };
    let rows = state
        .store
        .activity(&filter, paging.position()?, limit)
        .await?;
    let last = rows.last().map(|row| (row.created_ms, row.id.clone()));
    let items = rows
        .iter()
        .map(|entry| {
            let kind = match (entry.kind.as_str(), entry.outcome.as_deref()) {
                ("call", _) if entry.has_voicemail == 1 => "voicemail",
                ("call", Some("missed")) => "missed_call",
                (kind, _) => kind,
            };
            json!({
                "kind": kind,
                "id": entry.id,
                "conversation_id": entry.conversation_key.as_deref().map(conversation_id),
                "created_at": from_ms(entry.created_ms),
                "direction": entry.direction,
                "status": entry.status,
                "text": entry.body,
                "outcome": entry.outcome,
                "duration_seconds": entry.duration_s,
            })
        })
        .collect();
    Ok(page(items, limit, || {
        let (ms, id) = last.unwrap_or_default();
        cursor(ms, &id)
    }))
}

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The recipient, E.164.
    pub to: String,
    /// The text, 1 to 1,600 characters, not blank.
    pub text: String,
    /// Our sending number (phone number id or E.164); default `DEFAULT_SENDER`.
    pub from: Option<String>,
}

async fn outgoing_json(state: &ApiState, record: &OutgoingMessage) -> Result<Value, Error> {
    let delivery = match &record.message_id {
        Some(id) => state.store.message(id).await?.and_then(|m| m.status),
        None => None,
    };
    Ok(json!({
        "id": record.id,
        "to": record.to_phone,
        "from": record.sender,
        "text": record.text,
        "status": record.status,
        "delivery_status": delivery,
        "message_id": record.message_id,
        "error": record.error,
        "idempotency_key": record.idempotency_key,
        "created_at": from_ms(record.created_ms),
    }))
}

/// `POST /api/v1/messages` with an `Idempotency-Key` header: records, then sends once per
/// key; `201` with the outcome (`sent`, `failed`, `ambiguous`), `200` with the earlier
/// record when the key was used before, `409` for an opted-out number, `429` past the token's
/// rate limit.
async fn send_message(
    caller: Caller,
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<SendBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Error> {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .ok_or_else(|| {
            Error::BadRequest(
                "an Idempotency-Key header (1 to 200 characters) is required".to_owned(),
            )
        })?
        .to_owned();
    let Json(body) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let to = openphone_types::E164::parse(&body.to).map_err(|_| {
        Error::BadRequest("to must be an E.164 number such as +15555550123".to_owned())
    })?;
    if body.text.trim().is_empty() || body.text.chars().count() > 1600 {
        return Err(Error::BadRequest(
            "text must be 1 to 1,600 characters and not blank".to_owned(),
        ));
    }
    if state
        .store
        .outgoing_by_key(&caller.token_id, &key)
        .await?
        .is_none()
    {
        state
            .limiter
            .take(&caller.token_id, &key)
            .map_err(Error::RateLimited)?;
    }
    let request = SendRequest {
        to,
        text: body.text,
        from: body.from,
    };
    let outcome = state
        .messenger
        .send(&caller.token_id, &key, request, now_ms(&state))
        .await?;
    match outcome {
        Ok((record, created)) => {
            let status = if created {
                axum::http::StatusCode::CREATED
            } else {
                axum::http::StatusCode::OK
            };
            Ok((status, Json(outgoing_json(&state, &record).await?)).into_response())
        }
        Err(SendRefused::OptedOut(number)) => Err(Error::Conflict(format!(
            "{number} opted out of messages (STOP); it must opt back in (START) first"
        ))),
        Err(SendRefused::NotConfigured) => {
            Err(Error::Config("sending needs OPENPHONE_API_KEY".to_owned()))
        }
        Err(refused) => Err(Error::BadRequest(refused.to_string())),
    }
}

/// `GET /api/v1/messages/{id}`: a send, with the delivery status webhooks reported since.
async fn sent_message(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, Error> {
    let record = state
        .store
        .outgoing(id)
        .await?
        .ok_or(Error::NotFound("message sent through this API"))?;
    Ok(Json(outgoing_json(&state, &record).await?))
}

/// `GET /api/v1/audit`: who sent what to whom and how it ended, newest first (admin).
async fn audit(
    caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Admin)?;
    let limit = paging.limit()?;
    let rows = state
        .store
        .audit_log(paging.position()?.map(|(id, _)| id), limit)
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows
        .iter()
        .map(|entry| {
            json!({
                "id": entry.id,
                "at": from_ms(entry.at_ms),
                "token_id": entry.token_id,
                "action": entry.action,
                "target": entry.target,
                "outcome": entry.outcome,
                "detail": entry.detail,
            })
        })
        .collect();
    Ok(page(items, limit, || cursor(last.unwrap_or_default(), "")))
}

/// Body of `POST /api/v1/conversations/{id}/read`.
#[derive(Debug, Default, Deserialize)]
pub struct ReadBody {
    /// Also mark it read in OpenPhone.
    #[serde(default)]
    pub openphone: bool,
}

/// `POST /api/v1/conversations/{id}/read`: resets the unread count (and, with
/// `{"openphone": true}`, marks it read in OpenPhone too).
async fn mark_read(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Option<Json<ReadBody>>,
) -> Result<Json<Value>, Error> {
    let key = conversation_key(&id).ok_or(Error::NotFound("conversation"))?;
    let openphone_id = state
        .store
        .mark_read(&key)
        .await?
        .ok_or(Error::NotFound("conversation"))?;
    let mut marked_in_openphone = false;
    if body.is_some_and(|Json(body)| body.openphone) {
        let (Some(client), Some(openphone_id)) = (&state.messenger.client, &openphone_id) else {
            return Err(Error::Conflict(
                "marking read in OpenPhone needs OPENPHONE_API_KEY and OpenPhone's conversation id"
                    .to_owned(),
            ));
        };
        client
            .mark_conversation_read(&openphone_id.as_str().into())
            .await
            .map_err(|error| Error::Conflict(format!("OpenPhone refused: {error}")))?;
        marked_in_openphone = true;
    }
    state
        .store
        .audit(
            &caller.token_id,
            "conversation.read",
            Some(&id),
            "done",
            None,
            now_ms(&state),
        )
        .await?;
    let unread = state
        .store
        .conversation(&key)
        .await?
        .map_or(0, |conversation| conversation.unread);
    Ok(Json(
        json!({"id": id, "unread_count": unread, "marked_in_openphone": marked_in_openphone}),
    ))
}

/// Filter of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize)]
pub struct AlertFilter {
    /// Only alerts not acknowledged yet.
    #[serde(default)]
    pub open: bool,
}

/// `GET /api/v1/alerts?open=true`: alerts newest first, as banners for any role.
async fn alerts(
    _caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<Value>, Error> {
    let limit = paging.limit()?;
    let before = match paging.position()? {
        Some((ms, id)) => Some((
            ms,
            id.parse()
                .map_err(|_| Error::BadRequest("cursor is not one this API returned".to_owned()))?,
        )),
        None => None,
    };
    let rows = state.store.alerts(filter.open, before, limit).await?;
    let last = rows.last().map(|row| (row.last_ms, row.id));
    let items = rows
        .iter()
        .map(|alert| {
            json!({
                "id": alert.id,
                "kind": alert.kind,
                "summary": alert.summary,
                "detail": alert.detail,
                "count": alert.count,
                "first_at": from_ms(alert.first_ms),
                "last_at": from_ms(alert.last_ms),
                "acknowledged_at": alert.acknowledged_ms.and_then(from_ms),
                "acknowledged_by": alert.acknowledged_by,
            })
        })
        .collect();
    Ok(page(items, limit, || {
        let (ms, id) = last.unwrap_or_default();
        cursor(ms, &id.to_string())
    }))
}

/// `POST /api/v1/alerts/{id}/ack`: acknowledges an open alert (operator and admin); the next
/// occurrence opens a new one.
async fn acknowledge(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = unix_ms((state.clock)());
    if !state
        .store
        .acknowledge_alert(id, &caller.token_id, now_ms)
        .await?
    {
        return Err(Error::NotFound("open alert"));
    }
    Ok(Json(json!({"id": id, "acknowledged": true})))
}

/// `GET /api/v1/health-checks`: end-to-end checks newest first, with their webhook latency
/// (operator and admin).
async fn health_checks(
    caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let rows = state
        .store
        .health_checks(paging.position()?.map(|(ms, _)| ms), limit)
        .await?;
    let last = rows.last().map(|row| row.sent_ms);
    let items = rows
        .iter()
        .map(|check| {
            json!({
                "token": check.token,
                "status": check.status,
                "sent_at": from_ms(check.sent_ms),
                "received_at": check.received_ms.and_then(from_ms),
                "latency_ms": check.received_ms.map(|received| received - check.sent_ms),
                "message_id": check.message_id,
                "error": check.error,
            })
        })
        .collect();
    Ok(page(items, limit, || cursor(last.unwrap_or_default(), "")))
}

/// Filter of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize)]
pub struct JobFilter {
    /// Only runs of this job.
    pub job: Option<String>,
}

/// `GET /api/v1/jobs`: scheduled job runs, newest first (operator and admin).
async fn jobs(
    caller: Caller,
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
    Query(filter): Query<JobFilter>,
) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let runs = state
        .store
        .job_runs(filter.job.as_deref(), paging.position()?, limit)
        .await?;
    let last = runs.last().map(|run| (run.started_ms, run.job.clone()));
    let items = runs
        .iter()
        .map(|run| {
            json!({
                "job": run.job,
                "slot": from_ms(run.slot_ms),
                "replica": run.replica,
                "started_at": from_ms(run.started_ms),
                "finished_at": run.finished_ms.and_then(from_ms),
                "outcome": run.outcome,
                "figures": run.figures.as_deref().map(json_text),
                "error": run.error,
            })
        })
        .collect();
    Ok(page(items, limit, || {
        let (ms, job) = last.unwrap_or_default();
        cursor(ms, &job)
    }))
}

/// `GET /api/v1/stats`: counts of everything stored (operator and admin).
async fn stats(caller: Caller, State(state): State<ApiState>) -> Result<Json<Value>, Error> {
    caller.require(Role::Operator)?;
    Ok(Json(json!(state.store.stats().await?)))
}
