//! The Double Ratchet with header encryption (Signal DR spec §3 and §4; docs/PROTOCOL.md §7).
//!
//! Decryption is all-or-nothing without copying the state: it computes everything a message needs
//! into locals, and writes to `self` only after the AEAD verified. Messages are of version 1 (this
//! ratchet alone) or 2 (the triple ratchet: `pq` beside it, §7A); the version rules live here.

pub(crate) mod header;
pub(crate) mod keys;
pub(crate) mod padding;
pub(crate) mod pickle;
pub(crate) mod pq;

use rand_core::CryptoRngCore;

use crate::crypto::PublicKey;
use crate::crypto::aead::{self, NONCE_LEN};
use crate::crypto::keys::{KeyPair, random_array};
use crate::error::{Error, Result};
use crate::limits::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_BYTES, MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS};
use crate::message::RatchetMessage;
use header::{ENCRYPTED_HEADER_LEN, ENCRYPTED_HEADER_LEN_PQ, HEADER_VERSION, HEADER_VERSION_PQ, Header};
use keys::{ChainKey, Key32, MessageKey};

/// A receiving chain: the peer's ratchet key and the header key its headers are sealed with.
/// Only the current chain keeps its chain key; older ones keep skipped keys and their final index,
/// which is enough to tell a late message from a duplicate.
#[derive(Clone, Debug)]
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) header_key: Key32,
    pub(crate) chain_key: Option<ChainKey>,
    /// Index of the next message expected on this chain.
    pub(crate) next_index: u32,
    /// Skipped message keys, ascending by index.
    pub(crate) skipped: Vec<MessageKey>,
    /// The lowest index of a version-2 message received on this chain: version 1 is refused from
    /// there on (§7A.6).
    pub(crate) v2_from: Option<u32>,
}

/// Double Ratchet state of one session.
#[derive(Clone, Debug)]
pub(crate) struct RatchetState {
    pub(crate) root_key: Key32,
    pub(crate) sending_ratchet: KeyPair,
    /// `None` only for a responder that has not yet processed the first message.
    pub(crate) sending_chain: Option<ChainKey>,
    pub(crate) sending_header_key: Option<Key32>,
    pub(crate) next_sending_header_key: Key32,
    pub(crate) previous_counter: u32,
    /// Newest first; at most [`MAX_RECEIVING_CHAINS`].
    pub(crate) receiving: Vec<ReceivingChain>,
    pub(crate) next_receiving_header_key: Key32,
    /// Whether a version-2 message decrypted: no version-1 message opens a new chain after it.
    pub(crate) received_v2: bool,
}

/// How one message is protected (§7A.6): by the Double Ratchet alone (version 1; `advertise` adds
/// the one byte of padding that tells the peer we speak version 2) or by the triple ratchet in
/// `epoch`, whose key `key` every message key mixes in (version 2).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Suite<'a> {
    V1 { advertise: bool },
    V2 { epoch: u32, key: &'a Key32 },
}

/// The header AEAD's associated data for `version`: the session AD, followed for version 2 by the
/// version byte, so a version-2 message never opens as version 1 nor the reverse.
pub(crate) fn header_ad(ad: &[u8], version: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(ad.len() + 1);
    out.extend_from_slice(ad);
    if version != HEADER_VERSION {
        out.push(version);
    }
    out
}

/// Opens a version-1 body: the plaintext, and whether its padding advertised version 2 (a padded
/// length one over Padmé's, which is always even, §7A.6).
pub(crate) fn open_v1(key: &MessageKey, body_ad: &[u8], ciphertext: &[u8]) -> Result<(Vec<u8>, bool)> {
    let secrets = key.expand()?;
    let padded = aead::open(&secrets.key, &secrets.nonce, body_ad, ciphertext)?;
    let advertised = padded.len() % 2 == 1;
    Ok((padding::unpad(padded)?, advertised))
}

fn downgrade() -> Error {
    Error::UnsupportedVersion { what: "ratchet message after version 2", version: u32::from(HEADER_VERSION) }
}

/// A version-1 message on a chain at or after its first version-2 message is refused.
fn check_chain_version(v2_from: Option<u32>, header: &Header) -> Result<()> {
    if header.epoch.is_none() && v2_from.is_some_and(|from| header.counter >= from) {
        return Err(downgrade());
    }
    Ok(())
}

