//! Sealed sender (docs/PROTOCOL.md §9): an envelope that hides who sent a message from the
//! relay, while still telling the recipient, authenticated, which device sent it.
//!
//! # Construction
//!
//! Signal's sealed sender v1 (two layers: ephemeral, then static), with ChaCha20-Poly1305 and keys
//! taken straight from HKDF, since every envelope has a fresh ephemeral key. `R` is the recipient's
//! X25519 identity key, `S` the sender's, `e` a fresh ephemeral X25519 key, `v` = 1 the version.
//!
//! ```text
//! AD           = v (1 byte) || e_pub || recipient device key (Ed25519, 32 bytes)
//! ss1          = X25519(e, R)                                      (contributory, else refused)
//! ck || k1 || n1 = HKDF-SHA256(salt = e_pub || R, ikm = ss1, info = "hush/sealed-sender/v1")   32+32+12
//! static_ct    = ChaCha20-Poly1305(k1, n1, AD, S_pub)                               48 bytes
//! ss2          = X25519(S, R)                                      (contributory, else refused)
//! k2 || n2     = HKDF-SHA256(salt = ck || static_ct, ikm = ss2, info = "hush/sealed-sender/v1/static")
//! ciphertext   = ChaCha20-Poly1305(k2, n2, AD, pad(SealedContent))
//! envelope     = SealedEnvelope { v, e_pub, ciphertext, static_ct }
//! ```
//!
//! `SealedContent` is `{v, sender user key, sender device keys, inner kind, inner message}`, padded
//! (ISO/IEC 7816-4) so that the encoded envelope is exactly one of the size classes
//! [`SEALED_ENVELOPE_SIZES`] (§9.4): the relay sees a class, not a length. The envelope carries no
//! sender key, id or signature in the clear: everything about the sender is under the AEAD.
//!
//! # Why two layers
//!
//! The inner message is authenticated on its own (a 1:1 session binds both identity keys; a group
//! message is signed by its sender chain), so one ephemeral layer would keep the relay blind. But
//! then the *sender claim* in the envelope would be anyone's to make, and every caller would have
//! to remember to compare it with the inner message's real origin before trusting it. The second
//! layer closes that gap at [`open`]: its key needs `X25519(S, R)`, which only the holder of the
//! sender's identity secret (or the recipient) can compute, and `open` requires the sender device
//! in the content to carry exactly that identity key `S`, whose binding to the device key is
//! checked through the device key's signature. So an [`Unsealed`] names the device that really
//! sealed it, and a forged claim fails with [`Error::SenderMismatch`] or
//! [`Error::DecryptionFailed`]. Deriving the static keys over the first layer's ciphertext ties
//! the layers together, as in Signal.
//!
//! Two claims stay claims: that the device belongs to [`Unsealed::sender_user_key`] (check the
//! user's signed device list: [`Unsealed::check_device_list`]), and that the inner message is
//! from that device's session (check with [`Unsealed::check_session_peer`] before decrypting it,
//! which also catches a first message naming another initiator than the envelope's sender). Like
//! Signal's, the construction does not protect against a stolen *recipient* identity secret
//! (key-compromise impersonation): whoever holds `R`'s secret can seal as anyone to `R`.

use core::fmt;

use prost::Message;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::crypto::aead::{self, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::crypto::keys::KeyPair;
use crate::crypto::{DeviceKeys, PublicKey, SigningPublicKey, kdf};
use crate::delivery_token::DeliveryToken;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::{MAX_SEALED_ENVELOPE_BYTES, MAX_SEALED_INNER_BYTES, SEALED_ENVELOPE_SIZES};
use crate::message::SessionMessage;
use crate::ratchet::padding;
use crate::session::SessionRecord;
use crate::wire;

/// Types generated from `core/proto/sealed.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/hush.sealed.rs"));
}

const VERSION: u32 = 1;
const VERSION_BYTE: u8 = 1;
const INFO_EPHEMERAL: &[u8] = b"hush/sealed-sender/v1";
const INFO_STATIC: &[u8] = b"hush/sealed-sender/v1/static";

/// Length of the first layer's ciphertext: the sender's X25519 identity key and a tag.
pub const STATIC_CIPHERTEXT_LEN: usize = 32 + TAG_LEN;

