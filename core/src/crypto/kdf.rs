//! HKDF-SHA256 and HMAC-SHA256, the only key derivation functions hush uses.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// HKDF-SHA256 with the given salt (`None` = 32 zero bytes, per RFC 5869), filling `N` bytes.
pub(crate) fn hkdf<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out.as_mut_slice())
        .map_err(|_| Error::Internal("hkdf output length"))?;
    Ok(out)
}

/// HMAC-SHA256(key, data).
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| Error::Internal("hmac key"))?;
    mac.update(data);
    Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
}

/// Splits a byte array into fixed-size parts without indexing that could panic.
pub(crate) fn split3(bytes: &[u8; 96]) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    let mut c = [0u8; 32];
    a.copy_from_slice(&bytes[..32]);
    b.copy_from_slice(&bytes[32..64]);
    c.copy_from_slice(&bytes[64..]);
    (a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1.
    #[test]
    fn hkdf_rfc5869_case1() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf::<42>(Some(&salt), &ikm, &info).unwrap();
        assert_eq!(
            hex::encode(okm.as_slice()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_rfc4231_case2() {
        let tag = hmac(b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(hex::encode(tag.as_slice()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
