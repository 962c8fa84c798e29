//! The simulated HTTP API: gatekeeping (auth, rate limit, faults), the v1 routes, the
//! 2026-03-30 workspace reads, the media files, and the `/_sim` control routes.

// Handlers reject with a finished `Response` carried in `Err`: built once per refused
// request and returned as it is, so its size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::Shared;
use crate::config::Faults;
use crate::workspace::{
    self, ContactRec, MessageRec, WebhookRec, call_json, contact_json, conversation_json,
    message_json, phone_number_json, user_json, webhook_json, workspace_call_json,
    workspace_message_json,
};

type Shard = State<Arc<Shared>>;

/// A v1 error answer.
fn error(status: StatusCode, code: &str, title: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message, "code": code, "status": status.as_u16(),
            "docs": "https://quo.com/docs", "title": title,
        })),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "0000400", "Bad Request", message)
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "0000404",
        "Not Found",
        &format!("{what} not found"),
    )
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let api = axum::Router::new()
        .route("/v1/messages", post(send_message).get(list_messages))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/calls", get(list_calls))
        .route("/v1/calls/{id}", get(get_call))
        .route("/v1/call-recordings/{id}", get(call_recordings))
        .route("/v1/call-summaries/{id}", get(call_summary))
        .route("/v1/call-transcripts/{id}", get(call_transcript))
        .route("/v1/call-voicemails/{id}", get(call_voicemail))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}/{action}", post(mark_conversation))
        .route("/v1/contacts", post(create_contact).get(list_contacts))
        .route(
            "/v1/contacts/{id}",
            get(get_contact)
                .patch(update_contact)
                .delete(delete_contact),
        )
        .route("/v1/contact-custom-fields", get(custom_fields))
        .route("/v1/phone-numbers", get(list_phone_numbers))
        .route("/v1/phone-numbers/{id}", get(get_phone_number))
        .route("/v1/users", get(list_users))
        .route("/v1/users/{id}", get(get_user))
        .route("/v1/webhooks", get(list_webhooks))
        .route("/v1/webhooks/{id}", get(get_webhook).delete(delete_webhook))
        .route("/v1/webhooks/messages", post(create_webhook_messages))
        .route("/v1/webhooks/calls", post(create_webhook_calls))
        .route(
            "/v1/webhooks/call-summaries",
            post(create_webhook_summaries),
        )
        .route(
            "/v1/webhooks/call-transcripts",
            post(create_webhook_transcripts),
        )
        .route("/messages", get(workspace_messages))
        .route("/calls", get(workspace_calls))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate));
    axum::Router::new()
        .merge(api)
        .route("/media/{id}", get(media))
        .route("/_sim/inbound/message", post(control_inbound_message))
        .route("/_sim/inbound/call", post(control_inbound_call))
        .route("/_sim/faults", put(control_faults))
        .route("/_sim/stats", get(control_stats))
        .route("/_sim/sent", delete(control_clear_sent).get(control_sent))
        .with_state(shared)
}

/// Auth, rate limit and injected faults, before every API route.
async fn gate(State(shared): Shard, request: Request, next: Next) -> Response {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let key = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|key| shared.config.api_keys.iter().any(|known| known == key))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Missing or invalid authorization header", "key": "Unauthorized", "trace": "sim"}})),
        )
            .into_response();
    };
    if let Some((limit, per)) = shared.config.rate_limit {
        let admitted = {
            let mut windows = shared.limits.lock().unwrap_or_else(|e| e.into_inner());
            let window = windows.entry(key).or_insert_with(VecDeque::new);
            let now = Instant::now();
            while window
                .front()
                .is_some_and(|&at| now.duration_since(at) >= per)
            {
                window.pop_front();
            }
            let admitted = window.len() < limit as usize;
            if admitted {
                window.push_back(now);
            }
            admitted
        };
        if !admitted {
            shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({"message": "API rate limit exceeded"})),
            )
                .into_response();
        }
    }
    let (latency, fail, malformed) = {
        let mut faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let (config, rng) = &mut *faults;
        let fail = if config.next_server_errors > 0 {
            config.next_server_errors -= 1;
            true
        } else {
            rng.chance(config.server_error_rate)
        };
        (config.latency, fail, rng.chance(config.malformed_rate))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if fail {
        shared.stats.server_errors.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "0000500",
            "Internal Server Error",
            "injected fault",
        );
    }
    let response = next.run(request).await;
    if malformed && response.status().is_success() {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::from("{\"data\": [{\"id\": \"AC"));
    }
    response
}

