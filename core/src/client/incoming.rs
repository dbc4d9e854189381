//! Envelopes from the relay, each processed in one transaction: opened, decrypted, and the payload
//! applied.

use super::outbox::push_pending;
use super::{Client, Ctx, Event, Pending, ctx};
use crate::content::{Content, ContentBody};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::group::{self, Group, GroupId};
use crate::message::SessionMessage;
use crate::peer::PeerUser;
use crate::sealed_sender::{self, InnerKind, Unsealed};
use crate::store::{Contact, ContactState, Conversation, ConversationId, MessageStatus, StoreTx, StoredMessage};
use crate::wire::relay::{self as relay, client_frame::Body as Req};

/// Envelopes kept waiting (for a device list or a sender chain) at most; beyond, the oldest are
/// forgotten unacked, and the relay delivers them again after the next reconnect.
const MAX_PARKED: usize = 1_000;

/// A parked envelope older than this (by the relay's arrival time) is dropped instead.
const MAX_PARKED_AGE_MS: u64 = 24 * 60 * 60 * 1000;

/// What processing one envelope came to.
enum Outcome {
    /// Committed (or a duplicate): ack it. `progress`: a sender chain or device list arrived
    /// that parked envelopes may have waited for.
    Done { progress: bool },
    /// Needs something first: keep it, unacked.
    Park,
}

impl Client {
    /// Processes envelopes, each in its own transaction, then acks them in one frame.
    pub fn handle_envelopes(&mut self, envelopes: Vec<relay::Envelope>, now_ms: u64) -> Result<Vec<Event>> {
        let mut events = core::mem::take(&mut self.backlog);
        self.on_envelopes(envelopes, now_ms, &mut events)?;
        events.append(&mut self.backlog);
        Ok(events)
    }

    pub(super) fn on_envelopes(
        &mut self,
        envelopes: Vec<relay::Envelope>,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let mut acks = Vec::new();
        let mut progress = false;
        for envelope in envelopes {
            progress |= self.process(envelope, now_ms, events, &mut acks)?;
        }
        while progress && !self.parked.is_empty() {
            progress = false;
            for envelope in core::mem::take(&mut self.parked) {
                progress |= self.process(envelope, now_ms, events, &mut acks)?;
            }
        }
        self.send_acks(acks);
        self.flush(now_ms)
    }

    pub(super) fn send_acks(&mut self, acks: Vec<u64>) {
        if !acks.is_empty() && self.connected {
            self.push(Req::Ack(relay::Ack { ids: acks }), Pending::Fire);
        }
    }

    /// One envelope; returns whether it made progress for parked ones.
    fn process(
        &mut self,
        envelope: relay::Envelope,
        now_ms: u64,
        events: &mut Vec<Event>,
        acks: &mut Vec<u64>,
    ) -> Result<bool> {
        let id = envelope.id;
        match self.process_one(&envelope, now_ms, events)? {
            Outcome::Done { progress } => {
                if id != 0 {
                    acks.push(id);
                }
                Ok(progress)
            }
            Outcome::Park if envelope.received_at.saturating_add(MAX_PARKED_AGE_MS) < now_ms => {
                // Waited too long for what it needs (a sender chain that never came): give up.
                self.drop_envelope(id, now_ms)?;
                if id != 0 {
                    acks.push(id);
                }
                events.push(Event::Undecryptable { from: None });
                Ok(false)
            }
            Outcome::Park => {
                if id != 0 {
                    if self.parked.len() >= MAX_PARKED {
                        self.parked.remove(0);
                    }
                    self.parked.push(envelope);
                }
                Ok(false)
            }
        }
    }

