//! The triple ratchet driven through two sessions (docs/PROTOCOL.md §7A): epochs complete under
//! loss, reordering and a relay that drops chosen messages, and a state stolen before an epoch
//! cannot read what comes after it, even with every X25519 secret.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use super::erasure::{CT_CODE, CT1_SHARDS, EK_CODE};
use super::{Exchange, PqRatchet};
use crate::error::Error;
use crate::message::SessionMessage;
use crate::ratchet::Suite;
use crate::test_util::{PQ, rng};
use crate::{Account, SessionRecord};

/// One side of a conversation.
#[derive(Clone)]
pub(crate) struct Side {
    pub(crate) account: Account,
    pub(crate) record: SessionRecord,
}

impl Side {
    pub(crate) fn pq(&self) -> &PqRatchet {
        self.record.active.as_ref().and_then(|s| s.pq.as_ref()).expect("a triple ratchet")
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.record.pq_epoch().unwrap_or(0)
    }

    pub(crate) fn send(&mut self, rng: &mut ChaCha20Rng, text: &[u8]) -> Vec<u8> {
        self.record.encrypt(rng, text).unwrap()
    }

    pub(crate) fn recv(&mut self, rng: &mut ChaCha20Rng, wire: &[u8]) -> Result<Vec<u8>, Error> {
        self.record.decrypt(rng, &mut self.account, wire, PQ)
    }
}

/// Alice has opened a session with Bob, who has read her first message.
pub(crate) fn pair(rng: &mut ChaCha20Rng) -> (Side, Side) {
    let alice = Account::new(rng);
    let mut bob = Account::new(rng);
    let kem = bob.generate_kem_prekeys(rng, 1).unwrap();
    let bundle = bob.prekey_bundle(None, Some(kem[0].id)).unwrap();
    let mut a = Side { account: alice, record: SessionRecord::new() };
    a.record.initiate(rng, a.account.identity(), &bundle, PQ).unwrap();
    let mut b = Side { account: bob, record: SessionRecord::new() };
    let first = a.send(rng, b"hello");
    assert_eq!(b.recv(rng, &first).unwrap(), b"hello");
    (a, b)
}

/// What a message's chunk is, for a relay that can tell (the test's oracle: the chunk is inside the
/// encrypted body, so a real relay can at best guess from timing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    EkHeader,
    EkData,
    EkParity,
    Ct1,
    Ct2,
    CtParity,
}

/// The kind of the chunk a send from `before` to `after` carried.
pub(crate) fn sent_kind(before: &PqRatchet, after: &PqRatchet) -> Option<Kind> {
    match &before.exchange {
        Exchange::Ek(side) => Some(match usize::from(side.next) {
            0 => Kind::EkHeader,
            i if i < EK_CODE.data => Kind::EkData,
            _ => Kind::EkParity,
        }),
        Exchange::Ct(_) => {
            let Exchange::Ct(now) = &after.exchange else { return None };
            let enc = now.encapsulation.as_ref()?;
            let last = usize::from(now.next);
            let total = if enc.ct2.is_some() { CT_CODE.total() } else { CT1_SHARDS };
            let index = (last + total - 1) % total;
            Some(match index {
                i if i < CT1_SHARDS => Kind::Ct1,
                i if i < CT_CODE.data => Kind::Ct2,
                _ => Kind::CtParity,
            })
        }
    }
}

#[test]
fn new_sessions_are_triple_ratchet_sessions_and_epochs_complete_both_ways() {
    let mut rng = rng(1);
    let (mut a, mut b) = pair(&mut rng);
    // Alice's first message advertised version 2; Bob answers in it, and so does Alice then.
    assert_eq!((a.record.pq_epoch(), b.record.pq_epoch()), (None, Some(0)));
    let mut sent = 0;
    while a.epoch() < 6 || b.epoch() < 6 {
        let m = b.send(&mut rng, b"from bob");
        assert_eq!(a.recv(&mut rng, &m).unwrap(), b"from bob");
        let m = a.send(&mut rng, b"from alice");
        assert_eq!(b.recv(&mut rng, &m).unwrap(), b"from alice");
        sent += 1;
        assert!(sent < 200, "epochs stalled at {} / {}", a.epoch(), b.epoch());
    }
    assert_eq!(a.record.pq_epoch(), Some(a.epoch()));
    // Both sides derived the same keys for every epoch either kept.
    for k in &a.pq().keys {
        if let Ok(other) = b.pq().epoch_key(k.epoch) {
            assert_eq!(&k.key, other, "epoch {}", k.epoch);
        }
    }
}

