//! Small string enums that OpenPhone may extend: each keeps unknown values instead of failing.

/// Defines an enum of the string values OpenPhone sends for a field, with an `Unknown(String)`
/// variant that keeps any value not listed, so a new value never fails deserialization.
///
/// Each variant names its spelling and optional aliases; `as_str`, `Display`, `From<&str>`,
/// `Serialize` and `Deserialize` follow from them.
///
/// ```
/// openphone_types::string_enum! {
///     /// A colour.
///     Colour {
///         /// Red.
///         Red = "red" | "RED",
///     }
/// }
/// assert_eq!(Colour::from("RED"), Colour::Red);
/// assert_eq!(Colour::from("teal"), Colour::Unknown("teal".into()));
/// ```
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this crate does not know yet, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// The value as OpenPhone spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text $(| $alias)* => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as $crate::__private::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(text.as_ref()))
            }
        }
    };
}

crate::string_enum! {
    /// Direction of a message or call, relative to the workspace's number.
    Direction {
        /// From a customer to the workspace.
        Incoming = "incoming",
        /// From the workspace to a customer.
        Outgoing = "outgoing",
    }
}

crate::string_enum! {
    /// Status of a message, as the v1 API and the 2026-03-30 payloads spell it.
    MessageStatus {
        /// Waiting to be sent.
        Queued = "queued",
        /// Being sent.
        Sending = "sending",
        /// Handed to the carrier.
        Sent = "sent",
        /// Confirmed delivered by the carrier (not a read receipt).
        Delivered = "delivered",
        /// Could not be delivered; terminal.
        Undelivered = "undelivered",
        /// Failed while sending.
        Failed = "failed",
        /// Being received.
        Receiving = "receiving",
        /// Received from a customer.
        Received = "received",
        /// Accepted for sending.
        Accepted = "accepted",
        /// Scheduled for later.
        Scheduled = "scheduled",
        /// Read.
        Read = "read",
        /// Delivered to some recipients of a group message.
        PartiallyDelivered = "partially_delivered",
        /// Cancelled before sending.
        Canceled = "canceled",
    }
}

crate::string_enum! {
    /// Status of a call. Legacy payloads use the v1 values (`completed` even for missed calls);
    /// 2026-03-30 `call.completed` uses `answered`, `unanswered`, `ai-handled` and others.
    CallStatus {
        /// Queued.
        Queued = "queued",
        /// Initiated.
        Initiated = "initiated",
        /// Ringing.
        Ringing = "ringing",
        /// In progress.
        InProgress = "in-progress",
        /// Ended, answered or not: read `answeredAt` to tell.
        Completed = "completed",
        /// The line was busy.
        Busy = "busy",
        /// Failed.
        Failed = "failed",
        /// Not answered.
        NoAnswer = "no-answer",
        /// Cancelled.
        Canceled = "canceled",
        /// Missed.
        Missed = "missed",
        /// Answered.
        Answered = "answered",
        /// Not answered (2026-03-30).
        Unanswered = "unanswered",
        /// Forwarded.
        Forwarded = "forwarded",
        /// The caller hung up before an answer.
        Abandoned = "abandoned",
        /// Handled by an AI agent (2026-03-30).
        AiHandled = "ai-handled",
    }
}

crate::string_enum! {
    /// Processing state of a call summary or transcript.
    ProcessingStatus {
        /// Not produced (feature off or nothing to process).
        Absent = "absent",
        /// Still being produced.
        InProgress = "in-progress",
        /// Ready.
        Completed = "completed",
        /// Production failed.
        Failed = "failed",
    }
}

crate::string_enum! {
    /// Whether OpenPhone looked up the contacts of a message or call (2026-03-30).
    LookupStatus {
        /// Contacts were found; their ids are given.
        Matched = "matched",
        /// OpenPhone checked and found none.
        None = "none",
        /// OpenPhone could not check: treat the ids as unknown, not empty.
        Unavailable = "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept() {
        let status: CallStatus = serde_json::from_str("\"teleported\"").unwrap();
        assert_eq!(status, CallStatus::Unknown("teleported".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"teleported\"");
        let known: MessageStatus = serde_json::from_str("\"partially_delivered\"").unwrap();
        assert_eq!(known, MessageStatus::PartiallyDelivered);
        assert_eq!(known.to_string(), "partially_delivered");
    }
}
