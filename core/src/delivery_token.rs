//! Delivery tokens (docs/PROTOCOL.md §9.5): a random secret a recipient shares with its contacts
//! inside encrypted data, which lets anyone holding it send sealed messages to the recipient. The
//! relay stores only its hash and compares in constant time, so it can refuse spam without learning
//! who sends, and a leaked relay database gives out no tokens.

use core::fmt;

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of a delivery token, and of its hash, in bytes.
pub const DELIVERY_TOKEN_LEN: usize = 32;

/// Domain separation for [`DeliveryToken::hash`].
const HASH_CONTEXT: &[u8] = b"hush/delivery-token/v1";

/// 32 random bytes that authorise sealed sends to one recipient. Zeroizes on drop; `Debug` prints
/// no byte of it; `==` runs in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeliveryToken([u8; DELIVERY_TOKEN_LEN]);

impl DeliveryToken {
    /// A fresh random token (a new one cuts off everyone who only knows the old one).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut token = Self([0; DELIVERY_TOKEN_LEN]);
        rng.fill_bytes(&mut token.0);
        token
    }

    /// Parses a token, which must be exactly [`DELIVERY_TOKEN_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut token = Self([0; DELIVERY_TOKEN_LEN]);
        if bytes.len() != DELIVERY_TOKEN_LEN {
            return Err(Error::Malformed { what: "delivery token" });
        }
        token.0.copy_from_slice(bytes);
        Ok(token)
    }

    /// The token's bytes, wiped when the returned value drops.
    pub fn to_bytes(&self) -> Zeroizing<[u8; DELIVERY_TOKEN_LEN]> {
        Zeroizing::new(self.0)
    }

    /// What the relay stores: `SHA-256("hush/delivery-token/v1" || token)`.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::new().chain_update(HASH_CONTEXT).chain_update(self.0).finalize().into()
    }

    /// Whether `stored` is this token's [`hash`](Self::hash), compared in constant time (the
    /// length, which is public, is checked first).
    pub fn verify_hash(&self, stored: &[u8]) -> bool {
        stored.len() == DELIVERY_TOKEN_LEN && bool::from(self.hash().as_slice().ct_eq(stored))
    }
}

impl PartialEq for DeliveryToken {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for DeliveryToken {}

impl fmt::Debug for DeliveryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeliveryToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn hash_is_domain_separated_sha256() {
        let token = DeliveryToken::from_bytes(&[0x42; 32]).unwrap();
        let mut input = b"hush/delivery-token/v1".to_vec();
        input.extend_from_slice(&[0x42; 32]);
        assert_eq!(token.hash(), <[u8; 32]>::from(Sha256::digest(&input)));
        assert_ne!(token.hash(), <[u8; 32]>::from(Sha256::digest([0x42; 32])));
    }

    #[test]
    fn verify_hash_accepts_only_its_own_hash() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let token = DeliveryToken::generate(&mut rng);
        let other = DeliveryToken::generate(&mut rng);
        assert_ne!(token, other);
        let stored = token.hash();
        assert!(token.verify_hash(&stored));
        assert!(!other.verify_hash(&stored));
        assert!(!token.verify_hash(&stored[..31]));
        assert!(!token.verify_hash(&[stored.as_slice(), &[0]].concat()));
        assert!(!token.verify_hash(&[]));
        // The token itself is not its hash: a relay that stored tokens would not verify.
        assert!(!token.verify_hash(token.to_bytes().as_slice()));
        for i in 0..32 {
            let mut bad = stored;
            bad[i] ^= 0x01;
            assert!(!token.verify_hash(&bad));
        }
    }

    #[test]
    fn bytes_round_trip_and_length_is_checked() {
        let token = DeliveryToken::generate(&mut ChaCha20Rng::seed_from_u64(12));
        let bytes = token.to_bytes();
        assert_eq!(DeliveryToken::from_bytes(bytes.as_slice()).unwrap(), token);
        assert_eq!(DeliveryToken::from_bytes(&bytes[..31]), Err(Error::Malformed { what: "delivery token" }));
        assert_eq!(DeliveryToken::from_bytes(&[0; 33]), Err(Error::Malformed { what: "delivery token" }));
    }

    #[test]
    fn debug_never_prints_the_token() {
        let token = DeliveryToken::generate(&mut ChaCha20Rng::seed_from_u64(13));
        let dbg = format!("{token:?} {:?}", Some(&token));
        crate::test_util::assert_no_secret(&dbg, token.to_bytes().as_slice());
        assert!(dbg.contains("[redacted]"));
    }
}
