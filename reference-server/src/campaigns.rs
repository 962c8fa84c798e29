//! Trickle campaigns in the server: the `sms-campaigns` engine wired to the database
//! ([`crate::campaign_store`]), to OpenPhone ([`OpenPhoneSender`]) and to what ingestion
//! knows of each number ([`DbHistory`]: the consent ledger, earlier messages and calls).
//!
//! The scheduler runs [`CampaignJob`] every minute (once per minute across replicas; the
//! engine is safe even when two replicas run it at once). Replies, opt-outs and delivery
//! reports reach the recipients as projection changes, in the ingestion transaction
//! ([`report_conformance`] is the suite they pass).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use openphone_client::Client;
use openphone_client::model::message::{ListMessages, SendMessage, Sender as From};
use openphone_types::{Direction, E164, PhoneNumberId};
use sms_campaigns::{
    Engine, EngineConfig, Error as CampaignError, History, NumVerify, OfflineValidator,
    OutgoingText, PhoneValidator, SendResult, Sender, Validation,
};
use time::OffsetDateTime;

use crate::alerts::Alerter;
use crate::ingest::{Clock, unix_ms};
use crate::scheduler::{Job, RunEnd, Schedule, Stop};
use crate::store::Store;

/// The engine as the server runs it.
pub type CampaignEngine = Engine<Store, OpenPhoneSender, DbHistory>;

/// Sends campaign messages through the shared, rate-limited OpenPhone client.
#[derive(Clone)]
pub struct OpenPhoneSender {
    client: Option<Client>,
    numbers: Arc<Mutex<HashMap<String, PhoneNumberId>>>,
}

impl OpenPhoneSender {
    /// A sender over `client` (none: every send is deferred, and the campaign pauses).
    pub fn new(client: Option<Client>) -> Self {
        OpenPhoneSender {
            client,
            numbers: Arc::default(),
        }
    }

    /// The phone number id of our number `from` (listed once, then cached).
    async fn phone_number_id(
        &self,
        client: &Client,
        from: &E164,
    ) -> Result<PhoneNumberId, CampaignError> {
        if let Some(id) = self
            .numbers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(from.as_str())
        {
            return Ok(id.clone());
        }
        let numbers =
            client
                .list_phone_numbers(None)
                .await
                .map_err(|error| CampaignError::Validator {
                    reason: "could not list the workspace's numbers".to_owned(),
                    source: Some(Box::new(error)),
                })?;
        let mut cache = self.numbers.lock().unwrap_or_else(PoisonError::into_inner);
        for number in numbers {
            cache.insert(number.number.as_str().to_owned(), number.id);
        }
        cache
            .get(from.as_str())
            .cloned()
            .ok_or_else(|| CampaignError::NotFound(format!("workspace number {}", from.masked())))
    }
}

impl Sender for OpenPhoneSender {
    async fn send(&self, message: &OutgoingText) -> SendResult {
        let Some(client) = &self.client else {
            return SendResult::Deferred {
                reason: "OPENPHONE_API_KEY is not set".to_owned(),
            };
        };
        let request = match SendMessage::new(
            From::from(message.from.clone()),
            message.to.clone(),
            message.text.clone(),
        ) {
            Ok(request) => request,
            Err(error) => {
                return SendResult::Failed {
                    reason: error.to_string(),
                };
            }
        };
        match client.send_message(&request).await {
            Ok(sent) => SendResult::Sent {
                message_id: sent.id.to_string(),
            },
            Err(error) if error.is_ambiguous() => SendResult::Ambiguous {
                reason: error.to_string(),
            },
            // Refused before anything went out: worth trying again at a later run.
            Err(
                error @ (openphone_client::Error::RateLimited { .. }
                | openphone_client::Error::Unauthorized { .. }
                | openphone_client::Error::Transport(_)
                | openphone_client::Error::Timeout),
            ) => SendResult::Deferred {
                reason: error.to_string(),
            },
            Err(error) => SendResult::Failed {
                reason: error.to_string(),
            },
        }
    }

    async fn find(
        &self,
        message: &OutgoingText,
        since: OffsetDateTime,
    ) -> Result<Option<String>, CampaignError> {
        let Some(client) = &self.client else {
            return Err(CampaignError::Validator {
                reason: "OPENPHONE_API_KEY is not set".to_owned(),
                source: None,
            });
        };
        let phone_number_id = self.phone_number_id(client, &message.from).await?;
        let params =
            ListMessages::new(phone_number_id, vec![message.to.clone()]).created_after(since);
        let mut page_token: Option<String> = None;
        loop {
            let page = client
                .list_messages_page(&params, page_token.as_deref())
                .await
                .map_err(|error| CampaignError::Validator {
                    reason: "could not list the conversation's messages".to_owned(),
                    source: Some(Box::new(error)),
                })?;
            if let Some(found) = page
                .data
                .iter()
                .find(|m| m.direction == Direction::Outgoing && m.text == message.text)
            {
                return Ok(Some(found.id.to_string()));
            }
            match page.next_page_token {
                Some(token) => page_token = Some(token),
                None => return Ok(None),
            }
        }
    }
}

