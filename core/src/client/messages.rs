//! Messages in a conversation, 1:1 or group (docs/PROTOCOL.md §13, §16): texts and attachments,
//! edits, deletes, reactions, receipts, typing and the disappearing timer — sent from here, and
//! received from a peer or, as a sent sync, from another device of this user — and the history
//! they make.

use std::collections::HashMap;

use super::contacts::new_contact;
use super::incoming::{Delivered, Direction, Incoming};
use super::{Client, Event, outbox};
use crate::content::{AttachmentPointer, Content, ContentBody, MessageId, ReceiptKind};
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
        self.user_key()?;
        let tx = self.store.transaction()?;
        let Some(mut conv) = tx.conversation(conversation)? else { return Ok(()) };
        let unread = conv.unread as usize;
        conv.unread = 0;
        tx.put_conversation(&conv)?;
        let (page, _) = tx.history(conversation, None, unread.clamp(1, crate::limits::MAX_RECEIPT_TARGETS))?;
        let mut by_sender: HashMap<SigningPublicKey, Vec<MessageId>> = HashMap::new();
        // No read receipts into a group request: reading it must not tell its members.
        if unread > 0 && !conv.request {
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
        self.user_key()?;
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
        set_expiry(&mut message, &conv, now_ms);
        tx.insert_message(&message)?;
        conv.last_activity_ms = now_ms;
        tx.put_conversation(&conv)?;
        outbox::push_pending(&tx, conversation, &[], &content)?;
        tx.commit()?;
        self.flush(now_ms)?;
        Ok(content.client_message_id)
    }
}

/// Sets when `message` disappears, if its conversation has a timer.
fn set_expiry(message: &mut StoredMessage, conv: &Conversation, now_ms: u64) {
    if conv.disappearing_secs > 0 {
        message.expires_at_ms = Some(now_ms.saturating_add(u64::from(conv.disappearing_secs) * 1000));
    }
}

/// A text or attachment into history. From a peer: Received and unread (a stranger's 1:1 message
/// makes them a requested contact and is a [`Event::MessageRequest`]), with a delivery receipt
/// queued for an accepted contact's 1:1 message. A sent sync: Sent by this user (and a 1:1
/// conversation's peer becomes a contact here too).
pub(super) fn on_message(cx: &mut Incoming<'_>, content: &Content) -> Result<()> {
    let conversation = cx.conversation;
    let (status, request) = match cx.direction {
        Direction::Peer { request, stranger } => {
            if request && stranger {
                cx.tx.put_contact(&new_contact(cx.from, ContactState::Requested, &cx.c.config.relay_url))?;
            }
            (MessageStatus::Received, request)
        }
        Direction::SentSync => {
            if let ConversationId::Direct(user) = conversation
                && cx.tx.contact(&user)?.is_none()
            {
                // Written to from another device: a contact there, so one here.
                cx.tx.put_contact(&new_contact(user, ContactState::Accepted, &cx.c.config.relay_url))?;
            }
            (MessageStatus::Sent, false)
        }
    };
    let mut conv = cx.tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
    // A group not yet accepted: its messages are requests too (no contact is made of its members).
    let request = request || conv.request;
    let mut message = StoredMessage::from_content(conversation, cx.from, content, cx.now_ms, status)?;
    set_expiry(&mut message, &conv, cx.now_ms);
    if !cx.tx.insert_message(&message)? {
        return Ok(());
    }
    let from_peer = matches!(cx.direction, Direction::Peer { .. });
    if from_peer {
        conv.unread = conv.unread.saturating_add(1);
    }
    conv.last_activity_ms = conv.last_activity_ms.max(cx.now_ms);
    cx.tx.put_conversation(&conv)?;
    if from_peer && !request && !cx.in_group() && cx.c.config.delivery_receipts {
        // Sent once the batch is applied, one receipt for all of this sender's messages in it.
        cx.delivered.push(Delivered { conversation, to: cx.from, id: content.client_message_id });
    }
    cx.events.push(if request { Event::MessageRequest(message) } else { Event::Message(message) });
    Ok(())
}

/// An edit of a text by its sender.
pub(super) fn on_edit(cx: &mut Incoming<'_>, target: MessageId, text: &str, edited_at_ms: u64) -> Result<()> {
    if cx.tx.message(&cx.conversation, &target)?.is_some_and(|m| m.sender == cx.from)
        && cx.tx.apply_edit(&cx.conversation, &target, text, edited_at_ms)?
    {
        cx.events.push(Event::Edited { conversation: cx.conversation, id: target });
    }
    Ok(())
}

/// A delete for everyone, by the message's sender.
pub(super) fn on_delete(cx: &mut Incoming<'_>, target: MessageId) -> Result<()> {
    if cx.tx.message(&cx.conversation, &target)?.is_some_and(|m| m.sender == cx.from)
        && cx.tx.apply_delete(&cx.conversation, &target)?
    {
        cx.events.push(Event::Deleted { conversation: cx.conversation, id: target });
    }
    Ok(())
}

/// A reaction added or withdrawn.
pub(super) fn on_reaction(cx: &mut Incoming<'_>, target: MessageId, emoji: String, remove: bool) -> Result<()> {
    if cx.tx.apply_reaction(&cx.conversation, &target, &cx.from, &emoji, remove)? {
        let (conversation, from) = (cx.conversation, cx.from);
        cx.events.push(Event::Reaction { conversation, target, from, emoji, removed: remove });
    }
    Ok(())
}

/// The conversation's disappearing-message timer.
pub(super) fn on_timer(cx: &mut Incoming<'_>, seconds: u32) -> Result<()> {
    let conversation = cx.conversation;
    let mut conv = cx.tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
    if conv.disappearing_secs != seconds {
        conv.disappearing_secs = seconds;
        cx.tx.put_conversation(&conv)?;
        cx.events.push(Event::DisappearingTimer { conversation, seconds, from: cx.from });
    }
    Ok(())
}

/// A peer's delivery or read receipt for messages of this user.
pub(super) fn on_receipt(cx: &mut Incoming<'_>, kind: ReceiptKind, targets: Vec<MessageId>) -> Result<()> {
    let conversation = cx.conversation;
    let mut applied = Vec::new();
    for target in targets {
        if cx.tx.message(&conversation, &target)?.is_some_and(|m| m.sender == cx.c.me)
            && cx.tx.apply_receipt(&conversation, &target, kind)?
        {
            applied.push(target);
        }
    }
    if !applied.is_empty() {
        cx.events.push(Event::Receipt { conversation, kind, targets: applied, from: cx.from });
    }
    Ok(())
}

/// This user's read receipt, synced from another device: the conversation was read there, so it
/// is read here too.
pub(super) fn on_read_elsewhere(cx: &mut Incoming<'_>) -> Result<()> {
    let conversation = cx.conversation;
    let mut conv = cx.tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
    if conv.unread > 0 {
        conv.unread = 0;
        cx.tx.put_conversation(&conv)?;
        cx.events.push(Event::ConversationRead { conversation });
    }
    Ok(())
}

/// A peer started or stopped typing (shown for accepted contacts and groups, not for requests).
pub(super) fn on_typing(cx: &mut Incoming<'_>, started: bool) {
    if let Direction::Peer { request: false, .. } = cx.direction {
        cx.events.push(Event::Typing { conversation: cx.conversation, from: cx.from, started });
    }
}
