//! Contacts through the management API: list, search, get, create and update.
//!
//! Contacts created or edited here are versions like the ones webhooks deliver: the version
//! with the latest update time wins, so an edit made here is not undone by an older webhook,
//! and a later edit in OpenPhone still wins over it. Contacts created here get `loc_` ids.

use axum::Json;
use axum::extract::State;

use crate::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiState, Paging};
use crate::auth::{Caller, Role};
use crate::ingest::unix_ms;
use crate::messaging::SendLog;
use crate::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};
use crate::projection::Change;
use crate::reads::Reads;
use crate::suggestions::{Suggestion, SuggestionStore};
use crate::{Error, ErrorBody};

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContactRecord {
    /// Its id (OpenPhone's, or `loc_...` for contacts created here).
    pub id: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// The whole current version (JSON): phones, emails, fields.
    pub content: String,
    /// When this version was made, unix milliseconds.
    pub updated_ms: i64,
}

/// Fields of a contact sent to the API (create: all optional but one name or number; update:
/// what is given replaces, what is absent stays).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Phone numbers, E.164.
    pub phones: Option<Vec<String>>,
    /// Email addresses.
    pub emails: Option<Vec<String>>,
    /// Street address.
    pub address: Option<String>,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactView {
    /// Street address.
    #[schema(value_type = Option<String>, required = true)]
    pub address: Value,
    /// Company.
    #[schema(required = true)]
    pub company: Option<String>,
    /// Email addresses.
    #[schema(value_type = Vec<String>)]
    pub emails: Value,
    /// First name.
    #[schema(required = true)]
    pub first_name: Option<String>,
    /// Its id: OpenPhone's, or `loc_...` for contacts created here.
    pub id: String,
    /// Last name.
    #[schema(required = true)]
    pub last_name: Option<String>,
    /// Phone numbers, E.164.
    #[schema(value_type = Vec<String>)]
    pub phones: Value,
    /// When this version was made (the latest version wins).
    #[schema(format = DateTime, required = true)]
    pub updated_at: Option<String>,
}

impl From<&ContactRecord> for ContactView {
    fn from(record: &ContactRecord) -> Self {
        let content: Value = serde_json::from_str(&record.content).unwrap_or(Value::Null);
        Self {
            address: content.get("address").cloned().unwrap_or(Value::Null),
            company: record.company.clone(),
            emails: content.get("emails").cloned().unwrap_or(json!([])),
            first_name: record.first_name.clone(),
            id: record.id.clone(),
            last_name: record.last_name.clone(),
            phones: content.get("phones").cloned().unwrap_or(json!([])),
            updated_at: time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(record.updated_ms) * 1_000_000,
            )
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
        }
    }
}

crate::api::page_of! {
    /// A page of contacts, by id.
    ContactPage of ContactView
}

/// A contact id in a path.
const CONTACT_ID: &str = "The contact's id";

