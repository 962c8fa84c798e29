//! The management API under `/api/v1`: every route needs a bearer token (see [`crate::auth`]).
//!
//! Listings answer `{"items": [...], "next_cursor": "..."}`; pass `cursor` back to get the next
//! page, until `next_cursor` is `null`. `limit` is 1 to 200 (default 50).
//!
//! Every route is registered from its handler's `#[utoipa::path]` annotation (paths in the
//! annotations are relative to `/api/v1`), so the OpenAPI document served at
//! `/api/v1/openapi.json` lists exactly the routes served (see [`crate::openapi`]). Responses
//! are typed structs whose fields are declared in alphabetical order: they serialize to the
//! same bytes as the `json!` maps (sorted keys) they replaced.

use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerts::AlertStore;
use crate::auth::{Caller, Role};
use crate::extract::{Path, Query};
use crate::health_check::HealthChecks;
use crate::ingest::unix_ms;
use crate::media::{BlobStore, MediaJobs, MediaRecord};
use crate::messaging::{
    Messenger, OutgoingMessage, SendLog, SendRefused, SendRequest, TokenLimiter,
};
use crate::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};
use crate::reads::{ActivityFilter, CampaignMessages, ConversationSummary, Stats, TimelineEntry};
use crate::scheduler::JobRuns;
use crate::store::{Store, StoredDelivery};
use crate::{Error, ErrorBody};

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
    /// Audiences and campaigns.
    pub campaigns: crate::campaigns::Campaigns,
    /// Conversation threads.
    pub threads: thread_resolver::Resolver<Store>,
}

impl FromRef<ApiState> for Store {
    fn from_ref(state: &ApiState) -> Self {
        state.store.clone()
    }
}

/// The `/api/v1` routes, with a fallback answering `404 {"error": "no such route"}` to any
/// other path under `/api/v1`.
pub fn routes(state: ApiState) -> Router {
    let (router, _) = documented_routes().split_for_parts();
    router.with_state(state)
}

/// The routes and the document they make: each route is registered from its handler's
/// annotation, with the operation the annotation documents.
pub(crate) fn documented_routes() -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(conversations))
        .routes(routes!(conversation))
        .routes(routes!(mark_read))
        .routes(routes!(call))
        .routes(routes!(activity))
        .routes(routes!(live_stream))
        .routes(routes!(send_message))
        .routes(routes!(sent_message))
        .routes(routes!(audit))
        .routes(routes!(crate::contacts::list, crate::contacts::create))
        .routes(routes!(crate::contacts::get, crate::contacts::update))
        .routes(routes!(crate::contacts::merge))
        .routes(routes!(crate::contacts::push))
        .routes(routes!(crate::contacts::suggestions))
        .routes(routes!(crate::contacts::approve))
        .routes(routes!(crate::contacts::reject))
        .routes(routes!(media_list))
        .routes(routes!(retry_failed_media))
        .routes(routes!(retry_one_media))
        .routes(routes!(media_bytes))
        .routes(routes!(stats))
        .routes(routes!(jobs))
        .routes(routes!(health_checks))
        .routes(routes!(alerts))
        .routes(routes!(acknowledge))
        .routes(routes!(openapi_json))
        .routes(routes!(crate::campaign_api::create_list))
        .routes(routes!(crate::campaign_api::get_list))
        .routes(routes!(crate::campaign_api::members))
        .routes(routes!(crate::campaign_api::preview_import))
        .routes(routes!(crate::campaign_api::import))
        .routes(routes!(crate::campaign_api::validate))
        .routes(routes!(
            crate::campaign_api::create_campaign,
            crate::campaign_api::list_campaigns
        ))
        .routes(routes!(
            crate::campaign_api::get_campaign,
            crate::campaign_api::update_campaign
        ))
        .routes(routes!(crate::campaign_api::preview_campaign))
        .routes(routes!(crate::campaign_api::activation_summary))
        .routes(routes!(crate::campaign_api::activate))
        .routes(routes!(crate::campaign_api::pause))
        .routes(routes!(crate::campaign_api::resume))
        .routes(routes!(crate::campaign_api::cancel))
        .routes(routes!(crate::campaign_api::recipients))
        .routes(routes!(crate::campaign_api::review))
        .routes(routes!(crate::campaign_api::report))
        .routes(routes!(crate::thread_api::list))
        .routes(routes!(crate::thread_api::get))
        .routes(routes!(crate::thread_api::resolve))
        .routes(routes!(crate::thread_api::reopen))
        .routes(routes!(crate::insight_api::list))
        .routes(routes!(crate::insight_api::get))
        .routes(routes!(crate::insight_api::approve))
        .routes(routes!(crate::insight_api::reject))
        .routes(routes!(crate::insight_api::patch))
        .routes(routes!(crate::insight_api::failures))
        .fallback(no_such_route);
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi()).nest("/api/v1", v1)
}

/// The message of the fallback's `404`, which tells an unknown route from a handler's `404`
/// for a missing id.
pub const NO_SUCH_ROUTE: &str = "no such route";

async fn no_such_route() -> (StatusCode, Json<ErrorBody>) {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: NO_SUCH_ROUTE.to_owned(),
        }),
    )
}

const DEFAULT_LIMIT: i64 = 50;
/// The longest search (a name or a number is far shorter; SQLite refuses a `LIKE` pattern of
/// about 50,000 bytes).
const MAX_SEARCH: usize = 200;

/// A listing's search text `q`: trimmed, none when blank, refused when over [`MAX_SEARCH`]
/// characters.
pub(crate) fn search_text(q: Option<&str>) -> Result<Option<&str>, Error> {
    let search = q.map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > MAX_SEARCH) {
        return Err(Error::BadRequest(format!(
            "q must be at most {MAX_SEARCH} characters"
        )));
    }
    Ok(search)
}
const MAX_LIMIT: i64 = 200;

/// Paging parameters shared by the listings. As an extractor it also knows the listing (the
/// request's path) it pages, so a cursor another listing returned (another route, or the same
/// route for another conversation or list) is refused rather than read as a position in this
/// one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Where the previous page ended: its `next_cursor`, as returned (opaque).
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// The listing's tag: the first 8 hex digits of the SHA-256 of its path.
    #[serde(skip)]
    #[param(ignore)]
    listing: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Paging {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Error> {
        use sha2::Digest;
        let Query(mut paging) = Query::<Paging>::from_request_parts(parts, state).await?;
        let digest = sha2::Sha256::digest(parts.uri.path().as_bytes());
        paging.listing = digest[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(paging)
    }
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
        let (listing, position) = text.split_once('|').ok_or_else(invalid)?;
        if listing != self.listing {
            return Err(Error::BadRequest(
                "cursor is one another listing returned".to_owned(),
            ));
        }
        let (number, rest) = position.split_once('|').ok_or_else(invalid)?;
        Ok(Some((
            number.parse().map_err(|_| invalid())?,
            rest.to_owned(),
        )))
    }

    /// The cursor of the position `(number, text)` in this listing.
    pub(crate) fn cursor(&self, number: i64, text: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{number}|{text}", self.listing))
    }
}

/// Declares the page type of a listing: `{"items": [...], "next_cursor": ...}`.
macro_rules! page_of {
    ($(#[$meta:meta])* $name:ident of $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            /// This page's items.
            pub items: Vec<$item>,
            /// The `cursor` of the next page; `null` on the last page.
            #[schema(required = true)]
            pub next_cursor: Option<String>,
        }

        impl $name {
            /// A page of `items`, with the cursor `next` makes when the page is full.
            pub(crate) fn new(
                items: Vec<$item>,
                limit: i64,
                next: impl FnOnce() -> String,
            ) -> Self {
                let next_cursor = (items.len() as i64 >= limit).then(next);
                Self { items, next_cursor }
            }
        }
    };
}
pub(crate) use page_of;

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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this type (`message.received`, `call.completed`, ...).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
}

