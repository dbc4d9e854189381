//! Retry receipts (docs/PROTOCOL.md §16.13; libsignal's `DecryptionErrorMessage`): a device that
//! cannot decrypt a 1:1 message tells the sending device, sealed without a session, which message
//! (the SHA-256 of its inner message) and why; the sender finds that copy in its sent log, archives
//! the session it was encrypted in (if it is still the current one) and sends the payload again in a
//! new session. Both sides are bounded, so a peer or relay that keeps producing failures cannot
//! make two clients loop.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Ctx, Event, outbox};
use crate::content::{Content, ContentBody, DecryptionErrorReason};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::limits::{MAX_RESENDS, MAX_RETRY_RECEIPT_DEVICES, MAX_RETRY_RECEIPTS_PER_DEVICE, RETRY_RECEIPT_WINDOW_MS};
use crate::sealed_sender::{InnerKind, Unsealed};
use crate::store::{ConversationId, MessageStatus, StoreTx};

/// Retry receipts sent per sender device in the current window (in memory: a restart only starts
/// the windows again).
#[derive(Debug, Default)]
pub(super) struct ReceiptBudget {
    /// Device → (window start, receipts sent in it).
    sent: HashMap<SigningPublicKey, (u64, u32)>,
}

impl ReceiptBudget {
    /// Takes one receipt for `device` at `now_ms`; `false` when its window's budget is spent.
    fn take(&mut self, device: SigningPublicKey, now_ms: u64) -> bool {
        if !self.sent.contains_key(&device) && self.sent.len() >= MAX_RETRY_RECEIPT_DEVICES {
            // Forget the device counted longest ago.
            if let Some(oldest) = self.sent.iter().min_by_key(|(_, (start, _))| *start).map(|(d, _)| *d) {
                self.sent.remove(&oldest);
            }
        }
        let (start, count) = self.sent.entry(device).or_insert((now_ms, 0));
        if now_ms.saturating_sub(*start) >= RETRY_RECEIPT_WINDOW_MS {
            (*start, *count) = (now_ms, 0);
        }
        if *count >= MAX_RETRY_RECEIPTS_PER_DEVICE {
            return false;
        }
        *count += 1;
        true
    }
}

/// The reason a retry receipt gives for a 1:1 decryption error; `None` for errors a new session
/// and a new copy cannot fix (a malformed or replayed message, a refused identity).
fn reason_of(error: &Error) -> Option<DecryptionErrorReason> {
    match error {
        Error::NoSession => Some(DecryptionErrorReason::NoSession),
        Error::UnknownPrekey { .. } => Some(DecryptionErrorReason::UnknownPrekey),
        Error::DecryptionFailed => Some(DecryptionErrorReason::Undecryptable),
        _ => None,
    }
}

/// Drops an envelope that failed to decrypt (marks it processed, in the batch's `tx`) and, for a
/// 1:1 message whose failure a new session can fix, queues a retry receipt to its sending device in
/// the same transaction, within that device's budget.
pub(super) fn drop_undecryptable(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    budget: &mut ReceiptBudget,
    mark: u64,
    unsealed: &Unsealed,
    error: &Error,
    now_ms: u64,
) -> Result<()> {
    if mark != 0 {
        tx.mark_processed(mark, now_ms)?;
    }
    let device = unsealed.sender_device.device_key();
    let reason = reason_of(error).filter(|_| unsealed.kind == InnerKind::Session);
    let Some(reason) = reason.filter(|_| budget.take(device, now_ms)) else { return Ok(()) };
    let body = ContentBody::DecryptionError { message_hash: Sha256::digest(&unsealed.inner).into(), reason };
    let receipt = Content::new(c.rng, now_ms, body);
    let sender = unsealed.sender_user_key;
    outbox::push_to_device(
        tx,
        &ConversationId::Direct(sender),
        &receipt.client_message_id,
        (sender, device),
        receipt.to_bytes()?,
        true,
        0,
    )?;
    Ok(())
}

/// A retry receipt from a device of `unsealed.sender_user_key` (the envelope's device list was
/// checked), in the batch's `tx`. Only a copy this device sent to that very device, still in the
/// sent log, is sent again: a receipt from anyone else, or naming anything else, changes nothing.
/// The session is archived only if the copy was encrypted in the current one.
pub(super) fn on_retry_receipt(
    tx: &StoreTx<'_>,
    mark: u64,
    unsealed: &Unsealed,
    now_ms: u64,
    events: &mut Vec<Event>,
) -> Result<()> {
    if mark != 0 {
        tx.mark_processed(mark, now_ms)?;
    }
    let hash = match Content::from_bytes(&unsealed.inner).map(|c| c.body) {
        Ok(ContentBody::DecryptionError { message_hash, .. }) => message_hash,
        // Only a retry receipt travels without a session.
        _ => return Ok(()),
    };
    let (sender, device) = (unsealed.sender_user_key, unsealed.sender_device.device_key());
    let copy = tx.sent_log_get(&device, &hash)?.filter(|c| c.recipient == sender);
    let Some(copy) = copy else { return Ok(()) };
    // Each copy answers one receipt: a receipt replayed finds nothing.
    tx.sent_log_remove(&device, &hash)?;
    if copy.resends >= MAX_RESENDS {
        // Sent again as often as it may be: the message is lost for that device.
        // (Only from Sending or Sent: another device of the peer may have it.)
        let status = tx.message(&copy.conversation, &copy.message_id)?.map(|m| m.status);
        if matches!(status, Some(MessageStatus::Sending | MessageStatus::Sent))
            && tx.set_message_status(&copy.conversation, &copy.message_id, MessageStatus::Failed)?
        {
            let (conversation, id) = (copy.conversation, copy.message_id);
            events.push(Event::MessageStatus { conversation, id, status: MessageStatus::Failed });
        }
        return Ok(());
    }
    if let Some(mut peer) = tx.peer(&sender)?
        && copy.session.is_some()
        && peer.session_id(&device) == copy.session
    {
        peer.archive_session(&device);
        tx.put_peer(&peer)?;
    }
    outbox::push_to_device(
        tx,
        &copy.conversation,
        &copy.message_id,
        (sender, device),
        copy.content.clone(),
        false,
        copy.resends.saturating_add(1),
    )?;
    Ok(())
}