fn clean(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// Validates and writes a version of contact `id` on top of `base`.
async fn write_version(
    state: &ApiState,
    id: &str,
    base: Option<&ContactRecord>,
    body: ContactBody,
) -> Result<ContactRecord, Error> {
    let previous: Value = base
        .map(|record| serde_json::from_str(&record.content).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut phones = match body.phones {
        Some(phones) => phones
            .iter()
            .map(|phone| {
                openphone_types::E164::parse(phone.trim())
                    .map(|number| number.as_str().to_owned())
                    .map_err(|_| {
                        Error::BadRequest(format!("phones: {phone:?} is not an E.164 number"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => strings(&previous, "phones"),
    };
    phones.sort();
    phones.dedup();
    let emails = match body.emails {
        Some(emails) => {
            for email in &emails {
                if !email.contains('@') || email.trim().len() < 3 {
                    return Err(Error::BadRequest(format!(
                        "emails: {email:?} is not an email address"
                    )));
                }
            }
            emails.iter().map(|email| email.trim().to_owned()).collect()
        }
        None => strings(&previous, "emails"),
    };
    let pick = |given: Option<String>, old: Option<&String>| match given {
        Some(text) => clean(Some(text)),
        None => old.cloned(),
    };
    let previous_address = previous
        .get("address")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let address = pick(body.address, previous_address.as_ref());
    let first_name = pick(body.first_name, base.and_then(|b| b.first_name.as_ref()));
    let last_name = pick(body.last_name, base.and_then(|b| b.last_name.as_ref()));
    let company = pick(body.company, base.and_then(|b| b.company.as_ref()));
    if first_name.is_none() && last_name.is_none() && company.is_none() && phones.is_empty() {
        return Err(Error::BadRequest(
            "a contact needs a name, a company or a phone number".to_owned(),
        ));
    }
    let now_ms = unix_ms((state.clock)());
    // Strictly later than the version it replaces, so it wins the merge.
    let updated_ms = base.map_or(now_ms, |base| now_ms.max(base.updated_ms + 1));
    let content = json!({
        "first_name": first_name, "last_name": last_name, "company": company,
        "role": previous.get("role").cloned().unwrap_or(Value::Null),
        "external_id": previous.get("external_id").cloned().unwrap_or(Value::Null),
        "phones": phones, "emails": emails, "address": address,
        "fields": previous.get("fields").cloned().unwrap_or(json!([])),
    });
    state
        .store
        .apply_changes(&[Change::Contact {
            id: id.to_owned(),
            first_name,
            last_name,
            company,
            external_id: None,
            deleted: false,
            updated_ms,
            content: content.to_string(),
            phones,
        }])
        .await?;
    state
        .store
        .contact(id)
        .await?
        .ok_or(Error::NotFound("contact"))
}

/// Search of `GET /api/v1/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactSearch {
    /// Part of a name, company or phone number. At most 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
}

/// Contacts
///
/// Live contacts by id, optionally searched by part of a name, company or number.
#[utoipa::path(
    get,
    path = "/contacts",
    operation_id = "list_contacts",
    tag = "contacts",
    params(Paging, ContactSearch),
    responses(
        (status = 200, description = "A page of contacts, by id", body = ContactPage),
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
    Query(search): Query<ContactSearch>,
) -> Result<Json<ContactPage>, Error> {
    let limit = paging.limit()?;
    let after = paging.position()?.map(|(_, id)| id);
    let search = crate::api::search_text(search.q.as_deref())?;
    let rows = state
        .store
        .contacts(search, after.as_deref(), limit)
        .await?;
    let last = rows.last().map(|row| row.id.clone());
    let items = rows.iter().map(ContactView::from).collect();
    Ok(Json(ContactPage::new(items, limit, || {
        paging.cursor(0, &last.unwrap_or_default())
    })))
}

/// A contact
///
/// One live contact: names, company, phones, emails, address, version time.
#[utoipa::path(
    get,
    path = "/contacts/{id}",
    operation_id = "get_contact",
    tag = "contacts",
    params(("id" = String, Path, description = CONTACT_ID)),
    responses(
        (status = 200, description = "The contact", body = ContactView),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No live contact has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn get(
    _caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, Error> {
    let record = state
        .store
        .contact(&id)
        .await?
        .ok_or(Error::NotFound("contact"))?;
    Ok(Json(ContactView::from(&record)))
}

/// Creates a contact
///
/// A new contact with a `loc_` id: at least a name, a company or a number; unknown fields are
/// refused.
#[utoipa::path(
    post,
    path = "/contacts",
    operation_id = "create_contact",
    tag = "contacts",
    request_body(content = ContactBody, description = "The contact's fields"),
    responses(
        (status = 201, description = "Created", body = ContactView),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<crate::extract::Json<ContactBody>, Error>,
) -> Result<Response, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(body) = body?;
    let id = format!("loc_{}", uuid::Uuid::new_v4().simple());
    let record = write_version(&state, &id, None, body).await?;
    Ok((StatusCode::CREATED, Json(ContactView::from(&record))).into_response())
}

/// Updates a contact
///
/// Given fields replace, absent ones stay. The edit is a version stamped with its time: an
/// older webhook redelivered later does not undo it, a later edit in OpenPhone wins over it.
#[utoipa::path(
    patch,
    path = "/contacts/{id}",
    operation_id = "update_contact",
    tag = "contacts",
    params(("id" = String, Path, description = CONTACT_ID)),
    request_body(content = ContactBody, description = "The fields to replace"),
    responses(
        (status = 200, description = "The updated contact", body = ContactView),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No live contact has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn update(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<crate::extract::Json<ContactBody>, Error>,
) -> Result<Json<ContactView>, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(body) = body?;
    let base = state
        .store
        .contact(&id)
        .await?
        .ok_or(Error::NotFound("contact"))?;
    let record = write_version(&state, &id, Some(&base), body).await?;
    Ok(Json(ContactView::from(&record)))
}

/// Body of `POST /api/v1/contacts/{id}/merge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The duplicate to fold into the contact.
    pub duplicate: String,
}

fn strings(content: &Value, key: &str) -> Vec<String> {
    content[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Merges a duplicate into a contact
///
/// Folds the duplicate into the contact (numbers and emails joined, names and company kept,
/// filled from the duplicate where missing) and deletes the duplicate. Audited.
#[utoipa::path(
    post,
    path = "/contacts/{id}/merge",
    operation_id = "merge_contacts",
    tag = "contacts",
    params(("id" = String, Path, description = "The id of the contact that stays")),
    request_body(content = MergeBody, description = "The duplicate to fold in"),
    responses(
        (status = 200, description = "The merged contact", body = ContactView),
        (status = 400, response = BadRequest),
        (status = 413, response = TooLarge),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No live contact (or duplicate) has this id", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn merge(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<crate::extract::Json<MergeBody>, Error>,
) -> Result<Json<ContactView>, Error> {
    caller.require(Role::Operator)?;
    let crate::extract::Json(body) = body?;
    if body.duplicate == id {
        return Err(Error::BadRequest(
            "a contact cannot be merged into itself".to_owned(),
        ));
    }
    let target = state
        .store
        .contact(&id)
        .await?
        .ok_or(Error::NotFound("contact"))?;
    let duplicate = state
        .store
        .contact(&body.duplicate)
        .await?
        .ok_or(Error::NotFound("duplicate contact"))?;
    let (target_content, duplicate_content): (Value, Value) = (
        serde_json::from_str(&target.content).unwrap_or(Value::Null),
        serde_json::from_str(&duplicate.content).unwrap_or(Value::Null),
    );
    let mut phones = strings(&target_content, "phones");
    phones.extend(strings(&duplicate_content, "phones"));
    let mut emails = strings(&target_content, "emails");
    for email in strings(&duplicate_content, "emails") {
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    let merged = ContactBody {
        first_name: target.first_name.clone().or(duplicate.first_name.clone()),
        last_name: target.last_name.clone().or(duplicate.last_name.clone()),
        company: target.company.clone().or(duplicate.company.clone()),
        phones: Some(phones),
        emails: Some(emails),
        address: None,
    };
    let record = write_version(&state, &id, Some(&target), merged).await?;
    let now_ms = unix_ms((state.clock)());
    state
        .store
        .apply_changes(&[Change::Contact {
            id: duplicate.id.clone(),
            first_name: duplicate.first_name.clone(),
            last_name: duplicate.last_name.clone(),
            company: duplicate.company.clone(),
            external_id: None,
            deleted: true,
            updated_ms: now_ms.max(duplicate.updated_ms + 1),
            content: json!({"merged_into": id}).to_string(),
            phones: Vec::new(),
        }])
        .await?;
    state
        .store
        .audit(
            &caller.token_id,
            "contact.merge",
            Some(&id),
            "done",
            Some(format!("merged {}", duplicate.id)),
            now_ms,
        )
        .await?;
    Ok(Json(ContactView::from(&record)))
}

/// What a push did in OpenPhone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushAction {
    /// A new OpenPhone contact was created.
    Created,
    /// An OpenPhone contact was updated.
    Updated,
}

/// What `POST /api/v1/contacts/{id}/push` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PushResult {
    /// What was done in OpenPhone.
    pub action: PushAction,
    /// Our contact's id.
    pub id: String,
    /// OpenPhone's id of the contact.
    pub openphone_id: String,
}

/// Writes a contact to OpenPhone
///
/// A contact created here is upserted as an API contact whose `externalId` is our id (found by
/// it, else created); an OpenPhone contact is updated. Phones and emails are sent whole, since
/// OpenPhone's PATCH replaces those arrays. OpenPhone's later webhooks for the contact carry
/// our id as `externalId` and merge into the same record. Audited.
#[utoipa::path(
    post,
    path = "/contacts/{id}/push",
    operation_id = "push_contact",
    tag = "contacts",
    params(("id" = String, Path, description = CONTACT_ID)),
    responses(
        (status = 200, description = "Written to OpenPhone", body = PushResult),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No live contact has this id", body = ErrorBody),
        (status = 409, description = "Pushing needs `OPENPHONE_API_KEY`, or OpenPhone refused", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn push(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<PushResult>, Error> {
    use openphone_client::model::contact::{
        ContactUpdate, DefaultFields, LabelledValue, ListContacts, NewContact,
    };
    caller.require(Role::Operator)?;
    let Some(client) = state.messenger.client.clone() else {
        return Err(Error::Conflict(
            "pushing contacts needs OPENPHONE_API_KEY".to_owned(),
        ));
    };
    let record = state
        .store
        .contact(&id)
        .await?
        .ok_or(Error::NotFound("contact"))?;
    let content: Value = serde_json::from_str(&record.content).unwrap_or(Value::Null);
    let mut fields = DefaultFields::default();
    fields.first_name = record.first_name.clone();
    fields.last_name = record.last_name.clone();
    fields.company = record.company.clone();
    fields.phone_numbers = strings(&content, "phones")
        .into_iter()
        .map(|phone| LabelledValue::new("phone", phone))
        .collect();
    fields.emails = strings(&content, "emails")
        .into_iter()
        .map(|email| LabelledValue::new("email", email))
        .collect();
    let refused =
        |error: openphone_client::Error| Error::Conflict(format!("OpenPhone refused: {error}"));
    let (openphone_id, action) = if id.starts_with("loc_") {
        let existing = client
            .list_contacts_page(&ListContacts::all().external_id(id.clone()), None)
            .await
            .map_err(refused)?
            .data
            .into_iter()
            .next();
        match existing {
            Some(existing) => {
                let mut update = ContactUpdate::default();
                update.default_fields = Some(fields);
                let updated = client
                    .update_contact(&existing.id, &update)
                    .await
                    .map_err(refused)?;
                (updated.id.to_string(), PushAction::Updated)
            }
            None => {
                let mut new = NewContact::default();
                new.default_fields = fields;
                new.external_id = Some(id.clone());
                let created = client.create_contact(&new).await.map_err(refused)?;
                (created.id.to_string(), PushAction::Created)
            }
        }
    } else {
        let mut update = ContactUpdate::default();
        update.default_fields = Some(fields);
        let updated = client
            .update_contact(&id.as_str().into(), &update)
            .await
            .map_err(refused)?;
        (updated.id.to_string(), PushAction::Updated)
    };
    let now_ms = unix_ms((state.clock)());
    state
        .store
        .audit(
            &caller.token_id,
            "contact.push",
            Some(&id),
            match action {
                PushAction::Created => "created",
                PushAction::Updated => "updated",
            },
            Some(openphone_id.clone()),
            now_ms,
        )
        .await?;
    Ok(Json(PushResult {
        action,
        id,
        openphone_id,
    }))
}

/// What a suggested detail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionKind {
    /// A name ("my name is ...").
    Name,
    /// An email address.
    Email,
    /// A street address.
    Address,
}

/// Where a suggestion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionStatus {
    /// Waiting for a decision.
    Pending,
    /// Applied to the contact.
    Approved,
    /// Rejected.
    Rejected,
}

/// Which suggestions `GET /api/v1/contact-suggestions` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionStatusFilter {
    /// Waiting for a decision (the default).
    Pending,
    /// Applied.
    Approved,
    /// Rejected.
    Rejected,
    /// Every suggestion.
    All,
}

/// A contact detail found in an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SuggestionView {
    /// Its id.
    pub id: i64,
    /// What the detail is.
    #[schema(value_type = SuggestionKind)]
    pub kind: String,
    /// The inbound message it was found in.
    pub message_id: String,
    /// The number that sent it (E.164).
    pub phone: String,
    /// Where it stands.
    #[schema(value_type = SuggestionStatus)]
    pub status: String,
    /// The detail.
    pub value: String,
}

impl From<&Suggestion> for SuggestionView {
    fn from(suggestion: &Suggestion) -> Self {
        Self {
            id: suggestion.id,
            kind: suggestion.kind.clone(),
            message_id: suggestion.message_id.clone(),
            phone: suggestion.phone.clone(),
            status: suggestion.status.clone(),
            value: suggestion.value.clone(),
        }
    }
}

crate::api::page_of! {
    /// A page of contact suggestions, newest first.
    SuggestionPage of SuggestionView
}

/// A suggestion id in a path.
const SUGGESTION_ID: &str = "The suggestion's id";

/// Filter of `GET /api/v1/contact-suggestions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestionFilter {
    /// Which suggestions: `pending` (default), `approved`, `rejected` or `all`.
    #[param(inline, value_type = Option<SuggestionStatusFilter>)]
    pub status: Option<String>,
}

/// Contact details suggested from messages
///
/// Details found in inbound messages (names, emails, addresses), newest first; pending ones by
/// default. Nothing is applied until approved.
#[utoipa::path(
    get,
    path = "/contact-suggestions",
    operation_id = "list_contact_suggestions",
    tag = "contacts",
    params(Paging, SuggestionFilter),
    responses(
        (status = 200, description = "A page of suggestions, newest first", body = SuggestionPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("support"))),
)]
pub async fn suggestions(
    _caller: Caller,
    State(state): State<ApiState>,
    paging: Paging,
    Query(filter): Query<SuggestionFilter>,
) -> Result<Json<SuggestionPage>, Error> {
    let limit = paging.limit()?;
    let status = match filter.status.as_deref() {
        None | Some("pending") => Some("pending"),
        Some("all") => None,
        Some(status @ ("approved" | "rejected")) => Some(status),
        Some(_) => {
            return Err(Error::BadRequest(
                "status must be pending, approved, rejected or all".to_owned(),
            ));
        }
    };
    let rows = state
        .store
        .suggestions(status, paging.position()?.map(|(id, _)| id), limit)
        .await?;
    let last = rows.last().map(|row| row.id);
    let items = rows.iter().map(SuggestionView::from).collect();
    Ok(Json(SuggestionPage::new(items, limit, || {
        paging.cursor(last.unwrap_or_default(), "")
    })))
}

/// What approving a suggestion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApprovalResult {
    /// The contact it was applied to.
    pub contact: ContactView,
    /// The suggestion, now approved.
    pub suggestion: SuggestionView,
}

/// Approves a suggested detail
///
/// Applies the detail to the contact with the sender's number (a new contact when none has
/// it): a name sets first and last name, an email is added, an address is set. Audited. A
/// suggestion is decided once.
#[utoipa::path(
    post,
    path = "/contact-suggestions/{id}/approve",
    operation_id = "approve_contact_suggestion",
    tag = "contacts",
    params(("id" = i64, Path, description = SUGGESTION_ID)),
    responses(
        (status = 200, description = "Applied", body = ApprovalResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No pending suggestion has this id (it may have been decided)", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn approve(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<ApprovalResult>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = unix_ms((state.clock)());
    let suggestion = state
        .store
        .decide(id, "approved", &caller.token_id, now_ms)
        .await?
        .ok_or(Error::NotFound("pending suggestion"))?;
    // Decided first (two operators approving at once apply it once), and taken back when the
    // detail cannot be applied, so that it is not used up.
    let applied: Result<ContactRecord, Error> = async {
        let existing = match state
            .store
            .contacts_by_phone(&suggestion.phone)
            .await?
            .first()
        {
            Some(contact_id) => state.store.contact(contact_id).await?,
            None => None,
        };
        let mut body = ContactBody::default();
        match suggestion.kind.as_str() {
            "name" => {
                let mut parts = suggestion.value.splitn(2, ' ');
                body.first_name = parts.next().map(str::to_owned);
                body.last_name = parts.next().map(str::to_owned);
            }
            "email" => {
                let mut emails = existing
                    .as_ref()
                    .map(|c| {
                        strings(
                            &serde_json::from_str(&c.content).unwrap_or(Value::Null),
                            "emails",
                        )
                    })
                    .unwrap_or_default();
                if !emails.contains(&suggestion.value) {
                    emails.push(suggestion.value.clone());
                }
                body.emails = Some(emails);
            }
            _ => body.address = Some(suggestion.value.clone()),
        }
        let record = match &existing {
            Some(contact) => write_version(&state, &contact.id, Some(contact), body).await?,
            None => {
                body.phones = Some(vec![suggestion.phone.clone()]);
                let id = format!("loc_{}", uuid::Uuid::new_v4().simple());
                write_version(&state, &id, None, body).await?
            }
        };
        Ok(record)
    }
    .await;
    let record = match applied {
        Ok(record) => record,
        Err(error) => {
            if let Err(undo) = state.store.reopen(id, &caller.token_id, now_ms).await {
                tracing::error!(id, error = %undo, "an approval that failed could not be taken back");
            }
            return Err(error);
        }
    };
    state
        .store
        .audit(
            &caller.token_id,
            "contact.suggestion.approve",
            Some(&record.id),
            "done",
            Some(format!("{} {}", suggestion.kind, suggestion.value)),
            now_ms,
        )
        .await?;
    Ok(Json(ApprovalResult {
        contact: ContactView::from(&record),
        suggestion: SuggestionView::from(&suggestion),
    }))
}

/// Rejects a suggested detail
///
/// A suggestion is decided once.
#[utoipa::path(
    post,
    path = "/contact-suggestions/{id}/reject",
    operation_id = "reject_contact_suggestion",
    tag = "contacts",
    params(("id" = i64, Path, description = SUGGESTION_ID)),
    responses(
        (status = 200, description = "Rejected", body = SuggestionView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No pending suggestion has this id (it may have been decided)", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
    extensions(("x-required-role" = json!("operator"))),
)]
pub async fn reject(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<SuggestionView>, Error> {
    caller.require(Role::Operator)?;
    let now_ms = unix_ms((state.clock)());
    let suggestion = state
        .store
        .decide(id, "rejected", &caller.token_id, now_ms)
        .await?
        .ok_or(Error::NotFound("pending suggestion"))?;
    Ok(Json(SuggestionView::from(&suggestion)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::assert_sorted;

    #[test]
    fn responses_serialize_with_sorted_keys() {
        let contact = ContactView::from(&ContactRecord {
            id: "loc_1".into(),
            first_name: Some("Alice".into()),
            last_name: None,
            company: None,
            content: r#"{"phones":["+15550001111"],"emails":[],"address":null,"fields":[]}"#.into(),
            updated_ms: 1_000,
        });
        assert_eq!(
            serde_json::to_value(&contact).ok(),
            Some(
                json!({"id": "loc_1", "first_name": "Alice", "last_name": null,
                "company": null, "phones": ["+15550001111"], "emails": [], "address": null,
                "updated_at": "1970-01-01T00:00:01Z"})
            )
        );
        let suggestion = SuggestionView::from(&Suggestion {
            id: 1,
            message_id: "AC1".into(),
            phone: "+15550001111".into(),
            kind: "email".into(),
            value: "a@example.com".into(),
            status: "approved".into(),
            decided_by: Some("tok1".into()),
            decided_ms: Some(1_000),
        });
        assert_sorted(&ContactPage::new(vec![contact.clone()], 1, || "n".into()));
        assert_sorted(&SuggestionPage::new(vec![suggestion.clone()], 2, || {
            "n".into()
        }));
        assert_sorted(&ApprovalResult {
            contact,
            suggestion,
        });
        assert_sorted(&PushResult {
            action: PushAction::Created,
            id: "loc_1".into(),
            openphone_id: "CT1".into(),
        });
    }
}
