//! Envelopes from the relay (docs/PROTOCOL.md §16.3), received in batches: one store transaction
//! per batch, each envelope opened, checked against the sender's device list, decrypted, and its
//! payload handed through the [dispatch table](dispatch) to the module of what it is about inside a
//! savepoint of it. One ack frame per batch goes out after the commit. Envelopes that wait for a
//! device list or a sender chain are parked, unacked.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::retry_receipt::{self, ReceiptBudget};
use super::{Client, Ctx, Event, Pending, groups, messages, outbox, sent_sync};
use crate::account::Account;
use crate::content::{Content, ContentBody, MessageId, ReceiptKind};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, ErrorKind, Result};
use crate::group::{Group, GroupId};
use crate::limits::{MAX_ACK_IDS, MAX_RECEIPT_TARGETS};
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
    /// Processes a batch of envelopes in one store transaction, then acks them in one frame.
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
        let mut envelopes = envelopes.into_iter();
        // A device waiting to be linked reads only its approval, alone; what follows it is a batch.
        while self.user.is_none() {
            let Some(envelope) = envelopes.next() else { break };
            self.link_envelope(&envelope, now_ms, events)?;
            if envelope.id != 0 {
                acks.push(envelope.id);
            }
        }
        let batch: Vec<relay::Envelope> = envelopes.collect();
        if !batch.is_empty() {
            self.receive_batch(batch, now_ms, events, &mut acks)?;
        }
        self.send_acks(acks);
        self.flush(now_ms)
    }

    /// Acks relay ids, in as few frames as the relay takes.
    pub(super) fn send_acks(&mut self, acks: Vec<u64>) {
        if !self.connected {
            return;
        }
        for ids in acks.chunks(MAX_ACK_IDS) {
            self.push(Req::Ack(relay::Ack { ids: ids.to_vec() }), Pending::Fire);
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

    /// An envelope for a device waiting to be linked: its approval, or dropped.
    fn link_envelope(&mut self, envelope: &relay::Envelope, now_ms: u64, events: &mut Vec<Event>) -> Result<()> {
        let id = processed_mark(envelope);
        if id != 0 {
            let tx = self.store.transaction()?;
            let seen = tx.is_processed(id)?;
            tx.commit()?;
            if seen {
                return Ok(());
            }
        }
        match sealed_sender::open(&self.identity, &envelope.payload) {
            Ok(unsealed) => self.complete_link(id, &unsealed, now_ms, events),
            Err(_) => {
                self.drop_envelope(id, now_ms)?;
                events.push(Event::Undecryptable { from: None, reason: ErrorKind::Decryption });
                Ok(())
            }
        }
    }

    /// The envelopes of a batch, then the parked ones while that makes progress, in one
    /// transaction; the account, parked set, events and acks change only once it committed. A
    /// store failure fails the whole batch: nothing of it is acked, and the relay delivers it again.
    fn receive_batch(
        &mut self,
        envelopes: Vec<relay::Envelope>,
        now_ms: u64,
        events: &mut Vec<Event>,
        acks: &mut Vec<u64>,
    ) -> Result<()> {
        let me = self.user_key()?;
        let list_version = self.own_list_version;
        let Client { store, rng, identity, config, account, parked, receipt_budget, token, .. } = self;
        let tx = store.transaction()?;
        let mut batch = Batch {
            tx: &tx,
            c: Ctx { rng, identity, me, list_version, token: token.as_ref(), config },
            account: None,
            current: account,
            receipt_budget,
            // Taken, not copied: a store failure below forgets them, unacked, as a disconnect
            // would, and the relay delivers them again after the next connect.
            parked: core::mem::take(parked),
            now_ms,
            acks: Vec::new(),
            events: Vec::new(),
            fetch_lists: Vec::new(),
            newer_lists: Vec::new(),
            peers: HashMap::new(),
            delivered: Vec::new(),
        };
        let mut progress = false;
        for envelope in envelopes {
            progress |= batch.envelope(envelope)?;
        }
        while progress && !batch.parked.is_empty() {
            progress = false;
            for envelope in core::mem::take(&mut batch.parked) {
                progress |= batch.envelope(envelope)?;
            }
        }
        queue_delivered(&mut batch.c, &tx, &batch.delivered, now_ms)?;
        let Batch {
            account: new_account,
            parked: new_parked,
            acks: new_acks,
            events: mut new_events,
            fetch_lists,
            newer_lists,
            ..
        } = batch;
        tx.commit()?;
        if let Some(new_account) = new_account {
            *account = new_account;
        }
        *parked = new_parked;
        acks.extend(new_acks);
        events.append(&mut new_events);
        for user in fetch_lists {
            self.request_device_list(user);
        }
        for (user, version) in newer_lists {
            self.request_newer_list(user, version);
        }
        Ok(())
    }
}

/// A batch of envelopes inside its transaction, and what it gathers for after the commit.
struct Batch<'a> {
    tx: &'a StoreTx<'a>,
    c: Ctx<'a>,
    /// The account as the batch changed it (a first message consumed prekeys), if it did.
    account: Option<Account>,
    /// The account as the client holds it (committed).
    current: &'a Account,
    /// Retry receipts this client may still send.
    receipt_budget: &'a mut ReceiptBudget,
    /// Envelopes waiting for something, the client's and this batch's.
    parked: Vec<relay::Envelope>,
    now_ms: u64,
    acks: Vec<u64>,
    events: Vec<Event>,
    /// Users whose device list to ask for (an envelope came from a device the list held does not name).
    fetch_lists: Vec<SigningPublicKey>,
    /// Users whose newer device list (of that version) an envelope announced, to fetch.
    newer_lists: Vec<(SigningPublicKey, u64)>,
    /// Delivery receipts owed by the envelopes applied.
    delivered: Vec<Delivered>,
    /// The peers this batch read, as it last stored them: decoding one from the store checks its
    /// device list's signature and every session's keys, which a backlog from one contact would
    /// otherwise pay for every envelope. Only this batch writes peers while its transaction is
    /// open; the one other writer inside it (a retry receipt's session archive) drops its entry.
    peers: HashMap<SigningPublicKey, PeerUser>,
}

