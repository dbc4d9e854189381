//! The relay's storage behind one trait, so SQLite (one process, the default) and Postgres (several
//! relay processes sharing one database, phase 2) run the same relay code and the same tests.
//!
//! Every method is one transaction. What a backend must guarantee: a message batch is durable when
//! `enqueue` returns; `take_bundle` hands out each one-time prekey at most once, even under concurrent
//! calls from several processes; device-list versions only go up; of concurrent appends to a group
//! log at the same epoch exactly one is taken.

pub mod postgres;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StorageError;

/// A device's mailbox address: its Ed25519 device key.
pub type DeviceId = [u8; 32];

/// Storage results.
pub type StorageResult<T> = Result<T, StorageError>;

/// A write already handed to the backend, resolving when it committed (see
/// [`Storage::submits_in_order`]).
pub type Submitted<T> = Pin<Box<dyn Future<Output = StorageResult<T>> + Send + 'static>>;

/// Prekeys a device publishes, already verified against its device key. Each key is kept as its
/// encoded `hush.wire` protobuf, so the relay hands out exactly the bytes the device signed.
#[derive(Clone, Debug, Default)]
pub struct PrekeyUpload {
    /// Encoded `DeviceKeys` (identity key signed by the device key), when sent.
    pub device_keys: Option<Vec<u8>>,
    /// Encoded `SignedPrekey` replacing the current one.
    pub signed_prekey: Option<Vec<u8>>,
    /// `(id, encoded OneTimePrekey)`.
    pub one_time: Vec<(u32, Vec<u8>)>,
    /// `(id, encoded KemPrekey)`, one-time.
    pub kem_one_time: Vec<(u32, Vec<u8>)>,
    /// Encoded last-resort `KemPrekey` replacing the current one.
    pub last_resort_kem: Option<Vec<u8>>,
}

/// The parts of a bundle, taken in one transaction (one-time keys deleted as they are taken).
#[derive(Clone, Debug)]
pub struct BundleParts {
    /// Encoded `DeviceKeys`.
    pub device_keys: Vec<u8>,
    /// Encoded `SignedPrekey`.
    pub signed_prekey: Vec<u8>,
    /// Encoded `OneTimePrekey`, if one was left.
    pub one_time: Option<Vec<u8>>,
    /// Encoded one-time `KemPrekey`, or else the last-resort one, or none.
    pub kem: Option<Vec<u8>>,
}

/// One message to queue.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The recipient device.
    pub recipient: DeviceId,
    /// The authenticated sender; `None` for sealed sends, which store no sender.
    pub sender: Option<DeviceId>,
    /// Opaque ciphertext.
    pub payload: Vec<u8>,
}

/// A queued message.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// The relay's id, increasing per database.
    pub id: u64,
    /// The authenticated sender, `None` for sealed sends.
    pub sender: Option<DeviceId>,
    /// Opaque ciphertext.
    pub payload: Vec<u8>,
    /// Arrival, unix milliseconds.
    pub received_at_ms: u64,
}

/// Mailbox limits checked inside `enqueue`'s transaction.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// Most messages per mailbox.
    pub messages: u64,
    /// Most payload bytes per mailbox.
    pub bytes: u64,
}

/// What a cleanup pass removed.
#[derive(Clone, Debug, Default)]
pub struct Expired {
    /// Messages past the TTL.
    pub messages: u64,
    /// Blob ids past the TTL; their files are deleted by the caller.
    pub blobs: Vec<[u8; 32]>,
    /// Upload tokens past their expiry.
    pub upload_tokens: u64,
}

/// How much of one group log the relay keeps: the newest entries within both bounds (always the
/// newest one), so a member further behind than that needs a new welcome (docs/PROTOCOL.md §11.9).
#[derive(Clone, Copy, Debug)]
pub struct LogRetention {
    /// Most entries kept.
    pub entries: u64,
    /// Most entry bytes kept.
    pub bytes: u64,
}

/// An append to a group log, its signature already checked with `append_key`.
#[derive(Clone, Debug)]
pub struct LogAppend {
    /// The log.
    pub log_id: [u8; 32],
    /// The epoch the log must still be at.
    pub expected_epoch: u64,
    /// The log's append key of that epoch.
    pub append_key: [u8; 32],
    /// The append key of the epoch the entry makes.
    pub next_key: [u8; 32],
    /// The sealed entry.
    pub entry: Vec<u8>,
}

