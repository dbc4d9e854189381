//! The storage format ("pickle") of a [`RatchetState`] and of the chain and skipped message keys a
//! group sender chain shares with it: to and from `storage::RatchetState`, `storage::ChainKey` and
//! `storage::SkippedKey` of `core/proto/storage.proto`, embedded in a session record (see
//! `crate::session::pickle`) and a group (`crate::group::pickle`). The rules every format follows
//! are in `crate::pickle`.

use super::keys::{ChainKey, Key32, MessageKey};
use super::{RatchetState, ReceivingChain};
use crate::crypto::PublicKey;
use crate::crypto::keys::{KeyPair, array32};
use crate::error::{Error, Result};
use crate::limits::{MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS};
use crate::pickle::{check_count, secret32};
use crate::wire::storage;

/// A ratchet state as its storage message (embedded in a session, see `crate::session::pickle`).
pub(crate) fn ratchet_to_storage(r: &RatchetState) -> storage::RatchetState {
    storage::RatchetState {
        root_key: r.root_key.0.to_vec(),
        sending_ratchet_secret: r.sending_ratchet.secret_bytes().to_vec(),
        sending_chain: r.sending_chain.as_ref().map(chain_key_to_storage),
        sending_header_key: r.sending_header_key.as_ref().map(|k| k.0.to_vec()),
        next_sending_header_key: r.next_sending_header_key.0.to_vec(),
        previous_counter: r.previous_counter,
        receiving: r
            .receiving
            .iter()
            .map(|c| storage::ReceivingChain {
                ratchet_key: c.ratchet_key.as_bytes().to_vec(),
                header_key: c.header_key.0.to_vec(),
                chain_key: c.chain_key.as_ref().map(chain_key_to_storage),
                next_index: c.next_index,
                skipped: skipped_keys_to_storage(&c.skipped),
                v2_from: c.v2_from,
            })
            .collect(),
        next_receiving_header_key: r.next_receiving_header_key.0.to_vec(),
        received_v2: r.received_v2,
    }
}

/// Decodes a ratchet state, enforcing the ratchet's bounds (receiving chains, skipped keys).
pub(crate) fn ratchet_from_storage(p: &storage::RatchetState) -> Result<RatchetState> {
    check_count("receiving chains", p.receiving.len(), 0, MAX_RECEIVING_CHAINS)?;
    let skipped: usize = p.receiving.iter().map(|c| c.skipped.len()).sum();
    check_count("skipped message keys", skipped, 0, MAX_SKIPPED_KEYS)?;
    // Both or neither: a responder gets its first sending chain and header key in one ratchet step.
    let (sending_chain, sending_header_key) = match (&p.sending_chain, &p.sending_header_key) {
        (Some(chain), Some(key)) => {
            (Some(chain_key_from_storage(chain, "sending chain key")?), Some(key32(key, "sending header key")?))
        }
        (None, None) => (None, None),
        _ => return Err(Error::Malformed { what: "sending chain" }),
    };
    Ok(RatchetState {
        root_key: key32(&p.root_key, "root key")?,
        sending_ratchet: KeyPair::from_secret_bytes(*secret32(&p.sending_ratchet_secret, "sending ratchet key")?),
        sending_chain,
        sending_header_key,
        next_sending_header_key: key32(&p.next_sending_header_key, "next sending header key")?,
        previous_counter: p.previous_counter,
        receiving: p.receiving.iter().map(receiving_chain_from_storage).collect::<Result<_>>()?,
        next_receiving_header_key: key32(&p.next_receiving_header_key, "next receiving header key")?,
        received_v2: p.received_v2,
    })
}

fn receiving_chain_from_storage(p: &storage::ReceivingChain) -> Result<ReceivingChain> {
    let chain_key = p.chain_key.as_ref().map(|c| chain_key_from_storage(c, "receiving chain key")).transpose()?;
    // The ratchet keeps a receiving chain key exactly at the next expected message.
    if chain_key.as_ref().is_some_and(|c| c.index != p.next_index) {
        return Err(Error::Malformed { what: "receiving chain index" });
    }
    let skipped =
        skipped_keys_from_storage(&p.skipped, p.next_index, "skipped message key", "skipped message key index")?;
    // Only a received message sets it, so it lies below the next expected one.
    if p.v2_from.is_some_and(|from| from >= p.next_index) {
        return Err(Error::Malformed { what: "receiving chain version index" });
    }
    Ok(ReceivingChain {
        ratchet_key: PublicKey::from_slice(&p.ratchet_key, "receiving ratchet key")?,
        header_key: key32(&p.header_key, "receiving header key")?,
        chain_key,
        next_index: p.next_index,
        skipped,
        v2_from: p.v2_from,
    })
}

/// Skipped message keys of a ratchet receiving chain or a group sender chain.
pub(crate) fn skipped_keys_to_storage(keys: &[MessageKey]) -> Vec<storage::SkippedKey> {
    keys.iter().map(|k| storage::SkippedKey { index: k.index, key: k.key.to_vec() }).collect()
}

/// Decodes skipped message keys, which must be ascending (chains drop the oldest first) and all
/// before `next_index`, the next message the chain expects. `key_what` and `index_what` name the
/// field in errors.
pub(crate) fn skipped_keys_from_storage(
    keys: &[storage::SkippedKey],
    next_index: u32,
    key_what: &'static str,
    index_what: &'static str,
) -> Result<Vec<MessageKey>> {
    let mut skipped: Vec<MessageKey> = Vec::with_capacity(keys.len());
    for k in keys {
        if k.index >= next_index || skipped.last().is_some_and(|last| last.index >= k.index) {
            return Err(Error::Malformed { what: index_what });
        }
        skipped.push(MessageKey { key: array32(&k.key, key_what)?, index: k.index });
    }
    Ok(skipped)
}

pub(crate) fn chain_key_to_storage(c: &ChainKey) -> storage::ChainKey {
    storage::ChainKey { key: c.key.to_vec(), index: c.index }
}

pub(crate) fn chain_key_from_storage(p: &storage::ChainKey, what: &'static str) -> Result<ChainKey> {
    Ok(ChainKey { key: array32(&p.key, what)?, index: p.index })
}

pub(crate) fn key32(bytes: &[u8], what: &'static str) -> Result<Key32> {
    Ok(Key32(array32(bytes, what)?))
}
