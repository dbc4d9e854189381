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
use crate::wire::{self, client as proto};

/// The URL scheme and path of a contact link.
pub const CONTACT_LINK_PREFIX: &str = "hush://contact/";

/// The largest encoded link accepted (relay URL and name hint included).
pub const MAX_CONTACT_LINK_BYTES: usize = 2048;

/// The longest relay URL and name hint a link may carry.
const MAX_LINK_TEXT_BYTES: usize = 512;

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
        if p.relay_url.len() > MAX_LINK_TEXT_BYTES || p.name_hint.len() > MAX_LINK_TEXT_BYTES {
            return Err(Error::TooLarge { what: "contact link text", size: bytes.len(), max: MAX_LINK_TEXT_BYTES });
        }
        if p.name_hint.chars().any(char::is_control) || p.relay_url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Malformed { what: "contact link text" });
        }
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
