//! The simulated workspace: its records, how they render as v1 and 2026-03-30 JSON, and the
//! deterministic seed that fills it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::rng::Rng;

/// How large and varied the seeded workspace is.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOptions {
    /// The seed: the same seed gives the same workspace.
    pub seed: u64,
    /// Workspace phone numbers.
    pub phone_numbers: usize,
    /// Users.
    pub users: usize,
    /// Conversations (one-to-one; every tenth is a group of three).
    pub conversations: usize,
    /// Messages per conversation, from the first to the second number.
    pub messages_per_conversation: (u32, u32),
    /// Calls per conversation, from the first to the second number.
    pub calls_per_conversation: (u32, u32),
    /// When the seeded history starts; it spans the following 270 days.
    pub start: OffsetDateTime,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            phone_numbers: 2,
            users: 3,
            conversations: 50,
            messages_per_conversation: (1, 8),
            calls_per_conversation: (0, 2),
            start: OffsetDateTime::from_unix_timestamp(1_767_225_600)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }
}

pub(crate) fn ts(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

#[derive(Debug, Clone)]
pub(crate) struct PhoneNumberRec {
    pub id: String,
    pub number: String,
    pub name: String,
    pub user_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct UserRec {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub role: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct ContactRec {
    pub id: String,
    pub external_id: Option<String>,
    pub source: Option<String>,
    pub body: Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct ConversationRec {
    pub id: String,
    pub phone_number_id: String,
    pub participants: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub last_activity_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MessageRec {
    pub id: String,
    pub conversation_id: String,
    pub phone_number_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub text: String,
    pub direction: &'static str,
    pub status: &'static str,
    pub user_id: String,
    pub media: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct CallRec {
    pub id: String,
    pub conversation_id: String,
    pub phone_number_id: String,
    pub participant: String,
    pub direction: &'static str,
    pub answered: bool,
    pub voicemail: bool,
    pub duration: u32,
    pub user_id: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct WebhookRec {
    pub id: String,
    pub user_id: String,
    pub label: Option<String>,
    pub status: String,
    pub url: String,
    pub key: String,
    pub events: Vec<String>,
    pub resource_ids: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// Everything the simulated API serves.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub org_id: String,
    pub phone_numbers: Vec<PhoneNumberRec>,
    pub users: Vec<UserRec>,
    pub contacts: BTreeMap<String, ContactRec>,
    pub conversations: Vec<ConversationRec>,
    pub messages: HashMap<String, Vec<MessageRec>>,
    pub calls: HashMap<String, Vec<CallRec>>,
    pub webhooks: Vec<WebhookRec>,
    pub rng: Option<Rng>,
}

const TEXTS: [&str; 8] = [
    "Hi, is bay 3 free on Saturday at 6?",
    "Yes, it is. Shall I book it for two hours?",
    "There is a new crack in the basement wall, photo attached.",
    "Thanks, we will send someone Tuesday morning.",
    "Can I move my booking to next week?",
    "Done. See you then!",
    "How much is a pier inspection?",
    "It starts at $250; I can text you the quote.",
];

impl Workspace {
    /// A workspace seeded from `options`: the same options give the same records.
    pub(crate) fn seeded(options: &SeedOptions) -> Self {
        let mut rng = Rng::new(options.seed);
        let mut workspace = Self {
            org_id: rng.id("OR"),
            ..Self::default()
        };
        for index in 0..options.users.max(1) {
            workspace.users.push(UserRec {
                id: rng.id("US"),
                email: format!("user{index}@example.com"),
                first_name: format!("User {index}"),
                role: if index == 0 { "owner" } else { "member" },
            });
        }
        let user_ids: Vec<String> = workspace.users.iter().map(|user| user.id.clone()).collect();
        for index in 0..options.phone_numbers.max(1) {
            workspace.phone_numbers.push(PhoneNumberRec {
                id: rng.id("PN"),
                number: format!("+1555010{:04}", index),
                name: format!("Line {index}"),
                user_ids: user_ids.clone(),
            });
        }
        let span = 270 * 24 * 3600;
        for index in 0..options.conversations {
            let number = &workspace.phone_numbers[index % workspace.phone_numbers.len()];
            let customer = format!("+1202{:07}", 1_000_000 + index);
            let mut participants = vec![customer.clone()];
            if index % 10 == 9 {
                participants.push(format!("+1303{:07}", 1_000_000 + index));
                participants.push(format!("+1404{:07}", 1_000_000 + index));
            }
            let created = options.start + Duration::seconds(rng.range(0, span) as i64);
            let conversation_id = rng.id("CN");
            let user_id = user_ids[index % user_ids.len()].clone();
            let mut at = created;
            let mut messages = Vec::new();
            let count = rng.range(
                u64::from(options.messages_per_conversation.0),
                u64::from(options.messages_per_conversation.1),
            );
            for n in 0..count {
                at += Duration::seconds(rng.range(30, 4 * 3600) as i64);
                let incoming = n % 2 == 0;
                let media = if rng.chance(0.1) {
                    vec![rng.id("ME")]
                } else {
                    Vec::new()
                };
                messages.push(MessageRec {
                    id: rng.id("AC"),
                    conversation_id: conversation_id.clone(),
                    phone_number_id: number.id.clone(),
                    from: if incoming {
                        customer.clone()
                    } else {
                        number.number.clone()
                    },
                    to: if incoming {
                        vec![number.number.clone()]
                    } else {
                        participants.clone()
                    },
                    text: TEXTS[rng.range(0, TEXTS.len() as u64 - 1) as usize].to_owned(),
                    direction: if incoming { "incoming" } else { "outgoing" },
                    status: if incoming { "received" } else { "delivered" },
                    user_id: user_id.clone(),
                    media,
                    created_at: at,
                    updated_at: at,
                });
            }
            let mut calls = Vec::new();
            let call_count = rng.range(
                u64::from(options.calls_per_conversation.0),
                u64::from(options.calls_per_conversation.1),
            );
            for _ in 0..call_count {
                at += Duration::seconds(rng.range(60, 24 * 3600) as i64);
                let answered = rng.chance(0.7);
                calls.push(CallRec {
                    id: rng.id("AC"),
                    conversation_id: conversation_id.clone(),
                    phone_number_id: number.id.clone(),
                    participant: customer.clone(),
                    direction: if rng.chance(0.6) {
                        "incoming"
                    } else {
                        "outgoing"
                    },
                    answered,
                    voicemail: !answered && rng.chance(0.5),
                    duration: if answered {
                        rng.range(20, 900) as u32
                    } else {
                        0
                    },
                    user_id: user_id.clone(),
                    created_at: at,
                });
            }
            let last_activity_id = calls
                .last()
                .map(|call| call.id.clone())
                .or_else(|| messages.last().map(|message| message.id.clone()));
            workspace.conversations.push(ConversationRec {
                id: conversation_id.clone(),
                phone_number_id: number.id.clone(),
                participants: participants.clone(),
                created_at: created,
                updated_at: at,
                last_activity_at: at,
                last_activity_id,
            });
            let contact_id = format!("{:024x}", rng.next_u64() as u128 * 7 + index as u128);
            workspace.contacts.insert(
                contact_id.clone(),
                ContactRec {
                    id: contact_id,
                    external_id: None,
                    source: None,
                    body: json!({
                        "defaultFields": {
                            "company": null, "emails": [], "firstName": format!("Customer {index}"),
                            "lastName": null, "phoneNumbers": [{"name": "mobile", "value": customer, "id": rng.id("PH")}],
                            "role": null
                        },
                        "customFields": []
                    }),
                    created_at: created,
                    updated_at: created,
                },
            );
            workspace.messages.insert(conversation_id.clone(), messages);
            workspace.calls.insert(conversation_id, calls);
        }
        workspace.sort_conversations();
        workspace.rng = Some(rng);
        workspace
    }

    /// Most recent activity first, as the API lists them.
    pub(crate) fn sort_conversations(&mut self) {
        self.conversations.sort_by(|a, b| {
            b.last_activity_at
                .cmp(&a.last_activity_at)
                .then_with(|| a.id.cmp(&b.id))
        });
    }

    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        self.rng.get_or_insert_with(|| Rng::new(7)).id(prefix)
    }

    pub(crate) fn find_message(&self, id: &str) -> Option<&MessageRec> {
        self.messages
            .values()
            .flatten()
            .find(|message| message.id == id)
    }

    pub(crate) fn find_call(&self, id: &str) -> Option<&CallRec> {
        self.calls.values().flatten().find(|call| call.id == id)
    }

    pub(crate) fn number_by_ref(&self, reference: &str) -> Option<&PhoneNumberRec> {
        self.phone_numbers
            .iter()
            .find(|number| number.id == reference || number.number == reference)
    }

    /// The conversation on `phone_number_id` with exactly these participants, if any.
    pub(crate) fn conversation_with(
        &self,
        phone_number_id: &str,
        participants: &[String],
    ) -> Option<&ConversationRec> {
        let mut wanted = participants.to_vec();
        wanted.sort();
        self.conversations.iter().find(|conversation| {
            let mut have = conversation.participants.clone();
            have.sort();
            conversation.phone_number_id == phone_number_id && have == wanted
        })
    }

    /// The conversation for these participants, created when missing.
    pub(crate) fn conversation_for(
        &mut self,
        phone_number_id: &str,
        participants: &[String],
        at: OffsetDateTime,
    ) -> String {
        if let Some(conversation) = self.conversation_with(phone_number_id, participants) {
            return conversation.id.clone();
        }
        let id = self.new_id("CN");
        self.conversations.push(ConversationRec {
            id: id.clone(),
            phone_number_id: phone_number_id.to_owned(),
            participants: participants.to_vec(),
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            last_activity_id: None,
        });
        self.messages.insert(id.clone(), Vec::new());
        self.calls.insert(id.clone(), Vec::new());
        id
    }

    pub(crate) fn touch(&mut self, conversation_id: &str, activity_id: &str, at: OffsetDateTime) {
        if let Some(conversation) = self
            .conversations
            .iter_mut()
            .find(|c| c.id == conversation_id)
        {
            conversation.last_activity_at = at;
            conversation.updated_at = at;
            conversation.last_activity_id = Some(activity_id.to_owned());
        }
        self.sort_conversations();
    }
}

pub(crate) fn message_json(message: &MessageRec) -> Value {
    json!({
        "id": message.id, "to": message.to, "from": message.from, "text": message.text,
        "phoneNumberId": message.phone_number_id, "conversationId": message.conversation_id,
        "direction": message.direction, "userId": message.user_id, "status": message.status,
        "createdAt": ts(message.created_at), "updatedAt": ts(message.updated_at),
    })
}

/// The 2026-03-30 shape, with `media[]` served by the simulator itself.
pub(crate) fn workspace_message_json(message: &MessageRec, base_url: &str) -> Value {
    json!({
        "id": message.id, "direction": message.direction, "text": message.text,
        "status": message.status, "from": message.from, "to": message.to,
        "phoneNumberId": message.phone_number_id, "conversationId": message.conversation_id,
        "userId": message.user_id,
        "media": message.media.iter().map(|id| json!({"url": format!("{base_url}/media/{id}"), "type": "image/jpeg"})).collect::<Vec<_>>(),
        "createdAt": ts(message.created_at), "updatedAt": ts(message.updated_at),
    })
}

pub(crate) fn call_json(call: &CallRec) -> Value {
    let answered_at = call
        .answered
        .then(|| ts(call.created_at + Duration::seconds(5)));
    let completed_at = ts(call.created_at + Duration::seconds(5 + i64::from(call.duration)));
    json!({
        "answeredAt": answered_at, "answeredBy": call.answered.then(|| call.user_id.clone()),
        "initiatedBy": (call.direction == "outgoing").then(|| call.user_id.clone()),
        "direction": call.direction, "status": "completed", "completedAt": completed_at,
        "createdAt": ts(call.created_at), "callRoute": (call.direction == "incoming").then_some("phone-number"),
        "duration": call.duration, "forwardedFrom": null, "forwardedTo": null, "aiHandled": null,
        "id": call.id, "phoneNumberId": call.phone_number_id, "participants": [call.participant],
        "updatedAt": completed_at, "userId": call.user_id,
    })
}

pub(crate) fn workspace_call_json(call: &CallRec) -> Value {
    let status = if call.answered {
        "answered"
    } else {
        "unanswered"
    };
    json!({
        "id": call.id, "direction": call.direction, "status": status,
        "answeredAt": call.answered.then(|| ts(call.created_at + Duration::seconds(5))),
        "completedAt": ts(call.created_at + Duration::seconds(5 + i64::from(call.duration))),
        "createdAt": ts(call.created_at), "duration": call.duration, "hasVoicemail": call.voicemail,
        "phoneNumberId": call.phone_number_id, "conversationId": call.conversation_id,
        "userId": call.user_id, "participants": [call.participant],
    })
}

pub(crate) fn conversation_json(conversation: &ConversationRec) -> Value {
    json!({
        "assignedTo": null, "createdAt": ts(conversation.created_at), "deletedAt": null,
        "id": conversation.id, "lastActivityAt": ts(conversation.last_activity_at),
        "lastActivityId": conversation.last_activity_id, "mutedUntil": null, "name": null,
        "participants": conversation.participants, "phoneNumberId": conversation.phone_number_id,
        "snoozedUntil": null, "updatedAt": ts(conversation.updated_at),
    })
}

pub(crate) fn contact_json(contact: &ContactRec) -> Value {
    let mut body = contact.body.clone();
    if let Value::Object(fields) = &mut body {
        fields.insert("id".into(), json!(contact.id));
        fields.insert("externalId".into(), json!(contact.external_id));
        fields.insert("source".into(), json!(contact.source));
        fields.entry("sourceUrl").or_insert(Value::Null);
        fields.entry("customFields").or_insert(json!([]));
        fields.insert("createdAt".into(), json!(ts(contact.created_at)));
        fields.insert("updatedAt".into(), json!(ts(contact.updated_at)));
    }
    body
}

pub(crate) fn phone_number_json(number: &PhoneNumberRec, users: &[UserRec]) -> Value {
    let open = json!({"CA": "unrestricted", "Intl": "restricted", "US": "unrestricted"});
    json!({
        "id": number.id, "groupId": "1", "portRequestId": null, "formattedNumber": number.number,
        "forward": null, "name": number.name, "number": number.number, "portingStatus": null, "symbol": null,
        "users": users.iter().filter(|user| number.user_ids.contains(&user.id)).map(|user| json!({
            "email": user.email, "firstName": user.first_name, "lastName": null, "id": user.id,
            "role": user.role, "groupId": "GR1",
        })).collect::<Vec<_>>(),
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "restrictions": {"calling": open.clone(), "messaging": open},
    })
}

pub(crate) fn user_json(user: &UserRec) -> Value {
    json!({
        "id": user.id, "email": user.email, "firstName": user.first_name, "lastName": null,
        "pictureUrl": null, "role": user.role,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
    })
}

pub(crate) fn webhook_json(webhook: &WebhookRec, org_id: &str) -> Value {
    json!({
        "id": webhook.id, "userId": webhook.user_id, "orgId": org_id, "label": webhook.label,
        "status": webhook.status, "url": webhook.url, "key": webhook.key,
        "createdAt": ts(webhook.created_at), "updatedAt": ts(webhook.created_at), "deletedAt": null,
        "events": webhook.events, "resourceIds": webhook.resource_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_workspace() {
        let options = SeedOptions {
            conversations: 20,
            ..SeedOptions::default()
        };
        let a = Workspace::seeded(&options);
        let b = Workspace::seeded(&options);
        let ids = |w: &Workspace| {
            w.conversations
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.conversations.len(), 20);
        let other = Workspace::seeded(&SeedOptions { seed: 7, ..options });
        assert_ne!(ids(&a), ids(&other));
        // Every tenth conversation is a group.
        assert_eq!(
            a.conversations
                .iter()
                .filter(|c| c.participants.len() == 3)
                .count(),
            2
        );
    }
}
