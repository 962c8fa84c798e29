//! Test doubles: a manual clock and a scriptable fake sender that records what went out.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use openphone_types::E164;
use sms_campaigns::{
    CampaignSpec, CampaignStore, Clock, ContactId, Error, ListId, MemberStatus, MemoryStore,
    NewContact, OutgoingText, Schedule, SendResult, Sender, Weekday,
};
use time::OffsetDateTime;

/// A clock that moves only when told.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }
    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
    pub fn advance(&self, by: time::Duration) {
        *self.0.lock().expect("clock") += by;
    }
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().expect("clock") = at;
    }
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

/// What the fake sender does with one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Accepted.
    Send,
    /// Refused (a 400).
    Fail,
    /// A timeout: the message went out (`true`) or not.
    Ambiguous(bool),
    /// Rate limited: certainly not sent.
    Defer,
    /// The process dies during the request: the message went out (`true`) or not; the
    /// future never completes.
    Crash(bool),
}

/// One message that really went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: String,
    pub to: E164,
    pub text: String,
    pub at: OffsetDateTime,
}

/// A callback run before each send.
pub type Hook = Box<dyn FnMut(&OutgoingText) + Send>;

#[derive(Clone)]
pub struct FakeSender {
    pub outbox: Arc<Mutex<Vec<Sent>>>,
    pub script: Arc<Mutex<VecDeque<Behavior>>>,
    clock: ManualClock,
    /// Called before each send (to pause a campaign mid-run, say).
    pub hook: Arc<Mutex<Option<Hook>>>,
}

impl FakeSender {
    pub fn new(clock: &ManualClock) -> Self {
        FakeSender {
            outbox: Arc::default(),
            script: Arc::default(),
            clock: clock.clone(),
            hook: Arc::default(),
        }
    }
    pub fn then(&self, behavior: Behavior) {
        self.script.lock().expect("script").push_back(behavior);
    }
    pub fn sent(&self) -> Vec<Sent> {
        self.outbox.lock().expect("outbox").clone()
    }
    fn deliver(&self, message: &OutgoingText) -> String {
        let mut outbox = self.outbox.lock().expect("outbox");
        let id = format!("AC{}", outbox.len() + 1);
        outbox.push(Sent {
            id: id.clone(),
            to: message.to.clone(),
            text: message.text.clone(),
            at: self.clock.now(),
        });
        id
    }
}

impl Sender for FakeSender {
    async fn send(&self, message: &OutgoingText) -> SendResult {
        if let Some(hook) = self.hook.lock().expect("hook").as_mut() {
            hook(message);
        }
        let behavior = self
            .script
            .lock()
            .expect("script")
            .pop_front()
            .unwrap_or(Behavior::Send);
        match behavior {
            Behavior::Send => SendResult::Sent {
                message_id: self.deliver(message),
            },
            Behavior::Fail => SendResult::Failed {
                reason: "400: invalid recipient".into(),
            },
            Behavior::Ambiguous(went_out) => {
                if went_out {
                    self.deliver(message);
                }
                SendResult::Ambiguous {
                    reason: "timed out".into(),
                }
            }
            Behavior::Defer => SendResult::Deferred {
                reason: "429 rate limited".into(),
            },
            Behavior::Crash(went_out) => {
                if went_out {
                    self.deliver(message);
                }
                std::future::pending().await
            }
        }
    }

    async fn find(
        &self,
        message: &OutgoingText,
        since: OffsetDateTime,
    ) -> Result<Option<String>, Error> {
        Ok(self
            .outbox
            .lock()
            .expect("outbox")
            .iter()
            .find(|sent| sent.to == message.to && sent.text == message.text && sent.at >= since)
            .map(|sent| sent.id.clone()))
    }
}

pub fn phone(n: u32) -> E164 {
    E164::parse(&format!("+1415555{n:04}")).expect("valid test number")
}

/// A list of `n` validated members named `P0`, `P1`, ... with numbers from 0.
pub async fn kept_list(
    store: &MemoryStore,
    n: u32,
    at: OffsetDateTime,
) -> (ListId, Vec<ContactId>) {
    let list = store.create_list("Audience", at).await.expect("list");
    let mut ids = Vec::new();
    for i in 0..n {
        let (contact, _) = store
            .upsert_contact(
                NewContact {
                    phone: Some(phone(i)),
                    first_name: Some(format!("P{i}")),
                    ..NewContact::default()
                },
                at,
            )
            .await
            .expect("contact");
        store
            .add_member(&list.id, &contact.id, at)
            .await
            .expect("member");
        store
            .set_member_status(&list.id, u64::from(i), MemberStatus::Kept, None, None)
            .await
            .expect("kept");
        ids.push(contact.id);
    }
    (list.id, ids)
}

/// Every day at 10:00 UTC, `per_run` per run; message A and optionally B.
pub fn daily_spec(list: &ListId, per_run: u32, ab: bool) -> CampaignSpec {
    CampaignSpec {
        name: "Trickle".into(),
        message_a: "A: hi {{first_name}}".into(),
        message_b: ab.then(|| "B: hello {{first_name}}".into()),
        list_id: list.clone(),
        sender: phone(9999),
        schedule: Schedule {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            send_time: "10:00".into(),
            timezone: "UTC".into(),
            per_run,
        },
        opt_out_text: None,
    }
}
