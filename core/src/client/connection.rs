//! The connection to the relay (docs/PROTOCOL.md §15, §16): authentication, the keys published
//! and the questions asked at every connect, presence, the frames in and out, and the answers to
//! this client's requests (each handed to the module of what it is about).

use prost::Message as _;

use super::{Client, Event, Pending, RELAY_PROTOCOL_VERSION, SETTING_DEVICE_LIST};
use crate::crypto::SigningPublicKey;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::store::ContactState;
use crate::wire::relay::{
    self as relay, ClientFrame, ServerFrame, client_frame::Body as Req, server_frame::Body as Resp,
};

/// What a device signs to authenticate to a relay, before the challenge's bytes.
pub const RELAY_AUTH_CONTEXT: &[u8] = b"hush/relay-auth/v1";

/// The largest server frame [`Client::handle_incoming`] decodes.
pub const MAX_SERVER_FRAME_BYTES: usize = 1024 * 1024;

impl Client {
    /// Whether the relay accepted this device on the current connection.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The transport authenticated (itself, or through a challenge this client answered): publish
    /// keys, check prekey counts, watch contacts' presence, send what waits in the outbox.
    pub fn on_connected(&mut self, now_ms: u64) -> Result<()> {
        // A read-only store (an older copy, §14.16) or a removed device (§12.9) publishes,
        // fetches and sends nothing.
        if self.sends_nothing() {
            return Ok(());
        }
        self.connected = true;
        self.rotate_prekeys(now_ms)?;
        // A device waiting to be linked only makes its mailbox exist; the approval arrives there.
        self.publish_prekeys()?;
        if self.user.is_none() {
            return Ok(());
        }
        self.user_setup()?;
        self.flush_outbox(now_ms, true)
    }

    /// Runs the prekey schedule (§5.5) at `now_ms`, storing the account if it changed. Not on a
    /// read-only store, whose keys are not to be used.
    fn rotate_prekeys(&mut self, now_ms: u64) -> Result<()> {
        if self.sends_nothing() {
            return Ok(());
        }
        let mut account = self.account.clone();
        if !account.rotate_due_prekeys(&mut self.rng, now_ms).changed {
            return Ok(());
        }
        let tx = self.store.transaction()?;
        tx.put_account(&account)?;
        tx.commit()?;
        self.account = account;
        Ok(())
    }

    /// Publishes the current signed and last-resort prekeys with the device keys: at every connect,
    /// and at the `tick` after the current signed prekey changed (§16.9). The relay replaces the
    /// ones it held.
    fn publish_prekeys(&mut self) -> Result<()> {
        let account = &self.account;
        let signed_prekey = account.signed_prekey()?;
        let body = Req::PublishPrekeys(relay::PublishPrekeys {
            signed_prekey: Some(signed_prekey.to_proto()),
            one_time_prekeys: Vec::new(),
            kem_prekeys: Vec::new(),
            last_resort_kem_prekey: Some(account.last_resort_kem_prekey()?.to_proto()),
            device: Some(account.device_keys().to_proto()),
        });
        self.published_prekey = Some(signed_prekey.id);
        self.push(body, Pending::Setup);
        Ok(())
    }

