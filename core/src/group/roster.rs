//! Group rosters as a log of signed changes (docs/PROTOCOL.md §11). The roster is a pure function of
//! the *set* of changes a member holds, so members that received the same changes in any order
//! agree, and concurrent changes by two admins converge.
//!
//! Every change names its parent (the change its author saw last), so the changes form a tree
//! rooted at the create. Replay walks the tree, checking each change against the roster of its
//! path (authors must be admins there), and takes as canonical the longest chain of valid changes,
//! breaking ties by the lower hash. A change off that chain did not take effect: its author made it
//! on a stale epoch (or lost a race with a concurrent change) and may make it again on the new
//! epoch. A change whose parent has not arrived is pending. Each change on the chain bumps the epoch.

use std::collections::{BTreeMap, VecDeque};

use prost::Message;
use sha2::{Digest, Sha256};

use crate::crypto::SigningPublicKey;
pub use crate::error::ChangeRejection;
use crate::error::{Error, Result};
use crate::group::GroupId;
use crate::group::sender_chain::FORMAT_VERSION;
use crate::identity::UserIdentity;
use crate::limits::{
    MAX_GROUP_CHANGE_BYTES, MAX_GROUP_MEMBERS, MAX_GROUP_NAME_BYTES, MAX_NON_MEMBER_WAITING_BYTES,
    MAX_NON_MEMBER_WAITING_CHANGES, MAX_WAITING_BYTES, MAX_WAITING_BYTES_PER_AUTHOR, MAX_WAITING_CHANGES,
    MAX_WAITING_CHANGES_PER_AUTHOR,
};
use crate::wire::{self, group as proto};

const SIGNATURE_CONTEXT: &[u8] = b"hush/group-change/v1";

/// What a roster change does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterAction {
    /// Creates the group with these members (the author is always an admin member).
    Create {
        /// The group's name.
        name: String,
        /// The initial members besides the author.
        members: Vec<SigningPublicKey>,
    },
    /// Adds users.
    Add(Vec<SigningPublicKey>),
    /// Removes a user.
    Remove(SigningPublicKey),
    /// The author leaves.
    Leave,
    /// Renames the group.
    Rename(String),
    /// Makes a member an admin.
    Promote(SigningPublicKey),
}

/// A verified, signed roster change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RosterChange {
    pub(crate) group_id: GroupId,
    /// The hash of the change this one was made on; `None` only for the create.
    pub(crate) parent: Option<[u8; 32]>,
    pub(crate) base_epoch: u64,
    pub(crate) author: SigningPublicKey,
    pub(crate) created_at: u64,
    pub(crate) action: RosterAction,
    /// The encoded `SignedGroupChange`.
    pub(crate) signed: Vec<u8>,
    /// SHA-256 of `signed`: the change's id and its tie-breaker among concurrent changes.
    pub(crate) hash: [u8; 32],
}

fn keys_to_bytes(keys: &[SigningPublicKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_bytes().to_vec()).collect()
}

fn keys_from_bytes(keys: &[Vec<u8>]) -> Result<Vec<SigningPublicKey>> {
    if keys.len() > MAX_GROUP_MEMBERS {
        return Err(Error::TooLarge { what: "group members", size: keys.len(), max: MAX_GROUP_MEMBERS });
    }
    keys.iter().map(|k| SigningPublicKey::from_slice(k, "member user key")).collect()
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_GROUP_NAME_BYTES {
        return Err(Error::TooLarge { what: "group name", size: name.len(), max: MAX_GROUP_NAME_BYTES });
    }
    Ok(())
}

