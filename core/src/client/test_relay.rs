//! An in-memory stand-in for the relay, for the client's unit tests: the same frames and answers
//! as hush-relay (its own tests run the real one), with controls for losing, repeating,
//! withholding and reordering traffic.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message as _;

use super::{Client, Event, RELAY_PROTOCOL_VERSION};
use crate::wire::proto as wire;
use crate::wire::relay::{
    self as relay, ClientFrame, ServerFrame, client_frame::Body as Req, server_frame::Body as Resp,
};

type Key = Vec<u8>;

#[derive(Default)]
struct DeviceState {
    keys: Option<wire::DeviceKeys>,
    signed: Option<wire::SignedPrekey>,
    last_resort: Option<wire::KemPrekey>,
    one_time: Vec<wire::OneTimePrekey>,
    kem: Vec<wire::KemPrekey>,
    token_hash: Option<Vec<u8>>,
    /// One-time prekeys handed out, to put back as a relay restored from a backup would.
    handed_out: Vec<(Option<wire::OneTimePrekey>, Option<wire::KemPrekey>)>,
}

/// The relay's state and the clients' sockets.
#[derive(Default)]
pub(crate) struct TestRelay {
    devices: HashMap<Key, DeviceState>,
    lists: HashMap<Key, Vec<u8>>,
    /// Mailboxes: device → (relay id → envelope).
    mailboxes: HashMap<Key, BTreeMap<u64, relay::Envelope>>,
    next_id: u64,
    /// Devices connected, and the ids already pushed on the current connection.
    online: HashMap<Key, HashSet<u64>>,
    /// Answers and live frames waiting for each device.
    inbox: HashMap<Key, Vec<ServerFrame>>,
    /// Drop the answers to the next N sends (the relay stored them; the client never hears).
    pub(crate) lose_send_answers: usize,
    /// Refuse the next N sends (plain or sealed) with `RateLimited`, saying "retry after this many ms".
    pub(crate) rate_limit_sends: usize,
    pub(crate) rate_limit_retry_ms: u64,
    /// Sends refused that way so far.
    pub(crate) rate_limited: usize,
    /// Also refuse every Nth send (0: none) that way: a relay whose limit a busy chat keeps touching.
    pub(crate) rate_limit_every: usize,
    /// The envelopes of every refused send, to check that none of them is ever delivered.
    pub(crate) refused_envelopes: Vec<Vec<u8>>,
    /// Every SealedSend seen carried a sender? (They never do: the relay sees no sender.)
    pub(crate) sealed_sends: usize,
    pub(crate) plain_sends: usize,
    /// Every envelope the relay took into a mailbox.
    pub(crate) deposited: Vec<Vec<u8>>,
    /// The same, by recipient device.
    taken: HashMap<Key, Vec<relay::Envelope>>,
    /// Sends seen, refused or not.
    sends_seen: usize,
    /// The time of the current pump (envelopes' arrival time).
    now: u64,
    /// Devices a newer list of their user left out, with that user: no login, no bundle, no mailbox.
    revoked: HashMap<Key, Key>,
}

impl TestRelay {
    pub(crate) fn connect(&mut self, client: &mut Client, now: u64) {
        let device = client.device_key().to_bytes().to_vec();
        self.online.insert(device, HashSet::new());
        client.on_connected(now).unwrap();
    }

    /// Logs `client` in as the relay does (challenge, signed answer): `Ok` and the client connects,
    /// or for a removed device the list that removed it. Returns the client's events.
    pub(crate) fn login(&mut self, client: &mut Client, now: u64) -> Vec<Event> {
        let device = client.device_key().to_bytes().to_vec();
        let challenge = relay::Challenge { nonce: vec![7; 32], origin: "test".into(), server_time: now / 1000 };
        let mut events = client.handle_incoming(&frame(0, Resp::Challenge(challenge)).encode_to_vec(), now).unwrap();
        for f in client.take_outgoing() {
            let Some(Req::Auth(_)) = f.body else { continue };
            let answer = match self.revoked.get(&device) {
                Some(user) => {
                    let signed_device_list = self.lists.get(user).cloned().unwrap_or_default();
                    Resp::DeviceList(relay::DeviceListResult { signed_device_list })
                }
                None => {
                    self.online.insert(device.clone(), HashSet::new());
                    Resp::Ok(relay::Ok {})
                }
            };
            events.extend(client.handle_incoming(&frame(f.request_id, answer).encode_to_vec(), now).unwrap());
        }
        events
    }

