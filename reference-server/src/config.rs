//! Configuration from environment variables and flags. See `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use openphone_webhooks::SigningSecret;

use crate::Error;

/// Settings of `serve`. Every field has a flag and an environment variable; flags win.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Database URL: `sqlite:<path>` or `postgres://...`. Defaults to a SQLite file in
    /// `DATA_DIR`.
    #[arg(global = true, long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Redacted>,

    /// Address to listen on.
    #[arg(
        global = true,
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen_addr: SocketAddr,

    /// Webhook signing secrets, comma-separated: `whsec_...` secrets (2026-03-30 webhooks)
    /// and base64 secrets (legacy webhooks). All are tried, so secrets can be rotated.
    #[arg(
        global = true,
        long,
        env = "OPENPHONE_WEBHOOK_SECRETS",
        hide_env_values = true
    )]
    pub webhook_secrets: Option<Redacted>,

    /// Directory for the SQLite database (when `DATABASE_URL` is not set) and media files.
    #[arg(global = true, long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Largest webhook body accepted, in bytes; larger ones get 413.
    #[arg(global = true, long, env = "MAX_WEBHOOK_BODY_BYTES", default_value_t = openphone_webhooks::DEFAULT_MAX_BODY_SIZE)]
    pub max_webhook_body_bytes: usize,

    /// OpenPhone API key, for compliance replies. Without it, replies wait in the outbox.
    #[arg(global = true, long, env = "OPENPHONE_API_KEY", hide_env_values = true)]
    pub openphone_api_key: Option<Redacted>,

    /// OpenPhone API base URL (point it at the simulator in tests).
    #[arg(
        global = true,
        long,
        env = "OPENPHONE_BASE_URL",
        default_value = "https://api.quo.com"
    )]
    pub openphone_base_url: String,

    /// Hosts (optionally with a path prefix) media may be downloaded from, comma-separated.
    #[arg(global = true, long, env = "MEDIA_ALLOWED_HOSTS", value_delimiter = ',', default_values_t = crate::media::DEFAULT_ALLOWED.map(str::to_owned))]
    pub media_allowed_hosts: Vec<String>,

    /// Hosts media may be downloaded from over plain http (test servers only), comma-separated.
    #[arg(global = true, long, env = "MEDIA_HTTP_HOSTS", value_delimiter = ',')]
    pub media_http_hosts: Vec<String>,

    /// Largest media download, in bytes.
    #[arg(global = true, long, env = "MEDIA_MAX_BYTES", default_value_t = crate::media::DEFAULT_MAX_BYTES)]
    pub media_max_bytes: u64,

    /// Time limit of one media download, in seconds.
    #[arg(global = true, long, env = "MEDIA_TIMEOUT_SECS", default_value_t = 120)]
    pub media_timeout_secs: u64,

    /// Object store for media blobs shared by replicas (`s3://bucket/prefix`; credentials
    /// from `AWS_*`). Default: files under `DATA_DIR/blobs`.
    #[arg(global = true, long, env = "BLOB_STORE_URL")]
    pub blob_store_url: Option<String>,

    /// Seconds between self-checks (a signed test event posted to this server); 0 turns
    /// them off. They need `OPENPHONE_WEBHOOK_SECRETS`.
    #[arg(
        global = true,
        long,
        env = "SELF_CHECK_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub self_check_interval_secs: u64,

    /// Sender of health check texts: a workspace phone number id (`PN...`) or E.164 number.
    #[arg(global = true, long, env = "HEALTH_CHECK_FROM")]
    pub health_check_from: Option<String>,

    /// Recipient of health check texts: another workspace number, E.164.
    #[arg(global = true, long, env = "HEALTH_CHECK_TO")]
    pub health_check_to: Option<String>,

    /// Seconds between health checks.
    #[arg(
        global = true,
        long,
        env = "HEALTH_CHECK_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub health_check_interval_secs: u64,

    /// Seconds a health check waits for its webhook before it fails.
    #[arg(
        global = true,
        long,
        env = "HEALTH_CHECK_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub health_check_timeout_secs: u64,

    /// Development endpoints verified events are forwarded to, re-signed: `URL=whsec_...`,
    /// comma-separated. Off when unset.
    #[arg(global = true, long, env = "FORWARD_WEBHOOKS", hide_env_values = true)]
    pub forward_webhooks: Option<Redacted>,

    /// Hosts `FORWARD_WEBHOOKS` may point at, comma-separated.
    #[arg(
        global = true,
        long,
        env = "FORWARD_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub forward_allowed_hosts: Vec<String>,

    /// The sender of `POST /api/v1/messages` when a request names none: a phone number id
    /// (`PN...`) or E.164 number of the workspace.
    #[arg(global = true, long, env = "DEFAULT_SENDER")]
    pub default_sender: Option<String>,

    /// Messages each token may send per minute (429 beyond).
    #[arg(global = true, long, env = "MESSAGES_PER_MINUTE", default_value_t = 30)]
    pub messages_per_minute: usize,

    /// IANA timezone of daily schedules (reconciliation).
    #[arg(global = true, long, env = "TIMEZONE", default_value = "UTC")]
    pub timezone: String,

    /// Local time of the daily reconciliation (HH:MM); needs `OPENPHONE_API_KEY`.
    #[arg(global = true, long, env = "RECONCILE_AT", default_value = "02:00")]
    pub reconcile_at: String,

    /// Hours before the last successful reconciliation that the next one reads again.
    #[arg(
        global = true,
        long,
        env = "RECONCILE_OVERLAP_HOURS",
        default_value_t = 2
    )]
    pub reconcile_overlap_hours: u64,

    /// Minutes after which an outgoing message without a delivery status is flagged as
    /// possibly failed.
    #[arg(
        global = true,
        long,
        env = "PENDING_DELIVERY_MINUTES",
        default_value_t = 60
    )]
    pub pending_delivery_minutes: u64,

    /// URL alerts are posted to as JSON (`{"text": ...}`: a Slack incoming webhook works).
    #[arg(global = true, long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<Redacted>,

    /// SMTP server for alert emails: `smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:password@host:465`.
    #[arg(global = true, long, env = "ALERT_SMTP_URL", hide_env_values = true)]
    pub alert_smtp_url: Option<Redacted>,

    /// Sender of alert emails.
    #[arg(global = true, long, env = "ALERT_EMAIL_FROM")]
    pub alert_email_from: Option<String>,

    /// Recipients of alert emails, comma-separated.
    #[arg(global = true, long, env = "ALERT_EMAIL_TO", value_delimiter = ',')]
    pub alert_email_to: Vec<String>,

    /// Minutes before channels hear again of an alert still open.
    #[arg(
        global = true,
        long,
        env = "ALERT_REPEAT_MINUTES",
        default_value_t = 60
    )]
    pub alert_repeat_minutes: u64,

    /// Webhook verification failures within 5 minutes that raise an alert.
    #[arg(
        global = true,
        long,
        env = "ALERT_VERIFICATION_FAILURES",
        default_value_t = 20
    )]
    pub alert_verification_failures: usize,

    /// Reply to STOP and the other opt-out keywords.
    #[arg(global = true, long, env = "REPLY_OPT_OUT")]
    pub reply_opt_out: Option<String>,

    /// Reply to START, UNSTOP and YES.
    #[arg(global = true, long, env = "REPLY_OPT_IN")]
    pub reply_opt_in: Option<String>,

    /// Reply to HELP and INFO.
    #[arg(global = true, long, env = "REPLY_HELP")]
    pub reply_help: Option<String>,

    /// The business name every campaign message carries (appended when the text lacks it).
    /// Campaigns cannot start without it.
    #[arg(global = true, long, env = "CAMPAIGN_SENDER_NAME")]
    pub campaign_sender_name: Option<String>,

    /// Region of campaign numbers written without a country code (ISO 3166 code).
    #[arg(
        global = true,
        long,
        env = "CAMPAIGN_DEFAULT_REGION",
        default_value = "US"
    )]
    pub campaign_default_region: String,

    /// The largest CSV upload accepted, in bytes.
    #[arg(global = true, long, env = "CAMPAIGN_MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub campaign_max_upload_bytes: usize,

    /// NumVerify access key: list validation looks numbers up (line type, carrier). Without
    /// it, validation checks the format only.
    #[arg(global = true, long, env = "NUMVERIFY_API_KEY", hide_env_values = true)]
    pub numverify_api_key: Option<Redacted>,

    /// Minutes without activity after which a conversation thread resolves.
    #[arg(global = true, long, env = "THREAD_IDLE_MINUTES", default_value_t = 30)]
    pub thread_idle_minutes: u64,

    /// Minutes between thread sweeps.
    #[arg(global = true, long, env = "THREAD_SWEEP_MINUTES", default_value_t = 5)]
    pub thread_sweep_minutes: u64,

    /// Directory of SOP Markdown files (subdirectories are categories) for knowledge export.
    #[arg(global = true, long, env = "KNOWLEDGE_SOP_DIR")]
    pub knowledge_sop_dir: Option<PathBuf>,

    /// Directory scheduled knowledge exports write JSON Lines files to (unset: no files).
    #[arg(global = true, long, env = "KNOWLEDGE_EXPORT_DIR")]
    pub knowledge_export_dir: Option<PathBuf>,

    /// Scheduled knowledge export: `off`, `hourly` or `daily`.
    #[arg(
        global = true,
        long,
        env = "KNOWLEDGE_EXPORT_SCHEDULE",
        default_value = "off"
    )]
    pub knowledge_export_schedule: String,

    /// Redact phone numbers, emails, card numbers and addresses before threads go to the
    /// model.
    #[arg(global = true, long, env = "KNOWLEDGE_REDACT", default_value_t = true, action = clap::ArgAction::Set)]
    pub knowledge_redact: bool,

    /// The model provider of knowledge export: `anthropic`, `openai` (and compatible local
    /// servers) or `gemini`. Unset: no model.
    #[arg(global = true, long, env = "LLM_PROVIDER")]
    pub llm_provider: Option<String>,

    /// The model name (required with `LLM_PROVIDER`).
    #[arg(global = true, long, env = "LLM_MODEL")]
    pub llm_model: Option<String>,

    /// The provider's base URL, to override its default (a local OpenAI-compatible server).
    #[arg(global = true, long, env = "LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// Sampling temperature.
    #[arg(global = true, long, env = "LLM_TEMPERATURE", default_value_t = 0.2)]
    pub llm_temperature: f32,

    /// Most tokens per answer.
    #[arg(
        global = true,
        long,
        env = "LLM_MAX_OUTPUT_TOKENS",
        default_value_t = 2048
    )]
    pub llm_max_output_tokens: u32,

    /// Estimated prompt tokens per batch of threads.
    #[arg(
        global = true,
        long,
        env = "LLM_BATCH_TOKENS",
        default_value_t = 12_000
    )]
    pub llm_batch_tokens: usize,

    /// Anthropic API key.
    #[arg(global = true, long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    pub anthropic_api_key: Option<Redacted>,

    /// OpenAI API key (optional for local servers).
    #[arg(global = true, long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Redacted>,

    /// Google Gemini API key.
    #[arg(global = true, long, env = "GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<Redacted>,

    /// NumVerify's base URL (its free plan serves `http://apilayer.net/api` only).
    #[arg(global = true, long, env = "NUMVERIFY_BASE_URL", default_value = sms_campaigns::NUMVERIFY_BASE_URL)]
    pub numverify_base_url: String,
}

