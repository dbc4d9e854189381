//! The message header and its encryption (Signal Double Ratchet §4, header encryption): the relay
//! sees neither ratchet keys nor message numbers.

use crate::crypto::PublicKey;
use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::ratchet::keys::Key32;

/// Header format version of the Double Ratchet alone, the first plaintext byte of its headers.
pub(crate) const HEADER_VERSION: u8 = 1;
/// Header format version of the triple ratchet (§7A), whose header adds the message's epoch.
pub(crate) const HEADER_VERSION_PQ: u8 = 2;
/// Encoded header: version (1) || ratchet key (32) || previous chain length (4) || index (4).
pub(crate) const HEADER_LEN: usize = 41;
/// Encoded version-2 header: a version-1 header's fields, then the epoch (4).
pub(crate) const HEADER_LEN_PQ: usize = HEADER_LEN + 4;
/// Encrypted header length.
pub(crate) const ENCRYPTED_HEADER_LEN: usize = HEADER_LEN + TAG_LEN;
/// Encrypted version-2 header length.
pub(crate) const ENCRYPTED_HEADER_LEN_PQ: usize = HEADER_LEN_PQ + TAG_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) previous_counter: u32,
    pub(crate) counter: u32,
    /// The triple ratchet's epoch the message is encrypted in (version 2), or none (version 1).
    pub(crate) epoch: Option<u32>,
}

impl Header {
    /// The format version: 2 with an epoch, else 1.
    pub(crate) fn version(&self) -> u8 {
        if self.epoch.is_some() { HEADER_VERSION_PQ } else { HEADER_VERSION }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN_PQ);
        out.push(self.version());
        out.extend_from_slice(self.ratchet_key.as_bytes());
        out.extend_from_slice(&self.previous_counter.to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        if let Some(epoch) = self.epoch {
            out.extend_from_slice(&epoch.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let malformed = || Error::Malformed { what: "header" };
        let (&version, rest) = bytes.split_first().ok_or_else(malformed)?;
        let expected_len = match version {
            HEADER_VERSION => HEADER_LEN,
            HEADER_VERSION_PQ => HEADER_LEN_PQ,
            _ => return Err(Error::UnsupportedVersion { what: "header", version: u32::from(version) }),
        };
        if bytes.len() != expected_len {
            return Err(malformed());
        }
        let (key, rest) = rest.split_at_checked(32).ok_or_else(malformed)?;
        let (pn, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let (n, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let epoch = rest.first_chunk::<4>().map(|e| u32::from_be_bytes(*e));
        Ok(Self {
            ratchet_key: PublicKey::from_slice(key, "header ratchet key")?,
            previous_counter: u32::from_be_bytes(*pn),
            counter: u32::from_be_bytes(*n),
            epoch,
        })
    }

    pub(crate) fn seal(&self, key: &Key32, nonce: &[u8; NONCE_LEN], ad: &[u8]) -> Result<Vec<u8>> {
        aead::seal(&key.0, nonce, ad, &self.encode())
    }

    /// Opens an encrypted header; [`Error::DecryptionFailed`] if `key` is not its key.
    pub(crate) fn open(key: &Key32, nonce: &[u8; NONCE_LEN], ad: &[u8], encrypted: &[u8]) -> Result<Self> {
        Self::decode(&aead::open(&key.0, nonce, ad, encrypted)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            ratchet_key: PublicKey::from_bytes([4; 32]),
            previous_counter: 7,
            counter: 0x0102_0304,
            epoch: None,
        };
        let key = Key32([1; 32]);
        let ct = h.seal(&key, &[2; 12], b"ad").unwrap();
        assert_eq!(ct.len(), ENCRYPTED_HEADER_LEN);
        assert_eq!(Header::open(&key, &[2; 12], b"ad", &ct).unwrap(), h);
        assert_eq!(Header::open(&Key32([9; 32]), &[2; 12], b"ad", &ct), Err(Error::DecryptionFailed));
        let pq = Header { epoch: Some(0x0a0b_0c0d), ..h };
        let ct = pq.seal(&key, &[2; 12], b"ad").unwrap();
        assert_eq!(ct.len(), ENCRYPTED_HEADER_LEN_PQ);
        assert_eq!(Header::open(&key, &[2; 12], b"ad", &ct).unwrap(), pq);
        assert_eq!(&pq.encode()[HEADER_LEN..], &[0x0a, 0x0b, 0x0c, 0x0d]);
        // Each version has its own length; other versions are refused.
        assert!(Header::decode(&[2u8; HEADER_LEN]).is_err());
        assert!(Header::decode(&[1u8; HEADER_LEN_PQ]).is_err());
        assert!(Header::decode(&[3u8; HEADER_LEN_PQ]).is_err());
        assert!(Header::decode(&[1u8; 3]).is_err());
        assert!(Header::decode(&[]).is_err());
    }
}
