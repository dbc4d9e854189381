//! Groups (docs/PROTOCOL.md §§10–11): a roster kept as a log of signed changes
//! (`roster`) and one sender chain per member device (`sender_chain`).
//!
//! Transport is the caller's: a [`Group`] returns bytes to hand to member devices through 1:1
//! sessions (roster changes, sender-key distributions) and group messages to send to all of them,
//! and takes the same bytes back in. After every roster change the epoch bumps and each member
//! starts a fresh chain when it next sends, so a removed member cannot read later messages, an
//! added one cannot read earlier ones, and a removal costs nothing for members who stay silent.

#[cfg(test)]
mod flood_tests;
pub mod log;
pub(crate) mod pickle;
pub(crate) mod roster;
pub(crate) mod sender_chain;

use std::collections::HashSet;

use prost::Message;
use rand_core::CryptoRngCore;

use crate::crypto::SigningPublicKey;
use crate::crypto::keys::random_array;
use crate::error::{Error, Result};
use crate::identity::UserIdentity;
use crate::limits::{
    MAX_GROUP_CONTROL_BYTES, MAX_GROUP_EPOCHS_AHEAD, MAX_GROUP_LOG, MAX_SENDER_CHAINS_PER_DEVICE,
    MAX_SENDER_CHAINS_PER_USER,
};
use crate::wire::{self, group as proto};
pub use roster::{ChangeRejection, Roster, RosterAction};
use roster::{ChangeStatus, RosterChange, replay};
use sender_chain::{FORMAT_VERSION, InboundSenderChain, OutboundSenderChain, ParsedGroupMessage};

/// A group's id: 16 random bytes chosen by its creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub(crate) [u8; 16]);

impl GroupId {
    /// Parses 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        bytes.try_into().map(Self).map_err(|_| Error::Malformed { what: "group id" })
    }

    /// The id's bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }
}

/// What a roster change did, as seen by this member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// A user joined.
    MemberAdded(SigningPublicKey),
    /// A user was removed or left (this member itself included).
    MemberRemoved(SigningPublicKey),
    /// A member became an admin.
    AdminAdded(SigningPublicKey),
    /// The group was renamed.
    Renamed(String),
    /// A change did not take effect, e.g. signed by a non-admin or made at a stale epoch.
    ChangeRejected {
        /// Who made it.
        author: SigningPublicKey,
        /// Why it did not take effect.
        reason: ChangeRejection,
    },
}

/// The result of a local roster change: what to send, and to whom.
#[derive(Clone, Debug)]
pub struct RosterUpdate {
    /// A `GroupControl` with the new change, for every device of every member before and after
    /// the change (so removed members learn of it).
    pub control: Vec<u8>,
    /// A `GroupControl` with the whole log, for the devices of users the change added.
    pub welcome: Option<Vec<u8>>,
    /// The change's effect here.
    pub events: Vec<GroupEvent>,
}

/// What to send for one group message.
#[derive(Clone, Debug)]
pub struct GroupSend {
    /// A new sender-key distribution, when this message starts a fresh chain: send it first, inside
    /// 1:1 sessions, to every device of every member (the sender's other devices included).
    pub distribution: Option<Vec<u8>>,
    /// The group message, the same bytes for every member device.
    pub message: Vec<u8>,
}

/// A decrypted group message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlaintext {
    /// The sending user.
    pub sender_user: SigningPublicKey,
    /// The sending device.
    pub sender_device: SigningPublicKey,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

/// One member device's view of a group.
#[derive(Clone, Debug)]
pub struct Group {
    pub(crate) id: GroupId,
    pub(crate) me: SigningPublicKey,
    /// Every change received, in arrival order (replay does not depend on it).
    pub(crate) log: Vec<RosterChange>,
    /// Status of each change of `log`.
    pub(crate) statuses: Vec<ChangeStatus>,
    pub(crate) roster: Roster,
    /// The last change on the canonical chain.
    pub(crate) head: Option<[u8; 32]>,
    pub(crate) outbound: Option<OutboundSenderChain>,
    pub(crate) inbound: Vec<InboundSenderChain>,
}

