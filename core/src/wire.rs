//! Protobuf wire formats (core/proto/wire.proto) and the one decoder every parser goes through:
//! size limit first, then decode, then a canonical-encoding check so no message has two encodings.

use prost::Message;

use crate::crypto::{DeviceKeys, PublicKey, SigningPublicKey};
use crate::error::{Error, Result};

/// Gives generated message types that carry key material a `Debug` that prints only
/// `package::Type([redacted])` (build.rs turns prost's off for them: see `SECRET_TYPES`).
macro_rules! redacted_debug {
    ($package:literal: $($name:ident),* $(,)?) => {$(
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!($package, "::", stringify!($name), "([redacted])"))
            }
        }
    )*};
}
pub(crate) use redacted_debug;

/// Types generated from `core/proto/*.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/hush.wire.rs"));
}

/// The client ↔ relay protocol from `core/proto/relay.proto`, shared by the relay and the client.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod relay {
    include!(concat!(env!("OUT_DIR"), "/hush.relay.rs"));
}

/// Client state machine formats from `core/proto/client.proto` (contact links, outbox entries).
/// They carry delivery tokens and plaintext payloads, so they zeroize on drop and redact `Debug`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/hush.client.rs"));

    super::redacted_debug!("client": ContactLink, OutboxEntry, PendingContent, LinkedState, LinkedContact);
}

/// Group formats from `core/proto/group.proto` (see `group/`). A sender-key distribution carries a
/// chain key, so it zeroizes on drop and its `Debug` is redacted.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod group {
    include!(concat!(env!("OUT_DIR"), "/hush.group.rs"));

    super::redacted_debug!("group": SenderKeyDistribution, GroupEpochKeys);
}

/// Storage formats from `core/proto/storage.proto` (see `crate::pickle`). They hold secrets, so they
/// zeroize on drop and their `Debug` prints nothing but the type's name.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod storage {
    include!(concat!(env!("OUT_DIR"), "/hush.storage.rs"));

    super::redacted_debug!(
        "storage":
        DeviceKeys,
        SignedPrekeySecret,
        OneTimePrekeySecret,
        KemPrekeySecret,
        Account,
        SeenBaseKey,
        ChainKey,
        SkippedKey,
        ReceivingChain,
        RatchetState,
        PendingPrekey,
        Session,
        SessionRecord,
        PeerDeviceSessions,
        PeerUser,
        OutboundSenderChain,
        InboundSenderChain,
        Group,
    );
}

/// Decodes `bytes` as `M`, enforcing `max` and canonical encoding (re-encoding gives the input).
pub(crate) fn decode<M: Message + Default>(bytes: &[u8], max: usize, what: &'static str) -> Result<M> {
    if bytes.len() > max {
        return Err(Error::TooLarge { what, size: bytes.len(), max });
    }
    let msg = M::decode(bytes).map_err(|_| Error::Malformed { what })?;
    // The re-encoding is a copy of `bytes`, which may hold secrets (storage formats): wipe it.
    if msg.encoded_len() != bytes.len() || *zeroize::Zeroizing::new(msg.encode_to_vec()) != bytes {
        return Err(Error::Malformed { what });
    }
    Ok(msg)
}

/// `decode` for other crates (the relay decodes client frames with the same rules): `max` first,
/// then decoding, then the canonical-encoding check. Errors: [`Error::TooLarge`], [`Error::Malformed`].
pub fn decode_canonical<M: Message + Default>(bytes: &[u8], max: usize, what: &'static str) -> Result<M> {
    decode(bytes, max, what)
}

/// Rejects any format version but `expected`.
pub(crate) fn check_version(what: &'static str, version: u32, expected: u32) -> Result<()> {
    if version == expected { Ok(()) } else { Err(Error::UnsupportedVersion { what, version }) }
}

/// A required sub-message, or [`Error::Malformed`].
pub(crate) fn required<'a, T>(field: &'a Option<T>, what: &'static str) -> Result<&'a T> {
    field.as_ref().ok_or(Error::Malformed { what })
}

/// The wire encoding of a device's public keys. It lives here, not in `crypto/`, so the crypto
/// modules depend on nothing above them.
impl DeviceKeys {
    /// Encodes for the wire (prekey uploads, device lists).
    pub fn to_proto(self) -> proto::DeviceKeys {
        proto::DeviceKeys {
            device_key: self.device_key.to_bytes().to_vec(),
            identity_key: self.identity_key.0.to_vec(),
            identity_signature: self.signature.0.to_vec(),
        }
    }

    /// Decodes and verifies the device key's signature over the identity key.
    pub fn from_proto(p: &proto::DeviceKeys) -> Result<Self> {
        Self::new(
            SigningPublicKey::from_slice(&p.device_key, "device key")?,
            PublicKey::from_slice(&p.identity_key, "identity key")?,
            &p.identity_signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_canonical_and_oversize() {
        let msg = proto::OneTimePrekey { id: 5, public_key: vec![1, 2, 3] };
        let bytes = msg.encode_to_vec();
        assert_eq!(decode::<proto::OneTimePrekey>(&bytes, 100, "x").unwrap(), msg);
        // Same message with the id as a padded (non-minimal) varint.
        let mut padded = vec![0x08, 0x85, 0x00];
        padded.extend_from_slice(&bytes[2..]);
        assert_eq!(decode::<proto::OneTimePrekey>(&padded, 100, "x"), Err(Error::Malformed { what: "x" }));
        // Unknown fields are dropped by prost, so they break canonicality too.
        let mut extra = bytes.clone();
        extra.extend_from_slice(&[0x78, 0x01]);
        assert!(decode::<proto::OneTimePrekey>(&extra, 100, "x").is_err());
        assert!(matches!(decode::<proto::OneTimePrekey>(&bytes, 2, "x"), Err(Error::TooLarge { .. })));
    }
}
