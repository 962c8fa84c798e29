#![doc = include_str!("../README.md")]

mod api;
mod config;
mod deliver;
mod events;
mod rng;
mod workspace;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use openphone_webhooks::SigningSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

pub use config::{DeliveryOptions, Faults, SimulatorConfig, WebhookTarget};
pub use workspace::SeedOptions;

use deliver::{Deliverer, Target};
use rng::Rng;
use workspace::{CallRec, MessageRec, Workspace};

/// A simulator that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A webhook target's secret is not a usable signing secret.
    #[error("webhook target {url}: {source}")]
    Target {
        /// The target's URL.
        url: String,
        /// Why the secret is unusable.
        #[source]
        source: openphone_webhooks::Error,
    },
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of what the simulator served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// API requests received (authorized or not).
    pub requests: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Requests answered with an injected 500.
    pub server_errors: u64,
    /// Messages accepted for sending.
    pub sends: u64,
    /// Webhook delivery attempts.
    pub deliveries_attempted: u64,
    /// Deliveries answered 2xx.
    pub deliveries_succeeded: u64,
    /// Attempts that failed (and were retried, unless abandoned).
    pub delivery_failures: u64,
    /// Deliveries given up after the last attempt.
    pub deliveries_abandoned: u64,
}

/// A text from a customer to a workspace number, to script inbound traffic.
#[derive(Debug, Clone, Deserialize)]
pub struct InboundMessage {
    /// The customer's number (E.164).
    pub from: String,
    /// The workspace number it goes to (its E.164 number or its `PN…` id).
    pub to: String,
    /// The text.
    pub text: String,
    /// Attach this many images (served by the simulator at `/media/{id}`), at most 10.
    #[serde(default)]
    pub media: usize,
}

/// A call from a customer to a workspace number, to script inbound traffic.
#[derive(Debug, Clone, Deserialize)]
pub struct InboundCall {
    /// The customer's number (E.164).
    pub from: String,
    /// The workspace number called (its E.164 number or its `PN…` id).
    pub to: String,
    /// Whether someone answered (then a recording, a summary and a transcript follow).
    #[serde(default)]
    pub answered: bool,
    /// Whether the caller left a voicemail (unanswered calls only).
    #[serde(default)]
    pub voicemail: bool,
    /// Length in seconds of an answered call.
    #[serde(default = "default_duration")]
    pub duration: u32,
}

fn default_duration() -> u32 {
    60
}

/// What the simulator reads the time from: the system clock unless a test sets one.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub(crate) struct Shared {
    /// The time of new records (messages, calls, contacts, webhooks); signatures are always
    /// made at the system time, as the receiving end checks them against its own.
    pub clock: Mutex<Clock>,
    pub workspace: Mutex<Workspace>,
    pub config: SimulatorConfig,
    pub faults: Mutex<(Faults, Rng)>,
    pub limits: Mutex<HashMap<String, VecDeque<Instant>>>,
    pub stats: Counters,
    pub sent: Mutex<Vec<String>>,
    pub deliverer: Deliverer,
    pub targets: Vec<Target>,
    pub base_url: String,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub server_errors: AtomicU64,
    pub sends: AtomicU64,
}

impl Shared {
    /// The current time by the simulator's clock.
    pub fn now(&self) -> OffsetDateTime {
        let clock = self.clock.lock().unwrap_or_else(|e| e.into_inner()).clone();
        clock()
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        let delivery = &self.deliverer.stats;
        Stats {
            requests: self.stats.requests.load(Ordering::Relaxed),
            rate_limited: self.stats.rate_limited.load(Ordering::Relaxed),
            server_errors: self.stats.server_errors.load(Ordering::Relaxed),
            sends: self.stats.sends.load(Ordering::Relaxed),
            deliveries_attempted: delivery.attempted.load(Ordering::Relaxed),
            deliveries_succeeded: delivery.succeeded.load(Ordering::Relaxed),
            delivery_failures: delivery.failed_attempts.load(Ordering::Relaxed),
            deliveries_abandoned: delivery.abandoned.load(Ordering::Relaxed),
        }
    }