fn note_version(v2_from: &mut Option<u32>, header: &Header) {
    if header.epoch.is_some() {
        *v2_from = Some(v2_from.map_or(header.counter, |from| from.min(header.counter)));
    }
}

/// What walking a chain forward to a message produced: the keys it passed, the message's key,
/// and the chain key after it.
struct ChainWalk {
    skipped: Vec<MessageKey>,
    message_key: MessageKey,
    next: Option<ChainKey>,
}

/// Advances `chain` to index `end`, collecting the message keys it passes (at most the newest
/// [`MAX_SKIPPED_KEYS`]). Jumps beyond [`MAX_FORWARD_JUMP`] are refused before any work.
pub(crate) fn skip_to(chain: &ChainKey, end: u32) -> Result<(Vec<MessageKey>, ChainKey)> {
    let jump = end.saturating_sub(chain.index);
    if jump > MAX_FORWARD_JUMP {
        return Err(Error::TooFarAhead { jump: u64::from(jump), max: MAX_FORWARD_JUMP });
    }
    let keep_from = end.saturating_sub(MAX_SKIPPED_KEYS as u32);
    let mut skipped = Vec::new();
    let mut current = chain.clone();
    while current.index < end {
        if current.index >= keep_from {
            skipped.push(current.message_key()?);
        }
        current = current.next()?.ok_or(Error::Internal("chain index overflow"))?;
    }
    Ok((skipped, current))
}

/// Advances `chain` to the message at `target`: the keys passed, the message's key, the chain after.
fn walk(chain: &ChainKey, target: u32) -> Result<ChainWalk> {
    let (skipped, at) = skip_to(chain, target)?;
    Ok(ChainWalk { skipped, message_key: at.message_key()?, next: at.next()? })
}

fn body_ad(ad: &[u8], msg: &RatchetMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(ad.len() + NONCE_LEN + msg.encrypted_header.len());
    out.extend_from_slice(ad);
    out.extend_from_slice(&msg.header_nonce);
    out.extend_from_slice(&msg.encrypted_header);
    out
}

impl RatchetState {
    /// Initiator (Alice): her first sending chain starts from a DH with the responder's signed
    /// prekey, which serves as the responder's first ratchet key.
    pub(crate) fn initiator(
        rng: &mut impl CryptoRngCore,
        shared_secret: &[u8; 32],
        their_ratchet: PublicKey,
    ) -> Result<Self> {
        let (root, hka, nhkb) = keys::initial_keys(shared_secret)?;
        let sending_ratchet = KeyPair::generate(rng);
        let (root_key, chain, next_sending_header_key) =
            keys::root_step(&root, &*sending_ratchet.agree(&their_ratchet)?)?;
        Ok(Self {
            root_key,
            sending_ratchet,
            sending_chain: Some(chain),
            sending_header_key: Some(hka),
            next_sending_header_key,
            previous_counter: 0,
            receiving: Vec::new(),
            next_receiving_header_key: nhkb,
            received_v2: false,
        })
    }

    /// Responder (Bob): his signed prekey pair is his first ratchet key pair.
    pub(crate) fn responder(shared_secret: &[u8; 32], our_ratchet: KeyPair) -> Result<Self> {
        let (root_key, hka, nhkb) = keys::initial_keys(shared_secret)?;
        Ok(Self {
            root_key,
            sending_ratchet: our_ratchet,
            sending_chain: None,
            sending_header_key: None,
            next_sending_header_key: nhkb,
            previous_counter: 0,
            receiving: Vec::new(),
            next_receiving_header_key: hka,
            received_v2: false,
        })
    }

    /// Encrypts a version-1 message that does not advertise version 2 (the pinned vectors).
    #[cfg(test)]
    pub(crate) fn encrypt(
        &mut self,
        rng: &mut impl CryptoRngCore,
        ad: &[u8],
        plaintext: &[u8],
    ) -> Result<RatchetMessage> {
        self.encrypt_with(rng, ad, plaintext, Suite::V1 { advertise: false })
    }

    /// Whether there is a sending chain (a responder has one from its first received message).
    pub(crate) fn can_send(&self) -> bool {
        self.sending_chain.is_some() && self.sending_header_key.is_some()
    }