impl RosterChange {
    pub(crate) fn sign(
        author: &UserIdentity,
        group_id: GroupId,
        parent: Option<([u8; 32], u64)>,
        created_at: u64,
        action: RosterAction,
    ) -> Result<Self> {
        let (parent, base_epoch) = parent.map_or((None, 0), |(hash, epoch)| (Some(hash), epoch));
        use proto::group_change::Action;
        let action_proto = match &action {
            RosterAction::Create { name, members } => {
                check_name(name)?;
                let mut all = vec![proto::Member { user_key: author.user_key().to_bytes().to_vec(), admin: true }];
                all.extend(members.iter().map(|m| proto::Member { user_key: m.to_bytes().to_vec(), admin: false }));
                Action::Create(proto::Create { name: name.clone(), members: all })
            }
            RosterAction::Add(users) => Action::Add(proto::UserKeys { user_keys: keys_to_bytes(users) }),
            RosterAction::Remove(user) => Action::Remove(user.to_bytes().to_vec()),
            RosterAction::Leave => Action::Leave(proto::Leave {}),
            RosterAction::Rename(name) => {
                check_name(name)?;
                Action::Rename(name.clone())
            }
            RosterAction::Promote(user) => Action::Promote(user.to_bytes().to_vec()),
        };
        let change = proto::GroupChange {
            version: FORMAT_VERSION,
            group_id: group_id.0.to_vec(),
            base_epoch,
            parent: parent.map(|p| p.to_vec()).unwrap_or_default(),
            author: author.user_key().to_bytes().to_vec(),
            created_at,
            action: Some(action_proto),
        }
        .encode_to_vec();
        let signature = author.signing.sign(SIGNATURE_CONTEXT, &change).to_vec();
        let signed = proto::SignedGroupChange { version: FORMAT_VERSION, change, signature };
        Self::from_proto(&signed)
    }

    /// Decodes and verifies the author's signature.
    pub(crate) fn from_proto(signed: &proto::SignedGroupChange) -> Result<Self> {
        wire::check_version("signed group change", signed.version, FORMAT_VERSION)?;
        let change: proto::GroupChange = wire::decode(&signed.change, MAX_GROUP_CHANGE_BYTES, "group change")?;
        wire::check_version("group change", change.version, FORMAT_VERSION)?;
        let author = SigningPublicKey::from_slice(&change.author, "group change author")?;
        author.verify(SIGNATURE_CONTEXT, &signed.change, &signed.signature, "group change")?;
        use proto::group_change::Action;
        let action = match change.action.as_ref().ok_or(Error::Malformed { what: "group change action" })? {
            Action::Create(c) => {
                check_name(&c.name)?;
                if c.members.len() > MAX_GROUP_MEMBERS {
                    return Err(Error::TooLarge {
                        what: "group members",
                        size: c.members.len(),
                        max: MAX_GROUP_MEMBERS,
                    });
                }
                // The author must come first, as the only admin; everyone else joins as a member.
                let (first, rest) = c.members.split_first().ok_or(Error::Malformed { what: "group create" })?;
                if first.user_key != change.author || !first.admin || rest.iter().any(|m| m.admin) {
                    return Err(Error::Malformed { what: "group create" });
                }
                let members = rest
                    .iter()
                    .map(|m| SigningPublicKey::from_slice(&m.user_key, "member user key"))
                    .collect::<Result<Vec<_>>>()?;
                RosterAction::Create { name: c.name.clone(), members }
            }
            Action::Add(a) => RosterAction::Add(keys_from_bytes(&a.user_keys)?),
            Action::Remove(k) => RosterAction::Remove(SigningPublicKey::from_slice(k, "removed user key")?),
            Action::Leave(_) => RosterAction::Leave,
            Action::Rename(name) => {
                check_name(name)?;
                RosterAction::Rename(name.clone())
            }
            Action::Promote(k) => RosterAction::Promote(SigningPublicKey::from_slice(k, "promoted user key")?),
        };
        // Only the create has no parent, and it alone sits at epoch 0.
        let is_create = matches!(action, RosterAction::Create { .. });
        let parent = match (is_create, change.parent.len()) {
            (true, 0) if change.base_epoch == 0 => None,
            (false, 32) if change.base_epoch > 0 => Some(crate::crypto::keys::array32(&change.parent, "parent")?),
            _ => return Err(Error::Malformed { what: "group change parent" }),
        };
        let encoded = signed.encode_to_vec();
        Ok(Self {
            group_id: GroupId::from_slice(&change.group_id)?,
            parent,
            base_epoch: change.base_epoch,
            author,
            created_at: change.created_at,
            action,
            hash: Sha256::digest(&encoded).into(),
            signed: encoded,
        })
    }

