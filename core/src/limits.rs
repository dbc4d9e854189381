//! Every bound hush-core enforces, in one place (libsignal's `consts.rs` in spirit).
//!
//! The ratchet limits are libsignal's, which years of real traffic have tested.

/// Largest forward jump within one receiving chain (messages skipped in one go).
pub const MAX_FORWARD_JUMP: u32 = 25_000;
/// Most skipped message keys stored per session; the oldest are dropped beyond this.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Most receiving chains kept per session (the current one included).
pub const MAX_RECEIVING_CHAINS: usize = 5;
/// Bytes of one erasure-code shard of the triple ratchet (§7A.4): a message carries at most one,
/// 66 bytes with its tag and index. 64 divides the ML-KEM-768 pieces exactly (`pk1` is one shard,
/// `pk2` 18, `ct1` 15, `ct2` 2) and keeps the average overhead under 100 bytes a message while an
/// epoch completes in about 20 messages each way.
pub const PQ_CHUNK_BYTES: usize = 64;
/// Epoch keys of the triple ratchet a session keeps (the current ones included) for messages still in
/// flight; a message of an older epoch is refused like one whose skipped key was dropped.
pub const MAX_PQ_EPOCH_KEYS: usize = 8;
/// Most archived sessions kept per peer device beside the active one.
pub const MAX_ARCHIVED_SESSIONS: usize = 40;
/// Previous signed prekeys (and last-resort ML-KEM prekeys) an account keeps after rotation, for
/// first messages still in flight: those retired less than [`OLD_PREKEY_GRACE_MS`] ago, which at one
/// rotation per [`PREKEY_ROTATION_MS`] is 15; beyond this count the oldest goes even inside its grace.
pub const MAX_OLD_SIGNED_PREKEYS: usize = 16;
/// How long a signed X25519 prekey and the last-resort ML-KEM prekey stay current before the
/// client rotates them (2 days, Signal's signed-prekey interval): it bounds how many first messages
/// without one-time prekeys share one key, and so what the key's compromise exposes.
pub const PREKEY_ROTATION_MS: u64 = 2 * 24 * 60 * 60 * 1000;
/// How long a rotated-out signed or last-resort prekey is kept after it stopped being current (30
/// days, Signal's archive age, and the relay's default message TTL): a first message made from a
/// bundle fetched just before the rotation can wait its whole life in the mailbox and still open.
pub const OLD_PREKEY_GRACE_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Most unused one-time prekeys (of each kind) an account holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1_000;

/// The `version` every relay frame carries (`core/proto/relay.proto`); client and relay both use it.
pub const RELAY_PROTOCOL_VERSION: u32 = 2;
/// Most relay ids one `Ack` frame carries (the relay refuses more); a client acks a larger batch
/// in several frames.
pub const MAX_ACK_IDS: usize = 1_000;

/// Largest plaintext a session encrypts. Attachments travel as encrypted blobs, not messages.
pub const MAX_PLAINTEXT_BYTES: usize = 128 * 1024;
/// Largest encoded [`SessionMessage`](crate::SessionMessage) accepted by the decoder.
pub const MAX_SESSION_MESSAGE_BYTES: usize = 160 * 1024;
/// Largest inner message (a session or group message) a sealed-sender envelope carries.
pub const MAX_SEALED_INNER_BYTES: usize = MAX_SESSION_MESSAGE_BYTES;
/// The sizes every encoded sealed-sender envelope takes (docs/PROTOCOL.md §9.4): 1 KiB, then ×4
/// up to 256 KiB, so the relay sees one of five sizes, not a length. 1 KiB is the floor because
/// the smallest real envelope (a receipt or typing: sender keys and signature, a ratchet header)
/// is about 450 bytes, and all of those, reactions and short texts share it; ×4 keeps the padding
/// below 4× (about 2× on average) with few classes; the largest holds the largest inner message.
pub const SEALED_ENVELOPE_SIZES: [usize; 5] = [1024, 4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024];
/// Largest encoded sealed-sender envelope accepted: the largest size class.
pub const MAX_SEALED_ENVELOPE_BYTES: usize = 256 * 1024;
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
/// Largest encoded peer user (storage) accepted by the decoder: a full session record with every
/// device of a full list, the extra record's worth covering the pinned and pending lists and framing.
/// Derived from the other bounds, so whatever state the protocol lets a peer reach stays loadable.
pub const MAX_PEER_BYTES: usize = (MAX_DEVICES + 1) * MAX_SESSION_RECORD_BYTES;
/// Largest encoded group (storage) accepted by the decoder: the log, this device's sender chain and
/// every inbound one. A log that still fits a welcome is under [`MAX_GROUP_CONTROL_BYTES`]; the rest
/// holds thousands of inbound chains, each with all [`MAX_SKIPPED_KEYS`] of its skipped keys.
pub const MAX_GROUP_BYTES: usize = 256 * 1024 * 1024;

