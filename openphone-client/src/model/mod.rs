//! Request and response types, as the OpenAPI document defines them: nullable fields are
//! `Option`, enums keep unknown values, ids are newtypes.

pub mod call;
pub mod contact;
pub mod conversation;
pub mod message;
pub mod phone_number;
pub mod user;
pub mod webhook;
pub mod workspace;

/// `{ "data": T }`, the envelope of most v1 responses.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}
