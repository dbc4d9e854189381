//! A group's roster log as the relay sequences it (docs/PROTOCOL.md §11.9): the keys of each epoch,
//! the sealed entries and compare-and-swap appends the relay orders without reading them, and one
//! member's view ([`LogView`]), which applies roster changes in the relay's order and no other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use prost::Message;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::roster::{Roster, RosterAction, RosterChange};
use super::sender_chain::FORMAT_VERSION;
use super::{GroupEvent, GroupId, roster_events};
use crate::crypto::keys::{SigningKeyPair, array32, random_array};
use crate::crypto::{SigningPublicKey, aead, kdf};
use crate::error::{ChangeRejection, Error, Result};
use crate::identity::UserIdentity;
use crate::limits::{
    MAX_GROUP_EPOCHS_AHEAD, MAX_GROUP_KEY_GRANTS, MAX_GROUP_LOG_ENTRY_BYTES, MAX_GROUP_MEMBERS, MAX_GROUP_REMOVED,
    MAX_GROUP_TRANSCRIPTS_KEPT, MAX_GROUP_WELCOME_BYTES,
};
use crate::ratchet::padding;
use crate::wire::{self, group as proto, relay};

const APPEND_CONTEXT: &[u8] = b"hush/group-log-append/v1";
const LOG_ID_INFO: &[u8] = b"hush/group-log/v1/log-id";
const APPEND_KEY_INFO: &[u8] = b"hush/group-log/v1/append-key";
const ENTRY_KEY_INFO: &[u8] = b"hush/group-log/v1/entry-key";
const ENTRY_INFO: &[u8] = b"hush/group-log/v1/entry";
const ENTRY_KEY_ID_LABEL: &[u8] = b"hush/group-log/v1/entry-key-id";
const TRANSCRIPT_LABEL: &[u8] = b"hush/group-transcript/v1";
const SALT_LEN: usize = 32;
/// Largest encoded `GroupEpochKeys` (four short fields).
const MAX_EPOCH_KEYS_BYTES: usize = 256;

/// A log's id on the relay: opaque, derived from the create's epoch secret.
pub type LogId = [u8; 32];

/// The keys of one epoch: its secret (admins hold it: it makes the append key) and the entry key
/// derived from it (every member holds it: it opens the log's entries).
#[derive(Clone)]
pub(crate) struct EpochKeys {
    secret: Option<Zeroizing<[u8; 32]>>,
    entry_key: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochKeys").field("admin", &self.secret.is_some()).finish_non_exhaustive()
    }
}

impl EpochKeys {
    fn generate(rng: &mut impl CryptoRngCore) -> Result<Self> {
        Self::from_secret(Zeroizing::new(random_array(rng)))
    }

    fn from_secret(secret: Zeroizing<[u8; 32]>) -> Result<Self> {
        let entry_key = kdf::hkdf::<32>(None, secret.as_slice(), ENTRY_KEY_INFO)?;
        Ok(Self { secret: Some(secret), entry_key })
    }

    /// What a member who is no admin gets: the entry key alone.
    /// What a member removed by the entry holds of the epoch it makes: nothing. It opens nothing,
    /// and the view stops there.
    fn none() -> Self {
        Self { secret: None, entry_key: Zeroizing::new([0; 32]) }
    }

    fn members_part(&self) -> Self {
        Self { secret: None, entry_key: self.entry_key.clone() }
    }

    /// The append key of the epoch; only with the secret.
    fn append_key(&self) -> Result<Option<SigningKeyPair>> {
        let Some(secret) = &self.secret else { return Ok(None) };
        let seed = kdf::hkdf::<32>(None, secret.as_slice(), APPEND_KEY_INFO)?;
        Ok(Some(SigningKeyPair::from_secret_bytes(&seed)))
    }

    fn log_id(&self) -> Result<LogId> {
        let secret = self.secret.as_ref().ok_or(Error::Internal("log id without the create's secret"))?;
        Ok(*kdf::hkdf::<32>(None, secret.as_slice(), LOG_ID_INFO)?)
    }

