//! Model-based property tests of a two-party session, in the style of libsignal's: random
//! schedules of sends, deliveries, drops, re-deliveries and reorderings, each delivery checked
//! against a small model of what it must yield; and forward jumps beyond `MAX_FORWARD_JUMP`, which
//! must fail with `TooFarAhead`, change nothing and leave the session working.
//!
//! Case counts are small by default so the file runs in seconds; `PROPTEST_CASES=N` runs more.

mod common;

use std::collections::VecDeque;
use std::sync::OnceLock;

use common::{PQ, Pair, Snapshot};
use hush_core::limits::{MAX_FORWARD_JUMP, MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS};
use hush_core::{Account, Error, SessionMessage, SessionRecord};
use proptest::prelude::*;
use proptest::sample::Index;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// `default_cases` cases unless `PROPTEST_CASES` asks for another number.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// One step of a schedule. Messages in flight form a queue; the network may deliver, lose,
/// duplicate or reorder them.
#[derive(Clone, Debug)]
enum Op {
    /// Alice (or Bob) encrypts `count` messages.
    Send { alice: bool, count: u8 },
    /// The oldest message in flight reaches its recipient.
    DeliverNext,
    /// Any message in flight reaches its recipient.
    Deliver(Index),
    /// A message in flight is lost.
    Drop(Index),
    /// An already delivered message reaches its recipient again.
    Redeliver(Index),
    /// Two messages in flight swap places in the queue.
    Reorder(Index, Index),
    /// A message in flight is held back (a slow path) until released, perhaps many turns later.
    Hold(Index),
    /// A held message returns to the front of the queue.
    Release(Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 1u8..=3).prop_map(|(alice, count)| Op::Send { alice, count }),
        3 => Just(Op::DeliverNext),
        4 => any::<Index>().prop_map(Op::Deliver),
        1 => any::<Index>().prop_map(Op::Drop),
        1 => any::<Index>().prop_map(Op::Redeliver),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Op::Reorder(a, b)),
        1 => any::<Index>().prop_map(Op::Hold),
        1 => any::<Index>().prop_map(Op::Release),
    ]
}

/// Longest schedule: even if every step sends three messages one way, the receiver stores fewer
/// skipped keys than `MAX_SKIPPED_KEYS`, so no key is ever dropped for lack of room.
const MAX_OPS: usize = 250;
const _: () = assert!(MAX_OPS * 3 < MAX_SKIPPED_KEYS);

#[derive(Clone, Debug)]
struct Msg {
    to_bob: bool,
    /// The sender's chain (its n-th ratchet key) and the message's index in it.
    chain: u32,
    index: u32,
    plaintext: Vec<u8>,
    bytes: Vec<u8>,
}

/// What one party's ratchet looks like from outside.
#[derive(Debug)]
struct PartyModel {
    /// Ids of its sending chains count up from 0 (Alice's first chain; Bob has none until he
    /// receives); `None` while it cannot send.
    sending_chain: Option<u32>,
    next_index: u32,
    /// The peer's chains it holds keys for, newest first, at most `MAX_RECEIVING_CHAINS`.
    receiving: VecDeque<u32>,
}

/// What delivering a message must yield.
#[derive(Debug, PartialEq)]
enum Expect {
    Plaintext,
    Duplicate,
    /// The message's chain has dropped out of the receiver's `MAX_RECEIVING_CHAINS`.
    ChainForgotten,
}

impl PartyModel {
    fn expect(&self, m: &Msg, delivered_before: bool) -> Expect {
        if self.receiving.contains(&m.chain) {
            if delivered_before { Expect::Duplicate } else { Expect::Plaintext }
        } else if self.receiving.front().is_none_or(|&newest| m.chain > newest) {
            // A new ratchet key from the peer: a DH ratchet step. It cannot have been seen before.
            assert!(!delivered_before, "model: a delivered message's chain is always known or forgotten");
            Expect::Plaintext
        } else {
            Expect::ChainForgotten
        }
    }