    /// Hands out `list` as its user's device list from now on: a relay serving a stale one.
    pub(crate) fn serve_device_list(&mut self, list: &crate::SignedDeviceList) {
        self.lists.insert(list.user_key().to_bytes().to_vec(), list.to_bytes());
    }

    /// Hands out `bytes` as `user`'s device list from now on, whatever they are (a forgery).
    pub(crate) fn serve_device_list_bytes(&mut self, user: &crate::crypto::SigningPublicKey, bytes: Vec<u8>) {
        self.lists.insert(user.to_bytes().to_vec(), bytes);
    }

    /// Whether `device` was left out of a newer list of its user.
    pub(crate) fn is_revoked(&self, device: &[u8]) -> bool {
        self.revoked.contains_key(device)
    }

    /// The signed and last-resort prekeys the relay hands out for `device`.
    pub(crate) fn published_prekeys(&self, device: &[u8]) -> (Option<wire::SignedPrekey>, Option<wire::KemPrekey>) {
        self.devices.get(device).map_or((None, None), |d| (d.signed.clone(), d.last_resort.clone()))
    }

    /// Hands out these prekeys for `device` from now on: a relay serving a stale bundle.
    pub(crate) fn serve_prekeys(&mut self, device: &[u8], keys: (Option<wire::SignedPrekey>, Option<wire::KemPrekey>)) {
        let d = self.devices.entry(device.to_vec()).or_default();
        (d.signed, d.last_resort) = keys;
    }

    pub(crate) fn disconnect(&mut self, client: &mut Client) {
        let device = client.device_key().to_bytes().to_vec();
        self.online.remove(&device);
        self.inbox.remove(&device);
        client.on_disconnected();
    }

    pub(crate) fn mailbox_len(&self, client: &Client) -> usize {
        self.mailboxes.get(client.device_key().as_bytes().as_slice()).map_or(0, BTreeMap::len)
    }

    /// The queued envelopes of a device (as the relay would push them).
    pub(crate) fn mailbox(&self, client: &Client) -> Vec<relay::Envelope> {
        self.mailboxes
            .get(client.device_key().as_bytes().as_slice())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes the envelopes `ids` out of a device's mailbox, to [`release`](Self::release) later
    /// (a relay that delays and reorders).
    pub(crate) fn withhold(&mut self, client: &Client, ids: &[u64]) -> Vec<relay::Envelope> {
        let Some(mailbox) = self.mailboxes.get_mut(client.device_key().as_bytes().as_slice()) else {
            return Vec::new();
        };
        ids.iter().filter_map(|id| mailbox.remove(id)).collect()
    }

    /// Puts every one-time prekey of `client` handed out so far back in front, as a relay restored
    /// from a backup taken before they were fetched hands them out again.
    pub(crate) fn restore_handed_out_prekeys(&mut self, client: &Client) {
        let Some(d) = self.devices.get_mut(client.device_key().as_bytes().as_slice()) else { return };
        for (one_time, kem) in core::mem::take(&mut d.handed_out).into_iter().rev() {
            d.one_time.splice(0..0, one_time);
            d.kem.splice(0..0, kem);
        }
    }

    /// Every envelope the relay took for `client`, in order (to replay them).
    pub(crate) fn taken_for(&self, client: &Client) -> Vec<relay::Envelope> {
        self.taken.get(client.device_key().as_bytes().as_slice()).cloned().unwrap_or_default()
    }

    /// Counts relay ids from `next` again, as a relay restored from an old backup does.
    pub(crate) fn reuse_ids_from(&mut self, next: u64) {
        self.next_id = next.saturating_sub(1);
    }

    /// The id the next envelope gets.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id + 1
    }

    /// Queues withheld envelopes for a device again, after everything queued, under new ids.
    pub(crate) fn release(&mut self, client: &Client, envelopes: Vec<relay::Envelope>) {
        let mailbox = self.mailboxes.entry(client.device_key().to_bytes().to_vec()).or_default();
        for mut e in envelopes {
            self.next_id += 1;
            e.id = self.next_id;
            mailbox.insert(e.id, e);
        }
    }

