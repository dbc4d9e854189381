//! Retry receipts (docs/PROTOCOL.md §16.13; libsignal's `DecryptionErrorMessage`): a device that
//! cannot decrypt a message (or whose group message waited long for its chain) tells the sending
//! device, sealed without a session, which message (the SHA-256 of its inner message) and why; the
//! sender finds it in its sent log, archives the session a 1:1 copy was encrypted in (if it is still
//! the current one) or sends a group member its chain again, and sends the payload again to that
//! device. Both sides are bounded, so a peer or relay that keeps producing failures cannot make two
//! clients loop.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{Ctx, Event, outbox};
use crate::content::{Content, ContentBody, DecryptionErrorReason, MessageId, SecretBytes};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::limits::{MAX_RESENDS, MAX_RETRY_RECEIPT_DEVICES, MAX_RETRY_RECEIPTS_PER_DEVICE, RETRY_RECEIPT_WINDOW_MS};
use crate::sealed_sender::{InnerKind, Unsealed};
use crate::store::{ConversationId, MessageStatus, SentCopy, StoreTx};
use crate::wire::relay::Envelope;

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

/// The reason a retry receipt gives for a decryption error; `None` for errors a new session (or
/// the sender chain sent again) and a new copy cannot fix (a malformed or replayed message, a
/// refused identity, a sender not in the group).
fn reason_of(error: &Error, kind: InnerKind) -> Option<DecryptionErrorReason> {
    match (error, kind) {
        (Error::NoSession, InnerKind::Session) => Some(DecryptionErrorReason::NoSession),
        (Error::UnknownPrekey { .. }, InnerKind::Session) => Some(DecryptionErrorReason::UnknownPrekey),
        (Error::DecryptionFailed, InnerKind::Session | InnerKind::Group) => Some(DecryptionErrorReason::Undecryptable),
        // A group message whose chain never came (§16.5): the chain is what is missing.
        (Error::UnknownSenderChain, InnerKind::Group) => Some(DecryptionErrorReason::NoSession),
        _ => None,
    }
}

/// Where the sent log keeps group messages (§16.13): one row per message under this in place of a
/// device, since every member device got the same bytes.
pub(super) fn group_log_slot() -> [u8; 32] {
    Sha256::digest(b"hush/sent-log/group-message").into()
}

/// Drops an envelope that failed to decrypt (marks it processed, in the batch's `tx`) and, for a
/// message whose failure a new session (or the chain sent again) can fix, queues a retry receipt to
/// its sending device in the same transaction, within that device's budget.
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
    let reason = reason_of(error, unsealed.kind);
    let Some(reason) = reason.filter(|_| budget.take(device, now_ms)) else { return Ok(()) };
    queue_retry_receipt(tx, c.rng, unsealed, reason, now_ms)
}

/// A group message parked for its sender chain (§16.5) that has waited
/// [`GROUP_CHAIN_WAIT_MS`](crate::limits::GROUP_CHAIN_WAIT_MS) since the relay took it: asks the
/// sending device for the chain with a retry receipt (within its budget), in the batch's `tx`; the
/// message stays parked.
pub(super) fn ask_for_chain(
    c: &mut Ctx<'_>,
    tx: &StoreTx<'_>,
    budget: &mut ReceiptBudget,
    envelope: &Envelope,
    unsealed: &Unsealed,
    now_ms: u64,
) -> Result<()> {
    let waited = envelope.received_at.saturating_add(crate::limits::GROUP_CHAIN_WAIT_MS) <= now_ms;
    let device = unsealed.sender_device.device_key();
    if !waited || envelope.id == 0 || !budget.take(device, now_ms) {
        return Ok(());
    }
    queue_retry_receipt(tx, c.rng, unsealed, DecryptionErrorReason::NoSession, now_ms)
}

