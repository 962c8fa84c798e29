//! [`MemoryStore`]: the in-memory [`CampaignStore`], for tests and for embedding without a
//! database. Claims cost O(claimed), not O(ledger): pending positions are kept in order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openphone_types::E164;
use time::OffsetDateTime;

use crate::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, Contact, ContactId,
    ContactList, Error, LineType, ListId, Member, MemberStatus, NewContact, NewRecipient, Outcome,
    Recipient, RecipientState, Report, SkipReason, Validation, Variant,
};

/// An in-memory [`CampaignStore`]. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    contacts: HashMap<ContactId, Contact>,
    by_phone: HashMap<E164, ContactId>,
    lists: BTreeMap<ListId, ContactList>,
    members: HashMap<ListId, Vec<MemberRow>>,
    membership: HashMap<(ListId, ContactId), u64>,
    validations: HashMap<E164, Validation>,
    campaigns: BTreeMap<CampaignId, Campaign>,
    ledgers: HashMap<CampaignId, Ledger>,
    by_message: HashMap<String, (CampaignId, u64)>,
    recipients_by_phone: HashMap<E164, Vec<(CampaignId, u64)>>,
}

#[derive(Debug)]
struct MemberRow {
    contact_id: ContactId,
    status: MemberStatus,
    line_type: Option<LineType>,
    note: Option<String>,
}

#[derive(Debug, Default)]
struct Ledger {
    rows: Vec<Recipient>,
    /// Positions in the pending state, in order: what the next claim takes.
    pending: BTreeSet<u64>,
    /// Positions under a lease (claimed or sending): what recovery looks at.
    leased: BTreeSet<u64>,
    /// Rows still needing work ([`RecipientState::is_open`]).
    open: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The campaign that sent message `message_id` (a recipient finished as
    /// [`Outcome::Sent`] with that id), if any: what a reader of conversations joins on.
    pub fn campaign_of_message(&self, message_id: &str) -> Option<CampaignId> {
        self.lock()
            .by_message
            .get(message_id)
            .map(|(id, _)| id.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{}", self.next_id)
    }

    fn campaign_mut(&mut self, id: &CampaignId) -> Result<&mut Campaign, Error> {
        self.campaigns
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("campaign {id}")))
    }

    fn row_mut(&mut self, id: &CampaignId, position: u64) -> Result<&mut Recipient, Error> {
        self.ledgers
            .get_mut(id)
            .and_then(|ledger| ledger.rows.get_mut(position as usize))
            .ok_or_else(|| Error::NotFound(format!("recipient {position} of campaign {id}")))
    }

    fn set_row(
        &mut self,
        id: &CampaignId,
        position: u64,
        change: impl FnOnce(&mut Recipient),
    ) -> Result<(), Error> {
        let row = self.row_mut(id, position)?;
        let before = row.state;
        change(row);
        let after = row.state;
        let message = row.message_id.clone();
        let Some(ledger) = self.ledgers.get_mut(id) else {
            return Ok(());
        };
        let leased = |state| matches!(state, RecipientState::Claimed | RecipientState::Sending);
        if before == RecipientState::Pending {
            ledger.pending.remove(&position);
        }
        if after == RecipientState::Pending {
            ledger.pending.insert(position);
        }
        if leased(before) {
            ledger.leased.remove(&position);
        }
        if leased(after) {
            ledger.leased.insert(position);
        }
        match (before.is_open(), after.is_open()) {
            (true, false) => ledger.open -= 1,
            (false, true) => ledger.open += 1,
            _ => {}
        }
        if let Some(message) = message {
            self.by_message.insert(message, (id.clone(), position));
        }
        Ok(())
    }
}

