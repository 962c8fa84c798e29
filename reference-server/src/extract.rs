//! The management API's query, path and JSON body extractors. Unlike axum's own, they refuse
//! a bad parameter or body with the JSON error shape ([`crate::ErrorBody`]) naming what is
//! wrong; the query extractor reads a parameter given empty (`?cursor=`) as one not given, and
//! query and path refuse a NUL character (`%00`), which no stored value holds (stored text has
//! it as U+FFFD) and PostgreSQL cannot compare.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;

/// The request's query string, deserialized into `T`. A parameter given with an empty value is
/// left out first, so `?cursor=&limit=` is the first page at the default size, as a client that
/// writes `cursor=${next ?? ""}` expects. A bare name (`?open`) is not such a value: it is
/// read as given, empty (so a flag must say `true` or `false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        let mut given = form_urlencoded::Serializer::new(String::new());
        let given_empty = |pair: &str| {
            pair.split_once('=')
                .is_some_and(|(_, value)| value.is_empty())
        };
        for pair in query.split('&').filter(|pair| !given_empty(pair)) {
            for (name, value) in form_urlencoded::parse(pair.as_bytes()) {
                if value.contains('\0') {
                    return Err(Error::BadRequest(format!(
                        "query parameter {name} holds a NUL character (%00)"
                    )));
                }
                given.append_pair(&name, &value);
            }
        }
        let given = given.finish();
        let parameters =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(given.as_bytes()));
        serde_path_to_error::deserialize(parameters)
            .map(Query)
            .map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner();
                Error::BadRequest(if path == "." {
                    format!("query: {inner}")
                } else {
                    format!("query parameter {path}: {inner}")
                })
            })
    }
}

/// The route's path parameters, deserialized into `T` (an id that does not parse as its
/// type is a 400 with the JSON error shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        if parts.uri.path().contains("%00") {
            return Err(Error::BadRequest(
                "the path holds a NUL character (%00)".to_owned(),
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) if rejection.status().is_client_error() => {
                Err(Error::BadRequest(rejection.body_text()))
            }
            // A route whose parameters do not fit its handler: the server's own mistake.
            Err(rejection) => Err(Error::Command(rejection.body_text())),
        }
    }
}

/// A JSON request body, deserialized into `T`: a body that is not JSON of that shape is a 400,
/// one over the limit (axum's default of 2 MB) a 413, both naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        <axum::Json<T> as FromRequest<S>>::from_request(request, state)
            .await
            .map(|axum::Json(value)| Json(value))
            .map_err(json_rejection)
    }
}

/// An optional JSON body (`Option<Json<T>>`): none without a `Content-Type`, else as [`Json`].
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Error> {
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(request, state).await {
            Ok(value) => Ok(value.map(|axum::Json(value)| Json(value))),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> Error {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(rejection.body_text())
    } else {
        Error::BadRequest(rejection.body_text())
    }
}
