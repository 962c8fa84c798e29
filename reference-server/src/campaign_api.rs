//! The campaign routes under `/api/v1`: audiences (`/lists`) and campaigns (`/campaigns`).
//! See `docs/campaigns.md`.
//!
//! Reads need the `support` role; every change needs `operator`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;

use crate::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sms_campaigns::audience::{
    CsvOptions, ImportPreview, ImportSummary, ValidationSummary, import_csv, preview, validate_list,
};
use sms_campaigns::{
    ActivationSummary, Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ContactId,
    ContactList, ListId, Member, MemberStatus, Recipient, RecipientState, Rendered, Report,
    SkipReason,
};
use utoipa::{IntoParams, ToSchema};

use crate::Error;
use crate::ErrorBody;
use crate::api::{ApiState, Paging, page_of};
use crate::auth::{Caller, Role};
use crate::messaging::SendLog;
use crate::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};

const LIST_ID: &str = "The list's id (`ls_...`)";
const CAMPAIGN_ID: &str = "The campaign's id (`cp_...`)";
/// Rows a CSV preview shows.
const PREVIEW_ROWS: usize = 20;

/// Body of `POST /api/v1/lists`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewList {
    /// The list's name.
    pub name: String,
}

/// Creates a list
///
/// An empty static list; fill it with `POST /lists/{id}/import`.
#[utoipa::path(
    post,
    path = "/lists",
    operation_id = "create_list",
    tag = "audiences",
    request_body(content = NewList, description = "The list's name"),
    responses(
        (status = 201, description = "Created", body = ContactList),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn create_list(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<crate::extract::Json<NewList>, Error>,
) -> Result<Response, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() {
        return Err(Error::BadRequest("name must not be blank".to_owned()));
    }
    let list = state.store.create_list(name, (state.clock)()).await?;
    Ok((StatusCode::CREATED, Json(list)).into_response())
}

/// A list
///
/// Its name and how many members it has (whatever their validation status).
#[utoipa::path(
    get,
    path = "/lists/{id}",
    operation_id = "get_list",
    tag = "audiences",
    params(("id" = String, Path, description = LIST_ID)),
    responses(
        (status = 200, description = "The list", body = ContactList),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn get_list(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ContactList>, Error> {
    Ok(Json(state.store.list(&ListId(id)).await?))
}

page_of! {
    /// A page of list members, in list order.
    MemberPage of Member
}

/// Filter of `GET /api/v1/lists/{id}/members`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberFilter {
    /// Only members with this validation status.
    pub status: Option<MemberStatus>,
}

/// A list's members
///
/// In list order (the order campaigns send in), with their validation status and line type.
#[utoipa::path(
    get,
    path = "/lists/{id}/members",
    operation_id = "list_members",
    tag = "audiences",
    params(("id" = String, Path, description = LIST_ID), Paging, MemberFilter),
    responses(
        (status = 200, description = "A page of members", body = MemberPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn members(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    paging: Paging,
    Query(filter): Query<MemberFilter>,
) -> Result<Json<MemberPage>, Error> {
    let limit = paging.limit()?;
    let after = paging
        .position()?
        .map(|(position, _)| position.max(0) as u64);
    let items = state
        .store
        .members(&ListId(id), filter.status, after, limit as usize)
        .await?;
    let last = items.last().map_or(0, |m| m.position as i64);
    Ok(Json(MemberPage::new(items, limit, || {
        paging.cursor(last, "")
    })))
}

/// How to read an uploaded CSV file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CsvQuery {
    /// Region of numbers written without a country code (ISO code, default the server's
    /// `CAMPAIGN_DEFAULT_REGION`).
    pub region: Option<String>,
    /// Explicit column mapping, a JSON object from header (as written in the file) to
    /// `first_name`, `last_name`, `full_name`, `phone`, `email`, `address`, `company`,
    /// `ignore`, or an attribute name; it overrides detection for those headers.
    pub mapping: Option<String>,
}

impl CsvQuery {
    fn options(&self, default_region: &str) -> Result<CsvOptions, Error> {
        let mapping = match &self.mapping {
            Some(text) => serde_json::from_str(text).map_err(|error| {
                Error::BadRequest(format!(
                    "mapping must be a JSON object of header to field: {error}"
                ))
            })?,
            None => Default::default(),
        };
        Ok(CsvOptions {
            region: Some(
                self.region
                    .clone()
                    .unwrap_or_else(|| default_region.to_owned()),
            ),
            mapping,
        })
    }
}

async fn upload(state: &ApiState, body: Body) -> Result<bytes::Bytes, Error> {
    let max = state.campaigns.settings.max_upload_bytes;
    let collected = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                Error::TooLarge(format!("the CSV upload is over its limit of {max} bytes"))
            } else {
                Error::BadRequest(format!("the CSV upload could not be read: {error}"))
            }
        })?;
    Ok(collected.to_bytes())
}

