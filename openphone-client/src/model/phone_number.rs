//! Workspace phone numbers.

use openphone_types::{GroupId, PhoneAddress, PhoneNumberId, UserId};
use serde::Deserialize;

use super::user::UserRole;

openphone_types::string_enum! {
    /// Whether calling or messaging a region is allowed.
    Restriction {
        /// Not allowed.
        Restricted = "restricted",
        /// Allowed.
        Unrestricted = "unrestricted",
    }
}

/// A workspace phone number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PhoneNumber {
    /// The phone number id (`PN…`).
    pub id: PhoneNumberId,
    /// The group it belongs to.
    pub group_id: String,
    /// Its porting request.
    pub port_request_id: Option<String>,
    /// Human-readable form.
    pub formatted_number: Option<String>,
    /// Forwarding number for incoming calls.
    pub forward: Option<String>,
    /// Display name.
    pub name: String,
    /// The number.
    pub number: PhoneAddress,
    /// Porting status.
    pub porting_status: Option<String>,
    /// Emoji symbol.
    pub symbol: Option<String>,
    /// Users with access.
    pub users: Vec<PhoneNumberUser>,
    /// When it was added (as sent; the document gives no format).
    pub created_at: String,
    /// When it last changed (as sent).
    pub updated_at: String,
    /// Calling and messaging restrictions by region.
    pub restrictions: Restrictions,
}

/// A user with access to a number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PhoneNumberUser {
    /// The user id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Role.
    pub role: UserRole,
    /// The user's group.
    pub group_id: GroupId,
}

/// Calling and messaging restrictions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Restrictions {
    /// Calling.
    pub calling: RegionRestrictions,
    /// Messaging.
    pub messaging: RegionRestrictions,
}

/// Restrictions by region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RegionRestrictions {
    /// Canada.
    #[serde(rename = "CA")]
    pub ca: Restriction,
    /// International.
    #[serde(rename = "Intl")]
    pub intl: Restriction,
    /// United States.
    #[serde(rename = "US")]
    pub us: Restriction,
}