/// A retry receipt from a device of `unsealed.sender_user_key` (the envelope's device list was
/// checked), in the batch's `tx`. Only a copy this device sent to that very device, still in the
/// sent log, is sent again: a receipt from anyone else, or naming anything else, changes nothing.
/// The session is archived only if the copy was encrypted in the current one.
pub(super) fn on_retry_receipt(
    c: &mut Ctx<'_>,
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
    let mut failed = None;
    match tx.sent_log_get(device.as_bytes(), &hash)? {
        // A 1:1 copy to that very device (an empty one marks a group message answered).
        Some(copy) if copy.recipient == sender && !copy.content.is_empty() => {
            // Each copy answers one receipt: a receipt replayed finds nothing.
            tx.sent_log_remove(device.as_bytes(), &hash)?;
            if copy.resends >= MAX_RESENDS {
                failed = failed_for_good(tx, &copy)?;
            } else {
                if let Some(mut peer) = tx.peer(&sender)?
                    && copy.session.is_some()
                    && peer.session_id(&device) == copy.session
                {
                    peer.archive_session(&device);
                    tx.put_peer(&peer)?;
                }
                let target = outbox::Target {
                    user: sender,
                    device,
                    group: false,
                    unsessioned: false,
                    resends: copy.resends.saturating_add(1),
                };
                outbox::push_to_device(tx, &copy.conversation, &copy.message_id, target, copy.content.clone())?;
            }
        }
        Some(_) => {}
        None => {
            if let Some(copy) = tx.sent_log_get(&group_log_slot(), &hash)? {
                failed = resend_group_message(tx, c.rng, copy, (sender, device), &hash, now_ms)?;
            }
        }
    }
    if let Some((conversation, id)) = failed {
        events.push(Event::MessageStatus { conversation, id, status: MessageStatus::Failed });
    }
    Ok(())
}

/// Queues a retry receipt for the message `unsealed` carried, to its sending device.
fn queue_retry_receipt(
    tx: &StoreTx<'_>,
    rng: &mut impl CryptoRngCore,
    unsealed: &Unsealed,
    reason: DecryptionErrorReason,
    now_ms: u64,
) -> Result<()> {
    let body = ContentBody::DecryptionError { message_hash: Sha256::digest(&unsealed.inner).into(), reason };
    let receipt = Content::new(rng, now_ms, body);
    let (sender, device) = (unsealed.sender_user_key, unsealed.sender_device.device_key());
    let target = outbox::Target { user: sender, device, group: false, unsessioned: true, resends: 0 };
    outbox::push_to_device(
        tx,
        &ConversationId::Direct(sender),
        &receipt.client_message_id,
        target,
        receipt.to_bytes()?,
    )?;
    Ok(())
}

/// A member device could not decrypt this device's group message `copy` (or never got its
/// chain): sends it this device's current chain over 1:1 and the message again through the
/// group, to that device alone, once per device and message. Only a current member is heard.
fn resend_group_message(
    tx: &StoreTx<'_>,
    rng: &mut impl CryptoRngCore,
    copy: SentCopy,
    (sender, device): (SigningPublicKey, SigningPublicKey),
    hash: &[u8; 32],
    now_ms: u64,
) -> Result<Option<(ConversationId, MessageId)>> {
    let ConversationId::Group(id) = copy.conversation else { return Ok(None) };
    let Some(group) = tx.group(&id)?.filter(|g| g.roster().is_member(&sender)) else { return Ok(None) };
    // Answered for this device from now on: an empty row under (device, hash).
    let answered = SentCopy { content: Zeroizing::new(Vec::new()), session: None, ..copy.clone() };
    tx.sent_log_put(device.as_bytes(), hash, &answered)?;
    if copy.resends >= MAX_RESENDS {
        return failed_for_good(tx, &copy);
    }
    if let Some(distribution) = group.sender_key_distribution() {
        let body = ContentBody::SenderKeyDistribution(SecretBytes::new(distribution));
        let content = Content::new(rng, now_ms, body);
        let target = outbox::Target { user: sender, device, group: false, unsessioned: false, resends: 0 };
        outbox::push_to_device(tx, &copy.conversation, &content.client_message_id, target, content.to_bytes()?)?;
    }
    let target = outbox::Target {
        user: sender,
        device,
        group: true,
        unsessioned: false,
        resends: copy.resends.saturating_add(1),
    };
    outbox::push_to_device(tx, &copy.conversation, &copy.message_id, target, copy.content.clone())?;
    Ok(None)
}

/// A payload sent again as often as it may be and still reported undecryptable: lost for that
/// device. Its status becomes Failed (only from Sending or Sent: another device may have it).
fn failed_for_good(tx: &StoreTx<'_>, copy: &SentCopy) -> Result<Option<(ConversationId, MessageId)>> {
    let status = tx.message(&copy.conversation, &copy.message_id)?.map(|m| m.status);
    if matches!(status, Some(MessageStatus::Sending | MessageStatus::Sent))
        && tx.set_message_status(&copy.conversation, &copy.message_id, MessageStatus::Failed)?
    {
        return Ok(Some((copy.conversation, copy.message_id)));
    }
    Ok(None)
}
