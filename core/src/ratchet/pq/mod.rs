//! The triple ratchet's ML-KEM-768 epoch ratchet (docs/PROTOCOL.md §7A), beside the Double Ratchet:
//! the two sides take turns sending an encapsulation key and a ciphertext, in erasure-coded chunks on
//! ordinary messages; each completed exchange gives the next epoch key, which every message key of
//! that epoch mixes in (`MessageKey::expand_hybrid`).
//!
//! It changes only through [`PqRatchet::prepare_send`] and [`PqRatchet::receive`], which the session
//! runs on a copy and keeps only when the whole message succeeded.

pub(crate) mod chunk;
pub(crate) mod erasure;
pub(crate) mod fuzzing;
pub(crate) mod keys;
pub(crate) mod pickle;

use core::fmt;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::kem::incremental::{self, CT1_LEN, CT2_LEN, PK1_LEN, PK2_LEN};
use crate::crypto::keys::random_array;
use crate::error::{Error, Result};
use crate::limits::{MAX_PQ_EPOCH_KEYS, PQ_CHUNK_BYTES};
use crate::ratchet::keys::Key32;
use erasure::{CT_CODE, CT1_SHARDS, EK_CODE, Received, Shard};

/// An encapsulation key on the wire: `pk1 ‖ pk2`.
pub(crate) const EK_LEN: usize = PK1_LEN + PK2_LEN;

/// Secret bytes that zeroize on drop and never print (a key generation seed, encapsulation randomness).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secret<const N: usize>(pub(crate) [u8; N]);

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The key of one epoch, kept while messages of that epoch may still arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EpochKey {
    pub(crate) epoch: u32,
    pub(crate) key: Key32,
}

/// Our side of the exchange that makes the epoch after the one we send in, when we send the
/// encapsulation key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EkSide {
    /// The key pair's generation seed and its public `pk1 ‖ pk2`, from our first send of the exchange.
    pub(crate) key: Option<(Secret<64>, Box<[u8; EK_LEN]>)>,
    /// The index of the next shard we send.
    pub(crate) next: u8,
    /// Shards of the peer's ciphertext.
    pub(crate) ct: Received,
}

/// Our encapsulation to the peer's key: the randomness `m`, `ct1`, and `ct2` once `pk2` arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Encapsulation {
    pub(crate) m: Secret<32>,
    pub(crate) ct1: Box<[u8; CT1_LEN]>,
    pub(crate) ct2: Option<[u8; CT2_LEN]>,
}

/// Our side when we send the ciphertext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CtSide {
    /// Shards of the peer's key, until it is whole.
    pub(crate) ek: Received,
    /// The peer's whole key (checked), once rebuilt.
    pub(crate) key: Option<Box<[u8; EK_LEN]>>,
    /// From our first send after `pk1` arrived.
    pub(crate) encapsulation: Option<Encapsulation>,
    pub(crate) next: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exchange {
    Ek(EkSide),
    Ct(CtSide),
}

/// The epoch ratchet of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PqRatchet {
    /// Whether we initiated the session: the responder sends the key of odd epochs.
    pub(crate) initiator: bool,
    /// The epoch our messages are encrypted in.
    pub(crate) sending_epoch: u32,
    /// The root of the newest epoch we know (`sending_epoch`, or the next one once we encapsulated).
    pub(crate) root: Key32,
    /// Newest first, at most [`MAX_PQ_EPOCH_KEYS`]; the newest is the root's epoch.
    pub(crate) keys: Vec<EpochKey>,
    /// The exchange for epoch `sending_epoch + 1`.
    pub(crate) exchange: Exchange,
}

/// Whether the side (`initiator` or not) sends the encapsulation key of `epoch`.
pub(crate) fn sends_key(epoch: u32, initiator: bool) -> bool {
    (epoch % 2 == 1) != initiator
}

fn exchange_for(epoch: u32, initiator: bool) -> Exchange {
    if sends_key(epoch, initiator) { Exchange::Ek(EkSide::default()) } else { Exchange::Ct(CtSide::default()) }
}