    /// Configured targets plus enabled webhooks created through `/v1/webhooks` (legacy
    /// scheme, signed with their key).
    fn targets(&self, workspace: &Workspace, phone_number_id: &str) -> Vec<Target> {
        let mut targets = self.targets.clone();
        for webhook in &workspace.webhooks {
            let covers = webhook
                .resource_ids
                .iter()
                .any(|id| id == "*" || id == phone_number_id);
            if webhook.status != "enabled" || !covers {
                continue;
            }
            if let Ok(secret) = SigningSecret::legacy(&webhook.key) {
                targets.push(Target {
                    url: webhook.url.clone(),
                    secret,
                    events: Some(webhook.events.clone()),
                });
            }
        }
        targets
    }

    /// After `delivered_after`, marks a sent message delivered and delivers
    /// `message.delivered`.
    pub(crate) fn schedule_delivered(self: &Arc<Self>, message: MessageRec) {
        let shared = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(shared.config.delivery.delivered_after).await;
            let now = shared.now();
            let mut workspace = shared.workspace.lock().unwrap_or_else(|e| e.into_inner());
            let Some(stored) = workspace
                .messages
                .get_mut(&message.conversation_id)
                .and_then(|messages| messages.iter_mut().find(|m| m.id == message.id))
            else {
                return;
            };
            stored.status = "delivered";
            stored.updated_at = now;
            let delivered = stored.clone();
            let event_id = workspace.new_id("EV");
            let event = events::message(
                &event_id,
                "message.delivered",
                &workspace.org_id,
                &delivered,
                &shared.base_url,
                now,
            );
            let targets = shared.targets(&workspace, &delivered.phone_number_id);
            let batch = deliver::for_targets(&targets, &[event], &mut || workspace.new_id(""));
            drop(workspace);
            shared.deliverer.enqueue(batch);
        });
    }

    /// Validates a scripted customer's number and finds (or opens) their conversation with
    /// the workspace number `to`, returning the locked workspace to continue in.
    fn open_inbound(
        &self,
        from: &str,
        to: &str,
        now: OffsetDateTime,
    ) -> Result<
        (
            std::sync::MutexGuard<'_, Workspace>,
            workspace::PhoneNumberRec,
            String,
        ),
        String,
    > {
        if openphone_types::E164::parse(from).is_err() {
            return Err("from must be an E.164 number".to_owned());
        }
        let mut workspace = self.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let number = workspace
            .number_by_ref(to)
            .cloned()
            .ok_or("to is not a number of this workspace")?;
        let conversation_id = workspace.conversation_for(&number.id, &[from.to_owned()], now);
        Ok((workspace, number, conversation_id))
    }

    pub(crate) fn inbound_message(&self, inbound: InboundMessage) -> Result<String, String> {
        if inbound.media > 10 {
            return Err("media: at most 10 attachments".to_owned());
        }
        let now = self.now();
        let (mut workspace, number, conversation_id) =
            self.open_inbound(&inbound.from, &inbound.to, now)?;
        let media = (0..inbound.media).map(|_| workspace.new_id("ME")).collect();
        let message = MessageRec {
            id: workspace.new_id("AC"),
            conversation_id: conversation_id.clone(),
            phone_number_id: number.id.clone(),
            from: inbound.from,
            to: vec![number.number.clone()],
            text: inbound.text,
            direction: "incoming",
            status: "received",
            user_id: number.user_ids[0].clone(),
            media,
            created_at: now,
            updated_at: now,
        };
        workspace
            .messages
            .entry(conversation_id.clone())
            .or_default()
            .push(message.clone());
        workspace.touch(&conversation_id, &message.id, now);
        let event_id = workspace.new_id("EV");
        let event = events::message(
            &event_id,
            "message.received",
            &workspace.org_id,
            &message,
            &self.base_url,
            now,
        );
        let targets = self.targets(&workspace, &number.id);
        let batch = deliver::for_targets(&targets, &[event], &mut || workspace.new_id(""));
        drop(workspace);
        self.deliverer.enqueue(batch);
        Ok(message.id)
    }

    pub(crate) fn inbound_call(&self, inbound: InboundCall) -> Result<String, String> {
        let now = self.now();
        let (mut workspace, number, conversation_id) =
            self.open_inbound(&inbound.from, &inbound.to, now)?;
        let call = CallRec {
            id: workspace.new_id("AC"),
            conversation_id: conversation_id.clone(),
            phone_number_id: number.id.clone(),
            participant: inbound.from,
            direction: "incoming",
            answered: inbound.answered,
            voicemail: !inbound.answered && inbound.voicemail,
            duration: if inbound.answered {
                inbound.duration
            } else {
                0
            },
            user_id: number.user_ids[0].clone(),
            created_at: now,
        };
        workspace
            .calls
            .entry(conversation_id.clone())
            .or_default()
            .push(call.clone());
        workspace.touch(&conversation_id, &call.id, now);
        let org_id = workspace.org_id.clone();
        let events = events::call(
            &mut |prefix| workspace.new_id(prefix),
            &org_id,
            &number.number,
            &call,
            &self.base_url,
        );
        let targets = self.targets(&workspace, &number.id);
        let batch = deliver::for_targets(&targets, &events, &mut || workspace.new_id(""));
        drop(workspace);
        self.deliverer.enqueue(batch);
        Ok(call.id)
    }
}

