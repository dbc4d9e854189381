//! Signed device list decoding and verification: never panics; what verifies re-encodes to the
//! same bytes.

use hush_core::SignedDeviceList;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(list) = SignedDeviceList::from_bytes(data) {
        assert_eq!(list.to_bytes(), data);
    }
}
