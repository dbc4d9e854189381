//! Payloads (docs/PROTOCOL.md §13): the one [`Content`] every session or group message carries, a
//! client message id, a timestamp and one body. Bounds (limits.rs) are checked on encode as well as
//! decode, so what one client sends, every other accepts.

use prost::Message;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::attachment::{self, ATTACHMENT_DIGEST_LEN, AttachmentEncryption, AttachmentKey};
use crate::error::{Error, Result};
use crate::limits::{
    MAX_BLOB_ID_BYTES, MAX_CONTENT_BYTES, MAX_EMOJI_BYTES, MAX_FILE_NAME_BYTES, MAX_MIME_BYTES, MAX_RECEIPT_TARGETS,
    MAX_TEXT_BYTES, MAX_THUMBNAIL_BYTES,
};
use crate::wire;

/// Types generated from `core/proto/content.proto`. The attachment pointer, device-link and
/// sender-key-distribution messages hold secrets: they zeroize on drop and their `Debug` prints
/// nothing but the type's name.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/hush.content.rs"));

    crate::wire::redacted_debug!("content": AttachmentPointer, DeviceLink, SenderKeyDistribution, SentSync);
}

use proto::content::Body;

const CONTENT_VERSION: u32 = 1;

/// The longest conversation id a [`ContentBody::SentSync`] may name (a tag and 32 bytes today).
const MAX_SENT_SYNC_CONVERSATION_BYTES: usize = 64;

/// Length of a client message id.
pub const CLIENT_MESSAGE_ID_LEN: usize = 16;

/// A client message id: 16 random bytes chosen by the sender, naming one message for edits,
/// deletes, reactions, receipts and deduplication.
pub type MessageId = [u8; CLIENT_MESSAGE_ID_LEN];

/// One payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The sender's random id for this message.
    pub client_message_id: MessageId,
    /// The sender's clock when it created the message, unix milliseconds.
    pub timestamp_ms: u64,
    /// What the message says or does.
    pub body: ContentBody,
}

/// The kinds of payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentBody {
    /// A text message (non-empty, at most [`MAX_TEXT_BYTES`]).
    Text(String),
    /// Replaces the text of an earlier message of the same sender.
    Edit {
        /// The message edited.
        target: MessageId,
        /// Its new text (non-empty, at most [`MAX_TEXT_BYTES`]).
        text: String,
    },
    /// Deletes an earlier message of the same sender for everyone.
    Delete {
        /// The message deleted.
        target: MessageId,
    },
    /// Adds or withdraws an emoji reaction.
    Reaction {
        /// The message reacted to.
        target: MessageId,
        /// The emoji (non-empty, at most [`MAX_EMOJI_BYTES`]).
        emoji: String,
        /// Withdraws this emoji instead of adding it.
        remove: bool,
    },
    /// Delivery or read receipt for one or more messages.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages acknowledged (1 to [`MAX_RECEIPT_TARGETS`]).
        targets: Vec<MessageId>,
    },
    /// Typing started or stopped. Online only: see [`ContentBody::is_online_only`].
    Typing {
        /// Started (true) or stopped (false) typing.
        started: bool,
    },
    /// An encrypted attachment on the relay.
    Attachment(AttachmentPointer),
    /// A signed group change produced by the group module, carried opaque.
    GroupControl {
        /// The group changed.
        group_id: crate::group::GroupId,
        /// The encoded, signed change (non-empty).
        change: Vec<u8>,
    },
    /// Sets the conversation's disappearing-message timer.
    DisappearingTimer {
        /// Lifetime of later messages in seconds; 0 turns the timer off.
        seconds: u32,
    },
    /// A device-link payload produced by the multi-device module (secret, opaque, non-empty).
    DeviceLink(SecretBytes),
    /// A sender-key distribution produced by the group module (secret, opaque, non-empty).
    SenderKeyDistribution(SecretBytes),
    /// A copy of what this user sent from another of their devices ("sent sync"), for their own
    /// devices only: where it went and the encoded [`Content`] (secret: it may hold an attachment
    /// key; never itself a `SentSync`, which [`ContentBody::sent_sync`] checks on opening).
    SentSync {
        /// The [`ConversationId`](crate::store::ConversationId) bytes it was sent to.
        conversation: Vec<u8>,
        /// The encoded content as sent.
        content: SecretBytes,
    },
    /// A retry receipt: the sender could not decrypt a message from the recipient's device and
    /// names it by the SHA-256 of its inner message. Only ever sealed without a session
    /// ([`InnerKind::Plaintext`](crate::sealed_sender::InnerKind::Plaintext)).
    DecryptionError {
        /// SHA-256 of the inner message that failed.
        message_hash: [u8; 32],
        /// What failed.
        reason: DecryptionErrorReason,
    },
}

