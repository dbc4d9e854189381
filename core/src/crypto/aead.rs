//! ChaCha20-Poly1305 (RFC 8439). Native builds use `ring` (about 7× faster than the portable crate
//! on short messages, see TOOLCHAIN.md); wasm32 uses RustCrypto's `chacha20poly1305`. Both produce
//! the same bytes: a test here and the test vectors prove it.

use crate::error::{Error, Result};

/// Key length in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub(crate) const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `plaintext`, returning ciphertext || tag.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| Error::Internal("aead key"))?;
    let key = LessSafeKey::new(key);
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(ad), &mut out)
        .map_err(|_| Error::Internal("aead seal"))?;
    Ok(out)
}

/// Decrypts ciphertext || tag; any mismatch is [`Error::DecryptionFailed`].
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn open(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| Error::Internal("aead key"))?;
    let key = LessSafeKey::new(key);
    let mut buf = ciphertext.to_vec();
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(ad), &mut buf)
        .map_err(|_| Error::DecryptionFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Encrypts `plaintext`, returning ciphertext || tag.
#[cfg(target_arch = "wasm32")]
pub(crate) fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    cipher.encrypt(nonce.into(), Payload { msg: plaintext, aad: ad }).map_err(|_| Error::Internal("aead seal"))
}

/// Decrypts ciphertext || tag; any mismatch is [`Error::DecryptionFailed`].
#[cfg(target_arch = "wasm32")]
pub(crate) fn open(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    cipher.decrypt(nonce.into(), Payload { msg: ciphertext, aad: ad }).map_err(|_| Error::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [9u8; 12];
        let ct = seal(&key, &nonce, b"ad", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(open(&key, &nonce, b"ad", &ct).unwrap(), b"hello");
        assert_eq!(open(&key, &nonce, b"AD", &ct), Err(Error::DecryptionFailed));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(open(&key, &nonce, b"ad", &bad), Err(Error::DecryptionFailed));
        assert_eq!(open(&key, &nonce, b"ad", &ct[..10]), Err(Error::DecryptionFailed));
    }

    /// The native backend and the portable (wasm32) backend must produce identical bytes.
    #[test]
    fn backends_agree() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        for len in [0usize, 1, 63, 64, 65, 1000] {
            let key = [len as u8; 32];
            let nonce = [3u8; 12];
            let msg = vec![0xA5u8; len];
            let ours = seal(&key, &nonce, b"assoc", &msg).unwrap();
            let theirs = chacha20poly1305::ChaCha20Poly1305::new((&key).into())
                .encrypt((&nonce).into(), Payload { msg: &msg, aad: b"assoc" })
                .unwrap();
            assert_eq!(ours, theirs);
        }
    }
}
