//! The contract: every 2xx response shape of the published v1 document deserializes into the
//! client's types, and every operation but tasks is covered.
//!
//! The document carries no whole-response examples, only per-property `examples`, so each
//! response is synthesized from its schema twice: once with every optional property present
//! and nullable ones filled (from the property's example when its type fits), once with
//! optional properties left out and nullable ones `null`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use openphone_client::Page;
use openphone_client::model::call::{
    Call, CallRecording, CallSummary, CallTranscript, CallVoicemail,
};
use openphone_client::model::contact::{Contact, CustomFieldDefinition};
use openphone_client::model::conversation::Conversation;
use openphone_client::model::message::Message;
use openphone_client::model::phone_number::PhoneNumber;
use openphone_client::model::user::User;
use openphone_client::model::webhook::Webhook;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const DOCUMENT: &str = "shared/openphone/openapi/quo-public-api-v1.2026-08.json";

/// Finds `shared/` beside the repository (or any ancestor), as CI lays it out.
fn document_path() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join(DOCUMENT))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| panic!("{DOCUMENT} not found beside the repository or above it"))
}

#[derive(Deserialize)]
struct Data<T> {
    #[allow(dead_code)]
    data: T,
}

type Check = fn(&Value) -> Result<(), String>;

fn check<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    let text = value.to_string();
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize::<_, T>(deserializer)
        .map(|_| ())
        .map_err(|error| format!("{} at {}", error.inner(), error.path()))
}

/// operationId → the client type its 2xx body decodes into (`None`: no body, 204).
fn coverage() -> BTreeMap<&'static str, Option<Check>> {
    BTreeMap::from([
        ("sendMessage_v1", Some(check::<Data<Message>> as Check)),
        ("listMessages_v1", Some(check::<Page<Message>>)),
        ("getMessageById_v1", Some(check::<Data<Message>>)),
        ("listCalls_v1", Some(check::<Page<Call>>)),
        ("getCallById_v1", Some(check::<Data<Call>>)),
        (
            "getCallRecordings_v1",
            Some(check::<Data<Vec<CallRecording>>>),
        ),
        ("getCallSummary_v1", Some(check::<Data<CallSummary>>)),
        ("getCallTranscript_v1", Some(check::<Data<CallTranscript>>)),
        ("getCallVoicemails_v1", Some(check::<Data<CallVoicemail>>)),
        (
            "getContactCustomFields_v1",
            Some(check::<Data<Vec<CustomFieldDefinition>>>),
        ),
        ("createContact_v1", Some(check::<Data<Contact>>)),
        ("listContacts_v1", Some(check::<Page<Contact>>)),
        ("getContactById_v1", Some(check::<Data<Contact>>)),
        ("updateContactById_v1", Some(check::<Data<Contact>>)),
        ("deleteContact_v1", None),
        ("listConversations_v1", Some(check::<Page<Conversation>>)),
        ("markConversationAsRead_v1", Some(check::<Conversation>)),
        ("markConversationAsDone_v1", Some(check::<Conversation>)),
        ("markConversationAsOpen_v1", Some(check::<Conversation>)),
        ("listPhoneNumbers_v1", Some(check::<Data<Vec<PhoneNumber>>>)),
        ("getPhoneNumberById_v1", Some(check::<Data<PhoneNumber>>)),
        ("listUsers_v1", Some(check::<Page<User>>)),
        ("getUserById_v1", Some(check::<Data<User>>)),
        ("listWebhooks_v1", Some(check::<Data<Vec<Webhook>>>)),
        ("getWebhookById_v1", Some(check::<Data<Webhook>>)),
        ("deleteWebhookById_v1", None),
        ("createMessageWebhook_v1", Some(check::<Data<Webhook>>)),
        ("createCallWebhook_v1", Some(check::<Data<Webhook>>)),
        ("createCallSummaryWebhook_v1", Some(check::<Data<Webhook>>)),
        (
            "createCallTranscriptWebhook_v1",
            Some(check::<Data<Webhook>>),
        ),
    ])
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// Every property, nullable ones filled.
    Full,
    /// Required properties only, nullable ones null.
    Sparse,
}

struct Synth<'a> {
    document: &'a Value,
}