/// A delivery of the raw log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventView {
    /// The body as JSON; `null` when it is not JSON (then see `body_base64`).
    #[schema(value_type = Option<Object>, required = true)]
    pub body: Option<Value>,
    /// The exact bytes received, base64, when they are not JSON; otherwise `null`.
    #[schema(required = true)]
    pub body_base64: Option<String>,
    /// The deduplication key.
    pub delivery_key: String,
    /// OpenPhone's event id.
    #[schema(required = true)]
    pub event_id: Option<String>,
    /// The delivery's id in the log, increasing in arrival order.
    pub id: i64,
    /// Why the body is not a known event, when it is not.
    #[schema(required = true)]
    pub parse_error: Option<String>,
    /// When it was received.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The signature scheme: `legacy` or `standard`, or `import` for rows of the historical import.
    pub scheme: String,
    /// When OpenPhone signed it.
    #[schema(format = DateTime)]
    pub signed_at: String,
    /// The event type (`message.received`, ...).
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub event_type: Option<String>,
}

impl From<StoredDelivery> for EventView {
    fn from(delivery: StoredDelivery) -> Self {
        let body = serde_json::from_slice::<Value>(&delivery.body).ok();
        Self {
            body_base64: body
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&delivery.body)),
            body,
            delivery_key: delivery.delivery_key,
            event_id: delivery.event_id,
            id: delivery.id,
            parse_error: delivery.parse_error,
            received_at: rfc3339(delivery.received_at),
            scheme: delivery.scheme,
            signed_at: rfc3339(delivery.signed_at),
            event_type: delivery.event_type,
        }
    }
}

page_of! {
    /// A page of the raw log, newest first.
    EventPage of EventView
}

/// The raw log
///
/// Deliveries as received, newest first, optionally of one event type: the body as JSON, or
/// base64 when it is not JSON.
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "list_events",
    tag = "operations",
    params(Paging, EventFilter),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = EventPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn events(
    caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<EventFilter>,
) -> Result<Json<EventPage>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let before = paging.position()?.map(|(id, _)| id);
    let rows = state
        .store
        .events(filter.event_type.as_deref(), before, limit)
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows.into_iter().map(EventView::from).collect();
    Ok(Json(EventPage::new(items, limit, || {
        paging.cursor(last.unwrap_or_default(), "")
    })))
}

/// The latest message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LastMessageView {
    /// When it was created.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// OpenPhone's message id.
    pub id: String,
    /// Its text.
    #[schema(required = true)]
    pub text: Option<String>,
}

/// A conversation: our number and the other participants.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationView {
    /// Its id: the key `<phone number id>|<participants>` in URL-safe base64 without padding,
    /// stable across replays and replicas.
    pub id: String,
    /// The latest message or call.
    #[schema(format = DateTime, required = true)]
    pub last_activity_at: Option<String>,
    /// The latest message.
    #[schema(required = true)]
    pub last_message: Option<LastMessageView>,
    /// OpenPhone's conversation id, when known.
    #[schema(required = true)]
    pub openphone_id: Option<String>,
    /// The other participants' numbers (E.164), sorted.
    #[schema(value_type = Vec<String>)]
    pub participants: Value,
    /// Our phone number's id.
    pub phone_number_id: String,
    /// Inbound messages after the read mark.
    pub unread_count: i64,
}

impl From<&ConversationSummary> for ConversationView {
    fn from(conversation: &ConversationSummary) -> Self {
        Self {
            id: conversation_id(&conversation.key),
            last_activity_at: from_ms(conversation.last_activity_ms),
            last_message: conversation
                .last_message
                .as_ref()
                .map(|last| LastMessageView {
                    created_at: last.created_ms.and_then(from_ms),
                    direction: last.direction.clone(),
                    id: last.id.clone(),
                    text: last.text.clone(),
                }),
            openphone_id: conversation.openphone_id.clone(),
            participants: json_text(&conversation.participants),
            phone_number_id: conversation.phone_number_id.clone(),
            unread_count: conversation.unread,
        }
    }
}

page_of! {
    /// A page of conversations, by latest activity.
    ConversationPage of ConversationView
}

/// Search of `GET /api/v1/conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationSearch {
    /// A part of a participant's number as stored (E.164), or of the first name, last name or
    /// company of a contact whose number takes part (ASCII letters in any case, other letters
    /// as written; `%` and `_` are literal). At most 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Conversations holding nothing but outgoing campaign messages: hidden by default,
    /// `include` to show them too, `only` for them alone.
    #[param(inline)]
    pub campaign: Option<CampaignMessages>,
}

/// Conversations by latest activity
///
/// Each with its last message and unread count (inbound messages after the read mark).
#[utoipa::path(
    get,
    path = "/conversations",
    operation_id = "list_conversations",
    tag = "conversations",
    params(Paging, ConversationSearch),
    responses(
        (status = 200, description = "A page of conversations, latest activity first", body = ConversationPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn conversations(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(search): Query<ConversationSearch>,
) -> Result<Json<ConversationPage>, Error> {
    let limit = paging.limit()?;
    let search_campaigns = search.campaign.unwrap_or_default();
    let search = search_text(search.q.as_deref())?;
    let rows = state
        .store
        .conversations(search, search_campaigns, paging.position()?, limit)
        .await?;
    let last = rows
        .last()
        .map(|row| (row.last_activity_ms, row.key.clone()));
    let items = rows.iter().map(ConversationView::from).collect();
    Ok(Json(ConversationPage::new(items, limit, || {
        let (ms, key) = last.unwrap_or_default();
        paging.cursor(ms, &key)
    })))
}

/// A file attached to a message, as OpenPhone reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediaAttachment {
    /// Its content type, when reported.
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub content_type: Option<String>,
    /// Where OpenPhone serves it.
    pub url: String,
}

/// Kind of a timeline entry that is a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// A message.
    Message,
}

/// Kind of a timeline entry that is a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    /// A call.
    Call,
}

/// A message in a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimelineMessage {
    /// The campaign that sent it (`null` for other messages).
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// When it was created; `null` while not reported.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// OpenPhone's message id.
    pub id: String,
    /// Always `message`.
    pub kind: MessageKind,
    /// Its attachments, as reported (`[]` when none).
    #[schema(value_type = Vec<MediaAttachment>)]
    pub media: Value,
    /// The highest-ranked status reported (`received`, `delivered`, ...).
    #[schema(required = true)]
    pub status: Option<String>,
    /// The copies of its attachments, in the message's order; present only when it has
    /// attachments.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<MediaView>, required = false)]
    pub stored_media: Option<Vec<MediaView>>,
    /// Its text.
    #[schema(required = true)]
    pub text: Option<String>,
}

/// A call in a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimelineCall {
    /// When it was created; `null` while not reported.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// Its length in seconds.
    #[schema(required = true)]
    pub duration_seconds: Option<i64>,
    /// OpenPhone's call id (`GET /api/v1/calls/{id}`).
    pub id: String,
    /// Always `call`.
    pub kind: CallKind,
    /// `missed`, `answered`, `ai-handled`, `forwarded`, `failed` or `in-progress`.
    #[schema(required = true)]
    pub outcome: Option<String>,
    /// The highest-ranked status reported.
    #[schema(required = true)]
    pub status: Option<String>,
    /// The copies of its recordings (in the call's order) and voicemail.
    pub stored_media: Vec<MediaView>,
}

/// An entry of a conversation's timeline: a message or a call (told apart by `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimelineEntryView {
    /// A message.
    Message(TimelineMessage),
    /// A call.
    Call(TimelineCall),
}

