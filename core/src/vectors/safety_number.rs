//! `test-vectors/safety_number.json`: safety numbers of two users' Ed25519 user keys (the 60 digits,
//! their display and the QR payload), one case for each order of the fingerprints, generated with the
//! crate's real `SafetyNumber`, then re-checked with sha2 alone.

use super::*;
use crate::safety_number::SafetyNumber;

#[derive(Serialize, Deserialize)]
struct SafetyNumberFile {
    version: u32,
    description: String,
    rng_seed: String,
    iterations: u32,
    cases: Vec<SafetyNumberCase>,
}

#[derive(Serialize, Deserialize)]
struct SafetyNumberCase {
    name: String,
    user_a_secret: String,
    user_a_key: String,
    user_b_secret: String,
    user_b_key: String,
    digits: String,
    display: String,
    qr_payload: String,
}

fn generate_safety_number() -> SafetyNumberFile {
    let seed = seed_for("safety-number");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut cases = Vec::new();
    let (mut a_first, mut b_first) = (false, false);
    while !(a_first && b_first) {
        let (a, b) = (UserIdentity::generate(&mut rng), UserIdentity::generate(&mut rng));
        let sn = SafetyNumber::new(&a.user_key(), &b.user_key());
        assert_eq!(sn, SafetyNumber::new(&b.user_key(), &a.user_key()));
        // SafetyNumber::new(a, a) holds a's fingerprint in its first half.
        let a_is_first = sn.qr_payload()[1..33] == SafetyNumber::new(&a.user_key(), &a.user_key()).qr_payload()[1..33];
        let name = if a_is_first { "user_a_sorts_first" } else { "user_b_sorts_first" };
        let seen = if a_is_first { &mut a_first } else { &mut b_first };
        if std::mem::replace(seen, true) {
            continue;
        }
        cases.push(SafetyNumberCase {
            name: name.to_owned(),
            user_a_secret: h(a.secret_bytes().as_slice()),
            user_a_key: h(a.user_key().as_bytes()),
            user_b_secret: h(b.secret_bytes().as_slice()),
            user_b_key: h(b.user_key().as_bytes()),
            digits: sn.digits().to_owned(),
            display: sn.display(),
            qr_payload: h(&sn.qr_payload()),
        });
    }
    SafetyNumberFile {
        version: FORMAT_VERSION,
        description: "Safety numbers of two users' Ed25519 user keys: 60 digits and the 65-byte QR payload (iterated \
                      SHA-512 fingerprints). The result does not depend on argument order. See README.md."
            .to_owned(),
        rng_seed: h(&seed),
        iterations: crate::limits::SAFETY_NUMBER_ITERATIONS,
        cases,
    }
}

#[test]
fn safety_number_vectors_match() {
    check_or_write("safety_number.json", &generate_safety_number());
}

/// The committed values against the primitive crates, without hush-core's code.
mod independent {
    use sha2::Sha512;

    use super::*;
    use crate::vectors::independent::{committed, ed25519_public};

    fn fingerprint(user_key: &[u8], iterations: u32) -> Vec<u8> {
        let mut hash =
            Sha512::new().chain_update([0x00, 0x01]).chain_update(user_key).chain_update(user_key).finalize();
        for _ in 1..iterations {
            hash = Sha512::new().chain_update(hash).chain_update(user_key).finalize();
        }
        hash.to_vec()
    }

    fn digits(fp: &[u8]) -> String {
        fp.chunks(5)
            .take(6)
            .map(|c| format!("{:05}", c.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)) % 100_000))
            .collect()
    }

    #[test]
    fn safety_number_vectors_verify_independently() {
        let f: SafetyNumberFile = committed("safety_number.json", generate_safety_number);
        assert_eq!((f.version, f.iterations), (1, 5200));
        let mut names: Vec<&str> = f.cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["user_a_sorts_first", "user_b_sorts_first"]);
        for c in &f.cases {
            assert_eq!(ed25519_public(&c.user_a_secret), c.user_a_key);
            assert_eq!(ed25519_public(&c.user_b_secret), c.user_b_key);
            let fa = fingerprint(&unhex(&c.user_a_key), f.iterations);
            let fb = fingerprint(&unhex(&c.user_b_key), f.iterations);
            let a_first = fa[..32] <= fb[..32];
            assert_eq!(c.name, if a_first { "user_a_sorts_first" } else { "user_b_sorts_first" });
            let (lo, hi) = if a_first { (fa, fb) } else { (fb, fa) };
            assert_eq!(c.digits, digits(&lo) + &digits(&hi));
            let groups: Vec<&str> = (0..12).map(|g| &c.digits[g * 5..g * 5 + 5]).collect();
            assert_eq!(c.display, groups.join(" "));
            assert_eq!(c.qr_payload, h(&[&[1u8][..], &lo[..32], &hi[..32]].concat()));
        }
    }
}