    pub(crate) fn to_proto(&self) -> Result<proto::SignedGroupChange> {
        proto::SignedGroupChange::decode(self.signed.as_slice()).map_err(|_| Error::Internal("stored group change"))
    }
}

/// The state of one change after replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeStatus {
    Applied,
    /// Its parent has not arrived (yet).
    Pending,
    Rejected(ChangeRejection),
}

/// A roster: who is in the group, who administers it, its name and epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Bumped by every change that takes effect; 0 before the create.
    pub epoch: u64,
    /// The group's name.
    pub name: String,
    /// Members, with whether each is an admin.
    pub members: BTreeMap<[u8; 32], bool>,
}

impl Roster {
    /// Whether `user` is a member.
    pub fn is_member(&self, user: &SigningPublicKey) -> bool {
        self.members.contains_key(user.as_bytes())
    }

    /// Whether `user` is an admin.
    pub fn is_admin(&self, user: &SigningPublicKey) -> bool {
        self.members.get(user.as_bytes()).copied().unwrap_or(false)
    }

    /// Whether `change` would apply to this roster (§11.3), without changing it.
    pub(crate) fn check(&self, change: &RosterChange) -> core::result::Result<(), ChangeRejection> {
        let author_admin = self.members.get(change.author.as_bytes()).copied();
        match &change.action {
            RosterAction::Create { members, .. } => {
                let mut seen = std::collections::BTreeSet::from([change.author.to_bytes()]);
                if self.epoch != 0 || !members.iter().all(|m| seen.insert(m.to_bytes())) {
                    return Err(ChangeRejection::Invalid);
                }
            }
            _ if self.epoch == 0 => return Err(ChangeRejection::Invalid),
            RosterAction::Leave => {
                author_admin.ok_or(ChangeRejection::NotAdmin)?;
            }
            _ if author_admin != Some(true) => return Err(ChangeRejection::NotAdmin),
            RosterAction::Add(users) => {
                let distinct: std::collections::BTreeSet<_> = users.iter().map(|u| u.to_bytes()).collect();
                if users.is_empty()
                    || distinct.len() != users.len()
                    || users.iter().any(|u| self.is_member(u))
                    || self.members.len() + users.len() > MAX_GROUP_MEMBERS
                {
                    return Err(ChangeRejection::Invalid);
                }
            }
            RosterAction::Remove(user) => {
                if user == &change.author || !self.is_member(user) {
                    return Err(ChangeRejection::Invalid);
                }
            }
            RosterAction::Rename(_) => {}
            RosterAction::Promote(user) => {
                if self.members.get(user.as_bytes()) != Some(&false) {
                    return Err(ChangeRejection::Invalid);
                }
            }
        }
        Ok(())
    }

    /// Applies `change` if [`check`](Self::check) allows it, bumping the epoch; else changes nothing.
    pub(crate) fn apply(&mut self, change: &RosterChange) -> core::result::Result<(), ChangeRejection> {
        self.check(change)?;
        self.apply_checked(change);
        Ok(())
    }

    /// Applies a change [`check`](Self::check) allowed on this very roster.
    fn apply_checked(&mut self, change: &RosterChange) {
        let author = change.author.to_bytes();
        match &change.action {
            RosterAction::Create { name, members } => {
                self.name = name.clone();
                self.members = BTreeMap::from([(author, true)]);
                self.members.extend(members.iter().map(|m| (m.to_bytes(), false)));
            }
            RosterAction::Leave => {
                self.members.remove(&author);
            }
            RosterAction::Add(users) => self.members.extend(users.iter().map(|u| (u.to_bytes(), false))),
            RosterAction::Remove(user) => {
                self.members.remove(user.as_bytes());
            }
            RosterAction::Rename(name) => self.name = name.clone(),
            RosterAction::Promote(user) => {
                self.members.insert(user.to_bytes(), true);
            }
        }
        self.epoch += 1;
    }
}

/// The outcome of a replay.
pub(crate) struct Replay {
    pub(crate) roster: Roster,
    /// Status of each change of the log, in log order.
    pub(crate) statuses: Vec<ChangeStatus>,
    /// Hash of the last change on the canonical chain: the parent of the next local change.
    pub(crate) head: Option<[u8; 32]>,
}

