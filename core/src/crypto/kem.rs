//! ML-KEM-768 (FIPS 203) through libcrux-ml-kem, a formally verified implementation.
//!
//! A secret key is kept as its 64-byte generation seed (zeroized on drop) and expanded when needed:
//! 64 bytes to store instead of 2400, and the expanded key lives only for one decapsulation.

use core::fmt;

use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768PublicKey};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::keys::random_array;
use crate::error::{Error, Result};

/// Encoded ML-KEM-768 public key length.
pub const KEM_PUBLIC_KEY_LEN: usize = 1184;
/// Encoded ML-KEM-768 ciphertext length.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;

/// An ML-KEM-768 public key, validated (FIPS 203 §7.2 modulus check) on parse.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(Box<[u8; KEM_PUBLIC_KEY_LEN]>);

impl KemPublicKey {
    /// Parses and validates an encoded public key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEM_PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKem { what: "public key" })?;
        if !mlkem768::validate_public_key(&MlKem768PublicKey::from(arr)) {
            return Err(Error::InvalidKem { what: "public key" });
        }
        Ok(Self(Box::new(arr)))
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8; KEM_PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Encapsulates a fresh shared secret to this key.
    pub(crate) fn encapsulate(&self, rng: &mut impl CryptoRngCore) -> (Vec<u8>, Zeroizing<[u8; 32]>) {
        let mut randomness = Zeroizing::new(random_array::<32>(rng));
        let (ct, ss) = mlkem768::encapsulate(&MlKem768PublicKey::from(*self.0), *randomness);
        randomness.zeroize();
        (ct.as_slice().to_vec(), Zeroizing::new(ss))
    }
}

impl fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KemPublicKey({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// An ML-KEM-768 key pair held as its generation seed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct KemSecret {
    seed: [u8; 64],
}

impl KemSecret {
    pub(crate) fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self { seed: random_array(rng) }
    }

    pub(crate) fn from_seed(seed: [u8; 64]) -> Self {
        Self { seed }
    }

    pub(crate) fn seed(&self) -> &[u8; 64] {
        &self.seed
    }

    pub(crate) fn public(&self) -> KemPublicKey {
        let pair = mlkem768::generate_key_pair(self.seed);
        KemPublicKey(Box::new(*pair.pk()))
    }

    /// Decapsulates. ML-KEM decapsulation never fails on a well-sized ciphertext (implicit
    /// rejection yields an unrelated secret), so a forged ciphertext shows up as an AEAD failure.
    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let ct: [u8; KEM_CIPHERTEXT_LEN] =
            ciphertext.try_into().map_err(|_| Error::InvalidKem { what: "ciphertext" })?;
        let pair = mlkem768::generate_key_pair(self.seed);
        Ok(Zeroizing::new(mlkem768::decapsulate(pair.private_key(), &MlKem768Ciphertext::from(ct))))
    }
}

impl fmt::Debug for KemSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KemSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn encapsulate_decapsulate() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let secret = KemSecret::generate(&mut rng);
        let public = KemPublicKey::from_slice(secret.public().as_bytes()).unwrap();
        let (ct, ss) = public.encapsulate(&mut rng);
        assert_eq!(ct.len(), KEM_CIPHERTEXT_LEN);
        assert_eq!(*secret.decapsulate(&ct).unwrap(), *ss);
        let mut bad = ct.clone();
        bad[5] ^= 1;
        assert_ne!(*secret.decapsulate(&bad).unwrap(), *ss);
        assert!(secret.decapsulate(&ct[1..]).is_err());
    }

    #[test]
    fn rejects_bad_public_keys() {
        assert!(KemPublicKey::from_slice(&[0u8; 10]).is_err());
        // Coefficients must be < q = 3329; 0xFF bytes encode 4095.
        assert!(KemPublicKey::from_slice(&[0xFFu8; KEM_PUBLIC_KEY_LEN]).is_err());
    }

    #[test]
    fn debug_hides_seed() {
        let secret = KemSecret::from_seed([0xAB; 64]);
        assert!(!format!("{secret:?}").contains("ab"));
        assert!(!format!("{secret:?}").contains("171"));
    }
}