/// Sends a message and names the kind of chunk it carried.
fn send_classified(from: &mut Side, rng: &mut ChaCha20Rng) -> (Vec<u8>, Option<Kind>) {
    let before = from.record.active.as_ref().and_then(|s| s.pq.clone());
    let m = from.send(rng, b"0123456789 0123456789 0123456789 0123456789");
    let after = from.record.active.as_ref().and_then(|s| s.pq.as_ref());
    let kind = match (before, after, from.record.pq_epoch()) {
        (Some(before), Some(after), Some(_)) => sent_kind(&before, after),
        _ => None,
    };
    (m, kind)
}

/// Balanced: each side sends one, the other reads it. Returns the messages each side sent per epoch
/// after the first (which also waits for the upgrade).
fn balanced(rng: &mut ChaCha20Rng, epochs: u32, drop: Option<Kind>) -> f64 {
    let (mut a, mut b) = pair(rng);
    let mut rounds = 0u32;
    let mut at_epoch_1 = None;
    while a.epoch().min(b.epoch()) < epochs {
        for b_sends in [true, false] {
            let (from, to) = if b_sends { (&mut b, &mut a) } else { (&mut a, &mut b) };
            let (m, kind) = send_classified(from, rng);
            if drop.is_none() || kind != drop {
                to.recv(rng, &m).unwrap();
            }
        }
        rounds += 1;
        if a.epoch().min(b.epoch()) >= 1 && at_epoch_1.is_none() {
            at_epoch_1 = Some(rounds);
        }
        assert!(rounds < 2_000, "stalled dropping {drop:?} at epochs {} / {}", a.epoch(), b.epoch());
    }
    f64::from(rounds - at_epoch_1.unwrap_or(0)) / f64::from(epochs - 1)
}

/// Messages per epoch each way in a balanced conversation, and with a relay that drops every
/// message carrying one kind of chunk (`cargo test -p hush-core --lib epochs_complete -- --nocapture`
/// prints them; PROTOCOL.md §7A.8 states them).
#[test]
fn epochs_complete_in_a_balanced_conversation_and_when_a_relay_drops_one_kind() {
    let plain = balanced(&mut rng(2), 8, None);
    eprintln!("balanced: {plain:.1} messages each way per epoch");
    assert!(plain <= 24.0, "{plain}");
    for kind in [Kind::EkHeader, Kind::EkData, Kind::EkParity, Kind::Ct1, Kind::Ct2, Kind::CtParity] {
        let per_epoch = balanced(&mut rng(3), 6, Some(kind));
        eprintln!("relay drops every {kind:?} chunk: {per_epoch:.1} messages each way per epoch");
        assert!(per_epoch <= 48.0, "{kind:?}: {per_epoch}");
    }
}

/// One side talks, the other answers once in `ratio` messages: epochs still complete, in about as
/// many of the quiet side's messages as a balanced conversation needs.
#[test]
fn epochs_complete_in_a_one_sided_conversation() {
    for ratio in [10u32, 50] {
        let mut rng = rng(4);
        let (mut a, mut b) = pair(&mut rng);
        let (mut loud, mut quiet) = (0u32, 0u32);
        while a.epoch().min(b.epoch()) < 5 {
            for _ in 0..ratio {
                let m = a.send(&mut rng, b"talking");
                b.recv(&mut rng, &m).unwrap();
                loud += 1;
            }
            let m = b.send(&mut rng, b"ok");
            a.recv(&mut rng, &m).unwrap();
            quiet += 1;
            assert!(quiet < 500, "stalled at {} / {}", a.epoch(), b.epoch());
        }
        eprintln!("one-sided {ratio}:1: {} + {} messages per epoch", loud / 5, f64::from(quiet) / 5.0);
        assert!(quiet <= 5 * 25, "{quiet}");
    }
}

