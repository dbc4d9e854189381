//! Key types: X25519 key pairs with a contributory Diffie-Hellman, and Ed25519 public keys verified
//! strictly. Secret halves zeroize on drop and print as `[redacted]`.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An X25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub(crate) [u8; 32]);

impl PublicKey {
    /// Wraps 32 bytes without checks (for tests and known-good keys); parse untrusted input with
    /// [`PublicKey::from_slice`].
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a slice that must be exactly 32 bytes in canonical form: X25519 ignores bit 255 and
    /// reduces values ≥ 2²⁵⁵ − 19, so without this check one key would have several encodings, and a
    /// replayed first message with another encoding of its base key would look like a new session.
    /// Keys this library generates are always canonical. Low-order keys are refused at use.
    pub fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self> {
        let key = array32(bytes, what)?;
        if !is_canonical_x25519(&key) {
            return Err(Error::Malformed { what });
        }
        Ok(Self(key))
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key's bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", short_hex(&self.0))
    }
}

/// An X25519 key pair whose secret half zeroizes on drop.
#[derive(Clone)]
pub(crate) struct KeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl KeyPair {
    pub(crate) fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_secret_bytes(random_array(rng))
    }

    pub(crate) fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    pub(crate) fn public(&self) -> PublicKey {
        self.public
    }

    pub(crate) fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// X25519 with the peer's key, refusing a non-contributory result (low-order peer key).
    pub(crate) fn agree(&self, theirs: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(theirs.0));
        if !shared.was_contributory() {
            return Err(Error::NonContributoryKey);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public).field("secret", &"[redacted]").finish()
    }
}

/// An Ed25519 public key used for signatures (a device key or a user key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningPublicKey(pub(crate) VerifyingKey);

impl SigningPublicKey {
    /// Parses 32 bytes, rejecting encodings that are not a valid curve point.
    pub fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self> {
        let arr = array32(bytes, what)?;
        VerifyingKey::from_bytes(&arr).map(Self).map_err(|_| Error::Malformed { what })
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Verifies `signature` over `context || message` with `verify_strict` (no malleable or
    /// small-order signatures). Errors: [`Error::BadSignature`] naming `what`.
    pub fn verify(&self, context: &[u8], message: &[u8], signature: &[u8], what: &'static str) -> Result<()> {
        let sig = Signature::from_slice(signature).map_err(|_| Error::BadSignature { what })?;
        let mut signed = Vec::with_capacity(context.len() + message.len());
        signed.extend_from_slice(context);
        signed.extend_from_slice(message);
        self.0.verify_strict(&signed, &sig).map_err(|_| Error::BadSignature { what })
    }
}

impl core::hash::Hash for SigningPublicKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl fmt::Debug for SigningPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningPublicKey({})", short_hex(self.0.as_bytes()))
    }
}

/// An Ed25519 signing key (device key or user key); zeroizes on drop.
#[derive(Clone)]
pub(crate) struct SigningKeyPair(SigningKey);

impl SigningKeyPair {
    pub(crate) fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(SigningKey::from_bytes(&random_array(rng)))
    }

    pub(crate) fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }

    pub(crate) fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub(crate) fn public(&self) -> SigningPublicKey {
        SigningPublicKey(self.0.verifying_key())
    }

    /// Signs `context || message`.
    pub(crate) fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        let mut signed = Vec::with_capacity(context.len() + message.len());
        signed.extend_from_slice(context);
        signed.extend_from_slice(message);
        self.0.sign(&signed).to_bytes()
    }
}

impl fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyPair").field("public", &self.public()).field("secret", &"[redacted]").finish()
    }
}

/// A device's public identity: its Ed25519 device key (the device id) and its X25519 identity key,
/// bound together by the device key's signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DeviceKeys {
    pub(crate) device_key: SigningPublicKey,
    pub(crate) identity_key: PublicKey,
    pub(crate) signature: Signature64,
}

/// A 64-byte Ed25519 signature as plain bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature64(pub(crate) [u8; 64]);

impl fmt::Debug for Signature64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature64({})", short_hex(&self.0))
    }
}

impl Signature64 {
    pub(crate) fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self> {
        <[u8; 64]>::try_from(bytes).map(Self).map_err(|_| Error::BadSignature { what })
    }
}

/// Signature context binding a device's X25519 identity key to its device key.
pub(crate) const IDENTITY_KEY_CONTEXT: &[u8] = b"hush/identity-key/v1";

impl DeviceKeys {
    /// Builds and verifies: the signature must be the device key's over the identity key.
    pub fn new(device_key: SigningPublicKey, identity_key: PublicKey, signature: &[u8]) -> Result<Self> {
        device_key.verify(IDENTITY_KEY_CONTEXT, identity_key.as_bytes(), signature, "identity key")?;
        Ok(Self { device_key, identity_key, signature: Signature64::from_slice(signature, "identity key")? })
    }

    /// The Ed25519 device key; a device's id.
    pub fn device_key(&self) -> SigningPublicKey {
        self.device_key
    }

    /// The X25519 identity key.
    pub fn identity_key(&self) -> PublicKey {
        self.identity_key
    }

    /// The device key's signature over the identity key.
    pub fn signature(&self) -> [u8; 64] {
        self.signature.0
    }
}

/// Whether `key` is the canonical little-endian encoding of a field element: below p = 2²⁵⁵ − 19
/// (which also means bit 255 is clear).
fn is_canonical_x25519(key: &[u8; 32]) -> bool {
    // Compare with p = ed ff .. ff 7f (little endian), from the most significant byte down.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    key.iter().rev().cmp(p.iter().rev()) == core::cmp::Ordering::Less
}

/// `bytes` as a 32-byte array, or [`Error::Malformed`] naming `what`.
pub(crate) fn array32(bytes: &[u8], what: &'static str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| Error::Malformed { what })
}

pub(crate) fn random_array<const N: usize>(rng: &mut impl CryptoRngCore) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

/// First 8 bytes in hex: enough to tell public keys apart in logs, short enough to read.
fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_encodings_must_be_canonical() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut below = p;
        below[0] = 0xec;
        assert!(PublicKey::from_slice(&below, "k").is_ok());
        assert!(PublicKey::from_slice(&p, "k").is_err());
        assert!(PublicKey::from_slice(&[0xff; 32], "k").is_err());
        let mut high_bit = [9u8; 32];
        assert!(PublicKey::from_slice(&high_bit, "k").is_ok());
        high_bit[31] |= 0x80;
        assert!(PublicKey::from_slice(&high_bit, "k").is_err());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for _ in 0..100 {
            let k = KeyPair::generate(&mut rng).public();
            assert!(PublicKey::from_slice(k.as_bytes(), "k").is_ok());
        }
    }

    use rand_core::SeedableRng;
}
