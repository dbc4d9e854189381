//! Group message decryption and roster-control processing against a fixed three-member group.
//!
//! Byte 0 selects the input: a valid group message or roster control with the rest XORed in at
//! the offset in bytes 1–2, or the rest as is for either decoder. A rejected message or control must
//! leave the group unchanged.

use std::sync::OnceLock;

use hush_core::UserIdentity;
use hush_core::group::{Group, RosterAction};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Fixture {
    reader: Group,
    /// The admin's device (its user key stands in for it).
    sender: hush_core::SigningPublicKey,
    message: Vec<u8>,
    control: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x6209);
        let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
        let keys: Vec<_> = users.iter().map(UserIdentity::user_key).collect();
        let (mut admin, welcome) = Group::create(&mut rng, &users[0], "fuzz", &keys[1..], 1).unwrap();
        let mut reader = Group::join(keys[1], &welcome).unwrap();
        let first = admin.encrypt(&mut rng, b"first", 1).unwrap();
        reader.process_distribution(keys[0], keys[0], &first.distribution.unwrap()).unwrap();
        reader.decrypt(&keys[0], &first.message).unwrap();
        let message = admin.encrypt(&mut rng, b"second", 1).unwrap().message;
        let control = admin.change(&users[0], RosterAction::Rename("renamed".into()), 2).unwrap().control;
        Fixture { reader, sender: keys[0], message, control }
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    let patched = |valid: &[u8]| -> Vec<u8> {
        let mut out = valid.to_vec();
        if let [hi, lo, patch @ ..] = rest {
            let offset = usize::from(u16::from_be_bytes([*hi, *lo])) % out.len().max(1);
            for (byte, x) in out.iter_mut().skip(offset).zip(patch) {
                *byte ^= x;
            }
        }
        out
    };
    let mut group = f.reader.clone();
    match mode % 4 {
        0 => {
            if group.decrypt(&f.sender, &patched(&f.message)).is_err() {
                assert_eq!(group.decrypt(&f.sender, &f.message).unwrap().plaintext, b"second");
            }
        }
        1 => {
            if group.apply_control(&patched(&f.control)).is_err() {
                assert_eq!(group.roster(), f.reader.roster());
            }
        }
        2 => {
            let _ = group.decrypt(&f.sender, rest);
        }
        _ => {
            if group.apply_control(rest).is_err() {
                assert_eq!(group.roster(), f.reader.roster());
            }
        }
    }
}
