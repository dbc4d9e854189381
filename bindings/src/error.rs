//! [`HushError`]: the one error type of every exported call.
//!
//! Foreign languages see one exception class per variant: `HushError.BadInput` in Python,
//! `HushException.BadInput` in Kotlin (uniffi renames `…Error` to `…Exception` there),
//! `HushError.BadInput` in Swift: one per [`ErrorKind`] of hush-core, whose stable code
//! ([`ErrorKind::code`], `"bad_input"`) is the snake_case of the class name and the `code` of
//! hush-wasm's errors; each language's package adds it as `code` (Python's `__init__.py`,
//! `ffi-kotlin/src/main/kotlin`, `ffi-swift/Sources/Hush/HushError+Code.swift`), and
//! [`hush_error_codes`] lists them. Each carries a human-readable message. Messages are built from
//! hush-core's error texts and fixed strings only: they never contain key bytes, plaintext or
//! passphrases, so applications may log them.

use hush_core::{Error as CoreError, ErrorKind};

/// Why a call into hush failed. The variants are hush-core's [`ErrorKind`]s, which group its
/// errors by what an application does about them; the message says exactly what happened.
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

impl HushError {
    /// An error of this kind with this message. A kind added to hush-core later than this binding
    /// reads as [`HushError::Internal`] until it gets its own variant here.
    pub fn of_kind(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::BadInput => Self::BadInput(message),
            ErrorKind::Decryption => Self::Decryption(message),
            ErrorKind::Duplicate => Self::Duplicate(message),
            ErrorKind::Identity => Self::Identity(message),
            ErrorKind::Protocol => Self::Protocol(message),
            ErrorKind::Storage => Self::Storage(message),
            ErrorKind::WrongKey => Self::WrongKey(message),
            ErrorKind::Network => Self::Network(message),
            ErrorKind::NotFound => Self::NotFound(message),
            ErrorKind::Internal => Self::Internal(message),
            _ => Self::Internal(message),
        }
    }

    /// Its kind: the variant.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadInput(_) => ErrorKind::BadInput,
            Self::Decryption(_) => ErrorKind::Decryption,
            Self::Duplicate(_) => ErrorKind::Duplicate,
            Self::Identity(_) => ErrorKind::Identity,
            Self::Protocol(_) => ErrorKind::Protocol,
            Self::Storage(_) => ErrorKind::Storage,
            Self::WrongKey(_) => ErrorKind::WrongKey,
            Self::Network(_) => ErrorKind::Network,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable code of its kind ([`ErrorKind::code`]), e.g. `"bad_input"`.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl From<CoreError> for HushError {
    fn from(e: CoreError) -> Self {
        // hush-core's messages name structures, sizes, versions and ids, never key bytes.
        Self::of_kind(e.kind(), e.to_string())
    }
}

/// The code of every error kind, in hush-core's order ([`ErrorKind::ALL`]): `"bad_input"`,
/// `"decryption"`, …. Each is the snake_case name of one `HushError` variant (the exception class
/// `HushError.BadInput` has the code `"bad_input"`).
#[uniffi::export]
pub fn hush_error_codes() -> Vec<String> {
    ErrorKind::ALL.iter().map(|k| k.code().to_owned()).collect()
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
    fn every_kind_has_its_variant_named_by_its_code() {
        let codes = hush_error_codes();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for (kind, code) in ErrorKind::ALL.into_iter().zip(&codes) {
            let e = HushError::of_kind(kind, "m".into());
            assert_eq!((e.kind(), e.code()), (kind, code.as_str()));
            // The variant's name in snake_case is the code (what the foreign tests rely on).
            let name = format!("{e:?}");
            let name = name.split('(').next().unwrap_or_default();
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                    sep.into_iter().chain([c.to_ascii_lowercase()])
                })
                .collect();
            assert_eq!(&snake, code);
        }
    }

    #[test]
    fn constructors_pick_their_variant() {
        assert_eq!(HushError::bad_input("a"), HushError::BadInput("a".into()));
        assert_eq!(HushError::network("b"), HushError::Network("b".into()));
        assert_eq!(HushError::not_found("c").to_string(), "c");
    }
}