/// Why a message could not be decrypted, as a retry receipt says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptionErrorReason {
    /// No session with the sending device.
    NoSession,
    /// A first message naming a prekey this device no longer holds (used, or handed out again by a
    /// relay restored from a backup).
    UnknownPrekey,
    /// No session key opens it: its chain was dropped, or the key was used.
    Undecryptable,
    /// Not said (0), or a reason a newer version knows and this one does not: kept as sent (so the
    /// encoding round-trips), read as no reason at all.
    Other(i32),
}

impl DecryptionErrorReason {
    fn to_proto(self) -> i32 {
        match self {
            Self::NoSession => proto::DecryptionErrorReason::NoSession.into(),
            Self::UnknownPrekey => proto::DecryptionErrorReason::UnknownPrekey.into(),
            Self::Undecryptable => proto::DecryptionErrorReason::Undecryptable.into(),
            Self::Other(value) => value,
        }
    }

    /// Version-tolerant: a value not known here is `Other`, not an error.
    fn from_proto(value: i32) -> Self {
        match proto::DecryptionErrorReason::try_from(value) {
            Ok(proto::DecryptionErrorReason::NoSession) => Self::NoSession,
            Ok(proto::DecryptionErrorReason::UnknownPrekey) => Self::UnknownPrekey,
            Ok(proto::DecryptionErrorReason::Undecryptable) => Self::Undecryptable,
            Ok(proto::DecryptionErrorReason::Unspecified) | Err(_) => Self::Other(value),
        }
    }
}

/// What a receipt acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The messages reached the recipient's device.
    Delivered,
    /// The recipient saw the messages.
    Read,
}

/// Where an attachment is and how to open it: the relay's blob id and the blob's
/// [`AttachmentEncryption`] (key, digest, size), plus what the recipient shows before downloading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentPointer {
    /// The relay's id of the encrypted blob (1 to [`MAX_BLOB_ID_BYTES`] bytes).
    pub blob_id: Vec<u8>,
    /// Key, digest and plaintext size, as [`attachment::encrypt`] returned them.
    pub encryption: AttachmentEncryption,
    /// MIME type (printable ASCII, 1 to [`MAX_MIME_BYTES`] bytes).
    pub mime: String,
    /// A small preview (1 to [`MAX_THUMBNAIL_BYTES`] bytes when present).
    pub thumbnail: Option<Vec<u8>>,
    /// A bare file name, no path (1 to [`MAX_FILE_NAME_BYTES`] bytes when present).
    pub file_name: Option<String>,
}

/// Opaque bytes that are secret: wiped on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes (secret).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretBytes {}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.0.len())
    }
}

impl Content {
    /// A new payload with a fresh random client message id.
    pub fn new(rng: &mut impl CryptoRngCore, timestamp_ms: u64, body: ContentBody) -> Self {
        let mut client_message_id = [0u8; CLIENT_MESSAGE_ID_LEN];
        rng.fill_bytes(&mut client_message_id);
        Self { client_message_id, timestamp_ms, body }
    }

    /// Whether the relay must not store this payload (typing): send it only to online devices.
    pub fn is_online_only(&self) -> bool {
        self.body.is_online_only()
    }

    /// Checks every bound the decoder checks.
    pub fn validate(&self) -> Result<()> {
        self.body.validate()
    }