/// SHA-512 iterations per safety-number half, as in Signal's fingerprints.
pub const SAFETY_NUMBER_ITERATIONS: u32 = 5_200;
/// (User, device-list version) pairs a client remembers having fetched a newer list for on one
/// connection, so a relay serving an older list is asked once per version (§16.7); peers can name
/// any versions, so beyond this the memory starts over.
pub const MAX_NEWER_LISTS_ASKED: usize = 1_000;
/// Base keys an account remembers to refuse replayed first messages that used no one-time prekey
/// (32 bytes each; dropped sooner when their signed prekey is rotated out). When it is full, the
/// signed prekey of the oldest one is deleted with all its base keys (replaced first if current), so
/// a replay never outlives its base key's memory.
pub const MAX_SEEN_BASE_KEYS: usize = 20_000;

/// Largest encoded [`Content`](crate::content::Content) accepted: it must fit one session plaintext.
pub const MAX_CONTENT_BYTES: usize = MAX_PLAINTEXT_BYTES;
/// Longest text (UTF-8 bytes) of a text message or an edit. Longer texts travel as attachments.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest reaction emoji in UTF-8 bytes (the longest RGI emoji ZWJ sequences are about 35 bytes).
pub const MAX_EMOJI_BYTES: usize = 64;
/// Most messages one receipt acknowledges.
pub const MAX_RECEIPT_TARGETS: usize = 1_000;
/// Largest attachment thumbnail carried inline in a pointer.
pub const MAX_THUMBNAIL_BYTES: usize = 32 * 1024;
/// Longest relay blob id in an attachment pointer.
pub const MAX_BLOB_ID_BYTES: usize = 128;
/// Longest MIME type of an attachment (RFC 6838: 127 bytes for each of type and subtype).
pub const MAX_MIME_BYTES: usize = 255;
/// Longest attachment file name in UTF-8 bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Plaintext bytes per attachment chunk. Encrypting and decrypting hold about two chunks in memory,
/// whatever the attachment's size.
pub const ATTACHMENT_CHUNK_BYTES: usize = 64 * 1024;
/// A sensible cap for callers to pass to attachment `encrypt`/`decrypt` (Signal's 100 MiB).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Most members (users) of a group.
pub const MAX_GROUP_MEMBERS: usize = 1_000;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 256;
/// Most roster changes a group's log holds.
pub const MAX_GROUP_LOG: usize = 10_000;
/// Most roster changes of one author a group holds that wait: pending (parent not arrived) or valid
/// but off the canonical chain (stale). Beyond it (or [`MAX_WAITING_BYTES_PER_AUTHOR`]) the author's
/// oldest waiting change is dropped.
pub const MAX_WAITING_CHANGES_PER_AUTHOR: usize = 16;
/// Most bytes of one author's waiting roster changes (one of the largest, as its `SignedGroupChange`):
/// every merge and every load replays them.
pub const MAX_WAITING_BYTES_PER_AUTHOR: usize = MAX_GROUP_CHANGE_BYTES + 128;
/// Most waiting roster changes a group holds of all authors but the non-members' pending ones
/// ([`MAX_NON_MEMBER_WAITING_CHANGES`]). Beyond it the oldest waiting change of the author holding the
/// most changes is dropped (beyond [`MAX_WAITING_BYTES`]: of the author holding the most bytes), so a
/// flood pushes out only its own author's changes while any other author holds less.
pub const MAX_WAITING_CHANGES: usize = 256;
/// Most bytes of waiting roster changes (of all authors) a group holds.
pub const MAX_WAITING_BYTES: usize = 2 * 1024 * 1024;
/// Most pending roster changes (parent not arrived) a group holds from authors who are not current
/// members, of all of them together; beyond it (or [`MAX_NON_MEMBER_WAITING_BYTES`]) the oldest goes.
/// A budget of its own, apart from [`MAX_WAITING_CHANGES`], so that no number of fresh keys can push
/// out a member's waiting change. Such a change is legitimate only in a reordering window: a member
/// just added (or re-added) whose own changes arrive before the change that adds them. That is a
/// handful per add (a leave, a rename once promoted), and a burst of adds is a few dozen at most, so
/// 32 covers it while each merge and load replays at most 32 more changes.
pub const MAX_NON_MEMBER_WAITING_CHANGES: usize = 32;
/// Most bytes of those non-members' pending changes: four of the largest change (an add naming
/// about a thousand users is 34 KB; [`MAX_GROUP_CHANGE_BYTES`] is 64 KiB), an eighth of
/// [`MAX_WAITING_BYTES`], so strangers add at most 256 KiB to a stored group and to every replay.
pub const MAX_NON_MEMBER_WAITING_BYTES: usize = 256 * 1024;
/// Largest encoded roster change (a create naming every member is the largest).
pub const MAX_GROUP_CHANGE_BYTES: usize = 64 * 1024;
/// Largest encoded `GroupControl` (a welcome carries the whole log).
pub const MAX_GROUP_CONTROL_BYTES: usize = 4 * 1024 * 1024;
/// Largest encoded group message.
pub const MAX_GROUP_MESSAGE_BYTES: usize = 160 * 1024;
/// Sender chains kept per member device (the current one and the one before, for messages in flight).
pub const MAX_SENDER_CHAINS_PER_DEVICE: usize = 2;
/// Sender chains kept per member USER, over all her devices. [`MAX_SENDER_CHAINS_PER_DEVICE`] alone
/// would let one member with [`MAX_DEVICES`] devices make every other member hold 200 of her chains,
/// each with up to [`MAX_SKIPPED_KEYS`] skipped keys (about 16 MB decoded and rewritten on every group
/// envelope). Real use is at most six devices (Signal allows a phone and five linked devices), each
/// keeping its previous chain for messages in flight after a rotation: 12 chains. Beyond it the
/// user's oldest-received chain goes, never another user's, so a member's chains cost at most
/// 12 × 2,000 skipped keys (about 1 MB).
pub const MAX_SENDER_CHAINS_PER_USER: usize = 12;
/// How many epochs ahead of this device's roster a group message may be and still wait (parked) for
/// its chain and the roster changes on their way. Each epoch is one roster change, and changes reach
/// every member over 1:1 sessions about as fast as the messages after them, so a member is rarely
/// more than a few ahead; a message naming an epoch further on is refused, so a member cannot keep
/// envelopes parked (unacked, filling the relay's delivery window) with messages of made-up epochs.
pub const MAX_GROUP_EPOCHS_AHEAD: u32 = 64;
/// Longest relay URL and display name (name hint) a contact link carries, and so a client may be
/// configured with: with both at their limit the link stays under `MAX_CONTACT_LINK_BYTES`.
pub const MAX_LINK_TEXT_BYTES: usize = 512;
/// Largest encoded device link request (a QR code holds at most 2,953 bytes).
pub const MAX_LINK_REQUEST_BYTES: usize = 2_900;
/// Largest link approval (user key, device list, recent-contacts state).
pub const MAX_LINK_APPROVAL_BYTES: usize = MAX_PLAINTEXT_BYTES;

