//! [`HushError`]: the one error type of every exported call.
//!
//! Foreign languages see one exception class per variant: `HushError.BadInput` in Python,
//! `HushException.BadInput` in Kotlin (uniffi renames `…Error` to `…Exception` there),
//! `HushError.BadInput` in Swift. Each carries a human-readable message. Messages are built from
//! hush-core's error texts and fixed strings only: they never contain key bytes, plaintext or
//! passphrases, so applications may log them.

use hush_core::Error as CoreError;

/// Why a call into hush failed. The variants group hush-core's errors by what an application
/// does about them; the message says exactly what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum HushError {
    /// An argument or received bytes that are malformed, too large, of an unknown version, or
    /// otherwise unusable (a bad id, a wrong-length key, a group change that would not apply).
    #[error("{0}")]
    BadInput(String),
    /// A message or attachment that does not decrypt or authenticate: forged, corrupted, for
    /// another session, or on a chain this device does not have (or no longer has).
    #[error("{0}")]
    Decryption(String),
    /// A message that was already received and decrypted once; safe to ignore.
    #[error("{0}")]
    Duplicate(String),
    /// Identities do not check out: a bad signature, a sender or device that does not match, a
    /// device not on its user's list, a user key that changed, an identity change not yet
    /// accepted or verified, a device list rollback.
    #[error("{0}")]
    Identity(String),
    /// The protocol refused: no session, a prekey that is gone, a classical session where
    /// post-quantum is required, not a member of the group.
    #[error("{0}")]
    Protocol(String),
    /// The store or file system failed: a corrupt value, an existing database, SQLite or I/O.
    #[error("{0}")]
    Storage(String),
    /// The store key or passphrase does not unlock the store. Nothing was written.
    #[error("{0}")]
    WrongKey(String),
    /// The relay could not be reached, did not answer, or refused; or the client is not
    /// connected.
    #[error("{0}")]
    Network(String),
    /// The thing asked for (a message, conversation, contact) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A bug in hush: an invariant broke. Never caused by input; please report it.
    #[error("{0}")]
    Internal(String),
}

impl HushError {
    /// [`HushError::BadInput`] with this message.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    /// [`HushError::Decryption`] with this message.
    pub fn decryption(message: impl Into<String>) -> Self {
        Self::Decryption(message.into())
    }

    /// [`HushError::Identity`] with this message.
    pub fn identity(message: impl Into<String>) -> Self {
        Self::Identity(message.into())
    }

    /// [`HushError::Protocol`] with this message.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }

    /// [`HushError::Storage`] with this message.
    pub fn storage(message: impl Into<String>) -> Self {
        Self::Storage(message.into())
    }

    /// [`HushError::Network`] with this message.
    pub fn network(message: impl Into<String>) -> Self {
        Self::Network(message.into())
    }

    /// [`HushError::NotFound`] with this message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// [`HushError::Internal`] with this message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<CoreError> for HushError {
    fn from(e: CoreError) -> Self {
        // hush-core's messages name structures, sizes, versions and ids, never key bytes.
        let message = e.to_string();
        match e {
            CoreError::Malformed { .. }
            | CoreError::TooLarge { .. }
            | CoreError::UnsupportedVersion { .. }
            | CoreError::InvalidKem { .. }
            | CoreError::AttachmentTooLarge { .. }
            | CoreError::GroupChangeRejected(_) => Self::BadInput(message),
            CoreError::DecryptionFailed
            | CoreError::TooFarAhead { .. }
            | CoreError::UnknownSenderChain
            | CoreError::AttachmentDigestMismatch => Self::Decryption(message),
            CoreError::DuplicateMessage => Self::Duplicate(message),
            CoreError::BadSignature { .. }
            | CoreError::NonContributoryKey
            | CoreError::PeerMismatch
            | CoreError::SenderMismatch
            | CoreError::DeviceListRollback { .. }
            | CoreError::UserKeyChanged
            | CoreError::DuplicateDevice
            | CoreError::UnknownDevice
            | CoreError::IdentityChangePending => Self::Identity(message),
            CoreError::PostQuantumRequired
            | CoreError::ClassicalRefused
            | CoreError::UnknownPrekey { .. }
            | CoreError::NoSession
            | CoreError::NotGroupMember
            | CoreError::NotLinked
            | CoreError::AlreadyLinked => Self::Protocol(message),
            CoreError::WrongStoreKey => Self::WrongKey(message),
            CoreError::StoreCorrupt { .. } | CoreError::StoreExists | CoreError::Database(_) | CoreError::Io(_) => {
                Self::Storage(message)
            }
            CoreError::Internal(_) => Self::Internal(message),
            // hush_core::Error is non_exhaustive: a kind added later is reported, not lost.
            _ => Self::Protocol(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_their_kind() {
        let cases = [
            (CoreError::Malformed { what: "x" }, HushError::BadInput("malformed x".into())),
            (CoreError::DecryptionFailed, HushError::Decryption("message failed to decrypt".into())),
            (CoreError::DuplicateMessage, HushError::Duplicate("duplicate message".into())),
            (
                CoreError::BadSignature { what: "device list" },
                HushError::Identity("bad signature on device list".into()),
            ),
            (CoreError::NoSession, HushError::Protocol("no session".into())),
            (CoreError::WrongStoreKey, HushError::WrongKey("wrong store key or passphrase".into())),
            (CoreError::StoreExists, HushError::Storage("a database already exists there".into())),
            (CoreError::Internal("oops"), HushError::Internal("internal error: oops".into())),
        ];
        for (core, expected) in cases {
            assert_eq!(HushError::from(core), expected);
        }
    }

    #[test]
    fn constructors_pick_their_variant() {
        assert_eq!(HushError::bad_input("a"), HushError::BadInput("a".into()));
        assert_eq!(HushError::network("b"), HushError::Network("b".into()));
        assert_eq!(HushError::not_found("c").to_string(), "c");
    }
}
