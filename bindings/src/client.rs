//! `HushClient`: the one client object every language sees (docs/PROTOCOL.md §16).
//!
//! It wraps hush-core's state machine and, once [`connect`](HushClient::connect)ed, hush-net's
//! [`Messenger`] (the native WebSocket transport). Ids cross the boundary as lowercase hex strings:
//! user ids are user keys, conversation ids are `ConversationId` bytes, message ids are client
//! message ids. Events reach a [`HushListener`] the application registers.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};

use hush_core::client::view::{
    self, AttachmentView, ConnectionView, ContactView, ConversationView, EventView, HistoryPageView, MessageView,
    ReactionView, SafetyNumberView, conversation_id,
};
use hush_core::content::{AttachmentPointer, ContentBody};
use hush_core::store::{Argon2Params, ConversationId, MessageStatus, Unlock};
use hush_core::{Client, ClientConfig, ContactLink, SigningPublicKey, Store};
use hush_net::client::ClientConfig as TransportConfig;
use hush_net::messenger::{ConnectionState, Messenger, MessengerEvent, lock};
use zeroize::Zeroizing;

use crate::error::HushError;

/// One tokio runtime for every client in the process (sockets, timers, HTTP).
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hush")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start the hush runtime: {e}"))
});

/// The most events kept while no listener is registered.
const MAX_BUFFERED_EVENTS: usize = 10_000;

/// Largest attachment downloaded (plaintext bytes).
const MAX_DOWNLOAD_BYTES: u64 = hush_core::limits::DEFAULT_MAX_ATTACHMENT_BYTES;

/// Receives every event of a client. Called from a background thread, one event at a time.
#[uniffi::export(with_foreign)]
pub trait HushListener: Send + Sync {
    /// One event. A listener that throws (any exception: uniffi turns the unexpected ones into
    /// [`ListenerError`]) does not stop delivery: the failure is logged and the next event comes.
    fn on_event(&self, event: HushEvent) -> Result<(), ListenerError>;
}

/// A listener's failure to handle an event; logged, never fatal to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ListenerError {
    /// The listener threw.
    #[error("the event listener failed: {reason}")]
    Failed {
        /// What it threw, as the foreign language describes it.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed { reason: e.reason }
    }
}

/// Hands one event to the listener; a failure is logged and delivery goes on.
fn notify(listener: &dyn HushListener, event: HushEvent) {
    if let Err(e) = listener.on_event(event) {
        tracing::warn!(error = %e, "a hush event listener failed; delivering the next events");
    }
}

// The records and events are hush-core's view layer (`hush_core::client::view`), built there
// for every binding; the declarations below only mirror them for uniffi (`uniffi::remote`), under
// their foreign names. A field or event added in core does not compile here until it is mirrored.

