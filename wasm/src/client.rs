//! `WasmClient`: hush-core's sans-IO [`Client`] for JavaScript (its docs say how the JavaScript
//! wrapper drives it).

use std::collections::HashMap;

use hush_core::attachment::{self, AttachmentEncryption};
use hush_core::client::view::{self, EventView, conversation_id as conversation_hex, user_id as user_hex};
use hush_core::content::{AttachmentPointer, ContentBody, MessageId};
use hush_core::group::GroupId;
use hush_core::store::ConversationId;
use hush_core::{Client, ClientConfig, ContactLink, ErrorKind, Event, SigningPublicKey, Store, Unlock};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::error::HushError;

/// The largest attachment encrypted or decrypted (plaintext bytes).
const MAX_ATTACHMENT_BYTES: u64 = hush_core::limits::DEFAULT_MAX_ATTACHMENT_BYTES;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Where an outgoing message stands; "received" for incoming ones. */
export type HushMessageStatus = "sending" | "sent" | "delivered" | "read" | "failed" | "received";

/** An attachment a message points to. */
export interface HushAttachment { mime: string; size: number; fileName?: string }

/** One reaction on a message. */
export interface HushReaction { user: string; emoji: string }

/** A message of the history. */
export interface HushMessage {
  conversation: string; id: string; sender: string; outgoing: boolean;
  sentAtMs: number; receivedAtMs: number;
  text?: string; attachment?: HushAttachment;
  status: HushMessageStatus; edited: boolean; deleted: boolean;
  reactions: HushReaction[]; expiresAtMs?: number;
}

/** A page of history, newest first; `next` is the cursor of the next (older) page. */
export interface HushHistoryPage { messages: HushMessage[]; next?: string }

/** A conversation of the chat list. */
export interface HushConversation {
  id: string; isGroup: boolean; peer: string; name: string;
  lastActivityMs: number; unread: number; disappearingSecs: number;
}

/** A contact. */
export interface HushContact { userId: string; name: string; state: "requested" | "accepted" | "blocked"; verified: boolean }

/** A safety number: 60 digits in groups of five, and the QR payload to scan. */
export interface HushSafetyNumber { digits: string; qr: Uint8Array }

/** An encrypted attachment waiting for upload. */
export interface HushEncryptedAttachment { blob: Uint8Array; handle: number }

/** Something that happened. */
export type HushEvent =
  | { type: "message"; message: HushMessage }
  | { type: "messageRequest"; message: HushMessage }
  | { type: "edited"; conversation: string; messageId: string }
  | { type: "deleted"; conversation: string; messageId: string }
  | { type: "reaction"; conversation: string; messageId: string; sender: string; emoji: string; removed: boolean }
  | { type: "receipt"; conversation: string; messageIds: string[]; sender: string; read: boolean }
  | { type: "typing"; conversation: string; sender: string; started: boolean }
  | { type: "presence"; user?: string; online: boolean }
  | { type: "groupJoined"; conversation: string; name: string }
  | { type: "groupChanged"; conversation: string; changes: string[] }
  | { type: "identityChanged"; user: string }
  | { type: "disappearingTimer"; conversation: string; seconds: number }
  | { type: "messageStatus"; conversation: string; messageId: string; status: HushMessageStatus }
  | { type: "undecryptable"; sender?: string; reason: HushErrorCode }
  | { type: "uploadToken"; request: number; token?: string }
  | { type: "expired"; count: number }
  | { type: "deviceLinked"; user: string }
  | { type: "deviceRemoved"; user: string }
  | { type: "conversationRead"; conversation: string }
  | { type: "connection"; state: "connected" | "disconnected" | "connecting" }
  | { type: "connection"; state: "unreachable"; reason: string; retryInMs: number };

"#;

// Records and events are hush-core's view layer (`hush_core::client::view`, with its `serde`
// feature): serialized as they are, so they have the fields of the native bindings' records.

/// What [`WasmClient::handle_frame`] and [`WasmClient::tick`] return: the views of the events, and
/// the answers to upload-token requests, which the JavaScript wrapper takes for itself.
#[derive(Serialize)]
#[serde(untagged)]
enum JsEvent {
    View(EventView),
    UploadToken(UploadToken),
}

