//! Prekeys and prekey bundles (docs/PROTOCOL.md §5): a signed X25519 prekey, one-time X25519
//! prekeys, and signed ML-KEM-768 prekeys (one-time and last resort). A bundle verifies every
//! signature when it is parsed, so a `PrekeyBundle` value is always trustworthy to the device key.

use prost::Message;

use crate::crypto::kem::KemPublicKey;
use crate::crypto::keys::Signature64;
use crate::crypto::{DeviceKeys, PublicKey};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::MAX_BUNDLE_BYTES;
use crate::wire::{self, proto};

const SIGNED_PREKEY_CONTEXT: &[u8] = b"hush/signed-prekey/v1";
const KEM_PREKEY_CONTEXT: &[u8] = b"hush/kem-prekey/v1";
const BUNDLE_VERSION: u32 = 1;

/// A signed X25519 prekey (public half).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPrekey {
    /// Prekey id, unique per device.
    pub id: u32,
    /// The X25519 public key.
    pub public_key: PublicKey,
    pub(crate) signature: Signature64,
}

impl SignedPrekey {
    pub(crate) fn sign(device: &DeviceIdentity, id: u32, public_key: PublicKey) -> Self {
        let signature = Signature64(device.sign(SIGNED_PREKEY_CONTEXT, &signed_prekey_message(id, &public_key)));
        Self { id, public_key, signature }
    }

    /// Verifies the device key's signature.
    pub fn verify(&self, device: &DeviceKeys) -> Result<()> {
        device.device_key.verify(
            SIGNED_PREKEY_CONTEXT,
            &signed_prekey_message(self.id, &self.public_key),
            &self.signature.0,
            "signed prekey",
        )
    }

    /// Encodes for upload to the relay.
    pub fn to_proto(&self) -> proto::SignedPrekey {
        proto::SignedPrekey {
            id: self.id,
            public_key: self.public_key.0.to_vec(),
            signature: self.signature.0.to_vec(),
        }
    }

    /// Decodes and verifies against `device`.
    pub fn from_proto(p: &proto::SignedPrekey, device: &DeviceKeys) -> Result<Self> {
        let key = Self {
            id: p.id,
            public_key: PublicKey::from_slice(&p.public_key, "signed prekey")?,
            signature: Signature64::from_slice(&p.signature, "signed prekey")?,
        };
        key.verify(device)?;
        Ok(key)
    }
}

fn signed_prekey_message(id: u32, key: &PublicKey) -> [u8; 36] {
    let mut m = [0u8; 36];
    m[..4].copy_from_slice(&id.to_be_bytes());
    m[4..].copy_from_slice(key.as_bytes());
    m
}

/// A one-time X25519 prekey (public half). Unsigned, as in X3DH: a swapped one only costs the
/// one-time prekey's extra forward secrecy, never authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneTimePrekey {
    /// Prekey id, unique per device.
    pub id: u32,
    /// The X25519 public key.
    pub public_key: PublicKey,
}

impl OneTimePrekey {
    /// Encodes for upload to the relay.
    pub fn to_proto(&self) -> proto::OneTimePrekey {
        proto::OneTimePrekey { id: self.id, public_key: self.public_key.0.to_vec() }
    }

    /// Decodes.
    pub fn from_proto(p: &proto::OneTimePrekey) -> Result<Self> {
        Ok(Self { id: p.id, public_key: PublicKey::from_slice(&p.public_key, "one-time prekey")? })
    }
}

/// A signed ML-KEM-768 prekey (public half).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KemPrekey {
    /// Prekey id, unique per device (shared id space with the X25519 prekeys).
    pub id: u32,
    /// The ML-KEM-768 public key.
    pub public_key: KemPublicKey,
    /// Whether this is the last-resort key, used when no one-time KEM prekey is left.
    pub last_resort: bool,
    pub(crate) signature: Signature64,
}

impl KemPrekey {
    pub(crate) fn sign(device: &DeviceIdentity, id: u32, public_key: KemPublicKey, last_resort: bool) -> Self {
        let signature = Signature64(device.sign(KEM_PREKEY_CONTEXT, &kem_prekey_message(id, &public_key, last_resort)));
        Self { id, public_key, last_resort, signature }
    }

