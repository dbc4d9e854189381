//! Envelopes from the relay (docs/PROTOCOL.md §16), each processed in one transaction: opened,
//! checked against the sender's device list, decrypted, and its payload handed through the
//! [dispatch table](dispatch) to the module of what it is about. Envelopes that wait for a device
//! list or a sender chain are parked, unacked.

use sha2::{Digest, Sha256};

use super::{Client, Ctx, Event, Pending, ctx, groups, messages, sent_sync};
use crate::content::{Content, ContentBody, ReceiptKind};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::group::{Group, GroupId};
use crate::message::SessionMessage;
use crate::peer::PeerUser;
use crate::sealed_sender::{self, InnerKind, Unsealed};
use crate::store::{Contact, ContactState, ConversationId, StoreTx};
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
        let mark = processed_mark(&envelope);
        match self.process_one(&envelope, now_ms, events)? {
            Outcome::Done { progress } => {
                if id != 0 {
                    acks.push(id);
                }
                Ok(progress)
            }
            Outcome::Park if envelope.received_at.saturating_add(MAX_PARKED_AGE_MS) < now_ms => {
                // Waited too long for what it needs (a sender chain that never came): give up.
                self.drop_envelope(mark, now_ms)?;
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

    /// Marks an envelope processed (by its [`processed_mark`]) without anything else (a message
    /// dropped on purpose).
    pub(super) fn drop_envelope(&mut self, id: u64, now_ms: u64) -> Result<()> {
        if id != 0 {
            let tx = self.store.transaction()?;
            tx.mark_processed(id, now_ms)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn process_one(&mut self, envelope: &relay::Envelope, now_ms: u64, events: &mut Vec<Event>) -> Result<Outcome> {
        // Every "processed" mark below is this envelope's, not its bare relay id.
        let id = processed_mark(envelope);
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
        // The sender holds a newer list (a device linked or removed): fetch and verify it before
        // reading on, so what follows is not encrypted to a removed device (§16.7).
        if unsealed.sender_list_version > peer.device_list().list_version() {
            drop(tx);
            self.request_newer_list(sender, unsealed.sender_list_version);
            return Ok(Outcome::Park);
        }

        if unsealed.kind == InnerKind::Plaintext {
            drop(tx);
            self.on_retry_receipt(id, &unsealed, now_ms, events)?;
            return Ok(Outcome::Done { progress: false });
        }
        let mut account = None;
        let decrypted = match unsealed.kind {
            InnerKind::Session => {
                decrypt_session(&mut ctx!(self), &self.account, &mut peer, &unsealed, &mut account).map(|c| (c, None))
            }
            InnerKind::Group => groups::decrypt(&tx, &unsealed).map(|(c, g)| (c, Some(g))),
            InnerKind::Plaintext => Err(Error::Malformed { what: "sealed inner kind" }),
        };
        let (content, group) = match decrypted {
            Ok(ok) => ok,
            Err(e @ (Error::UnknownSenderChain | Error::IdentityChangePending)) => {
                drop(tx);
                if matches!(e, Error::UnknownSenderChain) {
                    // Waited long for its chain: ask the sender for it (§16.13), and wait on.
                    self.ask_for_chain(envelope, &unsealed, now_ms)?;
                }
                return Ok(Outcome::Park);
            }
            Err(Error::Database(e)) => return Err(Error::Database(e)),
            Err(Error::DuplicateMessage) => {
                drop(tx);
                self.drop_envelope(id, now_ms)?;
                return Ok(Outcome::Done { progress: false });
            }
            Err(e) => {
                drop(tx);
                // A retry receipt asks the sender for the payload again in a new session.
                self.drop_undecryptable(id, &unsealed, &e, now_ms)?;
                events.push(Event::Undecryptable { from: Some(sender) });
                return Ok(Outcome::Done { progress: false });
            }
        };

        let mut new_events = Vec::new();
        // Checked against the list and decrypted: the sender's token is its own (§9.5).
        if let Some(token) = &unsealed.sender_delivery_token {
            peer.set_delivery_token(token.clone());
        }
        tx.put_peer(&peer)?;
        if let Some(account) = &account {
            tx.put_account(account)?;
        }
        let via_group = group.as_ref().map(Group::id);
        if let Some(g) = &group {
            tx.put_group(g)?;
        }
        let origin = Origin { user: sender, device, contact, via_group };
        let progress = receive(ctx!(self), &tx, origin, content, now_ms, &mut new_events)?;
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

/// What marks an envelope processed (§16.4): its relay id bound to its bytes, so a redelivery is
/// recognised while a relay restored from an old backup, which hands out ids it handed out before
/// for other envelopes, cannot make new envelopes pass for processed ones. 0 for a live envelope.
pub(super) fn processed_mark(envelope: &relay::Envelope) -> u64 {
    if envelope.id == 0 {
        return 0;
    }
    let digest = Sha256::new()
        .chain_update(PROCESSED_MARK_CONTEXT)
        .chain_update(envelope.id.to_be_bytes())
        .chain_update(&envelope.payload)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[1; 8]));
    u64::from_be_bytes(first).max(1)
}

/// Domain separation of [`processed_mark`].
const PROCESSED_MARK_CONTEXT: &[u8] = b"hush/processed-envelope/v1";

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

/// Who a decrypted payload came from, as its envelope showed.
pub(super) struct Origin {
    /// The sender's user key (this user's own when another of its devices sent it).
    pub(super) user: SigningPublicKey,
    /// The sending device.
    pub(super) device: SigningPublicKey,
    /// The sender as a contact, if they are one.
    pub(super) contact: Option<Contact>,
    /// The group whose sender chain it came through, if any.
    pub(super) via_group: Option<GroupId>,
}

/// Which way a payload came (docs/PROTOCOL.md §16): from a peer, or as a sent sync from another
/// device of this user. The handlers shared by both look at it where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// From another user. `request`: a 1:1 payload from someone who is not an accepted contact;
    /// `stranger`: from someone who is no contact at all.
    Peer {
        /// A message request.
        request: bool,
        /// No contact (of any state) yet.
        stranger: bool,
    },
    /// What this user sent from another device, applied as if sent here.
    SentSync,
}

/// What a payload's handler works with, inside the envelope's transaction.
pub(super) struct Incoming<'a> {
    /// What encrypting needs (a receipt to queue, a group to join as this user).
    pub(super) c: Ctx<'a>,
    /// The envelope's transaction.
    pub(super) tx: &'a StoreTx<'a>,
    /// Who wrote the payload: the peer, or this user for a sent sync.
    pub(super) from: SigningPublicKey,
    /// The device it came from.
    pub(super) device: SigningPublicKey,
    /// The conversation it belongs to.
    pub(super) conversation: ConversationId,
    /// From a peer or a sent sync.
    pub(super) direction: Direction,
    /// The time it is processed at.
    pub(super) now_ms: u64,
    /// What the user should see once the transaction commits.
    pub(super) events: &'a mut Vec<Event>,
}

impl Incoming<'_> {
    /// Whether the payload belongs to a group conversation (a peer's payload does exactly when it
    /// came through the group's sender chain).
    pub(super) fn in_group(&self) -> bool {
        matches!(self.conversation, ConversationId::Group(_))
    }
}

