//! The trickle engine: campaign lifecycle (create, activate, pause, resume, cancel) and the
//! runs that send each scheduled batch.
//!
//! A run, at a scheduled slot, claims the next `per_run` pending recipients in ledger order
//! (once per slot, whatever the number of engines), then for each one, in order: stops if the
//! campaign is no longer active (the rest go back to pending), skips it if the number opted
//! out (checked now, so a STOP received mid-campaign counts) or talked with us before the
//! campaign started, renders its variant, records the text as *sending*, sends, and records
//! the outcome. A send whose outcome is unknown is never retried: once it has settled, the
//! engine looks the message up, and only a message not found goes back to pending.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::campaign::MAX_MESSAGE_CHARS;
use crate::ports::{History, OutgoingText, SendResult, Sender};
use crate::template::{MissingField, Segments, Signature, Template, segments};
use crate::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, ContactId, Error,
    MemberStatus, NewRecipient, Outcome, Recipient, RecipientState, SkipReason, Variant,
};

/// Reads the time: the engine never reads the system clock itself.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// How the engine behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This engine's name in claims (unique per process, e.g. host and pid).
    pub worker: String,
    /// The business name every message carries.
    pub business_name: String,
    /// How long a claim or a send may take before another engine recovers it (default 10
    /// minutes; keep it well above the client's request timeout).
    pub lease: time::Duration,
    /// How late a run may still start after its slot (default 3 hours).
    pub grace: time::Duration,
    /// How long after an unknown outcome the message is looked up (default 2 minutes).
    pub settle: time::Duration,
    /// The failure share of a run that pauses the campaign (default 0.5).
    pub failure_threshold: f64,
    /// The fewest attempts in a run before the failure share counts (default 4).
    pub failure_min_attempts: u32,
}

impl EngineConfig {
    /// Defaults for `worker` sending as `business_name`.
    pub fn new(worker: impl Into<String>, business_name: impl Into<String>) -> Self {
        EngineConfig {
            worker: worker.into(),
            business_name: business_name.into(),
            lease: time::Duration::minutes(10),
            grace: time::Duration::hours(3),
            settle: time::Duration::minutes(2),
            failure_threshold: 0.5,
            failure_min_attempts: 4,
        }
    }
}

/// The campaign engine over a store, a sender and the numbers' history.
pub struct Engine<S, X, H> {
    store: S,
    sender: X,
    history: H,
    config: EngineConfig,
    clock: Clock,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RunReport {
    /// The campaign.
    pub campaign_id: Option<CampaignId>,
    /// The slot (Unix seconds).
    pub slot: i64,
    /// Recipients claimed.
    pub claimed: u64,
    /// Sent.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Outcome unknown, to be looked up.
    pub ambiguous: u64,
    /// Skipped (opted out, prior communication, missing field).
    pub skipped: u64,
    /// Put back to pending because the campaign stopped mid-run.
    pub released: u64,
    /// Put back to pending because the send could not go out (the run stopped there).
    pub deferred: u64,
    /// Why the engine paused the campaign, when it did (raise an alert).
    pub auto_paused: Option<String>,
}

/// What one tick did.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct TickReport {
    /// Lapsed claims recovered.
    pub recovered: u64,
    /// Unknown outcomes settled by looking the message up.
    pub resolved: u64,
    /// Runs made.
    pub runs: Vec<RunReport>,
    /// Campaigns completed.
    pub completed: Vec<CampaignId>,
    /// Campaigns that failed this tick, with the error (they are tried again next tick).
    pub errors: Vec<(CampaignId, String)>,
}

/// A message rendered for one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Rendered {
    /// The variant.
    pub variant: Variant,
    /// The final text, with business name and opt-out wording; `None` when a field is
    /// missing.
    pub text: Option<String>,
    /// The field missing, if any (the recipient would be skipped).
    pub missing_field: Option<String>,
    /// Whether the text is longer than a message holds (the recipient would be skipped).
    pub too_long: bool,
    /// Size and segments of the text.
    pub segments: Option<Segments>,
}

