//! The storage port: [`CampaignStore`] holds contacts, lists, campaigns and their ledgers.
//!
//! Every method that changes a campaign or a recipient is a compare-and-set: it applies only
//! from the state the caller saw, so several engines (or replicas) can share one store. The
//! crate ships [`crate::MemoryStore`]; SQL implementations live with the server and pass the
//! same [`crate::conformance`] suite.

use std::future::Future;

use openphone_types::E164;
use time::OffsetDateTime;

use crate::{
    Campaign, CampaignId, CampaignSpec, CampaignState, Contact, ContactId, ContactList, Error,
    LineType, ListId, Member, MemberStatus, NewContact, NewRecipient, Outcome, Recipient,
    RecipientState, Report, Validation,
};

/// Storage of audiences, campaigns and ledgers. Errors are [`Error::NotFound`],
/// [`Error::Conflict`], [`Error::Transition`] or [`Error::Backend`].
pub trait CampaignStore: Clone + Send + Sync + 'static {
    /// Creates the contact, or returns the one that already has its number (unchanged):
    /// `(contact, created)`. The number is required.
    fn upsert_contact(
        &self,
        contact: NewContact,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(Contact, bool), Error>> + Send;

    /// The contact with `id`.
    fn contact(&self, id: &ContactId) -> impl Future<Output = Result<Contact, Error>> + Send;

    /// The contact with `phone`, if any.
    fn contact_by_phone(
        &self,
        phone: &E164,
    ) -> impl Future<Output = Result<Option<Contact>, Error>> + Send;

    /// Creates an empty list.
    fn create_list(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<ContactList, Error>> + Send;

    /// The list with `id`.
    fn list(&self, id: &ListId) -> impl Future<Output = Result<ContactList, Error>> + Send;

    /// Appends `contact` to `list` as unvalidated; `false` (and no change) when it is
    /// already a member.
    fn add_member(
        &self,
        list: &ListId,
        contact: &ContactId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Members in list order after position `after`, at most `limit`, of `status` when given.
    fn members(
        &self,
        list: &ListId,
        status: Option<MemberStatus>,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Member>, Error>> + Send;

    /// Records the validation outcome of the member at `position`.
    fn set_member_status(
        &self,
        list: &ListId,
        position: u64,
        status: MemberStatus,
        line_type: Option<LineType>,
        note: Option<String>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The cached validation of `phone`.
    fn cached_validation(
        &self,
        phone: &E164,
    ) -> impl Future<Output = Result<Option<Validation>, Error>> + Send;

    /// Caches the validation of `phone` (replacing an older one).
    fn cache_validation(
        &self,
        phone: &E164,
        validation: &Validation,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Creates a draft campaign (the spec is checked by the caller).
    fn create_campaign(
        &self,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Campaign, Error>> + Send;

    /// The campaign with `id`.
    fn campaign(&self, id: &CampaignId) -> impl Future<Output = Result<Campaign, Error>> + Send;

    /// Campaigns, newest first, in `state` when given.
    fn campaigns(
        &self,
        state: Option<CampaignState>,
    ) -> impl Future<Output = Result<Vec<Campaign>, Error>> + Send;

    /// Replaces the spec of a draft ([`Error::Conflict`] when the campaign is no longer one).
    fn update_draft(
        &self,
        id: &CampaignId,
        spec: &CampaignSpec,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Campaign, Error>> + Send;

    /// Moves the campaign from `from` to `to` ([`Error::Conflict`] if it is no longer in
    /// `from`; [`Error::Transition`] if the move is not allowed), recording `reason` and, when
    /// given, a new `last_slot`. Cancelling skips every pending recipient as
    /// [`crate::SkipReason::Cancelled`] in the same step.
    #[allow(clippy::too_many_arguments)]
    fn set_state(
        &self,
        id: &CampaignId,
        from: CampaignState,
        to: CampaignState,
        reason: Option<String>,
        last_slot: Option<i64>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Campaign, Error>> + Send;

    /// Activates a draft: writes its ledger (`recipients` in order, the first half A and the
    /// rest B when it has a message B), sets `started_at` and `last_slot`, all at once.
    fn activate(
        &self,
        id: &CampaignId,
        recipients: Vec<NewRecipient>,
        last_slot: Option<i64>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Campaign, Error>> + Send;

    /// Claims the run at `slot`: if the campaign is active and `slot` is later than its
    /// `last_slot`, records `slot` and moves the first `limit` pending recipients (by
    /// position) to claimed for `worker` until `lease_until`; else claims nothing. Atomic:
    /// of several engines claiming one slot, one gets the recipients.
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        id: &CampaignId,
        slot: i64,
        limit: usize,
        worker: &str,
        lease_until: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Recipient>, Error>> + Send;

    /// Moves a recipient `worker` holds from claimed to sending with the `text` about to go
    /// out, extending the lease, only while the campaign is active. `false` when any of that
    /// no longer holds (nothing changes).
    #[allow(clippy::too_many_arguments)]
    fn begin_send(
        &self,
        id: &CampaignId,
        position: u64,
        worker: &str,
        text: &str,
        lease_until: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Records the outcome of a recipient `worker` holds: sent, failed or ambiguous from
    /// sending; skipped or released from claimed. `false` when the worker no longer holds it
    /// in that state (its lease lapsed and it was recovered): nothing changes.
    fn finish(
        &self,
        id: &CampaignId,
        position: u64,
        worker: &str,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Recovers lapsed claims: claimed back to pending (never attempted), sending to
    /// ambiguous (it may have gone out). Returns how many.
    fn recover_expired(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Settles an ambiguous recipient: sent (the message was found), released (it was not)
    /// or failed. `false` when it is no longer ambiguous.
    fn resolve(
        &self,
        id: &CampaignId,
        position: u64,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Recipients by position after `after`, at most `limit`, in `state` when given.
    fn recipients(
        &self,
        id: &CampaignId,
        state: Option<RecipientState>,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Recipient>, Error>> + Send;

    /// Applies a delivery report to the recipient sent as `message_id`: delivered, or failed
    /// with `reason`. Delivery wins in either order: a failure never overrides it, and it
    /// replaces a failure reported first. The row's `updated_at` becomes the later of its own
    /// and `now`, so a report delivered late never moves it back. `false` when no recipient
    /// has that message, or the report cannot apply (a failure after a delivery, a report on a
    /// recipient not sent).
    fn record_delivery(
        &self,
        message_id: &str,
        failure: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Notes a reply from `phone` at `at` on every recipient with that number attempted at
    /// or before `at` (sent, delivered, failed or ambiguous) and not marked replied at or
    /// before `at`: the earliest reply is kept, whatever order reports arrive in. Returns how
    /// many recipients it marked.
    fn record_reply(
        &self,
        phone: &E164,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Notes an opt-out like [`CampaignStore::record_reply`] (the earliest is kept).
    fn record_opt_out(
        &self,
        phone: &E164,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Completes the campaign if it is active and has no open recipient (pending, claimed,
    /// sending, ambiguous). Returns whether it did.
    fn complete_if_done(
        &self,
        id: &CampaignId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Counts by state and variant, replies and opt-outs.
    fn report(&self, id: &CampaignId) -> impl Future<Output = Result<Report, Error>> + Send;
}