/// Decodes `a=b&c=d` with repeated keys kept in order.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            match bytes[index] {
                b'+' => out.push(b' '),
                b'%' if index + 2 < bytes.len()
                    && bytes[index + 1].is_ascii_hexdigit()
                    && bytes[index + 2].is_ascii_hexdigit() =>
                {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(byte) => {
                            out.push(byte);
                            index += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                byte => out.push(byte),
            }
            index += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn new(raw: Option<String>) -> Self {
        Self(query_pairs(raw.as_deref()))
    }
    fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key || k.strip_suffix("[]") == Some(key))
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn time(&self, key: &str) -> Result<Option<OffsetDateTime>, Response> {
        self.one(key)
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|_| bad_request(&format!("{key} must be an RFC 3339 date-time")))
            })
            .transpose()
    }
    fn page_size(&self, key: &str, max: usize, required: bool) -> Result<usize, Response> {
        match self.one(key) {
            None if required => Err(bad_request(&format!("{key} is required"))),
            None => Ok(10),
            Some(text) => match text.parse::<usize>() {
                Ok(size) if (1..=max).contains(&size) => Ok(size),
                _ => Err(bad_request(&format!("{key} must be 1 to {max}"))),
            },
        }
    }
}

/// A v1 page: offset tokens `p<offset>`; `totalItems` is the page length, inaccurate like
/// OpenPhone's.
fn page<T>(
    items: &[T],
    size: usize,
    token: Option<&str>,
    render: impl Fn(&T) -> Value,
) -> Result<Value, Response> {
    let start = match token {
        None => 0,
        Some(token) => token
            .strip_prefix('p')
            .and_then(|offset| offset.parse::<usize>().ok())
            .filter(|offset| *offset <= items.len())
            .ok_or_else(|| bad_request("invalid pageToken"))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("p{end}"));
    let data: Vec<Value> = items[start..end].iter().map(render).collect();
    Ok(json!({"data": data, "totalItems": end - start, "nextPageToken": next}))
}

/// A 2026-03-30 page: cursor `c<offset>`.
fn cursor_page<T>(
    items: &[T],
    size: usize,
    after: Option<&str>,
    render: impl Fn(&T) -> Value,
) -> Result<Value, Response> {
    let start = match after {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix('c')
            .and_then(|offset| offset.parse::<usize>().ok())
            .filter(|offset| *offset <= items.len())
            .ok_or_else(|| bad_request("invalid cursor"))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("c{end}"));
    let data: Vec<Value> = items[start..end].iter().map(render).collect();
    Ok(json!({"data": data, "nextCursor": next}))
}

fn respond(result: Result<Value, Response>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(response) => response,
    }
}

fn within(
    time: OffsetDateTime,
    after: Option<OffsetDateTime>,
    before: Option<OffsetDateTime>,
) -> bool {
    after.is_none_or(|after| time > after) && before.is_none_or(|before| time < before)
}

