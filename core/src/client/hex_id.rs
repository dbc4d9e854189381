//! Ids as lowercase hex, the one form they take across language boundaries (the uniffi and
//! wasm-bindgen `HushClient`s): user ids are user keys, conversation ids [`ConversationId`] bytes,
//! message ids client message ids, history cursors [`HistoryCursor`] bytes.

use crate::content::MessageId;
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::store::{ConversationId, HistoryCursor};

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The bytes of a hex string (either case); [`Error::Malformed`] naming `what` if it is not hex.
pub fn from_hex(text: &str, what: &'static str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|_| Error::Malformed { what })
}

/// A user id (hex user key).
pub fn user_from_hex(text: &str) -> Result<SigningPublicKey> {
    SigningPublicKey::from_slice(&from_hex(text, "user id")?, "user id")
}

/// A conversation id (hex [`ConversationId`] bytes).
pub fn conversation_from_hex(text: &str) -> Result<ConversationId> {
    ConversationId::from_bytes(&from_hex(text, "conversation id")?)
}

/// A message id (hex, 16 bytes).
pub fn message_id_from_hex(text: &str) -> Result<MessageId> {
    from_hex(text, "message id")?.try_into().map_err(|_| Error::Malformed { what: "message id" })
}

/// A history cursor (hex [`HistoryCursor`] bytes).
pub fn cursor_from_hex(text: &str) -> Result<HistoryCursor> {
    HistoryCursor::from_bytes(&from_hex(text, "history cursor")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_bad_hex_is_a_typed_error() {
        let key = crate::UserIdentity::generate(&mut rand_core::OsRng).user_key();
        assert_eq!(user_from_hex(&to_hex(key.as_bytes())).unwrap(), key);
        let conversation = ConversationId::Direct(key);
        assert_eq!(conversation_from_hex(&to_hex(&conversation.to_bytes())).unwrap(), conversation);
        assert_eq!(message_id_from_hex(&to_hex(&[7; 16])).unwrap(), [7; 16]);
        assert_eq!(to_hex(&[0xab, 0x01]), "ab01");
        assert_eq!(from_hex("AB01", "x").unwrap(), [0xab, 0x01]);
        assert_eq!(user_from_hex("zz"), Err(Error::Malformed { what: "user id" }));
        assert_eq!(message_id_from_hex("abc"), Err(Error::Malformed { what: "message id" }));
        assert_eq!(message_id_from_hex("ab"), Err(Error::Malformed { what: "message id" }));
        assert!(conversation_from_hex("00").is_err());
        assert!(cursor_from_hex("q").is_err());
    }
}
