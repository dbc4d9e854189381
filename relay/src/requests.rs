//! The operations of relay.proto, each checked before it touches storage: signatures verified with
//! hush-core's types, sizes bounded, and nothing logged but short key fingerprints.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use hush_core::limits::SEALED_ENVELOPE_SIZES;
use hush_core::sealed_sender;
use hush_core::wire::proto as wire;
use hush_core::wire::relay::{
    Ack, BundleResult, DeviceListResult, Envelope, FetchBundle, FetchDeviceList, GroupLog, GroupLogAppend,
    GroupLogFetch, GroupLogRecord, PrekeyCounts, PublishDeviceList, PublishPrekeys, RegisterPush, SealedSend, Send,
    SendResult, SetDeliveryToken, UploadToken, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_core::{
    DELIVERY_TOKEN_LEN, DeliveryToken, DeviceKeys, KemPrekey, OneTimePrekey, PrekeyBundle, SignedDeviceList,
    SignedPrekey, SigningPublicKey,
};
use prost::Message;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::auth::fingerprint;
use crate::connection::observe_commit;
use crate::error::{RequestError, StorageError};
use crate::frame;
use crate::limits::{
    GROUP_LOG_KEEP_BYTES, GROUP_LOG_KEEP_ENTRIES, GROUP_LOG_PAGE_BYTES, GROUP_LOG_PAGE_ENTRIES, MAX_ACK_IDS,
    MAX_GROUP_LOGS_PER_DEVICE, MAX_RECIPIENTS_PER_SEND, MAX_STORED_ONE_TIME_PREKEYS,
};
use crate::state::{RelayState, now_ms, now_secs};
use crate::storage::{DeviceId, LogAppend, LogPage, LogRetention, NewMessage, PrekeyUpload};

type Result<T> = std::result::Result<T, RequestError>;

/// Domain separation of the upload-token hash the relay stores.
const UPLOAD_TOKEN_CONTEXT: &[u8] = b"hush/upload-token/v1";

/// Dispatches an authenticated request (auth, sealed sends, acks and presence are handled by the
/// connection, which holds their state).
pub async fn handle(state: &Arc<RelayState>, device: DeviceId, body: Req) -> Result<Resp> {
    match body {
        Req::PublishDeviceList(m) => publish_device_list(state, device, m).await,
        Req::FetchDeviceList(m) => fetch_device_list(state, m).await,
        Req::PublishPrekeys(m) => publish_prekeys(state, device, m).await,
        Req::GetPrekeyCounts(_) => {
            let (one_time, kem) = state.storage.prekey_counts(device).await?;
            Ok(Resp::PrekeyCounts(PrekeyCounts {
                one_time: u32::try_from(one_time).unwrap_or(u32::MAX),
                kem_one_time: u32::try_from(kem).unwrap_or(u32::MAX),
            }))
        }
        Req::FetchBundle(m) => fetch_bundle(state, m).await,
        Req::Send(m) => send(state, device, m).await,
        Req::SetDeliveryToken(m) => set_delivery_token(state, device, m).await,
        Req::RegisterPush(m) => register_push(state, device, m).await,
        Req::RequestUploadToken(_) => upload_token(state).await,
        Req::Auth(_)
        | Req::SealedSend(_)
        | Req::Ack(_)
        | Req::SubscribePresence(_)
        | Req::GroupLogAppend(_)
        | Req::GroupLogFetch(_) => Err(RequestError::Malformed("request routed to the wrong handler")),
    }
}

fn device_id(bytes: &[u8], what: &'static str) -> Result<DeviceId> {
    DeviceId::try_from(bytes).map_err(|_| RequestError::Malformed(what))
}

fn ok() -> Resp {
    Resp::Ok(Default::default())
}

async fn publish_device_list(state: &RelayState, device: DeviceId, m: PublishDeviceList) -> Result<Resp> {
    let list = SignedDeviceList::from_bytes(&m.signed_device_list)?;
    let publisher = SigningPublicKey::from_slice(&device, "device key")?;
    if list.device(&publisher).is_err() {
        return Err(RequestError::Forbidden("the publishing device is not on the list"));
    }
    let started = Instant::now();
    state
        .storage
        .put_device_list(
            device,
            list.user_key().to_bytes(),
            list.list_version(),
            list.to_bytes(),
            list.devices().iter().map(|d| d.device_key().to_bytes()).collect(),
            now_secs(),
        )
        .await?;
    observe_commit(state, started);
    Ok(ok())
}

async fn fetch_device_list(state: &RelayState, m: FetchDeviceList) -> Result<Resp> {
    let user_key = device_id(&m.user_key, "user key")?;
    match state.storage.device_list(user_key).await? {
        Some(signed_device_list) => Ok(Resp::DeviceList(DeviceListResult { signed_device_list })),
        None => Err(RequestError::NotFound("device list")),
    }
}

async fn publish_prekeys(state: &RelayState, device: DeviceId, m: PublishPrekeys) -> Result<Resp> {
    for (n, what) in [(m.one_time_prekeys.len(), "one-time prekeys"), (m.kem_prekeys.len(), "ML-KEM prekeys")] {
        if n as u64 > MAX_STORED_ONE_TIME_PREKEYS {
            return Err(RequestError::TooLarge { what, size: n as u64, max: MAX_STORED_ONE_TIME_PREKEYS });
        }
    }
    let mut upload = PrekeyUpload::default();
    let keys = match &m.device {
        Some(p) => {
            let keys = DeviceKeys::from_proto(p)?;
            if keys.device_key().to_bytes() != device {
                return Err(RequestError::Forbidden("device keys of another device"));
            }
            upload.device_keys = Some(keys.to_proto().encode_to_vec());
            keys
        }
        None => match state.storage.device_keys(device).await? {
            Some(stored) => stored_device_keys(&stored)?,
            None => return Err(RequestError::NotFound("device keys (send them with the first upload)")),
        },
    };
    if let Some(p) = &m.signed_prekey {
        upload.signed_prekey = Some(SignedPrekey::from_proto(p, &keys)?.to_proto().encode_to_vec());
    }
    for p in &m.one_time_prekeys {
        let k = OneTimePrekey::from_proto(p)?;
        upload.one_time.push((k.id, k.to_proto().encode_to_vec()));
    }
    for p in &m.kem_prekeys {
        let k = KemPrekey::from_proto(p, &keys)?;
        if k.last_resort {
            return Err(RequestError::Malformed("one-time ML-KEM prekey marked last resort"));
        }
        upload.kem_one_time.push((k.id, k.to_proto().encode_to_vec()));
    }
    if let Some(p) = &m.last_resort_kem_prekey {
        let k = KemPrekey::from_proto(p, &keys)?;
        if !k.last_resort {
            return Err(RequestError::Malformed("last-resort ML-KEM prekey not marked last resort"));
        }
        upload.last_resort_kem = Some(k.to_proto().encode_to_vec());
    }
    let started = Instant::now();
    state.storage.publish_prekeys(device, upload, now_secs()).await?;
    observe_commit(state, started);
    tracing::debug!(device = %fingerprint(&device), "prekeys published");
    Ok(ok())
}

fn stored_device_keys(bytes: &[u8]) -> Result<DeviceKeys> {
    let p = wire::DeviceKeys::decode(bytes).map_err(|_| corrupt("device keys"))?;
    DeviceKeys::from_proto(&p).map_err(|_| corrupt("device keys"))
}

fn corrupt(what: &'static str) -> RequestError {
    RequestError::from(StorageError::Corrupt(what))
}

/// Rebuilds a bundle from stored parts. They were verified on upload; verifying again costs little
/// and means a damaged database yields INTERNAL, never a bundle that fails at the client.
fn assemble_bundle(parts: crate::storage::BundleParts) -> Result<Vec<u8>> {
    let device = stored_device_keys(&parts.device_keys)?;
    let signed = wire::SignedPrekey::decode(parts.signed_prekey.as_slice()).map_err(|_| corrupt("signed prekey"))?;
    let signed = SignedPrekey::from_proto(&signed, &device).map_err(|_| corrupt("signed prekey"))?;
    let one_time = parts
        .one_time
        .map(|b| {
            wire::OneTimePrekey::decode(b.as_slice())
                .ok()
                .and_then(|p| OneTimePrekey::from_proto(&p).ok())
                .ok_or_else(|| corrupt("one-time prekey"))
        })
        .transpose()?;
    let kem = parts
        .kem
        .map(|b| {
            wire::KemPrekey::decode(b.as_slice())
                .ok()
                .and_then(|p| KemPrekey::from_proto(&p, &device).ok())
                .ok_or_else(|| corrupt("ML-KEM prekey"))
        })
        .transpose()?;
    let bundle = PrekeyBundle::new(device, signed, one_time, kem).map_err(|_| corrupt("prekey bundle"))?;
    Ok(bundle.to_bytes())
}

async fn fetch_bundle(state: &RelayState, m: FetchBundle) -> Result<Resp> {
    let device = device_id(&m.device_key, "device key")?;
    let started = Instant::now();
    let parts = state.storage.take_bundle(device).await?.ok_or(RequestError::NotFound("prekeys of that device"))?;
    observe_commit(state, started);
    Ok(Resp::Bundle(BundleResult { bundle: assemble_bundle(parts)? }))
}

/// An online-only message as the frame written to the recipient's sockets.
pub(crate) fn live_envelope(sender: Option<DeviceId>, payload: Vec<u8>) -> hush_core::wire::relay::ServerFrame {
    frame::server(
        0,
        Resp::Envelope(Envelope {
            id: 0,
            sealed: sender.is_none(),
            sender_device: sender.map(|s| s.to_vec()).unwrap_or_default(),
            payload,
            received_at: now_ms(),
        }),
    )
}

/// A request whose storage write is already queued; resolves to its answer once that write committed.
pub type Pending = Pin<Box<dyn Future<Output = Result<Resp>> + std::marker::Send + 'static>>;

async fn send(state: &Arc<RelayState>, device: DeviceId, m: Send) -> Result<Resp> {
    submit_send(state, device, m).await
}

/// Checks a send and queues its messages now (see [`Storage::submits_in_order`]); the returned future
/// answers once they committed, then hands out the online-only ones and wakes the recipients.
///
/// [`Storage::submits_in_order`]: crate::storage::Storage::submits_in_order
pub fn submit_send(state: &Arc<RelayState>, device: DeviceId, m: Send) -> Pending {
    let (stored, live) = match check_send(device, &m) {
        Ok(checked) => checked,
        Err(e) => return Box::pin(std::future::ready(Err(e))),
    };
    let recipients: Vec<DeviceId> = stored.iter().map(|s| s.recipient).collect();
    let write = (!stored.is_empty())
        .then(|| (Instant::now(), state.storage.clone().submit_enqueue(stored, state.quota(), now_ms())));
    let state = state.clone();
    Box::pin(async move {
        let mut ids = match write {
            None => Vec::new(),
            Some((started, write)) => {
                let ids = write.await.map_err(|e| match e {
                    // Indices count stored messages only; report the request's own index.
                    StorageError::QuotaExceeded { index } => RequestError::QuotaExceeded(request_index(&m, index)),
                    other => other.into(),
                })?;
                observe_commit(&state, started);
                ids
            }
        }
        .into_iter();
        let mut result = Vec::with_capacity(m.messages.len());
        let mut live_iter = live.into_iter();
        for o in m.messages {
            if o.online_only {
                if let Some(r) = live_iter.next() {
                    state.deliver_live(r, Some(device), o.payload).await;
                }
                result.push(0);
            } else {
                result.push(ids.next().unwrap_or(0));
            }
        }
        state.mail_committed(recipients);
        Ok(Resp::SendResult(SendResult { message_ids: result }))
    })
}

/// A send's messages to store and the recipients of its online-only ones, after the checks.
fn check_send(device: DeviceId, m: &Send) -> Result<(Vec<NewMessage>, Vec<DeviceId>)> {
    if m.messages.is_empty() {
        return Err(RequestError::Malformed("send (no messages)"));
    }
    if m.messages.len() > MAX_RECIPIENTS_PER_SEND {
        return Err(RequestError::TooLarge {
            what: "send",
            size: m.messages.len() as u64,
            max: MAX_RECIPIENTS_PER_SEND as u64,
        });
    }
    let mut stored = Vec::new();
    let mut live = Vec::new();
    for o in m.messages.iter() {
        let recipient = device_id(&o.recipient_device, "recipient device")?;
        if o.payload.is_empty() {
            return Err(RequestError::Malformed("payload (empty)"));
        }
        if o.online_only {
            live.push(recipient);
        } else {
            stored.push(NewMessage { recipient, sender: Some(device), payload: o.payload.clone() });
        }
    }
    Ok((stored, live))
}

/// The index in the request of the `stored_index`-th stored (not online-only) message.
fn request_index(m: &Send, stored_index: usize) -> usize {
    m.messages.iter().enumerate().filter(|(_, o)| !o.online_only).nth(stored_index).map_or(0, |(i, _)| i)
}

/// An unauthenticated send: allowed with the recipient's delivery token; no sender is stored.
/// `authenticated` (whether it came on a device's own socket) only feeds the metrics, which show
/// whether clients keep sealed sends off their authenticated sockets (§9.4).
pub async fn sealed_send(state: &Arc<RelayState>, m: SealedSend, authenticated: bool) -> Result<Resp> {
    let recipient = device_id(&m.recipient_device, "recipient device")?;
    if m.delivery_token.len() != DELIVERY_TOKEN_LEN {
        return Err(RequestError::Malformed("delivery token"));
    }
    // Sizes are public: one that is not a size class (§9.4) is refused before anything is looked up.
    if !sealed_sender::is_size_class(m.envelope.len()) {
        return Err(RequestError::Malformed("envelope size (not a size class)"));
    }
    let token = DeliveryToken::from_bytes(&m.delivery_token)?;
    // One refusal for "no token set" and "wrong token", and the same work for both (a hash that no
    // token has stands in for a missing one), so neither the answer nor its time tells them apart.
    let refused = RequestError::Forbidden("delivery token refused");
    let stored = state.storage.delivery_token_hash(recipient).await?.unwrap_or_else(|| vec![0; 32]);
    if !token.verify_hash(&stored) {
        return Err(refused);
    }
    let socket = if authenticated { "authenticated" } else { "anonymous" };
    state.metrics.sealed_sends.get_or_create(&[("socket", socket)]).inc();
    state.metrics.sealed_sizes.get_or_create(&[("bytes", size_label(m.envelope.len()))]).inc();
    if m.online_only {
        state.deliver_live(recipient, None, m.envelope).await;
        return Ok(Resp::SendResult(SendResult { message_ids: vec![0] }));
    }
    let started = Instant::now();
    let ids = state
        .storage
        .enqueue(vec![NewMessage { recipient, sender: None, payload: m.envelope }], state.quota(), now_ms())
        .await?;
    observe_commit(state, started);
    state.mail_committed([recipient]);
    Ok(Resp::SendResult(SendResult { message_ids: ids }))
}

/// The metric labels of the size classes, in the order of [`SEALED_ENVELOPE_SIZES`].
const SIZE_LABELS: [&str; SEALED_ENVELOPE_SIZES.len()] = ["1024", "4096", "16384", "65536", "262144"];

/// The metric label of an envelope size (a size class, checked before).
fn size_label(len: usize) -> &'static str {
    SEALED_ENVELOPE_SIZES.iter().position(|&s| s == len).and_then(|i| SIZE_LABELS.get(i)).copied().unwrap_or("other")
}

