//! A group's relay-sequenced log (docs/PROTOCOL.md §11.9) against a fixed three-member group: the
//! entries a relay hands a member, the epoch keys another member sends, a welcome, and the append
//! the relay checks.
//!
//! Byte 0 selects the input: the valid next entry, the valid keys of its epoch or the valid welcome,
//! with the rest XORed in at the offset in bytes 1–2; or the rest as is for an entry, keys, a
//! welcome or an encoded `GroupLogAppend`. An entry or keys that are refused change nothing; a
//! tampered entry never applies.

use std::sync::OnceLock;

use hush_core::group::log::{LogView, verify_append};
use hush_core::group::{GroupId, RosterAction};
use hush_core::wire::relay::{GroupLogAppend, GroupLogRecord};
use hush_core::{SigningPublicKey, UserIdentity};
use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Fixture {
    /// A member at epoch 1 who holds the keys of epoch 2.
    reader: LogView,
    admin: SigningPublicKey,
    member: SigningPublicKey,
    /// The entry that makes epoch 2 (a rename), and its epoch's keys for members.
    entry: Vec<u8>,
    keys: Vec<u8>,
    welcome: Vec<u8>,
    /// The append of the rename, and the append key it was checked with.
    append: GroupLogAppend,
    append_key: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x1096);
        let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
        let keys: Vec<_> = users.iter().map(UserIdentity::user_key).collect();
        let group = GroupId::from_slice(&[0x47; 16]).unwrap();
        let (mut admin, create) = LogView::create(&mut rng, &users[0], group, "fuzz", &keys[1..], 1).unwrap();
        let welcome = admin.accepted(1).unwrap().welcome.unwrap();
        let mut reader = LogView::join(keys[1], &welcome).unwrap();
        let rename = admin.propose(&mut rng, &users[0], RosterAction::Rename("renamed".into()), 2).unwrap();
        let committed = admin.accepted(2).unwrap();
        reader.take_keys(&keys[0], &committed.member_keys).unwrap();
        Fixture {
            reader,
            admin: keys[0],
            member: keys[2],
            entry: rename.entry.clone(),
            keys: committed.member_keys,
            welcome,
            append: rename.to_request(),
            append_key: create.next_append_key.to_vec(),
        }
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
    let mut view = f.reader.clone();
    let unchanged = |view: &LogView| {
        assert_eq!(
            (view.epoch(), view.roster(), view.transcript()),
            (f.reader.epoch(), f.reader.roster(), f.reader.transcript())
        );
    };
    match mode % 7 {
        0 => {
            let entry = patched(&f.entry);
            match view.apply(&[GroupLogRecord { epoch: 2, entry: entry.clone() }]) {
                Ok(applied) if !applied.waiting => {
                    // Only the entry the admin sealed applies: anything else fails to open.
                    assert_eq!(entry, f.entry);
                    assert_eq!(view.roster().name, "renamed");
                }
                _ => unchanged(&view),
            }
        }
        1 => {
            let mut fresh = LogView::join(f.member, &f.welcome).unwrap();
            if fresh.take_keys(&f.admin, &patched(&f.keys)).is_ok() {
                let _ = fresh.apply(&[GroupLogRecord { epoch: 2, entry: f.entry.clone() }]);
            }
        }
        2 => {
            let _ = LogView::join(f.member, &patched(&f.welcome));
        }
        3 => {
            if view.apply(&[GroupLogRecord { epoch: 2, entry: rest.to_vec() }]).is_err() {
                unchanged(&view);
            }
        }
        4 => {
            if view.take_keys(&f.admin, rest).is_err() {
                unchanged(&view);
            }
        }
        5 => {
            let _ = LogView::join(f.member, rest);
        }
        _ => {
            if let Ok(append) = GroupLogAppend::decode(rest)
                && verify_append(&append, &f.append_key).is_ok()
            {
                assert_eq!(append, f.append);
            }
        }
    }
}