    /// Encrypts `body` (for version 2, the chunk block and the plaintext) as `suite` says.
    pub(crate) fn encrypt_with(
        &mut self,
        rng: &mut impl CryptoRngCore,
        ad: &[u8],
        body: &[u8],
        suite: Suite<'_>,
    ) -> Result<RatchetMessage> {
        let (epoch, max) = match suite {
            Suite::V1 { .. } => (None, MAX_PLAINTEXT_BYTES),
            Suite::V2 { epoch, .. } => (Some(epoch), MAX_PLAINTEXT_BYTES + pq::chunk::MAX_CHUNK_OVERHEAD),
        };
        if body.len() > max {
            return Err(Error::TooLarge { what: "plaintext", size: body.len(), max });
        }
        let (Some(chain), Some(header_key)) = (&self.sending_chain, &self.sending_header_key) else {
            return Err(Error::NoSession);
        };
        let next = chain.next()?.ok_or(Error::TooFarAhead { jump: u64::from(u32::MAX), max: MAX_FORWARD_JUMP })?;
        let header = Header {
            ratchet_key: self.sending_ratchet.public(),
            previous_counter: self.previous_counter,
            counter: chain.index,
            epoch,
        };
        let ad = header_ad(ad, header.version());
        let header_nonce: [u8; NONCE_LEN] = random_array(rng);
        let encrypted_header = header.seal(header_key, &header_nonce, &ad)?;
        let mut msg = RatchetMessage { header_nonce, encrypted_header, ciphertext: Vec::new() };
        let mk = chain.message_key()?;
        let (secrets, mut padded) = match suite {
            Suite::V1 { .. } => (mk.expand()?, padding::pad(body)),
            Suite::V2 { key, .. } => (mk.expand_hybrid(key)?, padding::pad(body)),
        };
        if let Suite::V1 { advertise: true } = suite {
            padded.push(0);
        }
        msg.ciphertext = aead::seal(&secrets.key, &secrets.nonce, &body_ad(&ad, &msg), &padded)?;
        self.sending_chain = Some(next);
        Ok(msg)
    }

    /// Decrypts a version-1 message, or returns an error and leaves the state exactly as it was.
    /// [`Error::DecryptionFailed`] means no header key of this state opens the header.
    #[cfg(test)]
    pub(crate) fn decrypt(&mut self, rng: &mut impl CryptoRngCore, ad: &[u8], msg: &RatchetMessage) -> Result<Vec<u8>> {
        self.decrypt_with(rng, ad, msg, |header, key, body_ad| match header.epoch {
            None => open_v1(key, body_ad, &msg.ciphertext).map(|(plaintext, _)| plaintext),
            Some(_) => Err(Error::UnsupportedVersion { what: "header", version: u32::from(HEADER_VERSION_PQ) }),
        })
    }

    /// Decrypts `msg`: finds its header and message key, then `open(header, message key, body AD)`
    /// opens the body; the state changes only if that succeeded. On any error it is exactly as it was.
    pub(crate) fn decrypt_with<T>(
        &mut self,
        rng: &mut impl CryptoRngCore,
        ad: &[u8],
        msg: &RatchetMessage,
        open: impl FnOnce(&Header, &MessageKey, &[u8]) -> Result<T>,
    ) -> Result<T> {
        let version = match msg.encrypted_header.len() {
            ENCRYPTED_HEADER_LEN => HEADER_VERSION,
            ENCRYPTED_HEADER_LEN_PQ => HEADER_VERSION_PQ,
            _ => return Err(Error::Malformed { what: "encrypted header" }),
        };
        let ad = header_ad(ad, version);
        for ci in 0..self.receiving.len() {
            let Some(chain) = self.receiving.get(ci) else { break };
            let Ok(header) = Header::open(&chain.header_key, &msg.header_nonce, &ad, &msg.encrypted_header) else {
                continue;
            };
            if header.ratchet_key != chain.ratchet_key {
                return Err(Error::DecryptionFailed);
            }
            return self.decrypt_in_chain(ci, &header, &ad, msg, open);
        }
        let header = Header::open(&self.next_receiving_header_key, &msg.header_nonce, &ad, &msg.encrypted_header)?;
        self.decrypt_with_ratchet_step(rng, &header, &ad, msg, open)
    }

