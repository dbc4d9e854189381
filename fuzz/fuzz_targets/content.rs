//! Payload decoding: never panics; what decodes re-encodes to the same bytes.
#![no_main]

use hush_core::Content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = Content::from_bytes(data) {
        let bytes = content.to_bytes().unwrap();
        assert_eq!(*bytes, data);
    }
});
