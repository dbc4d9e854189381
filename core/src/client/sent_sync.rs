//! Sent syncs (docs/PROTOCOL.md §12, §13): what one device of a user sends also goes to the
//! user's other devices, wrapped with the conversation it went to, so that every device shows the
//! same history. Sending, the outbox wraps a payload that changes history and encrypts it for the
//! other devices beside the recipients' copies; receiving, the wrapped payload goes through the same handlers as a peer's
//! ([`dispatch`]), as this user's own.

use zeroize::Zeroizing;

use super::incoming::{Direction, Incoming, Origin, dispatch};
use super::{Ctx, Event};
use crate::content::{Content, ContentBody, ReceiptKind, SecretBytes};
use crate::error::{Error, Result};
use crate::store::{ConversationId, StoreTx};

/// Whether a payload (encoded `Content`) goes to this user's other devices too: what changes the
/// history every device shows (messages, edits, deletes, reactions, timers, read receipts), not
/// delivery receipts, typing or group plumbing.
pub(super) fn is_synced(content: &[u8]) -> bool {
    let Ok(content) = Content::from_bytes(content) else { return false };
    matches!(
        content.body,
        ContentBody::Text(_)
            | ContentBody::Attachment(_)
            | ContentBody::Edit { .. }
            | ContentBody::Delete { .. }
            | ContentBody::Reaction { .. }
            | ContentBody::DisappearingTimer { .. }
            | ContentBody::Receipt { kind: ReceiptKind::Read, .. }
    )
}

/// The sent sync of `content` (an encoded payload sent to `conversation`), encoded, for this
/// user's other devices, when the payload [is synced](is_synced). `None` also for a payload too
/// large to wrap: then no sync rather than no send.
pub(super) fn wrap(
    rng: &mut impl rand_core::CryptoRngCore,
    conversation: &ConversationId,
    content: &[u8],
    now_ms: u64,
) -> Option<Zeroizing<Vec<u8>>> {
    if !is_synced(content) {
        return None;
    }
    let body =
        ContentBody::SentSync { conversation: conversation.to_bytes(), content: SecretBytes::new(content.to_vec()) };
    Content::new(rng, now_ms, body).to_bytes().ok()
}

/// A payload from another device of this user: only a sent sync counts, and never one through a
/// group's chain. Its payload is applied in its conversation as sent by this user (a group this
/// device is not in, joined before it was linked, has nowhere to show it).
pub(super) fn receive(
    c: Ctx<'_>,
    tx: &StoreTx<'_>,
    origin: Origin,
    content: Content,
    now_ms: u64,
    events: &mut Vec<Event>,
) -> Result<bool> {
    let (None, Some((conversation, inner))) = (origin.via_group, content.body.sent_sync()?) else {
        return Ok(false);
    };
    let conversation = ConversationId::from_bytes(conversation)?;
    match conversation {
        ConversationId::Direct(user) if user == c.me => return Err(Error::Malformed { what: "sent sync to oneself" }),
        ConversationId::Group(id) if tx.group(&id)?.is_none() => return Ok(false),
        _ => {}
    }
    let direction = Direction::SentSync;
    // This user's own messages get no delivery receipts.
    let delivered = &mut Vec::new();
    let (from, device) = (origin.user, origin.device);
    let mut cx = Incoming { c, tx, from, device, conversation, direction, now_ms, events, delivered };
    dispatch(&mut cx, inner)
}
