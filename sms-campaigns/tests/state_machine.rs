//! Property test over the engine: random sequences of runs, pauses, resumes, crashes
//! mid-send, unknown outcomes, failures, opt-outs and inbound messages, on the in-memory
//! store with a fake sender and a manual clock. After every step and at the end:
//! - no recipient is messaged twice;
//! - no number is messaged after its STOP;
//! - no run sends more than `per_run`;
//! - every skipped recipient has a recorded reason, and numbers with earlier conversations
//!   are never messaged;
//! - the first half of the ledger gets A and the second half B;
//! - in the end (faults stopped), everyone is messaged once or skipped with a reason, and
//!   the ledger agrees with what went out.

mod support;

use std::collections::{BTreeMap, HashMap};

use futures_util::FutureExt;
use openphone_types::E164;
use proptest::prelude::*;
use sms_campaigns::{
    CampaignId, CampaignState, CampaignStore, Engine, EngineConfig, MemoryHistory, MemoryStore,
    RecipientState, SkipReason, Variant,
};
use support::{Behavior, FakeSender, ManualClock, daily_spec, kept_list, phone};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone)]
enum Op {
    /// Move the clock on by this many minutes, then tick.
    Advance(i64),
    /// Jump to the next 10:00 (a slot), then tick.
    NextSlot,
    Pause,
    Resume,
    /// The next send meets this behavior.
    Fault(Behavior),
    /// Recipient `n` (mod audience) texts STOP.
    OptOut(u32),
    /// Recipient `n` texts us.
    Inbound(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..600).prop_map(Op::Advance),
        4 => Just(Op::NextSlot),
        1 => Just(Op::Pause),
        2 => Just(Op::Resume),
        1 => Just(Op::Fault(Behavior::Fail)),
        1 => Just(Op::Fault(Behavior::Defer)),
        1 => any::<bool>().prop_map(|sent| Op::Fault(Behavior::Ambiguous(sent))),
        1 => any::<bool>().prop_map(|sent| Op::Fault(Behavior::Crash(sent))),
        1 => (0u32..64).prop_map(Op::OptOut),
        1 => (0u32..64).prop_map(Op::Inbound),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    recipients: u32,
    per_run: u32,
    ab: bool,
    /// Recipients who talked with us before the campaign.
    prior: Vec<u32>,
    ops: Vec<Op>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1u32..30, 1u32..6, any::<bool>())
        .prop_flat_map(|(recipients, per_run, ab)| {
            (
                Just(recipients),
                Just(per_run),
                Just(ab),
                proptest::collection::vec(0..recipients, 0..4),
                proptest::collection::vec(op(), 0..40),
            )
        })
        .prop_map(|(recipients, per_run, ab, prior, ops)| Scenario {
            recipients,
            per_run,
            ab,
            prior,
            ops,
        })
}

struct World {
    clock: ManualClock,
    store: MemoryStore,
    sender: FakeSender,
    history: MemoryHistory,
    engine: Engine<MemoryStore, FakeSender, MemoryHistory>,
    campaign: CampaignId,
    scenario: Scenario,
    /// Per number, how many messages had gone out (to anyone) when it said STOP.
    stops: HashMap<E164, usize>,
    /// Messages that went out per tick (all at one clock reading).
    checked_sends: usize,
}

impl World {
    /// Ticks; a crash drops the tick mid-flight, as a killed process would.
    fn tick(&mut self) {
        match self.engine.tick().now_or_never() {
            Some(result) => {
                result.expect("tick");
            }
            None => {
                // The worker died; a fresh engine (same store) takes over on later ticks.
            }
        }
    }