    fn decrypted(&mut self, m: &Msg) {
        if !self.receiving.contains(&m.chain) {
            self.receiving.push_front(m.chain);
            self.receiving.truncate(MAX_RECEIVING_CHAINS);
            self.sending_chain = Some(self.sending_chain.map_or(1, |c| c + 1));
            self.next_index = 0;
        }
    }
}

/// A pair of devices, the network between them and the model of both.
struct World {
    p: Pair,
    alice: PartyModel,
    bob: PartyModel,
    in_flight: Vec<Msg>,
    held: Vec<Msg>,
    delivered: Vec<Msg>,
    sent: usize,
    dropped: usize,
    forgotten: usize,
}

impl World {
    fn new(seed: u64) -> Self {
        World {
            p: Pair::new(seed),
            alice: PartyModel { sending_chain: Some(0), next_index: 0, receiving: VecDeque::new() },
            bob: PartyModel { sending_chain: None, next_index: 0, receiving: VecDeque::new() },
            in_flight: Vec::new(),
            held: Vec::new(),
            delivered: Vec::new(),
            sent: 0,
            dropped: 0,
            forgotten: 0,
        }
    }

    fn send(&mut self, from_alice: bool) {
        let (record, account, model) = if from_alice {
            (&mut self.p.a, &self.p.alice, &mut self.alice)
        } else {
            (&mut self.p.b, &self.p.bob, &mut self.bob)
        };
        let plaintext = format!("{} #{}", if from_alice { "alice" } else { "bob" }, self.sent).into_bytes();
        let Some(chain) = model.sending_chain else {
            // Bob has no session before Alice's first message reaches him.
            let before = Snapshot::of(record, account);
            assert_eq!(record.encrypt(&mut self.p.rng, &plaintext), Err(Error::NoSession));
            assert_eq!(Snapshot::of(record, account), before);
            return;
        };
        let bytes = record.encrypt(&mut self.p.rng, &plaintext).unwrap();
        // Alice repeats her PQXDH values exactly until she has heard from Bob (her chain 0).
        let is_prekey = matches!(SessionMessage::from_bytes(&bytes).unwrap(), SessionMessage::Prekey(_));
        assert_eq!(is_prekey, from_alice && chain == 0, "message kind of {chain}/{}", model.next_index);
        self.in_flight.push(Msg { to_bob: from_alice, chain, index: model.next_index, plaintext, bytes });
        model.next_index += 1;
        self.sent += 1;
    }