/// A setting that may hold a secret (a signing secret, a database password): `Debug` never
/// shows it, and parsing it never fails, so command-line errors cannot echo it.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

fn parse_secrets(text: &str) -> Result<Vec<SigningSecret>, String> {
    let secrets = text
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .enumerate()
        .map(|(index, secret)| {
            SigningSecret::parse(secret)
                .map_err(|error| format!("secret #{} of the list: {error}", index + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if secrets.is_empty() {
        return Err("the list is empty".to_owned());
    }
    Ok(secrets)
}

impl Config {
    /// Opens the configured database (see [`Config::database_url`]) and applies the
    /// migrations.
    ///
    /// # Errors
    /// [`Error::Config`] as [`Config::database_url`]; [`Error::Open`], naming `DATABASE_URL`
    /// (or `DATA_DIR` for the default file), when the database cannot be reached or opened;
    /// [`Error::Store`] when migrating fails.
    pub async fn open_store(&self) -> Result<crate::store::Store, Error> {
        let url = self.database_url()?;
        crate::store::Store::connect(&url)
            .await
            .map_err(|source| match source {
                crate::store::StoreError::Migration(_) => Error::Store(source),
                source => Error::Open {
                    setting: if self.database_url.is_some() {
                        "DATABASE_URL"
                    } else {
                        "DATA_DIR"
                    },
                    url: without_password(&url),
                    source,
                },
            })
    }

    /// The database URL in force: the configured one, or a SQLite file in the data directory.
    ///
    /// # Errors
    /// [`Error::Config`] when the data directory cannot be created, or the URL has a scheme
    /// other than `sqlite:` or `postgres:`.
    pub fn database_url(&self) -> Result<String, Error> {
        match self.database_url.as_ref().map(|url| &url.0) {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:") =>
            {
                Ok(url.clone())
            }
            Some(_) => Err(Error::Config(
                "DATABASE_URL must start with sqlite: or postgres:".to_owned(),
            )),
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|error| {
                    Error::Config(format!(
                        "DATA_DIR {} cannot be created: {error}",
                        self.data_dir.display()
                    ))
                })?;
                Ok(format!(
                    "sqlite://{}",
                    self.data_dir.join("openphone.db").display()
                ))
            }
        }
    }

    /// The signing secrets of `OPENPHONE_WEBHOOK_SECRETS`, or `None` when it is not set.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable and the position of a malformed secret (never
    /// its value), or an empty list.
    pub fn webhook_secrets(&self) -> Result<Option<Vec<SigningSecret>>, Error> {
        self.webhook_secrets
            .as_ref()
            .map(|secrets| {
                parse_secrets(&secrets.0)
                    .map_err(|reason| Error::Config(format!("OPENPHONE_WEBHOOK_SECRETS: {reason}")))
            })
            .transpose()
    }

    /// The OpenPhone client of `OPENPHONE_API_KEY` and `OPENPHONE_BASE_URL`, or `None` when
    /// no key is set.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when the key or URL is unusable.
    pub fn openphone_client(&self) -> Result<Option<openphone_client::Client>, Error> {
        let Some(key) = &self.openphone_api_key else {
            return Ok(None);
        };
        let base = &self.openphone_base_url;
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::Config(
                "OPENPHONE_BASE_URL must be an http(s) URL".to_owned(),
            ));
        }
        openphone_client::Client::builder(key.0.trim())
            .base_url(base.as_str())
            .build()
            .map(Some)
            .map_err(|error| Error::Config(format!("OPENPHONE_API_KEY: {error}")))
    }

    /// The media download policy of the `MEDIA_*` settings.
    ///
    /// # Errors
    /// [`Error::Config`] when the allowlist is empty or the limits are zero.
    pub fn media_policy(&self) -> Result<crate::media::MediaPolicy, Error> {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|entry| entry.trim().to_owned())
                .filter(|entry| !entry.is_empty())
                .collect()
        };
        let allowed = clean(&self.media_allowed_hosts);
        if allowed.is_empty() {
            return Err(Error::Config("MEDIA_ALLOWED_HOSTS is empty".to_owned()));
        }
        if self.media_max_bytes == 0 || self.media_timeout_secs == 0 {
            return Err(Error::Config(
                "MEDIA_MAX_BYTES and MEDIA_TIMEOUT_SECS must be above zero".to_owned(),
            ));
        }
        Ok(crate::media::MediaPolicy {
            allowed,
            http_hosts: clean(&self.media_http_hosts),
            max_bytes: self.media_max_bytes,
            timeout: std::time::Duration::from_secs(self.media_timeout_secs),
        })
    }

    /// The blob store of `BLOB_STORE_URL`, or files under `DATA_DIR/blobs`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when the URL is unusable.
    pub fn blob_store(&self) -> Result<crate::media::BlobStore, Error> {
        let root = self.data_dir.join("blobs");
        match &self.blob_store_url {
            None => Ok(crate::media::BlobStore::new(root)),
            Some(url) => crate::media::BlobStore::with_object_store(root, url)
                .map_err(|reason| Error::Config(format!("BLOB_STORE_URL: {reason}"))),
        }
    }

    /// The forwarding targets of `FORWARD_WEBHOOKS` (none when unset).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a target is malformed or its host is not in
    /// `FORWARD_ALLOWED_HOSTS`.
    pub fn forward_targets(&self) -> Result<Vec<crate::forward::ForwardTarget>, Error> {
        let Some(targets) = &self.forward_webhooks else {
            return Ok(Vec::new());
        };
        let allowed: Vec<String> = self
            .forward_allowed_hosts
            .iter()
            .map(|host| host.trim().to_owned())
            .collect();
        crate::forward::parse_targets(&targets.0, &allowed)
            .map_err(|reason| Error::Config(format!("FORWARD_WEBHOOKS: {reason}")))
    }

    /// The reconciliation schedule of `RECONCILE_AT` and `TIMEZONE`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variables when the time or the timezone is invalid.
    pub fn reconcile_schedule(&self) -> Result<crate::scheduler::Schedule, Error> {
        crate::scheduler::Schedule::daily(&self.reconcile_at, &self.timezone)
            .map_err(|error| Error::Config(format!("RECONCILE_AT/TIMEZONE: {error}")))
    }

    /// The alert channels of the `ALERT_*` settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a URL or address is unusable, or email is
    /// half configured.
    pub fn alert_sinks(&self) -> Result<Vec<std::sync::Arc<dyn crate::alerts::AlertSink>>, Error> {
        let mut sinks: Vec<std::sync::Arc<dyn crate::alerts::AlertSink>> = Vec::new();
        if let Some(url) = &self.alert_webhook_url {
            if !(url.0.starts_with("https://") || url.0.starts_with("http://")) {
                return Err(Error::Config(
                    "ALERT_WEBHOOK_URL must be an http(s) URL".to_owned(),
                ));
            }
            sinks.push(std::sync::Arc::new(crate::alerts::WebhookSink::new(
                url.0.clone(),
            )));
        }
        match (&self.alert_smtp_url, &self.alert_email_from) {
            (Some(url), Some(from)) => {
                let sink = crate::alerts::EmailSink::new(&url.0, from, &self.alert_email_to)
                    .map_err(|reason| {
                        // The URL may carry a password: name the setting, never echo it.
                        let reason = if reason.starts_with("invalid SMTP URL") {
                            "ALERT_SMTP_URL is not a usable smtp:// or smtps:// URL".to_owned()
                        } else {
                            format!("ALERT_EMAIL_FROM/ALERT_EMAIL_TO: {reason}")
                        };
                        Error::Config(reason)
                    })?;
                sinks.push(std::sync::Arc::new(sink));
            }
            (None, None) if self.alert_email_to.is_empty() => {}
            _ => {
                return Err(Error::Config(
                    "alert email needs ALERT_SMTP_URL, ALERT_EMAIL_FROM and ALERT_EMAIL_TO"
                        .to_owned(),
                ));
            }
        }
        Ok(sinks)
    }

    /// The compliance reply texts: the configured ones, else the defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a text is blank or over 1,600 characters.
    pub fn reply_texts(&self) -> Result<crate::compliance::ReplyTexts, Error> {
        let defaults = crate::compliance::ReplyTexts::default();
        let pick = |name: &str, value: &Option<String>, default: String| match value {
            None => Ok(default),
            Some(text) if text.trim().is_empty() || text.chars().count() > 1600 => Err(
                Error::Config(format!("{name} must be 1 to 1,600 characters")),
            ),
            Some(text) => Ok(text.clone()),
        };
        Ok(crate::compliance::ReplyTexts {
            opt_out: pick("REPLY_OPT_OUT", &self.reply_opt_out, defaults.opt_out)?,
            opt_in: pick("REPLY_OPT_IN", &self.reply_opt_in, defaults.opt_in)?,
            help: pick("REPLY_HELP", &self.reply_help, defaults.help)?,
        })
    }

    /// Campaign settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when the region is unknown or the sender name
    /// is blank.
    pub fn campaign_settings(&self) -> Result<crate::campaigns::CampaignSettings, Error> {
        sms_campaigns::Region::parse(&self.campaign_default_region).map_err(|_| {
            Error::Config(format!(
                "CAMPAIGN_DEFAULT_REGION {:?} is not an ISO 3166 region code",
                self.campaign_default_region
            ))
        })?;
        let business_name = match &self.campaign_sender_name {
            Some(name) if name.trim().is_empty() => {
                return Err(Error::Config(
                    "CAMPAIGN_SENDER_NAME must not be blank".to_owned(),
                ));
            }
            Some(name) => name.trim().to_owned(),
            None => String::new(),
        };
        let validator = match &self.numverify_api_key {
            Some(key) => crate::campaigns::Validator::NumVerify(
                sms_campaigns::NumVerify::new(&self.numverify_base_url, &key.0)
                    .map_err(|error| Error::Config(format!("NUMVERIFY_API_KEY: {error}")))?,
            ),
            None => crate::campaigns::Validator::Offline,
        };
        Ok(crate::campaigns::CampaignSettings {
            business_name,
            validator,
            region: self.campaign_default_region.trim().to_ascii_uppercase(),
            max_upload_bytes: self.campaign_max_upload_bytes,
        })
    }

    /// Knowledge export settings; `provider` overrides `LLM_PROVIDER` (the `export --llm`
    /// flag).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a value is invalid or a key is missing.
    pub fn knowledge_settings(
        &self,
        provider: Option<&str>,
    ) -> Result<crate::knowledge::KnowledgeSettings, Error> {
        use crate::knowledge::ExportSchedule;
        let schedule = match self.knowledge_export_schedule.trim() {
            "off" => ExportSchedule::Off,
            "hourly" => ExportSchedule::Hourly,
            "daily" => ExportSchedule::Daily,
            other => {
                return Err(Error::Config(format!(
                    "KNOWLEDGE_EXPORT_SCHEDULE {other:?} is not off, hourly or daily"
                )));
            }
        };
        let provider = match provider.or(self.llm_provider.as_deref()) {
            None => None,
            Some(name) => {
                let model = self
                    .llm_model
                    .clone()
                    .ok_or_else(|| Error::Config("LLM_PROVIDER needs LLM_MODEL".to_owned()))?;
                if !(0.0..=2.0).contains(&self.llm_temperature) {
                    return Err(Error::Config(
                        "LLM_TEMPERATURE must be between 0 and 2".to_owned(),
                    ));
                }
                let key = match name {
                    "anthropic" => self.anthropic_api_key.as_ref(),
                    "openai" => self.openai_api_key.as_ref(),
                    "gemini" => self.gemini_api_key.as_ref(),
                    _ => None,
                };
                Some(crate::knowledge::provider(
                    name,
                    key.map(|k| k.0.as_str()),
                    self.llm_base_url.as_deref(),
                    knowledge_export::providers::ModelSettings {
                        model,
                        temperature: self.llm_temperature,
                        max_output_tokens: self.llm_max_output_tokens,
                    },
                )?)
            }
        };
        if self.llm_batch_tokens < 500 {
            return Err(Error::Config(
                "LLM_BATCH_TOKENS must be at least 500".to_owned(),
            ));
        }
        Ok(crate::knowledge::KnowledgeSettings {
            provider,
            sop_dir: self.knowledge_sop_dir.clone(),
            export_dir: self.knowledge_export_dir.clone(),
            exporter: knowledge_export::ExporterConfig {
                budget_tokens: self.llm_batch_tokens,
                redact_for_llm: self.knowledge_redact,
                ..knowledge_export::ExporterConfig::default()
            },
            schedule,
        })
    }

    /// Thread settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a value is 0.
    pub fn thread_settings(&self) -> Result<crate::threads::ThreadSettings, Error> {
        if self.thread_idle_minutes == 0 {
            return Err(Error::Config(
                "THREAD_IDLE_MINUTES must be at least 1".to_owned(),
            ));
        }
        if self.thread_sweep_minutes == 0 {
            return Err(Error::Config(
                "THREAD_SWEEP_MINUTES must be at least 1".to_owned(),
            ));
        }
        Ok(crate::threads::ThreadSettings {
            idle: time::Duration::minutes(
                i64::try_from(self.thread_idle_minutes).unwrap_or(i64::MAX / 60_000),
            ),
            sweep_every: std::time::Duration::from_secs(self.thread_sweep_minutes * 60),
        })
    }

    /// A configuration with every default, listening on `listen_addr`, for tests and
    /// embedding.
    pub fn with_defaults(listen_addr: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            database_url: None,
            listen_addr,
            webhook_secrets: None,
            data_dir,
            max_webhook_body_bytes: openphone_webhooks::DEFAULT_MAX_BODY_SIZE,
            openphone_api_key: None,
            openphone_base_url: "https://api.quo.com".to_owned(),
            media_allowed_hosts: crate::media::DEFAULT_ALLOWED.map(str::to_owned).to_vec(),
            media_http_hosts: Vec::new(),
            media_max_bytes: crate::media::DEFAULT_MAX_BYTES,
            media_timeout_secs: 120,
            blob_store_url: None,
            self_check_interval_secs: 3600,
            default_sender: None,
            messages_per_minute: 30,
            forward_webhooks: None,
            forward_allowed_hosts: Vec::new(),
            health_check_from: None,
            health_check_to: None,
            health_check_interval_secs: 3600,
            health_check_timeout_secs: 120,
            timezone: "UTC".to_owned(),
            reconcile_at: "02:00".to_owned(),
            reconcile_overlap_hours: 2,
            pending_delivery_minutes: 60,
            alert_webhook_url: None,
            alert_smtp_url: None,
            alert_email_from: None,
            alert_email_to: Vec::new(),
            alert_repeat_minutes: 60,
            alert_verification_failures: 20,
            reply_opt_out: None,
            reply_opt_in: None,
            reply_help: None,
            campaign_sender_name: None,
            campaign_default_region: "US".to_owned(),
            campaign_max_upload_bytes: 64 * 1024 * 1024,
            numverify_api_key: None,
            numverify_base_url: sms_campaigns::NUMVERIFY_BASE_URL.to_owned(),
            thread_idle_minutes: 30,
            thread_sweep_minutes: 5,
            knowledge_sop_dir: None,
            knowledge_export_dir: None,
            knowledge_export_schedule: "off".to_owned(),
            knowledge_redact: true,
            llm_provider: None,
            llm_model: None,
            llm_base_url: None,
            llm_temperature: 0.2,
            llm_max_output_tokens: 2048,
            llm_batch_tokens: 12_000,
            anthropic_api_key: None,
            openai_api_key: None,
            gemini_api_key: None,
        }
    }
}

