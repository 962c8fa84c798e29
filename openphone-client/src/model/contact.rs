//! Contacts and contact custom fields.

use openphone_types::{ContactId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

openphone_types::string_enum! {
    /// The type of a contact custom field.
    CustomFieldType {
        /// A postal address.
        Address = "address",
        /// Yes or no.
        Boolean = "boolean",
        /// A date.
        Date = "date",
        /// Several options.
        MultiSelect = "multi-select",
        /// A number.
        Number = "number",
        /// Text.
        String = "string",
        /// A URL.
        Url = "url",
    }
}

/// A custom field defined for the workspace's contacts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct CustomFieldDefinition {
    /// Display name.
    pub name: String,
    /// The key to set it by.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
}

/// A contact (v1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Contact {
    /// The contact id (no fixed prefix).
    pub id: ContactId,
    /// Your id for it; unique per workspace (a duplicate gets 409).
    pub external_id: Option<String>,
    /// Where it came from.
    pub source: Option<String>,
    /// A link back to the source.
    pub source_url: Option<String>,
    /// Name, company, role, emails and phone numbers.
    pub default_fields: DefaultFields,
    /// Custom fields.
    pub custom_fields: Vec<CustomField>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Who created it.
    #[serde(default)]
    pub created_by_user_id: Option<UserId>,
}

/// A contact's standard fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DefaultFields {
    /// Company.
    pub company: Option<String>,
    /// Emails.
    #[serde(default)]
    pub emails: Vec<LabelledValue>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Phone numbers (as entered; OpenPhone does not require E.164 here).
    #[serde(default)]
    pub phone_numbers: Vec<LabelledValue>,
    /// Role.
    pub role: Option<String>,
}

/// A labelled email or phone number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LabelledValue {
    /// The label (`mobile`, `work`).
    pub name: String,
    /// The value.
    pub value: Option<String>,
    /// Its id, in responses; send it back to update this item in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl LabelledValue {
    /// A new labelled value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
            id: None,
        }
    }
}

/// A custom field's value on a contact.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct CustomField {
    /// Display name.
    pub name: String,
    /// Key.
    #[serde(default)]
    pub key: Option<String>,
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    /// The value as sent: a string, a number, a boolean, a list of strings, or null.
    pub value: Value,
}

/// A custom field value to set, by key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CustomFieldInput {
    /// The field's key.
    pub key: String,
    /// The value: a string (also for dates, addresses, URLs), a number, a boolean, a list of
    /// strings (multi-select), or null to clear.
    pub value: Value,
}

impl CustomFieldInput {
    /// Sets field `key` to `value`.
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A contact to create (`POST /v1/contacts`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewContact {
    /// Name, company, role, emails and phone numbers.
    pub default_fields: DefaultFields,
    /// Custom fields, by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomFieldInput>,
    /// The user to create it as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by_user_id: Option<UserId>,
    /// Source (1 to 72 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Link back to the source (at most 200 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Your id for it (1 to 75 characters, unique: create by external id first to upsert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl NewContact {
    /// A contact with a first name.
    pub fn named(first_name: impl Into<String>) -> Self {
        Self {
            default_fields: DefaultFields {
                first_name: Some(first_name.into()),
                ..DefaultFields::default()
            },
            ..Self::default()
        }
    }
}

/// Changes to a contact (`PATCH /v1/contacts/{id}`). Fields left `None` are unchanged. The
/// lists (`emails`, `phone_numbers`, custom fields) **replace** the stored lists whole: send
/// every item to keep, with its `id`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContactUpdate {
    /// New standard fields, as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_fields: Option<DefaultFields>,
    /// New custom field values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<CustomFieldInput>>,
    /// New external id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// New source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// New source URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

/// Parameters of `GET /v1/contacts`.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ListContacts {
    /// Only contacts with these external ids.
    pub external_ids: Vec<String>,
    /// Only contacts from these sources.
    pub sources: Vec<String>,
    /// Page size, 1 to 50 (default 50 here).
    pub max_results: Option<u32>,
}

impl ListContacts {
    /// Every contact of the workspace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the contact(s) with this external id.
    #[must_use]
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_ids.push(id.into());
        self
    }
}
