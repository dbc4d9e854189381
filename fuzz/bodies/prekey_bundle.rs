//! Prekey bundle decoding and signature verification: never panics; what verifies re-encodes
//! to the same bytes.

use hush_core::PrekeyBundle;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(bundle) = PrekeyBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data);
    }
}