/// A conversation with a page of its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationDetail {
    /// Its id (see [`ConversationView::id`]).
    pub id: String,
    /// The latest message or call.
    #[schema(format = DateTime, required = true)]
    pub last_activity_at: Option<String>,
    /// The latest message.
    #[schema(required = true)]
    pub last_message: Option<LastMessageView>,
    /// The `cursor` of the timeline's next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// OpenPhone's conversation id, when known.
    #[schema(required = true)]
    pub openphone_id: Option<String>,
    /// The other participants' numbers (E.164), sorted.
    #[schema(value_type = Vec<String>)]
    pub participants: Value,
    /// Our phone number's id.
    pub phone_number_id: String,
    /// A page of messages and calls, newest first.
    pub timeline: Vec<TimelineEntryView>,
    /// Inbound messages after the read mark.
    pub unread_count: i64,
}

/// The conversation id of a path: the key, base64url-encoded.
const CONVERSATION_ID: &str = "The conversation's id";

/// A conversation and its timeline
///
/// The conversation and a page of its timeline: messages (text, status, media, their stored
/// copies) and calls (status, outcome, duration, stored recordings and voicemail), newest
/// first.
#[utoipa::path(
    get,
    path = "/conversations/{id}",
    operation_id = "get_conversation",
    tag = "conversations",
    params(("id" = String, Path, description = CONVERSATION_ID), Paging),
    responses(
        (status = 200, description = "The conversation and a page of its timeline", body = ConversationDetail),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No conversation has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn conversation(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Json<ConversationDetail>, Error> {
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
        .then(|| entries.last().map(|e| paging.cursor(e.created_ms, &e.id)))
        .flatten();
    let mut timeline = Vec::with_capacity(entries.len());
    for entry in &entries {
        let stored_media =
            if entry.kind == "call" || entry.media.as_deref().is_some_and(|media| media != "[]") {
                let stored = state.store.media_of(&entry.id).await?;
                Some(stored.iter().map(MediaView::from).collect())
            } else {
                None
            };
        timeline.push(timeline_entry(entry, stored_media));
    }
    let view = ConversationView::from(&summary);
    Ok(Json(ConversationDetail {
        id: view.id,
        last_activity_at: view.last_activity_at,
        last_message: view.last_message,
        next_cursor,
        openphone_id: view.openphone_id,
        participants: view.participants,
        phone_number_id: view.phone_number_id,
        timeline,
        unread_count: view.unread_count,
    }))
}

fn timeline_entry(
    entry: &TimelineEntry,
    stored_media: Option<Vec<MediaView>>,
) -> TimelineEntryView {
    let created_at = (entry.created_ms > 0)
        .then(|| from_ms(entry.created_ms))
        .flatten();
    if entry.kind == "message" {
        TimelineEntryView::Message(TimelineMessage {
            campaign_id: entry.campaign_id.clone(),
            created_at,
            direction: entry.direction.clone(),
            id: entry.id.clone(),
            kind: MessageKind::Message,
            media: entry
                .media
                .as_deref()
                .map_or(Value::Array(Vec::new()), json_text),
            status: entry.status.clone(),
            stored_media,
            text: entry.body.clone(),
        })
    } else {
        TimelineEntryView::Call(TimelineCall {
            created_at,
            direction: entry.direction.clone(),
            duration_seconds: entry.duration_s,
            id: entry.id.clone(),
            kind: CallKind::Call,
            outcome: entry.outcome.clone(),
            status: entry.status.clone(),
            stored_media: stored_media.unwrap_or_default(),
        })
    }
}

/// A recording of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecordingView {
    /// Where OpenPhone serves it.
    pub url: String,
}

/// The voicemail of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VoicemailView {
    /// Where OpenPhone serves it, when reported.
    #[schema(required = true)]
    pub url: Option<String>,
}

/// A line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TranscriptLine {
    /// What was said.
    pub content: String,
    /// When the line ends, seconds from the start of the call.
    #[schema(required = true)]
    pub end: Option<f64>,
    /// Who spoke: a phone number or OpenPhone's identifier of the speaker.
    #[schema(required = true)]
    pub speaker: Option<String>,
    /// When the line starts, seconds from the start of the call.
    #[schema(required = true)]
    pub start: Option<f64>,
    /// The OpenPhone user who spoke, when it was one.
    #[schema(required = true)]
    pub user_id: Option<String>,
}

/// A call with its recordings, voicemail, transcript and summary.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallView {
    /// When it was answered.
    #[schema(format = DateTime, required = true)]
    pub answered_at: Option<String>,
    /// When it ended.
    #[schema(format = DateTime, required = true)]
    pub completed_at: Option<String>,
    /// Its conversation's id.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// When it was created.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// Its length in seconds.
    #[schema(required = true)]
    pub duration_seconds: Option<i64>,
    /// OpenPhone's call id.
    pub id: String,
    /// The copies of its recordings and voicemail, with their status.
    pub media: Vec<MediaView>,
    /// The summary's suggested next steps; `null` without a summary.
    #[schema(value_type = Option<Vec<String>>, required = true)]
    pub next_steps: Option<Value>,
    /// `missed`, `answered`, `ai-handled`, `forwarded`, `failed` or `in-progress`.
    #[schema(required = true)]
    pub outcome: Option<String>,
    /// Its recordings, sorted by URL.
    pub recordings: Vec<RecordingView>,
    /// The highest-ranked status reported.
    #[schema(required = true)]
    pub status: Option<String>,
    /// The summary's points; `null` without a summary.
    #[schema(value_type = Option<Vec<String>>, required = true)]
    pub summary: Option<Value>,
    /// The transcript's dialogue; `null` without a transcript.
    #[schema(value_type = Option<Vec<TranscriptLine>>, required = true)]
    pub transcript: Option<Value>,
    /// The voicemail, when one was left.
    #[schema(required = true)]
    pub voicemail: Option<VoicemailView>,
}

/// A call
///
/// A call with its times, outcome, recordings, voicemail, transcript (dialogue), summary and
/// next steps, and the copies of its media.
#[utoipa::path(
    get,
    path = "/calls/{id}",
    operation_id = "get_call",
    tag = "conversations",
    params(("id" = String, Path, description = "OpenPhone's call id")),
    responses(
        (status = 200, description = "The call", body = CallView),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No call has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn call(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CallView>, Error> {
    let call = state
        .store
        .call(&id)
        .await?
        .ok_or(Error::NotFound("call"))?;
    let (created, answered, completed) = call.times_ms;
    let media = state.store.media_of(&id).await?;
    Ok(Json(CallView {
        answered_at: answered.and_then(from_ms),
        completed_at: completed.and_then(from_ms),
        conversation_id: call.conversation_key.as_deref().map(conversation_id),
        created_at: created.and_then(from_ms),
        direction: call.direction,
        duration_seconds: call.duration_s,
        id,
        media: media.iter().map(MediaView::from).collect(),
        next_steps: call.next_steps.as_deref().map(json_text),
        outcome: call.outcome,
        recordings: call
            .recordings
            .into_iter()
            .map(|url| RecordingView { url })
            .collect(),
        status: call.status,
        summary: call.summary.as_deref().map(json_text),
        transcript: call.transcript.as_deref().map(json_text),
        voicemail: call.voicemail.0.then_some(VoicemailView {
            url: call.voicemail.1,
        }),
    }))
}

/// State of a media job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Not downloaded yet (or to be retried).
    Pending,
    /// Copied into the blob store.
    Stored,
    /// Downloading gave up.
    Failed,
}

/// What a media file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A message attachment.
    Message,
    /// A call recording.
    Recording,
    /// A voicemail.
    Voicemail,
}

