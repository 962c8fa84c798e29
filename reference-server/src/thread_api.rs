//! The thread routes under `/api/v1/threads`: list, get, resolve now, reopen. Any role may
//! use them (support staff resolve and reopen threads).

use axum::Json;
use axum::extract::State;

use crate::extract::{Path, Query};
use serde::{Deserialize, Serialize};
use thread_resolver::{Entry, Snapshot, Thread, ThreadFilter, ThreadId, ThreadState, ThreadStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::Error;
use crate::ErrorBody;
use crate::api::{ApiState, Paging, page_of};
use crate::auth::Caller;
use crate::openapi::{BadRequest, Unauthorized, Unavailable};

const THREAD_ID: &str = "The thread's id";

page_of! {
    /// A page of threads, newest first.
    ThreadPage of Thread
}

/// Filters of `GET /api/v1/threads`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// Only open or only resolved threads.
    pub state: Option<ThreadState>,
    /// Only threads of conversations with this number (E.164), or of our number (its
    /// phone number id).
    pub number: Option<String>,
    /// Only threads active at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only threads active before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

fn time_param(name: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, Error> {
    text.map(|text| {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Error::BadRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// Threads
///
/// Conversation threads, newest first: open or resolved, by number, by date of last activity.
#[utoipa::path(
    get,
    path = "/threads",
    operation_id = "list_threads",
    tag = "threads",
    params(Paging, ThreadQuery),
    responses(
        (status = 200, description = "A page of threads", body = ThreadPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn list(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(query): Query<ThreadQuery>,
) -> Result<Json<ThreadPage>, Error> {
    let limit = paging.limit()?;
    let before = paging.position()?.map(|(id, _)| ThreadId(id));
    let filter = ThreadFilter {
        state: query.state,
        key_contains: query
            .number
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        since: time_param("since", query.since.as_deref())?,
        until: time_param("until", query.until.as_deref())?,
    };
    let items = state
        .threads
        .store()
        .threads(&filter, before, limit as usize)
        .await?;
    let last = items.last().map_or(0, |t| t.id.0);
    Ok(Json(ThreadPage::new(items, limit, || {
        paging.cursor(last, "")
    })))
}

/// A thread with its entries, and its frozen snapshot once resolved.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadDetail {
    /// The thread.
    pub thread: Thread,
    /// Its entries, oldest first.
    pub entries: Vec<Entry>,
    /// The snapshot frozen at its resolution (`null` while open).
    pub snapshot: Option<Snapshot>,
}

/// A thread
///
/// Its entries (messages, calls, voicemails) and, once resolved, its frozen snapshot.
#[utoipa::path(
    get,
    path = "/threads/{id}",
    operation_id = "get_thread",
    tag = "threads",
    params(("id" = i64, Path, description = THREAD_ID)),
    responses(
        (status = 200, description = "The thread", body = ThreadDetail),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No thread has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn get(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<ThreadDetail>, Error> {
    let store = state.threads.store();
    let (thread, _) = store.thread(ThreadId(id)).await?;
    Ok(Json(ThreadDetail {
        entries: store.entries(ThreadId(id)).await?,
        snapshot: store.snapshot(ThreadId(id)).await?,
        thread,
    }))
}

/// Resolves a thread now
///
/// Freezes it into the resolved log whatever its idle time; the next message of the
/// conversation opens a new thread.
#[utoipa::path(
    post,
    path = "/threads/{id}/resolve",
    operation_id = "resolve_thread",
    tag = "threads",
    params(("id" = i64, Path, description = THREAD_ID)),
    responses(
        (status = 200, description = "Resolved", body = Thread),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No thread has this id", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn resolve(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Thread>, Error> {
    let thread = state
        .threads
        .resolve_now(ThreadId(id), &caller.token_id, (state.clock)())
        .await?;
    Ok(Json(thread))
}

/// Reopens a resolved thread
///
/// A new open thread with its entries; the frozen snapshot stays as it was. Refused (409)
/// while a newer thread of the conversation is open.
#[utoipa::path(
    post,
    path = "/threads/{id}/reopen",
    operation_id = "reopen_thread",
    tag = "threads",
    params(("id" = i64, Path, description = THREAD_ID)),
    responses(
        (status = 200, description = "The new open thread", body = Thread),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No thread has this id", body = ErrorBody),
        (status = 409, description = "Not resolved, or a newer thread is open", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn reopen(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Thread>, Error> {
    Ok(Json(
        state.threads.reopen(ThreadId(id), (state.clock)()).await?,
    ))
}
