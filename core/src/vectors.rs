//! Cross-language test vectors: the JSON files in `test-vectors/` (format in its README.md).
//!
//! For each file, one test regenerates every vector in memory by driving the crate's real code
//! (identities, prekeys, `SessionRecord`, `RatchetState`, `SafetyNumber`, `SignedDeviceList`) with
//! fixed secrets or a seeded ChaCha20 RNG, and compares the result with the committed file. Run with
//! `HUSH_WRITE_VECTORS=1` to rewrite the files instead.
//!
//! A second test per file re-checks the committed values with the primitive crates directly
//! (ed25519-dalek, x25519-dalek, libcrux-ml-kem, hkdf, hmac, sha2, RustCrypto's chacha20poly1305,
//! prost), never through hush-core's own functions, so the vectors are checked, not merely
//! self-consistent.

use std::path::PathBuf;

use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::crypto::aead;
use crate::crypto::kem::KemSecret;
use crate::crypto::keys::{KeyPair, SigningKeyPair, random_array};
use crate::identity::{DeviceIdentity, UserIdentity};
use crate::message::{PrekeyMessage, RatchetMessage, SessionMessage};
use crate::pqxdh::{self, SessionConfig};
use crate::prekeys::{KemPrekey, PrekeyBundle, SignedPrekey};
use crate::ratchet::{RatchetState, keys, padding};
use crate::safety_number::SafetyNumber;
use crate::session::{Session, SessionRecord};
use crate::wire::proto;
use crate::{DeviceKeys, SignedDeviceList};

const FORMAT_VERSION: u32 = 1;

/// `sealed_sender.json` (sealed-sender envelopes, delivery tokens), in its own file.
mod sealed_sender;

/// `group.json` (sender-key messages, a signed group create), in its own file.
mod group;

/// `mlkem768.json` (ML-KEM-768 from a seed, encapsulation, implicit rejection), in its own file.
mod mlkem768;

// ---------------------------------------------------------------------------------------------
// RNGs, hex, files

/// A seeded ChaCha20Rng that logs every draw, so the values the API drew can be recorded and
/// checked against the state they ended up in.
struct Recorder {
    rng: ChaCha20Rng,
    draws: Vec<Vec<u8>>,
}

impl Recorder {
    fn new(seed: [u8; 32]) -> Self {
        Self { rng: ChaCha20Rng::from_seed(seed), draws: Vec::new() }
    }

    /// The draws since the last call.
    fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.draws)
    }
}

impl RngCore for Recorder {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest);
        self.draws.push(dest.to_vec());
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Recorder {}

/// An "RNG" that hands out exactly the given bytes, to replay a recorded draw through real code.
struct Replay {
    bytes: Vec<u8>,
    pos: usize,
}

impl Replay {
    fn new(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec(), pos: 0 }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(self.pos, self.bytes.len(), "replayed randomness not fully used");
        }
    }
}

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.pos + dest.len();
        assert!(end <= self.bytes.len(), "replayed randomness exhausted");
        dest.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Replay {}

/// The ChaCha20Rng seed of a vector file: SHA-256("hush/test-vectors/" || label).
fn seed_for(label: &str) -> [u8; 32] {
    Sha256::digest(format!("hush/test-vectors/{label}").as_bytes()).into()
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn a32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors")).join(name)
}

/// Whether this run rewrites the files (`HUSH_WRITE_VECTORS=1`).
fn writing() -> bool {
    std::env::var("HUSH_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate it with HUSH_WRITE_VECTORS=1)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `generated` with the committed file, or (re)writes the file when
/// `HUSH_WRITE_VECTORS=1`. Both tests of a file write it, possibly at the same time, so each write
/// goes through its own temporary file and the renames (atomic) cannot take each other's.
fn check_or_write<T: Serialize>(name: &str, generated: &T) {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = vector_path(name);
    if writing() {
        let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("json.{}.{n}.tmp", std::process::id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        return;
    }
    let committed: Value = load(name);
    let generated = serde_json::to_value(generated).unwrap();
    if let Some(diff) = first_difference(&committed, &generated, "$") {
        panic!(
            "{} differs from what hush-core computes now: {diff}\n\
             If the change is intended (a wire-format break), rerun with HUSH_WRITE_VECTORS=1 and review the diff.",
            path.display()
        );
    }
}

fn first_difference(committed: &Value, generated: &Value, path: &str) -> Option<String> {
    fn short(v: &Value) -> String {
        let s = v.to_string();
        if s.len() > 80 { format!("{}…", &s[..80]) } else { s }
    }
    match (committed, generated) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let p = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(x, y, &p) {
                            return Some(d);
                        }
                    }
                    (Some(_), None) => return Some(format!("{p}: in the file, no longer generated")),
                    (None, _) => return Some(format!("{p}: generated, missing from the file")),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]")))
        }
        _ if committed == generated => None,
        _ => Some(format!("{path}: file has {}, generated {}", short(committed), short(generated))),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON shapes (documented in test-vectors/README.md)

#[derive(Serialize, Deserialize)]
struct DeviceV {
    device_signing_secret: String,
    identity_secret: String,
    device_key: String,
    identity_key: String,
    identity_signature: String,
}

#[derive(Serialize, Deserialize)]
struct PublicDeviceV {
    device_key: String,
    identity_key: String,
    identity_signature: String,
}

#[derive(Serialize, Deserialize)]
struct SignedPrekeyV {
    id: u32,
    secret: String,
    public_key: String,
    signature: String,
    encoded: String,
}

#[derive(Serialize, Deserialize)]
struct OneTimePrekeyV {
    id: u32,
    secret: String,
    public_key: String,
}

#[derive(Serialize, Deserialize)]
struct KemPrekeyV {
    id: u32,
    last_resort: bool,
    seed: String,
    public_key: String,
    public_key_sha256: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<IdentityCase>,
}

#[derive(Serialize, Deserialize)]
struct IdentityCase {
    name: String,
    device: DeviceV,
    device_keys_encoded: String,
    signed_prekey: SignedPrekeyV,
    kem_prekey: KemPrekeyV,
}

#[derive(Serialize, Deserialize)]
struct PqxdhFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<PqxdhCase>,
}

#[derive(Serialize, Deserialize)]
struct PqxdhCase {
    name: String,
    post_quantum: bool,
    initiator: DeviceV,
    responder: DeviceV,
    signed_prekey: SignedPrekeyV,
    one_time_prekey: Option<OneTimePrekeyV>,
    kem_prekey: Option<KemPrekeyV>,
    prekey_bundle: String,
    base_secret: String,
    base_key: String,
    kem_encapsulation_randomness: Option<String>,
    kem_ciphertext: Option<String>,
    kem_shared_secret: Option<String>,
    dh1: String,
    dh2: String,
    dh3: String,
    dh4: Option<String>,
    hkdf_salt: String,
    hkdf_ikm: String,
    hkdf_info: String,
    sk: String,
    associated_data: String,
    first_message: FirstMessageV,
}

#[derive(Serialize, Deserialize)]
struct FirstMessageV {
    plaintext: String,
    ratchet_secret: String,
    ratchet_key: String,
    header_nonce: String,
    session_message: String,
}