    fn decrypt_in_chain<T>(
        &mut self,
        ci: usize,
        header: &Header,
        ad: &[u8],
        msg: &RatchetMessage,
        open: impl FnOnce(&Header, &MessageKey, &[u8]) -> Result<T>,
    ) -> Result<T> {
        let chain = self.receiving.get_mut(ci).ok_or(Error::Internal("chain index"))?;
        check_chain_version(chain.v2_from, header)?;
        let body_ad = body_ad(ad, msg);
        if let Some(pos) = chain.skipped.iter().position(|k| k.index == header.counter) {
            let key = chain.skipped.get(pos).ok_or(Error::Internal("skipped index"))?;
            let opened = open(header, key, &body_ad)?;
            chain.skipped.remove(pos);
            note_version(&mut chain.v2_from, header);
            self.received_v2 |= header.epoch.is_some();
            return Ok(opened);
        }
        if header.counter < chain.next_index {
            return Err(Error::DuplicateMessage);
        }
        // An old chain was walked to its end when the peer ratcheted; nothing more can come on it.
        let ck = chain.chain_key.as_ref().ok_or(Error::DecryptionFailed)?;
        let walked = walk(ck, header.counter)?;
        let opened = open(header, &walked.message_key, &body_ad)?;
        chain.next_index = header.counter.saturating_add(1);
        chain.chain_key = walked.next;
        chain.skipped.extend(walked.skipped);
        note_version(&mut chain.v2_from, header);
        self.received_v2 |= header.epoch.is_some();
        self.enforce_skipped_limit();
        Ok(opened)
    }

    fn decrypt_with_ratchet_step<T>(
        &mut self,
        rng: &mut impl CryptoRngCore,
        header: &Header,
        ad: &[u8],
        msg: &RatchetMessage,
        open: impl FnOnce(&Header, &MessageKey, &[u8]) -> Result<T>,
    ) -> Result<T> {
        // After a version-2 message every new chain of the peer's is version 2.
        if header.epoch.is_none() && self.received_v2 {
            return Err(downgrade());
        }
        // Keys the peer's previous chain still owes us, up to its announced length.
        let tail = match self.receiving.first().and_then(|c| c.chain_key.as_ref()) {
            Some(ck) => Some(skip_to(ck, header.previous_counter)?.0),
            None => None,
        };
        let (root, receiving_chain, next_receiving_header_key) =
            keys::root_step(&self.root_key, &*self.sending_ratchet.agree(&header.ratchet_key)?)?;
        let sending_ratchet = KeyPair::generate(rng);
        let (root_key, sending_chain, next_sending_header_key) =
            keys::root_step(&root, &*sending_ratchet.agree(&header.ratchet_key)?)?;
        let walked = walk(&receiving_chain, header.counter)?;
        let opened = open(header, &walked.message_key, &body_ad(ad, msg))?;

        // Verified: commit.
        if let (Some(current), Some(skipped)) = (self.receiving.first_mut(), tail) {
            current.chain_key = None;
            current.next_index = current.next_index.max(header.previous_counter);
            current.skipped.extend(skipped);
        }
        let new_chain = ReceivingChain {
            ratchet_key: header.ratchet_key,
            header_key: self.next_receiving_header_key.clone(),
            chain_key: walked.next,
            next_index: header.counter.saturating_add(1),
            skipped: walked.skipped,
            v2_from: header.epoch.map(|_| header.counter),
        };
        self.receiving.insert(0, new_chain);
        self.receiving.truncate(MAX_RECEIVING_CHAINS);
        self.previous_counter = self.sending_chain.as_ref().map_or(0, |c| c.index);
        self.sending_header_key = Some(self.next_sending_header_key.clone());
        self.next_sending_header_key = next_sending_header_key;
        self.next_receiving_header_key = next_receiving_header_key;
        self.sending_ratchet = sending_ratchet;
        self.sending_chain = Some(sending_chain);
        self.root_key = root_key;
        self.received_v2 |= header.epoch.is_some();
        self.enforce_skipped_limit();
        Ok(opened)
    }

    /// Drops the oldest skipped keys (oldest chain first, lowest index first) beyond the limit.
    fn enforce_skipped_limit(&mut self) {
        let mut excess = self.skipped_count().saturating_sub(MAX_SKIPPED_KEYS);
        for chain in self.receiving.iter_mut().rev() {
            if excess == 0 {
                break;
            }
            let n = excess.min(chain.skipped.len());
            chain.skipped.drain(..n);
            excess -= n;
        }
    }

    pub(crate) fn skipped_count(&self) -> usize {
        self.receiving.iter().map(|c| c.skipped.len()).sum()
    }
}