impl Group {
    /// Creates a group with `me` as its admin; returns it and the welcome `GroupControl` for the
    /// devices of every member.
    pub fn create(
        rng: &mut impl CryptoRngCore,
        me: &UserIdentity,
        name: &str,
        members: &[SigningPublicKey],
        now: u64,
    ) -> Result<(Self, Vec<u8>)> {
        let id = GroupId(random_array(rng));
        let action = RosterAction::Create { name: name.to_owned(), members: members.to_vec() };
        let create = RosterChange::sign(me, id, None, now, action)?;
        let mut group = Self::empty(id, me.user_key());
        let (_, statuses) = group.merge(vec![create])?;
        if let Some(ChangeStatus::Rejected(_)) = statuses.first() {
            return Err(Error::GroupChangeRejected(ChangeRejection::Invalid));
        }
        let welcome = group.control(group.log.iter())?;
        Ok((group, welcome))
    }

    /// Joins from a welcome `GroupControl` (the whole log) received over a 1:1 session.
    pub fn join(me: SigningPublicKey, welcome: &[u8]) -> Result<Self> {
        let (id, changes) = parse_control(welcome)?;
        let mut group = Self::empty(id, me);
        group.merge(changes)?;
        if !group.roster.is_member(&me) {
            return Err(Error::NotGroupMember);
        }
        Ok(group)
    }

    fn empty(id: GroupId, me: SigningPublicKey) -> Self {
        Self {
            id,
            me,
            log: Vec::new(),
            statuses: Vec::new(),
            roster: Roster::default(),
            head: None,
            outbound: None,
            inbound: Vec::new(),
        }
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The current roster.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.roster.epoch
    }

    /// The current members' user keys.
    pub fn members(&self) -> Vec<SigningPublicKey> {
        self.roster.members.keys().filter_map(|k| SigningPublicKey::from_slice(k, "member").ok()).collect()
    }

    /// Makes a roster change as `me`. Fails, changing nothing, if it would not take effect.
    pub fn change(&mut self, me: &UserIdentity, action: RosterAction, now: u64) -> Result<RosterUpdate> {
        if me.user_key() != self.me {
            return Err(Error::NotGroupMember);
        }
        let added = match &action {
            RosterAction::Add(users) => users.clone(),
            _ => Vec::new(),
        };
        let head = self.head.ok_or(Error::NotGroupMember)?;
        let change = RosterChange::sign(me, self.id, Some((head, self.roster.epoch)), now, action)?;
        let mut trial = self.clone();
        let (events, statuses) = trial.merge(vec![change.clone()])?;
        if let Some(ChangeStatus::Rejected(why)) = statuses.first() {
            return Err(Error::GroupChangeRejected(*why));
        }
        *self = trial;
        let control = self.control(std::iter::once(&change))?;
        let welcome = if added.is_empty() { None } else { Some(self.control(self.log.iter())?) };
        Ok(RosterUpdate { control, welcome, events })
    }

    /// Takes in a `GroupControl` from another member; returns what changed. Changes already held
    /// are ignored, so the same control may arrive twice. On error nothing changes.
    pub fn apply_control(&mut self, control: &[u8]) -> Result<Vec<GroupEvent>> {
        let (id, changes) = parse_control(control)?;
        if id != self.id {
            return Err(Error::Malformed { what: "group control group id" });
        }
        let mut trial = self.clone();
        let (events, _) = trial.merge(changes)?;
        *self = trial;
        Ok(events)
    }

    /// Takes in a `GroupControl` that `sender` sent over a 1:1 session (docs/PROTOCOL.md §11.6). From
    /// a member of the roster held, as [`apply_control`](Self::apply_control). From anyone else
    /// (a member added by a change not yet arrived here, the admin of a welcome that re-adds this
    /// user, a stranger) it is merged on a copy and taken only if, merged, `sender` is a member or
    /// one of its changes is held (a pending one waits under the non-members' budget, §11.5);
    /// otherwise it fails with `NotGroupMember`, changing nothing.
    pub fn apply_control_from(&mut self, sender: &SigningPublicKey, control: &[u8]) -> Result<Vec<GroupEvent>> {
        if self.roster.is_member(sender) {
            return self.apply_control(control);
        }
        let held: HashSet<[u8; 32]> = self.log.iter().map(|c| c.hash).collect();
        let mut trial = self.clone();
        let events = trial.apply_control(control)?;
        if !trial.roster.is_member(sender) && trial.log.iter().all(|c| held.contains(&c.hash)) {
            return Err(Error::NotGroupMember);
        }
        *self = trial;
        Ok(events)
    }

