//! The client state machine (DESIGN.md "Client API"): sans-IO, over the encrypted [`Store`].
//!
//! A [`Client`] turns user actions into frames for the relay and frames from the relay into
//! [`Event`]s and store updates. It owns no socket, thread or clock: the transport (hush-relay's
//! client module natively, the browser WebSocket in hush-wasm) moves the frames and passes the time.
//!
//! ```text
//!   transport ──ServerFrame──▶ handle_incoming(frame, now) ──▶ Vec<Event>
//!   app ──send_text / react / create_group / …──▶ Client
//!   transport ◀──ClientFrame── take_outgoing()
//! ```
//!
//! - **One transaction per envelope.** Opening, decrypting, the session update, the history insert,
//!   receipts to send and the mark of the relay's message id commit together; the relay's ack goes
//!   out only after that commit. A message id seen before is acked again and reported no more.
//! - **The outbox.** A message is stored (history + outbox) before it is encrypted or sent. Its
//!   payload waits there until every recipient device has a session; then it is encrypted once, in
//!   one transaction with the ratchet step, into one relay request per recipient device, each kept
//!   until the relay acknowledges it and resent (the same bytes) after a reconnect. A resend the
//!   relay took twice is a `DuplicateMessage` for the recipient, who acks and drops it.
//! - **Sealed by default.** Every payload travels in a sealed-sender envelope. When the recipient's
//!   delivery token is known (from their contact link) the request is a `SealedSend` and the relay
//!   does not learn the sender; otherwise an authenticated `Send` carries the same envelope.
//! - **Contacts.** A message from a user who is not a contact makes them a *requested* contact and
//!   waits as a [`Event::MessageRequest`]; a blocked contact's messages are acked and dropped.
//!
//! - **Several devices per user.** A new device starts with [`Client::create_for_link`] and shows
//!   [`Client::link_request`] (`hush://link/…`); an existing device approves it with
//!   [`Client::link_device`] (see [`linking`](self::linking)). What one device sends also goes to
//!   the user's other devices as a sent sync, so every device shows the same history.
//!
//! Not yet: relays other than the user's own (contacts must share it), signed-prekey rotation.

mod contact_link;
mod event;
pub mod hex_id;
mod incoming;
mod linking;
mod outgoing;
pub mod view;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod test_relay;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};

use crate::account::Account;
use crate::content::{AttachmentPointer, Content, ContentBody, MessageId, ReceiptKind};
use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::group::{Group, GroupId, RosterAction};
use crate::identity::{DeviceIdentity, UserIdentity};
use crate::pqxdh::SessionConfig;
use crate::safety_number::SafetyNumber;
use crate::store::{
    Contact, ContactState, Conversation, ConversationId, HistoryCursor, MessageStatus, Store, StoredMessage,
};
use crate::wire::relay::{self as relay, ClientFrame, ServerFrame, client_frame::Body as Req};

pub use contact_link::{CONTACT_LINK_PREFIX, ContactLink, MAX_CONTACT_LINK_BYTES};
pub use event::Event;
pub use linking::MAX_LINKED_CONTACTS;
// Defined with the other limits; re-exported where the frames are built.
pub use crate::limits::RELAY_PROTOCOL_VERSION;

/// What a device signs to authenticate to a relay, before the challenge's bytes.
pub const RELAY_AUTH_CONTEXT: &[u8] = b"hush/relay-auth/v1";

/// The largest server frame [`Client::handle_incoming`] decodes.
pub const MAX_SERVER_FRAME_BYTES: usize = 1024 * 1024;

const SETTING_DELIVERY_TOKEN: &str = "client/delivery-token";
const SETTING_DEVICE_LIST: &str = "client/device-list";
const SETTING_PROFILE: &str = "client/profile";
/// Only on a device waiting to be linked: its encoded [`LinkRequest`](crate::link::LinkRequest).
const SETTING_LINK_REQUEST: &str = "client/link-request";

