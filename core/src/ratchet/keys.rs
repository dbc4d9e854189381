//! Ratchet key schedule (docs/PROTOCOL.md §7.2): root KDF, chain KDF, message-key expansion.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::aead::{KEY_LEN, NONCE_LEN};
use crate::crypto::kdf;
use crate::error::Result;

const ROOT_INFO: &[u8] = b"hush/ratchet/v1";
const INIT_INFO: &[u8] = b"hush/ratchet/v1/init";
const MESSAGE_INFO: &[u8] = b"hush/ratchet/v1/message";
const HYBRID_MESSAGE_INFO: &[u8] = b"hush/ratchet/v2/message";

/// 32 secret bytes (root key, header key) that zeroize on drop and never print.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Key32(pub(crate) [u8; 32]);

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Splits the PQXDH secret into the first root key and the two initial header keys:
/// the initiator's sending header key and the responder's next sending header key.
pub(crate) fn initial_keys(shared_secret: &[u8; 32]) -> Result<(Key32, Key32, Key32)> {
    let out = kdf::hkdf::<96>(None, shared_secret, INIT_INFO)?;
    let (rk, hka, nhkb) = kdf::split3(&out);
    Ok((Key32(rk), Key32(hka), Key32(nhkb)))
}

/// `HKDF(salt = rk, ikm = dh, info)` → (root key, chain key, next header key).
pub(crate) fn root_step(root_key: &Key32, dh: &[u8]) -> Result<(Key32, ChainKey, Key32)> {
    let out = kdf::hkdf::<96>(Some(&root_key.0), dh, ROOT_INFO)?;
    let (rk, ck, nhk) = kdf::split3(&out);
    Ok((Key32(rk), ChainKey { key: ck, index: 0 }, Key32(nhk)))
}

/// A sending or receiving chain key at position `index`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    /// The message key for this position: `HMAC(ck, 0x01)`.
    pub(crate) fn message_key(&self) -> Result<MessageKey> {
        Ok(MessageKey { key: *kdf::hmac(&self.key, &[0x01])?, index: self.index })
    }

    /// The chain key one position on: `HMAC(ck, 0x02)`. `None` when the index would overflow.
    pub(crate) fn next(&self) -> Result<Option<ChainKey>> {
        let Some(index) = self.index.checked_add(1) else { return Ok(None) };
        Ok(Some(ChainKey { key: *kdf::hmac(&self.key, &[0x02])?, index }))
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainKey").field("index", &self.index).field("key", &"[redacted]").finish()
    }
}

/// A message key; kept while its message has not arrived (a skipped key).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

/// AEAD key and nonce for one message.
pub(crate) struct MessageSecrets {
    pub(crate) key: zeroize::Zeroizing<[u8; KEY_LEN]>,
    pub(crate) nonce: [u8; NONCE_LEN],
}

impl MessageKey {
    /// `HKDF(mk)` → 32-byte ChaCha20-Poly1305 key and 12-byte nonce.
    pub(crate) fn expand(&self) -> Result<MessageSecrets> {
        self.expand_with(MESSAGE_INFO)
    }

    /// The triple ratchet's hybrid expansion (§7A.2): `HKDF(salt = epoch key, ikm = mk)`, so the
    /// result is secret while either the Double Ratchet's key or the ML-KEM epoch key is.
    pub(crate) fn expand_hybrid(&self, epoch_key: &Key32) -> Result<MessageSecrets> {
        self.expand_salted(Some(&epoch_key.0), HYBRID_MESSAGE_INFO)
    }

    /// As [`MessageKey::expand`] with another HKDF info (group messages use their own).
    pub(crate) fn expand_with(&self, info: &[u8]) -> Result<MessageSecrets> {
        self.expand_salted(None, info)
    }

    fn expand_salted(&self, salt: Option<&[u8]>, info: &[u8]) -> Result<MessageSecrets> {
        let out = kdf::hkdf::<{ KEY_LEN + NONCE_LEN }>(salt, &self.key, info)?;
        let mut key = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        key.copy_from_slice(&out[..KEY_LEN]);
        nonce.copy_from_slice(&out[KEY_LEN..]);
        Ok(MessageSecrets { key, nonce })
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageKey").field("index", &self.index).field("key", &"[redacted]").finish()
    }
}
