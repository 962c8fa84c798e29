//! Workspace users.

use openphone_types::UserId;
use serde::Deserialize;
use time::OffsetDateTime;

openphone_types::string_enum! {
    /// A user's role in the workspace.
    UserRole {
        /// Owner.
        Owner = "owner",
        /// Admin.
        Admin = "admin",
        /// Member.
        Member = "member",
    }
}

/// A workspace user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct User {
    /// The user id (`US…`).
    pub id: UserId,
    /// Email.
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Picture.
    pub picture_url: Option<String>,
    /// Role.
    pub role: UserRole,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the user last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
