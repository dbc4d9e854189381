//! The plaintext of the store's own encrypted values: small protobuf records, written with prost's
//! derive (no `.proto`: only this module reads them). They may hold message text and attachment
//! keys, so they zeroize on drop and their `Debug` prints only the type's name. New fields get new
//! tags; a change that cannot be expressed that way bumps the value version in a migration.

use prost::Message;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::cipher::Table;
use crate::error::Result;

macro_rules! redacted_debug {
    ($($name:ident),* $(,)?) => {$(
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!("store::", stringify!($name), "([redacted])"))
            }
        }
    )*};
}

/// A contact.
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct ContactRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) user_key: Vec<u8>,
    #[prost(string, tag = "2")]
    pub(crate) display_name: String,
    #[prost(uint32, tag = "3")]
    pub(crate) state: u32,
    #[prost(bool, tag = "4")]
    pub(crate) verified: bool,
    #[prost(string, tag = "5")]
    pub(crate) relay_url: String,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub(crate) delivery_token: Option<Vec<u8>>,
}

/// A conversation's state.
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct ConversationRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub(crate) last_activity_ms: u64,
    #[prost(uint32, tag = "3")]
    pub(crate) unread: u32,
    #[prost(uint32, tag = "4")]
    pub(crate) disappearing_secs: u32,
    #[prost(bool, tag = "5")]
    pub(crate) muted: bool,
    #[prost(bool, tag = "6")]
    pub(crate) request: bool,
}

/// One emoji reaction of one user.
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct ReactionRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) user: Vec<u8>,
    #[prost(string, tag = "2")]
    pub(crate) emoji: String,
}

/// One message of the history.
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct MessageRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) conversation: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) sender: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub(crate) sent_at_ms: u64,
    #[prost(uint64, tag = "5")]
    pub(crate) received_at_ms: u64,
    #[prost(bytes = "vec", tag = "6")]
    pub(crate) body: Vec<u8>,
    #[prost(uint32, tag = "7")]
    pub(crate) status: u32,
    #[prost(bool, tag = "8")]
    pub(crate) edited: bool,
    #[prost(uint64, optional, tag = "9")]
    pub(crate) edited_at_ms: Option<u64>,
    #[prost(bool, tag = "10")]
    pub(crate) deleted: bool,
    #[prost(message, repeated, tag = "11")]
    pub(crate) reactions: Vec<ReactionRecord>,
    #[prost(uint64, optional, tag = "12")]
    pub(crate) expires_at_ms: Option<u64>,
}

/// A frame waiting for the relay.
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct OutboxRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) conversation: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) message_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) frame: Vec<u8>,
    #[prost(uint32, tag = "4")]
    pub(crate) attempts: u32,
    #[prost(uint64, tag = "5")]
    pub(crate) next_attempt_ms: u64,
}

/// A `sent_log` row (§14.12).
#[derive(Clone, PartialEq, Message, Zeroize, ZeroizeOnDrop)]
#[prost(skip_debug)]
pub(crate) struct SentCopyRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) conversation: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) message_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) recipient: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) content: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub(crate) session: Option<Vec<u8>>,
    #[prost(uint32, tag = "6")]
    pub(crate) resends: u32,
    #[prost(uint64, tag = "7")]
    pub(crate) sent_at_ms: u64,
}

redacted_debug!(ContactRecord, ConversationRecord, ReactionRecord, MessageRecord, OutboxRecord, SentCopyRecord);

/// Decodes a record of `table`. The bytes were authenticated, so a failure means a bug or a value
/// written by an incompatible build: [`Error::StoreCorrupt`](crate::Error::StoreCorrupt) either way.
pub(crate) fn decode<M: Message + Default>(table: Table, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|_| table.corrupt())
}
