//! `test-vectors/sealed_sender.json`: sealed-sender envelopes and delivery-token hashes, generated
//! with the crate's real `seal`/`open` and `DeliveryToken` from fixed secrets and a seeded RNG, then
//! re-checked with the primitive crates alone (see the parent module).

use super::*;
use crate::crypto::kdf;
use crate::delivery_token::DeliveryToken;
use crate::sealed_sender::{self, InnerKind, proto as sealed_proto};

const INFO_EPHEMERAL: &str = "hush/sealed-sender/v1";
const INFO_STATIC: &str = "hush/sealed-sender/v1/static";
const TOKEN_CONTEXT: &str = "hush/delivery-token/v1";

#[derive(Serialize, Deserialize)]
struct SealedSenderFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<SealedCase>,
    delivery_tokens: Vec<DeliveryTokenV>,
}

#[derive(Serialize, Deserialize)]
struct SealedCase {
    name: String,
    /// "session" (1) or "group" (2).
    kind: String,
    sender_user_secret: String,
    sender_user_key: String,
    sender: DeviceV,
    recipient: DeviceV,
    inner: String,
    ephemeral_secret: String,
    ephemeral_key: String,
    associated_data: String,
    ephemeral_dh: String,
    ephemeral_hkdf_salt: String,
    ephemeral_hkdf_info: String,
    chain_key: String,
    ephemeral_aead_key: String,
    ephemeral_aead_nonce: String,
    static_ciphertext: String,
    static_dh: String,
    static_hkdf_salt: String,
    static_hkdf_info: String,
    static_aead_key: String,
    static_aead_nonce: String,
    sealed_content: String,
    padded_content: String,
    ciphertext: String,
    envelope: String,
}

#[derive(Serialize, Deserialize)]
struct DeliveryTokenV {
    token: String,
    hash_context: String,
    hash: String,
}

fn kind_name(kind: InnerKind) -> &'static str {
    match kind {
        InnerKind::Session => "session",
        InnerKind::Group => "group",
        InnerKind::Plaintext => "plaintext",
    }
}

fn sealed_case(
    rng: &mut Recorder,
    name: &str,
    user: &UserIdentity,
    sender: &DeviceIdentity,
    recipient: &DeviceIdentity,
    kind: InnerKind,
    inner: &[u8],
) -> SealedCase {
    // The real code draws exactly the ephemeral secret.
    rng.take();
    let envelope = sealed_sender::seal(
        rng,
        &user.user_key(),
        &sealed_sender::SenderState::new(0, None),
        sender,
        &recipient.keys(),
        kind,
        inner,
    )
    .unwrap();
    let draws = rng.take();
    assert_eq!(draws.len(), 1);
    let ephemeral = KeyPair::from_secret_bytes(draws[0].clone().try_into().unwrap());
    let replayed = sealed_sender::seal(
        &mut Replay::new(&draws[0]),
        &user.user_key(),
        &sealed_sender::SenderState::new(0, None),
        sender,
        &recipient.keys(),
        kind,
        inner,
    )
    .unwrap();
    assert_eq!(replayed, envelope, "sealing is deterministic given the ephemeral secret");

    let opened = sealed_sender::open(recipient, &envelope).unwrap();
    assert_eq!(
        (opened.sender_user_key, opened.sender_device, opened.kind, opened.inner.as_slice()),
        (user.user_key(), sender.keys(), kind, inner)
    );

    // Every intermediate value, recomputed with the crate's primitives and tied to the envelope.
    let e_pub = ephemeral.public();
    let r_pub = recipient.identity_key();
    let ad = [&[1u8][..], e_pub.as_bytes(), recipient.device_key().as_bytes()].concat();
    let ss1 = ephemeral.agree(&r_pub).unwrap();
    assert_eq!(*recipient.identity.agree(&e_pub).unwrap(), *ss1);
    let salt1 = [e_pub.as_bytes().as_slice(), r_pub.as_bytes()].concat();
    let okm1 = kdf::hkdf::<76>(Some(&salt1), ss1.as_slice(), INFO_EPHEMERAL.as_bytes()).unwrap();
    let (chain_key, k1, n1) = (&okm1[..32], &okm1[32..64], &okm1[64..]);
    let static_ciphertext =
        aead::seal(k1.try_into().unwrap(), n1.try_into().unwrap(), &ad, sender.identity_key().as_bytes()).unwrap();
    let ss2 = sender.identity.agree(&r_pub).unwrap();
    assert_eq!(*recipient.identity.agree(&sender.identity_key()).unwrap(), *ss2);
    let salt2 = [chain_key, &static_ciphertext].concat();
    let okm2 = kdf::hkdf::<44>(Some(&salt2), ss2.as_slice(), INFO_STATIC.as_bytes()).unwrap();
    let (k2, n2) = (&okm2[..32], &okm2[32..]);
    let wire_envelope = sealed_proto::SealedEnvelope::decode(envelope.as_slice()).unwrap();
    assert_eq!(wire_envelope.ephemeral_key, e_pub.as_bytes());
    assert_eq!(wire_envelope.static_ciphertext, static_ciphertext);
    let padded = aead::open(k2.try_into().unwrap(), n2.try_into().unwrap(), &ad, &wire_envelope.ciphertext).unwrap();
    let content = padding::unpad(padded.clone()).unwrap();
    assert_eq!(padded, padding::pad_to(&content, padded.len()));
    assert!(sealed_sender::is_size_class(envelope.len()), "{}", envelope.len());

    SealedCase {
        name: name.to_owned(),
        kind: kind_name(kind).to_owned(),
        sender_user_secret: h(user.secret_bytes().as_slice()),
        sender_user_key: h(user.user_key().as_bytes()),
        sender: device_v(sender),
        recipient: device_v(recipient),
        inner: h(inner),
        ephemeral_secret: h(&draws[0]),
        ephemeral_key: h(e_pub.as_bytes()),
        associated_data: h(&ad),
        ephemeral_dh: h(ss1.as_slice()),
        ephemeral_hkdf_salt: h(&salt1),
        ephemeral_hkdf_info: INFO_EPHEMERAL.to_owned(),
        chain_key: h(chain_key),
        ephemeral_aead_key: h(k1),
        ephemeral_aead_nonce: h(n1),
        static_ciphertext: h(&static_ciphertext),
        static_dh: h(ss2.as_slice()),
        static_hkdf_salt: h(&salt2),
        static_hkdf_info: INFO_STATIC.to_owned(),
        static_aead_key: h(k2),
        static_aead_nonce: h(n2),
        sealed_content: h(&content),
        padded_content: h(&padded),
        ciphertext: h(&wire_envelope.ciphertext),
        envelope: h(&envelope),
    }
}