/// How a client behaves. [`ClientConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The relay this account lives on (put into the contact link).
    pub relay_url: String,
    /// The name suggested to contacts in the link.
    pub display_name: String,
    /// Session setup options (post-quantum required by default).
    pub session: SessionConfig,
    /// Keep at least this many one-time prekeys of each kind on the relay.
    pub min_prekeys: u32,
    /// Upload this many at a time when below the minimum.
    pub prekey_batch: u32,
    /// Wait this long (ms) for the relay's answer to a send before sending it again.
    pub retry_after_ms: u64,
    /// Give a send up (status Failed) after this many attempts the relay refused.
    pub max_attempts: u32,
    /// Send delivery receipts for messages from accepted contacts.
    pub delivery_receipts: bool,
}

impl ClientConfig {
    /// Defaults for an account on `relay_url`.
    pub fn new(relay_url: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            relay_url: relay_url.into(),
            display_name: display_name.into(),
            session: SessionConfig::default(),
            min_prekeys: 10,
            prekey_batch: 20,
            retry_after_ms: 30_000,
            max_attempts: 5,
            delivery_receipts: true,
        }
    }
}

/// What encrypting needs, borrowed from a [`Client`] beside an open store transaction.
struct Ctx<'a> {
    rng: &'a mut ChaCha20Rng,
    identity: &'a DeviceIdentity,
    me: SigningPublicKey,
    config: &'a ClientConfig,
}

/// Borrows a [`Ctx`] from the client's fields (not from the store, which a transaction holds).
macro_rules! ctx {
    ($client:expr) => {
        $crate::client::Ctx {
            rng: &mut $client.rng,
            identity: &$client.identity,
            me: $client.user.as_ref().ok_or($crate::error::Error::NotLinked)?.user_key(),
            config: &$client.config,
        }
    };
}
use ctx;

/// What an outstanding request was for.
#[derive(Clone, Debug)]
enum Pending {
    Auth,
    Setup,
    PrekeyCounts,
    PublishOneTime,
    FetchList(SigningPublicKey),
    FetchBundle { user: SigningPublicKey, device: SigningPublicKey },
    Outbox { id: u64 },
    UploadToken,
    Fire,
}

/// The sans-IO client. See the [module docs](self).
pub struct Client {
    store: Store,
    rng: ChaCha20Rng,
    config: ClientConfig,
    identity: DeviceIdentity,
    /// `None` only while this device waits to be linked (then `token` is `None` too).
    user: Option<UserIdentity>,
    /// Cached copy of the stored account; replaced only after a commit that stored a change.
    account: Account,
    token: Option<DeliveryToken>,
    // In memory only; rebuilt after a restart or reconnect.
    connected: bool,
    next_request_id: u64,
    pending: HashMap<u64, Pending>,
    outgoing: Vec<ClientFrame>,
    fetching_lists: HashSet<SigningPublicKey>,
    fetching_bundles: HashSet<SigningPublicKey>,
    in_flight: HashSet<u64>,
    /// Envelopes that wait for a device list or a sender-key distribution (not acked).
    parked: Vec<relay::Envelope>,
    replenishing: bool,
    /// Events produced outside `handle_incoming` (a send given up), returned by its next call.
    backlog: Vec<Event>,
    /// Which user a watched device belongs to.
    presence_users: HashMap<SigningPublicKey, SigningPublicKey>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("user_key", &self.user.as_ref().map(UserIdentity::user_key))
            .field("device_key", &self.identity.device_key())
            .field("connected", &self.connected)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

impl Client {
    /// Creates a new account in an empty `store`: device and user identities, the first signed
    /// device list, prekeys and a delivery token. The relay learns of them at the first connect.
    pub fn create(mut store: Store, config: ClientConfig, now_ms: u64) -> Result<Self> {
        let mut rng = new_rng()?;
        let account = Account::new(&mut rng);
        let user = UserIdentity::generate(&mut rng);
        let list = SignedDeviceList::sign(&user, 1, &[account.device_keys()], now_ms / 1000)?;
        let token = DeliveryToken::generate(&mut rng);
        {
            let tx = store.transaction()?;
            if tx.account()?.is_some() {
                return Err(Error::StoreExists);
            }
            tx.put_account(&account)?;
            tx.put_user(&user)?;
            tx.put_setting(SETTING_DEVICE_LIST, &list.to_bytes())?;
            tx.put_setting(SETTING_DELIVERY_TOKEN, token.to_bytes().as_slice())?;
            tx.put_setting(SETTING_PROFILE, config.display_name.as_bytes())?;
            tx.commit()?;
        }
        Self::open(store, config)
    }