async fn send_message(State(shared): Shard, Json(body): Json<Value>) -> Response {
    let content = body
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if content.trim().is_empty() || content.chars().count() > 1600 {
        return bad_request("content must be 1 to 1600 characters and not blank");
    }
    let from = body
        .get("from")
        .or_else(|| body.get("phoneNumberId"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let to: Vec<String> = body
        .get("to")
        .and_then(Value::as_array)
        .map(|to| {
            to.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if to.is_empty()
        || to.len() > 10
        || to
            .iter()
            .any(|number| openphone_types::E164::parse(number).is_err())
    {
        return bad_request("to must hold 1 to 10 E.164 numbers");
    }
    let now = shared.now();
    let message = {
        let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let Some(number) = workspace.number_by_ref(from).cloned() else {
            return error(
                StatusCode::FORBIDDEN,
                "0202403",
                "Not Phone Number User",
                "from is not a number of this workspace",
            );
        };
        let user_id = body
            .get("userId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| number.user_ids[0].clone());
        let conversation_id = workspace.conversation_for(&number.id, &to, now);
        let message = MessageRec {
            id: workspace.new_id("AC"),
            conversation_id: conversation_id.clone(),
            phone_number_id: number.id.clone(),
            from: number.number.clone(),
            to,
            text: content,
            direction: "outgoing",
            status: "queued",
            user_id,
            media: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        workspace
            .messages
            .entry(conversation_id.clone())
            .or_default()
            .push(message.clone());
        workspace.touch(&conversation_id, &message.id, now);
        message
    };
    shared.stats.sends.fetch_add(1, Ordering::Relaxed);
    shared
        .sent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(message.id.clone());
    shared.schedule_delivered(message.clone());
    let timeout = {
        let mut faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let (config, rng) = &mut *faults;
        if config.next_send_timeouts > 0 {
            config.next_send_timeouts -= 1;
            Some(config.send_timeout_delay)
        } else if rng.chance(config.send_timeout_rate) {
            Some(config.send_timeout_delay)
        } else {
            None
        }
    };
    if let Some(delay) = timeout {
        tokio::time::sleep(delay).await;
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"data": message_json(&message)})),
    )
        .into_response()
}

async fn list_messages(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    respond((|| {
        let size = query.page_size("maxResults", 100, true)?;
        let number = query
            .one("phoneNumberId")
            .ok_or_else(|| bad_request("phoneNumberId is required"))?;
        let participants = query.all("participants");
        if participants.is_empty() || participants.len() > 10 {
            return Err(bad_request("participants: give 1 to 10 numbers"));
        }
        let (after, before) = (query.time("createdAfter")?, query.time("createdBefore")?);
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let items: Vec<&MessageRec> = workspace
            .conversation_with(number, &participants)
            .and_then(|conversation| workspace.messages.get(&conversation.id))
            .map(|messages| {
                messages
                    .iter()
                    .filter(|message| within(message.created_at, after, before))
                    .collect()
            })
            .unwrap_or_default();
        page(&items, size, query.one("pageToken"), |m| message_json(m))
    })())
}

async fn get_message(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.find_message(&id) {
        Some(message) => Json(json!({"data": message_json(message)})).into_response(),
        None => not_found("message"),
    }
}

async fn list_calls(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    respond((|| {
        let size = query.page_size("maxResults", 100, true)?;
        let number = query
            .one("phoneNumberId")
            .ok_or_else(|| bad_request("phoneNumberId is required"))?;
        let participants = query.all("participants");
        if participants.len() != 1 {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "0101400",
                "Too Many Participants",
                "give exactly one participant",
            ));
        }
        let (after, before) = (query.time("createdAfter")?, query.time("createdBefore")?);
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let items: Vec<_> = workspace
            .conversation_with(number, &participants)
            .and_then(|conversation| workspace.calls.get(&conversation.id))
            .map(|calls| {
                calls
                    .iter()
                    .filter(|call| within(call.created_at, after, before))
                    .collect()
            })
            .unwrap_or_default();
        page(&items, size, query.one("pageToken"), |c| call_json(c))
    })())
}

async fn get_call(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.find_call(&id) {
        Some(call) => Json(json!({"data": call_json(call)})).into_response(),
        None => not_found("call"),
    }
}

async fn call_recordings(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let Some(call) = workspace.find_call(&id) else {
        return not_found("call");
    };
    let recordings: Vec<Value> = if call.answered {
        vec![json!({
            "duration": call.duration, "id": format!("RE{}", &call.id[2..]), "startTime": workspace::ts(call.created_at),
            "status": "completed", "type": "audio/mpeg", "url": format!("{}/media/{}-recording", shared.base_url, call.id),
        })]
    } else {
        Vec::new()
    };
    Json(json!({"data": recordings})).into_response()
}

async fn call_summary(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.find_call(&id) {
        Some(call) if call.answered => Json(json!({"data": {
            "callId": call.id, "status": "completed",
            "summary": ["The customer asked about availability.", "A booking was agreed."],
            "nextSteps": ["Send a confirmation text."], "jobs": null,
        }}))
        .into_response(),
        _ => not_found("call summary"),
    }
}

async fn call_transcript(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.find_call(&id) {
        Some(call) if call.answered => Json(json!({"data": {
            "callId": call.id, "createdAt": workspace::ts(call.created_at), "duration": call.duration, "status": "completed",
            "dialogue": [
                {"content": "Hello, how can I help?", "start": 0.4, "end": 2.1, "identifier": null, "userId": call.user_id},
                {"content": "I would like to book for Friday.", "start": 2.5, "end": 4.9, "identifier": call.participant, "userId": null},
            ],
        }}))
        .into_response(),
        _ => not_found("call transcript"),
    }
}

async fn call_voicemail(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.find_call(&id) {
        Some(call) if call.voicemail => Json(json!({"data": {
            "duration": 15, "id": format!("VM{}", &call.id[2..]),
            "transcript": "Hi, please call me back about the crack in my wall.",
            "recordingUrl": format!("{}/media/{}-voicemail", shared.base_url, call.id), "status": "completed",
        }}))
        .into_response(),
        _ => not_found("voicemail"),
    }
}

async fn list_conversations(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    respond((|| {
        let size = query.page_size("maxResults", 100, true)?;
        let mut numbers = query.all("phoneNumbers");
        numbers.extend(query.one("phoneNumber").map(str::to_owned));
        let (created_after, created_before) =
            (query.time("createdAfter")?, query.time("createdBefore")?);
        let (updated_after, updated_before) =
            (query.time("updatedAfter")?, query.time("updatedBefore")?);
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<String> = numbers
            .iter()
            .filter_map(|number| workspace.number_by_ref(number).map(|n| n.id.clone()))
            .collect();
        let items = workspace
            .conversations
            .iter()
            .filter(|c| numbers.is_empty() || ids.contains(&c.phone_number_id))
            .filter(|c| within(c.created_at, created_after, created_before))
            .filter(|c| within(c.updated_at, updated_after, updated_before))
            .collect::<Vec<_>>();
        page(&items, size, query.one("pageToken"), |c| {
            conversation_json(c)
        })
    })())
}

async fn mark_conversation(
    State(shared): Shard,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    if !matches!(
        action.as_str(),
        "mark-as-read" | "mark-as-done" | "mark-as-open"
    ) {
        return not_found("route");
    }
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.conversations.iter().find(|c| c.id == id) {
        Some(conversation) => Json(conversation_json(conversation)).into_response(),
        None => not_found("conversation"),
    }
}

fn contact_from_body(body: &Value) -> Result<Value, Response> {
    let fields = body.get("defaultFields").cloned().unwrap_or(json!({}));
    if !fields.is_object() {
        return Err(bad_request("defaultFields must be an object"));
    }
    let mut fields = fields;
    for key in ["company", "firstName", "lastName", "role"] {
        fields
            .as_object_mut()
            .map(|f| f.entry(key).or_insert(Value::Null));
    }
    for key in ["emails", "phoneNumbers"] {
        fields
            .as_object_mut()
            .map(|f| f.entry(key).or_insert(json!([])));
    }
    let custom: Vec<Value> = body
        .get("customFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| json!({"name": item.get("key").cloned().unwrap_or(Value::Null), "key": item.get("key"), "type": "string", "value": item.get("value")}))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({"defaultFields": fields, "customFields": custom, "sourceUrl": body.get("sourceUrl")}))
}

async fn create_contact(State(shared): Shard, Json(body): Json<Value>) -> Response {
    let contact = match contact_from_body(&body) {
        Ok(contact) => contact,
        Err(response) => return response,
    };
    let external_id = body
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(external) = &external_id
        && workspace
            .contacts
            .values()
            .any(|c| c.external_id.as_ref() == Some(external))
    {
        return error(
            StatusCode::CONFLICT,
            "0800409",
            "Conflict",
            "Failed to create contact",
        );
    }
    let now = shared.now();
    let id = format!(
        "{:024x}",
        workspace.rng.as_mut().map_or(1, crate::rng::Rng::next_u64)
    );
    let record = ContactRec {
        id: id.clone(),
        external_id,
        source: body
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_owned),
        body: contact,
        created_at: now,
        updated_at: now,
    };
    let rendered = contact_json(&record);
    workspace.contacts.insert(id, record);
    (StatusCode::CREATED, Json(json!({"data": rendered}))).into_response()
}

async fn get_contact(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.contacts.get(&id) {
        Some(contact) => Json(json!({"data": contact_json(contact)})).into_response(),
        None => not_found("contact"),
    }
}

async fn update_contact(
    State(shared): Shard,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let Some(contact) = workspace.contacts.get_mut(&id) else {
        return not_found("contact");
    };
    if let Some(fields) = body.get("defaultFields").and_then(Value::as_object)
        && let Some(stored) = contact
            .body
            .get_mut("defaultFields")
            .and_then(Value::as_object_mut)
    {
        // Named fields are replaced whole, lists included, as OpenPhone's PATCH does.
        for (key, value) in fields {
            stored.insert(key.clone(), value.clone());
        }
    }
    if body.get("customFields").is_some()
        && let Ok(rendered) = contact_from_body(&body)
    {
        contact.body["customFields"] = rendered["customFields"].clone();
    }
    if let Some(external) = body.get("externalId") {
        contact.external_id = external.as_str().map(str::to_owned);
    }
    if let Some(source) = body.get("source") {
        contact.source = source.as_str().map(str::to_owned);
    }
    contact.updated_at = shared.now();
    Json(json!({"data": contact_json(contact)})).into_response()
}

async fn delete_contact(State(shared): Shard, Path(id): Path<String>) -> Response {
    let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.contacts.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found("contact"),
    }
}

