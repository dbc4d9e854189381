//! Message history (docs/PROTOCOL.md §14): one encrypted row per message,
//! found by a blind lookup of (conversation, client message id), paginated newest first by the
//! sender's timestamp, with edits, deletes, reactions and receipts applied in place.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use zeroize::{Zeroize, Zeroizing};

use super::cipher::Table;
use super::conversation::ConversationId;
use super::records::{self, MessageRecord, ReactionRecord};
use super::tx::{StoreTx, blob, integer, lookup32, sql_time};
use crate::content::{Content, ContentBody, MessageId, ReceiptKind, SecretBytes};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::limits::{MAX_EMOJI_BYTES, MAX_HISTORY_PAGE, MAX_REACTIONS_PER_USER};

/// Domain bytes of the two HMACs of the messages table.
const CONVERSATION_DOMAIN: u8 = 1;
const MESSAGE_DOMAIN: u8 = 2;

/// Where a message stands. Outgoing messages move Sending → Sent → Delivered → Read (or Failed);
/// incoming ones are Received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    /// Queued in the outbox, not yet acknowledged by the relay.
    Sending,
    /// The relay acknowledged it.
    Sent,
    /// A recipient's device acknowledged it.
    Delivered,
    /// A recipient read it.
    Read,
    /// Sending gave up.
    Failed,
    /// An incoming message.
    Received,
}

impl MessageStatus {
    fn to_u32(self) -> u32 {
        match self {
            MessageStatus::Sending => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
            MessageStatus::Failed => 5,
            MessageStatus::Received => 6,
        }
    }

    fn from_u32(n: u32) -> Result<Self> {
        Ok(match n {
            1 => MessageStatus::Sending,
            2 => MessageStatus::Sent,
            3 => MessageStatus::Delivered,
            4 => MessageStatus::Read,
            5 => MessageStatus::Failed,
            6 => MessageStatus::Received,
            _ => return Err(Table::Messages.corrupt()),
        })
    }

    /// The status after a receipt, or `None` if the receipt changes nothing: receipts only move an
    /// outgoing message forward, never back, and never touch an incoming one.
    fn after_receipt(self, kind: ReceiptKind) -> Option<Self> {
        let target = match kind {
            ReceiptKind::Delivered => MessageStatus::Delivered,
            ReceiptKind::Read => MessageStatus::Read,
        };
        let rank = |s: MessageStatus| match s {
            MessageStatus::Sending | MessageStatus::Failed => Some(0),
            MessageStatus::Sent => Some(1),
            MessageStatus::Delivered => Some(2),
            MessageStatus::Read => Some(3),
            MessageStatus::Received => None,
        };
        match (rank(self), rank(target)) {
            (Some(now), Some(then)) if then > now => Some(target),
            _ => None,
        }
    }
}

/// One message of the history. `Debug` shows the body's length only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// The sender's client message id (unique within the conversation: inserts dedupe on it).
    pub id: MessageId,
    /// The sender's user key.
    pub sender: SigningPublicKey,
    /// The sender's timestamp (ms): the history's order.
    pub sent_at_ms: u64,
    /// When this device received (or created) it (ms).
    pub received_at_ms: u64,
    /// The encoded [`Content`] (text, attachment pointer, …); empty once deleted.
    pub body: SecretBytes,
    /// Sending, delivered, read, received…
    pub status: MessageStatus,
    /// Whether the text was edited.
    pub edited: bool,
    /// When the latest edit applied was made (the edit's own timestamp, ms).
    pub edited_at_ms: Option<u64>,
    /// Whether it was deleted for everyone (a tombstone: the body is gone).
    pub deleted: bool,
    /// Reactions: (user key, emoji), in arrival order.
    pub reactions: Vec<(SigningPublicKey, String)>,
    /// When it disappears (ms), if the conversation has a timer.
    pub expires_at_ms: Option<u64>,
}

impl StoredMessage {
    /// A message for the history from its payload: id, timestamp and body come from `content`.
    pub fn from_content(
        conversation: ConversationId,
        sender: SigningPublicKey,
        content: &Content,
        received_at_ms: u64,
        status: MessageStatus,
    ) -> Result<Self> {
        Ok(Self {
            conversation,
            id: content.client_message_id,
            sender,
            sent_at_ms: content.timestamp_ms,
            received_at_ms,
            body: SecretBytes::new(content.to_bytes()?.to_vec()),
            status,
            edited: false,
            edited_at_ms: None,
            deleted: false,
            reactions: Vec::new(),
            expires_at_ms: None,
        })
    }

