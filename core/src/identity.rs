//! Device and user identities (docs/PROTOCOL.md §3).
//!
//! A device has an Ed25519 device key (its id) and an X25519 identity key signed by it; a user has
//! an Ed25519 user key that signs the user's device list.

use core::fmt;

use rand_core::CryptoRngCore;

use crate::crypto::keys::{IDENTITY_KEY_CONTEXT, KeyPair, Signature64, SigningKeyPair};
use crate::crypto::{DeviceKeys, PublicKey, SigningPublicKey};

/// A device's secret identity: the Ed25519 device key and the X25519 identity key.
#[derive(Clone)]
pub struct DeviceIdentity {
    pub(crate) signing: SigningKeyPair,
    pub(crate) identity: KeyPair,
    pub(crate) keys: DeviceKeys,
}

impl DeviceIdentity {
    /// Generates a fresh device identity.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let signing = SigningKeyPair::generate(rng);
        let identity = KeyPair::generate(rng);
        Self::from_parts(signing, identity)
    }

    /// Restores a device identity from its two 32-byte secrets: the Ed25519 device key seed and
    /// the X25519 identity secret (unclamped, as `test-vectors/` records them). For tools and
    /// test-vector checks; applications keep identities in the encrypted store instead.
    pub fn from_secret_bytes(device_signing_secret: &[u8; 32], identity_secret: &[u8; 32]) -> Self {
        Self::from_parts(
            SigningKeyPair::from_secret_bytes(device_signing_secret),
            KeyPair::from_secret_bytes(*identity_secret),
        )
    }

    pub(crate) fn from_parts(signing: SigningKeyPair, identity: KeyPair) -> Self {
        let signature = Signature64(signing.sign(IDENTITY_KEY_CONTEXT, identity.public().as_bytes()));
        let keys = DeviceKeys { device_key: signing.public(), identity_key: identity.public(), signature };
        Self { signing, identity, keys }
    }

    /// The device's public keys, as peers and the relay see them.
    pub fn keys(&self) -> DeviceKeys {
        self.keys
    }

    /// The Ed25519 device key: the device's id.
    pub fn device_key(&self) -> SigningPublicKey {
        self.keys.device_key
    }

    /// The X25519 identity key.
    pub fn identity_key(&self) -> PublicKey {
        self.keys.identity_key
    }

    /// Signs `context || message` with the device key (relay authentication, prekeys).
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        self.signing.sign(context, message)
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity").field("keys", &self.keys).field("secrets", &"[redacted]").finish()
    }
}

/// A user's secret Ed25519 user key, which signs the user's device lists.
#[derive(Clone)]
pub struct UserIdentity {
    pub(crate) signing: SigningKeyPair,
}

impl UserIdentity {
    /// Generates a fresh user key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self { signing: SigningKeyPair::generate(rng) }
    }

    /// Restores a user key from its 32 secret bytes (as handed to a newly linked device).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self { signing: SigningKeyPair::from_secret_bytes(bytes) }
    }

    /// The 32 secret bytes, zeroized when the returned value drops. Handle with care.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        self.signing.secret_bytes()
    }

    /// The public user key.
    pub fn user_key(&self) -> SigningPublicKey {
        self.signing.public()
    }
}

impl fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserIdentity").field("user_key", &self.user_key()).field("secret", &"[redacted]").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn device_keys_verify_and_bind() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let device = DeviceIdentity::generate(&mut rng);
        let keys = device.keys();
        let verified = DeviceKeys::new(keys.device_key(), keys.identity_key(), &keys.signature()).unwrap();
        assert_eq!(verified, keys);
        let other = DeviceIdentity::generate(&mut rng);
        assert!(DeviceKeys::new(keys.device_key(), other.identity_key(), &keys.signature()).is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let device = DeviceIdentity::generate(&mut rng);
        let user = UserIdentity::generate(&mut rng);
        let dbg = format!("{device:?} {user:?}");
        for secret in [device.signing.secret_bytes(), device.identity.secret_bytes(), user.secret_bytes()] {
            crate::test_util::assert_no_secret(&dbg, secret.as_slice());
        }
        assert!(dbg.contains("redacted"));
    }
}