/// Replays `log` (any order; at most one create) as described in the module doc. Iterative, so a
/// long log cannot exhaust the stack.
pub(crate) fn replay(log: &[RosterChange]) -> Replay {
    use std::collections::HashMap;
    let mut statuses = vec![ChangeStatus::Pending; log.len()];
    let index: HashMap<[u8; 32], usize> = log.iter().enumerate().map(|(i, c)| (c.hash, i)).collect();
    let mut children: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    let mut root = None;
    for (i, c) in log.iter().enumerate() {
        match c.parent {
            None => root = Some(i),
            Some(p) if index.contains_key(&p) => children.entry(p).or_default().push(i),
            Some(_) => {}
        }
    }
    // Top-down: validate each change against its path's roster. Rosters are cloned only where the
    // tree branches, which only concurrent changes make it do.
    let mut valid = vec![false; log.len()];
    let mut order = Vec::new();
    // A child is checked against its parent's roster before that roster is copied for it, so a
    // change that does not apply (e.g. junk from a non-admin) costs no copy.
    let verdict = |roster: &Roster, change: &RosterChange| {
        if change.base_epoch != roster.epoch {
            return Err(ChangeRejection::Invalid);
        }
        roster.check(change)
    };
    let mut stack: Vec<(usize, Roster)> = Vec::new();
    if let Some(r) = root
        && let Some(change) = log.get(r)
    {
        match verdict(&Roster::default(), change) {
            Ok(()) => stack.push((r, Roster::default())),
            Err(why) => statuses[r] = ChangeStatus::Rejected(why),
        }
    }
    while let Some((i, mut roster)) = stack.pop() {
        let Some(change) = log.get(i) else { continue };
        roster.apply_checked(change); // checked against this roster before it was pushed
        valid[i] = true;
        order.push(i);
        let mut kids = Vec::new();
        for &k in children.get(&change.hash).map(Vec::as_slice).unwrap_or_default() {
            let Some(kid) = log.get(k) else { continue };
            match verdict(&roster, kid) {
                Ok(()) => kids.push(k),
                Err(why) => statuses[k] = ChangeStatus::Rejected(why),
            }
        }
        if let Some((last, rest)) = kids.split_last() {
            for &k in rest {
                stack.push((k, roster.clone()));
            }
            stack.push((*last, roster));
        }
    }
    // Bottom-up: the length of the longest valid chain below each valid change.
    let mut height = vec![0u64; log.len()];
    for &i in order.iter().rev() {
        let best = children
            .get(&log[i].hash)
            .map(|kids| kids.iter().filter(|&&k| valid[k]).map(|&k| height[k]).max().unwrap_or(0))
            .unwrap_or(0);
        height[i] = best + 1;
    }
    // The canonical chain: from the create, always the tallest valid child, lowest hash on ties.
    let mut roster = Roster::default();
    let mut head = None;
    let mut next = root.filter(|&r| valid[r]);
    while let Some(i) = next {
        let change = &log[i];
        if roster.apply(change).is_err() {
            break; // cannot happen: validity was established on this very path
        }
        statuses[i] = ChangeStatus::Applied;
        head = Some(change.hash);
        next = children.get(&change.hash).and_then(|kids| {
            kids.iter()
                .copied()
                .filter(|&k| valid[k])
                .max_by(|&a, &b| height[a].cmp(&height[b]).then_with(|| log[b].hash.cmp(&log[a].hash)))
        });
    }
    for i in 0..log.len() {
        if valid[i] && statuses[i] != ChangeStatus::Applied {
            statuses[i] = ChangeStatus::Rejected(ChangeRejection::StaleEpoch);
        }
    }
    Replay { roster, statuses, head }
}