    /// Verifies the device key's signature.
    pub fn verify(&self, device: &DeviceKeys) -> Result<()> {
        device.device_key.verify(
            KEM_PREKEY_CONTEXT,
            &kem_prekey_message(self.id, &self.public_key, self.last_resort),
            &self.signature.0,
            "ML-KEM prekey",
        )
    }

    /// Encodes for upload to the relay.
    pub fn to_proto(&self) -> proto::KemPrekey {
        proto::KemPrekey {
            id: self.id,
            public_key: self.public_key.as_bytes().to_vec(),
            last_resort: self.last_resort,
            signature: self.signature.0.to_vec(),
        }
    }

    /// Decodes, validates the key and verifies against `device`.
    pub fn from_proto(p: &proto::KemPrekey, device: &DeviceKeys) -> Result<Self> {
        let key = Self {
            id: p.id,
            public_key: KemPublicKey::from_slice(&p.public_key)?,
            last_resort: p.last_resort,
            signature: Signature64::from_slice(&p.signature, "ML-KEM prekey")?,
        };
        key.verify(device)?;
        Ok(key)
    }
}

fn kem_prekey_message(id: u32, key: &KemPublicKey, last_resort: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(5 + key.as_bytes().len());
    m.extend_from_slice(&id.to_be_bytes());
    m.push(u8::from(last_resort));
    m.extend_from_slice(key.as_bytes());
    m
}

/// Everything an initiator needs to open a session with one responder device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The responder device's public keys.
    pub device: DeviceKeys,
    /// Its current signed prekey.
    pub signed_prekey: SignedPrekey,
    /// A one-time prekey, if the relay had one left.
    pub one_time_prekey: Option<OneTimePrekey>,
    /// An ML-KEM prekey; `None` only for classical (X3DH-only) peers.
    pub kem_prekey: Option<KemPrekey>,
}

impl PrekeyBundle {
    /// Assembles a bundle from verified parts, checking every signature against `device`.
    pub fn new(
        device: DeviceKeys,
        signed_prekey: SignedPrekey,
        one_time_prekey: Option<OneTimePrekey>,
        kem_prekey: Option<KemPrekey>,
    ) -> Result<Self> {
        signed_prekey.verify(&device)?;
        if let Some(k) = &kem_prekey {
            k.verify(&device)?;
        }
        Ok(Self { device, signed_prekey, one_time_prekey, kem_prekey })
    }

    /// Encodes the bundle.
    pub fn to_bytes(&self) -> Vec<u8> {
        proto::PrekeyBundle {
            version: BUNDLE_VERSION,
            device: Some(self.device.to_proto()),
            signed_prekey: Some(self.signed_prekey.to_proto()),
            one_time_prekey: self.one_time_prekey.map(|k| k.to_proto()),
            kem_prekey: self.kem_prekey.as_ref().map(KemPrekey::to_proto),
        }
        .encode_to_vec()
    }

    /// Decodes and verifies every signature (device identity, signed prekey, KEM prekey).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: proto::PrekeyBundle = wire::decode(bytes, MAX_BUNDLE_BYTES, "prekey bundle")?;
        wire::check_version("prekey bundle", p.version, BUNDLE_VERSION)?;
        let device = DeviceKeys::from_proto(wire::required(&p.device, "prekey bundle device")?)?;
        let signed_prekey = SignedPrekey::from_proto(wire::required(&p.signed_prekey, "signed prekey")?, &device)?;
        let one_time_prekey = p.one_time_prekey.as_ref().map(OneTimePrekey::from_proto).transpose()?;
        let kem_prekey = p.kem_prekey.as_ref().map(|k| KemPrekey::from_proto(k, &device)).transpose()?;
        if one_time_prekey.is_some_and(|k| k.id == signed_prekey.id)
            || kem_prekey.as_ref().is_some_and(|k| k.id == signed_prekey.id)
        {
            return Err(Error::Malformed { what: "prekey bundle ids" });
        }
        Ok(Self { device, signed_prekey, one_time_prekey, kem_prekey })
    }
}
