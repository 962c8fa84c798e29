//! Typed, opaque identifiers.
//!
//! Each id is a newtype over the string OpenPhone sends. No prefix is checked: OpenPhone treats
//! ids as opaque and some (contacts) have no prefix at all.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id string as given by OpenPhone.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id into its string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A message id (`AC…`; messages and calls share the activity prefix).
    MessageId
);
id_type!(
    /// A call id (`AC…`).
    CallId
);
id_type!(
    /// An activity id (`AC…`) whose kind is not known: a message, a call or a voicemail.
    ActivityId
);
id_type!(
    /// A workspace phone number id (`PN…`).
    PhoneNumberId
);
id_type!(
    /// A user id (`US…`), or an AI actor id (`SYU…`) where OpenPhone says so.
    UserId
);
id_type!(
    /// A contact id (no fixed prefix; legacy webhooks used `CT…`).
    ContactId
);
id_type!(
    /// A conversation id (`CN…`).
    ConversationId
);
id_type!(
    /// A webhook event id (`EV…` in legacy payloads; opaque in 2026-03-30 payloads).
    EventId
);
id_type!(
    /// A workspace (organization) id (`OR…`).
    OrgId
);
id_type!(
    /// A voicemail id (`VM…`).
    VoicemailId
);
id_type!(
    /// A task id (`TK…`).
    TaskId
);
id_type!(
    /// A v1 webhook id (`WH…`).
    WebhookId
);
id_type!(
    /// A phone number group id (`GR…`).
    GroupId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = CallId::from("ACabc");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ACabc\"");
        let back: CallId = serde_json::from_str("\"ACabc\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(back.to_string(), "ACabc");
    }
}
