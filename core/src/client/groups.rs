//! Groups (docs/PROTOCOL.md §10, §11, §16): creating one, roster changes and renames, sent to the
//! members over 1:1 sessions; received, the group controls (a welcome joins the group), sender-key
//! distributions and the messages that come through a group's sender chain.

use super::incoming::{Direction, Incoming};
use super::{Client, Event, dedup};
use crate::content::{Content, ContentBody};
use crate::crypto::SigningPublicKey;
use crate::error::{Error, ErrorKind, Result};
use crate::group::{self, Group, GroupId, RosterAction};
use crate::sealed_sender::Unsealed;
use crate::store::{Conversation, ConversationId, StoreTx};

impl Client {
    /// A group's state (name, members, admins).
    pub fn group(&mut self, id: &GroupId) -> Result<Option<Group>> {
        let tx = self.store.transaction()?;
        let g = tx.group(id)?;
        tx.commit()?;
        Ok(g)
    }

    /// Creates a group with this user as admin and sends the welcome to every member.
    pub fn create_group(&mut self, name: &str, members: &[SigningPublicKey], now_ms: u64) -> Result<GroupId> {
        let me = self.user_key()?;
        let members: Vec<SigningPublicKey> = dedup(members.iter().copied().filter(|m| *m != me));
        let user = self.primary_user()?.clone();
        let (group, welcome) = Group::create(&mut self.rng, &user, name, &members, now_ms)?;
        let id = group.id();
        let tx = self.store.transaction()?;
        tx.put_group(&group)?;
        let mut conversation = Conversation::new(ConversationId::Group(id));
        conversation.last_activity_ms = now_ms;
        tx.put_conversation(&conversation)?;
        tx.commit()?;
        let content = self.content(ContentBody::GroupControl { group_id: id, change: welcome }, now_ms)?;
        self.queue_to(&ConversationId::Group(id), members, content, now_ms)?;
        Ok(id)
    }

    /// Adds users to a group (admins only): the change goes to the members, the whole roster to
    /// the new ones.
    pub fn add_members(&mut self, id: &GroupId, users: &[SigningPublicKey], now_ms: u64) -> Result<()> {
        let users = dedup(users.iter().copied());
        self.change_group(id, RosterAction::Add(users.clone()), &users, now_ms)
    }

    /// Removes a member (admins only). The removed member is told too.
    pub fn remove_member(&mut self, id: &GroupId, user: &SigningPublicKey, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Remove(*user), &[], now_ms)
    }

    /// Leaves a group.
    pub fn leave_group(&mut self, id: &GroupId, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Leave, &[], now_ms)
    }

    /// Accepts a group request ([`Event::GroupRequest`]): the group becomes an ordinary one.
    pub fn accept_group(&mut self, id: &GroupId) -> Result<()> {
        let tx = self.store.transaction()?;
        let mut conv = tx.conversation(&ConversationId::Group(*id))?.ok_or(Error::NotGroupMember)?;
        if conv.request {
            conv.request = false;
            tx.put_conversation(&conv)?;
        }
        tx.commit()
    }

    /// Declines a group request: leaves the group (its members are told, so they stop sending to
    /// this user) and forgets it, its history included. Fails, changing nothing, for a group that
    /// is no request.
    pub fn decline_group(&mut self, id: &GroupId, now_ms: u64) -> Result<()> {
        let conversation = ConversationId::Group(*id);
        let tx = self.store.transaction()?;
        let conv = tx.conversation(&conversation)?.ok_or(Error::NotGroupMember)?;
        let member = tx.group(id)?.is_some_and(|g| g.roster().is_member(&g.me));
        tx.commit()?;
        if !conv.request {
            return Err(Error::NotGroupMember);
        }
        if member {
            self.leave_group(id, now_ms)?;
        }
        let tx = self.store.transaction()?;
        tx.delete_group(id)?;
        tx.delete_conversation(&conversation)?;
        tx.commit()
    }

    /// Renames a group (admins only).
    pub fn rename_group(&mut self, id: &GroupId, name: &str, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Rename(name.to_owned()), &[], now_ms)
    }

    pub(super) fn change_group(
        &mut self,
        id: &GroupId,
        action: RosterAction,
        added: &[SigningPublicKey],
        now_ms: u64,
    ) -> Result<()> {
        let me = self.user_key()?;
        let user = self.primary_user()?.clone();
        let tx = self.store.transaction()?;
        let mut group = tx.group(id)?.ok_or(Error::NotGroupMember)?;
        let before: Vec<SigningPublicKey> = group.members();
        let update = group.change(&user, action, now_ms)?;
        tx.put_group(&group)?;
        tx.commit()?;
        let conversation = ConversationId::Group(*id);
        // Everyone who was a member before (a removed one included) gets the change.
        let old = dedup(before.into_iter().filter(|m| *m != me && !added.contains(m)));
        let content = self.content(ContentBody::GroupControl { group_id: *id, change: update.control }, now_ms)?;
        self.queue_to(&conversation, old, content, now_ms)?;
        if let Some(welcome) = update.welcome {
            let content = self.content(ContentBody::GroupControl { group_id: *id, change: welcome }, now_ms)?;
            self.queue_to(&conversation, added.to_vec(), content, now_ms)?;
        }
        Ok(())
    }
}

