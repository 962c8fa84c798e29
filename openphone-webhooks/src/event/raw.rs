//! The lenient raw layer: one permissive shape per JSON object OpenPhone sends, whatever the
//! payload generation, deserialized with the JSON path of any failure.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::Error;

/// Deserializes `value`, reporting failures with their JSON path under `at` and without
/// quoting the offending value.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|error| path_error(error, at))
}

fn path_error<E: std::fmt::Display>(error: serde_path_to_error::Error<E>, at: &str) -> Error {
    let inner = error.path().to_string();
    let path = if inner == "." || inner.is_empty() {
        at.to_owned()
    } else {
        format!("{at}.{inner}")
    };
    Error::payload(path, sanitize(&error.into_inner().to_string()))
}

/// Where the lenient layer reads a JSON object from: a parsed tree ([`Value`]), or the
/// object's text within the body ([`RawValue`]), which spares building the tree first.
pub(crate) trait Source: DeserializeOwned {
    /// Deserializes the object, as [`from_value`] does.
    fn deserialize<T: DeserializeOwned>(self, at: &str) -> Result<T, Error>;
}

impl Source for Value {
    fn deserialize<T: DeserializeOwned>(self, at: &str) -> Result<T, Error> {
        from_value(self, at)
    }
}

impl Source for Box<RawValue> {
    fn deserialize<T: DeserializeOwned>(self, at: &str) -> Result<T, Error> {
        // Tracking the path costs an allocation per field: only a failure is read again with
        // it, for its error.
        serde_json::from_str(self.get()).or_else(|_| {
            let mut deserializer = serde_json::Deserializer::from_str(self.get());
            serde_path_to_error::deserialize(&mut deserializer)
                .map_err(|error| path_error(error, at))
        })
    }
}

/// Parses the body as JSON, reporting syntax errors by position only.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|error| {
        Error::payload(
            "$",
            format!(
                "not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        )
    })
}

/// Keeps serde's description of what was expected, drops any quoted input.
fn sanitize(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.starts_with("missing field") || message.starts_with("invalid length") {
        return message.to_owned();
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let kind = rest
            .split(['`', '"', ','])
            .next()
            .unwrap_or_default()
            .trim();
        let expected = rest.rsplit_once(", expected ").map(|(_, e)| e);
        return match expected {
            Some(expected) => format!("invalid type: {kind}, expected {expected}"),
            None => format!("invalid type: {kind}"),
        };
    }
    if message.starts_with("invalid value") {
        return match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("invalid value, expected {expected}"),
            None => "invalid value".to_owned(),
        };
    }
    if message.contains('"') || message.contains('`') {
        return "invalid value".to_owned();
    }
    message.to_owned()
}

/// The event envelope shared by every generation, its objects kept as `S` ([`Source`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound = "S: Source")]
pub(crate) struct RawEnvelope<S> {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub data: RawData<S>,
}

/// `data`: `object` in legacy payloads; `resource`, `context` and `links` in 2026-03-30 ones.
#[derive(Deserialize)]
#[serde(bound = "S: Source")]
pub(crate) struct RawData<S> {
    #[serde(default = "none")]
    pub object: Option<S>,
    #[serde(default = "none")]
    pub resource: Option<S>,
    #[serde(default = "none")]
    pub context: Option<S>,
    #[serde(default)]
    pub links: Option<RawLinks>,
}

fn none<S>() -> Option<S> {
    None
}

#[derive(Deserialize)]
pub(crate) struct RawLinks {
    #[serde(default)]
    pub quo: Option<String>,
}

/// A string, or an array of strings: v4 payloads send `to` both ways.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(text) if text.is_empty() => Vec::new(),
            Self::One(text) => vec![text],
            Self::Many(items) => items,
        }
    }
}

/// Any JSON number of seconds (integer or fractional), rounded to whole seconds.
#[derive(Clone, Copy)]
pub(crate) struct Seconds(pub u32);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if !value.is_finite() || value < 0.0 {
            return Err(serde::de::Error::custom(
                "a duration must be a non-negative number",
            ));
        }
        // Saturates at u32::MAX seconds (136 years), which no call reaches.
        Ok(Self(value.round().min(f64::from(u32::MAX)) as u32))
    }
}

pub(crate) fn seconds(value: Option<Seconds>) -> Option<u32> {
    value.map(|Seconds(s)| s)
}

/// A file attached to a message or call (`media[]`, `voicemail`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawMedia {
    pub url: Option<String>,
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub duration: Option<Seconds>,
}

/// A 2026-03-30 call recording.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawRecording {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub duration: Option<Seconds>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDialogue {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawJob {
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub result: Option<RawJobResult>,
}

#[derive(Deserialize)]
pub(crate) struct RawJobResult {
    #[serde(default)]
    pub data: Vec<RawJobField>,
}

