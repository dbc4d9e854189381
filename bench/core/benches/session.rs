//! Criterion benches of hush's 1:1 sessions against vodozemac's Olm (the peer BENCHMARKS.md names),
//! plus the primitives one hush encrypt+decrypt is made of, timed in the same run as its lower
//! bound. After criterion finishes, `main` prints the ratios against the targets listed in BENCHMARKS.md.
//!
//! Run: `cargo bench -p hush-bench --bench session` (see BENCHMARKS.md at the repository root).
// `criterion_group!` generates an undocumented `pub fn`; a bench may panic on a broken fixture.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

mod common;

use common::{criterion_dir, fmt_ns, mean_ns};
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, measurement::WallTime};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use hush_core::{Account, PrekeyBundle, SessionConfig, SessionMessage, SessionRecord};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, OsRng, RngCore, SeedableRng};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;
use vodozemac::olm::{Account as OlmAccount, OlmMessage, Session as OlmSession, SessionConfig as OlmConfig};

const PQ: SessionConfig = SessionConfig { allow_classical: false };
const CLASSICAL: SessionConfig = SessionConfig { allow_classical: true };
/// The message every bench sends.
const MSG: [u8; 100] = [0x42; 100];

// Group and bench names; criterion keys its results (target/criterion/<group>/<bench>) by them.
const G_CHAIN: &str = "session encrypt+decrypt 100 B, established chain";
const G_PING_PONG: &str = "session ping-pong 100 B, DH ratchet step each way";
const G_SETUP: &str = "session setup: bundle → first message → responder decrypt";
const G_PRIMITIVES: &str = "primitives of one hush encrypt+decrypt 100 B";
const G_SETUP_PARTS: &str = "session setup, parts and primitives";

const HUSH: &str = "hush";
const HUSH_V1: &str = "hush, Double Ratchet only (version 1)";
const HUSH_OSRNG: &str = "hush, OsRng";
const OLM: &str = "vodozemac Olm";
const OLM_TYPED: &str = "vodozemac Olm, no wire encoding";
const HUSH_PQXDH: &str = "hush PQXDH (X25519 + ML-KEM-768)";
const HUSH_X3DH: &str = "hush X3DH (classical)";
const OLM_3DH: &str = "vodozemac Olm 3DH";
const P_AEAD: &str = "4x ChaCha20-Poly1305 (ring)";
const P_HKDF: &str = "2x HKDF-SHA256, 44 B out";
const P_HMAC: &str = "4x HMAC-SHA256 chain step";
const P_ALL: &str = "all 10 in sequence";

/// Short runs: the machine has 2 shared cores; ratios within one run are what we read.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    c.benchmark_group(name)
}

/// A userspace CSPRNG seeded from the OS, as vodozemac's `rand::rng()` (ThreadRng) is.
fn fast_rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    ChaCha20Rng::from_seed(seed)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Two hush devices with a PQXDH session established both ways, and Alice's chain to Bob in use.
struct HushPair {
    alice: Account,
    bob: Account,
    a: SessionRecord,
    b: SessionRecord,
}

impl HushPair {
    /// Established, then kept on version 1: the Double Ratchet alone, as before the triple ratchet.
    fn established_v1(rng: &mut impl CryptoRngCore) -> Self {
        let mut p = Self::established(rng);
        p.a.benchmark_without_triple_ratchet();
        p.b.benchmark_without_triple_ratchet();
        p
    }

    /// One message each way, staying on version 1.
    fn ping_pong_v1(&mut self, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        self.a_to_b(rng);
        self.b.benchmark_without_triple_ratchet();
        let back = self.b_to_a(rng);
        self.a.benchmark_without_triple_ratchet();
        back
    }

    fn established(rng: &mut impl CryptoRngCore) -> Self {
        let alice = Account::new(rng);
        let mut bob = Account::new(rng);
        let otk = bob.generate_one_time_prekeys(rng, 1).unwrap();
        let kem = bob.generate_kem_prekeys(rng, 1).unwrap();
        let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
        let mut p = HushPair { alice, bob, a: SessionRecord::new(), b: SessionRecord::new() };
        p.a.initiate(rng, p.alice.identity(), &bundle, PQ).unwrap();
        let first = p.a.encrypt(rng, b"hello").unwrap();
        assert_eq!(p.b.decrypt(rng, &mut p.bob, &first, PQ).unwrap(), b"hello");
        let reply = p.b.encrypt(rng, b"hi").unwrap();
        assert_eq!(p.a.decrypt(rng, &mut p.alice, &reply, PQ).unwrap(), b"hi");
        assert!(!p.a.awaiting_reply());
        p.a_to_b(rng);
        p
    }