/// A message in flight, with the epoch its sender sent it in.
#[derive(Clone)]
struct InFlight {
    wire: Vec<u8>,
    epoch: u32,
}

/// An adversary that stole both sides' whole state at one moment and from then on knows every
/// X25519 secret (it is handed each receiver's current Double Ratchet state) and reads every message:
/// it follows the triple ratchet from its stolen copies as far as it can.
struct Eavesdropper {
    pq: [Option<PqRatchet>; 2],
    sends_v2: [bool; 2],
}

impl Eavesdropper {
    fn steal(sides: &[Side; 2]) -> Self {
        let pq = |s: &Side| s.record.active.as_ref().and_then(|s| s.pq.clone());
        let v2 = |s: &Side| s.record.active.as_ref().is_some_and(|s| s.sends_v2);
        Self { pq: [pq(&sides[0]), pq(&sides[1])], sends_v2: [v2(&sides[0]), v2(&sides[1])] }
    }

    /// Follows a send of side `from` with its stolen copy: where the real side drew a key pair or
    /// encapsulation randomness, the copy draws its own, since the thief cannot know the real one.
    fn sent(&mut self, from: usize, rng: &mut ChaCha20Rng) {
        if let (Some(pq), true) = (self.pq[from].as_mut(), self.sends_v2[from]) {
            pq.prepare_send(rng).unwrap();
        }
    }

    /// Tries `wire` as receiver `to` with that side's current classical state and the stolen
    /// triple ratchet; whether it read it.
    fn read(&mut self, to: usize, receiver: &Side, rng: &mut ChaCha20Rng, wire: &[u8]) -> bool {
        let mut copy = receiver.clone();
        let session = copy.record.active.as_mut().unwrap();
        session.pq.clone_from(&self.pq[to]);
        session.sends_v2 = self.sends_v2[to];
        if copy.recv(rng, wire).is_err() {
            return false;
        }
        let session = copy.record.active.as_ref().unwrap();
        self.pq[to].clone_from(&session.pq);
        self.sends_v2[to] = session.sends_v2;
        true
    }
}

/// Delivers `queue[i]` to side `to`, first letting the eavesdropper try it.
fn deliver(
    sides: &mut [Side; 2],
    to: usize,
    m: &InFlight,
    rng: &mut ChaCha20Rng,
    spy: &mut Option<(Eavesdropper, u32)>,
) {
    if let Some((eve, safe_from)) = spy.as_mut() {
        let read = eve.read(to, &sides[to], rng, &m.wire);
        assert!(!(read && m.epoch >= *safe_from), "a message of epoch {} read with a state stolen before", m.epoch);
    }
    // Late messages of an epoch whose key was dropped are refused like dropped skipped keys, and
    // the Double Ratchet loses messages of a chain it dropped (MAX_RECEIVING_CHAINS) before they
    // came; anything else is a failure of the triple ratchet.
    match sides[to].recv(rng, &m.wire) {
        Ok(_) | Err(Error::DuplicateMessage) => {}
        Err(Error::DecryptionFailed) if !double_ratchet_finds(&sides[to], &m.wire, rng) => {}
        Err(e) => panic!("delivery failed: {e:?}"),
    }
}

/// Whether the receiver's Double Ratchet alone opens the message's header (and has its key).
fn double_ratchet_finds(side: &Side, wire: &[u8], rng: &mut ChaCha20Rng) -> bool {
    let Ok(SessionMessage::Ratchet(m)) = SessionMessage::from_bytes(wire) else { return true };
    let mut session = side.record.active.clone().unwrap();
    session.ratchet.decrypt_with(rng, &session.ad, &m, |_, _, _| Ok(())).is_ok()
}

fn send_in_flight(
    sides: &mut [Side; 2],
    from: usize,
    rng: &mut ChaCha20Rng,
    spy: &mut Option<(Eavesdropper, u32)>,
) -> InFlight {
    let epoch = sides[from].epoch();
    let wire = sides[from].send(rng, b"random schedule");
    if let Some((eve, _)) = spy.as_mut() {
        eve.sent(from, rng);
    }
    InFlight { wire, epoch }
}

