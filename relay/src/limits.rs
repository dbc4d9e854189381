//! Every bound the relay enforces, and the defaults of its configuration, in one place.

use std::time::Duration;

/// The `version` every client and server frame carries (defined once, in hush-core).
pub use hush_core::limits::RELAY_PROTOCOL_VERSION as PROTOCOL_VERSION;

/// Largest client frame accepted by default (a sealed envelope is at most 256 KiB; a multi-recipient
/// send carries one ciphertext per device).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Frames between the relay's cap and this many times it are read and answered `TOO_LARGE`;
/// beyond it the WebSocket layer drops the connection without reading further.
pub const HARD_FRAME_FACTOR: usize = 2;
/// Most messages queued for one device by default.
pub const DEFAULT_MAILBOX_QUOTA: u64 = 10_000;
/// Most bytes queued for one device by default.
pub const DEFAULT_MAILBOX_QUOTA_BYTES: u64 = 256 * 1024 * 1024;
/// Largest blob by default (Signal's attachment cap).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 100 * 1024 * 1024;
/// How long a queued message waits for its recipient by default.
pub const DEFAULT_MESSAGE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a blob is kept by default.
pub const DEFAULT_BLOB_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an upload token is valid.
pub const DEFAULT_UPLOAD_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// How often expired messages, blobs and tokens are removed.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Frames per second per authenticated device (token bucket refill rate). Sustained real use stays
/// far below it: a fast two-way chat is a few messages a second each way, each with its receipt
/// and a typing frame (tens of frames a second); a backlog of 20,000 messages drains with one ack
/// per delivery window (`DELIVERY_WINDOW`, 256), about 80 ack frames. A device that floods, sending
/// faster than this for longer than its burst lasts, is refused. The reasons are in the README.
pub const DEFAULT_DEVICE_RATE: f64 = 200.0;
/// Burst of the per-device bucket: the largest real burst is a device's first message to a
/// 1,000-member group, one frame per member device (about 1,500 with multi-device members) for the
/// sender-key distribution, as many for the message and up to as many bundle fetches: about 4,500.
/// 10,000 takes twice that at once.
pub const DEFAULT_DEVICE_BURST: f64 = 10_000.0;
/// Frames and HTTP requests per second per client IP address: several devices behind one address
/// (a household, an office NAT), each far below its device rate.
pub const DEFAULT_IP_RATE: f64 = 1_000.0;
/// Burst of the per-IP bucket: five devices' bursts at once.
pub const DEFAULT_IP_BURST: f64 = 50_000.0;
/// `retry_after_ms` of a `QUOTA_EXCEEDED` refusal: a full mailbox drains when its device comes
/// online, which takes minutes rather than milliseconds; the client doubles it for each refusal in
/// a row (up to 15 minutes), so a sender to an offline device asks a few times an hour.
pub const QUOTA_RETRY_AFTER_MS: u64 = 60_000;
/// `retry_after_ms` of an `INTERNAL` refusal (a storage error): short, so a passing failure costs
/// little; the client's backoff spaces out a lasting one.
pub const INTERNAL_RETRY_AFTER_MS: u64 = 2_000;
/// Least time between two push wake-ups for the same device.
pub const DEFAULT_PUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Accepted clock difference between a device's signed auth time and the relay's.
pub const AUTH_TIME_SKEW_SECS: u64 = 5 * 60;
/// Length of the auth challenge nonce.
pub const CHALLENGE_NONCE_LEN: usize = 32;
/// Signature context of relay authentication.
pub const AUTH_CONTEXT: &[u8] = hush_core::client::RELAY_AUTH_CONTEXT;

/// Most recipient devices of one `Send`.
pub const MAX_RECIPIENTS_PER_SEND: usize = 1_000;
/// Most ids in one `Ack` (defined once, in hush-core, whose client splits its acks by it).
pub use hush_core::limits::MAX_ACK_IDS;
/// Most devices one `SubscribePresence` names (a later one replaces the set).
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 1_000;
/// Most one-time prekeys (of each kind) the relay holds per device.
pub const MAX_STORED_ONE_TIME_PREKEYS: u64 = hush_core::limits::MAX_ONE_TIME_PREKEYS as u64;
/// Longest push endpoint URL.
pub const MAX_PUSH_ENDPOINT_BYTES: usize = 1_024;
/// Queued messages pushed to a connection and not acked yet, at most.
pub const DELIVERY_WINDOW: u32 = 256;
/// Live frames (presence, online-only messages) waiting to be written to one socket; beyond it they
/// are dropped, as online-only traffic is best effort.
pub const LIVE_QUEUE: usize = 64;
/// WebSocket read buffer per connection: small, so an idle socket costs a few KB (tungstenite
/// defaults to 128 KiB).
pub const WS_READ_BUFFER: usize = 4 * 1024;
/// How long the relay waits for connections to finish their current request on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Timeout of one push wake-up POST.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unauthenticated socket may stay silent before it is closed.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Group logs one device may create (docs/PROTOCOL.md §11.9); a log is never deleted.
pub const MAX_GROUP_LOGS_PER_DEVICE: u64 = 1_000;
/// Entries of one group log kept: the newest; a member further behind needs a new welcome.
pub const GROUP_LOG_KEEP_ENTRIES: u64 = 4_096;
/// Entry bytes of one group log kept (the newest entries within it).
pub const GROUP_LOG_KEEP_BYTES: u64 = 16 * 1024 * 1024;
/// Most entries in one `GroupLog` answer.
pub const GROUP_LOG_PAGE_ENTRIES: u32 = 256;
/// Most entry bytes in one `GroupLog` answer (at least one entry is sent): well within a frame.
pub const GROUP_LOG_PAGE_BYTES: u64 = 512 * 1024;
