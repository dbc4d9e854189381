//! Signed device list decoding and verification: never panics; what verifies re-encodes to the
//! same bytes.
#![no_main]

use hush_core::SignedDeviceList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = SignedDeviceList::from_bytes(data) {
        assert_eq!(list.to_bytes(), data);
    }
});
