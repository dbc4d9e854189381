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
    /// Another member was shown a different history of the group's roster log than this device
    /// (a relay that equivocates, docs/PROTOCOL.md §11.9): their transcript hash of `epoch` is not ours.
    #[error("the group's history differs from another member's at epoch {epoch}")]
    GroupForked {
        /// The epoch whose transcripts differ.
        epoch: u64,
    },
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
    /// Only the user's primary device, the one that holds the user key (docs/PROTOCOL.md §12), may
    /// do this: link or remove a device, create a group or change one's roster. A linked device
    /// asks the primary instead.
    #[error("only the primary device, which holds the user key, may do this")]
    NotPrimary,
    /// A link request past its expiry, or a link already used (docs/PROTOCOL.md §12.2): show a
    /// fresh request on the new device and scan that.
    #[error("the link request expired or was used already")]
    LinkExpired,
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
    /// Another open store, in this process or another, holds this store file (its anchor's lock):
    /// one store file has one client at a time. Nothing was read or written.
    #[error("the store is in use by another client; close it first")]
    StoreInUse,
    /// The store file is older than the last state its anchor records (a restored backup or
    /// snapshot, a copy put back): its keys may have been used since. `Store::open` refuses it;
    /// `Store::open_read_only` opens it for reading, and it never writes or sends.
    #[error("the store is an older copy (generation {stored}, last recorded {}); it opens only read-only", anchored_text(*.anchored))]
    StoreRolledBack {
        /// The generation the store file holds.
        stored: u64,
        /// The generation its anchor records; `None` when the anchor is missing or is not this store's.
        anchored: Option<u64>,
    },
    /// A write to a store opened read-only (`Store::open_read_only`); nothing was written.
    #[error("the store is open read-only: nothing is written or sent")]
    StoreReadOnly,
    /// SQLite failed (I/O, a full disk, a lock held too long by another connection, a file that is
    /// not a database).
    #[error("database error: {0}")]
    Database(String),
    /// An invariant of hush-core itself broke: a bug, never caused by input.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// How [`Error::StoreRolledBack`] names the anchor's generation.
fn anchored_text(anchored: Option<u64>) -> String {
    anchored.map_or_else(|| "nowhere: its anchor is missing or not this store's".to_owned(), |g| g.to_string())
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
    /// The change would add back a user who was removed, or was made by one: in the relay-sequenced
    /// log (docs/PROTOCOL.md §11.9) a removal is final.
    Removed,
    /// This member's previous change is still waiting for the relay's answer (§11.9): one at a time.
    InFlight,
}

impl Error {
    /// What kind of failure this is: the coarse class an application acts on, with a stable
    /// [`code`](ErrorKind::code) that every binding shows (the exception class of hush-ffi, the
    /// `code` of hush-wasm's `HushError`).
    ///
    /// The match is exhaustive on purpose: a new variant does not compile until it is given a kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed { .. }
            | Error::TooLarge { .. }
            | Error::UnsupportedVersion { .. }
            | Error::InvalidKem { .. }
            | Error::AttachmentTooLarge { .. }
            | Error::GroupChangeRejected(_) => ErrorKind::BadInput,
            Error::DecryptionFailed
            | Error::TooFarAhead { .. }
            | Error::UnknownSenderChain
            | Error::AttachmentDigestMismatch => ErrorKind::Decryption,
            Error::DuplicateMessage => ErrorKind::Duplicate,
            Error::BadSignature { .. }
            | Error::NonContributoryKey
            | Error::PeerMismatch
            | Error::SenderMismatch
            | Error::DeviceListRollback { .. }
            | Error::UserKeyChanged
            | Error::DuplicateDevice
            | Error::UnknownDevice
            | Error::IdentityChangePending
            | Error::GroupForked { .. } => ErrorKind::Identity,
            Error::PostQuantumRequired
            | Error::ClassicalRefused
            | Error::UnknownPrekey { .. }
            | Error::NoSession
            | Error::NotGroupMember
            | Error::NotLinked
            | Error::AlreadyLinked
            | Error::NotPrimary
            | Error::LinkExpired => ErrorKind::Protocol,
            Error::WrongStoreKey => ErrorKind::WrongKey,
            Error::StoreCorrupt { .. }
            | Error::StoreExists
            | Error::StoreInUse
            | Error::StoreRolledBack { .. }
            | Error::StoreReadOnly
            | Error::Database(_)
            | Error::Io(_) => ErrorKind::Storage,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The class of a failure, by what an application does about it ([`Error::kind`]). Each kind has
/// a stable snake_case [`code`](Self::code); every binding shows the same codes (hush-ffi: one
/// exception class per kind; hush-wasm: the `code` of its `HushError`).
///
/// [`Network`](Self::Network) and [`NotFound`](Self::NotFound) are no [`Error`]'s kind: the
/// bindings report them (a relay that cannot be reached, a message id that names nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument or received bytes that are malformed, too large, of an unknown version, or
    /// otherwise unusable (a bad id, a wrong-length key, a group change that would not apply).
    BadInput,
    /// A message or attachment that does not decrypt or authenticate: forged, corrupted, for
    /// another session, or on a chain this device does not have (or no longer has).
    Decryption,
    /// A message that was already received and decrypted once; safe to ignore.
    Duplicate,
    /// Identities do not check out: a bad signature, a sender or device that does not match, a
    /// device not on its user's list, a user key that changed, an identity change not yet
    /// accepted or verified, a device list rollback.
    Identity,
    /// The protocol refused: no session (e.g. with a user who is no contact), a prekey that is
    /// gone, a classical session where post-quantum is required, not a member of the group, a
    /// device not linked yet or linked already, a linked device doing what only the primary may,
    /// an expired or used link request.
    Protocol,
    /// The store or file system failed: a corrupt value, an existing database, SQLite or I/O.
    Storage,
    /// The store key or passphrase does not unlock the store. Nothing was written.
    WrongKey,
    /// The relay could not be reached, did not answer, or refused; or the client is not connected.
    Network,
    /// The thing asked for (a message, conversation, contact) does not exist.
    NotFound,
    /// A bug in hush: an invariant broke. Never caused by input; please report it.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::BadInput,
        ErrorKind::Decryption,
        ErrorKind::Duplicate,
        ErrorKind::Identity,
        ErrorKind::Protocol,
        ErrorKind::Storage,
        ErrorKind::WrongKey,
        ErrorKind::Network,
        ErrorKind::NotFound,
        ErrorKind::Internal,
    ];

    /// The stable code: the snake_case of the kind's name, e.g. `"bad_input"`, `"wrong_key"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Decryption => "decryption",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::Identity => "identity",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Storage => "storage",
            ErrorKind::WrongKey => "wrong_key",
            ErrorKind::Network => "network",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind whose [`code`](Self::code) this is.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.code())
    }
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