    /// The decoded payload, or `None` for a deleted message.
    pub fn content(&self) -> Result<Option<Content>> {
        if self.body.as_bytes().is_empty() { Ok(None) } else { Content::from_bytes(self.body.as_bytes()).map(Some) }
    }

    fn to_record(&self) -> MessageRecord {
        MessageRecord {
            conversation: self.conversation.to_bytes(),
            id: self.id.to_vec(),
            sender: self.sender.to_bytes().to_vec(),
            sent_at_ms: self.sent_at_ms,
            received_at_ms: self.received_at_ms,
            body: self.body.as_bytes().to_vec(),
            status: self.status.to_u32(),
            edited: self.edited,
            edited_at_ms: self.edited_at_ms,
            deleted: self.deleted,
            reactions: self
                .reactions
                .iter()
                .map(|(user, emoji)| ReactionRecord { user: user.to_bytes().to_vec(), emoji: emoji.clone() })
                .collect(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    fn from_record(r: &MessageRecord) -> Result<Self> {
        let corrupt = |_| Table::Messages.corrupt();
        let user = |bytes: &[u8]| SigningPublicKey::from_slice(bytes, "user key").map_err(corrupt);
        Ok(Self {
            conversation: ConversationId::from_bytes(&r.conversation).map_err(corrupt)?,
            id: r.id.as_slice().try_into().map_err(|_| Table::Messages.corrupt())?,
            sender: user(&r.sender)?,
            sent_at_ms: r.sent_at_ms,
            received_at_ms: r.received_at_ms,
            body: SecretBytes::new(r.body.clone()),
            status: MessageStatus::from_u32(r.status)?,
            edited: r.edited,
            edited_at_ms: r.edited_at_ms,
            deleted: r.deleted,
            reactions: r.reactions.iter().map(|x| Ok((user(&x.user)?, x.emoji.clone()))).collect::<Result<_>>()?,
            expires_at_ms: r.expires_at_ms,
        })
    }
}

/// Where the next (older) page of a conversation's history starts. Opaque; `to_bytes` and
/// `from_bytes` carry it across an FFI boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryCursor {
    sent_at: i64,
    row: i64,
}

impl HistoryCursor {
    /// 16 bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.sent_at.to_be_bytes());
        b.copy_from_slice(&self.row.to_be_bytes());
        out
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let malformed = || Error::Malformed { what: "history cursor" };
        let bytes: &[u8; 16] = bytes.try_into().map_err(|_| malformed())?;
        let (a, b) = bytes.split_at(8);
        Ok(Self {
            sent_at: i64::from_be_bytes(a.try_into().map_err(|_| malformed())?),
            row: i64::from_be_bytes(b.try_into().map_err(|_| malformed())?),
        })
    }
}

/// A loaded message row.
struct MessageRow {
    row: i64,
    lookup: [u8; 32],
    record: MessageRecord,
}

impl StoreTx<'_> {
    /// `HMAC(1 || conversation)`: the `conversation` column.
    pub(crate) fn message_conversation_lookup(&self, conversation: &ConversationId) -> Result<[u8; 32]> {
        let mut key = vec![CONVERSATION_DOMAIN];
        key.extend_from_slice(&conversation.to_bytes());
        self.cipher.lookup(Table::Messages, &key)
    }

    /// `HMAC(2 || conversation || message id)`: the `lookup` column.
    fn message_lookup(&self, conversation: &ConversationId, id: &MessageId) -> Result<[u8; 32]> {
        let mut key = vec![MESSAGE_DOMAIN];
        key.extend_from_slice(&conversation.to_bytes());
        key.extend_from_slice(id);
        self.cipher.lookup(Table::Messages, &key)
    }

