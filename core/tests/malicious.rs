//! Malicious peers and relays: prekey bundles with bad signatures or non-contributory X25519 keys,
//! crafted, forged and replayed first messages, messages from the wrong device, oversized and
//! garbage bytes. Each must fail with its typed error, never panic, and change nothing: encoded
//! session records and accounts compare equal before and after.

mod common;

use common::{PQ, Pair, Snapshot, low_order_points, rng};
use ed25519_dalek::Verifier;
use hush_core::limits::{MAX_BUNDLE_BYTES, MAX_SEEN_BASE_KEYS, MAX_SESSION_MESSAGE_BYTES};
use hush_core::wire::proto;
use hush_core::{
    Account, DeviceIdentity, DeviceKeys, Error, PrekeyBundle, PrekeyKind, SessionMessage, SessionRecord,
    SigningPublicKey,
};
use proptest::prelude::*;
use prost::Message;
use rand_chacha::ChaCha20Rng;

/// Signature contexts, as documented in core/proto/wire.proto.
const IDENTITY_KEY_CONTEXT: &[u8] = b"hush/identity-key/v1";
const SIGNED_PREKEY_CONTEXT: &[u8] = b"hush/signed-prekey/v1";

fn device_keys_proto(keys: &DeviceKeys) -> proto::DeviceKeys {
    proto::DeviceKeys {
        device_key: keys.device_key().to_bytes().to_vec(),
        identity_key: keys.identity_key().to_bytes().to_vec(),
        identity_signature: keys.signature().to_vec(),
    }
}

/// `device`'s keys but with `identity_key` in place of its own, properly signed by its device key.
fn signed_device_keys(device: &DeviceIdentity, identity_key: [u8; 32]) -> proto::DeviceKeys {
    proto::DeviceKeys {
        device_key: device.device_key().to_bytes().to_vec(),
        identity_key: identity_key.to_vec(),
        identity_signature: device.sign(IDENTITY_KEY_CONTEXT, &identity_key).to_vec(),
    }
}

/// A signed prekey for `key`, properly signed by `device`.
fn signed_prekey(device: &DeviceIdentity, id: u32, key: [u8; 32]) -> proto::SignedPrekey {
    let mut signed = id.to_be_bytes().to_vec();
    signed.extend_from_slice(&key);
    proto::SignedPrekey {
        id,
        public_key: key.to_vec(),
        signature: device.sign(SIGNED_PREKEY_CONTEXT, &signed).to_vec(),
    }
}

fn bundle_proto(bundle: &PrekeyBundle) -> proto::PrekeyBundle {
    proto::PrekeyBundle::decode(bundle.to_bytes().as_slice()).unwrap()
}

/// A responder with one one-time prekey of each kind, and the bundle naming both.
fn responder(rng: &mut ChaCha20Rng) -> (Account, PrekeyBundle) {
    let mut bob = Account::new(rng);
    let otk = bob.generate_one_time_prekeys(rng, 1).unwrap();
    let kem = bob.generate_kem_prekeys(rng, 1).unwrap();
    let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
    (bob, bundle)
}

/// Re-encodes a session message after `edit` changed its prekey body.
fn edit_prekey_message(message: &[u8], edit: impl FnOnce(&mut proto::PrekeyMessage)) -> Vec<u8> {
    let mut m = proto::SessionMessage::decode(message).unwrap();
    let Some(proto::session_message::Body::Prekey(prekey)) = m.body.as_mut() else { panic!("not a prekey message") };
    edit(prekey);
    m.encode_to_vec()
}

/// Whether `point` is the canonical encoding of an X25519 u-coordinate: bit 255 clear, below p.
fn canonical(point: &[u8; 32]) -> bool {
    let at_least_p = point[0] >= 0xed && point[1..31].iter().all(|&b| b == 0xff) && point[31] == 0x7f;
    point[31] & 0x80 == 0 && !at_least_p
}