fn apply(row: &mut Recipient, outcome: &Outcome, now: OffsetDateTime) {
    row.updated_at = now;
    match outcome {
        Outcome::Sent { message_id } => {
            row.state = RecipientState::Sent;
            row.message_id = Some(message_id.clone());
            row.detail = None;
        }
        Outcome::Failed { reason } => {
            row.state = RecipientState::Failed;
            row.detail = Some(reason.clone());
        }
        Outcome::Ambiguous { reason } => {
            row.state = RecipientState::Ambiguous;
            row.detail = Some(reason.clone());
        }
        Outcome::Skipped(reason) => {
            row.state = RecipientState::Skipped;
            row.detail = Some(reason.to_detail());
        }
        Outcome::Deferred { reason } => {
            row.state = RecipientState::Pending;
            row.detail = Some(reason.clone());
            row.text = None;
            row.attempted_at = None;
        }
        Outcome::Released => {
            row.state = RecipientState::Pending;
            row.detail = None;
            row.worker = None;
            row.lease_until = None;
            row.text = None;
            row.attempted_at = None;
        }
    }
    if outcome != &Outcome::Released {
        row.worker = None;
        row.lease_until = None;
    }
}

impl CampaignStore for MemoryStore {
    async fn upsert_contact(
        &self,
        contact: NewContact,
        now: OffsetDateTime,
    ) -> Result<(Contact, bool), Error> {
        let phone = contact
            .phone
            .clone()
            .ok_or_else(|| Error::Invalid("a contact needs a phone number".into()))?;
        let mut inner = self.lock();
        if let Some(id) = inner.by_phone.get(&phone) {
            return Ok((inner.contacts[id].clone(), false));
        }
        let id = ContactId(inner.id("ct"));
        let stored = Contact {
            id: id.clone(),
            phone: phone.clone(),
            first_name: contact.first_name,
            last_name: contact.last_name,
            email: contact.email,
            address: contact.address,
            company: contact.company,
            attributes: contact.attributes,
            created_at: now,
        };
        inner.by_phone.insert(phone, id.clone());
        inner.contacts.insert(id, stored.clone());
        Ok((stored, true))
    }

