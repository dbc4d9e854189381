//! `test-vectors/ratchet.json`: the Double Ratchet with header encryption from a fixed SK, driven
//! through the crate's real `RatchetState` with a recording RNG: the initial keys, each DH ratchet step
//! (epoch) and every message's header, keys, padding and encodings, then re-checked with the primitive
//! crates alone.

use super::*;
use crate::message::{RatchetMessage, SessionMessage};
use crate::pqxdh;
use crate::ratchet::{RatchetState, keys};

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

#[test]
fn ratchet_vectors_match() {
    check_or_write("ratchet.json", &generate_ratchet());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use super::*;
    use crate::vectors::independent::{committed, dh, hkdf, hmac, pad, seal, x25519_public};

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
}