/// A low-order key must be refused as non-contributory; a non-canonical encoding of one may
/// instead be refused earlier, as malformed.
fn assert_refused_as_low_order<T: std::fmt::Debug>(result: hush_core::Result<T>, point: &[u8; 32], context: &str) {
    let hex = hex::encode(point);
    match result {
        Err(Error::NonContributoryKey) => {}
        Err(Error::Malformed { .. }) if !canonical(point) => {}
        other => panic!("{context} {hex}: {other:?}"),
    }
}

fn prekey_counts(account: &Account) -> (usize, usize) {
    (account.one_time_prekey_count(), account.kem_one_time_count())
}

// ---------------------------------------------------------------------------------------------
// Prekey bundles

#[test]
fn bundle_signatures_are_verified() {
    let mut rng = rng(100);
    let (bob, bundle) = responder(&mut rng);
    let (mallory, mallory_bundle) = responder(&mut rng);
    let good = bundle_proto(&bundle);
    assert_eq!(PrekeyBundle::from_bytes(&good.encode_to_vec()).unwrap(), bundle);
    let parse = |edit: &dyn Fn(&mut proto::PrekeyBundle)| {
        let mut p = good.clone();
        edit(&mut p);
        PrekeyBundle::from_bytes(&p.encode_to_vec())
    };
    let bad = |what| Err(Error::BadSignature { what });
    fn spk(p: &mut proto::PrekeyBundle) -> &mut proto::SignedPrekey {
        p.signed_prekey.as_mut().unwrap()
    }
    fn kem(p: &mut proto::PrekeyBundle) -> &mut proto::KemPrekey {
        p.kem_prekey.as_mut().unwrap()
    }
    fn device(p: &mut proto::PrekeyBundle) -> &mut proto::DeviceKeys {
        p.device.as_mut().unwrap()
    }

    // Signed prekey: the signature covers the id and the key.
    assert_eq!(parse(&|p| spk(p).signature[0] ^= 1), bad("signed prekey"));
    assert_eq!(parse(&|p| spk(p).signature[40] ^= 0x20), bad("signed prekey"));
    assert_eq!(parse(&|p| spk(p).public_key[7] ^= 1), bad("signed prekey"));
    assert_eq!(parse(&|p| spk(p).id += 100), bad("signed prekey"));
    assert_eq!(parse(&|p| spk(p).signature.truncate(63)), bad("signed prekey"));
    // A genuine signed prekey of another device.
    assert_eq!(parse(&|p| p.signed_prekey = bundle_proto(&mallory_bundle).signed_prekey), bad("signed prekey"));

    // ML-KEM prekey: signature, id and last-resort flag.
    assert_eq!(parse(&|p| kem(p).signature[3] ^= 0x80), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| kem(p).signature[63] ^= 0x01), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| kem(p).id += 100), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| kem(p).last_resort = !kem(p).last_resort), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| kem(p).signature.clear()), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| p.kem_prekey = bundle_proto(&mallory_bundle).kem_prekey), bad("ML-KEM prekey"));

    // Identity key: the device key's signature over it.
    assert_eq!(parse(&|p| device(p).identity_signature[10] ^= 4), bad("identity key"));
    assert_eq!(
        parse(&|p| device(p).identity_key = mallory.device_keys().identity_key().to_bytes().to_vec()),
        bad("identity key")
    );
    // Mallory's whole (self-consistent) device keys under Bob's prekey signatures.
    assert_eq!(parse(&|p| p.device = Some(device_keys_proto(&mallory.device_keys()))), bad("signed prekey"));

    // Malleability: S + ℓ is the same signature to a lax verifier, refused by a strict one.
    let malleated = |signature: &mut Vec<u8>| {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in signature[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
    };
    assert_eq!(parse(&|p| malleated(&mut spk(p).signature)), bad("signed prekey"));
    assert_eq!(parse(&|p| malleated(&mut kem(p).signature)), bad("ML-KEM prekey"));
    assert_eq!(parse(&|p| malleated(&mut device(p).identity_signature)), bad("identity key"));

    // The helpers below re-sign correctly: a re-signed genuine bundle parses to the same bundle.
    let resigned = parse(&|p| {
        p.device = Some(signed_device_keys(bob.identity(), bundle.device.identity_key().to_bytes()));
        p.signed_prekey =
            Some(signed_prekey(bob.identity(), bundle.signed_prekey.id, bundle.signed_prekey.public_key.to_bytes()));
    });
    assert_eq!(resigned, Ok(bundle));
}

