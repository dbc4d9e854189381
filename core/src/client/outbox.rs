//! The outbox (docs/PROTOCOL.md §15, §16): payloads waiting until every recipient device has a
//! session, their encryption, and the requests to the relay, each kept until the relay
//! acknowledges it.

use prost::Message as _;

use super::{Client, Ctx, Event, Pending, RELAY_PROTOCOL_VERSION, ctx, sent_sync};
use crate::content::{Content, ContentBody, SecretBytes};
use crate::crypto::{DeviceKeys, SigningPublicKey};
use crate::error::{Error, Result};
use crate::peer::PeerUser;
use crate::sealed_sender::{self, InnerKind};
use crate::store::{ConversationId, MessageStatus, OutboxItem, StoreTx};
use crate::wire::client::{OutboxEntry, PendingContent, outbox_entry::Entry};
use crate::wire::relay::{self as relay, ClientFrame, client_frame::Body as Req};

const OUTBOX_VERSION: u32 = 1;

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
    fn into_request(self, online_only: bool) -> Req {
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
    Frame(ClientFrame),
    Pending { conversation: ConversationId, recipients: Vec<SigningPublicKey>, content: Vec<u8>, group: bool },
}

fn decode_entry(bytes: &[u8]) -> Result<Stored> {
    let entry: OutboxEntry = crate::wire::decode(bytes, MAX_OUTBOX_ENTRY_BYTES, "outbox entry")?;
    crate::wire::check_version("outbox entry", entry.version, OUTBOX_VERSION)?;
    match &entry.entry {
        Some(Entry::Frame(frame)) => {
            Ok(Stored::Frame(crate::wire::decode(frame, MAX_OUTBOX_ENTRY_BYTES, "outbox frame")?))
        }
        Some(Entry::Pending(p)) => Ok(Stored::Pending {
            conversation: ConversationId::from_bytes(&p.conversation)?,
            recipients: p
                .recipients
                .iter()
                .map(|r| SigningPublicKey::from_slice(r, "outbox recipient"))
                .collect::<Result<_>>()?,
            content: p.content.clone(),
            group: p.group_message,
        }),
        None => Err(Error::Malformed { what: "outbox entry" }),
    }
}

pub(super) fn frame_entry(body: Req) -> Vec<u8> {
    let frame = ClientFrame { version: RELAY_PROTOCOL_VERSION, request_id: 0, body: Some(body) };
    OutboxEntry { version: OUTBOX_VERSION, entry: Some(Entry::Frame(frame.encode_to_vec())) }.encode_to_vec()
}

/// The soonest a send refused for the rate is tried again, whatever the relay says (ms).
const MIN_RATE_LIMIT_RETRY_MS: u64 = 250;

/// Error codes after which resending the same request cannot succeed.
fn is_permanent(code: i32) -> bool {
    use relay::ErrorCode as C;
    [C::Malformed, C::UnsupportedVersion, C::BadSignature, C::TooLarge, C::NotFound, C::Forbidden]
        .iter()
        .any(|c| *c as i32 == code)
}

/// Stores a payload to send once every recipient device has a session. `recipients` empty means
/// "the conversation": its peer, or the group's members with the group's sender chain.
pub(super) fn push_pending(
    tx: &StoreTx<'_>,
    conversation: &ConversationId,
    recipients: &[SigningPublicKey],
    content: &Content,
) -> Result<()> {
    let (recipients, group) = match (recipients.is_empty(), conversation) {
        (false, _) => (recipients.to_vec(), false),
        (true, ConversationId::Direct(user)) => (vec![*user], false),
        (true, ConversationId::Group(_)) => (Vec::new(), true),
    };
    let pending = PendingContent {
        conversation: conversation.to_bytes(),
        recipients: recipients.iter().map(|r| r.to_bytes().to_vec()).collect(),
        content: content.to_bytes()?.to_vec(),
        group_message: group,
    };
    let entry = OutboxEntry { version: OUTBOX_VERSION, entry: Some(Entry::Pending(pending)) };
    tx.outbox_push(&OutboxItem {
        id: 0,
        conversation: *conversation,
        message_id: content.client_message_id,
        frame: entry.encode_to_vec(),
        attempts: 0,
        next_attempt_ms: 0,
    })?;
    Ok(())
}

impl Client {
    /// Moves the outbox forward: encrypts payloads whose sessions are ready (fetching device lists
    /// and bundles for the others), then sends the requests that are due.
    pub(super) fn flush(&mut self, now_ms: u64) -> Result<()> {
        self.flush_outbox(now_ms, false)
    }