/// A media job: a file to copy into the blob store, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediaView {
    /// Download attempts so far.
    pub attempts: i64,
    /// The content type: the server's, else the event's.
    #[schema(required = true)]
    pub content_type: Option<String>,
    /// Where the stored copy is served (`/api/v1/media/{id}`), once stored.
    #[schema(required = true)]
    pub href: Option<String>,
    /// Its id.
    pub id: i64,
    /// What it belongs to.
    #[schema(value_type = MediaKind)]
    pub kind: String,
    /// The last failure.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// The message or call id.
    pub owner_id: String,
    /// The content's SHA-256 (hex), once stored.
    #[schema(required = true)]
    pub sha256: Option<String>,
    /// Size in bytes, once stored.
    #[schema(required = true)]
    pub size_bytes: Option<i64>,
    /// How far it got.
    #[schema(value_type = MediaStatus)]
    pub status: String,
    /// Where OpenPhone serves it.
    pub url: String,
}

impl From<&MediaRecord> for MediaView {
    fn from(media: &MediaRecord) -> Self {
        Self {
            attempts: media.attempts,
            content_type: media.content_type.clone(),
            href: (media.status == "stored").then(|| format!("/api/v1/media/{}", media.id)),
            id: media.id,
            kind: media.owner_kind.clone(),
            last_error: media.last_error.clone(),
            owner_id: media.owner_id.clone(),
            sha256: media.sha256.clone(),
            size_bytes: media.size_bytes,
            status: media.status.clone(),
            url: media.url.clone(),
        }
    }
}

page_of! {
    /// A page of media jobs, newest first.
    MediaPage of MediaView
}

/// Filter of `GET /api/v1/media`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaFilter {
    /// Only jobs in this state.
    #[param(inline, value_type = Option<MediaStatus>)]
    pub status: Option<String>,
}

/// Media jobs
///
/// Media jobs newest first, optionally by status, with attempts and the last error: failed
/// downloads are found here.
#[utoipa::path(
    get,
    path = "/media",
    operation_id = "list_media",
    tag = "media",
    params(Paging, MediaFilter),
    responses(
        (status = 200, description = "A page of media jobs, newest first", body = MediaPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn media_list(
    caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<MediaFilter>,
) -> Result<Json<MediaPage>, Error> {
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
    let items = rows.iter().map(MediaView::from).collect();
    Ok(Json(MediaPage::new(items, limit, || {
        paging.cursor(last.unwrap_or_default(), "")
    })))
}

/// The stored copy of a media file
///
/// The bytes, with their content type (`application/octet-stream` when unknown), an `ETag`
/// (their SHA-256) and a long cache lifetime. `404` while the file is not stored.
#[utoipa::path(
    get,
    path = "/media/{id}",
    operation_id = "get_media_bytes",
    tag = "media",
    params(("id" = i64, Path, description = "The media job's id")),
    responses(
        (
            status = 200,
            description = "The stored bytes, with the content type recorded for the file (`application/octet-stream` when none was, or when the recorded one is not a valid header value)",
            content_type = "*/*",
            body = inline(crate::openapi::Binary),
            headers(
                ("ETag" = String, description = "The SHA-256 of the bytes, quoted"),
                ("Cache-Control" = String, description = "`private, max-age=31536000, immutable`"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Content-Security-Policy" = String, description = "`sandbox`: an HTML or SVG attachment opened in a browser runs no script"),
                ("Accept-Ranges" = String, description = "`bytes`"),
            ),
        ),
        (
            status = 206,
            description = "The part of the bytes one `Range` asked for (`bytes=first-last`, `bytes=first-` or `bytes=-suffix`), unless `If-Range` names another ETag",
            content_type = "*/*",
            body = inline(crate::openapi::Binary),
            headers(("Content-Range" = String, description = "`bytes first-last/size`")),
        ),
        (status = 304, description = "`If-None-Match` names the bytes' ETag"),
        (status = 416, description = "The `Range` starts past the end of the file (`Content-Range: bytes */size`)", body = ErrorBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No media job has this id, or its file is not stored: the message says whether its download is pending or failed", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn media_bytes(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Error> {
    let media = state
        .store
        .media(id)
        .await?
        .ok_or(Error::NotFound("media"))?;
    let Some(sha256) = media.sha256.filter(|_| media.status == "stored") else {
        return Err(Error::NotFound(if media.status == "failed" {
            "stored copy of this media (its download failed: see its status)"
        } else {
            "stored copy of this media (its download is pending: see its status)"
        }));
    };
    let etag = format!("\"{sha256}\"");
    let cache = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|_| Error::NotFound("media"))?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        ),
    ];
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| matches!(tag.trim(), "*") || tag.trim().trim_start_matches("W/") == etag);
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let missing = |error: std::io::Error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            tracing::error!(id, %error, "stored media is missing from the blob store");
            Error::NotFound("stored copy of this media")
        } else {
            Error::Blobs(error)
        }
    };
    let size = state.blobs.size(&sha256).await.map_err(missing)?;
    // One range (what players ask for to seek in a recording); none, several, or one for an
    // older copy (`If-Range`) is the whole file.
    let current = headers
        .get(header::IF_RANGE)
        .is_none_or(|tag| tag.to_str().is_ok_and(|tag| tag == etag));
    let range = match headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    {
        Some(range) if current => byte_range(range, size),
        _ => None,
    };
    let (status, part) = match range {
        None => (StatusCode::OK, 0..size),
        Some(Ok(part)) => (StatusCode::PARTIAL_CONTENT, part),
        Some(Err(())) => {
            let mut response = Error::RangeNotSatisfiable(size).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let mut ranged = axum::http::HeaderMap::new();
    ranged.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    ranged.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(part.end - part.start),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", part.start, part.end - 1))
    {
        ranged.insert(header::CONTENT_RANGE, value);
    }
    let bytes =
        axum::body::Body::from_stream(state.blobs.stream(&sha256, part).await.map_err(missing)?);
    // The type comes from the file's server or, without one, from the event: either may hold
    // what no header can.
    let content_type = media
        .content_type
        .and_then(|declared| HeaderValue::from_str(&declared).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        status,
        cache,
        ranged,
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The byte range a `Range` header asks of a file of `size` bytes (RFC 9110, 14.1.2): `None`
/// when it is not one range of bytes (then the whole file is served), `Err` when the file
/// holds none of it (416).
fn byte_range(header: &str, size: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // The last `last` bytes.
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 {
            return Some(Err(()));
        }
        size.saturating_sub(suffix)..size
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size
        } else {
            let last: u64 = last.parse().ok()?;
            if last < start {
                return None;
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    if range.start >= size {
        return Some(Err(()));
    }
    Some(Ok(range))
}

fn now_ms(state: &ApiState) -> i64 {
    unix_ms((state.clock)())
}

/// What a retry of failed media did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediaRetry {
    /// How many failed jobs are pending again.
    pub retried: u64,
}

/// Retries every failed media download
///
/// After an outage of the storage media come from: every failed job is pending again, due
/// now, its attempts counted from zero (up to 8, with backoff, as new jobs). Audited.
#[utoipa::path(
    post,
    path = "/media/retry",
    operation_id = "retry_failed_media",
    tag = "media",
    responses(
        (status = 200, description = "How many failed jobs are pending again", body = MediaRetry),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn retry_failed_media(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<MediaRetry>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = now_ms(&state);
    let retried = state.store.retry_failed_media(None, now_ms).await?;
    state
        .store
        .audit(
            &caller.token_id,
            "media.retry",
            None,
            "done",
            Some(format!("{retried} failed job(s)")),
            now_ms,
        )
        .await?;
    Ok(Json(MediaRetry { retried }))
}

/// Retries one failed media download
///
/// The job is pending again, due now, its attempts counted from zero. Audited.
#[utoipa::path(
    post,
    path = "/media/{id}/retry",
    operation_id = "retry_media",
    tag = "media",
    params(("id" = i64, Path, description = "The media job's id")),
    responses(
        (status = 200, description = "The job, pending again", body = MediaView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No media job has this id", body = ErrorBody),
        (status = 409, description = "The job has not failed", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn retry_one_media(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<MediaView>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = now_ms(&state);
    let job = state
        .store
        .media(id)
        .await?
        .ok_or(Error::NotFound("media"))?;
    if state.store.retry_failed_media(Some(id), now_ms).await? == 0 {
        return Err(Error::Conflict(format!(
            "media job {id} is {}: only a failed job is retried",
            job.status
        )));
    }
    state
        .store
        .audit(
            &caller.token_id,
            "media.retry",
            Some(&id.to_string()),
            "done",
            None,
            now_ms,
        )
        .await?;
    let job = state
        .store
        .media(id)
        .await?
        .ok_or(Error::NotFound("media"))?;
    Ok(Json(MediaView::from(&job)))
}

/// Where `GET /api/v1/stream` starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this delivery id (as `Last-Event-ID` does, which wins when both are given);
    /// default: only what comes next.
    pub after: Option<i64>,
}

/// The header `GET /api/v1/stream` reads (documentation only: it is read from the headers).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct StreamHeaders {
    /// Resume after this delivery id (EventSource sends it when it reconnects); wins over
    /// `after`.
    #[param(rename = "Last-Event-ID", value_type = i64, required = false)]
    pub last_event_id: Option<i64>,
}

/// Live updates (server-sent events)
///
/// One event per committed delivery, from every replica: the SSE `id` is the delivery's id in
/// the raw log, `event` its type, and `data` a `LiveUpdate` JSON object (see the schema of that
/// name): the messages and calls it touched and the unread counts of their conversations.
/// Reconnecting with `Last-Event-ID` resumes after the last event received. Shutdown closes
/// the stream; clients reconnect and resume.
#[utoipa::path(
    get,
    path = "/stream",
    operation_id = "stream_live_updates",
    tag = "live",
    params(StreamQuery, StreamHeaders),
    responses(
        (status = 200, description = "A stream of server-sent events whose `data` is a `LiveUpdate`", content_type = "text/event-stream", body = String),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn live_stream(
    caller: Caller,
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
        None => crate::event_log::EventLog::latest_id(&state.store).await?,
    };
    let events = crate::live::stream(&state.live, state.store.clone(), caller.token_id, after);
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// Direction filter of the activity feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityDirection {
    /// Only customer responses and incoming calls.
    Incoming,
}

/// Kind filter of the activity feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKindFilter {
    /// Messages.
    Message,
    /// Calls (missed ones and those with a voicemail included).
    Call,
    /// Missed calls, those that left a voicemail included.
    Missed,
    /// Calls that left a voicemail.
    Voicemail,
}

/// Filters of `GET /api/v1/activity`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// `incoming`: only customer responses and incoming calls.
    #[param(inline, value_type = Option<ActivityDirection>)]
    pub direction: Option<String>,
    /// Only one kind of activity.
    #[param(inline, value_type = Option<ActivityKindFilter>)]
    pub kind: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Only conversations with this participant (E.164).
    pub phone: Option<String>,
    /// Only conversations with one of this contact's numbers (a contact id).
    pub contact: Option<String>,
    /// Outgoing campaign messages: hidden by default, `include` to show them with the rest,
    /// `only` for nothing else.
    #[param(inline)]
    pub campaign: Option<CampaignMessages>,
}

/// Kind of an activity entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A message.
    Message,
    /// A call that is neither missed nor left a voicemail.
    Call,
    /// A missed call without a voicemail.
    MissedCall,
    /// A call that left a voicemail.
    Voicemail,
}

/// An entry of the activity feed: a message or a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActivityItem {
    /// The campaign that sent the message (`null` for anything else).
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// Its conversation's id.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// When it was created.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// `incoming` or `outgoing`.
    #[schema(required = true)]
    pub direction: Option<String>,
    /// A call's length in seconds (`null` for messages).
    #[schema(required = true)]
    pub duration_seconds: Option<i64>,
    /// The message or call id.
    pub id: String,
    /// What it is.
    pub kind: ActivityKind,
    /// A call's outcome (`null` for messages).
    #[schema(required = true)]
    pub outcome: Option<String>,
    /// The highest-ranked status reported.
    #[schema(required = true)]
    pub status: Option<String>,
    /// A message's text (`null` for calls).
    #[schema(required = true)]
    pub text: Option<String>,
}

page_of! {
    /// A page of the activity feed, newest first.
    ActivityPage of ActivityItem
}

fn parse_ms(name: &str, text: &str) -> Result<i64, Error> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(unix_ms)
        .map_err(|_| Error::BadRequest(format!("{name} must be an RFC 3339 time")))
}

