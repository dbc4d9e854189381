//! Storage decoding of accounts and session records: never panics, and whatever loads saves to
//! the same bytes (a version-1 session record to the same record as version 2). Byte 0 picks the type.

use hush_core::{Account, SessionRecord};

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(account) = Account::from_bytes(rest) {
            assert_eq!(*account.to_bytes(), rest);
        }
    } else if let Ok(record) = SessionRecord::from_bytes(rest) {
        let saved = record.to_bytes();
        if *saved != rest {
            // A version-1 record (field 1 = 1, first in canonical encoding) saves as version 2
            // (§7A.9), which then loads and saves as itself.
            assert!(rest.starts_with(&[0x08, 0x01]) && saved.starts_with(&[0x08, 0x02]));
            let again = SessionRecord::from_bytes(&saved).map(|r| r.to_bytes());
            assert_eq!(again.as_deref().map(|b| b.as_slice()), Ok(saved.as_slice()));
        }
    }
}
