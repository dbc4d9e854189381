//! Signed device lists (docs/PROTOCOL.md §4): the user key names the user's devices,
//! so the relay cannot add a ghost device, and versions only go up, so it cannot roll one back.

use prost::Message;

use crate::crypto::{DeviceKeys, SigningPublicKey};
use crate::error::{Error, Result};
use crate::identity::UserIdentity;
use crate::limits::{MAX_DEVICE_LIST_BYTES, MAX_DEVICES};
use crate::wire::{self, proto};

const CONTEXT: &[u8] = b"hush/device-list/v1";
const FORMAT_VERSION: u32 = 1;

/// A verified, signed device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDeviceList {
    user_key: SigningPublicKey,
    list_version: u64,
    devices: Vec<DeviceKeys>,
    created_at: u64,
    encoded: Vec<u8>,
}

impl SignedDeviceList {
    /// Signs a new device list. `list_version` must exceed every earlier list's version.
    pub fn sign(user: &UserIdentity, list_version: u64, devices: &[DeviceKeys], created_at: u64) -> Result<Self> {
        check_devices(devices)?;
        let list = proto::DeviceList {
            version: FORMAT_VERSION,
            user_key: user.user_key().to_bytes().to_vec(),
            list_version,
            devices: devices.iter().map(|d| d.to_proto()).collect(),
            created_at,
        }
        .encode_to_vec();
        let signature = user.signing.sign(CONTEXT, &list).to_vec();
        let encoded = proto::SignedDeviceList { version: FORMAT_VERSION, device_list: list, signature }.encode_to_vec();
        Self::from_bytes(&encoded)
    }

    /// Decodes and verifies: size limit, versions, canonical encoding, the user key's signature,
    /// every device's identity signature, no duplicate devices.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let signed: proto::SignedDeviceList = wire::decode(bytes, MAX_DEVICE_LIST_BYTES, "signed device list")?;
        wire::check_version("signed device list", signed.version, FORMAT_VERSION)?;
        let list: proto::DeviceList = wire::decode(&signed.device_list, MAX_DEVICE_LIST_BYTES, "device list")?;
        wire::check_version("device list", list.version, FORMAT_VERSION)?;
        let user_key = SigningPublicKey::from_slice(&list.user_key, "user key")?;
        user_key.verify(CONTEXT, &signed.device_list, &signed.signature, "device list")?;
        if list.devices.len() > MAX_DEVICES {
            return Err(Error::TooLarge { what: "device list", size: list.devices.len(), max: MAX_DEVICES });
        }
        let devices = list.devices.iter().map(DeviceKeys::from_proto).collect::<Result<Vec<_>>>()?;
        check_devices(&devices)?;
        Ok(Self {
            user_key,
            list_version: list.list_version,
            devices,
            created_at: list.created_at,
            encoded: bytes.to_vec(),
        })
    }

    /// The encoded, signed list.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The user key that signed the list.
    pub fn user_key(&self) -> SigningPublicKey {
        self.user_key
    }

    /// The list's version.
    pub fn list_version(&self) -> u64 {
        self.list_version
    }

    /// The devices named.
    pub fn devices(&self) -> &[DeviceKeys] {
        &self.devices
    }

    /// When the list was signed (unix seconds, as claimed by the signer).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The device with this device key, if the list names it.
    pub fn device(&self, device_key: &SigningPublicKey) -> Result<&DeviceKeys> {
        self.devices.iter().find(|d| d.device_key() == *device_key).ok_or(Error::UnknownDevice)
    }

    /// Checks that `self` may replace the `pinned` list: same user key ([`Error::UserKeyChanged`]
    /// otherwise) and a strictly higher version ([`Error::DeviceListRollback`] otherwise). The very
    /// same signed list again is accepted, so a repeated fetch is not an error.
    pub fn check_supersedes(&self, pinned: Option<&SignedDeviceList>) -> Result<()> {
        let Some(pinned) = pinned else { return Ok(()) };
        if pinned.user_key != self.user_key {
            return Err(Error::UserKeyChanged);
        }
        if self.list_version > pinned.list_version || self.encoded == pinned.encoded {
            return Ok(());
        }
        Err(Error::DeviceListRollback { pinned: pinned.list_version, received: self.list_version })
    }
}

