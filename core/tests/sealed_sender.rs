//! Sealed sender end to end: envelopes around real session messages and opaque group messages,
//! what the relay can see, tampering, wrong recipients, low-order keys, malformed input, forged
//! sender claims, envelope sizes, and delivery tokens.

mod common;

use common::{Pair, low_order_points, rng};
use hush_core::limits::{MAX_SEALED_ENVELOPE_BYTES, MAX_SEALED_INNER_BYTES, SEALED_ENVELOPE_SIZES};
use hush_core::sealed_sender::{self, proto};
use hush_core::{
    Account, DeliveryToken, DeviceIdentity, Error, InnerKind, SessionRecord, SignedDeviceList, UserIdentity,
};
use prost::Message;

/// Alice (user + device) with a session to Bob, and Alice's signed device list.
struct Setup {
    p: Pair,
    alice_user: UserIdentity,
    alice_list: SignedDeviceList,
}

fn setup(seed: u64) -> Setup {
    let mut p = Pair::new(seed);
    let alice_user = UserIdentity::generate(&mut p.rng);
    let alice_list = SignedDeviceList::sign(&alice_user, 1, &[p.alice.device_keys()], 1_700_000_000).unwrap();
    Setup { p, alice_user, alice_list }
}

impl Setup {
    fn seal(&mut self, kind: InnerKind, inner: &[u8]) -> Vec<u8> {
        let bob = self.p.bob.device_keys();
        sealed_sender::seal(
            &mut self.p.rng,
            &self.alice_user.user_key(),
            &sealed_sender::SenderState::new(1, None),
            self.p.alice.identity(),
            &bob,
            kind,
            inner,
        )
        .unwrap()
    }

    fn open(&self, envelope: &[u8]) -> hush_core::Result<hush_core::Unsealed> {
        sealed_sender::open(self.p.bob.identity(), envelope)
    }
}

fn decode(envelope: &[u8]) -> proto::SealedEnvelope {
    proto::SealedEnvelope::decode(envelope).unwrap()
}

#[test]
fn session_messages_round_trip() {
    let mut s = setup(1);
    // A first (prekey) message, then an answer, then messages on an established session.
    let inner = s.p.a_send(b"hello, sealed");
    let envelope = s.seal(InnerKind::Session, &inner);
    let unsealed = sealed_sender::open(s.p.bob.identity(), &envelope).unwrap();
    assert_eq!(unsealed.sender_user_key, s.alice_user.user_key());
    assert_eq!(unsealed.sender_device, s.p.alice.device_keys());
    assert_eq!(unsealed.kind, InnerKind::Session);
    assert_eq!(unsealed.inner, inner);
    unsealed.check_device_list(&s.alice_list).unwrap();
    unsealed.check_session_peer(&s.p.b).unwrap();
    assert_eq!(s.p.b_recv(&unsealed.inner).unwrap(), b"hello, sealed");

    let reply = s.p.b_send(b"hi");
    s.p.a_recv(&reply).unwrap();
    for i in 0..5 {
        let text = format!("message {i}");
        let inner = s.p.a_send(text.as_bytes());
        let unsealed = {
            let e = s.seal(InnerKind::Session, &inner);
            s.open(&e).unwrap()
        };
        unsealed.check_session_peer(&s.p.b).unwrap();
        assert_eq!(s.p.b_recv(&unsealed.inner).unwrap(), text.as_bytes());
    }
}

#[test]
fn group_messages_round_trip() {
    let mut s = setup(2);
    for len in [1usize, 100, 5_000] {
        let inner: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let unsealed = {
            let e = s.seal(InnerKind::Group, &inner);
            s.open(&e).unwrap()
        };
        assert_eq!(unsealed.kind, InnerKind::Group);
        assert_eq!(unsealed.inner, inner);
        assert_eq!(unsealed.sender_device, s.p.alice.device_keys());
        // The 1:1 check does not apply to group messages.
        assert!(matches!(unsealed.check_session_peer(&s.p.b), Err(Error::Malformed { .. })));
    }
}

#[test]
fn each_envelope_is_fresh() {
    let mut s = setup(3);
    let a = s.seal(InnerKind::Group, b"same");
    let b = s.seal(InnerKind::Group, b"same");
    assert_ne!(decode(&a).ephemeral_key, decode(&b).ephemeral_key);
    assert_ne!(decode(&a).static_ciphertext, decode(&b).static_ciphertext);
    assert_ne!(decode(&a).ciphertext, decode(&b).ciphertext);
}

