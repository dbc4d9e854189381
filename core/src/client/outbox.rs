//! The outbox (docs/PROTOCOL.md §16.8): every payload is stored (encrypted at rest, as every
//! store value) before it leaves and kept until the relay took a copy for every recipient device.
//! It is encrypted when it is sent, anew at every attempt and only for the devices still waiting,
//! so a copy sent late never carries a ciphertext the recipient's ratchet has moved past.

use std::collections::HashSet;

use prost::Message as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Client, Ctx, Event, Pending, RELAY_PROTOCOL_VERSION, ctx, retry_receipt, sent_sync};
use crate::content::{Content, ContentBody, MessageId, SecretBytes};
use crate::crypto::{DeviceKeys, SigningPublicKey};
use crate::error::{Error, Result};
use crate::peer::PeerUser;
use crate::sealed_sender::{self, InnerKind, SenderState};
use crate::store::{ConversationId, MessageStatus, OutboxItem, SentCopy, StoreTx};
use crate::wire::client::{OutboxEntry, PendingContent, outbox_entry::Entry};
use crate::wire::relay::{self as relay, ClientFrame, client_frame::Body as Req};

/// Version 2: payloads are encrypted when sent. Version 1 entries (payloads, and requests
/// encrypted when queued) are still read; their frames go once as they are.
const OUTBOX_VERSION: u32 = 2;
const OUTBOX_VERSION_1: u32 = 1;

/// The largest outbox value decoded (a frame holds one sealed envelope).
const MAX_OUTBOX_ENTRY_BYTES: usize = 4 * 1024 * 1024 + 4096;

/// One sealed envelope for one recipient device, with how to address it.
pub(super) struct Addressed {
    /// The recipient device.
    pub(super) device: SigningPublicKey,
    /// The recipient's delivery token, for a sealed send.
    pub(super) token: Option<Vec<u8>>,
    /// The sealed envelope.
    pub(super) envelope: Vec<u8>,
}

impl Addressed {
    pub(super) fn into_request(self, online_only: bool) -> Req {
        match self.token {
            Some(delivery_token) => Req::SealedSend(relay::SealedSend {
                recipient_device: self.device.to_bytes().to_vec(),
                delivery_token,
                envelope: self.envelope,
                online_only,
            }),
            None => Req::Send(relay::Send {
                messages: vec![relay::Outgoing {
                    recipient_device: self.device.to_bytes().to_vec(),
                    payload: self.envelope,
                    online_only,
                }],
            }),
        }
    }
}

/// What an outbox value holds.
enum Stored {
    /// A request ready as it is: one with no session state behind it (a link's device list and
    /// approval), or a version-1 ciphertext.
    Frame(ClientFrame),
    /// A payload, encrypted when sent.
    Payload(Payload),
}

/// A payload in the outbox and how far it got.
struct Payload {
    conversation: ConversationId,
    /// The users it goes to; `None` only for a version-1 group message (the members at sending).
    recipients: Option<Vec<SigningPublicKey>>,
    /// The encoded `Content`.
    content: Zeroizing<Vec<u8>>,
    /// Through the group's sender chain rather than 1:1 sessions.
    group: bool,
    /// The devices whose copy the relay took.
    delivered: Vec<SigningPublicKey>,
    /// Refusals with a retry time in a row.
    refusals: u32,
    /// Only these devices of the recipients (empty: all).
    devices: Vec<SigningPublicKey>,
    /// Sealed without a session: a retry receipt.
    unsessioned: bool,
    /// Times sent again after retry receipts.
    resends: u32,
}

impl Payload {
    fn new(
        conversation: ConversationId,
        recipients: Vec<SigningPublicKey>,
        content: Zeroizing<Vec<u8>>,
        group: bool,
    ) -> Self {
        Self {
            conversation,
            recipients: Some(recipients),
            content,
            group,
            delivered: Vec::new(),
            refusals: 0,
            devices: Vec::new(),
            unsessioned: false,
            resends: 0,
        }
    }

    /// Whether this payload goes to `device` at all.
    fn targets(&self, device: &SigningPublicKey) -> bool {
        self.devices.is_empty() || self.devices.contains(device)
    }

