//! Messages in a conversation, 1:1 or group (docs/PROTOCOL.md §13, §16): texts and attachments,
//! edits, deletes, reactions, receipts, typing and the disappearing timer, and the history they
//! make.

use std::collections::HashMap;

use super::Client;
use super::outbox;
use crate::content::{AttachmentPointer, ContentBody, MessageId, ReceiptKind};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::store::{ContactState, Conversation, ConversationId, HistoryCursor, MessageStatus, StoredMessage};

impl Client {
    /// Every conversation, most recently active first.
    pub fn conversations(&mut self) -> Result<Vec<Conversation>> {
        let tx = self.store.transaction()?;
        let mut all = tx.conversations()?;
        tx.commit()?;
        all.sort_by_key(|c| core::cmp::Reverse(c.last_activity_ms));
        Ok(all)
    }

    /// One page of history, newest first (see [`StoreTx::history`](crate::StoreTx::history)).
    pub fn history(
        &mut self,
        conversation: &ConversationId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, Option<HistoryCursor>)> {
        let tx = self.store.transaction()?;
        let page = tx.history(conversation, before, limit)?;
        tx.commit()?;
        Ok(page)
    }

    /// One message.
    pub fn message(&mut self, conversation: &ConversationId, id: &MessageId) -> Result<Option<StoredMessage>> {
        let tx = self.store.transaction()?;
        let m = tx.message(conversation, id)?;
        tx.commit()?;
        Ok(m)
    }