/// The state of the connection to the relay.
#[uniffi::remote(Enum)]
#[uniffi(name = "HushConnectionState")]
pub enum ConnectionView {
    /// Authenticated; messages flow.
    Connected,
    /// Lost; reconnecting.
    Disconnected,
    /// A connection attempt failed; the client tries again in `retry_in_ms`.
    Unreachable {
        /// Why (cannot connect, not a hush relay, …).
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// The relay refused this device; the client stopped trying.
    Refused {
        /// What the relay said.
        detail: String,
    },
}

/// Where an outgoing message stands.
#[uniffi::remote(Enum)]
#[uniffi(name = "HushMessageStatus")]
pub enum MessageStatus {
    /// Waiting for the relay.
    Sending,
    /// The relay has it.
    Sent,
    /// A recipient device has it.
    Delivered,
    /// A recipient read it.
    Read,
    /// Sending gave up.
    Failed,
    /// An incoming message.
    Received,
}

/// An attachment a message points to (download it with `downloadAttachment`).
#[uniffi::remote(Record)]
#[uniffi(name = "HushAttachment")]
pub struct AttachmentView {
    /// MIME type.
    pub mime: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// File name, if the sender gave one.
    pub file_name: Option<String>,
}

/// One reaction on a message.
#[uniffi::remote(Record)]
#[uniffi(name = "HushReaction")]
pub struct ReactionView {
    /// Who reacted (user id).
    pub user: String,
    /// The emoji.
    pub emoji: String,
}

/// A message of the history.
#[uniffi::remote(Record)]
#[uniffi(name = "HushMessage")]
pub struct MessageView {
    /// The conversation it is in.
    pub conversation: String,
    /// Its id.
    pub id: String,
    /// Who sent it (user id).
    pub sender: String,
    /// Sent by this user (from this device or another of theirs).
    pub outgoing: bool,
    /// The sender's timestamp (ms).
    pub sent_at_ms: u64,
    /// When this device got it (ms).
    pub received_at_ms: u64,
    /// The text, for a text message.
    pub text: Option<String>,
    /// The attachment, for an attachment message.
    pub attachment: Option<AttachmentView>,
    /// Sending, sent, delivered, read, failed or received.
    pub status: MessageStatus,
    /// Edited by its sender.
    pub edited: bool,
    /// Deleted for everyone (text and attachment are gone).
    pub deleted: bool,
    /// Reactions, in arrival order.
    pub reactions: Vec<ReactionView>,
    /// When it disappears (ms), if the conversation has a timer.
    pub expires_at_ms: Option<u64>,
}

/// A page of history, newest first.
#[uniffi::remote(Record)]
#[uniffi(name = "HushHistoryPage")]
pub struct HistoryPageView {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Pass as `before` for the next (older) page; `None` at the start of the conversation.
    pub next: Option<String>,
}

/// A conversation in the chat list.
#[uniffi::remote(Record)]
#[uniffi(name = "HushConversation")]
pub struct ConversationView {
    /// Its id.
    pub id: String,
    /// `true` for a group chat.
    pub is_group: bool,
    /// The peer's user id (1:1) or the group id.
    pub peer: String,
    /// The contact's or the group's name.
    pub name: String,
    /// Last activity (ms).
    pub last_activity_ms: u64,
    /// Unread messages.
    pub unread: u32,
    /// Disappearing-message timer (s); 0 = off.
    pub disappearing_secs: u32,
}

/// A contact.
#[uniffi::remote(Record)]
#[uniffi(name = "HushContact")]
pub struct ContactView {
    /// Their user id.
    pub user_id: String,
    /// Their name.
    pub name: String,
    /// "requested", "accepted" or "blocked".
    pub state: String,
    /// Whether the safety number was verified.
    pub verified: bool,
}

/// A safety number to compare or scan.
#[uniffi::remote(Record)]
#[uniffi(name = "HushSafetyNumber")]
pub struct SafetyNumberView {
    /// 60 digits, in groups of five.
    pub digits: String,
    /// The QR code's bytes.
    pub qr: Vec<u8>,
}

/// Something that happened.
#[uniffi::remote(Enum)]
#[uniffi(name = "HushEvent")]
pub enum EventView {
    /// A new message.
    Message {
        /// It.
        message: MessageView,
    },
    /// A message from someone not (yet) a contact: accept or block them.
    MessageRequest {
        /// It.
        message: MessageView,
    },
    /// A message was edited.
    Edited {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
    },
    /// A reaction was added or withdrawn.
    Reaction {
        /// Where.
        conversation: String,
        /// On which message.
        message_id: String,
        /// Who.
        sender: String,
        /// The emoji.
        emoji: String,
        /// Withdrawn.
        removed: bool,
    },
    /// Delivery or read receipt.
    Receipt {
        /// Where.
        conversation: String,
        /// The messages.
        message_ids: Vec<String>,
        /// Who.
        sender: String,
        /// `true`: read; `false`: delivered.
        read: bool,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Where.
        conversation: String,
        /// Who.
        sender: String,
        /// Started or stopped.
        started: bool,
    },
    /// A contact's device went online or offline.
    Presence {
        /// The user, when known.
        user: Option<String>,
        /// Online or not.
        online: bool,
    },
    /// This user joined (or created) a group.
    GroupJoined {
        /// The group's conversation id.
        conversation: String,
        /// Its name.
        name: String,
    },
    /// A group changed: members added or removed, renamed, …
    GroupChanged {
        /// The group's conversation id.
        conversation: String,
        /// What changed, one line each (e.g. `added <user id>`, `renamed <name>`).
        changes: Vec<String>,
    },
    /// A contact's identity key changed: verify or accept before sending again.
    IdentityChanged {
        /// Who.
        user: String,
    },
    /// A conversation's disappearing timer changed.
    DisappearingTimer {
        /// Where.
        conversation: String,
        /// Seconds; 0 = off.
        seconds: u32,
    },
    /// An outgoing message changed status.
    MessageStatus {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
        /// Now.
        status: MessageStatus,
    },
    /// A message could not be read (decrypted, authenticated or applied) and was dropped.
    Undecryptable {
        /// The sender, when known.
        sender: Option<String>,
        /// Why: the stable code of the error's kind ("decryption", "identity", "bad_input", …).
        reason: String,
    },
    /// Disappearing messages were removed.
    Expired {
        /// How many.
        count: u64,
    },
    /// This device (made by `createForLink`) was approved: it now belongs to `user`.
    DeviceLinked {
        /// The user's id.
        user: String,
    },
    /// This device was removed by another device of `user`: its store was wiped and nothing more
    /// is sent. Close the client and delete the store's files.
    DeviceRemoved {
        /// The user's id.
        user: String,
    },
    /// A conversation was read on another device of this user.
    ConversationRead {
        /// Which.
        conversation: String,
    },
    /// The connection changed.
    Connection {
        /// Now.
        state: ConnectionView,
    },
}

/// The foreign names of the view records, for Rust callers of this crate.
pub type HushMessage = MessageView;
/// See [`HushMessage`].
pub type HushEvent = EventView;
/// See [`HushMessage`].
pub type HushMessageStatus = MessageStatus;
/// See [`HushMessage`].
pub type HushConnectionState = ConnectionView;
/// See [`HushMessage`].
pub type HushConversation = ConversationView;
/// See [`HushMessage`].
pub type HushContact = ContactView;
/// See [`HushMessage`].
pub type HushHistoryPage = HistoryPageView;
/// See [`HushMessage`].
pub type HushSafetyNumber = SafetyNumberView;
/// See [`HushMessage`].
pub type HushAttachment = AttachmentView;
/// See [`HushMessage`].
pub type HushReaction = ReactionView;

use hush_core::client::hex_id::{self, to_hex as hex};

fn parse_conversation(id: &str) -> Result<ConversationId, HushError> {
    Ok(hex_id::conversation_from_hex(id)?)
}

fn parse_user(id: &str) -> Result<SigningPublicKey, HushError> {
    Ok(hex_id::user_from_hex(id)?)
}

fn parse_message_id(id: &str) -> Result<hush_core::content::MessageId, HushError> {
    Ok(hex_id::message_id_from_hex(id)?)
}

/// The view of a messenger event: the state machine's as core shows it, the connection's from
/// hush-net's state. `me` is the viewer (whose messages are outgoing).
fn event(e: MessengerEvent, me: &SigningPublicKey) -> Option<EventView> {
    match e {
        MessengerEvent::Connection(state) => Some(EventView::Connection {
            state: match state {
                ConnectionState::Connected => ConnectionView::Connected,
                ConnectionState::Disconnected => ConnectionView::Disconnected,
                ConnectionState::Unreachable { reason, retry_in_ms } => {
                    ConnectionView::Unreachable { reason, retry_in_ms }
                }
                ConnectionState::Refused(detail) => ConnectionView::Refused { detail },
            },
        }),
        MessengerEvent::Client(e) => view::event(e, me),
    }
}

/// Events kept until a listener is registered, and the listener.
#[derive(Default)]
struct Delivery {
    listener: Option<Arc<dyn HushListener>>,
    buffered: VecDeque<HushEvent>,
}

impl Delivery {
    fn deliver(this: &Mutex<Self>, e: HushEvent) {
        let listener = {
            let mut d = this.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match &d.listener {
                Some(l) => l.clone(),
                None => {
                    if d.buffered.len() >= MAX_BUFFERED_EVENTS {
                        d.buffered.pop_front();
                    }
                    d.buffered.push_back(e);
                    return;
                }
            }
        };
        notify(listener.as_ref(), e);
    }
}

/// A hush account on this device: its encrypted store, and its connection when connected.
#[derive(uniffi::Object)]
pub struct HushClient {
    client: Arc<Mutex<Client>>,
    relay_url: String,
    messenger: Mutex<Option<Messenger>>,
    delivery: Arc<Mutex<Delivery>>,
}

fn unlock(store_key: Option<Vec<u8>>, passphrase: Option<String>) -> Result<Unlock, HushError> {
    match (store_key, passphrase) {
        (Some(key), None) => {
            let key: [u8; 32] =
                key.as_slice().try_into().map_err(|_| HushError::bad_input("the store key must be 32 bytes"))?;
            Ok(Unlock::Key(Zeroizing::new(key)))
        }
        (None, Some(p)) => Ok(Unlock::Passphrase(Zeroizing::new(p), Argon2Params::default())),
        _ => Err(HushError::bad_input("give either a 32-byte store key or a passphrase")),
    }
}

/// A new store at `path` (`:memory:`: a throw-away one in memory).
fn new_store(path: &str, unlock: Unlock) -> Result<Store, HushError> {
    Ok(if path == ":memory:" { Store::open_in_memory(unlock)? } else { Store::create(path, unlock)? })
}

impl HushClient {
    fn new(client: Client, relay_url: String) -> Arc<Self> {
        Arc::new(Self {
            client: Arc::new(Mutex::new(client)),
            relay_url,
            messenger: Mutex::new(None),
            delivery: Arc::new(Mutex::new(Delivery::default())),
        })
    }