    fn entry_key_id(&self) -> [u8; 32] {
        Sha256::new().chain_update(ENTRY_KEY_ID_LABEL).chain_update(self.entry_key.as_slice()).finalize().into()
    }

    fn to_proto(&self, group_id: GroupId, epoch: u64, log_id: &LogId, admin: bool) -> proto::GroupEpochKeys {
        proto::GroupEpochKeys {
            version: FORMAT_VERSION,
            group_id: group_id.0.to_vec(),
            epoch,
            secret: self.secret.as_ref().filter(|_| admin).map(|s| s.to_vec()).unwrap_or_default(),
            entry_key: self.entry_key.to_vec(),
            log_id: log_id.to_vec(),
        }
    }

    fn from_proto(p: &proto::GroupEpochKeys) -> Result<Self> {
        wire::check_version("group epoch keys", p.version, FORMAT_VERSION)?;
        let entry_key = Zeroizing::new(array32(&p.entry_key, "group entry key")?);
        if p.secret.is_empty() {
            return Ok(Self { secret: None, entry_key });
        }
        let keys = Self::from_secret(Zeroizing::new(array32(&p.secret, "group epoch secret")?))?;
        if keys.entry_key != entry_key {
            return Err(Error::Malformed { what: "group entry key" });
        }
        Ok(keys)
    }
}

/// The transcript hash after a change: it commits to every change of the log up to it, in order.
pub(crate) fn next_transcript(previous: &[u8; 32], change: &RosterChange) -> [u8; 32] {
    Sha256::new().chain_update(TRANSCRIPT_LABEL).chain_update(previous).chain_update(change.hash).finalize().into()
}

fn entry_ad(log_id: &LogId, epoch: u64) -> Vec<u8> {
    [ENTRY_INFO, log_id.as_slice(), &epoch.to_be_bytes()].concat()
}

/// `salt ‖ AEAD(key, nonce, AD, pad(entry))` with `key ‖ nonce` derived from the epoch's entry key
/// and a fresh salt, so two admins sealing at the same epoch never share a nonce.
fn seal_entry(
    rng: &mut impl CryptoRngCore,
    keys: &EpochKeys,
    log_id: &LogId,
    epoch: u64,
    entry: &[u8],
) -> Result<Vec<u8>> {
    let salt: [u8; SALT_LEN] = random_array(rng);
    let (key, nonce) = entry_aead_key(keys, &salt)?;
    let sealed = aead::seal(&key, &nonce, &entry_ad(log_id, epoch), &padding::pad(entry))?;
    Ok([salt.as_slice(), &sealed].concat())
}

fn open_entry(keys: &EpochKeys, log_id: &LogId, epoch: u64, sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() > MAX_GROUP_LOG_ENTRY_BYTES {
        return Err(Error::TooLarge { what: "group log entry", size: sealed.len(), max: MAX_GROUP_LOG_ENTRY_BYTES });
    }
    let salt = sealed.get(..SALT_LEN).ok_or(Error::Malformed { what: "group log entry" })?;
    let body = sealed.get(SALT_LEN..).ok_or(Error::Malformed { what: "group log entry" })?;
    let (key, nonce) = entry_aead_key(keys, salt)?;
    padding::unpad(aead::open(&key, &nonce, &entry_ad(log_id, epoch), body)?)
}

fn entry_aead_key(keys: &EpochKeys, salt: &[u8]) -> Result<(Zeroizing<[u8; 32]>, [u8; aead::NONCE_LEN])> {
    let okm = kdf::hkdf::<44>(Some(salt), keys.entry_key.as_slice(), ENTRY_INFO)?;
    let (key, nonce) = okm.split_at(32);
    let key = Zeroizing::new(key.try_into().map_err(|_| Error::Internal("entry key length"))?);
    Ok((key, nonce.try_into().map_err(|_| Error::Internal("entry nonce length"))?))
}

