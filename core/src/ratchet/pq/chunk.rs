//! The chunk a version-2 message carries (docs/PROTOCOL.md §7A.5): at most one shard of the
//! sender's current ML-KEM object, in front of the plaintext inside the encrypted, padded body, so
//! the relay sees neither whether a message carries one nor of which kind.

use super::erasure::Shard;
use crate::error::{Error, Result};
use crate::limits::PQ_CHUNK_BYTES;

const NO_CHUNK: u8 = 0x00;
const CHUNK: u8 = 0x01;
/// The most a chunk adds to a body: tag, index, shard.
pub(crate) const MAX_CHUNK_OVERHEAD: usize = 2 + PQ_CHUNK_BYTES;

/// `0x00 ‖ plaintext`, or `0x01 ‖ index ‖ shard ‖ plaintext`.
pub(crate) fn encode(shard: Option<&Shard>, plaintext: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(MAX_CHUNK_OVERHEAD + plaintext.len());
    match shard {
        None => body.push(NO_CHUNK),
        Some(s) => {
            body.extend_from_slice(&[CHUNK, s.index]);
            body.extend_from_slice(&s.data);
        }
    }
    body.extend_from_slice(plaintext);
    body
}

/// Splits a body into its chunk and plaintext. The index is checked against the code by the
/// ratchet, which knows which object the sender is sending.
pub(crate) fn decode(body: &[u8]) -> Result<(Option<Shard>, &[u8])> {
    let malformed = Error::Malformed { what: "pq chunk" };
    match body.split_first() {
        Some((&NO_CHUNK, rest)) => Ok((None, rest)),
        Some((&CHUNK, rest)) => {
            let (&index, rest) = rest.split_first().ok_or(malformed.clone())?;
            let (data, rest) = rest.split_at_checked(PQ_CHUNK_BYTES).ok_or(malformed.clone())?;
            let data = data.try_into().map_err(|_| malformed)?;
            Ok((Some(Shard { index, data }), rest))
        }
        _ => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_bodies() {
        let s = Shard { index: 37, data: [5; PQ_CHUNK_BYTES] };
        let body = encode(Some(&s), b"hi");
        assert_eq!(body.len(), MAX_CHUNK_OVERHEAD + 2);
        assert_eq!(decode(&body).unwrap(), (Some(s), &b"hi"[..]));
        assert_eq!(decode(&encode(None, b"")).unwrap(), (None, &b""[..]));
        for bad in [&[][..], &[2, 0][..], &body[..MAX_CHUNK_OVERHEAD - 1], &[1][..]] {
            assert_eq!(decode(bad), Err(Error::Malformed { what: "pq chunk" }));
        }
    }
}
