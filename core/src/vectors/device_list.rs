//! `test-vectors/device_list.json`: signed device lists (the user key's signature over an encoded
//! `DeviceList`, and the encoded `SignedDeviceList`), generated with the crate's real
//! `SignedDeviceList`, then re-checked with ed25519-dalek and prost alone.

use super::*;
use crate::SignedDeviceList;

#[derive(Serialize, Deserialize)]
struct DeviceListFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<DeviceListCase>,
}

#[derive(Serialize, Deserialize)]
struct DeviceListCase {
    name: String,
    user_secret: String,
    user_key: String,
    list_version: u64,
    created_at: u64,
    devices: Vec<PublicDeviceV>,
    device_list: String,
    signature: String,
    signed_device_list: String,
}

fn generate_device_list() -> DeviceListFile {
    let seed = seed_for("device-list");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = Vec::new();
    for (name, count, list_version, created_at) in
        [("one_device", 1, 1u64, 1_700_000_000u64), ("three_devices", 3, 300, 1_767_225_600)]
    {
        let user = UserIdentity::generate(&mut rng);
        let devices: Vec<DeviceKeys> = (0..count).map(|_| DeviceIdentity::generate(&mut rng).keys()).collect();
        let list = SignedDeviceList::sign(&user, list_version, &devices, created_at).unwrap();
        let bytes = list.to_bytes();
        assert_eq!(SignedDeviceList::from_bytes(&bytes).unwrap(), list);
        let signed = proto::SignedDeviceList::decode(bytes.as_slice()).unwrap();
        cases.push(DeviceListCase {
            name: name.to_owned(),
            user_secret: h(user.secret_bytes().as_slice()),
            user_key: h(user.user_key().as_bytes()),
            list_version,
            created_at,
            devices: devices.iter().map(public_device_v).collect(),
            device_list: h(&signed.device_list),
            signature: h(&signed.signature),
            signed_device_list: h(&bytes),
        });
    }
    DeviceListFile {
        version: FORMAT_VERSION,
        description: "Signed device lists: the user key's signature over an encoded DeviceList, and the encoded \
                      SignedDeviceList. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
    }
}

#[test]
fn device_list_vectors_match() {
    check_or_write("device_list.json", &generate_device_list());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use ed25519_dalek::Signature;

    use super::*;
    use crate::vectors::independent::{check_signature, committed, device_proto, ed25519_public};

    #[test]
    fn device_list_vectors_verify_independently() {
        let f: DeviceListFile = committed("device_list.json", generate_device_list);
        assert_eq!(f.version, 1);
        for c in &f.cases {
            assert_eq!(ed25519_public(&c.user_secret), c.user_key);
            for d in &c.devices {
                let key = ed25519_dalek::VerifyingKey::from_bytes(&a32(&d.device_key)).unwrap();
                let message = [&b"hush/identity-key/v1"[..], &unhex(&d.identity_key)].concat();
                key.verify_strict(&message, &Signature::from_slice(&unhex(&d.identity_signature)).unwrap()).unwrap();
            }
            let list = proto::DeviceList {
                version: 1,
                user_key: unhex(&c.user_key),
                list_version: c.list_version,
                devices: c
                    .devices
                    .iter()
                    .map(|d| device_proto(&d.device_key, &d.identity_key, &d.identity_signature))
                    .collect(),
                created_at: c.created_at,
            };
            assert_eq!(h(&list.encode_to_vec()), c.device_list);
            check_signature(&c.user_secret, b"hush/device-list/v1", &unhex(&c.device_list), &c.signature);
            let signed = proto::SignedDeviceList {
                version: 1,
                device_list: unhex(&c.device_list),
                signature: unhex(&c.signature),
            };
            assert_eq!(h(&signed.encode_to_vec()), c.signed_device_list);
        }
    }
}
