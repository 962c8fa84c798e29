//! Trickle campaigns in the server: the `sms-campaigns` engine wired to the database
//! ([`crate::campaign_store`]), to OpenPhone ([`OpenPhoneSender`]) and to what ingestion
//! knows of each number ([`DbHistory`]: the consent ledger, earlier messages and calls).
//!
//! The scheduler runs [`CampaignJob`] every minute (once per minute across replicas; the
//! engine is safe even when two replicas run it at once). Ingestion tells campaigns about
//! replies, opt-outs and delivery reports after each commit.

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
use crate::scheduler::{Job, Schedule};
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
        let found: Option<(i64,)> = self
            .store
            .fetch_optional(
                "SELECT CAST(1 AS BIGINT) FROM conversations c WHERE strpos(c.participants, $1) > 0 AND (\
                   EXISTS (SELECT 1 FROM messages m WHERE m.conversation_key = c.conversation_key AND m.created_ms < $2) \
                   OR EXISTS (SELECT 1 FROM calls k WHERE k.conversation_key = c.conversation_key AND k.created_ms < $2)) \
                 LIMIT 1",
                &[format!("\"{}\"", phone.as_str()).into(), unix_ms(before).into()],
            )
            .await
            .map_err(CampaignError::backend)?;
        Ok(found.is_some())
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

    fn run(&self, _slot: OffsetDateTime) -> BoxFuture<'_, Result<serde_json::Value, String>> {
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
            serde_json::to_value(&report).map_err(|error| error.to_string())
        })
    }
}
