//! Sender chains (docs/PROTOCOL.md §10): one symmetric chain and one Ed25519 key per
//! (group, sending device), so a group message costs O(1) whatever the group's size. The chain KDF
//! is the Double Ratchet's (`HMAC(ck, 0x01)` / `HMAC(ck, 0x02)`); message keys expand with their
//! own HKDF info. The same forward-jump limit and all-or-nothing rule hold as for 1:1 sessions.

use prost::Message;
use rand_core::CryptoRngCore;

use crate::crypto::SigningPublicKey;
use crate::crypto::aead;
use crate::crypto::keys::{SigningKeyPair, array32, random_array};
use crate::error::{Error, Result};
use crate::group::GroupId;
use crate::limits::{
    MAX_FORWARD_JUMP, MAX_GROUP_MESSAGE_BYTES, MAX_PLAINTEXT_BYTES, MAX_SKIPPED_KEYS, SENDER_CHAIN_MAX_AGE_MS,
    SENDER_CHAIN_MAX_MESSAGES,
};
use crate::ratchet::keys::{ChainKey, MessageKey};
use crate::ratchet::{padding, skip_to};
use crate::wire::{self, group as proto};

const MESSAGE_INFO: &[u8] = b"hush/group/v1/message";
const SIGNATURE_CONTEXT: &[u8] = b"hush/group-message/v1";
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Identifies one sender chain (random, 16 bytes).
pub(crate) type ChainId = [u8; 16];

/// This device's sending chain in a group, for one epoch.
#[derive(Clone, Debug)]
pub(crate) struct OutboundSenderChain {
    pub(crate) epoch: u64,
    pub(crate) chain_id: ChainId,
    pub(crate) chain: ChainKey,
    pub(crate) signing: SigningKeyPair,
    /// When this device started the chain (unix ms); 0 for a chain stored before chains rotated
    /// by age, dated at its next use.
    pub(crate) started_at_ms: u64,
}

impl OutboundSenderChain {
    pub(crate) fn new(rng: &mut impl CryptoRngCore, epoch: u64, now_ms: u64) -> Self {
        Self {
            epoch,
            chain_id: random_array(rng),
            chain: ChainKey { key: random_array(rng), index: 0 },
            signing: SigningKeyPair::generate(rng),
            started_at_ms: now_ms,
        }
    }

    /// Whether the chain has carried [`SENDER_CHAIN_MAX_MESSAGES`] messages or is
    /// [`SENDER_CHAIN_MAX_AGE_MS`] old (docs/PROTOCOL.md §10.3): then the next message starts a new
    /// one, so a leaked chain key reads no more than that of this sender's messages. A clock that
    /// went back never makes a chain old.
    pub(crate) fn worn_out(&self, now_ms: u64) -> bool {
        let dated = self.started_at_ms != 0;
        self.chain.index >= SENDER_CHAIN_MAX_MESSAGES
            || (dated && now_ms.saturating_sub(self.started_at_ms) >= SENDER_CHAIN_MAX_AGE_MS)
    }