    /// Moves frames until nothing moves; returns each client's events.
    pub(crate) fn pump(&mut self, clients: &mut [&mut Client], now: u64) -> Vec<Vec<Event>> {
        self.now = now;
        let mut events: Vec<Vec<Event>> = clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..1000 {
            let mut moved = false;
            for c in clients.iter_mut() {
                let device = c.device_key().to_bytes().to_vec();
                for frame in c.take_outgoing() {
                    moved = true;
                    // Frames go over the wire encoded.
                    let frame = ClientFrame::decode(frame.encode_to_vec().as_slice()).unwrap();
                    self.handle(&device, frame);
                }
            }
            for (i, c) in clients.iter_mut().enumerate() {
                let device = c.device_key().to_bytes().to_vec();
                let mut frames = self.inbox.remove(&device).unwrap_or_default();
                if let Some(pushed) = self.online.get_mut(&device) {
                    for (id, e) in self.mailboxes.get(&device).into_iter().flatten() {
                        if pushed.insert(*id) {
                            frames.push(frame(0, Resp::Envelope(e.clone())));
                        }
                    }
                }
                for f in frames {
                    moved = true;
                    events[i].extend(c.handle_incoming(&f.encode_to_vec(), now).unwrap());
                }
            }
            if !moved {
                return events;
            }
        }
        panic!("the clients never went quiet");
    }

    fn answer(&mut self, device: &[u8], request_id: u64, body: Resp) {
        self.inbox.entry(device.to_vec()).or_default().push(frame(request_id, body));
    }

    fn error(code: relay::ErrorCode) -> Resp {
        Resp::Error(relay::Error { code: code as i32, detail: String::new(), retry_after_ms: 0 })
    }

