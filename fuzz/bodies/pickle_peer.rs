//! Storage decoding of peer users and groups: never panics, and whatever loads saves to the same
//! bytes. Byte 0 picks the type.

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
        assert_eq!(*group.to_bytes(), rest);
    }
}
