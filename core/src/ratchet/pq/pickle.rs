//! The storage format ("pickle") of a [`PqRatchet`] (docs/PROTOCOL.md §14.3, §7A): to and from
//! `storage::PqRatchet` of `core/proto/storage.proto`, embedded in a session. Every list has its
//! bound and every field its length; the rules every format follows are in `crate::pickle`.

use super::erasure::{CT_CODE, CT1_SHARDS, Code, EK_CODE, Received, Shard};
use super::{CtSide, EK_LEN, EkSide, Encapsulation, EpochKey, Exchange, PqRatchet, Secret, sends_key};
use crate::crypto::kem::incremental::{CT1_LEN, CT2_LEN};
use crate::error::{Error, Result};
use crate::limits::{MAX_PQ_EPOCH_KEYS, PQ_CHUNK_BYTES};
use crate::pickle::check_count;
use crate::ratchet::pickle::key32;
use crate::wire::storage;

/// A triple ratchet as its storage message.
pub(crate) fn pq_to_storage(r: &PqRatchet) -> storage::PqRatchet {
    use storage::pq_ratchet::Exchange as P;
    storage::PqRatchet {
        initiator: r.initiator,
        sending_epoch: r.sending_epoch,
        root: r.root.0.to_vec(),
        keys: r.keys.iter().map(|k| storage::PqEpochKey { epoch: k.epoch, key: k.key.0.to_vec() }).collect(),
        exchange: Some(match &r.exchange {
            Exchange::Ek(side) => P::KeySide(storage::PqKeySide {
                seed: side.key.as_ref().map(|(seed, _)| seed.0.to_vec()).unwrap_or_default(),
                key: side.key.as_ref().map(|(_, key)| key.to_vec()).unwrap_or_default(),
                next: u32::from(side.next),
                ct: shards_to_storage(&side.ct),
            }),
            Exchange::Ct(side) => P::CiphertextSide(storage::PqCiphertextSide {
                ek: shards_to_storage(&side.ek),
                key: side.key.as_ref().map(|k| k.to_vec()).unwrap_or_default(),
                encaps_randomness: side.encapsulation.as_ref().map(|e| e.m.0.to_vec()).unwrap_or_default(),
                ct1: side.encapsulation.as_ref().map(|e| e.ct1.to_vec()).unwrap_or_default(),
                ct2: side.encapsulation.as_ref().and_then(|e| e.ct2).map(|c| c.to_vec()).unwrap_or_default(),
                next: u32::from(side.next),
            }),
        }),
    }
}

/// Decodes a triple ratchet, enforcing its bounds and the consistency of its epochs.
pub(crate) fn pq_from_storage(p: &storage::PqRatchet) -> Result<PqRatchet> {
    use storage::pq_ratchet::Exchange as P;
    let malformed = |what| Error::Malformed { what };
    check_count("pq epoch keys", p.keys.len(), 1, MAX_PQ_EPOCH_KEYS)?;
    let keys = p
        .keys
        .iter()
        .map(|k| Ok(EpochKey { epoch: k.epoch, key: key32(&k.key, "pq epoch key")? }))
        .collect::<Result<Vec<_>>>()?;
    if keys.windows(2).any(|w| w.first().map(|k| k.epoch) <= w.get(1).map(|k| k.epoch)) {
        return Err(malformed("pq epoch key order"));
    }
    let exchange = match p.exchange.as_ref().ok_or(malformed("pq exchange"))? {
        P::KeySide(side) => Exchange::Ek(key_side_from_storage(side)?),
        P::CiphertextSide(side) => Exchange::Ct(ciphertext_side_from_storage(side)?),
    };
    let next_epoch = p.sending_epoch.checked_add(1).ok_or(malformed("pq epoch"))?;
    if matches!(exchange, Exchange::Ek(_)) != sends_key(next_epoch, p.initiator) {
        return Err(malformed("pq exchange"));
    }
    // The newest key is the sending epoch's, or the next one's once we encapsulated.
    let encapsulated = matches!(&exchange, Exchange::Ct(side) if side.encapsulation.is_some());
    let newest = if encapsulated { next_epoch } else { p.sending_epoch };
    if keys.first().map(|k| k.epoch) != Some(newest) || !keys.iter().any(|k| k.epoch == p.sending_epoch) {
        return Err(malformed("pq epoch keys"));
    }
    Ok(PqRatchet {
        initiator: p.initiator,
        sending_epoch: p.sending_epoch,
        root: key32(&p.root, "pq root key")?,
        keys,
        exchange,
    })
}