#[test]
fn small_order_device_key_is_refused() {
    // The neutral point as Ed25519 key with the signature (R = neutral point, S = 0) satisfies the
    // verification equation for every message; only strict verification refuses it.
    let mut neutral = [0u8; 32];
    neutral[0] = 1;
    let mut weak = [0u8; 64];
    weak[0] = 1;
    let lax = ed25519_dalek::VerifyingKey::from_bytes(&neutral).unwrap();
    assert!(lax.verify(b"anything at all", &ed25519_dalek::Signature::from_bytes(&weak)).is_ok());

    let mut rng = rng(101);
    let (_bob, bundle) = responder(&mut rng);
    let mut p = bundle_proto(&bundle);
    p.device.as_mut().unwrap().device_key = neutral.to_vec();
    p.device.as_mut().unwrap().identity_signature = weak.to_vec();
    p.signed_prekey.as_mut().unwrap().signature = weak.to_vec();
    p.kem_prekey.as_mut().unwrap().signature = weak.to_vec();
    assert_eq!(PrekeyBundle::from_bytes(&p.encode_to_vec()), Err(Error::BadSignature { what: "identity key" }));
    let key = SigningPublicKey::from_slice(&neutral, "device key").unwrap();
    assert_eq!(
        DeviceKeys::new(key, bundle.device.identity_key(), &weak),
        Err(Error::BadSignature { what: "identity key" })
    );
}

#[test]
fn low_order_points_are_low_order() {
    // The test data itself: X25519 with any clamped scalar gives all zeros for each point.
    let mut rng = rng(102);
    for point in low_order_points() {
        let secret = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(point));
        assert_eq!(shared.to_bytes(), [0; 32], "{}", hex::encode(point));
        assert!(!shared.was_contributory());
    }
}

type BundleEdit<'a> = dyn Fn(&mut proto::PrekeyBundle) + 'a;

