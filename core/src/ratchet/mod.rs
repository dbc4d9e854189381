//! The Double Ratchet with header encryption (Signal DR spec §3 and §4; docs/PROTOCOL.md §7).
//!
//! Decryption is all-or-nothing without copying the state: it computes everything a message needs
//! into locals, and writes to `self` only after the AEAD verified.

pub(crate) mod header;
pub(crate) mod keys;
pub(crate) mod padding;
pub(crate) mod pickle;

use rand_core::CryptoRngCore;

use crate::crypto::PublicKey;
use crate::crypto::aead::{self, NONCE_LEN};
use crate::crypto::keys::{KeyPair, random_array};
use crate::error::{Error, Result};
use crate::limits::{MAX_FORWARD_JUMP, MAX_PLAINTEXT_BYTES, MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS};
use crate::message::RatchetMessage;
use header::Header;
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

fn open_body(key: &MessageKey, ad: &[u8], msg: &RatchetMessage) -> Result<Vec<u8>> {
    let secrets = key.expand()?;
    let padded = aead::open(&secrets.key, &secrets.nonce, &body_ad(ad, msg), &msg.ciphertext)?;
    padding::unpad(padded)
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
        })
    }

    pub(crate) fn encrypt(
        &mut self,
        rng: &mut impl CryptoRngCore,
        ad: &[u8],
        plaintext: &[u8],
    ) -> Result<RatchetMessage> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(Error::TooLarge { what: "plaintext", size: plaintext.len(), max: MAX_PLAINTEXT_BYTES });
        }
        let (Some(chain), Some(header_key)) = (&self.sending_chain, &self.sending_header_key) else {
            return Err(Error::NoSession);
        };
        let next = chain.next()?.ok_or(Error::TooFarAhead { jump: u64::from(u32::MAX), max: MAX_FORWARD_JUMP })?;
        let header = Header {
            ratchet_key: self.sending_ratchet.public(),
            previous_counter: self.previous_counter,
            counter: chain.index,
        };
        let header_nonce: [u8; NONCE_LEN] = random_array(rng);
        let encrypted_header = header.seal(header_key, &header_nonce, ad)?;
        let mut msg = RatchetMessage { header_nonce, encrypted_header, ciphertext: Vec::new() };
        let secrets = chain.message_key()?.expand()?;
        msg.ciphertext = aead::seal(&secrets.key, &secrets.nonce, &body_ad(ad, &msg), &padding::pad(plaintext))?;
        self.sending_chain = Some(next);
        Ok(msg)
    }

    /// Decrypts `msg`, or returns an error and leaves the state exactly as it was.
    /// [`Error::DecryptionFailed`] means no header key of this state opens the header.
    pub(crate) fn decrypt(&mut self, rng: &mut impl CryptoRngCore, ad: &[u8], msg: &RatchetMessage) -> Result<Vec<u8>> {
        for ci in 0..self.receiving.len() {
            let Some(chain) = self.receiving.get(ci) else { break };
            let Ok(header) = Header::open(&chain.header_key, &msg.header_nonce, ad, &msg.encrypted_header) else {
                continue;
            };
            if header.ratchet_key != chain.ratchet_key {
                return Err(Error::DecryptionFailed);
            }
            return self.decrypt_in_chain(ci, &header, ad, msg);
        }
        let header = Header::open(&self.next_receiving_header_key, &msg.header_nonce, ad, &msg.encrypted_header)?;
        self.decrypt_with_ratchet_step(rng, &header, ad, msg)
    }

    fn decrypt_in_chain(&mut self, ci: usize, header: &Header, ad: &[u8], msg: &RatchetMessage) -> Result<Vec<u8>> {
        let chain = self.receiving.get_mut(ci).ok_or(Error::Internal("chain index"))?;
        if let Some(pos) = chain.skipped.iter().position(|k| k.index == header.counter) {
            let key = chain.skipped.get(pos).ok_or(Error::Internal("skipped index"))?;
            let plaintext = open_body(key, ad, msg)?;
            chain.skipped.remove(pos);
            return Ok(plaintext);
        }
        if header.counter < chain.next_index {
            return Err(Error::DuplicateMessage);
        }
        // An old chain was walked to its end when the peer ratcheted; nothing more can come on it.
        let ck = chain.chain_key.as_ref().ok_or(Error::DecryptionFailed)?;
        let walked = walk(ck, header.counter)?;
        let plaintext = open_body(&walked.message_key, ad, msg)?;
        chain.next_index = header.counter.saturating_add(1);
        chain.chain_key = walked.next;
        chain.skipped.extend(walked.skipped);
        self.enforce_skipped_limit();
        Ok(plaintext)
    }

    fn decrypt_with_ratchet_step(
        &mut self,
        rng: &mut impl CryptoRngCore,
        header: &Header,
        ad: &[u8],
        msg: &RatchetMessage,
    ) -> Result<Vec<u8>> {
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
        let plaintext = open_body(&walked.message_key, ad, msg)?;

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
        self.enforce_skipped_limit();
        Ok(plaintext)
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