    /// Opens the account held by `store`.
    pub fn open(mut store: Store, config: ClientConfig) -> Result<Self> {
        let rng = new_rng()?;
        let (account, user, token) = {
            let tx = store.transaction()?;
            let account = tx.account()?.ok_or(Error::Malformed { what: "store without an account" })?;
            let (user, token) = match tx.user()? {
                Some(user) => {
                    let token = tx
                        .setting(SETTING_DELIVERY_TOKEN)?
                        .ok_or(Error::Malformed { what: "store without a token" })?;
                    (Some(user), Some(DeliveryToken::from_bytes(&token)?))
                }
                // A device waiting to be linked: no user yet, only its link request.
                None if tx.setting(SETTING_LINK_REQUEST)?.is_some() => (None, None),
                None => return Err(Error::Malformed { what: "store without a user key" }),
            };
            tx.commit()?;
            (account, user, token)
        };
        Ok(Self {
            store,
            rng,
            config,
            identity: account.identity().clone(),
            user,
            account,
            token,
            connected: false,
            next_request_id: 1,
            pending: HashMap::new(),
            outgoing: Vec::new(),
            fetching_lists: HashSet::new(),
            fetching_bundles: HashSet::new(),
            in_flight: HashSet::new(),
            parked: Vec::new(),
            replenishing: false,
            backlog: Vec::new(),
            presence_users: HashMap::new(),
        })
    }

    /// This user's key (the identity contacts pin). [`Error::NotLinked`] while this device waits
    /// to be linked.
    pub fn user_key(&self) -> Result<SigningPublicKey> {
        Ok(self.user()?.user_key())
    }

    /// Whether this device belongs to a user: `false` only between
    /// [`create_for_link`](Self::create_for_link) and the approval's arrival ([`Event::DeviceLinked`]).
    pub fn is_linked(&self) -> bool {
        self.user.is_some()
    }

    fn user(&self) -> Result<&UserIdentity> {
        self.user.as_ref().ok_or(Error::NotLinked)
    }

    /// This device's key (its mailbox address on the relay).
    pub fn device_key(&self) -> SigningPublicKey {
        self.identity.device_key()
    }

    /// This device's identity (the transport signs the relay's challenge with it).
    pub fn device_identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The link others open to add this user ([`Error::NotLinked`] before a pending link completes).
    pub fn contact_link(&self) -> Result<ContactLink> {
        Ok(ContactLink {
            relay_url: self.config.relay_url.clone(),
            user_key: self.user_key()?,
            delivery_token: self.token.clone().ok_or(Error::NotLinked)?,
            name_hint: self.config.display_name.clone(),
        })
    }

    /// The store, for reads this API does not cover. Writes belong to the client.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    // ---- Connection --------------------------------------------------------------------------

    /// Whether the relay accepted this device on the current connection.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The transport authenticated (itself, or through a challenge this client answered): publish
    /// keys, check prekey counts, watch contacts' presence, send what waits in the outbox.
    pub fn on_connected(&mut self, now_ms: u64) -> Result<()> {
        self.connected = true;
        let account = &self.account;
        let prekeys = Req::PublishPrekeys(relay::PublishPrekeys {
            signed_prekey: Some(account.signed_prekey()?.to_proto()),
            one_time_prekeys: Vec::new(),
            kem_prekeys: Vec::new(),
            last_resort_kem_prekey: Some(account.last_resort_kem_prekey()?.to_proto()),
            device: Some(account.device_keys().to_proto()),
        });
        // A device waiting to be linked only makes its mailbox exist; the approval arrives there.
        self.push(prekeys, Pending::Setup);
        if self.user.is_none() {
            return Ok(());
        }
        let list = self.own_device_list()?;
        self.push(
            Req::PublishDeviceList(relay::PublishDeviceList { signed_device_list: list.to_bytes() }),
            Pending::Setup,
        );
        self.user_setup()?;
        self.flush_outbox(now_ms, true)
    }

