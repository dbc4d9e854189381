//! The triple ratchet's erasure code (docs/PROTOCOL.md §7A.4): an encapsulation key or a ciphertext is
//! cut into 64-byte data shards and extended with as many parity shards by a systematic Reed-Solomon
//! code over GF(2^8) (the `reed-solomon-erasure` crate), so any `data` distinct shards rebuild it.

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::crypto::kem::incremental::{CT1_LEN, CT2_LEN, PK1_LEN, PK2_LEN};
use crate::error::{Error, Result};
use crate::limits::PQ_CHUNK_BYTES;

/// One shard of an object: its index in the code and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u8,
    pub(crate) data: [u8; PQ_CHUNK_BYTES],
}

impl core::fmt::Debug for Shard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Public key material and ciphertexts only, but the bytes say nothing a reader needs.
        f.debug_struct("Shard").field("index", &self.index).finish_non_exhaustive()
    }
}

/// The code of one object kind: `data` data shards followed by `data` parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Code {
    pub(crate) data: usize,
}

/// The encapsulation key `pk1 ‖ pk2` (1,216 bytes): 19 data shards, the first one being `pk1`.
pub(crate) const EK_CODE: Code = Code { data: (PK1_LEN + PK2_LEN) / PQ_CHUNK_BYTES };
/// The ciphertext `ct1 ‖ ct2` (1,088 bytes): 17 data shards, the first 15 being `ct1`.
pub(crate) const CT_CODE: Code = Code { data: (CT1_LEN + CT2_LEN) / PQ_CHUNK_BYTES };
/// Data shards of `ct1`, sendable before `pk2` arrived.
pub(crate) const CT1_SHARDS: usize = CT1_LEN / PQ_CHUNK_BYTES;

const _: () = assert!(PK1_LEN == PQ_CHUNK_BYTES && PK2_LEN.is_multiple_of(PQ_CHUNK_BYTES));
const _: () = assert!(CT1_LEN.is_multiple_of(PQ_CHUNK_BYTES) && CT2_LEN.is_multiple_of(PQ_CHUNK_BYTES));
const _: () = assert!(2 * EK_CODE.data <= 256 && 2 * CT_CODE.data <= 256);

impl Code {
    /// Data plus parity shards.
    pub(crate) const fn total(&self) -> usize {
        2 * self.data
    }

    fn rs(&self) -> Result<ReedSolomon> {
        ReedSolomon::new(self.data, self.data).map_err(|_| Error::Internal("erasure code parameters"))
    }

    /// Shard `index` of `object` (`data` × 64 bytes): a slice of it for a data shard, else parity.
    pub(crate) fn shard(&self, object: &[u8], index: u8) -> Result<Shard> {
        let i = usize::from(index);
        if object.len() != self.data * PQ_CHUNK_BYTES || i >= self.total() {
            return Err(Error::Internal("erasure shard"));
        }
        let mut data = [0u8; PQ_CHUNK_BYTES];
        if let Some(slice) = object.get(i * PQ_CHUNK_BYTES..(i + 1) * PQ_CHUNK_BYTES) {
            data.copy_from_slice(slice);
            return Ok(Shard { index, data });
        }
        let originals: Vec<&[u8]> = object.chunks(PQ_CHUNK_BYTES).collect();
        let mut parity = vec![[0u8; PQ_CHUNK_BYTES]; self.data];
        self.rs()?.encode_sep(&originals, &mut parity).map_err(|_| Error::Internal("erasure encode"))?;
        data = *parity.get(i - self.data).ok_or(Error::Internal("erasure shard"))?;
        Ok(Shard { index, data })
    }

    /// Rebuilds the object from `data` distinct shards (indices below [`Code::total`]).
    pub(crate) fn reconstruct(&self, shards: &[Shard]) -> Result<Vec<u8>> {
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; self.total()];
        for s in shards {
            let slot = slots.get_mut(usize::from(s.index)).ok_or(Error::Malformed { what: "pq chunk index" })?;
            *slot = Some(s.data.to_vec());
        }
        if slots.iter().filter(|s| s.is_some()).count() < self.data {
            return Err(Error::Internal("erasure reconstruct: too few shards"));
        }
        self.rs()?.reconstruct_data(&mut slots).map_err(|_| Error::Internal("erasure reconstruct"))?;
        let mut object = Vec::with_capacity(self.data * PQ_CHUNK_BYTES);
        for slot in slots.iter().take(self.data) {
            object.extend_from_slice(slot.as_deref().ok_or(Error::Internal("erasure reconstruct"))?);
        }
        Ok(object)
    }
}

/// Distinct shards received of one object, at most `data − 1` (the `data`-th rebuilds it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) shards: Vec<Shard>,
}

impl Received {
    /// Adds a shard unless one with its index is already here; whether it was new.
    pub(crate) fn add(&mut self, shard: Shard) -> bool {
        if self.shards.iter().any(|s| s.index == shard.index) {
            return false;
        }
        self.shards.push(shard);
        true
    }

    /// The data shard `index`, if it arrived as itself.
    pub(crate) fn get(&self, index: u8) -> Option<&Shard> {
        self.shards.iter().find(|s| s.index == index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(code: Code) -> Vec<u8> {
        (0..code.data * PQ_CHUNK_BYTES).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn any_data_distinct_shards_rebuild_the_object() {
        for code in [EK_CODE, CT_CODE] {
            let obj = object(code);
            let all: Vec<Shard> = (0..code.total() as u8).map(|i| code.shard(&obj, i).unwrap()).collect();
            assert_eq!(&all[0].data[..], &obj[..PQ_CHUNK_BYTES]);
            // Parity only, data only, every other one, the last `data`.
            for pick in [
                all[code.data..].to_vec(),
                all[..code.data].to_vec(),
                all.iter().step_by(2).cloned().collect(),
                all[code.total() - code.data..].to_vec(),
            ] {
                assert_eq!(code.reconstruct(&pick).unwrap(), obj);
            }
            assert!(code.reconstruct(&all[..code.data - 1]).is_err());
            assert!(code.shard(&obj, code.total() as u8).is_err());
        }
    }

    #[test]
    fn received_keeps_distinct_indices() {
        let mut r = Received::default();
        let s = Shard { index: 3, data: [1; PQ_CHUNK_BYTES] };
        assert!(r.add(s.clone()));
        assert!(!r.add(Shard { index: 3, data: [2; PQ_CHUNK_BYTES] }));
        assert_eq!(r.get(3), Some(&s));
        assert_eq!(r.shards.len(), 1);
    }
}