/// What the inner message of an envelope is, so the recipient knows where to hand it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InnerKind {
    /// An encoded 1:1 [`SessionMessage`].
    Session,
    /// An encoded group (sender-key) message.
    Group,
    /// An encoded `Content` sent without a session: only a retry receipt
    /// ([`ContentBody::DecryptionError`](crate::content::ContentBody::DecryptionError)), for a
    /// device whose session with the recipient is what broke.
    Plaintext,
}

impl InnerKind {
    fn to_proto(self) -> proto::InnerKind {
        match self {
            InnerKind::Session => proto::InnerKind::Session,
            InnerKind::Group => proto::InnerKind::Group,
            InnerKind::Plaintext => proto::InnerKind::Plaintext,
        }
    }

    fn from_proto(value: i32) -> Result<Self> {
        match proto::InnerKind::try_from(value) {
            Ok(proto::InnerKind::Session) => Ok(InnerKind::Session),
            Ok(proto::InnerKind::Group) => Ok(InnerKind::Group),
            Ok(proto::InnerKind::Plaintext) => Ok(InnerKind::Plaintext),
            Ok(proto::InnerKind::Unspecified) | Err(_) => Err(Error::Malformed { what: "sealed inner kind" }),
        }
    }
}

/// An opened envelope: the authenticated sending device, its claimed user, and the inner message.
#[derive(Clone, PartialEq, Eq)]
pub struct Unsealed {
    /// The user key the sender claims to belong to. Not authenticated by the envelope: check it
    /// against the user's signed device list ([`Unsealed::check_device_list`]).
    pub sender_user_key: SigningPublicKey,
    /// The device that sealed the envelope, authenticated by the static layer.
    pub sender_device: DeviceKeys,
    /// The version of its user's device list the sender holds as current. Check it against the
    /// pinned list: a higher one means a newer list exists (a device linked or removed).
    pub sender_list_version: u64,
    /// The sender user's delivery token, when it sent one: what sealed sends to it present (§9.5).
    /// Keep it only once the sender is checked and the inner message decrypted.
    pub sender_delivery_token: Option<DeliveryToken>,
    /// What `inner` is.
    pub kind: InnerKind,
    /// The inner message, still encrypted under its session or group chain.
    pub inner: Vec<u8>,
}

impl Unsealed {
    /// Checks that the sender device is on `list` and that `list` is the claimed sender user's.
    /// The caller must have verified `list` as the user's current one (pinned user key, version).
    pub fn check_device_list(&self, list: &SignedDeviceList) -> Result<()> {
        if list.user_key() != self.sender_user_key {
            return Err(Error::SenderMismatch);
        }
        let listed = list.device(&self.sender_device.device_key())?;
        if listed.identity_key() != self.sender_device.identity_key() {
            return Err(Error::SenderMismatch);
        }
        Ok(())
    }

    /// Checks, before the inner message is decrypted with `record`, that it comes from the sealed
    /// sender: the record's peer, or for a record with no session yet, the initiator named in the
    /// inner first message. [`Error::PeerMismatch`] otherwise; [`Error::NoSession`] when an empty
    /// record would be asked to decrypt a message that opens no session.
    pub fn check_session_peer(&self, record: &SessionRecord) -> Result<()> {
        if self.kind != InnerKind::Session {
            return Err(Error::Malformed { what: "sealed inner kind" });
        }
        let peer = match record.peer() {
            Some(peer) => peer,
            None => match SessionMessage::from_bytes(&self.inner)? {
                SessionMessage::Prekey(m) => m.initiator,
                SessionMessage::Ratchet(_) => return Err(Error::NoSession),
            },
        };
        if peer.device_key() != self.sender_device.device_key()
            || peer.identity_key() != self.sender_device.identity_key()
        {
            return Err(Error::PeerMismatch);
        }
        Ok(())
    }
}

impl fmt::Debug for Unsealed {
    // The inner message is ciphertext, but thousands of bytes of it would bury everything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsealed")
            .field("sender_user_key", &self.sender_user_key)
            .field("sender_device", &self.sender_device)
            .field("sender_list_version", &self.sender_list_version)
            .field("sender_delivery_token", &self.sender_delivery_token)
            .field("kind", &self.kind)
            .field("inner_len", &self.inner.len())
            .finish()
    }
}