    /// One 100-byte message Alice → Bob.
    fn a_to_b(&mut self, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let wire = self.a.encrypt(rng, &MSG).unwrap();
        self.b.decrypt(rng, &mut self.bob, &wire, PQ).unwrap()
    }

    /// One 100-byte message Bob → Alice.
    fn b_to_a(&mut self, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let wire = self.b.encrypt(rng, &MSG).unwrap();
        self.a.decrypt(rng, &mut self.alice, &wire, PQ).unwrap()
    }
}

/// Bob's account with one one-time X25519 prekey and one one-time ML-KEM prekey, and his bundle.
/// Classical bundles carry no KEM prekey.
fn hush_responder(rng: &mut impl CryptoRngCore, post_quantum: bool) -> (Account, PrekeyBundle) {
    let mut bob = Account::new(rng);
    let otk = bob.generate_one_time_prekeys(rng, 1).unwrap()[0];
    let bundle = if post_quantum {
        let kem = bob.generate_kem_prekeys(rng, 1).unwrap();
        bob.prekey_bundle(Some(otk.id), Some(kem[0].id)).unwrap()
    } else {
        PrekeyBundle::new(bob.device_keys(), bob.signed_prekey().unwrap(), Some(otk), None).unwrap()
    };
    (bob, bundle)
}

/// Olm's wire form of a message and back, the work hush's byte-level API always does.
fn olm_wire(m: &OlmMessage) -> OlmMessage {
    let (kind, bytes) = m.to_parts();
    OlmMessage::from_parts(kind, &bytes).unwrap()
}

/// Two Olm sessions established both ways, and Alice's chain to Bob in use.
fn olm_pair() -> (OlmSession, OlmSession) {
    let alice = OlmAccount::new();
    let (mut bob, otk) = olm_responder();
    let mut a = alice.create_outbound_session(OlmConfig::version_1(), bob.curve25519_key(), otk).unwrap();
    let OlmMessage::PreKey(first) = a.encrypt(b"hello").unwrap() else { panic!("expected a pre-key message") };
    let mut b = bob.create_inbound_session(OlmConfig::version_1(), alice.curve25519_key(), &first).unwrap().session;
    assert_eq!(a.decrypt(&b.encrypt(b"hi").unwrap()).unwrap(), b"hi");
    assert_eq!(b.decrypt(&a.encrypt(MSG).unwrap()).unwrap(), MSG);
    (a, b)
}

/// Bob's Olm account with one published one-time key.
fn olm_responder() -> (OlmAccount, vodozemac::Curve25519PublicKey) {
    let mut bob = OlmAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    (bob, otk)
}

// ---------------------------------------------------------------------------------------------
// (a) encrypt+decrypt on an established chain
// ---------------------------------------------------------------------------------------------