/// A running simulated OpenPhone.
///
/// ```no_run
/// use openphone_simulator::{Simulator, SimulatorConfig};
///
/// # async fn run() -> Result<(), openphone_simulator::Error> {
/// let simulator = Simulator::start(SimulatorConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
/// println!("API at {} with key {}", simulator.base_url(), simulator.api_key());
/// simulator.stop().await;
/// # Ok(()) }
/// ```
pub struct Simulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Seeds the workspace and serves it on `address` (port 0 picks a free one).
    ///
    /// # Errors
    /// [`Error::Target`] for a webhook target with an unusable secret, [`Error::Io`] when the
    /// address cannot be bound.
    pub async fn start(config: SimulatorConfig, address: SocketAddr) -> Result<Self, Error> {
        let targets = config
            .webhook_targets
            .iter()
            .map(|target| {
                SigningSecret::parse(&target.secret)
                    .map(|secret| Target {
                        url: target.url.clone(),
                        secret,
                        events: None,
                    })
                    .map_err(|source| Error::Target {
                        url: target.url.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock: Mutex::new(Arc::new(OffsetDateTime::now_utc)),
            workspace: Mutex::new(Workspace::seeded(&config.seed)),
            faults: Mutex::new((config.faults.clone(), Rng::new(config.seed.seed ^ 0xFA_u64))),
            limits: Mutex::new(HashMap::new()),
            stats: Counters::default(),
            sent: Mutex::new(Vec::new()),
            deliverer: Deliverer::start(config.delivery.clone(), config.seed.seed),
            targets,
            base_url: format!("http://{address}"),
            config,
        });
        let router = api::router(shared.clone());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "simulator stopped");
            }
        });
        Ok(Self {
            address,
            shared,
            shutdown,
            task,
        })
    }

    /// Reads the time from `clock` from now on, for the creation and update times of what
    /// the simulator records (sent and inbound messages, calls, contacts, webhooks): a test
    /// whose server runs on a fake clock gives the simulator the same one, so that listings
    /// filtered by time (`createdAfter`) agree with it. Webhook signatures keep the system
    /// time.
    pub fn set_clock(&self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) {
        *self.shared.clock.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(clock);
    }

    /// The base URL to give a client, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The first accepted API key.
    pub fn api_key(&self) -> &str {
        self.shared
            .config
            .api_keys
            .first()
            .map_or("", String::as_str)
    }

    /// The workspace numbers, as `(id, E.164 number)`.
    pub fn phone_numbers(&self) -> Vec<(String, String)> {
        let workspace = self
            .shared
            .workspace
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        workspace
            .phone_numbers
            .iter()
            .map(|n| (n.id.clone(), n.number.clone()))
            .collect()
    }

    /// How many conversations, messages and calls the workspace holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        let workspace = self
            .shared
            .workspace
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (
            workspace.conversations.len(),
            workspace.messages.values().map(Vec::len).sum(),
            workspace.calls.values().map(Vec::len).sum(),
        )
    }

    /// Ids of the messages accepted for sending, in order.
    pub fn sent(&self) -> Vec<String> {
        self.shared
            .sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Scripts an inbound text: stores it and delivers `message.received`.
    ///
    /// # Errors
    /// A description of the problem when `from` is not E.164 or `to` is not a workspace number.
    pub fn inbound_message(&self, message: InboundMessage) -> Result<String, String> {
        self.shared.inbound_message(message)
    }

    /// Scripts an inbound call: stores it and delivers its events.
    ///
    /// # Errors
    /// As for [`Simulator::inbound_message`].
    pub fn inbound_call(&self, call: InboundCall) -> Result<String, String> {
        self.shared.inbound_call(call)
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0 = faults;
    }

    /// Counters of requests and deliveries so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}
