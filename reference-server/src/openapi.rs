//! The OpenAPI document of the management API, generated from the code.
//!
//! Every `/api/v1` route is registered through [`utoipa_axum::router::OpenApiRouter`] from the
//! `#[utoipa::path]` annotation of its handler (see [`crate::api::routes`]): the annotation
//! gives the method and path the router serves, so a route cannot exist without its documented
//! operation. This module holds what the annotations share: the document's info and tags, the
//! bearer security scheme, and the reusable error answers.
//!
//! The document is served at `GET /api/v1/openapi.json` (any valid token, like every other
//! `/api/v1` route) and checked in at `docs/openapi.json`. The integration test `openapi`
//! fails when the two differ; `UPDATE_OPENAPI=1 cargo test -p reference-server --test it
//! openapi` rewrites the file.

use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::ErrorBody;

/// The name of the bearer security scheme every operation requires. (Each operation also names
/// the least role it needs in the extension `x-required-role`: `support`, `operator` or
/// `admin`.)
pub const SECURITY_SCHEME: &str = "bearer";

/// The generated document: info, tags, the security scheme and the shared components. The
/// operations come from the handlers' annotations, added by [`crate::api::routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "reference-server management API",
        version = env!("CARGO_PKG_VERSION"),
        description = "The management API of the OpenPhone reference server, under `/api/v1`.

Every operation needs `Authorization: Bearer <token>`; tokens are created on the server's \
machine with `reference-server token create --role support|operator|admin`. Roles include the \
ones below them (admin > operator > support); each operation names the least role it needs in \
`x-required-role`. A missing, malformed, unknown or revoked token answers `401` with \
`WWW-Authenticate: Bearer`; a role below the operation's answers `403`.

Listings answer `{\"items\": [...], \"next_cursor\": ...}`: pass `cursor=<next_cursor>` for the \
next page until `next_cursor` is `null`; `limit` is 1 to 200 (default 50). Error answers are \
`{\"error\": \"...\"}`, except where an operation says `text/plain`.

This document is generated from the code (`utoipa`); a copy is kept at `docs/openapi.json`.",
    ),
    modifiers(&BearerScheme),
    components(
        schemas(ErrorBody, crate::live::LiveUpdate, crate::api::ReadBody),
        responses(BadRequest, Unauthorized, Forbidden, TooLarge, Unavailable),
    ),
    tags(
        (name = "conversations", description = "Conversations, their timelines and read marks, calls, and the activity feed"),
        (name = "live", description = "Server-sent events of what ingestion commits"),
        (name = "messages", description = "Sending texts once per idempotency key, and the audit log"),
        (name = "contacts", description = "Contacts, and contact details suggested from messages"),
        (name = "media", description = "Media jobs and the stored copies of media"),
        (name = "audiences", description = "Campaign audiences: lists, CSV import with preview, phone validation"),
        (name = "threads", description = "Conversation threads that resolve when idle, frozen into the resolved log"),
        (name = "knowledge", description = "Insights models found in resolved threads, their review, and failed export batches"),
        (name = "campaigns", description = "Trickle SMS campaigns: drafts, preview, activation, pause and resume, ledger, review list, report"),
        (name = "operations", description = "The raw event log, counts, scheduled jobs, health checks, alerts and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer security scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rs_<id>_<secret>")
                    .description(Some(
                        "A token made by `reference-server token create --role ROLE`.",
                    ))
                    .build(),
            ),
        );
    }
}

fn error_body() -> ContentBuilder {
    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody")))
}

/// `400`: a parameter, header or body is invalid.
pub struct BadRequest;

impl<'r> ToResponse<'r> for BadRequest {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "BadRequest",
            ResponseBuilder::new()
                .description(
                    "A parameter, header or body is invalid: `{\"error\": ...}` says which and \
                     why (such as `query parameter limit: invalid digit found in string`).",
                )
                .content("application/json", error_body().build())
                .build()
                .into(),
        )
    }
}

/// `401`: no live bearer token.
pub struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Unauthorized",
            ResponseBuilder::new()
                .description("The bearer token is missing, malformed, unknown or revoked.")
                .header(
                    "WWW-Authenticate",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("`Bearer`"))
                        .build(),
                )
                .content("application/json", error_body().build())
                .build()
                .into(),
        )
    }
}

/// `403`: the token's role is below the operation's.
pub struct Forbidden;

impl<'r> ToResponse<'r> for Forbidden {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Forbidden",
            ResponseBuilder::new()
                .description(
                    "The token's role is below the one the operation requires (its \
                     `x-required-role`).",
                )
                .content("application/json", error_body().build())
                .build()
                .into(),
        )
    }
}

/// `413`: the request's body is over its limit.
pub struct TooLarge;

impl<'r> ToResponse<'r> for TooLarge {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "TooLarge",
            ResponseBuilder::new()
                .description(
                    "The body is over its limit (2 MB for JSON; `CAMPAIGN_MAX_UPLOAD_BYTES` for \
                     a CSV file): `{\"error\": ...}` says which.",
                )
                .content("application/json", error_body().build())
                .build()
                .into(),
        )
    }
}

/// `503`: the database did not answer.
pub struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Unavailable",
            ResponseBuilder::new()
                .description(
                    "The database did not answer (`{\"error\": \"Service Unavailable\"}`; the \
                     cause is logged). Retry later.",
                )
                .content("application/json", error_body().build())
                .build()
                .into(),
        )
    }
}

/// Bytes of any content type, as a schema: `{"type": "string", "format": "binary"}`.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// The whole document: [`ApiDoc`] with every operation of [`crate::api::routes`].
pub fn document() -> utoipa::openapi::OpenApi {
    crate::api::documented_routes().into_openapi()
}