/// What activating a campaign will do: shown for confirmation first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ActivationSummary {
    /// Members that will be in the ledger (validated and kept).
    pub recipients: u64,
    /// Members not validated yet (activation is refused while there are any).
    pub unvalidated: u64,
    /// Members validation excluded.
    pub excluded: u64,
    /// Recipients that would be skipped as of now: opted out.
    pub skipped_opted_out: u64,
    /// ... had earlier communication (they go to the review list).
    pub skipped_prior_communication: u64,
    /// ... lack a field the template needs.
    pub skipped_missing_field: u64,
    /// ... whose message, with their fields, the business name and the opt-out text, would be
    /// longer than a message may hold.
    pub skipped_too_long: u64,
    /// Recipients expected to be sent.
    pub to_send: u64,
    /// Messages per run.
    pub per_run: u32,
    /// Runs needed.
    pub runs_needed: u64,
    /// The local date of the first run.
    pub first_send_day: Option<String>,
    /// The local date of the last run.
    pub last_send_day: Option<String>,
}

const PAGE: usize = 1_000;

impl<S: CampaignStore, X: Sender, H: History> Engine<S, X, H> {
    /// An engine.
    pub fn new(store: S, sender: X, history: H, config: EngineConfig, clock: Clock) -> Self {
        Engine {
            store,
            sender,
            history,
            config,
            clock,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    fn signature(&self, spec: &CampaignSpec) -> Signature {
        Signature {
            business_name: self.config.business_name.clone(),
            opt_out: spec.opt_out_text.clone(),
        }
    }

    /// [`CampaignSpec::check`], and that each message's literal text, with the business name
    /// and the opt-out text, fits in a message: otherwise every recipient would be skipped.
    fn check(&self, spec: &CampaignSpec) -> Result<(), Error> {
        spec.check()?;
        let signature = self.signature(spec);
        for (field, variant) in [("message_a", Variant::A), ("message_b", Variant::B)] {
            if variant == Variant::B && spec.message_b.is_none() {
                continue;
            }
            let least = signature
                .apply(&spec.template(variant)?.fixed_text())
                .chars()
                .count();
            if least > MAX_MESSAGE_CHARS {
                return Err(Error::Invalid(format!(
                    "{field} comes to at least {least} characters with the business name and \
                     opt_out_text; a message holds at most {MAX_MESSAGE_CHARS}"
                )));
            }
        }
        Ok(())
    }

    /// The message for a recipient: `template` rendered with `values`, signed; or why the
    /// recipient is skipped.
    fn message_for(
        signature: &Signature,
        template: &Template,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, SkipReason> {
        let text = template
            .render(values)
            .map(|text| signature.apply(&text))
            .map_err(|MissingField(field)| SkipReason::MissingField(field))?;
        match text.chars().count() {
            chars if chars > MAX_MESSAGE_CHARS => Err(SkipReason::TooLong(chars)),
            _ => Ok(text),
        }
    }

    /// Creates a draft after checking every field.
    pub async fn create(&self, spec: &CampaignSpec) -> Result<Campaign, Error> {
        self.check(spec)?;
        self.store.create_campaign(spec, self.now()).await
    }

    /// Replaces a draft's spec.
    pub async fn update(&self, id: &CampaignId, spec: &CampaignSpec) -> Result<Campaign, Error> {
        self.check(spec)?;
        self.store.update_draft(id, spec, self.now()).await
    }

    /// Renders every variant of `spec` for `contact`.
    pub async fn preview(
        &self,
        spec: &CampaignSpec,
        contact: &ContactId,
    ) -> Result<Vec<Rendered>, Error> {
        self.check(spec)?;
        let contact = self.store.contact(contact).await?;
        let values = contact.template_values();
        let signature = self.signature(spec);
        let mut variants = vec![Variant::A];
        if spec.message_b.is_some() {
            variants.push(Variant::B);
        }
        let mut rendered = Vec::new();
        for variant in variants {
            rendered.push(match spec.template(variant)?.render(&values) {
                Ok(text) => {
                    let text = signature.apply(&text);
                    Rendered {
                        variant,
                        segments: Some(segments(&text)),
                        too_long: text.chars().count() > MAX_MESSAGE_CHARS,
                        text: Some(text),
                        missing_field: None,
                    }
                }
                Err(MissingField(field)) => Rendered {
                    variant,
                    text: None,
                    missing_field: Some(field),
                    too_long: false,
                    segments: None,
                },
            });
        }
        Ok(rendered)
    }

    /// What activation would do now (for the confirmation step).
    pub async fn activation_summary(&self, id: &CampaignId) -> Result<ActivationSummary, Error> {
        let campaign = self.store.campaign(id).await?;
        self.summarize(&campaign, self.now())
            .await
            .map(|(summary, _)| summary)
    }

    async fn summarize(
        &self,
        campaign: &Campaign,
        now: OffsetDateTime,
    ) -> Result<(ActivationSummary, Vec<NewRecipient>), Error> {
        let spec = &campaign.spec;
        let plan = spec.schedule.plan()?;
        let ab = spec.message_b.is_some();
        let templates = [spec.template(Variant::A)?, spec.template(Variant::B)?];
        let signature = self.signature(spec);
        let mut summary = ActivationSummary {
            per_run: plan.per_run(),
            ..ActivationSummary::default()
        };
        let mut kept = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.members(&spec.list_id, None, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            for member in page {
                match member.status {
                    MemberStatus::Unvalidated => summary.unvalidated += 1,
                    MemberStatus::Excluded => summary.excluded += 1,
                    MemberStatus::Kept => kept.push(member.contact),
                }
            }
        }
        let total = kept.len() as u64;
        for (position, contact) in kept.iter().enumerate() {
            let variant = Variant::for_position(position as u64, total, ab);
            let template = &templates[usize::from(variant == Variant::B)];
            if self.history.opted_out(&contact.phone).await? {
                summary.skipped_opted_out += 1;
            } else if self
                .history
                .communicated_before(&contact.phone, now)
                .await?
            {
                summary.skipped_prior_communication += 1;
            } else {
                match Self::message_for(&signature, template, &contact.template_values()) {
                    Err(SkipReason::TooLong(_)) => summary.skipped_too_long += 1,
                    Err(_) => summary.skipped_missing_field += 1,
                    Ok(_) => {}
                }
            }
        }
        summary.recipients = total;
        summary.to_send = total
            - summary.skipped_opted_out
            - summary.skipped_prior_communication
            - summary.skipped_missing_field
            - summary.skipped_too_long;
        summary.runs_needed = summary.to_send.div_ceil(u64::from(plan.per_run()));
        if let Some((first, last)) = plan.send_days(now.unix_timestamp(), summary.runs_needed) {
            summary.first_send_day = Some(first);
            summary.last_send_day = Some(last);
        }
        let recipients = kept
            .into_iter()
            .map(|contact| NewRecipient {
                contact_id: contact.id,
                phone: contact.phone,
            })
            .collect();
        Ok((summary, recipients))
    }

    /// Activates a draft: freezes its audience into the ledger (list order) and schedules
    /// the first run at the next slot. Refused while the list has unvalidated members or no
    /// kept member.
    pub async fn activate(&self, id: &CampaignId) -> Result<(Campaign, ActivationSummary), Error> {
        let now = self.now();
        let campaign = self.store.campaign(id).await?;
        campaign.state.check(CampaignState::Active)?;
        if campaign.state != CampaignState::Draft {
            return Err(Error::Invalid(format!(
                "campaign {id} is {}: resume it instead",
                campaign.state
            )));
        }
        self.check(&campaign.spec)?;
        let (summary, recipients) = self.summarize(&campaign, now).await?;
        if summary.unvalidated > 0 {
            return Err(Error::Invalid(format!(
                "{} member(s) of the list are not validated yet: validate the list first",
                summary.unvalidated
            )));
        }
        if recipients.is_empty() {
            return Err(Error::Invalid("the list has no member to text".into()));
        }
        let last_slot = campaign.spec.schedule.plan()?.latest_slot(now);
        let campaign = self.store.activate(id, recipients, last_slot, now).await?;
        tracing::info!(campaign = %id, recipients = summary.recipients, "campaign activated");
        Ok((campaign, summary))
    }

    /// Pauses an active campaign: a run in progress stops after the message in flight.
    pub async fn pause(&self, id: &CampaignId, reason: Option<String>) -> Result<Campaign, Error> {
        self.store
            .set_state(
                id,
                CampaignState::Active,
                CampaignState::Paused,
                reason,
                None,
                self.now(),
            )
            .await
    }

    /// Resumes a paused campaign at its next scheduled run (a slot that passed while paused
    /// is not made up).
    pub async fn resume(&self, id: &CampaignId) -> Result<Campaign, Error> {
        let now = self.now();
        let campaign = self.store.campaign(id).await?;
        campaign.state.check(CampaignState::Active)?;
        let latest = campaign.spec.schedule.plan()?.latest_slot(now);
        let last_slot = match (campaign.last_slot, latest) {
            (Some(last), Some(latest)) => Some(last.max(latest)),
            (last, latest) => last.or(latest),
        };
        self.store
            .set_state(
                id,
                campaign.state,
                CampaignState::Active,
                None,
                last_slot,
                now,
            )
            .await
    }

    /// Cancels a campaign: pending recipients are skipped as cancelled.
    pub async fn cancel(&self, id: &CampaignId) -> Result<Campaign, Error> {
        let campaign = self.store.campaign(id).await?;
        self.store
            .set_state(
                id,
                campaign.state,
                CampaignState::Cancelled,
                None,
                None,
                self.now(),
            )
            .await
    }

    /// The scheduler's minute: recovers lapsed claims, settles unknown outcomes, runs every
    /// campaign whose slot is due and completes those with nobody left.
    pub async fn tick(&self) -> Result<TickReport, Error> {
        let mut report = TickReport {
            recovered: self.store.recover_expired(self.now()).await?,
            ..TickReport::default()
        };
        let mut campaigns = self.store.campaigns(Some(CampaignState::Active)).await?;
        campaigns.extend(self.store.campaigns(Some(CampaignState::Paused)).await?);
        for campaign in campaigns {
            match self.tick_campaign(&campaign, &mut report).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(campaign = %campaign.id, error = %error, "campaign tick failed");
                    report.errors.push((campaign.id.clone(), error.to_string()));
                }
            }
        }
        Ok(report)
    }

    async fn tick_campaign(
        &self,
        campaign: &Campaign,
        report: &mut TickReport,
    ) -> Result<(), Error> {
        report.resolved += self.resolve_ambiguous(campaign).await?;
        if campaign.state != CampaignState::Active {
            return Ok(());
        }
        let plan = campaign.spec.schedule.plan()?;
        if let Some(slot) = plan.due_slot(self.now(), campaign.last_slot, self.config.grace) {
            let run = self.run(campaign, slot).await?;
            if run.claimed > 0 || run.auto_paused.is_some() {
                report.runs.push(run);
            }
        }
        if self
            .store
            .complete_if_done(&campaign.id, self.now())
            .await?
        {
            tracing::info!(campaign = %campaign.id, "campaign completed");
            report.completed.push(campaign.id.clone());
        }
        Ok(())
    }

    /// Looks up every settled ambiguous send of `campaign`: found means sent; not found
    /// means it never went out, and the recipient goes back to pending.
    async fn resolve_ambiguous(&self, campaign: &Campaign) -> Result<u64, Error> {
        let mut resolved = 0;
        let mut after = None;
        loop {
            let page = self
                .store
                .recipients(&campaign.id, Some(RecipientState::Ambiguous), after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            for recipient in page {
                let now = self.now();
                let (Some(text), Some(attempted)) = (&recipient.text, recipient.attempted_at)
                else {
                    continue;
                };
                if attempted + self.config.settle > now {
                    continue;
                }
                let message = OutgoingText {
                    from: campaign.spec.sender.clone(),
                    to: recipient.phone.clone(),
                    text: text.clone(),
                };
                let since = attempted - time::Duration::minutes(1);
                let outcome = match self.sender.find(&message, since).await {
                    Ok(Some(message_id)) => Outcome::Sent { message_id },
                    Ok(None) => Outcome::Released,
                    Err(error) => {
                        tracing::warn!(campaign = %campaign.id, position = recipient.position, error = %error, "could not look up an ambiguous send");
                        continue;
                    }
                };
                if self
                    .store
                    .resolve(&campaign.id, recipient.position, &outcome, now)
                    .await?
                {
                    resolved += 1;
                }
            }
        }
        Ok(resolved)
    }

    /// Runs `campaign` at `slot`: claims and sends its batch (nothing when another engine
    /// already ran the slot).
    pub async fn run(&self, campaign: &Campaign, slot: i64) -> Result<RunReport, Error> {
        let plan = campaign.spec.schedule.plan()?;
        let now = self.now();
        let lease_until = (now + self.config.lease).unix_timestamp();
        let claimed = self
            .store
            .claim(
                &campaign.id,
                slot,
                plan.per_run() as usize,
                &self.config.worker,
                lease_until,
                now,
            )
            .await?;
        let mut report = RunReport {
            campaign_id: Some(campaign.id.clone()),
            slot,
            claimed: claimed.len() as u64,
            ..RunReport::default()
        };
        let started_at = campaign.started_at.unwrap_or(now);
        let signature = self.signature(&campaign.spec);
        let templates = [
            campaign.spec.template(Variant::A)?,
            campaign.spec.template(Variant::B)?,
        ];
        let mut stopped = false;
        let mut last_deferral = None;
        for recipient in claimed {
            if !stopped {
                stopped = self.store.campaign(&campaign.id).await?.state != CampaignState::Active;
            }
            if stopped {
                if self.finish(&recipient, &Outcome::Released).await? {
                    report.released += 1;
                }
                continue;
            }
            let skip = if self.history.opted_out(&recipient.phone).await? {
                Some(SkipReason::OptedOut)
            } else if self
                .history
                .communicated_before(&recipient.phone, started_at)
                .await?
            {
                Some(SkipReason::PriorCommunication)
            } else {
                None
            };
            let text = match skip {
                Some(reason) => Err(reason),
                None => {
                    let contact = self.store.contact(&recipient.contact_id).await?;
                    let template = &templates[usize::from(recipient.variant == Variant::B)];
                    Self::message_for(&signature, template, &contact.template_values())
                }
            };
            let text = match text {
                Ok(text) => text,
                Err(reason) => {
                    if self.finish(&recipient, &Outcome::Skipped(reason)).await? {
                        report.skipped += 1;
                    }
                    continue;
                }
            };
            let now = self.now();
            let lease_until = (now + self.config.lease).unix_timestamp();
            if !self
                .store
                .begin_send(
                    &campaign.id,
                    recipient.position,
                    &self.config.worker,
                    &text,
                    lease_until,
                    now,
                )
                .await?
            {
                // Paused (or the claim lapsed) between the check and now.
                stopped = true;
                if self.finish(&recipient, &Outcome::Released).await? {
                    report.released += 1;
                }
                continue;
            }
            let message = OutgoingText {
                from: campaign.spec.sender.clone(),
                to: recipient.phone.clone(),
                text,
            };
            let outcome = match self.sender.send(&message).await {
                SendResult::Sent { message_id } => {
                    report.sent += 1;
                    Outcome::Sent { message_id }
                }
                SendResult::Failed { reason } => {
                    report.failed += 1;
                    Outcome::Failed { reason }
                }
                SendResult::Ambiguous { reason } => {
                    report.ambiguous += 1;
                    Outcome::Ambiguous { reason }
                }
                SendResult::Deferred { reason } => {
                    report.deferred += 1;
                    stopped = true;
                    last_deferral = Some(reason.clone());
                    Outcome::Deferred { reason }
                }
            };
            self.finish(&recipient, &outcome).await?;
        }
        let failures = report.failed + report.ambiguous + report.deferred;
        let attempts = report.sent + failures;
        let too_many = attempts >= u64::from(self.config.failure_min_attempts)
            && failures as f64 / attempts as f64 >= self.config.failure_threshold;
        let nothing_went_out = report.deferred > 0 && report.sent == 0;
        if too_many || nothing_went_out {
            let reason = match (&last_deferral, too_many) {
                (Some(deferral), false) => format!(
                    "paused automatically: nothing could be sent in the run at slot {slot} ({deferral})"
                ),
                _ => format!(
                    "paused automatically: {failures} of {attempts} sends in the run at slot {slot} failed"
                ),
            };
            match self.pause(&campaign.id, Some(reason.clone())).await {
                Ok(_) => {
                    tracing::error!(campaign = %campaign.id, "{reason}");
                    report.auto_paused = Some(reason);
                }
                Err(Error::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(report)
    }

    async fn finish(&self, recipient: &Recipient, outcome: &Outcome) -> Result<bool, Error> {
        self.store
            .finish(
                &recipient.campaign_id,
                recipient.position,
                &self.config.worker,
                outcome,
                self.now(),
            )
            .await
    }
}
