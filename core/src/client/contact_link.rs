//! Contact links (docs/PROTOCOL.md §13): `hush://contact/<base64url>`, the same bytes as a QR
//! code. A link names a user on a relay and carries the delivery token that lets
//! its holder send to that user sealed, so the relay does not learn who writes.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message as _;

use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::error::{Error, Result};
use crate::limits::MAX_LINK_TEXT_BYTES;
use crate::wire::{self, client as proto};

/// The URL scheme and path of a contact link.
pub const CONTACT_LINK_PREFIX: &str = "hush://contact/";

/// The largest encoded link accepted (relay URL and name hint included).
pub const MAX_CONTACT_LINK_BYTES: usize = 2048;

const LINK_VERSION: u32 = 1;

/// A parsed contact link. `Debug` shows no byte of the delivery token.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactLink {
    /// The relay the user's mailboxes are on (`ws://` or `wss://` URL).
    pub relay_url: String,
    /// The user's key: their identity.
    pub user_key: SigningPublicKey,
    /// Authorises sealed sends to the user's devices.
    pub delivery_token: DeliveryToken,
    /// The display name the user suggests (may be empty).
    pub name_hint: String,
}

impl ContactLink {
    /// The link's bytes (what a QR code carries).
    pub fn to_bytes(&self) -> Vec<u8> {
        proto::ContactLink {
            version: LINK_VERSION,
            relay_url: self.relay_url.clone(),
            user_key: self.user_key.to_bytes().to_vec(),
            delivery_token: self.delivery_token.to_bytes().to_vec(),
            name_hint: self.name_hint.clone(),
        }
        .encode_to_vec()
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: proto::ContactLink = wire::decode(bytes, MAX_CONTACT_LINK_BYTES, "contact link")?;
        wire::check_version("contact link", p.version, LINK_VERSION)?;
        check_relay_url(&p.relay_url, "contact link text")?;
        check_display_name(&p.name_hint, "contact link text")?;
        Ok(Self {
            relay_url: p.relay_url.clone(),
            user_key: SigningPublicKey::from_slice(&p.user_key, "contact link user key")?,
            delivery_token: DeliveryToken::from_bytes(&p.delivery_token)?,
            name_hint: p.name_hint.clone(),
        })
    }

    /// The `hush://contact/…` URL.
    pub fn to_url(&self) -> String {
        format!("{CONTACT_LINK_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }

    /// Parses a `hush://contact/…` URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let encoded = url.trim().strip_prefix(CONTACT_LINK_PREFIX).ok_or(Error::Malformed { what: "contact link" })?;
        if encoded.len() > MAX_CONTACT_LINK_BYTES * 4 / 3 + 4 {
            return Err(Error::TooLarge { what: "contact link", size: encoded.len(), max: MAX_CONTACT_LINK_BYTES });
        }
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Error::Malformed { what: "contact link" })?;
        Self::from_bytes(&bytes)
    }
}

/// A relay URL a link may carry and a client may be configured with: `ws://` or `wss://`, a
/// non-empty host (letters, digits, `.`, `-`, `_`, an optional `:port`, or a bracketed IPv6
/// address), then an optional path of printable ASCII without spaces; at most
/// [`MAX_LINK_TEXT_BYTES`]. `TooLarge`/`Malformed` name `what`.
pub(crate) fn check_relay_url(url: &str, what: &'static str) -> Result<()> {
    if url.len() > MAX_LINK_TEXT_BYTES {
        return Err(Error::TooLarge { what, size: url.len(), max: MAX_LINK_TEXT_BYTES });
    }
    let rest = url.strip_prefix("wss://").or_else(|| url.strip_prefix("ws://")).ok_or(Error::Malformed { what })?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_ok = !host.is_empty()
        && !host.starts_with(':')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    let path_ok = path.bytes().all(|b| b.is_ascii_graphic());
    if host_ok && path_ok { Ok(()) } else { Err(Error::Malformed { what }) }
}

