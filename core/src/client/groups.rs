//! Groups (docs/PROTOCOL.md §10, §11, §16): creating one, roster changes and renames sent to the
//! members over 1:1 sessions.

use super::{Client, dedup};
use crate::content::ContentBody;
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::group::{Group, GroupId, RosterAction};
use crate::store::{Conversation, ConversationId};

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
        let user = self.user()?.clone();
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

    /// Renames a group (admins only).
    pub fn rename_group(&mut self, id: &GroupId, name: &str, now_ms: u64) -> Result<()> {
        self.change_group(id, RosterAction::Rename(name.to_owned()), &[], now_ms)
    }

    fn change_group(
        &mut self,
        id: &GroupId,
        action: RosterAction,
        added: &[SigningPublicKey],
        now_ms: u64,
    ) -> Result<()> {
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let mut group = tx.group(id)?.ok_or(Error::NotGroupMember)?;
        let before: Vec<SigningPublicKey> = group.members();
        let user = self.user.as_ref().ok_or(Error::NotLinked)?;
        let update = group.change(user, action, now_ms)?;
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
