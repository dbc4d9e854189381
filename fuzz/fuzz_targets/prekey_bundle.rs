//! Prekey bundle decoding and signature verification: never panics; what verifies re-encodes
//! to the same bytes.
#![no_main]

use hush_core::PrekeyBundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = PrekeyBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data);
    }
});