    fn to_entry(&self) -> Vec<u8> {
        let keys = |v: &[SigningPublicKey]| v.iter().map(|k| k.to_bytes().to_vec()).collect();
        let pending = PendingContent {
            conversation: self.conversation.to_bytes(),
            recipients: keys(self.recipients.as_deref().unwrap_or_default()),
            content: self.content.to_vec(),
            group_message: self.group,
            delivered: keys(&self.delivered),
            refusals: self.refusals,
            devices: keys(&self.devices),
            unsessioned: self.unsessioned,
            resends: self.resends,
        };
        OutboxEntry { version: OUTBOX_VERSION, entry: Some(Entry::Pending(pending)) }.encode_to_vec()
    }
}

fn decode_entry(bytes: &[u8]) -> Result<Stored> {
    let entry: OutboxEntry = crate::wire::decode(bytes, MAX_OUTBOX_ENTRY_BYTES, "outbox entry")?;
    if entry.version != OUTBOX_VERSION && entry.version != OUTBOX_VERSION_1 {
        return Err(Error::UnsupportedVersion { what: "outbox entry", version: entry.version });
    }
    let keys =
        |v: &[Vec<u8>], what| v.iter().map(|k| SigningPublicKey::from_slice(k, what)).collect::<Result<Vec<_>>>();
    match &entry.entry {
        Some(Entry::Frame(frame)) => {
            Ok(Stored::Frame(crate::wire::decode(frame, MAX_OUTBOX_ENTRY_BYTES, "outbox frame")?))
        }
        Some(Entry::Pending(p)) => {
            let recipients = keys(&p.recipients, "outbox recipient")?;
            // Version 1 left a group message's recipients empty: the members when it is sent.
            let legacy_group = entry.version == OUTBOX_VERSION_1 && p.group_message;
            Ok(Stored::Payload(Payload {
                conversation: ConversationId::from_bytes(&p.conversation)?,
                recipients: (!legacy_group).then_some(recipients),
                content: Zeroizing::new(p.content.clone()),
                group: p.group_message,
                delivered: keys(&p.delivered, "outbox device")?,
                refusals: p.refusals,
                devices: keys(&p.devices, "outbox device")?,
                unsessioned: p.unsessioned,
                resends: p.resends,
            }))
        }
        None => Err(Error::Malformed { what: "outbox entry" }),
    }
}

pub(super) fn frame_entry(body: Req) -> Vec<u8> {
    let frame = ClientFrame { version: RELAY_PROTOCOL_VERSION, request_id: 0, body: Some(body) };
    OutboxEntry { version: OUTBOX_VERSION, entry: Some(Entry::Frame(frame.encode_to_vec())) }.encode_to_vec()
}

/// The soonest a send refused for the rate is tried again, whatever the relay says (ms).
const MIN_RATE_LIMIT_RETRY_MS: u64 = 250;

/// The longest wait between attempts after refusals other than for the rate (a full mailbox, the
/// relay's trouble): the backoff doubles from the relay's retry time up to this (ms).
const MAX_REFUSED_RETRY_MS: u64 = 15 * 60 * 1000;

/// Error codes after which resending the same request cannot succeed.
fn is_permanent(code: i32) -> bool {
    use relay::ErrorCode as C;
    [C::Malformed, C::UnsupportedVersion, C::BadSignature, C::TooLarge, C::NotFound, C::Forbidden]
        .iter()
        .any(|c| *c as i32 == code)
}

/// How long to wait after a refusal that says when to retry, before jitter: the relay's time for
/// a rate limit (at least [`MIN_RATE_LIMIT_RETRY_MS`], at most the client's own `retry_ms`, which
/// is also the wait when the relay said nothing); for any other refusal the relay's time doubled
/// with each refusal in a row, at most [`MAX_REFUSED_RETRY_MS`].
fn retry_wait(rate_limited: bool, relay_ms: u64, refusals: u32, retry_ms: u64) -> u64 {
    if rate_limited {
        return match relay_ms {
            0 => retry_ms,
            ms => ms.min(retry_ms).max(MIN_RATE_LIMIT_RETRY_MS),
        };
    }
    relay_ms.max(MIN_RATE_LIMIT_RETRY_MS).saturating_mul(1 << refusals.min(16)).min(MAX_REFUSED_RETRY_MS)
}