#[derive(Serialize, Deserialize)]
struct RatchetFile {
    version: u32,
    description: String,
    rng_seed: String,
    sk: String,
    alice: PublicDeviceV,
    bob: PublicDeviceV,
    associated_data: String,
    bob_signed_prekey_secret: String,
    bob_signed_prekey: String,
    initial: InitialV,
    epochs: Vec<EpochV>,
    messages: Vec<MessageV>,
}

#[derive(Serialize, Deserialize)]
struct InitialV {
    root_key: String,
    alice_header_key: String,
    bob_next_header_key: String,
}

#[derive(Serialize, Deserialize)]
struct EpochV {
    epoch: u32,
    sender: String,
    sender_ratchet_secret: String,
    sender_ratchet_key: String,
    receiver_ratchet_secret: String,
    receiver_ratchet_key: String,
    dh: String,
    root_key_in: String,
    root_key_out: String,
    chain_key: String,
    header_key: String,
    next_header_key: String,
}

#[derive(Serialize, Deserialize)]
struct MessageV {
    sender: String,
    epoch: u32,
    plaintext: String,
    header_ratchet_key: String,
    previous_counter: u32,
    counter: u32,
    header_plaintext: String,
    header_key: String,
    header_nonce: String,
    encrypted_header: String,
    chain_key: String,
    message_key: String,
    aead_key: String,
    aead_nonce: String,
    padded_plaintext: String,
    body_associated_data: String,
    ciphertext: String,
    ratchet_message: String,
    session_message: String,
}

#[derive(Serialize, Deserialize)]
struct SafetyNumberFile {
    version: u32,
    description: String,
    rng_seed: String,
    iterations: u32,
    cases: Vec<SafetyNumberCase>,
}

#[derive(Serialize, Deserialize)]
struct SafetyNumberCase {
    name: String,
    user_a_secret: String,
    user_a_key: String,
    user_b_secret: String,
    user_b_key: String,
    digits: String,
    display: String,
    qr_payload: String,
}

#[derive(Serialize, Deserialize)]
struct DeviceListFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<DeviceListCase>,
}

#[derive(Serialize, Deserialize)]
struct DeviceListCase {
    name: String,
    user_secret: String,
    user_key: String,
    list_version: u64,
    created_at: u64,
    devices: Vec<PublicDeviceV>,
    device_list: String,
    signature: String,
    signed_device_list: String,
}

// ---------------------------------------------------------------------------------------------
// Generation with the crate's own code

fn device_v(d: &DeviceIdentity) -> DeviceV {
    DeviceV {
        device_signing_secret: h(d.signing.secret_bytes().as_slice()),
        identity_secret: h(d.identity.secret_bytes().as_slice()),
        device_key: h(d.device_key().as_bytes()),
        identity_key: h(d.identity_key().as_bytes()),
        identity_signature: h(&d.keys().signature()),
    }
}

fn public_device_v(d: &DeviceKeys) -> PublicDeviceV {
    PublicDeviceV {
        device_key: h(d.device_key().as_bytes()),
        identity_key: h(d.identity_key().as_bytes()),
        identity_signature: h(&d.signature()),
    }
}

fn signed_prekey_v(public: &SignedPrekey, pair: &KeyPair) -> SignedPrekeyV {
    assert_eq!(public.public_key, pair.public());
    SignedPrekeyV {
        id: public.id,
        secret: h(pair.secret_bytes().as_slice()),
        public_key: h(public.public_key.as_bytes()),
        signature: h(&public.signature.0),
        encoded: h(&public.to_proto().encode_to_vec()),
    }
}

fn kem_prekey_v(public: &KemPrekey, secret: &KemSecret) -> KemPrekeyV {
    assert_eq!(public.public_key, secret.public());
    KemPrekeyV {
        id: public.id,
        last_resort: public.last_resort,
        seed: h(secret.seed()),
        public_key: h(public.public_key.as_bytes()),
        public_key_sha256: h(&Sha256::digest(public.public_key.as_bytes())),
        signature: h(&public.signature.0),
    }
}

/// RFC 8032 §7.1 test 1 Ed25519 secret key.
const RFC8032_TEST1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_TEST1_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// RFC 7748 §6.1 Alice's and Bob's X25519 private keys and their public keys.
const RFC7748_ALICE_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const RFC7748_ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const RFC7748_BOB_SECRET: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const RFC7748_BOB_PUBLIC: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

#[allow(clippy::too_many_arguments)]
fn identity_case(
    name: &str,
    device_secret: [u8; 32],
    identity_secret: [u8; 32],
    spk_id: u32,
    spk_secret: [u8; 32],
    kem_id: u32,
    last_resort: bool,
    kem_seed: [u8; 64],
) -> IdentityCase {
    let device = DeviceIdentity::from_parts(
        SigningKeyPair::from_secret_bytes(&device_secret),
        KeyPair::from_secret_bytes(identity_secret),
    );
    let spk_pair = KeyPair::from_secret_bytes(spk_secret);
    let spk = SignedPrekey::sign(&device, spk_id, spk_pair.public());
    let kem_secret = KemSecret::from_seed(kem_seed);
    let kem = KemPrekey::sign(&device, kem_id, kem_secret.public(), last_resort);
    // What we record must be what the parsers accept.
    let keys = DeviceKeys::from_proto(&device.keys().to_proto()).unwrap();
    assert_eq!(keys, device.keys());
    assert_eq!(SignedPrekey::from_proto(&spk.to_proto(), &keys).unwrap(), spk);
    assert_eq!(KemPrekey::from_proto(&kem.to_proto(), &keys).unwrap(), kem);
    IdentityCase {
        name: name.to_owned(),
        device: device_v(&device),
        device_keys_encoded: h(&device.keys().to_proto().encode_to_vec()),
        signed_prekey: signed_prekey_v(&spk, &spk_pair),
        kem_prekey: kem_prekey_v(&kem, &kem_secret),
    }
}