impl Synth<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let mut node = self.document;
                for part in reference.trim_start_matches("#/").split('/') {
                    node = &node[part];
                }
                node
            }
            None => schema,
        }
    }

    fn value(&self, schema: &Value, variant: Variant, example: Option<&Value>) -> Value {
        let schema = self.resolve(schema);
        let example = schema
            .get("examples")
            .and_then(|e| e.get(0))
            .or_else(|| schema.get("example"))
            .or(example);
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            let is_null =
                |branch: &&Value| self.resolve(branch).get("type") == Some(&json!("null"));
            let nullable = branches.iter().any(|branch| is_null(&branch));
            let concrete: Vec<&Value> = branches.iter().filter(|branch| !is_null(branch)).collect();
            return match (variant, nullable) {
                (Variant::Sparse, true) => Value::Null,
                (Variant::Sparse, false) => {
                    self.value(concrete[concrete.len() - 1], variant, example)
                }
                (Variant::Full, _) => self.value(concrete[0], variant, example),
            };
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(fields) = self.value(part, variant, None) {
                    merged.extend(fields);
                }
            }
            return Value::Object(merged);
        }
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return match variant {
                Variant::Full => values[0].clone(),
                Variant::Sparse => values[values.len() - 1].clone(),
            };
        }
        let kind = schema.get("type").and_then(Value::as_str);
        if kind == Some("object") || schema.get("properties").is_some() {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut object = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    if variant == Variant::Sparse && !required.contains(&name.as_str()) {
                        continue;
                    }
                    object.insert(name.clone(), self.value(property, variant, None));
                }
            }
            return Value::Object(object);
        }
        let fits = |value: &Value| match kind {
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some("array") => value.is_array(),
            _ => false,
        };
        if let Some(example) = example.filter(|example| fits(example)) {
            return example.clone();
        }
        match kind {
            Some("array") => {
                let item = schema.get("items").cloned().unwrap_or(json!({}));
                Value::Array(vec![self.value(&item, variant, None)])
            }
            Some("string") => json!(self.string(schema)),
            Some("integer") => json!(7),
            Some("number") => json!(7.5),
            Some("boolean") => json!(true),
            _ => json!("any"),
        }
    }

    fn string(&self, schema: &Value) -> String {
        if schema.get("format").and_then(Value::as_str) == Some("date-time") {
            return "2022-01-01T00:00:00Z".to_owned();
        }
        let pattern = schema
            .get("pattern")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if pattern.contains(r"\+[1-9]") {
            return "+15555555555".to_owned();
        }
        if let Some(prefix) = pattern.strip_prefix('^').and_then(|p| p.split('(').next())
            && !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_uppercase())
        {
            return format!("{prefix}123abc");
        }
        "text".to_owned()
    }
}

#[test]
fn every_response_shape_decodes_and_every_operation_is_covered() {
    let text = std::fs::read_to_string(document_path()).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    let synth = Synth {
        document: &document,
    };
    let coverage = coverage();
    let mut uncovered = Vec::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (route, operations) in document["paths"].as_object().unwrap() {
        if route.starts_with("/v1/tasks") {
            continue;
        }
        for (verb, operation) in operations.as_object().unwrap() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let Some(check) = coverage.get(id) else {
                uncovered.push(format!("{} {route} ({id})", verb.to_uppercase()));
                continue;
            };
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                match (check, schema.is_null()) {
                    (None, true) => checked += 1,
                    (None, false) => {
                        failures.push(format!("{id} {status}: has a body the client ignores"))
                    }
                    (Some(_), true) => failures.push(format!(
                        "{id} {status}: no body, but the client decodes one"
                    )),
                    (Some(check), false) => {
                        for variant in [Variant::Full, Variant::Sparse] {
                            let instance = synth.value(schema, variant, None);
                            if let Err(error) = check(&instance) {
                                let name = if variant == Variant::Full {
                                    "full"
                                } else {
                                    "sparse"
                                };
                                failures.push(format!("{id} {status} ({name}): {error}"));
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "operations the client does not cover:\n{}",
        uncovered.join("\n")
    );
    assert!(
        failures.is_empty(),
        "response shapes that do not decode:\n{}",
        failures.join("\n")
    );
    // 28 operations with a body, in two variants, and 2 without.
    assert_eq!(checked, 58, "the document changed: review the coverage");
}