/// The activity feed
///
/// Messages, calls, missed calls and voicemails across conversations, newest first, with
/// filters. Invalid values answer `400` naming the parameter.
#[utoipa::path(
    get,
    path = "/activity",
    operation_id = "list_activity",
    tag = "conversations",
    params(Paging, ActivityQuery),
    responses(
        (status = 200, description = "A page of activity, newest first", body = ActivityPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn activity(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(query): Query<ActivityQuery>,
) -> Result<Json<ActivityPage>, Error> {
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
        campaigns: query.campaign.unwrap_or_default(),
    };
    let rows = state
        .store
        .activity(&filter, paging.position()?, limit)
        .await?;
    let last = rows.last().map(|row| (row.created_ms, row.id.clone()));
    let items = rows
        .iter()
        .map(|entry| ActivityItem {
            conversation_id: entry.conversation_key.as_deref().map(conversation_id),
            created_at: from_ms(entry.created_ms),
            direction: entry.direction.clone(),
            duration_seconds: entry.duration_s,
            id: entry.id.clone(),
            kind: match (entry.kind.as_str(), entry.outcome.as_deref()) {
                ("call", _) if entry.has_voicemail == 1 => ActivityKind::Voicemail,
                ("call", Some("missed")) => ActivityKind::MissedCall,
                ("call", _) => ActivityKind::Call,
                _ => ActivityKind::Message,
            },
            outcome: entry.outcome.clone(),
            status: entry.status.clone(),
            text: entry.body.clone(),
            campaign_id: entry.campaign_id.clone(),
        })
        .collect();
    Ok(Json(ActivityPage::new(items, limit, || {
        let (ms, id) = last.unwrap_or_default();
        paging.cursor(ms, &id)
    })))
}

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The recipient, E.164.
    #[schema(example = "+15555550123")]
    pub to: String,
    /// The text, 1 to 1,600 characters, not blank.
    #[schema(min_length = 1, max_length = 1600)]
    pub text: String,
    /// Our sending number (phone number id or E.164); default `DEFAULT_SENDER`.
    pub from: Option<String>,
}

/// State of a send through this API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SendStatus {
    /// Recorded, not answered yet (a send in progress, or interrupted).
    Sending,
    /// OpenPhone accepted it.
    Sent,
    /// OpenPhone refused it (`error` says why).
    Failed,
    /// Unknown whether the request went out; never retried automatically.
    Ambiguous,
}

/// A send through this API, with the delivery status webhooks reported since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SentMessage {
    /// When it was requested.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// The message's latest status from webhooks (`delivered`, ...), once reported.
    #[schema(required = true)]
    pub delivery_status: Option<String>,
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// Our sending number (phone number id or E.164).
    pub from: String,
    /// Our id (`GET /api/v1/messages/{id}`).
    pub id: i64,
    /// The caller's `Idempotency-Key`.
    pub idempotency_key: String,
    /// OpenPhone's message id, once sent.
    #[schema(required = true)]
    pub message_id: Option<String>,
    /// How the send ended.
    #[schema(value_type = SendStatus)]
    pub status: String,
    /// The text.
    pub text: String,
    /// The recipient, E.164.
    pub to: String,
}

