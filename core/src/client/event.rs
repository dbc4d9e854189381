//! What the client state machine reports to the application.

use crate::content::{MessageId, ReceiptKind};
use crate::crypto::SigningPublicKey;
use crate::error::ErrorKind;
use crate::group::{GroupEvent, GroupId};
use crate::store::{ConversationId, MessageStatus, StoredMessage};

/// Something the user should see. Produced by [`Client::handle_incoming`](super::Client::handle_incoming)
/// and by the actions whose effect arrives later (a send acknowledged or failed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new message (text or attachment) in a conversation.
    Message(StoredMessage),
    /// A message from a user who is not an accepted contact: it waits in history until the user
    /// accepts ([`Client::accept_contact`](super::Client::accept_contact)) or blocks them.
    MessageRequest(StoredMessage),
    /// A message's text was edited by its sender.
    Edited {
        /// Where.
        conversation: ConversationId,
        /// The message edited.
        id: MessageId,
    },
    /// A message was deleted for everyone by its sender.
    Deleted {
        /// Where.
        conversation: ConversationId,
        /// The message deleted.
        id: MessageId,
    },
    /// A reaction was added or withdrawn.
    Reaction {
        /// Where.
        conversation: ConversationId,
        /// The message reacted to.
        target: MessageId,
        /// Who reacted.
        from: SigningPublicKey,
        /// The emoji.
        emoji: String,
        /// Withdrawn rather than added.
        removed: bool,
    },
    /// A delivery or read receipt from a peer.
    Receipt {
        /// Where.
        conversation: ConversationId,
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages acknowledged.
        targets: Vec<MessageId>,
        /// Who acknowledged.
        from: SigningPublicKey,
    },
    /// A peer started or stopped typing (online only: never stored).
    Typing {
        /// Where.
        conversation: ConversationId,
        /// Who.
        from: SigningPublicKey,
        /// Started (true) or stopped.
        started: bool,
    },
    /// A peer's device went online or offline.
    Presence {
        /// The user, when the device belongs to a known peer.
        user: Option<SigningPublicKey>,
        /// The device.
        device: SigningPublicKey,
        /// Online or not.
        online: bool,
    },
    /// This device joined a group (it was added, or created it).
    GroupJoined {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
    },
    /// Someone who is not an accepted contact added this user to a group (with
    /// [`ClientConfig::group_requests`](super::ClientConfig::group_requests)): its state is kept and
    /// its messages arrive as [`Event::MessageRequest`] until the user accepts
    /// ([`Client::accept_group`](super::Client::accept_group)) or declines
    /// ([`Client::decline_group`](super::Client::decline_group)) it.
    GroupRequest {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// Who added this user.
        from: SigningPublicKey,
    },
    /// A group's roster or name changed.
    GroupChanged {
        /// The group.
        group: GroupId,
        /// What changed.
        events: Vec<GroupEvent>,
    },
    /// A peer's user key changed: sending to them is blocked until the user accepts the change
    /// or verifies the new safety number.
    IdentityChanged {
        /// The peer (their pinned key).
        user: SigningPublicKey,
    },
    /// A conversation's disappearing-message timer changed.
    DisappearingTimer {
        /// Where.
        conversation: ConversationId,
        /// The new lifetime in seconds; 0 = off.
        seconds: u32,
        /// Who changed it.
        from: SigningPublicKey,
    },
    /// An outgoing message changed state (the relay took it, or sending failed).
    MessageStatus {
        /// Where.
        conversation: ConversationId,
        /// The message.
        id: MessageId,
        /// Its new status.
        status: MessageStatus,
    },
    /// A message arrived that could not be read and was dropped (acked, never delivered again): it
    /// did not decrypt or authenticate, or it decrypted but could not be applied (a poison message,
    /// docs/PROTOCOL.md §16.3). `from` is the sender when the envelope named a known one.
    Undecryptable {
        /// The claimed sender, if the envelope could be opened.
        from: Option<SigningPublicKey>,
        /// Why: the kind of the error that dropped it (`Decryption`, `Identity`, `BadInput`, …).
        reason: ErrorKind,
    },
    /// The answer to [`Client::request_upload_token`](super::Client::request_upload_token).
    UploadToken {
        /// The request id it returned.
        request: u64,
        /// The bearer token for `PUT /v1/blobs`, or `None` if the relay refused.
        token: Option<String>,
    },
    /// This device, created with [`Client::create_for_link`](super::Client::create_for_link), was
    /// approved by another device of `user`: it now holds the user key, the device list and the
    /// contacts, and works as any device of the user.
    DeviceLinked {
        /// The user this device now belongs to.
        user: SigningPublicKey,
    },
    /// This device was removed from `user`'s devices by another of them (it was shown the newer
    /// signed device list that no longer names it): its store was wiped and the client sends
    /// nothing more. Close the store and delete its files.
    DeviceRemoved {
        /// The user it belonged to.
        user: SigningPublicKey,
    },
    /// A conversation was marked read on another device of this user.
    ConversationRead {
        /// Which.
        conversation: ConversationId,
    },
    /// Messages older than their disappearing time were removed from history.
    Expired {
        /// How many.
        count: usize,
    },
}