#[derive(Deserialize)]
pub(crate) struct RawJobField {
    pub name: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawFieldUpdate {
    #[serde(default)]
    pub is_updated: bool,
    #[serde(default)]
    pub updated_value: Option<String>,
}

/// The business object of a message, call, voicemail, summary, transcript or task event:
/// `data.object` (legacy) or `data.resource` (2026-03-30). Every field is optional here;
/// the typed layer decides what each event needs.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawObject {
    pub id: Option<String>,
    pub from: Option<String>,
    pub to: Option<OneOrMany>,
    pub direction: Option<String>,
    pub body: Option<String>,
    pub text: Option<String>,
    pub media: Option<Vec<RawMedia>>,
    pub status: Option<String>,
    pub error_code: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub user_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub conversation_id: Option<String>,
    pub contact_ids: Option<Vec<String>>,
    pub participants: Option<Vec<String>>,
    pub answered_by: Option<String>,
    pub answered_by_user_id: Option<String>,
    pub initiated_by: Option<String>,
    pub duration: Option<Seconds>,
    pub voicemail: Option<RawMedia>,
    pub has_voicemail: Option<bool>,
    pub ai_handled: Option<Value>,
    pub forwarded_from: Option<String>,
    pub forwarded_to: Option<String>,
    pub call_route: Option<String>,
    pub recordings: Option<Vec<RawRecording>>,
    pub phone_menu_selection: Option<String>,
    pub phone_menu_selection_name: Option<String>,
    pub status_reason: Option<String>,
    pub voicemail_id: Option<String>,
    pub call_id: Option<String>,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    pub summary: Option<Vec<String>>,
    pub next_steps: Option<Vec<String>>,
    pub processing_status: Option<String>,
    pub from_phone_number: Option<String>,
    pub handled_by_ai_agent: Option<bool>,
    pub jobs: Option<Vec<RawJob>>,
    pub dialogue: Option<Vec<RawDialogue>>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub due_date: Option<String>,
    pub updated_due_date: Option<String>,
    pub assigned_to: Option<String>,
    pub unassigned_from: Option<String>,
    pub updated_fields: Option<std::collections::BTreeMap<String, RawFieldUpdate>>,
}

/// `data.context` of 2026-03-30 payloads (all event families).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawContext {
    pub org_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub contacts: Option<RawContacts>,
    pub sender_identifier: Option<String>,
    pub recipient_identifiers: Option<Vec<String>>,
    pub phone_number_type: Option<String>,
    pub participants: Option<RawParticipants>,
    pub shared_with_ids: Option<Vec<String>>,
    pub actor_id: Option<String>,
    pub activity_id: Option<String>,
    pub phone_number_group_id: Option<String>,
}

/// Contact ids and lookup status: from the 2026-03-30 context when present, else the legacy
/// object's `contactIds` (with no lookup status).
pub(crate) fn contacts(
    context: Option<RawContacts>,
    legacy_ids: Option<Vec<String>>,
) -> (
    Vec<openphone_types::ContactId>,
    Option<openphone_types::LookupStatus>,
) {
    let (ids, lookup) = match context {
        Some(contacts) => (
            contacts.ids,
            contacts
                .lookup_status
                .as_deref()
                .map(openphone_types::LookupStatus::from),
        ),
        None => (legacy_ids.unwrap_or_default(), None),
    };
    (
        ids.into_iter()
            .map(openphone_types::ContactId::new)
            .collect(),
        lookup,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawContacts {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub lookup_status: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawParticipants {
    #[serde(default)]
    pub workspace: Vec<String>,
    #[serde(default)]
    pub external: Vec<String>,
    #[serde(default)]
    pub resolution: Option<String>,
}

/// A contact: the legacy app shape (`fields` as an array or a map, `notes`, `sharedWith`) and
/// the 2026-03-30 shape (`emails`, `phoneNumbers`, `customFields`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawContact {
    pub id: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub picture_url: Option<String>,
    #[serde(default)]
    pub emails: Option<Vec<RawTypedValue>>,
    #[serde(default)]
    pub phone_numbers: Option<Vec<RawTypedValue>>,
    #[serde(default)]
    pub custom_fields: Option<Vec<RawCustomField>>,
    #[serde(default)]
    pub fields: Option<Value>,
    #[serde(default)]
    pub notes: Option<Vec<RawNote>>,
    #[serde(default)]
    pub shared_with: Option<Vec<String>>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
pub(crate) struct RawTypedValue {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawCustomField {
    pub name: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "type")]
    pub field_type: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// A legacy `fields[]` item: `{name, type, value}`.
#[derive(Deserialize)]
pub(crate) struct RawLegacyField {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub field_type: Option<String>,
    #[serde(default)]
    pub value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawNote {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_messages_do_not_quote_input() {
        let Err(error) = from_value::<RawObject>(
            serde_json::json!({"id": 12345, "text": "secret text"}),
            "$.data.object",
        ) else {
            panic!("an integer id must not parse");
        };
        let shown = error.to_string();
        assert!(shown.contains("$.data.object.id"), "{shown}");
        assert!(
            shown.contains("invalid type: integer, expected a string"),
            "{shown}"
        );
        assert!(!shown.contains("12345"), "{shown}");

        let Err(error) = from_value::<RawObject>(
            serde_json::json!({"createdAt": "yesterday at noon"}),
            "$.data.object",
        ) else {
            panic!("a bad timestamp must not parse");
        };
        assert!(!error.to_string().contains("noon"), "{error}");

        let error = parse_json(b"{\"a\": \"secret").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