/// What the sealing device says of its user under the second layer, besides who it is.
#[derive(Clone, Debug, Default)]
pub struct SenderState {
    /// The version of the user's device list the sender holds as current (§9.1; 0: none).
    pub list_version: u64,
    /// The user's delivery token, for the recipient to send back sealed (§9.5).
    pub delivery_token: Option<DeliveryToken>,
}

impl SenderState {
    /// The sender's list version and delivery token.
    pub fn new(list_version: u64, delivery_token: Option<DeliveryToken>) -> Self {
        Self { list_version, delivery_token }
    }
}

/// An AEAD key and nonce used for exactly one encryption.
struct LayerKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    nonce: [u8; NONCE_LEN],
}

impl LayerKey {
    fn from_okm(okm: &[u8]) -> Result<Self> {
        let (key, rest) = okm.split_first_chunk::<KEY_LEN>().ok_or(Error::Internal("sealed sender key length"))?;
        let nonce = rest.first_chunk::<NONCE_LEN>().ok_or(Error::Internal("sealed sender nonce length"))?;
        Ok(Self { key: Zeroizing::new(*key), nonce: *nonce })
    }
}

/// The first layer's keys: a chain key for the second layer, and the key that hides `S_pub`.
struct EphemeralKeys {
    chain_key: Zeroizing<[u8; 32]>,
    layer: LayerKey,
}

fn ephemeral_keys(ss: &[u8; 32], ephemeral: &PublicKey, recipient: &PublicKey) -> Result<EphemeralKeys> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral.as_bytes());
    salt[32..].copy_from_slice(recipient.as_bytes());
    let okm = kdf::hkdf::<{ 32 + KEY_LEN + NONCE_LEN }>(Some(&salt), ss, INFO_EPHEMERAL)?;
    let (chain_key, rest) = okm.split_first_chunk::<32>().ok_or(Error::Internal("sealed sender chain key"))?;
    Ok(EphemeralKeys { chain_key: Zeroizing::new(*chain_key), layer: LayerKey::from_okm(rest)? })
}

fn static_key(chain_key: &[u8; 32], static_ciphertext: &[u8], ss: &[u8; 32]) -> Result<LayerKey> {
    let mut salt = Zeroizing::new(Vec::with_capacity(32 + static_ciphertext.len()));
    salt.extend_from_slice(chain_key);
    salt.extend_from_slice(static_ciphertext);
    let okm = kdf::hkdf::<{ KEY_LEN + NONCE_LEN }>(Some(&salt), ss, INFO_STATIC)?;
    LayerKey::from_okm(okm.as_slice())
}

/// Both layers' associated data: binds the envelope to its version, ephemeral key and recipient.
fn associated_data(ephemeral: &PublicKey, recipient: &DeviceKeys) -> [u8; 65] {
    let mut ad = [0u8; 65];
    ad[0] = VERSION_BYTE;
    ad[1..33].copy_from_slice(ephemeral.as_bytes());
    ad[33..].copy_from_slice(recipient.device_key().as_bytes());
    ad
}

/// Whether `len` is the size of an envelope [`seal`] makes: one of [`SEALED_ENVELOPE_SIZES`].
pub fn is_size_class(len: usize) -> bool {
    SEALED_ENVELOPE_SIZES.contains(&len)
}

/// The ciphertext length that makes the encoded envelope exactly `size` bytes: the fixed fields
/// (version, ephemeral key, static ciphertext), then the ciphertext's tag, varint length and bytes.
fn ciphertext_len_for(size: usize) -> Option<usize> {
    let fixed = proto::SealedEnvelope {
        version: VERSION,
        ephemeral_key: vec![0; 32],
        ciphertext: Vec::new(),
        static_ciphertext: vec![0; STATIC_CIPHERTEXT_LEN],
    }
    .encoded_len()
        + 1;
    (1..=3).find_map(|v| {
        let len = size.checked_sub(fixed + v)?;
        (prost::encoding::encoded_len_varint(len as u64) == v).then_some(len)
    })
}