    /// What a device of a user asks the relay after connecting (and after its link completed):
    /// its delivery token, prekey counts, contacts' presence, and the user's own device list when
    /// the user has other devices (one may have been linked meanwhile).
    fn user_setup(&mut self) -> Result<()> {
        let token = self.token.as_ref().ok_or(Error::NotLinked)?;
        let me = self.user_key()?;
        self.push(Req::SetDeliveryToken(relay::SetDeliveryToken { token_hash: token.hash().to_vec() }), Pending::Setup);
        self.push(Req::GetPrekeyCounts(relay::GetPrekeyCounts {}), Pending::PrekeyCounts);
        self.subscribe_presence()?;
        let tx = self.store.transaction()?;
        let own = tx.peer(&me)?;
        tx.commit()?;
        if own.is_some_and(|p| p.device_list().devices().len() > 1) {
            self.request_device_list(me);
        }
        Ok(())
    }

    /// The connection dropped: requests in flight are forgotten (sends stay in the outbox and go
    /// again after the next connect; the relay re-delivers what was not acked).
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.pending.clear();
        self.outgoing.clear();
        self.fetching_lists.clear();
        self.fetching_bundles.clear();
        self.in_flight.clear();
        self.parked.clear();
        self.replenishing = false;
    }

    /// A request got no answer (the transport lost it): forget it; sends are retried.
    pub fn request_failed(&mut self, request_id: u64) {
        match self.pending.remove(&request_id) {
            Some(Pending::FetchList(user)) => {
                self.fetching_lists.remove(&user);
            }
            Some(Pending::FetchBundle { device, .. }) => {
                self.fetching_bundles.remove(&device);
            }
            Some(Pending::Outbox { id }) => {
                self.in_flight.remove(&id);
            }
            Some(Pending::PrekeyCounts | Pending::PublishOneTime) => self.replenishing = false,
            _ => {}
        }
    }

    /// Frames to send, in order. Each has a fresh `request_id`; the answer comes back through
    /// [`handle_incoming`](Self::handle_incoming) with the same id.
    pub fn take_outgoing(&mut self) -> Vec<ClientFrame> {
        core::mem::take(&mut self.outgoing)
    }

    /// [`take_outgoing`](Self::take_outgoing), encoded.
    pub fn take_outgoing_bytes(&mut self) -> Vec<Vec<u8>> {
        self.take_outgoing().into_iter().map(|f| f.encode_to_vec()).collect()
    }