async fn sent_message_view(
    state: &ApiState,
    record: &OutgoingMessage,
) -> Result<SentMessage, Error> {
    let delivery = match &record.message_id {
        Some(id) => state.store.message(id).await?.and_then(|m| m.status),
        None => None,
    };
    Ok(SentMessage {
        created_at: from_ms(record.created_ms),
        delivery_status: delivery,
        error: record.error.clone(),
        from: record.sender.clone(),
        id: record.id,
        idempotency_key: record.idempotency_key.clone(),
        message_id: record.message_id.clone(),
        status: record.status.clone(),
        text: record.text.clone(),
        to: record.to_phone.clone(),
    })
}

/// Sends a text, once per idempotency key
///
/// Records the send, then sends it once per `Idempotency-Key` of the token: `201` with the
/// outcome (`sent`, `failed`, `ambiguous`), `200` with the earlier record when the key was
/// used before (nothing is sent again). Every send, refusal included, is audited.
#[utoipa::path(
    post,
    path = "/messages",
    operation_id = "send_message",
    tag = "messages",
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 200, description = "1 to 200 characters, chosen by the caller: a retry with the same key returns the first send's record instead of sending again")),
    request_body(content = SendBody, description = "The recipient, the text and optionally our sending number; unknown fields are refused"),
    responses(
        (status = 201, description = "Recorded and sent once; `status` says how it ended", body = SentMessage),
        (status = 200, description = "This token used the key before: the earlier record (nothing is sent)", body = SentMessage),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 409, description = "The number opted out of messages (STOP); it must opt back in (START) first", body = ErrorBody),
        (
            status = 429,
            description = "Past the token's messages per minute",
            body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds to wait")),
        ),
        (status = 500, description = "Sending is not configured (`OPENPHONE_API_KEY`)", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn send_message(
    caller: Caller,
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    body: Result<crate::extract::Json<SendBody>, Error>,
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
    let crate::extract::Json(body) = body?;
    let to = openphone_types::E164::parse(&body.to).map_err(|_| {
        Error::BadRequest("to must be an E.164 number such as +15555550123".to_owned())
    })?;
    if body.text.trim().is_empty() || body.text.chars().count() > 1600 {
        return Err(Error::BadRequest(
            "text must be 1 to 1,600 characters and not blank".to_owned(),
        ));
    }
    // A retry of a key already used is answered from its record and not counted.
    let retry = state
        .store
        .outgoing_by_key(&caller.token_id, &key)
        .await?
        .is_some();
    if !retry && let Err(wait) = state.limiter.take(&caller.token_id, &key) {
        state
            .store
            .audit(
                &caller.token_id,
                "message.send",
                Some(to.as_str()),
                "refused",
                Some("rate limited".to_owned()),
                now_ms(&state),
            )
            .await?;
        return Err(Error::RateLimited(wait));
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
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(sent_message_view(&state, &record).await?)).into_response())
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

/// A send
///
/// A send through this API, with the delivery status webhooks reported since.
#[utoipa::path(
    get,
    path = "/messages/{id}",
    operation_id = "get_sent_message",
    tag = "messages",
    params(("id" = i64, Path, description = "The send's id (`id` of the send's answer)")),
    responses(
        (status = 200, description = "The send", body = SentMessage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No send through this API has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn sent_message(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<SentMessage>, Error> {
    let record = state
        .store
        .outgoing(id)
        .await?
        .ok_or(Error::NotFound("message sent through this API"))?;
    Ok(Json(sent_message_view(&state, &record).await?))
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditItem {
    /// What was done (`message.send`, `conversation.read`, `contact.merge`, ...).
    pub action: String,
    /// When.
    #[schema(format = DateTime, required = true)]
    pub at: Option<String>,
    /// More about it.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// Its id.
    pub id: i64,
    /// How it ended.
    pub outcome: String,
    /// To whom or what.
    #[schema(required = true)]
    pub target: Option<String>,
    /// The id of the token that did it.
    pub token_id: String,
}

page_of! {
    /// A page of the audit log, newest first.
    AuditPage of AuditItem
}

/// The audit log
///
/// Who sent what to whom and how it ended, and the other audited actions, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "list_audit",
    tag = "messages",
    params(Paging),
    responses(
        (status = 200, description = "A page of the audit log, newest first", body = AuditPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("admin"))),
)]
async fn audit(
    caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
) -> Result<Json<AuditPage>, Error> {
    caller.require(Role::Admin)?;
    let limit = paging.limit()?;
    let rows = state
        .store
        .audit_log(paging.position()?.map(|(id, _)| id), limit)
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows
        .iter()
        .map(|entry| AuditItem {
            action: entry.action.clone(),
            at: from_ms(entry.at_ms),
            detail: entry.detail.clone(),
            id: entry.id,
            outcome: entry.outcome.clone(),
            target: entry.target.clone(),
            token_id: entry.token_id.clone(),
        })
        .collect();
    Ok(Json(AuditPage::new(items, limit, || {
        paging.cursor(last.unwrap_or_default(), "")
    })))
}

/// Body of `POST /api/v1/conversations/{id}/read`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReadBody {
    /// Also mark it read in OpenPhone.
    #[serde(default)]
    #[schema(default = false)]
    pub openphone: bool,
}

/// What `POST /api/v1/conversations/{id}/read` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReadResult {
    /// The conversation's id.
    pub id: String,
    /// Whether it was marked read in OpenPhone too.
    pub marked_in_openphone: bool,
    /// Its unread count now.
    pub unread_count: i64,
}

/// Marks a conversation read
///
/// Moves the read mark to the latest inbound message (unread count 0); with
/// `{"openphone": true}`, marks it read in OpenPhone too. Audited.
#[utoipa::path(
    post,
    path = "/conversations/{id}/read",
    operation_id = "mark_conversation_read",
    tag = "conversations",
    params(("id" = String, Path, description = CONVERSATION_ID)),
    request_body(
        content = ref("#/components/schemas/ReadBody"),
        content_type = "application/json",
        description = "Optional (no body: `{\"openphone\": false}`); `{\"openphone\": true}` also marks it read in OpenPhone",
    ),
    responses(
        (status = 200, description = "Marked read", body = ReadResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No conversation has this id", body = ErrorBody),
        (status = 409, description = "Marking read in OpenPhone needs `OPENPHONE_API_KEY` and OpenPhone's conversation id, or OpenPhone refused", body = ErrorBody),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn mark_read(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Option<crate::extract::Json<ReadBody>>,
) -> Result<Json<ReadResult>, Error> {
    let key = conversation_key(&id).ok_or(Error::NotFound("conversation"))?;
    // OpenPhone first, when asked: a request it cannot carry out changes nothing here either.
    let mut marked_in_openphone = false;
    if body.is_some_and(|crate::extract::Json(body)| body.openphone) {
        let conversation = state
            .store
            .conversation(&key)
            .await?
            .ok_or(Error::NotFound("conversation"))?;
        let (Some(client), Some(openphone_id)) =
            (&state.messenger.client, &conversation.openphone_id)
        else {
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
        .mark_read(&key)
        .await?
        .ok_or(Error::NotFound("conversation"))?;
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
    Ok(Json(ReadResult {
        id,
        marked_in_openphone,
        unread_count: unread,
    }))
}

/// Filter of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// Only alerts not acknowledged yet (the banner).
    #[serde(default)]
    #[param(default = false)]
    pub open: bool,
}

/// An alert: something that went wrong, grouped while open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AlertView {
    /// When it was acknowledged.
    #[schema(format = DateTime, required = true)]
    pub acknowledged_at: Option<String>,
    /// The id of the token that acknowledged it.
    #[schema(required = true)]
    pub acknowledged_by: Option<String>,
    /// How many times it was raised while open.
    pub count: i64,
    /// More, for people.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// When it was first raised.
    #[schema(format = DateTime, required = true)]
    pub first_at: Option<String>,
    /// Its id.
    pub id: i64,
    /// What happened (`media_download_failed`, `job_failed`, ...).
    pub kind: String,
    /// When it was last raised.
    #[schema(format = DateTime, required = true)]
    pub last_at: Option<String>,
    /// One line.
    pub summary: String,
}

page_of! {
    /// A page of alerts, by last occurrence, newest first.
    AlertPage of AlertView
}

/// Alerts
///
/// Alerts newest first (by last occurrence), with their count and acknowledgement;
/// `open=true` for the banner any role shows.
#[utoipa::path(
    get,
    path = "/alerts",
    operation_id = "list_alerts",
    tag = "operations",
    params(Paging, AlertFilter),
    responses(
        (status = 200, description = "A page of alerts, newest first", body = AlertPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn alerts(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<AlertPage>, Error> {
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
        .map(|alert| AlertView {
            acknowledged_at: alert.acknowledged_ms.and_then(from_ms),
            acknowledged_by: alert.acknowledged_by.clone(),
            count: alert.count,
            detail: alert.detail.clone(),
            first_at: from_ms(alert.first_ms),
            id: alert.id,
            kind: alert.kind.clone(),
            last_at: from_ms(alert.last_ms),
            summary: alert.summary.clone(),
        })
        .collect();
    Ok(Json(AlertPage::new(items, limit, || {
        let (ms, id) = last.unwrap_or_default();
        paging.cursor(ms, &id.to_string())
    })))
}

/// What `POST /api/v1/alerts/{id}/ack` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AckResult {
    /// Always `true`.
    pub acknowledged: bool,
    /// The alert's id.
    pub id: i64,
}

/// Acknowledges an alert
///
/// Acknowledges an open alert; its next occurrence opens a new one.
#[utoipa::path(
    post,
    path = "/alerts/{id}/ack",
    operation_id = "acknowledge_alert",
    tag = "operations",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "Acknowledged", body = AckResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No open alert has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn acknowledge(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<AckResult>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = unix_ms((state.clock)());
    if !state
        .store
        .acknowledge_alert(id, &caller.token_id, now_ms)
        .await?
    {
        return Err(Error::NotFound("open alert"));
    }
    Ok(Json(AckResult {
        acknowledged: true,
        id,
    }))
}

/// State of an end-to-end health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckStatus {
    /// Sent; its webhook has not arrived yet.
    Pending,
    /// Its webhook was ingested.
    Passed,
    /// Sending failed, or its webhook did not arrive in time.
    Failed,
}

/// An end-to-end health check: a message sent to ourselves, and its webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthCheckView {
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// From send to webhook ingested, in milliseconds, once received.
    #[schema(required = true)]
    pub latency_ms: Option<i64>,
    /// The sent message's id.
    #[schema(required = true)]
    pub message_id: Option<String>,
    /// When its webhook was ingested.
    #[schema(format = DateTime, required = true)]
    pub received_at: Option<String>,
    /// When the message was sent.
    #[schema(format = DateTime, required = true)]
    pub sent_at: Option<String>,
    /// How it went.
    #[schema(value_type = HealthCheckStatus)]
    pub status: String,
    /// Its token (in the message's text).
    pub token: String,
}

page_of! {
    /// A page of health checks, newest first.
    HealthCheckPage of HealthCheckView
}

/// End-to-end health checks
///
/// Health checks newest first, with their webhook latency.
#[utoipa::path(
    get,
    path = "/health-checks",
    operation_id = "list_health_checks",
    tag = "operations",
    params(Paging),
    responses(
        (status = 200, description = "A page of health checks, newest first", body = HealthCheckPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn health_checks(
    caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
) -> Result<Json<HealthCheckPage>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let rows = state
        .store
        .health_checks(paging.position()?.map(|(ms, _)| ms), limit)
        .await?;
    let last = rows.last().map(|row| row.sent_ms);
    let items = rows
        .iter()
        .map(|check| HealthCheckView {
            error: check.error.clone(),
            latency_ms: check.received_ms.map(|received| received - check.sent_ms),
            message_id: check.message_id.clone(),
            received_at: check.received_ms.and_then(from_ms),
            sent_at: from_ms(check.sent_ms),
            status: check.status.clone(),
            token: check.token.clone(),
        })
        .collect();
    Ok(Json(HealthCheckPage::new(items, limit, || {
        paging.cursor(last.unwrap_or_default(), "")
    })))
}

/// Filter of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only runs of this job (`reconcile`, `health-check`, `self-check`, ...).
    pub job: Option<String>,
}

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobOutcome {
    /// Still running: its replica records a heartbeat (`heartbeat_at`) every 30 seconds
    /// (a quarter of the lease).
    Running,
    /// It finished.
    Succeeded,
    /// It ended early at a safe point, because its server was stopping; its slot may run
    /// again.
    Stopped,
    /// It failed (`error` says why).
    Failed,
    /// Its replica stopped beating while it ran (it died, or lost the database):
    /// `finished_at` is its last heartbeat. Its slot may run again.
    Abandoned,
}

/// A run of a scheduled job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobRunView {
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// What the job reported.
    #[schema(value_type = Option<Object>, required = true)]
    pub figures: Option<Value>,
    /// When it ended.
    #[schema(format = DateTime, required = true)]
    pub finished_at: Option<String>,
    /// When its replica last reported it alive (its start, until the first heartbeat).
    #[schema(format = DateTime, required = true)]
    pub heartbeat_at: Option<String>,
    /// The job's name.
    pub job: String,
    /// How it ended.
    #[schema(value_type = JobOutcome)]
    pub outcome: String,
    /// Which replica ran it.
    pub replica: String,
    /// The start of the slot it ran for.
    #[schema(format = DateTime, required = true)]
    pub slot: Option<String>,
    /// When it started.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
}

page_of! {
    /// A page of job runs, newest first.
    JobRunPage of JobRunView
}

/// Scheduled job runs
///
/// Runs of the scheduled jobs newest first: slot, replica, start, end, outcome, figures, error.
#[utoipa::path(
    get,
    path = "/jobs",
    operation_id = "list_jobs",
    tag = "operations",
    params(Paging, JobFilter),
    responses(
        (status = 200, description = "A page of job runs, newest first", body = JobRunPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn jobs(
    caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<JobFilter>,
) -> Result<Json<JobRunPage>, Error> {
    caller.require(Role::Operator)?;
    let limit = paging.limit()?;
    let runs = state
        .store
        .job_runs(filter.job.as_deref(), paging.position()?, limit)
        .await?;
    let last = runs.last().map(|run| (run.started_ms, run.job.clone()));
    let items = runs
        .iter()
        .map(|run| JobRunView {
            error: run.error.clone(),
            figures: run.figures.as_deref().map(json_text),
            finished_at: run.finished_ms.and_then(from_ms),
            heartbeat_at: run.heartbeat_ms.and_then(from_ms),
            job: run.job.clone(),
            outcome: run.outcome.clone(),
            replica: run.replica.clone(),
            slot: from_ms(run.slot_ms),
            started_at: from_ms(run.started_ms),
        })
        .collect();
    Ok(Json(JobRunPage::new(items, limit, || {
        let (ms, job) = last.unwrap_or_default();
        paging.cursor(ms, &job)
    })))
}

/// Counts of everything stored
///
/// Events, conversations, messages, calls, media stored, failed and pending, and numbers
/// currently opted out.
#[utoipa::path(
    get,
    path = "/stats",
    operation_id = "get_stats",
    tag = "operations",
    responses(
        (status = 200, description = "The counts", body = Stats),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
async fn stats(caller: Caller, State(state): State<ApiState>) -> Result<Json<Stats>, Error> {
    caller.require(Role::Operator)?;
    Ok(Json(state.store.stats().await?))
}

/// This document
///
/// The OpenAPI document of the management API, generated from the code; a copy is kept at
/// `docs/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
async fn openapi_json(_caller: Caller) -> Result<Response, Error> {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = match DOCUMENT.get() {
        Some(text) => text,
        None => {
            let text = crate::openapi::document()
                .to_pretty_json()
                .map_err(|error| Error::Command(format!("OpenAPI document: {error}")))?;
            DOCUMENT.get_or_init(|| text)
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Serialized with sorted keys, as the `json!` maps these types replaced were: so the
    /// answers are byte-for-byte what they were.
    pub(crate) fn assert_sorted<T: Serialize>(value: &T) {
        let text = serde_json::to_string(value).unwrap_or_default();
        let sorted = serde_json::to_value(value)
            .and_then(|value| serde_json::to_string(&value))
            .unwrap_or_default();
        assert!(!text.is_empty());
        assert_eq!(text, sorted, "fields out of alphabetical order");
    }

    fn media() -> MediaView {
        MediaView::from(&MediaRecord {
            id: 7,
            owner_kind: "recording".into(),
            owner_id: "CA1".into(),
            url: "https://example.com/a.mp3".into(),
            status: "stored".into(),
            attempts: 1,
            sha256: Some("ab".into()),
            content_type: Some("audio/mpeg".into()),
            size_bytes: Some(3),
            last_error: None,
        })
    }

    #[test]
    fn responses_serialize_with_sorted_keys() {
        let conversation = ConversationView::from(&ConversationSummary {
            key: "PN1|+15550001111".into(),
            phone_number_id: "PN1".into(),
            participants: "[\"+15550001111\"]".into(),
            openphone_id: Some("CN1".into()),
            last_activity_ms: 1_000,
            unread: 2,
            last_message: Some(crate::reads::LastMessage {
                id: "AC1".into(),
                direction: Some("incoming".into()),
                text: Some("hi".into()),
                created_ms: Some(1_000),
            }),
        });
        assert_sorted(&ConversationPage::new(
            vec![conversation.clone()],
            1,
            || "next".into(),
        ));
        let message = TimelineEntry {
            campaign_id: Some("cp_1".to_owned()),
            kind: "message".into(),
            id: "AC1".into(),
            created_ms: 1_000,
            direction: Some("incoming".into()),
            status: Some("received".into()),
            body: Some("hi".into()),
            media: Some("[{\"type\":\"image/png\",\"url\":\"https://example.com/a.png\"}]".into()),
            outcome: None,
            duration_s: None,
        };
        let call = TimelineEntry {
            kind: "call".into(),
            id: "CA1".into(),
            outcome: Some("answered".into()),
            duration_s: Some(25),
            body: None,
            media: None,
            ..message.clone()
        };
        assert_sorted(&ConversationDetail {
            id: conversation.id,
            last_activity_at: conversation.last_activity_at,
            last_message: conversation.last_message,
            next_cursor: None,
            openphone_id: conversation.openphone_id,
            participants: conversation.participants,
            phone_number_id: conversation.phone_number_id,
            timeline: vec![
                timeline_entry(&message, Some(vec![media()])),
                timeline_entry(&call, Some(vec![media()])),
            ],
            unread_count: conversation.unread_count,
        });
        assert_sorted(&EventView::from(StoredDelivery {
            id: 1,
            delivery_key: "k".into(),
            scheme: "standard".into(),
            event_id: Some("EV1".into()),
            event_type: Some("message.received".into()),
            parse_error: None,
            signed_at: OffsetDateTime::UNIX_EPOCH,
            received_at: OffsetDateTime::UNIX_EPOCH,
            body: b"{\"b\":1,\"a\":2}".to_vec(),
        }));
        assert_sorted(&CallView {
            answered_at: None,
            completed_at: None,
            conversation_id: None,
            created_at: None,
            direction: None,
            duration_seconds: Some(1),
            id: "CA1".into(),
            media: vec![media()],
            next_steps: Some(json_text("[\"call back\"]")),
            outcome: None,
            recordings: vec![RecordingView { url: "u".into() }],
            status: None,
            summary: None,
            transcript: Some(json_text(
                "[{\"speaker\":\"+1\",\"user_id\":null,\"content\":\"hi\",\"start\":0.0,\"end\":1.0}]",
            )),
            voicemail: Some(VoicemailView { url: None }),
        });
        assert_sorted(&ActivityItem {
            campaign_id: Some("cp_1".to_owned()),
            conversation_id: None,
            created_at: None,
            direction: None,
            duration_seconds: None,
            id: "AC1".into(),
            kind: ActivityKind::MissedCall,
            outcome: None,
            status: None,
            text: None,
        });
        assert_sorted(&SentMessage {
            created_at: None,
            delivery_status: None,
            error: None,
            from: "PN1".into(),
            id: 1,
            idempotency_key: "k".into(),
            message_id: None,
            status: "sent".into(),
            text: "t".into(),
            to: "+15550001111".into(),
        });
        assert_sorted(&AuditItem {
            action: "a".into(),
            at: None,
            detail: None,
            id: 1,
            outcome: "done".into(),
            target: None,
            token_id: "t".into(),
        });
        assert_sorted(&ReadResult {
            id: "x".into(),
            marked_in_openphone: false,
            unread_count: 0,
        });
        assert_sorted(&AlertView {
            acknowledged_at: None,
            acknowledged_by: None,
            count: 1,
            detail: None,
            first_at: None,
            id: 1,
            kind: "job_failed".into(),
            last_at: None,
            summary: "s".into(),
        });
        assert_sorted(&AckResult {
            acknowledged: true,
            id: 1,
        });
        assert_sorted(&HealthCheckView {
            error: None,
            latency_ms: Some(5),
            message_id: None,
            received_at: None,
            sent_at: None,
            status: "passed".into(),
            token: "t".into(),
        });
        assert_sorted(&JobRunView {
            error: None,
            figures: Some(json_text("{\"b\":1,\"a\":2}")),
            finished_at: None,
            heartbeat_at: None,
            job: "j".into(),
            outcome: "succeeded".into(),
            replica: "r".into(),
            slot: None,
            started_at: None,
        });
        assert_sorted(&Stats::default());
        assert_sorted(&ErrorBody { error: "e".into() });
    }

    #[test]
    fn timeline_entries_keep_their_shape() {
        let message = TimelineEntry {
            campaign_id: Some("cp_1".to_owned()),
            kind: "message".into(),
            id: "AC1".into(),
            created_ms: 0,
            direction: None,
            status: None,
            body: None,
            media: None,
            outcome: None,
            duration_s: None,
        };
        assert_eq!(
            serde_json::to_value(timeline_entry(&message, None)).ok(),
            Some(
                serde_json::json!({"kind": "message", "id": "AC1", "campaign_id": "cp_1", "created_at": null,
                "direction": null, "status": null, "text": null, "media": []})
            )
        );
        let call = TimelineEntry {
            kind: "call".into(),
            ..message
        };
        assert_eq!(
            serde_json::to_value(timeline_entry(&call, Some(Vec::new()))).ok(),
            Some(
                serde_json::json!({"kind": "call", "id": "AC1", "created_at": null,
                "direction": null, "status": null, "outcome": null, "duration_seconds": null,
                "stored_media": []})
            )
        );
    }
}