/// Stores a payload to send. `recipients` empty means "the conversation": its peer, or the
/// group's members now (a member added later never gets it). Returns the item's id.
pub(super) fn push_pending(
    tx: &StoreTx<'_>,
    conversation: &ConversationId,
    recipients: &[SigningPublicKey],
    content: &Content,
) -> Result<u64> {
    let (recipients, group) = match (recipients.is_empty(), conversation) {
        (false, _) => (recipients.to_vec(), false),
        (true, ConversationId::Direct(user)) => (vec![*user], false),
        (true, ConversationId::Group(id)) => {
            let members = tx.group(id)?.map(|g| g.members().into_iter().filter(|m| *m != g.me).collect());
            (members.unwrap_or_default(), true)
        }
    };
    push_payload(tx, &Payload::new(*conversation, recipients, content.to_bytes()?, group), &content.client_message_id)
}

/// One device a payload goes to alone (§16.13), and how.
pub(super) struct Target {
    /// The device's user.
    pub(super) user: SigningPublicKey,
    /// The device.
    pub(super) device: SigningPublicKey,
    /// Through the group's sender chain (the payload's conversation is the group).
    pub(super) group: bool,
    /// Sealed without a session: a retry receipt.
    pub(super) unsessioned: bool,
    /// Times the payload was sent again after retry receipts.
    pub(super) resends: u32,
}

/// Stores a payload to send to one device alone: a retry receipt, or a payload sent again after one.
pub(super) fn push_to_device(
    tx: &StoreTx<'_>,
    conversation: &ConversationId,
    message_id: &MessageId,
    target: Target,
    content: Zeroizing<Vec<u8>>,
) -> Result<u64> {
    let mut payload = Payload::new(*conversation, vec![target.user], content, target.group);
    payload.devices = vec![target.device];
    payload.unsessioned = target.unsessioned;
    payload.resends = target.resends;
    push_payload(tx, &payload, message_id)
}

fn push_payload(tx: &StoreTx<'_>, payload: &Payload, message_id: &MessageId) -> Result<u64> {
    tx.outbox_push(&OutboxItem {
        id: 0,
        conversation: payload.conversation,
        message_id: *message_id,
        frame: payload.to_entry(),
        attempts: 0,
        next_attempt_ms: 0,
    })
}

/// Sets a message's status as the outbox sees it, never undoing what receipts said: `Sent` only
/// from `Sending` (or `Failed`, a later copy having made it), `Failed` only from `Sending` or
/// `Sent`. Whether it changed.
fn set_status(tx: &StoreTx<'_>, item: &OutboxItem, status: MessageStatus) -> Result<bool> {
    let Some(m) = tx.message(&item.conversation, &item.message_id)? else { return Ok(false) };
    let from = match status {
        MessageStatus::Sent => [MessageStatus::Sending, MessageStatus::Failed],
        _ => [MessageStatus::Sending, MessageStatus::Sent],
    };
    if !from.contains(&m.status) {
        return Ok(false);
    }
    tx.set_message_status(&item.conversation, &item.message_id, status)
}

/// What one attempt at a payload encrypted, for the requests that follow its commit.
struct Attempt {
    requests: Vec<Addressed>,
    /// A fresh sender chain's distribution, queued as an item of its own: sent first.
    distribution: Option<u64>,
}

impl Client {
    /// Moves the outbox forward: payloads whose sessions are ready and whose time has come are
    /// encrypted and sent (device lists and bundles are asked for the others).
    pub(super) fn flush(&mut self, now_ms: u64) -> Result<()> {
        self.flush_outbox(now_ms, false)
    }

    /// [`flush`](Self::flush); `resend` sends every item again at once, due or not (after a
    /// reconnect the answers to the requests in flight are lost for good).
    pub(super) fn flush_outbox(&mut self, now_ms: u64, resend: bool) -> Result<()> {
        let mut items = self.outbox()?;
        items.sort_by_key(|i| i.id);
        // A conversation whose earlier item waits for its retry time holds the later ones back,
        // so the peer gets a conversation's payloads in the order they were written.
        let mut held = HashSet::new();
        for item in items {
            let due = resend || item.next_attempt_ms <= now_ms;
            let go = due && !held.contains(&item.conversation);
            if !due && !self.in_flight.contains_key(&item.id) {
                held.insert(item.conversation);
            }
            match decode_entry(&item.frame) {
                Ok(Stored::Payload(p)) => self.send_payload(&item, p, go, now_ms)?,
                Ok(Stored::Frame(frame)) if go => self.send_frame(&item, frame, now_ms)?,
                Ok(Stored::Frame(_)) => {}
                Err(_) => self.give_up(&item)?,
            }
        }
        Ok(())
    }