/// Asserts that `needle` appears in `haystack` neither whole nor as any 8-byte window.
fn assert_absent(haystack: &[u8], needle: &[u8], name: &str) {
    assert!(!haystack.windows(needle.len()).any(|w| w == needle), "{name} appears in the envelope");
    for (i, window) in needle.windows(8).enumerate() {
        assert!(!haystack.windows(8).any(|w| w == window), "bytes {i}..{} of {name} appear in the envelope", i + 8);
    }
}

#[test]
fn relay_sees_no_sender_identity() {
    let mut s = setup(4);
    let keys = s.p.alice.device_keys();
    let secrets: [(&str, Vec<u8>); 4] = [
        ("user key", s.alice_user.user_key().to_bytes().to_vec()),
        ("device key", keys.device_key().to_bytes().to_vec()),
        ("identity key", keys.identity_key().to_bytes().to_vec()),
        ("identity signature", keys.signature().to_vec()),
    ];
    let first = s.p.a_send(b"a first message names its initiator in the clear");
    let mut inners = vec![(InnerKind::Session, first)];
    inners.extend([1usize, 64, 1000].map(|n| (InnerKind::Group, vec![0x5A; n])));
    for (kind, inner) in inners {
        for _ in 0..20 {
            let envelope = s.seal(kind, &inner);
            for (name, bytes) in &secrets {
                assert_absent(&envelope, bytes, name);
            }
            // Not the inner message either (a prekey message carries the initiator's keys).
            if inner.len() >= 8 && inner.iter().any(|&b| b != inner[0]) {
                assert_absent(&envelope, &inner, "inner message");
            }
        }
    }
}

#[test]
fn every_bit_flip_truncation_and_extension_is_refused() {
    let mut s = setup(5);
    let inner = s.p.a_send(b"tamper with me");
    let envelope = s.seal(InnerKind::Session, &inner);
    let bob = s.p.bob.identity();
    assert_eq!(sealed_sender::open(bob, &envelope).unwrap().inner, inner);
    for bit in 0..envelope.len() * 8 {
        let mut bad = envelope.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        match sealed_sender::open(bob, &bad) {
            Ok(_) => panic!("bit {bit} flipped: opened"),
            Err(Error::Internal(e)) => panic!("bit {bit} flipped: internal error {e}"),
            Err(_) => {}
        }
    }
    for len in 0..envelope.len() {
        assert!(sealed_sender::open(bob, &envelope[..len]).is_err(), "truncated to {len}");
    }
    for tail in [&[0u8][..], &[0x08, 0x01], &envelope] {
        let long = [&envelope[..], tail].concat();
        assert!(sealed_sender::open(bob, &long).is_err());
    }
    // Flips that leave the protobuf intact land in the AEADs.
    let p = decode(&envelope);
    for field in [p.ciphertext.clone(), p.static_ciphertext.clone()] {
        for i in 0..field.len() {
            let mut q = p.clone();
            let target = if field == p.ciphertext { &mut q.ciphertext } else { &mut q.static_ciphertext };
            target[i] ^= 0x80;
            assert_eq!(sealed_sender::open(bob, &q.encode_to_vec()), Err(Error::DecryptionFailed));
        }
    }
}

#[test]
fn wrong_recipient_cannot_open() {
    let mut s = setup(6);
    let envelope = s.seal(InnerKind::Group, b"for Bob only");
    let carol = Account::new(&mut s.p.rng);
    assert_eq!(sealed_sender::open(carol.identity(), &envelope), Err(Error::DecryptionFailed));
    assert_eq!(sealed_sender::open(s.p.alice.identity(), &envelope), Err(Error::DecryptionFailed));
    // A device sharing Bob's identity key but not his device key: the AD names the device.
    let mut r = rng(60);
    let other = DeviceIdentity::generate(&mut r);
    let envelope = sealed_sender::seal(
        &mut r,
        &s.alice_user.user_key(),
        &sealed_sender::SenderState::new(1, None),
        s.p.alice.identity(),
        &other.keys(),
        InnerKind::Group,
        b"for other",
    )
    .unwrap();
    assert_eq!(sealed_sender::open(s.p.bob.identity(), &envelope), Err(Error::DecryptionFailed));
}

