//! Plaintext padding so ciphertext lengths leak little: ISO/IEC 7816-4 (0x80 then zeros) up to a
//! Padmé length (Nikitin et al., PETS 2019), never below 64 bytes so short messages look alike.

use crate::error::{Error, Result};

const MIN_PADDED: usize = 64;

/// Padmé: rounds `len` up so that at most O(log log len) bits of it remain.
fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1 (e is a u32)
    let last_bits = e.saturating_sub(s);
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// The padded length for a plaintext of `len` bytes.
pub(crate) fn padded_len(len: usize) -> usize {
    padme((len + 1).max(MIN_PADDED))
}

pub(crate) fn pad(plaintext: &[u8]) -> Vec<u8> {
    pad_to(plaintext, padded_len(plaintext.len()))
}

/// Pads to exactly `len` bytes (a size class, §9.4); the caller leaves room for the marker
/// (`len > plaintext.len()`), else the result is longer than `len`.
pub(crate) fn pad_to(plaintext: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.max(plaintext.len() + 1));
    out.extend_from_slice(plaintext);
    out.push(0x80);
    out.resize(len.max(out.len()), 0);
    out
}

pub(crate) fn unpad(mut padded: Vec<u8>) -> Result<Vec<u8>> {
    let end = padded.iter().rposition(|&b| b != 0).ok_or(Error::Malformed { what: "padding" })?;
    if padded.get(end) != Some(&0x80) {
        return Err(Error::Malformed { what: "padding" });
    }
    padded.truncate(end);
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_small_lengths() {
        for len in 0..600 {
            let msg = vec![0u8; len];
            let padded = pad(&msg);
            assert_eq!(padded.len(), padded_len(len));
            assert!(padded.len() > len && padded.len() >= MIN_PADDED);
            assert_eq!(unpad(padded).unwrap(), msg);
        }
    }

    #[test]
    fn padme_overhead_is_small() {
        for len in [100usize, 1000, 10_000, 100_000] {
            let p = padded_len(len);
            assert!(p > len && (p - len) * 100 / len <= 12, "{len} -> {p}");
        }
        assert_eq!(padded_len(0), 64);
        assert_eq!(padded_len(63), 64);
    }

    /// Known answers from the Padmé definition (E = ⌊log₂ L⌋, S = ⌊log₂ E⌋ + 1, round L up to a
    /// multiple of 2^(E − S)); identical on 32- and 64-bit targets.
    #[test]
    fn padme_known_answers() {
        for (len, padded) in [(64, 64), (65, 72), (151, 160), (1000, 1024), (1025, 1088), (100_001, 100_352)] {
            assert_eq!(padme(len), padded, "padme({len})");
        }
        assert_eq!(padded_len(150), 160);
    }

    #[test]
    fn rejects_bad_padding() {
        assert!(unpad(vec![0, 0, 0]).is_err());
        assert!(unpad(vec![1, 2, 0]).is_err());
        assert!(unpad(vec![]).is_err());
    }
}
