//! `test-vectors/group.json`: a sender-key distribution and the first messages of a sender chain,
//! and a signed roster change (the create), generated with the crate's real group code from fixed
//! secrets, then re-checked with the primitive crates alone. Everything here is deterministic:
//! sender-key messages use no randomness beyond the chain's own secrets.

use super::*;
use crate::crypto::SigningPublicKey;
use crate::group::GroupId;
use crate::group::roster::{RosterAction, RosterChange};
use crate::group::sender_chain::OutboundSenderChain;
use crate::ratchet::keys::ChainKey;
use crate::wire::group as group_proto;

const MESSAGE_INFO: &str = "hush/group/v1/message";
const MESSAGE_CONTEXT: &str = "hush/group-message/v1";
const CHANGE_CONTEXT: &str = "hush/group-change/v1";

#[derive(Serialize, Deserialize)]
struct GroupFile {
    version: u32,
    description: String,
    group_id: String,
    epoch: u64,
    chain_id: String,
    chain_key: String,
    signing_secret: String,
    signing_key: String,
    distribution: String,
    messages: Vec<GroupMessageV>,
    create: RosterChangeV,
}

#[derive(Serialize, Deserialize)]
struct GroupMessageV {
    iteration: u32,
    chain_key: String,
    message_key: String,
    aead_key: String,
    aead_nonce: String,
    plaintext: String,
    padded_plaintext: String,
    /// The GroupMessage encoded with `ciphertext` and `signature` empty: the AEAD's AD.
    associated_data: String,
    ciphertext: String,
    /// The GroupMessage encoded with `signature` empty: what the signature covers (after the context).
    signed: String,
    signature: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct RosterChangeV {
    author_secret: String,
    author_key: String,
    member_keys: Vec<String>,
    name: String,
    created_at: u64,
    /// The encoded GroupChange.
    change: String,
    signature: String,
    /// The encoded SignedGroupChange and its SHA-256 (the change's id).
    signed_change: String,
    hash: String,
}

fn generate_group() -> GroupFile {
    let seed = seed_for("group");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let group_id = GroupId(random_array(&mut rng));
    let chain_id: [u8; 16] = random_array(&mut rng);
    let chain_key: [u8; 32] = random_array(&mut rng);
    let signing_secret: [u8; 32] = random_array(&mut rng);
    let epoch = 3;
    let mut chain = OutboundSenderChain {
        epoch,
        chain_id,
        chain: ChainKey { key: chain_key, index: 0 },
        signing: SigningKeyPair::from_secret_bytes(&signing_secret),
        started_at_ms: 0,
    };
    let distribution = chain.distribution(&group_id);
    let plaintexts: [&[u8]; 3] = [b"hello group", &[0x5a; 150], b""];
    let mut messages = Vec::new();
    for plaintext in plaintexts {
        let ck = chain.chain.clone();
        let mk = ck.message_key().unwrap();
        let secrets = mk.expand_with(MESSAGE_INFO.as_bytes()).unwrap();
        let message = chain.encrypt(&group_id, plaintext).unwrap();
        let mut parsed: group_proto::GroupMessage = prost::Message::decode(message.as_slice()).unwrap();
        let signature = core::mem::take(&mut parsed.signature);
        let signed = parsed.encode_to_vec();
        let ciphertext = core::mem::take(&mut parsed.ciphertext);
        messages.push(GroupMessageV {
            iteration: ck.index,
            chain_key: h(&ck.key),
            message_key: h(&mk.key),
            aead_key: h(secrets.key.as_slice()),
            aead_nonce: h(&secrets.nonce),
            plaintext: h(plaintext),
            padded_plaintext: h(&padding::pad(plaintext)),
            associated_data: h(&parsed.encode_to_vec()),
            ciphertext: h(&ciphertext),
            signed: h(&signed),
            signature: h(&signature),
            message: h(&message),
        });
    }
    let author_secret: [u8; 32] = random_array(&mut rng);
    let author = UserIdentity::from_secret_bytes(&author_secret);
    let members: Vec<SigningPublicKey> =
        (0..2).map(|_| UserIdentity::from_secret_bytes(&random_array(&mut rng)).user_key()).collect();
    let name = "vector group".to_owned();
    let created_at = 1_763_900_000;
    let create = RosterChange::sign(
        &author,
        group_id,
        None,
        created_at,
        RosterAction::Create { name: name.clone(), members: members.clone() },
    )
    .unwrap();
    let signed: group_proto::SignedGroupChange = prost::Message::decode(create.signed.as_slice()).unwrap();
    GroupFile {
        version: FORMAT_VERSION,
        description: "Sender-key (group) messages: HMAC chain, HKDF message keys, ChaCha20-Poly1305 with the \
                      message header as AD, Ed25519 signature by the chain's key; and a signed group create."
            .into(),
        group_id: h(&group_id.0),
        epoch,
        chain_id: h(&chain_id),
        chain_key: h(&chain_key),
        signing_secret: h(&signing_secret),
        signing_key: h(chain.signing.public().as_bytes()),
        distribution: h(&distribution),
        messages,
        create: RosterChangeV {
            author_secret: h(&author_secret),
            author_key: h(author.user_key().as_bytes()),
            member_keys: members.iter().map(|m| h(m.as_bytes())).collect(),
            name,
            created_at,
            change: h(&signed.change),
            signature: h(&signed.signature),
            signed_change: h(&create.signed),
            hash: h(&create.hash),
        },
    }
}

#[test]
fn group_vectors_match() {
    check_or_write("group.json", &generate_group());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::vectors::independent::{hmac, seal};

    #[test]
    fn group_vectors_verify_independently() {
        if writing() {
            check_or_write("group.json", &generate_group());
        }
        let f: GroupFile = load("group.json");
        let signing = SigningKey::from_bytes(&a32(&f.signing_secret));
        assert_eq!(h(signing.verifying_key().as_bytes()), f.signing_key);
        let dist: group_proto::SenderKeyDistribution =
            prost::Message::decode(unhex(&f.distribution).as_slice()).unwrap();
        assert_eq!(
            (h(&dist.chain_key), dist.iteration, h(&dist.signing_key)),
            (f.chain_key.clone(), 0, f.signing_key.clone())
        );
        let mut ck = unhex(&f.chain_key);
        for (i, m) in f.messages.iter().enumerate() {
            assert_eq!(m.iteration as usize, i);
            assert_eq!(h(&ck), m.chain_key);
            let mk = hmac(&ck, 1);
            assert_eq!(h(&mk), m.message_key);
            let mut okm = [0u8; 44];
            hkdf::Hkdf::<Sha256>::new(None, &mk).expand(MESSAGE_INFO.as_bytes(), &mut okm).unwrap();
            assert_eq!((h(&okm[..32]), h(&okm[32..])), (m.aead_key.clone(), m.aead_nonce.clone()));
            let header = group_proto::GroupMessage {
                version: 1,
                group_id: unhex(&f.group_id),
                epoch: f.epoch,
                chain_id: unhex(&f.chain_id),
                iteration: m.iteration,
                ciphertext: Vec::new(),
                signature: Vec::new(),
            };
            assert_eq!(h(&header.encode_to_vec()), m.associated_data);
            let ct = seal(&okm[..32], &okm[32..], &header.encode_to_vec(), &unhex(&m.padded_plaintext));
            assert_eq!(h(&ct), m.ciphertext);
            let signed = group_proto::GroupMessage { ciphertext: ct, ..header }.encode_to_vec();
            assert_eq!(h(&signed), m.signed);
            let sig = signing.sign(&[MESSAGE_CONTEXT.as_bytes(), &signed].concat());
            assert_eq!(h(&sig.to_bytes()), m.signature);
            ck = hmac(&ck, 2);
        }
        let c = &f.create;
        let author = SigningKey::from_bytes(&a32(&c.author_secret));
        assert_eq!(h(author.verifying_key().as_bytes()), c.author_key);
        let sig = author.sign(&[CHANGE_CONTEXT.as_bytes(), &unhex(&c.change)].concat());
        assert_eq!(h(&sig.to_bytes()), c.signature);
        assert_eq!(h(&Sha256::digest(unhex(&c.signed_change))), c.hash);
    }
}
