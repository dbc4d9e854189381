//! Every bound hush-core enforces, in one place (libsignal's `consts.rs` in spirit).
//!
//! The ratchet limits are libsignal's, which years of real traffic have tested.

/// Largest forward jump within one receiving chain (messages skipped in one go).
pub const MAX_FORWARD_JUMP: u32 = 25_000;
/// Most skipped message keys stored per session; the oldest are dropped beyond this.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Most receiving chains kept per session (the current one included).
pub const MAX_RECEIVING_CHAINS: usize = 5;
/// Most archived sessions kept per peer device beside the active one.
pub const MAX_ARCHIVED_SESSIONS: usize = 40;
/// Previous signed prekeys an account keeps after rotation, for messages still in flight.
pub const MAX_OLD_SIGNED_PREKEYS: usize = 2;
/// Most unused one-time prekeys (of each kind) an account holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1_000;

/// Largest plaintext a session encrypts. Attachments travel as encrypted blobs, not messages.
pub const MAX_PLAINTEXT_BYTES: usize = 128 * 1024;
/// Largest encoded [`SessionMessage`](crate::SessionMessage) accepted by the decoder.
pub const MAX_SESSION_MESSAGE_BYTES: usize = 160 * 1024;
/// Largest encoded prekey bundle accepted by the decoder.
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024;
/// Largest encoded signed device list accepted by the decoder.
pub const MAX_DEVICE_LIST_BYTES: usize = 64 * 1024;
/// Most devices on one user's device list.
pub const MAX_DEVICES: usize = 100;
/// Largest encoded session record (active + archived sessions) accepted by the decoder.
pub const MAX_SESSION_RECORD_BYTES: usize = 8 * 1024 * 1024;
/// Largest encoded account accepted by the decoder.
pub const MAX_ACCOUNT_BYTES: usize = 4 * 1024 * 1024;

/// SHA-512 iterations per safety-number half, as in Signal's fingerprints.
pub const SAFETY_NUMBER_ITERATIONS: u32 = 5_200;
/// Base keys of accepted first messages an account remembers to refuse replays.
pub const MAX_SEEN_BASE_KEYS: usize = 2_000;