    fn outbox(&mut self) -> Result<Vec<OutboxItem>> {
        let tx = self.store.transaction()?;
        let items = tx.outbox_due(u64::MAX)?;
        tx.commit()?;
        Ok(items)
    }

    /// Sends a request stored as it is (same bytes at every attempt).
    fn send_frame(&mut self, item: &OutboxItem, frame: ClientFrame, now_ms: u64) -> Result<()> {
        if !self.connected || self.in_flight.contains_key(&item.id) {
            return Ok(());
        }
        let Some(body) = frame.body else { return self.give_up(item) };
        self.in_flight.entry(item.id).or_default().push(None);
        self.push(body, Pending::Outbox { id: item.id, device: None });
        let tx = self.store.transaction()?;
        tx.outbox_put(&OutboxItem {
            next_attempt_ms: now_ms.saturating_add(self.config.retry_after_ms),
            ..item.clone()
        })?;
        tx.commit()
    }

    /// Removes an outbox item that cannot be sent and marks its message failed.
    pub(super) fn give_up(&mut self, item: &OutboxItem) -> Result<()> {
        self.settle(item, MessageStatus::Failed)
    }

    /// Removes a finished outbox item and sets its message's status: `Sent` once no other copy of
    /// the message waits in the outbox, `Failed` at the first copy given up. Reports a change.
    fn settle(&mut self, item: &OutboxItem, status: MessageStatus) -> Result<()> {
        self.in_flight.remove(&item.id);
        let tx = self.store.transaction()?;
        tx.outbox_remove(item.id)?;
        let rest = status == MessageStatus::Sent
            && tx
                .outbox_due(u64::MAX)?
                .iter()
                .any(|o| o.message_id == item.message_id && o.conversation == item.conversation);
        let changed = !rest && set_status(&tx, item, status)?;
        tx.commit()?;
        if changed {
            self.backlog.push(Event::MessageStatus { conversation: item.conversation, id: item.message_id, status });
        }
        Ok(())
    }

    /// The users a payload goes to (never this user): its recipients, for a group message those
    /// still members. `None` when this user is no longer in the group.
    fn recipients_of(
        &mut self,
        conversation: &ConversationId,
        recipients: Option<&[SigningPublicKey]>,
        group: bool,
    ) -> Result<Option<Vec<SigningPublicKey>>> {
        let me = self.user_key()?;
        if !group {
            return Ok(Some(recipients.unwrap_or_default().iter().copied().filter(|r| *r != me).collect()));
        }
        let ConversationId::Group(id) = conversation else { return Ok(None) };
        let tx = self.store.transaction()?;
        let g = tx.group(id)?;
        tx.commit()?;
        let Some(g) = g.filter(|g| g.roster().is_member(&me)) else { return Ok(None) };
        let members = g.members().into_iter().filter(|m| *m != me);
        Ok(Some(match recipients {
            Some(queued) => members.filter(|m| queued.contains(m)).collect(),
            None => members.collect(),
        }))
    }

    /// One payload: asks for what its sessions lack; when `go` (its time has come, and nothing
    /// earlier in its conversation waits) and connected, encrypts it for the devices that still
    /// wait for a copy and are not in flight, and sends those requests.
    fn send_payload(&mut self, item: &OutboxItem, mut p: Payload, go: bool, now_ms: u64) -> Result<()> {
        let Some(users) = self.recipients_of(&p.conversation, p.recipients.as_deref(), p.group)? else {
            return self.give_up(item);
        };
        if !self.sessions_ready(&users, &p)? || !go || !self.connected {
            return Ok(());
        }
        let attempt = match self.encrypt_attempt(item, &mut p, &users, now_ms) {
            Ok(Some(attempt)) => attempt,
            Ok(None) => return Ok(()),
            Err(Error::Database(e)) => return Err(Error::Database(e)),
            Err(_) => return self.give_up(item),
        };
        if let Some(id) = attempt.distribution {
            let tx = self.store.transaction()?;
            let distribution = tx.outbox_item(id)?;
            tx.commit()?;
            if let Some(d) = distribution
                && let Ok(Stored::Payload(dp)) = decode_entry(&d.frame)
            {
                self.send_payload(&d, dp, true, now_ms)?;
            }
        }
        for request in attempt.requests {
            let device = request.device;
            self.in_flight.entry(item.id).or_default().push(Some(device));
            self.push(request.into_request(false), Pending::Outbox { id: item.id, device: Some(device) });
        }
        Ok(())
    }