fn established_chain(c: &mut Criterion) {
    let mut g = group(c, G_CHAIN);

    let mut rng = fast_rng();
    let mut p = HushPair::established(&mut rng);
    g.bench_function(HUSH, |b| b.iter(|| black_box(p.a_to_b(&mut rng))));

    let mut p = HushPair::established(&mut OsRng);
    g.bench_function(HUSH_OSRNG, |b| b.iter(|| black_box(p.a_to_b(&mut OsRng))));

    let mut p = HushPair::established_v1(&mut rng);
    g.bench_function(HUSH_V1, |b| b.iter(|| black_box(p.a_to_b(&mut rng))));

    let (mut a, mut bob) = olm_pair();
    g.bench_function(OLM, |b| b.iter(|| black_box(bob.decrypt(&olm_wire(&a.encrypt(MSG).unwrap())).unwrap())));

    let (mut a, mut bob) = olm_pair();
    g.bench_function(OLM_TYPED, |b| b.iter(|| black_box(bob.decrypt(&a.encrypt(MSG).unwrap()).unwrap())));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// (b) ping-pong: every message opens a new chain
// ---------------------------------------------------------------------------------------------

fn ping_pong(c: &mut Criterion) {
    let mut g = group(c, G_PING_PONG);

    let mut rng = fast_rng();
    let mut p = HushPair::established(&mut rng);
    g.bench_function(HUSH, |b| {
        b.iter(|| {
            black_box(p.a_to_b(&mut rng));
            black_box(p.b_to_a(&mut rng))
        })
    });

    // Version 1 throughout: the Double Ratchet alone.
    let mut p = HushPair::established_v1(&mut rng);
    g.bench_function(HUSH_V1, |b| b.iter(|| black_box(p.ping_pong_v1(&mut rng))));

    let (mut a, mut bob) = olm_pair();
    g.bench_function(OLM, |b| {
        b.iter(|| {
            black_box(bob.decrypt(&olm_wire(&a.encrypt(MSG).unwrap())).unwrap());
            black_box(a.decrypt(&olm_wire(&bob.encrypt(MSG).unwrap())).unwrap())
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// (c) session setup
// ---------------------------------------------------------------------------------------------

/// Timed: the initiator opens a session from the (already verified, in-memory) bundle, encrypts a
/// 100-byte first message to bytes, and the responder parses it, opens the session and decrypts.
/// Untimed (criterion's batch setup): a fresh responder account with one-time prekeys.
fn hush_setup(rng: &mut ChaCha20Rng, alice: &Account, bob: &mut Account, bundle: &PrekeyBundle) -> Vec<u8> {
    let config = if bundle.kem_prekey.is_some() { PQ } else { CLASSICAL };
    let mut a = SessionRecord::new();
    a.initiate(rng, alice.identity(), bundle, config).unwrap();
    let wire = a.encrypt(rng, &MSG).unwrap();
    let mut b = SessionRecord::new();
    b.decrypt(rng, bob, &wire, config).unwrap()
}

fn session_setup(c: &mut Criterion) {
    let mut g = group(c, G_SETUP);
    let mut rng = fast_rng();
    let alice = Account::new(&mut rng);

    for (name, post_quantum) in [(HUSH_PQXDH, true), (HUSH_X3DH, false)] {
        let mut setup_rng = fast_rng();
        g.bench_function(name, |b| {
            b.iter_batched(
                || hush_responder(&mut setup_rng, post_quantum),
                |(mut bob, bundle)| black_box(hush_setup(&mut rng, &alice, &mut bob, &bundle)),
                BatchSize::SmallInput,
            )
        });
    }

    let olm_alice = OlmAccount::new();
    g.bench_function(OLM_3DH, |b| {
        b.iter_batched(
            olm_responder,
            |(mut bob, otk)| {
                let mut a =
                    olm_alice.create_outbound_session(OlmConfig::version_1(), bob.curve25519_key(), otk).unwrap();
                let OlmMessage::PreKey(first) = olm_wire(&a.encrypt(MSG).unwrap()) else { panic!("pre-key message") };
                let inbound =
                    bob.create_inbound_session(OlmConfig::version_1(), olm_alice.curve25519_key(), &first).unwrap();
                black_box(inbound.plaintext)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Where setup time goes: hush's steps one by one, and the public-key primitives they use.
fn session_setup_parts(c: &mut Criterion) {
    let mut g = group(c, G_SETUP_PARTS);
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    let mut rng = fast_rng();
    let alice = Account::new(&mut rng);
    let (bob, bundle) = hush_responder(&mut rng, true);

    g.bench_function("hush PQXDH: initiate", |b| {
        b.iter(|| {
            let mut a = SessionRecord::new();
            a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
            a
        })
    });
    let mut initiated = SessionRecord::new();
    initiated.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
    g.bench_function("hush PQXDH: encrypt first message to bytes", |b| {
        b.iter_batched(|| initiated.clone(), |mut a| a.encrypt(&mut rng, &MSG).unwrap(), BatchSize::SmallInput)
    });
    let wire = initiated.clone().encrypt(&mut rng, &MSG).unwrap();
    g.bench_function("hush PQXDH: parse first message (Ed25519 verify)", |b| {
        b.iter(|| SessionMessage::from_bytes(black_box(&wire)).unwrap())
    });
    g.bench_function("hush PQXDH: responder decrypt (parse, respond, ratchet)", |b| {
        b.iter_batched(
            || (bob.clone(), SessionRecord::new()),
            |(mut bob, mut record)| record.decrypt(&mut rng, &mut bob, &wire, PQ).unwrap(),
            BatchSize::SmallInput,
        )
    });

    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let secret = x25519_dalek::StaticSecret::from(seed);
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut rng));
    g.bench_function("X25519 key generation", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(black_box(seed))))
    });
    g.bench_function("X25519 DH", |b| {
        b.iter(|| {
            let shared = secret.diffie_hellman(black_box(&public));
            assert!(shared.was_contributory());
            shared
        })
    });

    // vodozemac 0.11 uses x25519-dalek 3 / curve25519-dalek 5 (hush: 2 / 4): time its DH too.
    let olm_secret = vodozemac::Curve25519SecretKey::new();
    let olm_public = vodozemac::Curve25519PublicKey::from(&vodozemac::Curve25519SecretKey::new());
    g.bench_function("X25519 DH, vodozemac's", |b| b.iter(|| olm_secret.diffie_hellman(black_box(&olm_public))));

    use ed25519_dalek::{Signer, SigningKey};
    let signer = SigningKey::generate(&mut rng);
    let verifier = signer.verifying_key();
    let signed = [0x17u8; 52];
    let signature = signer.sign(&signed);
    g.bench_function("Ed25519 verify_strict", |b| {
        b.iter(|| verifier.verify_strict(black_box(&signed), &signature).unwrap())
    });

    use libcrux_ml_kem::mlkem768;
    let mut kem_seed = [0u8; 64];
    rng.fill_bytes(&mut kem_seed);
    let pair = mlkem768::generate_key_pair(kem_seed);
    let (ct, _) = mlkem768::encapsulate(pair.public_key(), [7u8; 32]);
    g.bench_function("ML-KEM-768 encapsulate", |b| {
        b.iter(|| mlkem768::encapsulate(pair.public_key(), black_box([7u8; 32])))
    });
    g.bench_function("ML-KEM-768 key from seed + decapsulate", |b| {
        b.iter(|| {
            let pair = mlkem768::generate_key_pair(black_box(kem_seed));
            mlkem768::decapsulate(pair.private_key(), &ct)
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// (d) the primitives of one hush encrypt+decrypt of 100 B
// ---------------------------------------------------------------------------------------------

/// Sizes of one 100-byte message: the session's associated data (two devices' Ed25519 and X25519
/// keys), the 41-byte header, the body padded to 104 bytes, and the body's associated data
/// (session AD || header nonce || encrypted header).
const SESSION_AD: usize = 128;
const HEADER: usize = 41;
const BODY: usize = 104;
const BODY_AD: usize = SESSION_AD + 12 + HEADER + 16;
const TAG: usize = 16;
const MESSAGE_INFO: &[u8] = b"hush/ratchet/v1/message";

/// ChaCha20-Poly1305 with the key set up per call (each message has its own key), in place.
fn ring_seal(key: &[u8; 32], nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> ring::aead::Tag {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap());
    key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf).unwrap()
}

fn ring_open(key: &[u8; 32], nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> usize {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap());
    key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf).unwrap().len()
}

/// Sealed copies to open: (header key, its ciphertext), (body key, its ciphertext).
struct Sealed {
    header: [u8; HEADER + TAG],
    body: [u8; BODY + TAG],
}

fn sealed(hk: &[u8; 32], bk: &[u8; 32], nonce: [u8; 12], ad: &[u8], body_ad: &[u8]) -> Sealed {
    let mut header = [0x11u8; HEADER + TAG];
    let tag = ring_seal(hk, nonce, ad, &mut header[..HEADER]);
    header[HEADER..].copy_from_slice(tag.as_ref());
    let mut body = [0x22u8; BODY + TAG];
    let tag = ring_seal(bk, nonce, body_ad, &mut body[..BODY]);
    body[BODY..].copy_from_slice(tag.as_ref());
    Sealed { header, body }
}

/// The four AEAD calls: seal header, seal body, open header, open body.
fn four_aead(hk: &[u8; 32], bk: &[u8; 32], nonce: [u8; 12], ad: &[u8], body_ad: &[u8], s: &Sealed) -> usize {
    let mut header = [0x11u8; HEADER];
    let t1 = ring_seal(hk, nonce, ad, &mut header);
    let mut body = [0x22u8; BODY];
    let t2 = ring_seal(bk, nonce, body_ad, &mut body);
    let mut h = s.header;
    let n1 = ring_open(hk, nonce, ad, &mut h);
    let mut m = s.body;
    let n2 = ring_open(bk, nonce, body_ad, &mut m);
    usize::from(t1.as_ref()[0]) + usize::from(t2.as_ref()[0]) + n1 + n2
}

fn hkdf_44(mk: &[u8; 32]) -> [u8; 44] {
    let mut out = [0u8; 44];
    Hkdf::<Sha256>::new(None, mk).expand(MESSAGE_INFO, &mut out).unwrap();
    out
}

fn hmac_step(ck: &[u8; 32], byte: u8) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(ck).unwrap();
    mac.update(&[byte]);
    mac.finalize().into_bytes().into()
}

fn primitives(c: &mut Criterion) {
    let mut g = group(c, G_PRIMITIVES);
    let hk = [3u8; 32];
    let bk = [4u8; 32];
    let ck = [5u8; 32];
    let nonce = [6u8; 12];
    let ad = [7u8; SESSION_AD];
    let body_ad = [8u8; BODY_AD];
    let s = sealed(&hk, &bk, nonce, &ad, &body_ad);

    g.bench_function(P_AEAD, |b| {
        b.iter(|| four_aead(black_box(&hk), black_box(&bk), nonce, &ad, &body_ad, black_box(&s)))
    });
    g.bench_function(P_HKDF, |b| b.iter(|| (hkdf_44(black_box(&ck)), hkdf_44(black_box(&bk)))));
    g.bench_function(P_HMAC, |b| {
        b.iter(|| {
            let ck = black_box(&ck);
            (hmac_step(ck, 1), hmac_step(ck, 2), hmac_step(&hk, 1), hmac_step(&hk, 2))
        })
    });
    // The same ten calls chained as a message uses them: chain step → message key → AEAD.
    g.bench_function(P_ALL, |b| {
        b.iter(|| {
            let ck = black_box(ck);
            let next = hmac_step(&ck, 2);
            let mk = hmac_step(&ck, 1);
            let okm = hkdf_44(&mk);
            let mut header = [0x11u8; HEADER];
            let t1 = ring_seal(&hk, nonce, &ad, &mut header);
            let mut body = [0x22u8; BODY];
            let key: [u8; 32] = okm[..32].try_into().unwrap();
            let t2 = ring_seal(&key, nonce, &body_ad, &mut body);
            // Receiver.
            let mut h = s.header;
            let n1 = ring_open(&hk, nonce, &ad, &mut h);
            let r_next = hmac_step(&ck, 2);
            let r_mk = hmac_step(&ck, 1);
            let r_okm = hkdf_44(&r_mk);
            let mut m = s.body;
            let n2 = ring_open(&bk, nonce, &body_ad, &mut m);
            (next, r_next, r_okm, t1.as_ref()[0], t2.as_ref()[0], n1, n2)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = established_chain, ping_pong, session_setup, primitives, session_setup_parts
}

// ---------------------------------------------------------------------------------------------
// Ratio table
// ---------------------------------------------------------------------------------------------

/// How a row compares hush (`ours`) with the reference (`theirs`).
#[derive(Clone, Copy)]
enum Ratio {
    /// Their time / our time: how many times hush's throughput; the target is a minimum.
    Throughput,
    /// Our time / their time: how many times slower hush is; the target is a maximum.
    Time,
}

struct Row {
    what: &'static str,
    ours: Option<f64>,
    theirs: Option<f64>,
    ratio: Ratio,
    target: Option<f64>,
}

fn print_table(started: SystemTime) {
    let dir = criterion_dir();
    let m = |g: &str, b: &str| mean_ns(&dir, started, g, b);
    let parts_sum = match (m(G_PRIMITIVES, P_AEAD), m(G_PRIMITIVES, P_HKDF), m(G_PRIMITIVES, P_HMAC)) {
        (Some(a), Some(b), Some(c)) => Some(a + b + c),
        _ => None,
    };
    let row = |what, ours, theirs, ratio, target| Row { what, ours, theirs, ratio, target };
    let rows = [
        row(
            "(a) encrypt+decrypt 100 B: hush (triple ratchet) vs vodozemac Olm",
            m(G_CHAIN, HUSH),
            m(G_CHAIN, OLM),
            Ratio::Throughput,
            Some(4.0),
        ),
        row(
            "(a) … vs vodozemac Olm without wire encoding",
            m(G_CHAIN, HUSH),
            m(G_CHAIN, OLM_TYPED),
            Ratio::Throughput,
            Some(3.0),
        ),
        row(
            "(a) hush vs its 10 primitives in sequence",
            m(G_CHAIN, HUSH),
            m(G_PRIMITIVES, P_ALL),
            Ratio::Time,
            Some(1.5),
        ),
        row("(a) hush vs sum of the 3 primitive benches", m(G_CHAIN, HUSH), parts_sum, Ratio::Time, Some(1.5)),
        row("(a) hush with OsRng vs vodozemac Olm", m(G_CHAIN, HUSH_OSRNG), m(G_CHAIN, OLM), Ratio::Throughput, None),
        row(
            "(a) Double Ratchet only (version 1) vs vodozemac Olm",
            m(G_CHAIN, HUSH_V1),
            m(G_CHAIN, OLM),
            Ratio::Throughput,
            None,
        ),
        row("(a) triple ratchet vs Double Ratchet only", m(G_CHAIN, HUSH), m(G_CHAIN, HUSH_V1), Ratio::Time, None),
        row(
            "(b) ping-pong, Double Ratchet only vs vodozemac Olm",
            m(G_PING_PONG, HUSH_V1),
            m(G_PING_PONG, OLM),
            Ratio::Throughput,
            None,
        ),
        row(
            "(b) ping-pong, triple ratchet vs Double Ratchet only",
            m(G_PING_PONG, HUSH),
            m(G_PING_PONG, HUSH_V1),
            Ratio::Time,
            None,
        ),
        row(
            "(b) ping-pong round trip: hush vs vodozemac Olm",
            m(G_PING_PONG, HUSH),
            m(G_PING_PONG, OLM),
            Ratio::Throughput,
            None,
        ),
        row(
            "(c) setup: hush PQXDH vs vodozemac Olm",
            m(G_SETUP, HUSH_PQXDH),
            m(G_SETUP, OLM_3DH),
            Ratio::Throughput,
            None,
        ),
        row(
            "(c) setup: hush X3DH (classical) vs vodozemac Olm",
            m(G_SETUP, HUSH_X3DH),
            m(G_SETUP, OLM_3DH),
            Ratio::Throughput,
            Some(1.0),
        ),
        row(
            "(c) setup: hush PQXDH vs hush X3DH",
            m(G_SETUP, HUSH_PQXDH),
            m(G_SETUP, HUSH_X3DH),
            Ratio::Time,
            Some(1.6),
        ),
    ];

    println!();
    println!("hush-core session benches: ratios of criterion's means (this run only; — = not run)");
    println!();
    println!("| comparison | hush | reference | ratio | target | |");
    println!("|---|---:|---:|---:|---|---|");
    for r in rows {
        let ratio = r.ours.zip(r.theirs).map(|(ours, theirs)| match r.ratio {
            Ratio::Throughput => theirs / ours,
            Ratio::Time => ours / theirs,
        });
        let (unit, cmp) = match r.ratio {
            Ratio::Throughput => ("× throughput", "≥"),
            Ratio::Time => ("× time", "≤"),
        };
        let target = r.target.map_or_else(|| "—".to_string(), |t| format!("{cmp} {t}"));
        let verdict = match (r.target, ratio) {
            (Some(t), Some(x)) => match r.ratio {
                Ratio::Throughput if x >= t => "met",
                Ratio::Time if x <= t => "met",
                _ => "MISSED",
            },
            (Some(_), None) => "not run",
            (None, _) => "",
        };
        let ratio = ratio.map_or_else(|| "—".to_string(), |x| format!("{x:.2}{unit}"));
        println!("| {} | {} | {} | {ratio} | {target} | {verdict} |", r.what, fmt_ns(r.ours), fmt_ns(r.theirs));
    }
    println!();
    println!("× throughput = reference's time / hush's time (higher is better for hush);");
    println!("× time = hush's time / reference's time (lower is better for hush).");
}

/// The 1-minute load average (Linux), to tell a quiet run from one shared with other work.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let started = SystemTime::now();
    let load_before = load_average();
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_table(started);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("1-minute load average before / after: {load_before} / {} on {cores} cores", load_average());
}
