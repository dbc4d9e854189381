//! The client state machine (docs/PROTOCOL.md §16): sans-IO, over the encrypted [`Store`].
//!
//! A [`Client`] turns user actions into frames for the relay and frames from the relay into
//! [`Event`]s and store updates. It owns no socket, thread or clock: the transport (hush-net
//! natively, the browser WebSocket in hush-wasm) moves the frames and passes the time.
//!
//! ```text
//!   transport ──ServerFrame──▶ handle_incoming(frame, now) ──▶ Vec<Event>
//!   app ──send_text / react / create_group / …──▶ Client
//!   transport ◀──ClientFrame── take_outgoing()
//! ```
//!
//! - **One transaction per batch of envelopes.** Opening, decrypting, the session update, the
//!   history insert, receipts to send and the mark of the relay's message id commit together, for
//!   every envelope of the batch; the relay's ack (one frame per batch) goes out only after that
//!   commit. A payload that decrypts but cannot be applied (a poison message) is undone alone, in a
//!   savepoint, reported as [`Event::Undecryptable`] and acked. A message id seen before is acked
//!   again and reported no more.
//! - **The outbox.** A message is stored (history + outbox) before it is encrypted or sent. Its
//!   payload waits there until every recipient device has a session and is encrypted when it is
//!   sent, in one transaction with the ratchet step, into one relay request per recipient device;
//!   the payload stays until the relay took every device's copy. A refused copy, or one whose
//!   answer was lost, is encrypted anew for its next attempt; a payload that arrives twice is shown
//!   once (client message ids).
//! - **Sealed by default.** Every payload travels in a sealed-sender envelope, which carries the
//!   own delivery token. When the recipient's token is known (from its envelopes or its contact
//!   link) the request is a `SealedSend` and the relay does not learn the sender; otherwise an
//!   authenticated `Send` carries the same envelope.
//! - **Contacts.** A message from a user who is not a contact makes them a *requested* contact and
//!   waits as a [`Event::MessageRequest`]; a blocked contact's messages are acked and dropped.
//!
//! - **Several devices per user.** A new device starts with [`Client::create_for_link`] and shows
//!   [`Client::link_request`] (`hush://link/…`); an existing device approves it with
//!   [`Client::link_device`] (the steps are in the `linking` module). What one device sends also
//!   goes to the user's other devices as a sent sync, so every device shows the same history.
//!
//! Not yet: relays other than the user's own (contacts must share it), signed-prekey rotation.
//!
//! The code is organised by what it handles, each module holding both what this client sends and
//! how it takes in what arrives for that noun: `connection` (authentication, keys at connect,
//! presence, frames, the answers to requests), `contacts` (contacts, safety numbers, device lists
//! and bundles), `messages` (texts, attachments, edits, deletes, reactions, receipts, typing,
//! timers, history), `groups`, `linking`, `sent_sync` (this user's other devices) and `outbox`
//! (payloads waiting for sessions, encryption, requests kept until acknowledged).
//! `incoming` opens and decrypts each envelope and hands its payload, through a small dispatch
//! table, to the noun's handler; a peer's payloads and sent syncs share those handlers.

mod connection;
mod contact_link;
mod contacts;
mod devices;
mod event;
mod groups;
pub mod hex_id;
mod incoming;
mod linking;
mod messages;
mod outbox;
mod retry_receipt;
mod sent_sync;
pub mod view;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod devices_tests;
#[cfg(test)]
mod prekey_rotation_tests;
#[cfg(test)]
mod retry_receipt_tests;
#[cfg(test)]
mod rollback_tests;
#[cfg(test)]
mod test_relay;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};

use crate::account::Account;
use crate::content::{Content, ContentBody};
use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::identity::{DeviceIdentity, UserIdentity};
use crate::pqxdh::SessionConfig;
use crate::store::Store;
use crate::wire::relay::{self as relay, ClientFrame};

pub use connection::{
    MAX_SERVER_FRAME_BYTES, RELAY_AUTH_CONTEXT, answer_challenge, challenge_message, decode_server_frame,
};
pub use contact_link::{CONTACT_LINK_PREFIX, ContactLink, MAX_CONTACT_LINK_BYTES};
pub use event::Event;
pub use linking::MAX_LINKED_CONTACTS;
// Defined with the other limits; re-exported where the frames are built.
pub use crate::limits::RELAY_PROTOCOL_VERSION;

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
    /// Wait this long (ms) for the relay's answer to a send before sending it again; also the
    /// longest wait a rate limit imposes, whatever the relay says.
    pub retry_after_ms: u64,
    /// Give a send up (status Failed) after this many refusals that did not say when to retry (an
    /// older relay's); refusals with a retry time never count.
    pub max_attempts: u32,
    /// Send delivery receipts for messages from accepted contacts.
    pub delivery_receipts: bool,
    /// A group invite from someone who is not an accepted contact becomes a group request
    /// ([`Event::GroupRequest`]) the user accepts or declines, instead of joining the group. Off by
    /// default until the bindings show group requests.
    pub group_requests: bool,
}