#[cfg(test)]
mod tests {
    use super::ChangeRejection;
    use super::*;

    /// Every variant of [`Error`] and the kind it is meant to have. A variant added to `Error`
    /// fails to compile in [`Error::kind`] until it has a kind; add it here too.
    fn every_variant() -> Vec<(Error, ErrorKind)> {
        use ErrorKind as K;
        vec![
            (Error::Malformed { what: "x" }, K::BadInput),
            (Error::TooLarge { what: "x", size: 2, max: 1 }, K::BadInput),
            (Error::UnsupportedVersion { what: "x", version: 9 }, K::BadInput),
            (Error::BadSignature { what: "x" }, K::Identity),
            (Error::NonContributoryKey, K::Identity),
            (Error::InvalidKem { what: "x" }, K::BadInput),
            (Error::PostQuantumRequired, K::Protocol),
            (Error::ClassicalRefused, K::Protocol),
            (Error::UnknownPrekey { kind: PrekeyKind::OneTime, id: 1 }, K::Protocol),
            (Error::PeerMismatch, K::Identity),
            (Error::SenderMismatch, K::Identity),
            (Error::NoSession, K::Protocol),
            (Error::DecryptionFailed, K::Decryption),
            (Error::DuplicateMessage, K::Duplicate),
            (Error::TooFarAhead { jump: 2, max: 1 }, K::Decryption),
            (Error::DeviceListRollback { pinned: 2, received: 1 }, K::Identity),
            (Error::UserKeyChanged, K::Identity),
            (Error::DuplicateDevice, K::Identity),
            (Error::UnknownDevice, K::Identity),
            (Error::AttachmentTooLarge { size: 2, max: 1 }, K::BadInput),
            (Error::AttachmentDigestMismatch, K::Decryption),
            (Error::Io(std::io::ErrorKind::UnexpectedEof), K::Storage),
            (Error::NotGroupMember, K::Protocol),
            (Error::GroupChangeRejected(ChangeRejection::NotAdmin), K::BadInput),
            (Error::UnknownSenderChain, K::Decryption),
            (Error::IdentityChangePending, K::Identity),
            (Error::NotLinked, K::Protocol),
            (Error::AlreadyLinked, K::Protocol),
            (Error::NotPrimary, K::Protocol),
            (Error::LinkExpired, K::Protocol),
            (Error::WrongStoreKey, K::WrongKey),
            (Error::StoreCorrupt { table: "x" }, K::Storage),
            (Error::StoreExists, K::Storage),
            (Error::StoreInUse, K::Storage),
            (Error::StoreRolledBack { stored: 1, anchored: Some(2) }, K::Storage),
            (Error::StoreReadOnly, K::Storage),
            (Error::Database("x".into()), K::Storage),
            (Error::Internal("x"), K::Internal),
        ]
    }

    #[test]
    fn every_variant_has_its_intended_kind() {
        let cases = every_variant();
        for (error, kind) in &cases {
            assert_eq!(error.kind(), *kind, "{error:?}");
        }
        // One case per variant: the variant names are all different.
        let mut names: Vec<String> = cases
            .iter()
            .map(|(e, _)| format!("{e:?}").split([' ', '(', '{']).next().unwrap_or("").to_owned())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cases.len());
        // Network and NotFound are the bindings' own; every other kind is some error's.
        for kind in ErrorKind::ALL {
            let used = cases.iter().any(|(_, k)| *k == kind);
            assert_eq!(used, !matches!(kind, ErrorKind::Network | ErrorKind::NotFound), "{kind:?}");
        }
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            [
                "bad_input",
                "decryption",
                "duplicate",
                "identity",
                "protocol",
                "storage",
                "wrong_key",
                "network",
                "not_found",
                "internal"
            ]
        );
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
            assert_eq!(kind.to_string(), kind.code());
            // The code is the snake_case of the name (what the bindings' class names derive from).
            let name = format!("{kind:?}");
            let mut snake = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(snake, kind.code());
        }
        assert_eq!(ErrorKind::from_code("Malformed"), None);
    }
}