    /// Encodes the payload after [`Content::validate`], failing with [`Error::TooLarge`] above
    /// [`MAX_CONTENT_BYTES`]. The bytes may hold secrets (attachment keys), so they are wiped on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.validate()?;
        let p = proto::Content {
            version: CONTENT_VERSION,
            client_message_id: self.client_message_id.to_vec(),
            timestamp_ms: self.timestamp_ms,
            body: Some(self.body.to_proto()),
        };
        let size = p.encoded_len();
        if size > MAX_CONTENT_BYTES {
            return Err(Error::TooLarge { what: "content", size, max: MAX_CONTENT_BYTES });
        }
        Ok(Zeroizing::new(p.encode_to_vec()))
    }

    /// Decodes with the size limit, canonical-encoding check, version check and every field bound.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: proto::Content = wire::decode(bytes, MAX_CONTENT_BYTES, "content")?;
        wire::check_version("content", p.version, CONTENT_VERSION)?;
        let client_message_id = message_id(&p.client_message_id)?;
        let body = ContentBody::from_proto(p.body.ok_or(Error::Malformed { what: "content body" })?)?;
        body.validate()?;
        Ok(Self { client_message_id, timestamp_ms: p.timestamp_ms, body })
    }
}

impl ContentBody {
    /// Whether the relay must not store this payload: typing notifications are "online only".
    /// Receipts are not: a read receipt must reach the sender's offline devices too.
    pub fn is_online_only(&self) -> bool {
        matches!(self, ContentBody::Typing { .. })
    }

    fn validate(&self) -> Result<()> {
        match self {
            ContentBody::Text(text) | ContentBody::Edit { text, .. } => bounded("text", text.len(), MAX_TEXT_BYTES),
            ContentBody::Delete { .. }
            | ContentBody::Typing { .. }
            | ContentBody::DisappearingTimer { .. }
            | ContentBody::DecryptionError { .. } => Ok(()),
            ContentBody::Reaction { emoji, .. } => bounded("reaction emoji", emoji.len(), MAX_EMOJI_BYTES),
            ContentBody::Receipt { targets, .. } => bounded("receipt targets", targets.len(), MAX_RECEIPT_TARGETS),
            ContentBody::Attachment(pointer) => pointer.validate(),
            ContentBody::GroupControl { group_id: _, change } => {
                bounded("group change", change.len(), MAX_CONTENT_BYTES)
            }
            ContentBody::DeviceLink(payload) => bounded("device link", payload.as_bytes().len(), MAX_CONTENT_BYTES),
            ContentBody::SenderKeyDistribution(payload) => {
                bounded("sender key distribution", payload.as_bytes().len(), MAX_CONTENT_BYTES)
            }
            ContentBody::SentSync { conversation, content } => {
                bounded("sent sync conversation", conversation.len(), MAX_SENT_SYNC_CONVERSATION_BYTES)?;
                bounded("sent sync content", content.as_bytes().len(), MAX_CONTENT_BYTES)
            }
        }
    }

    fn to_proto(&self) -> Body {
        match self {
            ContentBody::Text(text) => Body::Text(proto::Text { text: text.clone() }),
            ContentBody::Edit { target, text } => {
                Body::Edit(proto::Edit { target_id: target.to_vec(), text: text.clone() })
            }
            ContentBody::Delete { target } => Body::Delete(proto::Delete { target_id: target.to_vec() }),
            ContentBody::Reaction { target, emoji, remove } => {
                Body::Reaction(proto::Reaction { target_id: target.to_vec(), emoji: emoji.clone(), remove: *remove })
            }
            ContentBody::Receipt { kind, targets } => Body::Receipt(proto::Receipt {
                kind: match kind {
                    ReceiptKind::Delivered => proto::ReceiptKind::Delivered,
                    ReceiptKind::Read => proto::ReceiptKind::Read,
                }
                .into(),
                target_ids: targets.iter().map(|t| t.to_vec()).collect(),
            }),
            ContentBody::Typing { started } => Body::Typing(proto::Typing { started: *started }),
            ContentBody::Attachment(pointer) => Body::Attachment(pointer.to_proto()),
            ContentBody::GroupControl { group_id, change } => Body::GroupControl(proto::GroupControl {
                group_id: group_id.to_bytes().to_vec(),
                change: change.clone(),
            }),
            ContentBody::DisappearingTimer { seconds } => {
                Body::DisappearingTimer(proto::DisappearingTimer { seconds: *seconds })
            }
            ContentBody::DeviceLink(payload) => {
                Body::DeviceLink(proto::DeviceLink { payload: payload.as_bytes().to_vec() })
            }
            ContentBody::SenderKeyDistribution(payload) => {
                Body::SenderKeyDistribution(proto::SenderKeyDistribution { payload: payload.as_bytes().to_vec() })
            }
            ContentBody::SentSync { conversation, content } => Body::SentSync(proto::SentSync {
                conversation: conversation.clone(),
                content: content.as_bytes().to_vec(),
            }),
            ContentBody::DecryptionError { message_hash, reason } => Body::DecryptionError(proto::DecryptionError {
                message_hash: message_hash.to_vec(),
                reason: reason.to_proto(),
            }),
        }
    }

