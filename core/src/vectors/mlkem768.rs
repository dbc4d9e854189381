//! `test-vectors/mlkem768.json`: ML-KEM-768 (FIPS 203) as hush uses it (docs/PROTOCOL.md §2.3): a
//! key pair kept as its 64-byte generation seed `d || z`, the encapsulation key it expands to, one
//! encapsulation with recorded randomness and its decapsulation, and an implicit rejection: a
//! modified ciphertext decapsulates to `J(z || c') = SHAKE256(z || c', 32)` (FIPS 203 §6.3). The
//! rejection case pins `z`, the half of the seed a valid ciphertext never depends on, so an
//! implementation that stores or expands the seed wrongly fails here.

use libcrux_ml_kem::mlkem768;

use super::*;
use crate::crypto::kem::KemPublicKey;

#[derive(Serialize, Deserialize)]
struct MlKemFile {
    version: u32,
    description: String,
    rng_seed: String,
    /// The 64-byte generation seed hush stores: `d || z`.
    seed: String,
    d: String,
    z: String,
    /// ML-KEM.KeyGen_internal(d, z): the encoded encapsulation key.
    encapsulation_key: String,
    /// The 32-byte randomness m of ML-KEM.Encaps_internal.
    encapsulation_randomness: String,
    ciphertext: String,
    shared_secret: String,
    /// Decapsulating `ciphertext` with the key pair of `seed`.
    decapsulated_shared_secret: String,
    /// `ciphertext` with its first byte XOR 0x01.
    modified_ciphertext: String,
    /// Decapsulating `modified_ciphertext`: the implicit-rejection key J(z || modified_ciphertext).
    rejection_shared_secret: String,
}

fn generate_mlkem768() -> MlKemFile {
    let rng_seed = seed_for("mlkem768");
    let mut rng = Recorder::new(rng_seed);
    let secret = KemSecret::generate(&mut rng);
    assert_eq!(rng.take(), vec![secret.seed().to_vec()]);
    let public = KemPublicKey::from_slice(secret.public().as_bytes()).unwrap();
    let (ciphertext, shared_secret) = public.encapsulate(&mut rng);
    let randomness = rng.take().concat();
    assert_eq!(randomness.len(), 32);
    let decapsulated = secret.decapsulate(&ciphertext).unwrap();
    assert_eq!(*decapsulated, *shared_secret);
    let mut modified = ciphertext.clone();
    modified[0] ^= 0x01;
    let rejected = secret.decapsulate(&modified).unwrap();
    assert_ne!(*rejected, *shared_secret);

    let seed = secret.seed();
    MlKemFile {
        version: FORMAT_VERSION,
        description: "ML-KEM-768 (FIPS 203) from a 64-byte seed d || z: key generation, encapsulation with fixed \
                      randomness, decapsulation, and implicit rejection of a modified ciphertext (J(z || c))"
            .into(),
        rng_seed: h(&rng_seed),
        seed: h(seed),
        d: h(&seed[..32]),
        z: h(&seed[32..]),
        encapsulation_key: h(public.as_bytes()),
        encapsulation_randomness: h(&randomness),
        ciphertext: h(&ciphertext),
        shared_secret: h(shared_secret.as_slice()),
        decapsulated_shared_secret: h(decapsulated.as_slice()),
        modified_ciphertext: h(&modified),
        rejection_shared_secret: h(rejected.as_slice()),
    }
}

#[test]
fn mlkem768_vectors_match() {
    check_or_write("mlkem768.json", &generate_mlkem768());
}

/// The committed values against libcrux-ml-kem directly, without hush-core's code.
mod independent {
    use super::*;

    fn seed(f: &MlKemFile) -> [u8; 64] {
        unhex(&f.seed).try_into().unwrap()
    }

    fn ciphertext(hex: &str) -> mlkem768::MlKem768Ciphertext {
        let bytes: [u8; 1088] = unhex(hex).try_into().unwrap();
        mlkem768::MlKem768Ciphertext::from(bytes)
    }

    #[test]
    fn mlkem768_vectors_verify_independently() {
        if writing() {
            check_or_write("mlkem768.json", &generate_mlkem768());
        }
        let f: MlKemFile = load("mlkem768.json");
        assert_eq!(f.seed, format!("{}{}", f.d, f.z));
        let pair = mlkem768::generate_key_pair(seed(&f));
        assert_eq!(h(pair.pk()), f.encapsulation_key);
        // FIPS 203 dk = dk_PKE || ek || H(ek) || z: the expanded key ends with z.
        let dk = pair.private_key().as_slice();
        assert_eq!(h(&dk[dk.len() - 32..]), f.z);

        let (ct, ss) = mlkem768::encapsulate(pair.public_key(), a32(&f.encapsulation_randomness));
        assert_eq!(h(ct.as_slice()), f.ciphertext);
        assert_eq!(h(&ss), f.shared_secret);
        assert_eq!(
            h(&mlkem768::decapsulate(pair.private_key(), &ciphertext(&f.ciphertext))),
            f.decapsulated_shared_secret
        );
        assert_eq!(f.decapsulated_shared_secret, f.shared_secret);

        let mut modified = unhex(&f.ciphertext);
        modified[0] ^= 0x01;
        assert_eq!(h(&modified), f.modified_ciphertext);
        let rejected = mlkem768::decapsulate(pair.private_key(), &ciphertext(&f.modified_ciphertext));
        assert_eq!(h(&rejected), f.rejection_shared_secret);

        // Another z leaves the key, the encapsulation and the valid decapsulation alone, and
        // changes only the rejection key.
        let mut other = seed(&f);
        other[63] ^= 0x01;
        let other = mlkem768::generate_key_pair(other);
        assert_eq!(h(other.pk()), f.encapsulation_key);
        assert_eq!(h(&mlkem768::decapsulate(other.private_key(), &ciphertext(&f.ciphertext))), f.shared_secret);
        assert_ne!(
            h(&mlkem768::decapsulate(other.private_key(), &ciphertext(&f.modified_ciphertext))),
            f.rejection_shared_secret
        );
    }
}