/// Largest Argon2id memory cost a store file may ask for, in KiB (1 GiB): a tampered file must not
/// make the device allocate without bound.
pub const MAX_STORE_ARGON2_M_KIB: u32 = 1024 * 1024;
/// Largest Argon2id pass count a store file may ask for.
pub const MAX_STORE_ARGON2_T_COST: u32 = 64;
/// Largest Argon2id lane count a store file may ask for.
pub const MAX_STORE_ARGON2_P_COST: u32 = 16;
/// Most distinct words in one local search query.
pub const MAX_SEARCH_QUERY_WORDS: usize = 16;
/// Most messages one search returns through the bindings (`client::view`).
pub const MAX_SEARCH_RESULTS: usize = 100;
/// Most distinct emoji one user may have on one stored message.
pub const MAX_REACTIONS_PER_USER: usize = 16;
/// Most messages one history page returns.
pub const MAX_HISTORY_PAGE: usize = 1_000;
/// How long a processed relay message id is remembered for deduplication (60 days: twice the
/// relay's default message TTL, so any redelivery of a message is still recognised).
pub const PROCESSED_RELAY_ID_RETENTION_MS: u64 = 60 * 24 * 60 * 60 * 1000;

/// How long a sent copy stays in the sent log (§16.13), so that a retry receipt naming it has it sent
/// again: 3 days. A device offline longer finds the message undecryptable and its sender cannot help
/// (the relay keeps messages 30 days; keeping every payload as long would hold a month of plaintext).
/// Signal keeps its message send log one day; three cover a long weekend offline.
pub const MAX_SENT_LOG_AGE_MS: u64 = 3 * 24 * 60 * 60 * 1000;
/// Most copies the sent log keeps (the oldest go first). One row per recipient device: 5,000 are
/// about 1,000 messages to users with a few devices each, more than a busy day's 1:1 sends.
pub const MAX_SENT_LOG_ROWS: usize = 5_000;
/// How many times one payload is sent again after retry receipts: the first fixes a broken session,
/// a second covers a retry whose new session hit another stale prekey (a relay restored from a
/// backup); past that a peer or relay that keeps reporting failures gets nothing more.
pub const MAX_RESENDS: u32 = 2;
/// Most retry receipts this device sends to one sender device per [`RETRY_RECEIPT_WINDOW_MS`], so
/// a peer or relay feeding it undecryptable messages cannot make it answer without bound. A session
/// broken while a chat was busy may leave a few dozen messages undecryptable.
pub const MAX_RETRY_RECEIPTS_PER_DEVICE: u32 = 50;
/// The window of [`MAX_RETRY_RECEIPTS_PER_DEVICE`].
pub const RETRY_RECEIPT_WINDOW_MS: u64 = 60 * 60 * 1000;
/// Sender devices whose retry receipts are counted in memory; beyond, the longest-counted is forgotten.
pub const MAX_RETRY_RECEIPT_DEVICES: usize = 1_024;
/// How long a group message waits for its sender chain before its device asks the sender for it
/// with a retry receipt (it stays parked meanwhile): longer than a distribution normally takes to
/// follow its message, short enough that a lost distribution is noticed at the next reconnect.
pub const GROUP_CHAIN_WAIT_MS: u64 = 30_000;
/// Messages a member device sends on one sender chain before its next message starts a new one
/// (docs/PROTOCOL.md §10.3): a leaked chain key reads at most this many of its messages. Megolm's
/// default rotation (`rotation_period_msgs`).
pub const SENDER_CHAIN_MAX_MESSAGES: u32 = 100;
/// Age of a sender chain after which the device's next message starts a new one (§10.3): one week,
/// Megolm's default (`rotation_period_ms`).
pub const SENDER_CHAIN_MAX_AGE_MS: u64 = 7 * 24 * 3600 * 1000;