/// A compare-and-swap append for the relay (`GroupLogAppend`, docs/PROTOCOL.md §15.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    /// The log.
    pub log_id: LogId,
    /// The epoch the change was made on: the relay takes it only if its log is there.
    pub expected_epoch: u64,
    /// The sealed entry.
    pub entry: Vec<u8>,
    /// The append key of the epoch the entry makes.
    pub next_append_key: [u8; 32],
    /// By the append key of `expected_epoch` (by `next_append_key`'s own key for the create).
    pub signature: Vec<u8>,
}

impl Append {
    fn sign(signer: &SigningKeyPair, log_id: LogId, expected_epoch: u64, entry: Vec<u8>, next: [u8; 32]) -> Self {
        let signature = signer.sign(APPEND_CONTEXT, &append_message(&log_id, expected_epoch, &next, &entry)).to_vec();
        Self { log_id, expected_epoch, entry, next_append_key: next, signature }
    }

    /// The relay request.
    pub fn to_request(&self) -> relay::GroupLogAppend {
        relay::GroupLogAppend {
            log_id: self.log_id.to_vec(),
            expected_epoch: self.expected_epoch,
            entry: self.entry.clone(),
            next_append_key: self.next_append_key.to_vec(),
            signature: self.signature.clone(),
        }
    }
}

fn append_message(log_id: &[u8], expected_epoch: u64, next_append_key: &[u8], entry: &[u8]) -> Vec<u8> {
    let entry_hash: [u8; 32] = Sha256::digest(entry).into();
    [log_id, &expected_epoch.to_be_bytes(), next_append_key, &entry_hash].concat()
}

/// The relay's check of an append (docs/PROTOCOL.md §15.5): the fields' shapes, and the signature by
/// `append_key`, the log's key of `expected_epoch` (the append's own `next_append_key` when it
/// creates the log).
pub fn verify_append(append: &relay::GroupLogAppend, append_key: &[u8]) -> Result<()> {
    if append.log_id.len() != 32 {
        return Err(Error::Malformed { what: "group log id" });
    }
    if append.entry.is_empty() {
        return Err(Error::Malformed { what: "group log entry" });
    }
    if append.entry.len() > MAX_GROUP_LOG_ENTRY_BYTES {
        return Err(Error::TooLarge {
            what: "group log entry",
            size: append.entry.len(),
            max: MAX_GROUP_LOG_ENTRY_BYTES,
        });
    }
    SigningPublicKey::from_slice(&append.next_append_key, "group log append key")?;
    let key = SigningPublicKey::from_slice(append_key, "group log append key")?;
    let message = append_message(&append.log_id, append.expected_epoch, &append.next_append_key, &append.entry);
    key.verify(APPEND_CONTEXT, &message, &append.signature, "group log append")
}

/// This member's change on its way to the relay.
#[derive(Clone, Debug)]
struct Proposal {
    change: RosterChange,
    next: EpochKeys,
    append: Append,
}

/// What a change this member made did, once the relay took it: the keys of the new epoch to hand
/// over 1:1 sessions, and the welcome for the users it added.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The change's effect here.
    pub events: Vec<GroupEvent>,
    /// `GroupEpochKeys` with the secret: for the devices of the new epoch's admins (this user's
    /// other devices included).
    pub admin_keys: Vec<u8>,
    /// `GroupEpochKeys` with the entry key only: for the devices of the other members.
    pub member_keys: Vec<u8>,
    /// A `GroupWelcome` for the devices of the users the change added.
    pub welcome: Option<Vec<u8>>,
    /// The users the change added.
    pub added: Vec<SigningPublicKey>,
}

/// What the relay's entries did to this member's view.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// Roster changes, and changes the log holds that did not apply (skipped alike by every member).
    pub events: Vec<GroupEvent>,
    /// This member's own change was among the entries (the relay's answer to it was lost).
    pub own: Option<Committed>,
    /// This member's change waiting for the relay lost the race: [`LogView::rebase`] it.
    pub conflicted: bool,
    /// An entry waits for the keys of the epoch it makes (they come over a 1:1 session).
    pub waiting: bool,
}