fn generate_sealed_sender() -> SealedSenderFile {
    let seed = seed_for("sealed-sender");
    let mut rng = Recorder::new(seed);
    let user = UserIdentity::generate(&mut rng);
    // Case 1: fixed secrets (RFC 8032 / RFC 7748 test keys), a short inner message.
    let sender = DeviceIdentity::from_parts(
        SigningKeyPair::from_secret_bytes(&a32(RFC8032_TEST1_SECRET)),
        KeyPair::from_secret_bytes(a32(RFC7748_ALICE_SECRET)),
    );
    let recipient = DeviceIdentity::from_parts(
        SigningKeyPair::from_secret_bytes(&random_array(&mut rng)),
        KeyPair::from_secret_bytes(a32(RFC7748_BOB_SECRET)),
    );
    let mut cases = vec![sealed_case(
        &mut rng,
        "session_rfc_keys",
        &user,
        &sender,
        &recipient,
        InnerKind::Session,
        b"an encoded SessionMessage goes here; sealed sender treats it as opaque bytes",
    )];
    // Case 2: random devices, a longer group message whose padding spans several bytes.
    let (sender, recipient) = (DeviceIdentity::generate(&mut rng), DeviceIdentity::generate(&mut rng));
    let inner: Vec<u8> = random_array::<300>(&mut rng).to_vec();
    cases.push(sealed_case(&mut rng, "group_random_keys", &user, &sender, &recipient, InnerKind::Group, &inner));

    let delivery_tokens = (0..2)
        .map(|_| {
            let token = DeliveryToken::generate(&mut rng);
            assert!(token.verify_hash(&token.hash()));
            DeliveryTokenV {
                token: h(token.to_bytes().as_slice()),
                hash_context: TOKEN_CONTEXT.to_owned(),
                hash: h(&token.hash()),
            }
        })
        .collect();
    SealedSenderFile {
        version: FORMAT_VERSION,
        description: "Sealed sender: each envelope with the secrets that made it (sender user and device, recipient, \
                      ephemeral key) and every intermediate value of both layers (DH outputs, HKDF inputs and \
                      outputs, the first layer's encrypted sender identity key, the encoded and padded \
                      SealedContent). Delivery tokens with the hash the relay stores. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
        delivery_tokens,
    }
}