/// Largest sealed entry of a group's relay-sequenced log (docs/PROTOCOL.md §11.9): the largest
/// signed change, the entry's other fields, padding (§2.7, under 2 KiB at this size), salt and tag.
pub const MAX_GROUP_LOG_ENTRY_BYTES: usize = MAX_GROUP_CHANGE_BYTES + 4 * 1024;
/// Users a group remembers as removed or gone (a removal is final, §11.9); a removal or leave that
/// would pass it is refused (`Invalid`), so the set that keeps them out never forgets one.
pub const MAX_GROUP_REMOVED: usize = 10_000;
/// Epoch keys received over 1:1 sessions for epochs this member has not reached, held at most (one
/// per sender and epoch, the furthest epoch dropped first).
pub const MAX_GROUP_KEY_GRANTS: usize = 256;
/// Transcript hashes of past epochs a member keeps to check what others say of them (§11.9).
pub const MAX_GROUP_TRANSCRIPTS_KEPT: usize = MAX_GROUP_EPOCHS_AHEAD as usize;
/// Largest encoded `GroupWelcome`: a full roster and every removed user's key.
pub const MAX_GROUP_WELCOME_BYTES: usize = 64 * (MAX_GROUP_MEMBERS + MAX_GROUP_REMOVED) + 4 * 1024;
