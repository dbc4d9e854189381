//! The message header and its encryption (Signal Double Ratchet §4, header encryption): the relay
//! sees neither ratchet keys nor message numbers.

use crate::crypto::PublicKey;
use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::ratchet::keys::Key32;

/// Header format version, the first plaintext byte of every header.
pub(crate) const HEADER_VERSION: u8 = 1;
/// Encoded header: version (1) || ratchet key (32) || previous chain length (4) || index (4).
pub(crate) const HEADER_LEN: usize = 41;
/// Encrypted header length.
pub(crate) const ENCRYPTED_HEADER_LEN: usize = HEADER_LEN + TAG_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) previous_counter: u32,
    pub(crate) counter: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = HEADER_VERSION;
        out[1..33].copy_from_slice(self.ratchet_key.as_bytes());
        out[33..37].copy_from_slice(&self.previous_counter.to_be_bytes());
        out[37..].copy_from_slice(&self.counter.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().map_err(|_| Error::Malformed { what: "header" })?;
        let (version, rest) = bytes.split_at(1);
        if version != [HEADER_VERSION] {
            return Err(Error::UnsupportedVersion { what: "header", version: u32::from(bytes[0]) });
        }
        let (key, rest) = rest.split_at(32);
        let (pn, n) = rest.split_at(4);
        Ok(Self {
            ratchet_key: PublicKey::from_slice(key, "header ratchet key")?,
            previous_counter: u32::from_be_bytes(pn.try_into().map_err(|_| Error::Malformed { what: "header" })?),
            counter: u32::from_be_bytes(n.try_into().map_err(|_| Error::Malformed { what: "header" })?),
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
        let h = Header { ratchet_key: PublicKey::from_bytes([4; 32]), previous_counter: 7, counter: 0x0102_0304 };
        let key = Key32([1; 32]);
        let ct = h.seal(&key, &[2; 12], b"ad").unwrap();
        assert_eq!(ct.len(), ENCRYPTED_HEADER_LEN);
        assert_eq!(Header::open(&key, &[2; 12], b"ad", &ct).unwrap(), h);
        assert_eq!(Header::open(&Key32([9; 32]), &[2; 12], b"ad", &ct), Err(Error::DecryptionFailed));
        assert!(Header::decode(&[2u8; HEADER_LEN]).is_err());
        assert!(Header::decode(&[1u8; 3]).is_err());
    }
}