#[test]
fn sealed_sender_vectors_match() {
    check_or_write("sealed_sender.json", &generate_sealed_sender());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use super::*;
    use crate::vectors::independent::{check_device, dh, hkdf, seal, x25519_public};
    use ed25519_dalek::SigningKey;

    #[test]
    fn sealed_sender_vectors_verify_independently() {
        if writing() {
            check_or_write("sealed_sender.json", &generate_sealed_sender());
        }
        let f: SealedSenderFile = load("sealed_sender.json");
        assert_eq!(f.version, 1);
        let names: Vec<&str> = f.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["session_rfc_keys", "group_random_keys"]);
        let mut padding_errors = Vec::new();
        for c in &f.cases {
            check_device(&c.sender);
            check_device(&c.recipient);
            let user = SigningKey::from_bytes(&a32(&c.sender_user_secret));
            assert_eq!(h(user.verifying_key().as_bytes()), c.sender_user_key);

            // First layer: the ephemeral key and the recipient's identity key.
            assert_eq!(x25519_public(&c.ephemeral_secret), c.ephemeral_key);
            let ad = [&[1u8][..], &unhex(&c.ephemeral_key), &unhex(&c.recipient.device_key)].concat();
            assert_eq!(h(&ad), c.associated_data);
            assert_eq!(dh(&c.ephemeral_secret, &c.recipient.identity_key), c.ephemeral_dh);
            assert_eq!(dh(&c.recipient.identity_secret, &c.ephemeral_key), c.ephemeral_dh);
            let salt1 = [unhex(&c.ephemeral_key), unhex(&c.recipient.identity_key)].concat();
            assert_eq!(h(&salt1), c.ephemeral_hkdf_salt);
            assert_eq!(c.ephemeral_hkdf_info, "hush/sealed-sender/v1");
            let okm1 = hkdf(&salt1, &unhex(&c.ephemeral_dh), c.ephemeral_hkdf_info.as_bytes(), 76);
            assert_eq!(
                (h(&okm1[..32]), h(&okm1[32..64]), h(&okm1[64..])),
                (c.chain_key.clone(), c.ephemeral_aead_key.clone(), c.ephemeral_aead_nonce.clone())
            );
            let static_ciphertext = seal(&okm1[32..64], &okm1[64..], &ad, &unhex(&c.sender.identity_key));
            assert_eq!(h(&static_ciphertext), c.static_ciphertext);

            // Second layer: the sender's and the recipient's identity keys, over the first layer.
            assert_eq!(dh(&c.sender.identity_secret, &c.recipient.identity_key), c.static_dh);
            assert_eq!(dh(&c.recipient.identity_secret, &c.sender.identity_key), c.static_dh);
            let salt2 = [&okm1[..32], &static_ciphertext[..]].concat();
            assert_eq!(h(&salt2), c.static_hkdf_salt);
            assert_eq!(c.static_hkdf_info, "hush/sealed-sender/v1/static");
            let okm2 = hkdf(&salt2, &unhex(&c.static_dh), c.static_hkdf_info.as_bytes(), 44);
            assert_eq!((h(&okm2[..32]), h(&okm2[32..])), (c.static_aead_key.clone(), c.static_aead_nonce.clone()));

            let kind = match c.kind.as_str() {
                "session" => 1,
                "group" => 2,
                other => panic!("unknown kind {other}"),
            };
            let content = sealed_proto::SealedContent {
                version: 1,
                sender_user_key: unhex(&c.sender_user_key),
                sender_device: Some(sealed_proto::SenderDevice {
                    device_key: unhex(&c.sender.device_key),
                    identity_key: unhex(&c.sender.identity_key),
                    identity_signature: unhex(&c.sender.identity_signature),
                }),
                kind,
                inner: unhex(&c.inner),
                sender_list_version: 0,
                sender_delivery_token: Vec::new(),
            };
            assert_eq!(h(&content.encode_to_vec()), c.sealed_content);
            // Padding is checked last (below) so one wrong length does not hide the other checks.
            let padded = unhex(&c.padded_content);
            let expected_padding = pad_to_class(&unhex(&c.sealed_content));
            if padded != expected_padding {
                padding_errors.push(format!(
                    "{}: {} content bytes padded to {}, the size classes give {}",
                    c.name,
                    c.sealed_content.len() / 2,
                    padded.len(),
                    expected_padding.len()
                ));
            }
            assert_eq!(padded[..c.sealed_content.len() / 2], unhex(&c.sealed_content));
            let ciphertext = seal(&okm2[..32], &okm2[32..], &ad, &padded);
            assert_eq!(h(&ciphertext), c.ciphertext);
            let envelope = sealed_proto::SealedEnvelope {
                version: 1,
                ephemeral_key: unhex(&c.ephemeral_key),
                ciphertext,
                static_ciphertext,
            };
            assert_eq!(h(&envelope.encode_to_vec()), c.envelope);
        }
        for t in &f.delivery_tokens {
            assert_eq!(t.hash_context, "hush/delivery-token/v1");
            let hash = Sha256::new().chain_update(t.hash_context.as_bytes()).chain_update(unhex(&t.token)).finalize();
            assert_eq!(h(&hash), t.hash);
        }
        assert!(padding_errors.is_empty(), "padding differs from §9.4 (test-vectors/README.md): {padding_errors:?}");
    }

    /// §9.4 from its definition: 0x80 then zeros, to the length that makes the envelope (86 bytes
    /// of fixed fields, then tag 0x1a, the ciphertext's varint length, the ciphertext with its
    /// 16-byte tag) exactly the smallest of 1, 4, 16, 64, 256 KiB that holds it.
    fn pad_to_class(content: &[u8]) -> Vec<u8> {
        let varint_len = |n: usize| {
            if n < 1 << 7 {
                1
            } else if n < 1 << 14 {
                2
            } else {
                3
            }
        };
        let padded_len = [1024usize, 4096, 16384, 65536, 262144]
            .into_iter()
            .find_map(|size| {
                let ct = (1..=3).map(|v| size - 87 - v).find(|&ct| varint_len(ct) + ct + 87 == size)?;
                (ct - 16 > content.len()).then_some(ct - 16)
            })
            .unwrap();
        let mut out = content.to_vec();
        out.push(0x80);
        out.resize(padded_len, 0);
        out
    }
}
