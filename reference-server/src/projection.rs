//! From a webhook event to changes of the normalized records.
//!
//! Every change is a merge that gives the same result in any order (a join): statuses keep the
//! highest rank (ties broken by name), a call keeps its earliest answer, latest completion and
//! longest duration, text fields keep the first value known. Events arriving out of order
//! (a recording before its call completed, `sent` after `delivered`) therefore converge to the
//! same records, and a duplicate changes nothing.

use openphone_webhooks::event::{
    Call, CallOutcome, CallSummary, CallTranscript, Contact, Message, Voicemail,
};
use openphone_webhooks::types::{
    CallStatus, Direction, MessageStatus, PhoneAddress, ProcessingStatus,
};
use openphone_webhooks::{Event, EventData};
use serde_json::json;
use time::OffsetDateTime;

use crate::compliance::Keyword;
use crate::ingest::unix_ms;

/// Our workspace's own numbers: each phone number id (`PN…`) with its E.164 number. An
/// incoming group message lists the receiving line's number among its recipients, with the
/// other participants; the projection needs it to key the group's conversation by the
/// others. Known from the phone numbers an import reads and from the sender of every outgoing
/// message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnNumbers(std::collections::BTreeMap<String, String>);

/// The phone number id and the sender of an outgoing message.
fn sending_line(event: &Event) -> Option<(&str, &str)> {
    match &event.data {
        EventData::Message(message) if message.direction == Direction::Outgoing => Some((
            message.phone_number_id.as_ref()?.as_str(),
            message.from.as_ref()?.as_str(),
        )),
        _ => None,
    }
}

impl OwnNumbers {
    /// These lines, as `(phone number id, number)`.
    pub fn new(lines: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(lines.into_iter().collect())
    }

    /// The number of the line `phone_number_id`, when known.
    pub fn number(&self, phone_number_id: &str) -> Option<&str> {
        self.0.get(phone_number_id).map(String::as_str)
    }

    /// Whether `number` is one of these lines' numbers.
    pub fn is_ours(&self, number: &str) -> bool {
        self.0.values().any(|ours| ours == number)
    }

    /// Adds `other`'s lines to these (theirs win where both know a line).
    pub fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    /// Whether `event` is an outgoing message from a line not known (or known with another
    /// number) yet.
    pub fn learns(&self, event: &Event) -> bool {
        sending_line(event).is_some_and(|(line, from)| self.number(line) != Some(from))
    }