/// Deletes acked messages of the authenticated device.
pub async fn ack(state: &Arc<RelayState>, device: DeviceId, m: Ack) -> Result<Resp> {
    submit_ack(state, device, m).await
}

/// Checks an ack and queues its deletes now (see [`submit_send`]); the future answers once they committed.
pub fn submit_ack(state: &Arc<RelayState>, device: DeviceId, m: Ack) -> Pending {
    if m.ids.len() > MAX_ACK_IDS {
        let e = RequestError::TooLarge { what: "ack", size: m.ids.len() as u64, max: MAX_ACK_IDS as u64 };
        return Box::pin(std::future::ready(Err(e)));
    }
    let started = Instant::now();
    let write = state.storage.clone().submit_ack(device, m.ids);
    let state = state.clone();
    Box::pin(async move {
        write.await?;
        observe_commit(&state, started);
        Ok(ok())
    })
}

async fn set_delivery_token(state: &RelayState, device: DeviceId, m: SetDeliveryToken) -> Result<Resp> {
    let hash = match m.token_hash.len() {
        0 => None,
        32 => Some(device_id(&m.token_hash, "delivery token hash")?),
        _ => return Err(RequestError::Malformed("delivery token hash")),
    };
    state.storage.set_delivery_token_hash(device, hash, now_secs()).await?;
    Ok(ok())
}