fn check_devices(devices: &[DeviceKeys]) -> Result<()> {
    if devices.len() > MAX_DEVICES {
        return Err(Error::TooLarge { what: "device list", size: devices.len(), max: MAX_DEVICES });
    }
    for (i, d) in devices.iter().enumerate() {
        if devices.iter().skip(i + 1).any(|o| o.device_key() == d.device_key()) {
            return Err(Error::DuplicateDevice);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceIdentity;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn setup() -> (ChaCha20Rng, UserIdentity, Vec<DeviceKeys>) {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let user = UserIdentity::generate(&mut rng);
        let devices = (0..3).map(|_| DeviceIdentity::generate(&mut rng).keys()).collect();
        (rng, user, devices)
    }

    #[test]
    fn sign_verify_round_trip() {
        let (_, user, devices) = setup();
        let list = SignedDeviceList::sign(&user, 1, &devices, 1_700_000_000).unwrap();
        let parsed = SignedDeviceList::from_bytes(&list.to_bytes()).unwrap();
        assert_eq!(parsed, list);
        assert_eq!(parsed.devices(), &devices[..]);
        assert!(parsed.device(&devices[1].device_key()).is_ok());
    }

    #[test]
    fn rejects_ghost_device_and_foreign_signature() {
        let (mut rng, user, devices) = setup();
        let list = SignedDeviceList::sign(&user, 1, &devices, 0).unwrap();
        // The relay re-encodes the list with an extra device but cannot re-sign it.
        let mut signed = proto::SignedDeviceList::decode(list.to_bytes().as_slice()).unwrap();
        let mut inner = proto::DeviceList::decode(signed.device_list.as_slice()).unwrap();
        inner.devices.push(DeviceIdentity::generate(&mut rng).keys().to_proto());
        signed.device_list = inner.encode_to_vec();
        assert_eq!(
            SignedDeviceList::from_bytes(&signed.encode_to_vec()),
            Err(Error::BadSignature { what: "device list" })
        );
        // A list signed by another user key claiming this user's key.
        let mallory = UserIdentity::generate(&mut rng);
        let forged = SignedDeviceList::sign(&mallory, 2, &devices, 0).unwrap();
        let mut signed = proto::SignedDeviceList::decode(forged.to_bytes().as_slice()).unwrap();
        let mut inner = proto::DeviceList::decode(signed.device_list.as_slice()).unwrap();
        inner.user_key = user.user_key().to_bytes().to_vec();
        signed.device_list = inner.encode_to_vec();
        assert!(SignedDeviceList::from_bytes(&signed.encode_to_vec()).is_err());
    }

    #[test]
    fn versions_only_go_up() {
        let (mut rng, user, devices) = setup();
        let v1 = SignedDeviceList::sign(&user, 1, &devices, 0).unwrap();
        let v2 = SignedDeviceList::sign(&user, 2, &devices[..2], 0).unwrap();
        assert!(v2.check_supersedes(Some(&v1)).is_ok());
        assert!(v2.check_supersedes(Some(&v2)).is_ok());
        assert_eq!(v1.check_supersedes(Some(&v2)), Err(Error::DeviceListRollback { pinned: 2, received: 1 }));
        let v2b = SignedDeviceList::sign(&user, 2, &devices, 0).unwrap();
        assert_eq!(v2b.check_supersedes(Some(&v2)), Err(Error::DeviceListRollback { pinned: 2, received: 2 }));
        let other = SignedDeviceList::sign(&UserIdentity::generate(&mut rng), 9, &devices, 0).unwrap();
        assert_eq!(other.check_supersedes(Some(&v2)), Err(Error::UserKeyChanged));
    }

    #[test]
    fn rejects_duplicates_and_oversize() {
        let (_, user, devices) = setup();
        let dup = vec![devices[0], devices[0]];
        assert_eq!(SignedDeviceList::sign(&user, 1, &dup, 0), Err(Error::DuplicateDevice));
        assert!(matches!(
            SignedDeviceList::from_bytes(&vec![0u8; MAX_DEVICE_LIST_BYTES + 1]),
            Err(Error::TooLarge { .. })
        ));
        assert!(SignedDeviceList::from_bytes(b"\xff\xff").is_err());
    }
}