    /// The distribution message for this chain at its current position.
    pub(crate) fn distribution(&self, group: &GroupId) -> Vec<u8> {
        // The message type zeroizes on drop, so the chain key copy in it does not linger.
        proto::SenderKeyDistribution {
            version: FORMAT_VERSION,
            group_id: group.0.to_vec(),
            epoch: self.epoch,
            chain_id: self.chain_id.to_vec(),
            iteration: self.chain.index,
            chain_key: self.chain.key.to_vec(),
            signing_key: self.signing.public().to_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    pub(crate) fn encrypt(&mut self, group: &GroupId, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(Error::TooLarge { what: "plaintext", size: plaintext.len(), max: MAX_PLAINTEXT_BYTES });
        }
        let next = self.chain.next()?.ok_or(Error::TooFarAhead { jump: u64::from(u32::MAX), max: MAX_FORWARD_JUMP })?;
        let secrets = self.chain.message_key()?.expand_with(MESSAGE_INFO)?;
        let mut msg = proto::GroupMessage {
            version: FORMAT_VERSION,
            group_id: group.0.to_vec(),
            epoch: self.epoch,
            chain_id: self.chain_id.to_vec(),
            iteration: self.chain.index,
            ciphertext: Vec::new(),
            signature: Vec::new(),
        };
        // The AEAD binds the header fields; the signature binds everything to the chain's key.
        msg.ciphertext = aead::seal(&secrets.key, &secrets.nonce, &msg.encode_to_vec(), &padding::pad(plaintext))?;
        msg.signature = self.signing.sign(SIGNATURE_CONTEXT, &msg.encode_to_vec()).to_vec();
        self.chain = next;
        Ok(msg.encode_to_vec())
    }
}

/// A member device's chain as received through a [`SenderKeyDistribution`](proto::SenderKeyDistribution).
#[derive(Clone, Debug)]
pub(crate) struct InboundSenderChain {
    pub(crate) sender_user: SigningPublicKey,
    pub(crate) sender_device: SigningPublicKey,
    pub(crate) epoch: u64,
    pub(crate) chain_id: ChainId,
    pub(crate) signing_key: SigningPublicKey,
    /// The key of the next message expected.
    pub(crate) chain: ChainKey,
    /// Keys of messages passed over, ascending by index.
    pub(crate) skipped: Vec<MessageKey>,
}

/// A decoded group message whose signature is not yet checked.
/// The group id a sender-key distribution names.
pub(crate) fn distribution_group_id(bytes: &[u8]) -> Result<GroupId> {
    let d: proto::SenderKeyDistribution = wire::decode(bytes, MAX_DISTRIBUTION_BYTES, "sender key distribution")?;
    wire::check_version("sender key distribution", d.version, FORMAT_VERSION)?;
    GroupId::from_slice(&d.group_id)
}

/// Upper bound of an encoded distribution (ids, keys and counters: about 150 bytes).
const MAX_DISTRIBUTION_BYTES: usize = 1024;

pub(crate) struct ParsedGroupMessage {
    pub(crate) group_id: GroupId,
    pub(crate) epoch: u64,
    pub(crate) chain_id: ChainId,
    pub(crate) iteration: u32,
    pub(crate) ciphertext: Vec<u8>,
    /// The encoding the signature covers (and the AEAD's AD: the same without the ciphertext).
    signed: Vec<u8>,
    aead_ad: Vec<u8>,
    signature: Vec<u8>,
}

impl ParsedGroupMessage {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut msg: proto::GroupMessage = wire::decode(bytes, MAX_GROUP_MESSAGE_BYTES, "group message")?;
        wire::check_version("group message", msg.version, FORMAT_VERSION)?;
        let group_id = GroupId::from_slice(&msg.group_id)?;
        let chain_id = msg.chain_id.as_slice().try_into().map_err(|_| Error::Malformed { what: "chain id" })?;
        let signature = core::mem::take(&mut msg.signature);
        let signed = msg.encode_to_vec();
        let ciphertext = core::mem::take(&mut msg.ciphertext);
        let aead_ad = msg.encode_to_vec();
        Ok(Self {
            group_id,
            epoch: msg.epoch,
            chain_id,
            iteration: msg.iteration,
            ciphertext,
            signed,
            aead_ad,
            signature,
        })
    }
}

impl InboundSenderChain {
    /// Parses a distribution received from `sender_device` of `sender_user` over a 1:1 session.
    pub(crate) fn from_distribution(
        group: &GroupId,
        sender_user: SigningPublicKey,
        sender_device: SigningPublicKey,
        bytes: &[u8],
    ) -> Result<Self> {
        let d: proto::SenderKeyDistribution = wire::decode(bytes, MAX_DISTRIBUTION_BYTES, "sender key distribution")?;
        wire::check_version("sender key distribution", d.version, FORMAT_VERSION)?;
        if GroupId::from_slice(&d.group_id)? != *group {
            return Err(Error::Malformed { what: "sender key distribution group" });
        }
        Ok(Self {
            sender_user,
            sender_device,
            epoch: d.epoch,
            chain_id: d.chain_id.as_slice().try_into().map_err(|_| Error::Malformed { what: "chain id" })?,
            signing_key: SigningPublicKey::from_slice(&d.signing_key, "sender signing key")?,
            chain: ChainKey { key: array32(&d.chain_key, "sender chain key")?, index: d.iteration },
            skipped: Vec::new(),
        })
    }

    /// Verifies and decrypts; on any error the chain is unchanged.
    pub(crate) fn decrypt(&mut self, msg: &ParsedGroupMessage) -> Result<Vec<u8>> {
        self.signing_key.verify(SIGNATURE_CONTEXT, &msg.signed, &msg.signature, "group message")?;
        if msg.epoch != self.epoch {
            return Err(Error::Malformed { what: "group message epoch" });
        }
        if msg.iteration < self.chain.index {
            let pos = self.skipped.iter().position(|k| k.index == msg.iteration).ok_or(Error::DuplicateMessage)?;
            let key = self.skipped.get(pos).ok_or(Error::Internal("skipped index"))?;
            let plaintext = open(key, msg)?;
            self.skipped.remove(pos);
            return Ok(plaintext);
        }
        let (passed, current) = skip_to(&self.chain, msg.iteration)?;
        let plaintext = open(&current.message_key()?, msg)?;
        let next = current.next()?.ok_or(Error::TooFarAhead { jump: u64::from(u32::MAX), max: MAX_FORWARD_JUMP })?;
        self.chain = next;
        self.skipped.extend(passed);
        let excess = self.skipped.len().saturating_sub(MAX_SKIPPED_KEYS);
        self.skipped.drain(..excess);
        Ok(plaintext)
    }
}

fn open(key: &MessageKey, msg: &ParsedGroupMessage) -> Result<Vec<u8>> {
    let secrets = key.expand_with(MESSAGE_INFO)?;
    padding::unpad(aead::open(&secrets.key, &secrets.nonce, &msg.aead_ad, &msg.ciphertext)?)
}