    /// [`flush`](Self::flush); `resend` sends every request again, due or not (after a reconnect
    /// the answers to the requests in flight are lost for good).
    pub(super) fn flush_outbox(&mut self, now_ms: u64, resend: bool) -> Result<()> {
        // First the payloads waiting for sessions, then (reading again) the requests due.
        for item in self.outbox()? {
            match decode_entry(&item.frame) {
                Ok(Stored::Pending { conversation, recipients, content, group }) => {
                    self.try_encrypt(&item, &conversation, recipients, &content, group, now_ms)?;
                }
                Ok(Stored::Frame(_)) => {}
                Err(_) => self.give_up(&item)?,
            }
        }
        let mut due = Vec::new();
        for item in self.outbox()? {
            if let (Ok(Stored::Frame(frame)), true) =
                (decode_entry(&item.frame), resend || item.next_attempt_ms <= now_ms)
            {
                due.push((item.id, frame));
            }
        }
        if !self.connected {
            return Ok(());
        }
        let mut sent = Vec::new();
        for (id, frame) in due {
            if self.in_flight.contains(&id) {
                continue;
            }
            if let Some(body) = frame.body {
                self.in_flight.insert(id);
                self.push(body, Pending::Outbox { id });
                sent.push(id);
            }
        }
        if !sent.is_empty() {
            let tx = self.store.transaction()?;
            for id in sent {
                tx.outbox_mark_attempt(id, now_ms.saturating_add(self.config.retry_after_ms))?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn outbox(&mut self) -> Result<Vec<OutboxItem>> {
        let tx = self.store.transaction()?;
        let items = tx.outbox_due(u64::MAX)?;
        tx.commit()?;
        Ok(items)
    }

    /// Removes an outbox item that cannot be sent and marks its message failed.
    pub(super) fn give_up(&mut self, item: &OutboxItem) -> Result<()> {
        self.settle(item, MessageStatus::Failed)
    }

    /// Removes a finished outbox item and sets its message's status: `Sent` once no other copy of
    /// the message waits in the outbox, `Failed` at the first copy given up. Reports a change.
    fn settle(&mut self, item: &OutboxItem, status: MessageStatus) -> Result<()> {
        let tx = self.store.transaction()?;
        tx.outbox_remove(item.id)?;
        let rest = status == MessageStatus::Sent
            && tx
                .outbox_due(u64::MAX)?
                .iter()
                .any(|o| o.message_id == item.message_id && o.conversation == item.conversation);
        let changed = !rest && tx.set_message_status(&item.conversation, &item.message_id, status)?;
        tx.commit()?;
        if changed {
            self.backlog.push(Event::MessageStatus { conversation: item.conversation, id: item.message_id, status });
        }
        Ok(())
    }

    /// The users a pending payload goes to (never this user).
    fn recipients_of(
        &mut self,
        conversation: &ConversationId,
        recipients: Vec<SigningPublicKey>,
        group: bool,
    ) -> Result<Option<Vec<SigningPublicKey>>> {
        let me = self.user_key()?;
        if !group {
            return Ok(Some(recipients.into_iter().filter(|r| *r != me).collect()));
        }
        let ConversationId::Group(id) = conversation else { return Ok(None) };
        let tx = self.store.transaction()?;
        let g = tx.group(id)?;
        tx.commit()?;
        Ok(g.filter(|g| g.roster().is_member(&me)).map(|g| g.members().into_iter().filter(|m| *m != me).collect()))
    }

    /// Encrypts one pending payload if every recipient device has a session; otherwise asks the
    /// relay for what is missing.
    fn try_encrypt(
        &mut self,
        item: &OutboxItem,
        conversation: &ConversationId,
        recipients: Vec<SigningPublicKey>,
        content: &[u8],
        group: bool,
        now_ms: u64,
    ) -> Result<()> {
        let Some(users) = self.recipients_of(conversation, recipients, group)? else {
            return self.give_up(item);
        };
        // Ready? (The user's own other devices too, when this payload is synced to them.)
        let me = self.user_key()?;
        let this_device = self.device_key();
        let syncs = sent_sync::is_synced(content);
        let tx = self.store.transaction()?;
        let mut missing_lists = Vec::new();
        let mut missing_bundles = Vec::new();
        let mut blocked = false;
        for user in &users {
            match tx.peer(user)? {
                None => missing_lists.push(*user),
                Some(peer) => {
                    blocked |= peer.pending_identity_change().is_some();
                    missing_bundles.extend(peer.devices_without_session(None).into_iter().map(|d| (*user, d)));
                }
            }
        }
        if syncs && let Some(own) = tx.peer(&me)? {
            missing_bundles.extend(own.devices_without_session(Some(&this_device)).into_iter().map(|d| (me, d)));
        }
        tx.commit()?;
        if blocked {
            return Ok(());
        }
        if !missing_lists.is_empty() || !missing_bundles.is_empty() {
            for user in missing_lists {
                self.request_device_list(user);
            }
            for (user, device) in missing_bundles {
                self.request_bundle(user, device.device_key());
            }
            return Ok(());
        }
        match self.encrypt_pending(item, conversation, &users, content, group, now_ms) {
            Ok(()) => Ok(()),
            Err(Error::Database(e)) => Err(Error::Database(e)),
            Err(_) => self.give_up(item),
        }
    }

    /// Encrypts a payload for every device of `users` (and, for a group message, with the group's
    /// chain, distributing a fresh chain first), replacing the pending item by one request per
    /// device, in one transaction.
    fn encrypt_pending(
        &mut self,
        item: &OutboxItem,
        conversation: &ConversationId,
        users: &[SigningPublicKey],
        content: &[u8],
        group: bool,
        now_ms: u64,
    ) -> Result<()> {
        self.user()?;
        let tx = self.store.transaction()?;
        let mut peers = Vec::new();
        for user in users {
            peers.push(tx.peer(user)?.ok_or(Error::NoSession)?);
        }
        let mut requests = Vec::new();
        if group {
            let ConversationId::Group(id) = conversation else { return Err(Error::NotGroupMember) };
            let mut g = tx.group(id)?.ok_or(Error::NotGroupMember)?;
            let mut c = ctx!(self);
            let send = g.encrypt(c.rng, content)?;
            if let Some(distribution) = send.distribution {
                let body = ContentBody::SenderKeyDistribution(SecretBytes::new(distribution));
                let dist = Content::new(c.rng, now_ms, body).to_bytes()?;
                for peer in &mut peers {
                    requests.extend(encrypt_for(&mut c, &tx, peer, &dist)?);
                }
            }
            for peer in &peers {
                let token = token_of(&tx, &peer.user_key())?;
                for device in peer.device_list().devices() {
                    let envelope = seal(&mut c, device, InnerKind::Group, &send.message)?;
                    requests.push(Addressed { device: device.device_key(), token: token.clone(), envelope });
                }
            }
            tx.put_group(&g)?;
        } else {
            let mut c = ctx!(self);
            for peer in &mut peers {
                requests.extend(encrypt_for(&mut c, &tx, peer, content)?);
            }
        }
        for peer in &peers {
            tx.put_peer(peer)?;
        }
        // The sent sync, for this user's other devices. Its requests carry their own id, so their
        // fate never changes the message's status.
        let synced = sent_sync::wrap(&mut ctx!(self), &tx, conversation, content, now_ms)?;
        tx.outbox_remove(item.id)?;
        if !synced.is_empty() {
            let mut sync_id = [0u8; crate::content::CLIENT_MESSAGE_ID_LEN];
            rand_core::RngCore::fill_bytes(&mut self.rng, &mut sync_id);
            for request in synced {
                tx.outbox_push(&OutboxItem {
                    id: 0,
                    conversation: item.conversation,
                    message_id: sync_id,
                    frame: frame_entry(request.into_request(false)),
                    attempts: 0,
                    next_attempt_ms: 0,
                })?;
            }
        }
        for request in requests {
            tx.outbox_push(&OutboxItem {
                id: 0,
                conversation: item.conversation,
                message_id: item.message_id,
                frame: frame_entry(request.into_request(false)),
                attempts: 0,
                next_attempt_ms: 0,
            })?;
        }
        if users.is_empty() {
            // Nobody else to tell (a group of one): the message is as sent as it gets.
            tx.set_message_status(conversation, &item.message_id, MessageStatus::Sent)?;
        }
        tx.commit()?;
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
            ConversationId::Group(_) => self.recipients_of(conversation, Vec::new(), true)?.unwrap_or_default(),
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

    /// The relay answered a send: done, or retried later, or given up.
    pub(super) fn on_send_answer(
        &mut self,
        id: u64,
        error: Option<i32>,
        retry_after_ms: u64,
        now_ms: u64,
    ) -> Result<()> {
        self.in_flight.remove(&id);
        let tx = self.store.transaction()?;
        let Some(item) = tx.outbox_item(id)? else {
            tx.commit()?;
            return Ok(());
        };
        tx.commit()?;
        match error {
            None => self.settle(&item, MessageStatus::Sent),
            Some(code) if code == relay::ErrorCode::RateLimited as i32 => {
                // Not a failure: the relay sets the pace. Again when it says (or after the usual
                // wait if it did not), plus up to half of that at random so the retries of many
                // items and devices spread out; the refused attempt does not count.
                let wait = match retry_after_ms {
                    0 => self.config.retry_after_ms,
                    ms => ms.min(self.config.retry_after_ms).max(MIN_RATE_LIMIT_RETRY_MS),
                };
                let jitter = rand_core::RngCore::next_u64(&mut self.rng) % (wait / 2 + 1);
                let tx = self.store.transaction()?;
                tx.outbox_retry_at(id, now_ms.saturating_add(wait).saturating_add(jitter))?;
                tx.commit()?;
                Ok(())
            }
            Some(code) if is_permanent(code) || item.attempts >= self.config.max_attempts => self.give_up(&item),
            Some(_) => {
                // Rate limited, quota, relay trouble: the retry time set when it was sent stands.
                Ok(())
            }
        }
    }
}

/// 1:1-encrypts and seals `plaintext` for every device of `peer`.
fn encrypt_for(c: &mut Ctx<'_>, tx: &StoreTx<'_>, peer: &mut PeerUser, plaintext: &[u8]) -> Result<Vec<Addressed>> {
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
    sealed_sender::seal(c.rng, &c.me, c.identity, recipient, kind, inner)
}

/// The delivery token of `user`, when they are a contact who gave one.
fn token_of(tx: &StoreTx<'_>, user: &SigningPublicKey) -> Result<Option<Vec<u8>>> {
    Ok(tx.contact(user)?.and_then(|c| c.delivery_token).map(|t| t.to_bytes().to_vec()))
}
