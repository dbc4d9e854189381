//! Tampering with messages in transit: every single-bit flip, every truncation, every dropped byte
//! and appended bytes, for a first (prekey) message, the responder's first reply, a message on an
//! existing chain, a message that makes the receiver take a DH ratchet step, and a message whose
//! key was skipped. Each damaged message must be refused with a typed error and leave the
//! receiver's session record and account byte-identical; afterwards the undamaged message still
//! decrypts.

mod common;

use std::ops::Range;

use common::{Pair, Snapshot};
use hush_core::wire::proto;
use hush_core::{Error, KEM_CIPHERTEXT_LEN, SessionMessage};
use prost::Message;

/// One damaged copy of a message, the name it goes by in failure reports, and the exact error it
/// must give when the damage is in a field whose check is known (`None`: any typed error).
struct Damaged {
    name: String,
    bytes: Vec<u8>,
    expected: Option<Error>,
}

/// Where `field` sits in `message`; it must occur exactly once.
fn locate(message: &[u8], field: &[u8]) -> Range<usize> {
    let mut hits = message.windows(field.len()).enumerate().filter(|(_, w)| *w == field).map(|(i, _)| i);
    let start = hits.next().expect("field not in message");
    assert!(hits.next().is_none(), "field occurs twice");
    start..start + field.len()
}

/// Every way of damaging `original`: each single-bit flip (with the error a flip inside one of
/// `fields` must give), each truncation, each single byte removed, and bytes appended.
fn damaged(original: &[u8], fields: &[(&[u8], Error)]) -> Vec<Damaged> {
    let regions: Vec<(Range<usize>, &Error)> = fields.iter().map(|(f, e)| (locate(original, f), e)).collect();
    let mut out = Vec::new();
    for bit in 0..original.len() * 8 {
        let byte = bit / 8;
        let mut bytes = original.to_vec();
        bytes[byte] ^= 1 << (bit % 8);
        let expected = regions.iter().find(|(r, _)| r.contains(&byte)).map(|(_, e)| (*e).clone());
        out.push(Damaged { name: format!("bit {bit} (byte {byte}) flipped"), bytes, expected });
    }
    for len in 0..original.len() {
        out.push(Damaged {
            name: format!("truncated to {len} bytes"),
            bytes: original[..len].to_vec(),
            expected: None,
        });
    }
    for i in 0..original.len() {
        let mut bytes = original.to_vec();
        bytes.remove(i);
        out.push(Damaged { name: format!("byte {i} removed"), bytes, expected: None });
    }
    let tails: Vec<(String, Vec<u8>)> = (0..=255u8)
        .map(|b| (format!("byte {b:#04x} appended"), vec![b]))
        .chain([
            // The version field again: protobuf merges it, but that is a second encoding.
            ("version field appended".to_owned(), vec![0x08, 0x01]),
            // Concatenated protobuf messages merge into one.
            ("message appended to itself".to_owned(), original.to_vec()),
            ("16 zero bytes appended".to_owned(), vec![0; 16]),
        ])
        .collect();
    for (name, tail) in tails {
        let mut bytes = original.to_vec();
        bytes.extend_from_slice(&tail);
        out.push(Damaged { name, bytes, expected: None });
    }
    out
}

/// Who receives the damaged copies.
#[derive(Clone, Copy, Debug)]
enum Receiver {
    Alice,
    Bob,
}

fn receive(p: &mut Pair, who: Receiver, bytes: &[u8]) -> hush_core::Result<Vec<u8>> {
    match who {
        Receiver::Alice => p.a_recv(bytes),
        Receiver::Bob => p.b_recv(bytes),
    }
}

fn state(p: &Pair, who: Receiver) -> Snapshot {
    match who {
        Receiver::Alice => p.alice_state(),
        Receiver::Bob => p.bob_state(),
    }
}

/// Delivers every damaged copy: each must fail with a typed error (the expected one where known)
/// and leave the receiver's record and account byte-identical.
fn assert_all_refused(p: &mut Pair, who: Receiver, variants: Vec<Damaged>) {
    let before = state(p, who);
    for v in variants {
        match receive(p, who, &v.bytes) {
            Ok(plaintext) => panic!("{}: accepted, {} bytes of plaintext", v.name, plaintext.len()),
            Err(Error::Internal(e)) => panic!("{}: internal error {e}", v.name),
            Err(e) => {
                if let Some(expected) = &v.expected {
                    assert_eq!(&e, expected, "{}", v.name);
                }
            }
        }
        assert_eq!(state(p, who), before, "{}: {who:?}'s state changed", v.name);
    }
}

fn decode(message: &[u8]) -> proto::session_message::Body {
    proto::SessionMessage::decode(message).unwrap().body.unwrap()
}