/// A page of a group log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    /// The log's epoch: the position of its newest entry.
    pub epoch: u64,
    /// The oldest entry still held.
    pub first_epoch: u64,
    /// `(epoch, entry)` after the asked epoch, oldest first.
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// The relay's storage. Object-safe: the relay holds an `Arc<dyn Storage>`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Whether the device has a mailbox here (it published prekeys, a device list, a delivery
    /// token or a push endpoint).
    async fn is_registered(&self, device: DeviceId) -> StorageResult<bool>;

    /// Stores `signed_list` (already verified; it names the devices `listed`) for `user_key` unless
    /// a higher version is stored, or the same version with other bytes ([`StorageError::Rollback`]).
    /// Registers `publisher` and records it as a device of `user_key`. A newer list revokes, in the
    /// same transaction, every device recorded as the user's that it no longer names (docs/PROTOCOL.md
    /// §15.5): its mailbox, prekeys and registration are deleted and [`Storage::revoked_user`] names
    /// the user from then on. Only devices that published the user's list themselves are recorded,
    /// so a list cannot revoke another user's device by naming it and dropping it.
    async fn put_device_list(
        &self,
        publisher: DeviceId,
        user_key: [u8; 32],
        list_version: u64,
        signed_list: Vec<u8>,
        listed: Vec<DeviceId>,
        now: u64,
    ) -> StorageResult<()>;

    /// The user whose newer device list revoked `device`, if one did.
    async fn revoked_user(&self, device: DeviceId) -> StorageResult<Option<[u8; 32]>>;

    /// The stored signed device list of `user_key`.
    async fn device_list(&self, user_key: [u8; 32]) -> StorageResult<Option<Vec<u8>>>;

    /// Stores verified prekeys (replacing keys with the same id) and registers the device. Refuses
    /// with [`StorageError::TooMany`] past [`MAX_STORED_ONE_TIME_PREKEYS`](crate::limits) of a kind,
    /// and with [`StorageError::NotFound`] when no device keys were ever sent.
    async fn publish_prekeys(&self, device: DeviceId, upload: PrekeyUpload, now: u64) -> StorageResult<()>;

    /// The stored device keys of `device`, if any.
    async fn device_keys(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>>;

    /// One-time X25519 and one-time ML-KEM prekeys left.
    async fn prekey_counts(&self, device: DeviceId) -> StorageResult<(u64, u64)>;

    /// Takes a bundle's parts, deleting the one-time prekeys it hands out, atomically. `None` when the
    /// device has no device keys or no signed prekey.
    async fn take_bundle(&self, device: DeviceId) -> StorageResult<Option<BundleParts>>;

    /// Queues a batch in one transaction and returns the ids in order; durable on return. Every
    /// recipient must be registered ([`StorageError::UnknownRecipient`]) and within `quota`
    /// ([`StorageError::QuotaExceeded`]); otherwise nothing is stored.
    async fn enqueue(&self, batch: Vec<NewMessage>, quota: Quota, now_ms: u64) -> StorageResult<Vec<u64>>;

    /// Whether [`submit_enqueue`](Storage::submit_enqueue) and [`submit_ack`](Storage::submit_ack)
    /// queue their write before they return, so writes submitted one after the other are applied in
    /// that order even when their results are awaited together. Then a socket may have several
    /// sends and acks in flight; otherwise the relay awaits each before reading the next request.
    fn submits_in_order(&self) -> bool {
        false
    }

    /// [`enqueue`](Storage::enqueue), queued now when [`submits_in_order`](Storage::submits_in_order)
    /// (the default only starts when first polled, in no guaranteed order).
    fn submit_enqueue(self: Arc<Self>, batch: Vec<NewMessage>, quota: Quota, now_ms: u64) -> Submitted<Vec<u64>> {
        Box::pin(async move { self.enqueue(batch, quota, now_ms).await })
    }

    /// [`ack`](Storage::ack), queued now when [`submits_in_order`](Storage::submits_in_order).
    fn submit_ack(self: Arc<Self>, device: DeviceId, ids: Vec<u64>) -> Submitted<u64> {
        Box::pin(async move { self.ack(device, ids).await })
    }

    /// The oldest `limit` queued messages of `device`.
    async fn pending(&self, device: DeviceId, limit: u32) -> StorageResult<Vec<StoredMessage>>;

    /// Deletes the device's messages with these ids; returns how many were deleted.
    async fn ack(&self, device: DeviceId, ids: Vec<u64>) -> StorageResult<u64>;

    /// Sets (or with `None` clears) the delivery token hash, and registers the device.
    async fn set_delivery_token_hash(&self, device: DeviceId, hash: Option<[u8; 32]>, now: u64) -> StorageResult<()>;

    /// The stored delivery token hash.
    async fn delivery_token_hash(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>>;

    /// Sets (or with `None` clears) the push endpoint, and registers the device.
    async fn set_push_endpoint(&self, device: DeviceId, endpoint: Option<String>, now: u64) -> StorageResult<()>;

    /// The stored push endpoint.
    async fn push_endpoint(&self, device: DeviceId) -> StorageResult<Option<String>>;

    /// Stores the hash of an upload token valid until `expires_at` (unix seconds).
    async fn put_upload_token(&self, token_hash: [u8; 32], expires_at: u64) -> StorageResult<()>;

    /// Consumes an upload token: true when it existed and had not expired at `now`.
    async fn take_upload_token(&self, token_hash: [u8; 32], now: u64) -> StorageResult<bool>;

    /// Records a stored blob.
    async fn put_blob(&self, id: [u8; 32], size: u64, now: u64) -> StorageResult<()>;

    /// Whether a blob exists and was created at or after `not_before` (unix seconds).
    async fn blob_exists(&self, id: [u8; 32], not_before: u64) -> StorageResult<bool>;

    /// Deletes messages received before `messages_before_ms`, blob records created before
    /// `blobs_before` (returned, so their files go too) and upload tokens expired at `now`.
    async fn expire(&self, messages_before_ms: u64, blobs_before: u64, now: u64) -> StorageResult<Expired>;

    /// Creates a group log at epoch 1 holding `entry`, whose append key is then `append_key`, and
    /// counts it against `creator`'s [`MAX_GROUP_LOGS_PER_DEVICE`](crate::limits) (`max_per_device`;
    /// [`StorageError::TooMany`] beyond it, nothing stored). False, changing nothing, if the log
    /// exists. The creator is counted, never stored with the log.
    async fn create_group_log(
        &self,
        creator: DeviceId,
        log_id: [u8; 32],
        append_key: [u8; 32],
        entry: Vec<u8>,
        max_per_device: u64,
        now: u64,
    ) -> StorageResult<bool>;

    /// The epoch of a group log and the append key of that epoch.
    async fn group_log_head(&self, log_id: [u8; 32]) -> StorageResult<Option<(u64, [u8; 32])>>;

    /// The compare-and-swap: appends the entry at `expected_epoch + 1` if the log is still at
    /// `expected_epoch` with `append_key` (the key the caller checked the append's signature with),
    /// moving the key to `next_key`; then drops the oldest entries beyond `keep`. Returns the new
    /// epoch, or `None` (nothing changed) when the log moved on or does not exist. Atomic under
    /// concurrent appends from several relay processes.
    async fn append_group_log(&self, append: LogAppend, keep: LogRetention, now: u64) -> StorageResult<Option<u64>>;

    /// The entries of a log after `after_epoch`, oldest first: at most `max_entries`, and within
    /// `max_bytes` (but at least one). `None` if there is no such log.
    async fn group_log_entries(
        &self,
        log_id: [u8; 32],
        after_epoch: u64,
        max_entries: u32,
        max_bytes: u64,
    ) -> StorageResult<Option<LogPage>>;

    /// Messages queued in all mailboxes (the `queue_depth` metric).
    async fn queue_depth(&self) -> StorageResult<u64>;

    /// Takes the stream of wake-ups from other relay processes, if this backend has one (see
    /// [`RemoteWakeups`]). Called once, at start.
    fn remote_wakeups(&self) -> Option<RemoteWakeups> {
        None
    }

    /// Tells the other relay processes sharing this database about `signal` (never stored, best
    /// effort). Single-process backends have no one to tell and do nothing.
    async fn broadcast(&self, signal: Signal) -> StorageResult<()> {
        let _ = signal;
        Ok(())
    }
}

/// What relay processes sharing one database tell each other besides new mail: presence and
/// online-only messages, which are never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The first socket of `device` on the sending instance opened (`online`), or its last one closed.
    Presence {
        /// The device.
        device: DeviceId,
        /// Whether it is now connected to the sending instance.
        online: bool,
    },
    /// An online-only message (typing) for the sockets of `recipient` on other instances.
    Live {
        /// The recipient device.
        recipient: DeviceId,
        /// The authenticated sender, `None` for sealed sends.
        sender: Option<DeviceId>,
        /// Opaque ciphertext.
        payload: Vec<u8>,
    },
    /// A relay process started listening: the others answer with a `Presence` for each device
    /// connected to them, so its view of who is online is complete.
    Hello,
}

/// A wake-up from another relay process sharing the same database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// New mail for this device.
    Device(DeviceId),
    /// Wake-ups may have been lost (the listener reconnected): recheck every local socket.
    All,
    /// A [`Signal`] from another relay process (never one of this process's own).
    Signal {
        /// The sending process's random instance id.
        from: u64,
        /// What it said.
        signal: Signal,
    },
}

/// Wake-ups from other relay processes sharing the same database (Postgres LISTEN/NOTIFY). Single-
/// process backends have none: the relay wakes its own connections after `enqueue` returns.
pub type RemoteWakeups = tokio::sync::mpsc::UnboundedReceiver<Wake>;