/// What ingestion knows of a number: its consent and its earlier conversations.
#[derive(Clone)]
pub struct DbHistory {
    store: Store,
}

impl DbHistory {
    /// History read from `store`.
    pub fn new(store: Store) -> Self {
        DbHistory { store }
    }
}

impl History for DbHistory {
    async fn opted_out(&self, phone: &E164) -> Result<bool, CampaignError> {
        self.store
            .is_opted_out(phone.as_str())
            .await
            .map_err(CampaignError::backend)
    }

    async fn communicated_before(
        &self,
        phone: &E164,
        before: OffsetDateTime,
    ) -> Result<bool, CampaignError> {
        crate::reads::Reads::communicated_before(&self.store, phone.as_str(), unix_ms(before))
            .await
            .map_err(CampaignError::backend)
    }
}

/// The validator lists go through: NumVerify when `NUMVERIFY_API_KEY` is set, the offline
/// format check otherwise.
#[derive(Debug, Clone)]
pub enum Validator {
    /// The NumVerify API.
    NumVerify(NumVerify),
    /// Format only.
    Offline,
}

impl PhoneValidator for Validator {
    async fn validate(&self, phone: &E164) -> Result<Validation, CampaignError> {
        match self {
            Validator::NumVerify(client) => client.validate(phone).await,
            Validator::Offline => OfflineValidator.validate(phone).await,
        }
    }
}

/// Campaign settings (see `docs/configuration.md`).
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    /// The business name every campaign message carries (`CAMPAIGN_SENDER_NAME`); campaigns
    /// cannot start without it.
    pub business_name: String,
    /// How numbers are validated.
    pub validator: Validator,
    /// The default region of numbers without a country code (`CAMPAIGN_DEFAULT_REGION`).
    pub region: String,
    /// The largest CSV upload, in bytes (`CAMPAIGN_MAX_UPLOAD_BYTES`).
    pub max_upload_bytes: usize,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            business_name: String::new(),
            validator: Validator::Offline,
            region: "US".to_owned(),
            max_upload_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Campaigns as the API and the scheduler use them.
#[derive(Clone)]
pub struct Campaigns {
    /// The engine.
    pub engine: Arc<CampaignEngine>,
    /// The database.
    pub store: Store,
    /// The settings.
    pub settings: Arc<CampaignSettings>,
    /// The clock.
    pub clock: Clock,
}

impl Campaigns {
    /// Campaigns over `store`, sending with `client`, named `worker` in claims.
    pub fn new(
        store: Store,
        client: Option<Client>,
        settings: CampaignSettings,
        clock: Clock,
        worker: &str,
    ) -> Self {
        let engine = Engine::new(
            store.clone(),
            OpenPhoneSender::new(client),
            DbHistory::new(store.clone()),
            EngineConfig::new(worker, settings.business_name.clone()),
            clock.clone(),
        );
        Campaigns {
            engine: Arc::new(engine),
            store,
            settings: Arc::new(settings),
            clock,
        }
    }
}

/// The scheduler's campaign minute: runs due campaigns, settles unknown outcomes, recovers
/// lapsed claims, and raises an alert when a campaign pauses itself.
pub struct CampaignJob {
    /// The campaigns.
    pub campaigns: Campaigns,
    /// Where auto-pauses are reported.
    pub alerter: Alerter,
}

impl Job for CampaignJob {
    fn name(&self) -> &str {
        "campaigns"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(60))
    }

    fn run(&self, _slot: OffsetDateTime, _stop: Stop) -> BoxFuture<'_, Result<RunEnd, String>> {
        Box::pin(async move {
            let report = self
                .campaigns
                .engine
                .tick()
                .await
                .map_err(|error| error.to_string())?;
            for run in &report.runs {
                if let (Some(reason), Some(id)) = (&run.auto_paused, &run.campaign_id) {
                    let raised = self
                        .alerter
                        .raise(
                            "campaign_paused",
                            &format!("campaign_paused:{id}"),
                            &format!("Campaign {id} paused itself"),
                            Some(format!(
                                "{reason}. Check the campaign's ledger, then resume it."
                            )),
                        )
                        .await;
                    if let Err(error) = raised {
                        tracing::error!(%error, "campaign alert not recorded");
                    }
                }
            }
            serde_json::to_value(&report)
                .map(RunEnd::Done)
                .map_err(|error| error.to_string())
        })
    }
}

