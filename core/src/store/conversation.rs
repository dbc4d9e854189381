//! Conversations: a 1:1 chat with a peer user or a group chat, and the state the chat list shows.

use rusqlite::params;
use zeroize::Zeroizing;

use super::cipher::Table;
use super::records::{self, ConversationRecord};
use super::tx::StoreTx;
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::group::GroupId;

const DIRECT_TAG: u8 = 1;
const GROUP_TAG: u8 = 2;

/// Which chat: a 1:1 conversation is named by the peer's user key, a group chat by its group id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationId {
    /// The 1:1 conversation with this user.
    Direct(SigningPublicKey),
    /// The group chat.
    Group(GroupId),
}

impl ConversationId {
    /// `1 || user key` or `2 || group id`: the natural key the store hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        match self {
            ConversationId::Direct(user) => {
                out.push(DIRECT_TAG);
                out.extend_from_slice(user.as_bytes());
            }
            ConversationId::Group(group) => {
                out.push(GROUP_TAG);
                out.extend_from_slice(&group.to_bytes());
            }
        }
        out
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&DIRECT_TAG, key)) => {
                Ok(ConversationId::Direct(SigningPublicKey::from_slice(key, "conversation id")?))
            }
            Some((&GROUP_TAG, id)) => Ok(ConversationId::Group(GroupId::from_slice(id)?)),
            _ => Err(Error::Malformed { what: "conversation id" }),
        }
    }
}

/// A conversation's state, as the chat list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Which chat.
    pub id: ConversationId,
    /// When something last happened in it (ms), for ordering the chat list.
    pub last_activity_ms: u64,
    /// Messages not yet read.
    pub unread: u32,
    /// Disappearing-message timer in seconds; 0 = off.
    pub disappearing_secs: u32,
    /// Notifications muted.
    pub muted: bool,
    /// A group this user was added to by someone who is not an accepted contact, not yet accepted
    /// ([`Client::accept_group`](crate::Client::accept_group)) or declined.
    pub request: bool,
}

impl Conversation {
    /// A new, empty conversation.
    pub fn new(id: ConversationId) -> Self {
        Self { id, last_activity_ms: 0, unread: 0, disappearing_secs: 0, muted: false, request: false }
    }

    fn from_record(r: &ConversationRecord) -> Result<Self> {
        Ok(Self {
            id: ConversationId::from_bytes(&r.id).map_err(|_| Table::Conversations.corrupt())?,
            last_activity_ms: r.last_activity_ms,
            unread: r.unread,
            disappearing_secs: r.disappearing_secs,
            muted: r.muted,
            request: r.request,
        })
    }
}

impl StoreTx<'_> {
    /// The conversation's state, if stored.
    pub fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>> {
        let lookup = self.cipher.lookup(Table::Conversations, &id.to_bytes())?;
        let Some(value) = self.get_value(Table::Conversations, &lookup)? else { return Ok(None) };
        let conversation = Conversation::from_record(&records::decode(Table::Conversations, &value)?)?;
        if conversation.id != *id {
            return Err(Table::Conversations.corrupt());
        }
        Ok(Some(conversation))
    }

    /// Stores a conversation's state, replacing any earlier one.
    pub fn put_conversation(&self, conversation: &Conversation) -> Result<()> {
        let id = conversation.id.to_bytes();
        let lookup = self.cipher.lookup(Table::Conversations, &id)?;
        let record = ConversationRecord {
            id,
            last_activity_ms: conversation.last_activity_ms,
            unread: conversation.unread,
            disappearing_secs: conversation.disappearing_secs,
            muted: conversation.muted,
            request: conversation.request,
        };
        self.put_value(Table::Conversations, &lookup, &Zeroizing::new(prost::Message::encode_to_vec(&record)))
    }

    /// Every conversation, most recently active first. Sorted after decryption: the order of chats
    /// is not written in the clear.
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        let mut all = self
            .all_values(Table::Conversations)?
            .iter()
            .map(|v| Conversation::from_record(&records::decode(Table::Conversations, v)?))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| {
            b.last_activity_ms.cmp(&a.last_activity_ms).then_with(|| a.id.to_bytes().cmp(&b.id.to_bytes()))
        });
        Ok(all)
    }

    /// Deletes a conversation with its whole history and search tokens; whether it was stored.
    pub fn delete_conversation(&self, id: &ConversationId) -> Result<bool> {
        let conversation = self.message_conversation_lookup(id)?;
        self.tx
            .prepare_cached("DELETE FROM messages WHERE conversation = ?1")?
            .execute(params![conversation.as_slice()])?;
        let lookup = self.cipher.lookup(Table::Conversations, &id.to_bytes())?;
        self.delete_value(Table::Conversations, &lookup)
    }
}