/// The padded length of a `SealedContent` of `content_len` bytes: that of the smallest size class
/// with room for it and the padding marker.
fn padded_content_len(content_len: usize) -> Result<usize> {
    SEALED_ENVELOPE_SIZES
        .iter()
        .filter_map(|&size| ciphertext_len_for(size)?.checked_sub(TAG_LEN))
        .find(|&padded| padded > content_len)
        .ok_or(Error::TooLarge { what: "sealed content", size: content_len, max: MAX_SEALED_ENVELOPE_BYTES })
}

/// Seals `inner` (an encoded message of `kind`) for the `recipient` device, as the `sender` device
/// of the user with `sender_user_key`, which says `state` of its user (device list version,
/// delivery token). Returns the encoded envelope for the relay.
pub fn seal(
    rng: &mut impl CryptoRngCore,
    sender_user_key: &SigningPublicKey,
    state: &SenderState,
    sender: &DeviceIdentity,
    recipient: &DeviceKeys,
    kind: InnerKind,
    inner: &[u8],
) -> Result<Vec<u8>> {
    if inner.is_empty() {
        return Err(Error::Malformed { what: "sealed inner message" });
    }
    if inner.len() > MAX_SEALED_INNER_BYTES {
        return Err(Error::TooLarge { what: "sealed inner message", size: inner.len(), max: MAX_SEALED_INNER_BYTES });
    }
    let ephemeral = KeyPair::generate(rng);
    let ad = associated_data(&ephemeral.public(), recipient);

    let ss1 = ephemeral.agree(&recipient.identity_key())?;
    let first = ephemeral_keys(&ss1, &ephemeral.public(), &recipient.identity_key())?;
    let static_ciphertext = aead::seal(&first.layer.key, &first.layer.nonce, &ad, sender.identity_key().as_bytes())?;

    let ss2 = sender.identity.agree(&recipient.identity_key())?;
    let second = static_key(&first.chain_key, &static_ciphertext, &ss2)?;
    let keys = sender.keys();
    let content = proto::SealedContent {
        version: VERSION,
        sender_user_key: sender_user_key.to_bytes().to_vec(),
        sender_device: Some(proto::SenderDevice {
            device_key: keys.device_key().to_bytes().to_vec(),
            identity_key: keys.identity_key().to_bytes().to_vec(),
            identity_signature: keys.signature().to_vec(),
        }),
        kind: kind.to_proto().into(),
        inner: inner.to_vec(),
        sender_list_version: state.list_version,
        sender_delivery_token: state.delivery_token.as_ref().map(|t| t.to_bytes().to_vec()).unwrap_or_default(),
    };
    let content = Zeroizing::new(content.encode_to_vec());
    let padded = Zeroizing::new(padding::pad_to(&content, padded_content_len(content.len())?));
    let ciphertext = aead::seal(&second.key, &second.nonce, &ad, &padded)?;

    let envelope = proto::SealedEnvelope {
        version: VERSION,
        ephemeral_key: ephemeral.public().to_bytes().to_vec(),
        ciphertext,
        static_ciphertext,
    };
    Ok(envelope.encode_to_vec())
}

