//! `test-vectors/identity.json`: device identities (Ed25519 device key, X25519 identity key, the
//! identity signature) with a signed X25519 prekey and a signed ML-KEM-768 prekey each, generated with
//! the crate's real `DeviceIdentity`, `SignedPrekey` and `KemPrekey` from fixed secrets (the first case
//! from the RFC 8032 / RFC 7748 test keys), then re-checked with the primitive crates alone.

use super::*;

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    version: u32,
    description: String,
    rng_seed: String,
    cases: Vec<IdentityCase>,
}

#[derive(Serialize, Deserialize)]
struct IdentityCase {
    name: String,
    device: DeviceV,
    device_keys_encoded: String,
    signed_prekey: SignedPrekeyV,
    kem_prekey: KemPrekeyV,
}

#[allow(clippy::too_many_arguments)]
fn identity_case(
    name: &str,
    device_secret: [u8; 32],
    identity_secret: [u8; 32],
    spk_id: u32,
    spk_secret: [u8; 32],
    kem_id: u32,
    last_resort: bool,
    kem_seed: [u8; 64],
) -> IdentityCase {
    let device = DeviceIdentity::from_parts(
        SigningKeyPair::from_secret_bytes(&device_secret),
        KeyPair::from_secret_bytes(identity_secret),
    );
    let spk_pair = KeyPair::from_secret_bytes(spk_secret);
    let spk = SignedPrekey::sign(&device, spk_id, spk_pair.public());
    let kem_secret = KemSecret::from_seed(kem_seed);
    let kem = KemPrekey::sign(&device, kem_id, kem_secret.public(), last_resort);
    // What we record must be what the parsers accept.
    let keys = DeviceKeys::from_proto(&device.keys().to_proto()).unwrap();
    assert_eq!(keys, device.keys());
    assert_eq!(SignedPrekey::from_proto(&spk.to_proto(), &keys).unwrap(), spk);
    assert_eq!(KemPrekey::from_proto(&kem.to_proto(), &keys).unwrap(), kem);
    IdentityCase {
        name: name.to_owned(),
        device: device_v(&device),
        device_keys_encoded: h(&device.keys().to_proto().encode_to_vec()),
        signed_prekey: signed_prekey_v(&spk, &spk_pair),
        kem_prekey: kem_prekey_v(&kem, &kem_secret),
    }
}

fn generate_identity() -> IdentityFile {
    let seed = seed_for("identity");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = vec![identity_case(
        "rfc_secrets",
        a32(RFC8032_TEST1_SECRET),
        a32(RFC7748_ALICE_SECRET),
        1,
        a32(RFC7748_BOB_SECRET),
        2,
        false,
        random_array(&mut rng),
    )];
    for (name, spk_id, kem_id, last_resort) in
        [("big_endian_ids_last_resort", 0x0102_0304, 0xA0B0_C0D0, true), ("zero_and_max_ids", 0, u32::MAX, false)]
    {
        let (device, identity, spk) = (random_array(&mut rng), random_array(&mut rng), random_array(&mut rng));
        cases.push(identity_case(name, device, identity, spk_id, spk, kem_id, last_resort, random_array(&mut rng)));
    }
    IdentityFile {
        version: FORMAT_VERSION,
        description: "Device identities and prekeys: Ed25519 device key and X25519 identity key from their secrets, \
                      the device key's signatures over the identity key, a signed X25519 prekey and a signed \
                      ML-KEM-768 prekey (key pair from a 64-byte seed d || z). See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        cases,
    }
}

#[test]
fn identity_vectors_match() {
    check_or_write("identity.json", &generate_identity());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use super::*;
    use crate::vectors::independent::{check_device, check_kem_prekey, check_signed_prekey, committed, device_proto};

    #[test]
    fn identity_vectors_verify_independently() {
        let file: IdentityFile = committed("identity.json", generate_identity);
        assert_eq!(file.version, 1);
        assert_eq!(file.cases.len(), 3);
        // Anchors to the RFCs' own examples.
        let rfc = &file.cases[0];
        assert_eq!(rfc.device.device_key, RFC8032_TEST1_PUBLIC);
        assert_eq!(rfc.device.identity_key, RFC7748_ALICE_PUBLIC);
        assert_eq!(rfc.signed_prekey.public_key, RFC7748_BOB_PUBLIC);
        for case in &file.cases {
            check_device(&case.device);
            let d = &case.device;
            assert_eq!(
                h(&device_proto(&d.device_key, &d.identity_key, &d.identity_signature).encode_to_vec()),
                case.device_keys_encoded
            );
            check_signed_prekey(&case.device, &case.signed_prekey);
            check_kem_prekey(&case.device, &case.kem_prekey);
        }
    }
}