    fn from_proto(body: Body) -> Result<Self> {
        Ok(match body {
            Body::Text(t) => ContentBody::Text(t.text),
            Body::Edit(e) => ContentBody::Edit { target: message_id(&e.target_id)?, text: e.text },
            Body::Delete(d) => ContentBody::Delete { target: message_id(&d.target_id)? },
            Body::Reaction(r) => {
                ContentBody::Reaction { target: message_id(&r.target_id)?, emoji: r.emoji, remove: r.remove }
            }
            Body::Receipt(r) => {
                let kind = match proto::ReceiptKind::try_from(r.kind) {
                    Ok(proto::ReceiptKind::Delivered) => ReceiptKind::Delivered,
                    Ok(proto::ReceiptKind::Read) => ReceiptKind::Read,
                    Ok(proto::ReceiptKind::Unspecified) | Err(_) => {
                        return Err(Error::Malformed { what: "receipt kind" });
                    }
                };
                // Count first, so a huge list is refused before its ids are copied.
                bounded("receipt targets", r.target_ids.len(), MAX_RECEIPT_TARGETS)?;
                let targets = r.target_ids.iter().map(|id| message_id(id)).collect::<Result<_>>()?;
                ContentBody::Receipt { kind, targets }
            }
            Body::Typing(t) => ContentBody::Typing { started: t.started },
            Body::Attachment(p) => ContentBody::Attachment(AttachmentPointer::from_proto(p)?),
            Body::GroupControl(g) => ContentBody::GroupControl {
                group_id: crate::group::GroupId::from_slice(&g.group_id)?,
                change: g.change,
            },
            Body::DisappearingTimer(t) => ContentBody::DisappearingTimer { seconds: t.seconds },
            Body::DeviceLink(mut d) => ContentBody::DeviceLink(SecretBytes::new(core::mem::take(&mut d.payload))),
            Body::SenderKeyDistribution(mut s) => {
                ContentBody::SenderKeyDistribution(SecretBytes::new(core::mem::take(&mut s.payload)))
            }
            Body::SentSync(mut s) => ContentBody::SentSync {
                conversation: core::mem::take(&mut s.conversation),
                content: SecretBytes::new(core::mem::take(&mut s.content)),
            },
            Body::DecryptionError(d) => ContentBody::DecryptionError {
                message_hash: d
                    .message_hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Malformed { what: "decryption error message hash" })?,
                reason: DecryptionErrorReason::from_proto(d.reason),
            },
        })
    }

    /// Opens a [`ContentBody::SentSync`]: the conversation bytes and the content inside, which must
    /// decode and must not be another sent sync. `None` for every other body.
    pub fn sent_sync(&self) -> Result<Option<(&[u8], Content)>> {
        let ContentBody::SentSync { conversation, content } = self else { return Ok(None) };
        let inner = Content::from_bytes(content.as_bytes())?;
        if matches!(inner.body, ContentBody::SentSync { .. }) {
            return Err(Error::Malformed { what: "nested sent sync" });
        }
        Ok(Some((conversation.as_slice(), inner)))
    }
}