/// Decrypts a group message through its group's sender chain: the payload, and the group's new
/// state (stored in the envelope's transaction). The chain must be the sealed sender's, and the
/// sealed sender a member of the roster held: anyone else's message is refused (`NotGroupMember`,
/// dropped and acked) before it could wait for a chain, so only members' messages are ever parked
/// (docs/PROTOCOL.md §16.5).
pub(super) fn decrypt(tx: &StoreTx<'_>, unsealed: &Unsealed) -> Result<(Content, Group)> {
    let id = group::message_group_id(&unsealed.inner)?;
    let mut g = tx.group(&id)?.ok_or(Error::NotGroupMember)?;
    if !g.roster().is_member(&unsealed.sender_user_key) {
        return Err(Error::NotGroupMember);
    }
    let plain = g.decrypt(&unsealed.sender_device.device_key(), &unsealed.inner)?;
    if plain.sender_user != unsealed.sender_user_key {
        return Err(Error::SenderMismatch);
    }
    Ok((Content::from_bytes(&plain.plaintext)?, g))
}

/// A group payload that is refused (malformed, or from someone the group does not let in) changes
/// nothing, but its envelope still commits as processed and is acked, so the relay does not deliver
/// it again on every connection (docs/PROTOCOL.md §16.6). Only a store failure or our own bug fails
/// the envelope.
fn refused_is_done(result: Result<bool>) -> Result<bool> {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::Storage | ErrorKind::Internal) => Err(e),
        Err(_) => Ok(false),
        ok => ok,
    }
}

/// A roster change, or the welcome that joins this user to a group; it comes over a 1:1 session,
/// never through a group's chain, from a member of the group (of the roster held, or of the one
/// it makes). Returns whether the roster changed
/// (parked group messages on a chain of the new epoch may now decrypt).
pub(super) fn on_control(cx: &mut Incoming<'_>, group_id: GroupId, change: &[u8]) -> Result<bool> {
    refused_is_done(apply_control(cx, group_id, change))
}

fn apply_control(cx: &mut Incoming<'_>, group_id: GroupId, change: &[u8]) -> Result<bool> {
    if cx.in_group() || group::control_group_id(change)? != group_id {
        return Err(Error::Malformed { what: "group control" });
    }
    match cx.tx.group(&group_id)? {
        Some(mut g) => {
            // A sender who is not a member of the roster held may be one in a change not yet
            // arrived (a member just added, the admin of a welcome that re-adds this user): what
            // she sends is merged on a copy and refused only if it leaves nothing held (§16.6).
            let epoch = g.epoch();
            let changes = g.apply_control_from(&cx.from, change)?;
            cx.tx.put_group(&g)?;
            let moved = g.epoch() != epoch;
            if !changes.is_empty() {
                cx.events.push(Event::GroupChanged { group: group_id, events: changes });
            }
            Ok(moved)
        }
        None => {
            let g = Group::join(cx.c.me, change)?;
            // The welcome must come from a member of the group it makes this user join.
            if !g.roster().is_member(&cx.from) {
                return Err(Error::NotGroupMember);
            }
            let name = g.roster().name.clone();
            cx.tx.put_group(&g)?;
            // An invite from someone who is not an accepted contact is a request, as a 1:1 message
            // from them is (docs/PROTOCOL.md §16.6).
            let request = cx.c.config.group_requests && matches!(cx.direction, Direction::Peer { request: true, .. });
            let id = ConversationId::Group(group_id);
            let mut conv = cx.tx.conversation(&id)?.unwrap_or_else(|| {
                let mut conv = Conversation::new(id);
                conv.last_activity_ms = cx.now_ms;
                conv
            });
            conv.request |= request;
            cx.tx.put_conversation(&conv)?;
            cx.events.push(if request {
                Event::GroupRequest { group: group_id, name, from: cx.from }
            } else {
                Event::GroupJoined { group: group_id, name }
            });
            Ok(true)
        }
    }
}

/// A member's sender chain for a group this user is in (over a 1:1 session). Returns whether it
/// was taken: parked messages of the group may now decrypt. A refused one is dropped, acked.
pub(super) fn on_distribution(cx: &mut Incoming<'_>, distribution: &[u8]) -> Result<bool> {
    refused_is_done(take_distribution(cx, distribution))
}

fn take_distribution(cx: &mut Incoming<'_>, distribution: &[u8]) -> Result<bool> {
    if cx.in_group() {
        return Err(Error::Malformed { what: "sender key distribution in a group message" });
    }
    let id = group::distribution_group_id(distribution)?;
    if let Some(mut g) = cx.tx.group(&id)? {
        g.process_distribution(cx.from, cx.device, distribution)?;
        cx.tx.put_group(&g)?;
        return Ok(true);
    }
    Ok(false)
}
