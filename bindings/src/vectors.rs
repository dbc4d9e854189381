//! Free functions over hush-core's public primitives, exported so that every language checks the
//! shared `test-vectors/` through the same native code the client uses: safety numbers
//! (`safety_number.json`), signed device lists (`device_list.json`), sealed-sender envelopes and
//! delivery-token hashes (`sealed_sender.json`).
//!
//! Keys and byte strings cross the boundary as raw bytes (`bytes` in Python, `ByteArray` in Kotlin,
//! `Data` in Swift). Every function checks its input and fails with a typed [`HushError`].

use hush_core::sealed_sender::{self, InnerKind};
use hush_core::{DeliveryToken, DeviceIdentity, DeviceKeys, SafetyNumber, SignedDeviceList, SigningPublicKey};
use zeroize::Zeroizing;

use crate::error::HushError;

/// A safety number of two users (`test-vectors/safety_number.json`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SafetyNumberInfo {
    /// 60 decimal digits.
    pub digits: String,
    /// The digits in 12 groups of 5, separated by single spaces.
    pub display: String,
    /// The 65-byte QR code payload.
    pub qr_payload: Vec<u8>,
}

/// One device of a signed device list: its public keys.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceInfo {
    /// The Ed25519 device key (the device's id), 32 bytes.
    pub device_key: Vec<u8>,
    /// The X25519 identity key, 32 bytes.
    pub identity_key: Vec<u8>,
    /// The device key's signature over the identity key, 64 bytes.
    pub identity_signature: Vec<u8>,
}

impl From<DeviceKeys> for DeviceInfo {
    fn from(d: DeviceKeys) -> Self {
        Self {
            device_key: d.device_key().to_bytes().to_vec(),
            identity_key: d.identity_key().to_bytes().to_vec(),
            identity_signature: d.signature().to_vec(),
        }
    }
}

/// A signed device list whose signatures all verified (`test-vectors/device_list.json`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceListInfo {
    /// The Ed25519 user key that signed the list, 32 bytes.
    pub user_key: Vec<u8>,
    /// The list's version; a newer list has a higher one.
    pub list_version: u64,
    /// When the list was signed, unix seconds.
    pub created_at: u64,
    /// The user's devices, in list order.
    pub devices: Vec<DeviceInfo>,
}

/// What a sealed-sender envelope carries (`SealedContent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SealedKind {
    /// An encoded 1:1 session message.
    Session,
    /// An encoded group message.
    Group,
}

/// An opened sealed-sender envelope (`test-vectors/sealed_sender.json`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct UnsealedEnvelope {
    /// The user key the sender claims, 32 bytes. Not authenticated by the envelope alone: check it
    /// against the sender's signed device list.
    pub sender_user_key: Vec<u8>,
    /// The device that sealed the envelope, authenticated by its identity key.
    pub sender_device: DeviceInfo,
    /// What `inner` is.
    pub kind: SealedKind,
    /// The inner message, still encrypted under its session or group chain.
    pub inner: Vec<u8>,
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], HushError> {
    bytes.try_into().map_err(|_| HushError::bad_input(format!("{what} must be 32 bytes, got {}", bytes.len())))
}

fn user_key(bytes: &[u8], what: &'static str) -> Result<SigningPublicKey, HushError> {
    Ok(SigningPublicKey::from_slice(bytes, what)?)
}

/// The safety number of two users from their 32-byte Ed25519 user keys. The order of the two keys
/// does not matter.
///
/// Errors: [`HushError::BadInput`] when a key is not 32 bytes or not a valid Ed25519 point.
#[uniffi::export]
pub fn compute_safety_number(user_a_key: Vec<u8>, user_b_key: Vec<u8>) -> Result<SafetyNumberInfo, HushError> {
    let a = user_key(&user_a_key, "user key a")?;
    let b = user_key(&user_b_key, "user key b")?;
    let n = SafetyNumber::new(&a, &b);
    Ok(SafetyNumberInfo { digits: n.digits().to_owned(), display: n.display(), qr_payload: n.qr_payload().to_vec() })
}

/// Decodes and verifies an encoded `SignedDeviceList`: the user key's signature over the exact
/// list bytes, every device's identity signature, canonical encoding, versions, no duplicates.
/// With `expected_user_key`, the list must also be signed by that (pinned) user key.
///
/// Errors: [`HushError::BadInput`] for bytes that do not decode (or a pinned key that is not a
/// key); [`HushError::Identity`] for a signature that does not verify, a duplicate device, or a
/// list signed by another user key than `expected_user_key`.
#[uniffi::export]
pub fn verify_device_list(
    signed_device_list: Vec<u8>,
    expected_user_key: Option<Vec<u8>>,
) -> Result<DeviceListInfo, HushError> {
    let list = SignedDeviceList::from_bytes(&signed_device_list)?;
    if let Some(expected) = expected_user_key
        && list.user_key() != user_key(&expected, "expected user key")?
    {
        return Err(hush_core::Error::UserKeyChanged.into());
    }
    Ok(DeviceListInfo {
        user_key: list.user_key().to_bytes().to_vec(),
        list_version: list.list_version(),
        created_at: list.created_at(),
        devices: list.devices().iter().copied().map(DeviceInfo::from).collect(),
    })
}

