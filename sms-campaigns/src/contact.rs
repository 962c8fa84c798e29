//! Contacts and static contact lists.

use std::collections::BTreeMap;

use openphone_types::E164;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::LineType;

/// A contact's id, assigned by the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ContactId(pub String);

/// A list's id, assigned by the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ListId(pub String);

/// A person we may text. The phone number is unique among contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Contact {
    /// The id.
    pub id: ContactId,
    /// The number, E.164.
    #[cfg_attr(feature = "utoipa", schema(value_type = String))]
    pub phone: E164,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Other columns of the import, by normalized key ([`crate::field_key`]); usable as
    /// template tokens.
    pub attributes: BTreeMap<String, String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

impl Contact {
    /// The values templates can use: `first_name`, `last_name`, `full_name`, `email`,
    /// `address`, `company`, `phone`, then every attribute (a field of the same name wins).
    pub fn template_values(&self) -> BTreeMap<String, String> {
        let mut values = self.attributes.clone();
        let mut put = |key: &str, value: Option<&String>| {
            if let Some(value) = value {
                values.insert(key.to_owned(), value.clone());
            }
        };
        put("first_name", self.first_name.as_ref());
        put("last_name", self.last_name.as_ref());
        put("email", self.email.as_ref());
        put("address", self.address.as_ref());
        put("company", self.company.as_ref());
        let full: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !full.is_empty() {
            values.insert("full_name".to_owned(), full.join(" "));
        }
        values.insert("phone".to_owned(), self.phone.as_str().to_owned());
        values
    }
}

/// A contact to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct NewContact {
    /// The number (already normalized).
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>))]
    pub phone: Option<E164>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Other attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A static list of contacts, in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ContactList {
    /// The id.
    pub id: ListId,
    /// Its name.
    pub name: String,
    /// Members, whatever their validation status.
    pub members: u64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// Where a member stands after phone validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Not validated yet; a campaign cannot start on the list until it is.
    Unvalidated,
    /// Validated: a mobile, or a valid number whose line type the validator does not know.
    Kept,
    /// Validated out: invalid, or a known non-mobile line. Stays visible, never texted.
    Excluded,
}

/// A contact in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Member {
    /// The list.
    pub list_id: ListId,
    /// Its place in the list, from 0 (campaign ledgers keep this order).
    pub position: u64,
    /// The contact.
    pub contact: Contact,
    /// Validation status.
    pub status: MemberStatus,
    /// The line type validation found.
    pub line_type: Option<LineType>,
    /// Why it was excluded.
    pub note: Option<String>,
}