    /// Adds a message to its conversation's history and its words to the search index: `false`
    /// (and nothing written) if a message with this id is already there, deleted or not.
    /// The body must be empty or an encoded [`Content`].
    pub fn insert_message(&self, message: &StoredMessage) -> Result<bool> {
        let content = message.content()?;
        let lookup = self.message_lookup(&message.conversation, &message.id)?;
        let conversation = self.message_conversation_lookup(&message.conversation)?;
        let record = message.to_record();
        let sealed =
            self.cipher.seal(Table::Messages, &lookup, &Zeroizing::new(prost::Message::encode_to_vec(&record)))?;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO messages (lookup, conversation, sent_at, expires_at, value) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (lookup) DO NOTHING",
            )?
            .execute(params![
                lookup.as_slice(),
                conversation.as_slice(),
                sql_time(message.sent_at_ms),
                message.expires_at_ms.map(sql_time),
                sealed
            ])?;
        if inserted == 0 {
            return Ok(false);
        }
        if let Some(content) = content {
            self.index_message(self.tx.last_insert_rowid(), &content)?;
        }
        Ok(true)
    }

    /// The message with this id in this conversation.
    pub fn message(&self, conversation: &ConversationId, id: &MessageId) -> Result<Option<StoredMessage>> {
        self.load_message(conversation, id)?.map(|m| StoredMessage::from_record(&m.record)).transpose()
    }

    fn load_message(&self, conversation: &ConversationId, id: &MessageId) -> Result<Option<MessageRow>> {
        let lookup = self.message_lookup(conversation, id)?;
        let found = self
            .tx
            .prepare_cached("SELECT id, sent_at, value FROM messages WHERE lookup = ?1")?
            .query_row([lookup.as_slice()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Value>(1)?, row.get::<_, Value>(2)?))
            })
            .optional()?;
        let Some((row, sent_at, value)) = found else { return Ok(None) };
        let (Value::Integer(sent_at), Value::Blob(value)) = (sent_at, value) else {
            return Err(Table::Messages.corrupt());
        };
        let record = self.open_message(&lookup, sent_at, &value, conversation)?;
        if record.id.as_slice() != id.as_slice() {
            return Err(Table::Messages.corrupt());
        }
        Ok(Some(MessageRow { row, lookup, record }))
    }

    /// Decrypts a message value and checks it against the row's plain columns.
    fn open_message(
        &self,
        lookup: &[u8; 32],
        sent_at: i64,
        value: &[u8],
        conversation: &ConversationId,
    ) -> Result<MessageRecord> {
        let plaintext = self.cipher.open(Table::Messages, lookup, value)?;
        let record: MessageRecord = records::decode(Table::Messages, &plaintext)?;
        // The plain columns are outside the AD: a row moved to another conversation, or re-dated,
        // is caught here.
        if record.conversation != conversation.to_bytes() || sql_time(record.sent_at_ms) != sent_at {
            return Err(Table::Messages.corrupt());
        }
        Ok(record)
    }

    /// Writes a changed record back to its row.
    fn store_message(&self, m: &MessageRow) -> Result<()> {
        let sealed =
            self.cipher.seal(Table::Messages, &m.lookup, &Zeroizing::new(prost::Message::encode_to_vec(&m.record)))?;
        self.tx.prepare_cached("UPDATE messages SET value = ?1, expires_at = ?2 WHERE id = ?3")?.execute(params![
            sealed,
            m.record.expires_at_ms.map(sql_time),
            m.row
        ])?;
        Ok(())
    }

    /// Replaces a text message's text, as an `Edit` payload made at `edited_at_ms` asks. Edits may
    /// arrive out of order: one older than the edit already applied is ignored. `false` if nothing
    /// changed (no such message, deleted, not text, or a stale edit). Check that the editor is the
    /// sender before calling.
    pub fn apply_edit(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
        new_text: &str,
        edited_at_ms: u64,
    ) -> Result<bool> {
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        if m.record.deleted || m.record.edited_at_ms.is_some_and(|at| at >= edited_at_ms) {
            return Ok(false);
        }
        let mut content = Content::from_bytes(&m.record.body).map_err(|_| Table::Messages.corrupt())?;
        let ContentBody::Text(text) = &mut content.body else { return Ok(false) };
        *text = new_text.to_owned();
        let body = content.to_bytes()?;
        m.record.body.zeroize();
        m.record.body.extend_from_slice(&body);
        m.record.edited = true;
        m.record.edited_at_ms = Some(edited_at_ms);
        self.store_message(&m)?;
        self.unindex_message(m.row)?;
        self.index_message(m.row, &content)?;
        Ok(true)
    }

    /// Deletes a message for everyone: the row stays as a tombstone (so a late copy is still
    /// deduplicated) but its body, reactions and search tokens are wiped. `false` if there is no
    /// such message or it was already deleted. Check that the deleter is the sender before calling.
    pub fn apply_delete(&self, conversation: &ConversationId, id: &MessageId) -> Result<bool> {
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        if m.record.deleted {
            return Ok(false);
        }
        m.record.deleted = true;
        m.record.body.zeroize();
        m.record.reactions.clear();
        self.store_message(&m)?;
        self.unindex_message(m.row)?;
        Ok(true)
    }

    /// Adds `user`'s `emoji` to a message, or withdraws it (`remove`). `false` if nothing changed.
    /// A user may have at most [`MAX_REACTIONS_PER_USER`] emoji on one message.
    pub fn apply_reaction(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
        user: &SigningPublicKey,
        emoji: &str,
        remove: bool,
    ) -> Result<bool> {
        if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES {
            return Err(Error::Malformed { what: "reaction emoji" });
        }
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        if m.record.deleted {
            return Ok(false);
        }
        let user_bytes = user.as_bytes().as_slice();
        let position = m.record.reactions.iter().position(|r| r.user == user_bytes && r.emoji == emoji);
        match (position, remove) {
            (Some(i), true) => {
                m.record.reactions.remove(i);
            }
            (None, false) => {
                let mine = m.record.reactions.iter().filter(|r| r.user == user_bytes).count();
                if mine >= MAX_REACTIONS_PER_USER {
                    return Err(Error::TooLarge {
                        what: "reactions of one user",
                        size: mine + 1,
                        max: MAX_REACTIONS_PER_USER,
                    });
                }
                m.record.reactions.push(ReactionRecord { user: user_bytes.to_vec(), emoji: emoji.to_owned() });
            }
            _ => return Ok(false),
        }
        self.store_message(&m)?;
        Ok(true)
    }

    /// Applies a delivery or read receipt to an outgoing message: the status only moves forward.
    /// `false` if nothing changed.
    pub fn apply_receipt(&self, conversation: &ConversationId, id: &MessageId, kind: ReceiptKind) -> Result<bool> {
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        let Some(next) = MessageStatus::from_u32(m.record.status)?.after_receipt(kind) else { return Ok(false) };
        m.record.status = next.to_u32();
        self.store_message(&m)?;
        Ok(true)
    }

    /// Sets a message's status (the relay acknowledged it, sending failed, …). `false` if there is
    /// no such message or it already had that status.
    pub fn set_message_status(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
        status: MessageStatus,
    ) -> Result<bool> {
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        if m.record.status == status.to_u32() {
            return Ok(false);
        }
        m.record.status = status.to_u32();
        self.store_message(&m)?;
        Ok(true)
    }

    /// Sets when a message disappears (ms), or that it does not (`None`). `false` if there is no
    /// such message.
    pub fn set_message_expiry(
        &self,
        conversation: &ConversationId,
        id: &MessageId,
        expires_at_ms: Option<u64>,
    ) -> Result<bool> {
        let Some(mut m) = self.load_message(conversation, id)? else { return Ok(false) };
        m.record.expires_at_ms = expires_at_ms;
        self.store_message(&m)?;
        Ok(true)
    }

    /// One page of a conversation's history, newest first: up to `limit` (at most
    /// [`MAX_HISTORY_PAGE`]) messages older than `before` (or the newest when `None`), and the
    /// cursor of the next page if there are older messages. A row that fails to decrypt fails the
    /// page with [`Error::StoreCorrupt`]; [`message`](Self::message) still reads the others.
    pub fn history(
        &self,
        conversation: &ConversationId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, Option<HistoryCursor>)> {
        let limit = limit.min(MAX_HISTORY_PAGE);
        if limit == 0 {
            return Ok((Vec::new(), before));
        }
        let before = before.unwrap_or(HistoryCursor { sent_at: i64::MAX, row: i64::MAX });
        let conversation_lookup = self.message_conversation_lookup(conversation)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, lookup, sent_at, value FROM messages
             WHERE conversation = ?1 AND (sent_at, id) < (?2, ?3)
             ORDER BY sent_at DESC, id DESC LIMIT ?4",
        )?;
        // One row more than asked for tells whether an older page exists.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let mut rows = stmt.query(params![conversation_lookup.as_slice(), before.sent_at, before.row, fetch])?;
        let mut page = Vec::with_capacity(limit);
        let mut last = None;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if page.len() == limit {
                more = true;
                break;
            }
            let table = Table::Messages;
            let (id, lookup, sent_at) = (integer(row, 0, table)?, lookup32(row, 1, table)?, integer(row, 2, table)?);
            let record = self.open_message(&lookup, sent_at, &blob(row, 3, table)?, conversation)?;
            page.push(StoredMessage::from_record(&record)?);
            last = Some(HistoryCursor { sent_at, row: id });
        }
        Ok((page, if more { last } else { None }))
    }

    /// Deletes every message whose expiry time is at or before `now_ms`, with its search tokens;
    /// how many.
    pub fn expire_messages(&self, now_ms: u64) -> Result<usize> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1")?
            .execute([sql_time(now_ms)])?)
    }

    /// The earliest expiry time of any message, for the client's next timer.
    pub fn next_expiry(&self) -> Result<Option<u64>> {
        let next: Option<i64> =
            self.tx.prepare_cached("SELECT min(expires_at) FROM messages")?.query_row([], |r| r.get(0))?;
        Ok(next.map(|n| u64::try_from(n).unwrap_or(0)))
    }
}