async fn list_contacts(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    respond((|| {
        let size = query.page_size("maxResults", 50, true)?;
        let external_ids = query.all("externalIds");
        let sources = query.all("sources");
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let items = workspace
            .contacts
            .values()
            .filter(|c| {
                external_ids.is_empty()
                    || c.external_id
                        .as_ref()
                        .is_some_and(|id| external_ids.contains(id))
            })
            .filter(|c| {
                sources.is_empty() || c.source.as_ref().is_some_and(|s| sources.contains(s))
            })
            .collect::<Vec<_>>();
        page(&items, size, query.one("pageToken"), |c| contact_json(c))
    })())
}

async fn custom_fields() -> Response {
    Json(json!({"data": [
        {"name": "Crack width (mm)", "key": "crack-width", "type": "number"},
        {"name": "Services", "key": "services", "type": "multi-select"},
    ]}))
    .into_response()
}

async fn list_phone_numbers(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let user = query.one("userId");
    let items: Vec<Value> = workspace
        .phone_numbers
        .iter()
        .filter(|number| user.is_none_or(|user| number.user_ids.iter().any(|id| id == user)))
        .map(|number| phone_number_json(number, &workspace.users))
        .collect();
    Json(json!({"data": items})).into_response()
}

async fn get_phone_number(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace
        .phone_numbers
        .iter()
        .find(|number| number.id == id)
    {
        Some(number) => {
            Json(json!({"data": phone_number_json(number, &workspace.users)})).into_response()
        }
        None => not_found("phone number"),
    }
}