    fn deposit(&mut self, to: &[u8], sender: &[u8], payload: Vec<u8>, online_only: bool, sealed: bool) -> Option<u64> {
        if online_only {
            if self.online.contains_key(to) {
                let e =
                    relay::Envelope { id: 0, sender_device: sender.to_vec(), payload, received_at: self.now, sealed };
                self.inbox.entry(to.to_vec()).or_default().push(frame(0, Resp::Envelope(e)));
            }
            return Some(0);
        }
        if !self.devices.contains_key(to) {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        self.deposited.push(payload.clone());
        let e = relay::Envelope { id, sender_device: sender.to_vec(), payload, received_at: self.now, sealed };
        self.taken.entry(to.to_vec()).or_default().push(e.clone());
        self.mailboxes.entry(to.to_vec()).or_default().insert(id, e);
        Some(id)
    }

    fn handle(&mut self, device: &[u8], f: ClientFrame) {
        assert_eq!(f.version, RELAY_PROTOCOL_VERSION);
        let id = f.request_id;
        let Some(body) = f.body else { return };
        let ok = Resp::Ok(relay::Ok {});
        if self.revoked.contains_key(device) {
            return self.answer(device, id, Self::error(relay::ErrorCode::Forbidden));
        }
        match body {
            Req::PublishPrekeys(p) => {
                let d = self.devices.entry(device.to_vec()).or_default();
                d.keys = p.device.or(d.keys.take());
                d.signed = p.signed_prekey.or(d.signed.take());
                d.last_resort = p.last_resort_kem_prekey.or(d.last_resort.take());
                d.one_time.extend(p.one_time_prekeys);
                d.kem.extend(p.kem_prekeys);
                self.answer(device, id, ok);
            }
            Req::PublishDeviceList(p) => {
                let list = crate::SignedDeviceList::from_bytes(&p.signed_device_list).unwrap();
                let user = list.user_key().to_bytes().to_vec();
                if let Some(old) = self.lists.get(&user).map(|b| crate::SignedDeviceList::from_bytes(b).unwrap()) {
                    for gone in old.devices().iter().filter(|d| list.device(&d.device_key()).is_err()) {
                        let gone = gone.device_key().to_bytes().to_vec();
                        self.devices.remove(&gone);
                        self.mailboxes.remove(&gone);
                        self.online.remove(&gone);
                        self.inbox.remove(&gone);
                        self.revoked.insert(gone, user.clone());
                    }
                }
                self.lists.insert(user, p.signed_device_list);
                self.answer(device, id, ok);
            }
            Req::SetDeliveryToken(t) => {
                self.devices.entry(device.to_vec()).or_default().token_hash = Some(t.token_hash);
                self.answer(device, id, ok);
            }
            Req::GetPrekeyCounts(_) => {
                let d = self.devices.entry(device.to_vec()).or_default();
                let counts =
                    relay::PrekeyCounts { one_time: d.one_time.len() as u32, kem_one_time: d.kem.len() as u32 };
                self.answer(device, id, Resp::PrekeyCounts(counts));
            }
            Req::FetchDeviceList(r) => match self.lists.get(&r.user_key) {
                Some(list) => {
                    let body = Resp::DeviceList(relay::DeviceListResult { signed_device_list: list.clone() });
                    self.answer(device, id, body);
                }
                None => self.answer(device, id, Self::error(relay::ErrorCode::NotFound)),
            },
            Req::FetchBundle(r) => {
                let Some(d) = self.devices.get_mut(&r.device_key) else {
                    return self.answer(device, id, Self::error(relay::ErrorCode::NotFound));
                };
                let one_time = (!d.one_time.is_empty()).then(|| d.one_time.remove(0));
                let kem_one_time = (!d.kem.is_empty()).then(|| d.kem.remove(0));
                d.handed_out.push((one_time.clone(), kem_one_time.clone()));
                let kem = kem_one_time.or(d.last_resort.clone());
                let bundle = wire::PrekeyBundle {
                    version: 1,
                    device: d.keys.clone(),
                    signed_prekey: d.signed.clone(),
                    one_time_prekey: one_time,
                    kem_prekey: kem,
                };
                self.answer(device, id, Resp::Bundle(relay::BundleResult { bundle: bundle.encode_to_vec() }));
            }
            // The client does not use the sequenced group log yet (docs/PROTOCOL.md §11.9).
            Req::GroupLogAppend(_) | Req::GroupLogFetch(_) => {
                self.answer(device, id, Self::error(relay::ErrorCode::NotFound))
            }
            Req::Send(_) | Req::SealedSend(_) if self.refuses() => {
                self.rate_limited += 1;
                self.refused_envelopes.extend(match body {
                    Req::Send(s) => s.messages.into_iter().map(|m| m.payload).collect(),
                    Req::SealedSend(s) => vec![s.envelope],
                    _ => Vec::new(),
                });
                let retry_after_ms = self.rate_limit_retry_ms;
                let e =
                    relay::Error { code: relay::ErrorCode::RateLimited as i32, detail: String::new(), retry_after_ms };
                self.answer(device, id, Resp::Error(e));
            }
            Req::Send(s) => {
                self.plain_sends += 1;
                let mut ids = Vec::new();
                for m in s.messages {
                    match self.deposit(&m.recipient_device, device, m.payload, m.online_only, false) {
                        Some(i) => ids.push(i),
                        None => return self.answer(device, id, Self::error(relay::ErrorCode::NotFound)),
                    }
                }
                self.send_result(device, id, ids);
            }
            Req::SealedSend(s) => {
                self.sealed_sends += 1;
                assert!(crate::sealed_sender::is_size_class(s.envelope.len()), "{} bytes", s.envelope.len());
                let expected = self.devices.get(&s.recipient_device).and_then(|d| d.token_hash.clone());
                let token = crate::DeliveryToken::from_bytes(&s.delivery_token).unwrap();
                if expected.as_deref() != Some(token.hash().as_slice()) {
                    return self.answer(device, id, Self::error(relay::ErrorCode::Forbidden));
                }
                match self.deposit(&s.recipient_device, &[], s.envelope, s.online_only, true) {
                    Some(i) => self.send_result(device, id, vec![i]),
                    None => self.answer(device, id, Self::error(relay::ErrorCode::NotFound)),
                }
            }
            Req::Ack(a) => {
                if let Some(m) = self.mailboxes.get_mut(device) {
                    for i in a.ids {
                        m.remove(&i);
                    }
                }
                self.answer(device, id, ok);
            }
            Req::SubscribePresence(_) | Req::RegisterPush(_) => self.answer(device, id, ok),
            Req::Auth(_) | Req::RequestUploadToken(_) => {
                self.answer(device, id, Self::error(relay::ErrorCode::Forbidden))
            }
        }
    }

    /// Whether the next send is refused for the rate.
    fn refuses(&mut self) -> bool {
        self.sends_seen += 1;
        if self.rate_limit_sends > 0 {
            self.rate_limit_sends -= 1;
            return true;
        }
        self.rate_limit_every > 0 && self.sends_seen.is_multiple_of(self.rate_limit_every)
    }

    fn send_result(&mut self, device: &[u8], id: u64, ids: Vec<u64>) {
        if self.lose_send_answers > 0 {
            self.lose_send_answers -= 1;
            return;
        }
        self.answer(device, id, Resp::SendResult(relay::SendResult { message_ids: ids }));
    }
}

fn frame(request_id: u64, body: Resp) -> ServerFrame {
    ServerFrame { version: RELAY_PROTOCOL_VERSION, request_id, body: Some(body) }
}