impl ClientConfig {
    /// Checks what goes into the contact link: `relay_url` a `ws://`/`wss://` URL and
    /// `display_name` without control characters, each at most [`MAX_LINK_TEXT_BYTES`], so every
    /// link this client hands out is one others can add. `Malformed`/`TooLarge` name "relay URL" or
    /// "display name".
    ///
    /// [`MAX_LINK_TEXT_BYTES`]: crate::limits::MAX_LINK_TEXT_BYTES
    pub fn check(&self) -> Result<()> {
        contact_link::check_relay_url(&self.relay_url, "relay URL")?;
        contact_link::check_display_name(&self.display_name, "display name")
    }

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
            group_requests: false,
        }
    }
}

/// What encrypting needs, borrowed from a [`Client`] beside an open store transaction.
struct Ctx<'a> {
    rng: &'a mut ChaCha20Rng,
    identity: &'a DeviceIdentity,
    me: SigningPublicKey,
    /// The version of the own device list, which every sealed envelope carries (§9.1).
    list_version: u64,
    /// The own delivery token, which every sealed envelope carries (§9.5).
    token: Option<&'a DeliveryToken>,
    config: &'a ClientConfig,
}

impl Ctx<'_> {
    /// The same borrows for a shorter while (to hand to a handler and keep using after).
    fn reborrow(&mut self) -> Ctx<'_> {
        Ctx {
            rng: &mut *self.rng,
            identity: self.identity,
            me: self.me,
            list_version: self.list_version,
            token: self.token,
            config: self.config,
        }
    }
}