async fn list_users(State(shared): Shard, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw);
    respond((|| {
        let size = query.page_size("maxResults", 50, true)?;
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        page(&workspace.users, size, query.one("pageToken"), user_json)
    })())
}

async fn get_user(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.users.iter().find(|user| user.id == id) {
        Some(user) => Json(json!({"data": user_json(user)})).into_response(),
        None => not_found("user"),
    }
}

async fn list_webhooks(State(shared): Shard) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let items: Vec<Value> = workspace
        .webhooks
        .iter()
        .map(|w| webhook_json(w, &workspace.org_id))
        .collect();
    Json(json!({"data": items})).into_response()
}

async fn get_webhook(State(shared): Shard, Path(id): Path<String>) -> Response {
    let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.webhooks.iter().find(|w| w.id == id) {
        Some(webhook) => {
            Json(json!({"data": webhook_json(webhook, &workspace.org_id)})).into_response()
        }
        None => not_found("webhook"),
    }
}

async fn delete_webhook(State(shared): Shard, Path(id): Path<String>) -> Response {
    let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let before = workspace.webhooks.len();
    workspace.webhooks.retain(|w| w.id != id);
    if workspace.webhooks.len() == before {
        return not_found("webhook");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn create_webhook(shared: &Shared, body: &Value, allowed: &[&str]) -> Response {
    let Some(url) = body.get("url").and_then(Value::as_str) else {
        return bad_request("url is required");
    };
    let events: Vec<String> = body
        .get("events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if events.is_empty()
        || events
            .iter()
            .any(|event| !allowed.contains(&event.as_str()))
    {
        return bad_request(&format!("events must be among {allowed:?}"));
    }
    let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let key_bytes = format!(
        "{:016x}{:016x}",
        workspace.rng.as_mut().map_or(1, crate::rng::Rng::next_u64),
        7u64
    );
    let record = WebhookRec {
        id: workspace.new_id("WH"),
        user_id: body
            .get("userId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| workspace.users[0].id.clone()),
        label: body.get("label").and_then(Value::as_str).map(str::to_owned),
        status: body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("enabled")
            .to_owned(),
        url: url.to_owned(),
        key: crate::base64(key_bytes.as_bytes()),
        events,
        resource_ids: body
            .get("resourceIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| vec!["*".to_owned()]),
        created_at: shared.now(),
    };
    let rendered = webhook_json(&record, &workspace.org_id);
    workspace.webhooks.push(record);
    (StatusCode::CREATED, Json(json!({"data": rendered}))).into_response()
}

async fn create_webhook_messages(State(shared): Shard, Json(body): Json<Value>) -> Response {
    create_webhook(&shared, &body, &["message.received", "message.delivered"])
}

async fn create_webhook_calls(State(shared): Shard, Json(body): Json<Value>) -> Response {
    create_webhook(
        &shared,
        &body,
        &["call.completed", "call.ringing", "call.recording.completed"],
    )
}

async fn create_webhook_summaries(State(shared): Shard, Json(body): Json<Value>) -> Response {
    create_webhook(&shared, &body, &["call.summary.completed"])
}

async fn create_webhook_transcripts(State(shared): Shard, Json(body): Json<Value>) -> Response {
    create_webhook(&shared, &body, &["call.transcript.completed"])
}

fn dated(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("quo-api-version").and_then(|v| v.to_str().ok()) {
        Some("2026-03-30") => Ok(()),
        _ => Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"title": "Bad Request", "message": "Quo-Api-Version: 2026-03-30 is required", "docs": "https://quo.com/docs"})),
        )
            .into_response()),
    }
}