/// The fields of a ratchet message whose damage only the AEADs can catch.
fn sealed_fields(m: &proto::RatchetMessage) -> Vec<(&[u8], Error)> {
    vec![
        (&m.header_nonce, Error::DecryptionFailed),
        (&m.encrypted_header, Error::DecryptionFailed),
        (&m.ciphertext, Error::DecryptionFailed),
    ]
}

fn assert_ratchet_message_tamper_proof(p: &mut Pair, who: Receiver, original: &[u8], plaintext: &[u8]) {
    let proto::session_message::Body::Ratchet(m) = decode(original) else { panic!("not a ratchet message") };
    assert_all_refused(p, who, damaged(original, &sealed_fields(&m)));
    assert_eq!(receive(p, who, original).unwrap(), plaintext);
}

#[test]
fn prekey_message() {
    let mut p = Pair::new(1);
    let plaintext = b"the first message, with the PQXDH values";
    let original = p.a_send(plaintext);
    assert!(original.len() > 1300, "a PQXDH first message carries the ML-KEM ciphertext: {}", original.len());
    let proto::session_message::Body::Prekey(m) = decode(&original) else { panic!("not a prekey message") };
    assert_eq!(m.kem_ciphertext.len(), KEM_CIPHERTEXT_LEN);
    let initiator = m.initiator.as_ref().unwrap();
    let body = m.message.as_ref().unwrap();
    let identity = || Error::BadSignature { what: "identity key" };
    let mut fields = vec![
        // ML-KEM's implicit rejection turns a damaged ciphertext into an unrelated secret.
        (m.kem_ciphertext.as_slice(), Error::DecryptionFailed),
        // Bit 255 of the base key is left out: X25519 ignores it, so only a check of the encoding
        // can refuse it (with whatever error that check gives).
        (&m.base_key[..31], Error::DecryptionFailed),
        // Bit 255 of an X25519 key makes a non-canonical encoding, refused before the signature check.
        (&initiator.identity_key[..31], identity()),
        (&initiator.identity_signature, identity()),
    ];
    fields.extend(sealed_fields(body));
    let prekeys = (p.bob.one_time_prekey_count(), p.bob.kem_one_time_count());

    assert_all_refused(&mut p, Receiver::Bob, damaged(&original, &fields));
    assert!(!p.b.has_session());
    assert_eq!((p.bob.one_time_prekey_count(), p.bob.kem_one_time_count()), prekeys);

    assert_eq!(p.b_recv(&original).unwrap(), plaintext);
    assert_eq!((p.bob.one_time_prekey_count(), p.bob.kem_one_time_count()), (prekeys.0 - 1, prekeys.1 - 1));
}

#[test]
fn first_reply_to_the_initiator() {
    // Bob's first answer ends Alice's prekey messages and makes her step her DH ratchet.
    let mut p = Pair::new(5);
    let first = p.a_send(b"hello");
    p.b_recv(&first).unwrap();
    let original = p.b_send(b"first reply");
    assert!(p.a.awaiting_reply());
    assert_ratchet_message_tamper_proof(&mut p, Receiver::Alice, &original, b"first reply");
    assert!(!p.a.awaiting_reply());
}

#[test]
fn message_on_an_existing_chain() {
    let mut p = Pair::established(2);
    let first = p.a_send(b"opens Alice's new chain at Bob");
    p.b_recv(&first).unwrap();
    let original = p.a_send(b"second on the chain");
    assert!(matches!(SessionMessage::from_bytes(&original).unwrap(), SessionMessage::Ratchet(_)));
    assert_ratchet_message_tamper_proof(&mut p, Receiver::Bob, &original, b"second on the chain");
}

#[test]
fn message_that_steps_the_dh_ratchet() {
    // Alice stepped her ratchet when Bob's reply arrived, so her next message starts a chain Bob
    // has never seen: decrypting it means a DH ratchet step at Bob.
    let mut p = Pair::established(3);
    let original = p.a_send(b"new ratchet key");
    assert_ratchet_message_tamper_proof(&mut p, Receiver::Bob, &original, b"new ratchet key");
    // Bob stepped: his answer is on a chain Alice has not seen either.
    let answer = p.b_send(b"answer");
    assert_eq!(p.a_recv(&answer).unwrap(), b"answer");
}

#[test]
fn message_with_a_skipped_key() {
    let mut p = Pair::established(4);
    let late = p.a_send(b"arrives late");
    let early = p.a_send(b"arrives first");
    assert_eq!(p.b_recv(&early).unwrap(), b"arrives first");
    assert_ratchet_message_tamper_proof(&mut p, Receiver::Bob, &late, b"arrives late");
    assert_eq!(p.b_recv(&late), Err(Error::DuplicateMessage));
}