/// One member's view of a group's sequenced roster log: the roster the log's changes make, in the
/// relay's order, the users removed (a removal is final), the transcript hash, and this epoch's keys.
/// It holds no history: members apply changes in the relay's order, so the state is bounded by
/// the roster (docs/PROTOCOL.md §11.9).
#[derive(Clone, Debug)]
pub struct LogView {
    group_id: GroupId,
    log_id: LogId,
    me: SigningPublicKey,
    roster: Roster,
    removed: BTreeSet<[u8; 32]>,
    transcript: [u8; 32],
    keys: EpochKeys,
    /// The latest epochs, oldest first, the current one last: each with its transcript hash and
    /// the hash of the entry that made it (unknown for the epoch a welcome joined at).
    transcripts: VecDeque<Epoch>,
    /// Keys received for epochs not reached yet, by (epoch, sender).
    grants: BTreeMap<(u64, [u8; 32]), EpochKeys>,
    proposal: Option<Proposal>,
}

/// What a member remembers of a recent epoch.
#[derive(Clone, Debug)]
struct Epoch {
    epoch: u64,
    transcript: [u8; 32],
    entry: Option<[u8; 32]>,
}

/// Whether `change` may be the next entry of a log whose roster is `roster` (§11.3), where a
/// removal is final.
fn check(
    roster: &Roster,
    removed: &BTreeSet<[u8; 32]>,
    change: &RosterChange,
) -> core::result::Result<(), ChangeRejection> {
    if removed.contains(change.author.as_bytes()) {
        return Err(ChangeRejection::Removed);
    }
    match &change.action {
        RosterAction::Add(users) if users.iter().any(|u| removed.contains(u.as_bytes())) => {
            return Err(ChangeRejection::Removed);
        }
        RosterAction::Remove(_) | RosterAction::Leave if removed.len() >= MAX_GROUP_REMOVED => {
            return Err(ChangeRejection::Invalid);
        }
        _ => {}
    }
    roster.check(change)
}

impl LogView {
    /// Creates a group with `me` as its admin. The view waits at epoch 0 until the relay takes the
    /// returned append (it creates the log); then [`accepted`](Self::accepted) gives the welcome.
    pub fn create(
        rng: &mut impl CryptoRngCore,
        me: &UserIdentity,
        group_id: GroupId,
        name: &str,
        members: &[SigningPublicKey],
        now: u64,
    ) -> Result<(Self, Append)> {
        let first = EpochKeys::generate(rng)?;
        let action = RosterAction::Create { name: name.to_owned(), members: members.to_vec() };
        let change = RosterChange::sign(me, group_id, None, now, action)?;
        let mut view = Self {
            group_id,
            log_id: first.log_id()?,
            me: me.user_key(),
            roster: Roster::default(),
            removed: BTreeSet::new(),
            transcript: [0; 32],
            // The create is sealed under the keys of the epoch it makes: there is none before.
            keys: first.clone(),
            transcripts: VecDeque::new(),
            grants: BTreeMap::new(),
            proposal: None,
        };
        check(&view.roster, &view.removed, &change).map_err(Error::GroupChangeRejected)?;
        let append = view.seal(rng, change, first)?;
        Ok((view, append))
    }