    fn deliver(&mut self, m: Msg, delivered_before: bool) {
        let (record, account, model) = if m.to_bob {
            (&mut self.p.b, &mut self.p.bob, &mut self.bob)
        } else {
            (&mut self.p.a, &mut self.p.alice, &mut self.alice)
        };
        let before = Snapshot::of(record, account);
        let result = record.decrypt(&mut self.p.rng, account, &m.bytes, PQ);
        let expected = model.expect(&m, delivered_before);
        let what = format!(
            "{} message {}/{}: expected {expected:?}",
            if m.to_bob { "Alice's" } else { "Bob's" },
            m.chain,
            m.index
        );
        match expected {
            Expect::Plaintext => {
                assert_eq!(result.as_ref(), Ok(&m.plaintext), "{what}");
                assert_ne!(Snapshot::of(record, account), before, "{what}: a decryption must advance the state");
                model.decrypted(&m);
                self.delivered.push(m);
            }
            Expect::Duplicate => {
                assert_eq!(result, Err(Error::DuplicateMessage), "{what}");
                assert_eq!(Snapshot::of(record, account), before, "{what}: state changed");
            }
            Expect::ChainForgotten => {
                assert_eq!(result, Err(Error::DecryptionFailed), "{what}");
                assert_eq!(Snapshot::of(record, account), before, "{what}: state changed");
                if !delivered_before {
                    self.forgotten += 1;
                }
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Send { alice, count } => (0..*count).for_each(|_| self.send(*alice)),
            Op::DeliverNext if !self.in_flight.is_empty() => {
                let m = self.in_flight.remove(0);
                self.deliver(m, false);
            }
            Op::Deliver(i) if !self.in_flight.is_empty() => {
                let m = self.in_flight.remove(i.index(self.in_flight.len()));
                self.deliver(m, false);
            }
            Op::Drop(i) if !self.in_flight.is_empty() => {
                self.in_flight.remove(i.index(self.in_flight.len()));
                self.dropped += 1;
            }
            Op::Redeliver(i) if !self.delivered.is_empty() => {
                let m = self.delivered[i.index(self.delivered.len())].clone();
                self.deliver(m, true);
            }
            Op::Reorder(i, j) if !self.in_flight.is_empty() => {
                let n = self.in_flight.len();
                self.in_flight.swap(i.index(n), j.index(n));
            }
            Op::Hold(i) if !self.in_flight.is_empty() => {
                let m = self.in_flight.remove(i.index(self.in_flight.len()));
                self.held.push(m);
            }
            Op::Release(i) if !self.held.is_empty() => {
                let m = self.held.remove(i.index(self.held.len()));
                self.in_flight.insert(0, m);
            }
            _ => {}
        }
    }

    /// Delivers everything still in flight, checks the books, and that both directions still work.
    fn finish(&mut self) {
        self.in_flight.append(&mut self.held);
        while !self.in_flight.is_empty() {
            let m = self.in_flight.remove(0);
            self.deliver(m, false);
        }
        // Every message sent was decrypted exactly once, unless it was lost or its chain forgotten.
        assert_eq!(self.delivered.len() + self.dropped + self.forgotten, self.sent);
        let m = self.p.a_send(b"final from alice");
        assert_eq!(self.p.b_recv(&m).unwrap(), b"final from alice");
        let m = self.p.b_send(b"final from bob");
        assert_eq!(self.p.a_recv(&m).unwrap(), b"final from bob");
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Under any schedule each message decrypts exactly once to its plaintext, a re-delivery is
    /// `DuplicateMessage`, and a failed decryption changes neither record nor account.
    #[test]
    fn random_schedules_match_the_model(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..MAX_OPS)) {
        let mut world = World::new(seed);
        for op in &ops {
            world.apply(op);
        }
        world.finish();
    }
}

/// Messages Alice has on her current sending chain beyond what Bob has received: enough for every
/// jump below to cross `MAX_FORWARD_JUMP` by up to 39.
const FAR_CHAIN_LEN: u32 = MAX_FORWARD_JUMP + 40;

/// An established pair where Alice has encrypted `FAR_CHAIN_LEN` messages on a chain Bob has not
/// seen yet. Built once (25,040 encryptions); each case starts from a copy.
struct FarFixture {
    alice: Account,
    bob: Account,
    a: SessionRecord,
    b: SessionRecord,
    chain: Vec<Vec<u8>>,
}

fn far_fixture() -> &'static FarFixture {
    static FIXTURE: OnceLock<FarFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut p = Pair::established(0xFA2);
        let chain = (0..FAR_CHAIN_LEN).map(|i| p.a_send(far_plaintext(i).as_bytes())).collect();
        FarFixture { alice: p.alice, bob: p.bob, a: p.a, b: p.b, chain }
    })
}

fn far_plaintext(index: u32) -> String {
    format!("x{index}")
}

/// Where the jump beyond the limit happens.
#[derive(Clone, Copy, Debug)]
enum Jump {
    /// The first message Bob sees on Alice's new chain is too far in (DH ratchet step).
    NewChain,
    /// A message too far ahead of the last one Bob received on the same chain.
    SameChain,
    /// A new chain whose header says the previous chain ran on too far beyond what Bob received.
    PreviousChainTail,
}