async fn register_push(state: &RelayState, device: DeviceId, m: RegisterPush) -> Result<Resp> {
    let endpoint = if m.endpoint.is_empty() {
        None
    } else {
        crate::push::check_endpoint(&m.endpoint).map_err(|_| RequestError::Malformed("push endpoint"))?;
        Some(m.endpoint)
    };
    state.storage.set_push_endpoint(device, endpoint, now_secs()).await?;
    Ok(ok())
}

/// The hash under which an upload token is stored.
pub fn upload_token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(UPLOAD_TOKEN_CONTEXT).chain_update(token).finalize().into()
}

async fn upload_token(state: &RelayState) -> Result<Resp> {
    let mut token = [0u8; 32];
    OsRng.fill_bytes(&mut token);
    let expires_at = now_secs().saturating_add(state.config.upload_token_ttl.as_secs());
    state.storage.put_upload_token(upload_token_hash(&token), expires_at).await?;
    Ok(Resp::UploadToken(UploadToken { token: hex::encode(token), expires_at }))
}

/// A compare-and-swap append to a group's sequenced log (docs/PROTOCOL.md §11.9, §15.5), on any
/// socket: the append key of the log's epoch authorises it, so the relay learns neither who
/// appends nor who is in the group. Creating a log (`expected_epoch` 0) needs an authenticated
/// socket, to count it against the device's cap.
pub async fn group_log_append(state: &RelayState, device: Option<DeviceId>, m: GroupLogAppend) -> Result<Resp> {
    let log_id = device_id(&m.log_id, "group log id")?;
    let next_key = device_id(&m.next_append_key, "group log append key")?;
    if m.expected_epoch == 0 {
        let creator = device.ok_or(RequestError::Unauthenticated("authenticate to create a group log"))?;
        hush_core::group::log::verify_append(&m, &m.next_append_key)?;
        let created = state
            .storage
            .create_group_log(creator, log_id, next_key, m.entry, MAX_GROUP_LOGS_PER_DEVICE, now_secs())
            .await?;
        return match created {
            true => Ok(Resp::GroupLog(GroupLog { accepted: true, epoch: 1, entries: Vec::new(), first_epoch: 1 })),
            false => group_log_page(state, log_id, 0).await,
        };
    }
    let (epoch, key) = state.storage.group_log_head(log_id).await?.ok_or(RequestError::NotFound("group log"))?;
    if epoch != m.expected_epoch {
        return group_log_page(state, log_id, m.expected_epoch.min(epoch)).await;
    }
    hush_core::group::log::verify_append(&m, &key)?;
    let retention = LogRetention { entries: GROUP_LOG_KEEP_ENTRIES, bytes: GROUP_LOG_KEEP_BYTES };
    let append = LogAppend { log_id, expected_epoch: m.expected_epoch, append_key: key, next_key, entry: m.entry };
    let taken = state.storage.append_group_log(append, retention, now_secs()).await?;
    match taken {
        Some(epoch) => Ok(Resp::GroupLog(GroupLog { accepted: true, epoch, entries: Vec::new(), first_epoch: 0 })),
        // Another append at the same epoch committed first.
        None => group_log_page(state, log_id, m.expected_epoch).await,
    }
}

/// The entries of a group log after an epoch, one page, on any socket.
pub async fn group_log_fetch(state: &RelayState, m: GroupLogFetch) -> Result<Resp> {
    let log_id = device_id(&m.log_id, "group log id")?;
    group_log_page(state, log_id, m.after_epoch).await
}

async fn group_log_page(state: &RelayState, log_id: [u8; 32], after_epoch: u64) -> Result<Resp> {
    let page = state
        .storage
        .group_log_entries(log_id, after_epoch, GROUP_LOG_PAGE_ENTRIES, GROUP_LOG_PAGE_BYTES)
        .await?
        .ok_or(RequestError::NotFound("group log"))?;
    let LogPage { epoch, first_epoch, entries } = page;
    let entries = entries.into_iter().map(|(epoch, entry)| GroupLogRecord { epoch, entry }).collect();
    Ok(Resp::GroupLog(GroupLog { accepted: false, epoch, entries, first_epoch }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_labels_name_the_size_classes() {
        for size in SEALED_ENVELOPE_SIZES {
            assert_eq!(size_label(size), size.to_string());
        }
        assert_eq!(size_label(1000), "other");
    }
}