fn key_side_from_storage(p: &storage::PqKeySide) -> Result<EkSide> {
    let key = match (p.seed.as_slice(), p.key.as_slice()) {
        ([], []) => None,
        (seed, key) => {
            let seed: [u8; 64] = seed.try_into().map_err(|_| Error::Malformed { what: "pq key seed" })?;
            let key: Box<[u8; EK_LEN]> =
                key.to_vec().into_boxed_slice().try_into().map_err(|_| Error::Malformed { what: "pq key" })?;
            Some((Secret(seed), key))
        }
    };
    let ct = shards_from_storage(&p.ct, CT_CODE)?;
    if key.is_none() && !ct.shards.is_empty() {
        return Err(Error::Malformed { what: "pq ciphertext shards" });
    }
    Ok(EkSide { key, next: index(p.next, EK_CODE.total())?, ct })
}

fn ciphertext_side_from_storage(p: &storage::PqCiphertextSide) -> Result<CtSide> {
    let ek = shards_from_storage(&p.ek, EK_CODE)?;
    let key: Option<Box<[u8; EK_LEN]>> = match p.key.as_slice() {
        [] => None,
        key => Some(key.to_vec().into_boxed_slice().try_into().map_err(|_| Error::Malformed { what: "pq peer key" })?),
    };
    if key.is_some() && !ek.shards.is_empty() {
        return Err(Error::Malformed { what: "pq key shards" });
    }
    let encapsulation = match (p.encaps_randomness.as_slice(), p.ct1.as_slice(), p.ct2.as_slice()) {
        ([], [], []) => None,
        (m, ct1, ct2) => {
            let m: [u8; 32] = m.try_into().map_err(|_| Error::Malformed { what: "pq encapsulation randomness" })?;
            let ct1: Box<[u8; CT1_LEN]> =
                ct1.to_vec().into_boxed_slice().try_into().map_err(|_| Error::Malformed { what: "pq ct1" })?;
            let ct2: Option<[u8; CT2_LEN]> = match ct2 {
                [] => None,
                // ct2 needs the whole key.
                ct2 if key.is_some() => Some(ct2.try_into().map_err(|_| Error::Malformed { what: "pq ct2" })?),
                _ => return Err(Error::Malformed { what: "pq ct2" }),
            };
            Some(Encapsulation { m: Secret(m), ct1, ct2 })
        }
    };
    // An encapsulation needs the key's first shard.
    if encapsulation.is_some() && key.is_none() && ek.get(0).is_none() {
        return Err(Error::Malformed { what: "pq encapsulation" });
    }
    let limit = match &encapsulation {
        Some(Encapsulation { ct2: Some(_), .. }) => CT_CODE.total(),
        _ => CT1_SHARDS,
    };
    Ok(CtSide { ek, key, encapsulation, next: index(p.next, limit)? })
}

fn index(next: u32, limit: usize) -> Result<u8> {
    u8::try_from(next).ok().filter(|&i| usize::from(i) < limit).ok_or(Error::Malformed { what: "pq next shard" })
}

fn shards_to_storage(r: &Received) -> Vec<storage::PqShard> {
    r.shards.iter().map(|s| storage::PqShard { index: u32::from(s.index), data: s.data.to_vec() }).collect()
}

/// Fewer than `code.data` distinct shards (the `data`-th rebuilds the object), each below its total.
fn shards_from_storage(p: &[storage::PqShard], code: Code) -> Result<Received> {
    check_count("pq shards", p.len(), 0, code.data - 1)?;
    let mut received = Received::default();
    for s in p {
        let index = u8::try_from(s.index)
            .ok()
            .filter(|&i| usize::from(i) < code.total())
            .ok_or(Error::Malformed { what: "pq shard index" })?;
        let data: [u8; PQ_CHUNK_BYTES] =
            s.data.as_slice().try_into().map_err(|_| Error::Malformed { what: "pq shard" })?;
        if !received.add(Shard { index, data }) {
            return Err(Error::Malformed { what: "pq shard index" });
        }
    }
    Ok(received)
}