#[test]
fn low_order_ephemeral_key_is_refused() {
    let mut s = setup(7);
    let p = decode(&s.seal(InnerKind::Group, b"x"));
    for point in low_order_points() {
        let bad = proto::SealedEnvelope { ephemeral_key: point.to_vec(), ..p.clone() }.encode_to_vec();
        // Canonical low-order points fail the contributory check; non-canonical encodings of them
        // are refused earlier, when the key is parsed.
        let result = sealed_sender::open(s.p.bob.identity(), &bad);
        assert!(matches!(result, Err(Error::NonContributoryKey | Error::Malformed { .. })), "{point:02x?}: {result:?}");
    }
}

#[test]
fn malformed_envelopes_give_typed_errors() {
    let mut s = setup(8);
    let p = decode(&s.seal(InnerKind::Group, b"x"));
    let bob = s.p.bob.identity();
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (
            vec![0; MAX_SEALED_ENVELOPE_BYTES + 1],
            Error::TooLarge {
                what: "sealed envelope",
                size: MAX_SEALED_ENVELOPE_BYTES + 1,
                max: MAX_SEALED_ENVELOPE_BYTES,
            },
        ),
        (b"not an envelope at all".to_vec(), Error::Malformed { what: "sealed envelope" }),
        (vec![0xFF; 40], Error::Malformed { what: "sealed envelope" }),
        (
            proto::SealedEnvelope { version: 2, ..p.clone() }.encode_to_vec(),
            Error::UnsupportedVersion { what: "sealed envelope", version: 2 },
        ),
        (
            proto::SealedEnvelope { version: 0, ..p.clone() }.encode_to_vec(),
            Error::UnsupportedVersion { what: "sealed envelope", version: 0 },
        ),
        (Vec::new(), Error::UnsupportedVersion { what: "sealed envelope", version: 0 }),
        (
            proto::SealedEnvelope { ephemeral_key: vec![9; 31], ..p.clone() }.encode_to_vec(),
            Error::Malformed { what: "sealed envelope ephemeral key" },
        ),
        (
            proto::SealedEnvelope { static_ciphertext: p.static_ciphertext[1..].to_vec(), ..p.clone() }.encode_to_vec(),
            Error::Malformed { what: "sealed envelope static ciphertext" },
        ),
        (
            proto::SealedEnvelope { ciphertext: p.ciphertext[..16].to_vec(), ..p.clone() }.encode_to_vec(),
            Error::Malformed { what: "sealed envelope ciphertext" },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(sealed_sender::open(bob, &bytes), Err(expected));
    }
    // A second, non-canonical encoding of a valid envelope (a field repeated).
    let mut twice = p.encode_to_vec();
    twice.extend_from_slice(&[0x08, 0x01]);
    assert_eq!(sealed_sender::open(bob, &twice), Err(Error::Malformed { what: "sealed envelope" }));
}

#[test]
fn inner_message_limits() {
    let mut s = setup(9);
    let bob = s.p.bob.device_keys();
    let (user, alice) = (s.alice_user.user_key(), s.p.alice.identity().clone());
    let too_big = vec![1; MAX_SEALED_INNER_BYTES + 1];
    assert_eq!(
        sealed_sender::seal(
            &mut s.p.rng,
            &user,
            &sealed_sender::SenderState::new(1, None),
            &alice,
            &bob,
            InnerKind::Session,
            &too_big
        ),
        Err(Error::TooLarge {
            what: "sealed inner message",
            size: MAX_SEALED_INNER_BYTES + 1,
            max: MAX_SEALED_INNER_BYTES
        })
    );
    assert_eq!(
        sealed_sender::seal(
            &mut s.p.rng,
            &user,
            &sealed_sender::SenderState::new(1, None),
            &alice,
            &bob,
            InnerKind::Session,
            &[]
        ),
        Err(Error::Malformed { what: "sealed inner message" })
    );
    let biggest = vec![1; MAX_SEALED_INNER_BYTES];
    let envelope = s.seal(InnerKind::Group, &biggest);
    assert!(envelope.len() <= MAX_SEALED_ENVELOPE_BYTES, "{} bytes", envelope.len());
    assert_eq!(sealed_sender::open(s.p.bob.identity(), &envelope).unwrap().inner, biggest);
}

