//! Typed errors: what a request can fail with (sent to the client as an `Error` frame with its
//! code) and what starting the relay can fail with.

use hush_core::wire::relay::ErrorCode;

use crate::limits;

/// Why a request was refused. Each maps to one `ErrorCode` of relay.proto; the message is the frame's
/// `detail` and never holds message bytes, keys or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Bytes that are not a canonical frame, or fields of the wrong shape.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A protocol version this relay does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u32),
    /// The operation needs an authenticated socket, or the auth response was refused.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A signature that does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// A frame or value over its limit.
    #[error("{what} is {size} bytes, the limit is {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A recipient's mailbox is full (index of the first full one in the request).
    #[error("the mailbox of recipient #{0} is full")]
    QuotaExceeded(usize),
    /// A stored-count limit (prekeys) would be exceeded.
    #[error("too many {0} stored")]
    StoreLimit(&'static str),
    /// The device or IP address sends faster than its rate limit; the same request is taken again
    /// after `retry_after_ms`.
    #[error("rate limited; retry after {retry_after_ms} ms")]
    RateLimited {
        /// Milliseconds until the bucket holds a token again.
        retry_after_ms: u64,
    },
    /// Nothing known under that key.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A signed device list whose version is below (or equal to, with other content) the stored one.
    #[error("device list version {received} does not supersede stored version {stored}")]
    Rollback {
        /// Version stored.
        stored: u64,
        /// Version received.
        received: u64,
    },
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The relay's own failure (storage); details are logged, not sent.
    #[error("internal error")]
    Internal,
}

impl RequestError {
    /// When to send the same request again: for a refusal that waiting can overcome, the time until
    /// it may be taken (a rate limit's bucket, a full mailbox draining, the relay's own trouble
    /// passing); 0 for a refusal the same request will always get.
    pub fn retry_after_ms(&self) -> u64 {
        match self {
            Self::RateLimited { retry_after_ms } => *retry_after_ms,
            Self::QuotaExceeded(_) => limits::QUOTA_RETRY_AFTER_MS,
            Self::Internal => limits::INTERNAL_RETRY_AFTER_MS,
            Self::Malformed(_)
            | Self::UnsupportedVersion(_)
            | Self::Unauthenticated(_)
            | Self::BadSignature(_)
            | Self::TooLarge { .. }
            | Self::StoreLimit(_)
            | Self::NotFound(_)
            | Self::Rollback { .. }
            | Self::Forbidden(_) => 0,
        }
    }

    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::Malformed,
            Self::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::BadSignature(_) => ErrorCode::BadSignature,
            Self::TooLarge { .. } | Self::StoreLimit(_) => ErrorCode::TooLarge,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Rollback { .. } => ErrorCode::Rollback,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Internal => ErrorCode::Internal,
        }
    }

    /// A short label for the `rejects` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::BadSignature(_) => "bad_signature",
            Self::TooLarge { .. } => "too_large",
            Self::StoreLimit(_) => "store_limit",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotFound(_) => "not_found",
            Self::Rollback { .. } => "rollback",
            Self::Forbidden(_) => "forbidden",
            Self::Internal => "internal",
        }
    }
}

impl From<hush_core::Error> for RequestError {
    fn from(e: hush_core::Error) -> Self {
        use hush_core::Error as E;
        match e {
            E::TooLarge { what, size, max } => Self::TooLarge { what, size: size as u64, max: max as u64 },
            E::UnsupportedVersion { version, .. } => Self::UnsupportedVersion(version),
            E::BadSignature { what } => Self::BadSignature(what),
            E::Malformed { what } => Self::Malformed(what),
            E::InvalidKem { what } => Self::Malformed(what),
            E::DuplicateDevice => Self::Malformed("device list (duplicate device)"),
            E::NonContributoryKey => Self::Malformed("public key"),
            _ => Self::Malformed("input"),
        }
    }
}

impl From<StorageError> for RequestError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::QuotaExceeded { index } => Self::QuotaExceeded(index),
            StorageError::UnknownRecipient { .. } => Self::NotFound("recipient device"),
            StorageError::Rollback { stored, received } => Self::Rollback { stored, received },
            StorageError::TooMany(what) => Self::StoreLimit(what),
            StorageError::NotFound(what) => Self::NotFound(what),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::Internal
            }
        }
    }
}

/// What a storage backend can fail with: refusals the client caused, or the backend's own failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A recipient's mailbox is full; nothing of the batch was stored.
    #[error("mailbox of recipient #{index} is full")]
    QuotaExceeded {
        /// Index of the recipient in the batch.
        index: usize,
    },
    /// A recipient has no mailbox here; nothing of the batch was stored.
    #[error("recipient #{index} is unknown")]
    UnknownRecipient {
        /// Index of the recipient in the batch.
        index: usize,
    },
    /// A device list that does not supersede the stored one.
    #[error("device list rollback ({received} after {stored})")]
    Rollback {
        /// Stored version.
        stored: u64,
        /// Offered version.
        received: u64,
    },
    /// A per-device count limit.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// Missing state the operation needs.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Stored data that no longer parses: a bug or a damaged database.
    #[error("corrupt stored {0}")]
    Corrupt(&'static str),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
    /// This backend is not available in this build.
    #[error("{0}")]
    Unsupported(String),
    /// A storage task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Binding the listener or another I/O failure.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The storage backend failed to open or migrate.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A configuration value that cannot work.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_waiting_overcomes_say_when_and_the_others_say_never() {
        let waits =
            [RequestError::RateLimited { retry_after_ms: 7 }, RequestError::QuotaExceeded(0), RequestError::Internal];
        assert!(waits.iter().all(|e| e.retry_after_ms() > 0));
        let never = [
            RequestError::Malformed("x"),
            RequestError::UnsupportedVersion(9),
            RequestError::Unauthenticated("x"),
            RequestError::BadSignature("x"),
            RequestError::TooLarge { what: "x", size: 2, max: 1 },
            RequestError::StoreLimit("x"),
            RequestError::NotFound("x"),
            RequestError::Rollback { stored: 2, received: 1 },
            RequestError::Forbidden("x"),
        ];
        assert!(never.iter().all(|e| e.retry_after_ms() == 0));
    }
}
