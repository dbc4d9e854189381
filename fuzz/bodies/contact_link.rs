//! Contact links: arbitrary bytes and arbitrary `hush://contact/…` URLs. Whatever parses must
//! encode back to a link that parses to the same value.

use hush_core::ContactLink;

/// The target's body: one input.
pub fn run(data: &[u8]) {
    if let Ok(link) = ContactLink::from_bytes(data) {
        assert_eq!(ContactLink::from_bytes(&link.to_bytes()).unwrap(), link);
        assert_eq!(ContactLink::from_url(&link.to_url()).unwrap(), link);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ContactLink::from_url(text);
        let _ = ContactLink::from_url(&format!("{}{text}", hush_core::client::CONTACT_LINK_PREFIX));
    }
}
