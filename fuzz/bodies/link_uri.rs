//! Link request URIs (`hush://link/…`, what a device waiting to be linked shows): arbitrary text
//! after the prefix and arbitrary strings. Whatever parses must encode back to a URI that parses
//! to the same request.

use hush_core::link::{LINK_URI_PREFIX, LinkRequest};

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for uri in [text.to_owned(), format!("{LINK_URI_PREFIX}{text}")] {
            if let Ok(request) = LinkRequest::from_uri(&uri) {
                assert_eq!(LinkRequest::from_uri(&request.to_uri()).unwrap(), request);
            }
        }
    }
}