/// The suite campaign reports must pass however they are recorded: by the SQL statements of
/// the ingestion transaction ([`crate::store::Store`] as both records and campaign store), or
/// by [`crate::records::MemoryRecords::with_campaigns`] on an `sms-campaigns` memory store.
/// The crate runs it on memory, SQLite and PostgreSQL.
pub mod report_conformance {
    use openphone_types::E164;
    use sms_campaigns::{
        CampaignSpec, CampaignStore, NewContact, Outcome, RecipientState, Schedule, Weekday,
    };
    use time::OffsetDateTime;
    use time::macros::datetime;

    use crate::ingest::unix_ms;
    use crate::projection::Change;
    use crate::reads::{ActivityFilter, CampaignMessages, Reads};
    use crate::records::Records;

    const T0: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

    fn phone(n: u32) -> E164 {
        E164::parse(&format!("+1415555{n:04}")).expect("valid test number")
    }

    fn reply(n: u32, minutes: i64, opt_out: bool) -> Change {
        Change::CampaignResponse {
            phone: phone(n).to_string(),
            at_ms: unix_ms(T0 + time::Duration::minutes(minutes)),
            opt_out,
        }
    }

    fn report(message_id: &str, failure: Option<&str>, minutes: i64) -> Change {
        Change::CampaignDelivery {
            message_id: message_id.to_owned(),
            failure: failure.map(str::to_owned),
            reported_ms: unix_ms(T0 + time::Duration::minutes(minutes)),
        }
    }

    /// An outgoing message from the campaign's sender to `n`, as the projection records it:
    /// its conversation and the message.
    fn sent_message(id: &str, n: u32, minutes: i64) -> [Change; 2] {
        let key = format!("PN1|{}", phone(n));
        let at_ms = unix_ms(T0 + time::Duration::minutes(minutes));
        let conversation = Change::Conversation {
            key: key.clone(),
            phone_number_id: "PN1".to_owned(),
            participants: serde_json::json!([phone(n).to_string()]).to_string(),
            openphone_id: None,
            activity_ms: at_ms,
        };
        let message = Change::Message {
            id: id.to_owned(),
            conversation_key: Some(key),
            direction: Some("outgoing".to_owned()),
            from: Some(phone(9000).to_string()),
            to: serde_json::json!([phone(n).to_string()]).to_string(),
            body: Some("Hi".to_owned()),
            media: "[]".to_owned(),
            status: Some("sent".to_owned()),
            status_rank: 1,
            error_code: None,
            created_ms: Some(at_ms),
        };
        [conversation, message]
    }

    /// Runs every case: `records` applies the changes and reads them back, `campaigns` holds
    /// the campaign (both empty of campaigns).
    pub async fn run<R: Records + Reads, C: CampaignStore>(records: R, campaigns: C) {
        // Four recipients, all attempted at T0: three sent, one refused by the API.
        let list = campaigns.create_list("Audience", T0).await.expect("list");
        let mut recipients = Vec::new();
        for n in 300..304 {
            let contact = NewContact {
                phone: Some(phone(n)),
                ..NewContact::default()
            };
            let (contact, _) = campaigns
                .upsert_contact(contact, T0)
                .await
                .expect("contact");
            campaigns
                .add_member(&list.id, &contact.id, T0)
                .await
                .expect("member");
            recipients.push(sms_campaigns::NewRecipient {
                contact_id: contact.id,
                phone: contact.phone,
            });
        }
        let spec = CampaignSpec {
            name: "Reports".to_owned(),
            message_a: "Hi".to_owned(),
            message_b: None,
            list_id: list.id.clone(),
            sender: phone(9000),
            schedule: Schedule {
                days: vec![Weekday::Mon],
                send_time: "10:00".to_owned(),
                timezone: "America/Chicago".to_owned(),
                per_run: 10,
            },
            opt_out_text: None,
        };
        let id = campaigns
            .create_campaign(&spec, T0)
            .await
            .expect("create")
            .id;
        campaigns
            .activate(&id, recipients, None, T0)
            .await
            .expect("activate");
        let lease = T0.unix_timestamp() + 600;
        let claimed = campaigns
            .claim(&id, 1000, 10, "w1", lease, T0)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 4);
        for recipient in &claimed {
            let position = recipient.position;
            assert!(
                campaigns
                    .begin_send(&id, position, "w1", "Hi", lease, T0)
                    .await
                    .expect("begin")
            );
            let outcome = if position == 3 {
                Outcome::Failed {
                    reason: "400 invalid number".to_owned(),
                }
            } else {
                Outcome::Sent {
                    message_id: format!("MSGr{position}"),
                }
            };
            assert!(
                campaigns
                    .finish(&id, position, "w1", &outcome, T0)
                    .await
                    .expect("finish")
            );
        }