    /// Joins from a `GroupWelcome` an admin sent over a 1:1 session; `me` must be a member.
    pub fn join(me: SigningPublicKey, welcome: &[u8]) -> Result<Self> {
        let w: proto::GroupWelcome = wire::decode(welcome, MAX_GROUP_WELCOME_BYTES, "group welcome")?;
        wire::check_version("group welcome", w.version, FORMAT_VERSION)?;
        let keys_proto = w.keys.as_ref().ok_or(Error::Malformed { what: "group welcome keys" })?;
        let keys = EpochKeys::from_proto(keys_proto)?;
        let group_id = GroupId::from_slice(&w.group_id)?;
        if keys_proto.group_id != w.group_id || keys_proto.epoch != w.epoch || w.epoch == 0 {
            return Err(Error::Malformed { what: "group welcome" });
        }
        if w.members.len() > MAX_GROUP_MEMBERS {
            return Err(Error::TooLarge { what: "group members", size: w.members.len(), max: MAX_GROUP_MEMBERS });
        }
        if w.removed.len() > MAX_GROUP_REMOVED {
            return Err(Error::TooLarge { what: "group removed users", size: w.removed.len(), max: MAX_GROUP_REMOVED });
        }
        let mut members = BTreeMap::new();
        for m in &w.members {
            let key = SigningPublicKey::from_slice(&m.user_key, "member user key")?;
            if members.insert(key.to_bytes(), m.admin).is_some() {
                return Err(Error::Malformed { what: "group welcome members" });
            }
        }
        let mut removed = BTreeSet::new();
        for r in &w.removed {
            let key = SigningPublicKey::from_slice(r, "removed user key")?;
            if members.contains_key(key.as_bytes()) || !removed.insert(key.to_bytes()) {
                return Err(Error::Malformed { what: "group welcome removed users" });
            }
        }
        if !members.contains_key(me.as_bytes()) {
            return Err(Error::NotGroupMember);
        }
        let roster = Roster { epoch: w.epoch, name: w.name.clone(), members };
        let transcript = array32(&w.transcript, "group transcript")?;
        Ok(Self {
            group_id,
            log_id: array32(&keys_proto.log_id, "group log id")?,
            me,
            roster,
            removed,
            transcript,
            keys,
            transcripts: VecDeque::from([Epoch { epoch: w.epoch, transcript, entry: None }]),
            grants: BTreeMap::new(),
            proposal: None,
        })
    }

    /// The group's id.
    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// The log's id on the relay.
    pub fn log_id(&self) -> LogId {
        self.log_id
    }

    /// The roster the log has made so far.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The epoch reached: the log's position.
    pub fn epoch(&self) -> u64 {
        self.roster.epoch
    }

    /// The transcript hash of the epoch reached; bound into every group message and distribution.
    pub fn transcript(&self) -> [u8; 32] {
        self.transcript
    }

    /// Whether `user` was removed (or left): a removal is final.
    pub fn is_removed(&self, user: &SigningPublicKey) -> bool {
        self.removed.contains(user.as_bytes())
    }

    /// The append of this member's change still waiting for the relay's answer (sent again after a
    /// reconnect: the relay answers a repeat that was already taken with a conflict that holds it).
    pub fn pending_append(&self) -> Option<&Append> {
        self.proposal.as_ref().map(|p| &p.append)
    }

    /// Makes a roster change as `me`, an admin of the current epoch: returns the append to send
    /// to the relay. Fails, changing nothing, if the change would not apply, or while an earlier
    /// change of this member waits for the relay (`InFlight`).
    pub fn propose(
        &mut self,
        rng: &mut impl CryptoRngCore,
        me: &UserIdentity,
        action: RosterAction,
        now: u64,
    ) -> Result<Append> {
        if me.user_key() != self.me {
            return Err(Error::NotGroupMember);
        }
        if self.proposal.is_some() {
            return Err(Error::GroupChangeRejected(ChangeRejection::InFlight));
        }
        if self.roster.epoch == 0 || self.keys.secret.is_none() {
            return Err(Error::GroupChangeRejected(ChangeRejection::NotAdmin));
        }
        let change = RosterChange::sign(me, self.group_id, Some((self.transcript, self.roster.epoch)), now, action)?;
        check(&self.roster, &self.removed, &change).map_err(Error::GroupChangeRejected)?;
        let next = EpochKeys::generate(rng)?;
        self.seal(rng, change, next)
    }