fn created_window(
    query: &Query,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), Response> {
    Ok((query.time("createdAt[gt]")?, query.time("createdAt[lt]")?))
}

async fn workspace_messages(
    State(shared): Shard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw);
    respond((|| {
        dated(&headers)?;
        let size = query.page_size("limit", 50, false)?;
        let (after, before) = created_window(&query)?;
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let mut messages: Vec<&MessageRec> = workspace
            .messages
            .values()
            .flatten()
            .filter(|m| within(m.created_at, after, before))
            .collect();
        messages.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        cursor_page(&messages, size, query.one("after"), |m| {
            workspace_message_json(m, &shared.base_url)
        })
    })())
}

async fn workspace_calls(
    State(shared): Shard,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw);
    respond((|| {
        dated(&headers)?;
        let size = query.page_size("limit", 50, false)?;
        let (after, before) = created_window(&query)?;
        let workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let mut calls: Vec<_> = workspace
            .calls
            .values()
            .flatten()
            .filter(|c| within(c.created_at, after, before))
            .collect();
        calls.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        cursor_page(&calls, size, query.one("after"), |c| workspace_call_json(c))
    })())
}

/// Media files: deterministic bytes per id (a JPEG header for images, MP3 for audio).
async fn media(Path(id): Path<String>) -> Response {
    let audio = id.ends_with("-recording") || id.ends_with("-voicemail");
    let (content_type, magic): (&str, &[u8]) = if audio {
        ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00")
    } else {
        ("image/jpeg", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00")
    };
    let mut bytes = magic.to_vec();
    bytes.extend(id.as_bytes());
    ([("content-type", content_type)], bytes).into_response()
}

async fn control_inbound_message(
    State(shared): Shard,
    Json(body): Json<crate::InboundMessage>,
) -> Response {
    match shared.inbound_message(body) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(message) => bad_request(&message),
    }
}

async fn control_inbound_call(
    State(shared): Shard,
    Json(body): Json<crate::InboundCall>,
) -> Response {
    match shared.inbound_call(body) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(message) => bad_request(&message),
    }
}

async fn control_faults(State(shared): Shard, Json(faults): Json<Faults>) -> Response {
    shared.faults.lock().unwrap_or_else(|e| e.into_inner()).0 = faults;
    StatusCode::NO_CONTENT.into_response()
}

async fn control_stats(State(shared): Shard) -> Response {
    Json(serde_json::to_value(shared.stats()).unwrap_or_default()).into_response()
}

async fn control_sent(State(shared): Shard) -> Response {
    Json(json!({"sent": *shared.sent.lock().unwrap_or_else(|e| e.into_inner())})).into_response()
}

async fn control_clear_sent(State(shared): Shard) -> Response {
    shared
        .sent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    StatusCode::NO_CONTENT.into_response()
}
