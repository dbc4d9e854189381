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
//!
//! Each file has its own module (`identity`, `pqxdh`, `ratchet`, `safety_number`, `device_list`,
//! `sealed_sender`, `group`, `group_log`, `mlkem768`) with its JSON types, its generator and both tests; this
//! module holds what they share: the RNGs, hex and file helpers, the types and generators of more
//! than one file, and the primitive-crate helpers of the independent checks.

use std::path::PathBuf;

use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::DeviceKeys;
use crate::crypto::aead;
use crate::crypto::kem::KemSecret;
use crate::crypto::keys::{KeyPair, SigningKeyPair, random_array};
use crate::identity::{DeviceIdentity, UserIdentity};
use crate::prekeys::{KemPrekey, SignedPrekey};
use crate::ratchet::padding;
use crate::wire::proto;

const FORMAT_VERSION: u32 = 1;

/// `identity.json` (device identities, signed prekeys, signed KEM prekeys), in its own file.
mod identity;

/// `pqxdh.json` (PQXDH and classical X3DH session setup, the first message), in its own file.
mod pqxdh;

/// `ratchet.json` (Double Ratchet epochs and messages with header encryption), in its own file.
mod ratchet;

/// `safety_number.json` (safety numbers and QR payloads of two user keys), in its own file.
mod safety_number;

/// `device_list.json` (signed device lists), in its own file.
mod device_list;

/// `sealed_sender.json` (sealed-sender envelopes, delivery tokens), in its own file.
mod sealed_sender;

/// `group.json` (sender-key messages, a signed group create), in its own file.
mod group;

/// `group_log.json` (a group's relay-sequenced log: epoch keys, sealed entries, appends,
/// transcript hashes), in its own file.
mod group_log;

/// `mlkem768.json` (ML-KEM-768 from a seed, encapsulation, implicit rejection), in its own file.
mod mlkem768;

/// `pq_ratchet.json` (one full epoch of the triple ratchet, a version-2 message), in its own file.
mod pq_ratchet;

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
struct KemPrekeyV {
    id: u32,
    last_resort: bool,
    seed: String,
    public_key: String,
    public_key_sha256: String,
    signature: String,
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
// ---------------------------------------------------------------------------------------------
// Independent checks: the committed values against the primitives, without hush-core's code.
// The helpers every file's `independent` module shares; each file's test lives in its module.

mod independent {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use ed25519_dalek::{Signature, Signer, SigningKey};
    use hmac::{Hmac, Mac};
    use libcrux_ml_kem::mlkem768;
    use prost::Message;
    use sha2::{Digest, Sha256};
    use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};

    use super::*;

    /// The committed file; when rewriting, written first so this test never races the writer.
    pub(super) fn committed<T: DeserializeOwned, G: Serialize>(name: &str, generate: fn() -> G) -> T {
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

    pub(super) fn device_proto(device_key: &str, identity_key: &str, identity_signature: &str) -> proto::DeviceKeys {
        proto::DeviceKeys {
            device_key: unhex(device_key),
            identity_key: unhex(identity_key),
            identity_signature: unhex(identity_signature),
        }
    }

    pub(super) fn check_signed_prekey(device: &DeviceV, spk: &SignedPrekeyV) {
        assert_eq!(x25519_public(&spk.secret), spk.public_key);
        let message = [&spk.id.to_be_bytes()[..], &unhex(&spk.public_key)].concat();
        check_signature(&device.device_signing_secret, b"hush/signed-prekey/v1", &message, &spk.signature);
        let p =
            proto::SignedPrekey { id: spk.id, public_key: unhex(&spk.public_key), signature: unhex(&spk.signature) };
        assert_eq!(h(&p.encode_to_vec()), spk.encoded);
    }

    pub(super) fn check_kem_prekey(device: &DeviceV, kem: &KemPrekeyV) {
        let seed: [u8; 64] = unhex(&kem.seed).try_into().unwrap();
        let pair = mlkem768::generate_key_pair(seed);
        assert_eq!(h(pair.pk()), kem.public_key);
        assert_eq!(h(&Sha256::digest(pair.pk())), kem.public_key_sha256);
        let message = [&kem.id.to_be_bytes()[..], &[u8::from(kem.last_resort)], pair.pk()].concat();
        check_signature(&device.device_signing_secret, b"hush/kem-prekey/v1", &message, &kem.signature);
    }
}