    /// Inserts verified changes, replays, drops what the group does not hold (docs/PROTOCOL.md
    /// §11.5: changes that can never apply, waiting ones beyond the caps) and the chains of users no longer members. Returns the events and the statuses of the
    /// `new` changes, in order.
    fn merge(&mut self, new: Vec<RosterChange>) -> Result<(Vec<GroupEvent>, Vec<ChangeStatus>)> {
        let before = self.roster.clone();
        let mut inserted = HashSet::new();
        let mut arrived = Vec::new();
        for change in new {
            if change.group_id != self.id {
                return Err(Error::Malformed { what: "group change group id" });
            }
            if inserted.contains(&change.hash) || self.log.iter().any(|c| c.hash == change.hash) {
                continue;
            }
            // One create per group, ever: a second one could only be forged or replayed.
            let is_create = change.parent.is_none();
            if is_create && self.log.iter().any(|c| c.parent.is_none()) {
                return Err(Error::GroupChangeRejected(ChangeRejection::Invalid));
            }
            inserted.insert(change.hash);
            arrived.push(change.hash);
            self.log.push(change);
        }
        let replayed = replay(&self.log);
        let previous = core::mem::replace(&mut self.statuses, replayed.statuses);
        let applied_before: HashSet<[u8; 32]> =
            self.log.iter().zip(&previous).filter(|(_, s)| **s == ChangeStatus::Applied).map(|(c, _)| c.hash).collect();
        self.roster = replayed.roster;
        self.head = replayed.head;

        let statuses_by_hash: std::collections::HashMap<[u8; 32], ChangeStatus> = self
            .log
            .iter()
            .zip(&self.statuses)
            .filter(|(c, _)| inserted.contains(&c.hash))
            .map(|(c, s)| (c.hash, *s))
            .collect();
        let new_statuses = arrived.iter().filter_map(|h| statuses_by_hash.get(h).copied()).collect();
        self.prune();
        // Reported once pruned, so only for changes the group keeps: new changes that did not take
        // effect, and earlier ones a late change pushed out. A change dropped unstored (one that can
        // never apply, or a waiting one beyond the caps) is junk nobody needs to hear of (§11.5).
        let mut events = Vec::new();
        for (change, status) in self.log.iter().zip(&self.statuses) {
            let reverted = applied_before.contains(&change.hash);
            if let (ChangeStatus::Rejected(reason), true) = (status, inserted.contains(&change.hash) || reverted) {
                events.push(GroupEvent::ChangeRejected { author: change.author, reason: *reason });
            }
        }
        if self.log.len() > MAX_GROUP_LOG {
            return Err(Error::TooLarge { what: "group log", size: self.log.len(), max: MAX_GROUP_LOG });
        }
        self.inbound.retain(|c| self.roster.is_member(&c.sender_user));
        // A chain held ahead of the roster is checked once the roster reaches its epoch.
        if self.inbound.iter().any(|c| c.epoch > before.epoch && c.epoch < self.roster.epoch) {
            let inbound = core::mem::take(&mut self.inbound);
            self.inbound = inbound
                .into_iter()
                .filter(|c| {
                    c.epoch <= before.epoch
                        || c.epoch >= self.roster.epoch
                        || self.canonical_roster_at(c.epoch).is_member(&c.sender_user)
                })
                .collect();
        }
        if !self.roster.is_member(&self.me) {
            self.outbound = None;
        }

        events.extend(roster_events(&before, &self.roster)?);
        Ok((events, new_statuses))
    }