/// Opens an encoded envelope addressed to `recipient`, authenticating the sending device.
///
/// Errors: [`Error::TooLarge`], [`Error::Malformed`] or [`Error::UnsupportedVersion`] for bytes
/// that are not an envelope of this version; [`Error::NonContributoryKey`] for a low-order key;
/// [`Error::DecryptionFailed`] when either layer does not authenticate (tampered, for another
/// recipient, or sealed without the claimed identity secret); [`Error::SenderMismatch`] when the
/// content names another device than the one whose identity key sealed it;
/// [`Error::BadSignature`] when the sender device's keys are not bound by its signature.
pub fn open(recipient: &DeviceIdentity, envelope: &[u8]) -> Result<Unsealed> {
    let p: proto::SealedEnvelope = wire::decode(envelope, MAX_SEALED_ENVELOPE_BYTES, "sealed envelope")?;
    wire::check_version("sealed envelope", p.version, VERSION)?;
    let ephemeral = PublicKey::from_slice(&p.ephemeral_key, "sealed envelope ephemeral key")?;
    if p.static_ciphertext.len() != STATIC_CIPHERTEXT_LEN {
        return Err(Error::Malformed { what: "sealed envelope static ciphertext" });
    }
    if p.ciphertext.len() <= TAG_LEN {
        return Err(Error::Malformed { what: "sealed envelope ciphertext" });
    }
    let ad = associated_data(&ephemeral, &recipient.keys());

    let ss1 = recipient.identity.agree(&ephemeral)?;
    let first = ephemeral_keys(&ss1, &ephemeral, &recipient.identity_key())?;
    let sender_identity = aead::open(&first.layer.key, &first.layer.nonce, &ad, &p.static_ciphertext)?;
    let sender_identity = PublicKey::from_slice(&sender_identity, "sealed sender identity key")?;

    let ss2 = recipient.identity.agree(&sender_identity)?;
    let second = static_key(&first.chain_key, &p.static_ciphertext, &ss2)?;
    let padded = aead::open(&second.key, &second.nonce, &ad, &p.ciphertext)?;
    let content = padding::unpad(padded)?;

    let c: proto::SealedContent = wire::decode(&content, MAX_SEALED_ENVELOPE_BYTES, "sealed content")?;
    wire::check_version("sealed content", c.version, VERSION)?;
    let sender_user_key = SigningPublicKey::from_slice(&c.sender_user_key, "sealed sender user key")?;
    let d = wire::required(&c.sender_device, "sealed sender device")?;
    let sender_device = DeviceKeys::new(
        SigningPublicKey::from_slice(&d.device_key, "sealed sender device key")?,
        PublicKey::from_slice(&d.identity_key, "sealed sender identity key")?,
        &d.identity_signature,
    )?;
    if sender_device.identity_key() != sender_identity {
        return Err(Error::SenderMismatch);
    }
    let kind = InnerKind::from_proto(c.kind)?;
    if c.inner.is_empty() {
        return Err(Error::Malformed { what: "sealed inner message" });
    }
    if c.inner.len() > MAX_SEALED_INNER_BYTES {
        return Err(Error::TooLarge { what: "sealed inner message", size: c.inner.len(), max: MAX_SEALED_INNER_BYTES });
    }
    // Empty: none (an older sender's, or a device without one); any other length is refused.
    let sender_delivery_token = match c.sender_delivery_token.as_slice() {
        [] => None,
        token => Some(DeliveryToken::from_bytes(token)?),
    };
    Ok(Unsealed {
        sender_user_key,
        sender_device,
        sender_list_version: c.sender_list_version,
        sender_delivery_token,
        kind,
        inner: c.inner,
    })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::identity::UserIdentity;

    struct Parties {
        rng: ChaCha20Rng,
        user: UserIdentity,
        alice: DeviceIdentity,
        bob: DeviceIdentity,
    }

    fn parties(seed: u64) -> Parties {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let user = UserIdentity::generate(&mut rng);
        let alice = DeviceIdentity::generate(&mut rng);
        let bob = DeviceIdentity::generate(&mut rng);
        Parties { rng, user, alice, bob }
    }

    /// Seals with an arbitrary first-layer sender key and content, as a forger would.
    fn forge(
        rng: &mut ChaCha20Rng,
        claimed_identity: &PublicKey,
        static_secret: &KeyPair,
        recipient: &DeviceKeys,
        content: &proto::SealedContent,
    ) -> Vec<u8> {
        let e = KeyPair::generate(rng);
        let ad = associated_data(&e.public(), recipient);
        let first =
            ephemeral_keys(&e.agree(&recipient.identity_key()).unwrap(), &e.public(), &recipient.identity_key())
                .unwrap();
        let static_ct = aead::seal(&first.layer.key, &first.layer.nonce, &ad, claimed_identity.as_bytes()).unwrap();
        let ss2 = static_secret.agree(&recipient.identity_key()).unwrap();
        let second = static_key(&first.chain_key, &static_ct, &ss2).unwrap();
        let ct = aead::seal(&second.key, &second.nonce, &ad, &padding::pad(&content.encode_to_vec())).unwrap();
        proto::SealedEnvelope {
            version: 1,
            ephemeral_key: e.public().to_bytes().to_vec(),
            ciphertext: ct,
            static_ciphertext: static_ct,
        }
        .encode_to_vec()
    }

    fn content_of(user: &SigningPublicKey, keys: &DeviceKeys, inner: &[u8]) -> proto::SealedContent {
        proto::SealedContent {
            version: 1,
            sender_user_key: user.to_bytes().to_vec(),
            sender_device: Some(proto::SenderDevice {
                device_key: keys.device_key().to_bytes().to_vec(),
                identity_key: keys.identity_key().to_bytes().to_vec(),
                identity_signature: keys.signature().to_vec(),
            }),
            kind: proto::InnerKind::Session.into(),
            inner: inner.to_vec(),
            sender_list_version: 0,
            sender_delivery_token: Vec::new(),
        }
    }

    #[test]
    fn forger_with_own_static_key_is_caught_by_the_identity_check() {
        let mut p = parties(1);
        let mallory = DeviceIdentity::generate(&mut p.rng);
        // Mallory seals honestly under her own identity key, but claims to be Alice's device.
        let content = content_of(&p.user.user_key(), &p.alice.keys(), b"x");
        let env = forge(&mut p.rng, &mallory.identity_key(), &mallory.identity, &p.bob.keys(), &content);
        assert_eq!(open(&p.bob, &env), Err(Error::SenderMismatch));
        // The same forge naming herself opens fine: the check is on the binding, not the forge code.
        let content = content_of(&p.user.user_key(), &mallory.keys(), b"x");
        let env = forge(&mut p.rng, &mallory.identity_key(), &mallory.identity, &p.bob.keys(), &content);
        assert_eq!(open(&p.bob, &env).unwrap().sender_device, mallory.keys());
    }

    #[test]
    fn forger_without_the_claimed_identity_secret_cannot_authenticate() {
        let mut p = parties(2);
        let mallory = DeviceIdentity::generate(&mut p.rng);
        // Mallory names Alice's identity key in the first layer but only has her own secret.
        let content = content_of(&p.user.user_key(), &p.alice.keys(), b"x");
        let env = forge(&mut p.rng, &p.alice.identity_key(), &mallory.identity, &p.bob.keys(), &content);
        assert_eq!(open(&p.bob, &env), Err(Error::DecryptionFailed));
    }

    #[test]
    fn content_is_checked_after_authentication() {
        let mut p = parties(3);
        let a = p.alice.keys();
        let cases: Vec<(proto::SealedContent, Error)> = vec![
            (
                proto::SealedContent { version: 2, ..content_of(&p.user.user_key(), &a, b"x") },
                Error::UnsupportedVersion { what: "sealed content", version: 2 },
            ),
            (
                proto::SealedContent { kind: 0, ..content_of(&p.user.user_key(), &a, b"x") },
                Error::Malformed { what: "sealed inner kind" },
            ),
            (
                proto::SealedContent { kind: 7, ..content_of(&p.user.user_key(), &a, b"x") },
                Error::Malformed { what: "sealed inner kind" },
            ),
            (content_of(&p.user.user_key(), &a, b""), Error::Malformed { what: "sealed inner message" }),
            (
                proto::SealedContent { sender_device: None, ..content_of(&p.user.user_key(), &a, b"x") },
                Error::Malformed { what: "sealed sender device" },
            ),
            (
                proto::SealedContent { sender_user_key: vec![1; 31], ..content_of(&p.user.user_key(), &a, b"x") },
                Error::Malformed { what: "sealed sender user key" },
            ),
            (
                proto::SealedContent { sender_delivery_token: vec![1; 31], ..content_of(&p.user.user_key(), &a, b"x") },
                Error::Malformed { what: "delivery token" },
            ),
        ];
        for (content, expected) in cases {
            let env = forge(&mut p.rng, &p.alice.identity_key(), &p.alice.identity, &p.bob.keys(), &content);
            assert_eq!(open(&p.bob, &env), Err(expected));
        }
        // A bad signature over the sender's identity key.
        let mut content = content_of(&p.user.user_key(), &a, b"x");
        if let Some(d) = content.sender_device.as_mut() {
            d.identity_signature[0] ^= 1;
        }
        let env = forge(&mut p.rng, &p.alice.identity_key(), &p.alice.identity, &p.bob.keys(), &content);
        assert!(matches!(open(&p.bob, &env), Err(Error::BadSignature { .. })));
    }

    #[test]
    fn static_layer_refuses_low_order_sender_key() {
        let mut p = parties(4);
        let content = content_of(&p.user.user_key(), &p.alice.keys(), b"x");
        // The static layer's key never gets used: ss2 with a low-order key is refused first.
        let env = forge(&mut p.rng, &PublicKey::from_bytes([0; 32]), &p.alice.identity, &p.bob.keys(), &content);
        assert_eq!(open(&p.bob, &env), Err(Error::NonContributoryKey));
    }

    /// Every length of inner message, up to the largest, gives an envelope of a size class, the
    /// smallest that holds it; so the relay learns the class and nothing finer.
    #[test]
    fn envelopes_take_only_the_size_classes() {
        let mut p = parties(6);
        let mut seen = Vec::new();
        for len in [1usize, 50, 200, 640, 700, 3_000, 3_800, 16_000, 60_000, 100_000, MAX_SEALED_INNER_BYTES] {
            let inner = vec![3u8; len];
            let bytes = seal(
                &mut p.rng,
                &p.user.user_key(),
                &SenderState::new(0, None),
                &p.alice,
                &p.bob.keys(),
                InnerKind::Group,
                &inner,
            )
            .unwrap();
            assert!(is_size_class(bytes.len()), "{len} -> {}", bytes.len());
            let env = proto::SealedEnvelope::decode(bytes.as_slice()).unwrap();
            let content = content_of(&p.user.user_key(), &p.alice.keys(), &inner);
            let content = proto::SealedContent { kind: proto::InnerKind::Group.into(), ..content };
            // The smallest class that holds it: the one below has no room.
            let class = SEALED_ENVELOPE_SIZES.iter().position(|&s| s == bytes.len()).unwrap();
            if let Some(smaller) = class.checked_sub(1).and_then(|i| SEALED_ENVELOPE_SIZES.get(i)) {
                assert!(content.encoded_len() + 1 + TAG_LEN > ciphertext_len_for(*smaller).unwrap(), "{len}");
            }
            assert_eq!(env.static_ciphertext.len(), STATIC_CIPHERTEXT_LEN);
            assert_eq!(open(&p.bob, &bytes).unwrap().inner, inner);
            seen.push(bytes.len());
        }
        seen.dedup();
        assert_eq!(seen, SEALED_ENVELOPE_SIZES, "every class is reached by some length");
        // Every class is reachable exactly (the varint of the ciphertext length leaves no gap).
        for size in SEALED_ENVELOPE_SIZES {
            assert!(ciphertext_len_for(size).is_some(), "{size}");
        }
    }

    #[test]
    fn the_senders_list_version_and_delivery_token_ride_under_the_second_layer() {
        let mut p = parties(7);
        let token = DeliveryToken::generate(&mut p.rng);
        let state = SenderState::new(3, Some(token.clone()));
        let env =
            seal(&mut p.rng, &p.user.user_key(), &state, &p.alice, &p.bob.keys(), InnerKind::Session, b"x").unwrap();
        let opened = open(&p.bob, &env).unwrap();
        assert_eq!((opened.sender_list_version, opened.sender_delivery_token), (3, Some(token.clone())));
        assert!(!format!("{:?}", open(&p.bob, &env).unwrap()).contains(&hex::encode(token.to_bytes().as_slice())));
        let env = seal(
            &mut p.rng,
            &p.user.user_key(),
            &SenderState::default(),
            &p.alice,
            &p.bob.keys(),
            InnerKind::Session,
            b"x",
        )
        .unwrap();
        assert_eq!(open(&p.bob, &env).unwrap().sender_delivery_token, None);
    }

    #[test]
    fn unsealed_debug_is_short() {
        let mut p = parties(5);
        let env = seal(
            &mut p.rng,
            &p.user.user_key(),
            &SenderState::new(0, None),
            &p.alice,
            &p.bob.keys(),
            InnerKind::Group,
            &[0xAB; 300],
        )
        .unwrap();
        let unsealed = open(&p.bob, &env).unwrap();
        let dbg = format!("{unsealed:?}");
        assert!(dbg.contains("inner_len: 300") && !dbg.contains("ab, ab") && !dbg.contains("171"), "{dbg}");
    }
}