#[test]
fn envelope_sizes_are_only_the_size_classes() {
    let mut s = setup(10);
    let size = |s: &mut Setup, n: usize| s.seal(InnerKind::Group, &vec![7; n]).len();
    // Every inner length up to 700 bytes (receipts, typing, reactions, short texts) gives one size.
    let mut sizes: Vec<usize> = (1..=700).map(|n| size(&mut s, n)).collect();
    sizes.dedup();
    assert_eq!(sizes, [SEALED_ENVELOPE_SIZES[0]], "short messages do not all look alike");
    let mut report = Vec::new();
    for n in [1usize, 100, 700, 1_000, 4_000, 10_000, 50_000, 100_000, MAX_SEALED_INNER_BYTES] {
        let len = size(&mut s, n);
        assert!(SEALED_ENVELOPE_SIZES.contains(&len), "inner {n} -> envelope {len}");
        // The smallest class that holds the inner message and about 350 bytes of fixed overhead.
        assert!(len > n && (len == SEALED_ENVELOPE_SIZES[0] || len < 4 * (n + 400)), "inner {n} -> envelope {len}");
        report.push(format!("{n} -> {len}"));
    }
    println!("envelope sizes (inner -> envelope bytes): {}", report.join(", "));
}

#[test]
fn forged_sender_claims_are_caught() {
    let mut s = setup(11);
    let inner = s.p.a_send(b"from Alice");
    let alice_envelope = s.seal(InnerKind::Session, &inner);

    // Mallory seals with her own identity, claiming to be Alice's user.
    let mut r = rng(110);
    let mallory = Account::new(&mut r);
    let bob_keys = s.p.bob.device_keys();
    let claim = s.alice_user.user_key();
    let mallory_envelope = sealed_sender::seal(
        &mut r,
        &claim,
        &sealed_sender::SenderState::new(1, None),
        mallory.identity(),
        &bob_keys,
        InnerKind::Session,
        &inner,
    )
    .unwrap();
    let unsealed = sealed_sender::open(s.p.bob.identity(), &mallory_envelope).unwrap();
    // The envelope names the device that really sealed it, never Alice's...
    assert_eq!(unsealed.sender_device, mallory.device_keys());
    // ...so the user claim fails against Alice's device list, and the re-sealed first message of
    // Alice's fails the session check before it reaches the session.
    assert_eq!(unsealed.check_device_list(&s.alice_list), Err(Error::UnknownDevice));
    assert_eq!(unsealed.check_session_peer(&SessionRecord::new()), Err(Error::PeerMismatch));
    let mallory_user = UserIdentity::generate(&mut r);
    let mallory_list = SignedDeviceList::sign(&mallory_user, 1, &[mallory.device_keys()], 0).unwrap();
    assert_eq!(unsealed.check_device_list(&mallory_list), Err(Error::SenderMismatch));

    // Splicing Alice's first layer into Mallory's envelope (or the reverse) authenticates nothing.
    let (a, m) = (decode(&alice_envelope), decode(&mallory_envelope));
    for spliced in [
        proto::SealedEnvelope { static_ciphertext: a.static_ciphertext.clone(), ..m.clone() },
        proto::SealedEnvelope { static_ciphertext: m.static_ciphertext.clone(), ..a.clone() },
        proto::SealedEnvelope { ciphertext: a.ciphertext.clone(), ..m.clone() },
        proto::SealedEnvelope { ephemeral_key: a.ephemeral_key.clone(), ..m.clone() },
    ] {
        assert_eq!(sealed_sender::open(s.p.bob.identity(), &spliced.encode_to_vec()), Err(Error::DecryptionFailed));
    }

    // With an established session, the record's peer is what the envelope must name.
    let mut established = Pair::established(12);
    let inner = established.a_send(b"on the session");
    let envelope = sealed_sender::seal(
        &mut r,
        &claim,
        &sealed_sender::SenderState::new(1, None),
        mallory.identity(),
        &established.bob.device_keys(),
        InnerKind::Session,
        &inner,
    )
    .unwrap();
    let unsealed = sealed_sender::open(established.bob.identity(), &envelope).unwrap();
    assert_eq!(unsealed.check_session_peer(&established.b), Err(Error::PeerMismatch));
    // A ratchet message for a record with no session cannot be attributed at all.
    assert_eq!(unsealed.check_session_peer(&SessionRecord::new()), Err(Error::NoSession));
}

#[test]
fn delivery_tokens() {
    let mut r = rng(13);
    let token = DeliveryToken::generate(&mut r);
    let stored = token.hash();
    // What the relay receives from a sender: the token's bytes.
    let presented = DeliveryToken::from_bytes(token.to_bytes().as_slice()).unwrap();
    assert!(presented.verify_hash(&stored));
    let rotated = DeliveryToken::generate(&mut r);
    assert!(!rotated.verify_hash(&stored));
    assert_ne!(rotated.hash(), stored);
    assert_eq!(format!("{token:?}"), "DeliveryToken([redacted])");
}