/// Which changes of a replayed log the group keeps (docs/PROTOCOL.md §11.5), by log index:
///
/// - never one that replay rejected other than as stale: its path is fixed by its parent's hash,
///   so it can never apply (a stranger's change, a non-admin's, one made on a wrong epoch);
/// - of the waiting ones (pending, or valid but stale): per author, the newest within
///   [`MAX_WAITING_CHANGES_PER_AUTHOR`] and [`MAX_WAITING_BYTES_PER_AUTHOR`];
/// - of those, the pending ones whose author is not a member of `roster` (the current one: a member
///   added by a change not yet arrived, or a stranger) share their own budget, the newest within
///   [`MAX_NON_MEMBER_WAITING_CHANGES`] and [`MAX_NON_MEMBER_WAITING_BYTES`], so they never push out
///   a member's;
/// - of the others, while they number more than [`MAX_WAITING_CHANGES`], the oldest of the author
///   holding the most changes goes; while they exceed [`MAX_WAITING_BYTES`], the oldest of the author
///   holding the most bytes (the lowest key among equals).
///
/// The changes dropped are off the canonical chain, which dropping them does not move.
pub(crate) fn kept(log: &[RosterChange], statuses: &[ChangeStatus], roster: &Roster) -> Vec<bool> {
    let mut keep: Vec<bool> = statuses
        .iter()
        .map(|s| !matches!(s, ChangeStatus::Rejected(why) if *why != ChangeRejection::StaleEpoch))
        .collect();
    // Each author's waiting changes, oldest first, with their bytes.
    let mut waiting: BTreeMap<[u8; 32], Waiting> = BTreeMap::new();
    for (i, (c, s)) in log.iter().zip(statuses).enumerate() {
        if keep.get(i) == Some(&true) && *s != ChangeStatus::Applied {
            let non_member = *s == ChangeStatus::Pending && !roster.is_member(&c.author);
            waiting.entry(c.author.to_bytes()).or_default().push(i, c.signed.len(), non_member);
        }
    }
    for w in waiting.values_mut() {
        while w.changes.len() > MAX_WAITING_CHANGES_PER_AUTHOR || w.bytes > MAX_WAITING_BYTES_PER_AUTHOR {
            w.evict(&mut keep);
        }
    }
    // The non-members' pending changes leave their authors' queues for one queue in arrival order.
    let mut non_members = Waiting::default();
    let mut members: Vec<Waiting> = Vec::new();
    for w in waiting.into_values() {
        let mut member = Waiting::default();
        for (i, len, non_member) in w.changes {
            if non_member { &mut non_members } else { &mut member }.push(i, len, non_member);
        }
        members.push(member);
    }
    non_members.changes.make_contiguous().sort_unstable();
    while non_members.changes.len() > MAX_NON_MEMBER_WAITING_CHANGES || non_members.bytes > MAX_NON_MEMBER_WAITING_BYTES
    {
        non_members.evict(&mut keep);
    }
    let (mut count, mut bytes) = members.iter().fold((0, 0), |(n, b), w| (n + w.changes.len(), b + w.bytes));
    while count > MAX_WAITING_CHANGES || bytes > MAX_WAITING_BYTES {
        // Along the limit exceeded; `max_by_key` keeps the last of equals: from the highest key
        // down (`members` is in key order), that is the lowest.
        let most = if count > MAX_WAITING_CHANGES {
            members.iter_mut().rev().max_by_key(|w| w.changes.len())
        } else {
            members.iter_mut().rev().max_by_key(|w| w.bytes)
        };
        let Some(w) = most else { break };
        let Some(len) = w.evict(&mut keep) else { break };
        count -= 1;
        bytes -= len;
    }
    keep
}

/// Waiting changes: (log index, encoded length, a non-member's pending change), oldest first, and
/// their total length.
#[derive(Default)]
struct Waiting {
    changes: VecDeque<(usize, usize, bool)>,
    bytes: usize,
}

impl Waiting {
    fn push(&mut self, i: usize, len: usize, non_member: bool) {
        self.changes.push_back((i, len, non_member));
        self.bytes += len;
    }

    /// Drops the oldest (clearing its `keep` flag); returns its length.
    fn evict(&mut self, keep: &mut [bool]) -> Option<usize> {
        let (i, len, _) = self.changes.pop_front()?;
        self.bytes -= len;
        if let Some(flag) = keep.get_mut(i) {
            *flag = false;
        }
        Some(len)
    }
}