    /// Marks a relay id processed without anything else (a message dropped on purpose).
    pub(super) fn drop_envelope(&mut self, id: u64, now_ms: u64) -> Result<()> {
        if id != 0 {
            let tx = self.store.transaction()?;
            tx.mark_processed(id, now_ms)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn process_one(&mut self, envelope: &relay::Envelope, now_ms: u64, events: &mut Vec<Event>) -> Result<Outcome> {
        let id = envelope.id;
        if id != 0 {
            let tx = self.store.transaction()?;
            let seen = tx.is_processed(id)?;
            tx.commit()?;
            if seen {
                return Ok(Outcome::Done { progress: false });
            }
        }
        let Ok(unsealed) = sealed_sender::open(&self.identity, &envelope.payload) else {
            self.drop_envelope(id, now_ms)?;
            events.push(Event::Undecryptable { from: None });
            return Ok(Outcome::Done { progress: false });
        };
        if self.user.is_none() {
            // Waiting to be linked: the only envelope this device can use is its approval.
            self.complete_link(id, &unsealed, now_ms, events)?;
            return Ok(Outcome::Done { progress: false });
        }
        let sender = unsealed.sender_user_key;
        let device = unsealed.sender_device.device_key();

        let tx = self.store.transaction()?;
        let contact = tx.contact(&sender)?;
        if contact.as_ref().is_some_and(|c| c.state == ContactState::Blocked) {
            if id != 0 {
                tx.mark_processed(id, now_ms)?;
            }
            tx.commit()?;
            return Ok(Outcome::Done { progress: false });
        }
        let peer = tx.peer(&sender)?;
        let Some(mut peer) = peer.filter(|p| p.device_list().device(&device).is_ok()) else {
            drop(tx);
            self.request_device_list(sender);
            return Ok(Outcome::Park);
        };
        if unsealed.check_device_list(peer.device_list()).is_err() {
            drop(tx);
            self.drop_envelope(id, now_ms)?;
            events.push(Event::Undecryptable { from: Some(sender) });
            return Ok(Outcome::Done { progress: false });
        }

        let mut account = None;
        let decrypted = match unsealed.kind {
            InnerKind::Session => {
                decrypt_session(&mut ctx!(self), &self.account, &mut peer, &unsealed, &mut account).map(|c| (c, None))
            }
            InnerKind::Group => decrypt_group(&tx, &unsealed).map(|(c, g)| (c, Some(g))),
        };
        let (content, group) = match decrypted {
            Ok(ok) => ok,
            Err(Error::UnknownSenderChain | Error::IdentityChangePending) => {
                drop(tx);
                return Ok(Outcome::Park);
            }
            Err(Error::Database(e)) => return Err(Error::Database(e)),
            Err(e) => {
                drop(tx);
                self.drop_envelope(id, now_ms)?;
                if !matches!(e, Error::DuplicateMessage) {
                    events.push(Event::Undecryptable { from: Some(sender) });
                }
                return Ok(Outcome::Done { progress: false });
            }
        };

        let mut new_events = Vec::new();
        tx.put_peer(&peer)?;
        if let Some(account) = &account {
            tx.put_account(account)?;
        }
        let via_group = group.as_ref().map(Group::id);
        if let Some(g) = &group {
            tx.put_group(g)?;
        }
        let progress =
            apply_content(&mut ctx!(self), &tx, sender, device, contact, via_group, content, now_ms, &mut new_events)?;
        if id != 0 {
            tx.mark_processed(id, now_ms)?;
        }
        tx.commit()?;
        if let Some(account) = account {
            self.account = account;
        }
        events.append(&mut new_events);
        Ok(Outcome::Done { progress })
    }
}

fn decrypt_session(
    c: &mut Ctx<'_>,
    current: &crate::account::Account,
    peer: &mut PeerUser,
    unsealed: &Unsealed,
    account: &mut Option<crate::account::Account>,
) -> Result<Content> {
    let device = unsealed.sender_device.device_key();
    // Only a first message can change the account (it consumes one-time prekeys).
    let mut copy = current.clone();
    let plaintext = peer.decrypt(c.rng, &mut copy, &device, &unsealed.inner, c.config.session)?;
    if matches!(SessionMessage::from_bytes(&unsealed.inner)?, SessionMessage::Prekey(_)) {
        *account = Some(copy);
    }
    Content::from_bytes(&plaintext)
}

fn decrypt_group(tx: &StoreTx<'_>, unsealed: &Unsealed) -> Result<(Content, Group)> {
    let id = group::message_group_id(&unsealed.inner)?;
    let mut g = tx.group(&id)?.ok_or(Error::NotGroupMember)?;
    let plain = g.decrypt(&unsealed.inner)?;
    if plain.sender_user != unsealed.sender_user_key || plain.sender_device != unsealed.sender_device.device_key() {
        return Err(Error::SenderMismatch);
    }
    Ok((Content::from_bytes(&plain.plaintext)?, g))
}

/// Applies a decrypted payload inside the envelope's transaction. Returns whether a sender
/// chain arrived (parked group messages may now decrypt).
#[allow(clippy::too_many_arguments)]
fn apply_content(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    sender: SigningPublicKey,
    device: SigningPublicKey,
    contact: Option<Contact>,
    via_group: Option<GroupId>,
    content: Content,
    now_ms: u64,
    events: &mut Vec<Event>,
) -> Result<bool> {
    if sender == c.me {
        // From another device of this user: only sent syncs, and never through a group chain.
        return match (via_group, content.body.sent_sync()?) {
            (None, Some((conversation, inner))) => {
                apply_sent_sync(c, tx, ConversationId::from_bytes(conversation)?, inner, now_ms, events)?;
                Ok(false)
            }
            _ => Ok(false),
        };
    }
    let conversation = via_group.map_or(ConversationId::Direct(sender), ConversationId::Group);
    let accepted = contact.as_ref().is_some_and(|c| c.state == ContactState::Accepted);
    // A 1:1 message from someone who is not an accepted contact is a request.
    let request = via_group.is_none() && !accepted;
    if request && contact.is_none() && content.body.is_online_only() {
        return Ok(false);
    }
    match content.body.clone() {
        ContentBody::Text(_) | ContentBody::Attachment(_) => {
            if request && contact.is_none() {
                tx.put_contact(&Contact {
                    user_key: sender,
                    display_name: String::new(),
                    state: ContactState::Requested,
                    verified: false,
                    relay_url: c.config.relay_url.clone(),
                    delivery_token: None,
                })?;
            }
            let mut conv = tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
            let mut message =
                StoredMessage::from_content(conversation, sender, &content, now_ms, MessageStatus::Received)?;
            if conv.disappearing_secs > 0 {
                message.expires_at_ms = Some(now_ms.saturating_add(u64::from(conv.disappearing_secs) * 1000));
            }
            if tx.insert_message(&message)? {
                conv.unread = conv.unread.saturating_add(1);
                conv.last_activity_ms = conv.last_activity_ms.max(now_ms);
                tx.put_conversation(&conv)?;
                if !request && via_group.is_none() && c.config.delivery_receipts {
                    let body = ContentBody::Receipt {
                        kind: crate::content::ReceiptKind::Delivered,
                        targets: vec![content.client_message_id],
                    };
                    let receipt = Content::new(c.rng, now_ms, body);
                    push_pending(tx, &conversation, &[sender], &receipt)?;
                }
                events.push(if request { Event::MessageRequest(message) } else { Event::Message(message) });
            }
        }
        ContentBody::Edit { target, text } => {
            if tx.message(&conversation, &target)?.is_some_and(|m| m.sender == sender)
                && tx.apply_edit(&conversation, &target, &text, content.timestamp_ms)?
            {
                events.push(Event::Edited { conversation, id: target });
            }
        }
        ContentBody::Delete { target } => {
            if tx.message(&conversation, &target)?.is_some_and(|m| m.sender == sender)
                && tx.apply_delete(&conversation, &target)?
            {
                events.push(Event::Deleted { conversation, id: target });
            }
        }
        ContentBody::Reaction { target, emoji, remove } => {
            if tx.apply_reaction(&conversation, &target, &sender, &emoji, remove)? {
                events.push(Event::Reaction { conversation, target, from: sender, emoji, removed: remove });
            }
        }
        ContentBody::Receipt { kind, targets } => {
            let mut applied = Vec::new();
            for target in targets {
                if tx.message(&conversation, &target)?.is_some_and(|m| m.sender == c.me)
                    && tx.apply_receipt(&conversation, &target, kind)?
                {
                    applied.push(target);
                }
            }
            if !applied.is_empty() {
                events.push(Event::Receipt { conversation, kind, targets: applied, from: sender });
            }
        }
        ContentBody::Typing { started } => {
            if !request {
                events.push(Event::Typing { conversation, from: sender, started });
            }
        }
        ContentBody::GroupControl { group_id, change } => {
            if via_group.is_some() || group::control_group_id(&change)? != group_id {
                return Err(Error::Malformed { what: "group control" });
            }
            match tx.group(&group_id)? {
                Some(mut g) => {
                    let changes = g.apply_control(&change)?;
                    tx.put_group(&g)?;
                    if !changes.is_empty() {
                        events.push(Event::GroupChanged { group: group_id, events: changes });
                    }
                }
                None => {
                    let g = Group::join(c.me, &change)?;
                    let name = g.roster().name.clone();
                    tx.put_group(&g)?;
                    let id = ConversationId::Group(group_id);
                    if tx.conversation(&id)?.is_none() {
                        let mut conv = Conversation::new(id);
                        conv.last_activity_ms = now_ms;
                        tx.put_conversation(&conv)?;
                    }
                    events.push(Event::GroupJoined { group: group_id, name });
                }
            }
        }
        ContentBody::DisappearingTimer { seconds } => {
            let mut conv = tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
            if conv.disappearing_secs != seconds {
                conv.disappearing_secs = seconds;
                tx.put_conversation(&conv)?;
                events.push(Event::DisappearingTimer { conversation, seconds, from: sender });
            }
        }
        ContentBody::SenderKeyDistribution(bytes) => {
            if via_group.is_some() {
                return Err(Error::Malformed { what: "sender key distribution in a group message" });
            }
            let id = group::distribution_group_id(bytes.as_bytes())?;
            if let Some(mut g) = tx.group(&id)? {
                g.process_distribution(sender, device, bytes.as_bytes())?;
                tx.put_group(&g)?;
                return Ok(true);
            }
        }
        // Linking has its own path (a device waiting to be linked); sent syncs come from own devices.
        ContentBody::DeviceLink(_) | ContentBody::SentSync { .. } => {}
    }
    Ok(false)
}

/// What this user sent from another device, applied as if sent here: the message in history as
/// sent by this user (status Sent), or its edit, delete, reaction, timer or read mark.
// The conditions write to the store and use `?`, so they cannot become match guards.
#[allow(clippy::collapsible_match)]
fn apply_sent_sync(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    conversation: ConversationId,
    content: Content,
    now_ms: u64,
    events: &mut Vec<Event>,
) -> Result<()> {
    let me = c.me;
    match conversation {
        ConversationId::Direct(user) if user == me => return Err(Error::Malformed { what: "sent sync to oneself" }),
        // A group this device is not in (joined before it was linked): nothing to show it in.
        ConversationId::Group(id) if tx.group(&id)?.is_none() => return Ok(()),
        _ => {}
    }
    let mut conv = tx.conversation(&conversation)?.unwrap_or_else(|| Conversation::new(conversation));
    match content.body.clone() {
        ContentBody::Text(_) | ContentBody::Attachment(_) => {
            if let ConversationId::Direct(user) = conversation
                && tx.contact(&user)?.is_none()
            {
                // Written to from another device: a contact there, so one here.
                tx.put_contact(&Contact {
                    user_key: user,
                    display_name: String::new(),
                    state: ContactState::Accepted,
                    verified: false,
                    relay_url: c.config.relay_url.clone(),
                    delivery_token: None,
                })?;
            }
            let mut message = StoredMessage::from_content(conversation, me, &content, now_ms, MessageStatus::Sent)?;
            if conv.disappearing_secs > 0 {
                message.expires_at_ms = Some(now_ms.saturating_add(u64::from(conv.disappearing_secs) * 1000));
            }
            if tx.insert_message(&message)? {
                conv.last_activity_ms = conv.last_activity_ms.max(now_ms);
                tx.put_conversation(&conv)?;
                events.push(Event::Message(message));
            }
        }
        ContentBody::Edit { target, text } => {
            if tx.message(&conversation, &target)?.is_some_and(|m| m.sender == me)
                && tx.apply_edit(&conversation, &target, &text, content.timestamp_ms)?
            {
                events.push(Event::Edited { conversation, id: target });
            }
        }
        ContentBody::Delete { target } => {
            if tx.message(&conversation, &target)?.is_some_and(|m| m.sender == me)
                && tx.apply_delete(&conversation, &target)?
            {
                events.push(Event::Deleted { conversation, id: target });
            }
        }
        ContentBody::Reaction { target, emoji, remove } => {
            if tx.apply_reaction(&conversation, &target, &me, &emoji, remove)? {
                events.push(Event::Reaction { conversation, target, from: me, emoji, removed: remove });
            }
        }
        ContentBody::DisappearingTimer { seconds } => {
            if conv.disappearing_secs != seconds {
                conv.disappearing_secs = seconds;
                tx.put_conversation(&conv)?;
                events.push(Event::DisappearingTimer { conversation, seconds, from: me });
            }
        }
        ContentBody::Receipt { kind: crate::content::ReceiptKind::Read, .. } => {
            // Read on another device: read here too.
            if conv.unread > 0 {
                conv.unread = 0;
                tx.put_conversation(&conv)?;
                events.push(Event::ConversationRead { conversation });
            }
        }
        _ => {}
    }
    Ok(())
}
