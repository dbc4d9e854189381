//! Storage decoding of peer users and groups: never panics, and whatever loads saves to the same
//! bytes (a version-1 group: to a version-2 one that does). Byte 0 picks the type.

use hush_core::PeerUser;
use hush_core::group::Group;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(peer) = PeerUser::from_bytes(rest) {
            assert_eq!(*peer.to_bytes(), rest);
        }
    } else if let Ok(group) = Group::from_bytes(rest) {
        let saved = group.to_bytes();
        // A version-1 group (encoding `08 01 …`) migrates: it saves as version 2, which then
        // round-trips. Any other group saves to the same bytes.
        if rest.starts_with(&[0x08, 0x01]) {
            let again = Group::from_bytes(&saved).expect("a migrated group loads");
            assert_eq!(*again.to_bytes(), *saved);
        } else {
            assert_eq!(*saved, rest);
        }
    }
}