    /// Local search through the blind index: messages containing every word of `query`.
    pub fn search(&mut self, query: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        let tx = self.store.transaction()?;
        let mut out = Vec::new();
        for (conversation, id) in tx.search(query, limit)? {
            if let Some(m) = tx.message(&conversation, &id)? {
                out.push(m);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Sends a text message; returns its id. It is in history (status Sending) once this returns.
    pub fn send_text(&mut self, conversation: &ConversationId, text: &str, now_ms: u64) -> Result<MessageId> {
        self.send_body(conversation, ContentBody::Text(text.to_owned()), now_ms)
    }

    /// Sends an attachment already uploaded and encrypted (see [`attachment`](crate::attachment)).
    pub fn send_attachment(
        &mut self,
        conversation: &ConversationId,
        pointer: AttachmentPointer,
        now_ms: u64,
    ) -> Result<MessageId> {
        self.send_body(conversation, ContentBody::Attachment(pointer), now_ms)
    }

    /// Edits one of this user's text messages.
    pub fn edit(&mut self, conversation: &ConversationId, target: &MessageId, text: &str, now_ms: u64) -> Result<()> {
        self.check_own_message(conversation, target)?;
        let body = ContentBody::Edit { target: *target, text: text.to_owned() };
        let content = self.content(body, now_ms)?;
        let tx = self.store.transaction()?;
        tx.apply_edit(conversation, target, text, now_ms)?;
        tx.commit()?;
        self.queue(conversation, content, now_ms)
    }

    /// Deletes one of this user's messages for everyone.
    pub fn delete(&mut self, conversation: &ConversationId, target: &MessageId, now_ms: u64) -> Result<()> {
        self.check_own_message(conversation, target)?;
        let content = self.content(ContentBody::Delete { target: *target }, now_ms)?;
        let tx = self.store.transaction()?;
        tx.apply_delete(conversation, target)?;
        tx.commit()?;
        self.queue(conversation, content, now_ms)
    }

    /// Adds (or withdraws, `remove`) an emoji reaction to a message.
    pub fn react(
        &mut self,
        conversation: &ConversationId,
        target: &MessageId,
        emoji: &str,
        remove: bool,
        now_ms: u64,
    ) -> Result<()> {
        let body = ContentBody::Reaction { target: *target, emoji: emoji.to_owned(), remove };
        let content = self.content(body, now_ms)?;
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        if tx.message(conversation, target)?.is_none() {
            return Err(Error::Malformed { what: "reaction target" });
        }
        tx.apply_reaction(conversation, target, &me, emoji, remove)?;
        tx.commit()?;
        self.queue(conversation, content, now_ms)
    }

    /// Marks a conversation read and sends read receipts for its unread incoming messages (to
    /// accepted contacts only: a message request stays unacknowledged).
    pub fn mark_read(&mut self, conversation: &ConversationId, now_ms: u64) -> Result<()> {
        self.user()?;
        let tx = self.store.transaction()?;
        let Some(mut conv) = tx.conversation(conversation)? else { return Ok(()) };
        let unread = conv.unread as usize;
        conv.unread = 0;
        tx.put_conversation(&conv)?;
        let (page, _) = tx.history(conversation, None, unread.clamp(1, crate::limits::MAX_RECEIPT_TARGETS))?;
        let mut by_sender: HashMap<SigningPublicKey, Vec<MessageId>> = HashMap::new();
        if unread > 0 {
            for m in page.iter().filter(|m| m.status == MessageStatus::Received && !m.deleted) {
                let accepted = tx.contact(&m.sender)?.is_some_and(|c| c.state == ContactState::Accepted);
                if accepted || matches!(conversation, ConversationId::Group(_)) {
                    by_sender.entry(m.sender).or_default().push(m.id);
                }
            }
        }
        tx.commit()?;
        for (sender, targets) in by_sender {
            let content = self.content(ContentBody::Receipt { kind: ReceiptKind::Read, targets }, now_ms)?;
            self.queue_to(conversation, vec![sender], content, now_ms)?;
        }
        Ok(())
    }

    /// Tells the conversation this user started or stopped typing (online only: never queued).
    pub fn set_typing(&mut self, conversation: &ConversationId, started: bool, now_ms: u64) -> Result<()> {
        let content = self.content(ContentBody::Typing { started }, now_ms)?;
        self.send_online_only(conversation, &content)
    }

    /// Sets a conversation's disappearing-message timer (0 = off) for everyone in it.
    pub fn set_disappearing(&mut self, conversation: &ConversationId, seconds: u32, now_ms: u64) -> Result<()> {
        self.user()?;
        let tx = self.store.transaction()?;
        let mut conv = tx.conversation(conversation)?.unwrap_or_else(|| Conversation::new(*conversation));
        conv.disappearing_secs = seconds;
        tx.put_conversation(&conv)?;
        tx.commit()?;
        let content = self.content(ContentBody::DisappearingTimer { seconds }, now_ms)?;
        self.queue(conversation, content, now_ms)
    }

    fn check_own_message(&mut self, conversation: &ConversationId, target: &MessageId) -> Result<()> {
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let m = tx.message(conversation, target)?;
        tx.commit()?;
        match m {
            Some(m) if m.sender == me && !m.deleted => Ok(()),
            _ => Err(Error::Malformed { what: "target message (not this user's, or gone)" }),
        }
    }

    /// A text or attachment: into history (Sending) and the outbox, in one transaction.
    fn send_body(&mut self, conversation: &ConversationId, body: ContentBody, now_ms: u64) -> Result<MessageId> {
        let content = self.content(body, now_ms)?;
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let mut conv = tx.conversation(conversation)?.ok_or(Error::Malformed { what: "unknown conversation" })?;
        if let ConversationId::Group(id) = conversation
            && !tx.group(id)?.is_some_and(|g| g.roster().is_member(&me))
        {
            return Err(Error::NotGroupMember);
        }
        let mut message = StoredMessage::from_content(*conversation, me, &content, now_ms, MessageStatus::Sending)?;
        if conv.disappearing_secs > 0 {
            message.expires_at_ms = Some(now_ms.saturating_add(u64::from(conv.disappearing_secs) * 1000));
        }
        tx.insert_message(&message)?;
        conv.last_activity_ms = now_ms;
        tx.put_conversation(&conv)?;
        outbox::push_pending(&tx, conversation, &[], &content)?;
        tx.commit()?;
        self.flush(now_ms)?;
        Ok(content.client_message_id)
    }
}