    /// Whether every device of `users` the payload goes to (and, for a payload synced to this
    /// user's other devices, those) has a session; asks the relay for the device lists and bundles
    /// missing. A pending identity change waits for the user. A payload sent without a session
    /// needs the device lists only.
    fn sessions_ready(&mut self, users: &[SigningPublicKey], p: &Payload) -> Result<bool> {
        let synced = sent_sync::is_synced(&p.content);
        let needs_session = |d: &DeviceKeys| !p.unsessioned && p.targets(&d.device_key());
        let me = self.user_key()?;
        let this_device = self.device_key();
        let tx = self.store.transaction()?;
        let mut missing_lists = Vec::new();
        let mut missing_bundles = Vec::new();
        let mut blocked = false;
        for user in users {
            match tx.peer(user)? {
                None => missing_lists.push(*user),
                Some(peer) => {
                    blocked |= peer.pending_identity_change().is_some();
                    let without = peer.devices_without_session(None).into_iter().filter(needs_session);
                    missing_bundles.extend(without.map(|d| (*user, d)));
                }
            }
        }
        if synced && let Some(own) = tx.peer(&me)? {
            let without = own.devices_without_session(Some(&this_device)).into_iter().filter(needs_session);
            missing_bundles.extend(without.map(|d| (me, d)));
        }
        tx.commit()?;
        for user in &missing_lists {
            self.request_device_list(*user);
        }
        for (user, device) in &missing_bundles {
            self.request_bundle(*user, device.device_key());
        }
        Ok(!blocked && missing_lists.is_empty() && missing_bundles.is_empty())
    }