    /// Drops the changes of the log the group does not keep ([`roster::kept`]), until it keeps
    /// all: a stale change dropped leaves its valid descendants pending, which may put them under
    /// another cap (a non-member's, §11.5), so the log is replayed and pruned again. Each round
    /// drops at least one change.
    fn prune(&mut self) {
        loop {
            let keep = roster::kept(&self.log, &self.statuses, &self.roster);
            if keep.iter().all(|k| *k) {
                return;
            }
            let dropped_valid = self
                .statuses
                .iter()
                .zip(&keep)
                .any(|(s, k)| !k && *s == ChangeStatus::Rejected(ChangeRejection::StaleEpoch));
            let mut keep_iter = keep.iter();
            self.log.retain(|_| keep_iter.next().copied().unwrap_or(true));
            let mut keep_iter = keep.iter();
            self.statuses.retain(|_| keep_iter.next().copied().unwrap_or(true));
            if !dropped_valid {
                // Dropping pending or rejected changes moves no other's status: nothing more goes.
                return;
            }
            let replayed = replay(&self.log);
            self.statuses = replayed.statuses;
            self.roster = replayed.roster;
            self.head = replayed.head;
        }
    }

    fn control<'a>(&self, changes: impl Iterator<Item = &'a RosterChange>) -> Result<Vec<u8>> {
        Ok(proto::GroupControl {
            version: FORMAT_VERSION,
            group_id: self.id.0.to_vec(),
            changes: changes.map(RosterChange::to_proto).collect::<Result<_>>()?,
        }
        .encode_to_vec())
    }

    /// Encrypts a group message at `now_ms` (unix ms); starts (and returns the distribution of) a
    /// fresh sender chain when the epoch moved since this device last sent, or its chain carried
    /// [`SENDER_CHAIN_MAX_MESSAGES`](crate::limits::SENDER_CHAIN_MAX_MESSAGES) messages or is
    /// [`SENDER_CHAIN_MAX_AGE_MS`](crate::limits::SENDER_CHAIN_MAX_AGE_MS) old
    /// (docs/PROTOCOL.md §10.3).
    pub fn encrypt(&mut self, rng: &mut impl CryptoRngCore, plaintext: &[u8], now_ms: u64) -> Result<GroupSend> {
        if !self.roster.is_member(&self.me) {
            return Err(Error::NotGroupMember);
        }
        let mut distribution = None;
        let chain = match self.outbound.take() {
            Some(mut chain) if chain.epoch == self.roster.epoch && !chain.worn_out(now_ms) => {
                if chain.started_at_ms == 0 {
                    chain.started_at_ms = now_ms; // a chain stored before rotation by age: its age starts now
                }
                chain
            }
            _ => {
                let chain = OutboundSenderChain::new(rng, self.roster.epoch, now_ms);
                distribution = Some(chain.distribution(&self.id));
                chain
            }
        };
        let chain = self.outbound.insert(chain);
        let message = chain.encrypt(&self.id, plaintext)?;
        Ok(GroupSend { distribution, message })
    }

    /// The distribution of this device's current chain, for a member device that missed it.
    pub fn sender_key_distribution(&self) -> Option<Vec<u8>> {
        self.outbound.as_ref().filter(|c| c.epoch == self.roster.epoch).map(|c| c.distribution(&self.id))
    }

    /// Takes in a sender-key distribution that `sender_device` of `sender_user` sent over an
    /// authenticated 1:1 session (docs/PROTOCOL.md §10.4). The sender must be a member now and, for a
    /// chain of an earlier epoch, at that epoch too. Chains are held per (sending device, chain id),
    /// so one device cannot take over another's chain by reusing its id; beyond
    /// [`MAX_SENDER_CHAINS_PER_DEVICE`] of the device or [`MAX_SENDER_CHAINS_PER_USER`] of the user,
    /// that device's (then that user's) oldest chain is dropped. A chain of a later epoch than
    /// this device's roster is held but used only once the roster reaches its epoch.
    pub fn process_distribution(
        &mut self,
        sender_user: SigningPublicKey,
        sender_device: SigningPublicKey,
        distribution: &[u8],
    ) -> Result<()> {
        if !self.roster.is_member(&sender_user) {
            return Err(Error::NotGroupMember);
        }
        let chain = InboundSenderChain::from_distribution(&self.id, sender_user, sender_device, distribution)?;
        if chain.epoch == 0 {
            return Err(Error::Malformed { what: "sender key distribution epoch" });
        }
        if chain.epoch < self.roster.epoch && !self.canonical_roster_at(chain.epoch).is_member(&sender_user) {
            return Err(Error::NotGroupMember);
        }
        if self.inbound.iter().any(|c| c.sender_device == sender_device && c.chain_id == chain.chain_id) {
            // Already known; the held copy may be further along, so keep it.
            return Ok(());
        }
        self.inbound.push(chain);
        let of_device = self.inbound.iter().filter(|c| c.sender_device == sender_device).count();
        if of_device > MAX_SENDER_CHAINS_PER_DEVICE
            && let Some(oldest) = self.inbound.iter().position(|c| c.sender_device == sender_device)
        {
            self.inbound.remove(oldest);
        }
        drop_chains_beyond_user_cap(&mut self.inbound, &sender_user);
        Ok(())
    }

    /// Verifies and decrypts a group message that the sealed sender says `sender_device` sent. The
    /// chain is looked up by (device, chain id); a chain of an epoch this device's roster has not
    /// reached yet is not used (`UnknownSenderChain`: the caller keeps the message for later), and a
    /// message naming an epoch more than [`MAX_GROUP_EPOCHS_AHEAD`] ahead of the roster's is refused
    /// (`TooFarAhead`). On error nothing changes.
    pub fn decrypt(&mut self, sender_device: &SigningPublicKey, message: &[u8]) -> Result<GroupPlaintext> {
        let parsed = ParsedGroupMessage::from_bytes(message)?;
        if parsed.group_id != self.id {
            return Err(Error::Malformed { what: "group message group id" });
        }
        let epoch = self.roster.epoch;
        // A message can only wait for a chain of an epoch a little ahead of ours; one naming an
        // epoch further on (a member's junk, to keep envelopes parked) is refused outright.
        let ahead = parsed.epoch.saturating_sub(epoch);
        if ahead > u64::from(MAX_GROUP_EPOCHS_AHEAD) {
            return Err(Error::TooFarAhead { jump: ahead, max: MAX_GROUP_EPOCHS_AHEAD });
        }
        let chain = self
            .inbound
            .iter_mut()
            .find(|c| c.sender_device == *sender_device && c.chain_id == parsed.chain_id && c.epoch <= epoch)
            .ok_or(Error::UnknownSenderChain)?;
        let plaintext = chain.decrypt(&parsed)?;
        Ok(GroupPlaintext { sender_user: chain.sender_user, sender_device: chain.sender_device, plaintext })
    }

    /// The roster after the first `epoch` changes of the canonical chain (the current roster for
    /// the current epoch or later). One walk, no copy per change.
    fn canonical_roster_at(&self, epoch: u64) -> Roster {
        if epoch >= self.roster.epoch {
            return self.roster.clone();
        }
        let by_hash: std::collections::HashMap<[u8; 32], &RosterChange> =
            self.log.iter().map(|c| (c.hash, c)).collect();
        let mut chain = Vec::new();
        let mut next = self.head;
        while let Some(change) = next.and_then(|h| by_hash.get(&h)) {
            chain.push(*change);
            next = change.parent;
        }
        let mut roster = Roster::default();
        for change in chain.iter().rev().take(usize::try_from(epoch).unwrap_or(usize::MAX)) {
            if roster.apply(change).is_err() {
                break; // cannot happen: these are the applied changes, in order
            }
        }
        roster
    }
}