impl CtSide {
    /// The peer's `pk1`, from its first data shard or its whole key.
    fn pk1(&self) -> Option<[u8; PK1_LEN]> {
        match &self.key {
            Some(key) => key.first_chunk().copied(),
            None => self.ek.get(0).map(|s| s.data),
        }
    }
}

impl PqRatchet {
    /// Epoch 0 from the two keys of `keys::initial` or `keys::upgraded`.
    pub(crate) fn new(initiator: bool, (root, key): (Key32, Key32)) -> Self {
        Self {
            initiator,
            sending_epoch: 0,
            root,
            keys: vec![EpochKey { epoch: 0, key }],
            exchange: exchange_for(1, initiator),
        }
    }

    /// The key of `epoch`. An epoch older than every key kept is [`Error::DuplicateMessage`] (as a
    /// message whose skipped key was dropped); one we do not know is [`Error::DecryptionFailed`].
    pub(crate) fn epoch_key(&self, epoch: u32) -> Result<&Key32> {
        if let Some(k) = self.keys.iter().find(|k| k.epoch == epoch) {
            return Ok(&k.key);
        }
        match self.keys.last() {
            Some(oldest) if epoch < oldest.epoch => Err(Error::DuplicateMessage),
            _ => Err(Error::DecryptionFailed),
        }
    }

    fn next_epoch(&self) -> Result<u32> {
        self.sending_epoch.checked_add(1).ok_or(Error::Internal("pq epoch overflow"))
    }

    fn push_key(&mut self, root: Key32, epoch: u32, key: Key32) {
        self.root = root;
        self.keys.insert(0, EpochKey { epoch, key });
        self.keys.truncate(MAX_PQ_EPOCH_KEYS);
    }

    /// What our next message carries: its epoch, that epoch's key and at most one shard. Draws the
    /// key pair or the encapsulation randomness on the first send that needs it.
    pub(crate) fn prepare_send(&mut self, rng: &mut impl CryptoRngCore) -> Result<(u32, Key32, Option<Shard>)> {
        let next_epoch = self.next_epoch()?;
        let mut derived = None;
        let shard = match &mut self.exchange {
            Exchange::Ek(side) => {
                if side.key.is_none() {
                    let seed = Secret(random_array::<64>(rng));
                    let (pk1, pk2) = incremental::public_parts(&seed.0);
                    let mut key = Box::new([0u8; EK_LEN]);
                    key[..PK1_LEN].copy_from_slice(&pk1);
                    key[PK1_LEN..].copy_from_slice(pk2.as_slice());
                    side.key = Some((seed, key));
                }
                let (_, key) = side.key.as_ref().ok_or(Error::Internal("pq key"))?;
                let index = side.next;
                side.next = ((usize::from(index) + 1) % EK_CODE.total()) as u8;
                Some(EK_CODE.shard(key.as_slice(), index)?)
            }
            Exchange::Ct(side) => match side.pk1() {
                None => None,
                Some(pk1) => {
                    if side.encapsulation.is_none() {
                        let m = Secret(random_array::<32>(rng));
                        let (ct1, ss, _) = incremental::encapsulate1(&pk1, &m.0)?;
                        derived = Some(keys::epoch_step(&self.root, &ss, next_epoch)?);
                        side.encapsulation = Some(Encapsulation { m, ct1, ct2: None });
                        side.next = 0;
                    }
                    let enc = side.encapsulation.as_mut().ok_or(Error::Internal("pq encapsulation"))?;
                    if let (None, Some(key)) = (&enc.ct2, &side.key) {
                        let pk2 = key.last_chunk::<PK2_LEN>().ok_or(Error::Internal("pq key"))?;
                        enc.ct2 = Some(incremental::encapsulate2(&pk1, &enc.m.0, pk2)?);
                        // ct1's shards went out already: the rest of the code next.
                        side.next = CT1_SHARDS as u8;
                    }
                    let index = side.next;
                    Some(match &enc.ct2 {
                        None => {
                            side.next = ((usize::from(index) + 1) % CT1_SHARDS) as u8;
                            CT_CODE.shard(&[enc.ct1.as_slice(), &[0u8; CT2_LEN]].concat(), index)?
                        }
                        Some(ct2) => {
                            side.next = ((usize::from(index) + 1) % CT_CODE.total()) as u8;
                            CT_CODE.shard(&[enc.ct1.as_slice(), ct2.as_slice()].concat(), index)?
                        }
                    })
                }
            },
        };
        if let Some((root, key)) = derived {
            self.push_key(root, next_epoch, key);
        }
        let key = self.epoch_key(self.sending_epoch)?.clone();
        Ok((self.sending_epoch, key, shard))
    }