/// Applies a decrypted payload inside the envelope's transaction. Returns whether a sender
/// chain arrived (parked group messages may now decrypt).
fn receive(
    c: Ctx<'_>,
    tx: &StoreTx<'_>,
    origin: Origin,
    content: Content,
    now_ms: u64,
    events: &mut Vec<Event>,
) -> Result<bool> {
    if origin.user == c.me {
        return sent_sync::receive(c, tx, origin, content, now_ms, events);
    }
    let conversation = origin.via_group.map_or(ConversationId::Direct(origin.user), ConversationId::Group);
    let accepted = origin.contact.as_ref().is_some_and(|c| c.state == ContactState::Accepted);
    // A 1:1 message from someone who is not an accepted contact is a request.
    let request = origin.via_group.is_none() && !accepted;
    let stranger = origin.contact.is_none();
    if request && stranger && content.body.is_online_only() {
        return Ok(false);
    }
    let direction = Direction::Peer { request, stranger };
    let mut cx = Incoming { c, tx, from: origin.user, device: origin.device, conversation, direction, now_ms, events };
    dispatch(&mut cx, content)
}

/// The incoming dispatch table: each kind of payload to the handler of its noun. A peer's payloads
/// and this user's sent syncs share the handlers; a kind that a direction never carries is ignored
/// there. Returns whether a sender chain arrived or a roster moved.
pub(super) fn dispatch(cx: &mut Incoming<'_>, content: Content) -> Result<bool> {
    use ContentBody as B;
    use Direction::{Peer, SentSync};
    match (cx.direction, content.body.clone()) {
        (_, B::Text(_) | B::Attachment(_)) => messages::on_message(cx, &content)?,
        (_, B::Edit { target, text }) => messages::on_edit(cx, target, &text, content.timestamp_ms)?,
        (_, B::Delete { target }) => messages::on_delete(cx, target)?,
        (_, B::Reaction { target, emoji, remove }) => messages::on_reaction(cx, target, emoji, remove)?,
        (_, B::DisappearingTimer { seconds }) => messages::on_timer(cx, seconds)?,
        (Peer { .. }, B::Receipt { kind, targets }) => messages::on_receipt(cx, kind, targets)?,
        (SentSync, B::Receipt { kind: ReceiptKind::Read, .. }) => messages::on_read_elsewhere(cx)?,
        (Peer { .. }, B::Typing { started }) => messages::on_typing(cx, started),
        (Peer { .. }, B::GroupControl { group_id, change }) => return groups::on_control(cx, group_id, &change),
        (Peer { .. }, B::SenderKeyDistribution(bytes)) => return groups::on_distribution(cx, bytes.as_bytes()),
        // Linking has its own path (a device waiting to be linked); a sent sync is unwrapped before
        // (from this user's own devices) or ignored; receipts of delivery, typing and group
        // plumbing are never synced.
        // A retry receipt comes only without a session (`on_retry_receipt`); inside one it is ignored.
        (_, B::DeviceLink(_) | B::SentSync { .. } | B::DecryptionError { .. }) | (SentSync, _) => {}
    }
    Ok(false)
}
