//! Session decryption of arbitrary bytes against a fixed, established session, for both a
//! responder that has no session yet (prekey path) and one that has (ratchet path).
//!
//! Input: byte 0 selects the receiver state and what to decrypt. Modes 0–2 take a valid message
//! (prekey, ratchet, ratchet after a DH step) and XOR the rest of the input into it at the offset in
//! bytes 1–2, which reaches the decrypt paths far more often than random bytes; other modes decrypt
//! the rest of the input as is. A failed decrypt must leave the receiver's state unchanged.

use std::sync::OnceLock;

use hush_core::{Account, SessionConfig, SessionRecord};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Fixture {
    /// Bob before the first message: no session, one-time prekeys unused.
    fresh_bob: Account,
    /// Bob and his record after a few messages.
    bob: Account,
    record: SessionRecord,
    messages: [Vec<u8>; 3],
}

const CFG: SessionConfig = SessionConfig { allow_classical: true };

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0xF022);
        let mut alice = Account::new(&mut rng);
        let mut bob = Account::new(&mut rng);
        let otk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap();
        let kem = bob.generate_kem_prekeys(&mut rng, 1).unwrap();
        let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
        let fresh_bob = bob.clone();
        let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
        a.initiate(&mut rng, alice.identity(), &bundle, CFG).unwrap();
        let prekey = a.encrypt(&mut rng, b"first").unwrap();
        b.decrypt(&mut rng, &mut bob, &prekey, CFG).unwrap();
        let reply = b.encrypt(&mut rng, b"reply").unwrap();
        a.decrypt(&mut rng, &mut alice, &reply, CFG).unwrap();
        let ratchet_step = a.encrypt(&mut rng, b"new chain").unwrap();
        let same_chain = a.encrypt(&mut rng, b"same chain").unwrap();
        Fixture { fresh_bob, bob, record: b, messages: [prekey, ratchet_step, same_chain] }
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    let input = match (mode % 4, rest) {
        (m @ 0..=2, [hi, lo, patch @ ..]) => {
            let mut msg = f.messages[usize::from(m)].clone();
            let offset = usize::from(u16::from_be_bytes([*hi, *lo])) % msg.len().max(1);
            for (byte, x) in msg.iter_mut().skip(offset).zip(patch) {
                *byte ^= x;
            }
            msg
        }
        _ => rest.to_vec(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    // Prekey path: a responder with no session.
    let mut account = f.fresh_bob.clone();
    let mut record = SessionRecord::new();
    if record.decrypt(&mut rng, &mut account, &input, CFG).is_err() {
        assert!(!record.has_session());
        assert_eq!(*account.to_bytes(), *f.fresh_bob.to_bytes());
    }
    // Ratchet path: an established session.
    let mut account = f.bob.clone();
    let mut record = f.record.clone();
    if record.decrypt(&mut rng, &mut account, &input, CFG).is_err() {
        assert_eq!(*record.to_bytes(), *f.record.to_bytes());
        assert_eq!(*account.to_bytes(), *f.bob.to_bytes());
    }
}
