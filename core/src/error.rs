//! The one error type of hush-core. Bad input always yields one of these and changes no state.

/// What went wrong. Every variant but [`Error::Internal`] is caused by input; `Internal` is our bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not decode as the expected structure, or fields of the wrong size.
    #[error("malformed {what}")]
    Malformed {
        /// The structure that failed to decode.
        what: &'static str,
    },
    /// Input longer than the limit for its kind.
    #[error("{what} is {size} bytes, the limit is {max}")]
    TooLarge {
        /// The structure that was too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A format version this build does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The structure carrying the version.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A signature that does not verify (strict Ed25519 verification).
    #[error("bad signature on {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// An X25519 exchange with a low-order or otherwise non-contributory public key.
    #[error("non-contributory public key")]
    NonContributoryKey,
    /// An ML-KEM public key or ciphertext that fails validation.
    #[error("invalid ML-KEM {what}")]
    InvalidKem {
        /// The key or ciphertext.
        what: &'static str,
    },
    /// The peer published no ML-KEM prekey and classical X3DH was not allowed.
    #[error("peer offers no post-quantum prekey and classical X3DH is not allowed")]
    PostQuantumRequired,
    /// A classical (X3DH) first message arrived and classical sessions are not allowed.
    #[error("classical X3DH session refused")]
    ClassicalRefused,
    /// A first message names a prekey this account does not hold (used already, or never issued).
    #[error("unknown {kind} prekey {id}")]
    UnknownPrekey {
        /// Which kind of prekey.
        kind: PrekeyKind,
        /// Its id.
        id: u32,
    },
    /// A message from a device other than the one this session record belongs to.
    #[error("message is from a different device than this session's peer")]
    PeerMismatch,
    /// A sealed-sender envelope whose claimed sender is not the device whose identity key sealed
    /// it, or not the user or device it was checked against.
    #[error("sealed sender does not match")]
    SenderMismatch,
    /// No session to encrypt with, or none that a message belongs to.
    #[error("no session")]
    NoSession,
    /// The message authenticates under no session key: forged, corrupted, or for another session.
    #[error("message failed to decrypt")]
    DecryptionFailed,
    /// A message that was already decrypted once.
    #[error("duplicate message")]
    DuplicateMessage,
    /// A message further ahead in its chain than [`MAX_FORWARD_JUMP`](crate::limits::MAX_FORWARD_JUMP).
    #[error("message jumps {jump} ahead in its chain, the limit is {max}")]
    TooFarAhead {
        /// How far ahead.
        jump: u64,
        /// The limit.
        max: u32,
    },
    /// The signed device list's version is not above the pinned one.
    #[error("device list version {received} does not supersede pinned version {pinned}")]
    DeviceListRollback {
        /// Version pinned locally.
        pinned: u64,
        /// Version received.
        received: u64,
    },
    /// The signed device list is signed by a different user key than the pinned one.
    #[error("the user key changed")]
    UserKeyChanged,
    /// A device list that names the same device twice.
    #[error("device list names a device twice")]
    DuplicateDevice,
    /// A device that is not on the user's current signed device list.
    #[error("device is not on the user's device list")]
    UnknownDevice,
    /// An attachment larger than the cap given to `attachment::encrypt`/`decrypt`.
    #[error("attachment is {size} bytes, the cap is {max}")]
    AttachmentTooLarge {
        /// Its size in bytes (on encrypt: the bytes read when the cap was crossed).
        size: u64,
        /// The cap in bytes.
        max: u64,
    },
    /// An attachment blob whose SHA-256 is not the digest its pointer names.
    #[error("attachment digest mismatch")]
    AttachmentDigestMismatch,
    /// Reading or writing an attachment stream failed.
    #[error("attachment I/O error: {0}")]
    Io(std::io::ErrorKind),
    /// The local user is not a member of the group, or the sender is not.
    #[error("not a member of the group")]
    NotGroupMember,
    /// A roster change that would not take effect.
    #[error("group change rejected: {0:?}")]
    GroupChangeRejected(ChangeRejection),
    /// A group message on a sender chain this device never received (or dropped: removed sender).
    #[error("unknown sender chain")]
    UnknownSenderChain,
    /// The peer's user key changed and the change was neither accepted nor verified yet.
    #[error("the peer's identity changed; accept or verify it first")]
    IdentityChangePending,
    /// This device waits to be linked ([`Client::create_for_link`](crate::Client::create_for_link)):
    /// it has no user yet, so it cannot do what needs one.
    #[error("this device is not linked to a user yet")]
    NotLinked,
    /// A link request on a device that already belongs to a user.
    #[error("this device is already linked to a user")]
    AlreadyLinked,
    /// The key or passphrase given does not unlock this store. Nothing was written.
    #[error("wrong store key or passphrase")]
    WrongStoreKey,
    /// A stored value that fails to authenticate or decode: corrupted on disk, or moved from
    /// another row. Other rows stay readable.
    #[error("corrupt value in store table {table}")]
    StoreCorrupt {
        /// The SQL table holding the value.
        table: &'static str,
    },
    /// `Store::create` on a file that already holds a database. The file was left untouched.
    #[error("a database already exists there")]
    StoreExists,
    /// SQLite failed (I/O, a full disk, a lock held too long by another connection, a file that is
    /// not a database).
    #[error("database error: {0}")]
    Database(String),
    /// An invariant of hush-core itself broke: a bug, never caused by input.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why a group roster change did not take effect. Defined here, below the group module, so the
/// error type depends on nothing above it; `group::ChangeRejection` re-exports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeRejection {
    /// Made on an epoch the group has moved on from, or lost a race with a concurrent change.
    StaleEpoch,
    /// The author is not an admin (or, for leave, not a member) at that point.
    NotAdmin,
    /// The change does not fit the roster: adding a member, removing a non-member, a second create.
    Invalid,
}

/// The kinds of prekey a first message can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrekeyKind {
    /// Signed X25519 prekey.
    Signed,
    /// One-time X25519 prekey.
    OneTime,
    /// ML-KEM-768 prekey (one-time or last resort).
    Kem,
}

impl core::fmt::Display for PrekeyKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PrekeyKind::Signed => "signed",
            PrekeyKind::OneTime => "one-time",
            PrekeyKind::Kem => "ML-KEM",
        })
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
