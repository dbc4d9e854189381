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

/// The encoded secret state of one side (its session record and account). Two snapshots are equal
/// exactly when nothing in either changed, which is how the tests prove "an error changes nothing".
#[derive(PartialEq, Eq)]
pub struct Snapshot {
    record: zeroize::Zeroizing<Vec<u8>>,
    account: zeroize::Zeroizing<Vec<u8>>,
}

impl Snapshot {
    pub fn of(record: &SessionRecord, account: &Account) -> Self {
        Snapshot { record: record.to_bytes(), account: account.to_bytes() }
    }
}

impl std::fmt::Debug for Snapshot {
    // Lengths only: the bytes are secrets, and thousands of them would bury the failure.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot {{ record: {} bytes, account: {} bytes }}", self.record.len(), self.account.len())
    }
}

impl Pair {
    /// Alice's record and account, encoded.
    pub fn alice_state(&self) -> Snapshot {
        Snapshot::of(&self.a, &self.alice)
    }

    /// Bob's record and account, encoded.
    pub fn bob_state(&self) -> Snapshot {
        Snapshot::of(&self.b, &self.bob)
    }
}

/// X25519 public keys of small order (on the curve or its twist), whose shared secret with any
/// clamped scalar is all zeros: the list of Bernstein's "How do I validate Curve25519 public keys?"
/// (cr.yp.to/ecdh.html) and libsodium's blocklist, each also with the ignored top bit set.
pub fn low_order_points() -> Vec<[u8; 32]> {
    let hex32 = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
    let base = [
        // 0: the point (0, 0), order 2
        "0000000000000000000000000000000000000000000000000000000000000000",
        // 1: order 4 (1 and p - 1 are the order-4 points, one on the curve, one on its twist)
        "0100000000000000000000000000000000000000000000000000000000000000",
        // 325606250916557431795983626356110631294008115727848805560023387167927233504 (order 8)
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        // 39382357235489614581723060781553021112529911719440698176882885853963445705823 (order 8)
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        // p - 1: order 4
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        // p (= 0, non-canonical)
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        // p + 1 (= 1, non-canonical)
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    let mut points: Vec<[u8; 32]> = base.iter().map(|s| hex32(s)).collect();
    // RFC 7748 masks bit 255, so the same points with it set are just as small.
    let high: Vec<[u8; 32]> = points
        .iter()
        .map(|p| {
            let mut q = *p;
            q[31] ^= 0x80;
            q
        })
        .collect();
    points.extend(high);
    points
}