impl Batch<'_> {
    /// One envelope; returns whether it made progress for parked ones.
    fn envelope(&mut self, envelope: relay::Envelope) -> Result<bool> {
        let id = envelope.id;
        match self.process(&envelope)? {
            Outcome::Done { progress } => {
                self.ack(id);
                Ok(progress)
            }
            Outcome::Park if envelope.received_at.saturating_add(MAX_PARKED_AGE_MS) < self.now_ms => {
                // Waited too long for what it needs (a sender chain that never came): give up.
                self.dropped(processed_mark(&envelope), None, ErrorKind::Decryption)?;
                self.ack(id);
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

    fn ack(&mut self, id: u64) {
        if id != 0 {
            self.acks.push(id);
        }
    }

    /// Marks an envelope processed by its [`processed_mark`].
    fn mark(&self, mark: u64) -> Result<()> {
        if mark != 0 {
            self.tx.mark_processed(mark, self.now_ms)?;
        }
        Ok(())
    }

    /// Drops an envelope on purpose: marked processed (so acked), with an event saying why.
    fn dropped(&mut self, id: u64, from: Option<SigningPublicKey>, reason: ErrorKind) -> Result<Outcome> {
        self.mark(id)?;
        self.events.push(Event::Undecryptable { from, reason });
        Ok(Outcome::Done { progress: false })
    }

    fn process(&mut self, envelope: &relay::Envelope) -> Result<Outcome> {
        // Every "processed" mark below is this envelope's, not its bare relay id.
        let id = processed_mark(envelope);
        if id != 0 && self.tx.is_processed(id)? {
            return Ok(Outcome::Done { progress: false });
        }
        let Ok(unsealed) = sealed_sender::open(self.c.identity, &envelope.payload) else {
            return self.dropped(id, None, ErrorKind::Decryption);
        };
        let sender = unsealed.sender_user_key;
        let device = unsealed.sender_device.device_key();

        let contact = self.tx.contact(&sender)?;
        if contact.as_ref().is_some_and(|c| c.state == ContactState::Blocked) {
            self.mark(id)?;
            return Ok(Outcome::Done { progress: false });
        }
        let peer = match self.peers.get(&sender) {
            Some(peer) => Some(peer.clone()),
            None => self.tx.peer(&sender)?.inspect(|p| {
                self.peers.insert(sender, p.clone());
            }),
        };
        let Some(mut peer) = peer.filter(|p| p.device_list().device(&device).is_ok()) else {
            if !self.fetch_lists.contains(&sender) {
                self.fetch_lists.push(sender);
            }
            return Ok(Outcome::Park);
        };
        if unsealed.check_device_list(peer.device_list()).is_err() {
            return self.dropped(id, Some(sender), ErrorKind::Identity);
        }
        // The sender holds a newer list (a device linked or removed): fetch and verify it before
        // reading on, so what follows is not encrypted to a removed device (§16.7).
        if unsealed.sender_list_version > peer.device_list().list_version() {
            if !self.newer_lists.contains(&(sender, unsealed.sender_list_version)) {
                self.newer_lists.push((sender, unsealed.sender_list_version));
            }
            return Ok(Outcome::Park);
        }

        if unsealed.kind == InnerKind::Plaintext {
            self.peers.remove(&sender);
            let (tx, now_ms) = (self.tx, self.now_ms);
            retry_receipt::on_retry_receipt(&mut self.c, tx, id, &unsealed, now_ms, &mut self.events)?;
            return Ok(Outcome::Done { progress: false });
        }
        // Decrypting works on copies (peer, account, group): nothing is stored unless it succeeds.
        let mut account = None;
        let decrypted = match unsealed.kind {
            InnerKind::Session => {
                let current = self.account.as_ref().unwrap_or(self.current);
                decrypt_session(&mut self.c, current, &mut peer, &unsealed, &mut account).map(|c| (c, None))
            }
            InnerKind::Group => groups::decrypt(self.tx, &unsealed).map(|(c, g)| (c, Some(g))),
            InnerKind::Plaintext => Err(Error::Malformed { what: "sealed inner kind" }),
        };
        let (content, group) = match decrypted {
            Ok(ok) => ok,
            Err(e @ (Error::UnknownSenderChain | Error::IdentityChangePending)) => {
                if matches!(e, Error::UnknownSenderChain) {
                    // Waited long for its chain: ask the sender for it (§16.13), and wait on.
                    let (tx, now_ms) = (self.tx, self.now_ms);
                    retry_receipt::ask_for_chain(&mut self.c, tx, self.receipt_budget, envelope, &unsealed, now_ms)?;
                }
                return Ok(Outcome::Park);
            }
            Err(Error::Database(e)) => return Err(Error::Database(e)),
            // A resend the relay took twice (docs/PROTOCOL.md §16.4): no event.
            Err(Error::DuplicateMessage) => {
                self.mark(id)?;
                return Ok(Outcome::Done { progress: false });
            }
            Err(e) => {
                // A retry receipt asks the sender for the payload again in a new session.
                let (tx, now_ms) = (self.tx, self.now_ms);
                retry_receipt::drop_undecryptable(&mut self.c, tx, self.receipt_budget, id, &unsealed, &e, now_ms)?;
                self.events.push(Event::Undecryptable { from: Some(sender), reason: e.kind() });
                return Ok(Outcome::Done { progress: false });
            }
        };

        // Checked against the list and decrypted: the sender's token is its own (§9.5).
        if let Some(token) = &unsealed.sender_delivery_token {
            peer.set_delivery_token(token.clone());
        }
        self.tx.put_peer(&peer)?;
        self.peers.insert(sender, peer);
        if let Some(account) = account {
            self.tx.put_account(&account)?;
            self.account = Some(account);
        }
        let via_group = group.as_ref().map(Group::id);
        if let Some(g) = &group {
            self.tx.put_group(g)?;
        }
        self.mark(id)?;
        // The payload is applied in a savepoint: one that fails to apply (a poison message) is
        // undone alone, while its decryption (the ratchet step, the consumed prekeys) and its mark
        // stay, so it is acked and reported instead of failing the batch on every delivery.
        let origin = Origin { user: sender, device, contact, via_group };
        let (mut new_events, mut delivered) = (Vec::new(), Vec::new());
        let (tx, now_ms) = (self.tx, self.now_ms);
        let c = self.c.reborrow();
        match tx.savepoint(|| receive(c, tx, origin, content, now_ms, &mut new_events, &mut delivered)) {
            Ok(progress) => {
                self.events.append(&mut new_events);
                self.delivered.append(&mut delivered);
                Ok(Outcome::Done { progress })
            }
            Err(Error::Database(e)) => Err(Error::Database(e)),
            Err(e) => {
                self.events.push(Event::Undecryptable { from: Some(sender), reason: e.kind() });
                Ok(Outcome::Done { progress: false })
            }
        }
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
    current: &Account,
    peer: &mut PeerUser,
    unsealed: &Unsealed,
    account: &mut Option<Account>,
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
    /// Delivery receipts this payload owes, queued once the batch is applied.
    pub(super) delivered: &'a mut Vec<Delivered>,
}

/// A delivery receipt owed for a received message. A batch queues one receipt per conversation
/// and sender listing all of them (docs/PROTOCOL.md §16.6), not one per message: a backlog of N
/// messages from one contact costs a handful of sends, not N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Delivered {
    /// The conversation the message arrived in.
    pub(super) conversation: ConversationId,
    /// Its sender, to whom the receipt goes.
    pub(super) to: SigningPublicKey,
    /// The message.
    pub(super) id: MessageId,
}

/// Queues the receipts of `delivered` in `tx`: per conversation and sender, in arrival order, at
/// most `MAX_RECEIPT_TARGETS` messages a receipt.
fn queue_delivered(c: &mut Ctx<'_>, tx: &StoreTx<'_>, delivered: &[Delivered], now_ms: u64) -> Result<()> {
    let mut owed: Vec<(ConversationId, SigningPublicKey, Vec<MessageId>)> = Vec::new();
    for d in delivered {
        match owed.iter_mut().find(|(conversation, to, _)| *conversation == d.conversation && *to == d.to) {
            Some((_, _, ids)) => ids.push(d.id),
            None => owed.push((d.conversation, d.to, vec![d.id])),
        }
    }
    for (conversation, to, ids) in owed {
        for targets in ids.chunks(MAX_RECEIPT_TARGETS) {
            let body = ContentBody::Receipt { kind: ReceiptKind::Delivered, targets: targets.to_vec() };
            let receipt = Content::new(c.rng, now_ms, body);
            outbox::push_pending(tx, &conversation, &[to], &receipt)?;
        }
    }
    Ok(())
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
    delivered: &mut Vec<Delivered>,
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
    let (from, device) = (origin.user, origin.device);
    let mut cx = Incoming { c, tx, from, device, conversation, direction, now_ms, events, delivered };
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