fn generate_identity() -> IdentityFile {
    let seed = seed_for("identity");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = vec![identity_case(
        "rfc_secrets",
        a32(RFC8032_TEST1_SECRET),
        a32(RFC7748_ALICE_SECRET),
        1,
        a32(RFC7748_BOB_SECRET),
        2,
        false,
        random_array(&mut rng),
    )];
    for (name, spk_id, kem_id, last_resort) in
        [("big_endian_ids_last_resort", 0x0102_0304, 0xA0B0_C0D0, true), ("zero_and_max_ids", 0, u32::MAX, false)]
    {
        let (device, identity, spk) = (random_array(&mut rng), random_array(&mut rng), random_array(&mut rng));
        cases.push(identity_case(name, device, identity, spk_id, spk, kem_id, last_resort, random_array(&mut rng)));
    }
    IdentityFile {
        version: FORMAT_VERSION,
        description: "Device identities and prekeys: Ed25519 device key and X25519 identity key from their secrets, \
                      the device key's signatures over the identity key, a signed X25519 prekey and a signed \
                      ML-KEM-768 prekey (key pair from a 64-byte seed d || z). See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KemChoice {
    OneTime,
    LastResort,
    Classical,
}

fn pqxdh_case(
    rng: &mut Recorder,
    name: &str,
    use_one_time: bool,
    kem_choice: KemChoice,
    plaintext: &[u8],
) -> PqxdhCase {
    let alice = DeviceIdentity::generate(rng);
    let bob_identity = DeviceIdentity::generate(rng);
    // Ids: signed prekey 1, last-resort KEM prekey 2, one-time prekey 3, one-time KEM prekey 4.
    let mut bob = Account::from_identity(rng, bob_identity);
    let otk = bob.generate_one_time_prekeys(rng, 1).unwrap()[0];
    let kem_one_time = bob.generate_kem_prekeys(rng, 1).unwrap().remove(0);
    let otk_id = use_one_time.then_some(otk.id);
    let bundle = match kem_choice {
        KemChoice::OneTime => bob.prekey_bundle(otk_id, Some(kem_one_time.id)),
        KemChoice::LastResort => bob.prekey_bundle(otk_id, None),
        KemChoice::Classical => {
            PrekeyBundle::new(bob.device_keys(), bob.signed_prekey().unwrap(), use_one_time.then_some(otk), None)
        }
    }
    .unwrap();
    assert_eq!(PrekeyBundle::from_bytes(&bundle.to_bytes()).unwrap(), bundle);
    let config = SessionConfig { allow_classical: kem_choice == KemChoice::Classical };
    let post_quantum = bundle.kem_prekey.is_some();

    // The initiator: real session setup. It draws the base key, the KEM randomness and its first
    // ratchet key, in that order.
    rng.take();
    let mut alice_record = SessionRecord::new();
    alice_record.initiate(rng, &alice, &bundle, config).unwrap();
    let draws = rng.take();
    assert_eq!(draws.len(), if post_quantum { 3 } else { 2 });
    let session = alice_record.active.clone().unwrap();
    let pending = session.pending_prekey.clone().unwrap();
    let base_secret: [u8; 32] = draws[0].clone().try_into().unwrap();
    let base = KeyPair::from_secret_bytes(base_secret);
    assert_eq!(base.public(), session.base_key);
    let ratchet_secret = session.ratchet.sending_ratchet.secret_bytes();
    assert_eq!(draws.last().unwrap().as_slice(), ratchet_secret.as_slice());

    let spk = bundle.signed_prekey;
    let spk_pair = bob.signed_prekey_pair(spk.id).unwrap().clone();
    let otk_pair = bundle.one_time_prekey.map(|k| bob.one_time_prekey_pair(k.id).unwrap().clone());
    let dh1 = alice.identity.agree(&spk.public_key).unwrap();
    let dh2 = base.agree(&bob.identity().identity_key()).unwrap();
    let dh3 = base.agree(&spk.public_key).unwrap();
    let dh4 = bundle.one_time_prekey.map(|k| base.agree(&k.public_key).unwrap());
    // The responder's side of each agreement gives the same bytes.
    assert_eq!(*spk_pair.agree(&alice.identity_key()).unwrap(), *dh1);
    assert_eq!(*bob.identity().identity.agree(&base.public()).unwrap(), *dh2);
    assert_eq!(*spk_pair.agree(&base.public()).unwrap(), *dh3);
    if let (Some(pair), Some(dh4)) = (&otk_pair, &dh4) {
        assert_eq!(*pair.agree(&base.public()).unwrap(), **dh4);
    }

    let kem_randomness = post_quantum.then(|| draws[1].clone());
    let kem_ss = bundle.kem_prekey.as_ref().map(|k| {
        let ss = bob.kem_prekey_secret(k.id).unwrap().decapsulate(&pending.kem_ciphertext).unwrap();
        // Encapsulating with the recorded randomness gives what the initiator sent.
        let (ct, ss2) = k.public_key.encapsulate(&mut Replay::new(kem_randomness.as_deref().unwrap()));
        assert_eq!(ct, pending.kem_ciphertext);
        assert_eq!(*ss2, *ss);
        ss
    });

    let mut dhs: Vec<&[u8; 32]> = vec![&dh1, &dh2, &dh3];
    if let Some(dh4) = &dh4 {
        dhs.push(dh4);
    }
    let sk = pqxdh::shared_secret(&dhs, kem_ss.as_deref()).unwrap();
    let mut ikm = vec![0xFF; 32];
    for dh in &dhs {
        ikm.extend_from_slice(*dh);
    }
    if let Some(ss) = &kem_ss {
        ikm.extend_from_slice(ss.as_slice());
    }

    // This SK is the one both sides' real session setup derived.
    let replayed = RatchetState::initiator(&mut Replay::new(ratchet_secret.as_slice()), &sk, spk.public_key).unwrap();
    assert_eq!(replayed.root_key, session.ratchet.root_key);
    let prekey_message = PrekeyMessage {
        initiator: alice.keys(),
        base_key: session.base_key,
        signed_prekey_id: pending.signed_prekey_id,
        one_time_prekey_id: pending.one_time_prekey_id,
        kem_prekey_id: pending.kem_prekey_id,
        kem_ciphertext: pending.kem_ciphertext.clone(),
        message: RatchetMessage { header_nonce: [0; 12], encrypted_header: Vec::new(), ciphertext: Vec::new() },
    };
    let (responder_session, _) = Session::respond(&bob, &prekey_message, config).unwrap();
    assert_eq!(responder_session.ratchet.root_key, RatchetState::responder(&sk, spk_pair.clone()).unwrap().root_key);
    let ad = pqxdh::associated_data(&alice.keys(), &bob.device_keys());
    assert_eq!(ad, session.ad);
    assert_eq!(ad, responder_session.ad);

    // Recorded before the responder consumes its one-time prekeys.
    let one_time_prekey = bundle.one_time_prekey.zip(otk_pair.as_ref()).map(|(k, pair)| OneTimePrekeyV {
        id: k.id,
        secret: h(pair.secret_bytes().as_slice()),
        public_key: h(k.public_key.as_bytes()),
    });
    let kem_prekey = bundle.kem_prekey.as_ref().map(|k| kem_prekey_v(k, bob.kem_prekey_secret(k.id).unwrap()));

    // The first message, as sent and as the responder opens it.
    let wire = alice_record.encrypt(rng, plaintext).unwrap();
    let nonce_draw = rng.take();
    let SessionMessage::Prekey(sent) = SessionMessage::from_bytes(&wire).unwrap() else {
        panic!("not a prekey message")
    };
    assert_eq!(nonce_draw, vec![sent.message.header_nonce.to_vec()]);
    let mut bob_record = SessionRecord::new();
    assert_eq!(bob_record.decrypt(rng, &mut bob, &wire, config).unwrap(), plaintext);
    rng.take();

    PqxdhCase {
        name: name.to_owned(),
        post_quantum,
        initiator: device_v(&alice),
        responder: device_v(bob.identity()),
        signed_prekey: signed_prekey_v(&spk, &spk_pair),
        one_time_prekey,
        kem_prekey,
        prekey_bundle: h(&bundle.to_bytes()),
        base_secret: h(&base_secret),
        base_key: h(base.public().as_bytes()),
        kem_encapsulation_randomness: kem_randomness.as_deref().map(h),
        kem_ciphertext: post_quantum.then(|| h(&pending.kem_ciphertext)),
        kem_shared_secret: kem_ss.as_ref().map(|ss| h(ss.as_slice())),
        dh1: h(dh1.as_slice()),
        dh2: h(dh2.as_slice()),
        dh3: h(dh3.as_slice()),
        dh4: dh4.as_ref().map(|d| h(d.as_slice())),
        hkdf_salt: h(&[0u8; 32]),
        hkdf_ikm: h(&ikm),
        hkdf_info: if post_quantum { "hush/pqxdh/v1/x25519/mlkem768" } else { "hush/x3dh/v1/x25519" }.to_owned(),
        sk: h(sk.as_slice()),
        associated_data: h(&ad),
        first_message: FirstMessageV {
            plaintext: h(plaintext),
            ratchet_secret: h(ratchet_secret.as_slice()),
            ratchet_key: h(session.ratchet.sending_ratchet.public().as_bytes()),
            header_nonce: h(&sent.message.header_nonce),
            session_message: h(&wire),
        },
    }
}

fn generate_pqxdh() -> PqxdhFile {
    let seed = seed_for("pqxdh");
    let mut rng = Recorder::new(seed);
    let cases = vec![
        pqxdh_case(&mut rng, "pqxdh_one_time_prekey", true, KemChoice::OneTime, b"Hello Bob, this is Alice."),
        pqxdh_case(&mut rng, "pqxdh_no_one_time_prekey_last_resort_kem", false, KemChoice::LastResort, b"no DH4 here"),
        pqxdh_case(&mut rng, "x3dh_classical_one_time_prekey", true, KemChoice::Classical, b"classical X3DH"),
    ];
    PqxdhFile {
        version: FORMAT_VERSION,
        description: "PQXDH session setup (X25519 + ML-KEM-768; one classical X3DH case): every secret input, the \
                      four Diffie-Hellman outputs, the KEM ciphertext and shared secret, the HKDF input and SK, the \
                      session's associated data, and the initiator's first SessionMessage. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
    }
}

/// Describes the sending chain `sender` has just started (right after its DH ratchet step).
fn epoch_v(epoch: u32, sender: &str, st: &RatchetState, receiver: &KeyPair, root_key_in: &keys::Key32) -> EpochV {
    let chain = st.sending_chain.as_ref().unwrap();
    assert_eq!(chain.index, 0);
    let dh = st.sending_ratchet.agree(&receiver.public()).unwrap();
    assert_eq!(*receiver.agree(&st.sending_ratchet.public()).unwrap(), *dh);
    let (root, ck, nhk) = keys::root_step(root_key_in, dh.as_slice()).unwrap();
    assert_eq!((&root, &ck, &nhk), (&st.root_key, chain, &st.next_sending_header_key));
    EpochV {
        epoch,
        sender: sender.to_owned(),
        sender_ratchet_secret: h(st.sending_ratchet.secret_bytes().as_slice()),
        sender_ratchet_key: h(st.sending_ratchet.public().as_bytes()),
        receiver_ratchet_secret: h(receiver.secret_bytes().as_slice()),
        receiver_ratchet_key: h(receiver.public().as_bytes()),
        dh: h(dh.as_slice()),
        root_key_in: h(&root_key_in.0),
        root_key_out: h(&st.root_key.0),
        chain_key: h(&chain.key),
        header_key: h(&st.sending_header_key.as_ref().unwrap().0),
        next_header_key: h(&st.next_sending_header_key.0),
    }
}

/// Encrypts with the real ratchet and records every intermediate value.
fn send(
    rng: &mut Recorder,
    sender: &str,
    epoch: u32,
    st: &mut RatchetState,
    ad: &[u8],
    plaintext: &[u8],
) -> (MessageV, RatchetMessage) {
    let chain = st.sending_chain.clone().unwrap();
    let header_key = st.sending_header_key.clone().unwrap();
    let ratchet_key = st.sending_ratchet.public();
    let previous_counter = st.previous_counter;
    rng.take();
    let msg = st.encrypt(rng, ad, plaintext).unwrap();
    assert_eq!(rng.take(), vec![msg.header_nonce.to_vec()]);
    let message_key = chain.message_key().unwrap();
    let secrets = message_key.expand().unwrap();
    let header_plaintext = aead::open(&header_key.0, &msg.header_nonce, ad, &msg.encrypted_header).unwrap();
    let body_ad = [ad, &msg.header_nonce, &msg.encrypted_header].concat();
    let padded = aead::open(&secrets.key, &secrets.nonce, &body_ad, &msg.ciphertext).unwrap();
    assert_eq!(padded, padding::pad(plaintext));
    let session_message = SessionMessage::Ratchet(msg.clone()).to_bytes();
    let ratchet_message = match proto::SessionMessage::decode(session_message.as_slice()).unwrap().body {
        Some(proto::session_message::Body::Ratchet(r)) => r.encode_to_vec(),
        _ => panic!("not a ratchet message"),
    };
    let v = MessageV {
        sender: sender.to_owned(),
        epoch,
        plaintext: h(plaintext),
        header_ratchet_key: h(ratchet_key.as_bytes()),
        previous_counter,
        counter: chain.index,
        header_plaintext: h(&header_plaintext),
        header_key: h(&header_key.0),
        header_nonce: h(&msg.header_nonce),
        encrypted_header: h(&msg.encrypted_header),
        chain_key: h(&chain.key),
        message_key: h(&message_key.key),
        aead_key: h(secrets.key.as_slice()),
        aead_nonce: h(&secrets.nonce),
        padded_plaintext: h(&padded),
        body_associated_data: h(&body_ad),
        ciphertext: h(&msg.ciphertext),
        ratchet_message: h(&ratchet_message),
        session_message: h(&session_message),
    };
    (v, msg)
}

/// Decrypts with the real ratchet; `steps` says whether this message must trigger a DH ratchet step.
fn receive(rng: &mut Recorder, st: &mut RatchetState, ad: &[u8], msg: &RatchetMessage, plaintext: &[u8], steps: bool) {
    rng.take();
    assert_eq!(st.decrypt(rng, ad, msg).unwrap(), plaintext);
    let draws = rng.take();
    assert_eq!(draws.len(), usize::from(steps));
    if steps {
        assert_eq!(draws[0].as_slice(), st.sending_ratchet.secret_bytes().as_slice());
    }
}

fn generate_ratchet() -> RatchetFile {
    let seed = seed_for("ratchet");
    let mut rng = Recorder::new(seed);
    let sk: [u8; 32] = random_array(&mut rng);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let bob_spk = KeyPair::generate(&mut rng);
    let ad = pqxdh::associated_data(&alice.keys(), &bob.keys());
    let (rk0, hka, nhkb) = keys::initial_keys(&sk).unwrap();

    let mut a = RatchetState::initiator(&mut rng, &sk, bob_spk.public()).unwrap();
    let mut b = RatchetState::responder(&sk, bob_spk.clone()).unwrap();
    assert_eq!((a.sending_header_key.as_ref(), &a.next_receiving_header_key), (Some(&hka), &nhkb));
    assert_eq!((&b.next_receiving_header_key, &b.next_sending_header_key), (&hka, &nhkb));

    let mut epochs = vec![epoch_v(0, "alice", &a, &bob_spk, &rk0)];
    let mut messages = Vec::new();
    let long: Vec<u8> = (0..150u8).map(|i| b'a' + i % 26).collect();
    let alice_first: [&[u8]; 3] = [b"Hi Bob! First message on a fresh session.", b"", &long];
    let mut sent = Vec::new();
    for pt in alice_first {
        let (v, m) = send(&mut rng, "alice", 0, &mut a, &ad, pt);
        messages.push(v);
        sent.push((m, pt));
    }
    for (i, (m, pt)) in sent.iter().enumerate() {
        receive(&mut rng, &mut b, &ad, m, pt, i == 0);
        if i == 0 {
            assert_eq!(b.receiving[0].header_key, hka);
            assert_eq!(b.next_receiving_header_key, a.next_sending_header_key);
            epochs.push(epoch_v(1, "bob", &b, &a.sending_ratchet, &a.root_key));
        }
    }

    let bob_replies: [&[u8]; 2] = [b"Hi Alice, got all three.", "Grüße 👋".as_bytes()];
    let mut sent = Vec::new();
    for pt in bob_replies {
        let (v, m) = send(&mut rng, "bob", 1, &mut b, &ad, pt);
        messages.push(v);
        sent.push((m, pt));
    }
    for (i, (m, pt)) in sent.iter().enumerate() {
        receive(&mut rng, &mut a, &ad, m, pt, i == 0);
        if i == 0 {
            assert_eq!(a.receiving[0].header_key, nhkb);
            assert_eq!(a.next_receiving_header_key, b.next_sending_header_key);
            let rk = keys::Key32(a32(&epochs[1].root_key_out));
            epochs.push(epoch_v(2, "alice", &a, &b.sending_ratchet, &rk));
        }
    }

    let pt: &[u8] = b"Second DH ratchet step from Alice.";
    let (v, m) = send(&mut rng, "alice", 2, &mut a, &ad, pt);
    messages.push(v);
    receive(&mut rng, &mut b, &ad, &m, pt, true);
    let rk = keys::Key32(a32(&epochs[2].root_key_out));
    epochs.push(epoch_v(3, "bob", &b, &a.sending_ratchet, &rk));

    RatchetFile {
        version: FORMAT_VERSION,
        description: "Double Ratchet with header encryption from a fixed SK: initial keys, each DH ratchet step \
                      (epoch), and every message's header, keys, padding and encodings. Alice sends 3, Bob answers \
                      2, Alice sends 1 more; each side decrypts in order. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        sk: h(&sk),
        alice: public_device_v(&alice.keys()),
        bob: public_device_v(&bob.keys()),
        associated_data: h(&ad),
        bob_signed_prekey_secret: h(bob_spk.secret_bytes().as_slice()),
        bob_signed_prekey: h(bob_spk.public().as_bytes()),
        initial: InitialV { root_key: h(&rk0.0), alice_header_key: h(&hka.0), bob_next_header_key: h(&nhkb.0) },
        epochs,
        messages,
    }
}

fn generate_safety_number() -> SafetyNumberFile {
    let seed = seed_for("safety-number");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = Vec::new();
    let (mut a_first, mut b_first) = (false, false);
    while !(a_first && b_first) {
        let (a, b) = (UserIdentity::generate(&mut rng), UserIdentity::generate(&mut rng));
        let sn = SafetyNumber::new(&a.user_key(), &b.user_key());
        assert_eq!(sn, SafetyNumber::new(&b.user_key(), &a.user_key()));
        // SafetyNumber::new(a, a) holds a's fingerprint in its first half.
        let a_is_first = sn.qr_payload()[1..33] == SafetyNumber::new(&a.user_key(), &a.user_key()).qr_payload()[1..33];
        let name = if a_is_first { "user_a_sorts_first" } else { "user_b_sorts_first" };
        let seen = if a_is_first { &mut a_first } else { &mut b_first };
        if std::mem::replace(seen, true) {
            continue;
        }
        cases.push(SafetyNumberCase {
            name: name.to_owned(),
            user_a_secret: h(a.secret_bytes().as_slice()),
            user_a_key: h(a.user_key().as_bytes()),
            user_b_secret: h(b.secret_bytes().as_slice()),
            user_b_key: h(b.user_key().as_bytes()),
            digits: sn.digits().to_owned(),
            display: sn.display(),
            qr_payload: h(&sn.qr_payload()),
        });
    }
    SafetyNumberFile {
        version: FORMAT_VERSION,
        description: "Safety numbers of two users' Ed25519 user keys: 60 digits and the 65-byte QR payload (iterated \
                      SHA-512 fingerprints). The result does not depend on argument order. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        iterations: crate::limits::SAFETY_NUMBER_ITERATIONS,
        cases,
    }
}

fn generate_device_list() -> DeviceListFile {
    let seed = seed_for("device-list");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = Vec::new();
    for (name, count, list_version, created_at) in
        [("one_device", 1, 1u64, 1_700_000_000u64), ("three_devices", 3, 300, 1_767_225_600)]
    {
        let user = UserIdentity::generate(&mut rng);
        let devices: Vec<DeviceKeys> = (0..count).map(|_| DeviceIdentity::generate(&mut rng).keys()).collect();
        let list = SignedDeviceList::sign(&user, list_version, &devices, created_at).unwrap();
        let bytes = list.to_bytes();
        assert_eq!(SignedDeviceList::from_bytes(&bytes).unwrap(), list);
        let signed = proto::SignedDeviceList::decode(bytes.as_slice()).unwrap();
        cases.push(DeviceListCase {
            name: name.to_owned(),
            user_secret: h(user.secret_bytes().as_slice()),
            user_key: h(user.user_key().as_bytes()),
            list_version,
            created_at,
            devices: devices.iter().map(public_device_v).collect(),
            device_list: h(&signed.device_list),
            signature: h(&signed.signature),
            signed_device_list: h(&bytes),
        });
    }
    DeviceListFile {
        version: FORMAT_VERSION,
        description: "Signed device lists: the user key's signature over an encoded DeviceList, and the encoded \
                      SignedDeviceList. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
    }
}

#[test]
fn identity_vectors_match() {
    check_or_write("identity.json", &generate_identity());
}

#[test]
fn pqxdh_vectors_match() {
    check_or_write("pqxdh.json", &generate_pqxdh());
}

#[test]
fn ratchet_vectors_match() {
    check_or_write("ratchet.json", &generate_ratchet());
}

#[test]
fn safety_number_vectors_match() {
    check_or_write("safety_number.json", &generate_safety_number());
}

#[test]
fn device_list_vectors_match() {
    check_or_write("device_list.json", &generate_device_list());
}

// ---------------------------------------------------------------------------------------------
// Independent checks: the committed values against the primitives, without hush-core's code.

mod independent {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use ed25519_dalek::{Signature, Signer, SigningKey};
    use hmac::{Hmac, Mac};
    use libcrux_ml_kem::mlkem768;
    use prost::Message;
    use sha2::{Digest, Sha256, Sha512};
    use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};

    use super::*;

    /// The committed file; when rewriting, written first so this test never races the writer.
    fn committed<T: DeserializeOwned, G: Serialize>(name: &str, generate: fn() -> G) -> T {
        if writing() {
            check_or_write(name, &generate());
        }
        load(name)
    }

    pub(super) fn x25519_public(secret: &str) -> String {
        h(&x25519(a32(secret), X25519_BASEPOINT_BYTES))
    }

    pub(super) fn dh(secret: &str, public: &str) -> String {
        let out = x25519(a32(secret), a32(public));
        assert_ne!(out, [0u8; 32]);
        h(&out)
    }

    pub(super) fn ed25519_public(secret: &str) -> String {
        h(SigningKey::from_bytes(&a32(secret)).verifying_key().as_bytes())
    }

    /// Checks that `signature` is the (deterministic, RFC 8032) signature of `secret` over
    /// `context || message` and that it verifies strictly.
    pub(super) fn check_signature(secret: &str, context: &[u8], message: &[u8], signature: &str) {
        let key = SigningKey::from_bytes(&a32(secret));
        let signed = [context, message].concat();
        assert_eq!(h(&key.sign(&signed).to_bytes()), signature, "signature bytes");
        let sig = Signature::from_slice(&unhex(signature)).unwrap();
        key.verifying_key().verify_strict(&signed, &sig).unwrap();
    }

    pub(super) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        hkdf::Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out).unwrap();
        out
    }

    pub(super) fn hmac(key: &[u8], byte: u8) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(&[byte]);
        mac.finalize().into_bytes().to_vec()
    }

    pub(super) fn seal(key: &[u8], nonce: &[u8], ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        chacha20poly1305::ChaCha20Poly1305::new(key.into())
            .encrypt(nonce.into(), Payload { msg: plaintext, aad: ad })
            .unwrap()
    }

    pub(super) fn open(key: &[u8], nonce: &[u8], ad: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        chacha20poly1305::ChaCha20Poly1305::new(key.into())
            .decrypt(nonce.into(), Payload { msg: ciphertext, aad: ad })
            .unwrap()
    }

    /// ISO/IEC 7816-4 padding to the Padmé length of max(len + 1, 64).
    pub(super) fn pad(plaintext: &[u8]) -> Vec<u8> {
        let l = (plaintext.len() + 1).max(64);
        let e = l.ilog2();
        let s = e.ilog2() + 1;
        let mask = (1usize << (e - s)) - 1;
        let padded_len = (l + mask) & !mask;
        let mut out = plaintext.to_vec();
        out.push(0x80);
        out.resize(padded_len, 0);
        out
    }

    pub(super) fn check_device(d: &DeviceV) {
        assert_eq!(ed25519_public(&d.device_signing_secret), d.device_key);
        assert_eq!(x25519_public(&d.identity_secret), d.identity_key);
        check_signature(
            &d.device_signing_secret,
            b"hush/identity-key/v1",
            &unhex(&d.identity_key),
            &d.identity_signature,
        );
    }

    fn device_proto(device_key: &str, identity_key: &str, identity_signature: &str) -> proto::DeviceKeys {
        proto::DeviceKeys {
            device_key: unhex(device_key),
            identity_key: unhex(identity_key),
            identity_signature: unhex(identity_signature),
        }
    }

    fn check_signed_prekey(device: &DeviceV, spk: &SignedPrekeyV) {
        assert_eq!(x25519_public(&spk.secret), spk.public_key);
        let message = [&spk.id.to_be_bytes()[..], &unhex(&spk.public_key)].concat();
        check_signature(&device.device_signing_secret, b"hush/signed-prekey/v1", &message, &spk.signature);
        let p =
            proto::SignedPrekey { id: spk.id, public_key: unhex(&spk.public_key), signature: unhex(&spk.signature) };
        assert_eq!(h(&p.encode_to_vec()), spk.encoded);
    }

    fn check_kem_prekey(device: &DeviceV, kem: &KemPrekeyV) {
        let seed: [u8; 64] = unhex(&kem.seed).try_into().unwrap();
        let pair = mlkem768::generate_key_pair(seed);
        assert_eq!(h(pair.pk()), kem.public_key);
        assert_eq!(h(&Sha256::digest(pair.pk())), kem.public_key_sha256);
        let message = [&kem.id.to_be_bytes()[..], &[u8::from(kem.last_resort)], pair.pk()].concat();
        check_signature(&device.device_signing_secret, b"hush/kem-prekey/v1", &message, &kem.signature);
    }

    #[test]
    fn identity_vectors_verify_independently() {
        let file: IdentityFile = committed("identity.json", generate_identity);
        assert_eq!(file.version, 1);
        assert_eq!(file.cases.len(), 3);
        // Anchors to the RFCs' own examples.
        let rfc = &file.cases[0];
        assert_eq!(rfc.device.device_key, RFC8032_TEST1_PUBLIC);
        assert_eq!(rfc.device.identity_key, RFC7748_ALICE_PUBLIC);
        assert_eq!(rfc.signed_prekey.public_key, RFC7748_BOB_PUBLIC);
        for case in &file.cases {
            check_device(&case.device);
            let d = &case.device;
            assert_eq!(
                h(&device_proto(&d.device_key, &d.identity_key, &d.identity_signature).encode_to_vec()),
                case.device_keys_encoded
            );
            check_signed_prekey(&case.device, &case.signed_prekey);
            check_kem_prekey(&case.device, &case.kem_prekey);
        }
    }

    /// The responder's keys (AD) and initial ratchet keys from SK, and the first ratchet step.
    struct FirstChain {
        header_key: Vec<u8>,
        chain_key: Vec<u8>,
    }

    fn first_chain(sk: &[u8], alice_ratchet_secret: &str, bob_ratchet_key: &str) -> FirstChain {
        let init = hkdf(&[0u8; 32], sk, b"hush/ratchet/v1/init", 96);
        let dh = unhex(&dh(alice_ratchet_secret, bob_ratchet_key));
        let step = hkdf(&init[..32], &dh, b"hush/ratchet/v1", 96);
        FirstChain { header_key: init[32..64].to_vec(), chain_key: step[32..64].to_vec() }
    }

    #[test]
    fn pqxdh_vectors_verify_independently() {
        let file: PqxdhFile = committed("pqxdh.json", generate_pqxdh);
        assert_eq!(file.version, 1);
        assert_eq!(
            file.cases.iter().map(|c| (c.post_quantum, c.dh4.is_some())).collect::<Vec<_>>(),
            [(true, true), (true, false), (false, true)]
        );
        for c in &file.cases {
            check_device(&c.initiator);
            check_device(&c.responder);
            check_signed_prekey(&c.responder, &c.signed_prekey);
            assert_eq!(x25519_public(&c.base_secret), c.base_key);
            let spk = &c.signed_prekey.public_key;
            assert_eq!(dh(&c.initiator.identity_secret, spk), c.dh1);
            assert_eq!(dh(&c.signed_prekey.secret, &c.initiator.identity_key), c.dh1);
            assert_eq!(dh(&c.base_secret, &c.responder.identity_key), c.dh2);
            assert_eq!(dh(&c.responder.identity_secret, &c.base_key), c.dh2);
            assert_eq!(dh(&c.base_secret, spk), c.dh3);
            assert_eq!(dh(&c.signed_prekey.secret, &c.base_key), c.dh3);
            match &c.one_time_prekey {
                Some(otk) => {
                    assert_eq!(x25519_public(&otk.secret), otk.public_key);
                    assert_eq!(c.dh4.as_deref(), Some(dh(&c.base_secret, &otk.public_key).as_str()));
                    assert_eq!(c.dh4.as_deref(), Some(dh(&otk.secret, &c.base_key).as_str()));
                }
                None => assert!(c.dh4.is_none()),
            }
            let mut ikm = vec![0xFF; 32];
            for d in [Some(&c.dh1), Some(&c.dh2), Some(&c.dh3), c.dh4.as_ref()].into_iter().flatten() {
                ikm.extend(unhex(d));
            }
            if let Some(kem) = &c.kem_prekey {
                assert!(c.post_quantum);
                check_kem_prekey(&c.responder, kem);
                let pair = mlkem768::generate_key_pair(unhex(&kem.seed).try_into().unwrap());
                let randomness = a32(c.kem_encapsulation_randomness.as_deref().unwrap());
                let (ct, ss) = mlkem768::encapsulate(pair.public_key(), randomness);
                assert_eq!(Some(h(ct.as_slice())), c.kem_ciphertext);
                assert_eq!(Some(h(&ss)), c.kem_shared_secret);
                assert_eq!(mlkem768::decapsulate(pair.private_key(), &ct), ss);
                ikm.extend_from_slice(&ss);
                assert_eq!(c.hkdf_info, "hush/pqxdh/v1/x25519/mlkem768");
            } else {
                assert!(!c.post_quantum);
                assert!(c.kem_ciphertext.is_none() && c.kem_shared_secret.is_none());
                assert_eq!(c.hkdf_info, "hush/x3dh/v1/x25519");
            }
            assert_eq!(h(&ikm), c.hkdf_ikm);
            assert_eq!(c.hkdf_salt, h(&[0u8; 32]));
            assert_eq!(h(&hkdf(&[0u8; 32], &ikm, c.hkdf_info.as_bytes(), 32)), c.sk);
            let (i, r) = (&c.initiator, &c.responder);
            assert_eq!(
                c.associated_data,
                [&i.device_key, &i.identity_key, &r.device_key, &r.identity_key].map(|s| s.as_str()).concat()
            );

            // The bundle the initiator fetched.
            let bundle = proto::PrekeyBundle {
                version: 1,
                device: Some(device_proto(&r.device_key, &r.identity_key, &r.identity_signature)),
                signed_prekey: Some(proto::SignedPrekey {
                    id: c.signed_prekey.id,
                    public_key: unhex(spk),
                    signature: unhex(&c.signed_prekey.signature),
                }),
                one_time_prekey: c
                    .one_time_prekey
                    .as_ref()
                    .map(|k| proto::OneTimePrekey { id: k.id, public_key: unhex(&k.public_key) }),
                kem_prekey: c.kem_prekey.as_ref().map(|k| proto::KemPrekey {
                    id: k.id,
                    public_key: unhex(&k.public_key),
                    last_resort: k.last_resort,
                    signature: unhex(&k.signature),
                }),
            };
            assert_eq!(h(&bundle.encode_to_vec()), c.prekey_bundle);

            // The first message: a PrekeyMessage around the first ratchet message.
            let m = &c.first_message;
            assert_eq!(x25519_public(&m.ratchet_secret), m.ratchet_key);
            let wire = proto::SessionMessage::decode(unhex(&m.session_message).as_slice()).unwrap();
            assert_eq!(wire.version, 1);
            let Some(proto::session_message::Body::Prekey(p)) = wire.body.clone() else {
                panic!("not a prekey message")
            };
            let rm = p.message.clone().unwrap();
            let ad = unhex(&c.associated_data);
            let chain = first_chain(&unhex(&c.sk), &m.ratchet_secret, spk);
            let header = open(&chain.header_key, &rm.header_nonce, &ad, &rm.encrypted_header);
            let expected_header = [&[1u8][..], &unhex(&m.ratchet_key), &[0; 8]].concat();
            assert_eq!(header, expected_header);
            let mk = hmac(&chain.chain_key, 0x01);
            let aead = hkdf(&[0u8; 32], &mk, b"hush/ratchet/v1/message", 44);
            let body_ad = [&ad[..], &rm.header_nonce, &rm.encrypted_header].concat();
            let padded = open(&aead[..32], &aead[32..], &body_ad, &rm.ciphertext);
            assert_eq!(padded, pad(&unhex(&m.plaintext)));
            // Re-encode from the vector's values: the same bytes.
            let expected = proto::SessionMessage {
                version: 1,
                body: Some(proto::session_message::Body::Prekey(proto::PrekeyMessage {
                    version: 1,
                    initiator: Some(device_proto(&i.device_key, &i.identity_key, &i.identity_signature)),
                    base_key: unhex(&c.base_key),
                    signed_prekey_id: c.signed_prekey.id,
                    one_time_prekey_id: c.one_time_prekey.as_ref().map(|k| k.id),
                    kem_prekey_id: c.kem_prekey.as_ref().map(|k| k.id),
                    kem_ciphertext: c.kem_ciphertext.as_deref().map(unhex).unwrap_or_default(),
                    message: Some(proto::RatchetMessage {
                        version: 1,
                        header_nonce: unhex(&m.header_nonce),
                        encrypted_header: rm.encrypted_header.clone(),
                        ciphertext: rm.ciphertext.clone(),
                    }),
                })),
            };
            assert_eq!(h(&expected.encode_to_vec()), m.session_message);
        }
    }

    #[test]
    fn ratchet_vectors_verify_independently() {
        let f: RatchetFile = committed("ratchet.json", generate_ratchet);
        assert_eq!(f.version, 1);
        let ad = [&f.alice.device_key, &f.alice.identity_key, &f.bob.device_key, &f.bob.identity_key]
            .map(|s| s.as_str())
            .concat();
        assert_eq!(f.associated_data, ad);
        let ad = unhex(&ad);
        assert_eq!(x25519_public(&f.bob_signed_prekey_secret), f.bob_signed_prekey);
        let init = hkdf(&[0u8; 32], &unhex(&f.sk), b"hush/ratchet/v1/init", 96);
        assert_eq!(h(&init[..32]), f.initial.root_key);
        assert_eq!(h(&init[32..64]), f.initial.alice_header_key);
        assert_eq!(h(&init[64..]), f.initial.bob_next_header_key);

        for (n, e) in f.epochs.iter().enumerate() {
            assert_eq!(e.epoch as usize, n);
            assert_eq!(e.sender, if n % 2 == 0 { "alice" } else { "bob" });
            // Each side's ratchet key meets the other's newest one.
            let receiver_secret = match n {
                0 => &f.bob_signed_prekey_secret,
                _ => &f.epochs[n - 1].sender_ratchet_secret,
            };
            assert_eq!(&e.receiver_ratchet_secret, receiver_secret);
            assert_eq!(x25519_public(&e.sender_ratchet_secret), e.sender_ratchet_key);
            assert_eq!(x25519_public(&e.receiver_ratchet_secret), e.receiver_ratchet_key);
            assert_eq!(dh(&e.sender_ratchet_secret, &e.receiver_ratchet_key), e.dh);
            assert_eq!(dh(&e.receiver_ratchet_secret, &e.sender_ratchet_key), e.dh);
            let root_in = if n == 0 { &f.initial.root_key } else { &f.epochs[n - 1].root_key_out };
            assert_eq!(&e.root_key_in, root_in);
            let out = hkdf(&unhex(&e.root_key_in), &unhex(&e.dh), b"hush/ratchet/v1", 96);
            assert_eq!(h(&out[..32]), e.root_key_out);
            assert_eq!(h(&out[32..64]), e.chain_key);
            assert_eq!(h(&out[64..]), e.next_header_key);
            let header_key = match n {
                0 => &f.initial.alice_header_key,
                1 => &f.initial.bob_next_header_key,
                _ => &f.epochs[n - 2].next_header_key,
            };
            assert_eq!(&e.header_key, header_key);
        }

        let mut padding_errors = Vec::new();
        for (i, m) in f.messages.iter().enumerate() {
            let e = &f.epochs[m.epoch as usize];
            assert_eq!(m.sender, e.sender);
            let earlier = &f.messages[..i];
            let counter = earlier.iter().filter(|x| x.epoch == m.epoch).count() as u32;
            let previous_counter =
                m.epoch.checked_sub(2).map_or(0, |prev| earlier.iter().filter(|x| x.epoch == prev).count() as u32);
            assert_eq!((m.counter, m.previous_counter), (counter, previous_counter));
            let mut ck = unhex(&e.chain_key);
            for _ in 0..m.counter {
                ck = hmac(&ck, 0x02);
            }
            assert_eq!(h(&ck), m.chain_key);
            let mk = hmac(&ck, 0x01);
            assert_eq!(h(&mk), m.message_key);
            let aead = hkdf(&[0u8; 32], &mk, b"hush/ratchet/v1/message", 44);
            assert_eq!((h(&aead[..32]), h(&aead[32..])), (m.aead_key.clone(), m.aead_nonce.clone()));

            assert_eq!(m.header_ratchet_key, e.sender_ratchet_key);
            let header = [
                &[1u8][..],
                &unhex(&m.header_ratchet_key),
                &m.previous_counter.to_be_bytes(),
                &m.counter.to_be_bytes(),
            ]
            .concat();
            assert_eq!(h(&header), m.header_plaintext);
            assert_eq!(m.header_key, e.header_key);
            let nonce = unhex(&m.header_nonce);
            let encrypted_header = seal(&unhex(&m.header_key), &nonce, &ad, &header);
            assert_eq!(h(&encrypted_header), m.encrypted_header);

            // Padding is checked last (below) so one wrong length does not hide the other checks.
            let padded = unhex(&m.padded_plaintext);
            let expected_padding = pad(&unhex(&m.plaintext));
            if padded != expected_padding {
                padding_errors.push(format!(
                    "message {i}: {} plaintext bytes padded to {}, Padmé gives {}",
                    m.plaintext.len() / 2,
                    padded.len(),
                    expected_padding.len()
                ));
            }
            let body_ad = [&ad[..], &nonce, &encrypted_header].concat();
            assert_eq!(h(&body_ad), m.body_associated_data);
            let ciphertext = seal(&aead[..32], &aead[32..], &body_ad, &padded);
            assert_eq!(h(&ciphertext), m.ciphertext);

            let rm = proto::RatchetMessage { version: 1, header_nonce: nonce, encrypted_header, ciphertext };
            assert_eq!(h(&rm.encode_to_vec()), m.ratchet_message);
            let sm = proto::SessionMessage { version: 1, body: Some(proto::session_message::Body::Ratchet(rm)) };
            assert_eq!(h(&sm.encode_to_vec()), m.session_message);
        }
        assert!(padding_errors.is_empty(), "padding differs from Padmé (test-vectors/README.md): {padding_errors:?}");
        let senders: Vec<(&str, u32)> = f.messages.iter().map(|m| (m.sender.as_str(), m.epoch)).collect();
        assert_eq!(senders, [("alice", 0), ("alice", 0), ("alice", 0), ("bob", 1), ("bob", 1), ("alice", 2)]);
    }

    fn fingerprint(user_key: &[u8], iterations: u32) -> Vec<u8> {
        let mut hash =
            Sha512::new().chain_update([0x00, 0x01]).chain_update(user_key).chain_update(user_key).finalize();
        for _ in 1..iterations {
            hash = Sha512::new().chain_update(hash).chain_update(user_key).finalize();
        }
        hash.to_vec()
    }

    fn digits(fp: &[u8]) -> String {
        fp.chunks(5)
            .take(6)
            .map(|c| format!("{:05}", c.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)) % 100_000))
            .collect()
    }

    #[test]
    fn safety_number_vectors_verify_independently() {
        let f: SafetyNumberFile = committed("safety_number.json", generate_safety_number);
        assert_eq!((f.version, f.iterations), (1, 5200));
        let mut names: Vec<&str> = f.cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["user_a_sorts_first", "user_b_sorts_first"]);
        for c in &f.cases {
            assert_eq!(ed25519_public(&c.user_a_secret), c.user_a_key);
            assert_eq!(ed25519_public(&c.user_b_secret), c.user_b_key);
            let fa = fingerprint(&unhex(&c.user_a_key), f.iterations);
            let fb = fingerprint(&unhex(&c.user_b_key), f.iterations);
            let a_first = fa[..32] <= fb[..32];
            assert_eq!(c.name, if a_first { "user_a_sorts_first" } else { "user_b_sorts_first" });
            let (lo, hi) = if a_first { (fa, fb) } else { (fb, fa) };
            assert_eq!(c.digits, digits(&lo) + &digits(&hi));
            let groups: Vec<&str> = (0..12).map(|g| &c.digits[g * 5..g * 5 + 5]).collect();
            assert_eq!(c.display, groups.join(" "));
            assert_eq!(c.qr_payload, h(&[&[1u8][..], &lo[..32], &hi[..32]].concat()));
        }
    }

    #[test]
    fn device_list_vectors_verify_independently() {
        let f: DeviceListFile = committed("device_list.json", generate_device_list);
        assert_eq!(f.version, 1);
        for c in &f.cases {
            assert_eq!(ed25519_public(&c.user_secret), c.user_key);
            for d in &c.devices {
                let key = ed25519_dalek::VerifyingKey::from_bytes(&a32(&d.device_key)).unwrap();
                let message = [&b"hush/identity-key/v1"[..], &unhex(&d.identity_key)].concat();
                key.verify_strict(&message, &Signature::from_slice(&unhex(&d.identity_signature)).unwrap()).unwrap();
            }
            let list = proto::DeviceList {
                version: 1,
                user_key: unhex(&c.user_key),
                list_version: c.list_version,
                devices: c
                    .devices
                    .iter()
                    .map(|d| device_proto(&d.device_key, &d.identity_key, &d.identity_signature))
                    .collect(),
                created_at: c.created_at,
            };
            assert_eq!(h(&list.encode_to_vec()), c.device_list);
            check_signature(&c.user_secret, b"hush/device-list/v1", &unhex(&c.device_list), &c.signature);
            let signed = proto::SignedDeviceList {
                version: 1,
                device_list: unhex(&c.device_list),
                signature: unhex(&c.signature),
            };
            assert_eq!(h(&signed.encode_to_vec()), c.signed_device_list);
        }
    }
}