    async fn contact(&self, id: &ContactId) -> Result<Contact, Error> {
        self.lock()
            .contacts
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("contact {}", id.0)))
    }

    async fn contact_by_phone(&self, phone: &E164) -> Result<Option<Contact>, Error> {
        let inner = self.lock();
        Ok(inner
            .by_phone
            .get(phone)
            .map(|id| inner.contacts[id].clone()))
    }

    async fn create_list(&self, name: &str, now: OffsetDateTime) -> Result<ContactList, Error> {
        let mut inner = self.lock();
        let id = ListId(inner.id("ls"));
        let list = ContactList {
            id: id.clone(),
            name: name.to_owned(),
            members: 0,
            created_at: now,
        };
        inner.lists.insert(id.clone(), list.clone());
        inner.members.insert(id, Vec::new());
        Ok(list)
    }

    async fn list(&self, id: &ListId) -> Result<ContactList, Error> {
        self.lock()
            .lists
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("list {}", id.0)))
    }

    async fn add_member(
        &self,
        list: &ListId,
        contact: &ContactId,
        _now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        if !inner.lists.contains_key(list) {
            return Err(Error::NotFound(format!("list {}", list.0)));
        }
        if !inner.contacts.contains_key(contact) {
            return Err(Error::NotFound(format!("contact {}", contact.0)));
        }
        let key = (list.clone(), contact.clone());
        if inner.membership.contains_key(&key) {
            return Ok(false);
        }
        let rows = inner.members.entry(list.clone()).or_default();
        let position = rows.len() as u64;
        rows.push(MemberRow {
            contact_id: contact.clone(),
            status: MemberStatus::Unvalidated,
            line_type: None,
            note: None,
        });
        inner.membership.insert(key, position);
        if let Some(stored) = inner.lists.get_mut(list) {
            stored.members += 1;
        }
        Ok(true)
    }

    async fn members(
        &self,
        list: &ListId,
        status: Option<MemberStatus>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Member>, Error> {
        let inner = self.lock();
        let rows = inner
            .members
            .get(list)
            .ok_or_else(|| Error::NotFound(format!("list {}", list.0)))?;
        let start = after.map_or(0, |after| after as usize + 1);
        Ok(rows
            .iter()
            .enumerate()
            .skip(start)
            .filter(|(_, row)| status.is_none_or(|status| row.status == status))
            .take(limit)
            .map(|(position, row)| Member {
                list_id: list.clone(),
                position: position as u64,
                contact: inner.contacts[&row.contact_id].clone(),
                status: row.status,
                line_type: row.line_type,
                note: row.note.clone(),
            })
            .collect())
    }

    async fn set_member_status(
        &self,
        list: &ListId,
        position: u64,
        status: MemberStatus,
        line_type: Option<LineType>,
        note: Option<String>,
    ) -> Result<(), Error> {
        let mut inner = self.lock();
        let row = inner
            .members
            .get_mut(list)
            .and_then(|rows| rows.get_mut(position as usize))
            .ok_or_else(|| Error::NotFound(format!("member {position} of list {}", list.0)))?;
        row.status = status;
        row.line_type = line_type;
        row.note = note;
        Ok(())
    }

    async fn cached_validation(&self, phone: &E164) -> Result<Option<Validation>, Error> {
        Ok(self.lock().validations.get(phone).cloned())
    }

    async fn cache_validation(
        &self,
        phone: &E164,
        validation: &Validation,
        _now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.lock()
            .validations
            .insert(phone.clone(), validation.clone());
        Ok(())
    }

    async fn create_campaign(
        &self,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        let mut inner = self.lock();
        if !inner.lists.contains_key(&spec.list_id) {
            return Err(Error::NotFound(format!("list {}", spec.list_id.0)));
        }
        let id = CampaignId(inner.id("cp"));
        let campaign = Campaign {
            id: id.clone(),
            spec: spec.clone(),
            state: CampaignState::Draft,
            state_reason: None,
            recipients: 0,
            last_slot: None,
            started_at: None,
            created_at: now,
            updated_at: now,
        };
        inner.campaigns.insert(id, campaign.clone());
        Ok(campaign)
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Campaign, Error> {
        self.lock()
            .campaigns
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("campaign {id}")))
    }

    async fn campaigns(&self, state: Option<CampaignState>) -> Result<Vec<Campaign>, Error> {
        let inner = self.lock();
        let mut campaigns: Vec<Campaign> = inner
            .campaigns
            .values()
            .filter(|c| state.is_none_or(|state| c.state == state))
            .cloned()
            .collect();
        campaigns.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(campaigns)
    }

    async fn update_draft(
        &self,
        id: &CampaignId,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        let mut inner = self.lock();
        if !inner.lists.contains_key(&spec.list_id) {
            return Err(Error::NotFound(format!("list {}", spec.list_id.0)));
        }
        let campaign = inner.campaign_mut(id)?;
        if campaign.state != CampaignState::Draft {
            return Err(Error::Conflict(format!(
                "campaign {id} is {}: only drafts can be edited",
                campaign.state
            )));
        }
        campaign.spec = spec.clone();
        campaign.updated_at = now;
        Ok(campaign.clone())
    }

    async fn set_state(
        &self,
        id: &CampaignId,
        from: CampaignState,
        to: CampaignState,
        reason: Option<String>,
        last_slot: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        from.check(to)?;
        let mut inner = self.lock();
        let campaign = inner.campaign_mut(id)?;
        if campaign.state != from {
            return Err(Error::Conflict(format!(
                "campaign {id} is {}, not {from}",
                campaign.state
            )));
        }
        campaign.state = to;
        campaign.state_reason = reason;
        campaign.updated_at = now;
        if last_slot.is_some() {
            campaign.last_slot = last_slot;
        }
        let campaign = campaign.clone();
        if to == CampaignState::Cancelled {
            let pending: Vec<u64> = inner
                .ledgers
                .get(id)
                .map(|ledger| ledger.pending.iter().copied().collect())
                .unwrap_or_default();
            for position in pending {
                inner.set_row(id, position, |row| {
                    apply(row, &Outcome::Skipped(SkipReason::Cancelled), now)
                })?;
            }
        }
        Ok(campaign)
    }

    async fn activate(
        &self,
        id: &CampaignId,
        recipients: Vec<NewRecipient>,
        last_slot: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        let mut inner = self.lock();
        let campaign = inner.campaign_mut(id)?;
        if campaign.state != CampaignState::Draft {
            return Err(Error::Conflict(format!(
                "campaign {id} is {}, not draft",
                campaign.state
            )));
        }
        let total = recipients.len() as u64;
        let ab = campaign.spec.message_b.is_some();
        campaign.state = CampaignState::Active;
        campaign.state_reason = None;
        campaign.recipients = total;
        campaign.last_slot = last_slot;
        campaign.started_at = Some(now);
        campaign.updated_at = now;
        let campaign = campaign.clone();
        let mut ledger = Ledger::default();
        for (position, recipient) in recipients.into_iter().enumerate() {
            let position = position as u64;
            inner
                .recipients_by_phone
                .entry(recipient.phone.clone())
                .or_default()
                .push((id.clone(), position));
            ledger.pending.insert(position);
            ledger.open += 1;
            ledger.rows.push(Recipient {
                campaign_id: id.clone(),
                position,
                contact_id: recipient.contact_id,
                phone: recipient.phone,
                variant: Variant::for_position(position, total, ab),
                state: RecipientState::Pending,
                detail: None,
                worker: None,
                lease_until: None,
                slot: None,
                text: None,
                message_id: None,
                attempted_at: None,
                replied_at: None,
                opted_out_at: None,
                updated_at: now,
            });
        }
        inner.ledgers.insert(id.clone(), ledger);
        Ok(campaign)
    }

    async fn claim(
        &self,
        id: &CampaignId,
        slot: i64,
        limit: usize,
        worker: &str,
        lease_until: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<Recipient>, Error> {
        let mut inner = self.lock();
        let campaign = inner.campaign_mut(id)?;
        if campaign.state != CampaignState::Active
            || campaign.last_slot.is_some_and(|last| last >= slot)
        {
            return Ok(Vec::new());
        }
        campaign.last_slot = Some(slot);
        let positions: Vec<u64> = inner
            .ledgers
            .get(id)
            .map(|ledger| ledger.pending.iter().take(limit).copied().collect())
            .unwrap_or_default();
        let mut claimed = Vec::with_capacity(positions.len());
        for position in positions {
            inner.set_row(id, position, |row| {
                row.state = RecipientState::Claimed;
                row.worker = Some(worker.to_owned());
                row.lease_until = Some(lease_until);
                row.slot = Some(slot);
                row.updated_at = now;
            })?;
            claimed.push(inner.row_mut(id, position)?.clone());
        }
        Ok(claimed)
    }

    async fn begin_send(
        &self,
        id: &CampaignId,
        position: u64,
        worker: &str,
        text: &str,
        lease_until: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        if inner.campaign_mut(id)?.state != CampaignState::Active {
            return Ok(false);
        }
        let row = inner.row_mut(id, position)?;
        if row.state != RecipientState::Claimed || row.worker.as_deref() != Some(worker) {
            return Ok(false);
        }
        row.state = RecipientState::Sending;
        row.text = Some(text.to_owned());
        row.lease_until = Some(lease_until);
        row.attempted_at = Some(now);
        row.updated_at = now;
        Ok(true)
    }

    async fn finish(
        &self,
        id: &CampaignId,
        position: u64,
        worker: &str,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        let row = inner.row_mut(id, position)?;
        let expected = match outcome {
            Outcome::Sent { .. }
            | Outcome::Failed { .. }
            | Outcome::Ambiguous { .. }
            | Outcome::Deferred { .. } => RecipientState::Sending,
            Outcome::Skipped(_) | Outcome::Released => RecipientState::Claimed,
        };
        if row.state != expected || row.worker.as_deref() != Some(worker) {
            return Ok(false);
        }
        inner.set_row(id, position, |row| apply(row, outcome, now))?;
        Ok(true)
    }

    async fn recover_expired(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let mut inner = self.lock();
        let now_s = now.unix_timestamp();
        let mut expired = Vec::new();
        for (id, ledger) in &inner.ledgers {
            for position in &ledger.leased {
                let row = &ledger.rows[*position as usize];
                if row.lease_until.is_some_and(|lease| lease < now_s) {
                    expired.push((id.clone(), row.position, row.state));
                }
            }
        }
        for (id, position, state) in &expired {
            let outcome = if *state == RecipientState::Claimed {
                Outcome::Released
            } else {
                Outcome::Ambiguous {
                    reason: "the worker's lease lapsed during the send".to_owned(),
                }
            };
            inner.set_row(id, *position, |row| apply(row, &outcome, now))?;
        }
        Ok(expired.len() as u64)
    }

    async fn resolve(
        &self,
        id: &CampaignId,
        position: u64,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        if inner.row_mut(id, position)?.state != RecipientState::Ambiguous {
            return Ok(false);
        }
        inner.set_row(id, position, |row| apply(row, outcome, now))?;
        Ok(true)
    }

    async fn recipients(
        &self,
        id: &CampaignId,
        state: Option<RecipientState>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Recipient>, Error> {
        let inner = self.lock();
        if !inner.campaigns.contains_key(id) {
            return Err(Error::NotFound(format!("campaign {id}")));
        }
        let Some(ledger) = inner.ledgers.get(id) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(0, |after| after as usize + 1);
        Ok(ledger
            .rows
            .iter()
            .skip(start)
            .filter(|row| state.is_none_or(|state| row.state == state))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn record_delivery(
        &self,
        message_id: &str,
        failure: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        let Some((id, position)) = inner.by_message.get(message_id).cloned() else {
            return Ok(false);
        };
        let row = inner.row_mut(&id, position)?;
        match (failure, row.state) {
            // A late failure report never overrides a delivery.
            (Some(reason), RecipientState::Sent) => {
                row.state = RecipientState::Failed;
                row.detail = Some(reason.to_owned());
            }
            // A delivery replaces a failure reported first.
            (None, RecipientState::Sent | RecipientState::Delivered | RecipientState::Failed) => {
                row.state = RecipientState::Delivered;
                row.detail = None;
            }
            _ => return Ok(false),
        }
        // Reports arrive out of order: the row's time never moves back.
        row.updated_at = row.updated_at.max(now);
        Ok(true)
    }

    async fn record_reply(&self, phone: &E164, at: OffsetDateTime) -> Result<u64, Error> {
        self.mark_after_send(phone, at, |row| &mut row.replied_at)
    }

    async fn record_opt_out(&self, phone: &E164, at: OffsetDateTime) -> Result<u64, Error> {
        self.mark_after_send(phone, at, |row| &mut row.opted_out_at)
    }

    async fn complete_if_done(&self, id: &CampaignId, now: OffsetDateTime) -> Result<bool, Error> {
        let mut inner = self.lock();
        let open = inner.ledgers.get(id).is_some_and(|ledger| ledger.open > 0);
        let campaign = inner.campaign_mut(id)?;
        if campaign.state != CampaignState::Active || open {
            return Ok(false);
        }
        campaign.state = CampaignState::Completed;
        campaign.updated_at = now;
        Ok(true)
    }

    async fn report(&self, id: &CampaignId) -> Result<Report, Error> {
        let inner = self.lock();
        if !inner.campaigns.contains_key(id) {
            return Err(Error::NotFound(format!("campaign {id}")));
        }
        let mut report = Report::default();
        for row in inner
            .ledgers
            .get(id)
            .map(|l| l.rows.as_slice())
            .unwrap_or_default()
        {
            report.add(row);
        }
        Ok(report)
    }
}

impl MemoryStore {
    fn mark_after_send(
        &self,
        phone: &E164,
        at: OffsetDateTime,
        field: impl Fn(&mut Recipient) -> &mut Option<OffsetDateTime>,
    ) -> Result<u64, Error> {
        let mut inner = self.lock();
        let targets = inner
            .recipients_by_phone
            .get(phone)
            .cloned()
            .unwrap_or_default();
        let mut marked = 0;
        for (id, position) in targets {
            let row = inner.row_mut(&id, position)?;
            let sent = matches!(
                row.state,
                RecipientState::Sent
                    | RecipientState::Delivered
                    | RecipientState::Failed
                    | RecipientState::Ambiguous
            );
            if sent
                && row.attempted_at.is_some_and(|t| t <= at)
                && field(row).is_none_or(|marked| marked > at)
            {
                *field(row) = Some(at);
                marked += 1;
            }
        }
        Ok(marked)
    }
}
