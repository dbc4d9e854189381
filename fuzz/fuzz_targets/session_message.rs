//! Wire decoding of 1:1 session messages: never panics, and whatever decodes re-encodes to the
//! same bytes (the decoder accepts canonical encodings only).
#![no_main]

use hush_core::SessionMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SessionMessage::from_bytes(data) {
        assert_eq!(msg.to_bytes(), data);
    }
});