impl AttachmentPointer {
    fn validate(&self) -> Result<()> {
        bounded("attachment blob id", self.blob_id.len(), MAX_BLOB_ID_BYTES)?;
        bounded("attachment mime type", self.mime.len(), MAX_MIME_BYTES)?;
        if !self.mime.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(Error::Malformed { what: "attachment mime type" });
        }
        if attachment::encrypted_len(self.encryption.size).is_none() {
            return Err(Error::Malformed { what: "attachment size" });
        }
        if let Some(thumbnail) = &self.thumbnail {
            bounded("attachment thumbnail", thumbnail.len(), MAX_THUMBNAIL_BYTES)?;
        }
        if let Some(name) = &self.file_name {
            bounded("attachment file name", name.len(), MAX_FILE_NAME_BYTES)?;
            // A bare name: receivers must never be steered into another directory.
            if name == "." || name == ".." || name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
                return Err(Error::Malformed { what: "attachment file name" });
            }
        }
        Ok(())
    }

    fn to_proto(&self) -> proto::AttachmentPointer {
        proto::AttachmentPointer {
            blob_id: self.blob_id.clone(),
            key: self.encryption.key.as_bytes().to_vec(),
            digest: self.encryption.digest.to_vec(),
            size: self.encryption.size,
            mime: self.mime.clone(),
            thumbnail: self.thumbnail.clone(),
            file_name: self.file_name.clone(),
        }
    }

    fn from_proto(mut p: proto::AttachmentPointer) -> Result<Self> {
        let key = AttachmentKey::from_slice(&p.key)?;
        let digest: [u8; ATTACHMENT_DIGEST_LEN] =
            p.digest.as_slice().try_into().map_err(|_| Error::Malformed { what: "attachment digest" })?;
        Ok(Self {
            blob_id: core::mem::take(&mut p.blob_id),
            encryption: AttachmentEncryption { key, digest, size: p.size },
            mime: core::mem::take(&mut p.mime),
            thumbnail: p.thumbnail.take(),
            file_name: p.file_name.take(),
        })
    }
}

fn message_id(bytes: &[u8]) -> Result<MessageId> {
    bytes.try_into().map_err(|_| Error::Malformed { what: "message id" })
}