    fn next_slot(&self) {
        let now = self.clock.now();
        let mut target = now.replace_time(time::macros::time!(10:00));
        if target <= now {
            target += time::Duration::days(1);
        }
        self.clock.set(target);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Advance(minutes) => {
                self.clock.advance(time::Duration::minutes(*minutes));
                self.tick();
            }
            Op::NextSlot => {
                self.next_slot();
                self.tick();
            }
            Op::Pause => {
                let _ = self
                    .engine
                    .pause(&self.campaign, None)
                    .now_or_never()
                    .expect("immediate");
            }
            Op::Resume => {
                let _ = self
                    .engine
                    .resume(&self.campaign)
                    .now_or_never()
                    .expect("immediate");
            }
            Op::Fault(behavior) => self.sender.then(*behavior),
            Op::OptOut(n) => {
                let phone = phone(n % self.scenario.recipients);
                self.history.set_opted_out(&phone, true);
                let sent_so_far = self.sender.sent().len();
                self.stops.entry(phone.clone()).or_insert(sent_so_far);
                self.store
                    .record_opt_out(&phone, self.clock.now())
                    .now_or_never()
                    .expect("immediate")
                    .expect("opt-out");
            }
            Op::Inbound(n) => {
                let phone = phone(n % self.scenario.recipients);
                self.history.communicated(&phone, self.clock.now());
                self.store
                    .record_reply(&phone, self.clock.now())
                    .now_or_never()
                    .expect("immediate")
                    .expect("reply");
            }
        }
    }

    fn check(&mut self) {
        let sent = self.sender.sent();
        let mut per_phone: HashMap<&E164, usize> = HashMap::new();
        for message in &sent {
            *per_phone.entry(&message.to).or_default() += 1;
        }
        for (phone, count) in &per_phone {
            assert_eq!(*count, 1, "{} messaged {count} times", phone.as_str());
        }
        for (sequence, message) in sent.iter().enumerate() {
            if let Some(stop) = self.stops.get(&message.to) {
                assert!(
                    sequence < *stop,
                    "{} messaged after STOP",
                    message.to.as_str()
                );
            }
            let index = self.index(&message.to);
            assert!(
                !self.scenario.prior.contains(&index),
                "prior contact {index} messaged"
            );
            let expected = Variant::for_position(
                u64::from(index),
                u64::from(self.scenario.recipients),
                self.scenario.ab,
            );
            assert!(
                message.text.starts_with(&format!("{}:", expected.as_str())),
                "variant of {index}: {}",
                message.text
            );
        }
        let mut per_tick: BTreeMap<OffsetDateTime, u32> = BTreeMap::new();
        for message in &sent[self.checked_sends..] {
            *per_tick.entry(message.at).or_default() += 1;
        }
        for (at, count) in per_tick {
            assert!(
                count <= self.scenario.per_run,
                "{count} sends at {at}, per_run {}",
                self.scenario.per_run
            );
        }
        let ledger = self.ledger();
        for row in &ledger {
            if row.state == RecipientState::Skipped {
                let reason = row.detail.as_deref().and_then(SkipReason::from_detail);
                assert!(
                    reason.is_some(),
                    "recipient {} skipped without reason",
                    row.position
                );
            }
        }
    }

    fn index(&self, to: &E164) -> u32 {
        (0..self.scenario.recipients)
            .find(|i| phone(*i) == *to)
            .expect("a recipient")
    }

    fn ledger(&self) -> Vec<sms_campaigns::Recipient> {
        self.store
            .recipients(&self.campaign, None, None, 1_000)
            .now_or_never()
            .expect("immediate")
            .expect("ledger")
    }
}

fn run_scenario(scenario: Scenario) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let start = datetime!(2026-11-27 08:00 UTC);
        let clock = ManualClock::new(start);
        let store = MemoryStore::new();
        let sender = FakeSender::new(&clock);
        let history = MemoryHistory::new();
        let engine = Engine::new(
            store.clone(),
            sender.clone(),
            history.clone(),
            EngineConfig::new("prop", "Acme"),
            clock.clock(),
        );
        let (list, _) = kept_list(&store, scenario.recipients, start).await;
        for prior in &scenario.prior {
            history.communicated(&phone(*prior), start - time::Duration::days(30));
        }
        let campaign = engine
            .create(&daily_spec(&list, scenario.per_run, scenario.ab))
            .await
            .expect("create");
        engine.activate(&campaign.id).await.expect("activate");
        let mut world = World {
            clock,
            store,
            sender,
            history,
            engine,
            campaign: campaign.id,
            scenario: scenario.clone(),
            stops: HashMap::new(),
            checked_sends: 0,
        };
        for op in &scenario.ops {
            world.apply(op);
            world.check();
        }
        // Faults stop; leases lapse, outcomes settle, the campaign runs to its end.
        world.sender.script.lock().expect("script").clear();
        for _ in 0..(scenario.recipients * 2 + 10) {
            let _ = world.engine.resume(&world.campaign).await;
            world.clock.advance(time::Duration::minutes(15));
            world.tick();
            world.next_slot();
            world.tick();
            world.check();
        }
        let state = world
            .store
            .campaign(&world.campaign)
            .await
            .expect("campaign")
            .state;
        assert_eq!(state, CampaignState::Completed, "the campaign finishes");
        let sent = world.sender.sent();
        let ledger = world.ledger();
        for row in &ledger {
            let messaged = sent.iter().filter(|m| m.to == row.phone).count();
            match row.state {
                RecipientState::Sent | RecipientState::Delivered => {
                    assert_eq!(messaged, 1, "recipient {} sent once", row.position);
                    let id = row.message_id.as_deref().expect("message id");
                    assert!(
                        sent.iter().any(|m| m.id == id && m.to == row.phone),
                        "ledger id matches"
                    );
                }
                RecipientState::Skipped | RecipientState::Failed => {
                    assert_eq!(
                        messaged, 0,
                        "recipient {} {:?} yet messaged",
                        row.position, row.state
                    );
                }
                other => panic!("recipient {} left {other:?}", row.position),
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_never_double_sends_skips_silently_or_ignores_a_stop(scenario in scenario()) {
        run_scenario(scenario);
    }
}