    fn seal(&mut self, rng: &mut impl CryptoRngCore, change: RosterChange, next: EpochKeys) -> Result<Append> {
        let epoch = self.roster.epoch + 1;
        let next_append = next.append_key()?.ok_or(Error::Internal("fresh epoch keys without a secret"))?;
        let next_append_key = next_append.public().to_bytes();
        let entry = proto::GroupLogEntry {
            version: FORMAT_VERSION,
            log_id: self.log_id.to_vec(),
            epoch,
            change: Some(change.to_proto()?),
            next_append_key: next_append_key.to_vec(),
            next_entry_key_id: next.entry_key_id().to_vec(),
        }
        .encode_to_vec();
        let sealed = seal_entry(rng, &self.keys, &self.log_id, epoch, &entry)?;
        let signer = match self.roster.epoch {
            0 => next_append,
            _ => self.keys.append_key()?.ok_or(Error::GroupChangeRejected(ChangeRejection::NotAdmin))?,
        };
        let append = Append::sign(&signer, self.log_id, self.roster.epoch, sealed, next_append_key);
        self.proposal = Some(Proposal { change, next, append: append.clone() });
        Ok(append)
    }

    /// The relay took this member's append at `epoch`: the change takes effect.
    pub fn accepted(&mut self, epoch: u64) -> Result<Committed> {
        if self.proposal.is_none() || epoch != self.roster.epoch + 1 {
            return Err(Error::Malformed { what: "group log answer" });
        }
        let proposal = self.proposal.take().ok_or(Error::Malformed { what: "group log answer" })?;
        self.commit(proposal)
    }

    fn commit(&mut self, proposal: Proposal) -> Result<Committed> {
        let events = self.enter(&proposal.change, proposal.next, &proposal.append.entry)?;
        let added = match &proposal.change.action {
            RosterAction::Add(users) => users.clone(),
            RosterAction::Create { members, .. } => members.clone(),
            _ => Vec::new(),
        };
        let keys = |admin| self.keys.to_proto(self.group_id, self.roster.epoch, &self.log_id, admin).encode_to_vec();
        let welcome = if added.is_empty() { None } else { Some(self.welcome()?) };
        Ok(Committed { events, admin_keys: keys(true), member_keys: keys(false), welcome, added })
    }

    /// The welcome of the current epoch, for users just added (they are no admins).
    pub fn welcome(&self) -> Result<Vec<u8>> {
        Ok(proto::GroupWelcome {
            version: FORMAT_VERSION,
            group_id: self.group_id.0.to_vec(),
            epoch: self.roster.epoch,
            name: self.roster.name.clone(),
            members: self
                .roster
                .members
                .iter()
                .map(|(k, admin)| proto::Member { user_key: k.to_vec(), admin: *admin })
                .collect(),
            removed: self.removed.iter().map(|k| k.to_vec()).collect(),
            transcript: self.transcript.to_vec(),
            keys: Some(self.keys.to_proto(self.group_id, self.roster.epoch, &self.log_id, false)),
        }
        .encode_to_vec())
    }

    /// Takes the keys of an epoch not reached yet, sent over a 1:1 session by `sender`, a member
    /// (the admin whose change made that epoch). Kept until the entry that makes the epoch names
    /// them (by their id), one per sender and epoch, at most [`MAX_GROUP_KEY_GRANTS`].
    pub fn take_keys(&mut self, sender: &SigningPublicKey, bytes: &[u8]) -> Result<()> {
        if !self.roster.is_member(sender) {
            return Err(Error::NotGroupMember);
        }
        let p: proto::GroupEpochKeys = wire::decode(bytes, MAX_EPOCH_KEYS_BYTES, "group epoch keys")?;
        let keys = EpochKeys::from_proto(&p)?;
        if p.group_id != self.group_id.0 || p.log_id != self.log_id {
            return Err(Error::Malformed { what: "group epoch keys group" });
        }
        if p.epoch <= self.roster.epoch {
            return Ok(()); // an epoch already reached: nothing to wait for
        }
        let ahead = p.epoch - self.roster.epoch;
        if ahead > u64::from(MAX_GROUP_EPOCHS_AHEAD) {
            return Err(Error::TooFarAhead { jump: ahead, max: MAX_GROUP_EPOCHS_AHEAD });
        }
        self.grants.insert((p.epoch, sender.to_bytes()), keys);
        while self.grants.len() > MAX_GROUP_KEY_GRANTS {
            self.grants.pop_last();
        }
        Ok(())
    }

