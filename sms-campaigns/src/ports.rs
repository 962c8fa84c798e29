//! What the engine needs from the rest of the system: a [`Sender`] of text messages and the
//! [`History`] of each number (opt-outs and earlier conversations).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use openphone_types::E164;
use time::OffsetDateTime;

use crate::Error;

/// A message the engine sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingText {
    /// Our number.
    pub from: E164,
    /// The recipient.
    pub to: E164,
    /// The final text.
    pub text: String,
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Accepted, with the message id.
    Sent {
        /// OpenPhone's message id.
        message_id: String,
    },
    /// Refused for sure (a 4xx): it did not go out.
    Failed {
        /// Why.
        reason: String,
    },
    /// Unknown (a timeout or 5xx after the request went out): it may have gone out.
    Ambiguous {
        /// Why.
        reason: String,
    },
    /// Not sent, and worth trying again later: the request never went out (rate limited,
    /// connection refused, sending not configured). The recipient goes back to pending and
    /// the run stops.
    Deferred {
        /// Why.
        reason: String,
    },
}

/// Sends campaign messages, one recipient per request, through the shared rate-limited
/// client; and finds a message when a send's outcome was unknown.
pub trait Sender: Send + Sync {
    /// Sends `message`. Must not retry a request that may have gone out.
    fn send(&self, message: &OutgoingText) -> impl Future<Output = SendResult> + Send;

    /// The id of a message from `message.from` to `message.to` with `message.text`, created
    /// at or after `since`, if OpenPhone has one. An error leaves the question open.
    fn find(
        &self,
        message: &OutgoingText,
        since: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;
}

/// What the engine asks about a number just before texting it.
pub trait History: Send + Sync {
    /// Whether `phone` is opted out now.
    fn opted_out(&self, phone: &E164) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Whether `phone` exchanged any message or call with us (either direction) before
    /// `before`.
    fn communicated_before(
        &self,
        phone: &E164,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// An in-memory [`History`], for tests and for embedding. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryHistory {
    inner: Arc<Mutex<HistoryInner>>,
}

#[derive(Debug, Default)]
struct HistoryInner {
    opted_out: HashSet<E164>,
    first_contact: HashMap<E164, OffsetDateTime>,
}

impl MemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message or call with `phone` at `at`.
    pub fn communicated(&self, phone: &E164, at: OffsetDateTime) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let first = inner.first_contact.entry(phone.clone()).or_insert(at);
        *first = (*first).min(at);
    }

    /// Opts `phone` out (STOP) or back in (START).
    pub fn set_opted_out(&self, phone: &E164, opted_out: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if opted_out {
            inner.opted_out.insert(phone.clone());
        } else {
            inner.opted_out.remove(phone);
        }
    }
}

impl History for MemoryHistory {
    async fn opted_out(&self, phone: &E164) -> Result<bool, Error> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(inner.opted_out.contains(phone))
    }

    async fn communicated_before(
        &self,
        phone: &E164,
        before: OffsetDateTime,
    ) -> Result<bool, Error> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(inner
            .first_contact
            .get(phone)
            .is_some_and(|first| *first < before))
    }
}