    /// Runs `f` on the state machine; when connected, what it queued is sent.
    fn act<T>(&self, f: impl FnOnce(&mut Client, u64) -> hush_core::Result<T>) -> Result<T, HushError> {
        let messenger = self.messenger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match messenger.as_ref() {
            Some(m) => Ok(m.with_client(f)?),
            None => Ok(f(&mut lock(&self.client), hush_net::messenger::now_ms())?),
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl HushClient {
    /// Creates a new account in a new store file at `store_path` (`:memory:` for a throw-away
    /// one), unlocked by a 32-byte `store_key` (from the platform keystore) or a `passphrase`.
    #[uniffi::constructor]
    pub fn create(
        store_path: String,
        store_key: Option<Vec<u8>>,
        passphrase: Option<String>,
        relay_url: String,
        display_name: String,
    ) -> Result<Arc<Self>, HushError> {
        let store = new_store(&store_path, unlock(store_key, passphrase)?)?;
        let config = ClientConfig::new(relay_url.clone(), display_name);
        let client = Client::create(store, config, hush_net::messenger::now_ms())?;
        Ok(Self::new(client, relay_url))
    }

    /// Opens the account in the store at `store_path`.
    #[uniffi::constructor]
    pub fn open(
        store_path: String,
        store_key: Option<Vec<u8>>,
        passphrase: Option<String>,
        relay_url: String,
        display_name: String,
    ) -> Result<Arc<Self>, HushError> {
        let store = Store::open(&store_path, unlock(store_key, passphrase)?)?;
        let client = Client::open(store, ClientConfig::new(relay_url.clone(), display_name))?;
        Ok(Self::new(client, relay_url))
    }

    /// Creates a device that waits to be linked to an existing user (store arguments as in
    /// `create`). Show `linkRequest()` to one of the user's devices, which calls `linkDevice`, and
    /// connect: a `DeviceLinked` event says when this device belongs to the user. Until then the
    /// calls that need a user fail with `HushError.Protocol` ("not linked").
    #[uniffi::constructor]
    pub fn create_for_link(
        store_path: String,
        store_key: Option<Vec<u8>>,
        passphrase: Option<String>,
        relay_url: String,
        display_name: String,
    ) -> Result<Arc<Self>, HushError> {
        let store = new_store(&store_path, unlock(store_key, passphrase)?)?;
        let config = ClientConfig::new(relay_url.clone(), display_name);
        let client = Client::create_for_link(store, config, hush_net::messenger::now_ms())?;
        Ok(Self::new(client, relay_url))
    }

    /// The `hush://link/…` URI a device made by `createForLink` shows (as text or a QR code) until
    /// it is linked. It holds a secret: show it to the user only.
    pub fn link_request(&self) -> Result<String, HushError> {
        Ok(lock(&self.client).link_request()?.to_string())
    }

    /// Approves a new device of this user from the `hush://link/…` URI it shows; returns its
    /// device id. A bad URI, or a device already linked, is an error that changes nothing.
    pub fn link_device(&self, uri: String) -> Result<String, HushError> {
        Ok(hex(self.act(|c, now| c.link_device(&uri, now))?.as_bytes()))
    }

    /// The device ids on this user's signed device list, this device's included.
    pub fn devices(&self) -> Result<Vec<String>, HushError> {
        let devices = lock(&self.client).devices()?;
        Ok(devices.iter().map(|d| hex(d.device_key().as_bytes())).collect())
    }

    /// Removes a lost or stolen device of this user (`deviceId` as `devices()` and `linkDevice`
    /// give it): signs and publishes the list without it. The relay then refuses that device, it
    /// wipes itself when it next connects (its `DeviceRemoved` event), and contacts stop
    /// encrypting to it after the next message from this user. Throws `Identity` for a device not
    /// on the list, `BadInput` for this device itself or a malformed id.
    pub fn remove_device(&self, device_id: String) -> Result<(), HushError> {
        let device = hex_id::user_from_hex(&device_id)?;
        self.act(|c, now| c.remove_device(&device, now))
    }

    /// Whether this device belongs to a user (false only while a `createForLink` device waits).
    pub fn is_linked(&self) -> bool {
        lock(&self.client).is_linked()
    }

    /// This user's id (their user key, hex). Fails while a `createForLink` device waits.
    pub fn user_id(&self) -> Result<String, HushError> {
        Ok(hex(lock(&self.client).user_key()?.as_bytes()))
    }

    /// This device's id (its device key, hex).
    pub fn device_id(&self) -> String {
        hex(lock(&self.client).device_key().as_bytes())
    }

    /// The `hush://contact/…` link others open to add this user (also the QR code's text).
    pub fn contact_link(&self) -> Result<String, HushError> {
        Ok(lock(&self.client).contact_link()?.to_url())
    }

    /// Registers the listener; events that came before are delivered to it at once.
    pub fn set_listener(&self, listener: Arc<dyn HushListener>) {
        let buffered = {
            let mut d = self.delivery.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            d.listener = Some(listener.clone());
            core::mem::take(&mut d.buffered)
        };
        for e in buffered {
            notify(listener.as_ref(), e);
        }
    }

    /// Connects to the relay (and keeps reconnecting until `disconnect`).
    pub async fn connect(&self) -> Result<(), HushError> {
        let _guard = RUNTIME.enter();
        let mut messenger = self.messenger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if messenger.is_some() {
            return Ok(());
        }
        let (m, mut events) =
            Messenger::start_shared(self.client.clone(), TransportConfig::new(self.relay_url.clone()));
        let (delivery, client) = (self.delivery.clone(), self.client.clone());
        RUNTIME.spawn(async move {
            while let Some(e) = events.recv().await {
                // Asked per event: a device made by `createForLink` gets its user when linked.
                let me = view::viewer(&lock(&client));
                if let Some(e) = event(e, &me) {
                    Delivery::deliver(&delivery, e);
                }
            }
        });
        *messenger = Some(m);
        Ok(())
    }

    /// Closes the connection. Sends not yet taken by the relay stay queued.
    pub async fn disconnect(&self) {
        let m = self.messenger.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(m) = m {
            m.stop().await;
        }
    }

    /// Adds the user behind a contact link; returns their user id.
    pub fn add_contact(&self, link: String) -> Result<String, HushError> {
        let link = ContactLink::from_url(&link)?;
        self.act(|c, now| c.add_contact(&link, now)).map(|c| hex(c.user_key.as_bytes()))
    }

    /// Accepts a message request.
    pub fn accept_contact(&self, user_id: String) -> Result<(), HushError> {
        let user = parse_user(&user_id)?;
        self.act(|c, _| c.accept_contact(&user)).map(|_| ())
    }

    /// Blocks a user: their messages are dropped from now on.
    pub fn block(&self, user_id: String) -> Result<(), HushError> {
        let user = parse_user(&user_id)?;
        self.act(|c, _| c.block(&user)).map(|_| ())
    }

    /// Every contact.
    pub fn contacts(&self) -> Result<Vec<ContactView>, HushError> {
        self.act(|c, _| c.contact_views())
    }

    /// The safety number with a contact.
    pub fn safety_number(&self, user_id: String) -> Result<SafetyNumberView, HushError> {
        let user = parse_user(&user_id)?;
        self.act(|c, _| c.safety_number_view(&user))
    }

    /// Marks a contact verified if `scanned_qr` (their QR code) matches; `false` otherwise.
    pub fn verify(&self, user_id: String, scanned_qr: Vec<u8>) -> Result<bool, HushError> {
        let user = parse_user(&user_id)?;
        self.act(|c, _| c.verify(&user, &scanned_qr))
    }

    /// The conversation id of the 1:1 chat with a user.
    pub fn direct_conversation(&self, user_id: String) -> Result<String, HushError> {
        Ok(conversation_id(&ConversationId::Direct(parse_user(&user_id)?)))
    }

    /// Sends a text; returns the message id.
    pub fn send_text(&self, conversation: String, text: String) -> Result<String, HushError> {
        let conv = parse_conversation(&conversation)?;
        self.act(|c, now| c.send_text(&conv, &text, now)).map(|id| hex(&id))
    }

    /// Replaces the text of one of this user's messages.
    pub fn edit(&self, conversation: String, message_id: String, text: String) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(&conversation)?, parse_message_id(&message_id)?);
        self.act(|c, now| c.edit(&conv, &id, &text, now))
    }

    /// Deletes one of this user's messages for everyone.
    pub fn delete(&self, conversation: String, message_id: String) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(&conversation)?, parse_message_id(&message_id)?);
        self.act(|c, now| c.delete(&conv, &id, now))
    }