    /// Applies entries the relay returned (a fetch, or the conflict an append met), in the relay's
    /// order: each must continue this member's history (its change made on our epoch and
    /// transcript; otherwise the relay showed its author another history: `GroupForked`). An entry
    /// whose change does not apply (an admin's client gone wrong) is skipped by every member alike,
    /// the epoch still moving. On error nothing changes.
    pub fn apply(&mut self, records: &[relay::GroupLogRecord]) -> Result<Applied> {
        let mut next = self.clone();
        let applied = next.apply_in_place(records)?;
        *self = next;
        Ok(applied)
    }

    fn apply_in_place(&mut self, records: &[relay::GroupLogRecord]) -> Result<Applied> {
        let mut out = Applied::default();
        for record in records {
            if self.roster.epoch > 0 && !self.roster.is_member(&self.me) {
                break; // out of the group: no keys of later epochs come, and none are needed
            }
            if record.epoch <= self.roster.epoch {
                // Already applied: the relay must show the same entry to everyone, every time.
                let kept = self.transcripts.iter().find(|e| e.epoch == record.epoch).and_then(|e| e.entry);
                if kept.is_some_and(|hash| hash != <[u8; 32]>::from(Sha256::digest(&record.entry))) {
                    return Err(Error::GroupForked { epoch: record.epoch });
                }
                continue;
            }
            if record.epoch != self.roster.epoch + 1 {
                break; // a gap: fetch again from the epoch reached
            }
            if let Some(own) = self.proposal.take_if(|p| p.append.entry == record.entry) {
                let committed = self.commit(own)?;
                out.events.extend(committed.events.iter().cloned());
                out.own = Some(committed);
                continue;
            }
            let plain = open_entry(&self.keys, &self.log_id, record.epoch, &record.entry)?;
            let entry: proto::GroupLogEntry = wire::decode(&plain, MAX_GROUP_LOG_ENTRY_BYTES, "group log entry")?;
            wire::check_version("group log entry", entry.version, FORMAT_VERSION)?;
            if entry.log_id != self.log_id || entry.epoch != record.epoch {
                return Err(Error::Malformed { what: "group log entry" });
            }
            let change =
                RosterChange::from_proto(entry.change.as_ref().ok_or(Error::Malformed { what: "group log entry" })?)?;
            if change.group_id != self.group_id {
                return Err(Error::Malformed { what: "group change group id" });
            }
            // The change names the history its author saw; one made on another is the relay's fork.
            if change.base_epoch != self.roster.epoch || change.parent != Some(self.transcript) {
                return Err(Error::GroupForked { epoch: self.roster.epoch });
            }
            let removes_me = match &change.action {
                RosterAction::Remove(user) => *user == self.me,
                RosterAction::Leave => change.author == self.me,
                _ => false,
            };
            let keys = match self.take_grant(record.epoch, &entry)? {
                Some(keys) => keys,
                // A removed member learns of her removal from the log, and gets no keys after it.
                None if removes_me && check(&self.roster, &self.removed, &change).is_ok() => EpochKeys::none(),
                None => {
                    out.waiting = true;
                    break;
                }
            };
            out.events.extend(self.enter(&change, keys, &record.entry)?);
        }
        out.conflicted = self.proposal.as_ref().is_some_and(|p| p.append.expected_epoch < self.roster.epoch);
        Ok(out)
    }

    /// The keys named by `entry` among those received for its epoch; the secret is kept only by
    /// an admin of the epoch it makes (checked when it is reached).
    fn take_grant(&self, epoch: u64, entry: &proto::GroupLogEntry) -> Result<Option<EpochKeys>> {
        let mut found = None;
        let named = self
            .grants
            .range((epoch, [0; 32])..=(epoch, [0xff; 32]))
            .map(|(_, keys)| keys)
            .filter(|keys| keys.entry_key_id().as_slice() == entry.next_entry_key_id.as_slice());
        for keys in named {
            let append = keys.append_key()?.map(|k| k.public().to_bytes());
            if append.is_some_and(|k| k.as_slice() == entry.next_append_key.as_slice()) {
                return Ok(Some(keys.clone()));
            }
            found.get_or_insert_with(|| keys.members_part());
        }
        Ok(found)
    }

