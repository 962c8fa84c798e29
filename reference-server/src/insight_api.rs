//! The review queue of knowledge export under `/api/v1`: insights (list, get, approve,
//! reject, the Markdown patch of an approved one) and failed export batches. Reads need the
//! `support` role; decisions `operator`.

use axum::Json;
use axum::extract::State;

use crate::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use knowledge_export::{FailedBatch, Insight, InsightStore, Review};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::Error;
use crate::ErrorBody;
use crate::api::{ApiState, Paging, page_of};
use crate::auth::{Caller, Role};
use crate::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};

const INSIGHT_ID: &str = "The insight's id";

page_of! {
    /// A page of insights, newest first.
    InsightPage of Insight
}

/// Filter of `GET /api/v1/insights`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InsightQuery {
    /// Only insights in this review state.
    pub review: Option<Review>,
}

/// Insights
///
/// What models found in resolved threads, newest first: source, summary, action, category,
/// target SOP, confidence, the threads, and the review.
#[utoipa::path(
    get,
    path = "/insights",
    operation_id = "list_insights",
    tag = "knowledge",
    params(Paging, InsightQuery),
    responses(
        (status = 200, description = "A page of insights", body = InsightPage),
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
    Query(query): Query<InsightQuery>,
) -> Result<Json<InsightPage>, Error> {
    let limit = paging.limit()?;
    let before = paging.position()?.map(|(id, _)| id);
    let items = state
        .store
        .insights(query.review, before, limit as usize)
        .await?;
    let last = items.last().map_or(0, |i| i.id);
    Ok(Json(InsightPage::new(items, limit, || {
        paging.cursor(last, "")
    })))
}

/// An insight
#[utoipa::path(
    get,
    path = "/insights/{id}",
    operation_id = "get_insight",
    tag = "knowledge",
    params(("id" = i64, Path, description = INSIGHT_ID)),
    responses(
        (status = 200, description = "The insight", body = Insight),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No insight has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn get(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Insight>, Error> {
    Ok(Json(state.store.insight(id).await?))
}

/// Body of an approval or rejection.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why, for the record.
    pub note: Option<String>,
}

async fn decide(
    state: &ApiState,
    caller: &Caller,
    id: i64,
    review: Review,
    body: Result<Option<crate::extract::Json<Decision>>, Error>,
) -> Result<Json<Insight>, Error> {
    caller.require(Role::Operator)?;
    let note = body?
        .and_then(|crate::extract::Json(d)| d.note)
        .filter(|n| !n.trim().is_empty());
    Ok(Json(
        state
            .store
            .decide(
                id,
                review,
                &caller.token_id,
                note.as_deref(),
                (state.clock)(),
            )
            .await?,
    ))
}

/// Approves an insight
///
/// It can then be exported as a Markdown patch suggestion against its target SOP.
#[utoipa::path(
    post,
    path = "/insights/{id}/approve",
    operation_id = "approve_insight",
    tag = "knowledge",
    params(("id" = i64, Path, description = INSIGHT_ID)),
    request_body(content = Decision, description = "An optional note"),
    responses(
        (status = 200, description = "Approved", body = Insight),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No insight has this id", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn approve(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    body: Result<Option<crate::extract::Json<Decision>>, Error>,
) -> Result<Json<Insight>, Error> {
    decide(&state, &caller, id, Review::Approved, body).await
}

/// Rejects an insight
#[utoipa::path(
    post,
    path = "/insights/{id}/reject",
    operation_id = "reject_insight",
    tag = "knowledge",
    params(("id" = i64, Path, description = INSIGHT_ID)),
    request_body(content = Decision, description = "An optional note"),
    responses(
        (status = 200, description = "Rejected", body = Insight),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No insight has this id", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn reject(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    body: Result<Option<crate::extract::Json<Decision>>, Error>,
) -> Result<Json<Insight>, Error> {
    decide(&state, &caller, id, Review::Rejected, body).await
}

/// An approved insight as a Markdown patch
///
/// A unified-diff-style suggestion adding a section to the SOP it targets (or a new file in
/// its category), for a person to apply.
#[utoipa::path(
    get,
    path = "/insights/{id}/patch",
    operation_id = "insight_patch",
    tag = "knowledge",
    params(("id" = i64, Path, description = INSIGHT_ID)),
    responses(
        (status = 200, description = "The patch", body = String, content_type = "text/markdown"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No insight has this id", body = ErrorBody),
        (status = 409, description = "Not approved", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn patch(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let insight = state.store.insight(id).await?;
    if insight.review != Review::Approved {
        return Err(Error::Conflict(format!(
            "insight {id} is {}: only approved insights become patches",
            insight.review.as_str()
        )));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        insight.patch_suggestion(),
    )
        .into_response())
}

/// Failed export batches
///
/// Newest first (at most 100): their threads stay unexported and are tried again at the next
/// export.
#[utoipa::path(
    get,
    path = "/export-failures",
    operation_id = "list_export_failures",
    tag = "knowledge",
    responses(
        (status = 200, description = "Failed batches", body = Vec<FailedBatch>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn failures(
    _caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<Vec<FailedBatch>>, Error> {
    Ok(Json(state.store.failures(100).await?))
}
