//! `test-vectors/pqxdh.json`: PQXDH session setup (two post-quantum cases, one classical X3DH case),
//! driven through the crate's real `Account`, `PrekeyBundle` and `SessionRecord` with a recording RNG:
//! every secret input, the Diffie-Hellman outputs, the KEM values, SK, the associated data and the
//! initiator's first `SessionMessage`, then re-checked with the primitive crates alone.

use super::*;
use crate::account::Account;
use crate::message::{PrekeyMessage, RatchetMessage, SessionMessage};
use crate::pqxdh::{self, SessionConfig};
use crate::prekeys::PrekeyBundle;
use crate::ratchet::RatchetState;
use crate::session::{Session, SessionRecord};

#[derive(Serialize, Deserialize)]
struct OneTimePrekeyV {
    id: u32,
    secret: String,
    public_key: String,
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

#[test]
fn pqxdh_vectors_match() {
    check_or_write("pqxdh.json", &generate_pqxdh());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use libcrux_ml_kem::mlkem768;

    use super::*;
    use crate::vectors::independent::{
        check_device, check_kem_prekey, check_signed_prekey, committed, device_proto, dh, hkdf, hmac, open, pad,
        x25519_public,
    };

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
            // One zero byte past the Padmé length: the initiator advertises the triple ratchet (§7A.6).
            assert_eq!(padded, [pad(&unhex(&m.plaintext)), vec![0]].concat());
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
}