#[derive(Serialize)]
struct UploadToken {
    /// Always "uploadToken".
    r#type: &'static str,
    request: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn js_error(kind: ErrorKind, message: &str) -> HushError {
    HushError::new(kind, message)
}

fn bad_input(message: &str) -> HushError {
    js_error(ErrorKind::BadInput, message)
}

fn core_error(e: hush_core::Error) -> HushError {
    HushError::from(e)
}

/// Setting a property of a fresh object does not fail; if it did, say so as an internal error.
fn set(target: &js_sys::Object, key: &str, value: &JsValue) -> Result<(), HushError> {
    js_sys::Reflect::set(target, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| js_error(ErrorKind::Internal, "cannot build the result object"))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, HushError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(ErrorKind::Internal, &e.to_string()))
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

use hush_core::client::hex_id::{self, to_hex as hex};

/// An id the app passed that is not one: its mistake, `BadInput` (as in the native bindings).
fn bad_id(e: hush_core::Error) -> HushError {
    bad_input(&e.to_string())
}

fn parse_conversation(id: &str) -> Result<ConversationId, HushError> {
    hex_id::conversation_from_hex(id).map_err(bad_id)
}

fn parse_user(id: &str) -> Result<SigningPublicKey, HushError> {
    hex_id::user_from_hex(id).map_err(bad_id)
}

fn parse_users(ids: &[String]) -> Result<Vec<SigningPublicKey>, HushError> {
    ids.iter().map(|u| parse_user(u)).collect()
}

fn parse_message_id(id: &str) -> Result<MessageId, HushError> {
    hex_id::message_id_from_hex(id).map_err(bad_id)
}

fn group_id(conversation: &str) -> Result<GroupId, HushError> {
    match parse_conversation(conversation)? {
        ConversationId::Group(g) => Ok(g),
        ConversationId::Direct(_) => Err(bad_input("not a group conversation")),
    }
}

/// The hush client state machine for JavaScript.
///
/// The same API as the native `HushClient` (hush-ffi), in camelCase, with the same hex-string ids:
/// a user id is the hex user key, a conversation id the hex of [`ConversationId::to_bytes`], a
/// message id the hex client message id. This object owns no socket: the JavaScript wrapper
/// (`js/hush-client.js`) moves the bytes over the browser WebSocket.
///
/// - Every binary message from the relay goes to [`handleFrame`](WasmClient::handle_frame) (the
///   first one, the relay's challenge, too: the client answers it itself); after every call
///   [`takeOutgoing`](WasmClient::take_outgoing) gives the frames to send.
/// - [`onDisconnected`](WasmClient::on_disconnected) when the socket closes,
///   [`tick`](WasmClient::tick) every few seconds.
/// - Attachments: [`encryptAttachment`](WasmClient::encrypt_attachment) gives the blob to upload
///   (with a token from [`requestUploadToken`](WasmClient::request_upload_token)) and a handle;
///   [`sendAttachment`](WasmClient::send_attachment) sends the pointer once the relay named the blob.
///
/// Events and records are plain JavaScript objects, hush-core's view records
/// ([`hush_core::client::view`]) with the fields of the native bindings' records (TypeScript:
/// `HushMessage`, `HushEvent`, …); errors are `HushError`s: JavaScript `Error`s whose `name` is
/// `"HushError"` and whose `code` is the kind of the cause (`"bad_input"`, `"wrong_key"`, … as in
/// the native bindings).
#[wasm_bindgen]
pub struct WasmClient {
    client: Client,
    relay_url: String,
    /// Encrypted attachments waiting for their upload, by handle.
    uploads: HashMap<u32, AttachmentEncryption>,
    next_upload: u32,
    /// The store's write count when its image was last taken (`takeStoreImage`).
    saved_writes: Option<u64>,
}

/// A random key for a store nobody keeps (in memory).
fn random_store_key() -> Result<Zeroizing<[u8; 32]>, HushError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, key.as_mut_slice())
        .map_err(|_| js_error(ErrorKind::Internal, "no random number generator"))?;
    Ok(key)
}

impl WasmClient {
    fn from_client(client: Client, relay_url: String) -> Self {
        Self { client, relay_url, uploads: HashMap::new(), next_upload: 1, saved_writes: None }
    }

