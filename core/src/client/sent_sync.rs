//! Sent syncs (docs/PROTOCOL.md §12, §13): what one device of a user sends also goes to the
//! user's other devices, wrapped with the conversation it went to, so that every device shows the
//! same history. Sending, the outbox wraps a payload that changes history beside the recipients'
//! requests; receiving, the wrapped payload goes through the same handlers as a peer's
//! ([`dispatch`]), as this user's own.

use super::incoming::{Direction, Incoming, Origin, dispatch};
use super::outbox::{Addressed, seal};
use super::{Ctx, Event};
use crate::content::{Content, ContentBody, ReceiptKind, SecretBytes};
use crate::error::{Error, Result};
use crate::sealed_sender::InnerKind;
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

/// The sent sync of `content` (an encoded payload sent to `conversation`) for this user's other
/// devices, one request each, when the user has other devices and the payload
/// [is synced](is_synced); the user's own sessions are updated in `tx`. A payload too large to
/// wrap, or an own device without a session yet, means no sync rather than no send.
pub(super) fn wrap(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    conversation: &ConversationId,
    content: &[u8],
    now_ms: u64,
) -> Result<Vec<Addressed>> {
    let mut synced = Vec::new();
    if let Some(mut own) = tx.peer(&c.me)?.filter(|p| p.device_list().devices().len() > 1)
        && is_synced(content)
    {
        let body = ContentBody::SentSync {
            conversation: conversation.to_bytes(),
            content: SecretBytes::new(content.to_vec()),
        };
        let this_device = c.identity.device_key();
        if let Ok(bytes) = Content::new(c.rng, now_ms, body).to_bytes()
            && let Ok(messages) = own.encrypt(c.rng, &bytes, Some(&this_device))
        {
            for m in messages {
                let keys = *own.device_list().device(&m.device)?;
                let envelope = seal(c, &keys, InnerKind::Session, &m.message)?;
                synced.push(Addressed { device: m.device, token: None, envelope });
            }
            tx.put_peer(&own)?;
        }
    }
    Ok(synced)
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