/// Opens a sealed-sender envelope addressed to the device whose two 32-byte secrets are given
/// (the Ed25519 device key seed and the X25519 identity secret). The secrets are wiped from this
/// library's memory after use. Meant for checking test vectors and for tools: applications open
/// envelopes inside the client, whose secrets never leave the store.
///
/// Errors: [`HushError::BadInput`] for a secret that is not 32 bytes or bytes that are not an
/// envelope; [`HushError::Decryption`] when a layer does not authenticate (tampered, or for
/// another recipient); [`HushError::Identity`] when the sender inside does not match the key that
/// sealed it, or a low-order key.
#[uniffi::export]
pub fn open_sealed_envelope(
    recipient_device_secret: Vec<u8>,
    recipient_identity_secret: Vec<u8>,
    envelope: Vec<u8>,
) -> Result<UnsealedEnvelope, HushError> {
    let device_secret = Zeroizing::new(recipient_device_secret);
    let identity_secret = Zeroizing::new(recipient_identity_secret);
    let device_secret = Zeroizing::new(array32(&device_secret, "recipient device secret")?);
    let identity_secret = Zeroizing::new(array32(&identity_secret, "recipient identity secret")?);
    let recipient = DeviceIdentity::from_secret_bytes(&device_secret, &identity_secret);
    let opened = sealed_sender::open(&recipient, &envelope)?;
    Ok(UnsealedEnvelope {
        sender_user_key: opened.sender_user_key.to_bytes().to_vec(),
        sender_device: opened.sender_device.into(),
        kind: match opened.kind {
            InnerKind::Session => SealedKind::Session,
            InnerKind::Group => SealedKind::Group,
            // A retry receipt (sealed without a session) is opened by the client only: BadInput here.
            InnerKind::Plaintext => {
                return Err(hush_core::Error::Malformed { what: "sealed inner kind (a retry receipt)" }.into());
            }
        },
        inner: opened.inner,
    })
}

/// The hash a relay stores for a 32-byte delivery token: `SHA-256("hush/delivery-token/v1" ||
/// token)`.
///
/// Errors: [`HushError::BadInput`] when the token is not 32 bytes.
#[uniffi::export]
pub fn delivery_token_hash(token: Vec<u8>) -> Result<Vec<u8>, HushError> {
    let token = Zeroizing::new(token);
    Ok(DeliveryToken::from_bytes(&token)?.hash().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors(name: &str) -> Value {
        let path = format!("{}/../test-vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn hex(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    #[test]
    fn safety_numbers_match_the_vectors() {
        let v = vectors("safety_number.json");
        for c in v["cases"].as_array().unwrap() {
            let n = compute_safety_number(hex(&c["user_a_key"]), hex(&c["user_b_key"])).unwrap();
            assert_eq!(n.digits, c["digits"].as_str().unwrap());
            assert_eq!(n.display, c["display"].as_str().unwrap());
            assert_eq!(n.qr_payload, hex(&c["qr_payload"]));
            assert_eq!(compute_safety_number(hex(&c["user_b_key"]), hex(&c["user_a_key"])).unwrap(), n);
        }
        assert!(matches!(compute_safety_number(vec![1; 31], vec![2; 32]), Err(HushError::BadInput(_))));
    }

    #[test]
    fn device_lists_match_the_vectors() {
        let v = vectors("device_list.json");
        for c in v["cases"].as_array().unwrap() {
            let signed = hex(&c["signed_device_list"]);
            let list = verify_device_list(signed.clone(), Some(hex(&c["user_key"]))).unwrap();
            assert_eq!(list.user_key, hex(&c["user_key"]));
            assert_eq!(list.list_version, c["list_version"].as_u64().unwrap());
            assert_eq!(list.created_at, c["created_at"].as_u64().unwrap());
            let devices = c["devices"].as_array().unwrap();
            assert_eq!(list.devices.len(), devices.len());
            for (got, want) in list.devices.iter().zip(devices) {
                assert_eq!(got.device_key, hex(&want["device_key"]));
                assert_eq!(got.identity_key, hex(&want["identity_key"]));
                assert_eq!(got.identity_signature, hex(&want["identity_signature"]));
            }
            // The last byte is in the signature: flipping it must fail verification.
            let mut tampered = signed.clone();
            *tampered.last_mut().unwrap() ^= 1;
            assert!(matches!(verify_device_list(tampered, None), Err(HushError::Identity(_))));
            let other = hex(&v["cases"][0]["devices"][0]["device_key"]);
            assert!(matches!(verify_device_list(signed, Some(other)), Err(HushError::Identity(_))));
        }
        assert!(matches!(verify_device_list(vec![0xff; 3], None), Err(HushError::BadInput(_))));
    }

    #[test]
    fn sealed_envelopes_open_as_the_vectors_say() {
        let v = vectors("sealed_sender.json");
        for c in v["cases"].as_array().unwrap() {
            let r = &c["recipient"];
            let (dev, id) = (hex(&r["device_signing_secret"]), hex(&r["identity_secret"]));
            let opened = open_sealed_envelope(dev.clone(), id.clone(), hex(&c["envelope"])).unwrap();
            assert_eq!(opened.sender_user_key, hex(&c["sender_user_key"]));
            assert_eq!(opened.sender_device.device_key, hex(&c["sender"]["device_key"]));
            assert_eq!(opened.sender_device.identity_key, hex(&c["sender"]["identity_key"]));
            assert_eq!(opened.inner, hex(&c["inner"]));
            let kind = if c["kind"] == "session" { SealedKind::Session } else { SealedKind::Group };
            assert_eq!(opened.kind, kind);
            let mut tampered = hex(&c["envelope"]);
            *tampered.last_mut().unwrap() ^= 1;
            assert!(matches!(open_sealed_envelope(dev, id, tampered), Err(HushError::Decryption(_))));
        }
        for t in v["delivery_tokens"].as_array().unwrap() {
            assert_eq!(delivery_token_hash(hex(&t["token"])).unwrap(), hex(&t["hash"]));
        }
        assert!(matches!(delivery_token_hash(vec![0; 5]), Err(HushError::BadInput(_))));
    }
}