    /// Learns the line of an outgoing message; returns whether it was new.
    pub fn learn(&mut self, event: &Event) -> bool {
        match sending_line(event) {
            Some((line, from)) if self.number(line) != Some(from) => {
                self.0.insert(line.to_owned(), from.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Whether `event` is an incoming group message to a line whose number is not known (so
    /// the numbers should be read again before projecting it).
    pub fn misses(&self, event: &Event) -> bool {
        match &event.data {
            EventData::Message(message) => {
                message.direction == Direction::Incoming
                    && message.to.len() > 1
                    && message
                        .phone_number_id
                        .as_ref()
                        .is_none_or(|line| self.number(line.as_str()).is_none())
            }
            _ => false,
        }
    }

    /// The other participants of `message`: the recipients of an outgoing one but its sender;
    /// the sender of an incoming one, with the recipients other than the receiving line when
    /// it went to a group. When that line's number is not known, the sender alone (its
    /// one-to-one conversation), rather than a key that would include our number.
    fn counterparts<'a>(&self, message: &'a Message) -> Vec<&'a PhoneAddress> {
        if message.direction != Direction::Incoming {
            let others: Vec<&PhoneAddress> = message
                .to
                .iter()
                .filter(|to| Some(*to) != message.from.as_ref())
                .collect();
            return if others.is_empty() {
                message.counterparts()
            } else {
                others
            };
        }
        if message.to.len() < 2 {
            return message.from.iter().collect();
        }
        let line = message
            .phone_number_id
            .as_ref()
            .and_then(|line| self.number(line.as_str()));
        match line {
            Some(ours) => message
                .from
                .iter()
                .chain(message.to.iter().filter(|to| to.as_str() != ours))
                .collect(),
            None => message.from.iter().collect(),
        }
    }
}

/// One merge into the normalized records.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A conversation, keyed by our number and the other participants.
    Conversation {
        /// `<phone number id>|<sorted participants>`.
        key: String,
        /// Our number.
        phone_number_id: String,
        /// The other participants, as a JSON array.
        participants: String,
        /// OpenPhone's conversation id, when the event carries it.
        openphone_id: Option<String>,
        /// When the activity happened.
        activity_ms: i64,
    },
    /// A message's fields.
    Message {
        /// The message id.
        id: String,
        /// Its conversation.
        conversation_key: Option<String>,
        /// `incoming` or `outgoing`.
        direction: Option<String>,
        /// Sender.
        from: Option<String>,
        /// Recipients, as a JSON array.
        to: String,
        /// Text.
        body: Option<String>,
        /// Media URLs and types, as a JSON array.
        media: String,
        /// Status.
        status: Option<String>,
        /// The status's rank: a lower rank never replaces a higher one.
        status_rank: i32,
        /// Carrier error code.
        error_code: Option<String>,
        /// Creation time.
        created_ms: Option<i64>,
    },
    /// One status a message was reported in.
    MessageStatus {
        /// The message id.
        message_id: String,
        /// The status.
        status: String,
        /// When it was reported (the event's time).
        reported_ms: i64,
    },
    /// A call's fields.
    Call {
        /// The call id.
        id: String,
        /// Its conversation.
        conversation_key: Option<String>,
        /// `incoming` or `outgoing`.
        direction: Option<String>,
        /// Status as sent.
        status: Option<String>,
        /// The status's rank.
        status_rank: i32,
        /// What happened (`missed`, `answered`...).
        outcome: Option<String>,
        /// The outcome's rank: evidence of an answer outranks a missed report.
        outcome_rank: i32,
        /// Creation time.
        created_ms: Option<i64>,
        /// Answer time.
        answered_ms: Option<i64>,
        /// End time.
        completed_ms: Option<i64>,
        /// Length in seconds.
        duration_s: Option<i64>,
        /// Voicemail audio URL.
        voicemail_url: Option<String>,
        /// Whether a voicemail was left.
        has_voicemail: bool,
    },
    /// A call recording.
    Recording {
        /// The call.
        call_id: String,
        /// Where OpenPhone serves it.
        url: String,
        /// MIME type.
        content_type: Option<String>,
        /// Length in seconds.
        duration_s: Option<i64>,
    },
    /// An AI summary.
    Summary {
        /// The call.
        call_id: String,
        /// Processing status.
        status: Option<String>,
        /// The status's rank.
        status_rank: i32,
        /// Points, as a JSON array.
        summary: String,
        /// Next steps, as a JSON array.
        next_steps: String,
    },
    /// A version of a contact.
    Contact {
        /// The contact id.
        id: String,
        /// First name.
        first_name: Option<String>,
        /// Last name.
        last_name: Option<String>,
        /// Company.
        company: Option<String>,
        /// The integration's id for it.
        external_id: Option<String>,
        /// Whether this version is a deletion.
        deleted: bool,
        /// The version's time (the contact's `updatedAt`, else the event's).
        updated_ms: i64,
        /// The whole version as JSON, to break ties and keep every field.
        content: String,
        /// Its phone numbers, E.164 when they parse.
        phones: Vec<String>,
    },
    /// A media file (message attachment, call recording, voicemail) to copy into the blob
    /// store.
    Media {
        /// `message`, `recording` or `voicemail`.
        owner_kind: &'static str,
        /// The message or call id.
        owner_id: String,
        /// Where OpenPhone serves it.
        url: String,
        /// The MIME type the event declared.
        declared_type: Option<String>,
        /// Its place in its owner's list (from 0): a message's attachments and a call's
        /// recordings are listed in the order the event gives them.
        position: i64,
    },
    /// An opt-out or opt-in keyword received: appended to the consent ledger.
    Consent {
        /// The inbound message.
        message_id: String,
        /// The number that sent it.
        phone: String,
        /// `opt_out` or `opt_in`.
        action: &'static str,
        /// The keyword, upper-cased.
        keyword: String,
        /// When the message was sent.
        at_ms: i64,
    },
    /// A message that mentions an opt-out keyword without being one: flagged for review.
    ReviewFlag {
        /// The inbound message.
        message_id: String,
        /// The number that sent it.
        phone: String,
        /// Why it was flagged.
        reason: String,
        /// When the message was sent.
        at_ms: i64,
    },
    /// A compliance reply to send once (opt-out or opt-in confirmation, help text).
    Reply {
        /// The inbound message it answers.
        message_id: String,
        /// `opt_out`, `opt_in` or `help`.
        kind: &'static str,
        /// The number to answer.
        to: String,
        /// Our number that received it (a phone number id or E.164).
        sender: String,
        /// When the inbound message was sent.
        created_ms: i64,
    },
    /// A contact detail found in an inbound message, for a person to approve.
    Suggestion {
        /// The inbound message.
        message_id: String,
        /// The number that sent it.
        phone: String,
        /// `name`, `email` or `address`.
        kind: &'static str,
        /// The detail.
        value: String,
        /// When the message was sent.
        at_ms: i64,
    },
    /// A health check message came back through its webhook.
    HealthReceipt {
        /// The check's token.
        token: String,
        /// When the webhook was received, unix milliseconds.
        received_ms: i64,
    },
    /// An inbound message from a number campaigns may have written to: every campaign
    /// recipient with that number attempted at or before it counts it as a reply (and as an
    /// opt-out when it is one), keeping the earliest.
    CampaignResponse {
        /// The number that wrote.
        phone: String,
        /// When the message was sent.
        at_ms: i64,
        /// Whether the message is an opt-out keyword.
        opt_out: bool,
    },
    /// A delivery report on a message a campaign may have sent: `delivered`, or the carrier's
    /// failure. A failure never overrides a delivery.
    CampaignDelivery {
        /// The message.
        message_id: String,
        /// The failure, `None` for a delivery.
        failure: Option<String>,
        /// When it was reported.
        reported_ms: i64,
    },
    /// One of our numbers, seen as the sender of an outgoing message: recorded with its phone
    /// number id unless already known.
    OwnNumber {
        /// The phone number id (`PN…`).
        phone_number_id: String,
        /// The number.
        number: String,
        /// When it was seen.
        seen_ms: i64,
    },
    /// A transcript.
    Transcript {
        /// The call.
        call_id: String,
        /// Processing status.
        status: Option<String>,
        /// The status's rank.
        status_rank: i32,
        /// The dialogue, as a JSON array of `{speaker, user_id, content, start, end}`.
        dialogue: String,
    },
}

fn message_rank(status: &MessageStatus) -> i32 {
    match status {
        MessageStatus::Queued | MessageStatus::Accepted | MessageStatus::Scheduled => 1,
        MessageStatus::Sending => 2,
        MessageStatus::Sent => 3,
        MessageStatus::Failed | MessageStatus::Canceled => 4,
        MessageStatus::Undelivered => 5,
        MessageStatus::Delivered
        | MessageStatus::PartiallyDelivered
        | MessageStatus::Receiving
        | MessageStatus::Received => 6,
        MessageStatus::Read => 7,
        _ => 0,
    }
}

fn call_rank(status: &CallStatus) -> i32 {
    match status {
        CallStatus::Queued | CallStatus::Initiated => 1,
        CallStatus::Ringing => 2,
        CallStatus::InProgress | CallStatus::Answered => 3,
        CallStatus::Unknown(_) => 0,
        _ => 4,
    }
}

fn outcome(outcome: CallOutcome) -> (Option<String>, i32) {
    let (name, rank) = match outcome {
        CallOutcome::InProgress => ("in-progress", 1),
        CallOutcome::Missed => ("missed", 2),
        CallOutcome::Failed => ("failed", 3),
        CallOutcome::Forwarded => ("forwarded", 3),
        CallOutcome::Answered => ("answered", 4),
        CallOutcome::AiHandled => ("ai-handled", 5),
        _ => return (None, 0),
    };
    (Some(name.to_owned()), rank)
}

fn processing_rank(status: Option<&ProcessingStatus>) -> i32 {
    match status {
        Some(ProcessingStatus::Absent) => 1,
        Some(ProcessingStatus::InProgress) => 2,
        Some(ProcessingStatus::Failed) => 3,
        Some(ProcessingStatus::Completed) => 4,
        _ => 0,
    }
}

/// The conversation change for our number and the other participants, if both are known.
fn conversation(
    phone_number_id: Option<&str>,
    counterparts: &[&PhoneAddress],
    openphone_id: Option<&str>,
    activity: Option<OffsetDateTime>,
) -> Option<(String, Change)> {
    let phone_number_id = phone_number_id?;
    if counterparts.is_empty() {
        return None;
    }
    let mut participants: Vec<&str> = counterparts.iter().map(|p| p.as_str()).collect();
    participants.sort_unstable();
    participants.dedup();
    let key = format!("{phone_number_id}|{}", participants.join(","));
    let change = Change::Conversation {
        key: key.clone(),
        phone_number_id: phone_number_id.to_owned(),
        participants: json!(participants).to_string(),
        openphone_id: openphone_id.map(str::to_owned),
        activity_ms: activity.map_or(0, unix_ms),
    };
    Some((key, change))
}

/// The changes an event makes, `own` telling our numbers from the other participants of
/// group messages. Unknown types and tasks make none (they stay in the raw log).
pub fn changes(event: &Event, own: &OwnNumbers) -> Vec<Change> {
    let at = event.created_at.map(unix_ms);
    match &event.data {
        EventData::Message(message) => message_changes(message, at, own),
        EventData::Call(call) => call_changes(call),
        EventData::Voicemail(voicemail) => voicemail_changes(voicemail),
        EventData::CallSummary(summary) => vec![summary_change(summary)],
        EventData::CallTranscript(transcript) => vec![transcript_change(transcript)],
        EventData::Contact(contact) => vec![contact_change(
            contact,
            event.event_type == openphone_webhooks::EventType::ContactDeleted,
            at,
        )],
        _ => Vec::new(),
    }
}

fn message_changes(message: &Message, at: Option<i64>, own: &OwnNumbers) -> Vec<Change> {
    let mut changes = Vec::new();
    let conversation = conversation(
        message.phone_number_id.as_ref().map(|id| id.as_str()),
        &own.counterparts(message),
        message.conversation_id.as_ref().map(|id| id.as_str()),
        message.created_at,
    );
    let key = conversation.as_ref().map(|(key, _)| key.clone());
    changes.extend(conversation.map(|(_, change)| change));
    let status = message.status.as_ref();
    changes.push(Change::Message {
        id: message.id.to_string(),
        conversation_key: key,
        direction: Some(message.direction.to_string()).filter(|d| !d.is_empty()),
        from: message.from.as_ref().map(ToString::to_string),
        to: json!(
            message
                .to
                .iter()
                .map(PhoneAddress::as_str)
                .collect::<Vec<_>>()
        )
        .to_string(),
        body: message.text.clone(),
        media: json!(
            message
                .media
                .iter()
                .map(|m| json!({"url": m.url, "type": m.content_type}))
                .collect::<Vec<_>>()
        )
        .to_string(),
        status: status.map(ToString::to_string),
        status_rank: status.map_or(0, message_rank),
        error_code: message.error_code.clone(),
        created_ms: message.created_at.map(unix_ms),
    });
    if let Some(status) = status {
        let reported_ms = at.or(message.created_at.map(unix_ms)).unwrap_or(0);
        changes.push(Change::MessageStatus {
            message_id: message.id.to_string(),
            status: status.to_string(),
            reported_ms,
        });
        let failure = match status {
            MessageStatus::Delivered => Some(None),
            MessageStatus::Failed | MessageStatus::Undelivered => {
                Some(Some(format!("carrier reported {status}")))
            }
            _ => None,
        };
        if let Some(failure) = failure {
            changes.push(Change::CampaignDelivery {
                message_id: message.id.to_string(),
                failure,
                reported_ms,
            });
        }
    }
    if message.direction == Direction::Outgoing
        && let (Some(phone_number_id), Some(from)) = (&message.phone_number_id, &message.from)
    {
        changes.push(Change::OwnNumber {
            phone_number_id: phone_number_id.to_string(),
            number: from.to_string(),
            seen_ms: at.or(message.created_at.map(unix_ms)).unwrap_or(0),
        });
    }
    changes.extend(message_side_effects(message, at, own));
    changes
}

/// Media and compliance changes of a message: every attachment to copy, and for an inbound
/// text its keyword (see [`crate::compliance::classify`]).
fn message_side_effects(message: &Message, at: Option<i64>, own: &OwnNumbers) -> Vec<Change> {
    let mut changes: Vec<Change> = message
        .media
        .iter()
        .zip(0..)
        .map(|(media, position)| Change::Media {
            owner_kind: "message",
            owner_id: message.id.to_string(),
            url: media.url.clone(),
            declared_type: media.content_type.clone(),
            position,
        })
        .collect();
    if message.direction != Direction::Incoming {
        return changes;
    }
    let Some(from) = &message.from else {
        return changes;
    };
    // A text between two of our own lines is no customer's: no consent, reply or suggestion.
    if own.is_ours(from.as_str()) {
        return changes;
    }
    let at_ms = message.created_at.map(unix_ms).or(at).unwrap_or(0);
    let keyword = message
        .text
        .as_deref()
        .map_or(Keyword::None, crate::compliance::classify);
    // Any inbound message is a reply to a campaign message sent before it, a photo too.
    changes.push(Change::CampaignResponse {
        phone: from.to_string(),
        at_ms,
        opt_out: matches!(&keyword, Keyword::Exact(action, _) if action.consent() == Some("opt_out")),
    });
    let Some(text) = &message.text else {
        return changes;
    };
    for (kind, value) in crate::suggestions::extract(text) {
        changes.push(Change::Suggestion {
            message_id: message.id.to_string(),
            phone: from.to_string(),
            kind: kind.as_str(),
            value,
            at_ms,
        });
    }
    let message_id = message.id.to_string();
    let phone = from.to_string();
    // The line it came in on; without its id, the recipient that is one of our numbers (in a
    // group message the others are customers), or the only recipient.
    let sender = message
        .phone_number_id
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| {
            message
                .to
                .iter()
                .find(|to| own.is_ours(to.as_str()))
                .or(match message.to.as_slice() {
                    [only] => Some(only),
                    _ => None,
                })
                .map(ToString::to_string)
        });
    match keyword {
        Keyword::None => {}
        Keyword::Mentions(word) => changes.push(Change::ReviewFlag {
            message_id,
            phone,
            reason: format!("mentions the opt-out keyword {word} in a longer message"),
            at_ms,
        }),
        Keyword::Exact(action, word) => {
            if let Some(consent) = action.consent() {
                changes.push(Change::Consent {
                    message_id: message_id.clone(),
                    phone: phone.clone(),
                    action: consent,
                    keyword: word,
                    at_ms,
                });
            }
            if let Some(sender) = sender {
                changes.push(Change::Reply {
                    message_id,
                    kind: action.as_str(),
                    to: phone,
                    sender,
                    created_ms: at_ms,
                });
            }
        }
    }
    changes
}

fn call_changes(call: &Call) -> Vec<Change> {
    let mut changes = Vec::new();
    let conversation = conversation(
        call.phone_number_id.as_ref().map(|id| id.as_str()),
        &call.external.iter().collect::<Vec<_>>(),
        call.conversation_id.as_ref().map(|id| id.as_str()),
        call.created_at,
    );
    let key = conversation.as_ref().map(|(key, _)| key.clone());
    changes.extend(conversation.map(|(_, change)| change));
    let (outcome, outcome_rank) = outcome(call.outcome);
    changes.push(Change::Call {
        id: call.id.to_string(),
        conversation_key: key,
        direction: call.direction.as_ref().map(ToString::to_string),
        status: call.status.as_ref().map(ToString::to_string),
        status_rank: call.status.as_ref().map_or(0, call_rank),
        outcome,
        outcome_rank,
        created_ms: call.created_at.map(unix_ms),
        answered_ms: call.answered_at.map(unix_ms),
        completed_ms: call.completed_at.map(unix_ms),
        duration_s: call.duration.map(i64::from),
        voicemail_url: call.voicemail.as_ref().map(|v| v.url.clone()),
        has_voicemail: call.voicemail.is_some() || call.has_voicemail == Some(true),
    });
    for (recording, position) in call.recordings.iter().zip(0..) {
        changes.push(Change::Recording {
            call_id: call.id.to_string(),
            url: recording.url.clone(),
            content_type: recording.content_type.clone(),
            duration_s: recording.duration.map(i64::from),
        });
        changes.push(Change::Media {
            owner_kind: "recording",
            owner_id: call.id.to_string(),
            url: recording.url.clone(),
            declared_type: recording.content_type.clone(),
            position,
        });
    }
    if let Some(voicemail) = &call.voicemail {
        changes.push(Change::Media {
            owner_kind: "voicemail",
            owner_id: call.id.to_string(),
            url: voicemail.url.clone(),
            declared_type: voicemail.content_type.clone(),
            position: 0,
        });
    }
    changes
}

fn voicemail_changes(voicemail: &Voicemail) -> Vec<Change> {
    let Some(call_id) = &voicemail.call_id else {
        return Vec::new();
    };
    vec![Change::Call {
        id: call_id.to_string(),
        conversation_key: None,
        direction: voicemail.direction.as_ref().map(ToString::to_string),
        status: None,
        status_rank: 0,
        outcome: None,
        outcome_rank: 0,
        created_ms: None,
        answered_ms: None,
        completed_ms: None,
        duration_s: None,
        voicemail_url: voicemail.recording_url.clone(),
        has_voicemail: true,
    }]
    .into_iter()
    .chain(voicemail.recording_url.iter().map(|url| Change::Media {
        owner_kind: "voicemail",
        owner_id: call_id.to_string(),
        url: url.clone(),
        declared_type: None,
        position: 0,
    }))
    .collect()
}

fn summary_change(summary: &CallSummary) -> Change {
    Change::Summary {
        call_id: summary.call_id.to_string(),
        status: summary.status.as_ref().map(ToString::to_string),
        status_rank: processing_rank(summary.status.as_ref()),
        summary: json!(summary.summary).to_string(),
        next_steps: json!(summary.next_steps).to_string(),
    }
}

fn transcript_change(transcript: &CallTranscript) -> Change {
    let dialogue: Vec<_> = transcript
        .dialogue
        .iter()
        .map(|line| {
            json!({
                "speaker": line.identifier.as_ref().map(ToString::to_string),
                "user_id": line.user_id.as_ref().map(ToString::to_string),
                "content": line.content,
                "start": line.start,
                "end": line.end,
            })
        })
        .collect();
    Change::Transcript {
        call_id: transcript.call_id.to_string(),
        status: transcript.status.as_ref().map(ToString::to_string),
        status_rank: processing_rank(transcript.status.as_ref()),
        dialogue: json!(dialogue).to_string(),
    }
}

/// The longest phone value a contact keeps, in bytes. An E.164 number has at most 15 digits, and
/// a number as people write it with an extension fits well within this. A longer value is no
/// phone number; it is left out (the raw event keeps it), because PostgreSQL refuses an index
/// entry over about 2,700 bytes and the contact's whole delivery would fail.
const MAX_PHONE_BYTES: usize = 64;

fn contact_change(contact: &Contact, deleted: bool, at: Option<i64>) -> Change {
    let mut phones: Vec<String> = contact
        .phone_numbers
        .iter()
        .map(|phone| {
            let digits: String = phone
                .value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            PhoneAddress::from(digits.as_str())
                .as_e164()
                .map_or_else(|| phone.value.trim().to_owned(), ToString::to_string)
        })
        .filter(|phone| !phone.is_empty() && phone.len() <= MAX_PHONE_BYTES)
        .collect();
    phones.sort();
    phones.dedup();
    let content = json!({
        "first_name": contact.first_name, "last_name": contact.last_name, "company": contact.company,
        "role": contact.role, "external_id": contact.external_id, "phones": phones,
        "emails": contact.emails.iter().map(|e| &e.value).collect::<Vec<_>>(),
        "fields": contact.fields.iter().map(|f| json!({"name": f.name, "value": f.value})).collect::<Vec<_>>(),
    });
    // A contact this server created and pushed carries our id (`loc_` and 32 hex digits) as
    // its external id: its versions merge into our record instead of making a second one.
    let ours = |external: &str| {
        external
            .strip_prefix("loc_")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let id = match contact.external_id.as_deref() {
        Some(external) if ours(external) => external.to_owned(),
        _ => contact.id.to_string(),
    };
    Change::Contact {
        id,
        first_name: contact.first_name.clone(),
        last_name: contact.last_name.clone(),
        company: contact.company.clone(),
        external_id: contact.external_id.clone(),
        deleted,
        updated_ms: contact.updated_at.map(unix_ms).or(at).unwrap_or(0),
        content: content.to_string(),
        phones,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn incoming_group(to: &[&str]) -> Event {
        let body = json!({"id": "EVg", "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T12:00:00Z", "type": "message.received",
            "data": {"object": {"id": "ACg", "object": "message", "from": "+15550001111",
            "to": to, "direction": "incoming", "text": "Hi all", "status": "received",
            "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": "PN1"}}});
        Event::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_outgoing_message_never_keys_by_its_sender() {
        let body = json!({"id": "EVo", "object": "event", "apiVersion": "v4",
            "createdAt": "2026-04-13T12:00:00Z", "type": "message.delivered",
            "data": {"object": {"id": "ACo", "object": "message", "from": "+15550000001",
            "to": ["+15550000001", "+15550002222", "+15550001111"], "direction": "outgoing",
            "text": "Hi all", "status": "delivered", "createdAt": "2026-04-13T12:00:00Z",
            "phoneNumberId": "PN1"}}});
        let event = Event::parse(body.to_string().as_bytes()).unwrap();
        let mut own = OwnNumbers::default();
        assert!(own.learns(&event));
        assert!(own.learn(&event));
        assert_eq!(own.number("PN1"), Some("+15550000001"));
        assert!(!own.learns(&event));
        let changes = changes(&event, &own);
        assert_eq!(
            conversation_key(&changes),
            Some("PN1|+15550001111,+15550002222")
        );
        assert!(changes.contains(&Change::OwnNumber {
            phone_number_id: "PN1".to_owned(),
            number: "+15550000001".to_owned(),
            seen_ms: unix_ms(time::macros::datetime!(2026-04-13 12:00 UTC)),
        }));
    }

    #[test]
    fn keywords_from_our_own_lines_change_no_consent_and_replies_go_from_our_line() {
        let stop = |from: &str, to: &[&str], line: Option<&str>| {
            let body = json!({"id": "EVs", "object": "event", "apiVersion": "v4",
                "createdAt": "2026-04-13T12:00:00Z", "type": "message.received",
                "data": {"object": {"id": "ACs", "object": "message", "from": from,
                "to": to, "direction": "incoming", "text": "STOP", "status": "received",
                "createdAt": "2026-04-13T12:00:00Z", "phoneNumberId": line}}});
            Event::parse(body.to_string().as_bytes()).unwrap()
        };
        let own = OwnNumbers::new([
            ("PN1".to_owned(), "+15550000001".to_owned()),
            ("PN2".to_owned(), "+15550000002".to_owned()),
        ]);
        let replies = |event: &Event| -> Vec<(String, String)> {
            changes(event, &own)
                .into_iter()
                .filter_map(|change| match change {
                    Change::Reply { to, sender, .. } => Some((to, sender)),
                    _ => None,
                })
                .collect()
        };
        // Staff testing from one of our lines to another: nothing.
        let internal = stop("+15550000002", &["+15550000001"], Some("PN1"));
        assert!(
            !changes(&internal, &own)
                .iter()
                .any(|change| matches!(change, Change::Consent { .. } | Change::Reply { .. }))
        );
        // A group message without its line's id: the reply goes from our number among the
        // recipients, not from another customer's.
        let group = stop("+15550001111", &["+15550002222", "+15550000001"], None);
        assert_eq!(
            replies(&group),
            [("+15550001111".to_owned(), "+15550000001".to_owned())]
        );
        // One recipient: that one.
        let single = stop("+15550001111", &["+15550000009"], None);
        assert_eq!(
            replies(&single),
            [("+15550001111".to_owned(), "+15550000009".to_owned())]
        );
    }

    fn conversation_key(changes: &[Change]) -> Option<&str> {
        changes.iter().find_map(|change| match change {
            Change::Conversation { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }

    #[test]
    fn a_group_message_is_keyed_by_everyone_but_us() {
        let event = incoming_group(&["+15550000001", "+15550002222"]);
        let own = OwnNumbers::new([("PN1".to_owned(), "+15550000001".to_owned())]);
        assert!(!own.misses(&event));
        assert_eq!(
            conversation_key(&changes(&event, &own)),
            Some("PN1|+15550001111,+15550002222")
        );
        // Our number unknown: the sender's own conversation, never a key with our number.
        let unknown = OwnNumbers::default();
        assert!(unknown.misses(&event));
        assert_eq!(
            conversation_key(&changes(&event, &unknown)),
            Some("PN1|+15550001111")
        );
        // Our other line in the group is a participant like any other.
        let two_lines = OwnNumbers::new([
            ("PN1".to_owned(), "+15550000001".to_owned()),
            ("PN2".to_owned(), "+15550000002".to_owned()),
        ]);
        let with_other_line = incoming_group(&["+15550000002", "+15550000001", "+15550002222"]);
        assert_eq!(
            conversation_key(&changes(&with_other_line, &two_lines)),
            Some("PN1|+15550000002,+15550001111,+15550002222")
        );
        // One recipient: it is ours, whatever is known.
        let one_to_one = incoming_group(&["+15550000001"]);
        assert!(!unknown.misses(&one_to_one));
        assert_eq!(
            conversation_key(&changes(&one_to_one, &unknown)),
            Some("PN1|+15550001111")
        );
    }
}