    /// Encrypts a payload, in one transaction with the ratchet or chain steps, for every device of
    /// `users` that has no copy and none in flight (a group message through the group's chain, a
    /// fresh chain's distribution queued first), and for this user's other devices as a sent sync.
    /// Settles the item when no copy is left to send or wait for. `None`: nothing to send now.
    fn encrypt_attempt(
        &mut self,
        item: &OutboxItem,
        p: &mut Payload,
        users: &[SigningPublicKey],
        now_ms: u64,
    ) -> Result<Option<Attempt>> {
        let me = self.user_key()?;
        let this_device = self.device_key();
        let flying: Vec<Option<SigningPublicKey>> = self.in_flight.get(&item.id).cloned().unwrap_or_default();
        let waits = |d: &DeviceKeys| {
            p.targets(&d.device_key())
                && !p.delivered.contains(&d.device_key())
                && !flying.contains(&Some(d.device_key()))
        };
        let tx = self.store.transaction()?;
        let mut peers = Vec::new();
        for user in users {
            peers.push(tx.peer(user)?.ok_or(Error::NoSession)?);
        }
        let mut own = match sent_sync::is_synced(&p.content) {
            true => tx.peer(&me)?.filter(|o| o.device_list().devices().len() > 1),
            false => None,
        };
        let targets: Vec<(usize, DeviceKeys)> = peers
            .iter()
            .enumerate()
            .flat_map(|(i, peer)| peer.device_list().devices().iter().filter(|d| waits(d)).map(move |d| (i, *d)))
            .collect();
        let own_targets: Vec<DeviceKeys> = own
            .as_ref()
            .map(|o| {
                o.device_list()
                    .devices()
                    .iter()
                    .filter(|d| d.device_key() != this_device && waits(d))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let peers_done = peers.iter().all(|peer| {
            peer.device_list()
                .devices()
                .iter()
                .all(|d| !p.targets(&d.device_key()) || p.delivered.contains(&d.device_key()))
        });
        if targets.is_empty() && own_targets.is_empty() {
            tx.commit()?;
            // Nothing to send: every copy taken (a group of one), or the rest in flight.
            match flying.is_empty() {
                true => self.settle(item, MessageStatus::Sent)?,
                false if peers_done => self.mark_sent(item)?,
                false => {}
            }
            return Ok(None);
        }
        let mut c = ctx!(self);
        let mut attempt = Attempt { requests: Vec::new(), distribution: None };
        if p.group && !targets.is_empty() {
            let ConversationId::Group(id) = p.conversation else { return Err(Error::NotGroupMember) };
            let mut g = tx.group(&id)?.ok_or(Error::NotGroupMember)?;
            let send = g.encrypt(c.rng, &p.content, now_ms)?;
            if let Some(distribution) = send.distribution {
                // A fresh chain goes to every member, even when this payload goes to a few (a
                // message sent again after a retry receipt): they all need it for what follows.
                let members: Vec<SigningPublicKey> = g.members().into_iter().filter(|m| *m != me).collect();
                let body = ContentBody::SenderKeyDistribution(SecretBytes::new(distribution));
                let content = Content::new(c.rng, now_ms, body);
                attempt.distribution = Some(push_pending(&tx, &p.conversation, &members, &content)?);
            }
            let copy = SentCopy {
                conversation: p.conversation,
                message_id: item.message_id,
                recipient: me,
                content: p.content.clone(),
                session: None,
                resends: p.resends,
                sent_at_ms: now_ms,
            };
            tx.sent_log_put(&retry_receipt::group_log_slot(), &Sha256::digest(&send.message).into(), &copy)?;
            for (i, device) in &targets {
                let token = peers.get(*i).map(|peer| token_of(&tx, &peer.user_key())).transpose()?.flatten();
                let envelope = seal(&mut c, device, InnerKind::Group, &send.message)?;
                attempt.requests.push(Addressed { device: device.device_key(), token, envelope });
            }
            tx.put_group(&g)?;
        } else if p.unsessioned {
            for (i, device) in &targets {
                let token = peers.get(*i).map(|peer| token_of(&tx, &peer.user_key())).transpose()?.flatten();
                let envelope = seal(&mut c, device, InnerKind::Plaintext, &p.content)?;
                attempt.requests.push(Addressed { device: device.device_key(), token, envelope });
            }
        } else {
            for (i, device) in &targets {
                let peer = peers.get_mut(*i).ok_or(Error::Internal("outbox peer"))?;
                let message = peer.encrypt_to(c.rng, &p.content, &device.device_key())?;
                log_copy(&tx, item, p, (peer, device), &message, now_ms)?;
                let token = token_of(&tx, &peer.user_key())?;
                let envelope = seal(&mut c, device, InnerKind::Session, &message)?;
                attempt.requests.push(Addressed { device: device.device_key(), token, envelope });
            }
        }
        if let Some(own) = own.as_mut()
            && !own_targets.is_empty()
            && let Some(sync) = sent_sync::wrap(c.rng, &p.conversation, &p.content, now_ms)
        {
            // Sealed with the own token, which every device of the user registers: an authenticated
            // Send beside the sealed copies would tell the relay who sent them (§16.8).
            let token = c.token.map(|t| t.to_bytes().to_vec());
            for device in &own_targets {
                let message = own.encrypt_to(c.rng, &sync, &device.device_key())?;
                log_copy(&tx, item, p, (own, device), &message, now_ms)?;
                let envelope = seal(&mut c, device, InnerKind::Session, &message)?;
                attempt.requests.push(Addressed { device: device.device_key(), token: token.clone(), envelope });
            }
            tx.put_peer(own)?;
        }
        for peer in &peers {
            tx.put_peer(peer)?;
        }
        // The recipients fixed at the first attempt (a version-1 group message), and the time of
        // the next one should the answers never come.
        p.recipients.get_or_insert_with(|| users.to_vec());
        let next_attempt_ms = now_ms.saturating_add(self.config.retry_after_ms);
        tx.outbox_put(&OutboxItem { frame: p.to_entry(), next_attempt_ms, ..item.clone() })?;
        tx.commit()?;
        self.refused_now.remove(&item.id);
        if peers_done {
            // No peer device to tell (a group of one): as sent as it gets.
            self.mark_sent(item)?;
        }
        Ok(Some(attempt))
    }

    /// The relay took every peer device's copy (own devices' sent syncs may still wait): `Sent`.
    fn mark_sent(&mut self, item: &OutboxItem) -> Result<()> {
        let tx = self.store.transaction()?;
        let changed = set_status(&tx, item, MessageStatus::Sent)?;
        tx.commit()?;
        if changed {
            let (conversation, id) = (item.conversation, item.message_id);
            self.backlog.push(Event::MessageStatus { conversation, id, status: MessageStatus::Sent });
        }
        Ok(())
    }

    /// Queues a payload (not kept in history) for everyone in the conversation.
    pub(super) fn queue(&mut self, conversation: &ConversationId, content: Content, now_ms: u64) -> Result<()> {
        let tx = self.store.transaction()?;
        push_pending(&tx, conversation, &[], &content)?;
        tx.commit()?;
        self.flush(now_ms)
    }

    /// Queues a payload for the given users over 1:1 sessions.
    pub(super) fn queue_to(
        &mut self,
        conversation: &ConversationId,
        users: Vec<SigningPublicKey>,
        content: Content,
        now_ms: u64,
    ) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let tx = self.store.transaction()?;
        push_pending(&tx, conversation, &users, &content)?;
        tx.commit()?;
        self.flush(now_ms)
    }

    /// Encrypts and sends an online-only payload (typing) to the conversation's peers that have
    /// sessions; never stored in the outbox.
    pub(super) fn send_online_only(&mut self, conversation: &ConversationId, content: &Content) -> Result<()> {
        if !self.connected {
            return Ok(());
        }
        let users = match conversation {
            ConversationId::Direct(user) => vec![*user],
            ConversationId::Group(_) => self.recipients_of(conversation, None, true)?.unwrap_or_default(),
        };
        let plaintext = content.to_bytes()?;
        let tx = self.store.transaction()?;
        let mut c = ctx!(self);
        let mut requests = Vec::new();
        for user in users {
            let Some(mut peer) = tx.peer(&user)? else { continue };
            if peer.pending_identity_change().is_some() || !peer.devices_without_session(None).is_empty() {
                continue;
            }
            requests.extend(encrypt_for(&mut c, &tx, &mut peer, &plaintext)?);
            tx.put_peer(&peer)?;
        }
        tx.commit()?;
        for request in requests {
            self.push(request.into_request(true), Pending::Fire);
        }
        Ok(())
    }

    /// The relay answered the request carrying item `id`'s copy for `device` (`None`: a frame
    /// stored as it is): taken, refused for now (again at the time the relay said, with backoff
    /// and jitter, encrypted anew), or given up.
    pub(super) fn on_send_answer(
        &mut self,
        id: u64,
        device: Option<SigningPublicKey>,
        error: Option<i32>,
        retry_after_ms: u64,
        now_ms: u64,
    ) -> Result<()> {
        if let Some(flying) = self.in_flight.get_mut(&id) {
            flying.retain(|d| *d != device);
            if flying.is_empty() {
                self.in_flight.remove(&id);
            }
        }
        let tx = self.store.transaction()?;
        let item = tx.outbox_item(id)?;
        tx.commit()?;
        let Some(item) = item else { return Ok(()) };
        let stored = match decode_entry(&item.frame) {
            Ok(stored) => stored,
            Err(_) => return self.give_up(&item),
        };
        match (error, stored, device) {
            (None, Stored::Payload(p), Some(device)) => self.on_copy_taken(item, p, device, now_ms),
            (None, _, _) => self.settle(&item, MessageStatus::Sent),
            (Some(code), stored, _) => {
                let p = match stored {
                    Stored::Payload(p) => Some(p),
                    Stored::Frame(_) => None,
                };
                self.on_refused(item, p, code, retry_after_ms, now_ms)
            }
        }
    }

    /// The relay took one device's copy: recorded; the item is done when no device waits.
    fn on_copy_taken(&mut self, item: OutboxItem, mut p: Payload, device: SigningPublicKey, now_ms: u64) -> Result<()> {
        if !p.delivered.contains(&device) {
            p.delivered.push(device);
        }
        p.refusals = 0;
        let mut next_attempt_ms = item.next_attempt_ms;
        if !self.in_flight.contains_key(&item.id) && !self.refused_now.contains(&item.id) {
            // The last answer of the attempt, and no refusal set a time: what still waits (a
            // device listed meanwhile) goes at the next flush.
            next_attempt_ms = now_ms;
        }
        let item = OutboxItem { frame: p.to_entry(), next_attempt_ms, ..item };
        let tx = self.store.transaction()?;
        tx.outbox_put(&item)?;
        tx.commit()?;
        if !self.in_flight.contains_key(&item.id) {
            // Settles it (every copy taken) or marks it Sent (only sent syncs left), or sends the rest.
            return self.send_payload(&item, p, next_attempt_ms <= now_ms, now_ms);
        }
        Ok(())
    }

    /// The relay refused a copy. With a time to retry (a rate limit, a full mailbox, its own
    /// trouble) the item waits until then, without counting as a failure: the next attempt
    /// encrypts anew, so the refused ciphertext is never sent. A refusal that waiting cannot fix
    /// gives the payload up (Failed); any other counts, up to `max_attempts`.
    fn on_refused(
        &mut self,
        mut item: OutboxItem,
        p: Option<Payload>,
        code: i32,
        retry_after_ms: u64,
        now_ms: u64,
    ) -> Result<()> {
        let rate_limited = code == relay::ErrorCode::RateLimited as i32;
        if is_permanent(code) {
            return self.give_up(&item);
        }
        if !rate_limited && retry_after_ms == 0 {
            // An older relay's refusal without a time: counted; the next attempt time stands.
            item.attempts = item.attempts.saturating_add(1);
            if item.attempts >= self.config.max_attempts {
                return self.give_up(&item);
            }
            let tx = self.store.transaction()?;
            tx.outbox_put(&item)?;
            return tx.commit();
        }
        // Several copies of one attempt refused: the first sets the time and counts for the backoff.
        if !self.refused_now.insert(item.id) {
            return Ok(());
        }
        let refusals = p.as_ref().map_or(0, |p| p.refusals);
        let wait = retry_wait(rate_limited, retry_after_ms, refusals, self.config.retry_after_ms);
        // Up to half again at random, so the retries of many items and devices spread out.
        let jitter = rand_core::RngCore::next_u64(&mut self.rng) % (wait / 2 + 1);
        item.next_attempt_ms = now_ms.saturating_add(wait).saturating_add(jitter);
        if let Some(mut p) = p {
            p.refusals = p.refusals.saturating_add(1);
            item.frame = p.to_entry();
        }
        let tx = self.store.transaction()?;
        tx.outbox_put(&item)?;
        tx.commit()
    }
}

/// Logs a 1:1 copy just encrypted for `device` of `peer` (§16.13): what a retry receipt naming it
/// sends again, with the session it was encrypted in.
fn log_copy(
    tx: &StoreTx<'_>,
    item: &OutboxItem,
    p: &Payload,
    (peer, device): (&PeerUser, &DeviceKeys),
    message: &[u8],
    now_ms: u64,
) -> Result<()> {
    let copy = SentCopy {
        conversation: p.conversation,
        message_id: item.message_id,
        recipient: peer.user_key(),
        content: p.content.clone(),
        session: peer.session_id(&device.device_key()),
        resends: p.resends,
        sent_at_ms: now_ms,
    };
    tx.sent_log_put(device.device_key().as_bytes(), &Sha256::digest(message).into(), &copy)
}

/// 1:1-encrypts and seals `plaintext` for every device of `peer`.
pub(super) fn encrypt_for(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    peer: &mut PeerUser,
    plaintext: &[u8],
) -> Result<Vec<Addressed>> {
    let token = token_of(tx, &peer.user_key())?;
    let mut out = Vec::new();
    for m in peer.encrypt(c.rng, plaintext, None)? {
        let keys = *peer.device_list().device(&m.device)?;
        let envelope = seal(c, &keys, InnerKind::Session, &m.message)?;
        out.push(Addressed { device: m.device, token: token.clone(), envelope });
    }
    Ok(out)
}

pub(super) fn seal(c: &mut Ctx<'_>, recipient: &DeviceKeys, kind: InnerKind, inner: &[u8]) -> Result<Vec<u8>> {
    let state = SenderState::new(c.list_version, c.token.cloned());
    sealed_sender::seal(c.rng, &c.me, &state, c.identity, recipient, kind, inner)
}

/// The delivery token of `user`: the latest its sealed envelopes carried, else the one its contact
/// link gave (§9.5). `None`: the envelope goes in an authenticated `Send`.
fn token_of(tx: &StoreTx<'_>, user: &SigningPublicKey) -> Result<Option<Vec<u8>>> {
    if let Some(token) = tx.peer(user)?.and_then(|p| p.delivery_token().cloned()) {
        return Ok(Some(token.to_bytes().to_vec()));
    }
    Ok(tx.contact(user)?.and_then(|c| c.delivery_token).map(|t| t.to_bytes().to_vec()))
}