proptest! {
    #![proptest_config(config(24))]

    /// A jump beyond `MAX_FORWARD_JUMP` is refused with `TooFarAhead`, changes nothing, and the
    /// session keeps working: both directions, a message at or just under the limit, and then the
    /// refused message itself once it is within reach.
    #[test]
    fn jumps_beyond_the_limit_are_refused(
        jump in prop_oneof![Just(Jump::NewChain), Just(Jump::SameChain), Just(Jump::PreviousChainTail)],
        received in proptest::collection::btree_set(0u32..16, 1..4),
        beyond in 1u32..20,
        slack in 0u32..3,
        seed in any::<u64>(),
    ) {
        let f = far_fixture();
        let mut p = Pair {
            alice: f.alice.clone(),
            bob: f.bob.clone(),
            a: f.a.clone(),
            b: f.b.clone(),
            rng: ChaCha20Rng::seed_from_u64(seed),
        };
        let recv = |p: &mut Pair, i: u32| p.b_recv(&f.chain[i as usize]);
        let ok = |i: u32| Ok(far_plaintext(i).into_bytes());

        // Bob's next expected index on Alice's chain.
        let next = match jump {
            Jump::NewChain => 0,
            Jump::SameChain | Jump::PreviousChainTail => {
                for &i in received.iter().rev() {
                    prop_assert_eq!(recv(&mut p, i), ok(i));
                }
                received.last().unwrap() + 1
            }
        };

        match jump {
            Jump::NewChain | Jump::SameChain => {
                let far = next + MAX_FORWARD_JUMP + beyond;
                let before = p.bob_state();
                prop_assert_eq!(
                    recv(&mut p, far),
                    Err(Error::TooFarAhead { jump: u64::from(MAX_FORWARD_JUMP + beyond), max: MAX_FORWARD_JUMP })
                );
                prop_assert_eq!(p.bob_state(), before);
                let reply = p.b_send(b"still here");
                prop_assert_eq!(p.a_recv(&reply), Ok(b"still here".to_vec()));
                // At most MAX_FORWARD_JUMP ahead is fine, and then the far message is in reach.
                let near = next + MAX_FORWARD_JUMP - slack;
                prop_assert_eq!(recv(&mut p, near), ok(near));
                prop_assert_eq!(recv(&mut p, far), ok(far));
                // A key skipped on the way stays usable.
                prop_assert_eq!(recv(&mut p, near - 1), ok(near - 1));
                prop_assert_eq!(recv(&mut p, far), Err(Error::DuplicateMessage));
            }
            Jump::PreviousChainTail => {
                // Bob answers; Alice's next chain announces FAR_CHAIN_LEN messages on the old one.
                let reply = p.b_send(b"turn");
                prop_assert_eq!(p.a_recv(&reply), Ok(b"turn".to_vec()));
                let next_chain = p.a_send(b"new chain");
                let before = p.bob_state();
                prop_assert_eq!(
                    p.b_recv(&next_chain),
                    Err(Error::TooFarAhead { jump: u64::from(FAR_CHAIN_LEN - next), max: MAX_FORWARD_JUMP })
                );
                prop_assert_eq!(p.bob_state(), before);
                let reply = p.b_send(b"still here");
                prop_assert_eq!(p.a_recv(&reply), Ok(b"still here".to_vec()));
                // Once Bob is within MAX_FORWARD_JUMP of the old chain's end, the new chain opens.
                let near = FAR_CHAIN_LEN - 1 - MAX_FORWARD_JUMP + slack;
                prop_assert!(near >= next);
                prop_assert_eq!(recv(&mut p, near), ok(near));
                prop_assert_eq!(p.b_recv(&next_chain), Ok(b"new chain".to_vec()));
                // The old chain's tail became skipped keys.
                let last = FAR_CHAIN_LEN - 1;
                prop_assert_eq!(recv(&mut p, last), ok(last));
                prop_assert_eq!(recv(&mut p, last), Err(Error::DuplicateMessage));
            }
        }
    }
}