/// `len` within `1..=max`: empty is [`Error::Malformed`], above is [`Error::TooLarge`].
fn bounded(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len == 0 {
        Err(Error::Malformed { what })
    } else if len > max {
        Err(Error::TooLarge { what, size: len, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::test_util::assert_no_secret;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    fn pointer() -> AttachmentPointer {
        AttachmentPointer {
            blob_id: b"blob-0001".to_vec(),
            encryption: AttachmentEncryption {
                key: AttachmentKey::from_bytes(core::array::from_fn(|i| i as u8 ^ 0x5a)),
                digest: [0xd1; 32],
                size: 123_456,
            },
            mime: "image/jpeg".into(),
            thumbnail: Some(vec![0xff, 0xd8, 0xff]),
            file_name: Some("holiday.jpg".into()),
        }
    }

    fn every_body() -> Vec<ContentBody> {
        let t = [0x11u8; 16];
        vec![
            ContentBody::Text("hello 👋".into()),
            ContentBody::Edit { target: t, text: "hello, edited".into() },
            ContentBody::Delete { target: t },
            ContentBody::Reaction { target: t, emoji: "👍🏽".into(), remove: false },
            ContentBody::Reaction { target: t, emoji: "❤️".into(), remove: true },
            ContentBody::Receipt { kind: ReceiptKind::Delivered, targets: vec![t] },
            ContentBody::Receipt { kind: ReceiptKind::Read, targets: vec![t, [0x22; 16], [0x33; 16]] },
            ContentBody::Typing { started: true },
            ContentBody::Typing { started: false },
            ContentBody::Attachment(pointer()),
            ContentBody::Attachment(AttachmentPointer { thumbnail: None, file_name: None, ..pointer() }),
            ContentBody::GroupControl {
                group_id: crate::group::GroupId::from_slice(&[9; 16]).unwrap(),
                change: b"signed change".to_vec(),
            },
            ContentBody::DisappearingTimer { seconds: 0 },
            ContentBody::DisappearingTimer { seconds: 86_400 },
            ContentBody::DeviceLink(SecretBytes::new(b"link payload".to_vec())),
            ContentBody::SenderKeyDistribution(SecretBytes::new(b"sender key".to_vec())),
            ContentBody::SentSync {
                conversation: vec![1; 33],
                content: SecretBytes::new(
                    Content::new(&mut rng(), 5, ContentBody::Text("hi".into())).to_bytes().unwrap().to_vec(),
                ),
            },
        ]
    }

    fn encode_proto(p: &proto::Content) -> Vec<u8> {
        p.encode_to_vec()
    }

    fn text_proto(text: &str) -> proto::Content {
        proto::Content {
            version: CONTENT_VERSION,
            client_message_id: vec![1; 16],
            timestamp_ms: 5,
            body: Some(Body::Text(proto::Text { text: text.into() })),
        }
    }

    #[test]
    fn every_variant_round_trips() {
        let mut rng = rng();
        for body in every_body() {
            let content = Content::new(&mut rng, 1_700_000_000_000, body);
            let bytes = content.to_bytes().unwrap();
            let decoded = Content::from_bytes(&bytes).unwrap();
            assert_eq!(decoded, content);
            assert_eq!(*decoded.to_bytes().unwrap(), *bytes);
        }
    }

    #[test]
    fn a_sent_sync_opens_to_its_content_and_never_nests() {
        let mut rng = rng();
        let inner = Content::new(&mut rng, 5, ContentBody::Text("hi".into()));
        let body = ContentBody::SentSync {
            conversation: vec![1; 33],
            content: SecretBytes::new(inner.to_bytes().unwrap().to_vec()),
        };
        let (conversation, opened) = body.sent_sync().unwrap().unwrap();
        assert_eq!((conversation, opened), (&[1u8; 33][..], inner));
        let outer = Content::new(&mut rng, 6, body);
        let nested = ContentBody::SentSync {
            conversation: vec![1; 33],
            content: SecretBytes::new(outer.to_bytes().unwrap().to_vec()),
        };
        assert_eq!(nested.sent_sync().map(|_| ()), Err(Error::Malformed { what: "nested sent sync" }));
        let garbage = ContentBody::SentSync { conversation: vec![1], content: SecretBytes::new(vec![0xff; 3]) };
        assert!(garbage.sent_sync().is_err());
        assert_eq!(ContentBody::Typing { started: true }.sent_sync().unwrap(), None);
        let empty = ContentBody::SentSync { conversation: Vec::new(), content: SecretBytes::new(vec![1]) };
        assert!(Content::new(&mut rng, 7, empty).to_bytes().is_err());
    }

    #[test]
    fn new_draws_random_ids() {
        let mut rng = rng();
        let a = Content::new(&mut rng, 1, ContentBody::Typing { started: true });
        let b = Content::new(&mut rng, 1, ContentBody::Typing { started: true });
        assert_ne!(a.client_message_id, b.client_message_id);
    }

    #[test]
    fn only_typing_is_online_only() {
        let mut rng = rng();
        for body in every_body() {
            let typing = matches!(body, ContentBody::Typing { .. });
            assert_eq!(Content::new(&mut rng, 0, body).is_online_only(), typing);
        }
    }

    #[test]
    fn rejects_unknown_version_and_malformed() {
        let mut p = text_proto("hi");
        assert!(Content::from_bytes(&encode_proto(&p)).is_ok());
        p.version = 2;
        assert_eq!(
            Content::from_bytes(&encode_proto(&p)),
            Err(Error::UnsupportedVersion { what: "content", version: 2 })
        );
        p.version = 0;
        assert!(matches!(Content::from_bytes(&encode_proto(&p)), Err(Error::UnsupportedVersion { .. })));

        let mut p = text_proto("hi");
        p.client_message_id = vec![1; 15];
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "message id" }));
        let mut p = text_proto("hi");
        p.body = None;
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "content body" }));
        assert_eq!(Content::from_bytes(&encode_proto(&text_proto(""))), Err(Error::Malformed { what: "text" }));

        // Garbage, truncation, trailing unknown fields, invalid UTF-8.
        assert!(Content::from_bytes(&[0xff; 10]).is_err());
        let good = encode_proto(&text_proto("hello"));
        for cut in 0..good.len() {
            assert!(Content::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.extend_from_slice(&[0xf8, 0x01, 0x01]);
        assert!(Content::from_bytes(&extra).is_err());
        let mut bad_utf8 = good.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert_eq!(Content::from_bytes(&bad_utf8), Err(Error::Malformed { what: "content" }));

        let mut p = text_proto("x");
        p.body = Some(Body::Receipt(proto::Receipt { kind: 0, target_ids: vec![vec![1; 16]] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "receipt kind" }));
        p.body = Some(Body::Receipt(proto::Receipt { kind: 7, target_ids: vec![vec![1; 16]] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "receipt kind" }));
        p.body = Some(Body::Receipt(proto::Receipt { kind: 1, target_ids: vec![] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "receipt targets" }));
        p.body = Some(Body::Receipt(proto::Receipt { kind: 1, target_ids: vec![vec![1; 17]] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "message id" }));

        let mut a = pointer().to_proto();
        a.key.pop();
        p.body = Some(Body::Attachment(a));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "attachment key" }));
        let mut a = pointer().to_proto();
        a.digest.push(0);
        p.body = Some(Body::Attachment(a));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "attachment digest" }));
        let mut a = pointer().to_proto();
        a.thumbnail = Some(vec![]);
        p.body = Some(Body::Attachment(a));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "attachment thumbnail" }));
        for name in ["../../etc/passwd", "a\\b", "..", "x\u{0}y", ""] {
            let mut a = pointer().to_proto();
            a.file_name = Some(name.into());
            p.body = Some(Body::Attachment(a));
            assert_eq!(
                Content::from_bytes(&encode_proto(&p)),
                Err(Error::Malformed { what: "attachment file name" }),
                "{name:?}"
            );
        }
        let mut a = pointer().to_proto();
        a.mime = "text/plain\n".into();
        p.body = Some(Body::Attachment(a));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "attachment mime type" }));
        let mut a = pointer().to_proto();
        a.size = u64::MAX;
        p.body = Some(Body::Attachment(a));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "attachment size" }));
        p.body = Some(Body::DeviceLink(proto::DeviceLink { payload: vec![] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "device link" }));
        p.body = Some(Body::GroupControl(proto::GroupControl { group_id: vec![], change: vec![1] }));
        assert_eq!(Content::from_bytes(&encode_proto(&p)), Err(Error::Malformed { what: "group id" }));
    }

    #[test]
    fn rejects_oversize() {
        let big = "a".repeat(MAX_CONTENT_BYTES);
        let bytes = encode_proto(&text_proto(&big));
        assert!(matches!(Content::from_bytes(&bytes), Err(Error::TooLarge { what: "content", .. })));

        let too_long = "a".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            Content::from_bytes(&encode_proto(&text_proto(&too_long))),
            Err(Error::TooLarge { what: "text", size: MAX_TEXT_BYTES + 1, max: MAX_TEXT_BYTES })
        );
        assert!(Content::from_bytes(&encode_proto(&text_proto(&too_long[1..]))).is_ok());

        let mut p = text_proto("x");
        p.body = Some(Body::Reaction(proto::Reaction {
            target_id: vec![1; 16],
            emoji: "😀".repeat(MAX_EMOJI_BYTES / 4 + 1),
            remove: false,
        }));
        assert!(matches!(Content::from_bytes(&encode_proto(&p)), Err(Error::TooLarge { what: "reaction emoji", .. })));
        p.body =
            Some(Body::Receipt(proto::Receipt { kind: 2, target_ids: vec![vec![1; 16]; MAX_RECEIPT_TARGETS + 1] }));
        assert!(matches!(Content::from_bytes(&encode_proto(&p)), Err(Error::TooLarge { what: "receipt targets", .. })));
        p.body = Some(Body::Receipt(proto::Receipt { kind: 2, target_ids: vec![vec![1; 16]; MAX_RECEIPT_TARGETS] }));
        assert!(Content::from_bytes(&encode_proto(&p)).is_ok());
        let mut a = pointer().to_proto();
        a.thumbnail = Some(vec![0; MAX_THUMBNAIL_BYTES + 1]);
        p.body = Some(Body::Attachment(a));
        assert!(matches!(
            Content::from_bytes(&encode_proto(&p)),
            Err(Error::TooLarge { what: "attachment thumbnail", .. })
        ));
        let mut a = pointer().to_proto();
        a.blob_id = vec![1; MAX_BLOB_ID_BYTES + 1];
        p.body = Some(Body::Attachment(a));
        assert!(matches!(
            Content::from_bytes(&encode_proto(&p)),
            Err(Error::TooLarge { what: "attachment blob id", .. })
        ));
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would() {
        let mut rng = rng();
        let content = Content::new(&mut rng, 0, ContentBody::Text(String::new()));
        assert_eq!(content.to_bytes(), Err(Error::Malformed { what: "text" }));
        let content = Content::new(&mut rng, 0, ContentBody::Text("a".repeat(MAX_TEXT_BYTES + 1)));
        assert!(matches!(content.to_bytes(), Err(Error::TooLarge { what: "text", .. })));
        let body = ContentBody::GroupControl {
            group_id: crate::group::GroupId::from_slice(&[1; 16]).unwrap(),
            change: vec![0; MAX_CONTENT_BYTES],
        };
        assert!(matches!(Content::new(&mut rng, 0, body).to_bytes(), Err(Error::TooLarge { what: "content", .. })));
        let body = ContentBody::Receipt { kind: ReceiptKind::Read, targets: vec![] };
        assert!(Content::new(&mut rng, 0, body).to_bytes().is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut rng = rng();
        let key_secret = pointer().encryption.key.as_bytes().to_vec();
        let link_secret = b"\x01\x02\x03\x04device-link-secret-bytes".to_vec();
        let skd_secret = b"\x05\x06\x07\x08sender-key-secret-bytes".to_vec();
        let contents = [
            Content::new(&mut rng, 0, ContentBody::Attachment(pointer())),
            Content::new(&mut rng, 0, ContentBody::DeviceLink(SecretBytes::new(link_secret.clone()))),
            Content::new(&mut rng, 0, ContentBody::SenderKeyDistribution(SecretBytes::new(skd_secret.clone()))),
        ];
        let mut text = format!("{contents:?}");
        for c in &contents {
            let p = proto::Content::decode(c.to_bytes().unwrap().as_slice()).unwrap();
            text.push_str(&format!("{p:?}"));
        }
        assert!(text.contains("redacted"));
        for secret in [&key_secret, &link_secret, &skd_secret] {
            assert_no_secret(&text, secret);
            assert!(!text.contains("device-link-secret") && !text.contains("sender-key-secret"));
        }
    }

    #[test]
    fn a_retry_receipt_round_trips_and_a_reason_from_a_newer_version_is_kept_not_refused() {
        let mut rng = rand_core::OsRng;
        for reason in [
            DecryptionErrorReason::NoSession,
            DecryptionErrorReason::UnknownPrekey,
            DecryptionErrorReason::Undecryptable,
            DecryptionErrorReason::Other(0),
            DecryptionErrorReason::Other(77),
        ] {
            let c = Content::new(&mut rng, 5, ContentBody::DecryptionError { message_hash: [3; 32], reason });
            let bytes = c.to_bytes().unwrap();
            assert_eq!(Content::from_bytes(&bytes).unwrap(), c);
        }
        let short = proto::Content {
            version: CONTENT_VERSION,
            client_message_id: vec![1; 16],
            timestamp_ms: 1,
            body: Some(Body::DecryptionError(proto::DecryptionError { message_hash: vec![1; 31], reason: 1 })),
        };
        assert_eq!(
            Content::from_bytes(&short.encode_to_vec()).unwrap_err(),
            Error::Malformed { what: "decryption error message hash" }
        );
    }
}
