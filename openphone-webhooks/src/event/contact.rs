//! Contact events: `contact.updated` (created or changed) and `contact.deleted`.

use openphone_types::{ContactId, UserId};
use serde_json::Value;
use time::OffsetDateTime;

use super::raw::{RawContact, RawContext, RawLegacyField, from_value};
use crate::Error;

/// A contact, from the legacy app shape or the 2026-03-30 shape.
///
/// Legacy app payloads carry phone numbers and emails as `fields`, either an array of
/// `{name, type, value}` or (as seen in real deliveries) a map from field name to values.
/// Fields typed `phone-number` or `email`, or named like "phone" or "email" in the map form,
/// become [`Contact::phone_numbers`] and [`Contact::emails`]; the rest stay in
/// [`Contact::fields`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Contact {
    /// The contact id.
    pub id: ContactId,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Location (2026-03-30).
    pub location: Option<String>,
    /// Where the contact came from (`null` for contacts made in the app).
    pub source: Option<String>,
    /// The id an integration gave it.
    pub external_id: Option<String>,
    /// Picture (legacy).
    pub picture_url: Option<String>,
    /// Phone numbers, as entered (not necessarily E.164).
    pub phone_numbers: Vec<ContactValue>,
    /// Email addresses.
    pub emails: Vec<ContactValue>,
    /// Other fields, with their values as sent.
    pub fields: Vec<ContactField>,
    /// Notes (legacy).
    pub notes: Vec<ContactNote>,
    /// Users, groups or the workspace it is shared with.
    pub shared_with: Vec<String>,
    /// The user who owns or changed it.
    pub user_id: Option<UserId>,
    /// When it was created.
    pub created_at: Option<OffsetDateTime>,
    /// When it last changed: use it to drop stale, out-of-order events.
    pub updated_at: Option<OffsetDateTime>,
}

/// A labelled value of a contact: a phone number or an email.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ContactValue {
    /// The label, when given (`mobile`, `work`).
    pub label: Option<String>,
    /// The value as entered.
    pub value: String,
}

/// A custom field of a contact.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ContactField {
    /// The field's display name.
    pub name: String,
    /// Its key (2026-03-30).
    pub key: Option<String>,
    /// Its type (`string`, `number`, `date`, `multi-select`, ...).
    pub field_type: Option<String>,
    /// Its value as sent.
    pub value: Value,
}

/// A note on a contact (legacy).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ContactNote {
    /// The note's text.
    pub text: String,
    /// Its author.
    pub user_id: Option<UserId>,
    /// When it was written.
    pub created_at: Option<OffsetDateTime>,
}

fn value_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(value_strings).collect(),
        Value::Number(number) => vec![number.to_string()],
        _ => Vec::new(),
    }
}

pub(crate) fn normalize(raw: RawContact, context: RawContext, at: &str) -> Result<Contact, Error> {
    let mut phone_numbers = Vec::new();
    let mut emails = Vec::new();
    let mut fields = Vec::new();
    for item in raw.phone_numbers.unwrap_or_default() {
        if let Some(value) = item.value {
            phone_numbers.push(ContactValue {
                label: item.name,
                value,
            });
        }
    }
    for item in raw.emails.unwrap_or_default() {
        if let Some(value) = item.value {
            emails.push(ContactValue {
                label: item.name,
                value,
            });
        }
    }
    for field in raw.custom_fields.unwrap_or_default() {
        fields.push(ContactField {
            name: field.name,
            key: field.key.or(field.id),
            field_type: field.field_type,
            value: field.value,
        });
    }
    match raw.fields {
        Some(Value::Array(items)) => {
            let items: Vec<RawLegacyField> =
                from_value(Value::Array(items), &format!("{at}.fields"))?;
            for item in items {
                let target = match item.field_type.as_deref() {
                    Some("phone-number") => Some(&mut phone_numbers),
                    Some("email") => Some(&mut emails),
                    _ => None,
                };
                match target {
                    Some(list) => {
                        list.extend(value_strings(&item.value).into_iter().map(|value| {
                            ContactValue {
                                label: item.name.clone(),
                                value,
                            }
                        }))
                    }
                    None => fields.push(ContactField {
                        name: item.name.unwrap_or_default(),
                        key: None,
                        field_type: item.field_type,
                        value: item.value,
                    }),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let lower = name.to_ascii_lowercase();
                let target = if lower.contains("phone") {
                    Some(&mut phone_numbers)
                } else if lower.contains("email") {
                    Some(&mut emails)
                } else {
                    None
                };
                match target {
                    Some(list) => {
                        list.extend(value_strings(&value).into_iter().map(|value| ContactValue {
                            label: Some(name.clone()),
                            value,
                        }))
                    }
                    None => fields.push(ContactField {
                        name,
                        key: None,
                        field_type: None,
                        value,
                    }),
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(Error::payload(
                format!("{at}.fields"),
                "expected an array or an object",
            ));
        }
    }
    Ok(Contact {
        id: ContactId::new(raw.id),
        first_name: raw.first_name,
        last_name: raw.last_name,
        company: raw.company,
        role: raw.role,
        location: raw.location,
        source: raw.source,
        external_id: raw.external_id,
        picture_url: raw.picture_url,
        phone_numbers,
        emails,
        fields,
        notes: raw
            .notes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|note| {
                Some(ContactNote {
                    text: note.text?,
                    user_id: note.user_id.map(UserId::new),
                    created_at: note.created_at,
                })
            })
            .collect(),
        shared_with: context
            .shared_with_ids
            .or(raw.shared_with)
            .unwrap_or_default(),
        user_id: context.user_id.or(raw.user_id).map(UserId::new),
        created_at: raw.created_at,
        updated_at: raw.updated_at,
    })
}