#[test]
fn non_contributory_bundle_keys_are_refused_at_initiate() {
    let mut rng = rng(103);
    let (bob, bundle) = responder(&mut rng);
    let alice = Account::new(&mut rng);
    let good = bundle_proto(&bundle);
    // Alice already has a session with Bob: a refused bundle must not replace or archive it.
    let mut a = SessionRecord::new();
    a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
    let before = Snapshot::of(&a, &alice);

    for point in low_order_points() {
        let hex = hex::encode(point);
        let forged: [(&str, Box<BundleEdit>); 3] = [
            (
                "signed prekey",
                Box::new(|p| p.signed_prekey = Some(signed_prekey(bob.identity(), bundle.signed_prekey.id, point))),
            ),
            ("one-time prekey", Box::new(|p| p.one_time_prekey.as_mut().unwrap().public_key = point.to_vec())),
            ("identity key", Box::new(|p| p.device = Some(signed_device_keys(bob.identity(), point)))),
        ];
        for (what, edit) in forged {
            let mut p = good.clone();
            edit(&mut p);
            // Every signature verifies: only the X25519 check can catch the key (or, for a
            // non-canonical encoding, the decoder).
            let forged = match PrekeyBundle::from_bytes(&p.encode_to_vec()) {
                Ok(forged) => forged,
                Err(e) => {
                    assert_refused_as_low_order::<()>(Err(e), &point, what);
                    continue;
                }
            };
            let mut fresh = SessionRecord::new();
            assert_refused_as_low_order(fresh.initiate(&mut rng, alice.identity(), &forged, PQ), &point, what);
            assert!(!fresh.has_session());
            // (A bundle with another identity key is another peer: `a` refuses it before any DH.)
            if what != "identity key" {
                assert_refused_as_low_order(a.initiate(&mut rng, alice.identity(), &forged, PQ), &point, what);
                assert_eq!(Snapshot::of(&a, &alice), before, "{what} {hex}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Crafted first messages

#[test]
fn low_order_base_key_is_refused() {
    let mut p = Pair::new(104);
    let original = p.a_send(b"hello");
    let before = p.bob_state();
    for point in low_order_points() {
        let crafted = edit_prekey_message(&original, |m| m.base_key = point.to_vec());
        assert_refused_as_low_order(p.b_recv(&crafted), &point, "base key");
        assert_eq!(p.bob_state(), before);
    }
    assert_eq!(p.b_recv(&original).unwrap(), b"hello");
}

#[test]
fn low_order_initiator_identity_key_is_refused() {
    // Mallory signs a low-order identity key with her own device key and sends it as initiator.
    let mut p = Pair::new(105);
    let mallory = Account::new(&mut p.rng);
    let original = p.a_send(b"hello");
    let before = p.bob_state();
    for point in low_order_points() {
        let crafted =
            edit_prekey_message(&original, |m| m.initiator = Some(signed_device_keys(mallory.identity(), point)));
        assert_refused_as_low_order(p.b_recv(&crafted), &point, "initiator identity key");
        assert_eq!(p.bob_state(), before);
    }
    assert_eq!(p.b_recv(&original).unwrap(), b"hello");
}

#[test]
fn forged_first_message_burns_no_prekeys() {
    let mut p = Pair::new(106);
    // Mallory fetched the same bundle as Alice (same one-time prekeys) and builds her own first
    // message, then claims to be Alice by swapping in Alice's (genuinely signed) device keys.
    let genuine = p.a_send(b"from Alice");
    let SessionMessage::Prekey(alice_first) = SessionMessage::from_bytes(&genuine).unwrap() else { panic!() };
    let mallory = Account::new(&mut p.rng);
    let mut m = SessionRecord::new();
    let ids = proto::SessionMessage::decode(genuine.as_slice()).unwrap();
    let Some(proto::session_message::Body::Prekey(ids)) = ids.body else { panic!() };
    let bundle = p.bob.prekey_bundle(ids.one_time_prekey_id, ids.kem_prekey_id).unwrap();
    m.initiate(&mut p.rng, mallory.identity(), &bundle, PQ).unwrap();
    let mallory_first = m.encrypt(&mut p.rng, b"from \"Alice\"").unwrap();
    let forged = edit_prekey_message(&mallory_first, |m| m.initiator = Some(device_keys_proto(&alice_first.initiator)));

    let counts = prekey_counts(&p.bob);
    assert_eq!(counts, (1, 1));
    let before = p.bob_state();
    assert_eq!(p.b_recv(&forged), Err(Error::DecryptionFailed));
    assert_eq!(p.bob_state(), before);
    assert_eq!(prekey_counts(&p.bob), counts);
    assert!(!p.b.has_session());
    // The one-time prekeys are still there for Alice's genuine message.
    assert_eq!(p.b_recv(&genuine).unwrap(), b"from Alice");
    assert_eq!(prekey_counts(&p.bob), (0, 0));
}

/// Alice's first message to Bob through a bundle with the given one-time prekeys (or none).
fn first_message(p: &mut Pair, one_time: Option<u32>, kem: Option<u32>, text: &[u8]) -> Vec<u8> {
    let bundle = p.bob.prekey_bundle(one_time, kem).unwrap();
    let mut a = SessionRecord::new();
    a.initiate(&mut p.rng, p.alice.identity(), &bundle, PQ).unwrap();
    a.encrypt(&mut p.rng, text).unwrap()
}

/// Bob, with `count` one-time prekeys of each kind, and Alice, with no session yet.
fn pair_with_prekeys(seed: u64, count: usize) -> (Pair, Vec<u32>, Vec<u32>) {
    let mut rng = rng(seed);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let otks = bob.generate_one_time_prekeys(&mut rng, count).unwrap().iter().map(|k| k.id).collect();
    let kems = bob.generate_kem_prekeys(&mut rng, count).unwrap().iter().map(|k| k.id).collect();
    (Pair { alice, bob, a: SessionRecord::new(), b: SessionRecord::new(), rng }, otks, kems)
}

#[test]
fn replayed_first_message_is_refused() {
    // With and without each kind of one-time prekey in the bundle.
    for (seed, one_time, kem_one_time) in
        [(107, true, true), (108, true, false), (109, false, true), (110, false, false)]
    {
        let (mut p, otks, kems) = pair_with_prekeys(seed, 1);
        let bundle = p.bob.prekey_bundle(one_time.then_some(otks[0]), kem_one_time.then_some(kems[0])).unwrap();
        p.a.initiate(&mut p.rng, p.alice.identity(), &bundle, PQ).unwrap();
        let first = p.a_send(b"first");
        assert_eq!(p.b_recv(&first).unwrap(), b"first");
        let case = format!("one-time X25519 {one_time}, one-time ML-KEM {kem_one_time}");

        // Once the session exists, a replay is a duplicate, before and after the session moved on.
        let before = p.bob_state();
        assert_eq!(p.b_recv(&first), Err(Error::DuplicateMessage), "{case}");
        assert_eq!(p.bob_state(), before);
        let reply = p.b_send(b"reply");
        p.a_recv(&reply).unwrap();
        let later = p.a_send(b"later");
        p.b_recv(&later).unwrap();
        let before = p.bob_state();
        assert_eq!(p.b_recv(&first), Err(Error::DuplicateMessage), "{case}");
        assert_eq!(p.bob_state(), before);

        // Bob lost the record (reinstall, restored backup): a replay fails on the one-time prekey it
        // used, which is gone (the ML-KEM one is looked up first); without one, the account
        // remembers the base key. Either way a fresh record does not decrypt it again.
        p.b = SessionRecord::new();
        let before = p.bob_state();
        let expected = match (one_time, kem_one_time) {
            (_, true) => Error::UnknownPrekey { kind: PrekeyKind::Kem, id: kems[0] },
            (true, false) => Error::UnknownPrekey { kind: PrekeyKind::OneTime, id: otks[0] },
            (false, false) => Error::DuplicateMessage,
        };
        assert_eq!(p.b_recv(&first), Err(expected), "{case}");
        assert_eq!(p.bob_state(), before, "{case}");
        assert!(!p.b.has_session());
    }
}

/// Pushes every base key out of Bob's memory of accepted first messages: Mallory, a legitimate
/// contact, opens `MAX_SEEN_BASE_KEYS` sessions with Bob through his public (last-resort) bundle.
fn flush_seen_base_keys(p: &mut Pair) {
    let mallory = Account::new(&mut p.rng);
    let bundle = p.bob.prekey_bundle(None, None).unwrap();
    for _ in 0..MAX_SEEN_BASE_KEYS {
        let mut m = SessionRecord::new();
        m.initiate(&mut p.rng, mallory.identity(), &bundle, PQ).unwrap();
        let first = m.encrypt(&mut p.rng, b"hi").unwrap();
        SessionRecord::new().decrypt(&mut p.rng, &mut p.bob, &first, PQ).unwrap();
    }
}

#[test]
fn replay_of_a_first_message_that_used_a_one_time_prekey_finds_it_used() {
    // The account does not remember these base keys at all: the consumed prekey refuses the replay.
    let (mut p, otks, kems) = pair_with_prekeys(116, 2);
    let both = first_message(&mut p, Some(otks[0]), Some(kems[0]), b"both");
    let x25519_only = first_message(&mut p, Some(otks[1]), None, b"x25519 only");
    let kem_only = first_message(&mut p, None, Some(kems[1]), b"kem only");
    for m in [&both, &x25519_only, &kem_only] {
        SessionRecord::new().decrypt(&mut p.rng, &mut p.bob, m, PQ).unwrap();
    }
    let before = p.bob_state();
    let unknown = |kind, id| Err(Error::UnknownPrekey { kind, id });
    assert_eq!(p.b_recv(&both), unknown(PrekeyKind::Kem, kems[0]));
    assert_eq!(p.b_recv(&x25519_only), unknown(PrekeyKind::OneTime, otks[1]));
    assert_eq!(p.b_recv(&kem_only), unknown(PrekeyKind::Kem, kems[1]));
    assert_eq!(p.bob_state(), before);
}

/// The memory of base keys is bounded; when it is full the signed prekey of its oldest entry is
/// deleted with all its base keys (§6.6), so a replay never outlives its base key's memory: it
/// fails on the deleted signed prekey.
#[test]
fn replay_without_one_time_prekeys_after_the_base_key_memory_is_flushed() {
    let (mut p, _, _) = pair_with_prekeys(117, 0);
    let first = first_message(&mut p, None, None, b"pay Mallory 10 EUR");
    assert_eq!(p.b_recv(&first).unwrap(), b"pay Mallory 10 EUR");
    flush_seen_base_keys(&mut p);
    p.b = SessionRecord::new();
    let before = p.bob_state();
    let result = p.b_recv(&first);
    assert!(result.is_err(), "replay decrypted a second time: {:?}", result.map(String::from_utf8));
    assert_eq!(p.bob_state(), before);
}

#[test]
fn replay_with_the_ignored_base_key_bit_flipped_is_refused() {
    // X25519 ignores bit 255 of a public key, so flipping it in the base key yields the same
    // shared secrets: the replay decrypts unless the responder refuses the second encoding.
    let (mut p, _, _) = pair_with_prekeys(111, 0);
    // The relay had run out of one-time prekeys: only the seen base keys stop a replay.
    let first = first_message(&mut p, None, None, b"pay Mallory 10 EUR");
    assert_eq!(p.b_recv(&first).unwrap(), b"pay Mallory 10 EUR");
    let replay = edit_prekey_message(&first, |m| m.base_key[31] ^= 0x80);

    let before = p.bob_state();
    let result = p.b_recv(&replay);
    assert!(result.is_err(), "replay decrypted a second time: {:?}", result.map(String::from_utf8));
    assert_eq!(p.bob_state(), before);
    // Same with a fresh record.
    p.b = SessionRecord::new();
    let before = p.bob_state();
    let result = p.b_recv(&replay);
    assert!(result.is_err(), "replay decrypted a second time: {:?}", result.map(String::from_utf8));
    assert_eq!(p.bob_state(), before);
}

#[test]
fn message_from_another_device_is_refused() {
    let mut p = Pair::established(112);
    let mut carol = Account::new(&mut p.rng);
    let bundle = p.bob.prekey_bundle(None, None).unwrap();
    let mut c = SessionRecord::new();
    c.initiate(&mut p.rng, carol.identity(), &bundle, PQ).unwrap();
    let from_carol = c.encrypt(&mut p.rng, b"carol").unwrap();

    // Bob's record for Alice refuses Carol's first message.
    let before = p.bob_state();
    assert_eq!(p.b_recv(&from_carol), Err(Error::PeerMismatch));
    assert_eq!(p.bob_state(), before);

    // Alice's device key with another identity key (properly signed by Alice's device key) is
    // another peer too.
    let other_identity = Account::new(&mut p.rng).device_keys().identity_key().to_bytes();
    let alice_renamed = edit_prekey_message(&from_carol, |m| {
        m.initiator = Some(signed_device_keys(p.alice.identity(), other_identity))
    });
    assert_eq!(p.b_recv(&alice_renamed), Err(Error::PeerMismatch));
    assert_eq!(p.bob_state(), before);

    // In Bob's record for Carol, Carol's message is fine and Alice's is the wrong peer.
    let mut bob_carol = SessionRecord::new();
    assert_eq!(bob_carol.decrypt(&mut p.rng, &mut p.bob, &from_carol, PQ).unwrap(), b"carol");
    let from_alice = p.a_send(b"alice");
    let reply = bob_carol.encrypt(&mut p.rng, b"to carol").unwrap();
    assert_eq!(c.decrypt(&mut p.rng, &mut carol, &reply, PQ).unwrap(), b"to carol");
    let carol_ratchet = c.encrypt(&mut p.rng, b"carol again").unwrap();
    assert!(matches!(SessionMessage::from_bytes(&carol_ratchet).unwrap(), SessionMessage::Ratchet(_)));
    // A ratchet message does not say who sent it: in the wrong record it just does not decrypt.
    let before = p.bob_state();
    assert_eq!(p.b_recv(&carol_ratchet), Err(Error::DecryptionFailed));
    assert_eq!(p.bob_state(), before);
    let before = Snapshot::of(&bob_carol, &p.bob);
    assert_eq!(bob_carol.decrypt(&mut p.rng, &mut p.bob, &from_alice, PQ), Err(Error::DecryptionFailed));
    assert_eq!(Snapshot::of(&bob_carol, &p.bob), before);
    assert_eq!(p.b_recv(&from_alice).unwrap(), b"alice");
    assert_eq!(bob_carol.decrypt(&mut p.rng, &mut p.bob, &carol_ratchet, PQ).unwrap(), b"carol again");
}

// ---------------------------------------------------------------------------------------------
// Oversized and garbage input

#[test]
fn oversized_input_is_refused_before_parsing() {
    let mut p = Pair::established(113);
    let before = p.bob_state();
    let max = MAX_SESSION_MESSAGE_BYTES;
    assert_eq!(p.b_recv(&vec![0; max + 1]), Err(Error::TooLarge { what: "session message", size: max + 1, max }));
    // A well-formed ratchet message with a ciphertext over the limit.
    let big = proto::SessionMessage {
        version: 1,
        body: Some(proto::session_message::Body::Ratchet(proto::RatchetMessage {
            version: 1,
            header_nonce: vec![0; 12],
            encrypted_header: vec![0; 57],
            ciphertext: vec![0; max],
        })),
    }
    .encode_to_vec();
    assert!(matches!(p.b_recv(&big), Err(Error::TooLarge { what: "session message", .. })));
    // At the limit, garbage is merely malformed.
    assert!(matches!(p.b_recv(&vec![0; max]), Err(Error::Malformed { .. })));
    assert_eq!(p.bob_state(), before);

    let max = MAX_BUNDLE_BYTES;
    assert_eq!(
        PrekeyBundle::from_bytes(&vec![0; max + 1]),
        Err(Error::TooLarge { what: "prekey bundle", size: max + 1, max })
    );
}

/// Random bytes, mostly exactly `n` long (so parsing succeeds and the cryptography has to refuse
/// them), else empty, one off, or anything up to twice as long.
fn bytes_around(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => Just(n), 1 => Just(0), 1 => n.saturating_sub(1)..=n + 1, 1 => 0..=2 * n]
        .prop_flat_map(|len| proptest::collection::vec(any::<u8>(), len))
}

fn version() -> impl Strategy<Value = u32> {
    prop_oneof![4 => Just(1u32), 1 => any::<u32>()]
}

/// Small ids mostly, so that some name prekeys the responder holds.
fn prekey_id() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..6, any::<u32>()]
}

fn ratchet_message() -> impl Strategy<Value = proto::RatchetMessage> {
    (version(), bytes_around(12), bytes_around(57), bytes_around(80)).prop_map(
        |(version, header_nonce, encrypted_header, ciphertext)| proto::RatchetMessage {
            version,
            header_nonce,
            encrypted_header,
            ciphertext,
        },
    )
}

/// Structurally plausible session messages with arbitrary contents. `alice` is a genuine initiator.
fn session_message(alice: proto::DeviceKeys) -> impl Strategy<Value = proto::SessionMessage> {
    let device_keys = prop_oneof![
        Just(None),
        Just(Some(alice)),
        (bytes_around(32), bytes_around(32), bytes_around(64)).prop_map(|(d, i, s)| Some(proto::DeviceKeys {
            device_key: d,
            identity_key: i,
            identity_signature: s
        })),
    ];
    let prekey = (
        version(),
        device_keys,
        bytes_around(32),
        prekey_id(),
        proptest::option::of(prekey_id()),
        proptest::option::of(prekey_id()),
        prop_oneof![Just(0usize), Just(1088), 0..2000usize]
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        proptest::option::of(ratchet_message()),
    )
        .prop_map(|(version, initiator, base_key, spk, otk, kem, kem_ciphertext, message)| proto::PrekeyMessage {
            version,
            initiator,
            base_key,
            signed_prekey_id: spk,
            one_time_prekey_id: otk,
            kem_prekey_id: kem,
            kem_ciphertext,
            message,
        });
    let body = prop_oneof![
        Just(None),
        prekey.prop_map(|m| Some(proto::session_message::Body::Prekey(m))),
        ratchet_message().prop_map(|m| Some(proto::session_message::Body::Ratchet(m))),
    ];
    (version(), body).prop_map(|(version, body)| proto::SessionMessage { version, body })
}

/// Delivers `bytes` to both sides of an established pair and to a fresh record of Bob's: a typed
/// error each time, and no state changed.
fn assert_refused_everywhere(p: &mut Pair, bytes: &[u8]) {
    let check = |result: hush_core::Result<Vec<u8>>| match result {
        Ok(_) => panic!("garbage accepted"),
        Err(Error::Internal(e)) => panic!("internal error {e}"),
        Err(_) => {}
    };
    let (bob, alice) = (p.bob_state(), p.alice_state());
    check(p.b_recv(bytes));
    check(p.a_recv(bytes));
    let mut fresh = SessionRecord::new();
    check(fresh.decrypt(&mut p.rng, &mut p.bob, bytes, PQ));
    assert!(!fresh.has_session());
    assert_eq!(p.bob_state(), bob);
    assert_eq!(p.alice_state(), alice);
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn garbage_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut p = Pair::established(114);
        assert_refused_everywhere(&mut p, &bytes);
        let bundle = PrekeyBundle::from_bytes(&bytes);
        prop_assert!(bundle.is_err() && !matches!(bundle, Err(Error::Internal(_))));
        prop_assert!(!matches!(SessionRecord::from_bytes(&bytes), Ok(_) | Err(Error::Internal(_))));
        prop_assert!(!matches!(Account::from_bytes(&bytes), Ok(_) | Err(Error::Internal(_))));
    }

    #[test]
    fn crafted_messages_are_refused(
        m in session_message(device_keys_proto(&Pair::new(115).alice.device_keys())),
    ) {
        // Pair::new(115) again: Alice is the genuine initiator the strategy may name.
        let mut p = Pair::new(115);
        let first = p.a_send(b"opens the session");
        let bytes = m.encode_to_vec();
        // Before Bob has a session (Alice still sends prekey messages), and after.
        assert_refused_everywhere(&mut p, &bytes);
        p.b_recv(&first).unwrap();
        let reply = p.b_send(b"reply");
        p.a_recv(&reply).unwrap();
        assert_refused_everywhere(&mut p, &bytes);
    }
}
