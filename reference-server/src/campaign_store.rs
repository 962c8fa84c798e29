//! [`CampaignStore`] on the server's database (SQLite or PostgreSQL): audiences, campaigns
//! and their ledgers, passing the `sms_campaigns::conformance` suite like the memory store.
//!
//! Every state change is one conditional statement (or one transaction), so engines on
//! several replicas can share the database: a slot is claimed by one `UPDATE` of the
//! campaign's `last_slot`, recipients by one `UPDATE ... RETURNING` over the next pending
//! positions (`FOR UPDATE SKIP LOCKED` on PostgreSQL).

use openphone_types::E164;
use sms_campaigns::{
    Campaign, CampaignId, CampaignSpec, CampaignState, CampaignStore, Contact, ContactId,
    ContactList, Error, Group, LineType, ListId, Member, MemberStatus, NewContact, NewRecipient,
    Outcome, Recipient, RecipientState, Report, SkipReason, Validation, Variant,
};
use time::OffsetDateTime;

use crate::ingest::unix_ms;
use crate::store::{Arg, Statement, Store, StoreError};

fn backend(error: StoreError) -> Error {
    Error::backend(error)
}

fn time_of(ms: i64) -> OffsetDateTime {
    crate::ingest::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn phone_of(text: &str) -> Result<E164, Error> {
    E164::parse(text).map_err(|error| Error::backend(format!("stored number {text:?}: {error}")))
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn position_arg(position: u64) -> Arg {
    Arg::Int(Some(i64::try_from(position).unwrap_or(i64::MAX)))
}

const CONTACT_COLUMNS: &str = "c.id, c.phone, c.first_name, c.last_name, c.email, c.address, c.company, c.attributes, c.created_ms";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: String,
    phone: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    address: Option<String>,
    company: Option<String>,
    attributes: String,
    created_ms: i64,
}

impl ContactRow {
    fn into_contact(self) -> Result<Contact, Error> {
        Ok(Contact {
            id: ContactId(self.id),
            phone: phone_of(&self.phone)?,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            address: self.address,
            company: self.company,
            attributes: serde_json::from_str(&self.attributes).map_err(Error::backend)?,
            created_at: time_of(self.created_ms),
        })
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    position: i64,
    status: String,
    line_type: Option<String>,
    note: Option<String>,
    #[sqlx(flatten)]
    contact: ContactRow,
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: String,
    spec: String,
    state: String,
    state_reason: Option<String>,
    recipients: i64,
    last_slot: Option<i64>,
    started_ms: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
}

const CAMPAIGN_COLUMNS: &str =
    "id, spec, state, state_reason, recipients, last_slot, started_ms, created_ms, updated_ms";

impl CampaignRow {
    fn into_campaign(self) -> Result<Campaign, Error> {
        Ok(Campaign {
            spec: serde_json::from_str(&self.spec).map_err(Error::backend)?,
            state: CampaignState::parse(&self.state)
                .ok_or_else(|| Error::backend(format!("stored campaign state {:?}", self.state)))?,
            id: CampaignId(self.id),
            state_reason: self.state_reason,
            recipients: u64::try_from(self.recipients).unwrap_or(0),
            last_slot: self.last_slot,
            started_at: self.started_ms.map(time_of),
            created_at: time_of(self.created_ms),
            updated_at: time_of(self.updated_ms),
        })
    }
}

const RECIPIENT_COLUMNS: &str = "campaign_id, position, contact_id, phone, variant, state, detail, worker, lease_until, slot, text, message_id, attempted_ms, replied_ms, opted_out_ms, updated_ms";

#[derive(sqlx::FromRow)]
struct RecipientRow {
    campaign_id: String,
    position: i64,
    contact_id: String,
    phone: String,
    variant: String,
    state: String,
    detail: Option<String>,
    worker: Option<String>,
    lease_until: Option<i64>,
    slot: Option<i64>,
    text: Option<String>,
    message_id: Option<String>,
    attempted_ms: Option<i64>,
    replied_ms: Option<i64>,
    opted_out_ms: Option<i64>,
    updated_ms: i64,
}

impl RecipientRow {
    fn into_recipient(self) -> Result<Recipient, Error> {
        Ok(Recipient {
            campaign_id: CampaignId(self.campaign_id),
            position: u64::try_from(self.position).unwrap_or(0),
            contact_id: ContactId(self.contact_id),
            phone: phone_of(&self.phone)?,
            variant: if self.variant == "B" {
                Variant::B
            } else {
                Variant::A
            },
            state: RecipientState::parse(&self.state).ok_or_else(|| {
                Error::backend(format!("stored recipient state {:?}", self.state))
            })?,
            detail: self.detail,
            worker: self.worker,
            lease_until: self.lease_until,
            slot: self.slot,
            text: self.text,
            message_id: self.message_id,
            attempted_at: self.attempted_ms.map(time_of),
            replied_at: self.replied_ms.map(time_of),
            opted_out_at: self.opted_out_ms.map(time_of),
            updated_at: time_of(self.updated_ms),
        })
    }
}

fn recipients_of(rows: Vec<RecipientRow>) -> Result<Vec<Recipient>, Error> {
    let mut recipients = rows
        .into_iter()
        .map(RecipientRow::into_recipient)
        .collect::<Result<Vec<_>, _>>()?;
    recipients.sort_by_key(|r| r.position);
    Ok(recipients)
}

#[derive(sqlx::FromRow)]
struct ValidationRow {
    valid: i64,
    line_type: String,
    carrier: Option<String>,
    source: String,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: String,
    name: String,
    created_ms: i64,
    members: i64,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    variant: String,
    state: String,
    reason: Option<String>,
    recipients: i64,
    replied: i64,
    opted_out: i64,
}

/// The `SET` of an outcome, with its parameters as `$1` to `$4`: state, detail, message id,
/// time. Released rows forget their attempt.
const OUTCOME_SET: &str = "state = $1, detail = $2, message_id = COALESCE($3, message_id), \
     worker = NULL, lease_until = NULL, \
     text = CASE WHEN $1 = 'pending' THEN NULL ELSE text END, \
     attempted_ms = CASE WHEN $1 = 'pending' THEN NULL ELSE attempted_ms END, \
     updated_ms = $4";

fn outcome_args(outcome: &Outcome, now: OffsetDateTime) -> Vec<Arg> {
    let (state, detail, message_id) = match outcome {
        Outcome::Sent { message_id } => ("sent", None, Some(message_id.clone())),
        Outcome::Failed { reason } => ("failed", Some(reason.clone()), None),
        Outcome::Ambiguous { reason } => ("ambiguous", Some(reason.clone()), None),
        Outcome::Skipped(reason) => ("skipped", Some(reason.to_detail()), None),
        Outcome::Deferred { reason } => ("pending", Some(reason.clone()), None),
        Outcome::Released => ("pending", None, None),
    };
    vec![
        state.into(),
        detail.into(),
        message_id.into(),
        unix_ms(now).into(),
    ]
}

impl Store {
    async fn campaign_exists(&self, id: &CampaignId) -> Result<Campaign, Error> {
        CampaignStore::campaign(self, id).await
    }

    async fn list_exists(&self, id: &ListId) -> Result<(), Error> {
        let found: Option<(String,)> = self
            .fetch_optional(
                "SELECT id FROM audience_lists WHERE id = $1",
                &[id.0.as_str().into()],
            )
            .await
            .map_err(backend)?;
        found
            .map(|_| ())
            .ok_or_else(|| Error::NotFound(format!("list {}", id.0)))
    }

    async fn mark_after_send(
        &self,
        column: &str,
        phone: &E164,
        at: OffsetDateTime,
    ) -> Result<u64, Error> {
        self.execute(
            &format!(
                "UPDATE campaign_recipients SET {column} = $2 \
                 WHERE phone = $1 AND state IN ('sent', 'delivered', 'failed', 'ambiguous') \
                 AND attempted_ms <= $2 AND ({column} IS NULL OR {column} > $2)"
            ),
            &[phone.as_str().into(), unix_ms(at).into()],
        )
        .await
        .map_err(backend)
    }
}

const INSERT_CHUNK: usize = 1_000;

impl CampaignStore for Store {
    async fn upsert_contact(
        &self,
        contact: NewContact,
        now: OffsetDateTime,
    ) -> Result<(Contact, bool), Error> {
        let phone = contact
            .phone
            .clone()
            .ok_or_else(|| Error::Invalid("a contact needs a phone number".into()))?;
        let attributes = serde_json::to_string(&contact.attributes).map_err(Error::backend)?;
        let inserted = self
            .execute(
                "INSERT INTO audience_contacts \
                 (id, phone, first_name, last_name, email, address, company, attributes, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (phone) DO NOTHING",
                &[
                    new_id("ac").into(),
                    phone.as_str().into(),
                    contact.first_name.into(),
                    contact.last_name.into(),
                    contact.email.into(),
                    contact.address.into(),
                    contact.company.into(),
                    attributes.into(),
                    unix_ms(now).into(),
                ],
            )
            .await
            .map_err(backend)?;
        let stored = self
            .contact_by_phone(&phone)
            .await?
            .ok_or_else(|| Error::backend("a contact vanished after its insert"))?;
        Ok((stored, inserted == 1))
    }

    async fn contact(&self, id: &ContactId) -> Result<Contact, Error> {
        let row: Option<ContactRow> = self
            .fetch_optional(
                &format!("SELECT {CONTACT_COLUMNS} FROM audience_contacts c WHERE c.id = $1"),
                &[id.0.as_str().into()],
            )
            .await
            .map_err(backend)?;
        row.ok_or_else(|| Error::NotFound(format!("contact {}", id.0)))?
            .into_contact()
    }

    async fn contact_by_phone(&self, phone: &E164) -> Result<Option<Contact>, Error> {
        let row: Option<ContactRow> = self
            .fetch_optional(
                &format!("SELECT {CONTACT_COLUMNS} FROM audience_contacts c WHERE c.phone = $1"),
                &[phone.as_str().into()],
            )
            .await
            .map_err(backend)?;
        row.map(ContactRow::into_contact).transpose()
    }

    async fn create_list(&self, name: &str, now: OffsetDateTime) -> Result<ContactList, Error> {
        let id = ListId(new_id("ls"));
        self.execute(
            "INSERT INTO audience_lists (id, name, created_ms) VALUES ($1, $2, $3)",
            &[id.0.as_str().into(), name.into(), unix_ms(now).into()],
        )
        .await
        .map_err(backend)?;
        self.list(&id).await
    }

    async fn list(&self, id: &ListId) -> Result<ContactList, Error> {
        let row: Option<ListRow> = self
            .fetch_optional(
                "SELECT l.id, l.name, l.created_ms, \
                 (SELECT count(*) FROM audience_members m WHERE m.list_id = l.id) AS members \
                 FROM audience_lists l WHERE l.id = $1",
                &[id.0.as_str().into()],
            )
            .await
            .map_err(backend)?;
        let row = row.ok_or_else(|| Error::NotFound(format!("list {}", id.0)))?;
        Ok(ContactList {
            id: ListId(row.id),
            name: row.name,
            members: u64::try_from(row.members).unwrap_or(0),
            created_at: time_of(row.created_ms),
        })
    }

    async fn add_member(
        &self,
        list: &ListId,
        contact: &ContactId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.list_exists(list).await?;
        CampaignStore::contact(self, contact).await?;
        let mut attempts = 0;
        loop {
            let result = self
                .execute(
                    "INSERT INTO audience_members (list_id, position, contact_id, status, added_ms) \
                     SELECT $1, COALESCE(MAX(position) + 1, 0), $2, 'unvalidated', $3 \
                     FROM audience_members WHERE list_id = $1 \
                     ON CONFLICT (list_id, contact_id) DO NOTHING",
                    &[list.0.as_str().into(), contact.0.as_str().into(), unix_ms(now).into()],
                )
                .await;
            match result {
                Ok(rows) => return Ok(rows == 1),
                // Another insert took the same position: take the next one.
                Err(error) if error.is_unique_violation() && attempts < 20 => attempts += 1,
                Err(error) => return Err(backend(error)),
            }
        }
    }

    async fn members(
        &self,
        list: &ListId,
        status: Option<MemberStatus>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Member>, Error> {
        self.list_exists(list).await?;
        let mut args: Vec<Arg> = vec![
            list.0.as_str().into(),
            after
                .map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX))
                .into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        let filter = match status {
            Some(status) => {
                args.push(member_status(status).into());
                " AND m.status = $4"
            }
            None => "",
        };
        let rows: Vec<MemberRow> = self
            .fetch_all(
                &format!(
                    "SELECT m.position, m.status, m.line_type, m.note, {CONTACT_COLUMNS} \
                     FROM audience_members m JOIN audience_contacts c ON c.id = m.contact_id \
                     WHERE m.list_id = $1 AND m.position > $2{filter} ORDER BY m.position LIMIT $3"
                ),
                &args,
            )
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|row| {
                Ok(Member {
                    list_id: list.clone(),
                    position: u64::try_from(row.position).unwrap_or(0),
                    status: match row.status.as_str() {
                        "kept" => MemberStatus::Kept,
                        "excluded" => MemberStatus::Excluded,
                        _ => MemberStatus::Unvalidated,
                    },
                    line_type: row.line_type.as_deref().map(LineType::parse),
                    note: row.note,
                    contact: row.contact.into_contact()?,
                })
            })
            .collect()
    }

    async fn set_member_status(
        &self,
        list: &ListId,
        position: u64,
        status: MemberStatus,
        line_type: Option<LineType>,
        note: Option<String>,
    ) -> Result<(), Error> {
        let rows = self
            .execute(
                "UPDATE audience_members SET status = $3, line_type = $4, note = $5 \
                 WHERE list_id = $1 AND position = $2",
                &[
                    list.0.as_str().into(),
                    position_arg(position),
                    member_status(status).into(),
                    line_type.map(|l| l.as_str().to_owned()).into(),
                    note.into(),
                ],
            )
            .await
            .map_err(backend)?;
        if rows == 0 {
            return Err(Error::NotFound(format!(
                "member {position} of list {}",
                list.0
            )));
        }
        Ok(())
    }

    async fn cached_validation(&self, phone: &E164) -> Result<Option<Validation>, Error> {
        let row: Option<ValidationRow> = self
            .fetch_optional(
                "SELECT CAST(valid AS BIGINT) AS valid, line_type, carrier, source \
                 FROM phone_validations WHERE phone = $1",
                &[phone.as_str().into()],
            )
            .await
            .map_err(backend)?;
        Ok(row.map(|row| Validation {
            valid: row.valid != 0,
            line_type: LineType::parse(&row.line_type),
            carrier: row.carrier,
            source: row.source,
        }))
    }

    async fn cache_validation(
        &self,
        phone: &E164,
        validation: &Validation,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.execute(
            "INSERT INTO phone_validations (phone, valid, line_type, carrier, source, checked_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (phone) DO UPDATE SET \
             valid = excluded.valid, line_type = excluded.line_type, carrier = excluded.carrier, \
             source = excluded.source, checked_ms = excluded.checked_ms",
            &[
                phone.as_str().into(),
                Arg::Int(Some(i64::from(validation.valid))),
                validation.line_type.as_str().into(),
                validation.carrier.clone().into(),
                validation.source.as_str().into(),
                unix_ms(now).into(),
            ],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn create_campaign(
        &self,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        self.list_exists(&spec.list_id).await?;
        let id = CampaignId(new_id("cp"));
        self.execute(
            "INSERT INTO campaigns (id, spec, list_id, state, created_ms, updated_ms) \
             VALUES ($1, $2, $3, 'draft', $4, $4)",
            &[
                id.0.as_str().into(),
                serde_json::to_string(spec).map_err(Error::backend)?.into(),
                spec.list_id.0.as_str().into(),
                unix_ms(now).into(),
            ],
        )
        .await
        .map_err(backend)?;
        CampaignStore::campaign(self, &id).await
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Campaign, Error> {
        let row: Option<CampaignRow> = self
            .fetch_optional(
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"),
                &[id.0.as_str().into()],
            )
            .await
            .map_err(backend)?;
        row.ok_or_else(|| Error::NotFound(format!("campaign {id}")))?
            .into_campaign()
    }

    async fn campaigns(&self, state: Option<CampaignState>) -> Result<Vec<Campaign>, Error> {
        let (filter, args): (&str, Vec<Arg>) = match state {
            Some(state) => (" WHERE state = $1", vec![state.as_str().into()]),
            None => ("", Vec::new()),
        };
        let rows: Vec<CampaignRow> = self
            .fetch_all(
                &format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns{filter} ORDER BY created_ms DESC, id DESC"
                ),
                &args,
            )
            .await
            .map_err(backend)?;
        rows.into_iter().map(CampaignRow::into_campaign).collect()
    }

    async fn update_draft(
        &self,
        id: &CampaignId,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> Result<Campaign, Error> {
        self.list_exists(&spec.list_id).await?;
        let rows = self
            .execute(
                "UPDATE campaigns SET spec = $2, list_id = $3, updated_ms = $4 WHERE id = $1 AND state = 'draft'",
                &[
                    id.0.as_str().into(),
                    serde_json::to_string(spec).map_err(Error::backend)?.into(),
                    spec.list_id.0.as_str().into(),
                    unix_ms(now).into(),
                ],
            )
            .await
            .map_err(backend)?;
        let campaign = self.campaign_exists(id).await?;
        if rows == 0 {
            return Err(Error::Conflict(format!(
                "campaign {id} is {}: only drafts can be edited",
                campaign.state
            )));
        }
        Ok(campaign)
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
        let mut statements = vec![Statement::required(
            "UPDATE campaigns SET state = $3, state_reason = $4, last_slot = COALESCE($5, last_slot), \
             updated_ms = $6 WHERE id = $1 AND state = $2",
            vec![
                id.0.as_str().into(),
                from.as_str().into(),
                to.as_str().into(),
                reason.into(),
                last_slot.into(),
                unix_ms(now).into(),
            ],
        )];
        if to == CampaignState::Cancelled {
            statements.push(Statement::new(
                "UPDATE campaign_recipients SET state = 'skipped', detail = $2, updated_ms = $3 \
                 WHERE campaign_id = $1 AND state = 'pending'",
                vec![
                    id.0.as_str().into(),
                    SkipReason::Cancelled.to_detail().into(),
                    unix_ms(now).into(),
                ],
            ));
        }
        let applied = self.execute_all(&statements).await.map_err(backend)?;
        let campaign = self.campaign_exists(id).await?;
        if applied.is_none() {
            return Err(Error::Conflict(format!(
                "campaign {id} is {}, not {from}",
                campaign.state
            )));
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
        let campaign = self.campaign_exists(id).await?;
        let total = recipients.len() as u64;
        let ab = campaign.spec.message_b.is_some();
        let now_ms = unix_ms(now);
        let mut statements = vec![
            Statement::required(
                "UPDATE campaigns SET state = 'active', state_reason = NULL, recipients = $2, \
                 last_slot = $3, started_ms = $4, updated_ms = $4 WHERE id = $1 AND state = 'draft'",
                vec![
                    id.0.as_str().into(),
                    Arg::Int(Some(i64::try_from(total).unwrap_or(i64::MAX))),
                    last_slot.into(),
                    now_ms.into(),
                ],
            ),
            Statement::new(
                "DELETE FROM campaign_recipients WHERE campaign_id = $1",
                vec![id.0.as_str().into()],
            ),
        ];
        for (chunk_index, chunk) in recipients.chunks(INSERT_CHUNK).enumerate() {
            let mut values = Vec::with_capacity(chunk.len());
            let mut args = Vec::with_capacity(chunk.len() * 6);
            for (offset, recipient) in chunk.iter().enumerate() {
                let position = (chunk_index * INSERT_CHUNK + offset) as u64;
                let n = args.len();
                values.push(format!(
                    "(${}, ${}, ${}, ${}, ${}, 'pending', ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6
                ));
                args.extend([
                    id.0.as_str().into(),
                    position_arg(position),
                    recipient.contact_id.0.as_str().into(),
                    recipient.phone.as_str().into(),
                    Variant::for_position(position, total, ab).as_str().into(),
                    now_ms.into(),
                ]);
            }
            statements.push(Statement::new(
                format!(
                    "INSERT INTO campaign_recipients \
                     (campaign_id, position, contact_id, phone, variant, state, updated_ms) VALUES {}",
                    values.join(", ")
                ),
                args,
            ));
        }
        if self
            .execute_all(&statements)
            .await
            .map_err(backend)?
            .is_none()
        {
            let current = self.campaign_exists(id).await?;
            return Err(Error::Conflict(format!(
                "campaign {id} is {}, not draft",
                current.state
            )));
        }
        if matches!(self, Store::Postgres(_)) {
            // A ledger of 100,000 rows inserted at once is invisible to the planner until
            // autovacuum analyzes it; meanwhile claims scan it (measured 5.5x slower per run
            // than a 1,000-row ledger). Analyze now so the first run already uses the index.
            if let Err(error) = self.execute("ANALYZE campaign_recipients", &[]).await {
                tracing::warn!(%error, "campaign_recipients not analyzed after activation");
            }
        }
        self.campaign_exists(id).await
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
        // Winning the slot is one conditional update; only the winner claims. A crash
        // between the two statements skips this slot's run: nobody is lost (the recipients
        // stay pending for the next slot) and nobody is sent twice.
        let won = self
            .execute(
                "UPDATE campaigns SET last_slot = $2, updated_ms = $3 \
                 WHERE id = $1 AND state = 'active' AND (last_slot IS NULL OR last_slot < $2)",
                &[id.0.as_str().into(), slot.into(), unix_ms(now).into()],
            )
            .await
            .map_err(backend)?;
        if won == 0 {
            self.campaign_exists(id).await?;
            return Ok(Vec::new());
        }
        let rows: Vec<RecipientRow> = self
            .fetch_all(
                &format!(
                    "WITH picked AS MATERIALIZED (\
                       SELECT position AS picked_position FROM campaign_recipients \
                       WHERE campaign_id = $1 AND state = 'pending' \
                       ORDER BY position LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     UPDATE campaign_recipients SET state = 'claimed', worker = $3, lease_until = $4, \
                     slot = $5, updated_ms = $6 FROM picked \
                     WHERE campaign_id = $1 AND state = 'pending' AND position = picked_position \
                     RETURNING {RECIPIENT_COLUMNS}"
                ),
                &[
                    id.0.as_str().into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                    worker.into(),
                    lease_until.into(),
                    slot.into(),
                    unix_ms(now).into(),
                ],
            )
            .await
            .map_err(backend)?;
        recipients_of(rows)
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
        let rows = self
            .execute(
                "UPDATE campaign_recipients SET state = 'sending', text = $4, lease_until = $5, \
                 attempted_ms = $6, updated_ms = $6 \
                 WHERE campaign_id = $1 AND position = $2 AND state = 'claimed' AND worker = $3 \
                 AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND state = 'active')",
                &[
                    id.0.as_str().into(),
                    position_arg(position),
                    worker.into(),
                    text.into(),
                    lease_until.into(),
                    unix_ms(now).into(),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(rows == 1)
    }

    async fn finish(
        &self,
        id: &CampaignId,
        position: u64,
        worker: &str,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let expected = match outcome {
            Outcome::Sent { .. }
            | Outcome::Failed { .. }
            | Outcome::Ambiguous { .. }
            | Outcome::Deferred { .. } => "sending",
            Outcome::Skipped(_) | Outcome::Released => "claimed",
        };
        let mut args = outcome_args(outcome, now);
        args.extend([
            id.0.as_str().into(),
            position_arg(position),
            expected.into(),
            worker.into(),
        ]);
        let rows = self
            .execute(
                &format!(
                    "UPDATE campaign_recipients SET {OUTCOME_SET} \
                     WHERE campaign_id = $5 AND position = $6 AND state = $7 AND worker = $8"
                ),
                &args,
            )
            .await
            .map_err(backend)?;
        Ok(rows == 1)
    }

    async fn recover_expired(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let now_s = now.unix_timestamp();
        let applied = self
            .execute_all(&[
                Statement::new(
                    "UPDATE campaign_recipients SET state = 'pending', detail = NULL, worker = NULL, \
                     lease_until = NULL, updated_ms = $2 WHERE state = 'claimed' AND lease_until < $1",
                    vec![now_s.into(), unix_ms(now).into()],
                ),
                Statement::new(
                    "UPDATE campaign_recipients SET state = 'ambiguous', \
                     detail = 'the worker''s lease lapsed during the send', worker = NULL, \
                     lease_until = NULL, updated_ms = $2 WHERE state = 'sending' AND lease_until < $1",
                    vec![now_s.into(), unix_ms(now).into()],
                ),
            ])
            .await
            .map_err(backend)?;
        Ok(applied.map_or(0, |rows| rows.iter().sum()))
    }

    async fn resolve(
        &self,
        id: &CampaignId,
        position: u64,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut args = outcome_args(outcome, now);
        args.extend([id.0.as_str().into(), position_arg(position)]);
        let rows = self
            .execute(
                &format!(
                    "UPDATE campaign_recipients SET {OUTCOME_SET} \
                     WHERE campaign_id = $5 AND position = $6 AND state = 'ambiguous'"
                ),
                &args,
            )
            .await
            .map_err(backend)?;
        Ok(rows == 1)
    }

    async fn recipients(
        &self,
        id: &CampaignId,
        state: Option<RecipientState>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Recipient>, Error> {
        self.campaign_exists(id).await?;
        let mut args: Vec<Arg> = vec![
            id.0.as_str().into(),
            after
                .map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX))
                .into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        let filter = match state {
            Some(state) => {
                args.push(state.as_str().into());
                " AND state = $4"
            }
            None => "",
        };
        let rows: Vec<RecipientRow> = self
            .fetch_all(
                &format!(
                    "SELECT {RECIPIENT_COLUMNS} FROM campaign_recipients \
                     WHERE campaign_id = $1 AND position > $2{filter} ORDER BY position LIMIT $3"
                ),
                &args,
            )
            .await
            .map_err(backend)?;
        recipients_of(rows)
    }

    async fn record_delivery(
        &self,
        message_id: &str,
        failure: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let (sql, args): (&str, Vec<Arg>) = match failure {
            // A delivery replaces a failure reported first.
            None => (
                "UPDATE campaign_recipients SET state = 'delivered', detail = NULL, updated_ms = GREATEST(updated_ms, $2) \
                 WHERE message_id = $1 AND state IN ('sent', 'delivered', 'failed')",
                vec![message_id.into(), unix_ms(now).into()],
            ),
            // A late failure report never overrides a delivery.
            Some(reason) => (
                "UPDATE campaign_recipients SET state = 'failed', detail = $3, updated_ms = GREATEST(updated_ms, $2) \
                 WHERE message_id = $1 AND state = 'sent'",
                vec![message_id.into(), unix_ms(now).into(), reason.into()],
            ),
        };
        let rows = self.execute(sql, &args).await.map_err(backend)?;
        Ok(rows > 0)
    }

    async fn record_reply(&self, phone: &E164, at: OffsetDateTime) -> Result<u64, Error> {
        self.mark_after_send("replied_ms", phone, at).await
    }

    async fn record_opt_out(&self, phone: &E164, at: OffsetDateTime) -> Result<u64, Error> {
        self.mark_after_send("opted_out_ms", phone, at).await
    }

    async fn complete_if_done(&self, id: &CampaignId, now: OffsetDateTime) -> Result<bool, Error> {
        let rows = self
            .execute(
                "UPDATE campaigns SET state = 'completed', updated_ms = $2 \
                 WHERE id = $1 AND state = 'active' AND NOT EXISTS (\
                   SELECT 1 FROM campaign_recipients WHERE campaign_id = $1 \
                   AND state IN ('pending', 'claimed', 'sending', 'ambiguous'))",
                &[id.0.as_str().into(), unix_ms(now).into()],
            )
            .await
            .map_err(backend)?;
        if rows == 0 {
            self.campaign_exists(id).await?;
        }
        Ok(rows == 1)
    }

    async fn report(&self, id: &CampaignId) -> Result<Report, Error> {
        self.campaign_exists(id).await?;
        let rows: Vec<GroupRow> = self
            .fetch_all(
                "SELECT variant, state, CASE WHEN state = 'skipped' THEN detail END AS reason, \
                 count(*) AS recipients, count(replied_ms) AS replied, count(opted_out_ms) AS opted_out \
                 FROM campaign_recipients WHERE campaign_id = $1 \
                 GROUP BY variant, state, CASE WHEN state = 'skipped' THEN detail END",
                &[id.0.as_str().into()],
            )
            .await
            .map_err(backend)?;
        let mut report = Report::default();
        for row in &rows {
            let state = RecipientState::parse(&row.state)
                .ok_or_else(|| Error::backend(format!("stored recipient state {:?}", row.state)))?;
            report.add_group(&Group {
                variant: if row.variant == "B" {
                    Variant::B
                } else {
                    Variant::A
                },
                state,
                skip_reason: (state == RecipientState::Skipped)
                    .then(|| row.reason.as_deref().unwrap_or_default()),
                recipients: u64::try_from(row.recipients).unwrap_or(0),
                replied: u64::try_from(row.replied).unwrap_or(0),
                opted_out: u64::try_from(row.opted_out).unwrap_or(0),
            });
        }
        Ok(report)
    }
}

fn member_status(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Unvalidated => "unvalidated",
        MemberStatus::Kept => "kept",
        MemberStatus::Excluded => "excluded",
    }
}
