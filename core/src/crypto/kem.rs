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

/// The incremental split of ML-KEM-768 (libcrux-ml-kem's `incremental` feature) the triple
/// ratchet uses (docs/PROTOCOL.md §7A.3): the encapsulation key travels as `pk1 = ρ ‖ H(ek)` (its
/// header, 64 bytes) and `pk2 = t` (1,152 bytes), so the peer can compute the ciphertext's first part
/// `ct1` (960 bytes) from the header alone and its last part `ct2` (128 bytes) once `t` arrived.
/// The bytes are those of standard ML-KEM-768: `ek = t ‖ ρ` and `ct = ct1 ‖ ct2`.
pub(crate) mod incremental {
    use libcrux_ml_kem::mlkem768::incremental::{
        self as inc, Ciphertext1, Ciphertext2, KeyPairCompressedBytes, encaps_state_len,
    };
    use zeroize::Zeroizing;

    use crate::error::{Error, Result};

    /// Length of the encapsulation key's header `pk1 = ρ ‖ SHA3-256(ek)`.
    pub(crate) const PK1_LEN: usize = 64;
    /// Length of the encapsulation key's vector `pk2 = t`.
    pub(crate) const PK2_LEN: usize = 1152;
    /// Length of the ciphertext's first part (the compressed vector `u`).
    pub(crate) const CT1_LEN: usize = 960;
    /// Length of the ciphertext's second part (the compressed polynomial `v`).
    pub(crate) const CT2_LEN: usize = 128;

    /// The public halves of the key pair generated from `seed` (`d ‖ z`, FIPS 203 KeyGen_internal).
    pub(crate) fn public_parts(seed: &[u8; 64]) -> ([u8; PK1_LEN], Box<[u8; PK2_LEN]>) {
        let pair = KeyPairCompressedBytes::from_seed(*seed);
        let parts = (*pair.pk1(), Box::new(*pair.pk2()));
        // The 2,400-byte decapsulation key inside is wiped with the copy we own.
        drop(Zeroizing::new(pair.to_bytes()));
        parts
    }

    /// Whether `pk1` is the header of the key whose vector is `pk2` (hash and modulus checks).
    pub(crate) fn check(pk1: &[u8; PK1_LEN], pk2: &[u8; PK2_LEN]) -> Result<()> {
        inc::validate_pk_bytes(pk1, pk2).map_err(|_| Error::InvalidKem { what: "encapsulation key" })
    }

    /// What the first encapsulation step gives: `ct1`, the shared secret, the state the second needs.
    pub(crate) type FirstStep = (Box<[u8; CT1_LEN]>, Zeroizing<[u8; 32]>, Zeroizing<Vec<u8>>);

    /// The first encapsulation step: `ct1` and the shared secret from the header and the 32-byte
    /// randomness `m`. Deterministic, so the second step recomputes it from `m` instead of storing
    /// the 2 KB intermediate state.
    pub(crate) fn encapsulate1(pk1: &[u8; PK1_LEN], m: &[u8; 32]) -> Result<FirstStep> {
        let mut state = Zeroizing::new(vec![0u8; encaps_state_len()]);
        let mut ss = Zeroizing::new([0u8; 32]);
        let ct1 = inc::encapsulate1(pk1, *m, state.as_mut_slice(), ss.as_mut_slice())
            .map_err(|_| Error::Internal("ML-KEM encapsulate1"))?;
        Ok((Box::new(ct1.value), ss, state))
    }

    /// The second encapsulation step: `ct2` from the first step's state and the key's vector.
    pub(crate) fn encapsulate2(pk1: &[u8; PK1_LEN], m: &[u8; 32], pk2: &[u8; PK2_LEN]) -> Result<[u8; CT2_LEN]> {
        let (_, _, state) = encapsulate1(pk1, m)?;
        let state: &[u8; encaps_state_len()] =
            state.as_slice().try_into().map_err(|_| Error::Internal("ML-KEM encapsulation state"))?;
        Ok(inc::encapsulate2(state, pk2).value)
    }

    /// Decapsulates `ct1 ‖ ct2` with the key pair generated from `seed`. As for any ML-KEM
    /// decapsulation, a wrong ciphertext yields an unrelated secret (implicit rejection).
    pub(crate) fn decapsulate(seed: &[u8; 64], ct1: &[u8; CT1_LEN], ct2: &[u8; CT2_LEN]) -> Zeroizing<[u8; 32]> {
        let pair = KeyPairCompressedBytes::from_seed(*seed);
        let ss = inc::decapsulate_compressed_key(pair.sk(), &Ciphertext1 { value: *ct1 }, &Ciphertext2 { value: *ct2 });
        drop(Zeroizing::new(pair.to_bytes()));
        Zeroizing::new(ss)
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

    /// The incremental split produces standard ML-KEM-768 bytes: `t ‖ ρ` is the key of the same
    /// seed, `ct1 ‖ ct2` decapsulates with the standard API to the same secret.
    #[test]
    fn incremental_split_is_standard_ml_kem() {
        let seed = [7u8; 64];
        let (pk1, pk2) = incremental::public_parts(&seed);
        let standard = KemSecret::from_seed(seed).public();
        assert_eq!(&standard.as_bytes()[..incremental::PK2_LEN], pk2.as_slice());
        assert_eq!(&standard.as_bytes()[incremental::PK2_LEN..], &pk1[..32]);
        incremental::check(&pk1, &pk2).unwrap();
        let m = [9u8; 32];
        let (ct1, ss, _) = incremental::encapsulate1(&pk1, &m).unwrap();
        let ct2 = incremental::encapsulate2(&pk1, &m, &pk2).unwrap();
        let ct = [ct1.as_slice(), ct2.as_slice()].concat();
        assert_eq!(*KemSecret::from_seed(seed).decapsulate(&ct).unwrap(), *ss);
        assert_eq!(*incremental::decapsulate(&seed, &ct1, &ct2), *ss);
        let (standard_ct, standard_ss) = mlkem768::encapsulate(&MlKem768PublicKey::from(*standard.as_bytes()), m);
        assert_eq!(standard_ct.as_slice(), ct.as_slice());
        assert_eq!(standard_ss, *ss);
        let mut other = pk1;
        other[40] ^= 1;
        assert!(incremental::check(&other, &pk2).is_err());
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