    /// Takes what a message of the peer's, encrypted in `epoch` (whose key we have), carried.
    pub(crate) fn receive(&mut self, epoch: u32, shard: Option<Shard>) -> Result<()> {
        // The peer's chunk is of the exchange after its epoch, whose key it sends or not.
        let peer_code = if sends_key(epoch.saturating_add(1), !self.initiator) { EK_CODE } else { CT_CODE };
        if shard.as_ref().is_some_and(|s| usize::from(s.index) >= peer_code.total()) {
            return Err(Error::Malformed { what: "pq chunk index" });
        }
        if epoch > self.sending_epoch {
            // Only the key side moves to an epoch first, after decapsulating our ciphertext.
            let encapsulated = matches!(&self.exchange, Exchange::Ct(side) if side.encapsulation.is_some());
            if !encapsulated || epoch != self.next_epoch()? {
                return Err(Error::Malformed { what: "pq epoch" });
            }
            self.sending_epoch = epoch;
            self.exchange = exchange_for(self.next_epoch()?, self.initiator);
        }
        match shard {
            // A chunk of an exchange already done (a late message) has nothing more to give.
            Some(shard) if epoch == self.sending_epoch => self.take_shard(shard),
            _ => Ok(()),
        }
    }

    fn take_shard(&mut self, shard: Shard) -> Result<()> {
        let next_epoch = self.next_epoch()?;
        match &mut self.exchange {
            Exchange::Ek(side) => {
                if usize::from(shard.index) >= CT_CODE.total() {
                    return Err(Error::Malformed { what: "pq chunk index" });
                }
                // A ciphertext before our key went out cannot be for it.
                let Some((seed, _)) = &side.key else { return Err(Error::Malformed { what: "pq chunk" }) };
                if !side.ct.add(shard) || side.ct.shards.len() < CT_CODE.data {
                    return Ok(());
                }
                let ct = CT_CODE.reconstruct(&side.ct.shards)?;
                let (ct1, ct2) = ct.split_at_checked(CT1_LEN).ok_or(Error::Internal("pq ciphertext"))?;
                let ct1: &[u8; CT1_LEN] = ct1.try_into().map_err(|_| Error::Internal("pq ciphertext"))?;
                let ct2: &[u8; CT2_LEN] = ct2.try_into().map_err(|_| Error::Internal("pq ciphertext"))?;
                let ss = incremental::decapsulate(&seed.0, ct1, ct2);
                let (root, key) = keys::epoch_step(&self.root, &ss, next_epoch)?;
                self.push_key(root, next_epoch, key);
                self.sending_epoch = next_epoch;
                self.exchange = exchange_for(self.next_epoch()?, self.initiator);
            }
            Exchange::Ct(side) => {
                if usize::from(shard.index) >= EK_CODE.total() {
                    return Err(Error::Malformed { what: "pq chunk index" });
                }
                if side.key.is_some() || !side.ek.add(shard) || side.ek.shards.len() < EK_CODE.data {
                    return Ok(());
                }
                let object = EK_CODE.reconstruct(&side.ek.shards)?;
                let key: Box<[u8; EK_LEN]> =
                    object.into_boxed_slice().try_into().map_err(|_| Error::Internal("pq key"))?;
                let pk1 = key.first_chunk::<PK1_LEN>().ok_or(Error::Internal("pq key"))?;
                let pk2 = key.last_chunk::<PK2_LEN>().ok_or(Error::Internal("pq key"))?;
                incremental::check(pk1, pk2)?;
                side.key = Some(key);
                side.ek = Received::default();
            }
        }
        Ok(())
    }
}

const _: () = assert!(MAX_PQ_EPOCH_KEYS >= 2 && PQ_CHUNK_BYTES == 64);

#[cfg(test)]
pub(crate) mod tests;