        // Reports out of order, each applied twice: the earliest reply and opt-out are kept,
        // a reply before the send is not one, and a delivery beats a failure either way.
        let changes = [
            reply(300, 10, false),
            reply(300, 5, false),
            reply(301, 7, true),
            reply(301, 9, false),
            reply(302, -60, false),
            report("MSGr0", Some("carrier failure"), 1),
            report("MSGr0", None, 2),
            report("MSGr1", None, 1),
            report("MSGr1", Some("late carrier failure"), 2),
            report("MSGr2", Some("unreachable"), 1),
            report("MSGunknown", None, 1),
            reply(399, 5, true),
            // Delivered again, reported as of before the last change: the time stays.
            report("MSGr0", None, 0),
        ];
        for change in &changes {
            for _ in 0..2 {
                records
                    .apply(std::slice::from_ref(change))
                    .await
                    .expect("apply");
            }
        }
        let rows = campaigns
            .recipients(&id, None, None, 10)
            .await
            .expect("recipients");
        let at = |minutes: i64| Some(T0 + time::Duration::minutes(minutes));
        let seen: Vec<_> = rows
            .iter()
            .map(|row| {
                (
                    row.position,
                    row.state,
                    row.detail.as_deref(),
                    row.replied_at,
                    row.opted_out_at,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, RecipientState::Delivered, None, at(5), None),
                (1, RecipientState::Delivered, None, at(7), at(7)),
                (2, RecipientState::Failed, Some("unreachable"), None, None),
                (
                    3,
                    RecipientState::Failed,
                    Some("400 invalid number"),
                    None,
                    None
                ),
            ]
        );
        let totals = campaigns.report(&id).await.expect("report").total;
        assert_eq!(
            (totals.delivered, totals.replied, totals.opted_out),
            (2, 2, 1)
        );
        let updated = |position: usize| rows[position].updated_at;
        assert_eq!(
            (updated(0), updated(1)),
            (
                T0 + time::Duration::minutes(2),
                T0 + time::Duration::minutes(1)
            ),
            "a row's time never moves back"
        );

        // The reads know which messages the campaign sent: the three sent ones (and not an
        // ordinary message to the same number) are campaign messages.
        let mut messages: Vec<Change> = (0..3)
            .flat_map(|position| sent_message(&format!("MSGr{position}"), 300 + position, 0))
            .collect();
        messages.extend(sent_message("MSGother", 300, 30));
        records.apply(&messages).await.expect("messages");
        let feed = |campaigns| ActivityFilter {
            kind: Some("message".to_owned()),
            campaigns,
            ..ActivityFilter::default()
        };
        let only = records
            .activity(&feed(CampaignMessages::Only), None, 10)
            .await
            .expect("campaign messages");
        let mut seen: Vec<_> = only
            .iter()
            .map(|entry| (entry.id.as_str(), entry.campaign_id.as_deref()))
            .collect();
        seen.sort();
        let campaign = Some(id.0.as_str());
        assert_eq!(
            seen,
            [
                ("MSGr0", campaign),
                ("MSGr1", campaign),
                ("MSGr2", campaign)
            ]
        );
        let hidden = records
            .activity(&feed(CampaignMessages::Hide), None, 10)
            .await
            .expect("other messages");
        assert_eq!(
            hidden
                .iter()
                .map(|entry| entry.id.as_str())
                .collect::<Vec<_>>(),
            ["MSGother"]
        );
        let broadcasts = records
            .conversations(None, CampaignMessages::Only, None, 10)
            .await
            .expect("broadcast conversations");
        let mut keys: Vec<_> = broadcasts
            .iter()
            .map(|summary| summary.key.clone())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [format!("PN1|{}", phone(301)), format!("PN1|{}", phone(302))],
            "the number also sent an ordinary message is not a broadcast-only conversation"
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::records::MemoryRecords;

    #[tokio::test]
    async fn memory_campaign_reports_pass_the_conformance_suite() {
        let campaigns = sms_campaigns::MemoryStore::default();
        super::report_conformance::run(MemoryRecords::with_campaigns(campaigns.clone()), campaigns)
            .await;
    }
}