/// Borrows a [`Ctx`] from the client's fields (not from the store, which a transaction holds).
macro_rules! ctx {
    ($client:expr) => {
        $crate::client::Ctx {
            rng: &mut $client.rng,
            identity: &$client.identity,
            me: $client.user.ok_or($crate::error::Error::NotLinked)?,
            list_version: $client.own_list_version,
            token: $client.token.as_ref(),
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
    FetchBundle {
        user: SigningPublicKey,
        device: SigningPublicKey,
    },
    /// Outbox item `id`'s copy for `device` (`None`: a request stored as it is).
    Outbox {
        id: u64,
        device: Option<SigningPublicKey>,
    },
    UploadToken,
    Fire,
}

/// The sans-IO client. See the [module docs](self).
pub struct Client {
    store: Store,
    rng: ChaCha20Rng,
    config: ClientConfig,
    identity: DeviceIdentity,
    /// This device's user (the own device list's signer); `None` only while this device waits to
    /// be linked (then `token` is `None` too).
    user: Option<SigningPublicKey>,
    /// The user key's secret: held by the primary device only (§12), `None` on a linked one.
    user_identity: Option<UserIdentity>,
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
    /// Outbox items with requests awaiting an answer, and for which devices.
    in_flight: HashMap<u64, Vec<Option<SigningPublicKey>>>,
    /// Outbox items a refusal rescheduled since their last attempt (one refusal sets the time).
    refused_now: HashSet<u64>,
    /// Retry receipts sent per sender device, against their budget.
    receipt_budget: retry_receipt::ReceiptBudget,
    /// Envelopes that wait for a device list or a sender-key distribution (not acked).
    parked: Vec<relay::Envelope>,
    replenishing: bool,
    /// (user, list version) pairs a newer device list was fetched for on this connection.
    newer_lists_asked: HashSet<(SigningPublicKey, u64)>,
    /// This device was removed from its user's list and its store wiped (§12.9).
    removed: bool,
    /// The version of the stored own device list (0 while waiting to be linked).
    own_list_version: u64,
    /// The id of the signed prekey last published in this connection.
    published_prekey: Option<u32>,
    /// Events produced outside `handle_incoming` (a send given up), returned by its next call.
    backlog: Vec<Event>,
    /// Which user a watched device belongs to.
    presence_users: HashMap<SigningPublicKey, SigningPublicKey>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("user_key", &self.user)
            .field("primary", &self.user_identity.is_some())
            .field("device_key", &self.identity.device_key())
            .field("connected", &self.connected)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

impl Client {
    /// Creates a new account in an empty `store`: device and user identities, the first signed
    /// device list, prekeys and a delivery token. The relay learns of them at the first connect.
    /// A `config` that fails [`ClientConfig::check`] is refused before anything is written.
    pub fn create(mut store: Store, config: ClientConfig, now_ms: u64) -> Result<Self> {
        config.check()?;
        let mut rng = new_rng()?;
        let mut account = Account::new(&mut rng);
        account.rotate_due_prekeys(&mut rng, now_ms);
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
        config.check()?;
        let rng = new_rng()?;
        let store_read_only = store.is_read_only();
        let (account, user, user_identity, token, own_list_version) = {
            let tx = store.transaction()?;
            let account = tx.account()?.ok_or(Error::Malformed { what: "store without an account" })?;
            let own_list = tx.setting(SETTING_DEVICE_LIST)?.map(|l| SignedDeviceList::from_bytes(&l)).transpose()?;
            let (user, user_identity, token) = match (tx.setting(SETTING_DELIVERY_TOKEN)?, &own_list) {
                (Some(token), Some(list)) => {
                    let secret = tx.user()?;
                    if secret.as_ref().is_some_and(|s| s.user_key() != list.user_key()) {
                        return Err(Error::StoreCorrupt { table: "user_identity" });
                    }
                    // Only the device first on the own list keeps the user key (§12.10): the
                    // primary, which never leaves its own list and appends every device it links.
                    // A device linked before that rule holds a copy, deleted here.
                    let primary = list.devices().first().is_some_and(|d| d.device_key() == account.device_key());
                    let copy_held = !primary && secret.is_some();
                    if copy_held && !store_read_only {
                        tx.delete_user()?;
                    }
                    let user_identity = if primary { secret } else { None };
                    (Some(list.user_key()), user_identity, Some(DeliveryToken::from_bytes(&token)?))
                }
                // A device waiting to be linked: no user yet, only its link request.
                _ if tx.setting(SETTING_LINK_REQUEST)?.is_some() => (None, None, None),
                _ => return Err(Error::Malformed { what: "store without a user key" }),
            };
            let own_list_version = own_list.as_ref().map_or(0, SignedDeviceList::list_version);
            tx.commit()?;
            (account, user, user_identity, token, own_list_version)
        };
        Ok(Self {
            store,
            rng,
            config,
            identity: account.identity().clone(),
            user,
            user_identity,
            account,
            token,
            connected: false,
            next_request_id: 1,
            pending: HashMap::new(),
            outgoing: Vec::new(),
            fetching_lists: HashSet::new(),
            fetching_bundles: HashSet::new(),
            in_flight: HashMap::new(),
            refused_now: HashSet::new(),
            receipt_budget: retry_receipt::ReceiptBudget::default(),
            parked: Vec::new(),
            replenishing: false,
            newer_lists_asked: HashSet::new(),
            removed: false,
            own_list_version,
            published_prekey: None,
            backlog: Vec::new(),
            presence_users: HashMap::new(),
        })
    }

    /// This user's key (the identity contacts pin). [`Error::NotLinked`] while this device waits
    /// to be linked.
    pub fn user_key(&self) -> Result<SigningPublicKey> {
        self.user.ok_or(Error::NotLinked)
    }

    /// Whether this device belongs to a user: `false` only between
    /// [`create_for_link`](Self::create_for_link) and the approval's arrival ([`Event::DeviceLinked`]).
    pub fn is_linked(&self) -> bool {
        self.user.is_some()
    }

    /// Whether this is the user's primary device: the one that holds the user key (the one that
    /// created the user, §12). Only the primary links and removes devices and creates or changes
    /// groups; a linked device gets [`Error::NotPrimary`] for those.
    pub fn is_primary(&self) -> bool {
        self.user_identity.is_some()
    }

    /// The user key's secret, for what only the primary may sign.
    fn primary_user(&self) -> Result<&UserIdentity> {
        self.user_key()?;
        self.user_identity.as_ref().ok_or(Error::NotPrimary)
    }

    /// This device's key (its mailbox address on the relay).
    pub fn device_key(&self) -> SigningPublicKey {
        self.identity.device_key()
    }

    /// This device's identity (the transport signs the relay's challenge with it).
    pub fn device_identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The store, for reads this API does not cover. Writes belong to the client.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    fn content(&mut self, body: ContentBody, now_ms: u64) -> Result<Content> {
        let content = Content::new(&mut self.rng, now_ms, body);
        content.validate()?;
        Ok(content)
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