/// Previews a CSV import
///
/// Reads the header and the first 20 rows of the CSV file in the body: where each column
/// goes, and each row's contact or why it would be rejected. Nothing is written.
#[utoipa::path(
    post,
    path = "/lists/{id}/import/preview",
    operation_id = "preview_list_import",
    tag = "audiences",
    params(("id" = String, Path, description = LIST_ID), CsvQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file, with a header row"),
    responses(
        (status = 200, description = "The mapping and the first rows", body = ImportPreview),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn preview_import(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<CsvQuery>,
    body: Body,
) -> Result<Json<ImportPreview>, Error> {
    caller.require(Role::Operator)?;
    state.store.list(&ListId(id)).await?;
    let options = query.options(&state.campaigns.settings.region)?;
    let bytes = upload(&state, body).await?;
    Ok(Json(preview(&bytes[..], &options, PREVIEW_ROWS)?))
}

/// Imports a CSV file into a list
///
/// Every row of the CSV file in the body, streamed: a new number creates a contact, a known
/// number adds the existing contact. Answers the summary: rows read, contacts created,
/// existing contacts added, duplicates within the file, and each rejected row with its
/// reason. Members join unvalidated: validate the list before a campaign uses it.
#[utoipa::path(
    post,
    path = "/lists/{id}/import",
    operation_id = "import_list",
    tag = "audiences",
    params(("id" = String, Path, description = LIST_ID), CsvQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file, with a header row"),
    responses(
        (status = 200, description = "What the import did", body = ImportSummary),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn import(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<CsvQuery>,
    body: Body,
) -> Result<Json<ImportSummary>, Error> {
    caller.require(Role::Operator)?;
    let list = ListId(id);
    state.store.list(&list).await?;
    let options = query.options(&state.campaigns.settings.region)?;
    let bytes = upload(&state, body).await?;
    let summary = import_csv(&state.store, &list, &bytes[..], &options, (state.clock)(), |so_far| {
        tracing::info!(list = %list.0, rows = so_far.rows, created = so_far.created, rejected = so_far.rejected, "importing");
    })
    .await?;
    tracing::info!(list = %list.0, ?summary, "import finished");
    Ok(Json(summary))
}

/// Validates a list's numbers
///
/// Looks up every unvalidated member (NumVerify when configured, else a format check), each
/// number once and cached: valid mobiles and valid numbers of unknown line type are kept,
/// landlines and invalid numbers excluded with the reason. Lookups that fail leave their
/// members unvalidated; run it again.
#[utoipa::path(
    post,
    path = "/lists/{id}/validate",
    operation_id = "validate_list",
    tag = "audiences",
    params(("id" = String, Path, description = LIST_ID)),
    responses(
        (status = 200, description = "What validation found", body = ValidationSummary),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn validate(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ValidationSummary>, Error> {
    caller.require(Role::Operator)?;
    let list = ListId(id);
    let summary = validate_list(
        &state.store,
        &list,
        &state.campaigns.settings.validator,
        (state.clock)(),
        |so_far| tracing::info!(list = %list.0, validated = so_far.validated, "validating"),
    )
    .await?;
    Ok(Json(summary))
}

/// Creates a campaign
///
/// A draft: messages A and optional B (tokens like `{{first_name|there}}`), the list, our
/// sending number and the schedule. Every field is checked; errors name the field.
#[utoipa::path(
    post,
    path = "/campaigns",
    operation_id = "create_campaign",
    tag = "campaigns",
    request_body(content = CampaignSpec, description = "The campaign"),
    responses(
        (status = 201, description = "The draft", body = Campaign),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No list has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn create_campaign(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<crate::extract::Json<CampaignSpec>, Error>,
) -> Result<Response, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(spec) = body?;
    let campaign = state.campaigns.engine.create(&spec).await?;
    Ok((StatusCode::CREATED, Json(campaign)).into_response())
}

page_of! {
    /// A page of campaigns, newest first.
    CampaignPage of Campaign
}

/// Filter of `GET /api/v1/campaigns`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignFilter {
    /// Only campaigns in this state.
    pub state: Option<CampaignState>,
}

/// Campaigns
///
/// Newest first, optionally in one state.
#[utoipa::path(
    get,
    path = "/campaigns",
    operation_id = "list_campaigns",
    tag = "campaigns",
    params(Paging, CampaignFilter),
    responses(
        (status = 200, description = "A page of campaigns", body = CampaignPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn list_campaigns(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<CampaignFilter>,
) -> Result<Json<CampaignPage>, Error> {
    let limit = paging.limit()?;
    let skip = paging
        .position()?
        .map_or(0, |(offset, _)| offset.max(0) as usize);
    let items: Vec<Campaign> = state
        .store
        .campaigns(filter.state)
        .await?
        .into_iter()
        .skip(skip)
        .take(limit as usize)
        .collect();
    let next = (skip + items.len()) as i64;
    Ok(Json(CampaignPage::new(items, limit, || {
        paging.cursor(next, "")
    })))
}

/// A campaign
///
/// Its spec, state (and why, when paused), recipients and schedule position.
#[utoipa::path(
    get,
    path = "/campaigns/{id}",
    operation_id = "get_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "The campaign", body = Campaign),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn get_campaign(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, Error> {
    Ok(Json(state.store.campaign(&CampaignId(id)).await?))
}

/// Replaces a draft
///
/// The whole spec; only drafts can be edited (409 otherwise).
#[utoipa::path(
    put,
    path = "/campaigns/{id}",
    operation_id = "update_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    request_body(content = CampaignSpec, description = "The new spec"),
    responses(
        (status = 200, description = "The draft", body = Campaign),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No campaign (or list) has this id", body = ErrorBody),
        (status = 409, description = "The campaign is no longer a draft", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn update_campaign(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<crate::extract::Json<CampaignSpec>, Error>,
) -> Result<Json<Campaign>, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(spec) = body?;
    Ok(Json(
        state
            .campaigns
            .engine
            .update(&CampaignId(id), &spec)
            .await?,
    ))
}

/// Body of `POST /api/v1/campaigns/{id}/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The contact to render for.
    pub contact_id: String,
    /// A spec to render instead of the stored one (live preview while editing).
    pub spec: Option<CampaignSpec>,
}

/// Renders a campaign for a contact
///
/// Each variant as the contact would get it, with the business name and opt-out wording,
/// its length and SMS segments (GSM-7 or UCS-2), or the field it lacks.
#[utoipa::path(
    post,
    path = "/campaigns/{id}/preview",
    operation_id = "preview_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    request_body(content = PreviewRequest, description = "The contact, and optionally an unsaved spec"),
    responses(
        (status = 200, description = "One rendering per variant", body = Vec<Rendered>),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign or contact has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn preview_campaign(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<crate::extract::Json<PreviewRequest>, Error>,
) -> Result<Json<Vec<Rendered>>, Error> {
    let crate::extract::Json(body) = body?;
    let spec = match body.spec {
        Some(spec) => spec,
        None => state.store.campaign(&CampaignId(id)).await?.spec,
    };
    Ok(Json(
        state
            .campaigns
            .engine
            .preview(&spec, &ContactId(body.contact_id))
            .await?,
    ))
}

/// What activation would do
///
/// The confirmation summary: recipients, members not validated or excluded, who would be
/// skipped so far (opted out, earlier conversations, missing fields), runs needed and the
/// first and last expected send days.
#[utoipa::path(
    get,
    path = "/campaigns/{id}/activation",
    operation_id = "campaign_activation_summary",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "The summary", body = ActivationSummary),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn activation_summary(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ActivationSummary>, Error> {
    Ok(Json(
        state
            .campaigns
            .engine
            .activation_summary(&CampaignId(id))
            .await?,
    ))
}

/// Body of `POST /api/v1/campaigns/{id}/activate`: the confirmation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// The `recipients` of the activation summary the person confirmed; activation is
    /// refused (409) if the audience changed since.
    pub confirm_recipients: u64,
}

/// An activated campaign and what activation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activated {
    /// The campaign, now active.
    pub campaign: Campaign,
    /// The summary at activation.
    pub summary: ActivationSummary,
}

/// Activates a draft
///
/// Freezes the list into the campaign's ledger (list order; first half A, second half B) and
/// schedules the first run at the next slot. Needs the confirmed recipient count, a
/// validated list and the business name (`CAMPAIGN_SENDER_NAME`).
#[utoipa::path(
    post,
    path = "/campaigns/{id}/activate",
    operation_id = "activate_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    request_body(content = Activation, description = "The confirmation"),
    responses(
        (status = 200, description = "Activated", body = Activated),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 409, description = "Not a draft, or the audience changed since the summary", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn activate(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<crate::extract::Json<Activation>, Error>,
) -> Result<Json<Activated>, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(body) = body?;
    if state.campaigns.settings.business_name.trim().is_empty() {
        return Err(Error::BadRequest(
            "CAMPAIGN_SENDER_NAME is not set: every campaign message must name the business"
                .to_owned(),
        ));
    }
    let id = CampaignId(id);
    let summary = state.campaigns.engine.activation_summary(&id).await?;
    if summary.unvalidated > 0 {
        return Err(Error::BadRequest(format!(
            "{} member(s) of the list are not validated yet: validate the list first",
            summary.unvalidated
        )));
    }
    if summary.recipients != body.confirm_recipients {
        return Err(Error::Conflict(format!(
            "the audience has {} recipients now, not the {} confirmed: review the summary again",
            summary.recipients, body.confirm_recipients
        )));
    }
    let (campaign, summary) = state.campaigns.engine.activate(&id).await?;
    audit(&state, &caller, "campaign.activate", &id).await?;
    Ok(Json(Activated { campaign, summary }))
}

async fn audit(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    id: &CampaignId,
) -> Result<(), Error> {
    let now = crate::ingest::unix_ms((state.clock)());
    state
        .store
        .audit(&caller.token_id, action, Some(&id.0), "ok", None, now)
        .await?;
    Ok(())
}

/// Pauses a campaign
///
/// A run in progress stops after the message in flight.
#[utoipa::path(
    post,
    path = "/campaigns/{id}/pause",
    operation_id = "pause_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "Paused", body = Campaign),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 409, description = "The campaign is not active", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn pause(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, Error> {
    caller.require(Role::Operator)?;
    let id = CampaignId(id);
    let campaign = state
        .campaigns
        .engine
        .pause(&id, Some(format!("paused by {}", caller.token_id)))
        .await?;
    audit(&state, &caller, "campaign.pause", &id).await?;
    Ok(Json(campaign))
}

/// Resumes a paused campaign
///
/// At its next scheduled run: nobody is skipped or sent twice.
#[utoipa::path(
    post,
    path = "/campaigns/{id}/resume",
    operation_id = "resume_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "Active again", body = Campaign),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 409, description = "The campaign is not paused", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn resume(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, Error> {
    caller.require(Role::Operator)?;
    let id = CampaignId(id);
    let current = state.store.campaign(&id).await?;
    if current.state != CampaignState::Paused {
        return Err(Error::Conflict(format!(
            "campaign {id} is {}, not paused",
            current.state
        )));
    }
    let campaign = state.campaigns.engine.resume(&id).await?;
    audit(&state, &caller, "campaign.resume", &id).await?;
    Ok(Json(campaign))
}

/// Cancels a campaign
///
/// For good: pending recipients are skipped as cancelled.
#[utoipa::path(
    post,
    path = "/campaigns/{id}/cancel",
    operation_id = "cancel_campaign",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "Cancelled", body = Campaign),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 409, description = "The campaign is completed or cancelled", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn cancel(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, Error> {
    caller.require(Role::Operator)?;
    let id = CampaignId(id);
    let campaign = state.campaigns.engine.cancel(&id).await?;
    audit(&state, &caller, "campaign.cancel", &id).await?;
    Ok(Json(campaign))
}

page_of! {
    /// A page of a campaign's ledger, by position.
    RecipientPage of Recipient
}

/// Filter of `GET /api/v1/campaigns/{id}/recipients`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientFilter {
    /// Only recipients in this state.
    pub state: Option<RecipientState>,
}

/// A campaign's ledger
///
/// Every recipient by position: state, variant, the text sent, OpenPhone's message id, the
/// reason of a skip or failure, reply and opt-out times.
#[utoipa::path(
    get,
    path = "/campaigns/{id}/recipients",
    operation_id = "campaign_recipients",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID), Paging, RecipientFilter),
    responses(
        (status = 200, description = "A page of the ledger", body = RecipientPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn recipients(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    paging: Paging,
    Query(filter): Query<RecipientFilter>,
) -> Result<Json<RecipientPage>, Error> {
    let limit = paging.limit()?;
    let after = paging
        .position()?
        .map(|(position, _)| position.max(0) as u64);
    let items = state
        .store
        .recipients(&CampaignId(id), filter.state, after, limit as usize)
        .await?;
    let last = items.last().map_or(0, |r| r.position as i64);
    Ok(Json(RecipientPage::new(items, limit, || {
        paging.cursor(last, "")
    })))
}

/// A campaign's review list
///
/// Recipients skipped because the number had messages or calls with us before the campaign
/// started: a person should look at them. Pages hold up to `limit` of the skipped
/// recipients scanned, so a page may be short; follow `next_cursor` to the end.
#[utoipa::path(
    get,
    path = "/campaigns/{id}/review",
    operation_id = "campaign_review_list",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID), Paging),
    responses(
        (status = 200, description = "A page of the review list", body = RecipientPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn review(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Json<RecipientPage>, Error> {
    let limit = paging.limit()?;
    let after = paging
        .position()?
        .map(|(position, _)| position.max(0) as u64);
    let scanned = state
        .store
        .recipients(
            &CampaignId(id),
            Some(RecipientState::Skipped),
            after,
            limit as usize,
        )
        .await?;
    let full = scanned.len() as i64 >= limit;
    let last = scanned.last().map_or(0, |r| r.position as i64);
    let reason = SkipReason::PriorCommunication.to_detail();
    let items: Vec<Recipient> = scanned
        .into_iter()
        .filter(|r| r.detail.as_deref() == Some(reason.as_str()))
        .collect();
    Ok(Json(RecipientPage {
        items,
        next_cursor: full.then(|| paging.cursor(last, "")),
    }))
}

/// A campaign's report
///
/// Recipients sent, delivered, failed, unknown, skipped (by reason), replied and opted out,
/// overall and by variant.
#[utoipa::path(
    get,
    path = "/campaigns/{id}/report",
    operation_id = "campaign_report",
    tag = "campaigns",
    params(("id" = String, Path, description = CAMPAIGN_ID)),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No campaign has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn report(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Report>, Error> {
    Ok(Json(state.store.report(&CampaignId(id)).await?))
}