/// Runs `ops` (each byte one step: a side sends, a queued message is delivered out of order, or
/// dropped), then steals both states, then talks on with loss and reordering until two more epochs
/// completed on both sides: every message of those epochs stays unreadable to the thief.
fn random_schedule(seed: u64, ops: &[u8]) {
    let mut rng = rng(seed);
    let (a, b) = pair(&mut rng);
    let mut sides = [a, b];
    let mut queues: [Vec<InFlight>; 2] = [Vec::new(), Vec::new()];
    let mut spy = None;
    let step = |sides: &mut [Side; 2],
                queues: &mut [Vec<InFlight>; 2],
                op: u8,
                rng: &mut ChaCha20Rng,
                spy: &mut Option<(Eavesdropper, u32)>| {
        let to = usize::from(op & 1);
        match (op >> 1) % 5 {
            0 | 1 => {
                let m = send_in_flight(sides, 1 - to, rng, spy);
                queues[to].push(m);
            }
            2 | 3 if !queues[to].is_empty() => {
                let i = usize::from(op >> 4) % queues[to].len();
                let m = queues[to].remove(i);
                deliver(sides, to, &m, rng, spy);
            }
            4 if !queues[to].is_empty() => {
                let i = usize::from(op >> 4) % queues[to].len();
                queues[to].remove(i);
            }
            _ => {}
        }
    };
    for &op in ops {
        step(&mut sides, &mut queues, op, &mut rng, &mut spy);
    }
    let stolen_at = sides[0].epoch().max(sides[1].epoch());
    spy = Some((Eavesdropper::steal(&sides), stolen_at + 2));
    let target = stolen_at + 3;
    let mut steps = 0u32;
    while sides[0].epoch().min(sides[1].epoch()) < target {
        let op = (rng.next_u32() & 0xFF) as u8;
        // Keep sending on both sides; deliver mostly, drop about one in ten.
        step(&mut sides, &mut queues, op, &mut rng, &mut spy);
        steps += 1;
        assert!(steps < 20_000, "epochs stalled at {} / {} (target {target})", sides[0].epoch(), sides[1].epoch());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random send/receive interleavings with loss and reordering complete epochs, and after two
    /// epochs a stolen state (both sides', with every X25519 secret after it) reads nothing more.
    #[test]
    fn epochs_complete_under_random_schedules_and_heal_a_stolen_state(
        seed in any::<u64>(),
        ops in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        random_schedule(seed, &ops);
    }
}

/// Alice and Bob after `epochs` epochs of a balanced conversation.
fn talked(rng: &mut ChaCha20Rng, epochs: u32) -> (Side, Side) {
    let (mut a, mut b) = pair(rng);
    while a.epoch().min(b.epoch()) < epochs {
        let m = b.send(rng, b"b");
        a.recv(rng, &m).unwrap();
        let m = a.send(rng, b"a");
        b.recv(rng, &m).unwrap();
    }
    (a, b)
}

/// Encrypts `body` on `side`'s active session as it is, as a message of `suite` (what a thief with
/// that state, or a malicious peer, can send).
fn forge(side: &Side, rng: &mut ChaCha20Rng, body: &[u8], suite: Option<u8>) -> Vec<u8> {
    let mut session = side.record.active.clone().unwrap();
    let mut pq = session.pq.clone().unwrap();
    let (epoch, key, _) = pq.prepare_send(rng).unwrap();
    let suite = match suite {
        None => Suite::V2 { epoch, key: &key },
        Some(_) => Suite::V1 { advertise: true },
    };
    SessionMessage::Ratchet(session.ratchet.encrypt_with(rng, &session.ad, body, suite).unwrap()).to_bytes()
}

/// Once version 2 is in use, a thief who knows every X25519 secret (the whole Double Ratchet state)
/// but no epoch key cannot get a version-1 message accepted, on a chain that carried version 2 nor
/// on a new one; a version-2 forgery fails on the epoch key.
#[test]
fn version_1_after_version_2_is_refused() {
    let mut rng = rng(6);
    let (mut a, mut b) = talked(&mut rng, 2);
    let downgrade = Err(Error::UnsupportedVersion { what: "ratchet message after version 2", version: 1 });
    let before = b.record.to_bytes();

    // On Alice's current chain, which Bob has read version 2 on.
    let on_chain = forge(&a, &mut rng, b"forged", Some(1));
    assert_eq!(b.recv(&mut rng, &on_chain), downgrade);
    // On a new chain: the thief's copy of Alice reads a message of Bob's and ratchets.
    let mut thief = a.clone();
    let m = b.send(&mut rng, b"to alice");
    thief.recv(&mut rng, &m).unwrap();
    let before = {
        let _ = before;
        b.record.to_bytes()
    };
    let new_chain = forge(&thief, &mut rng, b"forged", Some(1));
    assert_eq!(b.recv(&mut rng, &new_chain), downgrade);
    // Version 2 without the epoch key: the thief's epoch keys are the ones it stole, and it can only
    // guess the new one.
    let mut guessed = thief.clone();
    guessed.record.active.as_mut().unwrap().pq.as_mut().unwrap().keys.iter_mut().for_each(|k| k.key.0[0] ^= 1);
    let v2 = forge(&guessed, &mut rng, &[0, b'x'], None);
    assert_eq!(b.recv(&mut rng, &v2), Err(Error::DecryptionFailed));
    assert_eq!(*b.record.to_bytes(), *before, "a refused message changed nothing");

    // The rule is what refuses them: a Bob that never saw version 2 would take both.
    let mut naive = b.clone();
    let session = naive.record.active.as_mut().unwrap();
    session.ratchet.received_v2 = false;
    session.ratchet.receiving.iter_mut().for_each(|c| c.v2_from = None);
    assert_eq!(naive.clone().recv(&mut rng, &on_chain).unwrap(), b"forged");
    assert_eq!(naive.recv(&mut rng, &new_chain).unwrap(), b"forged");
    // And the real Alice goes on.
    let m = a.send(&mut rng, b"still here");
    assert_eq!(b.recv(&mut rng, &m).unwrap(), b"still here");
}

/// A malicious peer's bad chunks are typed errors that change nothing, and repeating a shard does
/// not grow what is kept.
#[test]
fn bad_chunks_are_refused_whole_and_repeats_do_not_grow_state() {
    let mut rng = rng(7);
    let (mut a, mut b) = talked(&mut rng, 1);
    // Make Bob the side waiting for Alice's key: Bob's exchange is the ciphertext side.
    let waiting = |a: &Side, b: &Side| {
        matches!(b.pq().exchange, Exchange::Ct(ref side) if side.ek.shards.is_empty() && side.key.is_none())
            && a.pq().sending_epoch == b.pq().sending_epoch
    };
    for _ in 0..100 {
        let m = b.send(&mut rng, b"b");
        a.recv(&mut rng, &m).unwrap();
        if waiting(&a, &b) {
            break;
        }
        let m = a.send(&mut rng, b"a");
        b.recv(&mut rng, &m).unwrap();
    }
    assert!(waiting(&a, &b));
    let before = b.record.to_bytes();
    let chunk = |index: u8, fill: u8| [&[1u8, index][..], &[fill; 64], b"x"].concat();
    let out_of_range = forge(&a, &mut rng, &chunk(EK_CODE.total() as u8, 0), None);
    assert_eq!(b.recv(&mut rng, &out_of_range), Err(Error::Malformed { what: "pq chunk index" }));
    let bad_tag = forge(&a, &mut rng, &[7, 1, 2, 3], None);
    assert_eq!(b.recv(&mut rng, &bad_tag), Err(Error::Malformed { what: "pq chunk" }));
    let short = forge(&a, &mut rng, &[1, 3, 0, 0], None);
    assert_eq!(b.recv(&mut rng, &short), Err(Error::Malformed { what: "pq chunk" }));
    assert_eq!(*b.record.to_bytes(), *before);

    // The same shard a hundred times is kept once.
    for _ in 0..100 {
        let m = forge(&a, &mut rng, &chunk(5, 9), None);
        b.recv(&mut rng, &m).unwrap();
        a.record = {
            let mut r = a.record.clone();
            r.encrypt(&mut rng, b"advance").unwrap();
            r
        };
    }
    let Exchange::Ct(side) = &b.pq().exchange else { panic!("ciphertext side") };
    assert_eq!(side.ek.shards.len(), 1);
    // Nineteen distinct shards that are no key: the one that completes them is refused whole.
    for index in 6..(5 + EK_CODE.data as u8 - 1) {
        let m = forge(&a, &mut rng, &chunk(index, index), None);
        b.recv(&mut rng, &m).unwrap();
        a.record = {
            let mut r = a.record.clone();
            r.encrypt(&mut rng, b"advance").unwrap();
            r
        };
    }
    let Exchange::Ct(side) = &b.pq().exchange else { panic!("ciphertext side") };
    assert_eq!(side.ek.shards.len(), EK_CODE.data - 1);
    let before = b.record.to_bytes();
    let last = forge(&a, &mut rng, &chunk(EK_CODE.total() as u8 - 2, 1), None);
    assert_eq!(b.recv(&mut rng, &last), Err(Error::InvalidKem { what: "encapsulation key" }));
    assert_eq!(*b.record.to_bytes(), *before);
}

/// Saving and loading both records before every message of several epochs changes nothing: each
/// state of an exchange (no key yet, key sent, header only, encapsulated, ct2, shards) round-trips.
#[test]
fn records_round_trip_at_every_step_of_an_epoch() {
    let reload = |side: &mut Side| {
        let bytes = side.record.to_bytes();
        side.record = SessionRecord::from_bytes(&bytes).unwrap();
        assert_eq!(*side.record.to_bytes(), *bytes);
    };
    let mut rng = rng(8);
    let (mut a, mut b) = pair(&mut rng);
    let mut rounds = 0;
    while a.epoch().min(b.epoch()) < 3 {
        for b_sends in [true, false] {
            let (from, to) = if b_sends { (&mut b, &mut a) } else { (&mut a, &mut b) };
            reload(from);
            reload(to);
            let m = from.send(&mut rng, b"m");
            // Every third message is lost, so shards pile up and parity goes out.
            if rounds % 3 != 2 {
                to.recv(&mut rng, &m).unwrap();
            }
        }
        rounds += 1;
        assert!(rounds < 200);
    }
}

/// Average bytes the triple ratchet adds to a session message at one message per second each way
/// (a balanced conversation: each side sends, the other reads), against the same conversation in
/// version 1, for plaintexts of 20, 100 and 1,000 bytes (`-- --nocapture` prints them; BENCHMARKS.md).
#[test]
fn overhead_per_message_in_a_balanced_conversation() {
    let run = |triple: bool, len: usize| {
        let mut rng = rng(9);
        let (mut a, mut b) = pair(&mut rng);
        let classical = |s: &mut Side| {
            if !triple {
                let session = s.record.active.as_mut().unwrap();
                session.sends_v2 = false;
                session.pq = None;
            }
        };
        classical(&mut a);
        classical(&mut b);
        let text = vec![b'x'; len];
        let mut bytes = 0usize;
        let rounds = 400;
        for _ in 0..rounds {
            let m = b.send(&mut rng, &text);
            a.recv(&mut rng, &m).unwrap();
            classical(&mut a);
            let n = a.send(&mut rng, &text);
            b.recv(&mut rng, &n).unwrap();
            classical(&mut b);
            bytes += m.len() + n.len();
        }
        if triple {
            assert!(a.epoch() >= 15, "{}", a.epoch());
        }
        bytes as f64 / f64::from(2 * rounds)
    };
    for len in [20, 100, 1000] {
        let (v2, v1) = (run(true, len), run(false, len));
        eprintln!("{len} B plaintext: {v1:.1} B in version 1, {v2:.1} B in version 2: +{:.1} B", v2 - v1);
        assert!(v2 - v1 <= 100.0, "{len}: {v1} -> {v2}");
    }
}