/// What moving from roster `before` to `after` did, as events: members added and admins made (in
/// key order), members gone, the new name.
pub(crate) fn roster_events(before: &Roster, after: &Roster) -> Result<Vec<GroupEvent>> {
    let key = |k: &[u8; 32]| SigningPublicKey::from_slice(k, "member");
    let mut events = Vec::new();
    for (user, admin) in &after.members {
        match before.members.get(user) {
            None => events.push(GroupEvent::MemberAdded(key(user)?)),
            Some(false) if *admin => events.push(GroupEvent::AdminAdded(key(user)?)),
            _ => {}
        }
    }
    for user in before.members.keys().filter(|u| !after.members.contains_key(*u)) {
        events.push(GroupEvent::MemberRemoved(key(user)?));
    }
    if before.name != after.name {
        events.push(GroupEvent::Renamed(after.name.clone()));
    }
    Ok(events)
}

/// Drops `user`'s oldest-received inbound chains (the first in `inbound`, which is in arrival
/// order) beyond [`MAX_SENDER_CHAINS_PER_USER`]; other users' chains are untouched.
pub(crate) fn drop_chains_beyond_user_cap(inbound: &mut Vec<InboundSenderChain>, user: &SigningPublicKey) {
    let mut excess =
        inbound.iter().filter(|c| c.sender_user == *user).count().saturating_sub(MAX_SENDER_CHAINS_PER_USER);
    inbound.retain(|c| {
        if excess > 0 && c.sender_user == *user {
            excess = excess.saturating_sub(1);
            return false;
        }
        true
    });
}