    /// Adds (or, with `remove`, withdraws) a reaction.
    pub fn react(
        &self,
        conversation: String,
        message_id: String,
        emoji: String,
        remove: bool,
    ) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(&conversation)?, parse_message_id(&message_id)?);
        self.act(|c, now| c.react(&conv, &id, &emoji, remove, now))
    }

    /// Marks a conversation read (sends read receipts).
    pub fn mark_read(&self, conversation: String) -> Result<(), HushError> {
        let conv = parse_conversation(&conversation)?;
        self.act(|c, now| c.mark_read(&conv, now))
    }

    /// Tells the conversation this user is typing (or stopped).
    pub fn set_typing(&self, conversation: String, typing: bool) -> Result<(), HushError> {
        let conv = parse_conversation(&conversation)?;
        self.act(|c, now| c.set_typing(&conv, typing, now))
    }

    /// Encrypts and uploads `bytes`, then sends the attachment; returns the message id.
    pub async fn send_attachment(
        &self,
        conversation: String,
        bytes: Vec<u8>,
        mime: String,
        file_name: Option<String>,
    ) -> Result<String, HushError> {
        let conv = parse_conversation(&conversation)?;
        let pointer = self.upload(bytes, mime, file_name).await?;
        self.act(|c, now| c.send_attachment(&conv, pointer, now)).map(|id| hex(&id))
    }

    /// Downloads and decrypts the attachment of a message.
    pub async fn download_attachment(&self, conversation: String, message_id: String) -> Result<Vec<u8>, HushError> {
        let (conv, id) = (parse_conversation(&conversation)?, parse_message_id(&message_id)?);
        let m = self.act(|c, _| c.message(&conv, &id))?.ok_or_else(|| HushError::not_found("no such message"))?;
        let Some(hush_core::Content { body: ContentBody::Attachment(pointer), .. }) = m.content()? else {
            return Err(HushError::bad_input("the message has no attachment"));
        };
        let messenger = self.messenger_handle()?;
        let bytes = RUNTIME
            .spawn(async move { download(messenger, pointer).await })
            .await
            .map_err(|_| HushError::network("download task failed"))??;
        Ok(bytes)
    }

    /// Creates a group with these members; returns its conversation id.
    pub fn create_group(&self, name: String, members: Vec<String>) -> Result<String, HushError> {
        let members = members.iter().map(|m| parse_user(m)).collect::<Result<Vec<_>, _>>()?;
        self.act(|c, now| c.create_group(&name, &members, now)).map(|g| conversation_id(&ConversationId::Group(g)))
    }

    /// Adds members to a group (admins only).
    pub fn add_members(&self, conversation: String, members: Vec<String>) -> Result<(), HushError> {
        let group = group_id(&conversation)?;
        let members = members.iter().map(|m| parse_user(m)).collect::<Result<Vec<_>, _>>()?;
        self.act(|c, now| c.add_members(&group, &members, now))
    }

    /// Removes a member from a group (admins only).
    pub fn remove_member(&self, conversation: String, user_id: String) -> Result<(), HushError> {
        let (group, user) = (group_id(&conversation)?, parse_user(&user_id)?);
        self.act(|c, now| c.remove_member(&group, &user, now))
    }

    /// Leaves a group.
    pub fn leave_group(&self, conversation: String) -> Result<(), HushError> {
        let group = group_id(&conversation)?;
        self.act(|c, now| c.leave_group(&group, now))
    }

    /// Renames a group (admins only).
    pub fn rename_group(&self, conversation: String, name: String) -> Result<(), HushError> {
        let group = group_id(&conversation)?;
        self.act(|c, now| c.rename_group(&group, &name, now))
    }

    /// The chat list, most recent first.
    pub fn conversations(&self) -> Result<Vec<ConversationView>, HushError> {
        self.act(|c, _| c.conversation_views())
    }

    /// A page of history, newest first, older than `before` (a cursor from an earlier page).
    pub fn history(
        &self,
        conversation: String,
        before: Option<String>,
        limit: u32,
    ) -> Result<HistoryPageView, HushError> {
        let conv = parse_conversation(&conversation)?;
        let before = before.map(|b| hex_id::cursor_from_hex(&b)).transpose()?;
        self.act(|c, _| c.history_view(&conv, before, limit as usize))
    }

    /// Messages containing every word of `query` (through the blind index).
    pub fn search(&self, query: String) -> Result<Vec<MessageView>, HushError> {
        self.act(|c, _| c.search_view(&query))
    }

    /// Sets the disappearing-message timer of a conversation (0 = off).
    pub fn set_disappearing(&self, conversation: String, seconds: u32) -> Result<(), HushError> {
        let conv = parse_conversation(&conversation)?;
        self.act(|c, now| c.set_disappearing(&conv, seconds, now))
    }
}

