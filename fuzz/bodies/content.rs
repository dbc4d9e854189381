//! Payload decoding: never panics; what decodes re-encodes to the same bytes.

use hush_core::Content;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(content) = Content::from_bytes(data) {
        let bytes = content.to_bytes().unwrap();
        assert_eq!(*bytes, data);
    }
}
