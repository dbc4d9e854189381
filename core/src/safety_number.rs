//! Safety numbers (docs/PROTOCOL.md §3.4): 60 digits and a QR payload computed from two
//! users' user keys, identical on every device of both users. Iterated SHA-512 as in Signal's
//! fingerprints (5200 rounds), with the user key as its own stable id (hush has no phone numbers).

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::limits::SAFETY_NUMBER_ITERATIONS;

const VERSION: u16 = 1;
/// Bytes of a QR payload: version (1) || lower fingerprint (32) || higher fingerprint (32).
pub const QR_PAYLOAD_LEN: usize = 65;

/// The safety number of a pair of users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    qr: [u8; QR_PAYLOAD_LEN],
}

fn fingerprint(user_key: &SigningPublicKey) -> [u8; 64] {
    let key = user_key.as_bytes();
    let mut hash: [u8; 64] =
        Sha512::new().chain_update(VERSION.to_be_bytes()).chain_update(key).chain_update(key).finalize().into();
    for _ in 1..SAFETY_NUMBER_ITERATIONS {
        hash = Sha512::new().chain_update(hash).chain_update(key).finalize().into();
    }
    hash
}

/// 30 digits: six 5-byte chunks, each as a big-endian integer mod 100000.
fn digits(fp: &[u8; 64]) -> String {
    fp.chunks_exact(5)
        .take(6)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

impl SafetyNumber {
    /// The safety number of two users; the argument order does not matter.
    pub fn new(a: &SigningPublicKey, b: &SigningPublicKey) -> Self {
        let (fa, fb) = (fingerprint(a), fingerprint(b));
        let (lo, hi) = if fa[..32] <= fb[..32] { (fa, fb) } else { (fb, fa) };
        let mut qr = [0u8; QR_PAYLOAD_LEN];
        qr[0] = VERSION as u8;
        qr[1..33].copy_from_slice(&lo[..32]);
        qr[33..].copy_from_slice(&hi[..32]);
        Self { digits: digits(&lo) + &digits(&hi), qr }
    }

    /// The 60 digits.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The digits in 12 groups of five, as shown to people.
    pub fn display(&self) -> String {
        self.digits.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// The bytes to show as a QR code.
    pub fn qr_payload(&self) -> [u8; QR_PAYLOAD_LEN] {
        self.qr
    }

    /// Compares a scanned QR payload with ours, in constant time. `Ok(false)` means the keys
    /// differ: someone is in the middle, or one side's user key changed.
    pub fn matches_scanned(&self, scanned: &[u8]) -> Result<bool> {
        if scanned.len() != QR_PAYLOAD_LEN {
            return Err(Error::Malformed { what: "safety number QR payload" });
        }
        if scanned.first() != Some(&(VERSION as u8)) {
            return Err(Error::UnsupportedVersion {
                what: "safety number QR payload",
                version: u32::from(scanned.first().copied().unwrap_or_default()),
            });
        }
        Ok(bool::from(self.qr.as_slice().ct_eq(scanned)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserIdentity;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn same_on_both_sides() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let (a, b, c) =
            (UserIdentity::generate(&mut rng), UserIdentity::generate(&mut rng), UserIdentity::generate(&mut rng));
        let ab = SafetyNumber::new(&a.user_key(), &b.user_key());
        let ba = SafetyNumber::new(&b.user_key(), &a.user_key());
        assert_eq!(ab, ba);
        assert_eq!(ab.digits().len(), 60);
        assert!(ab.digits().bytes().all(|d| d.is_ascii_digit()));
        assert_eq!(ab.display().len(), 60 + 11);
        assert!(ab.matches_scanned(&ba.qr_payload()).unwrap());
        let ac = SafetyNumber::new(&a.user_key(), &c.user_key());
        assert_ne!(ab.digits(), ac.digits());
        assert!(!ab.matches_scanned(&ac.qr_payload()).unwrap());
        assert!(ab.matches_scanned(&[1u8; 3]).is_err());
        let mut wrong_version = ab.qr_payload();
        wrong_version[0] = 9;
        assert!(ab.matches_scanned(&wrong_version).is_err());
    }
}