impl HushClient {
    async fn upload(
        &self,
        bytes: Vec<u8>,
        mime: String,
        file_name: Option<String>,
    ) -> Result<AttachmentPointer, HushError> {
        let messenger = self.messenger_handle()?;
        RUNTIME
            .spawn(async move { upload(messenger, bytes, mime, file_name).await })
            .await
            .map_err(|_| HushError::network("upload task failed"))?
    }

    /// A handle for blob transfers, which need the connection.
    fn messenger_handle(&self) -> Result<hush_net::messenger::BlobClient, HushError> {
        let messenger = self.messenger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        messenger.as_ref().map(Messenger::blob_client).ok_or_else(|| HushError::network("not connected"))
    }
}

async fn upload(
    blobs: hush_net::messenger::BlobClient,
    bytes: Vec<u8>,
    mime: String,
    file_name: Option<String>,
) -> Result<AttachmentPointer, HushError> {
    Ok(blobs.upload_attachment(&bytes, &mime, file_name).await?)
}

async fn download(blobs: hush_net::messenger::BlobClient, pointer: AttachmentPointer) -> Result<Vec<u8>, HushError> {
    Ok(blobs.download_attachment(&pointer, MAX_DOWNLOAD_BYTES).await?)
}

fn group_id(conversation: &str) -> Result<hush_core::group::GroupId, HushError> {
    match parse_conversation(conversation)? {
        ConversationId::Group(g) => Ok(g),
        ConversationId::Direct(_) => Err(HushError::bad_input("not a group conversation")),
    }
}

impl From<hush_net::messenger::MessengerError> for HushError {
    fn from(e: hush_net::messenger::MessengerError) -> Self {
        use hush_net::messenger::MessengerError as M;
        match e {
            M::Core(e) => e.into(),
            M::Transport(e) => Self::network(e.to_string()),
            M::Relay(detail) => Self::network(format!("relay refused: {detail}")),
            M::Http(detail) => Self::network(format!("blob transfer failed: {detail}")),
            M::Stopped => Self::network("client stopped"),
        }
    }
}
