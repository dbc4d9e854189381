//! Wire decoding of 1:1 session messages: never panics, and whatever decodes re-encodes to the
//! same bytes (the decoder accepts canonical encodings only).

use hush_core::SessionMessage;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(msg) = SessionMessage::from_bytes(data) {
        assert_eq!(msg.to_bytes(), data);
    }
}