/// A display name a link may carry and a client may be configured with: at most
/// [`MAX_LINK_TEXT_BYTES`], no control characters (may be empty).
pub(crate) fn check_display_name(name: &str, what: &'static str) -> Result<()> {
    if name.len() > MAX_LINK_TEXT_BYTES {
        return Err(Error::TooLarge { what, size: name.len(), max: MAX_LINK_TEXT_BYTES });
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Malformed { what });
    }
    Ok(())
}

impl fmt::Debug for ContactLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactLink")
            .field("relay_url", &self.relay_url)
            .field("user_key", &self.user_key)
            .field("delivery_token", &"[redacted]")
            .field("name_hint", &self.name_hint)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserIdentity;
    use crate::test_util::rng;

    fn link() -> ContactLink {
        let mut rng = rng(7);
        ContactLink {
            relay_url: "wss://relay.example/v1/ws".into(),
            user_key: UserIdentity::generate(&mut rng).user_key(),
            delivery_token: DeliveryToken::generate(&mut rng),
            name_hint: "Alice".into(),
        }
    }

    #[test]
    fn round_trips_as_bytes_and_url() {
        let l = link();
        assert_eq!(ContactLink::from_bytes(&l.to_bytes()).unwrap(), l);
        let url = l.to_url();
        assert!(url.starts_with(CONTACT_LINK_PREFIX));
        assert_eq!(ContactLink::from_url(&url).unwrap(), l);
    }

    #[test]
    fn relay_urls_and_names_are_checked_the_same_way_for_links_and_clients() {
        for good in ["ws://x", "wss://relay.example/v1/ws", "ws://127.0.0.1:8080/v1/ws", "wss://[::1]:9/v1/ws?a=b"] {
            assert!(check_relay_url(good, "relay URL").is_ok(), "{good}");
        }
        let long = format!("wss://{}", "a".repeat(MAX_LINK_TEXT_BYTES));
        for bad in [
            "",
            "relay.example",
            "https://relay.example/v1/ws",
            "ws://",
            "ws:///v1/ws",
            "ws://:80",
            "ws://a b/c",
            "ws://a/b c",
            "ws://a\n/",
            "ws://ex\u{e4}mple/",
            "ws://user@host/",
        ] {
            assert!(
                matches!(check_relay_url(bad, "relay URL"), Err(Error::Malformed { what: "relay URL" })),
                "{bad:?}"
            );
        }
        assert!(matches!(check_relay_url(&long, "relay URL"), Err(Error::TooLarge { what: "relay URL", .. })));
        assert!(check_display_name("", "display name").is_ok());
        assert!(check_display_name(&"\u{e4}".repeat(MAX_LINK_TEXT_BYTES / 2), "display name").is_ok());
        assert!(matches!(check_display_name("a\u{7}", "display name"), Err(Error::Malformed { .. })));
        let too_long = "n".repeat(MAX_LINK_TEXT_BYTES + 1);
        assert!(matches!(check_display_name(&too_long, "display name"), Err(Error::TooLarge { .. })));
        // The largest link a valid client makes still parses.
        let mut l = link();
        l.relay_url = format!("wss://{}", "r".repeat(MAX_LINK_TEXT_BYTES - 6));
        l.name_hint = "\u{e4}".repeat(MAX_LINK_TEXT_BYTES / 2);
        assert!(l.to_bytes().len() <= MAX_CONTACT_LINK_BYTES);
        assert_eq!(ContactLink::from_url(&l.to_url()).unwrap(), l);
    }

    #[test]
    fn rejects_bad_links() {
        let l = link();
        assert!(ContactLink::from_url("https://example.com").is_err());
        assert!(ContactLink::from_url("hush://contact/!!!").is_err());
        let mut bytes = l.to_bytes();
        bytes.truncate(bytes.len() - 3);
        assert!(ContactLink::from_bytes(&bytes).is_err());
        let mut bad = l.clone();
        bad.name_hint = "a\nb".into();
        assert!(ContactLink::from_bytes(&bad.to_bytes()).is_err());
        assert!(ContactLink::from_url(&format!("{CONTACT_LINK_PREFIX}{}", "A".repeat(10_000))).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let l = link();
        let token = l.delivery_token.to_bytes();
        crate::test_util::assert_no_secret(&format!("{l:?}"), token.as_slice());
    }
}