/// `url` as it may be shown: a PostgreSQL URL with its password, in the user information or
/// as a `password` parameter, replaced by `***`; one that does not parse is not shown at all
/// (a password with a character the URL should have escaped could otherwise show). A SQLite
/// URL, a path, is shown as given.
fn without_password(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_owned();
    }
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "(a URL that does not parse; not shown)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        for (url, shown) in [
            (
                "postgres://app:s3cr@t:x@db.example:5432/crm?sslmode=require",
                "postgres://app:***@db.example:5432/crm?sslmode=require",
            ),
            (
                "postgres://app@db.example/crm",
                "postgres://app@db.example/crm",
            ),
            ("postgres://db.example/crm", "postgres://db.example/crm"),
            (
                "postgres://app@db.example/crm?password=s3cr%2Ft&sslmode=require",
                "postgres://app@db.example/crm?password=***&sslmode=require",
            ),
            (
                "postgres://app:a/b@db.example/crm",
                "(a URL that does not parse; not shown)",
            ),
            ("sqlite://data/openphone.db", "sqlite://data/openphone.db"),
            ("sqlite:data/openphone.db", "sqlite:data/openphone.db"),
        ] {
            assert_eq!(without_password(url), shown);
        }
    }

    #[test]
    fn secrets_list_parses_both_schemes_and_names_the_bad_one() {
        let secrets = parse_secrets(
            " R2ZLM2o0bFhBNVpyUnU2NG9mYXQ1MHNyR3pvSUhIVVg= ,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .unwrap();
        assert_eq!(secrets.len(), 2);
        let error =
            parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,not-base64!").unwrap_err();
        assert!(error.starts_with("secret #2"), "{error}");
        assert!(!error.contains("not-base64"), "{error}");
        assert!(parse_secrets(" , ").is_err());
    }

    #[test]
    fn database_url_defaults_to_sqlite_in_the_data_dir_and_rejects_other_schemes() {
        let dir = std::env::temp_dir().join(format!("rs-config-{}", std::process::id()));
        let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), dir.clone());
        assert_eq!(
            config.database_url().unwrap(),
            format!("sqlite://{}", dir.join("openphone.db").display())
        );
        config.database_url = Some(Redacted("mysql://localhost/x".into()));
        assert!(config.database_url().is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn openphone_media_and_reply_settings_are_checked_naming_the_variable() {
        let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), "data".into());
        assert!(config.openphone_client().unwrap().is_none());
        config.openphone_api_key = Some(Redacted("key-123".into()));
        config.openphone_base_url = "ftp://example".into();
        let error = config.openphone_client().unwrap_err().to_string();
        assert!(error.contains("OPENPHONE_BASE_URL"), "{error}");
        config.openphone_base_url = "http://127.0.0.1:9".into();
        assert!(config.openphone_client().unwrap().is_some());
        config.openphone_api_key = Some(Redacted("bad\nkey".into()));
        let error = config.openphone_client().unwrap_err().to_string();
        assert!(
            error.contains("OPENPHONE_API_KEY") && !error.contains("bad"),
            "{error}"
        );

        config.media_allowed_hosts = vec![" ".into()];
        let error = config.media_policy().unwrap_err().to_string();
        assert!(error.contains("MEDIA_ALLOWED_HOSTS"), "{error}");
        config.media_allowed_hosts = vec![" files.openphone.co ".into()];
        config.media_max_bytes = 0;
        assert!(config.media_policy().is_err());
        config.media_max_bytes = 10;
        assert_eq!(
            config.media_policy().unwrap().allowed,
            ["files.openphone.co"]
        );

        config.reply_help = Some("  ".into());
        let error = config.reply_texts().unwrap_err().to_string();
        assert!(error.contains("REPLY_HELP"), "{error}");
        config.reply_help = Some("Acme: call 555-0100".into());
        assert_eq!(config.reply_texts().unwrap().help, "Acme: call 555-0100");

        config.blob_store_url = Some("nonsense".into());
        let error = config.blob_store().unwrap_err().to_string();
        assert!(error.contains("BLOB_STORE_URL"), "{error}");
    }

    #[test]
    fn alert_settings_are_checked_without_echoing_passwords() {
        let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), "data".into());
        assert!(config.alert_sinks().unwrap().is_empty());
        config.alert_webhook_url = Some(Redacted("hooks.slack.com/x".into()));
        assert!(
            config
                .alert_sinks()
                .err()
                .unwrap()
                .to_string()
                .contains("ALERT_WEBHOOK_URL")
        );
        config.alert_webhook_url = Some(Redacted("https://hooks.slack.com/x".into()));
        assert_eq!(config.alert_sinks().unwrap().len(), 1);
        config.alert_email_to = vec!["ops@example.com".into()];
        let error = config.alert_sinks().err().unwrap().to_string();
        assert!(
            error.contains("ALERT_SMTP_URL, ALERT_EMAIL_FROM"),
            "{error}"
        );
        config.alert_smtp_url = Some(Redacted("ftp://user:hunter2@mail".into()));
        config.alert_email_from = Some("alerts@example.com".into());
        let error = config.alert_sinks().err().unwrap().to_string();
        assert!(
            error.contains("ALERT_SMTP_URL") && !error.contains("hunter2"),
            "{error}"
        );
        config.alert_smtp_url = Some(Redacted("smtps://user:hunter2@mail.example.com:465".into()));
        assert_eq!(config.alert_sinks().unwrap().len(), 2);
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let mut config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), "data".into());
        config.webhook_secrets = Some(Redacted("whsec_!!secret!!".into()));
        config.database_url = Some(Redacted("postgres://u:hunter2@db/x".into()));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret!!") && !shown.contains("hunter2"),
            "{shown}"
        );
        let error = config.webhook_secrets().unwrap_err().to_string();
        assert!(
            error.starts_with("configuration: OPENPHONE_WEBHOOK_SECRETS"),
            "{error}"
        );
        assert!(!error.contains("secret!!"), "{error}");
    }
}
