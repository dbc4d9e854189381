//! Shared fixtures for hush-core's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use hush_core::{Account, SessionConfig, SessionRecord};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A deterministic RNG per test.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Two devices, each with a session record for the other.
pub struct Pair {
    pub alice: Account,
    pub bob: Account,
    pub a: SessionRecord,
    pub b: SessionRecord,
    pub rng: ChaCha20Rng,
}

pub const PQ: SessionConfig = SessionConfig { allow_classical: false };

impl Pair {
    /// Alice opened a PQXDH session to Bob (with one-time X25519 and ML-KEM prekeys); nothing sent yet.
    pub fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        let alice = Account::new(&mut rng);
        let mut bob = Account::new(&mut rng);
        let otk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap();
        let kem = bob.generate_kem_prekeys(&mut rng, 1).unwrap();
        let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
        let mut a = SessionRecord::new();
        a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
        Pair { alice, bob, a, b: SessionRecord::new(), rng }
    }

    /// As `new`, and the session is established both ways (Bob answered once).
    pub fn established(seed: u64) -> Self {
        let mut p = Self::new(seed);
        let m = p.a_send(b"hello");
        assert_eq!(p.b_recv(&m).unwrap(), b"hello");
        let r = p.b_send(b"hi");
        assert_eq!(p.a_recv(&r).unwrap(), b"hi");
        p
    }

    pub fn a_send(&mut self, pt: &[u8]) -> Vec<u8> {
        self.a.encrypt(&mut self.rng, pt).unwrap()
    }

    pub fn b_send(&mut self, pt: &[u8]) -> Vec<u8> {
        self.b.encrypt(&mut self.rng, pt).unwrap()
    }

    pub fn a_recv(&mut self, m: &[u8]) -> hush_core::Result<Vec<u8>> {
        self.a.decrypt(&mut self.rng, &mut self.alice, m, PQ)
    }

    pub fn b_recv(&mut self, m: &[u8]) -> hush_core::Result<Vec<u8>> {
        self.b.decrypt(&mut self.rng, &mut self.bob, m, PQ)
    }
}