    /// What a device of a user tells and asks the relay after connecting (and after its link
    /// completed): its own device list, its delivery token, prekey counts, contacts' presence, and
    /// the user's current list when the user has other devices (one may have been linked meanwhile).
    pub(super) fn user_setup(&mut self) -> Result<()> {
        // The own list, published by this device itself: the relay then counts the device as the
        // user's, which a newer list leaving it out revokes (§15.5).
        let list = self.own_device_list()?;
        self.push(
            Req::PublishDeviceList(relay::PublishDeviceList { signed_device_list: list.to_bytes() }),
            Pending::Setup,
        );
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
        self.refused_now.clear();
        self.parked.clear();
        self.replenishing = false;
        self.newer_lists_asked.clear();
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
            Some(Pending::Outbox { id, device }) => {
                if let Some(flying) = self.in_flight.get_mut(&id) {
                    flying.retain(|d| *d != device);
                    if flying.is_empty() {
                        self.in_flight.remove(&id);
                    }
                }
            }
            Some(Pending::PrekeyCounts | Pending::PublishOneTime) => self.replenishing = false,
            _ => {}
        }
    }

    /// Frames to send, in order. Each has a fresh `request_id`; the answer comes back through
    /// [`handle_incoming`](Self::handle_incoming) with the same id.
    ///
    /// Nothing, ever, on a read-only store ([`Store::open_read_only`](crate::Store::open_read_only)):
    /// its keys and prekeys may have been used since the copy was made (§14.16); nor once this
    /// device was removed ([`Event::DeviceRemoved`]).
    pub fn take_outgoing(&mut self) -> Vec<ClientFrame> {
        let frames = core::mem::take(&mut self.outgoing);
        if self.sends_nothing() {
            return Vec::new();
        }
        frames
    }

    /// [`take_outgoing`](Self::take_outgoing), encoded.
    pub fn take_outgoing_bytes(&mut self) -> Vec<Vec<u8>> {
        self.take_outgoing().into_iter().map(|f| f.encode_to_vec()).collect()
    }

    /// Time-driven work: removes expired messages, rotates prekeys when due (§5.5) and resends sends
    /// the relay did not answer. Call it now and then (at the latest at
    /// [`next_expiry`](Self::next_expiry), and at least daily).
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        let tx = self.store.transaction()?;
        let count = tx.expire_messages(now_ms)?;
        tx.prune_processed(now_ms)?;
        tx.sent_log_prune(now_ms, crate::limits::MAX_SENT_LOG_AGE_MS, crate::limits::MAX_SENT_LOG_ROWS)?;
        tx.commit()?;
        if count > 0 {
            events.push(Event::Expired { count });
        }
        self.rotate_prekeys(now_ms)?;
        // Rotated here, or replaced when the replay memory was full (§6.6): the relay learns it now.
        if self.connected && self.published_prekey != Some(self.account.signed_prekey()?.id) {
            self.publish_prekeys()?;
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
    pub(super) fn push(&mut self, body: Req, why: Pending) -> u64 {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1).max(1);
        self.pending.insert(request_id, why);
        self.outgoing.push(ClientFrame { version: RELAY_PROTOCOL_VERSION, request_id, body: Some(body) });
        request_id
    }

    pub(super) fn own_device_list(&mut self) -> Result<SignedDeviceList> {
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

    /// Takes in one encoded frame from the relay; returns what the user should see. Answers to
    /// this client's requests, pushed envelopes, presence and the auth challenge all come here.
    /// A malformed frame is an error and changes nothing.
    pub fn handle_incoming(&mut self, frame: &[u8], now_ms: u64) -> Result<Vec<Event>> {
        let frame = decode_server_frame(frame)?;
        self.handle_frame(frame, now_ms)
    }

    /// [`handle_incoming`](Self::handle_incoming) for a decoded frame.
    pub fn handle_frame(&mut self, frame: ServerFrame, now_ms: u64) -> Result<Vec<Event>> {
        if frame.version != RELAY_PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion { what: "server frame", version: frame.version });
        }
        let mut events = core::mem::take(&mut self.backlog);
        let Some(body) = frame.body else { return Ok(events) };
        if frame.request_id != 0 {
            let why = self.pending.remove(&frame.request_id);
            if let Some(Pending::UploadToken) = why {
                let token = match body {
                    Resp::UploadToken(t) => Some(t.token),
                    _ => None,
                };
                events.push(Event::UploadToken { request: frame.request_id, token });
            } else {
                self.on_answer(why, body, now_ms, &mut events)?;
            }
        } else {
            match body {
                Resp::Envelope(envelope) => self.on_envelopes(vec![envelope], now_ms, &mut events)?,
                Resp::Presence(p) => {
                    if let Ok(device) = SigningPublicKey::from_slice(&p.device_key, "presence device") {
                        let user = self.presence_users.get(&device).copied();
                        events.push(Event::Presence { user, device, online: p.online });
                    }
                }
                Resp::Challenge(challenge) => {
                    let auth = answer_challenge(&self.identity, &challenge, now_ms / 1000, None);
                    self.push(Req::Auth(auth), Pending::Auth);
                }
                _ => {}
            }
        }
        events.append(&mut self.backlog);
        Ok(events)
    }

    /// An answer to one of this client's requests.
    fn on_answer(&mut self, why: Option<Pending>, body: Resp, now_ms: u64, events: &mut Vec<Event>) -> Result<()> {
        let (error, retry_after_ms) = match &body {
            Resp::Error(e) => (Some(e.code), e.retry_after_ms),
            _ => (None, 0),
        };
        match (why, body) {
            (Some(Pending::Auth), Resp::Ok(_)) => self.on_connected(now_ms)?,
            // The relay refuses a removed device's login with the list that removed it (§15.3).
            (Some(Pending::Auth), Resp::DeviceList(list)) => {
                self.on_list_without_this_device(&list.signed_device_list, events)?;
            }
            (Some(Pending::Outbox { id, device }), _) => {
                self.on_send_answer(id, device, error, retry_after_ms, now_ms)?;
            }
            (Some(Pending::FetchList(user)), Resp::DeviceList(list)) => {
                self.fetching_lists.remove(&user);
                self.on_device_list(user, &list.signed_device_list, now_ms, events)?;
            }
            (Some(Pending::FetchList(user)), _) => {
                self.fetching_lists.remove(&user);
                self.on_no_device_list(user, now_ms, events)?;
            }
            (Some(Pending::FetchBundle { user, device }), Resp::Bundle(b)) => {
                self.fetching_bundles.remove(&device);
                self.on_bundle(user, device, &b.bundle)?;
                self.flush(now_ms)?;
            }
            (Some(Pending::FetchBundle { device, .. }), _) => {
                self.fetching_bundles.remove(&device);
            }
            (Some(Pending::PrekeyCounts), Resp::PrekeyCounts(counts)) => self.on_prekey_counts(&counts)?,
            (Some(Pending::PrekeyCounts | Pending::PublishOneTime), _) => self.replenishing = false,
            _ => {}
        }
        Ok(())
    }

    fn on_prekey_counts(&mut self, counts: &relay::PrekeyCounts) -> Result<()> {
        let min = self.config.min_prekeys;
        if self.replenishing || (counts.one_time >= min && counts.kem_one_time >= min) {
            return Ok(());
        }
        let batch = self.config.prekey_batch as usize;
        let mut account = self.account.clone();
        let one_time =
            if counts.one_time < min { account.generate_one_time_prekeys(&mut self.rng, batch)? } else { Vec::new() };
        let kem =
            if counts.kem_one_time < min { account.generate_kem_prekeys(&mut self.rng, batch)? } else { Vec::new() };
        let tx = self.store.transaction()?;
        tx.put_account(&account)?;
        tx.commit()?;
        self.account = account;
        self.replenishing = true;
        let body = Req::PublishPrekeys(relay::PublishPrekeys {
            signed_prekey: None,
            one_time_prekeys: one_time.iter().map(|k| k.to_proto()).collect(),
            kem_prekeys: kem.iter().map(|k| k.to_proto()).collect(),
            last_resort_kem_prekey: None,
            device: Some(self.account.device_keys().to_proto()),
        });
        self.push(body, Pending::PublishOneTime);
        Ok(())
    }
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
