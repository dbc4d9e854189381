//! Storage decoding of accounts and session records: never panics, and whatever loads saves to
//! the same bytes. Byte 0 picks the type.

use hush_core::{Account, SessionRecord};

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(account) = Account::from_bytes(rest) {
            assert_eq!(*account.to_bytes(), rest);
        }
    } else if let Ok(record) = SessionRecord::from_bytes(rest) {
        assert_eq!(*record.to_bytes(), rest);
    }
}