    /// Time-driven work: removes expired messages and resends sends the relay did not answer.
    /// Call it now and then (at the latest at [`next_expiry`](Self::next_expiry)).
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        let tx = self.store.transaction()?;
        let count = tx.expire_messages(now_ms)?;
        tx.prune_processed(now_ms)?;
        tx.commit()?;
        if count > 0 {
            events.push(Event::Expired { count });
        }
        self.flush(now_ms)?;
        Ok(events)
    }

    /// When the next message disappears (ms), if any does.
    pub fn next_expiry(&mut self) -> Result<Option<u64>> {
        let tx = self.store.transaction()?;
        let next = tx.next_expiry()?;
        tx.commit()?;
        Ok(next)
    }

    /// Queues a request; returns its id.
    fn push(&mut self, body: Req, why: Pending) -> u64 {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1).max(1);
        self.pending.insert(request_id, why);
        self.outgoing.push(ClientFrame { version: RELAY_PROTOCOL_VERSION, request_id, body: Some(body) });
        request_id
    }

    fn own_device_list(&mut self) -> Result<SignedDeviceList> {
        let tx = self.store.transaction()?;
        let list = tx.setting(SETTING_DEVICE_LIST)?.ok_or(Error::Malformed { what: "store without a device list" })?;
        tx.commit()?;
        SignedDeviceList::from_bytes(&list)
    }

    fn subscribe_presence(&mut self) -> Result<()> {
        let tx = self.store.transaction()?;
        let contacts = tx.contacts()?;
        let mut devices = Vec::new();
        for c in contacts.iter().filter(|c| c.state == ContactState::Accepted) {
            if let Some(peer) = tx.peer(&c.user_key)? {
                for d in peer.device_list().devices() {
                    devices.push(d.device_key().to_bytes().to_vec());
                    self.presence_users.insert(d.device_key(), c.user_key);
                }
            }
        }
        tx.commit()?;
        if !devices.is_empty() {
            self.push(Req::SubscribePresence(relay::SubscribePresence { device_keys: devices }), Pending::Fire);
        }
        Ok(())
    }

    /// Asks the relay for a blob upload token (for `PUT /v1/blobs`); it arrives as
    /// [`Event::UploadToken`] with the returned request id. Transports that make their own
    /// requests (hush-relay's) do not need this.
    pub fn request_upload_token(&mut self) -> Result<u64> {
        if !self.connected {
            return Err(Error::NoSession);
        }
        Ok(self.push(Req::RequestUploadToken(relay::RequestUploadToken {}), Pending::UploadToken))
    }

    // ---- Contacts ------------------------------------------------------------------------------

    /// Adds the user a contact link names (accepted at once: the user chose to add them), and
    /// fetches their devices. Adding a requested or blocked contact accepts them.
    pub fn add_contact(&mut self, link: &ContactLink, now_ms: u64) -> Result<Contact> {
        if link.user_key == self.user_key()? {
            return Err(Error::Malformed { what: "contact link names this user" });
        }
        let tx = self.store.transaction()?;
        let mut contact = tx.contact(&link.user_key)?.unwrap_or_else(|| Contact {
            user_key: link.user_key,
            display_name: link.name_hint.clone(),
            state: ContactState::Accepted,
            verified: false,
            relay_url: link.relay_url.clone(),
            delivery_token: None,
        });
        contact.state = ContactState::Accepted;
        contact.delivery_token = Some(link.delivery_token.clone());
        contact.relay_url = link.relay_url.clone();
        if contact.display_name.is_empty() {
            contact.display_name = link.name_hint.clone();
        }
        tx.put_contact(&contact)?;
        let id = ConversationId::Direct(link.user_key);
        if tx.conversation(&id)?.is_none() {
            let mut conversation = Conversation::new(id);
            conversation.last_activity_ms = now_ms;
            tx.put_conversation(&conversation)?;
        }
        tx.commit()?;
        self.request_device_list(link.user_key);
        Ok(contact)
    }

    /// Accepts a message request: the contact's messages become ordinary history.
    pub fn accept_contact(&mut self, user: &SigningPublicKey) -> Result<Contact> {
        self.set_contact_state(user, ContactState::Accepted)
    }

    /// Blocks a user: their messages are acked and dropped from now on, without events.
    pub fn block(&mut self, user: &SigningPublicKey) -> Result<Contact> {
        self.set_contact_state(user, ContactState::Blocked)
    }

    fn set_contact_state(&mut self, user: &SigningPublicKey, state: ContactState) -> Result<Contact> {
        if *user == self.user_key()? {
            return Err(Error::Malformed { what: "contact is this user" });
        }
        let tx = self.store.transaction()?;
        let mut contact = tx.contact(user)?.unwrap_or_else(|| Contact {
            user_key: *user,
            display_name: String::new(),
            state,
            verified: false,
            relay_url: self.config.relay_url.clone(),
            delivery_token: None,
        });
        contact.state = state;
        tx.put_contact(&contact)?;
        tx.commit()?;
        Ok(contact)
    }

    /// Every contact (accepted, requested and blocked).
    pub fn contacts(&mut self) -> Result<Vec<Contact>> {
        let tx = self.store.transaction()?;
        let contacts = tx.contacts()?;
        tx.commit()?;
        Ok(contacts)
    }

    /// The safety number with `user` (whose device list must have been fetched).
    pub fn safety_number(&mut self, user: &SigningPublicKey) -> Result<SafetyNumber> {
        let tx = self.store.transaction()?;
        let peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        tx.commit()?;
        Ok(peer.safety_number(&self.user_key()?))
    }

    /// Marks `user` verified if `scanned` (their QR payload) matches the safety number; `false`
    /// (nothing changed) if it does not. Verifying also accepts a pending identity change.
    pub fn verify(&mut self, user: &SigningPublicKey, scanned: &[u8]) -> Result<bool> {
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let mut peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        if !peer.verify(&me, scanned)? {
            return Ok(false);
        }
        tx.put_peer(&peer)?;
        if let Some(mut contact) = tx.contact(user)? {
            contact.verified = true;
            tx.put_contact(&contact)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Accepts a peer's changed identity without verifying it (as a user tapping "OK").
    pub fn accept_identity_change(&mut self, user: &SigningPublicKey, now_ms: u64) -> Result<()> {
        self.user()?;
        let tx = self.store.transaction()?;
        let mut peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        peer.accept_identity_change()?;
        tx.put_peer(&peer)?;
        if let Some(mut contact) = tx.contact(user)? {
            contact.verified = false;
            tx.put_contact(&contact)?;
        }
        tx.commit()?;
        self.flush(now_ms)
    }

    // ---- Conversations and history -----------------------------------------------------------

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

    /// A group's state (name, members, admins).
    pub fn group(&mut self, id: &GroupId) -> Result<Option<Group>> {
        let tx = self.store.transaction()?;
        let g = tx.group(id)?;
        tx.commit()?;
        Ok(g)
    }

    // ---- Sending ----------------------------------------------------------------------------

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

    // ---- Groups -------------------------------------------------------------------------------

    /// Creates a group with this user as admin and sends the welcome to every member.
    pub fn create_group(&mut self, name: &str, members: &[SigningPublicKey], now_ms: u64) -> Result<GroupId> {
        let me = self.user_key()?;
        let members: Vec<SigningPublicKey> = dedup(members.iter().copied().filter(|m| *m != me));
        let user = self.user()?.clone();
        let (group, welcome) = Group::create(&mut self.rng, &user, name, &members, now_ms)?;
        let id = group.id();
        let tx = self.store.transaction()?;
        tx.put_group(&group)?;
        let mut conversation = Conversation::new(ConversationId::Group(id));
        conversation.last_activity_ms = now_ms;
        tx.put_conversation(&conversation)?;
        tx.commit()?;
        let content = self.content(ContentBody::GroupControl { group_id: id, change: welcome }, now_ms)?;
        self.queue_to(&ConversationId::Group(id), members, content, now_ms)?;
        Ok(id)
    }

    /// Adds users to a group (admins only): the change goes to the members, the whole roster to
    /// the new ones.
    pub fn add_members(&mut self, id: &GroupId, users: &[SigningPublicKey], now_ms: u64) -> Result<()> {
        let users = dedup(users.iter().copied());
        self.change_group(id, RosterAction::Add(users.clone()), &users, now_ms)
    }

    /// Removes a member (admins only). The removed member is told too.
    pub fn remove_member(&mut self, id: &GroupId, user: &SigningPublicKey, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Remove(*user), &[], now_ms)
    }

    /// Leaves a group.
    pub fn leave_group(&mut self, id: &GroupId, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Leave, &[], now_ms)
    }

    /// Renames a group (admins only).
    pub fn rename_group(&mut self, id: &GroupId, name: &str, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Rename(name.to_owned()), &[], now_ms)
    }

    fn change_group(
        &mut self,
        id: &GroupId,
        action: RosterAction,
        added: &[SigningPublicKey],
        now_ms: u64,
    ) -> Result<()> {
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let mut group = tx.group(id)?.ok_or(Error::NotGroupMember)?;
        let before: Vec<SigningPublicKey> = group.members();
        let user = self.user.as_ref().ok_or(Error::NotLinked)?;
        let update = group.change(user, action, now_ms)?;
        tx.put_group(&group)?;
        tx.commit()?;
        let conversation = ConversationId::Group(*id);
        // Everyone who was a member before (a removed one included) gets the change.
        let old = dedup(before.into_iter().filter(|m| *m != me && !added.contains(m)));
        let content = self.content(ContentBody::GroupControl { group_id: *id, change: update.control }, now_ms)?;
        self.queue_to(&conversation, old, content, now_ms)?;
        if let Some(welcome) = update.welcome {
            let content = self.content(ContentBody::GroupControl { group_id: *id, change: welcome }, now_ms)?;
            self.queue_to(&conversation, added.to_vec(), content, now_ms)?;
        }
        Ok(())
    }

    // ---- Helpers ------------------------------------------------------------------------------

    fn content(&mut self, body: ContentBody, now_ms: u64) -> Result<Content> {
        let content = Content::new(&mut self.rng, now_ms, body);
        content.validate()?;
        Ok(content)
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
        outgoing::push_pending(&tx, conversation, &[], &content)?;
        tx.commit()?;
        self.flush(now_ms)?;
        Ok(content.client_message_id)
    }

    /// Queues a payload (not kept in history) for everyone in the conversation.
    fn queue(&mut self, conversation: &ConversationId, content: Content, now_ms: u64) -> Result<()> {
        let tx = self.store.transaction()?;
        outgoing::push_pending(&tx, conversation, &[], &content)?;
        tx.commit()?;
        self.flush(now_ms)
    }

    /// Queues a payload for the given users over 1:1 sessions.
    fn queue_to(
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
        outgoing::push_pending(&tx, conversation, &users, &content)?;
        tx.commit()?;
        self.flush(now_ms)
    }
}