    /// Moves to the epoch the log's next change makes, with its `keys`: the change applies if
    /// [`check`] allows it, and is skipped otherwise (an admin's client gone wrong; every member
    /// skips it alike, so they still agree).
    fn enter(&mut self, change: &RosterChange, keys: EpochKeys, entry: &[u8]) -> Result<Vec<GroupEvent>> {
        match check(&self.roster, &self.removed, change) {
            Ok(()) => self.advance(change, keys, entry),
            Err(reason) => {
                self.roster.epoch += 1;
                self.step(change, keys, entry);
                Ok(vec![GroupEvent::ChangeRejected { author: change.author, reason }])
            }
        }
    }

    /// Applies a change [`check`] allowed, moving to the epoch it makes with `keys`.
    fn advance(&mut self, change: &RosterChange, keys: EpochKeys, entry: &[u8]) -> Result<Vec<GroupEvent>> {
        let before = self.roster.clone();
        self.roster.apply(change).map_err(Error::GroupChangeRejected)?;
        match &change.action {
            RosterAction::Remove(user) => {
                self.removed.insert(user.to_bytes());
            }
            RosterAction::Leave => {
                self.removed.insert(change.author.to_bytes());
            }
            _ => {}
        }
        self.step(change, keys, entry);
        roster_events(&before, &self.roster)
    }

    /// The bookkeeping of a new epoch (the roster's epoch already moved).
    fn step(&mut self, change: &RosterChange, keys: EpochKeys, entry: &[u8]) {
        self.transcript = next_transcript(&self.transcript, change);
        let entry = Some(Sha256::digest(entry).into());
        self.transcripts.push_back(Epoch { epoch: self.roster.epoch, transcript: self.transcript, entry });
        while self.transcripts.len() > MAX_GROUP_TRANSCRIPTS_KEPT {
            self.transcripts.pop_front();
        }
        self.keys = if self.roster.is_admin(&self.me) { keys } else { keys.members_part() };
        let reached = self.roster.epoch;
        self.grants.retain(|(epoch, _), _| *epoch > reached);
    }

    /// After a conflict and [`apply`](Self::apply): this member's change made again on the epoch
    /// the log reached, or, if it no longer applies (the user it removes is gone, this member is no
    /// admin any more), nothing, with the rejection as an event.
    pub fn rebase(
        &mut self,
        rng: &mut impl CryptoRngCore,
        me: &UserIdentity,
        now: u64,
    ) -> Result<(Option<Append>, Vec<GroupEvent>)> {
        let Some(proposal) = self.proposal.take() else { return Ok((None, Vec::new())) };
        if proposal.append.expected_epoch == self.roster.epoch {
            let append = proposal.append.clone();
            self.proposal = Some(proposal);
            return Ok((Some(append), Vec::new()));
        }
        match self.propose(rng, me, proposal.change.action.clone(), now) {
            Ok(append) => Ok((Some(append), Vec::new())),
            Err(Error::GroupChangeRejected(reason)) => {
                Ok((None, vec![GroupEvent::ChangeRejected { author: self.me, reason }]))
            }
            Err(e) => {
                self.proposal = Some(proposal);
                Err(e)
            }
        }
    }

    /// The transcript hash of `epoch`, if it is among the latest this member keeps.
    pub fn transcript_at(&self, epoch: u64) -> Option<[u8; 32]> {
        self.transcripts.iter().find(|e| e.epoch == epoch).map(|e| e.transcript)
    }

    /// Checks what another member's group message or distribution says the transcript of `epoch`
    /// is: a different one means the relay showed the two of them different logs (`GroupForked`).
    /// An epoch this member has not reached, or no longer keeps, cannot be checked here.
    pub fn check_transcript(&self, epoch: u64, theirs: &[u8]) -> Result<()> {
        match self.transcript_at(epoch) {
            Some(ours) if ours.as_slice() != theirs => Err(Error::GroupForked { epoch }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