/// The group a group message is for, read before any decryption (to find the group's state).
pub fn message_group_id(message: &[u8]) -> Result<GroupId> {
    Ok(ParsedGroupMessage::from_bytes(message)?.group_id)
}

/// The group a sender-key distribution is for (to find the group's state).
pub fn distribution_group_id(distribution: &[u8]) -> Result<GroupId> {
    sender_chain::distribution_group_id(distribution)
}

/// The group a `GroupControl` (a change or a welcome) is for.
pub fn control_group_id(control: &[u8]) -> Result<GroupId> {
    Ok(parse_control(control)?.0)
}

fn parse_control(bytes: &[u8]) -> Result<(GroupId, Vec<RosterChange>)> {
    let control: proto::GroupControl = wire::decode(bytes, MAX_GROUP_CONTROL_BYTES, "group control")?;
    wire::check_version("group control", control.version, FORMAT_VERSION)?;
    let id = GroupId::from_slice(&control.group_id)?;
    let changes = control.changes.iter().map(RosterChange::from_proto).collect::<Result<Vec<_>>>()?;
    Ok((id, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A member that is not an admin signs a removal anyway (a modified client) and sends it.
    #[test]
    fn forced_change_by_non_admin_has_no_effect() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
        let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
        let (mut g0, welcome) = Group::create(&mut rng, &users[0], "g", &keys[1..], 1).unwrap();
        let g1 = Group::join(keys[1], &welcome).unwrap();
        let forged = RosterChange::sign(
            &users[1],
            g1.id,
            Some((g1.head.unwrap(), g1.epoch())),
            2,
            RosterAction::Remove(keys[0]),
        )
        .unwrap();
        let control = g1.control(std::iter::once(&forged)).unwrap();
        let log = g0.log.len();
        let events = g0.apply_control(&control).unwrap();
        // It can never apply, so it is dropped unstored, and reported as nothing.
        assert_eq!(events, vec![]);
        assert_eq!(g0.log.len(), log);
        assert!(g0.roster().is_admin(&keys[0]) && g0.members().len() == 3);
        // A second create for the same group (a takeover attempt) is refused outright.
        let create = RosterChange::sign(
            &users[2],
            g0.id,
            None,
            3,
            RosterAction::Create { name: "mine".into(), members: vec![keys[0]] },
        )
        .unwrap();
        let control = g0.control(std::iter::once(&create)).unwrap();
        let before = g0.roster().clone();
        assert_eq!(g0.apply_control(&control), Err(Error::GroupChangeRejected(ChangeRejection::Invalid)));
        assert_eq!(g0.roster(), &before);
    }

    /// Group post-compromise security (docs/PROTOCOL.md §10.3): after 100 messages, or a week, the
    /// next message starts a new chain, so whoever holds a copy of the old chain (a leaked state)
    /// reads none of the new one; late messages of the old chain still read.
    #[test]
    fn a_sender_chain_is_replaced_after_a_hundred_messages_or_a_week() {
        use crate::limits::{SENDER_CHAIN_MAX_AGE_MS, SENDER_CHAIN_MAX_MESSAGES};
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let users: Vec<_> = (0..2).map(|_| UserIdentity::generate(&mut rng)).collect();
        let (mut a, welcome) = Group::create(&mut rng, &users[0], "g", &[users[1].user_key()], 1).unwrap();
        let mut b = Group::join(users[1].user_key(), &welcome).unwrap();
        let alice = users[0].user_key();
        let t0 = 1_000_000;
        let first = a.encrypt(&mut rng, b"0", t0).unwrap();
        b.process_distribution(alice, alice, &first.distribution.unwrap()).unwrap();
        let thief = b.clone();
        b.decrypt(&alice, &first.message).unwrap();
        let mut late = Vec::new();
        for i in 1..SENDER_CHAIN_MAX_MESSAGES {
            let send = a.encrypt(&mut rng, b"same chain", t0 + u64::from(i)).unwrap();
            assert!(send.distribution.is_none(), "message {i}");
            late.push(send.message);
        }
        let next = a.encrypt(&mut rng, b"new", t0 + 200).unwrap();
        let distribution = next.distribution.expect("the 101st message starts a new chain");
        let mut thief = thief;
        assert_eq!(thief.decrypt(&alice, &next.message), Err(Error::UnknownSenderChain));
        b.process_distribution(alice, alice, &distribution).unwrap();
        assert_eq!(b.decrypt(&alice, &next.message).unwrap().plaintext, b"new");
        for message in &late {
            b.decrypt(&alice, message).unwrap();
        }
        // Time: a clock gone back makes no chain old; a week does.
        assert!(a.encrypt(&mut rng, b"back", t0).unwrap().distribution.is_none());
        assert!(a.encrypt(&mut rng, b"y", t0 + 200 + SENDER_CHAIN_MAX_AGE_MS - 1).unwrap().distribution.is_none());
        assert!(a.encrypt(&mut rng, b"z", t0 + 200 + SENDER_CHAIN_MAX_AGE_MS).unwrap().distribution.is_some());
    }

    /// A modified client jumps its own chain further than MAX_FORWARD_JUMP in one message (an
    /// honest one never does: its chain is replaced every 100 messages): refused, state unchanged.
    #[test]
    fn a_chain_jumped_past_the_forward_limit_is_refused() {
        use crate::limits::MAX_FORWARD_JUMP;
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let users: Vec<_> = (0..2).map(|_| UserIdentity::generate(&mut rng)).collect();
        let (mut a, welcome) = Group::create(&mut rng, &users[0], "g", &[users[1].user_key()], 1).unwrap();
        let mut b = Group::join(users[1].user_key(), &welcome).unwrap();
        let alice = users[0].user_key();
        let first = a.encrypt(&mut rng, b"0", 1).unwrap();
        b.process_distribution(alice, alice, &first.distribution.unwrap()).unwrap();
        let mut chain = a.outbound.clone().unwrap();
        for _ in 0..=MAX_FORWARD_JUMP {
            chain.chain = chain.chain.next().unwrap().unwrap();
        }
        let far = chain.encrypt(&a.id, b"far").unwrap();
        assert!(matches!(b.decrypt(&alice, &far), Err(Error::TooFarAhead { .. })));
        assert_eq!(b.decrypt(&alice, &first.message).unwrap().plaintext, b"0");
    }

    #[test]
    fn debug_hides_chain_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let users: Vec<_> = (0..2).map(|_| UserIdentity::generate(&mut rng)).collect();
        let (mut g0, welcome) = Group::create(&mut rng, &users[0], "g", &[users[1].user_key()], 1).unwrap();
        let mut g1 = Group::join(users[1].user_key(), &welcome).unwrap();
        let send = g0.encrypt(&mut rng, b"hi", 1).unwrap();
        let dist = send.distribution.unwrap();
        g1.process_distribution(users[0].user_key(), users[0].user_key(), &dist).unwrap();
        g1.decrypt(&users[0].user_key(), &send.message).unwrap();
        let text = format!("{g0:?}{g1:?}");
        let out = g0.outbound.as_ref().unwrap();
        crate::test_util::assert_no_secret(&text, &out.chain.key);
        crate::test_util::assert_no_secret(&text, out.signing.secret_bytes().as_slice());
        crate::test_util::assert_no_secret(&text, &g1.inbound[0].chain.key);
        let parsed: proto::SenderKeyDistribution = prost::Message::decode(dist.as_slice()).unwrap();
        assert!(!format!("{parsed:?}").contains(&format!("{:?}", parsed.chain_key)));
    }
}