/// The client's CSPRNG, seeded from the OS.
fn new_rng() -> Result<ChaCha20Rng> {
    ChaCha20Rng::from_rng(OsRng).map_err(|_| Error::Internal("random number generator"))
}

fn dedup(users: impl Iterator<Item = SigningPublicKey>) -> Vec<SigningPublicKey> {
    let mut out: Vec<SigningPublicKey> = Vec::new();
    for u in users {
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// Decodes a server frame (size-limited).
pub fn decode_server_frame(bytes: &[u8]) -> Result<ServerFrame> {
    crate::wire::decode(bytes, MAX_SERVER_FRAME_BYTES, "server frame")
}

/// Answers a relay's challenge as `identity` at `time_secs` (unix seconds): signs
/// `"hush/relay-auth/v1" || nonce || origin || time (u64 BE)`.
pub fn answer_challenge(
    identity: &DeviceIdentity,
    challenge: &relay::Challenge,
    time_secs: u64,
    registration_secret: Option<&str>,
) -> relay::AuthResponse {
    let signature = identity.sign(RELAY_AUTH_CONTEXT, &challenge_message(challenge, time_secs));
    relay::AuthResponse {
        device_key: identity.device_key().to_bytes().to_vec(),
        time: time_secs,
        signature: signature.to_vec(),
        registration_secret: registration_secret.unwrap_or_default().to_owned(),
    }
}

/// The bytes signed (after [`RELAY_AUTH_CONTEXT`]) to answer `challenge` at `time_secs`.
pub fn challenge_message(challenge: &relay::Challenge, time_secs: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(challenge.nonce.len() + challenge.origin.len() + 8);
    m.extend_from_slice(&challenge.nonce);
    m.extend_from_slice(challenge.origin.as_bytes());
    m.extend_from_slice(&time_secs.to_be_bytes());
    m
}