    fn events(&self, events: Vec<Event>) -> Result<JsValue, HushError> {
        let me = view::viewer(&self.client);
        let events: Vec<JsEvent> = events
            .into_iter()
            .filter_map(|e| match e {
                Event::UploadToken { request, token } => {
                    Some(JsEvent::UploadToken(UploadToken { r#type: "uploadToken", request, token }))
                }
                e => view::event(e, &me).map(JsEvent::View),
            })
            .collect();
        to_js(&events)
    }

    fn pointer(&mut self, conversation: &str, message_id: &str) -> Result<AttachmentPointer, HushError> {
        let (conv, id) = (parse_conversation(conversation)?, parse_message_id(message_id)?);
        let m = self
            .client
            .message(&conv, &id)
            .map_err(core_error)?
            .ok_or_else(|| js_error(ErrorKind::NotFound, "no such message"))?;
        match m.content().map_err(core_error)? {
            Some(hush_core::Content { body: ContentBody::Attachment(pointer), .. }) => Ok(pointer),
            _ => Err(bad_input("the message has no attachment")),
        }
    }
}

#[wasm_bindgen]
impl WasmClient {
    /// Creates a new account on `relayUrl` (the relay's WebSocket URL, e.g. `ws://host:8080/v1/ws`),
    /// named `displayName` in its contact link. The store lives in memory, under a random key
    /// nobody keeps: use [`createStore`](WasmClient::create_store) for an account that is kept.
    pub fn create(
        #[wasm_bindgen(js_name = relayUrl)] relay_url: String,
        #[wasm_bindgen(js_name = displayName)] display_name: String,
    ) -> Result<WasmClient, HushError> {
        Self::create_with(Unlock::Key(random_store_key()?), relay_url, display_name)
    }

    /// Creates a new account whose store is kept: unlocked by a 32-byte `storeKey` or by a
    /// `passphrase` (Argon2id; give exactly one). [`takeStoreImage`](WasmClient::take_store_image)
    /// gives the store's bytes to keep, and [`open`](WasmClient::open) opens them again.
    #[wasm_bindgen(js_name = createStore)]
    pub fn create_store(
        #[wasm_bindgen(js_name = storeKey)] store_key: Option<Vec<u8>>,
        passphrase: Option<String>,
        #[wasm_bindgen(js_name = relayUrl)] relay_url: String,
        #[wasm_bindgen(js_name = displayName)] display_name: String,
    ) -> Result<WasmClient, HushError> {
        Self::create_with(crate::store::unlock(store_key, passphrase)?, relay_url, display_name)
    }

    fn create_with(unlock: Unlock, relay_url: String, display_name: String) -> Result<WasmClient, HushError> {
        let store = Store::open_in_memory(unlock).map_err(core_error)?;
        let config = ClientConfig::new(relay_url.clone(), display_name);
        let client = Client::create(store, config, now_ms()).map_err(core_error)?;
        Ok(Self::from_client(client, relay_url))
    }

    /// Opens the account in a store image (from [`takeStoreImage`](WasmClient::take_store_image)),
    /// unlocked by its `storeKey` or `passphrase`. A wrong one throws `wrong_key`; bytes that
    /// are no store throw `bad_input` or `storage`.
    pub fn open(
        image: &[u8],
        #[wasm_bindgen(js_name = storeKey)] store_key: Option<Vec<u8>>,
        passphrase: Option<String>,
        #[wasm_bindgen(js_name = relayUrl)] relay_url: String,
        #[wasm_bindgen(js_name = displayName)] display_name: String,
    ) -> Result<WasmClient, HushError> {
        let store = Store::open_image(image, crate::store::unlock(store_key, passphrase)?).map_err(core_error)?;
        let client = Client::open(store, ClientConfig::new(relay_url.clone(), display_name)).map_err(core_error)?;
        let mut this = Self::from_client(client, relay_url);
        this.saved_writes = Some(this.client.store_mut().write_count());
        Ok(this)
    }

    /// The store's bytes (its SQLite file, values encrypted) if it changed since the last call (or
    /// since [`open`](WasmClient::open)), else `undefined`. Keep them before sending the frames
    /// taken after the change: the relay deletes what the client acknowledged.
    #[wasm_bindgen(js_name = takeStoreImage)]
    pub fn take_store_image(&mut self) -> Result<Option<Vec<u8>>, HushError> {
        let writes = self.client.store_mut().write_count();
        if self.saved_writes == Some(writes) {
            return Ok(None);
        }
        let image = self.client.store_mut().image().map_err(core_error)?;
        self.saved_writes = Some(writes);
        Ok(Some(image))
    }

    /// The relay's WebSocket URL.
    #[wasm_bindgen(getter, js_name = relayUrl)]
    pub fn relay_url(&self) -> String {
        self.relay_url.clone()
    }

    /// Creates a device that waits to be linked to an existing user (in memory, as `create`).
    /// Show `linkRequest()` to one of the user's devices, which calls `linkDevice`; a
    /// `deviceLinked` event says when it is done. Until then calls that need a user throw
    /// `HushError` with code `"protocol"` ("not linked").
    #[wasm_bindgen(js_name = createForLink)]
    pub fn create_for_link(
        #[wasm_bindgen(js_name = relayUrl)] relay_url: String,
        #[wasm_bindgen(js_name = displayName)] display_name: String,
    ) -> Result<WasmClient, HushError> {
        let store = Store::open_in_memory(Unlock::Key(random_store_key()?)).map_err(core_error)?;
        let config = ClientConfig::new(relay_url.clone(), display_name);
        let client = Client::create_for_link(store, config, now_ms()).map_err(core_error)?;
        Ok(Self::from_client(client, relay_url))
    }

    /// The `hush://link/…` URI a `createForLink` device shows until it is linked (it holds a
    /// secret: show it to the user only).
    #[wasm_bindgen(js_name = linkRequest)]
    pub fn link_request(&mut self) -> Result<String, HushError> {
        self.client.link_request().map(|uri| uri.to_string()).map_err(core_error)
    }

    /// Approves a new device of this user from the URI it shows; returns its device id.
    #[wasm_bindgen(js_name = linkDevice)]
    pub fn link_device(&mut self, uri: &str) -> Result<String, HushError> {
        self.client.link_device(uri, now_ms()).map(|d| user_hex(&d)).map_err(core_error)
    }

    /// The device ids on this user's signed device list, this device's included.
    pub fn devices(&mut self) -> Result<Vec<String>, HushError> {
        let devices = self.client.devices().map_err(core_error)?;
        Ok(devices.iter().map(|d| user_hex(&d.device_key())).collect())
    }

    /// Removes a lost or stolen device of this user (§12.9): signs and publishes the list without
    /// it. It wipes itself when it next connects (its `deviceRemoved` event); contacts stop
    /// encrypting to it after the next message. Throws `identity` for a device not on the list,
    /// `bad_input` for this device itself or a malformed id.
    #[wasm_bindgen(js_name = removeDevice)]
    pub fn remove_device(&mut self, #[wasm_bindgen(js_name = deviceId)] device_id: &str) -> Result<(), HushError> {
        let device = parse_user(device_id)?;
        self.client.remove_device(&device, now_ms()).map_err(core_error)
    }

    /// Whether this device belongs to a user (false only while a `createForLink` device waits).
    #[wasm_bindgen(getter, js_name = isLinked)]
    pub fn is_linked(&self) -> bool {
        self.client.is_linked()
    }

    /// This user's id (their user key, hex); throws `protocol` ("not linked") while a `createForLink` device waits.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> Result<String, HushError> {
        self.client.user_key().map(|u| user_hex(&u)).map_err(core_error)
    }

    /// This device's id (its device key, hex).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        user_hex(&self.client.device_key())
    }

    /// The `hush://contact/…` link others open to add this user (also the QR code's text).
    #[wasm_bindgen(js_name = contactLink)]
    pub fn contact_link(&self) -> Result<String, HushError> {
        self.client.contact_link().map(|l| l.to_url()).map_err(core_error)
    }

    // ---- Transport ---------------------------------------------------------------------------

    /// One binary message from the relay; returns the events it caused.
    #[wasm_bindgen(js_name = handleFrame, unchecked_return_type = "HushEvent[]")]
    pub fn handle_frame(&mut self, frame: &[u8]) -> Result<JsValue, HushError> {
        let events = self.client.handle_incoming(frame, now_ms()).map_err(core_error)?;
        self.events(events)
    }

    /// The frames to send to the relay, in order.
    #[wasm_bindgen(js_name = takeOutgoing, unchecked_return_type = "Uint8Array[]")]
    pub fn take_outgoing(&mut self) -> js_sys::Array {
        self.client.take_outgoing_bytes().into_iter().map(|f| JsValue::from(js_sys::Uint8Array::from(&f[..]))).collect()
    }

    /// Whether the relay accepted this device on the current connection.
    #[wasm_bindgen(getter, js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// The socket closed.
    #[wasm_bindgen(js_name = onDisconnected)]
    pub fn on_disconnected(&mut self) {
        self.client.on_disconnected();
    }

    /// Timers: disappearing messages, send retries. Call every few seconds.
    #[wasm_bindgen(unchecked_return_type = "HushEvent[]")]
    pub fn tick(&mut self) -> Result<JsValue, HushError> {
        let events = self.client.tick(now_ms()).map_err(core_error)?;
        self.events(events)
    }

    /// Asks the relay for a blob upload token; it arrives as an `uploadToken` event with this id.
    #[wasm_bindgen(js_name = requestUploadToken)]
    pub fn request_upload_token(&mut self) -> Result<f64, HushError> {
        self.client.request_upload_token().map(|id| id as f64).map_err(core_error)
    }

    // ---- Contacts ----------------------------------------------------------------------------

    /// Adds the user behind a contact link; returns their user id.
    #[wasm_bindgen(js_name = addContact)]
    pub fn add_contact(&mut self, link: &str) -> Result<String, HushError> {
        let link = ContactLink::from_url(link).map_err(core_error)?;
        self.client.add_contact(&link, now_ms()).map(|c| user_hex(&c.user_key)).map_err(core_error)
    }

    /// Accepts a message request.
    #[wasm_bindgen(js_name = acceptContact)]
    pub fn accept_contact(&mut self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> Result<(), HushError> {
        let user = parse_user(user_id)?;
        self.client.accept_contact(&user).map(|_| ()).map_err(core_error)
    }

    /// Blocks a user: their messages are dropped from now on.
    pub fn block(&mut self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> Result<(), HushError> {
        let user = parse_user(user_id)?;
        self.client.block(&user).map(|_| ()).map_err(core_error)
    }

    /// Every contact.
    #[wasm_bindgen(unchecked_return_type = "HushContact[]")]
    pub fn contacts(&mut self) -> Result<JsValue, HushError> {
        to_js(&self.client.contact_views().map_err(core_error)?)
    }

    /// The safety number with a contact.
    #[wasm_bindgen(js_name = safetyNumber, unchecked_return_type = "HushSafetyNumber")]
    pub fn safety_number(&mut self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> Result<JsValue, HushError> {
        let user = parse_user(user_id)?;
        let n = self.client.safety_number_view(&user).map_err(core_error)?;
        let out = js_sys::Object::new();
        set(&out, "digits", &n.digits.into())?;
        set(&out, "qr", &js_sys::Uint8Array::from(&n.qr[..]))?;
        Ok(out.into())
    }

    /// Marks a contact verified if `scannedQr` (their QR payload) matches; `false` otherwise.
    pub fn verify(
        &mut self,
        #[wasm_bindgen(js_name = userId)] user_id: &str,
        #[wasm_bindgen(js_name = scannedQr)] scanned_qr: &[u8],
    ) -> Result<bool, HushError> {
        let user = parse_user(user_id)?;
        self.client.verify(&user, scanned_qr).map_err(core_error)
    }

    /// The conversation id of the 1:1 chat with a user.
    #[wasm_bindgen(js_name = directConversation)]
    pub fn direct_conversation(&self, #[wasm_bindgen(js_name = userId)] user_id: &str) -> Result<String, HushError> {
        Ok(conversation_hex(&ConversationId::Direct(parse_user(user_id)?)))
    }

    // ---- Messages ----------------------------------------------------------------------------

    /// Sends a text; returns the message id.
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&mut self, conversation: &str, text: &str) -> Result<String, HushError> {
        let conv = parse_conversation(conversation)?;
        self.client.send_text(&conv, text, now_ms()).map(|id| hex(&id)).map_err(core_error)
    }

    /// Replaces the text of one of this user's messages.
    pub fn edit(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
        text: &str,
    ) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(conversation)?, parse_message_id(message_id)?);
        self.client.edit(&conv, &id, text, now_ms()).map_err(core_error)
    }

    /// Deletes one of this user's messages for everyone.
    pub fn delete(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
    ) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(conversation)?, parse_message_id(message_id)?);
        self.client.delete(&conv, &id, now_ms()).map_err(core_error)
    }

    /// Adds (or, with `remove`, withdraws) a reaction.
    pub fn react(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
        emoji: &str,
        remove: bool,
    ) -> Result<(), HushError> {
        let (conv, id) = (parse_conversation(conversation)?, parse_message_id(message_id)?);
        self.client.react(&conv, &id, emoji, remove, now_ms()).map_err(core_error)
    }

    /// Marks a conversation read (sends read receipts).
    #[wasm_bindgen(js_name = markRead)]
    pub fn mark_read(&mut self, conversation: &str) -> Result<(), HushError> {
        let conv = parse_conversation(conversation)?;
        self.client.mark_read(&conv, now_ms()).map_err(core_error)
    }

    /// Tells the conversation this user is typing (or stopped).
    #[wasm_bindgen(js_name = setTyping)]
    pub fn set_typing(&mut self, conversation: &str, typing: bool) -> Result<(), HushError> {
        let conv = parse_conversation(conversation)?;
        self.client.set_typing(&conv, typing, now_ms()).map_err(core_error)
    }

    /// Sets the disappearing-message timer of a conversation (0 = off).
    #[wasm_bindgen(js_name = setDisappearing)]
    pub fn set_disappearing(&mut self, conversation: &str, seconds: u32) -> Result<(), HushError> {
        let conv = parse_conversation(conversation)?;
        self.client.set_disappearing(&conv, seconds, now_ms()).map_err(core_error)
    }

    // ---- Attachments -------------------------------------------------------------------------

    /// Encrypts an attachment: returns the blob to upload (`PUT /v1/blobs`) and a handle for
    /// [`sendAttachment`](Self::send_attachment).
    #[wasm_bindgen(js_name = encryptAttachment, unchecked_return_type = "HushEncryptedAttachment")]
    pub fn encrypt_attachment(&mut self, bytes: &[u8]) -> Result<JsValue, HushError> {
        let (blob, encryption) =
            attachment::encrypt_bytes(&mut rand_core::OsRng, bytes, MAX_ATTACHMENT_BYTES).map_err(core_error)?;
        let handle = self.next_upload;
        self.next_upload = self.next_upload.wrapping_add(1).max(1);
        self.uploads.insert(handle, encryption);
        let out = js_sys::Object::new();
        set(&out, "blob", &js_sys::Uint8Array::from(&blob[..]))?;
        set(&out, "handle", &handle.into())?;
        Ok(out.into())
    }

    /// Sends the attachment of `handle`, uploaded as blob `blobId`; returns the message id.
    #[wasm_bindgen(js_name = sendAttachment)]
    pub fn send_attachment(
        &mut self,
        conversation: &str,
        handle: u32,
        #[wasm_bindgen(js_name = blobId)] blob_id: &str,
        mime: &str,
        #[wasm_bindgen(js_name = fileName)] file_name: Option<String>,
    ) -> Result<String, HushError> {
        let conv = parse_conversation(conversation)?;
        let encryption = self.uploads.remove(&handle).ok_or_else(|| bad_input("unknown attachment handle"))?;
        let pointer = AttachmentPointer {
            blob_id: blob_id.as_bytes().to_vec(),
            encryption,
            mime: mime.to_owned(),
            thumbnail: None,
            file_name: file_name.filter(|n| !n.is_empty()),
        };
        self.client.send_attachment(&conv, pointer, now_ms()).map(|id| hex(&id)).map_err(core_error)
    }

    /// Forgets an encrypted attachment whose upload failed.
    #[wasm_bindgen(js_name = discardAttachment)]
    pub fn discard_attachment(&mut self, handle: u32) {
        self.uploads.remove(&handle);
    }

    /// The relay's blob id of a message's attachment (for `GET /v1/blobs/{id}`).
    #[wasm_bindgen(js_name = attachmentBlobId)]
    pub fn attachment_blob_id(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
    ) -> Result<String, HushError> {
        let pointer = self.pointer(conversation, message_id)?;
        let id = String::from_utf8(pointer.blob_id).map_err(|_| bad_input("bad blob id"))?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(bad_input("bad blob id"));
        }
        Ok(id)
    }

    /// Decrypts the downloaded blob of a message's attachment (checks its digest).
    #[wasm_bindgen(js_name = decryptAttachment)]
    pub fn decrypt_attachment(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
        blob: &[u8],
    ) -> Result<Vec<u8>, HushError> {
        let pointer = self.pointer(conversation, message_id)?;
        attachment::decrypt_bytes(blob, &pointer.encryption, MAX_ATTACHMENT_BYTES).map_err(core_error)
    }

    // ---- Groups ------------------------------------------------------------------------------

    /// Creates a group with these members (user ids); returns its conversation id.
    #[wasm_bindgen(js_name = createGroup)]
    pub fn create_group(&mut self, name: &str, members: Vec<String>) -> Result<String, HushError> {
        let members = parse_users(&members)?;
        self.client
            .create_group(name, &members, now_ms())
            .map(|g| conversation_hex(&ConversationId::Group(g)))
            .map_err(core_error)
    }

    /// Adds members to a group (admins only).
    #[wasm_bindgen(js_name = addMembers)]
    pub fn add_members(&mut self, conversation: &str, members: Vec<String>) -> Result<(), HushError> {
        let (group, members) = (group_id(conversation)?, parse_users(&members)?);
        self.client.add_members(&group, &members, now_ms()).map_err(core_error)
    }

    /// Removes a member from a group (admins only).
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = userId)] user_id: &str,
    ) -> Result<(), HushError> {
        let (group, user) = (group_id(conversation)?, parse_user(user_id)?);
        self.client.remove_member(&group, &user, now_ms()).map_err(core_error)
    }

    /// Leaves a group.
    #[wasm_bindgen(js_name = leaveGroup)]
    pub fn leave_group(&mut self, conversation: &str) -> Result<(), HushError> {
        let group = group_id(conversation)?;
        self.client.leave_group(&group, now_ms()).map_err(core_error)
    }

    /// Renames a group (admins only).
    #[wasm_bindgen(js_name = renameGroup)]
    pub fn rename_group(&mut self, conversation: &str, name: &str) -> Result<(), HushError> {
        let group = group_id(conversation)?;
        self.client.rename_group(&group, name, now_ms()).map_err(core_error)
    }

    // ---- Reading -----------------------------------------------------------------------------

    /// The chat list, most recent first.
    #[wasm_bindgen(unchecked_return_type = "HushConversation[]")]
    pub fn conversations(&mut self) -> Result<JsValue, HushError> {
        to_js(&self.client.conversation_views().map_err(core_error)?)
    }

    /// A page of history, newest first, older than `before` (the `next` of an earlier page).
    #[wasm_bindgen(unchecked_return_type = "HushHistoryPage")]
    pub fn history(&mut self, conversation: &str, before: Option<String>, limit: u32) -> Result<JsValue, HushError> {
        let conv = parse_conversation(conversation)?;
        let before = before.map(|b| hex_id::cursor_from_hex(&b)).transpose().map_err(bad_id)?;
        to_js(&self.client.history_view(&conv, before, limit as usize).map_err(core_error)?)
    }

    /// One message, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "HushMessage | undefined")]
    pub fn message(
        &mut self,
        conversation: &str,
        #[wasm_bindgen(js_name = messageId)] message_id: &str,
    ) -> Result<JsValue, HushError> {
        let (conv, id) = (parse_conversation(conversation)?, parse_message_id(message_id)?);
        match self.client.message_view(&conv, &id).map_err(core_error)? {
            Some(m) => to_js(&m),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Messages containing every word of `query` (through the blind index).
    #[wasm_bindgen(unchecked_return_type = "HushMessage[]")]
    pub fn search(&mut self, query: &str) -> Result<JsValue, HushError> {
        to_js(&self.client.search_view(query).map_err(core_error)?)
    }
}
